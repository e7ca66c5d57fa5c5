// RedisStore against a real redis-server, with a real writer (test/store-writer.ts: ControllerStore
// commits): writes are visible on return, other nodes follow through PUBLISH or, when a message is
// lost, through the version poll; events come from snapshot diffs; a fenced node registers again;
// the last snapshot keeps serving while Redis is down; a foreign cluster id is refused.
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '@runnel/common';
import { redisCli, startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { ControllerStore, MetadataError, RedisStore, redisOptionsFromUrl, type MetadataEvent, type MetadataWriter } from '../src/index.ts';
import { captureLogger, controllerRpc, storeWriter, until, type TestWriter } from './store-writer.ts';


/** A writer whose every call goes to whichever writer `target()` names now (the controller moving). */
function switchingWriter(target: () => MetadataWriter): MetadataWriter {
  return {
    registerNode: (input) => target().registerNode(input),
    heartbeat: (nodeId, brokerEpoch) => target().heartbeat(nodeId, brokerEpoch),
    createTopic: (spec) => target().createTopic(spec),
    deleteTopic: (name) => target().deleteTopic(name),
    createPartitions: (name, count, assignments) => target().createPartitions(name, count, assignments),
    alterTopicConfigs: (name, configs) => target().alterTopicConfigs(name, configs),
    allocateProducerId: () => target().allocateProducerId(),
    alterPartition: (request) => target().alterPartition(request),
    shutdownNode: (nodeId, brokerEpoch) => target().shutdownNode(nodeId, brokerEpoch),
    electLeaders: (partitions, unclean) => target().electLeaders(partitions, unclean),
  };
}

/** How many MULTI/EXEC transactions Redis has run (each RedisStore load is one). */
async function execCount(raw: Redis): Promise<number> {
  return Number(/cmdstat_exec:calls=(\d+)/.exec(await raw.info('commandstats'))?.[1] ?? 0);
}

async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof MetadataError && err.code === 'STORE_UNAVAILABLE') || attempt > 100) throw err;
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}

