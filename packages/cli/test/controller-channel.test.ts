// The controller channel (a node's MetadataWriter over RPC) against a real RpcServer: the
// controller's refusals come back as the MetadataErrors they were, calls retry while there is no
// controller, a create or a reassignment cancel that may have landed is not repeated, and a closed channel stops at once.
import { afterEach, expect, it } from 'vitest';
import { MetadataError } from '@runnel/metadata';
import { RpcServer, type RpcHandlers } from '@runnel/rpc';
import { controllerChannel } from '../src/cluster/controller-channel.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function controller(handlers: RpcHandlers) {
  const server = RpcServer.create({ host: '127.0.0.1', port: 0, handlers });
  await server.start();
  cleanups.push(() => server.stop());
  return server;
}

const topic = { name: 't', topicId: 'a'.repeat(32), internal: false, partitions: [], configs: {} };
const spec = { name: 't', partitions: 1, replicationFactor: 2 };

async function failure(p: Promise<unknown>): Promise<MetadataError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(MetadataError);
  return err as MetadataError;
}

it('returns the controller\'s refusal as the MetadataError it was', async () => {
  const server = await controller({
    'controller.createTopic': () => { throw new MetadataError('INVALID_REPLICATION_FACTOR', 'replication is not built yet'); },
  });
  const channel = controllerChannel({ locate: () => server.address(), retryMs: 1_000 });
  cleanups.push(() => channel.close());
  const err = await failure(channel.createTopic(spec));
  expect(err.code).toBe('INVALID_REPLICATION_FACTOR');
  expect(err.message).toContain('replication is not built yet');
});

it('retries while no controller holds the lease, then reaches the one that does', async () => {
  const server = await controller({ 'controller.createTopic': () => ({ topic, version: 7 }) });
  let found: { host: string; port: number } | null = null;
  setTimeout(() => { found = server.address(); }, 200);
  const channel = controllerChannel({ locate: () => found, retryMs: 5_000 });
  cleanups.push(() => channel.close());
  expect((await channel.createTopic({ ...spec, replicationFactor: 1 })).version).toBe(7);
});

it('repeats a topic create that never reached a controller (a refused connection)', async () => {
  const dead = await controller({});
  const deadAddress = dead.address();
  await dead.stop();
  let creates = 0;
  const live = await controller({ 'controller.createTopic': () => { creates++; return { topic, version: 3 }; } });
  let target = deadAddress;
  setTimeout(() => { target = live.address(); }, 300);
  const channel = controllerChannel({ locate: () => target, retryMs: 5_000 });
  cleanups.push(() => channel.close());
  expect((await channel.createTopic({ ...spec, replicationFactor: 1 })).version).toBe(3);
  expect(creates).toBe(1);
});

it('does not repeat a topic create that timed out (it may have landed), but repeats a heartbeat', async () => {
  let creates = 0;
  let heartbeats = 0;
  const server = await controller({
    'controller.createTopic': () => { creates++; return new Promise(() => {}); },
    'controller.heartbeat': () => (++heartbeats < 2 ? new Promise(() => {}) : { fenced: false }),
  });
  const channel = controllerChannel({ locate: () => server.address(), retryMs: 5_000, requestTimeoutMs: 200 });
  cleanups.push(() => channel.close());
  const err = await failure(channel.createTopic(spec));
  expect(err.code).toBe('STORE_UNAVAILABLE');
  expect(err.retriable).toBe(true);
  expect(creates).toBe(1);
  expect(await channel.heartbeat(1, 1)).toEqual({ fenced: false });
  expect(heartbeats).toBe(2);
});

it('retries until its deadline, and stops at once once closed', async () => {
  let lookups = 0;
  const channel = controllerChannel({ locate: () => { lookups++; return null; }, retryMs: 300 });
  expect((await failure(channel.allocateProducerId())).code).toBe('STORE_UNAVAILABLE');
  expect(lookups).toBeGreaterThan(1);
  channel.close();
  lookups = 0;
  expect((await failure(channel.allocateProducerId())).message).toContain('closed');
  expect(lookups).toBe(0);
});

