import { describe, expect, it } from 'vitest';
import { GroupCoordinator, ManualClock, decodeGroupMetadataValue, decodeKey, encodeSubscription, type JoinGroupResult } from '../src/index.ts';
import { Harness, assignmentOf, flush, joinRequest, track, type Tracked } from './harness.ts';

const G = 'payments';

/** Joins `n` members into a fresh group (initial delay 3000 ms) and returns their join results. */
async function formGroup(h: Harness, n: number, groupId = G): Promise<JoinGroupResult[]> {
  const joins: Tracked<JoinGroupResult>[] = [];
  for (let i = 0; i < n; i++) joins.push(h.join(groupId, { clientId: `c${i}` }));
  await flush();
  expect(joins.every((j) => !j.done)).toBe(true);
  // Members that arrive during the initial delay extend it once more (Kafka's InitialDelayedJoin).
  h.clock.advance(n > 1 ? 6000 : 3000);
  await flush();
  expect(joins.every((j) => j.done)).toBe(true);
  return joins.map((j) => j.value);
}

/** Runs a full SyncGroup round: leader assigns `assign-<memberId>` to everyone. */
async function syncAll(h: Harness, results: JoinGroupResult[], groupId = G): Promise<Map<string, Buffer>> {
  const leader = results.find((r) => r.memberId === r.leader)!;
  const followers = results.filter((r) => r !== leader);
  const pending = followers.map((f) =>
    h.run(h.gc.syncGroup({ groupId, generationId: f.generationId, memberId: f.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] })),
  );
  await flush();
  expect(pending.every((p) => !p.done)).toBe(true);
  const leaderSync = h.run(
    h.gc.syncGroup({
      groupId,
      generationId: leader.generationId,
      memberId: leader.memberId,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocolName: leader.protocolName,
      assignments: leader.members.map((m) => ({ memberId: m.memberId, assignment: assignmentOf(`assign-${m.memberId}`) })),
    }),
  );
  await flush();
  const out = new Map<string, Buffer>();
  for (const [i, p] of [...pending, leaderSync].entries()) {
    expect(p.done).toBe(true);
    expect(p.value.error).toBe('NONE');
    const r = i < followers.length ? followers[i]! : leader;
    out.set(r.memberId, p.value.assignment);
  }
  return out;
}

const hb = (h: Harness, memberId: string, generationId: number, groupId = G) =>
  h.result(h.gc.heartbeat({ groupId, memberId, generationId, groupInstanceId: null }));

describe('join / sync / heartbeat', () => {
  it('one member: MEMBER_ID_REQUIRED, join after the initial delay, sync, heartbeat', async () => {
    const h = new Harness();
    const first = h.join(G, { requireKnownMemberId: true, clientId: 'app' });
    await flush();
    expect(first.value.error).toBe('MEMBER_ID_REQUIRED');
    expect(first.value.memberId).toBe('app-uuid-1');

    const join = h.join(G, { requireKnownMemberId: true, clientId: 'app', memberId: 'app-uuid-1' });
    await flush();
    expect(join.done).toBe(false);
    expect(h.gc.groupState(G)).toBe('PreparingRebalance');
    h.clock.advance(2999);
    await flush();
    expect(join.done).toBe(false);
    h.clock.advance(1);
    await flush();
    expect(join.value).toMatchObject({ error: 'NONE', generationId: 1, protocolName: 'range', leader: 'app-uuid-1', memberId: 'app-uuid-1' });
    expect(join.value.members.map((m) => m.memberId)).toEqual(['app-uuid-1']);
    expect(h.gc.groupState(G)).toBe('CompletingRebalance');

    const assignments = await syncAll(h, [join.value]);
    expect(assignments.get('app-uuid-1')!.toString()).toBe('assign-app-uuid-1');
    expect(h.gc.groupState(G)).toBe('Stable');
    expect((await hb(h, 'app-uuid-1', 1)).error).toBe('NONE');
    // The leader's assignment was persisted with the group.
    expect(h.log.filter((r) => r.value !== null)).toHaveLength(1);
  });

  it('a pending member id expires after the session timeout', async () => {
    const h = new Harness();
    const first = h.join(G, { requireKnownMemberId: true });
    await flush();
    h.clock.advance(10_000);
    const again = h.join(G, { requireKnownMemberId: true, memberId: first.value.memberId });
    await flush();
    expect(again.value.error).toBe('UNKNOWN_MEMBER_ID');
  });

  it('three members: the leader gets the member list, followers wait for its assignment', async () => {
    const h = new Harness();
    const results = await formGroup(h, 3);
    const leader = results[0]!.leader;
    for (const r of results) {
      expect(r.generationId).toBe(1);
      expect(r.leader).toBe(leader);
      expect(r.members.length).toBe(r.memberId === leader ? 3 : 0);
    }
    const assignments = await syncAll(h, results);
    for (const r of results) expect(assignments.get(r.memberId)!.toString()).toBe(`assign-${r.memberId}`);
    for (const r of results) expect((await hb(h, r.memberId, 1)).error).toBe('NONE');
  });

  it('the initial delay extends while members keep arriving, up to the rebalance timeout', async () => {
    const h = new Harness();
    const a = h.join(G, { rebalanceTimeoutMs: 7000 });
    h.clock.advance(2000);
    const b = h.join(G, { rebalanceTimeoutMs: 7000 });
    h.clock.advance(1000); // first delay ends; b arrived, so wait min(3000, 4000 left)
    await flush();
    expect(a.done).toBe(false);
    h.clock.advance(2000);
    const c = h.join(G, { rebalanceTimeoutMs: 7000 });
    h.clock.advance(1000); // second delay ends at 6000; c arrived; 1000 ms left
    await flush();
    expect(a.done).toBe(false);
    h.clock.advance(1000);
    await flush();
    expect([a, b, c].every((j) => j.done && j.value.generationId === 1)).toBe(true);
  });

  it('picks the protocol every member supports by vote and rejects a member with none in common', async () => {
    const h = new Harness({ 'group.initial.rebalance.delay.ms': 0 });
    const md = encodeSubscription(['t']);
    const a = h.join(G, { protocols: [{ name: 'range', metadata: md }, { name: 'roundrobin', metadata: md }] });
    await flush();
    expect(a.value.protocolName).toBe('range');
    const b = h.join(G, { protocols: [{ name: 'roundrobin', metadata: md }] });
    const a2 = h.join(G, { memberId: a.value.memberId, protocols: [{ name: 'range', metadata: md }, { name: 'roundrobin', metadata: md }] });
    await flush();
    expect(a2.value.protocolName).toBe('roundrobin');
    expect(b.value.protocolName).toBe('roundrobin');
    const c = h.join(G, { protocols: [{ name: 'sticky', metadata: md }] });
    await flush();
    expect(c.value.error).toBe('INCONSISTENT_GROUP_PROTOCOL');
    const d = h.join(G, { protocolType: 'connect', protocols: [{ name: 'roundrobin', metadata: md }] });
    await flush();
    expect(d.value.error).toBe('INCONSISTENT_GROUP_PROTOCOL');
  });

  it('rejects session timeouts outside the configured bounds', async () => {
    const h = new Harness();
    for (const sessionTimeoutMs of [5999, 1_800_001]) {
      const j = h.join(G, { sessionTimeoutMs });
      await flush();
      expect(j.value.error).toBe('INVALID_SESSION_TIMEOUT');
    }
    expect(h.gc.groupState(G)).toBeUndefined();
  });
});

