import { describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import { Codec, decompress, NativeError } from '../src/index.ts';

const GIB = 1024 * 1024 * 1024;
const LIMIT = 64 * 1024 * 1024;

/** Streams `total` zero bytes through a compressor; never holds the uncompressed data. */
async function zeros(stream: zlib.Gzip | zlib.ZstdCompress, total: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const chunk = Buffer.alloc(1 << 20);
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!stream.write(chunk)) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  await done;
  return Buffer.concat(chunks);
}

/** Peak RSS of this process in bytes (the kernel's high-water mark). */
const peakRss = () => process.resourceUsage().maxRSS * 1024;

describe('decompression bombs', () => {
  it.each([
    ['gzip', Codec.Gzip, () => zlib.createGzip({ level: 9 })],
    ['zstd', Codec.Zstd, () => zlib.createZstdCompress()],
  ] as const)('%s: a small input inflating past 1 GiB is refused at 64 MiB without a big allocation', async (_n, codec, make) => {
    const bomb = await zeros(make(), GIB + (16 << 20));
    expect(bomb.length).toBeLessThan(2 << 20);
    const rssBefore = process.memoryUsage().rss;
    const peakBefore = peakRss();
    let error: unknown;
    try {
      decompress(codec, bomb, LIMIT);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NativeError);
    expect((error as NativeError).code).toBe('DECOMPRESS_LIMIT');
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 << 20);
    expect(peakRss() - Math.max(peakBefore, rssBefore)).toBeLessThan(100 << 20);
  });
});
