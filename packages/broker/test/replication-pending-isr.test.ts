/**
 * Who counts as an in-sync replica, in a real cluster: a redis-server, a `runnel controller` and
 * three `runnel broker` processes.
 *
 * The high watermark while an ISR expansion is in flight (KIP-497's maximal ISR): a follower
 * that caught up is proposed into the ISR; the controller commits it whenever the call reaches it,
 * and from then on the controller may elect that follower. So until the leader knows the outcome,
 * an acks=all append must wait for that follower too, or an acknowledged record can be missing
 * from a member of the committed ISR. The controller is SIGSTOPped to hold the proposal in flight
 * and the proposed follower is SIGSTOPped so it cannot fetch. Nothing asserts on time.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey, encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { startCluster, type ClusterNode, type TestCluster } from '../../../test/helpers/cluster.ts';
import { startProcess } from '../../../test/helpers/process.ts';
import { kafkaRequest } from '../../../test/helpers/raw-kafka.ts';
import { until } from '../../../test/helpers/until.ts';

let cluster: TestCluster;
const stopped = new Set<ClusterNode>();
// Sessions outlive the pauses below (a stopped follower stays live, so it is proposed back);
// a stopped follower leaves the ISR by lag.
const SETTINGS = ['broker.session.timeout.ms=60000', 'replica.lag.time.max.ms=1500', 'replica.fetch.backoff.ms=100', 'replica.fetch.wait.max.ms=200'];

beforeAll(async () => {
  cluster = await startCluster({ brokers: 3, coordinators: 0, set: SETTINGS });
}, 90_000);

afterAll(async () => {
  for (const n of stopped) n.process.child.kill('SIGCONT');
  await cluster?.cleanup();
});

function pause(node: ClusterNode): void {
  node.process.child.kill('SIGSTOP');
  stopped.add(node);
}

function resume(node: ClusterNode): void {
  node.process.child.kill('SIGCONT');
  stopped.delete(node);
}

async function isrAt(topic: string, via: ClusterNode): Promise<{ leaderId: number; isr: number[] }> {
  const md = await kafkaRequest(via.port, ApiKey.Metadata, 7, { topics: [{ name: topic }], allowAutoTopicCreation: false });
  const p = md.topics[0]!.partitions[0]!;
  return { leaderId: p.leaderId, isr: [...p.isrNodes].sort() };
}

async function produce(port: number, topic: string, value: string, timeoutMs: number) {
  const res = await kafkaRequest(port, ApiKey.Produce, 7, {
    transactionalId: null, acks: -1, timeoutMs,
    topicData: [{ name: topic, partitionData: [{ index: 0, records: encodeRecordBatch({ records: [{ value }] }) }] }],
  });
  return res.responses[0]!.partitionResponses[0]!;
}

it('acks=all waits for a follower proposed into the ISR until the proposal\'s outcome is known', async () => {
  const topic = 'pending-isr';
  const created = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.CreateTopics, 4, {
    topics: [{ name: topic, numPartitions: 1, replicationFactor: 3, assignments: [], configs: [{ name: 'min.insync.replicas', value: '2' }] }],
    timeoutMs: 10_000, validateOnly: false,
  });
  expect(created.topics[0]!.errorCode).toBe(ErrorCode.NONE);
  const { leaderId } = await until('three in-sync replicas on every broker', async () => {
    const seen = await Promise.all(cluster.brokers.map((n) => isrAt(topic, n).catch(() => undefined)));
    return seen.every((s) => s && s.leaderId > 0 && s.leaderId === seen[0]!.leaderId && s.isr.length === 3) ? seen[0] : undefined;
  }, 20_000);
  const leader = cluster.brokers.find((b) => b.nodeId === leaderId)!;
  const slow = cluster.brokers.filter((b) => b.nodeId !== leaderId).at(-1)!;
  expect((await produce(leader.port, topic, 'first', 15_000)).errorCode).toBe(ErrorCode.NONE);

  // The slow follower stops fetching and leaves the ISR (the leader's proposal, committed).
  pause(slow);
  await until(`ISR without ${slow.nodeId}`, async () => !(await isrAt(topic, leader)).isr.includes(slow.nodeId), 20_000);

  // With the controller stopped, the follower catches up and the leader's proposal to take it back stays in flight.
  const caughtUp = `follower ${slow.nodeId} caught up`;
  const proposalsBefore = leader.process.output().split(caughtUp).length;
  pause(cluster.controller);
  resume(slow);
  await until('the leader proposing the follower back into the ISR', () => leader.process.output().split(caughtUp).length > proposalsBefore, 20_000);
  pause(slow);

  // The other follower fetches this append; the proposed one cannot. Were it acknowledged, the
  // controller could commit the proposal and elect the follower that lacks it.
  const r = await produce(leader.port, topic, 'second', 3_000);
  expect(r.errorCode).not.toBe(ErrorCode.NONE);

  // Once the controller and the follower run again, the ISR has all three and new appends commit.
  resume(cluster.controller);
  resume(slow);
  await until('three in-sync replicas', async () => (await isrAt(topic, leader)).isr.length === 3, 30_000);
  expect((await produce(leader.port, topic, 'third', 15_000)).errorCode).toBe(ErrorCode.NONE);
}, 120_000);

it('a second process started with a live broker\'s node id takes no replica role while it waits to register', async () => {
  const topic = 'duplicate-id';
  // Three partitions on three brokers: each broker leads one.
  const created = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.CreateTopics, 4, {
    topics: [{ name: topic, numPartitions: 3, replicationFactor: 3, assignments: [], configs: [] }], timeoutMs: 10_000, validateOnly: false,
  });
  expect(created.topics[0]!.errorCode).toBe(ErrorCode.NONE);
  const holder = cluster.brokers[0]!;
  await until(`${topic} led in part by node ${holder.nodeId}`, async () => {
    const md = await kafkaRequest(holder.port, ApiKey.Metadata, 7, { topics: [{ name: topic }], allowAutoTopicCreation: false });
    return md.topics[0]!.partitions.some((p) => p.leaderId === holder.nodeId);
  }, 20_000);

  // Its own (empty) log dir and listener: a mistaken second start. Had it fetched as the holder,
  // its log end would have counted as the holder's at the leaders (and proposed it into ISRs).
  const runnel = join(import.meta.dirname, '../../cli/bin/runnel.ts');
  const set = [`runnel.redis.url=${cluster.redis.url}`, 'broker.heartbeat.interval.ms=500', 'runnel.controller.lease.ms=3000', ...SETTINGS,
    `node.id=${holder.nodeId}`, `log.dirs=${holder.logDir}-newcomer`, 'listeners=PLAINTEXT://127.0.0.1:0'];
  const newcomer = await startProcess(process.execPath, [runnel, 'broker', ...set.flatMap((x) => ['--set', x])]);
  try {
    await newcomer.waitFor(new RegExp(`node id ${holder.nodeId} is held by a live process`), 30_000);
    expect(newcomer.output()).not.toMatch(/leading partition|"component":"replica(tion|-fetcher)"/);
  } finally {
    await newcomer.stop();
  }
}, 60_000);
