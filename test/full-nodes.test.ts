// Every node listed in Metadata is a full Kafka node (docs/protocol.md, "Who answers what"): a
// single `runnel start`, a cluster broker and a coordinator node advertise exactly the same APIs
// and version ranges, and a coordinator node answers the broker APIs as a node that leads no
// partition. Real processes: a cluster (controller, 2 brokers, 1 coordinator node over real Redis)
// and a `runnel start`; Kafka 4.x's kafka-log-dirs and console tools (the Java Admin, producer and
// consumer), kafkajs, and raw requests.
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { kafkaTools, ok, type KafkaTools } from './helpers/kafka-tools.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';

let cluster: TestCluster;
let single: TestBroker;
let tools: KafkaTools;
let coordinator: string;
let coordinatorPort: number;

beforeAll(async () => {
  [cluster, single, tools] = await Promise.all([startCluster({ brokers: 2, coordinators: 1 }), startBroker(), kafkaTools()]);
  coordinator = cluster.coordinators[0]!.address;
  coordinatorPort = cluster.coordinators[0]!.port;
}, 660_000);

afterAll(async () => {
  await Promise.all([cluster?.cleanup(), single?.cleanup()]);
});

type Ranges = { apiKey: number; minVersion: number; maxVersion: number }[];
const apiVersions = async (port: number): Promise<Ranges> => {
  const res = await kafkaRequest(port, ApiKey.ApiVersions, 3, { clientSoftwareName: 'runnel-test', clientSoftwareVersion: '1' } as never) as { errorCode: number; apiKeys: Ranges };
  expect(res.errorCode).toBe(ErrorCode.NONE);
  return res.apiKeys.map(({ apiKey, minVersion, maxVersion }) => ({ apiKey, minVersion, maxVersion })).sort((a, b) => a.apiKey - b.apiKey);
};

