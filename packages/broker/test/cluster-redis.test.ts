/**
 * A cluster-mode broker in a real (in-process) cluster: redis-server, a Controller, the broker's
 * RedisStore writing through the controller's RPC. Coordinator nodes are sessions opened directly
 * on the controller (a registration and heartbeats), which is all the broker sees of them. Covers
 * what needs `snapshot.coordinators`: FindCoordinator from metadata and the refusal of a stale
 * coordinator epoch on `broker.append`. Waits poll for a state; nothing asserts on time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '@runnel/common';
import { ControllerStore, MetadataError, RedisStore, type AlterPartitionResult, type MetadataWriter, type TopicMetadata } from '@runnel/metadata';
import { encodeRecordBatch, ApiKey, ErrorCode, partitionForGroup } from '@runnel/protocol';
import { RpcClient, RpcError, type Address, type TopicMsg } from '@runnel/rpc';
import { Controller } from '@runnel/controller';
import { kafkaRequest } from '../../../test/helpers/raw-kafka.ts';
import { redisCli, startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { Broker } from '../src/index.ts';

const OFFSETS = '__consumer_offsets';
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

function config(nodeId: number, dir?: string) {
  return resolveConfig({
    overrides: new Map(Object.entries({
      'node.id': String(nodeId),
      'runnel.redis.url': redis.url,
      'broker.session.timeout.ms': '3000',
      'runnel.controller.lease.ms': '3000',
      'offsets.topic.num.partitions': String(OFFSETS_PARTITIONS),
      listeners: 'PLAINTEXT://127.0.0.1:0',
      ...(dir ? { 'log.dirs': dir } : {}),
    })),
  }).config;
}

async function waitFor<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const topicOf = (t: TopicMsg): TopicMetadata => ({ ...t, configs: { ...t.configs } });

/** The writes this test needs, straight to the controller (the cli has the full, retrying one). */
function writerTo(rpc: RpcClient): MetadataWriter {
  const unused = () => Promise.reject(new MetadataError('STORE_UNAVAILABLE', 'not used by this test'));
  return {
    registerNode: async (input) => rpc.call('controller.registerNode', input),
    heartbeat: (nodeId, brokerEpoch) => rpc.call('controller.heartbeat', { nodeId, brokerEpoch }),
    createTopic: async (spec) => {
      const res = await rpc.call('controller.createTopic', {
        name: spec.name, partitions: spec.partitions, replicationFactor: spec.replicationFactor,
        configs: spec.configs ?? {}, internal: spec.internal ?? false, assignments: spec.assignments ?? [],
      });
      return { topic: topicOf(res.topic), version: res.version };
    },
    deleteTopic: unused,
    createPartitions: unused,
    alterTopicConfigs: unused,
    allocateProducerId: unused,
    alterPartition: async (request) => {
      const res = await rpc.call('controller.alterPartition', request);
      return { result: { error: (res.error || null) as AlterPartitionResult['error'], partition: res.partition }, version: res.version };
    },
    shutdownNode: (nodeId, brokerEpoch) => rpc.call('controller.shutdownNode', { nodeId, brokerEpoch }),
    electLeaders: unused,
  };
}

interface Cluster { controllerRpc: RpcClient; store: RedisStore; broker: Broker; rpc: RpcClient }

async function startCluster(): Promise<Cluster> {
  const controllerStore = ControllerStore.create({ url: redis.url, controllerId: 100, leaseMs: 3000 });
  const controller = Controller.create({ config: config(100), store: controllerStore });
  await controller.start();
  cleanups.push(() => controller.stop());
  await waitFor('an active controller', () => controller.isActive());
  const controllerRpc = RpcClient.create({ ...controller.rpcAddress(), requestTimeoutMs: 5_000 });
  cleanups.push(() => controllerRpc.close());

  const dir = await mkdtemp(join(tmpdir(), 'runnel-broker-redis-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = RedisStore.create({ url: redis.url, nodeId: 1, writer: writerTo(controllerRpc), heartbeatIntervalMs: 200, pollIntervalMs: 200 });
  await store.start();
  cleanups.push(() => store.stop());
  const broker = Broker.create({ config: config(1, dir), metadata: store, cluster: { rpcListener: '127.0.0.1:0' } });
  await broker.start();
  cleanups.push(() => broker.stop());
  const rpc = RpcClient.create({ ...broker.rpcAddress()!, requestTimeoutMs: 5_000 });
  cleanups.push(() => rpc.close());
  return { controllerRpc, store, broker, rpc };
}

/** A coordinator node as the controller sees one: registered, heartbeating until the test ends. */
async function coordinatorNode(c: Cluster, nodeId: number, kafka: Address): Promise<void> {
  const { registration } = await c.controllerRpc.call('controller.registerNode', { nodeId, ...kafka, rack: null, roles: ['coordinator'], rpc: { host: '127.0.0.1', port: 1 } });
  const timer = setInterval(() => {
    c.controllerRpc.call('controller.heartbeat', { nodeId, brokerEpoch: registration.brokerEpoch }).catch(() => {});
  }, 200);
  cleanups.push(() => clearInterval(timer));
}

const offsetsBatch = (value: string) => encodeRecordBatch({ records: [{ key: 'k', value }] });

async function remoteCode(call: Promise<unknown>): Promise<string | undefined> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RpcError);
  return (err as RpcError).remoteCode;
}

