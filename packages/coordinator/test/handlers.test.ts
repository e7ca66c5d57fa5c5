import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Handler } from '@runnel/kafka-server';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { LogManager, defaultLogConfig } from '@runnel/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { Coordinator, ManualClock, MemoryOffsetsLog, encodeSubscription, logManagerOffsetsLog, type OffsetsLog } from '../src/index.ts';
import { callHandler } from './wire.ts';

const SELF = { nodeId: 7, host: 'coord.local', port: 19092 };

const call = callHandler;

async function coordinator(log: OffsetsLog = new MemoryOffsetsLog(5), clock = new ManualClock()) {
  const c = Coordinator.create({ offsetsLog: log, clock, self: () => SELF, config: { 'group.initial.rebalance.delay.ms': 0 } });
  await c.start();
  return { c, h: c.handlers(), clock, log };
}

const stopping: Coordinator[] = [];
afterEach(async () => {
  for (const c of stopping.splice(0)) await c.stop();
});

const subscription = encodeSubscription(['orders']);

/** One consumer through JoinGroup v4 (MEMBER_ID_REQUIRED), v5, SyncGroup v3: returns its member id. */
async function joinOne(h: Handler[], groupId = 'g1'): Promise<string> {
  const join = (memberId: string) =>
    call(h, ApiKey.JoinGroup, 5, {
      groupId,
      sessionTimeoutMs: 30_000,
      rebalanceTimeoutMs: 60_000,
      memberId,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'RoundRobinAssigner', metadata: subscription }],
    });
  const first = await join('');
  expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
  expect(first.memberId).toMatch(/^tester-[0-9a-f-]{36}$/);
  const joined = await join(first.memberId);
  expect(joined).toMatchObject({ errorCode: 0, generationId: 1, protocolName: 'RoundRobinAssigner', leader: first.memberId, memberId: first.memberId });
  expect(joined.members).toHaveLength(1);
  expect(Buffer.from(joined.members[0]!.metadata)).toEqual(subscription);
  const sync = await call(h, ApiKey.SyncGroup, 3, {
    groupId,
    generationId: 1,
    memberId: first.memberId,
    groupInstanceId: null,
    assignments: [{ memberId: first.memberId, assignment: Buffer.from('A') }],
  });
  expect(sync.errorCode).toBe(0);
  expect(Buffer.from(sync.assignment).toString()).toBe('A');
  return first.memberId;
}