describe('rebalances', () => {
  it('a new member triggers a rebalance: heartbeats say REBALANCE_IN_PROGRESS until everyone rejoins', async () => {
    const h = new Harness();
    const [a] = await formGroup(h, 1);
    await syncAll(h, [a!]);
    const b = h.join(G, { clientId: 'late' });
    await flush();
    expect(h.gc.groupState(G)).toBe('PreparingRebalance');
    expect((await hb(h, a!.memberId, 1)).error).toBe('REBALANCE_IN_PROGRESS');
    expect(b.done).toBe(false);
    const a2 = h.join(G, { memberId: a!.memberId });
    await flush();
    expect(a2.value.generationId).toBe(2);
    expect(b.value.generationId).toBe(2);
    expect(a2.value.leader).toBe(a!.memberId); // the leader is kept
    const assignments = await syncAll(h, [a2.value, b.value]);
    expect(assignments.size).toBe(2);
  });

  it('LeaveGroup removes the member and rebalances at once', async () => {
    const h = new Harness();
    const results = await formGroup(h, 2);
    await syncAll(h, results);
    const [leader, follower] = results[0]!.memberId === results[0]!.leader ? results : [results[1]!, results[0]!];
    const leave = await h.result(h.gc.leaveGroup({ groupId: G, members: [{ memberId: leader!.memberId, groupInstanceId: null }] }));
    expect(leave.members[0]!.error).toBe('NONE');
    expect(h.gc.groupState(G)).toBe('PreparingRebalance');
    const rejoin = h.join(G, { memberId: follower!.memberId });
    await flush();
    expect(rejoin.value).toMatchObject({ error: 'NONE', generationId: 2, leader: follower!.memberId });
    const unknown = await h.result(h.gc.leaveGroup({ groupId: G, members: [{ memberId: 'nobody', groupInstanceId: null }] }));
    expect(unknown.members[0]!.error).toBe('UNKNOWN_MEMBER_ID');
  });

  it('session expiry removes a silent member and the group rebalances without it', async () => {
    const h = new Harness();
    const results = await formGroup(h, 2);
    await syncAll(h, results);
    const [alive, silent] = results;
    for (let t = 0; t < 3; t++) {
      h.clock.advance(3000);
      expect((await hb(h, alive!.memberId, 1)).error).toBe('NONE');
    }
    h.clock.advance(3000);
    // 12 s passed: the silent member's 10 s session expired.
    expect(h.gc.group(G)!.has(silent!.memberId)).toBe(false);
    expect((await hb(h, alive!.memberId, 1)).error).toBe('REBALANCE_IN_PROGRESS');
    const rejoin = h.join(G, { memberId: alive!.memberId });
    await flush();
    expect(rejoin.value.generationId).toBe(2);
    expect(rejoin.value.members.map((m) => m.memberId)).toEqual([alive!.memberId]);
    expect((await hb(h, silent!.memberId, 1)).error).toBe('UNKNOWN_MEMBER_ID');
  });

  it('the rebalance timeout kicks members that do not rejoin', async () => {
    const h = new Harness();
    const results = await formGroup(h, 3);
    await syncAll(h, results);
    const [a, b, c] = results;
    const newcomer = h.join(G, { clientId: 'new' });
    const a2 = h.join(G, { memberId: a!.memberId });
    // b keeps heartbeating but never rejoins; c is silent.
    for (let t = 0; t < 9; t++) {
      h.clock.advance(3000);
      await hb(h, b!.memberId, 1);
    }
    await flush();
    expect(a2.done).toBe(false);
    h.clock.advance(3000); // 30 s rebalance timeout
    await flush();
    expect(a2.value.generationId).toBe(2);
    expect(newcomer.value.generationId).toBe(2);
    const ids = new Set(h.gc.group(G)!.members.keys());
    expect(ids).toEqual(new Set([a!.memberId, newcomer.value.memberId]));
    expect((await hb(h, b!.memberId, 2)).error).toBe('UNKNOWN_MEMBER_ID');
    expect((await hb(h, c!.memberId, 2)).error).toBe('UNKNOWN_MEMBER_ID');
  });

  it('members that never sync are removed after the rebalance timeout', async () => {
    const h = new Harness();
    const results = await formGroup(h, 2);
    const leader = results.find((r) => r.memberId === r.leader)!;
    const follower = results.find((r) => r !== leader)!;
    const sync = h.run(
      h.gc.syncGroup({ groupId: G, generationId: 1, memberId: leader.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] }),
    );
    await flush();
    expect(sync.value.error).toBe('NONE');
    for (let t = 0; t < 10; t++) {
      h.clock.advance(3000);
      await hb(h, leader.memberId, 1);
    }
    expect(h.gc.group(G)!.has(follower.memberId)).toBe(false);
    expect(h.gc.groupState(G)).toBe('PreparingRebalance');
  });

  it('answers ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID', async () => {
    const h = new Harness();
    const [a] = await formGroup(h, 1);
    await syncAll(h, [a!]);
    expect((await hb(h, a!.memberId, 0)).error).toBe('ILLEGAL_GENERATION');
    expect((await hb(h, 'ghost', 1)).error).toBe('UNKNOWN_MEMBER_ID');
    expect((await hb(h, a!.memberId, 1, 'other-group')).error).toBe('UNKNOWN_MEMBER_ID');
    const sync = await h.result(
      h.gc.syncGroup({ groupId: G, generationId: 7, memberId: a!.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] }),
    );
    expect(sync.error).toBe('ILLEGAL_GENERATION');
    const join = h.join(G, { memberId: 'ghost' });
    await flush();
    expect(join.value.error).toBe('UNKNOWN_MEMBER_ID');
  });

  it('a rebalance during CompletingRebalance answers waiting followers REBALANCE_IN_PROGRESS', async () => {
    const h = new Harness();
    const results = await formGroup(h, 2);
    const follower = results.find((r) => r.memberId !== r.leader)!;
    const sync = h.run(
      h.gc.syncGroup({ groupId: G, generationId: 1, memberId: follower.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] }),
    );
    h.join(G, { clientId: 'third' });
    await flush();
    expect(sync.value.error).toBe('REBALANCE_IN_PROGRESS');
  });
});

