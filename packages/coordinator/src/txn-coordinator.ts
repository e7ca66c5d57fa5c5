import { OFFSETS_TOPIC, silentLogger, TRANSACTION_STATE_TOPIC, type Logger } from '@runnel/common';
import { javaStringHashCode, partitionForGroup } from '@runnel/protocol';
import type { Clock, Timer } from './clock.ts';
import { decodeTxnKey, decodeTxnValue, encodeTxnKey, encodeTxnValue, TXN_STATES, type TxnLogValue, type TxnState } from './txn-records.ts';

/**
 * The transaction coordinator (KIP-98), built like the GroupCoordinator: its decisions are a
 * deterministic state machine over Kafka's TransactionMetadata states, time comes from an injected
 * Clock, and everything outside (the `__transaction_state` log, the producer id allocator, the
 * markers to partition leaders) is injected, so tests drive it with a ManualClock and in-memory
 * fakes. Behaviour follows Kafka's TransactionCoordinator/TransactionMetadata with transaction
 * version 1 (no epoch bump per transaction, KIP-890 part 2); docs/transactions.md.
 *
 * A state change is written before it takes effect: the target state is computed, the record
 * appended, and only a durable append applies it (meanwhile the id is "pending" and other
 * requests for it get CONCURRENT_TRANSACTIONS). EndTxn answers once PrepareCommit/PrepareAbort is
 * durable; the markers are then written to every partition of the transaction through the
 * {@link TxnMarkerSink}, and CompleteCommit/CompleteAbort is written when all acknowledged.
 * Loading a partition replays its records; a transaction found prepared is completed (markers
 * again: they are idempotent for the brokers).
 */

export interface TxnCoordinatorConfig {
  /** The largest transaction.timeout.ms a producer may ask for. */
  'transaction.max.timeout.ms': number;
  /** How often Ongoing transactions past their timeout are aborted. */
  'transaction.abort.timed.out.transaction.cleanup.interval.ms': number;
  /** A transactional id idle (Empty/Complete*) this long is removed (tombstone). */
  'transactional.id.expiration.ms': number;
  /** How often expired transactional ids are looked for. */
  'transaction.remove.expired.transaction.cleanup.interval.ms': number;
  /** `__consumer_offsets`'s partition count: AddOffsetsToTxn adds the group's partition. */
  'offsets.topic.num.partitions': number;
}

export const defaultTxnCoordinatorConfig: TxnCoordinatorConfig = {
  'transaction.max.timeout.ms': 900_000,
  'transaction.abort.timed.out.transaction.cleanup.interval.ms': 10_000,
  'transactional.id.expiration.ms': 604_800_000,
  'transaction.remove.expired.transaction.cleanup.interval.ms': 3_600_000,
  'offsets.topic.num.partitions': 50,
};

/** The keys above from a BrokerConfig-like source (only those it has). */
export function txnCoordinatorConfigFrom(config: { has?(name: string): boolean; get(name: never): unknown }): Partial<TxnCoordinatorConfig> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(defaultTxnCoordinatorConfig)) {
    if (config.has && !config.has(key)) continue;
    try {
      const v = config.get(key as never);
      if (typeof v === 'number') out[key] = v;
    } catch {
      // not a key this config knows: the default holds
    }
  }
  return out as Partial<TxnCoordinatorConfig>;
}

/** Kafka error names the transaction coordinator answers (the handlers turn them into codes). */
export type TxnError =
  | 'NONE'
  | 'INVALID_REQUEST'
  | 'NOT_COORDINATOR'
  | 'COORDINATOR_LOAD_IN_PROGRESS'
  | 'COORDINATOR_NOT_AVAILABLE'
  | 'CONCURRENT_TRANSACTIONS'
  | 'PRODUCER_FENCED'
  | 'INVALID_PRODUCER_ID_MAPPING'
  | 'INVALID_TXN_STATE'
  | 'INVALID_TRANSACTION_TIMEOUT'
  | 'TRANSACTIONAL_ID_NOT_FOUND';

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A transaction marker request for one producer's transaction on a set of partitions. */
export interface TxnMarkerRequest {
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
  commit: boolean;
  partitions: TopicPartition[];
}

