import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStore, MetadataError, type MetadataEvent } from '../src/index.ts';

describe('LocalStore', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'runnel-meta-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  const open = async (clusterId?: string) => {
    const store = LocalStore.create({ path: join(dir, 'meta.json'), nodeId: 1, clusterId });
    await store.start();
    return store;
  };

  it('creates topics, assigns replicas and survives a restart', async () => {
    const store = await open();
    await store.registerBroker({ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null });
    const events: MetadataEvent[] = [];
    store.subscribe((e) => events.push(e));
    const topic = await store.createTopic({ name: 'orders', partitions: 3, replicationFactor: 1, configs: { 'cleanup.policy': 'compact' } });
    expect(topic.partitions.map((p) => p.leader)).toEqual([1, 1, 1]);
    expect(topic.topicId).toMatch(/^[0-9a-f]{32}$/);
    expect(events.map((e) => e.type)).toEqual(['topic-created']);
    const epoch = store.snapshot().epoch;
    await store.stop();

    const again = await open(store.snapshot().clusterId);
    const snap = again.snapshot();
    expect(snap.epoch).toBe(epoch);
    expect(snap.topics.get('orders')?.configs).toEqual({ 'cleanup.policy': 'compact' });
    expect(snap.topics.get('orders')?.partitions).toHaveLength(3);
  });

  it('keeps dynamic broker configs (a node\'s and the cluster default) in the snapshot and across a restart', async () => {
    const store = await open();
    await store.alterBrokerConfigs(null, { 'leader.replication.throttled.rate': '1000' });
    await store.alterBrokerConfigs(1, { 'follower.replication.throttled.rate': '2000', 'leader.replication.throttled.rate': '3000' });
    await store.alterBrokerConfigs(1, { 'leader.replication.throttled.rate': null });
    const expected = new Map([['', { 'leader.replication.throttled.rate': '1000' }], ['1', { 'follower.replication.throttled.rate': '2000' }]]);
    expect(store.snapshot().brokerConfigs).toEqual(expected);
    await store.stop();
    const again = await open(store.snapshot().clusterId);
    expect(again.snapshot().brokerConfigs).toEqual(expected);
    // Removing a node's last config removes its entry.
    await again.alterBrokerConfigs(1, { 'follower.replication.throttled.rate': null });
    expect([...again.snapshot().brokerConfigs!.keys()]).toEqual(['']);
  });

  it('rejects duplicates, bad names and bad counts with typed errors and keeps state unchanged', async () => {
    const store = await open();
    await store.createTopic({ name: 't', partitions: 1, replicationFactor: 1 });
    await expect(store.createTopic({ name: 't', partitions: 1, replicationFactor: 1 })).rejects.toMatchObject({ code: 'TOPIC_ALREADY_EXISTS' });
    await expect(store.createTopic({ name: 'bad/name', partitions: 1, replicationFactor: 1 })).rejects.toBeInstanceOf(MetadataError);
    await expect(store.createTopic({ name: 'x', partitions: 0, replicationFactor: 1 })).rejects.toMatchObject({ code: 'INVALID_PARTITIONS' });
    await expect(store.createTopic({ name: 'y', partitions: 1, replicationFactor: 3 })).rejects.toMatchObject({ code: 'INVALID_REPLICATION_FACTOR' });
    await expect(store.createPartitions('t', 1)).rejects.toMatchObject({ code: 'INVALID_PARTITIONS' });
    expect([...store.snapshot().topics.keys()]).toEqual(['t']);
  });

  it('grows partitions, alters configs, deletes topics and allocates unique producer ids', async () => {
    const store = await open();
    await store.createTopic({ name: 't', partitions: 1, replicationFactor: 1 });
    expect((await store.createPartitions('t', 4)).partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3]);
    expect((await store.alterTopicConfigs('t', { 'retention.ms': '1000' })).configs).toEqual({ 'retention.ms': '1000' });
    expect((await store.alterTopicConfigs('t', { 'retention.ms': null })).configs).toEqual({});
    const ids = await Promise.all([store.allocateProducerId(), store.allocateProducerId(), store.allocateProducerId()]);
    expect(new Set(ids).size).toBe(3);
    await store.deleteTopic('t');
    await expect(store.deleteTopic('t')).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    const persisted = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8'));
    expect(persisted.topics).toEqual([]);
    expect(BigInt(persisted.nextProducerId)).toBe(3n);
  });

  it('refuses to delete __consumer_offsets, a Kafka internal topic', async () => {
    const store = await open();
    await store.createTopic({ name: '__consumer_offsets', partitions: 2, replicationFactor: 1, internal: true });
    const err = await store.deleteTopic('__consumer_offsets').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect(err).toMatchObject({ code: 'INVALID_TOPIC_NAME', message: 'Topic __consumer_offsets is a Kafka internal topic and may not be deleted' });
    expect(store.snapshot().topics.has('__consumer_offsets')).toBe(true);
  });

  it('one node: RF above 1 refused in Kafka\'s words; alterPartition keeps the controller\'s compare-and-set rules; nothing to hand over or elect', async () => {
    const store = await open();
    await expect(store.createTopic({ name: 'r', partitions: 1, replicationFactor: 2 })).rejects.toMatchObject({
      code: 'INVALID_REPLICATION_FACTOR', message: 'Replication factor: 2 larger than available brokers: 1.',
    });
    await store.registerBroker({ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null });
    expect(store.snapshot().brokers.get(1)!.incarnationId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    await store.createTopic({ name: 't', partitions: 2, replicationFactor: 1 });
    const p0 = store.snapshot().topics.get('t')!.partitions[0]!;
    const ask = (o: Partial<{ leaderEpoch: number; version: number; isr: number[]; partition: number; topic: string }>) =>
      store.alterPartition({ topic: 't', partition: 0, leaderEpoch: p0.leaderEpoch, version: p0.version, isr: [1], ...o });
    const epoch = store.snapshot().epoch;
    // The ISR it has already: committed as is, nothing written.
    expect(await ask({})).toEqual({ error: null, partition: p0 });
    expect(await ask({ leaderEpoch: 3 })).toEqual({ error: 'FENCED_LEADER_EPOCH', partition: p0 });
    expect(await ask({ version: 9 })).toEqual({ error: 'INVALID_UPDATE_VERSION', partition: p0 });
    expect(await ask({ isr: [] })).toEqual({ error: 'INELIGIBLE_REPLICA', partition: p0 });
    expect(await ask({ isr: [1, 2] })).toEqual({ error: 'INELIGIBLE_REPLICA', partition: p0 });
    expect(await ask({ topic: 'nope' })).toEqual({ error: 'UNKNOWN_TOPIC_OR_PARTITION', partition: null });
    expect(store.snapshot().epoch).toBe(epoch);

    const leads = store.snapshot().topics.get('t')!.partitions.length;
    expect(await store.controlledShutdown()).toEqual({ remaining: leads });
    expect(await store.electLeaders([{ topic: 't', partition: 1 }, { topic: 'nope', partition: 0 }], false)).toEqual([
      { topic: 't', partition: 1, error: 'ELECTION_NOT_NEEDED', message: expect.any(String) },
      { topic: 'nope', partition: 0, error: 'UNKNOWN_TOPIC_OR_PARTITION', message: expect.any(String) },
    ]);
    expect(await store.electLeaders(null, true)).toEqual([]);
    expect(store.snapshot().epoch).toBe(epoch);
  });

  it('refuses a state file from another cluster', async () => {
    const store = await open();
    await store.stop();
    await expect(open('another-cluster-id')).rejects.toMatchObject({ code: 'CLUSTER_ID_MISMATCH' });
  });
});
