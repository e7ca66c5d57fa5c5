// KIP-848 consumer groups in the state machine (consumer-group.ts) on a ManualClock: join and the
// uniform split, incremental revocation (a partition never has two owners), session expiry, leave,
// fencing, static members, topic changes, offset commit validation, the records and their replay,
// and the wire tables of ConsumerGroupHeartbeat/ConsumerGroupDescribe.
import { describe, expect, it } from 'vitest';
import { ApiKey, decodeResponse, encodeResponse } from '@runnel/protocol';
import {
  GroupCoordinator,
  ManualClock,
  decodeConsumerKey,
  decodeKey,
  rangeAssignor,
  uniformAssignor,
  type ConsumerHeartbeatRequest,
  type OffsetsRecord,
  type TopicImage,
} from '../src/index.ts';

const T1 = 'aa'.repeat(16);
const T2 = 'bb'.repeat(16);

function setup(topics: TopicImage[] = [{ topicId: T1, name: 't1', partitions: 4 }]) {
  const clock = new ManualClock();
  const background: OffsetsRecord[] = [];
  const log: OffsetsRecord[] = [];
  const table = new Map(topics.map((t) => [t.name, t]));
  const m = new GroupCoordinator({
    clock,
    config: { 'offsets.topic.num.partitions': 1 },
    onRecords: (r) => {
      background.push(...r);
      log.push(...r);
    },
    topics: { byName: (n) => table.get(n), byId: (id) => [...table.values()].find((t) => t.topicId === id), names: () => table.keys() },
  });
  m.beginLoad(0);
  m.completeLoad(0);
  const hb = async (r: Partial<ConsumerHeartbeatRequest> & { memberId: string; memberEpoch: number }) => {
    const out = m.consumerGroupHeartbeat({
      apiVersion: 1, groupId: 'g', instanceId: null, rackId: null, rebalanceTimeoutMs: r.memberEpoch === 0 ? 30_000 : -1,
      subscribedTopicNames: r.memberEpoch === 0 ? ['t1'] : null, subscribedTopicRegex: null, serverAssignor: null,
      topicPartitions: r.memberEpoch === 0 ? [] : null, clientId: 'c', clientHost: '/127.0.0.1', ...r,
    });
    log.push(...out.records);
    out.settle();
    return out.response;
  };
  return { clock, m, hb, log, background, table };
}

const parts = (a: { partitions: number[] }[] | null) => (a ?? []).flatMap((t) => t.partitions).sort();

