import { afterEach, describe, expect, it } from 'vitest';
import { OFFSETS_TOPIC } from '@runnel/common';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { Coordinator, CoordinatorError, partitionForGroup, rpcOffsetsLog, type RpcOffsetsLog } from '../src/index.ts';
import { startRpcBroker, type RpcBroker, type SnapshotStore } from './rpc-broker.ts';
import { callHandler } from './wire.ts';

/**
 * rpcOffsetsLog against a real RpcServer whose 'broker.*' handlers serve real @runnel/storage
 * partition logs (rpc-broker.ts). The metadata the coordinator reads is a snapshot the test sets.
 */

const PARTITIONS = 3;
const SELF = 7;

interface Fixture {
  broker: RpcBroker;
  store: SnapshotStore;
  brokerView: RpcBroker['view'];
  notLeading: Set<number>;
  log: RpcOffsetsLog;
  server: RpcBroker['server'];
}

const fixtures: Fixture[] = [];
const extraBrokers: RpcBroker[] = [];
afterEach(async () => {
  for (const b of extraBrokers.splice(0)) await b.stop();
  for (const f of fixtures.splice(0)) {
    f.log.close();
    await f.broker.stop();
  }
});

async function fixture(o: { readChunkBytes?: number; appendRetryMs?: number; appendAttemptTimeoutMs?: number } = {}): Promise<Fixture> {
  const broker = await startRpcBroker(PARTITIONS);
  const store = broker.store(() => SELF);
  const log = rpcOffsetsLog({ metadata: store, nodeId: SELF, partitions: PARTITIONS, readChunkBytes: o.readChunkBytes, appendRetryMs: o.appendRetryMs, appendAttemptTimeoutMs: o.appendAttemptTimeoutMs });
  const f = { broker, store, brokerView: broker.view, notLeading: broker.notLeading, log, server: broker.server };
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

  it('writes transactional batches and markers, in call order, and loads them back with producer ids and markers', async () => {
    const f = await fixture();
    const txn = { producerId: 42n, producerEpoch: 3 };
    await Promise.all([
      f.log.append(1, [rec('plain', '1')]),
      f.log.append(1, [rec('t', '2')], txn),
      f.log.appendMarker(1, { ...txn, commit: true, coordinatorEpoch: 3 }),
      f.log.append(1, [rec('after', '3')]),
    ]);
    const seen: string[] = [];
    await f.log.load(1, (k, v, producerId) => seen.push(`${k}=${v} pid ${producerId}`), (producerId, commit) => seen.push(`marker ${producerId} ${commit ? 'COMMIT' : 'ABORT'}`));
    expect(seen).toEqual(['plain=1 pid -1', 't=2 pid 42', 'marker 42 COMMIT', 'after=3 pid -1']);
  });

  it('refuses an append to a partition metadata gives to another coordinator, without calling the broker', async () => {
    const f = await fixture();
    f.store.update({ coordinators: new Map([[0, { nodeId: 99, epoch: 4 }]]) }, { type: 'coordinators-changed' });
    expect((await rejection(f.log.append(0, [rec('a', '1')]))).code).toBe('NOT_COORDINATOR');
    // Nor does it load a partition it does not own.
    expect((await rejection(loadAll(f.log, 0))).code).toBe('NOT_COORDINATOR');
    f.store.update({ coordinators: new Map([[0, { nodeId: 7, epoch: 5 }]]) }, { type: 'coordinators-changed' });
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
    const f = await fixture({ appendRetryMs: 0 });
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

  it('an append whose leader moved goes again to the new leader metadata names, ahead of every later append to that partition', async () => {
    const f = await fixture();
    const other = await startRpcBroker(PARTITIONS);
    extraBrokers.push(other);
    f.notLeading.add(1); // node 1 lost the leadership: it answers NOT_LEADER
    const first = f.log.append(1, [rec('a', '1')]);
    const second = f.log.append(1, [rec('a', '2')]);
    const settled: string[] = [];
    void first.then(() => settled.push('first'));
    void second.then(() => settled.push('second'));
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toEqual([]); // still retrying: nothing was acknowledged by a broker that does not lead
    const topic = f.store.snap.topics.get(OFFSETS_TOPIC)!;
    const moved = { ...topic, partitions: topic.partitions.map((p) => (p.partition === 1 ? { ...p, leader: 2, leaderEpoch: 1, replicas: [1, 2], isr: [2], version: 1 } : p)) };
    const brokers = new Map([...f.store.snap.brokers, [2, { nodeId: 2, host: '127.0.0.1', port: 2, rack: null, brokerEpoch: 1, roles: ['broker' as const], rpc: other.rpc }]]);
    f.store.update({ topics: new Map([[OFFSETS_TOPIC, moved]]), brokers }, { type: 'topic-updated', topic: moved });
    await Promise.all([first, second]);
    expect(settled).toEqual(['first', 'second']);
    // Both landed on the new leader, the retried one first: a later commit is never overwritten by an older one.
    expect(await loadAll(f.log, 1)).toEqual([['a', '1'], ['a', '2']]);
  });

  it('an append a frozen leader never answers goes to the new leader after appendAttemptTimeoutMs', async () => {
    const f = await fixture({ appendAttemptTimeoutMs: 300 });
    const other = await startRpcBroker(PARTITIONS);
    extraBrokers.push(other);
    f.broker.stalled.add(1);
    const append = f.log.append(1, [rec('a', '1')]);
    const topic = f.store.snap.topics.get(OFFSETS_TOPIC)!;
    const moved = { ...topic, partitions: topic.partitions.map((p) => (p.partition === 1 ? { ...p, leader: 2, leaderEpoch: 1, replicas: [1, 2], isr: [2], version: 1 } : p)) };
    const brokers = new Map([...f.store.snap.brokers, [2, { nodeId: 2, host: '127.0.0.1', port: 2, rack: null, brokerEpoch: 1, roles: ['broker' as const], rpc: other.rpc }]]);
    f.store.update({ topics: new Map([[OFFSETS_TOPIC, moved]]), brokers }, { type: 'topic-updated', topic: moved });
    await append;
    expect(await loadAll(f.log, 1)).toEqual([['a', '1']]);
  });

  it('gives up after appendRetryMs with UNAVAILABLE, and never retries NOT_COORDINATOR', async () => {
    const f = await fixture({ appendRetryMs: 400 });
    f.notLeading.add(2);
    const err = await rejection(f.log.append(2, [rec('a', '1')]));
    expect(err.code).toBe('UNAVAILABLE');
    f.brokerView.set(0, { nodeId: 99, epoch: 4 });
    expect((await rejection(f.log.append(0, [rec('a', '1')]))).code).toBe('NOT_COORDINATOR');
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
