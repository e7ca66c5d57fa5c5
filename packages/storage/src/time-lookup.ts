import { Codec, decompress } from '@runnel/native';
import { OffloadError, type OffloadPool } from '@runnel/offload';
import { ATTR_TIMESTAMP_TYPE, BATCH_HEADER_SIZE, OFF_ATTRIBUTES, OFF_FIRST_TIMESTAMP, OFF_LEADER_EPOCH, OFF_MAX_TIMESTAMP, OFF_RECORD_COUNT, batchSize } from './batch.ts';
import { StorageError } from './errors.ts';
import { MAX_UNCOMPRESSED_BATCH_BYTES } from './incoming.ts';

/** What ListOffsets answers for a timestamp: a record's offset and timestamp, and its batch's leader epoch (-1 if none). */
export interface TimestampAndOffset {
  offset: bigint;
  timestamp: bigint;
  leaderEpoch: number;
}

/** Compressed record sections up to this size are inflated on the event loop; a thread hop costs more. */
const INLINE_BYTES = 64 * 1024;
const CODEC_MASK = 0x07;

/**
 * The first record of one batch (`buf[at..]`, whole) whose timestamp is >= `target` and whose
 * offset is >= `minOffset` (the log start offset, which may fall inside a batch), as Kafka's
 * `FileRecords.searchForTimestamp` walks a batch's records: compressed batches are inflated
 * (bounded by MAX_UNCOMPRESSED_BATCH_BYTES, in the offload pool past 64 KiB of compressed bytes),
 * so the answer is the record, not the batch. In a LogAppendTime batch every record carries the
 * batch's max timestamp, so the first record at or above `minOffset` matches.
 *
 * Null when no record qualifies. A batch whose records cannot be read (damage: stored batches were
 * validated on append) answers its base offset and max timestamp, the batch-level answer, rather
 * than an error that would take the log dir offline. The pool failing (stopped at shutdown) is no
 * damage: a retriable error, never a silently inexact answer.
 */
export async function searchBatch(buf: Buffer, at: number, target: bigint, minOffset: bigint, pool: OffloadPool | undefined): Promise<TimestampAndOffset | null> {
  const base = buf.readBigInt64BE(at);
  const maxTs = buf.readBigInt64BE(at + OFF_MAX_TIMESTAMP);
  if (maxTs < target) return null;
  const epoch = buf.readInt32BE(at + OFF_LEADER_EPOCH);
  const leaderEpoch = epoch >= 0 ? epoch : -1;
  const attributes = buf.readInt16BE(at + OFF_ATTRIBUTES);
  const count = buf.readInt32BE(at + OFF_RECORD_COUNT);
  const logAppendTime = (attributes & ATTR_TIMESTAMP_TYPE) !== 0;
  const first = buf.readBigInt64BE(at + OFF_FIRST_TIMESTAMP);
  try {
    return walk(await recordsOf(buf, at, attributes & CODEC_MASK, pool), count, base, first, logAppendTime ? maxTs : null, target, minOffset, leaderEpoch);
  } catch (err) {
    if (err instanceof OffloadError) throw new StorageError('STORAGE_ERROR', `seek by time: ${err.message}`, { cause: err, retriable: true });
    return base >= minOffset ? { offset: base, timestamp: maxTs, leaderEpoch } : null;
  }
}

/** Record v2: length varint, attributes int8, timestampDelta varlong, offsetDelta varint, ... */
function walk(records: Buffer, count: number, base: bigint, first: bigint, logAppendTime: bigint | null, target: bigint, minOffset: bigint, leaderEpoch: number): TimestampAndOffset | null {
  let p = 0;
  const varint = (): bigint => {
    let shift = 0n;
    let v = 0n;
    for (;;) {
      if (p >= records.length) throw new Error('record runs past the batch');
      const byte = records[p++]!;
      v |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
    return (v >> 1n) ^ -(v & 1n);
  };
  for (let i = 0; i < count; i++) {
    const len = Number(varint());
    const end = p + len;
    if (len < 0 || end > records.length) throw new Error('record runs past the batch');
    p += 1; // attributes
    const tsDelta = varint();
    const offset = base + varint();
    const timestamp = logAppendTime ?? first + tsDelta;
    if (timestamp >= target && offset >= minOffset) return { offset, timestamp, leaderEpoch };
    p = end;
  }
  return null;
}

/** The records section of a batch, inflated when compressed. */
async function recordsOf(buf: Buffer, at: number, codec: number, pool: OffloadPool | undefined): Promise<Buffer> {
  const section = buf.subarray(at + BATCH_HEADER_SIZE, at + batchSize(buf, at));
  if (codec === Codec.None) return section;
  if (section.length > INLINE_BYTES && pool) return pool.decompress(codec as Codec, section, MAX_UNCOMPRESSED_BATCH_BYTES);
  return decompress(codec as Codec, section, MAX_UNCOMPRESSED_BATCH_BYTES);
}
