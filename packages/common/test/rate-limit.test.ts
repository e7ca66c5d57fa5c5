// onceEvery: the keyed once-per-interval limiter behind the broker's "log dir is full" warnings.
import { expect, it } from 'vitest';
import { onceEvery } from '../src/index.ts';

it('allows each key once per interval, keys independently', () => {
  let t = 1_000;
  const limit = onceEvery(60_000, () => t);
  expect([limit.allow('a-0'), limit.allow('a-0'), limit.allow('a-1')]).toEqual([true, false, true]);
  t += 59_999;
  expect([limit.allow('a-0'), limit.allow('a-1')]).toEqual([false, false]);
  t += 1;
  expect([limit.allow('a-0'), limit.allow('a-0'), limit.allow('a-1')]).toEqual([true, false, true]);
});

it('forgets keys idle for an interval: it holds one interval\'s keys, however many come and go', () => {
  let t = 0;
  const limit = onceEvery(1_000, () => t);
  const sizes: number[] = [];
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 1_000; i++) expect(limit.allow(`r${round}-${i}`)).toBe(true);
    sizes.push(limit.size);
    t += 1_000;
  }
  expect(sizes).toEqual([1_000, 1_000, 1_000, 1_000, 1_000]);
});
