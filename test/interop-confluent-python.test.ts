// confluent-kafka-python (librdkafka, the C client behind most non-Java clients), installed from
// PyPI into a venv on first use (test/helpers/ecosystems.ts), against a real `runnel start` process
// and, for the cases that differ, a cluster (two brokers and a coordinator node, each its own
// process). librdkafka uses the newest version of each request that both it and the broker have;
// these tests check that against the broker's own ApiVersions answer. The codec round trips and the
// group of two, which franz-go runs too, are in test/interop-ecosystems.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { CONFLUENT_KAFKA_VERSION, confluentPython, values, type CkAdmin, type EcosystemClient } from './helpers/ecosystems.ts';
import { advertised, byValue, expectLibrdkafkaNegotiated } from './helpers/negotiation.ts';

let ck: EcosystemClient<CkAdmin>;

beforeAll(async () => {
  ck = await confluentPython();
}, 900_000);

describe(`confluent-kafka ${CONFLUENT_KAFKA_VERSION} (librdkafka) against runnel start`, () => {
  let broker: TestBroker;
  let brokerMax: Map<number, number>;

  beforeAll(async () => {
    broker = await startBroker({ set: ['num.partitions=4'] });
    brokerMax = await advertised(broker.port);
  }, 60_000);

  afterAll(async () => {
    await broker?.cleanup();
  });

  it('AdminClient: describe_cluster, list_topics, describe_topics with topic ids, describe_configs, consumer groups', async () => {
    await ck.produce({ bootstrap: broker.bootstrap, topic: 'ck-admin', count: 10 });
    await ck.consume({ bootstrap: broker.bootstrap, topic: 'ck-admin', group: 'ck-admin', count: 10 });
    const admin = await ck.admin({ bootstrap: broker.bootstrap, topics: ['ck-admin', 'ck-missing'], groups: ['ck-admin'] });
    expect(admin.cluster).toMatchObject({ controllerId: 1, brokers: [{ nodeId: 1, host: '127.0.0.1', port: broker.port, rack: null }] });
    expect((admin.cluster as { clusterId: string }).clusterId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(admin.topics).toContainEqual({ name: 'ck-admin', partitions: 4, error: null });

    const [described] = admin.describedTopics as Array<{ name: string; id?: string; partitions?: Array<{ leader: number | null }>; error: unknown }>;
    expect(described).toMatchObject({ name: 'ck-admin', internal: false, error: null });
    expect(described!.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(described!.id).not.toBe('AAAAAAAAAAAAAAAAAAAAAA');
    expect(described!.partitions!.map((p) => p.leader)).toEqual([1, 1, 1, 1]);
    const missing = (admin.describedTopics as Array<{ name: string; error: { code?: string } | null }>).find((t) => t.name === 'ck-missing');
    expect(missing?.error?.code).toBe('UNKNOWN_TOPIC_OR_PART');

    const configs = admin.topicConfigs as Record<string, Record<string, string | null>>;
    expect(configs['ck-admin']).toMatchObject({ 'cleanup.policy': 'delete', 'compression.type': 'producer' });
    expect(admin.brokerConfig).toMatchObject({ nodeId: 1, configs: { 'num.partitions': '4' } });
    expect(admin.listedGroups).toMatchObject({ errors: [] });
    expect((admin.listedGroups as { groups: string[] }).groups).toContain('ck-admin');
    expect(admin.groups).toMatchObject([{ group: 'ck-admin', state: 'ConsumerGroupState.EMPTY', error: null }]);
    expectLibrdkafkaNegotiated(admin.requests, brokerMax);
  }, 60_000);

  it('a transactional producer commits a transaction (docs/transactions.md)', async () => {
    const t = await ck.txn({ bootstrap: broker.bootstrap, topic: 'ck-txn' });
    expect(t).toMatchObject({ ok: true, error: null });
  }, 30_000);
});

describe(`confluent-kafka ${CONFLUENT_KAFKA_VERSION} (librdkafka) against a runnel cluster (2 brokers, 1 coordinator node)`, () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startCluster({ brokers: 2, coordinators: 1, set: ['num.partitions=4'] });
  }, 60_000);

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('gzip round trip through a group coordinated by the coordinator node; describe_cluster lists every node', async () => {
    const produced = await ck.produce({ bootstrap: cluster.bootstrap, topic: 'ck-cluster', count: 200, compression: 'gzip', prefix: 'c' });
    expect(produced).toMatchObject({ acked: 200, failed: 0 });
    expect(Object.keys(produced.partitions).sort()).toEqual(['0', '1', '2', '3']);
    const consumed = await ck.consume({ bootstrap: cluster.bootstrap, topic: 'ck-cluster', group: 'ck-cluster', count: 200 });
    expect(consumed.done).toMatchObject({ count: 200, commitError: null });
    expect(byValue(consumed.records)).toEqual(values('c', 200).sort());

    const admin = await ck.admin({ bootstrap: cluster.bootstrap, topics: ['ck-cluster'], groups: ['ck-cluster'] });
    const nodeIds = [...cluster.brokers, ...cluster.coordinators].map((n) => n.nodeId).sort();
    expect((admin.cluster as { brokers: Array<{ nodeId: number }> }).brokers.map((b) => b.nodeId).sort()).toEqual(nodeIds);
    const [described] = admin.describedTopics as Array<{ id?: string; partitions?: Array<{ leader: number | null }> }>;
    expect(described!.id).not.toBe('AAAAAAAAAAAAAAAAAAAAAA');
    expect(new Set(described!.partitions!.map((p) => p.leader))).toEqual(new Set(cluster.brokers.map((b) => b.nodeId)));
    expect(admin.groups).toMatchObject([{ group: 'ck-cluster', state: 'ConsumerGroupState.EMPTY', error: null }]);
  }, 90_000);
});
