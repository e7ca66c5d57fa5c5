/**
 * A small, fast, seeded PRNG (mulberry32) for benchmarks and randomized tests: the same seed gives
 * the same sequence on every run and machine, so a corpus is reproducible and a failing trial can
 * be replayed by its seed. Not for anything that needs unpredictability.
 */
export function seededRandom(seed: number): { next(): number; int(lo: number, hi: number): number } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  /** An integer in [lo, hi], both included. */
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int };
}
