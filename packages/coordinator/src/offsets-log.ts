import { OFFSETS_TOPIC } from '@runnel/common';
import { decodeRecordBatches, encodeRecordBatch } from '@runnel/protocol';
import type { LogConfig, LogManager, PartitionLog } from '@runnel/storage';


/** Kafka's settings for `__consumer_offsets`: compacted (latest value per key wins), 100 MiB segments. */
export const offsetsTopicLogConfig: Partial<LogConfig> = { cleanupPolicy: ['compact'], segmentBytes: 100 * 1024 * 1024 };

/** The producer a transactional append is written for (the group coordinator's TxnOffsetCommit). */
export interface TxnProducer {
  producerId: bigint;
  producerEpoch: number;
}

/** A transaction marker (COMMIT or ABORT control record) written for a producer. */
export interface TxnMarker extends TxnProducer {
  commit: boolean;
  coordinatorEpoch: number;
}

/**
 * Where a coordinator keeps its state: the partitions of a compacted internal topic,
 * `__consumer_offsets` (the group coordinator) or `__transaction_state` (the transaction
 * coordinator). The coordinator does not know who stores them (the broker's storage in
 * `runnel start`, a remote broker in a cluster, memory in tests); the cli glues an implementation.
 *
 * Contract:
 * - `append` resolves once the records are durable to the log's standard (a failed append rejects;
 *   an error with `code: 'NOT_COORDINATOR'` means this process lost the partition). Appends to the
 *   same partition land in the order `append` was called, atomically (one batch per call). With
 *   `txn` the batch is transactional (attribute bit 4) under that producer id and epoch, with
 *   baseSequence -1 (no sequence checks), as Kafka writes a TxnOffsetCommit.
 * - `appendMarker` writes one control batch (COMMIT or ABORT) for a producer: it ends that
 *   producer's transaction in this partition.
 * - `load` calls `apply` for every record of the partition from its start, in offset order, with
 *   the batch's producer id when the batch is transactional (-1n otherwise), and `onMarker` for each
 *   control batch (a transaction marker), in order; resolves after the last one.
 */
export interface OffsetsLog {
  /** Number of partitions of the topic (offsets.topic.num.partitions, transaction.state.log.num.partitions). */
  readonly partitions: number;
  append(partition: number, records: readonly { key: Buffer; value: Buffer | null }[], txn?: TxnProducer): Promise<void>;
  appendMarker(partition: number, marker: TxnMarker): Promise<void>;
  load(
    partition: number,
    apply: (key: Buffer, value: Buffer | null, producerId: bigint) => void,
    onMarker?: (producerId: bigint, commit: boolean) => void,
  ): Promise<void>;
}

/** One entry of a MemoryOffsetsLog: a record (with its producer when transactional) or a marker. */
export interface MemoryLogEntry {
  key: Buffer;
  value: Buffer | null;
  /** Set on the records of a transactional append. */
  producerId?: bigint;
  /** Set on a marker entry (its key and value are empty). */
  marker?: TxnMarker;
}

/** An OffsetsLog in memory: for tests, and for a coordinator that may forget everything on restart. */
export class MemoryOffsetsLog implements OffsetsLog {
  readonly partitions: number;
  /** Every record (and marker) appended, per partition, in order (what a compacted topic holds before cleaning). */
  readonly records: MemoryLogEntry[][];
  /** Set to make the next appends fail (tests of the failure path). */
  failAppends: Error | null = null;

  constructor(partitions: number) {
    this.partitions = partitions;
    this.records = Array.from({ length: partitions }, () => []);
  }

  async append(partition: number, records: readonly { key: Buffer; value: Buffer | null }[], txn?: TxnProducer): Promise<void> {
    if (this.failAppends) throw this.failAppends;
    this.records[partition]!.push(...records.map((r) => (txn ? { key: r.key, value: r.value, producerId: txn.producerId } : { key: r.key, value: r.value })));
  }

  async appendMarker(partition: number, marker: TxnMarker): Promise<void> {
    if (this.failAppends) throw this.failAppends;
    this.records[partition]!.push({ key: Buffer.alloc(0), value: null, marker: { ...marker } });
  }

  async load(
    partition: number,
    apply: (key: Buffer, value: Buffer | null, producerId: bigint) => void,
    onMarker?: (producerId: bigint, commit: boolean) => void,
  ): Promise<void> {
    for (const r of this.records[partition]!) {
      if (r.marker) onMarker?.(r.marker.producerId, r.marker.commit);
      else apply(r.key, r.value, r.producerId ?? -1n);
    }
  }
}

/** Bytes read per step while loading a partition. */
const LOAD_CHUNK_BYTES = 1 << 20;

/**
 * Replays the records of `[start, end)` of an offsets partition, one read at a time: `read(offset)`
 * returns whole record batches from the one containing `offset` (a local log, or a remote broker
 * over RPC). Records before `start` are skipped; keyless records are ignored. A transactional
 * batch's records carry its producer id (-1n otherwise); a control batch is passed to `onMarker`
 * when it is a transaction marker (its key says ABORT or COMMIT).
 * Resolves with the offset after the last batch applied, which is below `end` only when a read came
 * back empty early (a caller that must see everything checks it).
 */
