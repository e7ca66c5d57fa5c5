import { RunnelError, onceEvery, tpKey, type BrokerConfig, type Logger } from '@runnel/common';
import type { MetadataEvent, MetadataStore, PartitionState, TopicMetadata } from '@runnel/metadata';
import { ErrorCode } from '@runnel/protocol';
import { RpcTls, type ReplicaFetchPartition, type ReplicaFetchPartitionResult, type ReplicaFetchRequest, type ReplicaFetchResponse } from '@runnel/rpc';
import type { AppendResult, LogManager, PartitionLog, TxnMarkerInput } from '@runnel/storage';
import type { Partitions } from '../partitions.ts';
import type { FetchPurgatory } from '../purgatory.ts';
import { FollowerFetchers } from './fetcher.ts';
import { ReplicationThrottle } from './throttle.ts';

/** What a follower's fetch of one partition updates at the leader. */
interface FollowerState {
  /** Its log end offset: the offset it fetched from last (-1 until it fetches in this epoch). */
  leo: bigint;
  /** When it was last caught up to the leader's end (Kafka's lastCaughtUpTimeMs). */
  lastCaughtUpMs: number;
  lastFetchMs: number;
  /** The leader's end offset at its previous fetch. */
  lastFetchLeaderEnd: bigint;
}

/** A partition this broker leads, in one leader epoch. */
export interface Leadership {
  readonly topic: string;
  readonly partition: number;
  readonly key: string;
  readonly log: PartitionLog;
  readonly leaderEpoch: number;
  /**
   * The leader's end offset when it took over: a follower joins the ISR only once it reached it.
   * Settled under the log's lock, after the follower appends still in flight at the takeover.
   */
  epochStartOffset: bigint;
  /** Committed partition state (metadata), never a proposal. */
  version: number;
  replicas: number[];
  isr: number[];
  minIsr: number;
  /** End of what the leader's own appends acknowledged (with runnel.durable: fsynced). */
  localEnd: bigint;
  readonly followers: Map<number, FollowerState>;
  /** An alterPartition is in flight. */
  proposing: boolean;
  /**
   * The last ISR proposed whose outcome is not known yet (in flight, or its call failed: the
   * controller may have committed it), null once committed metadata newer than it arrived or it
   * was refused. The high watermark waits for its members too (KIP-497's maximal ISR): a follower
   * proposed in may be in the committed ISR, and electable, before this leader hears so.
   */
  pendingIsr: number[] | null;
  /** A proposal at this version was refused: wait for newer metadata (or retryAtMs). */
  refusedVersion: number;
  retryAtMs: number;
  /**
   * The leader's latest appends as stored (offsets and leader epoch assigned), contiguous and in
   * offset order, until every follower has fetched past them: a follower fetching at the log end
   * gets them from memory instead of a read of the segment (see #remember).
   */
  tail: TailEntry[];
  /** Memory the tail holds (`heldBy` of its entries summed), against the caps. */
  tailBytes: number;
}

/** One append as it was written: the batches of offsets [base, end). */
interface TailEntry {
  base: bigint;
  end: bigint;
  bytes: Buffer;
}

/** An acks=all produce (or coordinator append) waiting for the high watermark to pass `required`. */
interface Waiter {
  required: bigint;
  done(code: number): void;
}

export interface ReplicaManagerOptions {
  nodeId: number;
  config: BrokerConfig;
  metadata: MetadataStore;
  partitions: Partitions;
  logs: LogManager;
  purgatory: FetchPurgatory;
  logger: Logger;
}

/**
 * An append refused because this broker does not lead the partition at the leader epoch the caller
 * read (it was deposed while the caller awaited): NOT_LEADER_OR_FOLLOWER to a producer, NOT_LEADER
 * to a `broker.append` caller. Nothing is written.
 */
export class NotLeaderError extends RunnelError<'NOT_LEADER_OR_FOLLOWER'> {}

const EMPTY = Buffer.alloc(0);
/** The most one replica fetch answers with whatever the follower asks (the RPC frame limit is 64 MiB). */
const MAX_FETCH_RESPONSE_BYTES = 32 * 1024 * 1024;
const MAX_FETCH_WAIT_MS = 30_000;
/** The most one led partition keeps of its latest appends for followers (Leadership.tail). */
const TAIL_PARTITION_MAX_BYTES = 1024 * 1024;
/** The most all led partitions keep together: beyond it appends are not kept (followers read the log). */
const TAIL_BROKER_MAX_BYTES = 64 * 1024 * 1024;
// Record batch v2 header fields (Kafka's DefaultRecordBatch): baseOffset int64 at 0, batchLength
// int32 at 8 (the batch is 12 + batchLength bytes), partitionLeaderEpoch int32 at 12,
// lastOffsetDelta int32 at 23; a header is 61 bytes.
const BATCH_HEADER_BYTES = 61;

/**
 * Replication on this broker (docs/replication.md): the leader side of every partition it leads
 * (follower fetch states, the high watermark, the acks purgatory, ISR proposals) and the follower
 * side of the others (FollowerFetchers). It follows metadata as events arrive: becoming leader
 * records the new epoch at the log end and resets follower states, keeping the high watermark;
 * becoming follower stops leading (waiting acks get NOT_LEADER_OR_FOLLOWER) and fetches from the
 * new leader; leaving the replica set stops fetching and deletes the local log.
 *
 * Invariants: the high watermark of a led partition = min over the committed ISR of the replicas'
 * log end offsets (the leader's own = `localEnd`), and it only rises while this broker leads. With
 * ISR = [this broker] (a single node) it moves at every append, as before replication.
 */
