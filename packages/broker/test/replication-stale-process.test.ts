/**
 * An old process that lost its node id does not fetch as that node, in a real cluster (a
 * redis-server, a `runnel controller`, three `runnel broker` processes): broker 3 is SIGSTOPped
 * until the controller fences it, a new process registers node id 3, and the old one is resumed.
 * Its fetches carry its own (old) registration's broker epoch, and the leader refuses them
 * (STALE_BROKER_EPOCH) instead of counting them as node 3's. Nothing asserts on time.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey, encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { startCluster, type ClusterNode, type TestCluster } from '../../../test/helpers/cluster.ts';
import { startProcess, type Started } from '../../../test/helpers/process.ts';
import { kafkaRequest } from '../../../test/helpers/raw-kafka.ts';
import { until } from '../../../test/helpers/until.ts';

const SETTINGS = ['replica.fetch.backoff.ms=200', 'replica.fetch.wait.max.ms=200', 'replica.lag.time.max.ms=2000'];
let cluster: TestCluster;
let newcomer: Started | undefined;
let paused: ClusterNode | undefined;

beforeAll(async () => {
  cluster = await startCluster({ brokers: 3, coordinators: 0, set: SETTINGS });
}, 90_000);

afterAll(async () => {
  paused?.process.child.kill('SIGCONT');
  await newcomer?.stop();
  await cluster?.cleanup();
});

const broker = (id: number): ClusterNode => cluster.brokers.find((b) => b.nodeId === id)!;

async function partition(topic: string, via: ClusterNode) {
  const md = await kafkaRequest(via.port, ApiKey.Metadata, 7, { topics: [{ name: topic }], allowAutoTopicCreation: false });
  return { brokers: md.brokers.map((b: { nodeId: number }) => b.nodeId).sort(), leader: md.topics[0]!.partitions[0]!.leaderId, isr: [...md.topics[0]!.partitions[0]!.isrNodes].sort() };
}

it('a process that lost its node id to a newer one is refused with STALE_BROKER_EPOCH when it fetches', async () => {
  const topic = 'stale-process';
  const created = await kafkaRequest(broker(1).port, ApiKey.CreateTopics, 4, {
    topics: [{ name: topic, numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1, 2, 3] }], configs: [] }],
    timeoutMs: 10_000, validateOnly: false,
  });
  expect(created.topics[0]!.errorCode).toBe(ErrorCode.NONE);
  await until('three in-sync replicas led by 1', async () => {
    const p = await partition(topic, broker(1)).catch(() => undefined);
    return p?.leader === 1 && p.isr.join() === '1,2,3' || undefined;
  }, 20_000);

  // The old process: stopped until its session expires and the controller fences it.
  const old = broker(3);
  old.process.child.kill('SIGSTOP');
  paused = old;
  await until('node 3 fenced', async () => {
    const p = await partition(topic, broker(1)).catch(() => undefined);
    return p && !p.brokers.includes(3) && !p.isr.includes(3) || undefined;
  }, 30_000);

  // A new process takes node id 3 (its own empty log dir).
  const runnel = join(import.meta.dirname, '../../cli/bin/runnel.ts');
  const set = [`runnel.redis.url=${cluster.redis.url}`, 'broker.heartbeat.interval.ms=500', 'broker.session.timeout.ms=3000', ...SETTINGS,
    'node.id=3', `log.dirs=${old.logDir}-newcomer`, 'listeners=PLAINTEXT://127.0.0.1:0'];
  newcomer = await startProcess(process.execPath, [runnel, 'broker', ...set.flatMap((x) => ['--set', x])]);
  await until('node 3 registered by the new process', async () => {
    const p = await partition(topic, broker(1)).catch(() => undefined);
    return p?.brokers.includes(3) || undefined;
  }, 30_000);
  const produced = await kafkaRequest(broker(1).port, ApiKey.Produce, 7, {
    transactionalId: null, acks: 1, timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records: encodeRecordBatch({ records: [{ value: 'x' }] }) }] }],
  });
  expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);

  // The old process resumes: its fetcher still runs, with its own old broker epoch.
  old.process.child.kill('SIGCONT');
  paused = undefined;
  // Its store refreshes the snapshot before registering again, and is refused: from then on its
  // snapshot names the new process's registration, the epoch the fetcher used to send. Only a
  // fetch already out may end otherwise: refusals keep coming after the refusal to register.
  const held = await old.process.waitFor(/node id 3 is held by a live process/, 30_000);
  const from = old.process.output().indexOf(held[0]);
  await until('the old process\'s fetches refused again and again', () => {
    const refused = old.process.output().slice(from).match(/"error":"STALE_BROKER_EPOCH"[^\n]*this process's broker epoch is not the live one/g);
    return (refused?.length ?? 0) >= 3 || undefined;
  }, 30_000);
  // The new holder of the id fetches and is proposed back into the ISR.
  await until('the new node 3 in sync', async () => {
    const p = await partition(topic, broker(1)).catch(() => undefined);
    return p?.isr.join() === '1,2,3' || undefined;
  }, 30_000);
}, 150_000);
