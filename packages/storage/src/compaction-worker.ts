/**
 * Log compaction, run in the offload pool (`pool.run({ filename: this module, name: 'compact' })`)
 * so the event loop never decodes records. Pure function of its task: reads the given segment
 * files, writes `<segment>.log.cleaned` next to each one that changes, and returns their paths;
 * the main thread swaps them in under the partition's lock (compaction.ts).
 *
 * Rules (Kafka's LogCleaner, simplified to one full pass over every non-active segment):
 * - keep the latest record of each key (the highest offset); records without a key are kept;
 * - a tombstone (null value) that is the latest for its key is dropped once its batch's max
 *   timestamp is older than `now - delete.retention.ms`, else kept;
 * - control and transactional batches are copied unchanged and never merged with others (Kafka's
 *   rule); unlike Kafka's cleaner, the records of aborted transactions and the markers themselves
 *   are never removed (read_committed consumers skip aborted records through the `.txnindex`,
 *   which the swap keeps as it is);
 * - a batch keeping all its records is copied byte for byte; one keeping some is rebuilt with the
 *   same base offset, lastOffsetDelta, timestamps, producer fields and codec (records keep their
 *   original offset deltas, so offsets never change), a new recordCount and CRC-32C; one keeping
 *   none is dropped. Cleaned segments read like any other (scanLog accepts the offset gaps).
 */
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { compress, crc32c } from '@runnel/native';
import { decodeRecordBatches, type DecodedBatch, type DecodedRecord } from '@runnel/protocol';

export interface CompactionTask {
  segments: { baseOffset: string; path: string; size: number }[];
  now: number;
  deleteRetentionMs: number;
  maxUncompressedBytes: number;
}

export interface CompactionResult {
  segments: { baseOffset: string; cleanedPath: string | null; bytesBefore: number; bytesAfter: number }[];
  recordsBefore: number;
  recordsAfter: number;
}

const keyOf = (k: Buffer) => k.toString('latin1');

function readSegment(path: string, size: number): Buffer {
  const data = readFileSync(path);
  return data.length > size ? data.subarray(0, size) : data;
}

export function compact(task: CompactionTask): CompactionResult {
  const opts = { verifyCrc: true, maxUncompressedBytes: task.maxUncompressedBytes };
  // Pass 1: the latest offset of every key.
  const latest = new Map<string, bigint>();
  for (const s of task.segments) {
    for (const b of decodeRecordBatches(readSegment(s.path, s.size), opts)) {
      if (b.control || b.transactional) continue;
      for (const r of b.records) if (r.key) latest.set(keyOf(r.key), r.offset);
    }
  }
  // Pass 2: rewrite what changes.
  const horizon = BigInt(task.now - task.deleteRetentionMs);
  const out: CompactionResult = { segments: [], recordsBefore: 0, recordsAfter: 0 };
  for (const s of task.segments) {
    const data = readSegment(s.path, s.size);
    const parts: Buffer[] = [];
    let changed = false;
    let pos = 0;
    for (const b of decodeRecordBatches(data, opts)) {
      const size = 12 + b.batchLength;
      const raw = data.subarray(pos, pos + size);
      pos += size;
      out.recordsBefore += b.recordCount;
      if (b.control || b.transactional) {
        parts.push(raw);
        out.recordsAfter += b.recordCount;
        continue;
      }
      const kept = b.records.filter((r) => {
        if (!r.key) return true;
        if (latest.get(keyOf(r.key)) !== r.offset) return false;
        return r.value !== null || b.maxTimestamp >= horizon;
      });
      out.recordsAfter += kept.length;
      if (kept.length === b.records.length) parts.push(raw);
      else {
        changed = true;
        if (kept.length > 0) parts.push(encodeBatch(b, kept));
      }
    }
    if (!changed) {
      out.segments.push({ baseOffset: s.baseOffset, cleanedPath: null, bytesBefore: s.size, bytesAfter: s.size });
      continue;
    }
    const cleanedPath = `${s.path}.cleaned`;
    let bytes = 0;
    try {
      const fd = openSync(cleanedPath, 'w');
      try {
        for (const p of parts) bytes += writeSync(fd, p);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      // A full disk: no `.cleaned` file of this pass stays behind to hold space; the next pass retries.
      for (const p of [cleanedPath, ...out.segments.map((x) => x.cleanedPath)]) if (p) rmSync(p, { force: true });
      throw err;
    }
    out.segments.push({ baseOffset: s.baseOffset, cleanedPath, bytesBefore: s.size, bytesAfter: bytes });
  }
  return out;
}

/** Zigzag varint (values within ±2^52, which covers Kafka's int32 fields and timestamp deltas). */
function varint(out: number[], v: number): void {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 0x80) {
    out.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  out.push(z);
}

function encodeRecord(b: DecodedBatch, r: DecodedRecord): Buffer {
  const body: number[] = [0]; // attributes
  varint(body, Number(r.timestamp - b.baseTimestamp));
  varint(body, Number(r.offset - b.baseOffset));
  const chunks: Buffer[] = [];
  const flush = () => {
    chunks.push(Buffer.from(body));
    body.length = 0;
  };
  const bytes = (v: Buffer | null) => {
    if (v === null) varint(body, -1);
    else {
      varint(body, v.length);
      flush();
      chunks.push(v);
    }
  };
  bytes(r.key);
  bytes(r.value);
  varint(body, r.headers.length);
  for (const h of r.headers) {
    bytes(Buffer.from(h.key, 'utf8'));
    bytes(h.value);
  }
  flush();
  const payload = Buffer.concat(chunks);
  const len: number[] = [];
  varint(len, payload.length);
  return Buffer.concat([Buffer.from(len), payload]);
}

/** A v2 batch with the header of `b` and only `records`. */
function encodeBatch(b: DecodedBatch, records: DecodedRecord[]): Buffer {
  let body: Buffer = Buffer.concat(records.map((r) => encodeRecord(b, r)));
  if (b.codec !== 0) body = compress(b.codec, body);
  const out = Buffer.alloc(61 + body.length);
  out.writeBigInt64BE(b.baseOffset, 0);
  out.writeInt32BE(49 + body.length, 8);
  out.writeInt32BE(b.partitionLeaderEpoch, 12);
  out.writeInt8(2, 16);
  out.writeInt16BE(b.attributes, 21);
  out.writeInt32BE(b.lastOffsetDelta, 23);
  out.writeBigInt64BE(b.baseTimestamp, 27);
  out.writeBigInt64BE(b.maxTimestamp, 35);
  out.writeBigInt64BE(b.producerId, 43);
  out.writeInt16BE(b.producerEpoch, 51);
  out.writeInt32BE(b.baseSequence, 53);
  out.writeInt32BE(records.length, 57);
  body.copy(out, 61);
  out.writeUInt32BE(crc32c(out.subarray(21)) >>> 0, 17);
  return out;
}