export class ReplicaManager {
  readonly #o: ReplicaManagerOptions;
  readonly #leaders = new Map<string, Leadership>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** Led partitions whose stored batch at `offset` failed its check on read: truncated there once this broker follows. */
  readonly #repairs = new Map<string, { log: PartitionLog; offset: bigint }>();
  #steppingDown = false;
  /** When the last step-down after a full log dir began. */
  #diskFullStepDownMs = -Infinity;
  /** Replica logs whose creation found the disk full: the pending retry; their warning once a minute each. */
  readonly #noSpaceRetries = new Map<string, NodeJS.Timeout>();
  readonly #noSpaceWarnings = onceEvery(60_000);
  readonly #fetchers: FollowerFetchers;
  /** Reassignment throttling, both sides (throttle.ts). */
  readonly #throttle: ReplicationThrottle;
  readonly #lagMs: number;
  /** Bytes held by every Leadership.tail together (at most TAIL_BROKER_MAX_BYTES). */
  #tailBytes = 0;
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Committed ISR changes of led partitions within a leader epoch (Kafka's IsrShrinksPerSec, IsrExpandsPerSec): metrics. */
  #isrShrinks = 0;
  #isrExpands = 0;
  /** Record bytes sent to followers and fetched from leaders (Kafka's ReplicationBytesOutPerSec, ReplicationBytesInPerSec): metrics. */
  #replicationBytesOut = 0;
  #replicationBytesIn = 0;

  constructor(options: ReplicaManagerOptions) {
    this.#o = options;
    const c = options.config;
    this.#lagMs = c.get('replica.lag.time.max.ms');
    this.#throttle = new ReplicationThrottle({ nodeId: options.nodeId, metadata: options.metadata, config: c });
    this.#fetchers = new FollowerFetchers({
      throttle: this.#throttle,
      nodeId: options.nodeId,
      metadata: options.metadata,
      logger: options.logger.child({ component: 'replica-fetcher' }),
      maxWaitMs: c.get('replica.fetch.wait.max.ms'),
      partitionMaxBytes: c.get('replica.fetch.max.bytes'),
      responseMaxBytes: c.get('replica.fetch.response.max.bytes'),
      backoffMs: c.get('replica.fetch.backoff.ms'),
      rpcTls: RpcTls.for(c, options.logger.child({ component: 'rpc' })),
      appended: (bytes) => { this.#replicationBytesIn += bytes; },
    });
  }

  /** Takes the roles metadata gives this broker now and follows every later change. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#o.metadata.subscribe((event) => this.#onEvent(event));
    const opening: Promise<void>[] = [];
    for (const topic of this.#o.metadata.snapshot().topics.values()) {
      for (const p of topic.partitions) opening.push(this.#reconcile(topic.name, p.partition));
    }
    await Promise.all(opening);
    this.#timer = setInterval(() => this.#checkIsr(), Math.max(50, Math.floor(this.#lagMs / 2)));
    this.#timer.unref();
  }

  /** Stops fetching and answers every waiting produce NOT_LEADER_OR_FOLLOWER (before the logs close). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    clearInterval(this.#timer);
    for (const t of this.#noSpaceRetries.values()) clearTimeout(t);
    this.#noSpaceRetries.clear();
    for (const key of [...this.#leaders.keys()]) this.#resign(key);
    await this.#fetchers.stop();
  }

  /** Bytes of the led partitions' latest appends kept in memory for their followers (tests). */
  get followerTailBytes(): number {
    return this.#tailBytes;
  }

