import { mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { BatchError, crc32c, scanLog, validateAndAssign, type BatchInfo } from '@runnel/native';
import { onceEvery, type Logger } from '@runnel/common';
import type { OffloadPool } from '@runnel/offload';
import { encodeRecordBatch } from '@runnel/protocol';
import { ATTR_TIMESTAMP_TYPE, CONTROL_ABORT, CONTROL_COMMIT, OFF_ATTRIBUTES, OFF_CRC, OFF_MAX_TIMESTAMP, fileName, readControlRecord } from './batch.ts';
import { fsyncDir, readCheckpoint, unlinkIfExists, writeCheckpoint } from './checkpoint.ts';
import type { LogConfig } from './config.ts';
import { StorageError, errnoCode, ignoreNoSpace } from './errors.ts';
import { LeaderEpochCache } from './leader-epoch.ts';
import { Mutex } from './mutex.ts';
import { ProducerStateManager, type CompletedTxn, type ProducerEntry } from './producer-state.ts';
import type { AbortedTxn } from './txn-index.ts';
import { prepareIncoming } from './incoming.ts';
import { LogSegment } from './segment.ts';
import { isOutOfDescriptors, outOfDescriptorsMessage, reportOutOfDescriptors } from './file-cache.ts';
import { searchBatch, type TimestampAndOffset } from './time-lookup.ts';

export interface AppendResult {
  baseOffset: bigint;
  lastOffset: bigint;
  /** The broker time written into LogAppendTime batches, -1 for CreateTime. */
  logAppendTime: bigint;
  /** An idempotent retry: offsets are the original ones, nothing was written. */
  duplicate: boolean;
}

/** A transaction marker written by `appendControl` (the coordinator's WriteTxnMarkers). */
export interface TxnMarkerInput {
  producerId: bigint;
  producerEpoch: number;
  commit: boolean;
  coordinatorEpoch: number;
}

/** One producer of the partition, as DescribeProducers reports it. */
export interface ProducerSnapshotEntry {
  producerId: bigint;
  producerEpoch: number;
  /** Sequence of its last record, -1 when unknown (only markers or sequence-less batches). */
  lastSequence: number;
  lastTimestamp: bigint;
  coordinatorEpoch: number;
  /** First offset of its open transaction, -1n when none. */
  currentTxnStartOffset: bigint;
}

export interface ReadResult {
  /** Whole batches, possibly empty. */
  records: Buffer;
  highWatermark: bigint;
  logStartOffset: bigint;
  logEndOffset: bigint;
}

/** The state of one log dir shared by its partitions (owned by LogManager). */
export interface LogDirState {
  path: string;
  online: boolean;
  error?: string;
  markOffline(err: unknown): void;
  /** Per-dir I/O figures (metrics): bytes appended, bytes read, each fdatasync's duration. */
  io?: DirIo;
}

/** What a PartitionLog needs from its LogManager. */
/** What a log dir's partitions report of their I/O (LogManager.ioObserver, per dir). */
export interface DirIo {
  written(bytes: number): void;
  read(bytes: number): void;
  fsynced(seconds: number): void;
}

export interface PartitionLogContext {
  logDir: LogDirState;
  logger: Logger;
  durable: boolean;
  groupCommitWindowMs: number;
  /** Where large compressed batches are validated off the event loop. */
  pool?: OffloadPool;
  /** The log start offset moved (DeleteRecords, retention): persist the dir's checkpoint. */
  onLogStartOffsetChanged(log: PartitionLog): Promise<void>;
}

const PRODUCER_SNAPSHOT = 'producer-state-checkpoint';
const LEADER_EPOCH_CHECKPOINT = 'leader-epoch-checkpoint';
const EMPTY = Buffer.alloc(0);
/** Closed transactions remembered above the high watermark before markers are refused (see PartitionLog.unreplicatedTxns). */
const MAX_UNREPLICATED_TXNS = 10_000;
/** Upper bounds of one coalesced write. */
const MAX_GROUP_APPENDS = 512;
const MAX_GROUP_BYTES = 16 * 1024 * 1024;
/** One 'leader epoch checkpoint not written' warning a minute per log dir (a full disk fails every append's write). */
const epochCheckpointWarnings = onceEvery(60_000);

interface QueuedAppend {
  /** Set when the record checks (and any recompression) are done. */
  payload: Buffer | null;
  /** Set when they failed. */
  error: unknown;
  ready: Promise<void>;
  leaderEpoch: number | undefined;
  /** Set for a control batch written by appendControl (clients may not write control batches). */
  marker?: TxnMarkerInput;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/** A queued append whose payload is ready to validate and write. */
type ReadyAppend = QueuedAppend & { payload: Buffer };

interface Prepared {
  item: ReadyAppend;
  batches: BatchInfo[];
  /** Producer entries this append changes (applied when its group is written). */
  pending: Map<bigint, ProducerEntry>;
  duplicate: boolean;
  result: AppendResult;
  /** A marker closed this transaction (applied to the bookkeeping once written). */
  completed?: CompletedTxn;
  /** The LSO right after that marker (the `.txnindex` entry of an abort). */
  lastStableOffset?: bigint;
}

/** Loading state handed from LogManager (read from the log dir's checkpoint files). */
export interface LoadOptions {
  cleanShutdown: boolean;
  recoveryPoint: bigint | undefined;
  logStartOffset: bigint | undefined;
  /**
   * The high watermark from the dir's `replication-offset-checkpoint`; clamped to the recovered
   * log. Absent (no entry): the log end, as a single node that commits what it appends.
   */
  highWatermark?: bigint | undefined;
  /** Called with the number of segments still to recover, for progress logs. */
  onSegmentRecovered?: () => void;
}

/**
 * One partition's log: `<logDir>/<topic>-<partition>/` holding segments (segment.ts), the
 * `leader-epoch-checkpoint` and the `producer-state-checkpoint` (producer-state.ts).
 *
 * Concurrency: every mutation (append, roll, truncate, retention, compaction swap) runs under one
 * FIFO mutex: a single writer per partition. Reads run concurrently; they see every append that
 * resolved before they started. With `durable`, an append resolves after an fdatasync that covers
 * it; appends waiting together share one fdatasync (group commit), and the writer does not wait for
 * the fsync, so the next appends keep filling the page cache meanwhile.
 */
export class PartitionLog {
  readonly topic: string;
  readonly partition: number;
  /** The partition directory. */
  readonly dir: string;
  config: LogConfig;
  highWatermark = 0n;
  /** Everything below is on stable storage (segments flushed); unclean recovery starts at its segment. */
  recoveryPoint = 0n;
  readonly producerState = new ProducerStateManager();
  leaderEpochs: LeaderEpochCache;
  /** Counters for tests and metrics: group-commit rounds (one fdatasync per dirty segment each). */
  readonly stats = { groupCommits: 0, appends: 0 };
  /** Offsets below were compacted (cleaner checkpoint), for the dirty ratio. */
  cleanerCheckpoint = 0n;
  /**
   * Transactions closed by a marker that may not have reached the high watermark yet (Kafka's
   * `unreplicatedTxns`): they keep the first unstable offset at their first offset until it does.
   * In marker order with strictly increasing first offsets (one closed later with a lower or equal
   * first offset makes the earlier ones irrelevant: it stays unstable at least as long), so the
   * first one left after pruning against `highWatermark` is the answer. None is ever dropped above
   * the high watermark (the LSO would pass a marker that may be truncated away, and a follower
   * becoming leader could expose its aborted records to read_committed); instead a leader whose
   * high watermark stalls refuses markers once `maxUnreplicatedTxns` are waiting (appendControl):
   * each entry is one marker above the high watermark, so followers and recovery hold no more than
   * the log above it does.
   */
  private unreplicatedTxns: CompletedTxn[] = [];
  /** @internal The cap above (tests lower it). */
  maxUnreplicatedTxns = MAX_UNREPLICATED_TXNS;

  private readonly ctx: PartitionLogContext;
  private segments: LogSegment[] = [];
  private logStart = 0n;
  private readonly lock = new Mutex();
  private unflushedMessages = 0;
  private lastFlushMs = Date.now();
  private dirtySegments = new Set<LogSegment>();
  private syncWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private syncLoopRunning = false;
  private flushChain: Promise<void> = Promise.resolve();
  private pendingDeletes = new Set<{ timer: NodeJS.Timeout | null; run: () => Promise<void> }>();
  private closed = false;
  /**
   * Counts the changes that rewrite bytes already in a segment file (truncation here, a swap in
   * compaction.ts): a move between log dirs (FutureCopy) copies only what files gained since its
   * last pass, which is only right while this count stays the same.
   */
  rewrites = 0;
  private appendQueue: QueuedAppend[] = [];
  private writerScheduled = false;

  private constructor(topic: string, partition: number, dir: string, config: LogConfig, ctx: PartitionLogContext) {
    this.topic = topic;
    this.partition = partition;
    this.dir = dir;
    this.config = config;
    this.ctx = ctx;
    this.leaderEpochs = new LeaderEpochCache(join(dir, LEADER_EPOCH_CHECKPOINT));
  }

  get logStartOffset(): bigint {
    return this.logStart;
  }
  get logEndOffset(): bigint {
    return this.active.nextOffset;
  }
  get sizeBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }
  get online(): boolean {
    return this.ctx.logDir.online && !this.closed;
  }
  /** The log dir path this partition lives in. */
  get logDir(): string {
    return this.ctx.logDir.path;
  }
  /** Segment base offsets and sizes, oldest first (tests, tools). */
  segmentInfo(): { baseOffset: bigint; nextOffset: bigint; size: number; maxTimestamp: bigint }[] {
    return this.segments.map((s) => ({ baseOffset: s.baseOffset, nextOffset: s.nextOffset, size: s.size, maxTimestamp: s.maxTimestamp }));
  }
  /** @internal for the cleaner and tests. */
  segmentList(): readonly LogSegment[] {
    return this.segments;
  }
  private get active(): LogSegment {
    return this.segments[this.segments.length - 1];
  }
  private get segmentOptions() {
    return { indexIntervalBytes: this.config.indexIntervalBytes, segmentIndexBytes: this.config.segmentIndexBytes };
  }

  /** A new, empty partition log. */
  static async create(logDir: string, topic: string, partition: number, config: LogConfig, ctx: PartitionLogContext): Promise<PartitionLog> {
    const dir = join(logDir, `${topic}-${partition}`);
    await mkdir(dir, { recursive: true });
    const log = new PartitionLog(topic, partition, dir, config, ctx);
    log.segments.push(await LogSegment.create(dir, 0n, log.segmentOptions));
    try {
      // An empty cache: on a full disk the file is written with the first epoch instead.
      await log.leaderEpochs.flush(true).catch(ignoreNoSpace);
      if (ctx.durable) await fsyncDir(logDir);
    } catch (err) {
      await log.closeQuietly();
      throw err;
    }
    return log;
  }

  /**
   * Load an existing partition dir (Kafka `LogLoader`). After a clean shutdown only the indexes are
   * sanity-checked and the tail after the last index entry is walked. Otherwise every segment from
   * the one holding the recovery point is scanned (native CRC + lengths + offset order), the first
   * invalid byte and all later segments are removed, the indexes are rebuilt, and the producer
   * state and leader-epoch cache are replayed from the log.
   */
  static async load(dir: string, topic: string, partition: number, config: LogConfig, ctx: PartitionLogContext, opts: LoadOptions): Promise<PartitionLog> {
    const log = new PartitionLog(topic, partition, dir, config, ctx);
    const names = await readdir(dir);
    const bases: bigint[] = [];
    for (const n of names) {
      if (n.endsWith('.deleted') || n.endsWith('.cleaned') || n.endsWith('.swap') || n.endsWith('.tmp')) {
        await unlinkIfExists(join(dir, n));
        continue;
      }
      const m = /^(\d{20})\.log$/.exec(n);
      if (m) bases.push(BigInt(m[1]));
    }
    bases.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // Segments with a `.txnindex` (most have none: it exists only once the segment holds an abort).
    const txnIndexes = new Set<bigint>();
    for (const n of names) {
      const m = /^(\d{20})\.(index|timeindex|txnindex)$/.exec(n);
      if (m && !bases.includes(BigInt(m[1]))) await unlinkIfExists(join(dir, n));
      else if (m?.[2] === 'txnindex') txnIndexes.add(BigInt(m[1]));
    }
    log.leaderEpochs = await LeaderEpochCache.load(join(dir, LEADER_EPOCH_CHECKPOINT));

    if (bases.length === 0) {
      const start = opts.logStartOffset ?? 0n;
      log.segments.push(await LogSegment.create(dir, start, log.segmentOptions));
      log.logStart = start;
      log.recoveryPoint = start;
      log.highWatermark = start;
      return log;
    }

    // Segments from this index on are scanned (unclean shutdown).
    let recoverFrom = bases.length;
    if (!opts.cleanShutdown) {
      const rp = opts.recoveryPoint ?? 0n;
      recoverFrom = 0;
      for (let i = 0; i < bases.length; i++) if (bases[i] <= rp) recoverFrom = i;
    }
    // Producer state and leader epochs are rebuilt while scanning (no per-batch list is kept):
    // the snapshot gives the state below `snapAt`; batches from there on are applied in order.
    const snapAt = await log.loadProducerSnapshot(bases[0]);
    const replayFrom = snapAt ?? 0n;
    // Transactions too: the replay closes open transactions at their markers and adds the aborts
    // a segment's `.txnindex` misses at its end (written after its last flush; TxnIndex.append
    // skips those it has). Entries before `replayFrom` are as loaded: a segment's txnindex is
    // written at its roll, before the snapshot that bounds the replay.
    const replay = (seg: LogSegment) => (b: BatchInfo, buf: Buffer, at: number) => {
      if (b.baseOffset >= replayFrom) log.replayBatch(seg, b, buf, at, replayFrom);
    };
    let txnIndexCorrupt = false;
    if (recoverFrom < bases.length) log.leaderEpochs.truncateFromEnd(bases[recoverFrom]);
    let truncatedAt = -1;
    for (let i = 0; i < bases.length; i++) {
      const upper = i + 1 < bases.length ? bases[i + 1] : null;
      if (i >= recoverFrom) {
        const { segment } = await LogSegment.open(dir, bases[i], log.segmentOptions, upper, txnIndexes.has(bases[i]));
        txnIndexCorrupt ||= segment.txnIndexCorrupt;
        const onBatch = replay(segment);
        const r = await segment.recover((b, buf, at) => {
          onBatch(b, buf, at);
          log.leaderEpochs.assign(b.partitionLeaderEpoch, b.baseOffset);
        });
        segment.txnIndex.truncateTo(segment.nextOffset);
        log.segments.push(segment);
        opts.onSegmentRecovered?.();
        if (r.truncatedBytes > 0) {
          ctx.logger.warn({ topic, partition, segment: String(bases[i]), truncatedBytes: r.truncatedBytes, validBytes: r.validBytes }, 'recovery truncated an invalid tail');
          truncatedAt = i;
          break;
        }
      } else {
        const { segment, truncatedBytes, rebuilt } = await LogSegment.open(dir, bases[i], log.segmentOptions, upper, txnIndexes.has(bases[i]));
        txnIndexCorrupt ||= segment.txnIndexCorrupt;
        if (rebuilt) ctx.logger.warn({ topic, partition, segment: String(bases[i]) }, 'rebuilt a missing or corrupt index');
        log.segments.push(segment);
        opts.onSegmentRecovered?.();
        if (truncatedBytes > 0 && upper === null) truncatedAt = i;
        else if (truncatedBytes > 0) ctx.logger.warn({ topic, partition, segment: String(bases[i]), truncatedBytes }, 'truncated an invalid segment tail');
        // Replay the producer batches of flushed segments after the snapshot (header scan).
        if (segment.nextOffset > replayFrom) await segment.scan(0, null, replay(segment));
        segment.txnIndex.truncateTo(segment.nextOffset);
      }
    }
    if (truncatedAt >= 0 && truncatedAt + 1 < bases.length) {
      // Kafka deletes the segments after a truncated one; they may be intact, so they are moved
      // aside instead (docs/on-disk-format.md, "Recovery"): an operator can restore them, and a
      // replica re-fetches the missing offsets from its leader meanwhile.
      const later = bases.slice(truncatedAt + 1);
      const aside = await moveSegmentsAside(dir, later);
      ctx.logger.warn(
        { topic, partition, segments: later.map(String), aside, truncatedSegment: String(bases[truncatedAt]), logEndOffset: String(log.active.nextOffset) },
        `recovery found a corrupt batch in segment ${String(bases[truncatedAt])} and moved the ${later.length} later segment(s) aside to ${aside} (not deleted): to restore them, stop the broker before it takes new writes for ${topic}-${partition} and move the files back (docs/on-disk-format.md)`,
      );
    }
    const leo = log.active.nextOffset;
    log.logStart = opts.logStartOffset !== undefined && opts.logStartOffset > log.segments[0].baseOffset ? opts.logStartOffset : log.segments[0].baseOffset;
    if (log.logStart > leo) log.logStart = leo;
    log.recoveryPoint = opts.cleanShutdown ? leo : opts.recoveryPoint !== undefined && opts.recoveryPoint < leo ? opts.recoveryPoint : log.segments[Math.min(recoverFrom, log.segments.length - 1)].baseOffset;
    if (log.recoveryPoint > leo) log.recoveryPoint = leo;
    // A replica's high watermark comes back from the checkpoint (never above what was recovered);
    // its leader raises it again as the ISR catches up.
    const hw = opts.highWatermark;
    log.highWatermark = hw === undefined || hw > leo ? leo : hw < log.logStart ? log.logStart : hw;
    log.leaderEpochs.truncateFromEnd(leo);
    log.leaderEpochs.truncateFromStart(log.logStart);
    // A full disk at start: the cache is right in memory, and every load truncates the file's again.
    await log.leaderEpochs.flush().catch(ignoreNoSpace);
    // A snapshot past the recovered end (data lost after it was written) is useless, and a
    // malformed `.txnindex` can only be rebuilt from a replay of every transaction: replay everything.
    if ((snapAt !== null && snapAt > leo) || txnIndexCorrupt) {
      if (txnIndexCorrupt) ctx.logger.warn({ topic, partition }, 'a .txnindex file is malformed: rebuilding the transaction indexes from the log');
      await log.rebuildProducerState(false, 0n);
    }
    log.producerState.truncateHead(log.logStart);
    log.pruneUnreplicatedTxns();
    // Rebuilt entries are written now (a full disk: they stay in memory until the next flush, roll or close).
    for (const seg of log.segments) await seg.txnIndex.flush(false).catch(ignoreNoSpace);
    return log;
  }

  /** Load `producer-state-checkpoint` into the state; returns its offset, or null when absent or unusable. */
  private async loadProducerSnapshot(firstBase: bigint): Promise<bigint | null> {
    this.producerState.clear();
    try {
      const entries = await readCheckpoint(join(this.dir, PRODUCER_SNAPSHOT));
      if (!entries) return null;
      const tmp = new ProducerStateManager();
      const at = ProducerStateManager.parse(entries, tmp);
      if (at < firstBase) return null;
      this.producerState.adopt(tmp);
      return at;
    } catch (err) {
      this.ctx.logger.warn({ topic: this.topic, partition: this.partition, err: String(err) }, 'ignoring an unreadable producer state snapshot');
      return null;
    }
  }

  /**
   * Producer state = snapshot (when `useSnapshot` and not past the log end) + replay of every batch
   * after it. `reindexFrom`: aborts from that offset on that a segment's `.txnindex` lacks at its
   * end are added (a malformed one was loaded empty); null: the indexes are left as they are.
   */
  private async rebuildProducerState(useSnapshot: boolean, reindexFrom: bigint | null = null): Promise<void> {
    const leo = this.logEndOffset;
    let from = useSnapshot ? await this.loadProducerSnapshot(this.segments[0].baseOffset) : null;
    if (from === null || from > leo) {
      this.producerState.clear();
      from = this.logStart;
    }
    this.unreplicatedTxns = [];
    const start = from;
    const indexFrom = reindexFrom ?? leo + 1n;
    for (const seg of this.segments) {
      if (seg.nextOffset <= start) continue;
      await seg.scan(0, null, (b, buf, at) => {
        if (b.baseOffset >= start) this.replayBatch(seg, b, buf, at, indexFrom);
      });
    }
    this.pruneUnreplicatedTxns();
  }

  /**
   * Producer and transaction bookkeeping of one batch already in the log (recovery, truncation,
   * follower appends): data batches update their producer, a COMMIT/ABORT marker closes its
   * producer's transaction, and an ABORT at or past `indexFrom` is added to `seg`'s `.txnindex`.
   */
  private replayBatch(seg: LogSegment, b: BatchInfo, buf: Buffer, at: number, indexFrom: bigint): void {
    if (!b.isControl) {
      this.producerState.apply(b);
      return;
    }
    if (b.producerId < 0n) return;
    const record = readControlRecord(buf, at);
    if (record === null || (record.type !== CONTROL_ABORT && record.type !== CONTROL_COMMIT)) return;
    const completed = this.producerState.applyMarker({
      producerId: b.producerId,
      producerEpoch: b.producerEpoch,
      coordinatorEpoch: record.coordinatorEpoch,
      commit: record.type === CONTROL_COMMIT,
      offset: b.baseOffset,
      timestamp: b.maxTimestamp,
    });
    if (completed) this.txnCompleted(seg, completed, completed.aborted && b.baseOffset >= indexFrom ? (this.producerState.firstOngoingOffset() ?? b.baseOffset + 1n) : null);
  }

  /** A marker in `seg` closed a transaction: it stays unstable until replicated; an abort with `lastStableOffset` is indexed. */
  private txnCompleted(seg: LogSegment, c: CompletedTxn, lastStableOffset: bigint | null): void {
    const u = this.unreplicatedTxns;
    while (u.length > 0 && u[u.length - 1].firstOffset >= c.firstOffset) u.pop();
    u.push(c);
    if (u.length > this.maxUnreplicatedTxns) this.pruneUnreplicatedTxns();
    if (c.aborted && lastStableOffset !== null) seg.txnIndex.append({ producerId: c.producerId, firstOffset: c.firstOffset, lastOffset: c.lastOffset, lastStableOffset });
  }

  /** Drop the closed transactions whose marker is below the high watermark. @internal */
  pruneUnreplicatedTxns(): void {
    const u = this.unreplicatedTxns;
    let n = 0;
    while (n < u.length && u[n].lastOffset < this.highWatermark) n++;
    if (n > 0) u.splice(0, n);
  }

  /**
   * Kafka `firstUnstableOffset`: the first offset of the earliest transaction that is open, or
   * closed by a marker not yet below the high watermark (never below the log start); null when
   * there is none. The broker's
   * last stable offset is min(high watermark, this).
   */
  firstUnstableOffset(): bigint | null {
    this.pruneUnreplicatedTxns();
    const open = this.producerState.firstOngoingOffset();
    const closed = this.unreplicatedTxns[0]?.firstOffset;
    const first = closed === undefined ? open : open === null || closed < open ? closed : open;
    // A transaction whose start DeleteRecords or retention removed is unstable from the log start (Kafka).
    return first !== null && first < this.logStart ? this.logStart : first;
  }

  /**
   * The aborted transactions a read_committed Fetch returns with the records of
   * [fetchOffset, upperBoundOffset) (Kafka `collectAbortedTransactions`): every one whose range
   * [firstOffset, marker offset] meets it. Searched from the segment holding fetchOffset on, until
   * an entry's last stable offset reaches upperBoundOffset (a transaction's marker may be in a
   * later segment than its records).
   */
  abortedTransactions(fetchOffset: bigint, upperBoundOffset: bigint): { producerId: bigint; firstOffset: bigint }[] {
    const found: AbortedTxn[] = [];
    const segments = this.segments;
    for (let i = this.floorSegment(fetchOffset); i < segments.length; i++) {
      if (segments[i].txnIndex.collect(fetchOffset, upperBoundOffset, found)) break;
    }
    return found.map((e) => ({ producerId: e.producerId, firstOffset: e.firstOffset }));
  }

  /** Every producer known to the partition (DescribeProducers). */
  producerSnapshot(): ProducerSnapshotEntry[] {
    return [...this.producerState.producers.values()].map((e) => ({
      producerId: e.producerId,
      producerEpoch: e.epoch,
      lastSequence: e.batches.at(-1)?.lastSeq ?? -1,
      lastTimestamp: e.lastTimestamp,
      coordinatorEpoch: e.coordinatorEpoch,
      currentTxnStartOffset: e.currentTxnFirstOffset,
    }));
  }

  private assertOnline(): void {
    if (!this.online) {
      throw new StorageError('LOG_DIR_OFFLINE', `${this.topic}-${this.partition}: log dir ${this.ctx.logDir.path} is offline${this.ctx.logDir.error ? ` (${this.ctx.logDir.error})` : ''}`, { retriable: true });
    }
  }

  /** Turn an fs error into a StorageError; anything but ENOSPC takes the log dir offline. */
  private ioError(err: unknown, what: string): StorageError {
    if (err instanceof StorageError) return err;
    const code = errnoCode(err);
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new StorageError('NO_SPACE', `${this.topic}-${this.partition}: ${what}: no space left on ${this.ctx.logDir.path}`, { cause: err, retriable: true });
    }
    // Out of file descriptors is a process limit, not a failed disk: this call fails (retriable), the dir stays online.
    if (isOutOfDescriptors(err)) {
      reportOutOfDescriptors(this.ctx.logger, `${this.topic}-${this.partition}: ${what}`, err);
      return new StorageError('STORAGE_ERROR', `${this.topic}-${this.partition}: ${what}: ${outOfDescriptorsMessage(err)}`, { cause: err, retriable: true });
    }
    if (this.closed) return new StorageError('LOG_DIR_OFFLINE', `${this.topic}-${this.partition}: log is closed`, { cause: err });
    this.ctx.logDir.markOffline(err);
    return new StorageError('LOG_DIR_OFFLINE', `${this.topic}-${this.partition}: ${what} failed, log dir ${this.ctx.logDir.path} is now offline: ${(err as Error).message}`, { cause: err, retriable: true });
  }

  /**
   * Validate (native), check idempotent producer sequences, assign offsets, write, update indexes.
   * Appends queued while the writer is busy are validated one by one and written together with
   * one writev (write coalescing); each still gets its own result or error.
   */
  async append(payload: Buffer, options?: { leaderEpoch?: number }): Promise<AppendResult> {
    this.assertOnline();
    // The queue slot is taken now, before the (possibly off-thread) record checks, so appends keep
    // the order they were called in: a pipelined producer's batches must not overtake each other.
    return this.enqueue((item) => {
      item.leaderEpoch = options?.leaderEpoch;
      item.ready = prepareIncoming(payload, { compression: this.config.compressionType, pool: this.ctx.pool, where: `${this.topic}-${this.partition}` }).then(
        (p) => {
          item.payload = p;
        },
        (err) => {
          item.error = err ?? new Error('append preparation failed');
        },
      );
    });
  }

  /**
   * Write one transaction marker as leader (Kafka `appendAsLeader` of an end-transaction marker):
   * a control batch (attributes transactional + control, baseSequence -1, the producer's id and
   * epoch) whose one record has key int16 0 + int16 type (0 ABORT, 1 COMMIT) and value int16 0 +
   * int32 coordinatorEpoch. It closes the producer's open transaction (an abort is indexed in the
   * active segment's `.txnindex`); a marker for a producer without one is written all the same,
   * as Kafka does. INVALID_PRODUCER_EPOCH when `producerEpoch` is below the producer's epoch,
   * TRANSACTION_COORDINATOR_FENCED when `coordinatorEpoch` is below its last marker's.
   */
  async appendControl(marker: TxnMarkerInput, options?: { leaderEpoch?: number }): Promise<AppendResult> {
    this.assertOnline();
    const key = Buffer.alloc(4);
    key.writeInt16BE(marker.commit ? CONTROL_COMMIT : CONTROL_ABORT, 2);
    const value = Buffer.alloc(6);
    value.writeInt32BE(marker.coordinatorEpoch, 2);
    const payload = encodeRecordBatch({
      records: [{ key, value }],
      control: true,
      transactional: true,
      producerId: marker.producerId,
      producerEpoch: marker.producerEpoch,
      baseSequence: -1,
    });
    return this.enqueue((item) => {
      item.leaderEpoch = options?.leaderEpoch;
      item.marker = { ...marker };
      item.payload = payload;
    });
  }

  private async enqueue(init: (item: QueuedAppend) => void): Promise<AppendResult> {
    const result = await new Promise<AppendResult>((resolve, reject) => {
      const item: QueuedAppend = { payload: null, error: undefined, ready: Promise.resolve(), leaderEpoch: undefined, resolve, reject };
      init(item);
      this.appendQueue.push(item);
      if (!this.writerScheduled) {
        this.writerScheduled = true;
        void this.lock.run(() => this.drainAppends());
      }
    });
    if (this.ctx.durable) await this.waitDurable();
    return result;
  }

  /** Write queued appends in call order, coalescing those already prepared into one group. */
  private async drainAppends(): Promise<void> {
    try {
      while (this.appendQueue.length > 0) {
        const group: ReadyAppend[] = [];
        let bytes = 0;
        while (this.appendQueue.length > 0 && group.length < MAX_GROUP_APPENDS && bytes < MAX_GROUP_BYTES) {
          const head = this.appendQueue[0];
          if (head.payload === null && head.error === undefined) {
            if (group.length > 0) break; // write what is ready; the next round waits for this one
            await head.ready;
          }
          this.appendQueue.shift();
          if (head.error !== undefined) {
            head.reject(head.error);
            continue;
          }
          group.push(head as ReadyAppend);
          bytes += head.payload!.length;
        }
        if (group.length > 0) await this.appendGroup(group);
      }
    } finally {
      this.writerScheduled = false;
    }
  }

  private async appendGroup(items: ReadyAppend[]): Promise<void> {
    const where = `${this.topic}-${this.partition}`;
    let next = this.logEndOffset;
    let group: Prepared[] = [];
    let groupBytes = 0;
    const groupPending = new Map<bigint, ProducerEntry>();

    /** Write the prepared group; false when the write failed (every member rejected). */
    const writeGroup = async (): Promise<boolean> => {
      if (group.length === 0) return true;
      const g = group;
      group = [];
      groupBytes = 0;
      const writes = g.filter((x) => !x.duplicate);
      const target = this.active;
      if (writes.length > 0) {
        try {
          await target.append(
            writes.map((x) => x.item.payload),
            writes.map((x) => x.batches),
          );
          if (this.ctx.logDir.io) {
            let n = 0;
            for (const x of writes) n += x.item.payload?.length ?? 0;
            this.ctx.logDir.io.written(n);
          }
        } catch (err) {
          const e = this.ioError(err, 'append');
          for (const x of g) x.item.reject(e);
          groupPending.clear();
          next = this.logEndOffset;
          return false;
        }
        this.dirtySegments.add(target);
      }
      this.producerState.commit(groupPending);
      groupPending.clear();
      for (const x of writes) if (x.completed) this.txnCompleted(target, x.completed, x.lastStableOffset ?? null);
      for (const x of writes) {
        for (const b of x.batches) {
          this.leaderEpochs.assign(b.partitionLeaderEpoch, b.baseOffset);
          this.unflushedMessages += b.recordCount;
        }
      }
      this.stats.appends += writes.length;
      // A new epoch, or one an earlier append could not write (disk full); otherwise a no-op.
      // The batches are in the log: the append has succeeded whatever happens to the checkpoint.
      const epochError = await this.writeLeaderEpochs();
      if (epochError) {
        for (const x of g) x.item.reject(epochError);
        return false;
      }
      // flush.messages: the fsync happens before the acknowledgement, as in Kafka's append.
      if (this.unflushedMessages >= this.config.flushMessages) {
        try {
          await this.flushLocked();
        } catch (err) {
          for (const x of g) x.item.reject(err);
          return false;
        }
      }
      for (const x of g) x.item.resolve(x.result);
      return true;
    };

    for (const item of items) {
      if (!this.online) {
        try {
          this.assertOnline();
        } catch (err) {
          item.reject(err);
        }
        continue;
      }
      const prepared = this.prepare(item, next, groupPending, where);
      if (prepared instanceof Error) {
        item.reject(prepared);
        continue;
      }
      if (prepared.duplicate || prepared.batches.length === 0) {
        if (prepared.batches.length === 0) item.resolve(prepared.result);
        else group.push(prepared);
        continue;
      }
      const lastOffset = prepared.result.lastOffset;
      const active = this.active;
      const projected = active.size + groupBytes;
      if (projected > 0 && (projected + item.payload.length > this.config.segmentBytes || Date.now() - active.createdMs > this.config.segmentMs || !active.canHold(lastOffset))) {
        if (!(await writeGroup())) {
          // Offsets were assigned after the failed group: this one fails with it.
          item.reject(new StorageError('STORAGE_ERROR', `${where}: an earlier append in the same write failed`, { retriable: true }));
          continue;
        }
        try {
          await this.roll(prepared.batches[0].baseOffset);
        } catch (err) {
          item.reject(this.ioError(err, 'roll'));
          continue;
        }
      }
      for (const [k, v] of prepared.pending) groupPending.set(k, v);
      group.push(prepared);
      groupBytes += item.payload.length;
      next = lastOffset + 1n;
    }
    await writeGroup();
  }

  /** Everything about one append that needs no I/O: native validation + offsets, limits, producer checks, LogAppendTime. */
  private prepare(item: ReadyAppend, next: bigint, groupPending: Map<bigint, ProducerEntry>, where: string): Prepared | Error {
    const { payload } = item;
    const leaderEpoch = item.leaderEpoch ?? Math.max(0, this.leaderEpochs.latestEpoch());
    let batches: BatchInfo[];
    try {
      batches = validateAndAssign(payload, next, leaderEpoch);
    } catch (err) {
      if (err instanceof BatchError) {
        return new StorageError('CORRUPT_MESSAGE', `${where}: invalid record batch ${err.batchIndex} at byte ${err.position}: ${err.code}: ${err.message}`, { cause: err });
      }
      return new StorageError('CORRUPT_MESSAGE', `${where}: ${(err as Error).message}`, { cause: err });
    }
    const none = { item, batches, pending: new Map<bigint, ProducerEntry>(), duplicate: false };
    if (batches.length === 0) return { ...none, result: { baseOffset: next, lastOffset: next - 1n, logAppendTime: -1n, duplicate: false } };
    for (const b of batches) {
      if (b.size > this.config.maxMessageBytes || b.size > this.config.segmentBytes) {
        return new StorageError('RECORD_TOO_LARGE', `${where}: batch of ${b.size} bytes exceeds max.message.bytes ${this.config.maxMessageBytes}${b.size > this.config.segmentBytes ? ` or segment.bytes ${this.config.segmentBytes}` : ''}`);
      }
    }
    const pending = new Map(groupPending);
    let completed: CompletedTxn | undefined;
    let lastStableOffset: bigint | undefined;
    if (item.marker) {
      // A marker from appendControl: fenced by producer and coordinator epoch, closes the transaction.
      const m = item.marker;
      const b = batches[0];
      try {
        this.producerState.checkMarker(m, pending);
      } catch (err) {
        return err as StorageError;
      }
      // The high watermark stalls (a lagging in-sync replica): the transaction stays open, hence
      // unstable, until a retry finds room; forgetting a closed one instead could expose an abort.
      this.pruneUnreplicatedTxns();
      if (this.unreplicatedTxns.length >= this.maxUnreplicatedTxns) {
        return new StorageError('TOO_MANY_UNREPLICATED_TXNS', `${where}: ${this.unreplicatedTxns.length} transactions closed above the high watermark ${this.highWatermark}; marker refused until it moves`, { retriable: true });
      }
      completed = this.producerState.applyMarker({ ...m, offset: b.baseOffset, timestamp: b.maxTimestamp }, pending) ?? undefined;
      if (completed?.aborted) lastStableOffset = this.producerState.firstOngoingOffset(m.producerId, pending) ?? b.baseOffset + 1n;
    } else {
      // Only the coordinator writes markers (Kafka: INVALID_RECORD for a client's control batch).
      const control = batches.findIndex((b) => b.isControl);
      if (control >= 0) return new BatchError('INVALID_RECORD', `${where}: clients may not write control batches`, control, batches[control].position);
      // Idempotent producers: every batch is either new (checked in order) or a retry of a retained one.
      let duplicates = 0;
      let dupFirst = 0n;
      let dupLast = 0n;
      try {
        for (const b of batches) {
          const c = this.producerState.check(b, pending);
          if (c.kind === 'duplicate') {
            if (duplicates === 0) dupFirst = c.firstOffset;
            dupLast = c.lastOffset;
            duplicates++;
          } else this.producerState.apply(b, pending);
        }
      } catch (err) {
        return err as StorageError;
      }
      if (duplicates === batches.length) return { item, batches, pending: new Map(), duplicate: true, result: { baseOffset: dupFirst, lastOffset: dupLast, logAppendTime: -1n, duplicate: true } };
      if (duplicates > 0) return new StorageError('DUPLICATE_SEQUENCE', `${where}: a request mixes ${duplicates} duplicate batches with new ones`);
    }
    for (const k of [...pending.keys()]) if (pending.get(k) === groupPending.get(k)) pending.delete(k);

    let logAppendTime = -1n;
    if (this.config.messageTimestampType === 'LogAppendTime') {
      logAppendTime = BigInt(Date.now());
      for (const b of batches) {
        const at = b.position;
        payload.writeBigInt64BE(logAppendTime, at + OFF_MAX_TIMESTAMP);
        payload.writeInt16BE(payload.readInt16BE(at + OFF_ATTRIBUTES) | ATTR_TIMESTAMP_TYPE, at + OFF_ATTRIBUTES);
        payload.writeUInt32BE(crc32c(payload.subarray(at + OFF_ATTRIBUTES, at + b.size)) >>> 0, at + OFF_CRC);
        b.maxTimestamp = logAppendTime;
        b.timestampType = 1;
      }
    }
    const last = batches[batches.length - 1];
    return { item, batches, pending, duplicate: false, completed, lastStableOffset, result: { baseOffset: batches[0].baseOffset, lastOffset: last.baseOffset + BigInt(last.lastOffsetDelta), logAppendTime, duplicate: false } };
  }

  /**
   * Replication (follower side): append batches that already carry their offsets and leader epochs,
   * as fetched from the leader. Every batch is CRC- and framing-checked (native scanLog, which also
   * accepts compacted batches); the first must start at or after the log end offset and offsets
   * must increase. No producer-sequence checks (the leader did them); producer state and leader
   * epochs are updated from the batches.
   */
  async appendAsFollower(records: Buffer): Promise<{ firstOffset: bigint; lastOffset: bigint }> {
    this.assertOnline();
    const where = `${this.topic}-${this.partition}`;
    const result = await this.lock.run(async () => {
      this.assertOnline();
      const scan = scanLog(records);
      if (scan.stopReason !== null || scan.validBytes !== records.length) {
        throw new StorageError('CORRUPT_MESSAGE', `${where}: follower append: invalid batch at byte ${scan.validBytes} (${scan.stopReason ?? 'trailing bytes'})`);
      }
      const batches = scan.batches;
      const leo = this.logEndOffset;
      if (batches.length === 0) return { firstOffset: leo, lastOffset: leo - 1n };
      let expected = leo;
      for (const b of batches) {
        if (b.baseOffset < expected) throw new StorageError('CORRUPT_MESSAGE', `${where}: follower append: batch at ${b.baseOffset} is below the expected offset ${expected}`);
        if (b.size > this.config.segmentBytes) throw new StorageError('RECORD_TOO_LARGE', `${where}: batch of ${b.size} bytes exceeds segment.bytes`);
        expected = b.baseOffset + BigInt(b.lastOffsetDelta) + 1n;
      }
      const lastOffset = expected - 1n;
      const active = this.active;
      // A follower may start a segment at any offset: a gap (compacted leader) rolls to the batch's base.
      if (active.size > 0 && (active.size + records.length > this.config.segmentBytes || Date.now() - active.createdMs > this.config.segmentMs || !active.canHold(lastOffset))) {
        try {
          await this.roll(batches[0].baseOffset);
        } catch (err) {
          throw this.ioError(err, 'roll');
        }
      } else if (active.size === 0 && active.baseOffset !== batches[0].baseOffset && batches[0].baseOffset - active.baseOffset > 0x7fffffffn) {
        throw new StorageError('STORAGE_ERROR', `${where}: follower append at ${batches[0].baseOffset} does not fit the empty active segment at ${active.baseOffset}`);
      }
      const target = this.active;
      try {
        await target.append([records], [batches]);
      } catch (err) {
        throw this.ioError(err, 'append');
      }
      this.ctx.logDir.io?.written(records.length);
      this.dirtySegments.add(target);
      for (const b of batches) {
        this.replayBatch(target, b, records, b.position, 0n);
        this.leaderEpochs.assign(b.partitionLeaderEpoch, b.baseOffset);
        this.unflushedMessages += b.recordCount;
      }
      const epochError = await this.writeLeaderEpochs();
      if (epochError) throw epochError;
      this.stats.appends++;
      return { firstOffset: batches[0].baseOffset, lastOffset };
    });
    if (this.ctx.durable) await this.waitDurable();
    return result;
  }

  /**
   * After an append (or at a flush): write the leader-epoch checkpoint if it changed. The batches
   * are already in the log, so the append has succeeded: a write that fails and leaves the dir online (full disk,
   * out of descriptors) leaves the cache dirty, to be written by the next append, flush or close,
   * with one warning a minute per dir. Until it is written the recovery point does not pass the
   * cache's epochs (flushLocked), so a crash meanwhile rebuilds them from the batches. Returns the
   * error only when the failure took the dir offline.
   */
  private async writeLeaderEpochs(): Promise<StorageError | null> {
    try {
      await this.leaderEpochs.flush();
      return null;
    } catch (err) {
      const e = this.ioError(err, 'leader epoch checkpoint');
      if (!this.ctx.logDir.online || this.closed) return e;
      if (epochCheckpointWarnings.allow(this.ctx.logDir.path)) {
        this.ctx.logger.warn({ topic: this.topic, partition: this.partition, err: e.message }, 'leader epoch checkpoint not written (retried on the next append or flush); the append succeeded');
      }
      return null;
    }
  }

  /** Start a new active segment at `baseOffset`; the old one is flushed in the background (Kafka flushes on roll). */
  private async roll(baseOffset: bigint): Promise<void> {
    const old = this.active;
    old.onBecomeInactive();
    const seg = await LogSegment.create(this.dir, baseOffset, this.segmentOptions);
    if (this.ctx.durable) await fsyncDir(this.dir);
    this.segments.push(seg);
    this.ctx.logger.debug({ topic: this.topic, partition: this.partition, baseOffset: String(baseOffset) }, 'rolled segment');
    // Producer state as of the new segment's base: bounds the replay after a crash. Only an
    // optimization (recovery replays from an older snapshot, or from the log start), so a full
    // disk here does not fail the append that rolled. The old segment's `.txnindex` is written
    // first: recovery rebuilds txnindex entries only from the snapshot on.
    let txnIndexWritten = true;
    await old.txnIndex.flush(false).catch((err) => {
      if (errnoCode(err) !== 'ENOSPC' && errnoCode(err) !== 'EDQUOT') throw err;
      txnIndexWritten = false;
    });
    if (txnIndexWritten) await writeCheckpoint(join(this.dir, PRODUCER_SNAPSHOT), this.producerState.serialize(baseOffset), 0, false).catch((err) => {
      if (errnoCode(err) !== 'ENOSPC' && errnoCode(err) !== 'EDQUOT') throw err;
      this.ctx.logger.warn({ topic: this.topic, partition: this.partition, err: String(err) }, 'producer state snapshot not written: log dir is full');
    });
    this.flushChain = this.flushChain
      .then(async () => {
        if (old.deleted) return;
        await old.flush(true);
        this.dirtySegments.delete(old);
        if (baseOffset > this.recoveryPoint && !this.leaderEpochs.unwritten) this.recoveryPoint = baseOffset;
      })
      .catch((err) => {
        if (!this.closed && !old.deleted) this.ioError(err, 'flush on roll');
      });
  }

  /** Resolve when everything appended before the call is on stable storage (group commit). */
  private waitDurable(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.syncWaiters.push({ resolve, reject });
      if (!this.syncLoopRunning) void this.syncLoop();
    });
  }

  /**
   * Group commit: one fdatasync per round for every append that finished writing before the round
   * started. Appends finishing during an fdatasync wait for the next round (optionally after
   * `groupCommitWindowMs` to gather more).
   */
  private async syncLoop(): Promise<void> {
    this.syncLoopRunning = true;
    try {
      while (this.syncWaiters.length > 0) {
        if (this.ctx.groupCommitWindowMs > 0) await new Promise((r) => setTimeout(r, this.ctx.groupCommitWindowMs));
        const waiters = this.syncWaiters;
        this.syncWaiters = [];
        const segments = [...this.dirtySegments];
        this.dirtySegments.clear();
        this.stats.groupCommits++;
        try {
          for (const s of segments) {
            if (s.deleted) continue;
            const size = s.size;
            const t0 = process.hrtime.bigint();
            await s.datasync();
            this.ctx.logDir.io?.fsynced(Number(process.hrtime.bigint() - t0) / 1e9);
            if (size > s.flushedSize) s.flushedSize = size;
          }
          for (const w of waiters) w.resolve();
        } catch (err) {
          const e = this.ioError(err, 'fdatasync');
          for (const w of waiters) w.reject(e);
        }
      }
    } finally {
      this.syncLoopRunning = false;
    }
  }

  /** fsync everything written so far and move the recovery point to the log end. */
  async flush(): Promise<void> {
    this.assertOnline();
    await this.lock.run(() => this.flushLocked());
  }

  private async flushLocked(): Promise<void> {
    const leo = this.logEndOffset;
    try {
      await this.flushChain;
      const t0 = process.hrtime.bigint();
      for (const s of this.segments) if (s.flushedSize < s.size || this.dirtySegments.has(s)) await s.flush(true);
      await this.active.flush(true);
      this.ctx.logDir.io?.fsynced(Number(process.hrtime.bigint() - t0) / 1e9);
    } catch (err) {
      throw this.ioError(err, 'flush');
    }
    this.dirtySegments.clear();
    this.unflushedMessages = 0;
    this.lastFlushMs = Date.now();
    // Recovery rebuilds epochs only from the batches after the recovery point: it may pass them only
    // once they are in the checkpoint (as Kafka flushes the epoch cache before moving it). A write
    // that fails on a full disk leaves the recovery point where it is, to be moved by a later flush.
    if (this.leaderEpochs.unwritten) {
      const e = await this.writeLeaderEpochs();
      if (e) throw e;
    }
    if (leo > this.recoveryPoint && !this.leaderEpochs.unwritten) this.recoveryPoint = leo;
  }

  /** flush.ms: called by the manager's housekeeping tick. */
  async maybeFlushByTime(now: number): Promise<void> {
    if (this.online && this.unflushedMessages > 0 && now - this.lastFlushMs >= this.config.flushMs) await this.flush();
  }

  /**
   * Read whole batches from the one containing `offset`, up to `maxBytes` (the first batch even if
   * larger unless `minOneBatch: false`, KIP-74), never a batch at or beyond `maxOffset`.
   * `verify`: check every batch's CRC-32C and framing before returning it (bit rot on disk): the
   * valid batches before a bad one are returned; a bad first batch is CORRUPT_MESSAGE, never
   * served (replication repairs it from another replica).
   */
  async read(offset: bigint, maxBytes: number, options?: { minOneBatch?: boolean; maxOffset?: bigint; verify?: boolean }): Promise<ReadResult> {
    const r = await this.readUnverified(offset, maxBytes, options);
    if (!options?.verify || r.records.length === 0) return r;
    const scan = scanLog(r.records);
    if (scan.stopReason === null && scan.validBytes === r.records.length) return r;
    if (scan.validBytes > 0) return { ...r, records: r.records.subarray(0, scan.validBytes) };
    throw new StorageError('CORRUPT_MESSAGE', `${this.topic}-${this.partition}: the stored batch holding offset ${offset} fails its check (${scan.stopReason ?? 'trailing bytes'}): not served`);
  }

  private async readUnverified(offset: bigint, maxBytes: number, options?: { minOneBatch?: boolean; maxOffset?: bigint }): Promise<ReadResult> {
    this.assertOnline();
    const leo = this.logEndOffset;
    const result = (records: Buffer): ReadResult => ({ records, highWatermark: this.highWatermark, logStartOffset: this.logStart, logEndOffset: leo });
    if (offset < this.logStart || offset > leo) {
      throw new StorageError('OFFSET_OUT_OF_RANGE', `${this.topic}-${this.partition}: offset ${offset} is outside [${this.logStart}, ${leo}]`);
    }
    const limit = options?.maxOffset !== undefined && options.maxOffset < leo ? options.maxOffset : leo;
    if (offset >= limit) return result(EMPTY);
    const minOneBatch = options?.minOneBatch ?? true;
    const segments = this.segments;
    let i = this.floorSegment(offset);
    for (; i < segments.length; i++) {
      const seg = segments[i];
      if (seg.baseOffset >= limit) break;
      let records: Buffer | null;
      try {
        records = await seg.read(offset, maxBytes, minOneBatch, limit, seg === this.active);
        if (records) this.ctx.logDir.io?.read(records.length);
      } catch (err) {
        if (seg.deleted) {
          // Retention removed the segment under us: the caller retries and gets OFFSET_OUT_OF_RANGE or newer data.
          return result(EMPTY);
        }
        throw this.ioError(err, 'read');
      }
      if (seg.indexSuspect) this.rebuildSuspectIndex(seg);
      if (records !== null) return result(records);
    }
    return result(EMPTY);
  }

  /** Where a header walk to `offset` starts in `seg`: never at a misplaced index entry (that one is rebuilt). */
  private async walkStart(seg: LogSegment, offset: bigint): Promise<number> {
    const pos = await seg.startPosition(offset);
    if (seg.indexSuspect) this.rebuildSuspectIndex(seg);
    return pos;
  }

  /**
   * A read found an offset index entry that does not start its batch (and answered by walking the
   * segment from its start): rebuild that index once, under the writer lock, in the background.
   */
  private rebuildSuspectIndex(seg: LogSegment): void {
    if (this.rebuilding.has(seg)) return;
    this.rebuilding.add(seg);
    this.ctx.logger.warn({ topic: this.topic, partition: this.partition, segment: String(seg.baseOffset), index: seg.indexPath }, 'an offset index entry does not point at the start of its batch: rebuilding the index from the log');
    void this.lock
      .run(async () => {
        if (!seg.deleted && !this.closed) await seg.rebuildIndex();
      })
      .catch((err: unknown) => this.ctx.logger.warn({ topic: this.topic, partition: this.partition, segment: String(seg.baseOffset), err: String(err) }, 'could not rebuild the offset index'))
      .finally(() => this.rebuilding.delete(seg));
  }
  private readonly rebuilding = new Set<LogSegment>();

  /** Index of the last segment with baseOffset <= offset (0 when offset is below all). */
  private floorSegment(offset: bigint): number {
    const s = this.segments;
    let lo = 0;
    let hi = s.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid].baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * ListOffsets by time (Kafka `UnifiedLog.fetchOffsetByTimestamp`): the first record at or above
   * the log start offset whose timestamp is >= `timestamp`, record-exact also inside compressed
   * batches (see {@link searchBatch}); null when there is none.
   */
  async offsetForTimestamp(timestamp: bigint): Promise<TimestampAndOffset | null> {
    this.assertOnline();
    for (const seg of this.segments) {
      if (seg.maxTimestamp < timestamp) continue;
      // Kafka searches only the first segment whose max timestamp qualifies: a later batch with
      // an older timestamp never makes an earlier answer (timestamps need not be monotonic).
      const entry = seg.timeIndex.lookup(timestamp);
      const startOffset = entry ? entry.offset : seg.baseOffset;
      try {
        const pos = await this.walkStart(seg, startOffset);
        for await (const { buf, at } of seg.batchesFrom(pos)) {
          const found = await searchBatch(buf, at, timestamp, this.logStart, this.ctx.pool);
          if (found) return found;
        }
      } catch (err) {
        throw this.ioError(err, 'offsetForTimestamp');
      }
      return null;
    }
    return null;
  }

  /**
   * ListOffsets −3 (KIP-734): the record with the largest timestamp, the first of them when
   * several share it (Kafka: the segment with the largest max timestamp, its batch with that max
   * timestamp, the first record of the batch carrying it); null on an empty log.
   */
  async offsetOfMaxTimestamp(): Promise<TimestampAndOffset | null> {
    this.assertOnline();
    let best: LogSegment | null = null;
    for (const seg of this.segments) if (best === null || seg.maxTimestamp > best.maxTimestamp) best = seg;
    if (best === null || best.maxTimestamp < 0n || best.offsetOfMaxTimestamp < 0n) return null;
    const maxTs = best.maxTimestamp;
    try {
      const pos = await this.walkStart(best, best.offsetOfMaxTimestamp);
      for await (const { buf, at } of best.batchesFrom(pos)) {
        if (buf.readBigInt64BE(at + OFF_MAX_TIMESTAMP) !== maxTs) continue;
        return await searchBatch(buf, at, maxTs, -1n, this.ctx.pool);
      }
    } catch (err) {
      throw this.ioError(err, 'offsetOfMaxTimestamp');
    }
    return null;
  }

  /** DeleteRecords: advance the log start offset to `offset`, delete segments wholly below it; returns the new low watermark. */
  async deleteRecordsBefore(offset: bigint): Promise<bigint> {
    this.assertOnline();
    return this.lock.run(async () => {
      const leo = this.logEndOffset;
      if (offset > leo) throw new StorageError('OFFSET_OUT_OF_RANGE', `${this.topic}-${this.partition}: cannot delete records before ${offset}, the log ends at ${leo}`);
      if (offset <= this.logStart) return this.logStart;
      this.logStart = offset;
      this.leaderEpochs.truncateFromStart(offset);
      const n = this.deletableBelowLogStart();
      await this.deleteOldestSegments(n, 'log start offset');
      await this.leaderEpochs.flush().catch((err) => {
        throw this.ioError(err, 'leader epoch checkpoint');
      });
      await this.ctx.onLogStartOffsetChanged(this);
      return this.logStart;
    });
  }

  private deletableBelowLogStart(): number {
    let n = 0;
    while (n < this.segments.length - 1 && this.segments[n + 1].baseOffset <= this.logStart) n++;
    return n;
  }

  /**
   * Remove the `n` oldest segments (never the active one): rename to `*.deleted`, unlink after
   * `file.delete.delay.ms` so reads in flight finish.
   */
  private async deleteOldestSegments(n: number, reason: string): Promise<void> {
    n = Math.min(n, this.segments.length - 1);
    if (n <= 0) return;
    const gone = this.segments.splice(0, n);
    const newStart = this.segments[0].baseOffset;
    if (newStart > this.logStart) this.logStart = newStart;
    this.leaderEpochs.truncateFromStart(this.logStart);
    this.producerState.truncateHead(this.logStart);
    for (const seg of gone) {
      this.dirtySegments.delete(seg);
      let run: () => Promise<void>;
      try {
        run = await seg.markDeleted();
      } catch (err) {
        throw this.ioError(err, 'delete segment');
      }
      this.scheduleDelete(run);
      this.ctx.logger.info({ topic: this.topic, partition: this.partition, segment: String(seg.baseOffset), reason }, 'deleting segment');
    }
  }

  private scheduleDelete(run: () => Promise<void>): void {
    const item = { timer: null as NodeJS.Timeout | null, run };
    const fire = () => {
      this.pendingDeletes.delete(item);
      run().catch((err) => this.ctx.logger.warn({ err: String(err) }, 'deleting segment files failed'));
    };
    this.pendingDeletes.add(item);
    if (this.config.fileDeleteDelayMs <= 0) fire();
    else {
      item.timer = setTimeout(fire, this.config.fileDeleteDelayMs);
      item.timer.unref();
    }
  }

  /** Retention pass (retention.ms by segment max timestamp, retention.bytes per partition). Returns segments deleted. */
  async applyRetention(now = Date.now()): Promise<number> {
    if (!this.online || !this.config.cleanupPolicy.includes('delete')) return 0;
    return this.lock.run(async () => {
      const before = this.logStart;
      let n = this.deletableBelowLogStart();
      const last = this.segments.length - 1;
      if (this.config.retentionMs >= 0) {
        while (n < last) {
          const s = this.segments[n];
          const ts = s.maxTimestamp >= 0n ? Number(s.maxTimestamp) : s.createdMs;
          if (now - ts > this.config.retentionMs) n++;
          else break;
        }
      }
      if (this.config.retentionBytes >= 0) {
        let excess = this.sizeBytes - this.config.retentionBytes;
        for (let i = 0; i < n; i++) excess -= this.segments[i].size;
        while (n < last && excess - this.segments[n].size >= 0) {
          excess -= this.segments[n].size;
          n++;
        }
      }
      await this.deleteOldestSegments(n, 'retention');
      if (this.logStart !== before) {
        await this.leaderEpochs.flush().catch(() => {});
        await this.ctx.onLogStartOffsetChanged(this);
      }
      return n;
    });
  }

  /**
   * Remove everything at and after `offset` (replication). Truncation is to a batch boundary: a
   * batch containing `offset` is removed whole. Producer state is rebuilt from the log.
   */
  async truncateTo(offset: bigint): Promise<void> {
    this.assertOnline();
    await this.lock.run(async () => {
      if (offset >= this.logEndOffset) {
        // Nothing to cut from the log, but an epoch this replica began as leader without appending
        // anything (it died at once) still sits at the end of the epoch cache: drop it, or every
        // next fetch claims that epoch again and the leader answers the same divergence forever
        // (Kafka's UnifiedLog.truncateTo always truncates the epoch cache too).
        this.leaderEpochs.truncateFromEnd(this.logEndOffset);
        await this.leaderEpochs.flush();
        return;
      }
      this.rewrites++;
      try {
        if (offset < this.logStart || offset <= this.segments[0].baseOffset) {
          // Everything goes: start over at `offset` (Kafka truncateFullyAndStartAt).
          const start = offset;
          for (const seg of this.segments.splice(0)) this.scheduleDelete(await seg.markDeleted());
          this.segments.push(await LogSegment.create(this.dir, start, this.segmentOptions));
          this.logStart = start;
          this.leaderEpochs.clear();
        } else {
          while (this.segments.length > 1 && this.active.baseOffset >= offset) {
            const seg = this.segments.pop()!;
            this.dirtySegments.delete(seg);
            this.scheduleDelete(await seg.markDeleted());
          }
          await this.active.truncateTo(offset);
          this.leaderEpochs.truncateFromEnd(this.logEndOffset);
        }
        await this.leaderEpochs.flush(true);
        const leo = this.logEndOffset;
        if (this.recoveryPoint > leo) this.recoveryPoint = leo;
        if (this.highWatermark > leo) this.highWatermark = leo;
        if (this.cleanerCheckpoint > leo) this.cleanerCheckpoint = leo;
        this.producerState.truncateTo(leo);
        await unlinkIfExists(join(this.dir, PRODUCER_SNAPSHOT));
        // Open transactions and the closed ones not yet replicated are rebuilt with it (the
        // segments' `.txnindex` files lost their entries past the cut in LogSegment.truncateTo).
        await this.rebuildProducerState(false);
      } catch (err) {
        throw this.ioError(err, 'truncate');
      }
    });
  }

  /**
   * Replication (Kafka `truncateFullyAndStartAt`): drop the whole log and start it empty at
   * `offset`, which may be past the log end. A follower whose end is below its leader's log start
   * (retention or DeleteRecords ran there) cannot fetch what it misses; it starts where the leader's
   * log starts.
   */
  async truncateFullyAndStartAt(offset: bigint): Promise<void> {
    this.assertOnline();
    await this.lock.run(async () => {
      this.rewrites++;
      try {
        for (const seg of this.segments.splice(0)) {
          this.dirtySegments.delete(seg);
          this.scheduleDelete(await seg.markDeleted());
        }
        this.segments.push(await LogSegment.create(this.dir, offset, this.segmentOptions));
        this.logStart = offset;
        this.leaderEpochs.clear();
        await this.leaderEpochs.flush(true);
        this.recoveryPoint = offset;
        this.highWatermark = offset;
        this.cleanerCheckpoint = offset;
        this.producerState.clear();
        this.unreplicatedTxns = [];
        await unlinkIfExists(join(this.dir, PRODUCER_SNAPSHOT));
      } catch (err) {
        throw this.ioError(err, 'truncate');
      }
    });
    await this.ctx.onLogStartOffsetChanged(this);
  }

  /** Run `fn` as the partition's single writer (compaction swaps). @internal */
  withLock<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run(fn);
  }

  /** Flush with fsync, write the producer snapshot and leader epochs, close every file. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.lock.run(async () => {
      if (this.ctx.logDir.online) {
        await this.flushChain;
        await this.flushLocked();
        this.active.onBecomeInactive();
        await writeCheckpoint(join(this.dir, PRODUCER_SNAPSHOT), this.producerState.serialize(this.logEndOffset));
        await this.leaderEpochs.flush(true);
      }
      this.closed = true;
      for (const item of this.pendingDeletes) {
        if (item.timer) clearTimeout(item.timer);
        await item.run().catch(() => {});
      }
      this.pendingDeletes.clear();
      for (const s of this.segments) await s.close().catch(() => {});
    });
  }

  /** Close without flushing (the log dir is gone or the partition is being deleted). */
  async closeQuietly(): Promise<void> {
    this.closed = true;
    for (const item of this.pendingDeletes) if (item.timer) clearTimeout(item.timer);
    this.pendingDeletes.clear();
    for (const s of this.segments) await s.closeQuietly().catch(() => {});
  }
}

/** Prefix of the folder in a partition dir that recovery moves intact later segments into. */
export const CORRUPT_ASIDE_PREFIX = 'corrupt-aside-';

/**
 * Move the files of the segments `bases` (log and its indexes, names unchanged) into a new
 * `<partition dir>/corrupt-aside-<UTC time>/` folder, which the loader never reads and cleanup never
 * deletes (unlike `.deleted`). Returns the folder's path.
 */
async function moveSegmentsAside(dir: string, bases: bigint[]): Promise<string> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  let aside = join(dir, `${CORRUPT_ASIDE_PREFIX}${stamp}`);
  for (let n = 1; ; n++) {
    try {
      await mkdir(aside);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      aside = join(dir, `${CORRUPT_ASIDE_PREFIX}${stamp}-${n}`);
    }
  }
  for (const base of bases) {
    for (const ext of ['.log', '.index', '.timeindex', '.txnindex']) {
      const name = `${fileName(base)}${ext}`;
      await rename(join(dir, name), join(aside, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  }
  await fsyncDir(aside);
  await fsyncDir(dir);
  return aside;
}
