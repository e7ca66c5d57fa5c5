// Log dirs on `runnel start` with two log.dirs. Placement: each new partition goes to the dir whose
// filesystem has the most free bytes after what is already placed there, counting the creations of
// the same request; two dirs on one filesystem alternate (fewest partitions first). Moves:
// kafka-reassign-partitions with log_dirs moves a replica to the other dir while an acks=all
// producer keeps writing (the copy throttled by replica.alter.log.dirs.io.max.bytes.per.second, so
// the future replica is seen in DescribeLogDirs), also across a restart in the middle of the move.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type ClusterNode } from './helpers/cluster.ts';
import { kafkaTools, ok } from './helpers/kafka-tools.ts';
import { runKcat } from './helpers/kcat.ts';
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

/** Where `<topic>-<partition>` is: per dir, whether it holds the partition and whether a future copy of it. */
async function whereIs(dirs: string[], key: string): Promise<{ current: number[]; future: number[] }> {
  const names = await Promise.all(dirs.map((d) => readdir(d).catch(() => [] as string[])));
  return {
    current: names.flatMap((n, i) => (n.includes(key) ? [i] : [])),
    future: names.flatMap((n, i) => (n.some((x) => x.startsWith(`${key}.`) && x.endsWith('-future')) ? [i] : [])),
  };
}

async function futureInDescribe(port: number, topic: string): Promise<{ logDir: string; size: bigint } | undefined> {
  const body = await kafkaRequest(port, ApiKey.DescribeLogDirs, 4, { topics: [{ topic, partitions: [0] }] });
  for (const r of body.results) for (const t of r.topics) for (const p of t.partitions) if (p.isFutureKey) return { logDir: r.logDir, size: p.partitionSize };
  return undefined;
}

/**
 * An acks=all producer writing `k<n>` records one batch after another until stopped; the acked
 * ones, in order. After the first `fast` records it writes ~100 KB/s, under the copy throttle: a
 * producer faster than the throttle would keep the future replica behind (as in Kafka).
 */
function keepProducing(bootstrap: string, topic: string, fast = 3000) {
  const producer = new Kafka({ brokers: bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 50, maxRetryTime: 500 } }).producer({ allowAutoTopicCreation: false });
  const acked: string[] = [];
  let stopped = false;
  let failed: unknown;
  const done = (async () => {
    await producer.connect();
    for (let n = 0; !stopped; ) {
      const keys = Array.from({ length: 20 }, () => `k${n++}`);
      await producer.send({ topic, acks: -1, messages: keys.map((k) => ({ key: k, value: `${k}:`.padEnd(500, 'v') })) });
      acked.push(...keys);
      if (acked.length >= fast) await new Promise((r) => setTimeout(r, 100));
    }
  })().catch((err: unknown) => {
    failed = err;
  }).finally(() => producer.disconnect());
  return {
    acked,
    /** The acked count, or the error that stopped the producer. */
    count() {
      if (failed) throw failed;
      return acked.length;
    },
    async stop() {
      stopped = true;
      await done;
      if (failed) throw failed;
    },
  };
}