  /** ISR shrinks and expands of the partitions this broker led, since it started (metrics). */
  get isrChanges(): { shrinks: number; expands: number } {
    return { shrinks: this.#isrShrinks, expands: this.#isrExpands };
  }

  /** Record bytes replicated since start: `out` sent to followers, `in` appended from leaders (metrics). */
  get replicationBytes(): { in: number; out: number } {
    return { in: this.#replicationBytesIn, out: this.#replicationBytesOut };
  }

  /** acks=all produces waiting for their high watermark (Kafka's produce purgatory size; metrics). */
  get waitingAcks(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }

  /** The partition's log was replaced (moved to another log dir): follow or lead with the new one. */
  logReplaced(topic: string, partition: number): void {
    if (!this.#stopped) void this.#reconcile(topic, partition);
  }

  /** Which broker a followed partition is fetched from (undefined when not following it). */
  followingFrom(topic: string, partition: number): number | undefined {
    return this.#fetchers.leaderOf(topic, partition);
  }

  #onEvent(event: MetadataEvent): void {
    if (this.#stopped) return;
    if (event.type === 'topic-created' || event.type === 'topic-updated') {
      for (const p of event.topic.partitions) void this.#reconcile(event.topic.name, p.partition);
    } else if (event.type === 'topic-deleted') {
      for (const [key, lead] of [...this.#leaders]) if (lead.topic === event.name) this.#resign(key);
      this.#fetchers.removeTopic(event.name);
    }
  }

  /**
   * Brings one partition's role in line with the current snapshot (read again after the log
   * opened, so a late open never applies a stale state).
   */
  async #reconcile(topicName: string, partition: number): Promise<void> {
    const key = tpKey(topicName, partition);
    const snap = () => {
      const topic = this.#o.metadata.snapshot().topics.get(topicName);
      return { topic, state: topic?.partitions[partition] };
    };
    let { topic, state } = snap();
    if (!topic || !state || !isReplica(state, this.#o.nodeId)) {
      this.#resign(key);
      this.#fetchers.remove(key);
      if (topic && state) await this.#removeReplica(topicName, partition);
      return;
    }
    let log = this.#o.logs.getLog(topicName, partition);
    if (!log) {
      try {
        log = (await this.#o.partitions.replicaLog(topicName, partition)) ?? undefined;
      } catch (err) {
        // A full disk is retryable: try again after a backoff (no metadata event may come to do it).
        if ((err as { code?: unknown }).code === 'NO_SPACE') return this.#retryWhenSpace(key, topicName, partition, err);
        this.#o.logger.error({ err, topic: topicName, partition }, 'opening a replica log failed');
        return;
      }
      ({ topic, state } = snap());
      if (!log || !topic || !state || this.#stopped) return;
      // Moved away while the log opened: the event's reconcile found no log to delete yet.
      if (!isReplica(state, this.#o.nodeId)) return void this.#reconcile(topicName, partition);
    }
    if (state.leader === this.#o.nodeId) {
      this.leadership(topic, state, log);
      return;
    }
    this.#resign(key);
    const repair = this.#repairs.get(key);
    if (repair && repair.log === log && state.leader >= 0) {
      // Leadership moved away from a corrupt batch: drop it and everything after, and fetch it
      // again from the new leader (this broker left the ISR, so nothing committed depends on it).
      this.#repairs.delete(key);
      this.#fetchers.remove(key);
      try {
        await log.truncateTo(repair.offset);
        this.#o.logger.warn({ topic: topicName, partition, offset: String(repair.offset) }, 'truncated at a corrupt batch; fetching it again from the leader');
      } catch (err) {
        this.#o.logger.error({ err, topic: topicName, partition }, 'truncating at a corrupt batch failed');
      }
      ({ topic, state } = snap());
      if (!topic || !state || state.leader === this.#o.nodeId || !state.replicas.includes(this.#o.nodeId) || this.#stopped) return void this.#reconcile(topicName, partition);
    }
    if (state.leader < 0) this.#fetchers.remove(key);
    else this.#fetchers.follow(state.leader, { topic: topicName, partition, log, leaderEpoch: state.leaderEpoch });
  }

  /** Creating a replica's log found the disk full: reconcile again every replica.fetch.backoff.ms (one timer per partition), warn once a minute. */
  #retryWhenSpace(key: string, topicName: string, partition: number, err: unknown): void {
    if (this.#stopped || this.#noSpaceRetries.has(key)) return;
    if (this.#noSpaceWarnings.allow(key)) {
      this.#o.logger.warn({ topic: topicName, partition, err: (err as Error).message }, 'log dir is full: replica log not created, retrying until space returns');
    }
    const timer = setTimeout(() => {
      this.#noSpaceRetries.delete(key);
      if (!this.#stopped) void this.#reconcile(topicName, partition);
    }, this.#o.config.get('replica.fetch.backoff.ms'));
    timer.unref();
    this.#noSpaceRetries.set(key, timer);
  }

  /**
   * A reassignment moved the partition off this broker: its local log is deleted, as Kafka's
   * StopReplica with deletePartition does. The fetcher was removed first; the wait on the log's
   * lock lets a follower append already in flight finish before the files go. Deleted only if the
   * snapshot still leaves this broker out afterwards (a move back keeps the log it reopened).
   */
  async #removeReplica(topicName: string, partition: number): Promise<void> {
    const log = this.#o.logs.getLog(topicName, partition);
    if (!log || this.#stopped) return;
    try {
      await log.withLock(async () => {});
      const state = this.#o.metadata.snapshot().topics.get(topicName)?.partitions[partition];
      if (!state || isReplica(state, this.#o.nodeId) || this.#stopped || this.#o.logs.getLog(topicName, partition) !== log) return;
      this.#repairs.delete(tpKey(topicName, partition));
      await this.#o.logs.deleteLog(topicName, partition);
      this.#o.logger.info({ topic: topicName, partition, replicas: state.replicas }, 'no longer a replica: deleted the local log');
    } catch (err) {
      this.#o.logger.error({ err, topic: topicName, partition }, 'deleting the log of a replica moved away failed');
    }
  }

  /**
   * Whether reads of a partition check every batch before serving it (`PartitionLog.read`
   * `verify`): when it has other replicas to repair a corrupt batch from. A single replica serves
   * its batches as Kafka does (consumers check CRCs).
   */
  verifiesReads(state: PartitionState): boolean {
    return state.replicas.length > 1;
  }

  /**
   * A verified read found bit rot in a partition this broker leads (CORRUPT_MESSAGE from
   * `read({ verify })`): readers get KAFKA_STORAGE_ERROR meanwhile, and this broker steps down
   * (`metadata.controlledShutdown()`: its leaderships move to other in-sync replicas, it leaves
   * every ISR, then registers again) so a replica with a good copy leads; once it follows, the
   * corrupt batch and everything after it are truncated and fetched again (Kafka takes a failed
   * log dir offline and the controller moves its leaders; here one bad batch is repaired in place).
   * Without another live in-sync replica nothing moves: the batch is refused, never served.
   */
  corruptBatch(topic: string, partition: number, log: PartitionLog, offset: bigint): void {
    const key = tpKey(topic, partition);
    const known = this.#repairs.get(key);
    if (known && known.log === log && known.offset <= offset) return;
    this.#repairs.set(key, { log, offset });
    const snap = this.#o.metadata.snapshot();
    const state = snap.topics.get(topic)?.partitions[partition];
    const others = state?.isr.filter((id) => id !== this.#o.nodeId && snap.brokers.has(id)) ?? [];
    this.#o.logger.error({ topic, partition, offset: String(offset), inSyncReplicas: others }, others.length > 0
      ? 'a stored batch fails its check: not served; stepping down so an in-sync replica leads, then repairing from it'
      : 'a stored batch fails its check: not served, and no other in-sync replica can lead');
    if (others.length === 0 || this.#steppingDown || this.#stopped) return;
    this.#steppingDown = true;
    this.#o.metadata.controlledShutdown().then(
      ({ remaining }) => this.#o.logger.warn({ remaining }, 'stepped down after a corrupt batch'),
      (err: unknown) => this.#o.logger.error({ err: (err as Error).message }, 'stepping down after a corrupt batch failed'),
    ).finally(() => {
      this.#steppingDown = false;
    });
  }

  /**
   * A leader's append found its log dir full (NO_SPACE, answered KAFKA_STORAGE_ERROR, retriable).
   * The dir stays online (a full disk is retryable, it serves again once space returns), but the
   * partition must not wait for space: with another live in-sync replica this broker steps down as
   * for a corrupt batch (`metadata.controlledShutdown()`: its leaderships move to other in-sync
   * replicas, it leaves every ISR, then registers again). It goes on as a follower whose appends
   * fail until space returns, so the leaders propose it back into their ISRs only once it has
   * caught up. Kafka instead takes the full dir offline and the controller moves its leaders. At
   * most one step-down per replica.lag.time.max.ms; without another in-sync replica nothing moves
   * and appends keep failing retriably until space returns.
   */
  #diskFull(topic: string, partition: number): void {
    const now = Date.now();
    if (this.#steppingDown || this.#stopped || now - this.#diskFullStepDownMs < this.#lagMs) return;
    const snap = this.#o.metadata.snapshot();
    const state = snap.topics.get(topic)?.partitions[partition];
    const others = state?.isr.filter((id) => id !== this.#o.nodeId && snap.brokers.has(id)) ?? [];
    if (others.length === 0) return;
    this.#diskFullStepDownMs = now;
    this.#steppingDown = true;
    this.#o.logger.error({ topic, partition, inSyncReplicas: others }, 'log dir is full: stepping down so an in-sync replica leads; following until space returns');
    this.#o.metadata.controlledShutdown().then(
      ({ remaining }) => this.#o.logger.warn({ remaining }, 'stepped down after a full log dir'),
      (err: unknown) => this.#o.logger.error({ err: (err as Error).message }, 'stepping down after a full log dir failed'),
    ).finally(() => {
      this.#steppingDown = false;
    });
  }

  /**
   * The leader state of a partition metadata says this broker leads, created on the first call
   * of a new epoch (becoming leader) and refreshed with the committed ISR on later ones. Null when
   * the current snapshot no longer names this broker leader at `state.leaderEpoch`: callers read
   * `state` before an await (a log's first open) and may have been deposed meanwhile; re-creating
   * the leader state then would stop the follower fetcher and append under the old epoch.
   */
  leadership(topic: TopicMetadata, state: PartitionState, log: PartitionLog): Leadership | null {
    const key = tpKey(topic.name, state.partition);
    const minIsr = this.#o.partitions.topicConfig(topic).get('min.insync.replicas');
    const current = this.#leaders.get(key);
    if (current && current.log === log && current.leaderEpoch >= state.leaderEpoch) {
      if (current.leaderEpoch === state.leaderEpoch) this.#refresh(current, state, minIsr);
      return current;
    }
    const live = this.#o.metadata.snapshot().topics.get(topic.name)?.partitions[state.partition];
    if (!live || live.leader !== this.#o.nodeId || live.leaderEpoch !== state.leaderEpoch || this.#stopped) return null;
    const now = Date.now();
    const leo = log.logEndOffset;
    const followers = new Map<number, FollowerState>();
    for (const id of state.replicas) {
      // ISR members start caught up as of the election (Kafka): they have replica.lag.time.max.ms to fetch.
      if (id !== this.#o.nodeId) followers.set(id, { leo: -1n, lastCaughtUpMs: state.isr.includes(id) ? now : 0, lastFetchMs: 0, lastFetchLeaderEnd: -1n });
    }
    const lead: Leadership = {
      topic: topic.name, partition: state.partition, key, log, leaderEpoch: state.leaderEpoch, epochStartOffset: leo,
      version: state.version, replicas: [...state.replicas], isr: [...state.isr], minIsr, localEnd: leo, followers,
      proposing: false, pendingIsr: null, refusedVersion: -1, retryAtMs: 0, tail: [], tailBytes: 0,
    };
    if (current) this.#dropTail(current, current.tail.length);
    this.#leaders.set(key, lead);
    this.#fetchers.remove(key);
    // The new epoch starts at the log end, so a follower's diverging suffix is found by epoch even
    // before this leader appends anything (under the log's writer lock: the cache has one writer).
    // A follower append in flight at the takeover (the fetcher was just removed) has finished by
    // then: the log end under the lock is this leader's own end, or its records would stay above
    // the high watermark until the next append.
    void log.withLock(async () => {
      const end = log.logEndOffset;
      log.leaderEpochs.assign(state.leaderEpoch, end);
      if (end > lead.epochStartOffset) lead.epochStartOffset = end;
      if (end > lead.localEnd) lead.localEnd = end;
      await log.leaderEpochs.flush();
    }).then(() => {
      if (this.#leaders.get(key) === lead) this.#maybeAdvanceHighWatermark(lead);
    }).catch((err: unknown) => this.#o.logger.error({ err, topic: topic.name, partition: state.partition }, 'recording the leader epoch failed'));
    this.#o.logger.info({ topic: topic.name, partition: state.partition, leaderEpoch: state.leaderEpoch, isr: state.isr, logEndOffset: String(leo), highWatermark: String(log.highWatermark) }, 'leading partition');
    this.#maybeAdvanceHighWatermark(lead);
    this.#completeWaiters(lead);
    return lead;
  }

  /** Committed metadata changed the ISR (a proposal of ours, or the controller fencing a broker). */
  #refresh(lead: Leadership, state: PartitionState, minIsr: number): void {
    lead.minIsr = minIsr;
    // Versions only rise within a leader epoch: a state read before a later change (a caller that
    // awaited a log's open) must not bring back an older ISR, which could leave out a member the
    // controller counts in sync (and may elect) from the high watermark.
    if (state.version <= lead.version) return;
    lead.version = state.version;
    // A proposal made at an older version is either in this state or can no longer commit (CAS on the version).
    lead.pendingIsr = null;
    if (lead.isr.some((id) => !state.isr.includes(id))) this.#isrShrinks++;
    if (state.isr.some((id) => !lead.isr.includes(id))) this.#isrExpands++;
    lead.replicas = [...state.replicas];
    lead.isr = [...state.isr];
    for (const id of state.replicas) {
      if (id !== this.#o.nodeId && !lead.followers.has(id)) lead.followers.set(id, { leo: -1n, lastCaughtUpMs: 0, lastFetchMs: 0, lastFetchLeaderEnd: -1n });
    }
    // A follower that left the ISR no longer holds the tail (with none left it is dropped whole).
    this.#trimTail(lead);
    this.#maybeAdvanceHighWatermark(lead);
    this.#completeWaiters(lead);
  }

  /** This broker no longer leads the partition: waiting produces get NOT_LEADER_OR_FOLLOWER. */
  #resign(key: string): void {
    const lead = this.#leaders.get(key);
    if (!lead) return;
    this.#leaders.delete(key);
    this.#dropTail(lead, lead.tail.length);
    const waiting = this.#waiters.get(key);
    if (waiting) for (const w of [...waiting]) w.done(ErrorCode.NOT_LEADER_OR_FOLLOWER);
  }

  // ------------------------------------------------------------------ produce (leader side)

  /**
   * Appends to a partition this broker leads (`state`, `log` from Partitions.leaderLog) with the
   * leader epoch, then moves the high watermark as far as the ISR allows: at once with ISR = [self].
   */
  async appendAsLeader(topic: TopicMetadata, state: PartitionState, log: PartitionLog, payload: Buffer): Promise<AppendResult> {
    const lead = this.leadership(topic, state, log);
    if (!lead) throw new NotLeaderError('NOT_LEADER_OR_FOLLOWER', `${topic.name}-${state.partition}: this broker no longer leads it at leader epoch ${state.leaderEpoch}`, { retriable: true });
    let result: AppendResult;
    try {
      result = await log.append(payload, { leaderEpoch: state.leaderEpoch });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'NO_SPACE') this.#diskFull(topic.name, state.partition);
      throw err;
    }
    const end = result.lastOffset + 1n;
    if (end > lead.localEnd) lead.localEnd = end;
    if (!result.duplicate && end > result.baseOffset && this.#leaders.get(lead.key) === lead) this.#remember(lead, result.baseOffset, end, payload);
    // Followers long-polling for this partition wake (a moved high watermark has woken them already).
    if (!this.#maybeAdvanceHighWatermark(lead)) this.#o.purgatory.notify(lead.key);
    return result;
  }

  /**
   * Writes a transaction marker (a COMMIT or ABORT control batch, storage's `appendControl`) as
   * leader, as `appendAsLeader` does a producer's batch: refused when this broker no longer leads
   * at `state.leaderEpoch`; the high watermark moves as far as the ISR allows. Storage keeps the
   * transaction unstable until the high watermark passes its marker, so the last stable offset
   * moves with the high watermark, whose rise wakes the read_committed fetches parked at it.
   */
  async appendControlAsLeader(topic: TopicMetadata, state: PartitionState, log: PartitionLog, marker: TxnMarkerInput): Promise<AppendResult> {
    const lead = this.leadership(topic, state, log);
    if (!lead) throw new NotLeaderError('NOT_LEADER_OR_FOLLOWER', `${topic.name}-${state.partition}: this broker no longer leads it at leader epoch ${state.leaderEpoch}`, { retriable: true });
    let result: AppendResult;
    try {
      result = await log.appendControl(marker, { leaderEpoch: state.leaderEpoch });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'NO_SPACE') this.#diskFull(topic.name, state.partition);
      throw err;
    }
    const end = result.lastOffset + 1n;
    if (end > lead.localEnd) lead.localEnd = end;
    // Not kept in the follower tail: the next append kept there starts after a gap and drops the
    // older entries, so a follower reads the marker from the log.
    if (!this.#maybeAdvanceHighWatermark(lead)) this.#o.purgatory.notify(lead.key);
    return result;
  }

  /**
   * acks=all: resolves with NONE once the high watermark reaches `requiredEnd` (the appended last
   * offset + 1); NOT_ENOUGH_REPLICAS_AFTER_APPEND when the committed ISR is below
   * min.insync.replicas; NOT_LEADER_OR_FOLLOWER when leadership moves; REQUEST_TIMED_OUT after
   * `timeoutMs`. Answers without waiting when it can (a single node always can).
   */
  waitForCommit(topic: string, partition: number, requiredEnd: bigint, timeoutMs: number): Promise<number> {
    const key = tpKey(topic, partition);
    const lead = this.#leaders.get(key);
    if (!lead) return Promise.resolve(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    const now = commitState(lead, requiredEnd);
    if (now !== null) return Promise.resolve(now);
    return new Promise((resolve) => {
      let set = this.#waiters.get(key);
      if (!set) this.#waiters.set(key, (set = new Set()));
      const waiting = set;
      const waiter: Waiter = {
        required: requiredEnd,
        done: (code) => {
          clearTimeout(timer);
          waiting.delete(waiter);
          if (waiting.size === 0 && this.#waiters.get(key) === waiting) this.#waiters.delete(key);
          resolve(code);
        },
      };
      const timer = setTimeout(() => waiter.done(ErrorCode.REQUEST_TIMED_OUT), Math.max(0, timeoutMs));
      waiting.add(waiter);
    });
  }

  #completeWaiters(lead: Leadership): void {
    const waiting = this.#waiters.get(lead.key);
    if (!waiting) return;
    for (const w of [...waiting]) {
      const code = commitState(lead, w.required);
      if (code !== null) w.done(code);
    }
  }

  /**
   * HW = min of the log end offsets over the committed ISR and any ISR proposed but not known to be
   * refused (`pendingIsr`); only rises. Wakes consumers and acks waiters; true when it moved.
   */
  #maybeAdvanceHighWatermark(lead: Leadership): boolean {
    let hw = lead.localEnd;
    for (const id of inSyncFollowers(lead, this.#o.nodeId)) {
      const leo = lead.followers.get(id)?.leo ?? -1n;
      if (leo < hw) hw = leo;
    }
    if (hw <= lead.log.highWatermark) return false;
    lead.log.highWatermark = hw;
    this.#o.purgatory.notify(lead.key);
    this.#completeWaiters(lead);
    return true;
  }

  // ------------------------------------------------------------------ follower fetches (leader side)

  /**
   * `broker.replicaFetch` at the leader (Fetch v12 semantics for followers): per partition, the
   * replica must be assigned and its `currentLeaderEpoch` ours (older: FENCED_LEADER_EPOCH, newer:
   * UNKNOWN_LEADER_EPOCH); a `lastFetchedEpoch`/`fetchOffset` our epoch history does not have is
   * answered with the diverging epoch and its end (KIP-279) and nothing else. Otherwise the fetch
   * offset becomes the follower's log end offset (the high watermark may rise, the follower may be
   * proposed into the ISR) and whole batches up to our log end are returned within the partition
   * and response limits (the first batch always). With nothing to send the call waits up to
   * `maxWaitMs` for an append.
   */
  async handleReplicaFetch(req: ReplicaFetchRequest): Promise<ReplicaFetchResponse> {
    const deadline = Date.now() + Math.min(Math.max(0, req.maxWaitMs), MAX_FETCH_WAIT_MS);
    const maxBytes = req.maxBytes > 0 ? Math.min(req.maxBytes, MAX_FETCH_RESPONSE_BYTES) : MAX_FETCH_RESPONSE_BYTES;
    const partitionMax = req.partitionMaxBytes > 0 ? Math.min(req.partitionMaxBytes, maxBytes) : maxBytes;
    const keys = req.partitions.map((p) => tpKey(p.topic, p.partition));
    // Kafka's STALE_BROKER_EPOCH: a process whose registration is not the live one for its node id
    // (it lost the id to a newer process, or was fenced) is answered nothing and counts for nothing.
    // A follower whose registration this snapshot does not show yet retries after its backoff.
    const live = this.#o.metadata.snapshot().brokers.get(req.replicaId);
    if (live?.brokerEpoch !== req.brokerEpoch) {
      return { partitions: req.partitions.map((p) => ({
        topic: p.topic, partition: p.partition, error: 'STALE_BROKER_EPOCH', highWatermark: -1n, logStartOffset: -1n, logEndOffset: -1n,
        records: EMPTY, divergingEpoch: -1, divergingEndOffset: -1n,
      })) };
    }
    let firstPass = true;
    for (;;) {
      const partitions: ReplicaFetchPartitionResult[] = [];
      let bytes = 0;
      let settled = false;
      for (const p of req.partitions) {
        const r = await this.#fetchOne(req.replicaId, p, Math.min(partitionMax, maxBytes - bytes), bytes === 0, firstPass);
        bytes += r.records.length;
        if (r.error !== '' || r.divergingEpoch >= 0) settled = true;
        partitions.push(r);
      }
      firstPass = false;
      const remaining = deadline - Date.now();
      if (bytes >= Math.max(1, req.minBytes) || settled || remaining <= 0 || this.#stopped || keys.length === 0) {
        this.#replicationBytesOut += bytes;
        return { partitions };
      }
      await this.#o.purgatory.wait(keys, remaining);
    }
  }

  async #fetchOne(replicaId: number, p: ReplicaFetchPartition, limit: number, first: boolean, update: boolean): Promise<ReplicaFetchPartitionResult> {
    const answer = (error: string, log?: PartitionLog, extra?: Partial<ReplicaFetchPartitionResult>): ReplicaFetchPartitionResult => ({
      topic: p.topic, partition: p.partition, error,
      highWatermark: log?.highWatermark ?? -1n, logStartOffset: log?.logStartOffset ?? -1n, logEndOffset: log?.logEndOffset ?? -1n,
      records: EMPTY, divergingEpoch: -1, divergingEndOffset: -1n, ...extra,
    });
    const state = this.#o.metadata.snapshot().topics.get(p.topic)?.partitions[p.partition];
    if (!state) return answer('UNKNOWN_TOPIC_OR_PARTITION');
    if (p.currentLeaderEpoch >= 0 && p.currentLeaderEpoch < state.leaderEpoch) return answer('FENCED_LEADER_EPOCH');
    if (p.currentLeaderEpoch > state.leaderEpoch) return answer('UNKNOWN_LEADER_EPOCH');
    if (state.leader !== this.#o.nodeId || !state.replicas.includes(replicaId) || replicaId === this.#o.nodeId) return answer('NOT_LEADER_OR_FOLLOWER');
    const found = await this.#o.partitions.leaderLog(p.topic, p.partition);
    if (!found.ok) return answer(found.error === 'LEADER_NOT_AVAILABLE' ? 'NOT_LEADER_OR_FOLLOWER' : found.error);
    const log = found.log;
    const lead = this.leadership(found.topic, found.state, log);
    if (!lead) return answer('NOT_LEADER_OR_FOLLOWER');
    const leo = log.logEndOffset;
    if (p.lastFetchedEpoch >= 0) {
      // The same check as a consumer's fetch (divergence, below).
      const end = divergence(log, p.lastFetchedEpoch, p.fetchOffset);
      if (end === 'out-of-range') return answer('OFFSET_OUT_OF_RANGE', log);
      if (end) return answer('', log, { divergingEpoch: end.epoch, divergingEndOffset: end.endOffset });
    }
    if (p.fetchOffset < log.logStartOffset || p.fetchOffset > leo) return answer('OFFSET_OUT_OF_RANGE', log);
    if (update) this.#followerFetched(lead, replicaId, p.fetchOffset);
    if (limit <= 0 && !first) return answer('', log);
    // Reassignment throttling (throttle.ts): an out-of-sync follower of a listed partition gets
    // nothing while this broker's leader quota is exceeded; every follower's bytes of a listed
    // partition are counted, in-sync ones too (Kafka: the total replication traffic is bounded).
    const listed = this.#throttle.listed('leader', found.topic, p.partition);
    if (listed && !lead.isr.includes(replicaId) && this.#throttle.exceeded('leader')) return answer('', log);
    // What the leader appended last, from memory: the bytes a read would return (a follower that
    // keeps up fetches exactly there), without reading the segment back.
    const kept = tailFrom(lead, p.fetchOffset, Math.max(0, limit), first);
    if (kept) {
      if (listed) this.#throttle.record('leader', kept.length);
      return answer('', log, { records: kept });
    }
    try {
      // Followers would refuse a corrupt batch anyway; checking it here repairs it (corruptBatch).
      const read = await log.read(p.fetchOffset, Math.max(0, limit), { minOneBatch: first, verify: true });
      if (listed) this.#throttle.record('leader', read.records.length);
      return answer('', log, { records: read.records });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'CORRUPT_MESSAGE') this.corruptBatch(p.topic, p.partition, log, p.fetchOffset);
      return answer(code === 'OFFSET_OUT_OF_RANGE' ? 'OFFSET_OUT_OF_RANGE' : 'KAFKA_STORAGE_ERROR', log);
    }
  }

  /** Kafka's `Replica.updateFetchState`: log end offset and the last time it was caught up. */
  #followerFetched(lead: Leadership, id: number, fetchOffset: bigint): void {
    const now = Date.now();
    const leaderEnd = lead.log.logEndOffset;
    let f = lead.followers.get(id);
    if (!f) lead.followers.set(id, (f = { leo: -1n, lastCaughtUpMs: 0, lastFetchMs: 0, lastFetchLeaderEnd: -1n }));
    if (fetchOffset >= leaderEnd) f.lastCaughtUpMs = Math.max(f.lastCaughtUpMs, now);
    else if (fetchOffset >= f.lastFetchLeaderEnd) f.lastCaughtUpMs = Math.max(f.lastCaughtUpMs, f.lastFetchMs);
    f.lastFetchLeaderEnd = leaderEnd;
    f.lastFetchMs = now;
    f.leo = fetchOffset;
    this.#trimTail(lead);
    this.#maybeAdvanceHighWatermark(lead);
    // Expand: a live follower that reached the high watermark and this epoch's start rejoins.
    if (!lead.isr.includes(id) && fetchOffset >= lead.log.highWatermark && fetchOffset >= lead.epochStartOffset && this.#o.metadata.snapshot().brokers.has(id)) {
      this.#propose(lead, [...lead.isr, id].sort((a, b) => a - b), `follower ${id} caught up`);
    }
  }

  // ------------------------------------------------------------------ the tail kept for followers

  /**
   * Keeps an append's bytes (`payload`, now holding the offsets and leader epoch the log assigned
   * in place) for the followers' next fetch. Only when they are exactly what the log stored: the
   * topic keeps the producer's compression (no recompressed copy was written), and the batches
   * chain from `base` to `end` under this leader epoch; anything else is left to the log.
   */
  #remember(lead: Leadership, base: bigint, end: bigint, payload: Buffer): void {
    if (!inSyncFollowers(lead, this.#o.nodeId).length || lead.log.config.compressionType !== 'producer') return;
    const bytes = keepable(payload);
    const memory = heldBy(bytes);
    if (memory > TAIL_PARTITION_MAX_BYTES || this.#tailBytes + memory > TAIL_BROKER_MAX_BYTES) return this.#dropTail(lead, lead.tail.length);
    let pos = 0;
    let next = base;
    while (pos + BATCH_HEADER_BYTES <= payload.length) {
      if (payload.readBigInt64BE(pos) !== next || payload.readInt32BE(pos + 12) !== lead.leaderEpoch) return this.#dropTail(lead, lead.tail.length);
      next = payload.readBigInt64BE(pos) + BigInt(payload.readInt32BE(pos + 23)) + 1n;
      pos += 12 + payload.readInt32BE(pos + 8);
    }
    if (pos !== payload.length || next !== end) return this.#dropTail(lead, lead.tail.length);
    // Contiguous only: after a gap (an append not kept) the older entries can no longer be served.
    if (lead.tail.length > 0 && lead.tail.at(-1)!.end !== base) this.#dropTail(lead, lead.tail.length);
    lead.tail.push({ base, end, bytes });
    lead.tailBytes += memory;
    this.#tailBytes += memory;
    let drop = 0;
    for (let over = lead.tailBytes - TAIL_PARTITION_MAX_BYTES; over > 0; drop++) over -= heldBy(lead.tail[drop]!.bytes);
    if (drop > 0) this.#dropTail(lead, drop);
  }

  /**
   * Drops the entries every in-sync follower has fetched past (one that has not fetched in this
   * epoch keeps them, up to the caps). A follower out of the ISR reads the log, as any late reader.
   */
  #trimTail(lead: Leadership): void {
    if (lead.tail.length === 0) return;
    let min = lead.localEnd;
    for (const id of inSyncFollowers(lead, this.#o.nodeId)) {
      const leo = lead.followers.get(id)?.leo ?? -1n;
      if (leo < min) min = leo;
    }
    let drop = 0;
    while (drop < lead.tail.length && lead.tail[drop]!.end <= min) drop++;
    if (drop > 0) this.#dropTail(lead, drop);
  }

  /** Drops the first `n` entries of a partition's tail. */
  #dropTail(lead: Leadership, n: number): void {
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += heldBy(lead.tail[i]!.bytes);
    lead.tail.splice(0, n);
    lead.tailBytes -= bytes;
    this.#tailBytes -= bytes;
  }

  // ------------------------------------------------------------------ ISR proposals

  /**
   * Every replica.lag.time.max.ms / 2: propose out the ISR members not caught up for
   * replica.lag.time.max.ms. A lagging member of a proposal whose outcome is unknown counts too
   * (the answer, even "no change", settles it), or the high watermark would wait for it forever.
   */
  #checkIsr(): void {
    const now = Date.now();
    for (const lead of this.#leaders.values()) {
      const lagging = inSyncFollowers(lead, this.#o.nodeId).filter((id) => now - (lead.followers.get(id)?.lastCaughtUpMs ?? 0) > this.#lagMs);
      if (lagging.length > 0) this.#propose(lead, lead.isr.filter((id) => !lagging.includes(id)), `followers ${lagging.join(',')} lag`);
    }
  }

  /**
   * One alterPartition at a time per partition, from the state this leader holds. A refusal
   * (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION: our metadata is behind) waits for a newer
   * version, or a lag interval, before proposing again. Only a committed ISR counts: the store
   * resolves once its snapshot holds it and the metadata event refreshes this leadership.
   */
  #propose(lead: Leadership, isr: number[], why: string): void {
    if (this.#stopped || lead.proposing) return;
    if (lead.refusedVersion === lead.version && Date.now() < lead.retryAtMs) return;
    lead.proposing = true;
    // An earlier proposal whose call failed may still have committed: keep waiting for its members too.
    lead.pendingIsr = [...new Set([...(lead.pendingIsr ?? []), ...isr])];
    const version = lead.version;
    const backoff = () => {
      lead.refusedVersion = version;
      lead.retryAtMs = Date.now() + Math.max(500, Math.floor(this.#lagMs / 2));
    };
    this.#o.logger.info({ topic: lead.topic, partition: lead.partition, from: lead.isr, to: isr, why }, 'proposing an ISR change');
    this.#o.metadata.alterPartition({ topic: lead.topic, partition: lead.partition, leaderEpoch: lead.leaderEpoch, version, isr }).then(
      (res) => {
        lead.proposing = false;
        // The answer carries the committed state. A refusal at our version: nothing proposed since
        // it committed. A newer version is applied below (and clears pendingIsr in #refresh).
        if (res.error === null || res.partition?.version === version) lead.pendingIsr = null;
        if (res.error !== null) {
          backoff();
          this.#o.logger.info({ topic: lead.topic, partition: lead.partition, error: res.error }, 'ISR change refused');
        }
        const committed = res.partition;
        if (committed && this.#leaders.get(lead.key) === lead && committed.leaderEpoch === lead.leaderEpoch && committed.version > lead.version) {
          this.#refresh(lead, committed, lead.minIsr);
        }
      },
      (err: unknown) => {
        lead.proposing = false;
        backoff();
        this.#o.logger.warn({ topic: lead.topic, partition: lead.partition, err: (err as Error).message }, 'ISR change failed');
      },
    );
  }
}

/**
 * Kafka's check of a fetcher's `last_fetched_epoch` (Partition.fetchRecords), for consumers and
 * followers alike, over the log's one end-offset-for-epoch rule (LeaderEpochCache.endOffsetFor):
 * an epoch that cannot be placed (newer than all we have, or an empty history), or a fetch offset
 * below the log start, is OFFSET_OUT_OF_RANGE. When our history has a smaller epoch there, or the
 * epoch ends before the fetch offset, the fetcher's records from that end on are not ours: it is
 * answered that epoch and end, and truncates.
 */
export function divergence(log: PartitionLog, lastFetchedEpoch: number, fetchOffset: bigint): { epoch: number; endOffset: bigint } | 'out-of-range' | null {
  const end = log.leaderEpochs.endOffsetFor(lastFetchedEpoch, log.logEndOffset);
  if (end.endOffset < 0n || fetchOffset < log.logStartOffset) return 'out-of-range';
  return end.epoch < lastFetchedEpoch || end.endOffset < fetchOffset ? end : null;
}

/**
 * The last stable offset (KIP-98): the high watermark, or the first offset of the earliest open
 * transaction when that is lower. read_committed consumers read below it; ListOffsets latest
 * answers it for them.
 */
export function lastStableOffset(log: PartitionLog): bigint {
  const hw = log.highWatermark;
  const unstable = log.firstUnstableOffset();
  return unstable !== null && unstable < hw ? unstable : hw;
}

/** The followers the high watermark waits for: the ISR and the members of an ISR proposed whose outcome is not known. */
function inSyncFollowers(lead: Leadership, self: number): number[] {
  return [...new Set([...lead.isr, ...(lead.pendingIsr ?? [])])].filter((id) => id !== self);
}

/** Whether a broker holds a replica of the partition (a reassignment's newcomers are in `replicas` too). */
function isReplica(state: PartitionState, nodeId: number): boolean {
  return state.replicas.includes(nodeId) || (state.addingReplicas?.includes(nodeId) ?? false);
}

/**
 * A follower's fetch at `offset` answered from the leader's tail: whole appends from the one that
 * starts exactly there, up to `limit` bytes (the first one whatever its size when `first`, as a
 * read with minOneBatch), or null when the tail does not start an append there.
 */
function tailFrom(lead: Leadership, offset: bigint, limit: number, first: boolean): Buffer | null {
  const i = lead.tail.findIndex((e) => e.base === offset);
  if (i < 0) return null;
  const parts: Buffer[] = [];
  let bytes = 0;
  for (let j = i; j < lead.tail.length; j++) {
    const b = lead.tail[j]!.bytes;
    if (bytes + b.length > limit && !(first && j === i)) break;
    parts.push(b);
    bytes += b.length;
  }
  if (parts.length === 0) return null;
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
}

/**
 * The bytes of an append, to keep after its request is answered. A view when they fill at least a
 * quarter of the memory under them (a request read in one socket chunk: its own allocation, never
 * reused; the tail counts that whole memory against its caps); else a copy in memory of its own (a
 * small append in Node's shared 8 KiB pool would pin a whole slab). Copies of big appends were the
 * largest share of a leader's ArrayBuffer churn, which sets how often V8 runs full collections.
 */
function keepable(payload: Buffer): Buffer {
  if (payload.length * 4 >= payload.buffer.byteLength) return payload;
  const bytes = Buffer.allocUnsafeSlow(payload.length);
  payload.copy(bytes);
  return bytes;
}

/** The memory a kept append holds: its own copy, or the whole buffer a view keeps alive. */
function heldBy(bytes: Buffer): number {
  return bytes.buffer.byteLength;
}

/** The answer for an acks=all append ending at `requiredEnd`, or null while it must wait. */
function commitState(lead: Leadership, requiredEnd: bigint): number | null {
  if (lead.isr.length < lead.minIsr) return ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND;
  if (lead.log.highWatermark >= requiredEnd) return ErrorCode.NONE;
  return null;
}
