// A coordinator process dies and another takes over, in a cluster of two brokers and two
// coordinators: the controller fences the dead one after broker.session.timeout.ms, hands its
// __consumer_offsets partitions to the survivor (with a higher coordinator epoch), the survivor
// replays them from the brokers, and a kafkajs group carries on from its committed offsets:
// every record is read, none is skipped. And a second process given a live broker's node id is
// refused (DUPLICATE_BROKER_REGISTRATION) and waits: the broker holding the data keeps serving.
import { Kafka, logLevel } from 'kafkajs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey } from '@runnel/protocol';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { startProcess } from './helpers/process.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startCluster({ brokers: 2, coordinators: 2 });
});
afterAll(async () => {
  await cluster?.cleanup();
});

/** The node FindCoordinator names for a group, asked of a broker. */
async function coordinatorOf(group: string): Promise<number> {
  const body = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.FindCoordinator, 2, { key: group, keyType: 0 });
  return body.errorCode === 0 ? body.nodeId : -1;
}

it('moves a killed coordinator\'s groups to the surviving one, which resumes them from their commits', async () => {
  const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1_000 } });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'fo', numPartitions: 4 }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  const send = (from: number) => producer.send({ topic: 'fo', messages: Array.from({ length: 200 }, (_, i) => ({ partition: i % 4, value: String(from + i) })) });
  await send(0);

  const owner = await until('a coordinator for the group', () => coordinatorOf('g-fo').then((id) => id > 0 && id), 20_000);
  const seen = new Map<string, number>();
  const consumer = kafka.consumer({ groupId: 'g-fo', sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: 'fo', fromBeginning: true });
  void consumer.run({ autoCommitInterval: 100, eachMessage: async ({ message }) => { seen.set(message.value!.toString(), (seen.get(message.value!.toString()) ?? 0) + 1); } });
  await until('the first 200 records', () => seen.size >= 200, 30_000);
  const watcher = kafka.admin();
  await watcher.connect();
  await until('the group to commit all 200', async () => {
    const [topic] = await watcher.fetchOffsets({ groupId: 'g-fo', topics: ['fo'] });
    return topic!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0) === 200;
  }, 20_000);
  await watcher.disconnect();

  const victim = cluster.coordinators.find((c) => c.nodeId === owner)!;
  const survivor = cluster.coordinators.find((c) => c.nodeId !== owner)!;
  victim.process.child.kill('SIGKILL');
  await victim.process.exited();
  await until('the survivor to coordinate the group', () => coordinatorOf('g-fo').then((id) => id === survivor.nodeId), 30_000);
  await send(200);
  await until('the next 200 records through the survivor', () => seen.size >= 400, 40_000);
  await consumer.disconnect();
  await producer.disconnect();

  for (let i = 0; i < 400; i++) expect(seen.has(String(i))).toBe(true);
  // Everything was committed before the kill, and the survivor replayed those commits: nothing is read twice.
  expect([...seen.values()].filter((n) => n > 1)).toEqual([]);
  expect(survivor.process.output()).toMatch(/took over __consumer_offsets partition/);
}, 120_000);

it('a second process started with a live broker\'s node id waits; the data-bearing broker keeps serving and no offset is handed out twice', async () => {
  const holder = cluster.brokers[0]!;
  const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1_000 } });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'dup', numPartitions: 2 }] });
  const meta = await admin.fetchTopicMetadata({ topics: ['dup'] });
  const partition = meta.topics[0]!.partitions.find((p) => p.leader === holder.nodeId)!.partitionId;
  const producer = kafka.producer({ idempotent: false });
  await producer.connect();
  const offsets: string[] = [];
  const send = async (from: number) => {
    for (let i = from; i < from + 50; i++) {
      const [r] = await producer.send({ topic: 'dup', acks: -1, messages: [{ partition, value: String(i) }] });
      offsets.push(r!.baseOffset!);
    }
  };
  await send(0);

  // The same node id, its own (empty) log dir and listener: what a mistaken second start looks like.
  const runnel = join(import.meta.dirname, '../packages/cli/bin/runnel.ts');
  const settings = [`runnel.redis.url=${cluster.redis.url}`, 'broker.session.timeout.ms=3000', 'broker.heartbeat.interval.ms=500', 'runnel.controller.lease.ms=3000',
    `node.id=${holder.nodeId}`, `log.dirs=${holder.logDir}-newcomer`, 'listeners=PLAINTEXT://127.0.0.1:0'];
  const newcomer = await startProcess(process.execPath, [runnel, 'broker', ...settings.flatMap((x) => ['--set', x])]);
  try {
    await newcomer.waitFor(new RegExp(`node id ${holder.nodeId} is held by a live process at 127\\.0\\.0\\.1:${holder.port}; waiting for its session to expire`), 30_000);
    // Longer than a session timeout (3 s) twice over: the holder heartbeats, so the id stays its own.
    await send(50);
    await new Promise((r) => setTimeout(r, 6_500));
    await send(100);
    expect(newcomer.child.exitCode).toBeNull();
    expect(newcomer.output()).not.toMatch(/runnel broker is ready/);
    // Logged once, however long it waits.
    expect(newcomer.output().match(/waiting for its session to expire/g)).toHaveLength(1);
    const { brokers } = await admin.describeCluster();
    expect(brokers.filter((b) => b.nodeId === holder.nodeId)).toEqual([expect.objectContaining({ port: holder.port })]);
  } finally {
    await newcomer.stop(2_000);
    await producer.disconnect();
    await admin.disconnect();
  }
  // One offset per record, in order: nobody else appended to (or truncated) the partition.
  expect(offsets).toEqual(Array.from({ length: 150 }, (_, i) => String(i)));
  const values: string[] = [];
  const consumer = kafka.consumer({ groupId: 'g-dup', maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: 'dup', fromBeginning: true });
  void consumer.run({ eachMessage: async ({ partition: p, message }) => { if (p === partition) values.push(message.value!.toString()); } });
  await until('all 150 records', () => values.length >= 150, 30_000);
  await consumer.disconnect();
  expect(values).toEqual(Array.from({ length: 150 }, (_, i) => String(i)));
}, 120_000);
