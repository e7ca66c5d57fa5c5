import { RunnelError, silentLogger, type Logger } from '@runnel/common';
import type { Handler } from '@runnel/kafka-server';
import { systemClock, type Clock } from './clock.ts';
import {
  GroupCoordinator,
  type GroupCoordinatorConfig,
  type LagRow,
  type Outcome,
} from './group-coordinator.ts';
import { coordinatorHandlers } from './handlers.ts';
import type { OffsetsLog } from './offsets-log.ts';
import type { OffsetsRecord } from './records.ts';

/**
 * `NOT_COORDINATOR`: thrown by an OffsetsLog whose partition moved away (clients are told
 * NOT_COORDINATOR and look the coordinator up again); `LOAD_FAILED`: a partition could not be read;
 * `APPEND_TIMEOUT`: an append took longer than `offsets.commit.timeout.ms`.
 */
export type CoordinatorErrorCode = 'NOT_COORDINATOR' | 'LOAD_FAILED' | 'APPEND_TIMEOUT';

/** Failures of the coordinator runtime (not group errors, which are answers, not exceptions). */
export class CoordinatorError extends RunnelError<CoordinatorErrorCode> {}

/** The node that serves the coordinator's handlers: what FindCoordinator answers. */
export interface CoordinatorNode {
  nodeId: number;
  host: string;
  port: number;
}

export interface CoordinatorOptions {
  /** Kafka-named settings; `offsets.topic.num.partitions` is taken from the offsets log. */
  config?: Partial<GroupCoordinatorConfig>;
  offsetsLog: OffsetsLog;
  /** The process serving these handlers (FindCoordinator points clients here). */
  self?: () => CoordinatorNode;
  /** Partitions this coordinator owns at start; default: all of them (single node). */
  ownedPartitions?: readonly number[];
  clock?: Clock;
  logger?: Logger;
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
  readonly logger: Logger;
  readonly #self: (() => CoordinatorNode) | undefined;
  readonly #owned: readonly number[];
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #clock: Clock;
  #started = false;

  private constructor(options: CoordinatorOptions) {
    this.offsetsLog = options.offsetsLog;
    this.logger = options.logger ?? silentLogger();
    this.#self = options.self;
    this.#owned = options.ownedPartitions ?? Array.from({ length: options.offsetsLog.partitions }, (_, i) => i);
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
      await Promise.all(this.#owned.map((p) => this.loadPartition(p)));
    } catch (err) {
      this.#started = false;
      this.machine.shutdown();
      throw err;
    }
    this.machine.startExpiry();
    this.logger.info({ partitions: this.#owned.length }, 'group coordinator loaded');
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.machine.shutdown();
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

  /** Takes over one partition (start, or a move from another coordinator): load it through replay. */
  async loadPartition(partition: number): Promise<void> {
    const began = Date.now();
    this.machine.beginLoad(partition);
    try {
      await this.offsetsLog.load(partition, (key, value) => {
        try {
          this.machine.replay(partition, key, value);
        } catch (err) {
          // One unreadable record must not make the whole partition unusable: skip it, loudly.
          this.logger.warn({ partition, err }, 'skipping an unreadable __consumer_offsets record');
        }
      });
    } catch (err) {
      this.machine.unload(partition);
      throw new CoordinatorError('LOAD_FAILED', `loading __consumer_offsets-${partition} failed: ${(err as Error).message}`, { cause: err, retriable: true });
    }
    this.machine.completeLoad(partition);
    this.logger.debug({ partition, ms: Date.now() - began }, 'loaded __consumer_offsets partition');
  }

  /** Gives up one partition: its groups are dropped and their waiting members told NOT_COORDINATOR. */
  unloadPartition(partition: number): void {
    this.machine.unload(partition);
  }

  /** Where FindCoordinator sends clients; undefined when no `self` was given. */
  self(): CoordinatorNode | undefined {
    return this.#self?.();
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

  #append(records: readonly OffsetsRecord[]): Promise<void> {
    const byPartition = new Map<number, { key: Buffer; value: Buffer | null }[]>();
    for (const r of records) {
      const list = byPartition.get(r.partition) ?? [];
      list.push({ key: r.key, value: r.value });
      byPartition.set(r.partition, list);
    }
    // Called synchronously, so appends reach each partition in the order the machine produced them.
    return Promise.all([...byPartition].map(([p, list]) => this.offsetsLog.append(p, list))).then(() => {});
  }

  #appendBackground(records: OffsetsRecord[]): void {
    const append = this.#append(records).catch((err: unknown) => {
      // Kafka does the same: a lost tombstone only delays cleanup until the next expiry pass.
      this.logger.warn({ err, records: records.length }, 'appending expiry/rebalance records failed');
    });
    this.#track(append);
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
