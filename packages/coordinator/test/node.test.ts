import { afterEach, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, resolveConfig } from '@runnel/common';
import type { TopicMetadata } from '@runnel/metadata';
import { CoordinatorNode, partitionForGroup } from '../src/index.ts';
import { partitionForTransactionalId } from '../src/txn-coordinator.ts';
import { BROKER, startRpcBroker, type RpcBroker, type SnapshotStore } from './rpc-broker.ts';

/**
 * Two CoordinatorNodes (ids 7 and 8) with their own Kafka listeners, over a real RPC broker
 * serving `__consumer_offsets` from storage (rpc-broker.ts), reached by kafkajs. The metadata
 * (who coordinates which partition) is a snapshot the test moves, as the controller would.
 */

const PARTITIONS = 3;

function config(nodeId: number, offsetsPartitions = PARTITIONS) {
  return resolveConfig({
    overrides: new Map([
      ['node.id', String(nodeId)],
      ['listeners', 'PLAINTEXT://127.0.0.1:0'],
      ['offsets.topic.num.partitions', String(offsetsPartitions)],
      ['group.initial.rebalance.delay.ms', '0'],
    ]),
  }).config;
}

function groupOn(p: number): string {
  for (let i = 0; ; i++) if (partitionForGroup(`g-${i}`, PARTITIONS) === p) return `g-${i}`;
}

const ORDERS: TopicMetadata = {
  name: 'orders',
  topicId: '1'.repeat(32),
  internal: false,
  configs: {},
  partitions: [{ partition: 0, leader: BROKER, leaderEpoch: 0, replicas: [BROKER], isr: [BROKER], version: 0 }],
};

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const loaded = (n: CoordinatorNode, p: number) => n.coordinator.machine.ownedPartitions().get(p) === 'loaded';

async function setup(): Promise<{ broker: RpcBroker; store: SnapshotStore; a: CoordinatorNode; b: CoordinatorNode }> {
  const broker = await startRpcBroker(PARTITIONS);
  cleanup.push(() => broker.stop());
  // Node 7 coordinates partition 0, node 8 partitions 1 and 2.
  const store = broker.store((p) => (p === 0 ? 7 : 8));
  store.update({ topics: new Map([...store.snap.topics, ['orders', ORDERS]]) }, { type: 'topic-created', topic: ORDERS });
  const a = CoordinatorNode.create({ config: config(7), metadata: store });
  const b = CoordinatorNode.create({ config: config(8), metadata: store });
  for (const n of [a, b]) {
    await n.start();
    cleanup.push(() => n.stop());
  }
  await a.registered();
  await b.registered();
  await until('partitions loaded', () => loaded(a, 0) && loaded(b, 1) && loaded(b, 2));
  return { broker, store, a, b };
}

function admin(node: CoordinatorNode) {
  const kafka = new Kafka({ clientId: 'node-test', brokers: [`127.0.0.1:${node.address().port}`], logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 50, maxRetryTime: 500 } });
  const a = kafka.admin();
  cleanup.push(() => a.disconnect());
  return a;
}

const commitOn = (n: CoordinatorNode, groupId: string, offset: bigint) =>
  n.coordinator.execute(n.coordinator.machine.commitOffsets({
    groupId, generationId: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1,
    topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null }] }],
  })).then((r) => r.topics[0]!.partitions[0]!.error);

