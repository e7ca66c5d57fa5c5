import { BatchError, Codec, compress, crc32c, decompress, validateBatches, validateRecords } from '@runnel/native';
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, OFF_ATTRIBUTES, OFF_CRC, OFF_LENGTH } from './batch.ts';

/** Attribute bits 0–2: the codec; bit 5: a control batch (never recompressed). */
const CODEC_MASK = 0x07;
const ATTR_CONTROL = 0x20;

export interface RecompressTask {
  payload: Uint8Array;
  codec: Codec;
  maxUncompressedBytes: number;
}

/**
 * Rewrites every batch whose codec differs from `codec`: inflate the records (bounded), deflate
 * them with the topic's codec, and rebuild the header (length, codec bits, CRC). Offsets,
 * timestamps and producer fields are untouched, so idempotence and ordering are unaffected. The
 * CRCs are checked first: recompressing must never turn a corrupt batch into a valid one.
 * Runs in the offload pool for large payloads (a worker module) or inline for small ones.
 */
export function recompress(task: RecompressTask): Uint8Array {
  const payload = Buffer.from(task.payload.buffer, task.payload.byteOffset, task.payload.byteLength);
  const batches = validateBatches(payload);
  const parts: Buffer[] = [];
  let changed = false;
  for (const b of batches) {
    const batch = payload.subarray(b.position, b.position + b.size);
    const attributes = batch.readInt16BE(OFF_ATTRIBUTES);
    if ((attributes & CODEC_MASK) === task.codec || (attributes & ATTR_CONTROL) !== 0) {
      parts.push(batch);
      continue;
    }
    const records = batch.subarray(BATCH_HEADER_SIZE);
    const plain = b.codec === Codec.None ? records : decompress(b.codec, records, task.maxUncompressedBytes);
    const body = task.codec === Codec.None ? plain : compress(task.codec, plain);
    const out = Buffer.allocUnsafe(BATCH_HEADER_SIZE + body.length);
    batch.copy(out, 0, 0, BATCH_HEADER_SIZE);
    body.copy(out, BATCH_HEADER_SIZE);
    out.writeInt32BE(out.length - LOG_OVERHEAD, OFF_LENGTH);
    out.writeInt16BE((attributes & ~CODEC_MASK) | task.codec, OFF_ATTRIBUTES);
    out.writeUInt32BE(crc32c(out.subarray(OFF_ATTRIBUTES)) >>> 0, OFF_CRC);
    validateRecords(out, task.maxUncompressedBytes);
    parts.push(out);
    changed = true;
  }
  return changed ? Buffer.concat(parts) : payload;
}

/**
 * Deep record check of one batch in the pool. The batch arrives as a structured-clone copy (never a
 * transfer: that would detach the caller's payload, which is still to be appended). Failures come
 * back as a value so their code survives the thread hop.
 */
export function validate(task: { batch: Uint8Array; maxUncompressedBytes: number }): { ok: true } | { code: string; message: string } {
  try {
    validateRecords(task.batch, task.maxUncompressedBytes);
    return { ok: true };
  } catch (err) {
    return { code: (err as BatchError).code ?? 'INVALID_RECORD', message: (err as Error).message };
  }
}

export { BatchError };
