/**
 * The coordinator node in a real, in-process cluster: a redis-server, a Controller (its
 * ControllerStore the only writer), a Broker in cluster mode and a CoordinatorNode, each node
 * with its own RedisStore whose writes reach the controller over RPC. kafkajs, bootstrapped on
 * the broker only, is sent to the coordinator node by FindCoordinator and commits and fetches
 * offsets there; the offsets live in the broker's `__consumer_offsets` and survive a restart of
 * the coordinator node.
 *
 * (A test of the coordinator package that imports other roles: the dependency rule is about
 * src/, and this is the in-process counterpart of test/cluster-*.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consumer, MessagesStreamModes, stringDeserializers } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { OFFSETS_TOPIC, createMetricsRegistry, resolveConfig } from '@runnel/common';
import { Broker } from '@runnel/broker';
import { Controller } from '@runnel/controller';
import { ControllerStore, MetadataError, RedisStore, type AlterPartitionResult, type ElectionResult, type MetadataErrorCode, type MetadataWriter, type TopicMetadata } from '@runnel/metadata';
import { RpcClient, RpcError, type TopicMsg } from '@runnel/rpc';
import { CoordinatorNode, notCoordinatorHandlers } from '../src/index.ts';
import { startRedis, type TestRedis } from '../../../test/helpers/redis.ts';

const OFFSETS_PARTITIONS = 4;

function config(nodeId: number, extra: Record<string, string> = {}) {
  return resolveConfig({
    overrides: new Map(Object.entries({
      'node.id': String(nodeId),
      'listeners': 'PLAINTEXT://127.0.0.1:0',
      'runnel.rpc.listener': '127.0.0.1:0',
      'offsets.topic.num.partitions': String(OFFSETS_PARTITIONS),
      'group.initial.rebalance.delay.ms': '0',
      'broker.session.timeout.ms': '3000',
      'broker.heartbeat.interval.ms': '300',
      'runnel.controller.lease.ms': '3000',
      ...extra,
    })),
  }).config;
}

const METADATA_CODES = new Set(['TOPIC_ALREADY_EXISTS', 'UNKNOWN_TOPIC', 'INVALID_PARTITIONS', 'INVALID_REPLICATION_FACTOR', 'INVALID_REPLICA_ASSIGNMENT', 'INVALID_TOPIC_NAME', 'CLUSTER_ID_MISMATCH', 'STALE_EPOCH']);

/** A node's writes, over RPC to the controller (what the cli's controller channel does, minus its retries). */
function writerTo(controller: Controller): MetadataWriter & { close(): void } {
  const rpc = RpcClient.create(controller.rpcAddress());
  const call = async <R>(fn: () => Promise<R>): Promise<R> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RpcError && err.code === 'REMOTE' && err.remoteCode && METADATA_CODES.has(err.remoteCode)) {
        throw new MetadataError(err.remoteCode as MetadataErrorCode, err.message);
      }
      throw err;
    }
  };
  const topicOf = (t: TopicMsg): TopicMetadata => ({ ...t, configs: { ...t.configs } });
  return {
    registerNode: (input) => call(async () => rpc.call('controller.registerNode', input)),
    heartbeat: (nodeId, brokerEpoch) => call(() => rpc.call('controller.heartbeat', { nodeId, brokerEpoch })),
    createTopic: (spec) => call(async () => {
      const res = await rpc.call('controller.createTopic', {
        name: spec.name, partitions: spec.partitions, replicationFactor: spec.replicationFactor,
        configs: spec.configs ?? {}, internal: spec.internal ?? false, assignments: spec.assignments ?? [],
      });
      return { topic: topicOf(res.topic), version: res.version };
    }),
    deleteTopic: (name) => call(() => rpc.call('controller.deleteTopic', { name })),
    createPartitions: (name, totalCount, assignments) => call(async () => {
      const res = await rpc.call('controller.createPartitions', { name, totalCount, assignments: assignments ?? [] });
      return { topic: topicOf(res.topic), version: res.version };
    }),
    alterTopicConfigs: () => Promise.reject(new Error('not used here')),
    allocateProducerId: () => call(async () => (await rpc.call('controller.allocateProducerId', {})).producerId),
    alterPartition: (req) => call(async () => {
      const res = await rpc.call('controller.alterPartition', req);
      return { result: { error: (res.error || null) as AlterPartitionResult['error'], partition: res.partition ?? null }, version: res.version };
    }),
    shutdownNode: (nodeId, brokerEpoch) => call(() => rpc.call('controller.shutdownNode', { nodeId, brokerEpoch })),
    electLeaders: (partitions, unclean) => call(async () => {
      const res = await rpc.call('controller.electLeaders', { partitions: partitions ?? [], unclean });
      return { results: res.results.map((r) => ({ ...r, error: (r.error || null) as ElectionResult['error'] })), version: res.version };
    }),
    close: () => rpc.close(),
  };
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let redis: TestRedis;
let dir: string;
let controller: Controller;
let broker: Broker;
/** The coordinator node the first test leaves running. */
let coordinatorNode: CoordinatorNode | undefined;
const stops: (() => Promise<unknown>)[] = [];