/**
 * Writes COMMIT/ABORT markers to partition leaders (in-process under `runnel start`, over RPC in
 * a cluster; `__consumer_offsets` partitions go to their group coordinator). It answers an error
 * name (or null) per partition; it may retry retriable errors itself. `signal` aborts when this
 * coordinator lost the transaction's partition: stop retrying then.
 */
export interface TxnMarkerSink {
  write(m: TxnMarkerRequest, signal?: AbortSignal): Promise<{ topic: string; partition: number; error: string | null }[]>;
}

/** The `__transaction_state` log as the coordinator uses it (an OffsetsLog is one). */
export interface TxnStateLog {
  readonly partitions: number;
  append(partition: number, records: readonly { key: Buffer; value: Buffer | null }[]): Promise<void>;
  load(partition: number, apply: (key: Buffer, value: Buffer | null) => void): Promise<void>;
}

export interface TransactionCoordinatorOptions {
  log: TxnStateLog;
  markers: TxnMarkerSink;
  /** A cluster-unique producer id (the same allocator idempotent producers use). */
  allocateProducerId: () => Promise<bigint>;
  clock: Clock;
  config?: Partial<TxnCoordinatorConfig>;
  /** Backoff of marker and completion retries (100 ms doubling to 5 s). */
  retry?: { initialMs: number; maxMs: number };
  logger?: Logger;
}

/** A transactional id's state (Kafka's TransactionMetadata). */
export interface TxnMetadata {
  readonly transactionalId: string;
  /** Its `__transaction_state` partition. */
  readonly partition: number;
  producerId: bigint;
  /** The producer id before the last epoch exhaustion (KIP-360 retries), -1n if none. */
  lastProducerId: bigint;
  producerEpoch: number;
  /** The epoch before the last InitProducerId bump, -1 if unknown (KIP-360 retries). */
  lastProducerEpoch: number;
  timeoutMs: number;
  state: TxnState;
  partitions: Map<string, Set<number>>;
  startMs: number;
  lastUpdateMs: number;
  /** A state being written; requests meanwhile get CONCURRENT_TRANSACTIONS. */
  pending: TxnState | null;
  /** Markers are being sent for the prepared state. */
  completing: boolean;
}

export interface InitProducerIdRequest {
  transactionalId: string;
  transactionTimeoutMs: number;
  /** KIP-360: the id and epoch the producer has, -1n/-1 for none. */
  producerId: bigint;
  producerEpoch: number;
}

export interface TxnRequestBase {
  transactionalId: string;
  producerId: bigint;
  producerEpoch: number;
}

export interface DescribedTransaction {
  error: TxnError;
  transactionalId: string;
  state: TxnState | '';
  timeoutMs: number;
  startMs: number;
  producerId: bigint;
  producerEpoch: number;
  partitions: { topic: string; partitions: number[] }[];
}

export interface ListedTransaction {
  transactionalId: string;
  producerId: bigint;
  state: TxnState;
}

/** Kafka's `isEpochExhausted`: the next bump would leave no room for a fence. */
export const MAX_PRODUCER_EPOCH = 32_767;
const epochExhausted = (epoch: number) => epoch >= MAX_PRODUCER_EPOCH - 1;


export { TRANSACTION_STATE_TOPIC };

/** A transactional id's `__transaction_state` partition: Kafka's `Utils.abs(id.hashCode) % n`. */
export function partitionForTransactionalId(transactionalId: string, partitions: number): number {
  return (javaStringHashCode(transactionalId) & 0x7fffffff) % partitions;
}

interface PartitionState {
  state: 'loading' | 'loaded';
  coordinatorEpoch: number;
  /** Aborted when the partition is unloaded or reloaded: marker sends and retries stop. */
  abort: AbortController;
}

type Result<T> = { error: TxnError } & Partial<T>;

export class TransactionCoordinator {
  readonly config: TxnCoordinatorConfig;
  private readonly log: TxnStateLog;
  private readonly markers: TxnMarkerSink;
  /** The producer id allocator (also what the idempotent InitProducerId uses on this node). */
  readonly allocateProducerId: () => Promise<bigint>;
  private readonly clock: Clock;
  private readonly retry: { initialMs: number; maxMs: number };
  private readonly logger: Logger;
  private readonly txns = new Map<string, TxnMetadata>();
  private readonly owned = new Map<number, PartitionState>();
  private timers: Timer[] = [];
  private stopped = false;

