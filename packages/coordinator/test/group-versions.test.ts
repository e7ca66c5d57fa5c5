// The group APIs at Kafka 4's maxima, through the real codec (wire.ts): JoinGroup 7-9, SyncGroup 5,
// LeaveGroup 5, DescribeGroups 6, ListGroups 5, OffsetCommit 9, OffsetFetch 9, FindCoordinator 5-6.
import type { Handler } from '@runnel/kafka-server';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { Coordinator, ManualClock, MemoryOffsetsLog, encodeSubscription } from '../src/index.ts';
import { callHandler as call } from './wire.ts';

const SELF = { nodeId: 7, host: 'coord.local', port: 19092 };
const subscription = encodeSubscription(['orders']);

const stopping: Coordinator[] = [];
afterEach(async () => {
  for (const c of stopping.splice(0)) await c.stop();
});

async function coordinator() {
  const c = Coordinator.create({ offsetsLog: new MemoryOffsetsLog(5), clock: new ManualClock(), self: () => SELF, config: { 'group.initial.rebalance.delay.ms': 0 } });
  await c.start();
  stopping.push(c);
  return { c, h: c.handlers() };
}

const joinReq = (groupId: string, memberId: string, o: { groupInstanceId?: string | null; reason?: string | null } = {}) => ({
  groupId,
  sessionTimeoutMs: 30_000,
  rebalanceTimeoutMs: 60_000,
  memberId,
  groupInstanceId: o.groupInstanceId ?? null,
  protocolType: 'consumer',
  protocols: [{ name: 'range', metadata: subscription }],
  reason: o.reason ?? null,
});

/** A static member joins and syncs at JoinGroup/SyncGroup `version`; returns its member id. */
async function staticMember(h: Handler[], groupId: string, instance: string, version: number): Promise<string> {
  const joined = await call(h, ApiKey.JoinGroup, version, joinReq(groupId, '', { groupInstanceId: instance }));
  expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: joined.memberId, skipAssignment: false });
  const sync = await call(h, ApiKey.SyncGroup, 5, {
    groupId, generationId: 1, memberId: joined.memberId, groupInstanceId: instance, protocolType: 'consumer', protocolName: 'range',
    assignments: [{ memberId: joined.memberId, assignment: Buffer.from('A') }],
  });
  expect(sync.errorCode).toBe(0);
  return joined.memberId;
}

