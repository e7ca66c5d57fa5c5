/**
 * Byte-level helpers on record batches v2 (layout in @runnel/protocol records.ts) that the
 * producer and consumer use on their hot paths without decoding records into objects.
 */
import { Buffer } from 'node:buffer';
import { BATCH_HEADER_SIZE, BATCH_LOG_OVERHEAD, BatchAttr, Codec, decodeRecordBatches } from '@runnel/protocol';
import { crc32c } from './crc32c.ts';

/** What a walk over a record set found. */
export interface RecordSetStats {
  /** Records at or after `fromOffset` (control batches excluded). */
  records: number;
  /** Sum of key and value lengths of those records (what Kafka's consumer perf tool counts). */
  keyValueBytes: number;
  /** Batches seen (complete ones only). */
  batches: number;
  /** Offset after the last complete batch, or -1n when there was none. */
  nextOffset: bigint;
}

/**
 * Re-stamps a batch in place: producer id, epoch, base sequence and (when given) both timestamps,
 * then recomputes the CRC. Records inside keep their timestamp deltas.
 */
export function restampBatch(batch: Buffer, opts: { producerId?: bigint; producerEpoch?: number; baseSequence?: number; timestamp?: bigint }): void {
  if (opts.timestamp !== undefined) {
    const spread = batch.readBigInt64BE(35) - batch.readBigInt64BE(27);
    batch.writeBigInt64BE(opts.timestamp, 27);
    batch.writeBigInt64BE(opts.timestamp + spread, 35);
  }
  if (opts.producerId !== undefined) batch.writeBigInt64BE(opts.producerId, 43);
  if (opts.producerEpoch !== undefined) batch.writeInt16BE(opts.producerEpoch, 51);
  if (opts.baseSequence !== undefined) batch.writeInt32BE(opts.baseSequence, 53);
  batch.writeUInt32BE(crc32c(batch, 21), 17);
}

/** Record count from a batch header (at `pos`). */
export function batchRecordCount(buf: Buffer, pos = 0): number {
  return buf.readInt32BE(pos + 57);
}

function varint(buf: Buffer, pos: number): [value: number, next: number] {
  let raw = 0;
  let shift = 0;
  let b: number;
  do {
    b = buf[pos++]!;
    raw += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80 && shift < 35);
  // zig-zag
  return [raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2, pos];
}

/**
 * Walks a record set (a Fetch partition's records): counts records and key+value bytes at or after
 * `fromOffset`. Uncompressed batches are walked in place (varint lengths only, no allocation);
 * compressed ones are inflated by @runnel/protocol. A truncated last batch is ignored, as Kafka's
 * consumer does; control batches (transaction markers) count toward `nextOffset` only.
 */
export function walkRecordSet(buf: Buffer, fromOffset: bigint = -1n): RecordSetStats {
  const out: RecordSetStats = { records: 0, keyValueBytes: 0, batches: 0, nextOffset: -1n };
  let pos = 0;
  while (buf.length - pos >= BATCH_HEADER_SIZE) {
    const batchLength = buf.readInt32BE(pos + 8);
    const end = pos + BATCH_LOG_OVERHEAD + batchLength;
    if (end > buf.length || batchLength < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) break;
    const baseOffset = buf.readBigInt64BE(pos);
    const lastOffsetDelta = buf.readInt32BE(pos + 23);
    const attributes = buf.readInt16BE(pos + 21);
    const count = buf.readInt32BE(pos + 57);
    out.batches++;
    out.nextOffset = baseOffset + BigInt(lastOffsetDelta) + 1n;
    if ((attributes & BatchAttr.Control) === 0 && out.nextOffset > fromOffset) {
      const skipFrom = baseOffset >= fromOffset ? -1 : Number(fromOffset - baseOffset); // offset deltas below this are skipped
      if ((attributes & BatchAttr.CodecMask) === Codec.None) {
        let p = pos + BATCH_HEADER_SIZE;
        for (let i = 0; i < count && p < end; i++) {
          let len: number;
          [len, p] = varint(buf, p);
          const recEnd = p + len;
          let q = p + 1; // attributes int8
          let v: number;
          [, q] = varint(buf, q); // timestamp delta (varlong; fits for sane deltas)
          let offsetDelta: number;
          [offsetDelta, q] = varint(buf, q);
          [v, q] = varint(buf, q); // key length
          let kv = v > 0 ? v : 0;
          q += kv;
          [v, q] = varint(buf, q); // value length
          if (v > 0) kv += v;
          if (offsetDelta >= skipFrom) {
            out.records++;
            out.keyValueBytes += kv;
          }
          p = recEnd;
        }
      } else {
        for (const b of decodeRecordBatches(buf.subarray(pos, end), { verifyCrc: false })) {
          for (const r of b.records) {
            if (r.offset < fromOffset) continue;
            out.records++;
            out.keyValueBytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
          }
        }
      }
    }
    pos = end;
  }
  return out;
}
