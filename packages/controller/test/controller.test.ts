/**
 * The controller end to end: a real redis-server, real ControllerStores, and real RpcClient calls
 * to the controller's RPC listener. Short session and lease timeouts keep it to seconds; waits
 * poll for a state, they never assert on time.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OFFSETS_TOPIC, resolveConfig } from '@runnel/common';
import { ControllerStore, type ClusterState } from '@runnel/metadata';
import { RpcClient, RpcError, type NodeRegistration } from '@runnel/rpc';
import { startProcess } from '../../../test/helpers/process.ts';
import { redisCli, startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { Controller } from '../src/index.ts';

const SESSION_MS = 1500;
const LEASE_MS = 1500;
const OFFSETS_PARTITIONS = 4;

let redis: TestRedis;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await redisCli(redis.socketPath, 'flushall');
});
afterAll(async () => {
  await redis?.stop();
});

function config(nodeId: number, extra: Record<string, string> = {}) {
  return resolveConfig({
    overrides: new Map(Object.entries({
      'node.id': String(nodeId),
      'runnel.redis.url': redis.url,
      'broker.session.timeout.ms': String(SESSION_MS),
      'runnel.controller.lease.ms': String(LEASE_MS),
      'offsets.topic.num.partitions': String(OFFSETS_PARTITIONS),
      ...extra,
    })),
  }).config;
}

async function startController(nodeId: number, extra: Record<string, string> = {}): Promise<Controller> {
  const store = ControllerStore.create({ url: redis.url, controllerId: nodeId, leaseMs: LEASE_MS });
  const controller = Controller.create({ config: config(nodeId, extra), store });
  await controller.start();
  cleanups.push(() => controller.stop());
  return controller;
}

function client(controller: Controller): RpcClient {
  const c = RpcClient.create({ ...controller.rpcAddress(), requestTimeoutMs: 5_000 });
  cleanups.push(() => c.close());
  return c;
}

/** A read-only view of Redis: a ControllerStore that never campaigns can still load(). */
async function reader(): Promise<{ load(): Promise<ClusterState> }> {
  const store = ControllerStore.create({ url: redis.url, controllerId: 999, leaseMs: LEASE_MS });
  await store.start();
  cleanups.push(() => store.stop());
  return store;
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function remoteCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RpcError) return err.remoteCode;
    throw err;
  }
  throw new Error('expected the call to fail');
}

const node = (nodeId: number, roles: ('broker' | 'coordinator')[]) =>
  ({ nodeId, host: '127.0.0.1', port: 19_000 + nodeId, rack: null, roles, rpc: { host: '127.0.0.1', port: 18_000 + nodeId } });

/** Registers a node and heartbeats for it (as RedisStore would) until stopped. */
async function session(rpc: RpcClient, nodeId: number, roles: ('broker' | 'coordinator')[]): Promise<{ registration: NodeRegistration; stop(): void }> {
  const { registration } = await rpc.call('controller.registerNode', node(nodeId, roles));
  const timer = setInterval(() => {
    rpc.call('controller.heartbeat', { nodeId, brokerEpoch: registration.brokerEpoch }).catch(() => {});
  }, 200);
  const stop = () => clearInterval(timer);
  cleanups.push(stop);
  return { registration, stop };
}