describe('static membership', () => {
  it('a restarted static member takes over its seat without a rebalance; the old id is fenced', async () => {
    const h = new Harness({ 'group.initial.rebalance.delay.ms': 0 });
    const a = h.join(G, { groupInstanceId: 'pod-a', clientId: 'a' });
    const b = h.join(G, { groupInstanceId: 'pod-b', clientId: 'b' });
    await flush();
    // a's first join completed generation 1 alone; b's join started generation 2.
    const a2 = h.join(G, { groupInstanceId: 'pod-a', memberId: a.value.memberId, clientId: 'a' });
    await flush();
    expect(a2.value.generationId).toBe(2);
    await syncAll(h, [a2.value, b.value]);
    const before = h.gc.group(G)!.generationId;

    const restarted = h.join(G, { groupInstanceId: 'pod-b', clientId: 'b' });
    await flush();
    expect(restarted.value.error).toBe('NONE');
    expect(restarted.value.memberId).not.toBe(b.value.memberId);
    expect(restarted.value.generationId).toBe(before);
    expect(h.gc.groupState(G)).toBe('Stable');
    const fenced = await h.result(h.gc.heartbeat({ groupId: G, memberId: b.value.memberId, generationId: before, groupInstanceId: 'pod-b' }));
    expect(fenced.error).toBe('FENCED_INSTANCE_ID');
    const ok = await h.result(h.gc.heartbeat({ groupId: G, memberId: restarted.value.memberId, generationId: before, groupInstanceId: 'pod-b' }));
    expect(ok.error).toBe('NONE');
    const sync = await h.result(
      h.gc.syncGroup({ groupId: G, generationId: before, memberId: restarted.value.memberId, groupInstanceId: 'pod-b', protocolType: null, protocolName: null, assignments: [] }),
    );
    expect(sync.assignment.toString()).toBe(`assign-${b.value.memberId}`);
  });


  it('a restarted static leader is not told it leads (JoinGroup < v9), so it does not reassign', async () => {
    const h = new Harness({ 'group.initial.rebalance.delay.ms': 0 });
    const a = h.join(G, { groupInstanceId: 'pod-a' });
    await flush();
    await syncAll(h, [a.value]);
    const restarted = h.join(G, { groupInstanceId: 'pod-a' });
    await flush();
    expect(restarted.value).toMatchObject({ error: 'NONE', generationId: 1, leader: a.value.memberId, members: [] });
    expect(restarted.value.memberId).not.toBe(a.value.memberId);
    expect(h.gc.group(G)!.leaderId).toBe(restarted.value.memberId);
    const sync = await h.result(
      h.gc.syncGroup({ groupId: G, generationId: 1, memberId: restarted.value.memberId, groupInstanceId: 'pod-a', protocolType: null, protocolName: null, assignments: [] }),
    );
    expect(sync.assignment.toString()).toBe(`assign-${a.value.memberId}`);
  });

  it('a static member rejoining with a different protocol triggers a rebalance', async () => {
    const h = new Harness({ 'group.initial.rebalance.delay.ms': 0 });
    const a = h.join(G, { groupInstanceId: 'pod-a' });
    await flush();
    await syncAll(h, [a.value]);
    const md = encodeSubscription(['orders']);
    const changed = h.join(G, { groupInstanceId: 'pod-a', protocols: [{ name: 'roundrobin', metadata: md }, { name: 'range', metadata: md }] });
    await flush();
    expect(changed.value.generationId).toBe(2);
    expect(changed.value.protocolName).toBe('roundrobin');
  });
});

