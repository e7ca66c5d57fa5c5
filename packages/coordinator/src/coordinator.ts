import { RunnelError, silentLogger, TRANSACTION_STATE_TOPIC, type Logger } from '@runnel/common';
import type { Handler } from '@runnel/kafka-server';
import { systemClock, type Clock } from './clock.ts';
import {
  GroupCoordinator,
  type GroupCoordinatorConfig,
  type LagRow,
  type Outcome,
} from './group-coordinator.ts';
import { coordinatorHandlers } from './handlers.ts';
import type { OffsetsLog, TxnMarker } from './offsets-log.ts';
import type { TopicLookup } from './consumer-group.ts';
import type { OffsetsRecord } from './records.ts';
import { TransactionCoordinator, type TxnCoordinatorConfig, type TxnMarkerSink } from './txn-coordinator.ts';

/**
 * `NOT_COORDINATOR`: thrown by an OffsetsLog whose partition moved away (clients are told
 * NOT_COORDINATOR and look the coordinator up again); `UNAVAILABLE`: the log cannot be reached
 * right now (its broker is down or moving; clients are told COORDINATOR_NOT_AVAILABLE and retry);
 * `LOAD_FAILED`: a partition could not be read; `APPEND_TIMEOUT`: an append took longer than
 * `offsets.commit.timeout.ms`.
 */
export type CoordinatorErrorCode = 'NOT_COORDINATOR' | 'UNAVAILABLE' | 'LOAD_FAILED' | 'APPEND_TIMEOUT';

/** Failures of the coordinator runtime (not group errors, which are answers, not exceptions). */
export class CoordinatorError extends RunnelError<CoordinatorErrorCode> {}

/** A node serving coordinator handlers: what FindCoordinator answers. */
export interface CoordinatorAddress {
  nodeId: number;
  host: string;
  port: number;
}

export interface CoordinatorOptions {
  /** Kafka-named settings; `offsets.topic.num.partitions` is taken from the offsets log. */
  config?: Partial<GroupCoordinatorConfig>;
  offsetsLog: OffsetsLog;
  /** The process serving these handlers (FindCoordinator points clients here). */
  self?: () => CoordinatorAddress;
  /**
   * Where the owner of a partition this coordinator does not own is (a cluster's metadata), so
   * FindCoordinator sent to the wrong node redirects the client; null = nobody serves it now.
   * Without it, groups of partitions not owned here answer COORDINATOR_NOT_AVAILABLE.
   */
  locate?: (partition: number) => CoordinatorAddress | null;
  /**
   * Partitions this coordinator owns at start; default: all of them (single node). A cluster
   * passes [] and follows metadata with {@link Coordinator.setOwned}.
   */
  ownedPartitions?: readonly number[];
  /** Backoff between attempts to load a partition owned through setOwned: doubles from initialMs to maxMs. */
  loadRetry?: { initialMs: number; maxMs: number };
  /**
   * How long partitions may keep failing to load (their brokers not up yet) before one error line
   * says so; default 60000. Until then the wait is one info line, whatever the number of
   * partitions and retries; loading goes on after the error too.
   */
  loadWaitErrorMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** The cluster's topics, for KIP-848 consumer groups' server-side assignment (see topicLookup). */
  topics?: TopicLookup;
  /** Serve the transaction coordinator too (its state in `__transaction_state`); absent: transactions are not served. */
  transactions?: CoordinatorTransactionsOptions;
}

/**
 * The transaction coordinator inside a Coordinator runtime. It owns `__transaction_state`
 * partition q exactly when this runtime owns `__consumer_offsets` partition
 * q % offsets.topic.num.partitions, so ownership needs nothing more from the controller.
 */
