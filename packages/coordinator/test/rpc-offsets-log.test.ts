import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RunnelError } from '@runnel/common';
import type { BrokerRegistration, CoordinatorAssignment, MetadataEvent, MetadataSnapshot, MetadataStore, TopicMetadata } from '@runnel/metadata';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { RpcServer, type RpcHandlers } from '@runnel/rpc';
import { defaultLogConfig, LogManager, type PartitionLog } from '@runnel/storage';
import { Coordinator, CoordinatorError, OFFSETS_TOPIC, offsetsTopicLogConfig, partitionForGroup, rpcOffsetsLog, type RpcOffsetsLog } from '../src/index.ts';
import { callHandler } from './wire.ts';

/**
 * rpcOffsetsLog against a real RpcServer whose 'broker.*' handlers serve real @runnel/storage
 * partition logs, and refuse a coordinator append older than the epoch in their own metadata view
 * (the rule cluster.md gives the broker). The metadata the coordinator reads is a snapshot the
 * test sets: which node leads each partition, at which RPC address, and who coordinates it.
 */

const PARTITIONS = 3;
const SELF = 7;
const BROKER = 1;

class SnapshotStore implements MetadataStore {
  snap: MetadataSnapshot;
  readonly #listeners = new Set<(e: MetadataEvent) => void>();
  constructor(snap: MetadataSnapshot) {
    this.snap = snap;
  }
  update(change: Partial<MetadataSnapshot>, event: MetadataEvent): void {
    this.snap = { ...this.snap, ...change, epoch: this.snap.epoch + 1 };
    for (const l of this.#listeners) l(event);
  }
  async start() {}
  async stop() {}
  snapshot() {
    return this.snap;
  }
  subscribe(listener: (e: MetadataEvent) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  registerBroker(): Promise<BrokerRegistration> {
    throw new Error('read-only');
  }
  createTopic(): Promise<TopicMetadata> {
    throw new Error('read-only');
  }
  deleteTopic(): Promise<void> {
    throw new Error('read-only');
  }
  createPartitions(): Promise<TopicMetadata> {
    throw new Error('read-only');
  }
  alterTopicConfigs(): Promise<TopicMetadata> {
    throw new Error('read-only');
  }
  allocateProducerId(): Promise<bigint> {
    throw new Error('read-only');
  }
}

class RefusedError extends RunnelError<'NOT_COORDINATOR' | 'NOT_LEADER'> {}

interface Fixture {
  dir: string;
  logs: LogManager;
  server: RpcServer;
  store: SnapshotStore;
  /** The broker's own view of who coordinates each partition (what it fences appends with). */
  brokerView: Map<number, CoordinatorAssignment>;
  /** Partitions the broker refuses as not led here. */
  notLeading: Set<number>;
  log: RpcOffsetsLog;
}

const fixtures: Fixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) {
    f.log.close();
    await f.server.stop();
    await f.logs.stop();
    await rm(f.dir, { recursive: true, force: true });
  }
});

async function fixture(o: { readChunkBytes?: number } = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-rpc-offsets-'));
  const logs = LogManager.create({ logDirs: [dir], defaults: defaultLogConfig });
  await logs.start();
  const partitionLogs: PartitionLog[] = [];
  for (let p = 0; p < PARTITIONS; p++) partitionLogs.push(await logs.createLog(OFFSETS_TOPIC, p, offsetsTopicLogConfig));
  const brokerView = new Map<number, CoordinatorAssignment>();
  const notLeading = new Set<number>();
  const led = (p: number) => {
    if (notLeading.has(p)) throw new RefusedError('NOT_LEADER', `${OFFSETS_TOPIC}-${p} is not led here`, { retriable: true });
    return partitionLogs[p]!;
  };
  const handlers: RpcHandlers = {
    'broker.append': async (req) => {
      const owner = brokerView.get(req.partition);
      if (req.coordinatorEpoch >= 0 && owner && req.coordinatorEpoch < owner.epoch) {
        throw new RefusedError('NOT_COORDINATOR', `epoch ${req.coordinatorEpoch} < ${owner.epoch}`);
      }
      const log = led(req.partition);
      const r = await log.append(req.records);
      if (r.lastOffset + 1n > log.highWatermark) log.highWatermark = r.lastOffset + 1n;
      return { baseOffset: r.baseOffset, lastOffset: r.lastOffset };
    },
    'broker.read': async (req) => {
      const log = led(req.partition);
      const r = await log.read(req.offset, req.maxBytes, { minOneBatch: true, maxOffset: log.highWatermark });
      return { records: r.records, highWatermark: r.highWatermark, logStartOffset: r.logStartOffset };
    },
    'broker.offsets': async (req) => ({
      partitions: req.partitions.map(({ topic, partition }) => {
        if (notLeading.has(partition)) return { topic, partition, error: 'NOT_LEADER', highWatermark: -1n, logStartOffset: -1n };
        const log = partitionLogs[partition]!;
        return { topic, partition, error: '', highWatermark: log.highWatermark, logStartOffset: log.logStartOffset };
      }),
    }),
  };
  const server = RpcServer.create({ host: '127.0.0.1', port: 0, handlers });
  await server.start();
  const rpc = server.address();
  const coordinators = new Map<number, CoordinatorAssignment>();
  for (let p = 0; p < PARTITIONS; p++) {
    coordinators.set(p, { nodeId: SELF, epoch: 3 });
    brokerView.set(p, { nodeId: SELF, epoch: 3 });
  }
  const store = new SnapshotStore({
    clusterId: 'test',
    controllerId: -1,
    controllerRpc: null,
    epoch: 1,
    brokers: new Map([[BROKER, { nodeId: BROKER, host: '127.0.0.1', port: 1, rack: null, brokerEpoch: 1, roles: ['broker'], rpc }]]),
    topics: new Map([[OFFSETS_TOPIC, {
      name: OFFSETS_TOPIC,
      topicId: '0'.repeat(32),
      internal: true,
      configs: {},
      partitions: Array.from({ length: PARTITIONS }, (_, p) => ({ partition: p, leader: BROKER, leaderEpoch: 0, replicas: [BROKER], isr: [BROKER], version: 0 })),
    }]]),
    coordinators,
  });
  const log = rpcOffsetsLog({ metadata: store, nodeId: SELF, partitions: PARTITIONS, readChunkBytes: o.readChunkBytes });
  const f = { dir, logs, server, store, brokerView, notLeading, log };
  fixtures.push(f);
  return f;
}

