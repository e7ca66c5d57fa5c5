import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { Codec, compress, decompress, NativeError } from '../src/index.ts';

const SIZES = [0, 1, 1024, 64 * 1024 + 1, 3 * 1024 * 1024];
const CODECS = [Codec.None, Codec.Gzip, Codec.Snappy, Codec.Lz4, Codec.Zstd] as const;
const NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** Half compressible text, half random bytes: exercises both literal and match paths. */
function sample(size: number): Buffer {
  const text = Buffer.from('{"level":"info","host":"web-17","path":"/api/v1/orders","ms":12}\n'.repeat(Math.ceil(size / 128) + 1));
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += 8192) {
    const n = Math.min(8192, size - i);
    (i / 8192) % 2 === 0 ? text.copy(out, i, 0, n) : randomBytes(n).copy(out, i);
  }
  return out;
}

function expectNativeError(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NativeError);
    expect((e as NativeError).code).toBe(code);
    return;
  }
  throw new Error(`expected NativeError ${code}`);
}

describe.each(CODECS.map((c) => [NAMES[c], c] as const))('%s', (_name, codec) => {
  it.each(SIZES)('round-trips %i bytes', (size) => {
    const src = sample(size);
    const packed = compress(codec, src);
    expect(Buffer.compare(decompress(codec, packed, size), src)).toBe(0);
  });

  it('refuses output one byte past maxOutput with DECOMPRESS_LIMIT', () => {
    const src = sample(100_000);
    expectNativeError(() => decompress(codec, compress(codec, src), src.length - 1), 'DECOMPRESS_LIMIT');
  });

  if (codec !== Codec.None) {
    it('rejects garbage with CORRUPT_COMPRESSED', () => {
      const packed = compress(codec, sample(50_000));
      const garbage = Buffer.from(packed);
      garbage.fill(0xa5, Math.floor(garbage.length / 3));
      expectNativeError(() => decompress(codec, garbage, 1 << 20), 'CORRUPT_COMPRESSED');
      expectNativeError(() => decompress(codec, packed.subarray(0, Math.floor(packed.length / 2)), 1 << 20), 'CORRUPT_COMPRESSED');
    });
  }
});

describe('codec framing and levels', () => {
  it('gzip interoperates with node:zlib both ways, including concatenated members', () => {
    const src = sample(200_000);
    expect(zlib.gunzipSync(compress(Codec.Gzip, src)).equals(src)).toBe(true);
    expect(decompress(Codec.Gzip, zlib.gzipSync(src), src.length).equals(src)).toBe(true);
    const two = Buffer.concat([zlib.gzipSync(src.subarray(0, 1000)), zlib.gzipSync(src.subarray(1000))]);
    expect(decompress(Codec.Gzip, two, src.length).equals(src)).toBe(true);
  });

  it('snappy writes xerial framing with 32 KiB blocks', () => {
    const src = sample(100_000);
    const packed = compress(Codec.Snappy, src);
    expect(packed.subarray(0, 16).toString('hex')).toBe('82534e415050590000000001' + '00000001');
    let pos = 16;
    let blocks = 0;
    while (pos < packed.length) {
      pos += 4 + packed.readInt32BE(pos);
      blocks++;
    }
    expect(pos).toBe(packed.length);
    expect(blocks).toBe(Math.ceil(src.length / 32768));
  });

  it('snappy reads a raw block (librdkafka framing), including one that starts with 0x82', () => {
    const src = sample(40_000);
    const xerial = compress(Codec.Snappy, src.subarray(0, 30_000));
    const rawBlock = xerial.subarray(20); // single block after header + length
    expect(decompress(Codec.Snappy, rawBlock, 30_000).equals(src.subarray(0, 30_000))).toBe(true);
    // A raw block whose uncompressed length varint starts with 0x82 (length 130 = 0x82 0x01).
    const small = Buffer.from(compress(Codec.Snappy, src.subarray(0, 130)).subarray(20));
    expect(small[0]).toBe(0x82);
    expect(decompress(Codec.Snappy, small, 130).equals(src.subarray(0, 130))).toBe(true);
  });

  it('snappy refuses a raw block that declares more than maxOutput before decoding it', () => {
    const block = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]); // declares 4 GiB - 1
    expectNativeError(() => decompress(Codec.Snappy, block, 64 << 20), 'DECOMPRESS_LIMIT');
  });

  it('lz4 writes a frame with independent 64 KiB blocks (FLG 0x60, BD 0x40)', () => {
    const packed = compress(Codec.Lz4, sample(1000));
    expect(packed.subarray(0, 6).toString('hex')).toBe('04224d186040');
    expect(packed.subarray(-4).toString('hex')).toBe('00000000');
  });

  it('zstd accepts levels and rejects out-of-range ones; gzip rejects level 10', () => {
    const src = sample(100_000);
    for (const level of [1, 3, 19]) expect(decompress(Codec.Zstd, compress(Codec.Zstd, src, level), src.length).equals(src)).toBe(true);
    expectNativeError(() => compress(Codec.Zstd, src, 1000), 'BAD_ARGUMENT');
    expectNativeError(() => compress(Codec.Gzip, src, 10), 'BAD_ARGUMENT');
    expectNativeError(() => compress(7 as Codec, src), 'BAD_ARGUMENT');
    expectNativeError(() => decompress(Codec.Zstd, src, -1), 'BAD_ARGUMENT');
  });

  it('zstd reads frames without a content size (as librdkafka writes them)', () => {
    const src = sample(300_000);
    const streamed = zlib.zstdCompressSync(src, { pledgedSrcSize: undefined });
    expect(decompress(Codec.Zstd, streamed, src.length).equals(src)).toBe(true);
    expect(zlib.zstdDecompressSync(compress(Codec.Zstd, src)).equals(src)).toBe(true);
  });
});

