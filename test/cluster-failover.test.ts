// A coordinator process dies and another takes over, in a cluster of two brokers and two
// coordinators: the controller fences the dead one after broker.session.timeout.ms, hands its
// __consumer_offsets partitions to the survivor (with a higher coordinator epoch), the survivor
// replays them from the brokers, and a kafkajs group carries on from its committed offsets:
// every record is read, none is skipped. And two processes given one node id do not fence each
// other forever: the older stands down.
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey } from '@runnel/protocol';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
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

it('of two processes started with one node id, the older stands down and exits; the newer serves', async () => {
  const older = cluster.coordinators.find((c) => c.process.child.exitCode === null && c.process.child.signalCode === null)!;
  const newer = await cluster.startNode('coordinator', older.nodeId);
  expect(await older.process.exited()).toBe(1);
  expect(older.process.output()).toMatch(/another process registered as node \d+/);
  // The newer one is what the cluster lists for that node id.
  const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const { brokers } = await until('the new process listed', async () => {
    const d = await admin.describeCluster();
    return d.brokers.some((b) => b.nodeId === older.nodeId && b.port === newer.port) && d;
  }, 20_000);
  await admin.disconnect();
  expect(brokers.filter((b) => b.nodeId === older.nodeId)).toHaveLength(1);
  expect(newer.process.child.exitCode).toBeNull();
}, 60_000);