  constructor(o: TransactionCoordinatorOptions) {
    this.config = { ...defaultTxnCoordinatorConfig, ...o.config };
    this.log = o.log;
    this.markers = o.markers;
    this.allocateProducerId = o.allocateProducerId;
    this.clock = o.clock;
    this.retry = o.retry ?? { initialMs: 100, maxMs: 5000 };
    this.logger = o.logger ?? silentLogger();
  }

  /** Starts the periodic timed-out abort and id expiry. */
  start(): void {
    this.stopped = false;
    const every = (ms: number, fn: () => void) => {
      const tick = () => {
        if (this.stopped) return;
        fn();
        this.timers.push(this.clock.schedule(ms, tick));
      };
      this.timers.push(this.clock.schedule(ms, tick));
    };
    every(this.config['transaction.abort.timed.out.transaction.cleanup.interval.ms'], () => this.abortTimedOutTransactions());
    every(this.config['transaction.remove.expired.transaction.cleanup.interval.ms'], () => this.expireTransactionalIds());
  }

  /**
   * `__transaction_state`'s partition count, as the log says now: the topic's once it exists (its
   * creator's setting), so every node hashes transactional ids alike.
   */
  get partitions(): number {
    return this.log.partitions;
  }

  /** Stops timers and every marker send; the state stays as written. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) t.cancel();
    this.timers = [];
    for (const p of [...this.owned.keys()]) this.unloadPartition(p);
  }

  partitionFor(transactionalId: string): number {
    return partitionForTransactionalId(transactionalId, this.partitions);
  }

  /** The partitions owned here (loaded or loading). */
  ownedPartitions(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  isLoaded(partition: number): boolean {
    return this.owned.get(partition)?.state === 'loaded';
  }

  /**
   * Takes a partition: replays its log, then completes the transactions it finds prepared.
   * `coordinatorEpoch` goes into the markers (brokers refuse markers of an older coordinator).
   * Resolves false when it was unloaded or reloaded meanwhile; a failed load rejects (and leaves
   * the partition unowned).
   */
  async loadPartition(partition: number, coordinatorEpoch = 0): Promise<boolean> {
    this.unloadPartition(partition);
    const ps: PartitionState = { state: 'loading', coordinatorEpoch, abort: new AbortController() };
    this.owned.set(partition, ps);
    try {
      await this.log.load(partition, (key, value) => this.replay(partition, key, value));
    } catch (err) {
      if (this.owned.get(partition) === ps) this.unloadPartition(partition);
      throw err;
    }
    if (this.owned.get(partition) !== ps) return false;
    ps.state = 'loaded';
    for (const txn of this.txns.values()) {
      if (txn.partition !== partition) continue;
      if (txn.state === 'PrepareCommit' || txn.state === 'PrepareAbort') this.sendMarkers(txn, ps);
    }
    this.logger.info({ partition, transactions: this.countIn(partition) }, `loaded ${TRANSACTION_STATE_TOPIC}-${partition}`);
    return true;
  }

  /** Gives a partition up: its transactions are forgotten here, marker sends stop. */
  unloadPartition(partition: number): void {
    const ps = this.owned.get(partition);
    if (!ps) return;
    ps.abort.abort();
    this.owned.delete(partition);
    for (const [id, txn] of this.txns) if (txn.partition === partition) this.txns.delete(id);
  }

  private countIn(partition: number): number {
    let n = 0;
    for (const t of this.txns.values()) if (t.partition === partition) n++;
    return n;
  }

  /** Applies one `__transaction_state` record (loading). Keys of other versions are skipped. */
  replay(partition: number, key: Buffer, value: Buffer | null): void {
    const id = decodeTxnKey(key);
    if (id === null) return;
    if (value === null) {
      this.txns.delete(id);
      return;
    }
    const v = decodeTxnValue(value);
    const prev = this.txns.get(id);
    const txn: TxnMetadata = prev ?? {
      transactionalId: id, partition, producerId: -1n, lastProducerId: -1n, producerEpoch: -1, lastProducerEpoch: -1, timeoutMs: 0,
      state: 'Empty', partitions: new Map(), startMs: -1, lastUpdateMs: -1, pending: null, completing: false,
    };
    this.apply(txn, v);
    txn.lastProducerEpoch = -1;
    this.txns.set(id, txn);
  }

  private apply(txn: TxnMetadata, v: TxnLogValue): void {
    if (v.producerId !== txn.producerId && txn.producerId >= 0n) txn.lastProducerId = txn.producerId;
    txn.producerId = v.producerId;
    txn.producerEpoch = v.producerEpoch;
    txn.timeoutMs = v.transactionTimeoutMs;
    txn.state = v.state;
    txn.partitions = new Map(v.partitions.map((tp) => [tp.topic, new Set(tp.partitions)]));
    txn.startMs = Number(v.startTimestampMs);
    txn.lastUpdateMs = Number(v.lastUpdateTimestampMs);
  }

  /** A transactional id's state (tests, DescribeTransactions). */
  get(transactionalId: string): TxnMetadata | undefined {
    return this.txns.get(transactionalId);
  }

  private check(transactionalId: string): TxnError {
    if (transactionalId === '') return 'INVALID_REQUEST';
    const ps = this.owned.get(this.partitionFor(transactionalId));
    if (!ps) return 'NOT_COORDINATOR';
    if (ps.state === 'loading') return 'COORDINATOR_LOAD_IN_PROGRESS';
    return 'NONE';
  }

  private value(txn: TxnMetadata, change: Partial<Omit<TxnLogValue, 'partitions'>> & { partitions?: Map<string, Set<number>> }): TxnLogValue {
    const parts = change.partitions ?? txn.partitions;
    return {
      producerId: change.producerId ?? txn.producerId,
      producerEpoch: change.producerEpoch ?? txn.producerEpoch,
      transactionTimeoutMs: change.transactionTimeoutMs ?? txn.timeoutMs,
      state: change.state ?? txn.state,
      partitions: [...parts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([topic, ps]) => ({ topic, partitions: [...ps].sort((a, b) => a - b) })),
      lastUpdateTimestampMs: change.lastUpdateTimestampMs ?? BigInt(this.clock.now()),
      startTimestampMs: change.startTimestampMs ?? BigInt(txn.startMs),
    };
  }

  /**
   * Writes `target` for `txn` and applies it once durable. Errors: the partition moved away
   * (NOT_COORDINATOR: also when it was unloaded or reloaded while the append ran) or the log is
   * unavailable now (COORDINATOR_NOT_AVAILABLE, retriable), as Kafka maps append errors.
   */
  private async write(txn: TxnMetadata, target: TxnLogValue | null): Promise<TxnError> {
    const ps = this.owned.get(txn.partition);
    if (!ps) return 'NOT_COORDINATOR';
    txn.pending = target?.state ?? 'Dead';
    try {
      await this.log.append(txn.partition, [{ key: encodeTxnKey(txn.transactionalId), value: target === null ? null : encodeTxnValue(target) }]);
    } catch (err) {
      txn.pending = null;
      const code = (err as { code?: unknown }).code;
      this.logger.warn({ transactionalId: txn.transactionalId, err: (err as Error).message }, `appending to ${TRANSACTION_STATE_TOPIC}-${txn.partition} failed`);
      return code === 'NOT_COORDINATOR' ? 'NOT_COORDINATOR' : 'COORDINATOR_NOT_AVAILABLE';
    }
    txn.pending = null;
    if (this.owned.get(txn.partition) !== ps) return 'NOT_COORDINATOR';
    if (target === null) this.txns.delete(txn.transactionalId);
    else this.apply(txn, target);
    return 'NONE';
  }

  private newTxn(transactionalId: string, producerId: bigint, timeoutMs: number): TxnMetadata {
    return {
      transactionalId, partition: this.partitionFor(transactionalId), producerId, lastProducerId: -1n, producerEpoch: -1, lastProducerEpoch: -1,
      timeoutMs, state: 'Empty', partitions: new Map(), startMs: -1, lastUpdateMs: this.clock.now(), pending: null, completing: false,
    };
  }

  /**
   * InitProducerId with a transactional id (Kafka's handleInitProducerId): a new id gets a
   * producer id at epoch 0; a known one gets its epoch bumped, which fences the older producer.
   * An Ongoing transaction is aborted first (its epoch bumped and PrepareAbort written) and the
   * caller is told CONCURRENT_TRANSACTIONS, to retry once the abort completed. KIP-360: a producer
   * that sends its id and epoch is fenced (PRODUCER_FENCED) unless they are current, or the
   * previous epoch (a retry of a bump it never saw answered).
   */
  async initProducerId(req: InitProducerIdRequest): Promise<{ error: TxnError; producerId: bigint; producerEpoch: number }> {
    const fail = (error: TxnError) => ({ error, producerId: -1n, producerEpoch: -1 });
    const checked = this.check(req.transactionalId);
    if (checked !== 'NONE') return fail(checked);
    if (req.transactionTimeoutMs <= 0 || req.transactionTimeoutMs > this.config['transaction.max.timeout.ms']) return fail('INVALID_TRANSACTION_TIMEOUT');
    let txn = this.txns.get(req.transactionalId);
    if (!txn) {
      let producerId: bigint;
      try {
        producerId = await this.allocateProducerId();
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'allocating a producer id failed');
        return fail('COORDINATOR_NOT_AVAILABLE');
      }
      const again = this.check(req.transactionalId);
      if (again !== 'NONE') return fail(again);
      txn = this.txns.get(req.transactionalId);
      if (!txn) {
        txn = this.newTxn(req.transactionalId, producerId, req.transactionTimeoutMs);
        this.txns.set(req.transactionalId, txn);
      }
    }
    if (txn.pending !== null || txn.completing && txn.state !== 'CompleteCommit' && txn.state !== 'CompleteAbort') return fail('CONCURRENT_TRANSACTIONS');
    const expected = req.producerId >= 0n ? { producerId: req.producerId, epoch: req.producerEpoch } : null;
    if (expected !== null) {
      const valid = txn.producerEpoch === -1 || expected.producerId === txn.producerId
        || (expected.producerId === txn.lastProducerId && epochExhausted(expected.epoch));
      if (!valid) return fail('PRODUCER_FENCED');
    }
    switch (txn.state) {
      case 'PrepareCommit':
      case 'PrepareAbort':
      case 'PrepareEpochFence':
      case 'Dead':
        return fail('CONCURRENT_TRANSACTIONS');
      case 'Ongoing': {
        const error = await this.fenceAndAbort(txn);
        return fail(error === 'NONE' ? 'CONCURRENT_TRANSACTIONS' : error);
      }
      default:
    }
    const now = BigInt(this.clock.now());
    let producerId = txn.producerId;
    let epoch: number;
    let lastEpoch: number;
    if (epochExhausted(txn.producerEpoch) && (expected === null || expected.epoch === txn.producerEpoch)) {
      try {
        producerId = await this.allocateProducerId();
      } catch {
        return fail('COORDINATOR_NOT_AVAILABLE');
      }
      if (txn.pending !== null) return fail('CONCURRENT_TRANSACTIONS');
      epoch = 0;
      lastEpoch = -1;
    } else if (expected === null || txn.producerEpoch === -1 || expected.epoch === txn.producerEpoch) {
      // A new producer (no expectation) or one continuing after an error: bump.
      lastEpoch = expected === null ? -1 : txn.producerEpoch;
      epoch = txn.producerEpoch + 1;
    } else if (expected.epoch === txn.lastProducerEpoch) {
      // A retry of a bump that succeeded: the current epoch again.
      lastEpoch = txn.lastProducerEpoch;
      epoch = txn.producerEpoch;
    } else {
      return fail('PRODUCER_FENCED');
    }
    const error = await this.write(txn, this.value(txn, {
      producerId, producerEpoch: epoch, transactionTimeoutMs: req.transactionTimeoutMs, state: 'Empty',
      partitions: new Map(), startTimestampMs: -1n, lastUpdateTimestampMs: now,
    }));
    if (error !== 'NONE') return fail(error);
    txn.lastProducerEpoch = lastEpoch;
    return { error: 'NONE', producerId: txn.producerId, producerEpoch: txn.producerEpoch };
  }