describe('offsets', () => {
  const commit = (h: Harness, generationId: number, memberId: string, offset: bigint, groupId = G) =>
    h.result(
      h.gc.commitOffsets({
        groupId,
        generationId,
        memberId,
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: 'm' }] }],
      }),
    );

  it('validates commits by generation and member; stand-alone commits need an Empty group', async () => {
    const h = new Harness();
    expect((await commit(h, 3, 'x', 1n)).topics[0]!.partitions[0]!.error).toBe('ILLEGAL_GENERATION');
    expect((await commit(h, -1, '', 5n, 'standalone')).topics[0]!.partitions[0]!.error).toBe('NONE');
    // Generation -1 on an Empty group is an admin commit, whatever the member id says.
    expect((await commit(h, -1, 'admin-client', 6n, 'standalone')).topics[0]!.partitions[0]!.error).toBe('NONE');
    expect(h.gc.fetchOffsets({ groupId: 'standalone', topics: null }).topics[0]!.partitions[0]!.committedOffset).toBe(6n);

    const results = await formGroup(h, 2);
    const [a, b] = results;
    // Generation 1 is completing: no assignment yet.
    expect((await commit(h, 1, a!.memberId, 1n)).topics[0]!.partitions[0]!.error).toBe('REBALANCE_IN_PROGRESS');
    await syncAll(h, results);
    expect((await commit(h, 1, a!.memberId, 10n)).topics[0]!.partitions[0]!.error).toBe('NONE');
    expect((await commit(h, 0, a!.memberId, 11n)).topics[0]!.partitions[0]!.error).toBe('ILLEGAL_GENERATION');
    expect((await commit(h, 1, 'ghost', 11n)).topics[0]!.partitions[0]!.error).toBe('UNKNOWN_MEMBER_ID');
    expect((await commit(h, -1, '', 11n)).topics[0]!.partitions[0]!.error).toBe('UNKNOWN_MEMBER_ID');
    // A new member makes a new generation: commits of generation 1 are now stale.
    h.join(G, { clientId: 'third' });
    const a2 = h.join(G, { memberId: a!.memberId });
    const b2 = h.join(G, { memberId: b!.memberId });
    await flush();
    expect(a2.value.generationId).toBe(2);
    expect(b2.value.generationId).toBe(2);
    expect((await commit(h, 1, a!.memberId, 12n)).topics[0]!.partitions[0]!.error).toBe('ILLEGAL_GENERATION');
    const fetched = h.gc.fetchOffsets({ groupId: G, topics: [{ name: 'orders', partitionIndexes: [0, 1] }] });
    expect(fetched.topics[0]!.partitions).toEqual([
      { partitionIndex: 0, committedOffset: 10n, committedLeaderEpoch: -1, metadata: 'm', error: 'NONE' },
      { partitionIndex: 1, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', error: 'NONE' },
    ]);
  });

  it('a failed append leaves the offset uncommitted and says COORDINATOR_NOT_AVAILABLE', async () => {
    const h = new Harness();
    const t = h.run(
      h.gc.commitOffsets({
        groupId: 'solo',
        generationId: -1,
        memberId: '',
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 3n, committedLeaderEpoch: -1, committedMetadata: null }] }],
      }),
      new Error('disk full'),
    );
    await flush();
    expect(t.value.topics[0]!.partitions[0]!.error).toBe('COORDINATOR_NOT_AVAILABLE');
    expect(h.gc.fetchOffsets({ groupId: 'solo', topics: null }).topics).toEqual([]);
  });

  it('rejects metadata over offset.metadata.max.bytes', async () => {
    const h = new Harness({ 'offset.metadata.max.bytes': 4 });
    const r = await h.result(
      h.gc.commitOffsets({
        groupId: 'solo',
        generationId: -1,
        memberId: '',
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 3n, committedLeaderEpoch: -1, committedMetadata: 'too long' }] }],
      }),
    );
    expect(r.topics[0]!.partitions[0]!.error).toBe('OFFSET_METADATA_TOO_LARGE');
  });

  it('expires an Empty group’s offsets after offsets.retention.minutes, then the group', async () => {
    const h = new Harness({ 'offsets.retention.minutes': 1, 'group.initial.rebalance.delay.ms': 0 });
    const a = h.join(G);
    await flush();
    await syncAll(h, [a.value]);
    await commit(h, 1, a.value.memberId, 42n);
    await h.result(h.gc.leaveGroup({ groupId: G, members: [{ memberId: a.value.memberId, groupInstanceId: null }] }));
    expect(h.gc.groupState(G)).toBe('Empty');
    h.clock.advance(59_000);
    expect(h.gc.expireOffsets()).toEqual([]);
    h.clock.advance(1000);
    const tombstones = h.gc.expireOffsets();
    expect(tombstones.map((r) => r.value)).toEqual([null, null]); // the offset, then the group
    expect(h.gc.groupState(G)).toBeUndefined();
    expect(h.gc.fetchOffsets({ groupId: G, topics: [{ name: 'orders', partitionIndexes: [0] }] }).topics[0]!.partitions[0]!.committedOffset).toBe(-1n);
  });

  it('keeps a Stable consumer group’s offsets for subscribed topics and expires the others', async () => {
    const h = new Harness({ 'offsets.retention.minutes': 1, 'group.initial.rebalance.delay.ms': 0 });
    const a = h.join(G, { sessionTimeoutMs: 120_000 }); // subscribes to "orders"
    await flush();
    await syncAll(h, [a.value]);
    await h.result(
      h.gc.commitOffsets({
        groupId: G,
        generationId: 1,
        memberId: a.value.memberId,
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: ['orders', 'old'].map((name) => ({ name, partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: '' }] })),
      }),
    );
    h.clock.advance(60_000);
    h.gc.expireOffsets();
    expect(h.gc.fetchOffsets({ groupId: G, topics: null }).topics.map((t) => t.name)).toEqual(['orders']);
  });

  it('OffsetDelete refuses subscribed topics of a live consumer group', async () => {
    const h = new Harness({ 'group.initial.rebalance.delay.ms': 0 });
    const a = h.join(G);
    await flush();
    await syncAll(h, [a.value]);
    await h.result(
      h.gc.commitOffsets({
        groupId: G,
        generationId: 1,
        memberId: a.value.memberId,
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: ['orders', 'old'].map((name) => ({ name, partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: '' }] })),
      }),
    );
    const r = await h.result(h.gc.deleteOffsets({ groupId: G, topics: [{ name: 'orders', partitions: [0] }, { name: 'old', partitions: [0] }] }));
    expect(r.error).toBe('NONE');
    expect(r.topics.map((t) => t.partitions[0]!.error)).toEqual(['GROUP_SUBSCRIBED_TO_TOPIC', 'NONE']);
    expect(h.gc.fetchOffsets({ groupId: G, topics: null }).topics.map((t) => t.name)).toEqual(['orders']);
    expect((await h.result(h.gc.deleteOffsets({ groupId: 'nope', topics: [] }))).error).toBe('GROUP_ID_NOT_FOUND');
  });

  it('reports lag and the age of each commit', async () => {
    const h = new Harness();
    await commit(h, -1, '', 40n, 'solo');
    h.clock.advance(5500);
    expect(h.gc.lag('solo', () => 100n)).toEqual([
      { topic: 'orders', partition: 0, committedOffset: 40n, logEndOffset: 100n, lag: 60n, secondsSinceCommit: 5 },
    ]);
  });
});

