import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GroupCoordinator, ManualClock, encodeSubscription, type Group, type JoinGroupResult } from '../src/index.ts';
import { Harness, flush, joinRequest } from './harness.ts';

/**
 * Random interleavings of clients against the state machine. Clients behave roughly like real
 * consumers (they keep the member id and generation they were given, the leader assigns), but
 * requests are fired without waiting for earlier answers, so every ordering gets exercised.
 * Checked after every step: no exception, the state/member invariants, and that nobody can be
 * left waiting forever (a timer exists for every wait). At the end, after the clock runs far
 * ahead, every request has been answered, and replaying the appended records yields the live state.
 */
const G = 'model';
const SLOTS = 4;

type Cmd =
  | { t: 'join'; who: number; kip394: boolean; sub: number; staticId: boolean }
  | { t: 'sync'; who: number }
  | { t: 'leaderSync' }
  | { t: 'hb'; who: number }
  | { t: 'leave'; who: number }
  | { t: 'commit'; who: number; partition: number; offset: number }
  | { t: 'advance'; ms: number }
  | { t: 'delete' }
  | { t: 'expire' };

const who = fc.integer({ min: 0, max: SLOTS - 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('join' as const), who, kip394: fc.boolean(), sub: fc.integer({ min: 0, max: 1 }), staticId: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('sync' as const), who }) },
  { weight: 2, arbitrary: fc.constant({ t: 'leaderSync' as const }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('hb' as const), who }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('leave' as const), who }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('commit' as const), who, partition: fc.integer({ min: 0, max: 2 }), offset: fc.integer({ min: 0, max: 1000 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.constantFrom(1, 500, 3000, 7000, 12_000, 31_000) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'delete' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'expire' as const }) },
);

interface Client {
  memberId: string;
  generation: number;
  staticId: string | null;
  lastJoin: JoinGroupResult | null;
}

/** States reached over all runs: the generator must actually drive groups through the machine. */
const statesSeen = new Set<string>();

function checkInvariants(g: Group | undefined): void {
  if (!g) return;
  statesSeen.add(g.state);
  expect(g.state).not.toBe('Dead');
  if (g.state === 'Empty') expect(g.members.size).toBe(0);
  if (g.state === 'Stable' || g.state === 'CompletingRebalance') {
    expect(g.members.size).toBeGreaterThan(0);
    expect(g.protocolName).not.toBeNull();
    for (const m of g.members.values()) expect(m.protocols.some((p) => p.name === g.protocolName)).toBe(true);
  }
  if (g.members.size > 0) expect(g.members.has(g.leaderId!)).toBe(true);
  // Somebody will answer every wait.
  if (g.state === 'PreparingRebalance') expect(g.joinTimer).not.toBeNull();
  if (g.state === 'CompletingRebalance') expect(g.syncTimer).not.toBeNull();
  for (const m of g.members.values()) {
    if (!m.isAwaitingJoin && !m.isAwaitingSync) expect(m.heartbeatTimer).not.toBeNull();
    if (m.isNew) expect(m.heartbeatTimer).not.toBeNull();
    if (m.groupInstanceId !== null) expect(g.staticMembers.get(m.groupInstanceId)).toBe(m.memberId);
  }
  for (const [instance, id] of g.staticMembers) expect(g.members.get(id)?.groupInstanceId).toBe(instance);
}