describe('coordinator handlers', () => {
  it('FindCoordinator points at self for groups (v0, v2, v4); no transaction coordinator here', async () => {
    const { c, h } = await coordinator();
    stopping.push(c);
    expect(await call(h, ApiKey.FindCoordinator, 0, { key: 'g1' })).toMatchObject({ errorCode: 0, nodeId: 7, host: 'coord.local', port: 19092 });
    expect(await call(h, ApiKey.FindCoordinator, 2, { key: 'g1', keyType: 0 })).toMatchObject({ errorCode: 0, nodeId: 7, errorMessage: null });
    // This runtime serves no transactions: a transaction key is retriable COORDINATOR_NOT_AVAILABLE, not a fatal code.
    expect((await call(h, ApiKey.FindCoordinator, 2, { key: 'tx', keyType: 1 })).errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    const v4 = await call(h, ApiKey.FindCoordinator, 4, { keyType: 0, coordinatorKeys: ['a', 'b'] });
    expect(v4.coordinators.map((x) => [x.key, x.nodeId, x.port, x.errorCode])).toEqual([
      ['a', 7, 19092, 0],
      ['b', 7, 19092, 0],
    ]);
  });

  it('runs a consumer through join, sync, heartbeat, commit, fetch, describe, list, leave and delete', async () => {
    const { c, h, log } = await coordinator();
    stopping.push(c);
    const member = await joinOne(h);
    expect((await call(h, ApiKey.Heartbeat, 3, { groupId: 'g1', generationId: 1, memberId: member, groupInstanceId: null })).errorCode).toBe(0);
    expect((await call(h, ApiKey.Heartbeat, 0, { groupId: 'g1', generationId: 9, memberId: member })).errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);

    const commit = await call(h, ApiKey.OffsetCommit, 5, {
      groupId: 'g1',
      generationIdOrMemberEpoch: 1,
      memberId: member,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 17n, committedMetadata: null }, { partitionIndex: 1, committedOffset: 3n, committedMetadata: 'x' }] }],
    });
    expect(commit.topics[0]!.partitions.map((p) => p.errorCode)).toEqual([0, 0]);
    const stale = await call(h, ApiKey.OffsetCommit, 2, {
      groupId: 'g1',
      generationIdOrMemberEpoch: 0,
      memberId: member,
      retentionTimeMs: -1n,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: null }] }],
    });
    expect(stale.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    // Flexible v8 (platformatic 1.x / Java), with the leader epoch.
    const v8 = await call(h, ApiKey.OffsetCommit, 8, {
      groupId: 'g1',
      generationIdOrMemberEpoch: 1,
      memberId: member,
      groupInstanceId: null,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 2, committedOffset: 99n, committedLeaderEpoch: 4, committedMetadata: '' }] }],
    });
    expect(v8.topics[0]!.partitions[0]!.errorCode).toBe(0);
    // Every commit reached the offsets log before its answer.
    const p = c.machine.partitionFor('g1');
    expect((log as MemoryOffsetsLog).records[p]!.length).toBe(1 + 3);

    const v1 = await call(h, ApiKey.OffsetFetch, 1, { groupId: 'g1', topics: [{ name: 'orders', partitionIndexes: [0, 5] }] });
    expect(v1.topics[0]!.partitions.map((x) => [x.partitionIndex, x.committedOffset, x.metadata, x.errorCode])).toEqual([
      [0, 17n, '', 0],
      [5, -1n, '', 0],
    ]);
    const all = await call(h, ApiKey.OffsetFetch, 4, { groupId: 'g1', topics: null });
    expect(all.errorCode).toBe(0);
    expect(all.topics[0]!.partitions.map((x) => x.committedOffset)).toEqual([17n, 3n, 99n]);
    const v8f = await call(h, ApiKey.OffsetFetch, 8, { groups: [{ groupId: 'g1', topics: [{ name: 'orders', partitionIndexes: [2] }] }, { groupId: 'none', topics: null }], requireStable: false });
    expect(v8f.groups[0]!.topics[0]!.partitions[0]).toMatchObject({ committedOffset: 99n, committedLeaderEpoch: 4, errorCode: 0 });
    expect(v8f.groups[1]).toMatchObject({ groupId: 'none', topics: [], errorCode: 0 });

    const described = await call(h, ApiKey.DescribeGroups, 5, { groups: ['g1', 'nope'], includeAuthorizedOperations: false });
    expect(described.groups[0]).toMatchObject({ errorCode: 0, groupId: 'g1', groupState: 'Stable', protocolType: 'consumer', protocolData: 'RoundRobinAssigner' });
    expect(described.groups[0]!.members[0]).toMatchObject({ memberId: member, clientId: 'tester', clientHost: '/127.0.0.1', groupInstanceId: null });
    expect(Buffer.from(described.groups[0]!.members[0]!.memberAssignment).toString()).toBe('A');
    expect(described.groups[1]).toMatchObject({ groupId: 'nope', groupState: 'Dead', errorCode: 0 });

    expect((await call(h, ApiKey.ListGroups, 2, {})).groups).toEqual([{ groupId: 'g1', protocolType: 'consumer', groupState: '', groupType: '' }]);
    expect((await call(h, ApiKey.ListGroups, 4, { statesFilter: ['Empty'] })).groups).toEqual([]);
    expect((await call(h, ApiKey.ListGroups, 4, { statesFilter: ['Stable'] })).groups).toEqual([{ groupId: 'g1', protocolType: 'consumer', groupState: 'Stable', groupType: '' }]);

    expect((await call(h, ApiKey.DeleteGroups, 1, { groupsNames: ['g1'] })).results).toEqual([{ groupId: 'g1', errorCode: ErrorCode.NON_EMPTY_GROUP }]);
    const od = await call(h, ApiKey.OffsetDelete, 0, { groupId: 'g1', topics: [{ name: 'orders', partitions: [{ partitionIndex: 0 }] }] });
    expect(od.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC);

    const leave = await call(h, ApiKey.LeaveGroup, 3, { groupId: 'g1', members: [{ memberId: member, groupInstanceId: null }, { memberId: 'ghost', groupInstanceId: null }] });
    expect(leave.errorCode).toBe(0);
    expect(leave.members.map((x) => x.errorCode)).toEqual([0, ErrorCode.UNKNOWN_MEMBER_ID]);
    expect((await call(h, ApiKey.LeaveGroup, 1, { groupId: 'g1', memberId: 'ghost' })).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await call(h, ApiKey.DeleteGroups, 2, { groupsNames: ['g1', 'nope'] })).results).toEqual([
      { groupId: 'g1', errorCode: 0 },
      { groupId: 'nope', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
    ]);
    expect((await call(h, ApiKey.OffsetFetch, 4, { groupId: 'g1', topics: null })).topics).toEqual([]);
  });


  it('serves the flexible versions (JoinGroup 6, SyncGroup 4, Heartbeat 4, LeaveGroup 4, OffsetFetch 7) with static members', async () => {
    const { c, h } = await coordinator();
    stopping.push(c);
    const join = await call(h, ApiKey.JoinGroup, 6, {
      groupId: 'flex',
      sessionTimeoutMs: 45_000,
      rebalanceTimeoutMs: 300_000,
      memberId: '',
      groupInstanceId: 'instance-1',
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: subscription }, { name: 'cooperative-sticky', metadata: subscription }],
    }, 'java');
    // A static member is not asked for a member id first.
    expect(join).toMatchObject({ errorCode: 0, generationId: 1, protocolName: 'range' });
    expect(join.members).toEqual([{ memberId: join.memberId, groupInstanceId: 'instance-1', metadata: subscription }]);
    const sync = await call(h, ApiKey.SyncGroup, 4, { groupId: 'flex', generationId: 1, memberId: join.memberId, groupInstanceId: 'instance-1', assignments: [{ memberId: join.memberId, assignment: Buffer.from('x') }] });
    expect(sync.errorCode).toBe(0);
    expect((await call(h, ApiKey.Heartbeat, 4, { groupId: 'flex', generationId: 1, memberId: join.memberId, groupInstanceId: 'instance-1' })).errorCode).toBe(0);
    expect((await call(h, ApiKey.Heartbeat, 4, { groupId: 'flex', generationId: 1, memberId: 'old-id', groupInstanceId: 'instance-1' })).errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID);
    const commit = await call(h, ApiKey.OffsetCommit, 7, { groupId: 'flex', generationIdOrMemberEpoch: 1, memberId: join.memberId, groupInstanceId: 'instance-1', topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 5n, committedLeaderEpoch: 2, committedMetadata: null }] }] });
    expect(commit.topics[0]!.partitions[0]!.errorCode).toBe(0);
    const fetched = await call(h, ApiKey.OffsetFetch, 7, { groupId: 'flex', topics: [{ name: 'orders', partitionIndexes: [0] }], requireStable: true });
    expect(fetched.topics[0]!.partitions[0]).toMatchObject({ committedOffset: 5n, committedLeaderEpoch: 2, errorCode: 0 });
    const leave = await call(h, ApiKey.LeaveGroup, 4, { groupId: 'flex', members: [{ memberId: join.memberId, groupInstanceId: 'instance-1' }] });
    expect(leave.members).toEqual([{ memberId: join.memberId, groupInstanceId: 'instance-1', errorCode: 0 }]);
    expect((await call(h, ApiKey.DescribeGroups, 5, { groups: ['flex'], includeAuthorizedOperations: false })).groups[0]!.groupState).toBe('Empty');
  });

  it('JoinGroup v0 adds the member directly; bad session timeouts get INVALID_SESSION_TIMEOUT', async () => {
    const { c, h } = await coordinator();
    stopping.push(c);
    const bad = await call(h, ApiKey.JoinGroup, 0, { groupId: 'g0', sessionTimeoutMs: 100, memberId: '', protocolType: 'consumer', protocols: [{ name: 'range', metadata: subscription }] });
    expect(bad.errorCode).toBe(ErrorCode.INVALID_SESSION_TIMEOUT);
    const ok = await call(h, ApiKey.JoinGroup, 0, { groupId: 'g0', sessionTimeoutMs: 10_000, memberId: '', protocolType: 'consumer', protocols: [{ name: 'range', metadata: subscription }] });
    expect(ok).toMatchObject({ errorCode: 0, generationId: 1, protocolName: 'range' });
    expect(c.machine.group('g0')!.members.get(ok.memberId)!.rebalanceTimeoutMs).toBe(10_000);
  });

  it('answers UNKNOWN_TOPIC_OR_PARTITION for a commit to a partition the metadata does not have, and stores only the others', async () => {
    const topics = { byName: (name: string) => (name === 'orders' ? { topicId: '0'.repeat(31) + '1', name, partitions: 3 } : undefined), byId: () => undefined };
    const log = new MemoryOffsetsLog(5);
    const c = Coordinator.create({ offsetsLog: log, clock: new ManualClock(), self: () => SELF, topics, config: { 'group.initial.rebalance.delay.ms': 0 } });
    await c.start();
    stopping.push(c);
    const h = c.handlers();
    const commit = await call(h, ApiKey.OffsetCommit, 8, {
      groupId: 'standalone',
      generationIdOrMemberEpoch: -1,
      memberId: '',
      groupInstanceId: null,
      topics: [
        { name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 5n, committedLeaderEpoch: -1, committedMetadata: '' }, { partitionIndex: 99, committedOffset: 7n, committedLeaderEpoch: -1, committedMetadata: '' }] },
        { name: 'nope', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: '' }] },
      ],
    });
    const codes = commit.topics.flatMap((t) => t.partitions.map((p) => [t.name, p.partitionIndex, p.errorCode]));
    expect(codes).toEqual(expect.arrayContaining([['orders', 0, 0], ['orders', 99, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION], ['nope', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]));
    expect(codes).toHaveLength(3);
    const all = await call(h, ApiKey.OffsetFetch, 4, { groupId: 'standalone', topics: null });
    expect(all.topics.map((t) => [t.name, t.partitions.map((p) => [p.partitionIndex, p.committedOffset])])).toEqual([['orders', [[0, 5n]]]]);
  });

  it('a restarted coordinator reloads groups and offsets from the offsets log', async () => {
    const log = new MemoryOffsetsLog(5);
    const first = await coordinator(log);
    const member = await joinOne(first.h);
    await call(first.h, ApiKey.OffsetCommit, 5, {
      groupId: 'g1',
      generationIdOrMemberEpoch: 1,
      memberId: member,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 17n, committedMetadata: 'meta' }] }],
    });
    await first.c.stop();

    const second = await coordinator(log);
    stopping.push(second.c);
    const fetched = await call(second.h, ApiKey.OffsetFetch, 3, { groupId: 'g1', topics: null });
    expect(fetched.topics[0]!.partitions[0]).toMatchObject({ partitionIndex: 0, committedOffset: 17n, metadata: 'meta' });
    const described = await call(second.h, ApiKey.DescribeGroups, 2, { groups: ['g1'] });
    expect(described.groups[0]).toMatchObject({ groupState: 'Stable', protocolData: 'RoundRobinAssigner' });
    expect((await call(second.h, ApiKey.Heartbeat, 1, { groupId: 'g1', generationId: 1, memberId: member })).errorCode).toBe(0);
  });

  it('answers an OffsetCommit whose append failed with COORDINATOR_NOT_AVAILABLE, and does not keep the offset', async () => {
    const log = new MemoryOffsetsLog(5);
    const { c, h } = await coordinator(log);
    stopping.push(c);
    log.failAppends = new Error('disk gone');
    const r = await call(h, ApiKey.OffsetCommit, 3, { groupId: 'solo', generationIdOrMemberEpoch: -1, memberId: '', retentionTimeMs: -1n, topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 5n, committedMetadata: null }] }] });
    expect(r.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    log.failAppends = null;
    expect((await call(h, ApiKey.OffsetFetch, 2, { groupId: 'solo', topics: null })).topics).toEqual([]);
  });


  it('answers COORDINATOR_NOT_AVAILABLE when an append outlasts offsets.commit.timeout.ms', async () => {
    const mem = new MemoryOffsetsLog(1);
    const stuck: OffsetsLog = { partitions: 1, append: () => new Promise(() => {}), appendMarker: () => new Promise(() => {}), load: (p, apply) => mem.load(p, apply) };
    const clock = new ManualClock();
    const c = Coordinator.create({ offsetsLog: stuck, clock, self: () => SELF, config: { 'offsets.commit.timeout.ms': 100 } });
    await c.start();
    stopping.push(c);
    const pending = call(c.handlers(), ApiKey.OffsetCommit, 5, { groupId: 'g', generationIdOrMemberEpoch: -1, memberId: '', topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: null }] }] });
    await new Promise((r) => setImmediate(r));
    clock.advance(99);
    await new Promise((r) => setImmediate(r));
    let answered = false;
    void pending.then(() => (answered = true));
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false);
    clock.advance(1);
    expect((await pending).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
  });

  it('says COORDINATOR_LOAD_IN_PROGRESS while its partition loads', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const mem = new MemoryOffsetsLog(1);
    const slow: OffsetsLog = { partitions: 1, append: (p, r) => mem.append(p, r), appendMarker: (p, m) => mem.appendMarker(p, m), load: async (p, apply) => { await gate; return mem.load(p, apply); } };
    const c = Coordinator.create({ offsetsLog: slow, clock: new ManualClock(), self: () => SELF });
    const starting = c.start();
    const h = c.handlers();
    expect((await call(h, ApiKey.OffsetFetch, 3, { groupId: 'g', topics: null })).errorCode).toBe(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    expect((await call(h, ApiKey.JoinGroup, 4, { groupId: 'g', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: '', protocolType: 'consumer', protocols: [{ name: 'range', metadata: subscription }] })).errorCode).toBe(
      ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    );
    release();
    await starting;
    stopping.push(c);
    expect((await call(h, ApiKey.Heartbeat, 0, { groupId: 'g', generationId: 1, memberId: 'm' })).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });
});