describe('every node is a full Kafka node', () => {
  it('runnel start, a cluster broker and a coordinator node advertise the same API keys and version ranges (ApiVersions over the wire)', async () => {
    const [start, broker, coord] = await Promise.all([apiVersions(single.port), apiVersions(cluster.brokers[0]!.port), apiVersions(coordinatorPort)]);
    expect(broker).toEqual(start);
    expect(coord).toEqual(start);
    // The data, admin and group APIs are all there, not only discovery.
    const keys = new Set(start.map((r) => r.apiKey));
    for (const key of [ApiKey.Produce, ApiKey.Fetch, ApiKey.ListOffsets, ApiKey.DescribeLogDirs, ApiKey.CreateTopics, ApiKey.DescribeCluster, ApiKey.JoinGroup, ApiKey.FindCoordinator]) {
      expect(keys.has(key)).toBe(true);
    }
  });

  it('a cluster broker answers the group APIs, KIP-848\'s too, with NOT_COORDINATOR', async () => {
    const port = cluster.brokers[0]!.port;
    const hb = await kafkaRequest(port, ApiKey.ConsumerGroupHeartbeat, 0, {
      groupId: 'g848', memberId: 'm', memberEpoch: 0, rebalanceTimeoutMs: 30_000, subscribedTopicNames: ['t'], topicPartitions: [],
    } as never) as { errorCode: number };
    expect(hb.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    const join = await kafkaRequest(port, ApiKey.JoinGroup, 5, {
      groupId: 'classic', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }],
    } as never) as { errorCode: number };
    expect(join.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
  });

  it('a coordinator node answers the data APIs as a node that leads no partition, and forwards CreateTopics', async () => {
    const created = await kafkaRequest(coordinatorPort, ApiKey.CreateTopics, 4, {
      topics: [{ name: 'full-nodes', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 15_000, validateOnly: false,
    } as never) as { topics: { name: string; errorCode: number }[] };
    expect(created.topics).toMatchObject([{ name: 'full-nodes', errorCode: ErrorCode.NONE }]);

    const produced = await kafkaRequest(coordinatorPort, ApiKey.Produce, 7, {
      transactionalId: null, acks: 1, timeoutMs: 5_000,
      topicData: [
        { name: 'full-nodes', partitionData: [{ index: 0, records: encodeRecordBatch({ records: [{ value: 'x' }] }) }] },
        { name: 'no-such-topic', partitionData: [{ index: 0, records: encodeRecordBatch({ records: [{ value: 'x' }] }) }] },
      ],
    } as never) as { responses: { name: string; partitionResponses: { errorCode: number }[] }[] };
    expect(produced.responses.map((t) => [t.name, t.partitionResponses[0]!.errorCode]))
      .toEqual([['full-nodes', ErrorCode.NOT_LEADER_OR_FOLLOWER], ['no-such-topic', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]);

    const fetched = await kafkaRequest(coordinatorPort, ApiKey.Fetch, 11, {
      replicaId: -1, maxWaitMs: 5_000, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
      topics: [{ topic: 'full-nodes', partitions: [{ partition: 1, currentLeaderEpoch: -1, fetchOffset: 0n, logStartOffset: -1n, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [], rackId: '',
    } as never) as { responses: { partitions: { errorCode: number }[] }[] };
    expect(fetched.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);

    const offsets = await kafkaRequest(coordinatorPort, ApiKey.ListOffsets, 5, {
      replicaId: -1, isolationLevel: 0, topics: [{ name: 'full-nodes', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }],
    } as never) as { topics: { partitions: { errorCode: number }[] }[] };
    expect(offsets.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);

    // Its log.dirs, holding no partition (an empty list would read as CLUSTER_AUTHORIZATION_FAILED in the Java Admin).
    const dirs = await kafkaRequest(coordinatorPort, ApiKey.DescribeLogDirs, 2, { topics: null } as never) as { results: { errorCode: number; logDir: string; topics: unknown[] }[] };
    expect(dirs.results).toEqual([{ errorCode: ErrorCode.NONE, logDir: cluster.coordinators[0]!.logDir, topics: [] }].map((r) => expect.objectContaining(r)));
  });

  it('kafka-log-dirs (the Java Admin describeLogDirs over every node) bootstrapped from the coordinator node lists every node: the brokers\' partitions, the coordinator node\'s dir with none', async () => {
    const out = ok(await tools.run('org.apache.kafka.tools.LogDirsCommand', ['--bootstrap-server', coordinator, '--describe'], { timeoutMs: 60_000 }));
    const json = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as { brokers: { broker: number; logDirs: { logDir: string; partitions: { partition: string }[] }[] }[] };
    const byNode = new Map(json.brokers.map((b) => [b.broker, b.logDirs]));
    expect([...byNode.keys()].sort()).toEqual([...cluster.brokers.map((b) => b.nodeId), cluster.coordinators[0]!.nodeId].sort());
    const partitions = (nodeId: number) => byNode.get(nodeId)!.flatMap((d) => d.partitions.map((p) => p.partition));
    // The topics the other tests created live on the brokers.
    expect(cluster.brokers.flatMap((b) => partitions(b.nodeId))).toEqual(expect.arrayContaining(['full-nodes-0', 'full-nodes-1']));
    expect(byNode.get(cluster.coordinators[0]!.nodeId)).toEqual([expect.objectContaining({ logDir: cluster.coordinators[0]!.logDir, partitions: [] })]);
  }, 90_000);

  it('the Java producer and consumer (console tools) work bootstrapped from the coordinator node alone', async () => {
    ok(await tools.run('org.apache.kafka.tools.ProducerPerformance', [
      '--topic', 'full-nodes-java', '--num-records', '50', '--record-size', '20', '--throughput', '-1',
      '--producer-props', `bootstrap.servers=${coordinator}`, 'acks=all',
    ], { timeoutMs: 90_000 }));
    const consumed = ok(await tools.run('org.apache.kafka.tools.consumer.ConsoleConsumer', [
      '--bootstrap-server', coordinator, '--topic', 'full-nodes-java', '--from-beginning', '--max-messages', '50',
      '--timeout-ms', '30000', '--group', 'full-nodes-java',
    ], { timeoutMs: 90_000 }));
    expect(consumed.split('\n').filter(Boolean)).toHaveLength(50);
  }, 200_000);

  it('kafkajs bootstrapped from the coordinator node alone creates a topic, produces and consumes in a group', async () => {
    const kafka = new Kafka({ clientId: 'full-nodes', brokers: [coordinator], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      expect(await admin.createTopics({ topics: [{ topic: 'full-nodes-kafkajs', numPartitions: 2 }], waitForLeaders: true })).toBe(true);
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'full-nodes-kafkajs', messages: Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })) });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: 'full-nodes-kafkajs' });
    await consumer.connect();
    const seen = new Set<string>();
    try {
      await consumer.subscribe({ topic: 'full-nodes-kafkajs', fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${seen.size} of 20 records`)), 45_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            seen.add(message.value!.toString());
            if (seen.size === 20) { clearTimeout(timer); resolve(); }
          },
        });
      });
    } finally {
      await consumer.disconnect();
    }
    expect(seen.size).toBe(20);
  }, 90_000);
});