  /** The checks every request of a running producer passes (Kafka's order). */
  private producerCheck(req: TxnRequestBase): { error: TxnError; txn?: TxnMetadata } {
    const checked = this.check(req.transactionalId);
    if (checked !== 'NONE') return { error: checked };
    const txn = this.txns.get(req.transactionalId);
    if (!txn || txn.producerId !== req.producerId) return { error: 'INVALID_PRODUCER_ID_MAPPING' };
    if (txn.producerEpoch !== req.producerEpoch) return { error: 'PRODUCER_FENCED' };
    if (txn.pending !== null) return { error: 'CONCURRENT_TRANSACTIONS' };
    return { error: 'NONE', txn };
  }

  /**
   * AddPartitionsToTxn (and AddOffsetsToTxn): the partitions join the transaction, which becomes
   * Ongoing (its timeout runs from the first add). Partitions already in an Ongoing transaction
   * are answered at once, without a write.
   */
  async addPartitions(req: TxnRequestBase & { partitions: readonly TopicPartition[] }): Promise<TxnError> {
    const { error, txn } = this.producerCheck(req);
    if (!txn) return error;
    if (txn.state === 'PrepareCommit' || txn.state === 'PrepareAbort' || txn.state === 'PrepareEpochFence') return 'CONCURRENT_TRANSACTIONS';
    if (txn.state === 'Dead') return 'INVALID_PRODUCER_ID_MAPPING';
    const ongoing = txn.state === 'Ongoing';
    if (ongoing && req.partitions.every((tp) => txn.partitions.get(tp.topic)?.has(tp.partition))) return 'NONE';
    const parts = new Map<string, Set<number>>();
    if (ongoing) for (const [t, ps] of txn.partitions) parts.set(t, new Set(ps));
    for (const tp of req.partitions) {
      let s = parts.get(tp.topic);
      if (!s) parts.set(tp.topic, (s = new Set()));
      s.add(tp.partition);
    }
    const now = BigInt(this.clock.now());
    return this.write(txn, this.value(txn, { state: 'Ongoing', partitions: parts, startTimestampMs: ongoing ? BigInt(txn.startMs) : now, lastUpdateTimestampMs: now }));
  }