export async function replayRange(
  range: { start: bigint; end: bigint; read: (offset: bigint) => Promise<Buffer> },
  apply: (key: Buffer, value: Buffer | null, producerId: bigint) => void,
  onMarker?: (producerId: bigint, commit: boolean) => void,
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
        const producerId = batch.transactional ? batch.producerId : -1n;
        for (const r of batch.records) {
          if (r.offset < offset || r.key === null) continue;
          apply(r.key, r.value, producerId);
        }
      } else if (onMarker && batch.baseOffset >= offset) {
        const type = controlTypeOf(batch.records[0]?.key ?? null);
        if (type !== null) onMarker(batch.producerId, type === CONTROL_COMMIT);
      }
      offset = last + 1n;
    }
  }
  return offset;
}

/** Control record types (the key's int16 after its version): Kafka's ControlRecordType. */
const CONTROL_ABORT = 0;
const CONTROL_COMMIT = 1;

/** ABORT (0) or COMMIT (1) from a control record's key (int16 version 0, int16 type); null for other control records. */
function controlTypeOf(key: Buffer | null): number | null {
  if (key === null || key.length < 4) return null;
  const type = key.readInt16BE(2);
  return type === CONTROL_ABORT || type === CONTROL_COMMIT ? type : null;
}

/**
 * One uncompressed record batch holding an append's records (the topic is small and compacted);
 * with `txn`, transactional under that producer with baseSequence -1, as Kafka's group coordinator
 * writes a TxnOffsetCommit.
 */
export function encodeOffsetsBatch(records: readonly { key: Buffer; value: Buffer | null }[], timestamp: number, txn?: TxnProducer): Buffer {
  return encodeRecordBatch({
    records: records.map((r) => ({ key: r.key, value: r.value })),
    timestamp,
    ...(txn ? { transactional: true, producerId: txn.producerId, producerEpoch: txn.producerEpoch, baseSequence: -1 } : {}),
  });
}

/**
 * A transaction marker as Kafka writes it: one control batch (attributes: control and
 * transactional) of the producer, baseSequence -1, holding one record with key = int16 version 0 +
 * int16 type (0 ABORT, 1 COMMIT) and value = int16 version 0 + int32 coordinatorEpoch.
 */
export function encodeMarkerBatch(m: TxnMarker, timestamp: number): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(m.commit ? CONTROL_COMMIT : CONTROL_ABORT, 2);
  const value = Buffer.alloc(6);
  value.writeInt16BE(0, 0);
  value.writeInt32BE(m.coordinatorEpoch, 2);
  return encodeRecordBatch({
    records: [{ key, value }],
    timestamp,
    control: true,
    transactional: true,
    producerId: m.producerId,
    producerEpoch: m.producerEpoch,
    baseSequence: -1,
  });
}

/** What a local log needs to write a marker: storage's PartitionLog.appendControl. */
interface ControlAppender {
  appendControl(marker: TxnMarker): Promise<unknown>;
}

/**
 * An OffsetsLog over @runnel/storage partition logs of an internal topic (`__consumer_offsets` or
 * `__transaction_state`), one record batch per append (uncompressed; the topic is small and
 * compacted). `log(partition)` returns the partition's log (creating it if needed); it is the
 * caller's job to make it a compacted topic.
 */
export function partitionLogOffsetsLog(options: {
  partitions: number;
  log: (partition: number) => PartitionLog | Promise<PartitionLog>;
  /**
   * How a batch is appended, when the log's owner must do more than `log.append` (the broker also
   * advances the partition's high watermark). Defaults to appending to `log(partition)`.
   */
  append?: (partition: number, batch: Buffer) => Promise<unknown>;
  /**
   * How a marker is written (the broker: as leader, then the high watermark). Defaults to the
   * log's own `appendControl` (storage's control-batch append).
   */
  appendMarker?: (partition: number, marker: TxnMarker) => Promise<unknown>;
  /** Record timestamps; defaults to Date.now. */
  now?: () => number;
}): OffsetsLog {
  const now = options.now ?? Date.now;
  const appendBatch = options.append ?? (async (partition: number, batch: Buffer) => (await options.log(partition)).append(batch));
  const appendMarker = options.appendMarker ?? (async (partition: number, marker: TxnMarker) => {
    const log = (await options.log(partition)) as PartitionLog & Partial<ControlAppender>;
    if (typeof log.appendControl !== 'function') throw new Error('this storage cannot write transaction markers (no PartitionLog.appendControl)');
    return log.appendControl(marker);
  });
  return {
    partitions: options.partitions,
    async append(partition, records, txn) {
      if (records.length === 0) return;
      await appendBatch(partition, encodeOffsetsBatch(records, now(), txn));
    },
    async appendMarker(partition, marker) {
      await appendMarker(partition, marker);
    },
    async load(partition, apply, onMarker) {
      const log = await options.log(partition);
      await replayRange({ start: log.logStartOffset, end: log.logEndOffset, read: async (offset) => (await log.read(offset, LOAD_CHUNK_BYTES)).records }, apply, onMarker);
    },
  };
}

/**
 * The storage-backed OffsetsLog over a LogManager: partition `p` is the log `<topic>-p`
 * (`__consumer_offsets` unless `topic` says otherwise, e.g. `__transaction_state`), created
 * compacted on first use.
 */
export function logManagerOffsetsLog(options: { logs: LogManager; partitions: number; topic?: string; now?: () => number }): OffsetsLog {
  const { logs } = options;
  const topic = options.topic ?? OFFSETS_TOPIC;
  return partitionLogOffsetsLog({
    partitions: options.partitions,
    now: options.now,
    log: (p) => logs.getLog(topic, p) ?? logs.createLog(topic, p, offsetsTopicLogConfig),
  });
}
