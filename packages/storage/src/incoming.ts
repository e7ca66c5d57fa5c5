import { BatchError, Codec, validateRecords } from '@runnel/native';
import type { OffloadPool } from '@runnel/offload';
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, OFF_ATTRIBUTES, OFF_LENGTH } from './batch.ts';
import type { CompressionType } from './config.ts';
import { StorageError } from './errors.ts';
import { recompress, type RecompressTask } from './incoming-worker.ts';

/**
 * The most a single batch may inflate to. Kafka validates compressed batches by decompressing
 * them; a batch that would grow past this is refused as corrupt before the memory is taken, which
 * is what stops a decompression bomb (a 1 MiB zstd frame can claim 1 GiB).
 */
export const MAX_UNCOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024;

/** Work on payloads up to this size stays on the event loop; a thread hop costs more. */
const INLINE_BYTES = 64 * 1024;
const CODEC_MASK = 0x07;
const WORKER = new URL('./incoming-worker.ts', import.meta.url);

const codecOf: Record<Exclude<CompressionType, 'producer'>, Codec> = {
  uncompressed: Codec.None, gzip: Codec.Gzip, snappy: Codec.Snappy, lz4: Codec.Lz4, zstd: Codec.Zstd,
};

/**
 * What happens to a produced payload before it is queued for append (Kafka's LogValidator depth):
 *
 * 1. every record of every batch must be well-formed (varint lengths in bounds, offset deltas
 *    0..n-1, the count the header claims) and compressed batches must inflate within
 *    MAX_UNCOMPRESSED_BATCH_BYTES;
 * 2. when the topic's `compression.type` is a codec rather than `producer`, batches in another
 *    codec are recompressed.
 *
 * The envelope and CRC are checked again by the append itself (native validateAndAssign), so an
 * envelope that does not parse here is left for it to report. Large payloads go to the worker
 * pool so the event loop keeps serving other connections. Returns the payload to append.
 */
export async function prepareIncoming(payload: Buffer, options: { compression: CompressionType; pool: OffloadPool | undefined; where: string }): Promise<Buffer> {
  const { pool, where } = options;
  try {
    if (options.compression !== 'producer' && needsRecompression(payload, codecOf[options.compression])) {
      const task: RecompressTask = { payload, codec: codecOf[options.compression], maxUncompressedBytes: MAX_UNCOMPRESSED_BATCH_BYTES };
      const out = payload.length > INLINE_BYTES && pool ? await pool.run<Uint8Array>({ filename: WORKER, name: 'recompress', args: task }) : recompress(task);
      return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    }
    for (let pos = 0; pos + BATCH_HEADER_SIZE <= payload.length;) {
      const size = payload.readInt32BE(pos + OFF_LENGTH) + LOG_OVERHEAD;
      if (size < BATCH_HEADER_SIZE || pos + size > payload.length) break;
      const batch = payload.subarray(pos, pos + size);
      const compressed = (payload.readInt16BE(pos + OFF_ATTRIBUTES) & CODEC_MASK) !== 0;
      if (compressed && size > INLINE_BYTES && pool) {
        // Not pool.validateRecords: it transfers a buffer the view owns whole, detaching the payload.
        const r = await pool.run<{ ok: true } | { code: string; message: string }>({ filename: WORKER, name: 'validate', args: { batch, maxUncompressedBytes: MAX_UNCOMPRESSED_BATCH_BYTES } });
        if (!('ok' in r)) throw new StorageError('CORRUPT_MESSAGE', `${where}: invalid record batch at byte ${pos}: ${r.code}: ${r.message}`);
      } else validateRecords(batch, MAX_UNCOMPRESSED_BATCH_BYTES);
      pos += size;
    }
    return payload;
  } catch (err) {
    if (err instanceof BatchError || (err instanceof Error && err.name === 'NativeError')) {
      throw new StorageError('CORRUPT_MESSAGE', `${where}: invalid record batch: ${(err as BatchError).code}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

function needsRecompression(payload: Buffer, codec: Codec): boolean {
  for (let pos = 0; pos + BATCH_HEADER_SIZE <= payload.length;) {
    if ((payload.readInt16BE(pos + OFF_ATTRIBUTES) & CODEC_MASK) !== codec) return true;
    const size = payload.readInt32BE(pos + OFF_LENGTH) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE) return true; // let recompress() report the broken envelope
    pos += size;
  }
  return false;
}