  /**
   * KIP-890 part 1 verification (AddPartitionsToTxn v4+ `verifyOnly`): is each partition in the
   * producer's Ongoing transaction? Nothing is written. A partition not in it: INVALID_TXN_STATE.
   */
  verifyPartitions(req: TxnRequestBase & { partitions: readonly TopicPartition[] }): { error: TxnError; partitions: { topic: string; partition: number; error: TxnError }[] } {
    const { error, txn } = this.producerCheck(req);
    const each = (e: (tp: TopicPartition) => TxnError) => req.partitions.map((tp) => ({ topic: tp.topic, partition: tp.partition, error: e(tp) }));
    if (!txn) return { error, partitions: each(() => error) };
    return {
      error: 'NONE',
      partitions: each((tp) => (txn.state === 'Ongoing' && txn.partitions.get(tp.topic)?.has(tp.partition) ? 'NONE' : 'INVALID_TXN_STATE')),
    };
  }

  /** AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction. */
  addOffsets(req: TxnRequestBase & { groupId: string }): Promise<TxnError> {
    const partition = partitionForGroup(req.groupId, this.config['offsets.topic.num.partitions']);
    return this.addPartitions({ ...req, partitions: [{ topic: OFFSETS_TOPIC, partition }] });
  }

  /**
   * EndTxn (Kafka's handleEndTransaction from a client): an Ongoing transaction becomes
   * PrepareCommit/PrepareAbort, answered once durable; the markers follow. A retry of an end
   * that completed answers NONE, one still sending markers CONCURRENT_TRANSACTIONS, the opposite
   * decision INVALID_TXN_STATE.
   */
  async endTxn(req: TxnRequestBase & { commit: boolean }): Promise<TxnError> {
    const { error, txn } = this.producerCheck(req);
    if (!txn) return error;
    return this.end(txn, req.commit);
  }