describe('admin', () => {
  it('DeleteGroups deletes only Empty groups and writes tombstones', async () => {
    const h = new Harness({ 'group.initial.rebalance.delay.ms': 0 });
    const a = h.join(G);
    await flush();
    await syncAll(h, [a.value]);
    await h.result(
      h.gc.commitOffsets({
        groupId: G,
        generationId: 1,
        memberId: a.value.memberId,
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: '' }] }],
      }),
    );
    expect(await h.result(h.gc.deleteGroups([G, 'missing']))).toEqual([
      { groupId: G, error: 'NON_EMPTY_GROUP' },
      { groupId: 'missing', error: 'GROUP_ID_NOT_FOUND' },
    ]);
    await h.result(h.gc.leaveGroup({ groupId: G, members: [{ memberId: a.value.memberId, groupInstanceId: null }] }));
    const before = h.log.length;
    expect(await h.result(h.gc.deleteGroups([G]))).toEqual([{ groupId: G, error: 'NONE' }]);
    expect(h.log.slice(before).map((r) => r.value)).toEqual([null, null]);
    expect(h.gc.describeGroups([G])[0]!.groupState).toBe('Dead');
    expect(h.gc.fetchOffsets({ groupId: G, topics: null }).topics).toEqual([]);
  });

  it('describes and lists groups, with a state filter', async () => {
    const h = new Harness({ 'group.initial.rebalance.delay.ms': 0 });
    const a = h.join(G, { clientId: 'desc' });
    await flush();
    await syncAll(h, [a.value]);
    h.join('other');
    await flush();
    const [d] = h.gc.describeGroups([G]);
    expect(d).toMatchObject({ error: 'NONE', groupState: 'Stable', protocolType: 'consumer', protocolData: 'range' });
    expect(d!.members[0]).toMatchObject({ memberId: a.value.memberId, clientId: 'desc', clientHost: '/127.0.0.1' });
    expect(d!.members[0]!.memberAssignment.toString()).toBe(`assign-${a.value.memberId}`);
    expect(h.gc.listGroups().groups.map((g) => g.groupId).sort()).toEqual(['other', G]);
    expect(h.gc.listGroups(['stable']).groups.map((g) => g.groupId)).toEqual([G]);
    expect(h.gc.listGroups(['CompletingRebalance']).groups.map((g) => g.groupId)).toEqual(['other']);
  });

  it('answers NOT_COORDINATOR and COORDINATOR_LOAD_IN_PROGRESS by partition ownership', async () => {
    const clock = new ManualClock();
    const gc = new GroupCoordinator({ clock, config: { 'offsets.topic.num.partitions': 4 } });
    const p = gc.partitionFor(G);
    expect((await gc.joinGroup(joinRequest(G)).response).error).toBe('NOT_COORDINATOR');
    gc.beginLoad(p);
    expect((await gc.joinGroup(joinRequest(G)).response).error).toBe('COORDINATOR_LOAD_IN_PROGRESS');
    // Heartbeats are answered blindly and SyncGroup sends members back to JoinGroup, as Kafka does.
    expect((await gc.heartbeat({ groupId: G, generationId: 1, memberId: 'm', groupInstanceId: null }).response).error).toBe('NONE');
    expect((await gc.syncGroup({ groupId: G, generationId: 1, memberId: 'm', groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] }).response).error).toBe('REBALANCE_IN_PROGRESS');
    expect(gc.fetchOffsets({ groupId: G, topics: null }).error).toBe('COORDINATOR_LOAD_IN_PROGRESS');
    gc.completeLoad(p);
    expect((await gc.heartbeat({ groupId: G, generationId: 1, memberId: 'm', groupInstanceId: null }).response).error).toBe('UNKNOWN_MEMBER_ID');
    expect((await gc.joinGroup(joinRequest('')).response).error).toBe('INVALID_GROUP_ID');
  });
});