describe('RedisStore', () => {
  const cleanup: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup.length = 0;
  });

  const cluster = async (r?: TestRedis) => {
    r ??= await startRedis();
    const redis = r;
    cleanup.push(() => redis.stop());
    const controller = ControllerStore.create({ url: r.url, controllerId: 0, leaseMs: 1_000 });
    await controller.start();
    cleanup.push(() => controller.stop());
    await controller.campaign(controllerRpc);
    await controller.commit({ clusterId: 'cluster-1' });
    return { redis: r, controller, writer: storeWriter(controller) };
  };
  const node = async (
    url: string, nodeId: number, writer: MetadataWriter,
    extra: { clusterId?: string; pollIntervalMs?: number; heartbeatIntervalMs?: number; writeVisibleTimeoutMs?: number; logger?: Logger } = {},
  ) => {
    const store = RedisStore.create({ url, nodeId, writer, ...extra });
    await store.start();
    cleanup.push(() => store.stop());
    const events: MetadataEvent[] = [];
    store.subscribe((e) => events.push(e));
    return { store, events };
  };

  it('keeps dynamic broker configs in Redis: visible on return, on another node, and after a restart', async () => {
    const { redis, writer } = await cluster();
    const a = await node(redis.url, 1, writer, { clusterId: 'cluster-1' });
    const b = await node(redis.url, 2, writer);
    await a.store.alterBrokerConfigs(null, { 'leader.replication.throttled.rate': '1000' });
    await a.store.alterBrokerConfigs(2, { 'follower.replication.throttled.rate': '2000', 'leader.replication.throttled.rate': '5' });
    await a.store.alterBrokerConfigs(2, { 'leader.replication.throttled.rate': null });
    const expected = new Map([['', { 'leader.replication.throttled.rate': '1000' }], ['2', { 'follower.replication.throttled.rate': '2000' }]]);
    expect(a.store.snapshot().brokerConfigs).toEqual(expected);
    await until(() => b.store.snapshot().epoch === a.store.snapshot().epoch, 'node 2 follows');
    expect(b.store.snapshot().brokerConfigs).toEqual(expected);
    await a.store.alterBrokerConfigs(2, { 'follower.replication.throttled.rate': null });
    const c = await node(redis.url, 3, writer);
    expect(c.store.snapshot().brokerConfigs).toEqual(new Map([['', { 'leader.replication.throttled.rate': '1000' }]]));
  });

  it('writes through the writer and sees them on return; another node follows through PUBLISH', async () => {
    const { redis, writer } = await cluster();
    const a = await node(redis.url, 1, writer, { clusterId: 'cluster-1', pollIntervalMs: 60_000 });
    // The poll is off (60 s): the second node follows through the published version alone.
    const b = await node(redis.url, 2, writer, { pollIntervalMs: 60_000 });
    expect(a.store.snapshot()).toMatchObject({ clusterId: 'cluster-1', controllerId: 0, controllerRpc });

    const reg = await a.store.registerBroker({ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null, rpc: { host: '127.0.0.1', port: 7001 } });
    expect(reg).toMatchObject({ nodeId: 1, roles: ['broker'], rpc: { host: '127.0.0.1', port: 7001 } });
    expect(a.store.snapshot().brokers.get(1)).toEqual(reg);

    const topic = await a.store.createTopic({ name: 'orders', partitions: 2, replicationFactor: 1 });
    expect(a.store.snapshot().topics.get('orders')).toEqual(topic);
    expect(topic.partitions.map((p) => p.leader)).toEqual([1, 1]);
    await a.store.alterTopicConfigs('orders', { 'retention.ms': '1000' });
    expect(a.store.snapshot().topics.get('orders')?.configs).toEqual({ 'retention.ms': '1000' });
    await a.store.createPartitions('orders', 3);
    expect(a.store.snapshot().topics.get('orders')?.partitions).toHaveLength(3);
    await a.store.deleteTopic('orders');
    expect(a.store.snapshot().topics.has('orders')).toBe(false);
    const ids = [await a.store.allocateProducerId(), await a.store.allocateProducerId()];
    expect(ids[1]).toBe(ids[0]! + 1n);

    const expected = ['broker-registered', 'topic-created', 'topic-updated', 'topic-updated', 'topic-deleted'];
    expect(a.events.map((e) => e.type)).toEqual(expected);
    // Node 2 may fold changes that arrive while it is loading into one diff; its final snapshot matches.
    await until(() => b.store.snapshot().epoch === a.store.snapshot().epoch, 'node 2 to reach node 1\'s version');
    expect(b.events.map((e) => e.type)).toContain('broker-registered');
    expect(b.store.snapshot().topics.size).toBe(0);
    expect(b.store.snapshot().brokers.get(1)).toEqual(reg);
  });

  it('finds a change whose PUBLISH was lost through the version poll', async () => {
    const { redis, writer } = await cluster();
    const a = await node(redis.url, 1, writer, { pollIntervalMs: 50 });
    const version = a.store.snapshot().epoch;
    // A write that bumps the version without publishing (what a lost pub/sub message looks like to a node).
    const raw = new Redis(redisOptionsFromUrl(redis.url));
    cleanup.push(() => raw.disconnect());
    await raw.hset('runnel:topics', 'quiet', JSON.stringify({ name: 'quiet', topicId: 'a'.repeat(32), internal: false, configs: {}, partitions: [] }));
    await raw.incr('runnel:version');
    await until(() => a.store.snapshot().topics.has('quiet'), 'the poll to load the change');
    expect(a.store.snapshot().epoch).toBe(version + 1);
    expect(a.events).toEqual([{ type: 'topic-created', topic: expect.objectContaining({ name: 'quiet' }) }]);
  });

  it('keeps the session: a fenced node registers again with a new broker epoch', async () => {
    const { redis, writer } = await cluster();
    const a = await node(redis.url, 5, writer, { heartbeatIntervalMs: 50 });
    const first = await a.store.registerBroker({ nodeId: 5, host: 'h', port: 9093, rack: null, roles: ['coordinator'] });
    await until(() => writer.calls.includes('heartbeat 5'), 'a heartbeat');
    await (writer as TestWriter).fence(5);
    await until(() => a.events.some((e) => e.type === 'node-fenced' && e.nodeId === 5), 'the node-fenced event');
    await until(() => (a.store.snapshot().brokers.get(5)?.brokerEpoch ?? 0) > first.brokerEpoch, 'the new registration');
    expect(a.store.snapshot().brokers.get(5)).toMatchObject({ roles: ['coordinator'], host: 'h', port: 9093 });
    expect(a.store.registration()?.brokerEpoch).toBeGreaterThan(first.brokerEpoch);
    expect(writer.calls.filter((c) => c === 'register 5')).toHaveLength(2);
    const types = a.events.map((e) => e.type);
    expect(types.indexOf('node-fenced')).toBeLessThan(types.lastIndexOf('broker-registered'));
  });

  it('reports coordinator assignment changes', async () => {
    const { redis, controller, writer } = await cluster();
    const a = await node(redis.url, 1, writer);
    await controller.commit({ coordinators: new Map([[0, { nodeId: 7, epoch: 1 }]]) });
    await until(() => a.events.length > 0, 'an event');
    expect(a.events).toEqual([{ type: 'coordinators-changed' }]);
    expect([...a.store.snapshot().coordinators]).toEqual([[0, { nodeId: 7, epoch: 1 }]]);
  });

  it('serves the last snapshot while Redis is down and catches up after a restart on the same data', async () => {
    const first = await cluster();
    const a = await node(first.redis.url, 1, first.writer, { pollIntervalMs: 50 });
    await a.store.createTopic({ name: 'kept', partitions: 1, replicationFactor: 1, assignments: [[1]] });
    const before = a.store.snapshot();
    first.redis.kill();
    await first.redis.process.exited();
    await expect(a.store.createTopic({ name: 'lost', partitions: 1, replicationFactor: 1, assignments: [[1]] })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(a.store.snapshot()).toBe(before);
    expect(a.store.snapshot().topics.has('kept')).toBe(true);

    const restarted = await startRedis({ dir: first.redis.dir });
    // The controller lost its lease with its connection (docs/metadata.md, rule 3); it takes the lease again once the old one expires.
    await first.controller.campaign(controllerRpc);
    // Its command connection reconnects with backoff; until then writes fail as retriable STORE_UNAVAILABLE.
    const state = await retrying(() => first.controller.load());
    expect(state.clusterId).toBe('cluster-1');
    await retrying(() => first.writer.createTopic({ name: 'after', partitions: 1, replicationFactor: 1, assignments: [[1]] }));
    await until(() => a.store.snapshot().topics.has('after'), 'the node to catch up after the restart');
    expect(a.store.snapshot().topics.has('kept')).toBe(true);
    await restarted.stop();
  });

  it('refuses a Redis that holds another cluster id, and an unreachable Redis', async () => {
    const { redis, writer } = await cluster();
    const store = RedisStore.create({ url: redis.url, nodeId: 1, writer, clusterId: 'cluster-2' });
    await expect(store.start()).rejects.toMatchObject({ code: 'CLUSTER_ID_MISMATCH' });
    const nowhere = RedisStore.create({ url: 'redis+unix:///nonexistent/redis.sock', nodeId: 1, writer, startTimeoutMs: 300 });
    await expect(nowhere.start()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('gives up on a write whose version never becomes visible, reloading at a modest pace meanwhile', async () => {
    const { redis, writer } = await cluster();
    // The controller answers with a version Redis never reaches (what a lost or rolled-back write looks like here).
    const ahead: MetadataWriter = { ...writer, createTopic: async (spec) => ({ ...(await writer.createTopic(spec)), version: 1_000_000 }) };
    const a = await node(redis.url, 1, ahead, { writeVisibleTimeoutMs: 300, pollIntervalMs: 60_000 });
    const raw = new Redis(redisOptionsFromUrl(redis.url));
    cleanup.push(() => raw.disconnect());
    const before = await execCount(raw);
    const err = await a.store.createTopic({ name: 'ahead', partitions: 1, replicationFactor: 1, assignments: [[1]] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
    expect((err as Error).message).toContain('version 1000000 not visible');
    // A reload every ~50 ms for 300 ms, not a busy loop (a slower machine only makes this smaller).
    expect(await execCount(raw) - before).toBeLessThan(50);
    // The topic itself was written and is seen.
    expect(a.store.snapshot().topics.has('ahead')).toBe(true);
  });

  it('keeps the last metadata and stops its session when Redis is wiped and then holds another cluster', async () => {
    const r = await startRedis();
    cleanup.push(() => r.stop());
    const controllerA = ControllerStore.create({ url: r.url, controllerId: 0, leaseMs: 1_000 });
    await controllerA.start();
    cleanup.push(() => controllerA.stop());
    await controllerA.campaign(controllerRpc);
    await controllerA.commit({ clusterId: 'cluster-a' });
    const writerA = storeWriter(controllerA);
    let current: TestWriter = writerA;
    const { logger, lines } = captureLogger();
    // No clusterId option: the node pins the id it first loads.
    const a = await node(r.url, 1, switchingWriter(() => current), { heartbeatIntervalMs: 50, pollIntervalMs: 50, logger });
    await a.store.registerBroker({ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null });
    await a.store.createTopic({ name: 'kept', partitions: 1, replicationFactor: 1 });
    await until(() => writerA.calls.includes('heartbeat 1'), 'a heartbeat to controller A');
    const before = a.store.snapshot();
    expect(before.clusterId).toBe('cluster-a');

    // The wipe, and a new controller making a new cluster there; the node's controller channel now reaches it.
    await redisCli(r.socketPath, 'flushall');
    await controllerA.stop();
    const controllerB = ControllerStore.create({ url: r.url, controllerId: 1, leaseMs: 1_000 });
    await controllerB.start();
    cleanup.push(() => controllerB.stop());
    await controllerB.campaign(controllerRpc);
    const writerB = storeWriter(controllerB);
    current = writerB;
    await controllerB.commit({ clusterId: 'cluster-b' });
    await writerB.createTopic({ name: 'foreign', partitions: 1, replicationFactor: 1, assignments: [[9]] });
    while ((await controllerB.load()).version <= before.epoch) await controllerB.commit({ coordinators: new Map() });

    const refusals = () => lines.filter((l) => l.level === 'error' && l.msg.includes('an operator must act'));
    await until(() => refusals().length > 0, 'the node to notice the other cluster');
    // Loads after that (pub/sub, poll, explicit) change nothing and do not log again.
    await a.store.refresh();
    await controllerB.commit({ coordinators: new Map([[0, { nodeId: 1, epoch: 0 }]]) });
    await a.store.refresh();
    await new Promise((res) => setTimeout(res, 300)); // several heartbeat and poll intervals
    expect(a.store.snapshot()).toBe(before);
    expect(a.store.snapshot().topics.has('foreign')).toBe(false);
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0]!.msg).toMatch(/^Redis now holds (cluster cluster-b|no cluster id), not cluster-a: keeping the last metadata; an operator must act$/);
    // It never joined cluster B, and it sends it nothing more.
    expect(writerB.calls.filter((c) => c.startsWith('register'))).toEqual([]);
    const callsToB = writerB.calls.length;
    await expect(a.store.createTopic({ name: 'x', partitions: 1, replicationFactor: 1 })).rejects.toMatchObject({ code: 'CLUSTER_ID_MISMATCH' });
    await expect(a.store.registerBroker({ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null })).rejects.toMatchObject({ code: 'CLUSTER_ID_MISMATCH' });
    await new Promise((res) => setTimeout(res, 200));
    expect(writerB.calls.length).toBe(callsToB);
    expect((await controllerB.load()).nodes.has(1)).toBe(false);
  });

  it('never applies a controller epoch or a version that went backwards', async () => {
    const { redis, controller, writer } = await cluster();
    const { logger, lines } = captureLogger();
    const a = await node(redis.url, 1, writer, { pollIntervalMs: 50, logger });
    await a.store.createTopic({ name: 'kept', partitions: 1, replicationFactor: 1, assignments: [[1]] });
    const before = a.store.snapshot();
    const epoch = (await controller.load()).controllerEpoch;
    expect(epoch).toBeGreaterThan(0);
    const raw = new Redis(redisOptionsFromUrl(redis.url));
    cleanup.push(() => raw.disconnect());
    // A newer version written under an older controller epoch (Redis restored from an old copy, then written to).
    await raw.set('runnel:controller:epoch', String(epoch - 1));
    await raw.hset('runnel:topics', 'sneaky', JSON.stringify({ name: 'sneaky', topicId: 'b'.repeat(32), internal: false, configs: {}, partitions: [] }));
    await raw.set('runnel:version', String(before.epoch + 5));
    await raw.publish('runnel:changes', String(before.epoch + 5));
    const refusals = () => lines.filter((l) => l.level === 'error' && l.msg.includes('an operator must act'));
    await until(() => refusals().length > 0, 'the node to refuse the older controller epoch');
    expect(refusals()[0]!.msg).toContain(`controller epoch ${epoch - 1}`);
    expect(a.store.snapshot()).toBe(before);

    // A version below the one served is not applied either (a fresh node sees a lower one and takes it).
    const b = await node(redis.url, 2, writer, { pollIntervalMs: 50 });
    expect(b.store.snapshot().epoch).toBe(before.epoch + 5);
    await raw.set('runnel:controller:epoch', String(epoch + 1));
    await raw.set('runnel:version', String(before.epoch + 1));
    await b.store.refresh();
    expect(b.store.snapshot().epoch).toBe(before.epoch + 5);
    await a.store.refresh();
    expect(a.store.snapshot()).toBe(before);
  });
});