describe('storage-backed offsets log', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps groups and offsets in __consumer_offsets partition logs across a restart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'runnel-coord-'));
    const open = async () => {
      const logs = LogManager.create({ logDirs: [dir], defaults: defaultLogConfig });
      await logs.start();
      const offsetsLog = logManagerOffsetsLog({ logs, partitions: 3 });
      return { logs, ...(await coordinator(offsetsLog)) };
    };
    const first = await open();
    const member = await joinOne(first.h, 'durable');
    await call(first.h, ApiKey.OffsetCommit, 5, {
      groupId: 'durable',
      generationIdOrMemberEpoch: 1,
      memberId: member,
      topics: [{ name: 'orders', partitions: [0, 1, 2].map((i) => ({ partitionIndex: i, committedOffset: BigInt(10 + i), committedMetadata: null })) }],
    });
    await call(first.h, ApiKey.OffsetCommit, 5, {
      groupId: 'durable',
      generationIdOrMemberEpoch: 1,
      memberId: member,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 50n, committedMetadata: null }] }],
    });
    await first.c.stop();
    await first.logs.stop();

    const second = await open();
    stopping.push(second.c);
    const fetched = await call(second.h, ApiKey.OffsetFetch, 4, { groupId: 'durable', topics: null });
    expect(fetched.topics[0]!.partitions.map((p) => p.committedOffset)).toEqual([50n, 11n, 12n]);
    expect((await call(second.h, ApiKey.DescribeGroups, 1, { groups: ['durable'] })).groups[0]!.groupState).toBe('Stable');
    await second.c.stop();
    await second.logs.stop();
  });
});