describe('replay', () => {
  it('replaying the appended records rebuilds offsets and group generation, protocol, leader and assignments', async () => {
    const h = new Harness();
    const results = await formGroup(h, 3);
    await syncAll(h, results);
    for (const [i, r] of results.entries()) {
      await h.result(
        h.gc.commitOffsets({
          groupId: G,
          generationId: 1,
          memberId: r.memberId,
          groupInstanceId: null,
          retentionTimeMs: -1,
          topics: [{ name: 'orders', partitions: [{ partitionIndex: i, committedOffset: BigInt(100 * i), committedLeaderEpoch: 3, committedMetadata: `m${i}` }] }],
        }),
      );
    }
    // A stand-alone group, and one that was deleted (its tombstones must win on replay).
    await h.result(h.gc.commitOffsets({ groupId: 'solo', generationId: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1, topics: [{ name: 'x', partitions: [{ partitionIndex: 0, committedOffset: 7n, committedLeaderEpoch: -1, committedMetadata: null }] }] }));
    await h.result(h.gc.commitOffsets({ groupId: 'gone', generationId: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1, topics: [{ name: 'x', partitions: [{ partitionIndex: 0, committedOffset: 7n, committedLeaderEpoch: -1, committedMetadata: null }] }] }));
    await h.result(h.gc.deleteGroups(['gone']));

    const clock = new ManualClock(h.clock.now());
    const copy = new GroupCoordinator({ clock, config: { 'offsets.topic.num.partitions': 4 } });
    for (let p = 0; p < 4; p++) {
      copy.beginLoad(p);
      for (const r of h.log.filter((x) => x.partition === p)) copy.replay(p, r.key, r.value);
      copy.completeLoad(p);
    }
    for (const id of [G, 'solo', 'gone']) {
      expect(copy.describeGroups([id])).toEqual(h.gc.describeGroups([id]));
      expect(copy.fetchOffsets({ groupId: id, topics: null })).toEqual(h.gc.fetchOffsets({ groupId: id, topics: null }));
    }
    const g = copy.group(G)!;
    expect(g.generationId).toBe(1);
    expect(g.leaderId).toBe(results[0]!.leader);
    expect(g.protocolName).toBe('range');
    // The loaded members are live: they heartbeat with their generation, and expire if silent.
    const m = results[0]!.memberId;
    expect((await copy.heartbeat({ groupId: G, generationId: 1, memberId: m, groupInstanceId: null }).response).error).toBe('NONE');
    clock.advance(10_000);
    expect(copy.group(G)!.has(results[1]!.memberId)).toBe(false);
  });
});

