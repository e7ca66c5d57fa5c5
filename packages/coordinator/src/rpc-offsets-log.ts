import { OFFSETS_TOPIC, silentLogger, type Logger } from '@runnel/common';
import type { MetadataStore } from '@runnel/metadata';
import { RpcClient, RpcError, type Address, type RpcTls } from '@runnel/rpc';
import { CoordinatorError } from './coordinator.ts';
import { encodeOffsetsBatch, replayRange, type OffsetsLog, type TxnMarker, type TxnProducer } from './offsets-log.ts';

/**
 * One RpcClient per broker node, found through the metadata snapshot (`brokers.get(id).rpc`). A
 * node that registered again under another RPC address gets a new client (the old one is closed).
 * Clients connect lazily and reconnect after a broken connection (RpcClient's contract).
 */
export class BrokerClients {
  readonly #metadata: MetadataStore;
  readonly #requestTimeoutMs: number | undefined;
  readonly #logger: Logger;
  readonly #tls: RpcTls | undefined;
  readonly #clients = new Map<number, { address: string; client: RpcClient }>();

  /** `tls`: the node's RPC TLS (runnel.rpc.ssl.enabled); none = plaintext. */
  constructor(o: { metadata: MetadataStore; requestTimeoutMs?: number; logger?: Logger; tls?: RpcTls }) {
    this.#metadata = o.metadata;
    this.#tls = o.tls;
    this.#requestTimeoutMs = o.requestTimeoutMs;
    this.#logger = o.logger ?? silentLogger();
  }

  /** The client of a live node with an RPC listener; CoordinatorError('UNAVAILABLE') otherwise. */
  forNode(nodeId: number): RpcClient {
    const node = this.#metadata.snapshot().brokers.get(nodeId);
    if (!node || node.rpc === null) throw new CoordinatorError('UNAVAILABLE', `node ${nodeId} is not live or has no RPC listener`, { retriable: true });
    return this.#client(nodeId, node.rpc);
  }

  /** The node leading a partition and its client; CoordinatorError('UNAVAILABLE') when it has no live leader. */
  leaderOf(topic: string, partition: number): { nodeId: number; client: RpcClient } {
    const state = this.#metadata.snapshot().topics.get(topic)?.partitions[partition];
    if (!state) throw new CoordinatorError('UNAVAILABLE', `${topic}-${partition} does not exist (yet)`, { retriable: true });
    if (state.leader < 0) throw new CoordinatorError('UNAVAILABLE', `${topic}-${partition} has no leader`, { retriable: true });
    return { nodeId: state.leader, client: this.forNode(state.leader) };
  }

  /**
   * A transaction marker for `__consumer_offsets` partition `partition`, sent to the coordinator
   * node that owns it (metadata's coordinator assignment) over 'coordinator.writeTxnMarkers': it
   * writes the marker and resolves its groups' pending transactional offsets. Null or a Kafka error
   * name; NOT_LEADER_OR_FOLLOWER while nobody owns it. Throws when the owner cannot be reached.
   */
  async offsetsMarker(partition: number, m: TxnMarker): Promise<string | null> {
    const owner = this.#metadata.snapshot().coordinators.get(partition)?.nodeId;
    if (owner === undefined) return 'NOT_LEADER_OR_FOLLOWER';
    const res = await this.forNode(owner).call('coordinator.writeTxnMarkers', { markers: [{ ...m, partitions: [{ topic: OFFSETS_TOPIC, partition }] }] });
    const error = res.markers[0]?.partitions[0]?.error ?? 'NOT_LEADER_OR_FOLLOWER';
    return error === '' ? null : error;
  }

