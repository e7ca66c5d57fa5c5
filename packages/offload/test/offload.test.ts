import { afterAll, describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import { BatchError, Codec, compress, crc32c, decompress, NativeError, validateRecords } from '@runnel/native';
import { OffloadError, OffloadPool } from '../src/index.ts';

const FIXTURE = new URL('./fixtures/sum-worker.ts', import.meta.url);

function corpus(size: number): Buffer {
  const line = Buffer.from('{"ts":1700000000000,"level":"warn","host":"db-3","path":"/v1/items","latency_ms":42}\n');
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += line.length) line.copy(out, i);
  return out;
}

/** A minimal uncompressed batch with `n` records of empty key/value, CRC included. */
function tinyBatch(n: number, codec: Codec = Codec.None): Buffer {
  const records = Buffer.concat(Array.from({ length: n }, (_, i) => Buffer.from([12, 0, 0, i * 2, 1, 1, 0])));
  const body = codec === Codec.None ? records : compress(codec, records);
  const b = Buffer.alloc(61 + body.length);
  b.writeInt32BE(b.length - 12, 8);
  b.writeInt8(2, 16);
  b.writeInt16BE(codec, 21);
  b.writeInt32BE(n - 1, 23);
  b.writeInt32BE(n, 57);
  body.copy(b, 61);
  b.writeUInt32BE(crc32c(b.subarray(21)), 17);
  return b;
}

describe('OffloadPool', () => {
  const pool = OffloadPool.create({ threads: 2 });
  afterAll(() => pool.stop());

  it.each([Codec.None, Codec.Gzip, Codec.Snappy, Codec.Lz4, Codec.Zstd])('codec %i gives the same bytes as the synchronous call', async (codec) => {
    const src = corpus(200_000);
    const level = codec === Codec.Zstd ? 1 : undefined;
    const expected = compress(codec, src, level);
    // The pool takes ownership of inputs that own their ArrayBuffer, so hand it copies.
    const packed = await pool.compress(codec, Buffer.from(src), level);
    expect(packed.equals(expected)).toBe(true);
    const back = await pool.decompress(codec, Buffer.from(packed), src.length);
    expect(back.equals(src)).toBe(true);
    expect(back.equals(decompress(codec, packed, src.length))).toBe(true);
  });

  it('transfers an input that owns its ArrayBuffer and copies a view into a pooled slab', async () => {
    const owned = new Uint8Array(new ArrayBuffer(4096)).fill(3);
    const expected = compress(Codec.Lz4, owned);
    const out = await pool.compress(Codec.Lz4, owned);
    expect(out.equals(expected)).toBe(true);
    expect(owned.byteLength).toBe(0); // detached: handed over, not cloned
    const pooled = Buffer.from('a small pooled buffer');
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length);
    expect((await pool.compress(Codec.Snappy, pooled)).equals(compress(Codec.Snappy, pooled))).toBe(true);
    expect(pooled.toString()).toBe('a small pooled buffer');
  });

  it('validateRecords matches the synchronous call and rebuilds BatchError', async () => {
    for (const codec of [Codec.None, Codec.Zstd]) {
      const batch = tinyBatch(5, codec);
      expect(await pool.validateRecords(Buffer.from(batch), 1 << 20)).toEqual(validateRecords(batch, 1 << 20));
    }
    const bad = tinyBatch(5);
    bad[40] ^= 1;
    const err = await pool.validateRecords(bad, 1 << 20).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BatchError);
    expect((err as BatchError).code).toBe('CORRUPT_CRC');
    expect((err as BatchError).batchIndex).toBe(0);
  });

  it('refuses a decompression bomb through the pool', async () => {
    // 256 MiB of zeros as concatenated gzip members: tiny input, no big buffer in the test.
    const member = zlib.gzipSync(Buffer.alloc(16 << 20), { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: 16 }, () => member));
    const err = await pool.decompress(Codec.Gzip, bomb, 8 << 20).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NativeError);
    expect((err as NativeError).code).toBe('DECOMPRESS_LIMIT');
    const corrupt = await pool.decompress(Codec.Zstd, Buffer.from('not zstd at all'), 1024).catch((e: unknown) => e);
    expect((corrupt as NativeError).code).toBe('CORRUPT_COMPRESSED');
  });

  it('runs another module by filename, by default export or by name, with transfers', async () => {
    expect(await pool.run<number>({ filename: FIXTURE, args: { bytes: Uint8Array.from([1, 2, 3, 250]) } })).toBe(256);
    const buffer = new ArrayBuffer(1234);
    expect(await pool.run<number>({ filename: FIXTURE.href, name: 'byteLength', args: { buffer }, transfer: [buffer] })).toBe(1234);
    expect(buffer.byteLength).toBe(0);
    const err = await pool.run({ filename: FIXTURE, name: 'fail', args: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OffloadError);
    expect((err as OffloadError).code).toBe('TASK_FAILED');
  });
});

describe('OffloadPool backpressure', () => {
  it('a flooded pool makes calls wait their turn (FIFO), never rejects them, and stop() rejects the waiters', async () => {
    const pool = OffloadPool.create({ threads: 1, maxQueue: 2 });
    try {
      const flag = new SharedArrayBuffer(4);
      const blocked = [0, 1, 2].map(() => pool.run<string>({ filename: FIXTURE, name: 'waitFor', args: { flag } }));
      const order: number[] = [];
      const flood = Array.from({ length: 10 }, (_, i) => pool.compress(Codec.Lz4, corpus(1000 + i)).then((out) => {
        order.push(i);
        return out;
      }));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect([pool.pending, pool.waiting, order.length]).toEqual([13, 10, 0]);
      Atomics.store(new Int32Array(flag), 0, 1);
      Atomics.notify(new Int32Array(flag), 0);
      expect(await Promise.all(blocked)).toEqual(['released', 'released', 'released']);
      const outs = await Promise.all(flood);
      outs.forEach((out, i) => expect(out.equals(compress(Codec.Lz4, corpus(1000 + i)))).toBe(true));
      // One thread runs them one at a time, so completion order is start order: the call order.
      expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(pool.pending).toBe(0);

      const flag2 = new SharedArrayBuffer(4);
      void [0, 1, 2].map(() => pool.run<string>({ filename: FIXTURE, name: 'waitFor', args: { flag: flag2 } }).catch(() => 'stopped'));
      const waiter = pool.compress(Codec.Lz4, corpus(1000)).catch((e: unknown) => e);
      expect(pool.waiting).toBe(1);
      const stopping = pool.stop();
      expect(((await waiter) as OffloadError).code).toBe('STOPPED');
      Atomics.store(new Int32Array(flag2), 0, 1);
      Atomics.notify(new Int32Array(flag2), 0);
      await stopping;
    } finally {
      await pool.stop();
    }
    const err = await pool.compress(Codec.Lz4, corpus(10)).catch((e: unknown) => e);
    expect((err as OffloadError).code).toBe('STOPPED');
  });

  it('defaults: threads = max(1, cpus - 1), maxQueue = threads² × 4', async () => {
    const pool = OffloadPool.create({ threads: 3 });
    expect([pool.threads, pool.maxQueue]).toEqual([3, 36]);
    await pool.stop();
  });
});
