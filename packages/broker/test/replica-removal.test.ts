/**
 * A replica a reassignment moves off a broker leaves no log behind there (Kafka's StopReplica with
 * deletePartition), in a real cluster: a redis-server, a `runnel controller` and three
 * `runnel broker` processes, driven over the Kafka wire (CreateTopics with an explicit assignment,
 * AlterPartitionReassignments). Waits poll for a state with a deadline; nothing asserts on time.
 */
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey, encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { startCluster, type ClusterNode, type TestCluster } from '../../../test/helpers/cluster.ts';
import { kafkaRequest } from '../../../test/helpers/raw-kafka.ts';
import { until } from '../../../test/helpers/until.ts';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startCluster({ brokers: 3, coordinators: 0, set: ['auto.leader.rebalance.enable=false', 'replica.fetch.backoff.ms=100', 'replica.fetch.wait.max.ms=200'] });
}, 90_000);

afterAll(async () => {
  await cluster?.cleanup();
});

const broker = (id: number): ClusterNode => cluster.brokers.find((b) => b.nodeId === id)!;
const hasDir = async (node: ClusterNode, topic: string) => (await readdir(node.logDir)).includes(`${topic}-0`);

async function replicasOf(topic: string, via: ClusterNode): Promise<{ leader: number; replicas: number[]; isr: number[] }> {
  const md = await kafkaRequest(via.port, ApiKey.Metadata, 7, { topics: [{ name: topic }], allowAutoTopicCreation: false });
  const p = md.topics[0]!.partitions[0]!;
  return { leader: p.leaderId, replicas: [...p.replicaNodes].sort(), isr: [...p.isrNodes].sort() };
}

it('a reassignment away from a broker stops its replica and deletes the partition\'s log there; the remaining replicas keep every record', async () => {
  const topic = 'moved-away';
  const created = await kafkaRequest(broker(1).port, ApiKey.CreateTopics, 4, {
    topics: [{ name: topic, numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1, 2] }], configs: [] }],
    timeoutMs: 10_000, validateOnly: false,
  });
  expect(created.topics[0]!.errorCode).toBe(ErrorCode.NONE);
  await until('both replicas in sync', async () => {
    const md = await replicasOf(topic, broker(1)).catch(() => undefined);
    return md?.leader === 1 && md.isr.join() === '1,2' ? md : undefined;
  }, 20_000);
  const produced = await kafkaRequest(broker(1).port, ApiKey.Produce, 7, {
    transactionalId: null, acks: -1, timeoutMs: 15_000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records: encodeRecordBatch({ records: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] }) }] }],
  });
  expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
  await until('broker 2 holds the partition', async () => await hasDir(broker(2), topic) || undefined, 10_000);

  // Move it from [1, 2] to [1, 3]: broker 2 leaves once broker 3 is in sync.
  const res = await kafkaRequest(broker(1).port, ApiKey.AlterPartitionReassignments, 0, {
    timeoutMs: 10_000, topics: [{ name: topic, partitions: [{ partitionIndex: 0, replicas: [1, 3] }] }],
  });
  expect(res.errorCode).toBe(ErrorCode.NONE);
  expect(res.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
  await until('the move done: replicas 1,3 in sync', async () => {
    const md = await replicasOf(topic, broker(1)).catch(() => undefined);
    return md?.replicas.join() === '1,3' && md.isr.join() === '1,3' ? md : undefined;
  }, 30_000);

  await until('broker 2 deleted its log of the partition', async () => !(await hasDir(broker(2), topic)) || undefined, 15_000);
  expect(await hasDir(broker(1), topic)).toBe(true);
  expect(await hasDir(broker(3), topic)).toBe(true);
  // Broker 2 is alive and still answers metadata; the leader of the moved partition has every record.
  const leader = (await replicasOf(topic, broker(2))).leader;
  expect([1, 3]).toContain(leader);
  const atLeader = await kafkaRequest(broker(leader).port, ApiKey.ListOffsets, 4, {
    replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }],
  });
  expect(atLeader.topics[0]!.partitions[0]!.offset).toBe(3n);
}, 120_000);