it('a registration refused with DUPLICATE_BROKER_REGISTRATION comes back at once (RedisStore waits it out), retriable', async () => {
  let calls = 0;
  const server = await controller({
    'controller.registerNode': () => {
      calls++;
      throw new MetadataError('DUPLICATE_BROKER_REGISTRATION', 'node id 1 is held by a live process at 127.0.0.1:9092', { retriable: true });
    },
  });
  const channel = controllerChannel({ locate: () => server.address(), retryMs: 5_000 });
  cleanups.push(() => channel.close());
  const err = await failure(channel.registerNode({ nodeId: 1, host: 'h', port: 1, rack: null, roles: ['broker'], rpc: null, incarnationId: 'x' }));
  expect(err).toMatchObject({ code: 'DUPLICATE_BROKER_REGISTRATION', retriable: true });
  expect(calls).toBe(1);
});

it('carries ISR proposals, controlled shutdown and elections: \'\' errors become null, the registration its incarnation id', async () => {
  const state = { partition: 0, leader: 1, leaderEpoch: 2, replicas: [1, 2], isr: [1], version: 5 };
  const seen: unknown[] = [];
  const server = await controller({
    'controller.registerNode': (req) => { seen.push(req.incarnationId); return { registration: { ...req, brokerEpoch: 4 }, version: 1 }; },
    'controller.alterPartition': (req) => { seen.push(req); return req.version === 4 ? { error: '', partition: state, version: 9 } : { error: 'INVALID_UPDATE_VERSION', partition: state, version: 9 }; },
    'controller.shutdownNode': (req) => { seen.push(req); return { remaining: 3, version: 10 }; },
    'controller.electLeaders': (req) => {
      seen.push(req);
      return { results: [{ topic: 't', partition: 0, error: '', message: '' }, { topic: 't', partition: 1, error: 'ELECTION_NOT_NEEDED', message: 'm' }], version: 11 };
    },
  });
  const channel = controllerChannel({ locate: () => server.address(), retryMs: 1_000 });
  cleanups.push(() => channel.close());
  expect((await channel.registerNode({ nodeId: 1, host: 'h', port: 1, rack: null, roles: ['broker'], rpc: null, incarnationId: 'inc-1' })).registration.incarnationId).toBe('inc-1');
  const request = { nodeId: 1, brokerEpoch: 4, topic: 't', partition: 0, leaderEpoch: 2, version: 4, isr: [1] };
  expect(await channel.alterPartition(request)).toEqual({ result: { error: null, partition: state }, version: 9 });
  expect(await channel.alterPartition({ ...request, version: 3 })).toEqual({ result: { error: 'INVALID_UPDATE_VERSION', partition: state }, version: 9 });
  expect(await channel.shutdownNode(1, 4)).toEqual({ remaining: 3, version: 10 });
  expect(await channel.electLeaders(null, true)).toEqual({
    results: [{ topic: 't', partition: 0, error: null, message: '' }, { topic: 't', partition: 1, error: 'ELECTION_NOT_NEEDED', message: 'm' }], version: 11,
  });
  expect(seen).toEqual(['inc-1', request, { ...request, version: 3 }, { nodeId: 1, brokerEpoch: 4 }, { partitions: [], unclean: true }]);
});

it('a heartbeat in flight to a controller that stopped answering goes to the new one as soon as metadata names it', async () => {
  let frozenCalls = 0;
  const frozen = await controller({ 'controller.heartbeat': () => { frozenCalls++; return new Promise(() => {}); } });
  const next = await controller({ 'controller.heartbeat': () => ({ fenced: false }) });
  let target = frozen.address();
  // The default attempt bound (10 s) is far beyond this test's 5 s: only following the move can answer in time.
  const channel = controllerChannel({ locate: () => target, retryMs: 30_000 });
  cleanups.push(() => channel.close());
  const answer = channel.heartbeat(1, 1);
  await new Promise((r) => setTimeout(r, 300));
  expect(frozenCalls).toBe(1);
  target = next.address();
  expect(await answer).toEqual({ fenced: false });
}, 5_000);

