// ControllerStore against a real redis-server: the lease is exclusive, a standby takes over with a
// higher epoch once the holder stops renewing, the old holder's writes are refused, topic writes are
// compare-and-set, and epochs and the cluster id survive a Redis restart (appendonly, fsync always).
import { afterEach, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { ControllerStore, MetadataError, redisOptionsFromUrl, type TopicMetadata } from '../src/index.ts';

const rpc = { host: '127.0.0.1', port: 1234 };
const topic = (name: string, leaderEpoch = 0): TopicMetadata => ({
  name, topicId: '0'.repeat(32), internal: false, configs: { 'cleanup.policy': 'delete' },
  partitions: [{ partition: 0, leader: 1, leaderEpoch, replicas: [1], isr: [1], version: leaderEpoch }],
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((res) => setTimeout(res, 10));
}

describe('redisOptionsFromUrl', () => {
  it('reads TCP and unix socket URLs', () => {
    expect(redisOptionsFromUrl('redis://h:7000/2')).toMatchObject({ host: 'h', port: 7000, db: 2 });
    expect(redisOptionsFromUrl('redis://:pw@h')).toMatchObject({ host: 'h', port: 6379, db: 0, password: 'pw' });
    expect(redisOptionsFromUrl('redis+unix:///tmp/x/redis.sock')).toMatchObject({ path: '/tmp/x/redis.sock', db: 0 });
    expect(() => redisOptionsFromUrl('http://h')).toThrow(MetadataError);
  });
});

describe('ControllerStore', () => {
  const cleanup: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup.length = 0;
  });

  const redis = async () => {
    const r = await startRedis();
    cleanup.push(() => r.stop());
    return r;
  };
  const controller = async (r: TestRedis, controllerId: number, leaseMs = 600) => {
    const store = ControllerStore.create({ url: r.url, controllerId, leaseMs });
    await store.start();
    cleanup.push(() => store.stop());
    return store;
  };

  it('gives the lease to one controller; the other takes over with a higher epoch once it is released', async () => {
    const r = await redis();
    const a = await controller(r, 1);
    const b = await controller(r, 2);
    const epochA = await a.campaign(rpc);
    let bEpoch: number | undefined;
    const bCampaign = b.campaign({ ...rpc, port: 2 }).then((e) => { bEpoch = e; return e; });
    // Several lease periods pass while A renews: B must still be waiting.
    await new Promise((res) => setTimeout(res, 1_500));
    expect(bEpoch).toBeUndefined();
    expect(a.heldEpoch()).toBe(epochA);
    await a.stop();
    expect(await bCampaign).toBeGreaterThan(epochA);
    const state = await b.load();
    expect(state.controllerEpoch).toBe(bEpoch);
  });

  it('a controller that stops renewing loses the lease; its writes are refused with STALE_EPOCH', async () => {
    const r = await redis();
    const a = await controller(r, 1);
    const b = await controller(r, 2);
    const epochA = await a.campaign(rpc);
    let lost = 0;
    a.onLost(() => lost++);
    await a.commit({ clusterId: 'c1', topics: [{ topic: topic('t'), previous: null }] });

    // Freeze Redis: A's renewal times out (the lease connection's timeout is below leaseMs/3), so
    // A gives the lease up; once Redis runs again the lease has expired and B takes it.
    r.process.child.kill('SIGSTOP');
    await until(() => lost === 1);
    r.process.child.kill('SIGCONT');
    const epochB = await b.campaign({ ...rpc, port: 2 });
    expect(epochB).toBeGreaterThan(epochA);
    await expect(a.commit({ topics: [{ topic: topic('t', 1), previous: topic('t') }] })).rejects.toMatchObject({ code: 'STALE_EPOCH' });
    await expect(a.nextBrokerEpoch()).rejects.toMatchObject({ code: 'STALE_EPOCH' });
    expect(lost).toBe(1);
    expect(a.heldEpoch()).toBeNull();
    // B's write goes through.
    await b.commit({ topics: [{ topic: topic('t', 1), previous: topic('t') }] });
    expect((await b.load()).topics.get('t')?.partitions[0]?.leaderEpoch).toBe(1);
  });

  it('gives the lease up at once when its lease connection closes', async () => {
    const r = await redis();
    const a = await controller(r, 1, 10_000);
    await a.campaign(rpc);
    let lost = 0;
    a.onLost(() => lost++);
    const { Redis } = await import('ioredis');
    const raw = new Redis(redisOptionsFromUrl(r.url));
    await raw.client('KILL', 'TYPE', 'normal'); // every connection but this one
    raw.disconnect();
    await until(() => lost === 1);
    expect(a.heldEpoch()).toBeNull();
    await expect(a.commit({})).rejects.toMatchObject({ code: 'STALE_EPOCH' });
  });

  it('refuses to lead with an epoch lower than one it has seen (a wiped Redis)', async () => {
    const r = await redis();
    const a = await controller(r, 1);
    await a.campaign(rpc);
    await a.campaign(rpc); // already held: the same epoch
    const { Redis } = await import('ioredis');
    const raw = new Redis(redisOptionsFromUrl(r.url));
    await raw.set('runnel:controller:epoch', '5');
    await raw.del('runnel:controller:lease');
    await until(() => a.heldEpoch() === null); // its renewal finds the lease gone
    expect(await a.campaign(rpc)).toBe(6);
    await raw.flushall();
    raw.disconnect();
    await until(() => a.heldEpoch() === null);
    await expect(a.campaign(rpc)).rejects.toMatchObject({ code: 'CORRUPT_STATE' });
    expect(a.heldEpoch()).toBeNull();
  });

  it('refuses a write from an old epoch even while it still believes it holds the lease', async () => {
    const r = await redis();
    const a = await controller(r, 1, 10_000);
    await a.campaign(rpc);
    // Another controller incremented the epoch behind A's back (a split brain the fence must stop).
    const { Redis } = await import('ioredis');
    const raw = new Redis(redisOptionsFromUrl(r.url));
    await raw.incr('runnel:controller:epoch');
    raw.disconnect();
    await expect(a.commit({ topics: [{ topic: topic('t'), previous: null }] })).rejects.toMatchObject({ code: 'STALE_EPOCH' });
    expect((await a.load()).topics.size).toBe(0);
  });

  it('compare-and-sets topics and applies a change all or nothing', async () => {
    const r = await redis();
    const a = await controller(r, 1);
    await a.campaign(rpc);
    const v1 = await a.commit({ topics: [{ topic: topic('t'), previous: null }] });
    // Creating again (previous null) conflicts; so does an update from a stale previous.
    await expect(a.commit({ topics: [{ topic: topic('t'), previous: null }] })).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(a.commit({
      topics: [{ topic: topic('u'), previous: null }, { topic: topic('t', 2), previous: topic('t', 1) }],
    })).rejects.toMatchObject({ code: 'CONFLICT' });
    const state = await a.load();
    expect([...state.topics.keys()]).toEqual(['t']);
    expect(state.version).toBe(v1);
    // Key order of `previous` does not matter: the stored form is canonical.
    const reordered = { partitions: topic('t').partitions, configs: topic('t').configs, internal: false, topicId: '0'.repeat(32), name: 't' };
    const v2 = await a.commit({ topics: [{ topic: topic('t', 1), previous: reordered }] });
    expect(v2).toBe(v1 + 1);
    await expect(a.commit({ deleteTopics: [{ name: 't', previous: topic('t') }] })).rejects.toMatchObject({ code: 'CONFLICT' });
    await a.commit({
      deleteTopics: [{ name: 't', previous: topic('t', 1) }],
      nodes: [{ nodeId: 1, host: 'h', port: 9092, rack: null, brokerEpoch: await a.nextBrokerEpoch(), roles: ['broker'], rpc: null, fenced: false }],
      coordinators: new Map([[0, { nodeId: 2, epoch: 1 }], [1, { nodeId: 3, epoch: 1 }]]),
    });
    const after = await a.load();
    expect(after.topics.size).toBe(0);
    expect(after.nodes.get(1)).toMatchObject({ host: 'h', brokerEpoch: 1, fenced: false });
    expect([...after.coordinators]).toEqual([[0, { nodeId: 2, epoch: 1 }], [1, { nodeId: 3, epoch: 1 }]]);
  });

  it('allocates disjoint producer id blocks', async () => {
    const r = await redis();
    const a = await controller(r, 1);
    await a.campaign(rpc);
    expect(await a.allocateProducerIds(100)).toBe(0n);
    expect(await a.allocateProducerIds(100)).toBe(100n);
    expect(await a.allocateProducerIds(1)).toBe(200n);
  });

  it('keeps epochs, version and the cluster id across a Redis restart; a different cluster id is refused', async () => {
    let r = await startRedis();
    const dir = r.dir;
    cleanup.push(async () => { await r.stop(); });
    let a = ControllerStore.create({ url: r.url, controllerId: 1, leaseMs: 600 });
    await a.start();
    const epoch1 = await a.campaign(rpc);
    const version = await a.commit({ clusterId: 'cluster-a', topics: [{ topic: topic('t'), previous: null }] });
    const brokerEpoch = await a.nextBrokerEpoch();
    r.kill();
    await r.process.exited();
    await a.stop();
    r = await startRedis({ dir });
    a = ControllerStore.create({ url: r.url, controllerId: 1, leaseMs: 600 });
    await a.start();
    cleanup.push(() => a.stop());
    const epoch2 = await a.campaign(rpc);
    expect(epoch2).toBeGreaterThan(epoch1);
    expect(await a.nextBrokerEpoch()).toBe(brokerEpoch + 1);
    const state = await a.load();
    expect(state.clusterId).toBe('cluster-a');
    expect(state.version).toBeGreaterThan(version);
    expect(state.topics.get('t')).toEqual(topic('t'));
    await expect(a.commit({ clusterId: 'cluster-b' })).rejects.toSatisfy((e) => e instanceof MetadataError && e.code === 'CLUSTER_ID_MISMATCH');
    await a.commit({ clusterId: 'cluster-a' }); // the same id again is fine
  });

  it('fails start() with STORE_UNAVAILABLE when Redis is not there', async () => {
    const store = ControllerStore.create({ url: 'redis+unix:///nonexistent/redis.sock', controllerId: 1, leaseMs: 600, startTimeoutMs: 300 });
    await expect(store.start()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });
});
