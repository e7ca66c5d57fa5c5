import { randomUUID } from 'node:crypto';
import { statSync, statfsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { onceEvery, silentLogger, type Logger } from '@runnel/common';
import type { OffloadPool } from '@runnel/offload';
import { fsyncDir, readOffsetCheckpoint, unlinkIfExists, writeOffsetCheckpoint } from './checkpoint.ts';
import { compactLog } from './compaction.ts';
import { ConfigProblem, resolveLogConfig, type LogConfig } from './config.ts';
import { StorageError, errnoCode } from './errors.ts';
import { lockLogDir } from './dir-lock.ts';
import { Gate, defaultMaxOpenFiles, isOutOfDescriptors, outOfDescriptorsMessage, reportOutOfDescriptors, segmentFiles } from './file-cache.ts';
import { CORRUPT_ASIDE_PREFIX, PartitionLog, type LogDirState, type PartitionLogContext } from './partition-log.ts';

/** Receives every log dir's I/O (the broker's metrics): set LogManager.ioObserver. */
export interface DirIoObserver {
  written(dir: string, bytes: number): void;
  read(dir: string, bytes: number): void;
  fsynced(dir: string, seconds: number): void;
}
import { FUTURE_SUFFIX, FutureCopy, MOVED_MARKER, Throttle } from './replica-move.ts';

export const RECOVERY_POINT_CHECKPOINT = 'recovery-point-offset-checkpoint';
export const LOG_START_OFFSET_CHECKPOINT = 'log-start-offset-checkpoint';
/** Kafka's name: the high watermark of every partition in the dir, `topic partition offset` lines. */
export const REPLICATION_OFFSET_CHECKPOINT = 'replication-offset-checkpoint';
export const CLEAN_SHUTDOWN_MARKER = '.kafka_cleanshutdown';
export const META_PROPERTIES = 'meta.properties';
/**
 * `<log dir>/corrupt-aside/`: where deleting a partition's log (topic deleted, replica moved away)
 * keeps the segments recovery moved aside in it, as `<topic>-<partition>-<aside folder>/`. The
 * loader never reads it (not a `<topic>-<partition>` name) and nothing deletes it.
 */
export const KEPT_ASIDE_DIR = 'corrupt-aside';
/** At most one "log dir is full" warning per dir per this many ms from housekeeping. */
const NO_SPACE_WARN_INTERVAL_MS = 60_000;

/** A full disk or quota: retryable, never a failed dir. */
export function isNoSpace(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOSPC' || code === 'EDQUOT' || (err instanceof StorageError && err.code === 'NO_SPACE');
}

export interface LogManagerOptions {
  logDirs: string[];
  defaults: LogConfig;
  /** fsync (fdatasync) before an append resolves, with group commit. Default false (Kafka: page cache + replication). */
  durable?: boolean;
  /** Extra wait before each group-commit fdatasync to gather more appends. Default 0: appends that arrive during one fdatasync share the next. */
  groupCommitWindowMs?: number;
  /** Retention, compaction and flush.ms checks. Default 300000 (Kafka log.retention.check.interval.ms). */
  retentionCheckIntervalMs?: number;
  /** How often each dir's replication-offset-checkpoint is written. Default 5000 (Kafka replica.high.watermark.checkpoint.interval.ms). */
  highWatermarkCheckpointIntervalMs?: number;
  /** Partitions loaded concurrently per log dir. Default 2. */
  recoveryThreads?: number;
  /**
   * log.max.open.files: segment files kept open at once in this process (see file-cache.ts); the
   * least recently used idle ones are closed. Unset or −1: half of `ulimit -n`, 64–10,000.
   */
  maxOpenFiles?: number;
  /** Runs compaction off the event loop. Without one, compaction runs inline (tests). */
  pool?: OffloadPool;
  logger?: Logger;
  clusterId?: string;
  nodeId?: number;
  /** `replica.alter.log.dirs.io.max.bytes.per.second`, read on every copied chunk of a move between dirs. Default unlimited. */
  moveBytesPerSecond?: () => number;
}

/** A replica being moved to another log dir of this broker (alterLogDir). */
interface Move {
  target: DirEntry;
  copy: FutureCopy;
  cancelled: boolean;
  done: Promise<void>;
}

interface DirEntry extends LogDirState {
  logs: Map<string, PartitionLog>;
  checkpointChain: Promise<void>;
  /** The last write of all three checkpoints failed (disk full): housekeeping retries them every tick. */
  checkpointsPending: boolean;
  /** Creations placed here and not finished: counted by placement like the partitions already in the dir. */
  placing: { partitions: number; bytes: number };
}

/**
 * Owns the log dirs of one broker (Kafka `LogManager`). Per log dir:
 * ```
 * <logDir>/meta.properties                     version=1, cluster.id=..., node.id=...
 * <logDir>/recovery-point-offset-checkpoint    0 / count / `topic partition offset` lines
 * <logDir>/log-start-offset-checkpoint         same format
 * <logDir>/replication-offset-checkpoint       same format: each partition's high watermark, written
 *                                              every highWatermarkCheckpointIntervalMs and at stop;
 *                                              read at start (a partition without an entry starts
 *                                              with its high watermark at its log end)
 * <logDir>/.kafka_cleanshutdown                present only between a clean stop and the next start
 * <logDir>/<topic>-<partition>/                one PartitionLog
 * <logDir>/<topic>-<partition>.<uuid>-delete/  a deleted partition being removed
 * ```
 * A dir that fails (cannot be created, I/O error at runtime) goes offline alone: its partitions
 * answer LOG_DIR_OFFLINE and the other dirs keep serving.
 */
export class LogManager {
  private readonly options: Required<Omit<LogManagerOptions, 'pool' | 'clusterId' | 'nodeId'>> & Pick<LogManagerOptions, 'pool' | 'clusterId' | 'nodeId'>;
  /**
   * Called after a move between log dirs put a new PartitionLog in place of the old (closed) one:
   * whoever held the old one (a follower's fetcher) takes the new one from getLog.
   */
  onLogReplaced: ((topic: string, partition: number) => void) | null = null;
  /** Where each dir's bytes written and read and fdatasync times go (metrics); none by default. */
  ioObserver: DirIoObserver | null = null;
  /** Moves between log dirs in progress, by `<topic>-<partition>`. */
  private readonly moves = new Map<string, Move>();
  /** Future dirs found at start (a move cut short by a stop or crash): resumed once every dir is loaded. */
  private readonly resumeMoves: { key: string; topic: string; partition: number; target: DirEntry }[] = [];
  private readonly entries: DirEntry[];
  private readonly byKey = new Map<string, PartitionLog>();
  private timer: NodeJS.Timeout | null = null;
  private housekeeping: Promise<void> = Promise.resolve();
  /** Releases the `.lock` of each log dir this manager owns (see dir-lock.ts). */
  private readonly unlocks: (() => Promise<void>)[] = [];
  private started = false;
  /** Per dir, the checkpoint write queued and not yet started (see writeCheckpoints). */
  private readonly queuedCheckpoints = new Map<DirEntry, Promise<void>>();
  /** Partition creations in flight (see createLog). */
  private readonly creating = new Gate(8);
  private diskClusterId: string | undefined;

  private constructor(options: LogManagerOptions) {
    this.options = {
      durable: false,
      groupCommitWindowMs: 0,
      retentionCheckIntervalMs: 300_000,
      highWatermarkCheckpointIntervalMs: 5_000,
      recoveryThreads: 2,
      logger: silentLogger(),
      moveBytesPerSecond: () => Infinity,
      ...options,
      maxOpenFiles: segmentFiles.maxOpen,
    };
    this.entries = options.logDirs.map((path) => {
      const entry: DirEntry = {
        path,
        online: true,
        logs: new Map(),
        checkpointChain: Promise.resolve(),
        checkpointsPending: false,
        placing: { partitions: 0, bytes: 0 },
        io: {
          written: (n: number) => this.ioObserver?.written(path, n),
          read: (n: number) => this.ioObserver?.read(path, n),
          fsynced: (s: number) => this.ioObserver?.fsynced(path, s),
        },
        markOffline: (err: unknown) => {
          // Out of file descriptors is a process limit, not a failed disk: whatever failed fails
          // alone (and is retried), the dir and its partitions stay online.
          if (isOutOfDescriptors(err)) {
            reportOutOfDescriptors(this.options.logger, path, err);
            return;
          }
          if (!entry.online) return;
          entry.online = false;
          entry.error = err instanceof Error ? err.message : String(err);
          this.options.logger.error({ dir: path, err: entry.error }, 'log dir is offline');
        },
      };
      return entry;
    });
  }

  static create(options: LogManagerOptions): LogManager {
    if (options.logDirs.length === 0) throw new StorageError('INVALID_CONFIG', 'log.dirs is empty');
    try {
      resolveLogConfig(options.defaults);
    } catch (err) {
      if (err instanceof ConfigProblem) throw new StorageError('INVALID_CONFIG', err.message);
      throw err;
    }
    // One cache per process (the descriptor limit is per process): the last manager created sets its size.
    segmentFiles.maxOpen = options.maxOpenFiles !== undefined && options.maxOpenFiles > 0 ? options.maxOpenFiles : defaultMaxOpenFiles();
    return new LogManager(options);
  }

  /** The cluster id found in (or written to) meta.properties. */
  get clusterId(): string | undefined {
    return this.options.clusterId ?? this.diskClusterId;
  }

  private context(entry: DirEntry): PartitionLogContext {
    return {
      logDir: entry,
      logger: this.options.logger,
      durable: this.options.durable,
      groupCommitWindowMs: this.options.groupCommitWindowMs,
      pool: this.options.pool,
      // A full disk here is retryable: the new log start is in memory and housekeeping retries the file.
      onLogStartOffsetChanged: () =>
        this.writeCheckpoints(entry).catch((err) => {
          if (!isNoSpace(err)) throw err;
          this.checkpointFailed(entry, err);
        }),
    };
  }

  /** Write/validate meta.properties per dir, load and recover every partition (dirs in parallel). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const results = await Promise.allSettled(this.entries.map((e) => this.loadDir(e)));
    const fatal = results.find((r) => r.status === 'rejected' && r.reason instanceof StorageError && (r.reason.code === 'INVALID_CONFIG' || r.reason.code === 'LOG_DIR_IN_USE'));
    if (fatal) {
      await Promise.all(this.unlocks.splice(0).map((unlock) => unlock()));
      this.started = false;
      throw (fatal as PromiseRejectedResult).reason;
    }
    for (const r of this.resumeMoves.splice(0)) {
      if (!this.byKey.has(r.key)) continue;
      this.options.logger.info({ partition: r.key, to: r.target.path }, 'resuming the move of a replica to another log dir');
      this.alterLogDir(r.topic, r.partition, r.target.path);
    }
    this.timer = setInterval(() => {
      this.housekeeping = this.housekeeping.then(() => this.runHousekeeping());
    }, Math.max(10, Math.min(this.options.retentionCheckIntervalMs, this.options.highWatermarkCheckpointIntervalMs, 1000)));
    this.timer.unref();
  }

  private lastRetentionMs = Date.now();
  private lastHighWatermarkCheckpointMs = Date.now();

  private async runHousekeeping(): Promise<void> {
    const now = Date.now();
    for (const log of this.byKey.values()) await log.maybeFlushByTime(now).catch(() => {});
    if (now - this.lastHighWatermarkCheckpointMs >= this.options.highWatermarkCheckpointIntervalMs) {
      this.lastHighWatermarkCheckpointMs = now;
      // A dir whose last full checkpoint write failed (disk full) retries all of them at this pace.
      for (const e of this.entries) if (e.online) await (e.checkpointsPending ? this.writeCheckpoints(e) : this.writeHighWatermarks(e)).catch((err) => this.checkpointFailed(e, err));
    }
    if (now - this.lastRetentionMs < this.options.retentionCheckIntervalMs) return;
    this.lastRetentionMs = now;
    await this.runRetention(now);
    await this.runCompaction();
    for (const e of this.entries) if (e.online) await this.writeCheckpoints(e).catch((err) => this.checkpointFailed(e, err));
  }

  /**
   * A checkpoint write failed. A full disk (ENOSPC, EDQUOT) is retryable, as on the append path:
   * the previous checkpoint file is still whole (written via `.tmp` + rename), the next tick tries
   * again, and one warning per dir per minute says so; the dir stays online. Any other error takes
   * the dir offline.
   */
  private checkpointFailed(entry: DirEntry, err: unknown): void {
    if (!isNoSpace(err)) {
      entry.markOffline(err);
      return;
    }
    if (!this.noSpaceWarnings.allow(entry.path)) return;
    this.options.logger.warn({ dir: entry.path, err: String(err) }, 'log dir is full: checkpoint not written, retrying on the next tick');
  }

  /** A write at stop failed: no clean-shutdown marker, so the next start recovers the dir (a full disk is not a failed dir). */
  private stopFailed(entry: DirEntry, err: unknown): void {
    if (isNoSpace(err)) this.options.logger.warn({ dir: entry.path, err: String(err) }, 'log dir is full at stop: the next start recovers it');
    else entry.markOffline(err);
  }

  /** At most one "log dir is full" warning per dir per NO_SPACE_WARN_INTERVAL_MS. */
  private readonly noSpaceWarnings = onceEvery(NO_SPACE_WARN_INTERVAL_MS);

  /** One retention pass over every log (also run by the housekeeping timer). */
  async runRetention(now = Date.now()): Promise<void> {
    for (const log of this.byKey.values()) {
      try {
        await log.applyRetention(now);
      } catch (err) {
        this.options.logger.warn({ topic: log.topic, partition: log.partition, err: String(err) }, 'retention failed');
      }
    }
  }

  /** One compaction pass over every compacted log whose dirty ratio is reached. */
  async runCompaction(now = Date.now()): Promise<void> {
    for (const log of this.byKey.values()) {
      if (!log.online || !log.config.cleanupPolicy.includes('compact')) continue;
      try {
        await compactLog(log, { pool: this.options.pool, now, logger: this.options.logger });
      } catch (err) {
        this.options.logger.warn({ topic: log.topic, partition: log.partition, err: String(err) }, 'compaction failed');
      }
    }
  }

  private async loadDir(entry: DirEntry): Promise<void> {
    const log = this.options.logger;
    try {
      await mkdir(entry.path, { recursive: true });
      if (!(await stat(entry.path)).isDirectory()) throw Object.assign(new Error(`${entry.path} is not a directory`), { code: 'ENOTDIR' });
      this.unlocks.push(await lockLogDir(entry.path));
      await this.checkMetaProperties(entry.path);
      const clean = await stat(join(entry.path, CLEAN_SHUTDOWN_MARKER)).then(
        () => true,
        () => false,
      );
      const recoveryPoints = await readOffsetCheckpoint(join(entry.path, RECOVERY_POINT_CHECKPOINT)).catch(() => new Map<string, bigint>());
      const logStarts = await readOffsetCheckpoint(join(entry.path, LOG_START_OFFSET_CHECKPOINT)).catch(() => new Map<string, bigint>());
      const highWatermarks = await readOffsetCheckpoint(join(entry.path, REPLICATION_OFFSET_CHECKPOINT)).catch((err: unknown) => {
        log.warn({ dir: entry.path, err: String(err) }, 'ignoring an unreadable replication-offset-checkpoint');
        return new Map<string, bigint>();
      });
      const names = await readdir(entry.path, { withFileTypes: true });
      const parts: { name: string; topic: string; partition: number; segments: number }[] = [];
      for (const d of names) {
        if (!d.isDirectory()) continue;
        if (d.name.endsWith('-delete')) {
          await rm(join(entry.path, d.name), { recursive: true, force: true });
          continue;
        }
        const future = /^(.+)-(\d+)\.[0-9a-f]+-future$/.exec(d.name);
        if (future) {
          // A move cut short: the source is still whole, the copy starts over (Kafka resumes its
          // future log instead; the result is the same, the copy is only slower).
          await rm(join(entry.path, d.name), { recursive: true, force: true });
          this.resumeMoves.push({ key: `${future[1]}-${future[2]}`, topic: future[1], partition: Number(future[2]), target: entry });
          continue;
        }
        const m = /^(.+)-(\d+)$/.exec(d.name);
        if (!m) continue;
        if (await this.movedAway(entry, d.name)) continue;
        const files = await readdir(join(entry.path, d.name));
        parts.push({ name: d.name, topic: m[1], partition: Number(m[2]), segments: files.filter((f) => f.endsWith('.log')).length });
      }
      let remaining = parts.reduce((n, p) => n + p.segments, 0);
      const total = remaining;
      const started = Date.now();
      if (total > 0) log.info({ dir: entry.path, partitions: parts.length, segments: total, clean }, clean ? 'loading log dir' : 'recovering log dir after an unclean shutdown');
      let lastLog = Date.now();
      const queue = [...parts];
      const worker = async () => {
        for (let p = queue.shift(); p; p = queue.shift()) {
          const pl = await PartitionLog.load(join(entry.path, p.name), p.topic, p.partition, this.options.defaults, this.context(entry), {
            cleanShutdown: clean,
            recoveryPoint: recoveryPoints.get(p.name),
            logStartOffset: logStarts.get(p.name),
            highWatermark: highWatermarks.get(p.name),
            onSegmentRecovered: () => {
              remaining--;
              if (Date.now() - lastLog > 1000) {
                lastLog = Date.now();
                log.info({ dir: entry.path, segmentsRemaining: remaining, segments: total }, 'log recovery progress');
              }
            },
          });
          entry.logs.set(p.name, pl);
          this.byKey.set(p.name, pl);
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, this.options.recoveryThreads) }, worker));
      if (total > 0) log.info({ dir: entry.path, partitions: parts.length, ms: Date.now() - started }, 'log dir loaded');
      // From now on a crash is unclean: remove the marker (durably) before serving.
      await unlinkIfExists(join(entry.path, CLEAN_SHUTDOWN_MARKER));
      await fsyncDir(entry.path);
    } catch (err) {
      if (err instanceof StorageError && (err.code === 'INVALID_CONFIG' || err.code === 'LOG_DIR_IN_USE')) throw err;
      // A dir not loaded in full never serves, even when the cause is only the descriptor limit
      // (which markOffline otherwise forgives): a partition it did not load would be created anew
      // over its files, truncating its first segment. Offline until a restart with more descriptors.
      entry.markOffline(isOutOfDescriptors(err) ? new Error(`loading the log dir failed: ${outOfDescriptorsMessage(err)}`, { cause: err }) : err);
    }
  }

  /**
   * A partition dir holding MOVED_MARKER was the source of a move that stopped between the future
   * dir taking its name and this dir's removal: if another log dir has the partition, this copy
   * (equal to it) is deleted; otherwise the marker is dropped and this dir loads.
   */
  private async movedAway(entry: DirEntry, name: string): Promise<boolean> {
    const marker = join(entry.path, name, MOVED_MARKER);
    if (!(await stat(marker).then(() => true, () => false))) return false;
    for (const other of this.entries) {
      if (other === entry) continue;
      if (await stat(join(other.path, name, MOVED_MARKER)).then(() => false, () => stat(join(other.path, name)).then(() => true, () => false))) {
        this.options.logger.warn({ partition: name, dir: entry.path, kept: other.path }, 'removing the source of a finished move between log dirs');
        await rm(join(entry.path, name), { recursive: true, force: true });
        return true;
      }
    }
    await unlinkIfExists(marker);
    return false;
  }

  /**
   * meta.properties (Kafka KRaft style, java.util.Properties text):
   * ```
   * #Written by Runnel
   * version=1
   * cluster.id=<id>
   * node.id=<n>
   * ```
   * Written when missing; when present, a different cluster.id or node.id refuses to start
   * (INVALID_CONFIG): the disk belongs to another cluster or broker.
   */
  private async checkMetaProperties(dir: string): Promise<void> {
    const path = join(dir, META_PROPERTIES);
    let text: string | null = null;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== null) {
      const props = new Map<string, string>();
      for (const line of text.split('\n')) {
        const t = line.trim();
        if (!t || t.startsWith('#')) continue;
        const i = t.indexOf('=');
        if (i > 0) props.set(t.slice(0, i).trim(), t.slice(i + 1).trim());
      }
      const cid = props.get('cluster.id');
      if (this.options.clusterId !== undefined && cid !== undefined && cid !== this.options.clusterId) {
        throw new StorageError('INVALID_CONFIG', `${path}: cluster.id ${cid} does not match the configured cluster id ${this.options.clusterId}`);
      }
      const nid = props.get('node.id');
      if (this.options.nodeId !== undefined && nid !== undefined && Number(nid) !== this.options.nodeId) {
        throw new StorageError('INVALID_CONFIG', `${path}: node.id ${nid} does not match the configured node id ${this.options.nodeId}`);
      }
      if (cid !== undefined) this.diskClusterId ??= cid;
      return;
    }
    const lines = ['#Written by Runnel', 'version=1'];
    if (this.options.clusterId !== undefined) lines.push(`cluster.id=${this.options.clusterId}`);
    if (this.options.nodeId !== undefined) lines.push(`node.id=${this.options.nodeId}`);
    await writeFile(`${path}.tmp`, `${lines.join('\n')}\n`);
    await rename(`${path}.tmp`, path);
  }

  /** Write the dir's replication-offset-checkpoint (high watermarks), serialized with its other checkpoints. */
  private writeHighWatermarks(entry: DirEntry): Promise<void> {
    return this.serialized(entry, () => this.writeDirCheckpoint(entry, REPLICATION_OFFSET_CHECKPOINT, (l) => l.highWatermark));
  }

  /** Write the dir's replication-offset, recovery-point and log-start-offset checkpoints (serialized per dir). */
  private writeCheckpoints(entry: DirEntry): Promise<void> {
    // Coalesced: a write queued and not yet started reads the partitions when it runs, so it
    // covers every caller until then (creating thousands of partitions writes a few times, not
    // three files per partition).
    const queued = this.queuedCheckpoints.get(entry);
    if (queued) return queued;
    const p = this.serialized(entry, async () => {
      this.queuedCheckpoints.delete(entry);
      entry.checkpointsPending = true;
      await this.writeDirCheckpoint(entry, REPLICATION_OFFSET_CHECKPOINT, (l) => l.highWatermark);
      await this.writeDirCheckpoint(entry, RECOVERY_POINT_CHECKPOINT, (l) => l.recoveryPoint);
      await this.writeDirCheckpoint(entry, LOG_START_OFFSET_CHECKPOINT, (l) => l.logStartOffset);
      entry.checkpointsPending = false;
    });
    this.queuedCheckpoints.set(entry, p);
    return p;
  }

  /** One checkpoint file of a dir: `offsetOf` every partition in it. */
  private writeDirCheckpoint(entry: DirEntry, name: string, offsetOf: (log: PartitionLog) => bigint): Promise<void> {
    return writeOffsetCheckpoint(join(entry.path, name), [...entry.logs.values()].map((l) => ({ topic: l.topic, partition: l.partition, offset: offsetOf(l) })));
  }

  /** Runs `write` after the dir's checkpoint writes already started, so two never interleave. */
  private serialized(entry: DirEntry, write: () => Promise<void>): Promise<void> {
    const p = entry.checkpointChain.then(write, write);
    entry.checkpointChain = p.catch(() => {});
    return p;
  }

  /** Flush, write checkpoints, close files, leave the clean-shutdown marker: the next start skips the scan. */
  async stop(): Promise<void> {
    if (!this.started) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const m of this.moves.values()) m.cancelled = true;
    await Promise.all([...this.moves.values()].map((m) => m.done));
    await this.housekeeping;
    await Promise.all(
      this.entries.map(async (entry) => {
        let ok = entry.online;
        for (const log of entry.logs.values()) {
          try {
            if (ok) await log.close();
            else await log.closeQuietly();
          } catch (err) {
            ok = false;
            this.stopFailed(entry, err);
            await log.closeQuietly();
          }
        }
        if (!ok || !entry.online) return;
        try {
          await this.writeCheckpoints(entry);
          await writeFile(join(entry.path, CLEAN_SHUTDOWN_MARKER), '');
          await fsyncDir(entry.path);
        } catch (err) {
          this.stopFailed(entry, err);
        }
      }),
    );
    this.byKey.clear();
    for (const e of this.entries) e.logs.clear();
    await Promise.all(this.unlocks.splice(0).map((unlock) => unlock()));
    this.started = false;
  }

  /**
   * Create (or return the existing) log. A new partition goes to the online dir with the most
   * free space after the bytes already promised there: statfs free bytes minus, for every
   * partition in the dir, what its active segment may still grow to (segment.bytes − its size).
   * Calls for a partition already being created share that creation (the first one's config):
   * two creations of one dir would overwrite each other's files.
   */
  createLog(topic: string, partition: number, config?: Partial<LogConfig>): Promise<PartitionLog> {
    const key = `${topic}-${partition}`;
    const existing = this.byKey.get(key);
    if (existing) return Promise.resolve(existing);
    let pending = this.pendingCreates.get(key);
    if (!pending) {
      pending = this.createLogOnce(key, topic, partition, config).finally(() => this.pendingCreates.delete(key));
      this.pendingCreates.set(key, pending);
    }
    return pending;
  }

  /** Creations in flight, by partition (see createLog). */
  private readonly pendingCreates = new Map<string, Promise<PartitionLog>>();

  private async createLogOnce(key: string, topic: string, partition: number, config: Partial<LogConfig> | undefined): Promise<PartitionLog> {
    if (!/^[a-zA-Z0-9._-]+$/.test(topic) || !Number.isInteger(partition) || partition < 0) {
      throw new StorageError('INVALID_CONFIG', `invalid topic-partition ${key}`);
    }
    let resolved: LogConfig;
    try {
      resolved = resolveLogConfig(this.options.defaults, config);
    } catch (err) {
      if (err instanceof ConfigProblem) throw new StorageError('INVALID_CONFIG', err.message);
      throw err;
    }
    const entry = this.placeLog();
    if (!entry) throw new StorageError('LOG_DIR_OFFLINE', 'no online log dir');
    // Counted by the next placement until this one is in entry.logs (or failed): creations in
    // flight (a CreateTopics of 12 partitions, a broker opening the partitions it now leads) would
    // otherwise all see the same free space and land in one dir.
    entry.placing.partitions++;
    entry.placing.bytes += resolved.segmentBytes;
    let placed = true;
    const unplace = () => {
      if (!placed) return;
      placed = false;
      entry.placing.partitions--;
      entry.placing.bytes -= resolved.segmentBytes;
    };
    try {
      return await this.createIn(entry, key, topic, partition, resolved, unplace);
    } finally {
      unplace();
    }
  }

  private async createIn(entry: DirEntry, key: string, topic: string, partition: number, resolved: LogConfig, unplace: () => void): Promise<PartitionLog> {
    let log: PartitionLog;
    const dir = join(entry.path, key);
    try {
      // A few at a time: a CreateTopics of thousands of partitions would otherwise hold a few
      // descriptors per partition at once (segment, indexes, checkpoints) and exhaust the process.
      log = await this.creating.run(async () => {
        const existed = await stat(dir).then(() => true, () => false);
        try {
          return await PartitionLog.create(entry.path, topic, partition, resolved, this.context(entry));
        } catch (err) {
          // No orphan: a partition dir left half-made would be loaded as a partition at the next start.
          if (!existed) await rm(dir, { recursive: true, force: true }).catch(() => {});
          throw err;
        }
      });
    } catch (err) {
      // Out of file descriptors is a process limit, not a failed disk: this partition fails
      // (retriable KAFKA_STORAGE_ERROR), the dir stays online.
      if (isOutOfDescriptors(err)) {
        reportOutOfDescriptors(this.options.logger, `creating ${key}`, err);
        throw new StorageError('STORAGE_ERROR', `creating ${key} failed: ${outOfDescriptorsMessage(err)}`, { cause: err, retriable: true });
      }
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new StorageError('NO_SPACE', `no space to create ${key} in ${entry.path}`, { cause: err });
      entry.markOffline(err);
      throw new StorageError('LOG_DIR_OFFLINE', `creating ${key} failed, log dir ${entry.path} is now offline: ${(err as Error).message}`, { cause: err });
    }
    unplace();
    entry.logs.set(key, log);
    this.byKey.set(key, log);
    await this.writeCheckpoints(entry).catch(() => {});
    return log;
  }

  /**
   * The dir for a new partition: the online dir whose filesystem has the most free bytes after the
   * bytes already promised on it (statfs free bytes minus, for every partition in any of its dirs
   * and every creation in flight there, what its active segment may still grow to: segment.bytes −
   * its size). Dirs on one filesystem share its free bytes, so between them the one with the fewest
   * partitions wins (Kafka's rule for every dir), then the first listed: two dirs on one disk
   * alternate. Null when no dir is online.
   */
  private placeLog(): DirEntry | null {
    const filesystems = new Map<number | string, { free: number; promised: number }>();
    const dirs: { e: DirEntry; fs: { free: number; promised: number }; partitions: number; index: number }[] = [];
    this.entries.forEach((e, index) => {
      if (!e.online) return;
      let dev: number | string;
      let free: number;
      try {
        const s = statfsSync(e.path);
        free = s.bavail * s.bsize;
        dev = statSync(e.path).dev;
      } catch {
        return;
      }
      let fs = filesystems.get(dev);
      if (!fs) filesystems.set(dev, (fs = { free, promised: 0 }));
      fs.promised += e.placing.bytes;
      for (const log of e.logs.values()) fs.promised += Math.max(0, log.config.segmentBytes - (log.segmentInfo().at(-1)?.size ?? 0));
      dirs.push({ e, fs, partitions: e.logs.size + e.placing.partitions, index });
    });
    dirs.sort((a, b) => b.fs.free - b.fs.promised - (a.fs.free - a.fs.promised) || a.partitions - b.partitions || a.index - b.index);
    return dirs[0]?.e ?? null;
  }

  /**
   * AlterReplicaLogDirs: move the partition's replica to the log dir `path` of this broker while
   * it keeps serving. Returns at once; the move runs in the background:
   * 1. copy into `<path>/<topic>-<partition>.<uuid>-future/`, pass after pass (each pass appends
   *    what the segments gained), throttled by `moveBytesPerSecond`, until a pass moves under 1 MiB;
   * 2. close the partition (appends and reads in this short window fail with a retriable
   *    LOG_DIR_OFFLINE, KAFKA_STORAGE_ERROR on the wire), copy the rest, write MOVED_MARKER into the
   *    source, rename the future dir to `<topic>-<partition>` (the commit point), rename the
   *    source to `…-delete`, load the new log and serve it; then delete the source.
   * A stop or crash before the commit point leaves the source serving and the future dir, which
   * the next start removes and copies again; after it, see movedAway. A move to the dir the
   * partition is in cancels a move in progress (Kafka). Errors: 'not-found' (no such log dir),
   * 'offline' (the target dir is offline), 'no-replica' (this broker has no log of the partition).
   */
  alterLogDir(topic: string, partition: number, path: string): 'ok' | 'not-found' | 'offline' | 'no-replica' {
    // `/data/a/` is the log dir `/data/a` (Kafka compares java.io.File paths, which drop the slash).
    const target = this.entries.find((e) => resolve(e.path) === resolve(path));
    if (!target) return 'not-found';
    if (!target.online) return 'offline';
    const key = `${topic}-${partition}`;
    const log = this.byKey.get(key);
    if (!log) return 'no-replica';
    const running = this.moves.get(key);
    if (running) {
      if (running.target === target) return 'ok';
      running.cancelled = true;
    }
    if (log.logDir === target.path) return 'ok';
    const move: Move = { target, copy: null as unknown as FutureCopy, cancelled: false, done: Promise.resolve() };
    move.copy = new FutureCopy(join(target.path, `${key}.${randomUUID().replaceAll('-', '')}${FUTURE_SUFFIX}`), new Throttle(this.options.moveBytesPerSecond), () => move.cancelled);
    this.moves.set(key, move);
    move.done = (running?.done ?? Promise.resolve()).then(() => this.runMove(key, log, move)).catch((err: unknown) => {
      this.options.logger.error({ partition: key, to: target.path, err: String(err) }, 'moving a replica to another log dir failed; it stays where it was');
    }).finally(() => {
      if (this.moves.get(key) === move) this.moves.delete(key);
    });
    return 'ok';
  }

  /** Replicas being moved: where the future copy is and how much of it is there (DescribeLogDirs). */
  futureLogs(): { topic: string; partition: number; logDir: string; sizeBytes: number; offsetLag: bigint }[] {
    const out = [];
    for (const [key, m] of this.moves) {
      const log = this.byKey.get(key);
      if (!log || m.cancelled) continue;
      const behind = log.sizeBytes - m.copy.bytes;
      out.push({ topic: log.topic, partition: log.partition, logDir: m.target.path, sizeBytes: m.copy.bytes, offsetLag: behind > 0 ? 1n : 0n });
    }
    return out;
  }

  private async runMove(key: string, log: PartitionLog, move: Move): Promise<void> {
    const source = this.entries.find((e) => e.logs.get(key) === log);
    if (!source || move.cancelled || this.byKey.get(key) !== log) return;
    const { copy, target } = move;
    const log0 = this.options.logger;
    log0.info({ partition: key, from: source.path, to: target.path }, 'moving a replica to another log dir');
    let committed = false;
    try {
      await copy.init();
      for (let i = 0; i < 100 && !move.cancelled; i++) if ((await copy.pass(log, false)) < 1024 * 1024) break;
      if (move.cancelled || this.byKey.get(key) !== log) throw new Error('cancelled');
      // The pause: nothing changes the source from here on. Its state is read once it is closed:
      // an append or high-watermark advance finishing while close waited for the lock (an acked
      // record) would otherwise be below the new log's high watermark, invisible to consumers.
      await log.close();
      const state = { recoveryPoint: log.recoveryPoint, logStartOffset: log.logStartOffset, highWatermark: log.highWatermark, config: log.config };
      try {
        await copy.pass(log, true);
        await writeFile(join(log.dir, MOVED_MARKER), '');
        await fsyncDir(log.dir);
        const dest = join(target.path, key);
        await rename(copy.dir, dest);
        await fsyncDir(target.path);
        committed = true;
        const doomed = `${log.dir}.${randomUUID().replaceAll('-', '')}-delete`;
        await rename(log.dir, doomed);
        await fsyncDir(source.path);
        await unlinkIfExists(join(dest, MOVED_MARKER));
        const moved = await PartitionLog.load(dest, log.topic, log.partition, state.config, this.context(target), {
          cleanShutdown: true,
          recoveryPoint: state.recoveryPoint,
          logStartOffset: state.logStartOffset,
          highWatermark: state.highWatermark,
        });
        source.logs.delete(key);
        target.logs.set(key, moved);
        this.byKey.set(key, moved);
        log0.info({ partition: key, from: source.path, to: target.path }, 'replica moved to another log dir');
        this.onLogReplaced?.(log.topic, log.partition);
        await rm(doomed, { recursive: true, force: true });
        await Promise.all([this.writeCheckpoints(source), this.writeCheckpoints(target)]).catch(() => {});
      } catch (err) {
        if (committed) throw err;
        // Before the commit point the source is whole: serve it again.
        await unlinkIfExists(join(log.dir, MOVED_MARKER)).catch(() => {});
        const back = await PartitionLog.load(log.dir, log.topic, log.partition, state.config, this.context(source), {
          cleanShutdown: true, recoveryPoint: state.recoveryPoint, logStartOffset: state.logStartOffset, highWatermark: state.highWatermark,
        });
        source.logs.set(key, back);
        this.byKey.set(key, back);
        this.onLogReplaced?.(log.topic, log.partition);
        throw err;
      }
    } finally {
      if (!committed) await rm(copy.dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  getLog(topic: string, partition: number): PartitionLog | undefined {
    return this.byKey.get(`${topic}-${partition}`);
  }

  /** Close the log and remove its directory (renamed `<name>.<uuid>-delete` first, as Kafka does). */
  async deleteLog(topic: string, partition: number): Promise<void> {
    const key = `${topic}-${partition}`;
    // A move between log dirs ends first (cancelled, or finished if past its commit point): it
    // would otherwise rename its copy into place and serve the deleted partition again.
    const move = this.moves.get(key);
    if (move) {
      move.cancelled = true;
      await move.done;
    }
    const log = this.byKey.get(key);
    if (!log) return;
    this.byKey.delete(key);
    const entry = this.entries.find((e) => e.logs.get(key) === log);
    entry?.logs.delete(key);
    await log.closeQuietly();
    if (entry) await this.keepAside(entry.path, key, log.dir);
    const doomed = `${log.dir}.${randomUUID().replaceAll('-', '')}-delete`;
    try {
      await rename(log.dir, doomed);
      await rm(doomed, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') entry?.markOffline(err);
    }
    if (entry?.online) await this.writeCheckpoints(entry).catch(() => {});
  }

  /**
   * Segments recovery moved aside are never deleted (docs/on-disk-format.md): before a partition
   * dir goes, its `corrupt-aside-*` folders move to `<log dir>/corrupt-aside/<key>-<folder>/`,
   * with one warning. If that fails they go with the dir, said at error level.
   */
  private async keepAside(logDir: string, key: string, dir: string): Promise<void> {
    const asides = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(CORRUPT_ASIDE_PREFIX));
    if (asides.length === 0) return;
    const kept = join(logDir, KEPT_ASIDE_DIR);
    try {
      await mkdir(kept, { recursive: true });
      const moved = [];
      for (const name of asides) {
        const to = join(kept, `${key}-${name}`);
        await rename(join(dir, name), to);
        moved.push(to);
      }
      await fsyncDir(kept);
      this.options.logger.warn({ partition: key, kept: moved }, `the partition's log is deleted; the segments recovery had moved aside are kept in ${kept}`);
    } catch (err) {
      this.options.logger.error({ partition: key, err: String(err) }, 'could not keep the segments moved aside: they are deleted with the partition');
    }
  }

  logs(): PartitionLog[] {
    return [...this.byKey.values()];
  }

  dirs(): { path: string; online: boolean; totalBytes: number; freeBytes: number; usedBytes: number; partitions: number; error?: string }[] {
    return this.entries.map((e) => {
      let totalBytes = 0;
      let freeBytes = 0;
      try {
        const s = statfsSync(e.path);
        totalBytes = s.blocks * s.bsize;
        freeBytes = s.bavail * s.bsize;
      } catch {
        // offline or gone: report zeros
      }
      let usedBytes = 0;
      for (const l of e.logs.values()) usedBytes += l.sizeBytes;
      const out: ReturnType<LogManager['dirs']>[number] = { path: e.path, online: e.online, totalBytes, freeBytes, usedBytes, partitions: e.logs.size };
      if (e.error !== undefined) out.error = e.error;
      return out;
    });
  }
}