  private async end(txn: TxnMetadata, commit: boolean): Promise<TxnError> {
    switch (txn.state) {
      case 'Ongoing':
        break;
      case 'CompleteCommit':
        return commit ? 'NONE' : 'INVALID_TXN_STATE';
      case 'CompleteAbort':
        return commit ? 'INVALID_TXN_STATE' : 'NONE';
      case 'PrepareCommit':
        return commit ? 'CONCURRENT_TRANSACTIONS' : 'INVALID_TXN_STATE';
      case 'PrepareAbort':
        return commit ? 'INVALID_TXN_STATE' : 'CONCURRENT_TRANSACTIONS';
      case 'PrepareEpochFence':
        return 'CONCURRENT_TRANSACTIONS';
      case 'Empty':
      case 'Dead':
        return 'INVALID_TXN_STATE';
    }
    const error = await this.write(txn, this.value(txn, { state: commit ? 'PrepareCommit' : 'PrepareAbort' }));
    if (error === 'NONE') {
      const ps = this.owned.get(txn.partition);
      if (ps) this.sendMarkers(txn, ps);
    }
    return error;
  }

  /**
   * Kafka's prepareFenceProducerEpoch + abort: the epoch goes up by one (the old producer is
   * fenced from then on) in the same PrepareAbort record, then the markers follow.
   */
  private async fenceAndAbort(txn: TxnMetadata): Promise<TxnError> {
    const epoch = Math.min(txn.producerEpoch + 1, MAX_PRODUCER_EPOCH);
    const error = await this.write(txn, this.value(txn, { state: 'PrepareAbort', producerEpoch: epoch }));
    if (error !== 'NONE') return error;
    txn.lastProducerEpoch = -1;
    const ps = this.owned.get(txn.partition);
    if (ps) this.sendMarkers(txn, ps);
    return 'NONE';
  }

