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
 * - transactions (Kafka's cleaner): a transactional batch's fate is its producer's next marker in
 *   the task. Records of a committed transaction are compacted like any other (they count for
 *   their keys' latest offset); those of an aborted one are removed; a batch whose marker is not
 *   in the task (still open, or its marker in the active segment) is copied unchanged and counts
 *   for no key (its outcome is unknown, so it neither hides nor is hidden). Without this every
 *   transactional record stayed forever: a compacted topic written by transactions (EOS changelogs,
 *   `__consumer_offsets` with TxnOffsetCommits) grew without bound, and a transactional offset
 *   outlived the tombstone of its group's deletion, coming back at the next load;
 * - a COMMIT/ABORT marker is removed once none of its transaction's records is left, it is older
 *   than the delete horizon (a consumer reading meanwhile still sees it) and its producer has a
 *   later batch in the task (the last one of each producer stays: it keeps its epoch fence across
 *   a replay); other control batches are copied unchanged. The `.txnindex` stays as it is (an
 *   entry whose records are gone filters nothing);
 * - a batch keeping all its records is copied byte for byte; one keeping some is rebuilt with the
 *   same base offset, lastOffsetDelta, timestamps, producer fields and codec (records keep their
 *   original offset deltas, so offsets never change), a new recordCount and CRC-32C; one keeping
 *   none is dropped. Cleaned segments read like any other (scanLog accepts the offset gaps).
 */
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { compress, crc32c } from '@runnel/native';
import { decodeRecordBatches, type DecodedBatch, type DecodedRecord } from '@runnel/protocol';
import { CONTROL_ABORT, CONTROL_COMMIT } from './batch.ts';

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

/** CONTROL_COMMIT or CONTROL_ABORT for a transaction marker (its record's key: int16 version ≥ 0, int16 type), else null. */
function markerType(b: DecodedBatch): number | null {
  const key = b.producerId >= 0n ? b.records[0]?.key : null;
  if (!key || key.length < 4 || key.readInt16BE(0) < 0) return null;
  const type = key.readInt16BE(2);
  return type === CONTROL_COMMIT || type === CONTROL_ABORT ? type : null;
}

function readSegment(path: string, size: number): Buffer {
  const data = readFileSync(path);
  return data.length > size ? data.subarray(0, size) : data;
}

export function compact(task: CompactionTask): CompactionResult {
  const opts = { verifyCrc: true, maxUncompressedBytes: task.maxUncompressedBytes };
  // Pass 1: the latest offset of every key, and the fate of every transactional batch.
  const latest = new Map<string, bigint>();
  const see = (k: Buffer, offset: bigint) => {
    const key = keyOf(k);
    const at = latest.get(key);
    if (at === undefined || at < offset) latest.set(key, offset);
  };
  /** Transactional batch base offset → committed (true) or aborted (false); absent: no marker in the task. */
  const committed = new Map<bigint, boolean>();
  /** Marker offset → its transaction's batches (base offsets). */
  const markerBatches = new Map<bigint, bigint[]>();
  /** Per producer: its open transaction's batches (and their keyed records) since its last marker. */
  const open = new Map<bigint, DecodedBatch[]>();
  /** Per producer: the base offset of its last batch in the task. */
  const lastOfProducer = new Map<bigint, bigint>();
  for (const s of task.segments) {
    for (const b of decodeRecordBatches(readSegment(s.path, s.size), opts)) {
      if (b.producerId >= 0n) lastOfProducer.set(b.producerId, b.baseOffset);
      if (b.control) {
        const type = markerType(b);
        if (type === null) continue;
        const txn = open.get(b.producerId) ?? [];
        open.delete(b.producerId);
        markerBatches.set(b.baseOffset, txn.map((x) => x.baseOffset));
        for (const x of txn) {
          committed.set(x.baseOffset, type === CONTROL_COMMIT);
          if (type === CONTROL_COMMIT) for (const r of x.records) if (r.key) see(r.key, r.offset);
        }
      } else if (b.transactional) {
        const txn = open.get(b.producerId) ?? [];
        txn.push(b);
        open.set(b.producerId, txn);
      } else {
        for (const r of b.records) if (r.key) see(r.key, r.offset);
      }
    }
  }
  /** Records of each transactional batch left after pass 2 (a marker goes once all of its transaction's are 0). */
  const keptOf = new Map<bigint, number>();
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
      const fate = b.transactional && !b.control ? committed.get(b.baseOffset) : undefined;
      if (b.control) {
        const txn = markerBatches.get(b.baseOffset);
        const removable = txn !== undefined && b.maxTimestamp < horizon && lastOfProducer.get(b.producerId) !== b.baseOffset
          && txn.every((o) => keptOf.get(o) === 0);
        if (removable) {
          changed = true;
          continue;
        }
      }
      if (b.control || (b.transactional && fate === undefined)) {
        parts.push(raw);
        out.recordsAfter += b.recordCount;
        continue;
      }
      if (fate === false) {
        keptOf.set(b.baseOffset, 0);
        changed = true;
        continue;
      }
      const kept = b.records.filter((r) => {
        if (!r.key) return true;
        if (latest.get(keyOf(r.key)) !== r.offset) return false;
        return r.value !== null || b.maxTimestamp >= horizon;
      });
      out.recordsAfter += kept.length;
      if (b.transactional) keptOf.set(b.baseOffset, kept.length);
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