describe('more transitions', () => {
  it('a member leaving during a rebalance lets the others complete it', async () => {
    const h = new Harness();
    const results = await formGroup(h, 2);
    await syncAll(h, results);
    const [a, b] = results;
    const a2 = h.join(G, { memberId: a!.memberId, protocols: [{ name: 'range', metadata: encodeSubscription(['orders', 'more']) }] });
    await flush();
    expect(a2.done).toBe(false); // waiting for b
    await h.result(h.gc.leaveGroup({ groupId: G, members: [{ memberId: b!.memberId, groupInstanceId: null }] }));
    await flush();
    expect(a2.value).toMatchObject({ error: 'NONE', generationId: 2, leader: a!.memberId });
  });

  it('the last member leaving makes the group Empty and stores that (a background record)', async () => {
    const h = new Harness();
    const [a] = await formGroup(h, 1);
    await syncAll(h, [a!]);
    const before = h.log.length;
    await h.result(h.gc.leaveGroup({ groupId: G, members: [{ memberId: a!.memberId, groupInstanceId: null }] }));
    expect(h.gc.groupState(G)).toBe('Empty');
    const written = h.log.slice(before);
    expect(written).toHaveLength(1);
    expect(decodeKey(written[0]!.key)).toEqual({ type: 'group', group: G });
    expect(decodeGroupMetadataValue(written[0]!.value!)).toMatchObject({ generation: 2, protocol: null, leader: null, members: [], protocolType: 'consumer' });
  });

  it('a static member can be removed by instance id alone; a wrong member id is fenced', async () => {
    const h = new Harness({ 'group.initial.rebalance.delay.ms': 0 });
    const a = h.join(G, { groupInstanceId: 'pod-a' });
    await flush();
    await syncAll(h, [a.value]);
    const fenced = await h.result(h.gc.leaveGroup({ groupId: G, members: [{ memberId: 'someone-else', groupInstanceId: 'pod-a' }] }));
    expect(fenced.members[0]!.error).toBe('FENCED_INSTANCE_ID');
    const removed = await h.result(h.gc.leaveGroup({ groupId: G, members: [{ memberId: '', groupInstanceId: 'pod-a' }] }));
    expect(removed.members[0]!.error).toBe('NONE');
    expect(h.gc.groupState(G)).toBe('Empty');
  });

  it('an explicit retention (OffsetCommit v2-4) expires the offset at that time', async () => {
    const h = new Harness();
    await h.result(
      h.gc.commitOffsets({
        groupId: 'solo',
        generationId: -1,
        memberId: '',
        groupInstanceId: null,
        retentionTimeMs: 1000,
        topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: null }] }],
      }),
    );
    h.clock.advance(999);
    expect(h.gc.expireOffsets()).toEqual([]);
    h.clock.advance(1);
    expect(h.gc.expireOffsets()).toHaveLength(1); // the offset; a group with generation 0 has no metadata record
    expect(h.gc.groupState('solo')).toBeUndefined();
  });


  it('a commit in flight during OffsetDelete or expiry does not come back (live state = replayed log)', async () => {
    const h = new Harness({ 'offsets.retention.minutes': 1 });
    const commitReq = (offset: bigint) =>
      h.gc.commitOffsets({
        groupId: 'solo',
        generationId: -1,
        memberId: '',
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null }] }],
      });
    await h.result(commitReq(1n));
    h.clock.advance(60_000);
    // Appended, not yet durable: expiry must leave the partition alone.
    const inflight = commitReq(2n);
    h.log.push(...inflight.records);
    expect(h.gc.expireOffsets()).toEqual([]);
    // OffsetDelete now: its tombstone lands after the in-flight commit in the log.
    const del = await h.result(h.gc.deleteOffsets({ groupId: 'solo', topics: [{ name: 't', partitions: [0] }] }));
    expect(del.topics[0]!.partitions[0]!.error).toBe('NONE');
    inflight.settle();
    expect((await inflight.response).topics[0]!.partitions[0]!.error).toBe('NONE');
    expect(h.gc.fetchOffsets({ groupId: 'solo', topics: null }).topics).toEqual([]);
    const copy = new GroupCoordinator({ clock: new ManualClock(), config: { 'offsets.topic.num.partitions': 4 } });
    const p = h.gc.partitionFor('solo');
    copy.beginLoad(p);
    for (const r of h.log) copy.replay(p, r.key, r.value);
    copy.completeLoad(p);
    expect(copy.fetchOffsets({ groupId: 'solo', topics: null })).toEqual(h.gc.fetchOffsets({ groupId: 'solo', topics: null }));
  });

  it('the periodic expiry check runs on the clock', async () => {
    const h = new Harness({ 'offsets.retention.minutes': 1, 'offsets.retention.check.interval.ms': 10_000 });
    h.gc.startExpiry();
    await h.result(
      h.gc.commitOffsets({
        groupId: 'solo',
        generationId: -1,
        memberId: '',
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: null }] }],
      }),
    );
    h.clock.advance(70_000);
    expect(h.log.at(-1)!.value).toBeNull();
    expect(h.gc.groupState('solo')).toBeUndefined();
    h.gc.stopExpiry();
  });

  it('unloading a partition answers waiting members NOT_COORDINATOR and forgets its groups', async () => {
    const h = new Harness();
    const j = h.join(G);
    await flush();
    h.gc.unload(h.gc.partitionFor(G));
    await flush();
    expect(j.value.error).toBe('NOT_COORDINATOR');
    expect(h.gc.groupState(G)).toBeUndefined();
    expect((await h.result(h.gc.heartbeat({ groupId: G, generationId: 0, memberId: 'x', groupInstanceId: null }))).error).toBe('NOT_COORDINATOR');
  });

  it('a failed append of the leader assignment sends everyone back to rejoin', async () => {
    const h = new Harness();
    const results = await formGroup(h, 2);
    const leader = results.find((r) => r.memberId === r.leader)!;
    const follower = results.find((r) => r !== leader)!;
    const f = h.run(h.gc.syncGroup({ groupId: G, generationId: 1, memberId: follower.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] }));
    const l = h.run(
      h.gc.syncGroup({ groupId: G, generationId: 1, memberId: leader.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] }),
      new Error('append failed'),
    );
    await flush();
    expect(f.value.error).toBe('COORDINATOR_NOT_AVAILABLE');
    expect(l.value.error).toBe('COORDINATOR_NOT_AVAILABLE');
    expect(h.gc.groupState(G)).toBe('PreparingRebalance');
  });
});