describe('broker in a cluster (redis-server, controller)', () => {
  it('leads the offsets topic, answers FindCoordinator from metadata and refuses a stale coordinator epoch', async () => {
    const c = await startCluster();
    expect(c.store.snapshot().brokers.get(1)).toMatchObject({ roles: ['broker'], rpc: c.broker.rpcAddress() });
    const offsets = await waitFor('the offsets topic', () => c.store.snapshot().topics.get(OFFSETS));
    expect(offsets.partitions.every((p) => p.leader === 1)).toBe(true);
    // No coordinator node yet.
    expect((await kafkaRequest(c.broker.address().port, ApiKey.FindCoordinator, 3, { key: 'g', keyType: 0 })).errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);

    await coordinatorNode(c, 10, { host: '127.0.0.1', port: 19_010 });
    await waitFor('partitions owned by node 10', () => c.store.snapshot().coordinators.size === OFFSETS_PARTITIONS);
    const found = await kafkaRequest(c.broker.address().port, ApiKey.FindCoordinator, 4, { keyType: 0, coordinatorKeys: ['g1', 'g2'] });
    expect(found.coordinators).toEqual([
      { key: 'g1', nodeId: 10, host: '127.0.0.1', port: 19_010, errorCode: 0, errorMessage: null },
      { key: 'g2', nodeId: 10, host: '127.0.0.1', port: 19_010, errorCode: 0, errorMessage: null },
    ]);
    // The first lookup of a transactional id creates __transaction_state (retriable meanwhile), as
    // Kafka does; then the id maps to the owner of its partition's __consumer_offsets partition.
    const tx = await kafkaRequest(c.broker.address().port, ApiKey.FindCoordinator, 3, { key: 't', keyType: 1 });
    expect(tx.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    await waitFor('__transaction_state created', () => c.store.snapshot().topics.has('__transaction_state'));
    const txFound = await kafkaRequest(c.broker.address().port, ApiKey.FindCoordinator, 3, { key: 't', keyType: 1 });
    expect(txFound).toMatchObject({ errorCode: 0, nodeId: 10, port: 19_010 });

    // Node 11 joins: the controller moves the odd partitions to it, each with a higher epoch.
    const moved = 1;
    const epoch10 = c.store.snapshot().coordinators.get(moved)!.epoch;
    expect(await c.rpc.call('broker.append', { topic: OFFSETS, partition: moved, records: offsetsBatch('by 10'), coordinatorEpoch: epoch10 }))
      .toEqual({ baseOffset: 0n, lastOffset: 0n });
    await coordinatorNode(c, 11, { host: '127.0.0.1', port: 19_011 });
    const now = await waitFor('partition 1 moved to node 11', () => {
      const a = c.store.snapshot().coordinators.get(moved);
      return a?.nodeId === 11 ? a : undefined;
    });
    expect(now.epoch).toBeGreaterThan(epoch10);
    const stale = c.rpc.call('broker.append', { topic: OFFSETS, partition: moved, records: offsetsBatch('late 10'), coordinatorEpoch: epoch10 });
    expect(await remoteCode(stale)).toBe('NOT_COORDINATOR');
    expect(await c.rpc.call('broker.append', { topic: OFFSETS, partition: moved, records: offsetsBatch('by 11'), coordinatorEpoch: now.epoch }))
      .toEqual({ baseOffset: 1n, lastOffset: 1n });
    // The refused append left nothing behind.
    expect((await c.rpc.call('broker.offsets', { partitions: [{ topic: OFFSETS, partition: moved }] })).partitions[0]!.highWatermark).toBe(2n);

    // FindCoordinator follows: a group hashing to partition 1 now points at node 11.
    const group = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].find((g) => partitionForGroup(g, OFFSETS_PARTITIONS) === moved)!;
    expect(await kafkaRequest(c.broker.address().port, ApiKey.FindCoordinator, 3, { key: group, keyType: 0 })).toMatchObject({ errorCode: 0, nodeId: 11, port: 19_011 });
  });

  it('names a broker as the Kafka controller, so kafkajs admin writes reach one that forwards them', async () => {
    const c = await startCluster();
    // Node 10 is registered at the broker's own listener: kafkajs may send its admin calls to any
    // listed node, and an address nobody listens on would fail them at random.
    await coordinatorNode(c, 10, { host: '127.0.0.1', port: c.broker.address().port });
    await waitFor('node 10 live', () => c.store.snapshot().brokers.has(10));
    // The Runnel controller (node 100) has no Kafka listener; the broker list has nodes 1 and 10.
    expect(c.store.snapshot().controllerId).toBe(100);
    const md = await kafkaRequest(c.broker.address().port, ApiKey.Metadata, 9, { topics: null, allowAutoTopicCreation: false });
    expect(md.controllerId).toBe(1);
    expect(md.brokers.map((b) => b.nodeId).sort()).toEqual([1, 10]);
    expect((await kafkaRequest(c.broker.address().port, ApiKey.DescribeCluster, 0, { includeClusterAuthorizedOperations: false })).controllerId).toBe(1);

    const kafka = new Kafka({ brokers: [`127.0.0.1:${c.broker.address().port}`], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
    const admin = kafka.admin();
    await admin.connect();
    cleanups.push(() => admin.disconnect());
    expect(await admin.createTopics({ topics: [{ topic: 'via-kafkajs', numPartitions: 3 }] })).toBe(true);
    const { topics } = await admin.fetchTopicMetadata({ topics: ['via-kafkajs'] });
    expect(topics[0]!.partitions.map((p) => p.leader)).toEqual([1, 1, 1]);
  });

  it('opens a partition as soon as metadata makes it the leader', async () => {
    const c = await startCluster();
    await c.controllerRpc.call('controller.createTopic', { name: 'fresh', partitions: 2, replicationFactor: 1, configs: {}, internal: false, assignments: [[1], [1]] });
    await waitFor('both logs open without a request', () => c.broker.logs.getLog('fresh', 0) && c.broker.logs.getLog('fresh', 1));
  });
});
