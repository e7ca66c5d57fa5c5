import { OFFSETS_TOPIC, silentLogger, type Logger } from '@runnel/common';
import type { MetadataStore } from '@runnel/metadata';
import { RpcClient, RpcError, type Address } from '@runnel/rpc';
import { CoordinatorError } from './coordinator.ts';
import { encodeOffsetsBatch, replayRange, type OffsetsLog } from './offsets-log.ts';

/**
 * One RpcClient per broker node, found through the metadata snapshot (`brokers.get(id).rpc`). A
 * node that registered again under another RPC address gets a new client (the old one is closed).
 * Clients connect lazily and reconnect after a broken connection (RpcClient's contract).
 */
export class BrokerClients {
  readonly #metadata: MetadataStore;
  readonly #requestTimeoutMs: number | undefined;
  readonly #logger: Logger;
  readonly #clients = new Map<number, { address: string; client: RpcClient }>();

  constructor(o: { metadata: MetadataStore; requestTimeoutMs?: number; logger?: Logger }) {
    this.#metadata = o.metadata;
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
    const client = RpcClient.create({ host: rpc.host, port: rpc.port, requestTimeoutMs: this.#requestTimeoutMs, logger: this.#logger });
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
  /** The partition count groups hash over: the topic's (or offsets.topic.num.partitions before it exists). */
  partitions: number;
  /** Shared with the lag sources of a CoordinatorNode; created (and closed by `close`) when absent. */
  clients?: BrokerClients;
  /** Bytes asked per 'broker.read' while loading, default 1 MiB (a larger batch still comes whole). */
  readChunkBytes?: number;
  /** Record timestamps; defaults to Date.now. */
  now?: () => number;
  logger?: Logger;
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
 *
 * Errors are CoordinatorErrors (see {@link coordinatorErrorOf}).
 */
export function rpcOffsetsLog(o: RpcOffsetsLogOptions): RpcOffsetsLog {
  const ownsClients = o.clients === undefined;
  const clients = o.clients ?? new BrokerClients({ metadata: o.metadata, logger: o.logger });
  const now = o.now ?? Date.now;
  const chunk = o.readChunkBytes ?? 1 << 20;
  const name = (p: number) => `${OFFSETS_TOPIC}-${p}`;
  /** The coordinator epoch each partition was last loaded under. */
  const loadedEpochs = new Map<number, number>();
  /** This node's assignment of a partition in metadata, or NOT_COORDINATOR. */
  const ownEpoch = (partition: number): number => {
    const assignment = o.metadata.snapshot().coordinators.get(partition);
    if (!assignment || assignment.nodeId !== o.nodeId) {
      throw new CoordinatorError('NOT_COORDINATOR', `${name(partition)} is not assigned to node ${o.nodeId} (metadata says ${assignment?.nodeId ?? 'nobody'})`);
    }
    return assignment.epoch;
  };

  return {
    partitions: o.partitions,

    async append(partition, records) {
      if (records.length === 0) return;
      const current = ownEpoch(partition);
      const coordinatorEpoch = loadedEpochs.get(partition) ?? current;
      const { client } = clients.leaderOf(OFFSETS_TOPIC, partition);
      try {
        await client.call('broker.append', {
          topic: OFFSETS_TOPIC,
          partition,
          records: encodeOffsetsBatch(records, now()),
          coordinatorEpoch,
        });
      } catch (err) {
        throw coordinatorErrorOf(err, `appending to ${name(partition)}`);
      }
    },

    async load(partition, apply) {
      const coordinatorEpoch = ownEpoch(partition);
      const { client } = clients.leaderOf(OFFSETS_TOPIC, partition);
      const read = async (offset: bigint, maxBytes: number) =>
        (await client.call('broker.read', { topic: OFFSETS_TOPIC, partition, offset, maxBytes, coordinatorEpoch })).records;
      const rangeOf = async () => {
        const res = await client.call('broker.offsets', { partitions: [{ topic: OFFSETS_TOPIC, partition }] });
        const row = res.partitions.find((r) => r.topic === OFFSETS_TOPIC && r.partition === partition);
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
        reached = await replayRange({ ...range, read: (offset) => read(offset, chunk) }, apply);
      } catch (err) {
        throw coordinatorErrorOf(err, `reading ${name(partition)}`);
      }
      if (reached < range.end) {
        throw new CoordinatorError('UNAVAILABLE', `reading ${name(partition)} stopped at offset ${reached}, before its high watermark ${range.end}`, { retriable: true });
      }
      loadedEpochs.set(partition, coordinatorEpoch);
    },

    close() {
      if (ownsClients) clients.close();
    },
  };
}
