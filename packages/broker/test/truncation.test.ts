// Where a follower truncates on its leader's diverging-epoch answer (KIP-279), over real partition
// logs: the leader's answer comes from its own leader-epoch cache, as broker.replicaFetch computes it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeRecordBatch } from '@runnel/protocol';
import { defaultLogConfig, LogManager, type PartitionLog } from '@runnel/storage';
import { truncationOffset } from '../src/replication/fetcher.ts';
import { divergence as leaderAnswer } from '../src/replication/replica-manager.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function logs(): Promise<LogManager> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-truncation-'));
  const mgr = LogManager.create({ logDirs: [dir], defaults: { ...defaultLogConfig, fileDeleteDelayMs: 0 } });
  await mgr.start();
  cleanups.push(async () => {
    await mgr.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return mgr;
}

/** Appends `count` one-record batches written in `epoch`. */
async function write(log: PartitionLog, epoch: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await log.append(encodeRecordBatch({ records: [{ value: `e${epoch}-${i}` }] }), { leaderEpoch: epoch });
}

/** What the leader answers for a follower whose last batch has `lastFetchedEpoch` and whose log ends at `fetchOffset`. */
function divergence(leader: PartitionLog, lastFetchedEpoch: number, fetchOffset: bigint) {
  const answer = leaderAnswer(leader, lastFetchedEpoch, fetchOffset);
  if (answer === 'out-of-range') throw new Error('unexpected OFFSET_OUT_OF_RANGE');
  return answer;
}

describe('diverging-epoch truncation', () => {
  it('cuts an old leader\'s unreplicated suffix at the new epoch\'s start, and keeps what both have', async () => {
    const mgr = await logs();
    const leader = await mgr.createLog('t', 0);
    const follower = await mgr.createLog('t', 1);
    await write(leader, 0, 5);
    await write(follower, 0, 8); // the old leader wrote 5..7 that nobody else has
    leader.leaderEpochs.assign(1, leader.logEndOffset); // the new leader's epoch starts at 5
    await write(leader, 1, 4);
    const answer = divergence(leader, follower.leaderEpochs.latestEpoch(), follower.logEndOffset)!;
    expect(answer).toEqual({ epoch: 0, endOffset: 5n });
    const to = truncationOffset(follower, answer.epoch, answer.endOffset);
    expect(to).toBe(5n);
    await follower.truncateTo(to);
    expect(divergence(leader, follower.leaderEpochs.latestEpoch(), follower.logEndOffset)).toBeNull();
  });

  it('truncates to its own end of the largest epoch below the leader\'s answer when it lacks that epoch, then refines', async () => {
    const mgr = await logs();
    const leader = await mgr.createLog('t', 0);
    const follower = await mgr.createLog('t', 1);
    // Leader: epoch 0 [0,3), epoch 2 [3,6). Follower: epoch 0 [0,3), epoch 1 [3,7) (a leader the new one never followed).
    await write(leader, 0, 3);
    await write(leader, 2, 3);
    await write(follower, 0, 3);
    await write(follower, 1, 4);
    const first = divergence(leader, 1, follower.logEndOffset)!;
    expect(first).toEqual({ epoch: 0, endOffset: 3n });
    await follower.truncateTo(truncationOffset(follower, first.epoch, first.endOffset));
    expect(follower.logEndOffset).toBe(3n);
    expect(follower.leaderEpochs.latestEpoch()).toBe(0);
    expect(divergence(leader, 0, 3n)).toBeNull();
  });

  it('always truncates below the log end, so every diverging answer makes progress', async () => {
    const mgr = await logs();
    const follower = await mgr.createLog('t', 1);
    await write(follower, 3, 2);
    await write(follower, 4, 2);
    // An answer at or past our end (a leader whose history we cannot place): drop our latest epoch.
    expect(truncationOffset(follower, 4, 10n)).toBe(2n);
    // An epoch older than everything we hold ends, here, where our first epoch starts (Kafka's
    // endOffsetFor): min(its end, ours) cuts all of it, none of our records were written in it.
    expect(truncationOffset(follower, 1, 1n)).toBe(0n);
  });
});