describe('Controller', () => {
  it('registers brokers and a coordinator: offsets topic created, every offsets partition owned by the coordinator', async () => {
    const controller = await startController(100);
    await waitFor('active', () => controller.isActive());
    const rpc = client(controller);
    const b1 = await session(rpc, 1, ['broker']);
    const b2 = await session(rpc, 2, ['broker']);
    const c10 = await session(rpc, 10, ['coordinator']);
    expect(b1.registration).toMatchObject({ nodeId: 1, roles: ['broker'], rpc: { host: '127.0.0.1', port: 18_001 } });
    expect(b2.registration.brokerEpoch).toBeGreaterThan(b1.registration.brokerEpoch);

    const state = await (await reader()).load();
    expect(state.clusterId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(state.controllerEpoch).toBe(controller.epoch());
    const offsets = state.topics.get(OFFSETS_TOPIC)!;
    expect(offsets).toMatchObject({ internal: true, configs: { 'cleanup.policy': 'compact', 'segment.bytes': '104857600' } });
    expect(offsets.partitions).toHaveLength(OFFSETS_PARTITIONS);
    // Created when broker 1 registered, the only live broker then.
    expect(offsets.partitions.every((p) => p.leader === 1 && p.replicas.length === 1)).toBe(true);
    expect([...state.coordinators.entries()]).toEqual([0, 1, 2, 3].map((p) => [p, { nodeId: 10, epoch: 0 }]));
    expect(await rpc.call('controller.heartbeat', { nodeId: 10, brokerEpoch: c10.registration.brokerEpoch })).toEqual({ fenced: false });
    expect(await rpc.call('controller.heartbeat', { nodeId: 10, brokerEpoch: c10.registration.brokerEpoch - 1 })).toEqual({ fenced: true });
    expect(await rpc.call('controller.heartbeat', { nodeId: 77, brokerEpoch: 1 })).toEqual({ fenced: true });
  });

  it('fences a broker that stops heartbeating; it leads its partitions again with a higher leader epoch when it comes back', async () => {
    const controller = await startController(100);
    await waitFor('active', () => controller.isActive());
    const rpc = client(controller);
    await session(rpc, 1, ['broker']);
    const b2 = await session(rpc, 2, ['broker']);
    await session(rpc, 10, ['coordinator']);
    const c11 = await session(rpc, 11, ['coordinator']);
    const split = await (await reader()).load();
    expect([...split.coordinators.values()].map((a) => a.nodeId)).toEqual([10, 11, 10, 11]);
    const { topic } = await rpc.call('controller.createTopic', { name: 'orders', partitions: 4, replicationFactor: 1, configs: {}, internal: false, assignments: [] });
    const on2 = topic.partitions.filter((p) => p.leader === 2).map((p) => p.partition);
    expect(on2.length).toBeGreaterThan(0);

    b2.stop();
    c11.stop();
    const store = await reader();
    const fenced = await waitFor('broker 2 and coordinator 11 fenced', async () => {
      const s = await store.load();
      return s.nodes.get(2)?.fenced && s.nodes.get(11)?.fenced ? s : undefined;
    });
    // Coordinator 11's partitions moved to 10 with a new epoch; 10's kept theirs.
    expect([...fenced.coordinators.entries()]).toEqual([0, 1, 2, 3].map((p) => [p, { nodeId: 10, epoch: p % 2 === 1 ? split.coordinators.get(p)!.epoch + 1 : split.coordinators.get(p)!.epoch }]));
    expect(fenced.nodes.get(1)!.fenced).toBe(false);
    for (const p of fenced.topics.get('orders')!.partitions) {
      if (on2.includes(p.partition)) expect(p).toMatchObject({ leader: -1, isr: [], leaderEpoch: 0, replicas: [2] });
      else expect(p).toMatchObject({ leader: 1, isr: [1] });
    }
    expect(await rpc.call('controller.heartbeat', { nodeId: 2, brokerEpoch: b2.registration.brokerEpoch })).toEqual({ fenced: true });

    const again = await session(rpc, 2, ['broker']);
    expect(again.registration.brokerEpoch).toBeGreaterThan(b2.registration.brokerEpoch);
    const back = await store.load();
    for (const p of back.topics.get('orders')!.partitions.filter((q) => on2.includes(q.partition))) {
      expect(p).toMatchObject({ leader: 2, isr: [2], leaderEpoch: 1, replicas: [2] });
    }
  });

  it('topic operations: LocalStore\'s refusals, RF 1 only, producer ids in blocks', async () => {
    const controller = await startController(100);
    await waitFor('active', () => controller.isActive());
    const rpc = client(controller);
    const create = (o: { name?: string; partitions?: number; replicationFactor?: number }) => rpc.call('controller.createTopic', {
      name: o.name ?? 't', partitions: o.partitions ?? 2, replicationFactor: o.replicationFactor ?? 1, configs: {}, internal: false, assignments: [],
    });
    expect(await remoteCode(create({}))).toBe('INVALID_REPLICATION_FACTOR'); // no live broker yet
    await session(rpc, 1, ['broker']);
    await session(rpc, 2, ['broker']);

    try {
      await create({ replicationFactor: 2 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RpcError);
      expect((err as RpcError).remoteCode).toBe('INVALID_REPLICATION_FACTOR');
      expect((err as RpcError).message).toContain('replication is not built yet');
    }
    const { topic, version } = await create({ partitions: 3 });
    expect(topic.partitions.map((p) => p.replicas.length)).toEqual([1, 1, 1]);
    expect(version).toBe((await (await reader()).load()).version);
    expect(await remoteCode(create({}))).toBe('TOPIC_ALREADY_EXISTS');
    expect(await remoteCode(create({ name: 'no/slash' }))).toBe('INVALID_TOPIC_NAME');
    expect(await remoteCode(create({ name: 'x', partitions: 0 }))).toBe('INVALID_PARTITIONS');

    const grown = await rpc.call('controller.createPartitions', { name: 't', totalCount: 5, assignments: [] });
    expect(grown.topic.partitions).toHaveLength(5);
    expect(await remoteCode(rpc.call('controller.createPartitions', { name: 't', totalCount: 5, assignments: [] }))).toBe('INVALID_PARTITIONS');
    const altered = await rpc.call('controller.alterTopicConfigs', { name: 't', set: { 'retention.ms': '1000' }, remove: [] });
    expect(altered.topic.configs).toEqual({ 'retention.ms': '1000' });
    await rpc.call('controller.deleteTopic', { name: 't' });
    expect(await remoteCode(rpc.call('controller.deleteTopic', { name: 't' }))).toBe('UNKNOWN_TOPIC');
    expect(await remoteCode(rpc.call('controller.deleteTopic', { name: OFFSETS_TOPIC }))).toBe('INVALID_TOPIC_NAME');
    expect((await (await reader()).load()).topics.has(OFFSETS_TOPIC)).toBe(true);
    expect((await (await reader()).load()).topics.has('t')).toBe(false);

    const a = await rpc.call('controller.allocateProducerId', {});
    const b = await rpc.call('controller.allocateProducerId', {});
    expect(b.producerId).toBe(a.producerId + 1n);
  });

  it('a standby answers NOT_CONTROLLER and takes over with a higher epoch when the active one stops', async () => {
    const first = await startController(100);
    await waitFor('first active', () => first.isActive());
    const second = await startController(101);
    expect(second.isActive()).toBe(false);
    const standby = client(second);
    try {
      await standby.call('controller.heartbeat', { nodeId: 1, brokerEpoch: 1 });
      expect.unreachable();
    } catch (err) {
      expect((err as RpcError).remoteCode).toBe('NOT_CONTROLLER');
      expect((err as RpcError).retriable).toBe(true);
    }
    const b1 = await session(client(first), 1, ['broker']);
    const clusterId = (await (await reader()).load()).clusterId;

    await first.stop();
    await waitFor('second active', () => second.isActive());
    expect(second.epoch()).toBeGreaterThan(first.epoch());
    // The node registered with the old controller is still live under the new one.
    expect(await standby.call('controller.heartbeat', { nodeId: 1, brokerEpoch: b1.registration.brokerEpoch })).toEqual({ fenced: false });
    const state = await (await reader()).load();
    expect(state.clusterId).toBe(clusterId);
    expect(state.controllerEpoch).toBe(second.epoch());
    expect(state.nodes.get(1)!.fenced).toBe(false);
  });

  it('a standby takes over after the active controller is killed -9 (the lease lapses), keeping live nodes live', async () => {
    const fixture = new URL('./fixtures/controller-process.ts', import.meta.url).pathname;
    const child = await startProcess(process.execPath, [fixture, redis.url, '100', String(LEASE_MS)], { ready: /active \d+/, timeoutMs: 15_000 });
    cleanups.push(async () => { await child.stop(1_000); });
    const port = Number((await child.waitFor(/rpc (\d+)/))[1]);
    const firstEpoch = Number((await child.waitFor(/active (\d+)/))[1]);
    const toFirst = RpcClient.create({ host: '127.0.0.1', port, requestTimeoutMs: 5_000 });
    cleanups.push(() => toFirst.close());
    const { registration } = await toFirst.call('controller.registerNode', node(1, ['broker']));

    const second = await startController(101);
    expect(second.isActive()).toBe(false);
    child.child.kill('SIGKILL');
    await child.exited();
    await waitFor('second active', () => second.isActive());
    expect(second.epoch()).toBeGreaterThan(firstEpoch);
    expect(await client(second).call('controller.heartbeat', { nodeId: 1, brokerEpoch: registration.brokerEpoch })).toEqual({ fenced: false });
  });

  it('losing the lease stops it serving at once; it campaigns again and comes back with a higher epoch', async () => {
    const controller = await startController(100);
    await waitFor('active', () => controller.isActive());
    const epoch = controller.epoch();
    await redisCli(redis.socketPath, 'set', 'runnel:controller:lease', 'someone-else:0', 'px', '2000');
    await waitFor('lease lost', () => !controller.isActive());
    expect(await remoteCode(client(controller).call('controller.allocateProducerId', {}))).toBe('NOT_CONTROLLER');
    await waitFor('active again', () => controller.isActive());
    expect(controller.epoch()).toBeGreaterThan(epoch);
  });

  it('refuses a Redis that holds another cluster id, and keeps the one it finds', async () => {
    const controller = await startController(100, { 'cluster.id': 'AAAAAAAAAAAAAAAAAAAAAA' });
    await waitFor('active', () => controller.isActive());
    expect((await (await reader()).load()).clusterId).toBe('AAAAAAAAAAAAAAAAAAAAAA');
    await controller.stop();
    const other = Controller.create({
      config: config(101, { 'cluster.id': 'BBBBBBBBBBBBBBBBBBBBBB' }),
      store: ControllerStore.create({ url: redis.url, controllerId: 101, leaseMs: LEASE_MS }),
    });
    cleanups.push(() => other.stop());
    await expect(other.start()).rejects.toMatchObject({ code: 'CLUSTER_ID_MISMATCH' });
  });
});
