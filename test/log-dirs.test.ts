// Partitions spread over log dirs (`runnel start` with two log.dirs): each new partition goes to the
// dir whose filesystem has the most free bytes after what is already placed there, counting the
// creations of the same request; two dirs on one filesystem alternate (fewest partitions first).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { mountTmpfs, type Tmpfs } from './helpers/tmpfs.ts';
import { until } from './helpers/until.ts';

let broker: TestBroker | undefined;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  await broker?.stop();
  broker = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function createTopic(name: string, partitions: number, configs: { name: string; value: string }[] = []): Promise<void> {
  const body = await kafkaRequest(broker!.port, ApiKey.CreateTopics, 4, { topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs }], timeoutMs: 10_000, validateOnly: false });
  expect(body.topics[0]!.errorCode).toBe(ErrorCode.NONE);
}

/** How many of `topic`'s partition dirs each log dir holds, once all `partitions` exist. */
async function spread(dirs: string[], topic: string, partitions: number): Promise<number[]> {
  const count = async () => Promise.all(dirs.map(async (d) => (await readdir(d)).filter((n) => new RegExp(`^${topic}-\\d+$`).test(n)).length));
  return until(`${topic}'s ${partitions} partition dirs`, async () => {
    const c = await count();
    return c.reduce((a, b) => a + b, 0) === partitions && c;
  }, 20_000);
}

async function freshDirs(n: number): Promise<string[]> {
  const root = await mkdtemp(join(tmpdir(), 'runnel-logdirs-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  return Array.from({ length: n }, (_, i) => join(root, `d${i}`));
}

describe('partition placement over log dirs', () => {
  it('spreads a 12-partition topic 6/6 over two dirs on one filesystem, and the next topic too', async () => {
    const dirs = await freshDirs(2);
    broker = await startBroker({ logDir: dirs[0], set: [`log.dirs=${dirs.join(',')}`] });
    await createTopic('first', 12);
    expect(await spread(dirs, 'first', 12)).toEqual([6, 6]);
    await createTopic('second', 12);
    expect(await spread(dirs, 'second', 12)).toEqual([6, 6]);
    // Partitions added later keep the balance (CreatePartitions).
    const body = await kafkaRequest(broker.port, ApiKey.CreatePartitions, 1, { topics: [{ name: 'first', count: 15, assignments: null }], timeoutMs: 10_000, validateOnly: false });
    expect(body.results[0]!.errorCode).toBe(ErrorCode.NONE);
    const after = await spread(dirs, 'first', 15);
    expect(Math.abs(after[0]! - after[1]!)).toBe(1);
  }, 60_000);

  it('gives the dir with much less free space fewer partitions, but still uses it once the free bytes meet', async () => {
    const big: Tmpfs = mountTmpfs(320, 'runnel-logdirs-big-');
    cleanups.push(() => big.unmount());
    const small: Tmpfs = mountTmpfs(64, 'runnel-logdirs-small-');
    cleanups.push(() => small.unmount());
    const dirs = [join(small.path, 'data'), join(big.path, 'data')];
    // One __consumer_offsets partition (100 MiB segments) instead of 50, which would promise more
    // than both disks hold.
    broker = await startBroker({ logDir: dirs[0], set: [`log.dirs=${dirs.join(',')}`, 'offsets.topic.num.partitions=1'] });
    // 32 MiB promised per partition: the big disk takes 5 to 8 (8 when the offsets partition is not
    // made yet) before its free bytes after placement come down to the small one's, then the two
    // alternate: 10/2 or 8/4.
    await createTopic('uneven', 12, [{ name: 'segment.bytes', value: String(32 * 1024 * 1024) }]);
    const [onSmall, onBig] = await spread(dirs, 'uneven', 12);
    expect(onBig).toBeGreaterThanOrEqual(8);
    expect(onSmall).toBeGreaterThanOrEqual(1);
    expect(onSmall).toBeLessThan(onBig!);
  }, 60_000);
});