async function readAll(bootstrap: string, topic: string): Promise<string[]> {
  const r = await runKcat(['-b', bootstrap, '-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%k\\n'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter((l) => l !== '');
}


describe('moving a replica between log dirs (AlterReplicaLogDirs)', () => {
  const RATE = 256 * 1024;
  const settings = (dirs: string[]) => [`log.dirs=${dirs.join(',')}`, 'log.segment.bytes=131072', `replica.alter.log.dirs.io.max.bytes.per.second=${RATE}`, 'offsets.topic.num.partitions=1'];

  it('kafka-reassign-partitions --execute/--verify moves it while an acks=all producer writes; every acked record is read back in order', async () => {
    const tools = await kafkaTools();
    const dirs = await freshDirs(2);
    broker = await startBroker({ logDir: dirs[0], set: settings(dirs) });
    const bootstrap = ['--bootstrap-server', broker.bootstrap];
    await createTopic('mv', 1);
    const { current: [from] } = await until('mv-0 created', async () => (await whereIs(dirs, 'mv-0')).current.length === 1 && whereIs(dirs, 'mv-0'), 10_000);
    const to = 1 - from!;

    const producer = keepProducing(broker.bootstrap, 'mv');
    cleanups.push(() => producer.stop().catch(() => {}));
    // About 1.5 MB before the move: at 256 KiB/s the copy takes seconds, the future replica is seen.
    await until('1.5 MB produced', () => producer.acked.length >= 3000, 60_000);
    const plan = join(dirs[0]!, '..', 'move.json');
    await writeFile(plan, JSON.stringify({ version: 1, partitions: [{ topic: 'mv', partition: 0, replicas: [1], log_dirs: [dirs[to]] }] }));
    expect(ok(await tools.reassign([...bootstrap, '--execute', '--reassignment-json-file', plan]))).toContain(`Successfully started moving log directory to ${dirs[to]} for replica mv-0 with broker 1`);

    const future = await until('the future replica in DescribeLogDirs', () => futureInDescribe(broker!.port, 'mv'), 20_000);
    expect(future.logDir).toBe(dirs[to]);
    expect((await whereIs(dirs, 'mv-0')).future).toEqual([to]);
    const inProgress = ok(await tools.reassign([...bootstrap, '--verify', '--reassignment-json-file', plan]));
    expect(inProgress).toContain('Reassignment of replica mv-0-1 is still in progress.');

    await until('the move done', async () => {
      const w = await whereIs(dirs, 'mv-0');
      return w.current.length === 1 && w.current[0] === to && w.future.length === 0;
    }, 60_000);
    const verified = ok(await tools.reassign([...bootstrap, '--verify', '--reassignment-json-file', plan]));
    expect(verified).toContain('Reassignment of replica mv-0-1 completed successfully.');
    // The producer keeps going on the moved replica.
    const atMove = producer.acked.length;
    await until('records produced after the move', () => producer.acked.length >= atMove + 200, 30_000);
    await producer.stop();

    const logDirs = JSON.parse(ok(await tools.run('org.apache.kafka.tools.LogDirsCommand', [...bootstrap, '--describe', '--topic-list', 'mv'])).trim().split('\n').at(-1)!) as
      { brokers: { broker: number; logDirs: { logDir: string; partitions: { partition: string; isFuture: boolean }[] }[] }[] };
    const holding = logDirs.brokers[0]!.logDirs.filter((d) => d.partitions.some((p) => p.partition === 'mv-0'));
    expect(holding.map((d) => [d.logDir, d.partitions.map((p) => p.isFuture)])).toEqual([[dirs[to], [false]]]);

    expect(await readAll(broker.bootstrap, 'mv')).toEqual(producer.acked);
  }, 150_000);

  it('resumes a move cut short by a restart: the future dir is copied again and nothing is lost', async () => {
    const dirs = await freshDirs(2);
    broker = await startBroker({ logDir: dirs[0], set: settings(dirs) });
    await createTopic('mr', 1);
    const { current: [from] } = await until('mr-0 created', async () => (await whereIs(dirs, 'mr-0')).current.length === 1 && whereIs(dirs, 'mr-0'), 10_000);
    const to = 1 - from!;
    const producer = keepProducing(broker.bootstrap, 'mr');
    await until('1.5 MB produced', () => producer.acked.length >= 3000, 60_000);
    await producer.stop();

    const body = await kafkaRequest(broker.port, ApiKey.AlterReplicaLogDirs, 2, { dirs: [{ path: dirs[to]!, topics: [{ name: 'mr', partitions: [0] }] }] });
    expect(body.results).toEqual([{ topicName: 'mr', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.NONE }] }]);
    await until('the future replica in DescribeLogDirs', () => futureInDescribe(broker!.port, 'mr'), 20_000);
    // kill -9 in the middle of the copy: the source dir is whole, the future one partial.
    broker.process.child.kill('SIGKILL');
    await broker.stop();
    expect(await whereIs(dirs, 'mr-0')).toEqual({ current: [from], future: [to] });

    broker = await startBroker({ logDir: dirs[0], set: settings(dirs) });
    await until('the resumed move done', async () => {
      const w = await whereIs(dirs, 'mr-0');
      return w.current.length === 1 && w.current[0] === to && w.future.length === 0;
    }, 60_000);
    expect(await readAll(broker.bootstrap, 'mr')).toEqual(producer.acked);
  }, 150_000);

  it('--replica-alter-log-dirs-throttle (a dynamic broker config) holds the copy back, and raising it with kafka-configs lets the move finish', async () => {
    const tools = await kafkaTools();
    const dirs = await freshDirs(2);
    // No static throttle: only the dynamic one the tool sets on broker 1.
    broker = await startBroker({ logDir: dirs[0], set: [`log.dirs=${dirs.join(',')}`, 'log.segment.bytes=131072', 'offsets.topic.num.partitions=1'] });
    const bootstrap = ['--bootstrap-server', broker.bootstrap];
    await createTopic('dt', 1);
    const { current: [from] } = await until('dt-0 created', async () => (await whereIs(dirs, 'dt-0')).current.length === 1 && whereIs(dirs, 'dt-0'), 10_000);
    const to = 1 - from!;
    const producer = keepProducing(broker.bootstrap, 'dt');
    await until('1.5 MB produced', () => producer.acked.length >= 3000, 60_000);
    await producer.stop();

    const plan = join(dirs[0]!, '..', 'move.json');
    await writeFile(plan, JSON.stringify({ version: 1, partitions: [{ topic: 'dt', partition: 0, replicas: [1], log_dirs: [dirs[to]] }] }));
    // 1 byte/s: past its first chunk the copy cannot go on (unthrottled, 1.5 MB takes milliseconds).
    ok(await tools.reassign([...bootstrap, '--execute', '--reassignment-json-file', plan, '--replica-alter-log-dirs-throttle', '1']));
    const describe = ok(await tools.configs([...bootstrap, '--describe', '--entity-type', 'brokers', '--entity-name', '1']));
    expect(describe).toContain('replica.alter.log.dirs.io.max.bytes.per.second=1');
    await until('the future replica in DescribeLogDirs', () => futureInDescribe(broker!.port, 'dt'), 20_000);
    // Held back: still not done after two more seconds (it would have been long done unthrottled).
    await new Promise((r) => setTimeout(r, 2000));
    expect(await whereIs(dirs, 'dt-0')).toEqual({ current: [from], future: [to] });
    expect(ok(await tools.reassign([...bootstrap, '--verify', '--reassignment-json-file', plan]))).toContain('Reassignment of replica dt-0-1 is still in progress.');

    ok(await tools.configs([...bootstrap, '--alter', '--entity-type', 'brokers', '--entity-name', '1', '--add-config', 'replica.alter.log.dirs.io.max.bytes.per.second=1000000000']));
    await until('the move done', async () => {
      const w = await whereIs(dirs, 'dt-0');
      return w.current.length === 1 && w.current[0] === to && w.future.length === 0;
    }, 60_000);
    expect(await readAll(broker.bootstrap, 'dt')).toEqual(producer.acked);
  }, 150_000);

  it('answers LOG_DIR_NOT_FOUND for a dir that is not a log dir and UNKNOWN_TOPIC_OR_PARTITION for a missing partition', async () => {
    const dirs = await freshDirs(2);
    broker = await startBroker({ logDir: dirs[0], set: settings(dirs) });
    await createTopic('bad', 1);
    const body = await kafkaRequest(broker.port, ApiKey.AlterReplicaLogDirs, 1, { dirs: [
      { path: '/nowhere', topics: [{ name: 'bad', partitions: [0] }] },
      { path: dirs[1]!, topics: [{ name: 'missing', partitions: [0] }] },
    ] });
    expect(body.results).toEqual([
      { topicName: 'bad', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.LOG_DIR_NOT_FOUND }] },
      { topicName: 'missing', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
    ]);
  }, 60_000);
});

