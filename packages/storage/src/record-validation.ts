import { BatchError, validateRecords } from '@runnel/native';
import type { OffloadPool } from '@runnel/offload';
import { OFF_ATTRIBUTES, OFF_LENGTH } from './batch.ts';
import { StorageError } from './errors.ts';

/**
 * The most a single batch may inflate to. Kafka validates compressed batches by decompressing
 * them; a batch that would grow past this is refused as corrupt before the memory is taken, which
 * is what stops a decompression bomb (a 1 MiB zstd frame can claim 1 GiB).
 */
export const MAX_UNCOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024;

/** Compressed batches up to this size are checked on the event loop; a thread hop costs more. */
const INLINE_COMPRESSED_BYTES = 64 * 1024;
const BATCH_HEADER_BYTES = 61;
const CODEC_MASK = 0x07;

/**
 * Kafka's LogValidator depth, before an append is queued: every record of every batch must be
 * well-formed (varint lengths in bounds, offset deltas 0..n-1, the count the header claims), and
 * compressed batches must inflate within MAX_UNCOMPRESSED_BATCH_BYTES. The envelope and CRC are
 * checked again by the append itself (native validateAndAssign), so an envelope that does not
 * parse here is left for it to report. Large compressed batches go to the worker pool so the event
 * loop keeps serving other connections.
 */
export async function validateRecordBatches(payload: Buffer, pool: OffloadPool | undefined, where: string): Promise<void> {
  for (let pos = 0, index = 0; pos + BATCH_HEADER_BYTES <= payload.length; index++) {
    const size = payload.readInt32BE(pos + OFF_LENGTH) + 12;
    if (size < BATCH_HEADER_BYTES || pos + size > payload.length) return;
    const batch = payload.subarray(pos, pos + size);
    const compressed = (payload.readInt16BE(pos + OFF_ATTRIBUTES) & CODEC_MASK) !== 0;
    try {
      if (compressed && size > INLINE_COMPRESSED_BYTES && pool) await pool.validateRecords(batch, MAX_UNCOMPRESSED_BATCH_BYTES);
      else validateRecords(batch, MAX_UNCOMPRESSED_BATCH_BYTES);
    } catch (err) {
      if (err instanceof BatchError) {
        throw new StorageError('CORRUPT_MESSAGE', `${where}: invalid records in batch ${index} at byte ${pos}: ${err.code}: ${err.message}`, { cause: err });
      }
      throw err;
    }
    pos += size;
  }
}