  /**
   * Markers for a prepared transaction, then CompleteCommit/CompleteAbort. Partitions that
   * acknowledged leave the transaction (DescribeTransactions shows what is left, as Kafka's);
   * retriable failures are retried with backoff while the partition stays ours. A partition whose
   * topic is gone (UNKNOWN_TOPIC_OR_PARTITION) is dropped; a broker that says this coordinator or
   * epoch is stale (TRANSACTION_COORDINATOR_FENCED, INVALID_PRODUCER_EPOCH) stops the sending,
   * as Kafka's TransactionMarkerRequestCompletionHandler does: a newer coordinator owns it.
   */
  private sendMarkers(txn: TxnMetadata, ps: PartitionState): void {
    if (txn.completing) return;
    txn.completing = true;
    const commit = txn.state === 'PrepareCommit';
    const producerId = txn.producerId;
    const producerEpoch = txn.producerEpoch;
    let delay = this.retry.initialMs;
    const current = () => !ps.abort.signal.aborted && !this.stopped && this.txns.get(txn.transactionalId) === txn;
    const later = (fn: () => void) => {
      const d = delay;
      delay = Math.min(delay * 2, this.retry.maxMs);
      this.clock.schedule(d, () => {
        if (current()) fn();
        else txn.completing = false;
      });
    };
    const complete = async (): Promise<void> => {
      const error = await this.write(txn, this.value(txn, { state: commit ? 'CompleteCommit' : 'CompleteAbort', partitions: new Map() }));
      if (error === 'NONE') {
        txn.completing = false;
        this.logger.debug({ transactionalId: txn.transactionalId, commit }, 'transaction completed');
      } else if (error === 'NOT_COORDINATOR' || !current()) txn.completing = false;
      else later(() => void complete());
    };
    const attempt = async (): Promise<void> => {
      const partitions: TopicPartition[] = [];
      for (const [topic, ids] of txn.partitions) for (const partition of ids) partitions.push({ topic, partition });
      if (partitions.length === 0) return complete();
      let results: { topic: string; partition: number; error: string | null }[];
      try {
        results = await this.markers.write({ producerId, producerEpoch, coordinatorEpoch: ps.coordinatorEpoch, commit, partitions }, ps.abort.signal);
      } catch (err) {
        this.logger.warn({ transactionalId: txn.transactionalId, err: (err as Error).message }, 'writing transaction markers failed; retrying');
        results = [];
      }
      if (!current()) {
        txn.completing = false;
        return;
      }
      for (const r of results) {
        if (r.error === 'TRANSACTION_COORDINATOR_FENCED' || r.error === 'INVALID_PRODUCER_EPOCH') {
          this.logger.warn({ transactionalId: txn.transactionalId, topic: r.topic, partition: r.partition, error: r.error }, 'transaction marker refused: a newer coordinator or producer epoch exists; not retrying');
          txn.completing = false;
          return;
        }
        if (r.error !== null && r.error !== 'UNKNOWN_TOPIC_OR_PARTITION') continue;
        if (r.error !== null) this.logger.warn({ transactionalId: txn.transactionalId, topic: r.topic, partition: r.partition }, 'the partition no longer exists: no marker written');
        const ids = txn.partitions.get(r.topic);
        ids?.delete(r.partition);
        if (ids?.size === 0) txn.partitions.delete(r.topic);
      }
      if (txn.partitions.size === 0) return complete();
      later(() => void attempt());
    };
    void attempt();
  }