  close(): void {
    for (const { client } of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  #client(nodeId: number, rpc: Address): RpcClient {
    const address = `${rpc.host}:${rpc.port}`;
    const known = this.#clients.get(nodeId);
    if (known && known.address === address) return known.client;
    if (known) {
      this.#logger.debug({ nodeId, from: known.address, to: address }, 'node moved its RPC listener');
      known.client.close();
    }
    const client = RpcClient.create({ host: rpc.host, port: rpc.port, requestTimeoutMs: this.#requestTimeoutMs, logger: this.#logger, tls: this.#tls });
    this.#clients.set(nodeId, { address, client });
    return client;
  }
}

/**
 * What a failed remote call means to the coordinator runtime (group-coordinator.ts `appendError`):
 * - the broker refused a stale coordinator epoch (remote `NOT_COORDINATOR`) → NOT_COORDINATOR: this
 *   node lost the partition; clients look the coordinator up again;
 * - the partition's leader moved, is offline, or the broker cannot be reached (remote
 *   `NOT_LEADER_OR_FOLLOWER`/`NOT_LEADER`, RPC UNAVAILABLE/TIMEOUT/CLOSED) → UNAVAILABLE: this node
 *   is still the coordinator, the log is just out of reach for now (clients see
 *   COORDINATOR_NOT_AVAILABLE and retry). Kafka says NOT_COORDINATOR for a lost leadership because
 *   its coordinator is the leader; here they are different nodes, so a move of the leader is not a
 *   move of the coordinator.
 * - anything else → UNAVAILABLE as well (retriable), with the remote message.
 */
export function coordinatorErrorOf(err: unknown, what: string): CoordinatorError {
  if (err instanceof CoordinatorError) return err;
  if (err instanceof RpcError) {
    const remote = err.code === 'REMOTE' ? err.remoteCode : undefined;
    if (remote === 'NOT_COORDINATOR') return new CoordinatorError('NOT_COORDINATOR', `${what}: ${err.message}`, { cause: err });
    return new CoordinatorError('UNAVAILABLE', `${what}: ${remote ?? err.code}: ${err.message}`, { cause: err, retriable: true });
  }
  return new CoordinatorError('UNAVAILABLE', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err, retriable: true });
}

/** A remote error code found in a response row ('broker.offsets'), mapped like a thrown one. */
function rowError(code: string, what: string): CoordinatorError {
  if (code === 'NOT_COORDINATOR') return new CoordinatorError('NOT_COORDINATOR', `${what}: ${code}`);
  return new CoordinatorError('UNAVAILABLE', `${what}: ${code}`, { retriable: true });
}

export interface RpcOffsetsLogOptions {
  metadata: MetadataStore;
  /** This coordinator's node id: an append to a partition the snapshot gives to another node fails NOT_COORDINATOR without a call. */
  nodeId: number;
  /**
   * The partition count groups (transactional ids) hash over: the topic's (or the setting before it
   * exists). A function is asked on every use: `__transaction_state` may not exist when the node
   * starts, and whichever node creates it fixes the count for all (its own setting).
   */
  partitions: number | (() => number);
  /**
   * The internal topic: `__consumer_offsets` (default) or `__transaction_state`. Ownership is the
   * coordinator assignment of `__consumer_offsets` partition `p % offsetsPartitions` (a
   * transaction-state partition goes with that offsets partition, see docs/transactions.md).
   */
  topic?: string;
  /** `__consumer_offsets`' partition count, for the ownership of another topic's partitions; default `partitions`. */
  offsetsPartitions?: number;
  /** Shared with the lag sources of a CoordinatorNode; created (and closed by `close`) when absent. */
  clients?: BrokerClients;
  /** Bytes asked per 'broker.read' while loading, default 1 MiB (a larger batch still comes whole). */
  readChunkBytes?: number;
  /**
   * How long one append keeps retrying a leader that moved, went offline or cannot be reached (the
   * next attempt goes to the leader metadata names then), default 30000: longer than a failover
   * (`broker.session.timeout.ms` plus an election). 0 = one attempt.
   */
  appendRetryMs?: number;
  /**
   * How long one attempt waits for its answer before the next one goes to the leader metadata
   * names then, default 10000 (a broker answers an append within offsets.commit.timeout.ms, 5 s):
   * a leader that froze or was cut off must not hold the append for the whole retry window.
   */
  appendAttemptTimeoutMs?: number;
  /** Record timestamps; defaults to Date.now. */
  now?: () => number;
  logger?: Logger;
}

/** Remote codes after which an append may be sent again to the (new) leader: leadership moved or the ISR is short for now. */
const RETRIABLE_REMOTE = new Set([
  'NOT_LEADER', 'NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'FENCED_LEADER_EPOCH', 'UNKNOWN_LEADER_EPOCH',
  'NOT_ENOUGH_REPLICAS', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'REQUEST_TIMED_OUT', 'STORAGE_ERROR', 'KAFKA_STORAGE_ERROR',
]);

/** Whether an append that failed with `err` should be tried again against the leader metadata names now. */
function retriableAppend(err: unknown): boolean {
  if (err instanceof CoordinatorError) return err.code === 'UNAVAILABLE' && !(err.cause instanceof RpcError && !retriableAppend(err.cause));
  if (!(err instanceof RpcError)) return false;
  if (err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT' || err.code === 'CLOSED') return true;
  return err.code === 'REMOTE' && err.remoteCode !== 'NOT_COORDINATOR' && RETRIABLE_REMOTE.has(err.remoteCode ?? '');
}

export interface RpcOffsetsLog extends OffsetsLog {
  /** Closes the RPC clients this log created. */
  close(): void;
}

/**
 * The OffsetsLog of a coordinator in a cluster: `__consumer_offsets-p` lives on the broker leading
 * it (found in the metadata snapshot), reached over RPC.
 *
 * - `load` asks 'broker.offsets' for the partition's [logStartOffset, highWatermark) and pages
 *   through it with 'broker.read', under the partition's coordinator epoch (`snapshot.coordinators`)
 *   at the time: the broker then refuses appends from older owners, so none lands after our read.
 *   A load that stops short of the high watermark fails (a silent partial load would lose
 *   committed offsets).
 * - `append` encodes the records as one uncompressed batch and sends it with 'broker.append',
 *   carrying the epoch the partition was loaded under (the state the records were computed from);
 *   the broker refuses an older epoch than it has seen (NOT_COORDINATOR), which fences a
 *   coordinator that lost the partition but has not heard yet. It resolves once the leader
 *   committed it (its high watermark moved).
 * - Appends to one partition go one at a time, in call order; those that arrive while one is in
 *   flight go together in the next batch. An append whose leader moved, went offline or did not
 *   answer is sent again to the leader metadata names now (backoff 50 ms doubling to 1 s, for
 *   `appendRetryMs`), and the next one waits for it: a retried append can never land after a
 *   later one, so a commit retried this way never overwrites a newer commit of the same key. A
 *   failed attempt may still have been written (and replicated) by the old leader; sending the
 *   same records again is harmless, the later copy wins with the same value.
 *
 * Errors are CoordinatorErrors (see {@link coordinatorErrorOf}).
 */
export function rpcOffsetsLog(o: RpcOffsetsLogOptions): RpcOffsetsLog {
  const ownsClients = o.clients === undefined;
  const clients = o.clients ?? new BrokerClients({ metadata: o.metadata, logger: o.logger });
  const now = o.now ?? Date.now;
  const chunk = o.readChunkBytes ?? 1 << 20;
  const topic = o.topic ?? OFFSETS_TOPIC;
  const partitions = typeof o.partitions === 'number' ? () => o.partitions as number : o.partitions;
  const offsetsPartitions = o.offsetsPartitions ?? partitions();
  const name = (p: number) => `${topic}-${p}`;
  /** The coordinator epoch each partition was last loaded under. */
  const loadedEpochs = new Map<number, number>();
  /** This node's assignment of a partition in metadata, or NOT_COORDINATOR. */
  const ownEpoch = (partition: number): number => {
    const assignment = o.metadata.snapshot().coordinators.get(topic === OFFSETS_TOPIC ? partition : partition % offsetsPartitions);
    if (!assignment || assignment.nodeId !== o.nodeId) {
      throw new CoordinatorError('NOT_COORDINATOR', `${name(partition)} is not assigned to node ${o.nodeId} (metadata says ${assignment?.nodeId ?? 'nobody'})`);
    }
    return assignment.epoch;
  };

  const retryMs = o.appendRetryMs ?? 30_000;
  const attemptMs = o.appendAttemptTimeoutMs ?? 10_000;
  let closed = false;
  /** Sleeps between append attempts, cut short by close(). */
  const sleeps = new Set<() => void>();
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const wake = () => { clearTimeout(timer); sleeps.delete(wake); resolve(); };
    const timer = setTimeout(wake, ms);
    sleeps.add(wake);
  });
  /** An append waiting its turn: records (a transactional batch when `txn` is set), or a marker. */
  interface Waiting { records: readonly { key: Buffer; value: Buffer | null }[]; txn?: TxnProducer; marker?: TxnMarker; resolve(): void; reject(err: unknown): void }
  /** Per partition: appends not sent yet, and whether one is in flight (at most one is). */
  const queues = new Map<number, { sending: boolean; waiting: Waiting[] }>();
  /** Records per batch when appends are gathered (one append's records always go whole). */
  const gatherBytes = 512 * 1024;

  /** Sends what waits for a partition, one batch at a time, until nothing is left. */
  async function drain(partition: number, queue: { sending: boolean; waiting: Waiting[] }): Promise<void> {
    queue.sending = true;
    while (queue.waiting.length > 0) {
      const batch: Waiting[] = [];
      let bytes = 0;
      // Plain appends are gathered; a transactional append or a marker goes alone (its own batch).
      const alone = (w: Waiting) => w.txn !== undefined || w.marker !== undefined;
      while (queue.waiting.length > 0 && (batch.length === 0 || (bytes < gatherBytes && !alone(batch[0]!) && !alone(queue.waiting[0]!)))) {
        const next = queue.waiting.shift()!;
        batch.push(next);
        for (const r of next.records) bytes += r.key.length + (r.value?.length ?? 0);
      }
      try {
        const first = batch[0]!;
        if (first.marker) await appendWithRetry(partition, [], undefined, first.marker);
        else await appendWithRetry(partition, batch.flatMap((w) => w.records), first.txn);
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    queue.sending = false;
    queues.delete(partition);
  }

  /** One batch to the partition's current leader, retried while the failure says leadership moved or the leader is out of reach. */
  async function appendWithRetry(partition: number, records: readonly { key: Buffer; value: Buffer | null }[], txn?: TxnProducer, marker?: TxnMarker): Promise<void> {
    const deadline = Date.now() + retryMs;
    let delay = 50;
    for (let attempt = 1; ; attempt++) {
      let failure: CoordinatorError;
      try {
        // Every attempt checks ownership again: a partition that moved away meanwhile is NOT_COORDINATOR, never retried.
        const current = ownEpoch(partition);
        const coordinatorEpoch = loadedEpochs.get(partition) ?? current;
        const { client } = clients.leaderOf(topic, partition);
        const timeoutMs = retryMs > 0 ? Math.min(attemptMs, Math.max(100, deadline - Date.now())) : undefined;
        const callOptions = timeoutMs === undefined ? undefined : { timeoutMs };
        if (marker) {
          // The broker writes the control batch as leader and answers once it is committed; under
          // our epoch, fenced like an append (a deposed owner's marker would never reach the new one's state).
          const res = await client.call('broker.writeTxnMarkers', { markers: [{ ...marker, partitions: [{ topic, partition }] }], groupCoordinatorEpoch: coordinatorEpoch }, callOptions);
          const error = res.markers[0]?.partitions[0]?.error ?? 'UNKNOWN_SERVER_ERROR';
          if (error !== '') throw new RpcError('REMOTE', `writing a marker to ${name(partition)}: ${error}`, { remoteCode: error === 'NOT_LEADER_OR_FOLLOWER' ? 'NOT_LEADER' : error });
        } else {
          await client.call('broker.append', {
            topic,
            partition,
            records: encodeOffsetsBatch(records, now(), txn),
            coordinatorEpoch,
          }, callOptions);
        }
        if (attempt > 1) o.logger?.info({ partition, attempts: attempt }, `appended to ${name(partition)} after its leader moved`);
        return;
      } catch (err) {
        failure = coordinatorErrorOf(err, `appending to ${name(partition)}`);
        if (closed || !retriableAppend(err) || Date.now() + delay > deadline) throw failure;
      }
      o.logger?.debug({ partition, attempt, retryInMs: delay, err: failure.message }, `append to ${name(partition)} failed; retrying against the current leader`);
      await sleep(delay);
      delay = Math.min(delay * 2, 1_000);
    }
  }

  /** Queues an append (records, or a marker) behind the partition's earlier ones. */
  function enqueue(partition: number, records: readonly { key: Buffer; value: Buffer | null }[], txn?: TxnProducer, marker?: TxnMarker): Promise<void> {
    if (records.length === 0 && !marker) return Promise.resolve();
    if (closed) return Promise.reject(new CoordinatorError('UNAVAILABLE', `appending to ${name(partition)}: the offsets log is closed`, { retriable: true }));
    try {
      // Refused at once (no call, no queue) when our own metadata gives the partition to another node.
      ownEpoch(partition);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      const queue = queues.get(partition) ?? { sending: false, waiting: [] };
      queues.set(partition, queue);
      queue.waiting.push({ records, ...(txn ? { txn } : {}), ...(marker ? { marker } : {}), resolve, reject });
      if (!queue.sending) void drain(partition, queue);
    });
  }

  return {
    get partitions() {
      return partitions();
    },
    append: (partition, records, txn) => enqueue(partition, records, txn),
    // Through the same queue: a marker lands after the appends called before it (the TxnOffsetCommit it ends).
    appendMarker: (partition, marker) => enqueue(partition, [], undefined, marker),

    async load(partition, apply, onMarker) {
      const coordinatorEpoch = ownEpoch(partition);
      const { client } = clients.leaderOf(topic, partition);
      const read = async (offset: bigint, maxBytes: number) =>
        (await client.call('broker.read', { topic, partition, offset, maxBytes, coordinatorEpoch })).records;
      const rangeOf = async () => {
        const res = await client.call('broker.offsets', { partitions: [{ topic, partition }] });
        const row = res.partitions.find((r) => r.topic === topic && r.partition === partition);
        if (!row) throw new CoordinatorError('UNAVAILABLE', `broker.offsets did not answer for ${name(partition)}`, { retriable: true });
        if (row.error !== '') throw rowError(row.error, `reading the offsets of ${name(partition)}`);
        return { start: row.logStartOffset, end: row.highWatermark };
      };
      let range: { start: bigint; end: bigint };
      try {
        // Fence first (a read under our epoch: the broker refuses older owners' appends from now
        // on), then take the range, so no append of theirs can land past its end.
        await read((await rangeOf()).start, 0);
        range = await rangeOf();
      } catch (err) {
        throw coordinatorErrorOf(err, `reading the offsets of ${name(partition)}`);
      }
      let reached: bigint;
      try {
        reached = await replayRange({ ...range, read: (offset) => read(offset, chunk) }, apply, onMarker);
      } catch (err) {
        throw coordinatorErrorOf(err, `reading ${name(partition)}`);
      }
      if (reached < range.end) {
        throw new CoordinatorError('UNAVAILABLE', `reading ${name(partition)} stopped at offset ${reached}, before its high watermark ${range.end}`, { retriable: true });
      }
      loadedEpochs.set(partition, coordinatorEpoch);
    },

    close() {
      closed = true;
      for (const wake of [...sleeps]) wake();
      if (ownsClients) clients.close();
    },
  };
}