describe('KIP-848 consumer groups', () => {
  it('a first member gets every partition; a second one gets half only after the first revoked them', async () => {
    const { hb, m } = setup();
    const a = await hb({ memberId: 'a', memberEpoch: 0 });
    expect(a).toMatchObject({ error: 'NONE', memberId: 'a', memberEpoch: 1, heartbeatIntervalMs: 5000 });
    expect(parts(a.assignment)).toEqual([0, 1, 2, 3]);
    const b = await hb({ memberId: 'b', memberEpoch: 0 });
    // b is at the new epoch but gets nothing a still owns.
    expect(b.memberEpoch).toBe(2);
    expect(parts(b.assignment)).toEqual([]);
    expect(m.describeConsumerGroups(['g'])[0]!.groupState).toBe('Reconciling');
    // a is asked to give up two partitions, keeping its epoch until it has.
    const a2 = await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: [{ topicId: T1, partitions: [0, 1, 2, 3] }] });
    expect(a2.memberEpoch).toBe(1);
    const kept = parts(a2.assignment);
    expect(kept).toHaveLength(2);
    // Still reporting them: nothing moves.
    expect(parts((await hb({ memberId: 'b', memberEpoch: 2, topicPartitions: [] })).assignment)).toEqual([]);
    const a3 = await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: [{ topicId: T1, partitions: kept }] });
    expect(a3.memberEpoch).toBe(2);
    const b2 = await hb({ memberId: 'b', memberEpoch: 2, topicPartitions: [] });
    expect(parts(b2.assignment)).toEqual([0, 1, 2, 3].filter((p) => !kept.includes(p)));
    await hb({ memberId: 'b', memberEpoch: 2, topicPartitions: b2.assignment });
    expect(m.describeConsumerGroups(['g'])[0]).toMatchObject({ groupState: 'Stable', groupEpoch: 2, assignmentEpoch: 2, assignorName: 'uniform' });
    // Two group epoch bumps (a joined, b joined): Kafka's consumer-group-rebalance-count.
    expect(m.consumer.rebalances).toBe(2);
  });

  it('a member without heartbeats for the session timeout is removed and its partitions move', async () => {
    const { hb, clock, background } = setup();
    await hb({ memberId: 'a', memberEpoch: 0 });
    const b = await hb({ memberId: 'b', memberEpoch: 0 });
    const a = await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: [{ topicId: T1, partitions: [0, 1, 2, 3] }] });
    await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: a.assignment });
    await hb({ memberId: 'b', memberEpoch: b.memberEpoch, topicPartitions: [] });
    for (let t = 0; t < 45_000; t += 5000) {
      clock.advance(5000);
      await hb({ memberId: 'b', memberEpoch: 2 });
    }
    clock.advance(1000);
    expect(background.some((r) => r.value === null && decodeConsumerKey(r.key)?.type === 5)).toBe(true);
    const b2 = await hb({ memberId: 'b', memberEpoch: 2, topicPartitions: [] });
    expect(b2.memberEpoch).toBe(3);
    expect(parts(b2.assignment)).toEqual([0, 1, 2, 3]);
    expect((await hb({ memberId: 'a', memberEpoch: 2 })).error).toBe('UNKNOWN_MEMBER_ID');
  });

  it('a member that keeps heartbeating but does not revoke within its rebalance timeout is fenced; the other gets everything', async () => {
    const { hb, clock, background } = setup();
    await hb({ memberId: 'a', memberEpoch: 0, rebalanceTimeoutMs: 20_000 });
    const b = await hb({ memberId: 'b', memberEpoch: 0 });
    const all = [{ topicId: T1, partitions: [0, 1, 2, 3] }];
    expect(parts((await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: all })).assignment)).toHaveLength(2);
    // a goes on reporting all four: its heartbeats keep its session, not its time to revoke.
    for (let t = 5000; t < 20_000; t += 5000) {
      clock.advance(5000);
      expect((await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: all })).error).toBe('NONE');
      expect(parts((await hb({ memberId: 'b', memberEpoch: b.memberEpoch, topicPartitions: [] })).assignment)).toEqual([]);
    }
    clock.advance(5000);
    expect(background.some((r) => r.value === null && decodeConsumerKey(r.key)?.type === 5)).toBe(true);
    expect((await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: all })).error).toBe('UNKNOWN_MEMBER_ID');
    const b2 = await hb({ memberId: 'b', memberEpoch: b.memberEpoch, topicPartitions: [] });
    expect(b2.memberEpoch).toBe(b.memberEpoch + 1);
    expect(parts(b2.assignment)).toEqual([0, 1, 2, 3]);
  });

  it('fences stale epochs, checks requests, leaves, and static members need their seat released', async () => {
    const { hb, m } = setup();
    expect((await hb({ memberId: '', memberEpoch: 0 })).error).toBe('INVALID_REQUEST');
    expect((await hb({ memberId: 'a', memberEpoch: 0, serverAssignor: 'sticky' })).error).toBe('UNSUPPORTED_ASSIGNOR');
    await hb({ memberId: 'a', memberEpoch: 0 });
    expect((await hb({ memberId: 'a', memberEpoch: 7 })).error).toBe('FENCED_MEMBER_EPOCH');
    expect((await hb({ memberId: 'a', memberEpoch: -1 })).memberEpoch).toBe(-1);
    expect(m.describeConsumerGroups(['g'])[0]!.groupState).toBe('Empty');
    await hb({ memberId: 's1', memberEpoch: 0, instanceId: 'i' });
    expect((await hb({ memberId: 's2', memberEpoch: 0, instanceId: 'i' })).error).toBe('UNRELEASED_INSTANCE_ID');
    await hb({ memberId: 's1', memberEpoch: -2, instanceId: 'i' });
    const s2 = await hb({ memberId: 's2', memberEpoch: 0, instanceId: 'i' });
    expect(s2.error).toBe('NONE');
    expect(parts(s2.assignment)).toEqual([0, 1, 2, 3]);
  });

  it('a static member replaced after leaving with -2 is no rebalance: same group epoch, its partitions, the other member untouched', async () => {
    const { hb, m } = setup();
    await hb({ memberId: 's1', memberEpoch: 0, instanceId: 'i' });
    const b = await hb({ memberId: 'b', memberEpoch: 0 });
    const s1 = await hb({ memberId: 's1', memberEpoch: 1, instanceId: 'i', topicPartitions: [{ topicId: T1, partitions: [0, 1, 2, 3] }] });
    await hb({ memberId: 's1', memberEpoch: 1, instanceId: 'i', topicPartitions: s1.assignment });
    const b2 = await hb({ memberId: 'b', memberEpoch: b.memberEpoch, topicPartitions: [] });
    await hb({ memberId: 'b', memberEpoch: b2.memberEpoch, topicPartitions: b2.assignment });
    const s1b = await hb({ memberId: 's1', memberEpoch: 2, instanceId: 'i', topicPartitions: s1.assignment });
    const stable = m.describeConsumerGroups(['g'])[0]!;
    expect(stable).toMatchObject({ groupState: 'Stable', groupEpoch: 2 });
    await hb({ memberId: 's1', memberEpoch: -2, instanceId: 'i' });
    const s2 = await hb({ memberId: 's2', memberEpoch: 0, instanceId: 'i' });
    expect(s2).toMatchObject({ error: 'NONE', memberEpoch: 2 });
    expect(parts(s2.assignment)).toEqual(parts(s1b.assignment ?? s1.assignment));
    expect(m.describeConsumerGroups(['g'])[0]).toMatchObject({ groupState: 'Stable', groupEpoch: 2, assignmentEpoch: 2 });
    // b heartbeats on at its epoch with nothing new to do.
    expect(await hb({ memberId: 'b', memberEpoch: 2 })).toMatchObject({ error: 'NONE', memberEpoch: 2, assignment: null });
  });

  it('a member retrying at its previous epoch (the answer lost) gets the assignment of its current epoch', async () => {
    const { hb } = setup();
    await hb({ memberId: 'a', memberEpoch: 0 });
    const b = await hb({ memberId: 'b', memberEpoch: 0 });
    const a1 = await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: [{ topicId: T1, partitions: [0, 1, 2, 3] }] });
    const a2 = await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: a1.assignment });
    const b2 = await hb({ memberId: 'b', memberEpoch: b.memberEpoch, topicPartitions: [] });
    await hb({ memberId: 'b', memberEpoch: b2.memberEpoch, topicPartitions: b2.assignment });
    expect(a2.memberEpoch).toBe(2);
    // b leaves: a's next answer (epoch 3, all four partitions) is lost on the way.
    await hb({ memberId: 'b', memberEpoch: -1 });
    const lost = await hb({ memberId: 'a', memberEpoch: 2 });
    expect(lost).toMatchObject({ memberEpoch: 3 });
    expect(parts(lost.assignment)).toEqual([0, 1, 2, 3]);
    // Its retry at epoch 2 (without its owned partitions) must learn of all four, not only the epoch.
    const retry = await hb({ memberId: 'a', memberEpoch: 2 });
    expect(retry).toMatchObject({ error: 'NONE', memberEpoch: 3 });
    expect(parts(retry.assignment)).toEqual([0, 1, 2, 3]);
  });

  it('a static member leaving with -2 while revoking releases what it was revoking: the other member gets it at once', async () => {
    const { hb } = setup();
    await hb({ memberId: 's1', memberEpoch: 0, instanceId: 'i' });
    const b = await hb({ memberId: 'b', memberEpoch: 0 });
    const s1 = await hb({ memberId: 's1', memberEpoch: 1, instanceId: 'i', topicPartitions: [{ topicId: T1, partitions: [0, 1, 2, 3] }] });
    const kept = parts(s1.assignment);
    expect(kept).toHaveLength(2);
    // s1 shuts down (a closing consumer gives up everything) before acknowledging the revocation.
    await hb({ memberId: 's1', memberEpoch: -2, instanceId: 'i' });
    const b2 = await hb({ memberId: 'b', memberEpoch: b.memberEpoch, topicPartitions: [] });
    expect(parts(b2.assignment)).toEqual([0, 1, 2, 3].filter((p) => !kept.includes(p)));
  });

  it('a static member replacing one that still had partitions to give up joins at the group\'s epoch, never at epoch 0', async () => {
    const { hb } = setup();
    await hb({ memberId: 's1', memberEpoch: 0, instanceId: 'i' });
    // b joins; s1 leaves with -2 before its next heartbeat, so it never heard it must give up two.
    const b = await hb({ memberId: 'b', memberEpoch: 0 });
    await hb({ memberId: 's1', memberEpoch: -2, instanceId: 'i' });
    // Its successor owns nothing (it joins with no partitions): nothing to wait for.
    const s2 = await hb({ memberId: 's2', memberEpoch: 0, instanceId: 'i' });
    expect(s2).toMatchObject({ error: 'NONE', memberEpoch: b.memberEpoch });
    expect(parts(s2.assignment)).toHaveLength(2);
    const b2 = await hb({ memberId: 'b', memberEpoch: b.memberEpoch, topicPartitions: [] });
    expect(parts(b2.assignment)).toEqual([0, 1, 2, 3].filter((p) => !parts(s2.assignment).includes(p)));
  });

  it('new partitions and range assignment bump the group epoch', async () => {
    const { hb, table, m } = setup();
    await hb({ memberId: 'a', memberEpoch: 0, serverAssignor: 'range' });
    table.set('t1', { topicId: T1, name: 't1', partitions: 6 });
    const a = await hb({ memberId: 'a', memberEpoch: 1 });
    expect(a.memberEpoch).toBe(2);
    expect(parts(a.assignment)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(m.describeConsumerGroups(['g'])[0]!.assignorName).toBe('range');
  });

  it('a deleted topic and a regex subscription change the assignment; DeleteGroups tombstones an empty group', async () => {
    const { hb, table, m, log } = setup([{ topicId: T1, name: 't1', partitions: 4 }, { topicId: T2, name: 'other', partitions: 2 }]);
    const a = await hb({ memberId: 'a', memberEpoch: 0, subscribedTopicNames: [], subscribedTopicRegex: '^(t1|oth.*)$' });
    expect(a.assignment!.map((t) => [t.topicId, t.partitions.length])).toEqual([[T1, 4], [T2, 2]]);
    table.delete('other');
    const a2 = await hb({ memberId: 'a', memberEpoch: 1 });
    expect(a2.memberEpoch).toBe(2);
    expect(a2.assignment!.map((t) => t.topicId)).toEqual([T1]);
    expect((await hb({ memberId: 'b', memberEpoch: 0, subscribedTopicRegex: '(' })).error).toBe('INVALID_REQUEST');
    // Not while it has members; once empty, its records go.
    const refused = m.deleteGroups(['g']);
    refused.settle();
    expect((await refused.response)[0]!.error).toBe('NON_EMPTY_GROUP');
    await hb({ memberId: 'a', memberEpoch: -1 });
    const del = m.deleteGroups(['g']);
    del.settle();
    expect((await del.response)[0]!.error).toBe('NONE');
    expect(del.records.map((r) => [decodeConsumerKey(r.key)?.type, r.value])).toEqual([[6, null], [3, null]]);
    expect(m.describeConsumerGroups(['g'])[0]!.error).toBe('GROUP_ID_NOT_FOUND');
    log.push(...del.records);
  });

  it('a SubscribedTopicRegex that backtracks for ages over the topic names is INVALID_REQUEST, not a stalled coordinator', async () => {
    const slow = 'a'.repeat(27) + '-';
    const { hb, table } = setup([{ topicId: T1, name: 't1', partitions: 4 }]);
    const a = await hb({ memberId: 'a', memberEpoch: 0, subscribedTopicNames: [], subscribedTopicRegex: 't.*' });
    expect(parts(a.assignment)).toEqual([0, 1, 2, 3]);
    table.set(slow, { topicId: T2, name: slow, partitions: 2 });
    // Without the bound, matching this one name takes seconds, and a heartbeat matches several times.
    const b = await hb({ memberId: 'b', memberEpoch: 0, subscribedTopicNames: [], subscribedTopicRegex: '(a+)+' });
    expect(b).toMatchObject({ error: 'INVALID_REQUEST' });
    expect(b.errorMessage).toContain('takes longer than');
    // The other member's regex is unaffected: same epoch, same partitions.
    expect(await hb({ memberId: 'a', memberEpoch: a.memberEpoch })).toMatchObject({ error: 'NONE', memberEpoch: a.memberEpoch, assignment: null });
  });

  it('offset commits check the member and its epoch; DescribeGroups/ListGroups see a consumer group', async () => {
    const { hb, m, background } = setup();
    await hb({ memberId: 'a', memberEpoch: 0 });
    const commit = async (memberId: string, generationId: number) => {
      const o = m.commitOffsets({ groupId: 'g', generationId, memberId, groupInstanceId: null, retentionTimeMs: -1,
        topics: [{ name: 't1', partitions: [{ partitionIndex: 0, committedOffset: 5n, committedLeaderEpoch: -1, committedMetadata: '' }] }] });
      o.settle();
      return (await o.response).topics[0]!.partitions[0]!.error;
    };
    expect(await commit('a', 0)).toBe('STALE_MEMBER_EPOCH');
    expect(await commit('x', 1)).toBe('UNKNOWN_MEMBER_ID');
    expect(await commit('', -1)).toBe('UNKNOWN_MEMBER_ID');
    expect(await commit('a', 1)).toBe('NONE');
    expect(m.fetchOffsets({ groupId: 'g', topics: null }).topics[0]!.partitions[0]!.committedOffset).toBe(5n);
    expect(m.describeGroups(['g'])[0]!.error).toBe('GROUP_ID_NOT_FOUND');
    expect(m.listGroups().groups).toEqual([{ groupId: 'g', protocolType: 'consumer', groupState: 'Stable', groupType: 'consumer' }]);
    // A classic member cannot join it while it has members; once empty, it gives way.
    const classicJoin = () => m.joinGroup({ groupId: 'g', memberId: '', groupInstanceId: null, clientId: 'c', clientHost: 'h', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000,
      protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }], requireKnownMemberId: true });
    expect((await classicJoin().response).error).toBe('INCONSISTENT_GROUP_PROTOCOL');
    await hb({ memberId: 'a', memberEpoch: -1 });
    background.length = 0;
    expect((await classicJoin().response).error).toBe('MEMBER_ID_REQUIRED');
    expect(background.map((r) => [decodeConsumerKey(r.key)?.type, r.value])).toEqual([[6, null], [3, null]]);
    expect(m.fetchOffsets({ groupId: 'g', topics: null }).topics[0]!.partitions[0]!.committedOffset).toBe(5n);
  });

  it('a classic group with members refuses the consumer protocol; an empty one is taken over with its offsets', async () => {
    const { hb, m, clock } = setup();
    const join = m.joinGroup({ groupId: 'g', memberId: '', groupInstanceId: null, clientId: 'c', clientHost: 'h', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000,
      protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }], requireKnownMemberId: false });
    clock.advance(3000);
    const joined = await join.response;
    expect(joined.error).toBe('NONE');
    const refused = await hb({ memberId: 'a', memberEpoch: 0 });
    expect(refused).toMatchObject({ error: 'GROUP_ID_NOT_FOUND', errorMessage: 'Group g is not a consumer group.' });
    m.leaveGroup({ groupId: 'g', members: [{ memberId: joined.memberId, groupInstanceId: null }] }).settle();
    expect(m.groupState('g')).toBe('Empty');
    // An admin's commit to the empty classic group (kafka-consumer-groups --reset-offsets).
    const commit = m.commitOffsets({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1,
      topics: [{ name: 't1', partitions: [{ partitionIndex: 2, committedOffset: 9n, committedLeaderEpoch: -1, committedMetadata: '' }] }] });
    commit.settle();
    expect((await commit.response).topics[0]!.partitions[0]!.error).toBe('NONE');
    const out = m.consumerGroupHeartbeat({ apiVersion: 1, groupId: 'g', memberId: 'a', memberEpoch: 0, instanceId: null, rackId: null, rebalanceTimeoutMs: 30_000,
      subscribedTopicNames: ['t1'], subscribedTopicRegex: null, serverAssignor: null, topicPartitions: [], clientId: 'c', clientHost: 'h' });
    // The classic group's metadata is deleted first; its offsets stay for the new members.
    expect(decodeKey(out.records[0]!.key)).toEqual({ type: 'group', group: 'g' });
    expect(out.records[0]!.value).toBeNull();
    out.settle();
    expect((await out.response).error).toBe('NONE');
    expect(m.fetchOffsets({ groupId: 'g', topics: [{ name: 't1', partitionIndexes: [2] }] }).topics[0]!.partitions[0]!.committedOffset).toBe(9n);
    expect(m.listGroups().groups).toEqual([{ groupId: 'g', protocolType: 'consumer', groupState: 'Stable', groupType: 'consumer' }]);
  });

  it('an empty consumer group without offsets is deleted by the expiry pass', async () => {
    const { hb, m, background } = setup();
    await hb({ memberId: 'a', memberEpoch: 0 });
    await hb({ memberId: 'a', memberEpoch: -1 });
    m.expireOffsets();
    expect(background.map((r) => [decodeConsumerKey(r.key)?.type, r.value])).toEqual([[6, null], [3, null]]);
    expect(m.describeConsumerGroups(['g'])[0]!.error).toBe('GROUP_ID_NOT_FOUND');
  });

  it('replaying the records rebuilds the group, its epochs and assignments', async () => {
    const { hb, log, m } = setup();
    await hb({ memberId: 'a', memberEpoch: 0 });
    const b = await hb({ memberId: 'b', memberEpoch: 0 });
    const a = await hb({ memberId: 'a', memberEpoch: 1, topicPartitions: [{ topicId: T1, partitions: [0, 1, 2, 3] }] });
    const before = m.describeConsumerGroups(['g'])[0]!;
    const clock = new ManualClock();
    const again = new GroupCoordinator({ clock, config: { 'offsets.topic.num.partitions': 1 }, topics: { byName: (n) => (n === 't1' ? { topicId: T1, name: 't1', partitions: 4 } : undefined), byId: (id) => (id === T1 ? { topicId: T1, name: 't1', partitions: 4 } : undefined) } });
    again.beginLoad(0);
    for (const r of log) again.replay(0, r.key, r.value);
    again.completeLoad(0);
    expect(again.describeConsumerGroups(['g'])[0]).toEqual(before);
    // The revoking member goes on where it was.
    const out = again.consumerGroupHeartbeat({ apiVersion: 1, groupId: 'g', memberId: 'a', memberEpoch: 1, instanceId: null, rackId: null, rebalanceTimeoutMs: -1,
      subscribedTopicNames: null, subscribedTopicRegex: null, serverAssignor: null, topicPartitions: a.assignment, clientId: 'c', clientHost: 'h' });
    out.settle();
    expect((await out.response).memberEpoch).toBe(b.memberEpoch);
  });

  it('assignors: uniform balances and is sticky, range gives contiguous ranges', () => {
    const members = ['m1', 'm2', 'm3'].map((memberId) => ({ memberId, topics: new Set([T1, T2]), current: new Map<string, Set<number>>() }));
    const sizes = (r: Map<string, Map<string, Set<number>>>) => [...r.values()].map((a) => [...a.values()].reduce((n, s) => n + s.size, 0)).sort();
    const first = uniformAssignor.assign(members, (t) => (t === T1 ? 4 : 3));
    expect(sizes(first)).toEqual([2, 2, 3]);
    // m3 leaves: the others keep what they had.
    const next = uniformAssignor.assign(members.slice(0, 2).map((m) => ({ ...m, current: first.get(m.memberId)! })), (t) => (t === T1 ? 4 : 3));
    for (const id of ['m1', 'm2']) for (const [t, ps] of first.get(id)!) for (const p of ps) expect(next.get(id)!.get(t)?.has(p)).toBe(true);
    const range = rangeAssignor.assign(members.map((m) => ({ ...m, topics: new Set([T1]) })), () => 4);
    expect([...range.get('m1')!.get(T1)!]).toEqual([0, 1]);
    expect([...range.get('m3')!.get(T1)!]).toEqual([3]);
  });

  it('wire: a null assignment is int8 -1, a present one int8 1, both round-trip', () => {
    for (const version of [0, 1]) {
      for (const assignment of [null, { topicPartitions: [{ topicId: T1, partitions: [1, 2] }] }]) {
        const body = { throttleTimeMs: 0, errorCode: 0, errorMessage: null, memberId: 'm', memberEpoch: 3, heartbeatIntervalMs: 5000, assignment };
        const frame = encodeResponse(ApiKey.ConsumerGroupHeartbeat, version, 7, body);
        // size, correlation id, header tags, throttle, error, message (null), member id, epoch, interval, then the struct's marker
        const marker = frame.readInt8(4 + 4 + 1 + 4 + 2 + 1 + 2 + 4 + 4);
        expect(marker).toBe(assignment === null ? -1 : 1);
        const got = decodeResponse(ApiKey.ConsumerGroupHeartbeat, version, frame.subarray(4)).body;
        expect(got.assignment === null ? null : got.assignment.topicPartitions[0]!.partitions).toEqual(assignment === null ? null : [1, 2]);
        expect(got.assignment?.topicPartitions[0]!.topicId.replace(/-/g, '') ?? null).toBe(assignment === null ? null : T1);
      }
    }
  });
});
