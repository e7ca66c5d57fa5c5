// A replica that became leader at epoch E and died before appending anything has E in its epoch
// cache at its log end. When it comes back as a follower, the leader answers its fetch (claiming
// E) with a divergence ending exactly at that log end: truncateTo(logEndOffset) cuts nothing from
// the log but must drop E from the cache, or the follower claims E again forever (found by the
// T13 double-failover test: a follower truncating in a tight loop, never back in the ISR).
import { afterEach, expect, it } from 'vitest';
import { LogManager } from '../src/index.ts';
import { batch, tempDir, testConfig } from './helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('truncateTo(logEndOffset) keeps the log and drops an epoch that starts at the log end', async () => {
  const d = tempDir();
  const logs = LogManager.create({ logDirs: [d.path], defaults: testConfig() });
  cleanups.push(d.cleanup, () => logs.stop());
  await logs.start();
  const log = await logs.createLog('t', 0);
  await log.append(batch(3), { leaderEpoch: 1 });
  await log.append(batch(2), { leaderEpoch: 2 });
  // Elected for epoch 3 at offset 5, killed before any append.
  log.leaderEpochs.assign(3, log.logEndOffset);
  expect(log.leaderEpochs.latestEpoch()).toBe(3);

  await log.truncateTo(log.logEndOffset);
  expect(log.logEndOffset).toBe(5n);
  expect(log.leaderEpochs.latestEpoch()).toBe(2);
  expect(log.leaderEpochs.endOffsetFor(2, log.logEndOffset)).toEqual({ epoch: 2, endOffset: 5n });
  // Beyond the end is the same: nothing to cut, nothing at or past the end kept.
  log.leaderEpochs.assign(4, log.logEndOffset);
  await log.truncateTo(log.logEndOffset + 10n);
  expect(log.leaderEpochs.latestEpoch()).toBe(2);
  expect((await log.read(0n, 1 << 20)).records.length).toBeGreaterThan(0);
});
