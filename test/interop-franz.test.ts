// franz-go (the Go client, with kadm), built from test/go on first use (test/helpers/ecosystems.ts),
// against a real `runnel start` process and, for the cases that differ, a cluster (two brokers and a
// coordinator node, each its own process). franz-go negotiates the newest version of every request
// a broker advertises, so these tests also check that what it sends is what ApiVersions promised.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { CODECS, FRANZ_GO_VERSION, franzGo, values, type ConsumedRecord, type EcosystemClient, type FranzAdmin, type RunningConsumer } from './helpers/ecosystems.ts';

const ZERO_ID = 'AAAAAAAAAAAAAAAAAAAAAA';
let franz: EcosystemClient<FranzAdmin>;

beforeAll(async () => {
  franz = await franzGo();
}, 900_000);

/** Every request franz-go sent used the version ApiVersions let it use (its maximum, capped by the broker's). */
function expectNegotiated(requests: Record<string, number[]>, admin: FranzAdmin): void {
  const negotiated = admin.apiVersions[0]!.negotiated;
  for (const [name, versions] of Object.entries(requests)) {
    // ApiVersions itself starts at franz-go's newest and falls back to what the broker answers.
    if (name === 'ApiVersions') continue;
    expect({ name, versions }).toEqual({ name, versions: [negotiated[name]] });
  }
}

function byValue(records: ConsumedRecord[]): string[] {
  return records.map((r) => r.value).sort();
}

describe(`franz-go ${FRANZ_GO_VERSION} against runnel start`, () => {
  let broker: TestBroker;
  let admin0: FranzAdmin;

  beforeAll(async () => {
    broker = await startBroker({ set: ['num.partitions=4'] });
    admin0 = await franz.admin({ bootstrap: broker.bootstrap });
  }, 60_000);

  afterAll(async () => {
    await broker?.cleanup();
  });

  it.each(CODECS)('idempotent acks=all producer with %s: a group reads every record once, in order per partition, in batches of that codec', async (codec) => {
    const topic = `franz-${codec}`;
    const produced = await franz.produce({ bootstrap: broker.bootstrap, topic, count: 300, compression: codec, prefix: codec });
    expect(produced).toMatchObject({ acked: 300, failed: 0, error: null });
    expect(produced.producerId).toBeGreaterThanOrEqual(0);
    expect(Object.keys(produced.partitions).length).toBeGreaterThan(0);
    expectNegotiated(produced.requests, admin0);

    const consumed = await franz.consume({ bootstrap: broker.bootstrap, topic, group: `g-${codec}`, count: 300 });
    expect(consumed.errors).toEqual([]);
    expect(consumed.done).toMatchObject({ count: 300, commitError: null, leaveError: null });
    expect(byValue(consumed.records)).toEqual(values(codec, 300).sort());
    for (const r of consumed.records) {
      const i = r.value.split('-')[1];
      expect({ key: r.key, headers: r.headers, codec: r.codec }).toEqual({ key: `k-${i}`, headers: { i }, codec });
    }
    for (const p of new Set(consumed.records.map((r) => r.partition))) {
      const offsets = consumed.records.filter((r) => r.partition === p).map((r) => r.offset);
      expect(offsets).toEqual(offsets.map((_, j) => j));
    }
    expectNegotiated(consumed.done.requests, admin0);

    // The group committed: a second run of the group has nothing left to read.
    const again = await franz.consume({ bootstrap: broker.bootstrap, topic, group: `g-${codec}`, maxMs: 3_000 });
    expect(again.records).toEqual([]);
  }, 90_000);

  it('a group of two splits the partitions, reads every record exactly once between them, and describes as Stable with both members', async () => {
    const topic = 'franz-pair';
    const group = 'franz-pair';
    // The topic first (auto-created with num.partitions=4), so the group's first assignment has all four.
    await franz.produce({ bootstrap: broker.bootstrap, topic, count: 1, prefix: 'seed' });
    const members: RunningConsumer[] = [];
    try {
      members.push(franz.startConsumer({ bootstrap: broker.bootstrap, topic, group }));
      await members[0]!.assigned();
      members.push(franz.startConsumer({ bootstrap: broker.bootstrap, topic, group }));
      await members[1]!.assigned();
      const produced = await franz.produce({ bootstrap: broker.bootstrap, topic, count: 400, compression: 'lz4', prefix: 'pair' });
      expect(produced.acked).toBe(400);
      const all = () => [...members[0]!.records(), ...members[1]!.records()];
      await Promise.all(members.map((m) => m.waitFor(() => all().length >= 401, 60_000)));

      const admin = await franz.admin({ bootstrap: broker.bootstrap, groups: [group] });
      const described = admin.groups!.find((g) => g.group === group)!;
      expect(described).toMatchObject({ state: 'Stable', protocolType: 'consumer', error: null });
      expect(described.members).toHaveLength(2);
      const assigned = described.members!.flatMap((m) => m.assigned[topic] ?? []).sort();
      expect(assigned).toEqual([0, 1, 2, 3]);
      expect(described.members!.every((m) => (m.assigned[topic] ?? []).length > 0)).toBe(true);
    } finally {
      const done = await Promise.all(members.map((m) => m.stop()));
      if (done.length === 2) {
        for (const d of done) {
          expect(d.records.length).toBeGreaterThan(0);
          expect(d.done.commitError).toBeNull();
        }
        const values400 = byValue(done.flatMap((d) => d.records));
        expect(values400).toEqual([...values('pair', 400), ...values('seed', 1)].sort());
      }
    }
  }, 120_000);

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
    expectNegotiated(admin.requests, admin);
  }, 60_000);

  it('a transactional producer fails within 10 s with a non-retriable error (Runnel has no transaction coordinator)', async () => {
    const t = await franz.txn({ bootstrap: broker.bootstrap, topic: 'franz-txn' });
    expect(t.ok).toBe(false);
    expect(t.elapsedMs).toBeLessThan(10_000);
    expect(t.error).toMatchObject({ code: 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED', retriable: false });
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