export interface CoordinatorTransactionsOptions {
  /** `__transaction_state` (an OffsetsLog over that topic); its partition count is the topic's. */
  log: OffsetsLog;
  /** Where COMMIT/ABORT markers go (partition leaders, and group coordinators for `__consumer_offsets`). */
  markers: TxnMarkerSink;
  /** The producer id allocator idempotent producers use too. */
  allocateProducerId: () => Promise<bigint>;
  config?: Partial<TxnCoordinatorConfig>;
  /**
   * `__transaction_state` is created lazily, as in Kafka: `exists` says whether it is there,
   * `create` makes it (through the metadata store). Absent: it is taken to exist.
   */
  topic?: { exists(): boolean; create(): Promise<void> };
  /** The coordinator epoch of a `__consumer_offsets` partition, carried by the markers (brokers fence older ones); default 0. */
  coordinatorEpoch?: (offsetsPartition: number) => number;
}

/**
 * The coordinator runtime: a {@link GroupCoordinator} state machine plus the I/O around it. It
 * loads the owned `__consumer_offsets` partitions through the state machine's `replay`, appends
 * each operation's records before releasing its response, and appends the records that timers
 * produce (expiry, groups becoming Empty).
 *
 * Lifecycle: `create` does no I/O; `start` loads the owned partitions (groups answer
 * COORDINATOR_LOAD_IN_PROGRESS meanwhile) and starts the offset-expiry timer; `stop` cancels every
 * timer, answers waiting members NOT_COORDINATOR and waits for appends in flight.
 */
export class Coordinator {
  readonly machine: GroupCoordinator;
  readonly offsetsLog: OffsetsLog;
  /** The transaction coordinator, when this runtime serves transactions (options.transactions). */
  readonly transactions: TransactionCoordinator | undefined;
  readonly #txn: CoordinatorTransactionsOptions | undefined;
  /** The running creation of `__transaction_state` (one at a time). */
  #creatingTxnTopic: Promise<void> | null = null;
  readonly logger: Logger;
  /** The cluster's topics from metadata (absent in unit tests: then every partition is taken as known). */
  readonly topics: TopicLookup | undefined;
  readonly #self: (() => CoordinatorAddress) | undefined;
  readonly #locate: ((partition: number) => CoordinatorAddress | null) | undefined;
  readonly #loadRetry: { initialMs: number; maxMs: number };
  /** The partitions this coordinator should own (loaded, loading, or waiting to retry a load). */
  readonly #owned = new Set<number>();
  /** Bumped each time a partition is taken on or given up: a retry loop of an older ownership stops. */
  readonly #ownership = new Map<number, number>();
  /** The load running per partition; a load whose token is no longer here was superseded (unload, reload). */
  readonly #loading = new Map<number, number>();
  #loadSeq = 0;
  /** Backoff sleeps in progress, woken early by stop(). */
  readonly #sleeps = new Set<() => void>();
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #clock: Clock;
  #started = false;
  readonly #loadWaitErrorMs: number;
  /**
   * The current wait for unreadable partitions (null: none): when it began, the partitions that
   * failed and are still owned with the last reason each, how many waited in all, and the timer of
   * its error line. One wait logs one info line when it begins, one when it ends, and at most one
   * error (per-partition failures are debug), so a coordinator started before its brokers does not
   * log a warning per partition per retry.
   */
  #wait: { since: number; failing: Map<number, string>; count: number; timer: { cancel(): void } } | null = null;

  private constructor(options: CoordinatorOptions) {
    this.offsetsLog = options.offsetsLog;
    this.topics = options.topics;
    this.logger = options.logger ?? silentLogger();
    this.#self = options.self;
    this.#locate = options.locate;
    this.#loadRetry = options.loadRetry ?? { initialMs: 200, maxMs: 5000 };
    this.#loadWaitErrorMs = options.loadWaitErrorMs ?? 60_000;
    for (const p of options.ownedPartitions ?? Array.from({ length: options.offsetsLog.partitions }, (_, i) => i)) this.#owned.add(p);
    const clock = options.clock ?? systemClock;
    this.#clock = clock;
    const logger = this.logger;
    this.machine = new GroupCoordinator({
      // A timer callback that throws is a bug in one group; log it rather than take the process down.
      clock: {
        now: () => clock.now(),
        schedule: (delayMs, fn) =>
          clock.schedule(delayMs, () => {
            try {
              fn();
            } catch (err) {
              logger.error({ err }, 'group coordinator timer failed');
            }
          }),
      },
      config: { ...options.config, 'offsets.topic.num.partitions': options.offsetsLog.partitions },
      onRecords: (records) => this.#appendBackground(records),
      ...(options.topics ? { topics: options.topics } : {}),
    });
    this.#txn = options.transactions;
    this.transactions = options.transactions && new TransactionCoordinator({
      log: options.transactions.log,
      markers: options.transactions.markers,
      allocateProducerId: options.transactions.allocateProducerId,
      clock,
      config: { ...options.transactions.config, 'offsets.topic.num.partitions': options.offsetsLog.partitions },
      logger: logger.child({ component: 'transactions' }),
    });
  }