describe('CoordinatorNode', () => {
  it('registers as a coordinator with its RPC listener (transaction markers), under its bound port, and shows in Metadata', async () => {
    const { store, a, b } = await setup();
    const mine = store.registrations.find((r) => r.nodeId === 7)!;
    expect(mine).toMatchObject({ roles: ['coordinator'], rpc: a.rpcAddress(), host: '127.0.0.1', port: a.address().port });
    expect(mine.rpc!.port).toBeGreaterThan(0);
    expect(a.advertisedAddress()).toEqual({ host: '127.0.0.1', port: a.address().port });
    const c = admin(a);
    await c.connect();
    const cluster = await c.describeCluster();
    expect(cluster.brokers.map((x) => x.nodeId).sort()).toEqual([BROKER, 7, 8]);
    expect(cluster.brokers.find((x) => x.nodeId === 8)!.port).toBe(b.address().port);
  });

  it('FindCoordinator on the wrong node redirects; ownership follows metadata, the new owner replays the committed offsets', async () => {
    const { broker, store, a, b } = await setup();
    const g = groupOn(1);
    expect(await commitOn(b, g, 42n)).toBe('NONE');
    // Node 7 does not own partition 1: it refuses to serve the group itself...
    expect(await commitOn(a, g, 1n)).toBe('NOT_COORDINATOR');

    // ...and kafkajs bootstrapped on node 7 is sent to node 8 by FindCoordinator.
    const viaA = admin(a);
    await viaA.connect();
    expect(await viaA.fetchOffsets({ groupId: g, topics: ['orders'] })).toEqual([{ topic: 'orders', partitions: [{ partition: 0, offset: '42', metadata: null }] }]);

    // The controller moves partition 1 to node 7 (epoch 4); the broker learns it too.
    broker.view.set(1, { nodeId: 7, epoch: 4 });
    const coordinators = new Map(store.snap.coordinators);
    coordinators.set(1, { nodeId: 7, epoch: 4 });
    store.update({ coordinators }, { type: 'coordinators-changed' });
    await until('partition 1 moved', () => loaded(a, 1) && !b.coordinator.machine.ownedPartitions().has(1));
    expect(a.coordinator.owned()).toEqual([0, 1]);
    expect(b.coordinator.owned()).toEqual([2]);
    expect(await commitOn(b, g, 43n)).toBe('NOT_COORDINATOR');

    // Bootstrapped on node 8 now, the client is sent to node 7, which loaded the offset.
    const viaB = admin(b);
    await viaB.connect();
    expect(await viaB.fetchOffsets({ groupId: g, topics: ['orders'] })).toEqual([{ topic: 'orders', partitions: [{ partition: 0, offset: '42', metadata: null }] }]);
    expect(await commitOn(a, g, 44n)).toBe('NONE');
    expect(await viaB.fetchOffsets({ groupId: g, topics: ['orders'] })).toEqual([{ topic: 'orders', partitions: [{ partition: 0, offset: '44', metadata: null }] }]);
  });

  it('hashes groups over the partitions __consumer_offsets has, not over its own offsets.topic.num.partitions', async () => {
    const { broker, store } = await setup();
    // A third node configured for Kafka's default 50 partitions, over a topic of 3.
    const c = CoordinatorNode.create({ config: config(9, 50), metadata: store });
    await c.start();
    cleanup.push(() => c.stop());
    const g = groupOn(2);
    expect(partitionForGroup(g, 50)).not.toBe(2);
    broker.view.set(2, { nodeId: 9, epoch: 7 });
    store.update({ coordinators: new Map([...store.snap.coordinators, [2, { nodeId: 9, epoch: 7 }]]) }, { type: 'coordinators-changed' });
    await until('node 9 owns partition 2', () => loaded(c, 2));
    expect(await commitOn(c, g, 3n)).toBe('NONE');
  });

  it('hashes transactional ids over the partitions __transaction_state has once another node created it, not over its own setting', async () => {
    const { store, a } = await setup();
    // Node 7 started before the topic existed, configured for Kafka's default 50.
    expect(a.coordinator.transactions!.partitions).toBe(50);
    const txnState: TopicMetadata = {
      name: TRANSACTION_STATE_TOPIC, topicId: '2'.repeat(32), internal: true, configs: {},
      partitions: Array.from({ length: 4 }, (_, partition) => ({ partition, leader: BROKER, leaderEpoch: 0, replicas: [BROKER], isr: [BROKER], version: 0 })),
    };
    store.update({ topics: new Map([...store.snap.topics, [TRANSACTION_STATE_TOPIC, txnState]]) }, { type: 'topic-created', topic: txnState });
    expect(a.coordinator.transactions!.partitions).toBe(4);
    const id = Array.from({ length: 100 }, (_, i) => `tx-${i}`).find((t) => partitionForTransactionalId(t, 4) !== partitionForTransactionalId(t, 50) % 4)!;
    expect(a.coordinator.transactions!.partitionFor(id)).toBe(partitionForTransactionalId(id, 4));
  });

  it('gives up, through onFatal, when __consumer_offsets turns out to have another partition count', async () => {
    const { store } = await setup();
    const fatal: Error[] = [];
    const c = CoordinatorNode.create({ config: config(9), metadata: store, onFatal: (err) => fatal.push(err) });
    await c.start();
    cleanup.push(() => c.stop());
    const offsets = store.snap.topics.get(OFFSETS_TOPIC)!;
    const grown = { ...offsets, partitions: [...offsets.partitions, { ...offsets.partitions[0]!, partition: PARTITIONS }] };
    store.update({ topics: new Map([...store.snap.topics, [OFFSETS_TOPIC, grown]]), coordinators: new Map([...store.snap.coordinators, [0, { nodeId: 9, epoch: 9 }]]) }, { type: 'coordinators-changed' });
    await until('onFatal', () => fatal.length > 0);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.message).toContain(`has ${PARTITIONS + 1} partitions but this coordinator hashes groups over ${PARTITIONS}`);
    expect(c.coordinator.owned()).toEqual([]);
  });

  it('a partition regained under a newer epoch is reloaded (what the other owner wrote meanwhile is seen)', async () => {
    const { broker, store, a, b } = await setup();
    const g = groupOn(0);
    expect(await commitOn(a, g, 5n)).toBe('NONE');
    // Node 8 held partition 0 for a while and committed; node 7 missed both events and only sees
    // itself as the owner again, under epoch 5.
    broker.view.set(0, { nodeId: 8, epoch: 4 });
    // Its load retries until metadata gives it partition 0 (a load needs the epoch to read under).
    const taking = b.coordinator.setOwned([0, 1, 2]);
    store.update({ coordinators: new Map([...store.snap.coordinators, [0, { nodeId: 8, epoch: 4 }]]) }, { type: 'broker-registered', broker: store.registrations[0]! });
    await taking;
    await until('node 8 owns partition 0', () => loaded(b, 0));
    expect(await commitOn(b, g, 6n)).toBe('NONE');
    broker.view.set(0, { nodeId: 7, epoch: 5 });
    store.snap = { ...store.snap, coordinators: new Map([...store.snap.coordinators, [0, { nodeId: 7, epoch: 5 }]]) };
    store.update({}, { type: 'coordinators-changed' });
    await until('node 7 reloaded partition 0', () => loaded(a, 0) && a.coordinator.machine.fetchOffsets({ groupId: g, topics: null }).topics[0]?.partitions[0]?.committedOffset === 6n);
  });
});