describe('group APIs at the Kafka 4 maxima', () => {
  it('JoinGroup v9 and SyncGroup v5: protocol type and nullable name in answers, SyncGroup checks the type and name it is sent', async () => {
    const { h } = await coordinator();
    const first = await call(h, ApiKey.JoinGroup, 9, joinReq('g', '', { reason: 'need to re-join' }));
    // An error answer at v7+ has null protocol type and name, as Kafka's.
    expect(first).toMatchObject({ errorCode: ErrorCode.MEMBER_ID_REQUIRED, protocolType: null, protocolName: null, skipAssignment: false });
    const joined = await call(h, ApiKey.JoinGroup, 9, joinReq('g', first.memberId, { reason: 'rebalance failed due to MemberIdRequiredException' }));
    expect(joined).toMatchObject({ errorCode: 0, generationId: 1, protocolType: 'consumer', protocolName: 'range', leader: first.memberId, skipAssignment: false });
    // v6 and older have no protocol type, and an empty name where v7+ have null.
    const v6 = await call(h, ApiKey.JoinGroup, 6, joinReq('g6', ''));
    expect(v6).toMatchObject({ errorCode: ErrorCode.MEMBER_ID_REQUIRED, protocolName: '', protocolType: null });

    const sync = (protocolType: string | null, protocolName: string | null) => call(h, ApiKey.SyncGroup, 5, {
      groupId: 'g', generationId: 1, memberId: first.memberId, groupInstanceId: null, protocolType, protocolName,
      assignments: [{ memberId: first.memberId, assignment: Buffer.from('A') }],
    });
    expect(await sync('consumer', 'roundrobin')).toMatchObject({ errorCode: ErrorCode.INCONSISTENT_GROUP_PROTOCOL, protocolType: null, protocolName: null });
    expect(await sync('connect', 'range')).toMatchObject({ errorCode: ErrorCode.INCONSISTENT_GROUP_PROTOCOL });
    const ok = await sync('consumer', 'range');
    expect(ok).toMatchObject({ errorCode: 0, protocolType: 'consumer', protocolName: 'range' });
    expect(Buffer.from(ok.assignment).toString()).toBe('A');
    // Null type and name (an older client's SyncGroup v5 that does not fill them) are not checked.
    expect((await sync(null, null)).errorCode).toBe(0);
  });

  it('JoinGroup v9 tells a restarted static leader of a Stable group to skip the assignment; v8 names the old leader instead', async () => {
    const { h } = await coordinator();
    for (const [version, groupId] of [[9, 'skip'], [8, 'noskip']] as const) {
      const oldId = await staticMember(h, groupId, 'i-1', version);
      // The leader restarts: same instance id, no member id.
      const again = await call(h, ApiKey.JoinGroup, version, joinReq(groupId, '', { groupInstanceId: 'i-1', reason: 'restarted' }));
      expect(again.errorCode).toBe(0);
      expect(again.memberId).not.toBe(oldId);
      expect(again.generationId).toBe(1);
      if (version === 9) {
        // It leads (under its new id), must not assign, and sees the members to keep watching them.
        expect(again).toMatchObject({ skipAssignment: true, leader: again.memberId });
        expect(again.members).toEqual([{ memberId: again.memberId, groupInstanceId: 'i-1', metadata: subscription }]);
      } else {
        expect(again).toMatchObject({ skipAssignment: false, leader: oldId, members: [] });
      }
      // Its SyncGroup (with no assignment, as a skipping leader sends) gets the assignment it had.
      const sync = await call(h, ApiKey.SyncGroup, 5, { groupId, generationId: 1, memberId: again.memberId, groupInstanceId: 'i-1', protocolType: 'consumer', protocolName: 'range', assignments: [] });
      expect(sync.errorCode).toBe(0);
      expect(Buffer.from(sync.assignment).toString()).toBe('A');
    }
  });

  it('LeaveGroup v5 takes a reason per member; DescribeGroups v6 answers GROUP_ID_NOT_FOUND with a message where v5 says Dead', async () => {
    const { h } = await coordinator();
    const member = await staticMember(h, 'lg', 'i-1', 9);
    const leave = await call(h, ApiKey.LeaveGroup, 5, { groupId: 'lg', members: [{ memberId: member, groupInstanceId: 'i-1', reason: 'the consumer is being closed' }, { memberId: 'ghost', groupInstanceId: null, reason: null }] });
    expect(leave).toMatchObject({ errorCode: 0, members: [{ memberId: member, errorCode: 0 }, { memberId: 'ghost', errorCode: ErrorCode.UNKNOWN_MEMBER_ID }] });

    const v6 = await call(h, ApiKey.DescribeGroups, 6, { groups: ['lg', 'nope'], includeAuthorizedOperations: false });
    expect(v6.groups[0]).toMatchObject({ groupId: 'lg', errorCode: 0, errorMessage: null, groupState: 'Empty', protocolType: 'consumer' });
    expect(v6.groups[1]).toMatchObject({ groupId: 'nope', errorCode: ErrorCode.GROUP_ID_NOT_FOUND, errorMessage: 'Group nope not found.', groupState: 'Dead' });
    const v5 = await call(h, ApiKey.DescribeGroups, 5, { groups: ['nope'], includeAuthorizedOperations: false });
    expect(v5.groups[0]).toMatchObject({ groupId: 'nope', errorCode: 0, groupState: 'Dead' });
  });

  it('ListGroups v5 answers each group type and filters by type and state, case-insensitively', async () => {
    const { h } = await coordinator();
    await staticMember(h, 'stable-one', 'i-1', 9);
    // A group that only keeps offsets (an admin commit): classic too, with no protocol type.
    expect((await call(h, ApiKey.OffsetCommit, 9, { groupId: 'offsets-only', generationIdOrMemberEpoch: -1, memberId: '', groupInstanceId: null, topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: null }] }] })).topics[0]!.partitions[0]!.errorCode).toBe(0);
    const list = async (statesFilter: string[], typesFilter: string[]) => (await call(h, ApiKey.ListGroups, 5, { statesFilter, typesFilter })).groups.sort((a, b) => a.groupId.localeCompare(b.groupId));
    expect(await list([], [])).toEqual([
      { groupId: 'offsets-only', protocolType: '', groupState: 'Empty', groupType: 'classic' },
      { groupId: 'stable-one', protocolType: 'consumer', groupState: 'Stable', groupType: 'classic' },
    ]);
    expect((await list([], ['Classic'])).map((g) => g.groupId)).toEqual(['offsets-only', 'stable-one']);
    expect(await list([], ['consumer'])).toEqual([]);
    expect((await list(['stable'], ['classic'])).map((g) => g.groupId)).toEqual(['stable-one']);
    // v4 has no type filter and no type in the answer.
    expect((await call(h, ApiKey.ListGroups, 4, { statesFilter: ['Empty'] })).groups).toEqual([{ groupId: 'offsets-only', protocolType: '', groupState: 'Empty', groupType: '' }]);
  });

  it('OffsetCommit v9 and OffsetFetch v9 keep the classic rules for a classic group (member epoch fields are for KIP-848 groups)', async () => {
    const { h } = await coordinator();
    const member = await staticMember(h, 'oc', 'i-1', 9);
    const commit = (generationIdOrMemberEpoch: number, memberId: string) => call(h, ApiKey.OffsetCommit, 9, {
      groupId: 'oc', generationIdOrMemberEpoch, memberId, groupInstanceId: 'i-1',
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: 3, committedMetadata: 'm' }] }],
    });
    expect((await commit(2, member)).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect((await commit(1, 'other')).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect((await commit(1, member)).topics[0]!.partitions[0]!.errorCode).toBe(0);

    // v9 groups carry a member id and epoch: a classic group ignores them, as Kafka's does.
    const fetched = await call(h, ApiKey.OffsetFetch, 9, {
      groups: [
        { groupId: 'oc', memberId: member, memberEpoch: 1, topics: [{ name: 'orders', partitionIndexes: [0, 1] }] },
        { groupId: 'oc', memberId: null, memberEpoch: -1, topics: null },
        { groupId: 'unknown', memberId: 'x', memberEpoch: 7, topics: null },
      ],
      requireStable: true,
    });
    expect(fetched.groups[0]).toMatchObject({ groupId: 'oc', errorCode: 0, topics: [{ name: 'orders', partitions: [
      { partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: 3, metadata: 'm', errorCode: 0 },
      { partitionIndex: 1, committedOffset: -1n, errorCode: 0 },
    ] }] });
    expect(fetched.groups[1]!.topics).toEqual([{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: 3, metadata: 'm', errorCode: 0 }] }]);
    expect(fetched.groups[2]).toEqual({ groupId: 'unknown', topics: [], errorCode: 0 });
  });

  it('OffsetFetch v9 checks the member id and epoch it carries against a KIP-848 group: UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH; null/−1 (an admin) reads', async () => {
    const { h } = await coordinator();
    // A consumer-protocol member joins (epoch 0 asks to join; the answer carries its epoch).
    const joined = await call(h, ApiKey.ConsumerGroupHeartbeat, 1, {
      groupId: 'kip848', memberId: 'member-a', memberEpoch: 0, rebalanceTimeoutMs: 30_000, subscribedTopicNames: ['orders'], topicPartitions: [],
    });
    expect(joined.errorCode).toBe(0);
    expect(joined.memberEpoch).toBeGreaterThan(0);
    const fetch = (memberId: string | null, memberEpoch: number) => call(h, ApiKey.OffsetFetch, 9, {
      groups: [{ groupId: 'kip848', memberId, memberEpoch, topics: [{ name: 'orders', partitionIndexes: [0] }] }], requireStable: false,
    });
    expect((await fetch('member-a', joined.memberEpoch)).groups[0]).toMatchObject({ errorCode: 0, topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: -1n, errorCode: 0 }] }] });
    expect((await fetch(null, -1)).groups[0]!.errorCode).toBe(0);
    expect((await fetch('member-a', joined.memberEpoch + 1)).groups[0]).toEqual({ groupId: 'kip848', topics: [], errorCode: ErrorCode.STALE_MEMBER_EPOCH });
    expect((await fetch('nobody', 1)).groups[0]).toEqual({ groupId: 'kip848', topics: [], errorCode: ErrorCode.UNKNOWN_MEMBER_ID });
  });

  it('FindCoordinator v5 and v6 find groups; share keys (type 2) are INVALID_REQUEST at every version', async () => {
    const { h } = await coordinator();
    for (const v of [5, 6]) {
      const r = await call(h, ApiKey.FindCoordinator, v, { keyType: 0, coordinatorKeys: ['g1', 'g2'] });
      expect(r.coordinators).toEqual([
        { key: 'g1', nodeId: 7, host: 'coord.local', port: 19092, errorCode: 0, errorMessage: null },
        { key: 'g2', nodeId: 7, host: 'coord.local', port: 19092, errorCode: 0, errorMessage: null },
      ]);
      const share = await call(h, ApiKey.FindCoordinator, v, { keyType: 2, coordinatorKeys: ['sg:AAAAAAAAAAAAAAAAAAAAAA:0'] });
      expect(share.coordinators[0]).toMatchObject({ nodeId: -1, host: '', port: -1, errorCode: ErrorCode.INVALID_REQUEST });
      expect(share.coordinators[0]!.errorMessage).toMatch(v === 6 ? /share groups .* not supported/ : /need FindCoordinator v6/);
    }
  });
});
