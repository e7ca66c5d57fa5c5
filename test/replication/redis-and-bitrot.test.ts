// Two faults outside the brokers' own processes (the reliability matrix's T10 and T17), on 3 broker
// processes with RF 3 and min.insync.replicas=2:
// - T10: Redis is killed with -9 under an acks=all load and restarted on its data 5 s later. The
//   brokers keep serving the metadata they have: no leader changes while it is down (nor after it
//   is back), and nothing acknowledged is lost.
// - T17: one bit flips in an old record stored by a follower (bit rot, while it is cleanly
//   stopped, so its restart trusts its segment). That follower then becomes the leader: the
//   corrupted record must never reach a consumer (CRC-32C catches every single-bit error; kcat,
//   like librdkafka by default, does not check it), and nothing acknowledged is lost (the third
//   replica is intact).
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestCluster } from '../helpers/cluster.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { brokerById, createTopic, fullIsr, kafkaOf, kill9, newLeader, partitionStates, readAll, check, readAndCheck, replicaBatches, report, startReplicatedCluster, VerifiableProducer, type Figures, INTACT, intact } from './harness.ts';

let cluster: TestCluster;
let restartedRedis: TestRedis | undefined;
beforeAll(async () => {
  cluster = await startReplicatedCluster();
});
afterAll(async () => {
  await cluster?.cleanup();
  await restartedRedis?.stop().catch(() => {});
});

it('T10: Redis killed with -9 and restarted 5 s later: no leader changes, acks resume, nothing acknowledged is lost', async () => {
  const topic = 't10';
  await createTopic(cluster, topic, 3);
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 3, { tag: 't10' });
  await producer.start();
  const epochs = (states: { leader: number; leaderEpoch: number }[]) => states.map((s) => `${s.leader}@${s.leaderEpoch}`).join(',');
  let before = '';
  let afterBack = '';
  let later = '';
  let duringOutage = 0;
  try {
    await producer.progressed(200, 30_000);
    before = epochs(await partitionStates(cluster, topic));
    const ackedAtKill = producer.count;
    cluster.redis.kill();
    await cluster.redis.process.exited();
    await new Promise((r) => setTimeout(r, 5_000));
    duringOutage = producer.count - ackedAtKill;
    restartedRedis = await startRedis({ dir: cluster.redis.dir });
    afterBack = epochs(await partitionStates(cluster, topic));
    await producer.progressed(200, 30_000);
    // Past a whole session (3 s) after Redis is back: a node that could not heartbeat meanwhile must not be fenced for it.
    await new Promise((r) => setTimeout(r, 4_000));
    later = epochs(await fullIsr(cluster, topic, 30_000));
  } finally {
    await producer.stop();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  report('T10 Redis kill -9 and restart', figures, { acked_while_redis_down: duringOutage, leaders: `${before} | back ${afterBack} | +4s ${later}`, client_errors: producer.errors.length });
  expect(afterBack).toBe(before);
  expect(later).toBe(before);
  // kafkajs retries the retriable errors (NOT_LEADER, NOT_ENOUGH_REPLICAS, timeouts); nothing else may reach the application.
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 120_000);

it('T17: a bit flipped in an old record stored by a follower is never served to a consumer after that follower becomes leader', async () => {
  const topic = 't17';
  // The first replica leads; the second is next in line (the first live ISR member in assignment order), so it leads once the first is gone.
  const [first, second] = (await createTopic(cluster, topic, 1))[0]!.replicas;
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 1, { tag: 't17' });
  await producer.start();
  try {
    await producer.progressed(300, 30_000);
  } finally {
    await producer.stop();
  }
  const last = producer.acked.at(-1)!.offset;
  const b2 = brokerById(cluster, second!);
  // Broker 2 has everything, then stops cleanly: its next start trusts its segments (no recovery scan), as with real bit rot.
  await untilHas(b2.logDir, topic, last);
  expect(await b2.process.stop(15_000)).toBe(0);
  const victim = producer.acked[10]!;
  const flippedAt = await flipBitInValue(join(b2.logDir, `${topic}-0`), victim.value);
  await cluster.restart(b2, { samePort: true });
  await fullIsr(cluster, topic, 30_000);

  const at = performance.now();
  const b1 = brokerById(cluster, first!);
  expect((await partitionStates(cluster, topic))[0]!.leader).toBe(first);
  await kill9(b1);
  const { state, seconds } = await newLeader(cluster, topic, 0, first!, at);
  let figures: Figures;
  try {
    expect(state.leader).toBe(second);
    figures = check(producer.acked, await readAll(cluster, topic), (v) => /^t17-\d+-\d+$/.test(v));
  } finally {
    await cluster.restart(b1, { samePort: true });
  }
  report('T17 bit rot on the new leader', figures, { corrupted: `${victim.value}@${victim.offset} (file byte ${flippedAt})`, failover_s: seconds.toFixed(1) });
  expect({ lost: figures.lost, duplicates: figures.duplicates, inconsistent: figures.inconsistent, phantom: figures.phantom, samples: figures.samples })
    .toEqual({ lost: 0, duplicates: 0, inconsistent: 0, phantom: 0, samples: [] });
}, 120_000);

/** Waits until a replica's segment files hold `offset`. */
async function untilHas(logDir: string, topic: string, offset: bigint): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await replicaBatches(logDir, topic, 0)).some((b) => b.lastOffset >= offset)) {
    if (Date.now() > deadline) throw new Error(`the replica in ${logDir} never reached offset ${offset}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Flips one bit of the '-' after the tag in `value` where it is stored (uncompressed): `t17-0-10` reads `t17m0-10`. Returns the file position. */
async function flipBitInValue(partitionDir: string, value: string): Promise<number> {
  const file = join(partitionDir, '00000000000000000000.log');
  const fh = await open(file, 'r+');
  try {
    const buf = await fh.readFile();
    const at = buf.indexOf(Buffer.from(value));
    if (at < 0) throw new Error(`${value} is not stored as plain bytes in ${file}`);
    const pos = at + value.indexOf('-');
    const byte = Buffer.from([buf[pos]! ^ 0x40]);
    await fh.write(byte, 0, 1, pos);
    await fh.sync();
    return pos;
  } finally {
    await fh.close();
  }
}
