/**
 * Prebuilt record batches for load generators (`runnel perf produce`, benchmarks): one batch per
 * record count, encoded once per `refreshMs` and then sent as is, so generating load costs no
 * per-request encoding. Payloads are distinct per record (random A–Z like Kafka's perf tool, or
 * random picks from a payload list) so compression ratios match a real producer's; only the
 * timestamps are shared within a refresh period (default 1 s).
 */
import { Buffer } from 'node:buffer';
import { BATCH_HEADER_SIZE, Codec, encodeRecordBatch } from '@runnel/protocol';

export interface BatchTemplate {
  batch: Buffer;
  count: number;
  /** Sum of the records' value sizes. */
  valueBytes: number;
}

export interface BatchTemplatesOptions {
  codec?: Codec;
  /** batch.size: records per full batch are derived from it (default 16384). */
  batchSize?: number;
  /** Fixed value size in bytes (random A–Z); or give `payloads`. */
  recordSize?: number;
  /** Values to pick from at random. */
  payloads?: Buffer[];
  /** Re-encode templates (fresh timestamps and payloads) this often (default 1000 ms). */
  refreshMs?: number;
  /** Seed of the payload generator (default fixed, so runs are repeatable). */
  seed?: number;
}

export class BatchTemplates {
  /** Records in a full batch (as many uncompressed records as fit in batch.size, at least 1). */
  readonly perBatch: number;
  private readonly templates = new Map<number, BatchTemplate>();
  private builtAt = -Infinity;
  private readonly codec: Codec;
  private readonly recordSize: number | undefined;
  private readonly payloads: Buffer[] | undefined;
  private readonly refreshMs: number;
  private rng: number;

  constructor(options: BatchTemplatesOptions) {
    if ((options.recordSize === undefined) === (options.payloads === undefined || options.payloads.length === 0)) {
      throw new TypeError('BatchTemplates needs exactly one of recordSize or a non-empty payloads list');
    }
    this.codec = options.codec ?? Codec.None;
    this.recordSize = options.recordSize;
    this.payloads = options.payloads;
    this.refreshMs = options.refreshMs ?? 1000;
    this.rng = (options.seed ?? 0x2545f491) >>> 0 || 1;
    const size = this.recordSize ?? Math.max(1, Math.round(this.payloads!.reduce((a, p) => a + p.length, 0) / this.payloads!.length));
    // The size of one record in a batch, measured rather than guessed (varints depend on it).
    const one = encodeRecordBatch({ records: [{ value: Buffer.alloc(size) }] }).length - BATCH_HEADER_SIZE;
    const batchSize = options.batchSize ?? 16384;
    let n = Math.max(1, Math.floor((batchSize - BATCH_HEADER_SIZE) / one));
    // Offset deltas of 64 and more take a second varint byte: shrink until the batch fits.
    const probe = Array.from({ length: n }, () => ({ value: Buffer.alloc(size) }));
    for (let len = encodeRecordBatch({ records: probe }).length; n > 1 && len > batchSize; len = encodeRecordBatch({ records: probe.slice(0, n) }).length) {
      n = Math.max(1, Math.min(n - 1, Math.floor((n * (batchSize - BATCH_HEADER_SIZE)) / (len - BATCH_HEADER_SIZE))));
    }
    this.perBatch = n;
  }

  /** xorshift32: deterministic and cheap; only payload bytes depend on it. */
  private random(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }

  /** The batch of `count` records (`now` = Date.now(), the records' timestamp on a rebuild). */
  get(count: number, now: number = Date.now()): BatchTemplate {
    if (now - this.builtAt >= this.refreshMs) {
      this.templates.clear();
      this.builtAt = now;
    }
    let t = this.templates.get(count);
    if (!t) {
      const values: Buffer[] = new Array(count);
      if (this.recordSize !== undefined) {
        const all = Buffer.allocUnsafe(this.recordSize * count);
        for (let i = 0; i < all.length; i++) all[i] = 65 + (this.random() % 26);
        for (let i = 0; i < count; i++) values[i] = all.subarray(i * this.recordSize, (i + 1) * this.recordSize);
      } else {
        for (let i = 0; i < count; i++) values[i] = this.payloads![this.random() % this.payloads!.length]!;
      }
      const batch = encodeRecordBatch({ records: values.map((value) => ({ value })), codec: this.codec, timestamp: now });
      t = { batch, count, valueBytes: values.reduce((a, v) => a + v.length, 0) };
      this.templates.set(count, t);
    }
    return t;
  }
}
