// franz-go (the Go client, with kadm), built from test/go on first use (test/helpers/ecosystems.ts),
// against a real `runnel start` process and, for the cases that differ, a cluster (two brokers and a
// coordinator node, each its own process). franz-go negotiates the newest version of every request
// a broker advertises, so these tests also check that what it sends is what ApiVersions promised.
// The codec round trips and the group of two, which confluent-kafka-python runs too, are in
// test/interop-ecosystems.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { FRANZ_GO_VERSION, franzGo, values, type EcosystemClient, type FranzAdmin } from './helpers/ecosystems.ts';
import { byValue, expectFranzNegotiated } from './helpers/negotiation.ts';

const ZERO_ID = 'AAAAAAAAAAAAAAAAAAAAAA';
let franz: EcosystemClient<FranzAdmin>;

beforeAll(async () => {
  franz = await franzGo();
}, 900_000);

describe(`franz-go ${FRANZ_GO_VERSION} against runnel start`, () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startBroker({ set: ['num.partitions=4'] });
  }, 60_000);

  afterAll(async () => {
    await broker?.cleanup();
  });

  it('kadm: ApiVersions, DescribeCluster, topics with ids, DescribeAllLogDirs', async () => {
    await franz.produce({ bootstrap: broker.bootstrap, topic: 'franz-admin', count: 10 });
    const admin = await franz.admin({ bootstrap: broker.bootstrap });
    expect(admin.apiVersionsError).toBeNull();
    expect(admin.apiVersions).toHaveLength(1);
    const node = admin.apiVersions[0]!;
    expect(node.error).toBeNull();
    // Before issue 13 Runnel's versions looked like Kafka 0.9-0.10 to kversion. Its plain guess
    // still says so (a release's every API counts, and SaslHandshake is from 0.10.0); over the
    // APIs Runnel serves, the versions are Kafka 3.9's or newer.
    expect(node.missing).toContain('SASLHandshake');
    expect(node.guessServed).toMatch(/^(at least )?v(3\.9|4\.\d+)$/);

    expect(admin.cluster).toMatchObject({ error: null, controllerId: 1, brokers: [{ nodeId: 1, host: '127.0.0.1', port: broker.port, rack: null }] });
    expect(admin.cluster.clusterId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(admin.cluster.version).toBe(node.negotiated.DescribeCluster);

    expect(admin.topicsError).toBeNull();
    const topic = admin.topics!.find((t) => t.name === 'franz-admin')!;
    expect(topic).toMatchObject({ partitions: 4, internal: false, error: null });
    expect(topic.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(topic.id).not.toBe(ZERO_ID);
    const ids = admin.topics!.map((t) => t.id);
    expect(new Set(ids).size).toBe(ids.length);

    expect(admin.logDirsError).toBeNull();
    expect(admin.logDirs).toHaveLength(1);
    expect(admin.logDirs![0]).toMatchObject({ broker: 1, dir: broker.logDir, error: null });
    expect(admin.logDirs![0]!.partitions['franz-admin']).toEqual([0, 1, 2, 3]);
    expectFranzNegotiated(admin.requests, admin);
  }, 60_000);

  it('a transactional producer commits a transaction (docs/transactions.md)', async () => {
    const t = await franz.txn({ bootstrap: broker.bootstrap, topic: 'franz-txn' });
    expect(t).toMatchObject({ ok: true, error: null });
  }, 30_000);
});

describe(`franz-go ${FRANZ_GO_VERSION} against a runnel cluster (2 brokers, 1 coordinator node)`, () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startCluster({ brokers: 2, coordinators: 1, set: ['num.partitions=4'] });
  }, 60_000);

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('zstd round trip through a group coordinated by the coordinator node', async () => {
    const produced = await franz.produce({ bootstrap: cluster.bootstrap, topic: 'franz-cluster', count: 200, compression: 'zstd', prefix: 'c' });
    expect(produced).toMatchObject({ acked: 200, failed: 0 });
    expect(Object.keys(produced.partitions).sort()).toEqual(['0', '1', '2', '3']);
    const consumed = await franz.consume({ bootstrap: cluster.bootstrap, topic: 'franz-cluster', group: 'franz-cluster', count: 200 });
    expect(consumed.done).toMatchObject({ count: 200, commitError: null });
    expect(byValue(consumed.records)).toEqual(values('c', 200).sort());
  }, 90_000);

  it('kadm sees every node: DescribeCluster lists them, and ApiVersions and DescribeAllLogDirs answer from each', async () => {
    await franz.produce({ bootstrap: cluster.bootstrap, topic: 'franz-dirs', count: 20 });
    const admin = await franz.admin({ bootstrap: cluster.bootstrap, groups: ['franz-cluster'] });
    const nodeIds = [...cluster.brokers, ...cluster.coordinators].map((n) => n.nodeId).sort();
    expect(admin.cluster.error).toBeNull();
    expect(admin.cluster.brokers!.map((b) => b.nodeId).sort()).toEqual(nodeIds);
    expect(admin.apiVersions.map((v) => v.node).sort()).toEqual(nodeIds);
    for (const v of admin.apiVersions) {
      expect(v.error).toBeNull();
      expect(v.guessServed).toMatch(/^(at least )?v(3\.9|4\.\d+)$/);
    }
    expect(admin.logDirsError).toBeNull();
    for (const d of admin.logDirs!) expect(d.error).toBeNull();
    // The topic's four partitions are on the brokers' dirs, each once.
    const dirs = admin.logDirs!.flatMap((d) => (d.partitions['franz-dirs'] ?? []).map((p) => `${p}@${d.broker}`));
    expect(dirs.map((s) => Number(s.split('@')[0])).sort()).toEqual([0, 1, 2, 3]);
    const group = admin.groups!.find((g) => g.group === 'franz-cluster')!;
    expect(group).toMatchObject({ state: 'Empty', error: null });
  }, 60_000);
});
