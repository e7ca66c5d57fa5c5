// A follower killed with -9 and restarted (the reliability matrix's T04), and a rolling restart
// of every broker with SIGTERM (T03), on 3 broker processes with RF 3 and min.insync.replicas=2,
// under an acks=all load from a kafkajs idempotent producer. The follower leaves the ISR, producers
// see no error (2 in-sync replicas are enough), and it rejoins once it caught up; a clean shutdown
// moves leaderships away first, so the rolling restart surfaces no error to the client. Every
// acknowledged record is read back once, at its offset, and the replicas end identical.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestCluster } from '../helpers/cluster.ts';
import { until } from '../helpers/until.ts';
import { brokerById, createTopic, fullIsr, kafkaOf, kill9, partitionStates, readAndCheck, replicasConverge, report, startReplicatedCluster, VerifiableProducer, INTACT, intact } from './harness.ts';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startReplicatedCluster();
});
afterAll(async () => {
  await cluster?.cleanup();
});

it('T04: a follower killed with -9 leaves the ISR without a client error, and rejoins it (ISR 3 in metadata) after its restart', async () => {
  const topic = 't04';
  // Two partitions on three brokers: one broker leads neither and only follows, so killing it moves no leadership.
  const states = await createTopic(cluster, topic, 2);
  const followerId = [1, 2, 3].find((id) => states.every((s) => s.leader !== id))!;
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 2, { tag: 't04' });
  await producer.start();
  let outS = 0;
  let backS = 0;
  try {
    await producer.progressed(200, 30_000);
    const follower = brokerById(cluster, followerId);
    const at = performance.now();
    await kill9(follower);
    await until(`broker ${followerId} out of every ISR of t04`, async () => (await partitionStates(cluster, topic)).every((s) => !s.isr.includes(followerId)), 30_000);
    outS = (performance.now() - at) / 1000;
    // Two in-sync replicas satisfy min.insync.replicas=2: acks=all goes on.
    await producer.progressed(200, 30_000);
    const restartedAt = performance.now();
    await cluster.restart(follower, { samePort: true });
    const healed = await fullIsr(cluster, topic, 30_000);
    backS = (performance.now() - restartedAt) / 1000;
    for (const s of healed) expect([...s.isr].sort()).toEqual([1, 2, 3]);
    await producer.progressed(100, 30_000);
  } finally {
    await producer.stop();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  const batches = await replicasConverge(cluster, topic, 20_000);
  report('T04 follower kill -9 and restart', figures, { isr_shrink_s: outS.toFixed(1), isr_rejoin_s: backS.toFixed(1), client_errors: producer.errors.length, replica_batches_compared: batches });
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 120_000);

it('T03: a rolling SIGTERM restart of every broker under load surfaces no error to the client and loses nothing', async () => {
  const topic = 't03';
  await createTopic(cluster, topic, 3);
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 3, { tag: 't03' });
  await producer.start();
  const stops: string[] = [];
  try {
    await producer.progressed(200, 30_000);
    for (const id of [1, 2, 3]) {
      const node = brokerById(cluster, id);
      const at = performance.now();
      // SIGTERM: a controlled shutdown hands its leaderships to other in-sync replicas before it stops.
      const exit = await node.process.stop(15_000);
      stops.push(`${id}:${exit}:${((performance.now() - at) / 1000).toFixed(1)}s`);
      expect(exit).toBe(0);
      await producer.progressed(50, 30_000);
      await cluster.restart(node, { samePort: true });
      await fullIsr(cluster, topic, 30_000);
    }
    await producer.progressed(100, 30_000);
  } finally {
    await producer.stop();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  const batches = await replicasConverge(cluster, topic, 20_000);
  report('T03 rolling SIGTERM', figures, { client_errors: producer.errors.length, shutdowns: stops.join(' '), replica_batches_compared: batches });
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 150_000);