function nodeStore(nodeId: number): RedisStore {
  const writer = writerTo(controller);
  const store = RedisStore.create({ url: redis.url, nodeId, writer, heartbeatIntervalMs: 300, pollIntervalMs: 200 });
  stops.push(async () => {
    await store.stop();
    writer.close();
  });
  return store;
}

async function startCoordinatorNode(): Promise<{ node: CoordinatorNode; store: RedisStore }> {
  const store = nodeStore(2);
  await store.start();
  const node = CoordinatorNode.create({ config: config(2), metadata: store });
  await node.start();
  return { node, store };
}

const loadedEverything = (node: CoordinatorNode) => {
  const owned = node.coordinator.machine.ownedPartitions();
  return owned.size === OFFSETS_PARTITIONS && [...owned.values()].every((s) => s === 'loaded');
};

beforeAll(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'runnel-coordinator-cluster-'));
  const controllerStore = ControllerStore.create({ url: redis.url, controllerId: 0, leaseMs: 3000 });
  controller = Controller.create({ config: config(0), store: controllerStore });
  await controller.start();
  await until('the controller holds the lease', () => controller.isActive());

  const brokerStore = nodeStore(1);
  await brokerStore.start();
  broker = Broker.create({ config: config(1, { 'log.dirs': join(dir, 'broker-1'), 'num.partitions': '2' }), metadata: brokerStore, cluster: { rpcListener: '127.0.0.1:0' },
    // What the cli gives a cluster broker: the group APIs advertised (kafkajs needs them in the
    // bootstrap broker's ApiVersions), each answering NOT_COORDINATOR.
    extraHandlers: notCoordinatorHandlers() });
  await broker.start();
}, 60_000);

afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  await broker?.stop().catch(() => {});
  await controller?.stop().catch(() => {});
  await redis?.stop().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('CoordinatorNode in a cluster (controller + broker + coordinator, real Redis)', () => {
  it('kafkajs commits and fetches offsets through the coordinator node; they survive its restart', async () => {
    let { node, store } = await startCoordinatorNode();
    await node.registered();
    // The controller creates __consumer_offsets on the broker and gives every partition to node 2.
    await until('offsets partitions assigned and loaded', () => loadedEverything(node));
    const snap = store.snapshot();
    expect(snap.topics.get(OFFSETS_TOPIC)!.partitions.every((p) => p.leader === 1)).toBe(true);
    expect([...snap.coordinators.values()].every((a) => a.nodeId === 2)).toBe(true);
    expect(snap.brokers.get(2)).toMatchObject({ roles: ['coordinator'], rpc: node.rpcAddress(), port: node.address().port });

    const kafka = new Kafka({
      clientId: 'cluster-test',
      brokers: [`127.0.0.1:${broker.address().port}`],
      logLevel: process.env.KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.NOTHING,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const admin = kafka.admin();
    stops.push(() => admin.disconnect());
    await admin.connect();
    // The topic is auto-created by the producer's Metadata request (num.partitions=2 on the
    // broker). admin.createTopics is avoided: kafkajs sends it to Metadata's controllerId, the
    // Runnel controller's node id, which is not in the broker list.
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'orders', messages: [0, 1, 2, 3, 4].map((i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 2 })) });
    await producer.disconnect();

    // A consumer group: JoinGroup/SyncGroup/OffsetCommit all go to node 2 (the broker only says where it is).
    const consumer = kafka.consumer({ groupId: 'cluster-group', sessionTimeout: 10_000, heartbeatInterval: 500 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    const seen: string[] = [];
    await consumer.run({ autoCommitThreshold: 1, eachMessage: async ({ message }) => { seen.push(message.value!.toString()); } });
    await until('all records consumed', () => seen.length >= 5);
    await consumer.disconnect();
    expect(seen.sort()).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    expect(node.coordinator.machine.group('cluster-group')).toBeDefined();

    // Lag over RPC: high watermarks from 'broker.offsets', record timestamps from 'broker.recordTimestamp'.
    const registry = createMetricsRegistry();
    node.registerMetrics(registry);
    await node.refreshLag();
    const lag = node.lagSources();
    expect(lag.logEndOffset('orders', 0)).toBe(3n);
    expect(lag.logEndOffset('orders', 1)).toBe(2n);
    expect(lag.logEndOffset('orders', 7)).toBe(-1n);
    expect(await lag.recordTimestamp('orders', 0, 2n)).toBeGreaterThan(0n);
    expect(await lag.recordTimestamp('orders', 0, 99n)).toBeNull();
    const text = await registry.metrics();
    expect(text).toContain('runnel_consumergroup_lag{group="cluster-group",topic="orders",partition="0"} 0');
    expect(text).toContain('runnel_consumergroup_committed_offset{group="cluster-group",topic="orders",partition="0"} 3');

    const expected = [{ partition: 0, offset: '3', metadata: null }, { partition: 1, offset: '2', metadata: null }];
    const fetch = async () => (await admin.fetchOffsets({ groupId: 'cluster-group', topics: ['orders'] }))[0]!.partitions.sort((a, b) => a.partition - b.partition);
    expect(await fetch()).toEqual(expected);

    // Restart the coordinator node on the same id: it loads the offsets back from the broker over RPC.
    await node.stop();
    await store.stop();
    ({ node, store } = await startCoordinatorNode());
    stops.push(() => node.stop());
    await until('offsets partitions reloaded', () => loadedEverything(node));
    expect(node.coordinator.machine.fetchOffsets({ groupId: 'cluster-group', topics: null }).topics[0]!.partitions.map((p) => p.committedOffset).sort()).toEqual([2n, 3n]);
    expect(await fetch()).toEqual(expected);
    coordinatorNode = node;
  }, 60_000);

  it('@platformatic/kafka, bootstrapped on the broker, joins a group on the coordinator node and commits', async () => {
    const node = coordinatorNode!;
    expect(node).toBeDefined();
    const consumer = new Consumer({ groupId: 'plt-group', clientId: 'plt', bootstrapBrokers: [`127.0.0.1:${broker.address().port}`], deserializers: stringDeserializers, maxWaitTime: 100, sessionTimeout: 10_000, heartbeatInterval: 500 });
    const stream = await consumer.consume({ topics: ['orders'], mode: MessagesStreamModes.EARLIEST, autocommit: 100 });
    stops.push(async () => { await stream.close().catch(() => {}); await consumer.close(true).catch(() => {}); });
    const got: string[] = [];
    stream.on('data', (m) => got.push(m.value));
    await until('platformatic read the topic', () => got.length >= 5);
    expect(got.sort()).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    await until('platformatic committed on the coordinator node', () => {
      const offsets = node.coordinator.machine.fetchOffsets({ groupId: 'plt-group', topics: null });
      return offsets.topics[0]?.partitions.map((p) => p.committedOffset).sort().join(',') === '2,3';
    });
    expect(node.coordinator.machine.groupState('plt-group')).toBe('Stable');
  }, 60_000);
});
