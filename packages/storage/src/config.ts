/**
 * Per-partition log configuration, with Kafka's topic-level names in camelCase
 * (`segment.bytes` → `segmentBytes`, ...). `defaultLogConfig` holds Kafka's broker defaults.
 */
export type CompressionType = 'producer' | 'uncompressed' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
const COMPRESSION_TYPES: readonly string[] = ['producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd'];

export interface LogConfig {
  /** `segment.bytes`: roll the active segment when the next append would pass this size. */
  segmentBytes: number;
  /** `segment.ms`: roll a non-empty active segment older than this. */
  segmentMs: number;
  /** `segment.index.bytes`: capacity of `.index` (8-byte entries) and `.timeindex` (12-byte entries); a full index rolls. */
  segmentIndexBytes: number;
  /** `index.interval.bytes`: bytes of batches between two sparse index entries. */
  indexIntervalBytes: number;
  /** `retention.ms`: delete whole segments whose newest timestamp is older; -1 keeps forever. */
  retentionMs: number;
  /** `retention.bytes`: delete the oldest segments while the partition is larger; -1 means unlimited. */
  retentionBytes: number;
  /** `cleanup.policy`. */
  cleanupPolicy: ('delete' | 'compact')[];
  /** `delete.retention.ms`: how long compaction keeps tombstones. */
  deleteRetentionMs: number;
  /** `min.cleanable.dirty.ratio`: compact when dirty bytes / cleanable bytes reaches this. */
  minCleanableDirtyRatio: number;
  /** `flush.messages`: fsync after this many records (Kafka default: never, rely on the page cache). */
  flushMessages: number;
  /** `flush.ms`: fsync when the oldest unflushed data is this old. */
  flushMs: number;
  /** `max.message.bytes`: largest record batch accepted. */
  maxMessageBytes: number;
  /** `message.timestamp.type`. */
  messageTimestampType: 'CreateTime' | 'LogAppendTime';
  /** `compression.type`: `producer` stores batches as produced; a codec recompresses batches in any other. */
  compressionType: CompressionType;
  /** `file.delete.delay.ms`: deleted segments are renamed `*.deleted` and unlinked after this delay. */
  fileDeleteDelayMs: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Kafka's Long.MAX_VALUE "never" for flush.*; Number.MAX_SAFE_INTEGER is as good as never in ms. */
const NEVER = Number.MAX_SAFE_INTEGER;

export const defaultLogConfig: LogConfig = Object.freeze({
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * DAY_MS,
  segmentIndexBytes: 10 * 1024 * 1024,
  indexIntervalBytes: 4096,
  retentionMs: 7 * DAY_MS,
  retentionBytes: -1,
  cleanupPolicy: ['delete'],
  deleteRetentionMs: DAY_MS,
  minCleanableDirtyRatio: 0.5,
  flushMessages: NEVER,
  flushMs: NEVER,
  maxMessageBytes: 1024 * 1024 + 12,
  messageTimestampType: 'CreateTime',
  compressionType: 'producer',
  fileDeleteDelayMs: 60_000,
}) as LogConfig;

/** Merge an override onto a base config and reject values that would break the log's invariants. */
export function resolveLogConfig(base: LogConfig, override?: Partial<LogConfig>): LogConfig {
  const c: LogConfig = { ...base, ...override, cleanupPolicy: [...(override?.cleanupPolicy ?? base.cleanupPolicy)] };
  const bad = (what: string) => {
    throw new ConfigProblem(what);
  };
  if (!(c.segmentBytes >= 14)) bad(`segment.bytes must be >= 14, got ${c.segmentBytes}`);
  if (!(c.segmentIndexBytes >= 12)) bad(`segment.index.bytes must be >= 12, got ${c.segmentIndexBytes}`);
  if (!(c.indexIntervalBytes >= 0)) bad(`index.interval.bytes must be >= 0`);
  if (!(c.segmentMs >= 1)) bad(`segment.ms must be >= 1`);
  if (!(c.maxMessageBytes >= 0)) bad(`max.message.bytes must be >= 0`);
  if (!(c.minCleanableDirtyRatio >= 0 && c.minCleanableDirtyRatio <= 1)) bad(`min.cleanable.dirty.ratio must be in [0, 1]`);
  for (const p of c.cleanupPolicy) if (p !== 'delete' && p !== 'compact') bad(`cleanup.policy: unknown ${p}`);
  if (c.messageTimestampType !== 'CreateTime' && c.messageTimestampType !== 'LogAppendTime') bad(`message.timestamp.type: ${c.messageTimestampType}`);
  if (!COMPRESSION_TYPES.includes(c.compressionType)) bad(`compression.type: unknown ${c.compressionType}`);
  return c;
}

/** Thrown by resolveLogConfig; PartitionLog/LogManager turn it into StorageError('INVALID_CONFIG'). */
export class ConfigProblem extends Error {}