  /** Kafka's abortTimedOutTransactions: Ongoing past its timeout → epoch bumped and aborted. */
  abortTimedOutTransactions(): void {
    const now = this.clock.now();
    for (const txn of this.txns.values()) {
      if (!this.isLoaded(txn.partition) || txn.pending !== null || txn.state !== 'Ongoing') continue;
      if (txn.startMs + txn.timeoutMs >= now) continue;
      this.logger.info({ transactionalId: txn.transactionalId, producerId: txn.producerId, timeoutMs: txn.timeoutMs }, 'aborting a transaction past its timeout');
      void this.fenceAndAbort(txn);
    }
  }

  /** Kafka's removeExpiredTransactionalIds: idle past transactional.id.expiration.ms → tombstone. */
  expireTransactionalIds(): void {
    const now = this.clock.now();
    const expiry = this.config['transactional.id.expiration.ms'];
    for (const txn of this.txns.values()) {
      if (!this.isLoaded(txn.partition) || txn.pending !== null || txn.completing) continue;
      if (txn.state !== 'Empty' && txn.state !== 'CompleteCommit' && txn.state !== 'CompleteAbort') continue;
      if (txn.lastUpdateMs + expiry > now) continue;
      this.logger.info({ transactionalId: txn.transactionalId }, 'transactional id expired');
      void this.write(txn, null);
    }
  }

  /** DescribeTransactions: each id's state, TRANSACTIONAL_ID_NOT_FOUND for an unknown one. */
  describe(ids: readonly string[]): DescribedTransaction[] {
    return ids.map((transactionalId) => {
      const none = (error: TxnError): DescribedTransaction => ({ error, transactionalId, state: '', timeoutMs: 0, startMs: -1, producerId: -1n, producerEpoch: -1, partitions: [] });
      const checked = this.check(transactionalId);
      if (checked !== 'NONE') return none(checked === 'INVALID_REQUEST' ? 'TRANSACTIONAL_ID_NOT_FOUND' : checked);
      const txn = this.txns.get(transactionalId);
      if (!txn) return none('TRANSACTIONAL_ID_NOT_FOUND');
      return {
        error: 'NONE', transactionalId, state: txn.state, timeoutMs: txn.timeoutMs, startMs: txn.startMs,
        producerId: txn.producerId, producerEpoch: txn.producerEpoch,
        partitions: [...txn.partitions].map(([topic, ps]) => ({ topic, partitions: [...ps].sort((a, b) => a - b) })),
      };
    });
  }

  /**
   * ListTransactions: the transactions of the loaded partitions, filtered by state (unknown state
   * names are answered back), producer id and, when `durationMs` ≥ 0, running longer than that.
   * COORDINATOR_LOAD_IN_PROGRESS while a partition loads, as Kafka's.
   */
  list(filter: { states: readonly string[]; producerIds: readonly bigint[]; durationMs: bigint }): { error: TxnError; unknownStates: string[]; transactions: ListedTransaction[] } {
    const known = new Set<string>(TXN_STATES);
    const unknownStates = filter.states.filter((s) => !known.has(s));
    for (const ps of this.owned.values()) if (ps.state === 'loading') return { error: 'COORDINATOR_LOAD_IN_PROGRESS', unknownStates, transactions: [] };
    const states = new Set(filter.states);
    const ids = new Set(filter.producerIds);
    const now = this.clock.now();
    const transactions: ListedTransaction[] = [];
    for (const txn of this.txns.values()) {
      if (!this.isLoaded(txn.partition)) continue;
      if (states.size > 0 && !states.has(txn.state)) continue;
      if (ids.size > 0 && !ids.has(txn.producerId)) continue;
      if (filter.durationMs >= 0n && (txn.startMs < 0 || BigInt(now - txn.startMs) <= filter.durationMs)) continue;
      transactions.push({ transactionalId: txn.transactionalId, producerId: txn.producerId, state: txn.state });
    }
    return { error: 'NONE', unknownStates, transactions };
  }
}
