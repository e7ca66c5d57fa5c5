import { OFFSETS_TOPIC } from '@runnel/common';
import { decodeRecordBatches, encodeRecordBatch } from '@runnel/protocol';
import type { LogConfig, LogManager, PartitionLog } from '@runnel/storage';


/** Kafka's settings for `__consumer_offsets`: compacted (latest value per key wins), 100 MiB segments. */
export const offsetsTopicLogConfig: Partial<LogConfig> = { cleanupPolicy: ['compact'], segmentBytes: 100 * 1024 * 1024 };

/**
 * Where the coordinator keeps its state: the partitions of the compacted internal topic
 * `__consumer_offsets`. The coordinator does not know who stores them (the broker's storage in
 * `runnel start`, a remote broker in a cluster, memory in tests); the cli glues an implementation.
 *
 * Contract:
 * - `append` resolves once the records are durable to the log's standard (a failed append rejects;
 *   an error with `code: 'NOT_COORDINATOR'` means this process lost the partition). Appends to the
 *   same partition land in the order `append` was called, atomically (one batch per call).
 * - `load` calls `apply` for every record of the partition from its start, in offset order, and
 *   resolves after the last one; control records are not passed.
 */
export interface OffsetsLog {
  /** Number of partitions of `__consumer_offsets` (Kafka: offsets.topic.num.partitions). */
  readonly partitions: number;
  append(partition: number, records: readonly { key: Buffer; value: Buffer | null }[]): Promise<void>;
  load(partition: number, apply: (key: Buffer, value: Buffer | null) => void): Promise<void>;
}

/** An OffsetsLog in memory: for tests, and for a coordinator that may forget everything on restart. */
export class MemoryOffsetsLog implements OffsetsLog {
  readonly partitions: number;
  /** Every record appended, per partition, in order (what a compacted topic holds before cleaning). */
  readonly records: { key: Buffer; value: Buffer | null }[][];
  /** Set to make the next appends fail (tests of the failure path). */
  failAppends: Error | null = null;

  constructor(partitions: number) {
    this.partitions = partitions;
    this.records = Array.from({ length: partitions }, () => []);
  }

  async append(partition: number, records: readonly { key: Buffer; value: Buffer | null }[]): Promise<void> {
    if (this.failAppends) throw this.failAppends;
    this.records[partition]!.push(...records);
  }

  async load(partition: number, apply: (key: Buffer, value: Buffer | null) => void): Promise<void> {
    for (const r of this.records[partition]!) apply(r.key, r.value);
  }
}

/** Bytes read per step while loading a partition. */
const LOAD_CHUNK_BYTES = 1 << 20;

/**
 * Replays the records of `[start, end)` of an offsets partition, one read at a time: `read(offset)`
 * returns whole record batches from the one containing `offset` (a local log, or a remote broker
 * over RPC). Control batches and records before `start` are skipped; keyless records are ignored.
 * Resolves with the offset after the last batch applied, which is below `end` only when a read came
 * back empty early (a caller that must see everything checks it).
 */
export async function replayRange(
  range: { start: bigint; end: bigint; read: (offset: bigint) => Promise<Buffer> },
  apply: (key: Buffer, value: Buffer | null) => void,
): Promise<bigint> {
  let offset = range.start;
  while (offset < range.end) {
    const records = await range.read(offset);
    if (records.length === 0) break;
    const batches = decodeRecordBatches(records);
    if (batches.length === 0) break;
    for (const batch of batches) {
      const last = batch.baseOffset + BigInt(batch.lastOffsetDelta);
      if (last < offset) continue;
      if (!batch.control) {
        for (const r of batch.records) {
          if (r.offset < offset || r.key === null) continue;
          apply(r.key, r.value);
        }
      }
      offset = last + 1n;
    }
  }
  return offset;
}

/** One uncompressed record batch holding an append's records (the topic is small and compacted). */
export function encodeOffsetsBatch(records: readonly { key: Buffer; value: Buffer | null }[], timestamp: number): Buffer {
  return encodeRecordBatch({ records: records.map((r) => ({ key: r.key, value: r.value })), timestamp });
}

/**
 * An OffsetsLog over @runnel/storage partition logs of `__consumer_offsets`, one record batch per
 * append (uncompressed; the topic is small and compacted). `log(partition)` returns the partition's
 * log (creating it if needed); it is the caller's job to make it a compacted topic.
 */
export function partitionLogOffsetsLog(options: {
  partitions: number;
  log: (partition: number) => PartitionLog | Promise<PartitionLog>;
  /**
   * How a batch is appended, when the log's owner must do more than `log.append` (the broker also
   * advances the partition's high watermark). Defaults to appending to `log(partition)`.
   */
  append?: (partition: number, batch: Buffer) => Promise<unknown>;
  /** Record timestamps; defaults to Date.now. */
  now?: () => number;
}): OffsetsLog {
  const now = options.now ?? Date.now;
  const appendBatch = options.append ?? (async (partition: number, batch: Buffer) => (await options.log(partition)).append(batch));
  return {
    partitions: options.partitions,
    async append(partition, records) {
      if (records.length === 0) return;
      await appendBatch(partition, encodeOffsetsBatch(records, now()));
    },
    async load(partition, apply) {
      const log = await options.log(partition);
      await replayRange({ start: log.logStartOffset, end: log.logEndOffset, read: async (offset) => (await log.read(offset, LOAD_CHUNK_BYTES)).records }, apply);
    },
  };
}

/**
 * The storage-backed OffsetsLog over a LogManager: partition `p` is the log `__consumer_offsets-p`,
 * created compacted on first use.
 */
export function logManagerOffsetsLog(options: { logs: LogManager; partitions: number; now?: () => number }): OffsetsLog {
  const { logs } = options;
  return partitionLogOffsetsLog({
    partitions: options.partitions,
    now: options.now,
    log: (p) => logs.getLog(OFFSETS_TOPIC, p) ?? logs.createLog(OFFSETS_TOPIC, p, offsetsTopicLogConfig),
  });
}