describe.each([
  ['lz4', Codec.Lz4, '/usr/bin/lz4'],
  ['zstd', Codec.Zstd, '/usr/bin/zstd'],
] as const)('%s against the Debian CLI', (name, codec, bin) => {
  const present = existsSync(bin);
  const title = present ? `${name} CLI decompresses ours and we decompress its output` : `SKIPPED: ${bin} is absent`;
  it.skipIf(!present)(title, () => {
    for (const size of [0, 1, 1024, 64 * 1024 + 1, 3 * 1024 * 1024]) {
      const src = sample(size);
      const theirs = execFileSync(bin, ['-d', '-c'], { input: compress(codec, src), maxBuffer: 64 << 20 });
      expect(theirs.equals(src)).toBe(true);
      const packed = execFileSync(bin, ['-c', '-q'], { input: src, maxBuffer: 64 << 20 });
      expect(decompress(codec, packed, size).equals(src)).toBe(true);
    }
  });

});

describe('lz4 frames as other encoders write them', () => {
  const present = existsSync('/usr/bin/lz4');
  it.skipIf(!present)(present ? 'reads lz4 CLI frames with linked blocks, block checksums, content size, 64 KiB to 4 MiB blocks' : 'SKIPPED: /usr/bin/lz4 is absent', () => {
    const src = sample(3 * 1024 * 1024);
    for (const flags of [['-BD'], ['-BD', '-B4'], ['-BX', '-B4'], ['--content-size', '-B5'], ['-B6', '--no-frame-crc']]) {
      const packed = execFileSync('/usr/bin/lz4', ['-c', '-q', ...flags], { input: src, maxBuffer: 64 << 20 });
      expect(decompress(Codec.Lz4, packed, src.length).equals(src), flags.join(' ')).toBe(true);
      expectNativeError(() => decompress(Codec.Lz4, packed, src.length - 1), 'DECOMPRESS_LIMIT');
    }
  });
});

describe('no stale output leaks through crafted back-references', () => {
  it('an LZ4 match reaching before the block start is refused even after the scratch held other data', () => {
    const secret = Buffer.alloc(256 * 1024, 'SECRET-');
    expect(decompress(Codec.Lz4, compress(Codec.Lz4, secret), secret.length).equals(secret)).toBe(true);
    for (const flg of [0x60, 0x40]) { // independent, then linked blocks
      // One block: 4 literals "abcd", then a match of 4 + 15 bytes at offset 100 (before the output start).
      const block = Buffer.from([0x4f, 0x61, 0x62, 0x63, 0x64, 100, 0, 0x00, 0x50, 0x61, 0x62, 0x63, 0x64, 0x65]);
      const frame = Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18, flg, 0x40, 0x00]), Buffer.from([block.length, 0, 0, 0]), block, Buffer.alloc(4)]);
      expectNativeError(() => decompress(Codec.Lz4, frame, 1 << 20), 'CORRUPT_COMPRESSED');
    }
  });

  it('a snappy copy reaching before the block start is refused', () => {
    const secret = Buffer.alloc(256 * 1024, 'SECRET-');
    expect(decompress(Codec.Snappy, compress(Codec.Snappy, secret), secret.length).equals(secret)).toBe(true);
    // Raw block: length 10, literal "ab", then a 2-byte-offset copy of 8 bytes at offset 50.
    const raw = Buffer.from([10, 0x04, 0x61, 0x62, (8 - 1) << 2 | 2, 50, 0]);
    expectNativeError(() => decompress(Codec.Snappy, raw, 1 << 20), 'CORRUPT_COMPRESSED');
  });
});
