// A broker in cluster mode over a real LocalStore, reached the way other nodes reach it: the
// broker.* methods through a real RpcClient, FindCoordinator over the Kafka listener. (LocalStore
// never assigns coordinators; the metadata-driven answers are covered through locateCoordinator.)
import { Buffer } from 'node:buffer';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OFFSETS_TOPIC, resolveConfig, TRANSACTION_STATE_TOPIC } from '@runnel/common';
import { LocalStore, type MetadataSnapshot } from '@runnel/metadata';
import { ApiKey, decodeRecordBatches, encodeRecordBatch, ErrorCode, partitionForGroup } from '@runnel/protocol';
import { RpcClient, RpcError } from '@runnel/rpc';
import { kafkaRequest } from '../../../test/helpers/raw-kafka.ts';
import { until } from '../../../test/helpers/until.ts';
import { Broker } from '../src/index.ts';
import { locateCoordinator } from '../src/handlers/find-coordinator.ts';

let dir: string;
let store: LocalStore;
let broker: Broker;
let rpc: RpcClient;

async function startBroker(cluster: boolean): Promise<void> {
  const { config } = resolveConfig({
    overrides: new Map([['listeners', 'PLAINTEXT://127.0.0.1:0'], ['log.dirs', join(dir, 'logs')], ['node.id', '1']]),
  });
  store = LocalStore.create({ path: join(dir, 'meta.json'), nodeId: 1 });
  await store.start();
  broker = Broker.create({ config, metadata: store, ...(cluster ? { cluster: { rpcListener: '127.0.0.1:0' } } : {}) });
  await broker.start();
  const at = broker.rpcAddress();
  if (at) rpc = RpcClient.create({ ...at, requestTimeoutMs: 10_000 });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnel-broker-cluster-'));
});

afterEach(async () => {
  rpc?.close();
  await broker?.stop();
  await store?.stop();
  await rm(dir, { recursive: true, force: true });
});

const batch = (values: string[], timestamp: number) => encodeRecordBatch({ records: values.map((v, i) => ({ value: v, timestamp: timestamp + i })) });

/** The remote code of a refused call (fails the test if the call succeeded). */
async function remoteCode(call: Promise<unknown>): Promise<string | undefined> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RpcError);
  expect((err as RpcError).code).toBe('REMOTE');
  return (err as RpcError).remoteCode;
}