  static create(options: CoordinatorOptions): Coordinator {
    return new Coordinator(options);
  }

  get started(): boolean {
    return this.#started;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    try {
      await Promise.all([...this.#owned].map((p) => this.loadPartition(p)));
    } catch (err) {
      this.#started = false;
      this.machine.shutdown();
      throw err;
    }
    this.machine.startExpiry();
    this.logger.info({ partitions: this.#owned.size }, 'group coordinator loaded');
    if (this.transactions) {
      this.transactions.start();
      this.#loadTxnPartitions([...this.#owned]);
    }
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    for (const wake of [...this.#sleeps]) wake();
    this.#wait?.timer.cancel();
    this.#wait = null;
    this.#loading.clear();
    this.machine.shutdown();
    this.transactions?.stop();
    // Let appends in flight finish, but never hang a shutdown on a stuck log (real time here: the
    // injected clock may be a test's manual one).
    const limit = this.machine.config['offsets.commit.timeout.ms'];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#inflight]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, limit);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * Loads one partition through replay (one attempt; groups answer COORDINATOR_LOAD_IN_PROGRESS
   * meanwhile). Resolves true once loaded, false when an unload or a newer load superseded this
   * one (its records are then dropped); rejects LOAD_FAILED when the log could not be read.
   */
  async loadPartition(partition: number): Promise<boolean> {
    const began = Date.now();
    const token = ++this.#loadSeq;
    this.#loading.set(partition, token);
    const current = () => this.#loading.get(partition) === token;
    this.machine.beginLoad(partition);
    try {
      await this.offsetsLog.load(partition, (key, value, producerId) => {
        // A superseded load must not put groups back into a partition given up meanwhile.
        if (!current()) return;
        try {
          this.machine.replay(partition, key, value, producerId);
        } catch (err) {
          // One unreadable record must not make the whole partition unusable: skip it, loudly.
          this.logger.warn({ partition, err }, 'skipping an unreadable __consumer_offsets record');
        }
      }, (producerId, commit) => {
        if (current()) this.machine.completeTxn(partition, producerId, commit);
      });
    } catch (err) {
      if (current()) {
        this.#loading.delete(partition);
        this.machine.unload(partition);
      }
      throw new CoordinatorError('LOAD_FAILED', `loading __consumer_offsets-${partition} failed: ${(err as Error).message}`, { cause: err, retriable: true });
    }
    if (!current()) return false;
    this.#loading.delete(partition);
    this.machine.completeLoad(partition);
    this.logger.debug({ partition, ms: Date.now() - began }, 'loaded __consumer_offsets partition');
    return true;
  }

  /** Gives up one partition: its groups are dropped and their waiting members told NOT_COORDINATOR. */
  unloadPartition(partition: number): void {
    this.#loading.delete(partition);
    this.machine.unload(partition);
  }

  /** The partitions this coordinator owns (loaded, loading or retrying a load), ascending. */
  owned(): number[] {
    return [...this.#owned].sort((a, b) => a - b);
  }

  /**
   * Follows a changing assignment (a cluster's metadata): partitions no longer in `partitions` are
   * unloaded at once (waiting members get NOT_COORDINATOR); new ones are loaded, and a load that
   * fails is retried with backoff for as long as the partition stays owned (its groups answer
   * COORDINATOR_LOAD_IN_PROGRESS meanwhile). Call after `start`; before it, this only sets what
   * `start` loads. Resolves when every partition it took on has loaded or was given up again.
   */
  setOwned(partitions: Iterable<number>): Promise<void> {
    const next = new Set(partitions);
    const givenUp: number[] = [];
    for (const p of [...this.#owned]) {
      if (next.has(p)) continue;
      this.#owned.delete(p);
      this.#ownership.set(p, (this.#ownership.get(p) ?? 0) + 1);
      if (this.#started) {
        this.unloadPartition(p);
        for (const q of this.#txnPartitionsOf([p])) this.transactions!.unloadPartition(q);
        givenUp.push(p);
      }
    }
    // One line per change, not one per partition (50 by default).
    if (givenUp.length > 0) this.logger.info({ partitions: givenUp.sort((a, b) => a - b) }, 'gave up __consumer_offsets partitions');
    const loads: Promise<number | null>[] = [];
    const taken: number[] = [];
    for (const p of next) {
      if (this.#owned.has(p)) continue;
      this.#owned.add(p);
      taken.push(p);
      const generation = (this.#ownership.get(p) ?? 0) + 1;
      this.#ownership.set(p, generation);
      if (this.#started) loads.push(this.#loadWhileOwned(p, generation));
    }
    if (this.#started) this.#loadTxnPartitions(taken);
    return Promise.all(loads).then((done) => {
      const loaded = done.filter((p) => p !== null).sort((a, b) => a - b);
      if (loaded.length > 0) this.logger.info({ partitions: loaded }, 'took over __consumer_offsets partitions');
    });
  }

  /**
   * Topics deleted from metadata (its `topic-deleted` event, which the Redis store also sends when
   * a name comes back under a new topic id): their committed offsets are tombstoned in every loaded
   * group (GroupCoordinator.deleteTopicOffsets, Kafka's onPartitionsDeleted), appended in the
   * background like expiry's. `runnel start` and CoordinatorNode call it from their metadata
   * subscription. Groups of a partition still loading keep them, as in Kafka.
   */
  topicsDeleted(topics: Iterable<string>): void {
    if (!this.#started) return;
    const names = new Set(topics);
    const records = this.machine.deleteTopicOffsets(names);
    if (records.length > 0) this.logger.info({ topics: [...names], tombstones: records.length }, 'removed the committed offsets of deleted topics');
  }

  /** Cuts short the backoff of every load waiting to retry (the partition's leader just came back, say). */
  retryLoadsNow(): void {
    for (const wake of [...this.#sleeps]) wake();
  }

  /** Where FindCoordinator sends clients; undefined when no `self` was given. */
  self(): CoordinatorAddress | undefined {
    return this.#self?.();
  }

  /**
   * The coordinator of a group: this node when it owns (or is loading) the group's partition,
   * else the owner `locate` names, else COORDINATOR_NOT_AVAILABLE.
   */
  locate(groupId: string): CoordinatorAddress | { error: 'COORDINATOR_NOT_AVAILABLE'; message: string } {
    const node = this.#self?.();
    if (!this.#started || node === undefined) return { error: 'COORDINATOR_NOT_AVAILABLE', message: 'the group coordinator is not running' };
    const partition = this.machine.partitionFor(groupId);
    // Loading partitions still point here: the client then waits on COORDINATOR_LOAD_IN_PROGRESS.
    if (this.#owned.has(partition)) return node;
    const owner = this.#locate?.(partition) ?? null;
    if (owner === null) return { error: 'COORDINATOR_NOT_AVAILABLE', message: `no coordinator for __consumer_offsets-${partition} here` };
    return owner;
  }

  /**
   * The transaction coordinator of a transactional id (FindCoordinator key type 1): this node when
   * it owns the id's `__transaction_state` partition, else its owner per `locate`. While
   * `__transaction_state` does not exist this starts its creation (Kafka creates it on the first
   * such lookup) and answers COORDINATOR_NOT_AVAILABLE: the client asks again.
   */
  locateTransaction(transactionalId: string): CoordinatorAddress | { error: 'COORDINATOR_NOT_AVAILABLE'; message: string } {
    const node = this.#self?.();
    const tc = this.transactions;
    if (!this.#started || node === undefined || tc === undefined) return { error: 'COORDINATOR_NOT_AVAILABLE', message: 'the transaction coordinator is not running' };
    if (this.#txn?.topic && !this.#txn.topic.exists()) {
      void this.ensureTransactionState().catch(() => {});
      return { error: 'COORDINATOR_NOT_AVAILABLE', message: `${TRANSACTION_STATE_TOPIC} is being created` };
    }
    const partition = tc.partitionFor(transactionalId) % this.offsetsLog.partitions;
    if (this.#owned.has(partition)) return node;
    const owner = this.#locate?.(partition) ?? null;
    if (owner === null) return { error: 'COORDINATOR_NOT_AVAILABLE', message: `no coordinator for __consumer_offsets-${partition} here` };
    return owner;
  }

  /**
   * Creates `__transaction_state` if it is missing (once; concurrent callers share the attempt)
   * and loads the partitions this node owns. Rejects when the creation failed (the next lookup
   * tries again).
   */
  ensureTransactionState(): Promise<void> {
    const topic = this.#txn?.topic;
    if (!topic || topic.exists()) return Promise.resolve();
    this.#creatingTxnTopic ??= topic.create().then(
      () => {
        this.#creatingTxnTopic = null;
        this.logger.info({ partitions: this.transactions?.partitions }, `created ${TRANSACTION_STATE_TOPIC}`);
        this.#loadTxnPartitions([...this.#owned]);
      },
      (err: unknown) => {
        this.#creatingTxnTopic = null;
        this.logger.warn({ err }, `creating ${TRANSACTION_STATE_TOPIC} failed; the next FindCoordinator tries again`);
        throw err;
      },
    );
    return this.#creatingTxnTopic;
  }

  /**
   * Loads the `__transaction_state` partitions of the offsets partitions owned here that are not
   * loaded yet: for a node that learns from metadata that another node created the topic.
   */
  loadTransactionState(): void {
    if (this.#started) this.#loadTxnPartitions([...this.#owned]);
  }

  /** The `__transaction_state` partitions that go with these `__consumer_offsets` partitions. */
  #txnPartitionsOf(offsetsPartitions: readonly number[]): number[] {
    const tc = this.transactions;
    if (!tc) return [];
    const n = this.offsetsLog.partitions;
    const wanted = new Set(offsetsPartitions);
    const out: number[] = [];
    for (let q = 0; q < tc.partitions; q++) if (wanted.has(q % n)) out.push(q);
    return out;
  }

  /**
   * Loads the transaction partitions of newly owned offsets partitions (once the topic exists),
   * retrying a failed load with the offsets loads' backoff while still owned. In the background:
   * their ids answer COORDINATOR_LOAD_IN_PROGRESS meanwhile (NOT_COORDINATOR before it starts).
   */
  #loadTxnPartitions(offsetsPartitions: readonly number[]): void {
    const tc = this.transactions;
    if (!tc || (this.#txn?.topic && !this.#txn.topic.exists())) return;
    const n = this.offsetsLog.partitions;
    const loaded = new Set(tc.ownedPartitions());
    for (const q of this.#txnPartitionsOf(offsetsPartitions)) {
      // Loaded or loading already (a lost partition is unloaded first, so a regained one loads again).
      if (loaded.has(q)) continue;
      const p = q % n;
      const generation = this.#ownership.get(p) ?? 0;
      const stillOwned = () => this.#started && this.#owned.has(p) && (this.#ownership.get(p) ?? 0) === generation;
      const run = async () => {
        let delay = this.#loadRetry.initialMs;
        while (stillOwned()) {
          try {
            await tc.loadPartition(q, this.#txn?.coordinatorEpoch?.(p) ?? 0);
            return;
          } catch (err) {
            if (!stillOwned()) return;
            this.logger.debug({ partition: q, err, retryInMs: delay }, `loading ${TRANSACTION_STATE_TOPIC} partition failed; retrying`);
            await this.#sleep(delay);
            delay = Math.min(delay * 2, this.#loadRetry.maxMs);
          }
        }
      };
      this.#track(run());
    }
  }

  /**
   * Runs one state-machine outcome: append its records (grouped per partition, in order), settle
   * it with the append result, then wait for the response. The response is never released before
   * its records are durable.
   */
  async execute<R>(outcome: Outcome<R>): Promise<R> {
    if (outcome.records.length === 0) {
      outcome.settle();
      return outcome.response;
    }
    const append = this.#append(outcome.records);
    this.#track(append);
    // Like Kafka's offsets.commit.timeout.ms: answer with an error rather than hang on a stuck log.
    // The append may still land; the client retries and the later record wins.
    const timeoutMs = this.machine.config['offsets.commit.timeout.ms'];
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#clock.schedule(timeoutMs, () => reject(new CoordinatorError('APPEND_TIMEOUT', `__consumer_offsets append took longer than ${timeoutMs} ms`, { retriable: true })));
    });
    try {
      await Promise.race([append, timeout]);
      outcome.settle();
    } catch (err) {
      this.logger.warn({ err }, '__consumer_offsets append failed');
      outcome.settle(err);
    } finally {
      timer?.cancel();
    }
    return outcome.response;
  }

  /** The Kafka handlers (FindCoordinator, the group APIs, offsets) to register on a KafkaServer. */
  handlers(): Handler[] {
    return coordinatorHandlers(this);
  }

  /** Consumer lag of a group (see GroupCoordinator.lag). */
  lag(groupId: string, logEndOffset: (topic: string, partition: number) => bigint): LagRow[] {
    return this.machine.lag(groupId, logEndOffset);
  }

  /**
   * Writes a transaction marker to `__consumer_offsets` partition `partition` for the transaction
   * coordinator (its TxnMarkerSink, in-process or through the `Coordinator.WriteTxnMarkers` RPC),
   * then applies it: the producer's pending offsets in that partition's groups become committed
   * (COMMIT) or are dropped (ABORT). Resolves null once done, or the error name the marker
   * channel retries on: NOT_LEADER_OR_FOLLOWER when this coordinator does not own the partition
   * (or is still loading it, or lost it during the append), REQUEST_TIMED_OUT when the append failed
   * otherwise (both retriable in Kafka's TransactionMarkerRequestCompletionHandler).
   */
  async writeTxnMarker(partition: number, marker: TxnMarker): Promise<'NOT_LEADER_OR_FOLLOWER' | 'REQUEST_TIMED_OUT' | null> {
    if (!this.#started || this.machine.ownedPartitions().get(partition) !== 'loaded') return 'NOT_LEADER_OR_FOLLOWER';
    const append = this.offsetsLog.appendMarker(partition, marker);
    this.#track(append);
    try {
      await append;
    } catch (err) {
      this.logger.warn({ err, partition, producerId: marker.producerId }, 'writing a transaction marker to __consumer_offsets failed');
      return (err as { code?: unknown } | null)?.code === 'NOT_COORDINATOR' ? 'NOT_LEADER_OR_FOLLOWER' : 'REQUEST_TIMED_OUT';
    }
    // Lost (or reloaded) meanwhile: the new load replays the marker from the log.
    if (this.machine.ownedPartitions().get(partition) !== 'loaded') return 'NOT_LEADER_OR_FOLLOWER';
    this.machine.completeTxn(partition, marker.producerId, marker.commit);
    return null;
  }

  #append(records: readonly OffsetsRecord[]): Promise<void> {
    // One append per partition and producer: a TxnOffsetCommit's records go in their own
    // transactional batch, plain records in a plain one.
    const batches = new Map<string, { partition: number; txn: OffsetsRecord['txn']; list: { key: Buffer; value: Buffer | null }[] }>();
    for (const r of records) {
      const id = r.txn ? `${r.partition}/${r.txn.producerId}/${r.txn.producerEpoch}` : `${r.partition}`;
      let batch = batches.get(id);
      if (!batch) batches.set(id, (batch = { partition: r.partition, txn: r.txn, list: [] }));
      batch.list.push({ key: r.key, value: r.value });
    }
    // Called synchronously, so appends reach each partition in the order the machine produced them.
    return Promise.all([...batches.values()].map((b) => (b.txn ? this.offsetsLog.append(b.partition, b.list, b.txn) : this.offsetsLog.append(b.partition, b.list)))).then(() => {});
  }

  #appendBackground(records: OffsetsRecord[]): void {
    const append = this.#append(records).catch((err: unknown) => {
      // Kafka does the same: a lost tombstone only delays cleanup until the next expiry pass.
      this.logger.warn({ err, records: records.length }, 'appending expiry/rebalance records failed');
    });
    this.#track(append);
  }

  /** Loads until loaded (resolves the partition) or no longer owned (resolves null). */
  async #loadWhileOwned(partition: number, generation: number): Promise<number | null> {
    const stillOwned = () => this.#started && this.#ownership.get(partition) === generation;
    let delay = this.#loadRetry.initialMs;
    while (stillOwned()) {
      try {
        if (!(await this.loadPartition(partition))) return null;
        this.logger.debug({ partition }, 'took over __consumer_offsets partition');
        this.#loaded(partition);
        return partition;
      } catch (err) {
        if (!stillOwned()) return null;
        // Keep the groups answering COORDINATOR_LOAD_IN_PROGRESS (not NOT_COORDINATOR) between attempts.
        this.machine.beginLoad(partition);
        // Routine while a cluster (re)starts: the partition's leader is not up yet, or a moment
        // behind metadata. The wait as a whole is logged (#waiting), each attempt only at debug.
        this.logger.debug({ partition, err, retryInMs: delay }, 'loading __consumer_offsets partition failed; retrying');
        this.#waiting(partition, err);
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.#loadRetry.maxMs);
      }
    }
    return null;
  }

  /** A load failed: the first failure of a wait says what it waits for, and arms the error line. */
  #waiting(partition: number, err: unknown): void {
    const reason = (err as Error)?.message ?? String(err);
    if (this.#wait === null) {
      const wait = {
        since: this.#clock.now(),
        failing: new Map<number, string>(),
        count: 0,
        timer: this.#clock.schedule(this.#loadWaitErrorMs, () => {
          if (this.#wait !== wait) return;
          this.#forgetUnowned(wait);
          const partitions = [...wait.failing.keys()].sort((a, b) => a - b);
          if (partitions.length === 0) {
            this.#wait = null;
            return;
          }
          this.logger.error({ partitions, waitedMs: this.#clock.now() - wait.since, lastError: wait.failing.get(partitions[0]!) },
            `${partitions.length} __consumer_offsets partitions still cannot be loaded after ${this.#loadWaitErrorMs} ms: are the brokers leading them up? (their groups answer COORDINATOR_LOAD_IN_PROGRESS; still retrying)`);
        }),
      };
      this.#wait = wait;
      this.logger.info({ reason },
        'waiting for the brokers leading __consumer_offsets before its partitions can be loaded (their groups answer COORDINATOR_LOAD_IN_PROGRESS meanwhile)');
    }
    if (!this.#wait.failing.has(partition)) this.#wait.count++;
    this.#wait.failing.set(partition, reason);
  }

  /**
   * A partition loaded: the wait ends when no failing partition that is still owned is left.
   * Giving a partition up does not end a wait by itself: a reload (given up and taken on again
   * under a newer epoch, as after a restart) goes on waiting under the same line.
   */
  #loaded(partition: number): void {
    const wait = this.#wait;
    if (wait === null || !wait.failing.delete(partition)) return;
    this.#forgetUnowned(wait);
    if (wait.failing.size > 0) return;
    wait.timer.cancel();
    this.#wait = null;
    const waitedMs = this.#clock.now() - wait.since;
    this.logger.info({ partitions: wait.count, waitedMs }, `__consumer_offsets partitions loaded after waiting ${waitedMs} ms for their brokers`);
  }

  #forgetUnowned(wait: { failing: Map<number, string> }): void {
    for (const p of [...wait.failing.keys()]) if (!this.#owned.has(p)) wait.failing.delete(p);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#sleeps.delete(wake);
        timer.cancel();
        resolve();
      };
      const timer = this.#clock.schedule(ms, wake);
      this.#sleeps.add(wake);
    });
  }

  #track(p: Promise<unknown>): void {
    const settled = p.then(
      () => {},
      () => {},
    );
    this.#inflight.add(settled);
    void settled.then(() => this.#inflight.delete(settled));
  }
}
