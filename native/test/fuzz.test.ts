import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BatchError, Codec, compress, decompress, NativeError, scanLog, validateBatches, validateRecords } from '../src/index.ts';
import { buildBatch, simpleRecords } from './batches.ts';

const CODECS = [Codec.Gzip, Codec.Snappy, Codec.Lz4, Codec.Zstd] as const;
const LIMIT = 1 << 20;

/** Applies (position, xor) edits, and optionally truncates, a copy of `buf`. */
function mutate(buf: Uint8Array, edits: Array<[number, number]>, cut: number | null): Buffer {
  const out = Buffer.from(buf);
  for (const [p, x] of edits) out[p % out.length] ^= x || 1;
  return cut === null ? out : out.subarray(0, cut % (out.length + 1));
}

const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 });
const cut = fc.option(fc.nat(), { nil: null });

describe('hostile bytes never crash the core', () => {
  it.each(CODECS)('codec %i: mutated compressed data decodes, or fails with a codec error, within the limit', (codec) => {
    const src = Buffer.from('{"k":"v","n":12345,"path":"/a/b/c"}\n'.repeat(500));
    const packed = compress(codec, src);
    fc.assert(
      fc.property(edits, cut, (e, c) => {
        try {
          const out = decompress(codec, mutate(packed, e, c), LIMIT);
          expect(out.length).toBeLessThanOrEqual(LIMIT);
        } catch (err) {
          expect(err).toBeInstanceOf(NativeError);
          expect(['CORRUPT_COMPRESSED', 'DECOMPRESS_LIMIT']).toContain((err as NativeError).code);
        }
      }),
      { numRuns: 300 },
    );
  });

  it.each([Codec.None, ...CODECS])('codec %i: mutated batches give BatchErrors from every entry point', (codec) => {
    const batch = buildBatch(simpleRecords(20, 40), { codec });
    fc.assert(
      fc.property(edits, cut, (e, c) => {
        const bad = mutate(batch, e, c);
        for (const fn of [() => validateBatches(bad), () => validateRecords(bad, LIMIT)]) {
          try {
            fn();
          } catch (err) {
            expect(err).toBeInstanceOf(BatchError);
          }
        }
        const s = scanLog(bad);
        expect(s.validBytes).toBeLessThanOrEqual(bad.length);
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes as every codec and as a batch', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (junk) => {
        for (const codec of CODECS) {
          try {
            decompress(codec, junk, LIMIT);
          } catch (err) {
            expect(err).toBeInstanceOf(NativeError);
          }
        }
        expect(scanLog(junk).validBytes).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});
