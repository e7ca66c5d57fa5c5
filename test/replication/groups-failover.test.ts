// Consumer groups survive the loss of a broker (issue "Replication", item 8): 3 brokers with an
// RF 3 `__consumer_offsets`, one coordinator process, a kafkajs group consuming and committing.
// The broker leading the group's offsets partition is killed with -9: once the controller elects a
// new leader from the ISR, the coordinator sends its appends there (retrying what failed), and
// the group keeps committing and rebalancing (a second member joins). Every commit the group was
// told succeeded is still there afterwards, also after the coordinator itself is killed and
// replays the partition from the new leader; and no record is skipped.
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { partitionForGroup } from '@runnel/protocol';
import type { TestCluster } from '../helpers/cluster.ts';
import { until } from '../helpers/until.ts';
import { brokerById, createTopic, fullIsr, kafkaOf, kill9, newLeader, partitionStates, report, startReplicatedCluster, type Figures } from './harness.ts';

const OFFSETS = '__consumer_offsets';
let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startReplicatedCluster({ coordinators: 1 });
});
afterAll(async () => {
  await cluster?.cleanup();
});

it('a group keeps committing and rebalancing through a kill -9 of the broker leading its offsets partition; every acknowledged commit survives', async () => {
  const topic = 'g-orders';
  const group = 'g-replicated';
  await createTopic(cluster, topic, 3);
  // The controller creates __consumer_offsets once brokers are live, with offsets.topic.replication.factor (3).
  const offsetsStates = await fullIsr(cluster, OFFSETS, 30_000);
  // (The brokers register one by one: a controller that creates the topic at the first live broker and caps the factor there gives it 1 replica.)
  expect(offsetsStates.map((s) => s.replicas.length), `replication factor of each ${OFFSETS} partition`).toEqual(offsetsStates.map(() => 3));
  const offsetsPartition = partitionForGroup(group, offsetsStates.length);

  const kafka = kafkaOf(cluster);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let next = 0;
  const produce = async (n: number) => {
    const from = next;
    next += n;
    await producer.send({ topic, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ partition: (from + i) % 3, value: String(from + i) })) });
  };

  const seen = new Map<string, number>();
  /** Highest committed offset per partition that a successful OffsetCommit acknowledged. */
  const acknowledged = new Map<number, number>();
  let commitAcks = 0;
  const joins: { member: string; at: number; assignment: number[] }[] = [];
  const member = (name: string): Consumer => {
    const c = new Kafka({ clientId: name, brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 60 } })
      .consumer({ groupId: group, sessionTimeout: 10_000, heartbeatInterval: 500, rebalanceTimeout: 15_000, maxWaitTimeInMs: 100 });
    c.on(c.events.GROUP_JOIN, (e) => joins.push({ member: name, at: Date.now(), assignment: e.payload.memberAssignment[topic] ?? [] }));
    c.on(c.events.COMMIT_OFFSETS, (e) => {
      commitAcks++;
      for (const t of e.payload.topics) for (const p of t.partitions) acknowledged.set(Number(p.partition), Math.max(acknowledged.get(Number(p.partition)) ?? -1, Number(p.offset)));
    });
    return c;
  };
  const run = async (c: Consumer) => {
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({ autoCommitInterval: 100, eachMessage: async ({ message }) => { seen.set(message.value!.toString(), (seen.get(message.value!.toString()) ?? 0) + 1); } });
  };
  const committedTotal = async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      return new Map(t!.partitions.map((p) => [p.partition, Number(p.offset)]));
    } finally {
      await admin.disconnect();
    }
  };
  const allCommitted = (n: number) => until(`the group to commit all ${n} records`, async () => {
    const offsets = await committedTotal().catch(() => new Map<number, number>());
    return [...offsets.values()].reduce((a, b) => a + Math.max(0, b), 0) === n;
  }, 60_000);

  const a = member('member-a');
  const b = member('member-b');
  let failoverS = 0;
  let joinsAfterKill = 0;
  try {
    await produce(300);
    await run(a);
    await until('the first 300 records', () => seen.size >= 300, 30_000);
    await allCommitted(300);

    const before = (await partitionStates(cluster, OFFSETS))[offsetsPartition]!;
    const victim = brokerById(cluster, before.leader);
    const killedAt = performance.now();
    const killedAtMs = Date.now();
    await kill9(victim);
    // Records right away: the group consumes and commits them while the offsets partition has no
    // live leader yet, so the coordinator's appends fail over to the new leader.
    const producing = produce(300);
    const { seconds } = await newLeader(cluster, OFFSETS, offsetsPartition, victim.nodeId, killedAt);
    failoverS = seconds;
    await producing;

    // The group goes on committing through the new leader.
    await until('the next 300 records', () => seen.size >= 600, 60_000);
    await allCommitted(600);
    // And rebalancing: a second member joins, the partitions are split between the two.
    const joinsBefore = joins.length;
    await run(b);
    await until('a rebalance splitting the partitions between both members', () => {
      const latest = new Map<string, number[]>();
      for (const j of joins.slice(joinsBefore)) latest.set(j.member, j.assignment);
      const parts = [...latest.values()].flat();
      return latest.size === 2 && parts.length === 3 && new Set(parts).size === 3;
    }, 60_000);
    await produce(300);
    await until('all 900 records', () => seen.size >= 900, 60_000);
    await allCommitted(900);
    joinsAfterKill = joins.filter((j) => j.at > killedAtMs).length;

    await cluster.restart(victim, { samePort: true });
    await fullIsr(cluster, OFFSETS, 30_000);
  } finally {
    await a.disconnect().catch(() => {});
    await b.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
  }

  // The coordinator itself dies and replays the partition from its (new) leader: the commits are all there.
  const coordinator = cluster.coordinators[0]!;
  await kill9(coordinator);
  await cluster.restart(coordinator, { samePort: true });
  const after = await until('the restarted coordinator to answer OffsetFetch', () => committedTotal().catch(() => undefined), 60_000);
  let lostCommits = 0;
  for (const [p, offset] of acknowledged) if ((after.get(p) ?? -1) < offset) lostCommits++;
  const skipped = Array.from({ length: 900 }, (_, i) => String(i)).filter((v) => !seen.has(v));
  const figures: Figures = { acknowledged: commitAcks, read: seen.size, lost: lostCommits, duplicates: 0, inconsistent: 0, outOfOrder: 0, phantom: 0, samples: [] };
  // lost = partitions whose committed offset ended below one the group was told it committed.
  report('groups: kill -9 of the offsets leader (acknowledged = OffsetCommits answered without error)', figures, { failover_s: failoverS.toFixed(1), committed: [...after].map(([p, o]) => `${p}:${o}`).join(','), records_skipped: skipped.length, joins_after_kill: joinsAfterKill });
  expect(lostCommits).toBe(0);
  // The coordinator did send an append again to the new leader (the path under test was taken).
  expect(coordinator.process.output()).toMatch(/appended to __consumer_offsets-\d+ after its leader moved/);
  expect([...after.values()].reduce((x, y) => x + y, 0)).toBe(900);
  expect(skipped).toEqual([]);
}, 240_000);