describe('per log dir I/O metrics', () => {
  it('counts bytes written and read and times fdatasyncs per dir, next to free bytes and online', async () => {
    const dirs = await freshDirs(2);
    broker = await startBroker({ logDir: dirs[0], set: [`log.dirs=${dirs.join(',')}`, 'runnel.metrics.listener=127.0.0.1:0', 'runnel.durable=true', 'offsets.topic.num.partitions=1'] });
    const url = (await broker.process.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/))[1]!;
    await createTopic('io', 2);
    const where = await Promise.all([0, 1].map(async (p) => (await until(`io-${p} placed`, async () => {
      const w = await whereIs(dirs, `io-${p}`);
      return w.current.length === 1 && { dir: w.current[0]! };
    }, 10_000)).dir));
    expect(new Set(where).size).toBe(2);

    // 40 records of 1000 bytes into partition 0 only; then a consumer reads them back.
    const value = 'x'.repeat(1000);
    const producer = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    await producer.send({ topic: 'io', acks: -1, messages: Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value, partition: 0 })) });
    await producer.disconnect();
    const got = await runKcat(['-b', broker.bootstrap, '-C', '-t', 'io', '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%k\n'], { timeoutMs: 30_000 });
    expect(got.stdout.trim().split('\n')).toHaveLength(40);

    const text = await (await fetch(url)).text();
    const value0 = (name: string, dir: string) => {
      const m = text.match(new RegExp(`^${name}\\{dir="${dir.replaceAll('/', '\\/')}"\\} (\\S+)$`, 'm'));
      return m ? Number(m[1]) : undefined;
    };
    const busy = dirs[where[0]!]!;
    const idle = dirs[where[1]!]!;
    // At least the 40 KB of values; no more than twice that (batch and record headers, keys).
    expect(value0('runnel_log_dir_written_bytes_total', busy)).toBeGreaterThanOrEqual(40_000);
    expect(value0('runnel_log_dir_written_bytes_total', busy)).toBeLessThan(80_000);
    expect(value0('runnel_log_dir_read_bytes_total', busy)).toBeGreaterThanOrEqual(40_000);
    // The other dir holds io-1 (empty) and maybe __consumer_offsets: nothing of topic io.
    expect(value0('runnel_log_dir_written_bytes_total', idle)).toBeLessThan(40_000);
    expect(value0('runnel_log_dir_read_bytes_total', idle)).toBeLessThan(40_000);
    // runnel.durable: the acks=all append waited for an fdatasync of the busy dir.
    expect(value0('runnel_log_dir_fsync_seconds_count', busy)).toBeGreaterThanOrEqual(1);
    expect(value0('runnel_log_dir_fsync_seconds_sum', busy)).toBeGreaterThan(0);
    expect(text).toMatch(new RegExp(`^runnel_log_dir_fsync_seconds_bucket\\{le="\\+Inf",dir="${busy.replaceAll('/', '\\/')}"\\} \\d+$`, 'm'));
    for (const d of dirs) {
      expect(value0('runnel_log_dir_online', d)).toBe(1);
      expect(value0('runnel_log_dir_free_bytes', d)).toBeGreaterThan(0);
    }
  }, 60_000);
});