async function run(initialDelayMs: number, cmds: Cmd[]): Promise<void> {
  const h = new Harness({ 'offsets.retention.minutes': 1, 'group.initial.rebalance.delay.ms': initialDelayMs });
  const clients: Client[] = Array.from({ length: SLOTS }, () => ({ memberId: '', generation: -1, staticId: null, lastJoin: null }));
  const outstanding: Promise<unknown>[] = [];
  const subs = [encodeSubscription(['a']), encodeSubscription(['a', 'b'])];

  for (const c of cmds) {
    const cl = 'who' in c ? clients[c.who]! : null;
    switch (c.t) {
      case 'join': {
        if (cl!.memberId === '' && c.staticId) cl!.staticId = `instance-${c.who}`;
        const o = h.gc.joinGroup(
          joinRequest(G, {
            memberId: cl!.memberId,
            groupInstanceId: cl!.staticId,
            clientId: `c${c.who}`,
            requireKnownMemberId: c.kip394 && cl!.staticId === null,
            protocols: [{ name: 'range', metadata: subs[c.sub]! }],
          }),
        );
        const t = h.run(o);
        outstanding.push(
          o.response.then((r) => {
            if (r.error === 'NONE' || r.error === 'MEMBER_ID_REQUIRED') {
              cl!.memberId = r.memberId;
              if (r.error === 'NONE') {
                cl!.generation = r.generationId;
                cl!.lastJoin = r;
              }
            } else if (r.error === 'UNKNOWN_MEMBER_ID' || r.error === 'FENCED_INSTANCE_ID') {
              cl!.memberId = '';
              cl!.generation = -1;
            }
          }),
        );
        void t;
        break;
      }
      case 'leaderSync':
      case 'sync': {
        const cl = c.t === 'sync' ? clients[c.who]! : (clients.find((x) => x.lastJoin !== null && x.lastJoin.leader === x.memberId && x.generation === h.gc.group(G)?.generationId) ?? clients[0]!);
        const j = cl!.lastJoin;
        const assignments = j && j.leader === j.memberId ? j.members.map((m) => ({ memberId: m.memberId, assignment: Buffer.from(m.memberId) })) : [];
        const o = h.gc.syncGroup({ groupId: G, generationId: cl!.generation, memberId: cl!.memberId, groupInstanceId: cl!.staticId, protocolType: null, protocolName: null, assignments });
        h.run(o);
        outstanding.push(o.response);
        break;
      }
      case 'hb': {
        const o = h.gc.heartbeat({ groupId: G, generationId: cl!.generation, memberId: cl!.memberId, groupInstanceId: cl!.staticId });
        h.run(o);
        outstanding.push(o.response);
        break;
      }
      case 'leave': {
        const o = h.gc.leaveGroup({ groupId: G, members: [{ memberId: cl!.memberId, groupInstanceId: cl!.staticId }] });
        h.run(o);
        outstanding.push(o.response);
        cl!.memberId = '';
        cl!.generation = -1;
        cl!.staticId = null;
        break;
      }
      case 'commit': {
        const o = h.gc.commitOffsets({
          groupId: G,
          generationId: cl!.generation,
          memberId: cl!.memberId,
          groupInstanceId: cl!.staticId,
          retentionTimeMs: -1,
          topics: [{ name: 'a', partitions: [{ partitionIndex: c.partition, committedOffset: BigInt(c.offset), committedLeaderEpoch: -1, committedMetadata: null }] }],
        });
        h.run(o);
        outstanding.push(o.response);
        break;
      }
      case 'advance':
        h.clock.advance(c.ms);
        break;
      case 'delete':
        h.run(h.gc.deleteGroups([G]));
        break;
      case 'expire':
        h.gc.expireOffsets();
        break;
    }
    await flush();
    checkInvariants(h.gc.group(G));
  }

  // Everyone goes quiet: every wait must end (rebalance, sync and session timeouts).
  for (let i = 0; i < 20; i++) {
    h.clock.advance(60_000);
    await flush();
    checkInvariants(h.gc.group(G));
  }
  const settled = await Promise.race([Promise.all(outstanding).then(() => true), new Promise((r) => setTimeout(() => r(false), 1000))]);
  expect(settled).toBe(true);
  const g = h.gc.group(G);
  if (g) expect(g.state).toBe('Empty');

  // The log rebuilds what the live machine holds, before and after an expiry pass. (A group that
  // only ever had pending members and no offsets has no record at all, as in Kafka.)
  const compare = (phase: string) => {
    const copy = new GroupCoordinator({ clock: new ManualClock(h.clock.now()), config: { 'offsets.topic.num.partitions': 4 } });
    const p = h.gc.partitionFor(G);
    copy.beginLoad(p);
    for (const r of h.log) if (r.partition === p) copy.replay(p, r.key, r.value);
    copy.completeLoad(p);
    const live = h.gc.group(G);
    const neverWritten = live !== undefined && live.generationId === 0 && live.offsets.size === 0;
    if (!neverWritten) {
      expect(copy.describeGroups([G]), phase).toEqual(h.gc.describeGroups([G]));
      if (live) expect(copy.group(G)!.generationId, phase).toBe(live.generationId);
    }
    expect(copy.fetchOffsets({ groupId: G, topics: null }), phase).toEqual(h.gc.fetchOffsets({ groupId: G, topics: null }));
    copy.shutdown();
  };
  compare('before expiry');
  h.gc.expireOffsets();
  compare('after expiry');
  expect(h.gc.group(G)).toBeUndefined();
}

describe('model: random client interleavings', () => {
  it('keep the invariants, answer every request, and replay to the same state', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(0, 3000), fc.array(cmd, { minLength: 1, maxLength: 40 }), run), { numRuns: Number(process.env.MODEL_RUNS ?? 150), seed: Number(process.env.MODEL_SEED ?? 20261121) });
    // A fixed seed (override with MODEL_SEED) keeps this coverage check from depending on luck.
    expect([...statesSeen].sort()).toEqual(['CompletingRebalance', 'Empty', 'PreparingRebalance', 'Stable']);
  });
});