describe('broker cluster mode', () => {
  it('registers with its RPC address and the broker role', async () => {
    await startBroker(true);
    const me = store.snapshot().brokers.get(1)!;
    expect(me.rpc).toEqual(broker.rpcAddress());
    expect(me.rpc!.port).toBeGreaterThan(0);
    expect(me.roles).toEqual(['broker']);
    expect(me.port).toBe(broker.address().port);
  });

  it('appends, reads, reports offsets and record timestamps over RPC', async () => {
    await startBroker(true);
    await store.createTopic({ name: 't', partitions: 2, replicationFactor: 1 });
    const first = await rpc.call('broker.append', { topic: 't', partition: 1, records: batch(['a', 'b', 'c'], 1_000), coordinatorEpoch: -1 });
    expect(first).toEqual({ baseOffset: 0n, lastOffset: 2n });
    const second = await rpc.call('broker.append', { topic: 't', partition: 1, records: batch(['d', 'e'], 2_000), coordinatorEpoch: -1 });
    expect(second).toEqual({ baseOffset: 3n, lastOffset: 4n });

    // maxBytes 1 still returns the first whole batch, and only it.
    const one = await rpc.call('broker.read', { topic: 't', partition: 1, offset: 0n, maxBytes: 1, coordinatorEpoch: -1 });
    expect(one.highWatermark).toBe(5n);
    expect(one.logStartOffset).toBe(0n);
    expect(decodeRecordBatches(one.records).flatMap((b) => b.records.map((r) => r.value!.toString()))).toEqual(['a', 'b', 'c']);
    const all = await rpc.call('broker.read', { topic: 't', partition: 1, offset: 3n, maxBytes: 1 << 20, coordinatorEpoch: -1 });
    expect(decodeRecordBatches(all.records).flatMap((b) => b.records.map((r) => [r.offset, r.value!.toString()]))).toEqual([[3n, 'd'], [4n, 'e']]);
    expect((await rpc.call('broker.read', { topic: 't', partition: 1, offset: 5n, maxBytes: 1 << 20, coordinatorEpoch: -1 })).records.length).toBe(0);
    expect(await remoteCode(rpc.call('broker.read', { topic: 't', partition: 1, offset: 6n, maxBytes: 100, coordinatorEpoch: -1 }))).toBe('OFFSET_OUT_OF_RANGE');

    const offsets = await rpc.call('broker.offsets', { partitions: [{ topic: 't', partition: 1 }, { topic: 't', partition: 0 }, { topic: 'nope', partition: 0 }] });
    expect(offsets.partitions).toEqual([
      { topic: 't', partition: 1, error: '', highWatermark: 5n, logStartOffset: 0n },
      { topic: 't', partition: 0, error: '', highWatermark: 0n, logStartOffset: 0n },
      { topic: 'nope', partition: 0, error: 'UNKNOWN_PARTITION', highWatermark: -1n, logStartOffset: -1n },
    ]);

    expect(await rpc.call('broker.recordTimestamp', { topic: 't', partition: 1, offset: 1n })).toEqual({ timestamp: 1_001n });
    expect(await rpc.call('broker.recordTimestamp', { topic: 't', partition: 1, offset: 4n })).toEqual({ timestamp: 2_001n });
    expect(await rpc.call('broker.recordTimestamp', { topic: 't', partition: 1, offset: 5n })).toEqual({ timestamp: -1n });
  });

  it('fences coordinators on __consumer_offsets by the highest epoch any call carried, not only by metadata', async () => {
    await startBroker(true);
    await store.createTopic({ name: OFFSETS_TOPIC, partitions: 1, replicationFactor: 1, internal: true });
    const append = (coordinatorEpoch: number, v: string) => rpc.call('broker.append', { topic: OFFSETS_TOPIC, partition: 0, records: batch([v], 1_000), coordinatorEpoch });
    const load = (coordinatorEpoch: number) => rpc.call('broker.read', { topic: OFFSETS_TOPIC, partition: 0, offset: 0n, maxBytes: 1 << 20, coordinatorEpoch });
    // LocalStore assigns no coordinators: metadata knows no epoch, the calls teach the broker.
    await append(3, 'old owner');
    await load(4); // a new owner loads under epoch 4: from now on epoch 3 is fenced
    expect(await remoteCode(append(3, 'late write of the old owner'))).toBe('NOT_COORDINATOR');
    expect(await remoteCode(load(3))).toBe('NOT_COORDINATOR');
    await append(4, 'new owner');
    // Plain appends (epoch -1) and other topics are not coordinator calls.
    await rpc.call('broker.append', { topic: OFFSETS_TOPIC, partition: 0, records: batch(['admin'], 1_000), coordinatorEpoch: -1 });
    const values = decodeRecordBatches((await load(4)).records).flatMap((b) => b.records.map((r) => r.value!.toString()));
    expect(values).toEqual(['old owner', 'new owner', 'admin']);

    // __transaction_state partition 2 goes with __consumer_offsets partition 2 % 1 = 0: the new
    // owner's epoch 4 already fences the old owner's transaction-state writes there too.
    await store.createTopic({ name: TRANSACTION_STATE_TOPIC, partitions: 3, replicationFactor: 1, internal: true });
    const txnAppend = (coordinatorEpoch: number) => rpc.call('broker.append', { topic: TRANSACTION_STATE_TOPIC, partition: 2, records: batch(['txn'], 1_000), coordinatorEpoch });
    await until('__transaction_state-2 led here', async () => (await txnAppend(4).then(() => true, () => false)) || undefined, 10_000);
    expect(await remoteCode(txnAppend(3))).toBe('NOT_COORDINATOR');

    // A group coordinator's transaction marker on __consumer_offsets is fenced the same way: the
    // old owner's (epoch 3) is refused and writes nothing, the new owner's is written; without an
    // epoch (the transaction coordinator's markers) nothing is fenced.
    const marker = (groupCoordinatorEpoch?: number) => rpc.call('broker.writeTxnMarkers', {
      markers: [{ producerId: 7n, producerEpoch: 0, coordinatorEpoch: 0, commit: true, partitions: [{ topic: OFFSETS_TOPIC, partition: 0 }] }],
      ...(groupCoordinatorEpoch === undefined ? {} : { groupCoordinatorEpoch }),
    }).then((r) => r.markers[0]!.partitions[0]!.error);
    const end = async () => (await rpc.call('broker.offsets', { partitions: [{ topic: OFFSETS_TOPIC, partition: 0 }] })).partitions[0]!.highWatermark;
    const before = await end();
    expect(await marker(3)).toBe('NOT_COORDINATOR');
    expect(await end()).toBe(before);
    expect(await marker(4)).toBe('');
    expect(await marker()).toBe('');
    expect(await end()).toBe(before + 2n);
  });

  it('a takeover load covers every append of the old owner it let through (or the append is refused)', async () => {
    await startBroker(true);
    await store.createTopic({ name: OFFSETS_TOPIC, partitions: 1, replicationFactor: 1, internal: true });
    for (let epoch = 1; epoch <= 20; epoch++) {
      // The old owner's last commit and the new owner's first read, racing in the same tick.
      const late = rpc.call('broker.append', { topic: OFFSETS_TOPIC, partition: 0, records: batch([`e${epoch - 1}`], 1_000), coordinatorEpoch: epoch - 1 })
        .then((r) => r, (err: RpcError) => err.remoteCode);
      const takeover = await rpc.call('broker.read', { topic: OFFSETS_TOPIC, partition: 0, offset: 0n, maxBytes: 1 << 20, coordinatorEpoch: epoch });
      const outcome = await late;
      if (outcome === 'NOT_COORDINATOR') continue;
      expect(typeof outcome).toBe('object');
      expect((outcome as { lastOffset: bigint }).lastOffset).toBeLessThan(takeover.highWatermark);
    }
  });

  it('reads only below the high watermark', async () => {
    await startBroker(true);
    await store.createTopic({ name: 'hw', partitions: 1, replicationFactor: 1 });
    await rpc.call('broker.append', { topic: 'hw', partition: 0, records: batch(['committed'], 1), coordinatorEpoch: -1 });
    // Written but not committed: what a leader holds before its followers caught up.
    await broker.logs.getLog('hw', 0)!.append(batch(['pending'], 2), { leaderEpoch: 0 });
    const r = await rpc.call('broker.read', { topic: 'hw', partition: 0, offset: 0n, maxBytes: 1 << 20, coordinatorEpoch: -1 });
    expect(r.highWatermark).toBe(1n);
    expect(decodeRecordBatches(r.records).flatMap((b) => b.records.map((x) => x.value!.toString()))).toEqual(['committed']);
    expect((await rpc.call('broker.read', { topic: 'hw', partition: 0, offset: 1n, maxBytes: 1 << 20, coordinatorEpoch: -1 })).records.length).toBe(0);
    expect(await rpc.call('broker.recordTimestamp', { topic: 'hw', partition: 0, offset: 1n })).toEqual({ timestamp: -1n });
  });

  it('refuses partitions led by another node (NOT_LEADER) and unknown ones', async () => {
    await startBroker(true);
    await store.registerBroker({ nodeId: 2, host: '127.0.0.1', port: 1, rack: null });
    await store.createTopic({ name: 'elsewhere', partitions: 1, replicationFactor: 1, assignments: [[2]] });
    const append = rpc.call('broker.append', { topic: 'elsewhere', partition: 0, records: batch(['x'], 1), coordinatorEpoch: -1 });
    expect(await remoteCode(append)).toBe('NOT_LEADER');
    expect(await remoteCode(rpc.call('broker.read', { topic: 'elsewhere', partition: 0, offset: 0n, maxBytes: 100, coordinatorEpoch: -1 }))).toBe('NOT_LEADER');
    expect(await remoteCode(rpc.call('broker.recordTimestamp', { topic: 'elsewhere', partition: 0, offset: 0n }))).toBe('NOT_LEADER');
    expect((await rpc.call('broker.offsets', { partitions: [{ topic: 'elsewhere', partition: 0 }] })).partitions[0]!.error).toBe('NOT_LEADER');
    expect(await remoteCode(rpc.call('broker.read', { topic: 'missing', partition: 0, offset: 0n, maxBytes: 100, coordinatorEpoch: -1 }))).toBe('UNKNOWN_PARTITION');
    expect(broker.logs.getLog('elsewhere', 0)).toBeUndefined();
  });

  it('answers FindCoordinator from metadata: no offsets topic or no owner is COORDINATOR_NOT_AVAILABLE', async () => {
    await startBroker(true);
    const none = await kafkaRequest(broker.address().port, ApiKey.FindCoordinator, 3, { key: 'g', keyType: 0 });
    expect(none).toMatchObject({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, nodeId: -1 });
    await store.createTopic({ name: '__consumer_offsets', partitions: 3, replicationFactor: 1, internal: true });
    const v4 = await kafkaRequest(broker.address().port, ApiKey.FindCoordinator, 4, { keyType: 0, coordinatorKeys: ['a', 'b'] });
    expect(v4.coordinators.map((c) => [c.key, c.errorCode])).toEqual([['a', ErrorCode.COORDINATOR_NOT_AVAILABLE], ['b', ErrorCode.COORDINATOR_NOT_AVAILABLE]]);
    expect(v4.coordinators[0]!.errorMessage).toMatch(/no coordinator owns __consumer_offsets-\d/);
  });

  it('stops serving RPC when it stops', async () => {
    await startBroker(true);
    await store.createTopic({ name: 's', partitions: 1, replicationFactor: 1 });
    await rpc.call('broker.offsets', { partitions: [{ topic: 's', partition: 0 }] });
    await broker.stop();
    const err = await rpc.call('broker.offsets', { partitions: [] }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(['UNAVAILABLE', 'CLOSED']).toContain((err as RpcError).code);
    broker = undefined as never;
  });
});

describe('broker single-node mode', () => {
  it('has no RPC service and leaves FindCoordinator to the co-located coordinator', async () => {
    await startBroker(false);
    expect(broker.rpcAddress()).toBeNull();
    expect(store.snapshot().brokers.get(1)).toMatchObject({ roles: ['broker'], rpc: null });
    const versions = await kafkaRequest(broker.address().port, ApiKey.ApiVersions, 3, { clientSoftwareName: 't', clientSoftwareVersion: '1' });
    const keys = versions.apiKeys.map((k) => k.apiKey);
    expect(keys).toContain(ApiKey.Metadata);
    expect(keys).not.toContain(ApiKey.FindCoordinator);
  });
});

describe('locateCoordinator', () => {
  const node = (nodeId: number) => ({ nodeId, host: `n${nodeId}.example`, port: 9000 + nodeId, rack: null, brokerEpoch: 1, roles: ['coordinator' as const], rpc: null });
  const internalTopic = (name: string, count: number) => [name, {
    name, topicId: '0'.repeat(32), internal: true, configs: {},
    partitions: Array.from({ length: count }, (_, partition) => ({ partition, leader: 1, leaderEpoch: 0, replicas: [1], isr: [1], version: 0 })),
  }] as const;
  const snapshot = (coordinators: [number, { nodeId: number; epoch: number }][], live: number[], txnPartitions = 0): MetadataSnapshot => ({
    clusterId: 'c',
    controllerId: 0,
    brokers: new Map(live.map((id) => [id, node(id)])),
    topics: new Map([internalTopic('__consumer_offsets', 4), ...(txnPartitions > 0 ? [internalTopic('__transaction_state', txnPartitions)] : [])]),
    epoch: 1,
    coordinators: new Map(coordinators),
    controllerRpc: null,
  });

  it('maps a group through its offsets partition and the partition owner to the live node', () => {
    const owners: [number, { nodeId: number; epoch: number }][] = [[0, { nodeId: 7, epoch: 1 }], [1, { nodeId: 8, epoch: 1 }], [2, { nodeId: 7, epoch: 2 }], [3, { nodeId: 8, epoch: 1 }]];
    const snap = snapshot(owners, [1, 7, 8]);
    for (const group of ['a', 'orders', 'group-42', 'zz']) {
      const owner = new Map(owners).get(partitionForGroup(group, 4))!.nodeId;
      expect(locateCoordinator(snap, group, 0)).toEqual({ nodeId: owner, host: `n${owner}.example`, port: 9000 + owner });
    }
  });

  it('maps a transactional id through its __transaction_state partition q to the owner of __consumer_offsets partition q % 4', () => {
    const owners: [number, { nodeId: number; epoch: number }][] = [[0, { nodeId: 7, epoch: 1 }], [1, { nodeId: 8, epoch: 1 }], [2, { nodeId: 9, epoch: 2 }], [3, { nodeId: 10, epoch: 1 }]];
    const snap = snapshot(owners, [1, 7, 8, 9, 10], 50);
    for (const id of ['tx-a', 'copier-1', 'zz', 'a-much-longer-transactional-id']) {
      const owner = new Map(owners).get(partitionForGroup(id, 50) % 4)!.nodeId;
      expect(locateCoordinator(snap, id, 1)).toEqual({ nodeId: owner, host: `n${owner}.example`, port: 9000 + owner });
    }
    // No __transaction_state yet: retriable, and its creation is asked for.
    let asked = 0;
    expect(locateCoordinator(snapshot(owners, [1, 7, 8, 9, 10]), 'tx-a', 1, () => asked++)).toMatchObject({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE });
    expect(asked).toBe(1);
  });

  it('is COORDINATOR_NOT_AVAILABLE without an owner or a live owner; an unknown key type is INVALID_REQUEST', () => {
    const group = 'g';
    const p = partitionForGroup(group, 4);
    expect(locateCoordinator(snapshot([], [1]), group, 0)).toMatchObject({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE });
    expect(locateCoordinator(snapshot([[p, { nodeId: 9, epoch: 3 }]], [1]), group, 0))
      .toEqual({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: `the coordinator of __consumer_offsets-${p} (node 9) is not live` });
    expect(locateCoordinator(snapshot([[p, { nodeId: 1, epoch: 3 }]], [1]), group, 5)).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST });
  });
});