describe('clock', () => {
  it('runs due timers in order, including ones scheduled while advancing', () => {
    const c = new ManualClock(0);
    const seen: number[] = [];
    c.schedule(10, () => {
      seen.push(c.now());
      c.schedule(5, () => seen.push(c.now()));
    });
    const cancelled = c.schedule(12, () => seen.push(-1));
    cancelled.cancel();
    c.advance(20);
    expect(seen).toEqual([10, 15]);
    expect(c.now()).toBe(20);
  });
});

describe('deleted topics', () => {
  const standalone = (groupId: string, topics: [string, bigint][]) => ({
    groupId, generationId: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1,
    topics: topics.map(([name, offset]) => ({ name, partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: 0, committedMetadata: null }] })),
  });
  const offsetOf = (gc: GroupCoordinator, groupId: string, topic: string) =>
    gc.fetchOffsets({ groupId, topics: [{ name: topic, partitionIndexes: [0] }] }).topics[0]!.partitions[0]!.committedOffset;

  it('tombstones a deleted topic\'s offsets in every group, an in-flight commit included; an Empty group left with none dies; replay agrees', async () => {
    const h = new Harness();
    await h.result(h.gc.commitOffsets(standalone('a', [['orders', 5n], ['audit', 7n]])));
    await h.result(h.gc.commitOffsets(standalone('b', [['orders', 3n]])));
    // c's commit is appended (its records are in the log) but not durable yet when the topic goes.
    const inFlight = h.gc.commitOffsets(standalone('c', [['orders', 9n], ['audit', 1n]]));
    h.log.push(...inFlight.records);

    const tombstones = h.gc.deleteTopicOffsets(new Set(['orders']));
    expect(tombstones.map((r) => [decodeKey(r.key), r.value])).toEqual(expect.arrayContaining([
      [{ type: 'offset', group: 'a', topic: 'orders', partition: 0 }, null],
      [{ type: 'offset', group: 'b', topic: 'orders', partition: 0 }, null],
      [{ type: 'offset', group: 'c', topic: 'orders', partition: 0 }, null],
    ]));
    expect(tombstones).toHaveLength(3); // b never had a metadata record (generation 0)
    expect(h.log.slice(-3)).toEqual(tombstones); // through onRecords, after c's commit
    inFlight.settle();
    await flush();

    expect(offsetOf(h.gc, 'a', 'orders')).toBe(-1n);
    expect(offsetOf(h.gc, 'a', 'audit')).toBe(7n);
    expect(h.gc.groupState('b')).toBeUndefined();
    expect(offsetOf(h.gc, 'c', 'orders')).toBe(-1n);
    expect(offsetOf(h.gc, 'c', 'audit')).toBe(1n);
    expect(h.gc.deleteTopicOffsets(new Set(['orders']))).toEqual([]);

    const copy = new GroupCoordinator({ clock: new ManualClock(h.clock.now()), config: { 'offsets.topic.num.partitions': 4 } });
    for (let p = 0; p < 4; p++) {
      copy.beginLoad(p);
      for (const r of h.log.filter((x) => x.partition === p)) copy.replay(p, r.key, r.value);
      copy.completeLoad(p);
    }
    for (const id of ['a', 'b', 'c']) expect(copy.fetchOffsets({ groupId: id, topics: null })).toEqual(h.gc.fetchOffsets({ groupId: id, topics: null }));
  });
});

void track;