const rec = (k: string, v: string | null) => ({ key: Buffer.from(k), value: v === null ? null : Buffer.from(v) });

async function loadAll(log: RpcOffsetsLog, p: number): Promise<[string, string | null][]> {
  const out: [string, string | null][] = [];
  await log.load(p, (k, v) => out.push([k.toString(), v === null ? null : v.toString()]));
  return out;
}

async function rejection(p: Promise<unknown>): Promise<CoordinatorError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(CoordinatorError);
  return err as CoordinatorError;
}

function groupOn(p: number): string {
  for (let i = 0; ; i++) if (partitionForGroup(`g-${i}`, PARTITIONS) === p) return `g-${i}`;
}

describe('rpcOffsetsLog', () => {
  it('appends one batch per call to the leader and loads every record back in order, across many small reads', async () => {
    const f = await fixture({ readChunkBytes: 1 }); // one batch per read: the paging loop runs
    await f.log.append(1, [rec('a', '1'), rec('b', '1')]);
    await f.log.append(1, [rec('a', '2')]);
    await f.log.append(1, [rec('b', null)]);
    await f.log.append(2, [rec('z', '9')]);
    expect(await loadAll(f.log, 1)).toEqual([['a', '1'], ['b', '1'], ['a', '2'], ['b', null]]);
    expect(await loadAll(f.log, 2)).toEqual([['z', '9']]);
    expect(await loadAll(f.log, 0)).toEqual([]);
  });

  it('refuses an append to a partition metadata gives to another coordinator, without calling the broker', async () => {
    const f = await fixture();
    f.store.update({ coordinators: new Map([[0, { nodeId: 99, epoch: 4 }]]) }, { type: 'coordinators-changed' });
    expect((await rejection(f.log.append(0, [rec('a', '1')]))).code).toBe('NOT_COORDINATOR');
    expect(await loadAll(f.log, 0)).toEqual([]);
  });

  it('a stale coordinator epoch refused by the broker is NOT_COORDINATOR', async () => {
    const f = await fixture();
    // Our metadata still says epoch 3; the broker already knows the partition moved on to epoch 4.
    f.brokerView.set(0, { nodeId: 99, epoch: 4 });
    expect((await rejection(f.log.append(0, [rec('a', '1')]))).code).toBe('NOT_COORDINATOR');
    expect(await loadAll(f.log, 0)).toEqual([]);
  });

  it('an offline leader, a broker that does not lead it, or an unreachable broker is UNAVAILABLE (retriable)', async () => {
    const f = await fixture();
    f.notLeading.add(1);
    const notLeader = await rejection(f.log.append(1, [rec('a', '1')]));
    expect(notLeader.code).toBe('UNAVAILABLE');
    expect(notLeader.retriable).toBe(true);
    expect((await rejection(f.log.load(1, () => {}))).code).toBe('UNAVAILABLE');

    const topic = f.store.snap.topics.get(OFFSETS_TOPIC)!;
    const offline = { ...topic, partitions: topic.partitions.map((p) => (p.partition === 2 ? { ...p, leader: -1 } : p)) };
    f.store.update({ topics: new Map([[OFFSETS_TOPIC, offline]]) }, { type: 'topic-updated', topic: offline });
    expect((await rejection(f.log.append(2, [rec('a', '1')]))).code).toBe('UNAVAILABLE');

    await f.server.stop();
    expect((await rejection(f.log.append(0, [rec('a', '1')]))).code).toBe('UNAVAILABLE');
  });

  it('a coordinator over it commits, restarts and fetches; a stale epoch reaches the Kafka client as NOT_COORDINATOR', async () => {
    const f = await fixture();
    const start = async () => {
      const c = Coordinator.create({ offsetsLog: f.log, self: () => ({ nodeId: SELF, host: '127.0.0.1', port: 9 }), config: { 'group.initial.rebalance.delay.ms': 0 } });
      await c.start();
      return c;
    };
    const g = groupOn(1);
    const commit = (c: Coordinator, offset: bigint) => callHandler(c.handlers(), ApiKey.OffsetCommit, 8, {
      groupId: g, generationIdOrMemberEpoch: -1, memberId: '', groupInstanceId: null,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null }] }],
    });
    const first = await start();
    expect((await commit(first, 11n)).topics[0].partitions[0].errorCode).toBe(ErrorCode.NONE);
    await first.stop();

    const second = await start();
    const fetched = await callHandler(second.handlers(), ApiKey.OffsetFetch, 8, { groups: [{ groupId: g, topics: null }], requireStable: false });
    expect(fetched.groups[0].topics[0].partitions[0].committedOffset).toBe(11n);

    f.brokerView.set(1, { nodeId: 99, epoch: 4 });
    expect((await commit(second, 12n)).topics[0].partitions[0].errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    await second.stop();
  });
});
