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
      if (on2.includes(p.partition)) expect(p).toMatchObject({ leader: -1, isr: [2], leaderEpoch: 0, replicas: [2] });
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

  it('topic operations: LocalStore\'s refusals, RF up to the live brokers, producer ids in blocks', async () => {
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
      await create({ replicationFactor: 3 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RpcError);
      expect((err as RpcError).remoteCode).toBe('INVALID_REPLICATION_FACTOR');
      expect((err as RpcError).message).toContain('Replication factor: 3 larger than available brokers: 2.');
    }
    const { topic, version } = await create({ partitions: 3, replicationFactor: 2 });
    expect(topic.partitions.map((p) => p.replicas.length)).toEqual([2, 2, 2]);
    expect(topic.partitions.every((p) => p.isr.length === 2 && p.leader === p.replicas[0])).toBe(true);
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

  it('alterPartition over RPC: the leader\'s compare-and-set commits once; stale proposals get the committed state', async () => {
    const controller = await startController(100);
    await waitFor('active', () => controller.isActive());
    const rpc = client(controller);
    const brokers = [await session(rpc, 1, ['broker']), await session(rpc, 2, ['broker']), await session(rpc, 3, ['broker'])];
    const { topic } = await rpc.call('controller.createTopic', { name: 'r', partitions: 1, replicationFactor: 3, configs: {}, internal: false, assignments: [[1, 2, 3]] });
    const p0 = topic.partitions[0]!;
    expect(p0).toMatchObject({ leader: 1, isr: [1, 2, 3], leaderEpoch: 0, version: 0 });
    const base = { nodeId: 1, brokerEpoch: brokers[0]!.registration.brokerEpoch, topic: 'r', partition: 0, leaderEpoch: 0, version: 0 };

    const shrink = await rpc.call('controller.alterPartition', { ...base, isr: [1, 2] });
    expect(shrink).toMatchObject({ error: '', partition: { leader: 1, isr: [1, 2], leaderEpoch: 0, version: 1 } });
    expect((await (await reader()).load()).topics.get('r')!.partitions[0]).toMatchObject({ isr: [1, 2], version: 1 });
    expect(shrink.version).toBe((await (await reader()).load()).version);
    // The same proposal again (a retry of one that landed): refused, with what is committed.
    expect(await rpc.call('controller.alterPartition', { ...base, isr: [1, 2] })).toMatchObject({ error: 'INVALID_UPDATE_VERSION', partition: { isr: [1, 2], version: 1 } });
    expect((await rpc.call('controller.alterPartition', { ...base, brokerEpoch: 999, version: 1, isr: [1] })).error).toBe('STALE_BROKER_EPOCH');
    expect((await rpc.call('controller.alterPartition', { ...base, nodeId: 2, brokerEpoch: brokers[1]!.registration.brokerEpoch, version: 1, isr: [2] })).error).toBe('NOT_LEADER_OR_FOLLOWER');
    expect((await rpc.call('controller.alterPartition', { ...base, leaderEpoch: 1, version: 1, isr: [1] })).error).toBe('FENCED_LEADER_EPOCH');
    expect((await rpc.call('controller.alterPartition', { ...base, version: 1, isr: [2] })).error).toBe('INELIGIBLE_REPLICA');
    expect((await rpc.call('controller.alterPartition', { ...base, topic: 'nope', isr: [1] }))).toMatchObject({ error: 'UNKNOWN_TOPIC_OR_PARTITION', partition: null });
    // Broker 3 dies: it cannot be added back while fenced.
    brokers[2]!.stop();
    await waitFor('broker 3 fenced', async () => (await (await reader()).load()).nodes.get(3)?.fenced);
    expect((await rpc.call('controller.alterPartition', { ...base, version: 1, isr: [1, 2, 3] })).error).toBe('INELIGIBLE_REPLICA');
    expect((await (await reader()).load()).topics.get('r')!.partitions[0]).toMatchObject({ leader: 1, isr: [1, 2], version: 1 });
  });

  it('shutdownNode moves leadership to another in-sync replica, takes the node out of ISRs, and keeps it out until it registers again', async () => {
    const controller = await startController(100);
    await waitFor('active', () => controller.isActive());
    const rpc = client(controller);
    const b1 = await session(rpc, 1, ['broker']);
    const b2 = await session(rpc, 2, ['broker']);
    await rpc.call('controller.createTopic', { name: 'r', partitions: 2, replicationFactor: 2, configs: {}, internal: false, assignments: [[1, 2], [2, 1]] });
    const offsetsLedBy1 = (await (await reader()).load()).topics.get(OFFSETS_TOPIC)!.partitions.filter((p) => p.leader === 1).length;

    const { remaining, version } = await rpc.call('controller.shutdownNode', { nodeId: 1, brokerEpoch: b1.registration.brokerEpoch });
    // The RF 1 offsets partitions it leads have nowhere to go.
    expect(remaining).toBe(offsetsLedBy1);
    const state = await (await reader()).load();
    expect(state.version).toBe(version);
    expect(state.topics.get('r')!.partitions).toMatchObject([{ leader: 2, isr: [2], leaderEpoch: 1 }, { leader: 2, isr: [2], leaderEpoch: 0 }]);
    // While it shuts down, its leader cannot propose it back, and it is not elected.
    const p1 = state.topics.get('r')!.partitions[1]!;
    const propose = { nodeId: 2, brokerEpoch: b2.registration.brokerEpoch, topic: 'r', partition: 1, leaderEpoch: p1.leaderEpoch, version: p1.version, isr: [2, 1] };
    expect((await rpc.call('controller.alterPartition', propose)).error).toBe('INELIGIBLE_REPLICA');
    // Registered again (a restart), it may join again.
    await session(rpc, 1, ['broker']);
    expect((await rpc.call('controller.alterPartition', propose)).error).toBe('');
  });

  it('a live node id is refused to another process (DUPLICATE_BROKER_REGISTRATION, retriable) until its session expires', async () => {
    const controller = await startController(100);
    await waitFor('active', () => controller.isActive());
    const rpc = client(controller);
    const first = { ...node(1, ['broker']), incarnationId: 'first' };
    const { registration } = await rpc.call('controller.registerNode', first);
    const beat = setInterval(() => rpc.call('controller.heartbeat', { nodeId: 1, brokerEpoch: registration.brokerEpoch }).catch(() => {}), 200);
    cleanups.push(() => clearInterval(beat));
    const second = { ...node(1, ['broker']), port: 29_001, incarnationId: 'second' };
    let refusal: RpcError | undefined;
    try {
      await rpc.call('controller.registerNode', second);
    } catch (err) {
      refusal = err as RpcError;
    }
    expect(refusal).toMatchObject({ remoteCode: 'DUPLICATE_BROKER_REGISTRATION', retriable: true });
    expect(refusal!.message).toContain('127.0.0.1:19001');
    // The holder re-registering (same incarnation) is accepted.
    const again = await rpc.call('controller.registerNode', first);
    expect(again.registration.brokerEpoch).toBeGreaterThan(registration.brokerEpoch);
    expect((await (await reader()).load()).nodes.get(1)).toMatchObject({ port: 19_001, incarnationId: 'first', fenced: false });
    // Its session expires: the newcomer gets the id.
    clearInterval(beat);
    await waitFor('node 1 fenced', async () => (await (await reader()).load()).nodes.get(1)?.fenced);
    const taken = await rpc.call('controller.registerNode', second);
    expect(taken.registration).toMatchObject({ nodeId: 1, port: 29_001, incarnationId: 'second' });
  });

  it('electLeaders over RPC, and the auto rebalance moving leadership back to the preferred replica', async () => {
    const controller = await startController(100, { 'leader.imbalance.check.interval.seconds': '1' });
    await waitFor('active', () => controller.isActive());
    const rpc = client(controller);
    const b1 = await session(rpc, 1, ['broker']);
    const b2 = await session(rpc, 2, ['broker']);
    await rpc.call('controller.createTopic', { name: 'r', partitions: 1, replicationFactor: 2, configs: {}, internal: false, assignments: [[1, 2]] });
    expect((await rpc.call('controller.electLeaders', { partitions: [{ topic: 'r', partition: 0 }, { topic: 'x', partition: 0 }], unclean: false })).results)
      .toEqual([{ topic: 'r', partition: 0, error: 'ELECTION_NOT_NEEDED', message: expect.any(String) }, { topic: 'x', partition: 0, error: 'UNKNOWN_TOPIC_OR_PARTITION', message: expect.any(String) }]);
    // Leadership leaves broker 1 (controlled shutdown), then it registers again and is proposed back into the ISR.
    await rpc.call('controller.shutdownNode', { nodeId: 1, brokerEpoch: b1.registration.brokerEpoch });
    await session(rpc, 1, ['broker']);
    const p = (await (await reader()).load()).topics.get('r')!.partitions[0]!;
    expect(p).toMatchObject({ leader: 2, isr: [2] });
    await rpc.call('controller.alterPartition', { nodeId: 2, brokerEpoch: b2.registration.brokerEpoch, topic: 'r', partition: 0, leaderEpoch: p.leaderEpoch, version: p.version, isr: [2, 1] });
    // auto.leader.rebalance.enable (default true), checked every second here: 1 leads again.
    const back = await waitFor('preferred leader back', async () => {
      const q = (await (await reader()).load()).topics.get('r')!.partitions[0]!;
      return q.leader === 1 ? q : undefined;
    });
    expect(back).toMatchObject({ leader: 1, isr: [2, 1], leaderEpoch: p.leaderEpoch + 1 });
  });

  it('electLeaders unclean: an offline partition gets its live out-of-sync replica', async () => {
    const controller = await startController(100, { 'auto.leader.rebalance.enable': 'false' });
    await waitFor('active', () => controller.isActive());
    const rpc = client(controller);
    const b1 = await session(rpc, 1, ['broker']);
    const b2 = await session(rpc, 2, ['broker']);
    await rpc.call('controller.createTopic', { name: 'r', partitions: 1, replicationFactor: 2, configs: {}, internal: false, assignments: [[1, 2]] });
    await rpc.call('controller.alterPartition', { nodeId: 1, brokerEpoch: b1.registration.brokerEpoch, topic: 'r', partition: 0, leaderEpoch: 0, version: 0, isr: [1] });
    b1.stop();
    await waitFor('offline', async () => (await (await reader()).load()).topics.get('r')!.partitions[0]!.leader === -1);
    expect((await rpc.call('controller.electLeaders', { partitions: [{ topic: 'r', partition: 0 }], unclean: false })).results[0]!.error).toBe('PREFERRED_LEADER_NOT_AVAILABLE');
    const { results } = await rpc.call('controller.electLeaders', { partitions: [], unclean: true });
    expect(results).toContainEqual({ topic: 'r', partition: 0, error: '', message: '' });
    expect((await (await reader()).load()).topics.get('r')!.partitions[0]).toMatchObject({ leader: 2, isr: [2], leaderEpoch: 1 });
    void b2;
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

  it('a controller that takes over during a controlled shutdown keeps the broker out of ISRs and elections until it registers again', async () => {
    const first = await startController(100, { 'auto.leader.rebalance.enable': 'false' });
    await waitFor('first active', () => first.isActive());
    const second = await startController(101, { 'auto.leader.rebalance.enable': 'false' });
    const toFirst = client(first);
    const b1 = await session(toFirst, 1, ['broker']);
    const b2 = await session(toFirst, 2, ['broker']);
    const b3 = await session(toFirst, 3, ['broker']);
    await toFirst.call('controller.createTopic', { name: 'r', partitions: 1, replicationFactor: 3, configs: {}, internal: false, assignments: [[1, 2, 3]] });
    // Broker 1 alone leads 's' (RF 1): its shutdown stays in progress (remaining > 0), it is not fenced.
    await toFirst.call('controller.createTopic', { name: 's', partitions: 1, replicationFactor: 1, configs: {}, internal: false, assignments: [[1]] });
    expect((await toFirst.call('controller.shutdownNode', { nodeId: 1, brokerEpoch: b1.registration.brokerEpoch })).remaining).toBeGreaterThan(0);
    const moved = (await (await reader()).load()).topics.get('r')!.partitions[0]!;
    expect(moved).toMatchObject({ leader: 2, isr: [2, 3] });
    expect((await (await reader()).load()).nodes.get(1)).toMatchObject({ fenced: false, shuttingDown: true });

    await first.stop();
    await waitFor('second active', () => second.isActive());
    const rpc = client(second);
    // The nodes' heartbeats now reach the new controller (as RedisStore's would, following the lease).
    const beats = [b1, b2, b3].map(({ registration: r }) => setInterval(() => {
      rpc.call('controller.heartbeat', { nodeId: r.nodeId, brokerEpoch: r.brokerEpoch }).catch(() => {});
    }, 200));
    cleanups.push(() => beats.forEach(clearInterval));
    // Broker 1 still follows (its process is shutting down, not gone): its leader proposes it back.
    const propose = (isr: number[]) => rpc.call('controller.alterPartition',
      { nodeId: 2, brokerEpoch: b2.registration.brokerEpoch, topic: 'r', partition: 0, leaderEpoch: moved.leaderEpoch, version: moved.version, isr });
    expect((await propose([2, 3, 1])).error).toBe('INELIGIBLE_REPLICA');
    // So the preferred leader (1) cannot be elected, and when 2 goes, 3 leads, not 1.
    expect((await rpc.call('controller.electLeaders', { partitions: [{ topic: 'r', partition: 0 }], unclean: false })).results[0]!.error).toBe('PREFERRED_LEADER_NOT_AVAILABLE');
    clearInterval(beats[1]);
    const after = await waitFor('a new leader of r-0', async () => {
      const p = (await (await reader()).load()).topics.get('r')!.partitions[0]!;
      return p.leader !== 2 ? p : undefined;
    });
    expect(after).toMatchObject({ leader: 3, isr: [3] });

    // Registering again (a restarted process) ends the shutdown: the mark is gone and 1 may rejoin.
    await session(rpc, 1, ['broker']);
    expect((await (await reader()).load()).nodes.get(1)!.shuttingDown).toBeUndefined();
    const { error } = await rpc.call('controller.alterPartition',
      { nodeId: 3, brokerEpoch: b3.registration.brokerEpoch, topic: 'r', partition: 0, leaderEpoch: after.leaderEpoch, version: after.version, isr: [3, 1] });
    expect(error).toBe('');
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

  it('a controller that takes over gives a node it never heard from a full session before fencing it', async () => {
    const first = await startController(100);
    await waitFor('first active', () => first.isActive());
    const second = await startController(101);
    const b1 = await session(client(first), 1, ['broker']);
    // The node falls silent (its heartbeats went to a controller that froze), then the controller changes.
    b1.stop();
    await new Promise((r) => setTimeout(r, SESSION_MS / 2));
    await first.stop();
    await waitFor('second active', () => second.isActive());
    // Half a session after the takeover (and more than a session after its last heartbeat): still live.
    await new Promise((r) => setTimeout(r, SESSION_MS / 2));
    expect((await (await reader()).load()).nodes.get(1)!.fenced).toBe(false);
    // Still silent a session after the takeover: fenced.
    await waitFor('node 1 fenced', async () => (await (await reader()).load()).nodes.get(1)!.fenced);
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