it('bounds every attempt by the session timeout, a heartbeat\'s by a third of it', async () => {
  let heartbeats = 0;
  let creates = 0;
  const server = await controller({
    'controller.heartbeat': () => (++heartbeats < 2 ? new Promise(() => {}) : { fenced: false }),
    'controller.createTopic': () => { creates++; return new Promise(() => {}); },
  });
  // A 3 s session: the first heartbeat is given up after 1 s and sent again, long before the 10 s request timeout.
  const channel = controllerChannel({ locate: () => server.address(), retryMs: 30_000, sessionTimeoutMs: 3_000 });
  cleanups.push(() => channel.close());
  expect(await channel.heartbeat(1, 1)).toEqual({ fenced: false });
  expect(heartbeats).toBe(2);
  // A write waits one session at most (then fails retriable, not repeated: it may have landed).
  const err = await failure(channel.createTopic(spec));
  expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
  expect(err.message).toContain('3000 ms');
  expect(creates).toBe(1);
}, 8_000);

it('a failed attempt reloads metadata, so a new controller is found without waiting for its announcement', async () => {
  const frozen = await controller({ 'controller.heartbeat': () => new Promise(() => {}) });
  const next = await controller({ 'controller.heartbeat': () => ({ fenced: false }) });
  // What metadata says only changes when it is reloaded (its pub/sub announcement was lost).
  let inRedis = frozen.address();
  let loaded = inRedis;
  let reloads = 0;
  const channel = controllerChannel({ locate: () => loaded, refresh: () => { reloads++; loaded = inRedis; }, retryMs: 30_000, sessionTimeoutMs: 600 });
  cleanups.push(() => channel.close());
  inRedis = next.address();
  expect(await channel.heartbeat(1, 1)).toEqual({ fenced: false });
  expect(reloads).toBeGreaterThan(0);
}, 5_000);

it('a topic create in flight when the controller moves is abandoned, not re-sent to the new one (it may have landed)', async () => {
  let frozenCreates = 0;
  let nextCreates = 0;
  const frozen = await controller({ 'controller.createTopic': () => { frozenCreates++; return new Promise(() => {}); } });
  const next = await controller({ 'controller.createTopic': () => { nextCreates++; return { topic, version: 5 }; } });
  let target = frozen.address();
  const channel = controllerChannel({ locate: () => target, retryMs: 30_000 });
  cleanups.push(() => channel.close());
  const created = failure(channel.createTopic(spec));
  await new Promise((r) => setTimeout(r, 300));
  expect(frozenCreates).toBe(1);
  target = next.address();
  // Answered at once (the move closed the old connection), retriable: the client retries and sees
  // TOPIC_ALREADY_EXISTS if the first one landed.
  expect(await created).toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
  expect(nextCreates).toBe(0);
  // A call made after the move goes to the new controller.
  expect((await channel.createTopic(spec)).version).toBe(5);
}, 5_000);

it('a reassignment cancel in flight when the controller moves is not re-sent (it may have landed); a move to a target is', async () => {
  const seen: { at: string; cancel: boolean }[] = [];
  const frozen = await controller({
    'controller.alterReassignments': (req) => { seen.push(...req.reassignments.map((r) => ({ at: 'frozen', cancel: r.cancel }))); return new Promise(() => {}); },
  });
  // The new controller has nothing in progress: the first cancel landed before the old one froze.
  const next = await controller({
    'controller.alterReassignments': (req) => {
      seen.push(...req.reassignments.map((r) => ({ at: 'next', cancel: r.cancel })));
      return { results: req.reassignments.map((r) => ({ topic: r.topic, partition: r.partition, error: r.cancel ? 'NO_REASSIGNMENT_IN_PROGRESS' : '', message: '' })), version: 6 };
    },
  });
  let target = frozen.address();
  const channel = controllerChannel({ locate: () => target, retryMs: 30_000 });
  cleanups.push(() => channel.close());
  const cancelled = failure(channel.alterReassignments!([{ topic: 't', partition: 0, replicas: null }]));
  const moved = channel.alterReassignments!([{ topic: 't', partition: 1, replicas: [2] }]);
  await new Promise((r) => setTimeout(r, 300));
  expect(seen).toHaveLength(2);
  expect(seen).toEqual(expect.arrayContaining([{ at: 'frozen', cancel: true }, { at: 'frozen', cancel: false }]));
  target = next.address();
  // Retriable to the client, never a NO_REASSIGNMENT_IN_PROGRESS for a cancel that may have succeeded.
  expect(await cancelled).toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
  expect(await moved).toEqual({ results: [{ topic: 't', partition: 1, error: null, message: '' }], version: 6 });
  expect(seen.filter((s) => s.at === 'next')).toEqual([{ at: 'next', cancel: false }]);
}, 5_000);
