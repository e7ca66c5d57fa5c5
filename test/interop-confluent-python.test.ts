// confluent-kafka-python (librdkafka, the C client behind most non-Java clients), installed from
// PyPI into a venv on first use (test/helpers/ecosystems.ts), against a real `runnel start` process
// and, for the cases that differ, a cluster (two brokers and a coordinator node, each its own
// process). librdkafka uses the newest version of each request that both it and the broker have;
// these tests check that against the broker's own ApiVersions answer.
import { ApiKey } from '@runnel/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { CODECS, CONFLUENT_KAFKA_VERSION, confluentPython, values, type CkAdmin, type ConsumedRecord, type EcosystemClient, type RunningConsumer } from './helpers/ecosystems.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';

let ck: EcosystemClient<CkAdmin>;

beforeAll(async () => {
  ck = await confluentPython();
}, 900_000);

/**
 * The newest version librdkafka 2.16 has of each request these tests make it send (its
 * rd_kafka_ApiVersion_... tables); with a broker that advertises at least as much it sends these.
 */
const LIBRDKAFKA_MAX: Record<string, number> = {
  Produce: 10, Fetch: 16, ListOffsets: 7, Metadata: 13, OffsetCommit: 9, OffsetFetch: 9, FindCoordinator: 2,
  JoinGroup: 5, Heartbeat: 3, LeaveGroup: 1, SyncGroup: 3, DescribeGroups: 5, ListGroups: 5, ApiVersion: 3,
  DescribeConfigs: 1, InitProducerId: 4, ConsumerGroupDescribe: 0,
};

/** apiKey -> max version from the broker's ApiVersions answer. */
async function advertised(port: number): Promise<Map<number, number>> {
  const res = await kafkaRequest(port, ApiKey.ApiVersions, 3, { clientSoftwareName: 'runnel-test', clientSoftwareVersion: '1' });
  expect(res.errorCode).toBe(0);
  return new Map(res.apiKeys.map((k) => [k.apiKey, k.maxVersion]));
}

/** Every request librdkafka sent used min(its newest, the broker's newest). */
function expectNegotiated(requests: Record<string, number[]>, brokerMax: Map<number, number>): void {
  for (const [name, versions] of Object.entries(requests)) {
    const key = name === 'ApiVersion' ? ApiKey.ApiVersions : (ApiKey as Record<string, number>)[name];
    expect({ name, known: key !== undefined && LIBRDKAFKA_MAX[name] !== undefined }).toEqual({ name, known: true });
    expect({ name, versions }).toEqual({ name, versions: [Math.min(LIBRDKAFKA_MAX[name]!, brokerMax.get(key!)!)] });
  }
}

function byValue(records: ConsumedRecord[]): string[] {
  return records.map((r) => r.value).sort();
}

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

  it.each(CODECS)('idempotent acks=all producer with %s: a group reads every record once, in order per partition, and commits', async (codec) => {
    const topic = `ck-${codec}`;
    const produced = await ck.produce({ bootstrap: broker.bootstrap, topic, count: 300, compression: codec, prefix: codec });
    expect(produced).toMatchObject({ acked: 300, failed: 0, error: null });
    expect(produced.requests.InitProducerId).toBeDefined();
    expectNegotiated(produced.requests, brokerMax);

    const consumed = await ck.consume({ bootstrap: broker.bootstrap, topic, group: `g-${codec}`, count: 300 });
    expect(consumed.errors).toEqual([]);
    expect(consumed.done).toMatchObject({ count: 300, commitError: null, leaveError: null });
    expect(byValue(consumed.records)).toEqual(values(codec, 300).sort());
    for (const r of consumed.records) {
      const i = r.value.split('-')[1];
      expect({ key: r.key, headers: r.headers }).toEqual({ key: `k-${i}`, headers: { i } });
    }
    for (const p of new Set(consumed.records.map((r) => r.partition))) {
      const offsets = consumed.records.filter((r) => r.partition === p).map((r) => r.offset);
      expect(offsets).toEqual(offsets.map((_, j) => j));
    }
    expectNegotiated(consumed.done.requests, brokerMax);

    // The group committed: a second run of the group has nothing left to read.
    const again = await ck.consume({ bootstrap: broker.bootstrap, topic, group: `g-${codec}`, maxMs: 3_000 });
    expect(again.records).toEqual([]);
  }, 90_000);

  it('a classic group of two splits the partitions and reads every record exactly once between them', async () => {
    const topic = 'ck-pair';
    const group = 'ck-pair';
    await ck.produce({ bootstrap: broker.bootstrap, topic, count: 1, prefix: 'seed' });
    const members: RunningConsumer[] = [];
    try {
      members.push(ck.startConsumer({ bootstrap: broker.bootstrap, topic, group }));
      await members[0]!.assigned();
      members.push(ck.startConsumer({ bootstrap: broker.bootstrap, topic, group }));
      await members[1]!.assigned();
      const produced = await ck.produce({ bootstrap: broker.bootstrap, topic, count: 400, compression: 'zstd', prefix: 'pair' });
      expect(produced.acked).toBe(400);
      const all = () => [...members[0]!.records(), ...members[1]!.records()];
      await members[0]!.waitFor(() => all().length >= 401, 60_000);

      const admin = await ck.admin({ bootstrap: broker.bootstrap, groups: [group] });
      const described = (admin.groups as Array<{ group: string; state?: string; members?: Array<{ assigned: Record<string, number[]> }> }>).find((g) => g.group === group)!;
      expect(described.state).toBe('ConsumerGroupState.STABLE');
      expect(described.members).toHaveLength(2);
      expect(described.members!.flatMap((m) => m.assigned[topic] ?? []).sort()).toEqual([0, 1, 2, 3]);
    } finally {
      const done = await Promise.all(members.map((m) => m.stop()));
      if (done.length === 2) {
        for (const d of done) {
          expect(d.records.length).toBeGreaterThan(0);
          expect(d.done.commitError).toBeNull();
        }
        expect(byValue(done.flatMap((d) => d.records))).toEqual([...values('pair', 400), ...values('seed', 1)].sort());
      }
    }
  }, 120_000);

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
    expectNegotiated(admin.requests, brokerMax);
  }, 60_000);

  it('a transactional producer fails within 10 s with a fatal, non-retriable error (Runnel has no transaction coordinator)', async () => {
    const t = await ck.txn({ bootstrap: broker.bootstrap, topic: 'ck-txn' });
    expect(t.ok).toBe(false);
    expect(t.elapsedMs).toBeLessThan(10_000);
    expect(t.error).toMatchObject({ code: 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED', retriable: false, fatal: true });
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
