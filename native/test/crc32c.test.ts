import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc32c } from '../src/index.ts';

/** Bitwise reference (reflected polynomial 0x82F63B78), independent of the Rust crate. */
function referenceCrc32c(data: Uint8Array, seed = 0): number {
  let crc = ~seed >>> 0;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

describe('crc32c', () => {
  it('matches the standard check value for "123456789"', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('matches published vectors (RFC 3720 B.4)', () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('is incremental: crc32c(b, crc32c(a)) === crc32c(a + b)', () => {
    const data = Buffer.from('The quick brown fox jumps over the lazy dog');
    for (let cut = 0; cut <= data.length; cut++) {
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(crc32c(data));
    }
  });

  it('equals the bitwise reference and any split of the input (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.nat(), (data, n) => {
        const cut = data.length === 0 ? 0 : n % (data.length + 1);
        const whole = crc32c(data);
        expect(whole).toBe(referenceCrc32c(data));
        expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('reads a subarray view without touching bytes outside it', () => {
    const big = Buffer.from('xx123456789yy');
    expect(crc32c(big.subarray(2, 11))).toBe(0xe3069283);
  });
});
