// Client quotas in a cluster (docs/security.md, Client quotas): AlterClientQuotas sent to one broker
// goes through the controller into Redis, every node (both brokers and the coordinator node) then
// describes it and the partition leader throttles a Produce over it; removing it reaches every node too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, decodeResponse, encodeRecordBatch, encodeRequest } from '@runnel/protocol';
import { startCluster, type ClusterNode, type TestCluster } from './helpers/cluster.ts';
import { kafkaRequest, RawKafka } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

let cluster: TestCluster;
const nodes = (): ClusterNode[] => [...cluster.brokers, ...cluster.coordinators];

beforeAll(async () => {
  cluster = await startCluster({ brokers: 2, coordinators: 1, set: ['quota.window.num=2', 'quota.window.size.seconds=1'] });
}, 120_000);

afterAll(async () => {
  await cluster?.cleanup();
});

const describedOn = async (node: ClusterNode) => (await kafkaRequest(node.port, ApiKey.DescribeClientQuotas, 1, {
  components: [{ entityType: 'client-id', matchType: 0, match: 'q-cluster' }], strict: true,
})).entries ?? [];

async function alter(node: ClusterNode, value: number | null): Promise<void> {
  const res = await kafkaRequest(node.port, ApiKey.AlterClientQuotas, 1, {
    entries: [{ entity: [{ entityType: 'client-id', entityName: 'q-cluster' }], ops: [{ key: 'producer_byte_rate', value: value ?? 0, remove: value === null }] }],
    validateOnly: false,
  });
  expect(res.entries.map((e) => [e.errorCode, e.errorMessage])).toEqual([[0, null]]);
}

describe('client quotas in a cluster', () => {
  it('reach every node through the controller and the leader enforces them', async () => {
    const created = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.CreateTopics, 5, {
      topics: [{ name: 'quota-c', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 30_000, validateOnly: false,
    });
    expect(created.topics[0]!.errorCode).toBe(0);

    await alter(cluster.brokers[0]!, 100_000);
    for (const node of nodes()) {
      await until(`the quota on node ${node.nodeId}`, async () => (await describedOn(node)).length === 1, 15_000);
      expect(await describedOn(node)).toEqual([{ entity: [{ entityType: 'client-id', entityName: 'q-cluster' }], values: [{ key: 'producer_byte_rate', value: 100_000 }] }]);
    }

    const leaderId = await until('a leader for quota-c', async () => {
      const md = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.Metadata, 9, {
        topics: [{ name: 'quota-c' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false,
      });
      const leader = md.topics[0]?.partitions[0]?.leaderId ?? -1;
      return leader >= 0 ? leader : undefined;
    }, 15_000);
    const leader = cluster.brokers.find((b) => b.nodeId === leaderId)!;
    const raw = await RawKafka.open(leader.port);
    const records = encodeRecordBatch({ records: [{ key: null, value: Buffer.alloc(300_000, 1) }] });
    raw.send(encodeRequest({ apiKey: ApiKey.Produce, apiVersion: 7, correlationId: 1, clientId: 'q-cluster' },
      { transactionalId: null, acks: 1, timeoutMs: 10_000, topicData: [{ name: 'quota-c', partitionData: [{ index: 0, records }] }] }));
    const res = decodeResponse(ApiKey.Produce, 7, (await raw.waitFrames(1, 15_000))[0]!).body;
    raw.close();
    expect(res.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
    expect(res.throttleTimeMs).toBeGreaterThan(0);

    await alter(cluster.brokers[1]!, null);
    for (const node of nodes()) await until(`the quota gone on node ${node.nodeId}`, async () => (await describedOn(node)).length === 0, 15_000);
  }, 90_000);
});