describe('moving replicas between log dirs on cluster brokers', () => {
  it('moves the leader\'s and the follower\'s replica while an acks=all producer writes; the follower keeps replicating from its new dir', async () => {
    const base = await mkdtemp(join(tmpdir(), 'runnel-logdirs-cluster-'));
    cleanups.push(() => rm(base, { recursive: true, force: true }));
    const dirsOf = (id: number) => [join(base, `b${id}-a`), join(base, `b${id}-b`)];
    const cluster = await startCluster({
      brokers: 2,
      set: ['log.segment.bytes=131072', `replica.alter.log.dirs.io.max.bytes.per.second=${256 * 1024}`],
      nodeSet: (role, id) => (role === 'broker' ? [`log.dirs=${dirsOf(id).join(',')}`] : []),
    });
    cleanups.push(() => cluster.cleanup());
    const [b1, b2] = cluster.brokers as [ClusterNode, ClusterNode];
    const created = await kafkaRequest(b1.port, ApiKey.CreateTopics, 4, { topics: [{ name: 'cm', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1, 2] }], configs: [{ name: 'min.insync.replicas', value: '2' }] }], timeoutMs: 10_000, validateOnly: false });
    expect(created.topics[0]!.errorCode).toBe(ErrorCode.NONE);
    const placed = async (id: number) => (await until(`cm-0 on broker ${id}`, async () => {
      const w = await whereIs(dirsOf(id), 'cm-0');
      return w.current.length === 1 && { at: w.current[0]! };
    }, 20_000)).at;
    const from = [await placed(1), await placed(2)];

    const producer = keepProducing(cluster.bootstrap, 'cm', 600);
    cleanups.push(() => producer.stop().catch(() => {}));
    await until('300 KB produced', () => producer.count() >= 600, 90_000);
    for (const [i, b] of [b1, b2].entries()) {
      const body = await kafkaRequest(b.port, ApiKey.AlterReplicaLogDirs, 2, { dirs: [{ path: dirsOf(i + 1)[1 - from[i]!]!, topics: [{ name: 'cm', partitions: [0] }] }] });
      expect(body.results[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    }
    for (const [i] of [b1, b2].entries()) {
      await until(`broker ${i + 1}'s move done`, async () => {
        const w = await whereIs(dirsOf(i + 1), 'cm-0');
        return w.current.length === 1 && w.current[0] === 1 - from[i]! && w.future.length === 0;
      }, 90_000);
    }
    // With min.insync.replicas=2 every ack after the moves needs the follower fetching into its new log.
    const atMove = producer.acked.length;
    await until('acks=all records after both moves', () => producer.count() >= atMove + 200, 60_000);
    await producer.stop();
    expect(await readAll(cluster.bootstrap, 'cm')).toEqual(producer.acked);
  }, 240_000);
});
