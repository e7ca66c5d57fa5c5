// Apache Kafka's own command-line tools (4.3.1, from Maven Central through test/java/fetch-tools.sh)
// against 3 broker processes with RF 3: kafka-topics --describe prints exactly the controller's
// committed state (leader, replicas, ISR) in Kafka's format, before and after a kill -9 (the leader
// moves, the ISR shrinks, --under-replicated-partitions and --unavailable-partitions list the right
// partitions); kafka-reassign-partitions --generate/--execute/--verify moves a replica to another
// broker under an acks=all load with no acknowledged record lost; kafka-leader-election
// --election-type preferred --all-topic-partitions gives the preferred replicas their partitions back.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestCluster } from '../helpers/cluster.ts';
import { kafkaTools, ok, type KafkaTools } from '../helpers/kafka-tools.ts';
import { until } from '../helpers/until.ts';
import { brokerById, createTopic, fullIsr, kafkaOf, kill9, partitionStates, readAndCheck, replicasConverge, report, startReplicatedCluster, VerifiableProducer, type PartitionView, INTACT, intact } from './harness.ts';

let cluster: TestCluster;
let tools: KafkaTools;
let dir: string;

beforeAll(async () => {
  const t0 = performance.now();
  [tools, cluster, dir] = await Promise.all([kafkaTools(), startReplicatedCluster(), mkdtemp(join(tmpdir(), 'runnel-kafka-tools-'))]);
  console.log(`kafka tools ${tools.version} and the cluster ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}, 660_000);
afterAll(async () => {
  await cluster?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const bootstrap = () => ['--bootstrap-server', cluster.bootstrap];

/** Kafka prints a topic id as its Uuid.toString(): the 16 bytes in URL-safe base64, unpadded. */
const kafkaUuid = (hex: string) => Buffer.from(hex, 'hex').toString('base64url');

async function topicId(topic: string): Promise<string> {
  const { redisCli } = await import('../helpers/redis.ts');
  return (JSON.parse((await redisCli(cluster.redis.socketPath, 'HGET', 'runnel:topics', topic))!) as { topicId: string }).topicId;
}

/**
 * The partition line kafka-topics --describe prints for a state. Kafka 4.x reads it with
 * DescribeTopicPartitions, whose eligible leader replicas (KIP-966, not built) are empty lists,
 * so Elr and LastKnownElr print empty (they were N/A when the tool fell back to Metadata).
 */
function partitionLine(topic: string, p: PartitionView): string {
  return `\tTopic: ${topic}\tPartition: ${p.partition}\tLeader: ${p.leader >= 0 ? p.leader : 'none'}\tReplicas: ${p.replicas.join(',')}\tIsr: ${p.isr.join(',')}\tElr: \tLastKnownElr: `;
}

async function describe(extra: string[]): Promise<string[]> {
  return ok(await tools.topics([...bootstrap(), '--describe', ...extra])).split('\n').filter((l) => l.trim() !== '');
}

it('kafka-topics --describe shows the committed leaders, replicas and ISRs, before and after a kill -9 of a broker', async () => {
  const topic = 'described';
  let states = await createTopic(cluster, topic, 3);
  // One partition only on the broker about to die (RF 1): it has no other replica to move to.
  const victimId = states[0]!.leader;
  const lonely = 'lonely';
  expect(ok(await tools.topics([...bootstrap(), '--create', '--topic', lonely, '--replica-assignment', String(victimId)]))).toContain(`Created topic ${lonely}.`);
  await until(`${lonely} led by ${victimId}`, async () => (await partitionStates(cluster, lonely))[0]?.leader === victimId, 20_000);

  const header = `Topic: ${topic}\tTopicId: ${kafkaUuid(await topicId(topic))}\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: min.insync.replicas=2,unclean.leader.election.enable=false`;
  // Each tool run is a JVM of its own; independent ones run side by side.
  const [described, under, unavailable] = await Promise.all([describe(['--topic', topic]), describe(['--under-replicated-partitions']), describe(['--unavailable-partitions'])]);
  expect(described).toEqual([header, ...states.map((p) => partitionLine(topic, p))]);
  expect(under).toEqual([]);
  expect(unavailable).toEqual([]);

  const victim = brokerById(cluster, victimId);
  await kill9(victim);
  // Fenced after the session timeout: every partition it led has a new leader, and it leaves every ISR with others in it.
  states = await until(`${victimId} fenced: no longer leading or in an ISR of ${topic}`, async () => {
    const s = await partitionStates(cluster, topic);
    return s.every((p) => p.leader >= 0 && p.leader !== victimId && !p.isr.includes(victimId)) && s;
  }, 30_000);
  const lonelyState = (await partitionStates(cluster, lonely))[0]!;
  expect(lonelyState).toMatchObject({ leader: -1, isr: [victimId] });

  const ours = ['--topic', `${topic}|${lonely}`];
  const [described2, under2, unavailable2] = await Promise.all([describe(['--topic', topic]), describe([...ours, '--under-replicated-partitions']), describe(['--unavailable-partitions'])]);
  expect(described2).toEqual([header, ...states.map((p) => partitionLine(topic, p))]);
  for (const p of states) expect(p.isr).toHaveLength(2);
  // Every partition of `described` lacks a replica (so does every __consumer_offsets partition, RF 3
  // too); `lonely` (RF 1, its ISR kept: it is never emptied) is not under-replicated in Kafka's sense
  // (replicas - ISR), but it has no leader: it is the one unavailable partition.
  expect(under2).toEqual(states.map((p) => partitionLine(topic, p)));
  expect(unavailable2).toEqual([partitionLine(lonely, lonelyState)]);

  // Back: it rejoins every ISR and leads its lonely partition again; nothing is under-replicated.
  await cluster.restart(victim, { samePort: true });
  await fullIsr(cluster, topic, 30_000);
  await fullIsr(cluster, lonely, 30_000);
  expect(await Promise.all([describe(['--under-replicated-partitions']), describe(['--unavailable-partitions'])])).toEqual([[], []]);
}, 180_000);

it('kafka-leader-election --election-type preferred --all-topic-partitions gives every partition back to its first replica', async () => {
  const topic = 'described';
  const before = await fullIsr(cluster, topic, 30_000);
  // The previous test's kill moved leadership off the victim's preferred partitions.
  const moved = before.filter((p) => p.leader !== p.replicas[0]);
  expect(moved.length).toBeGreaterThan(0);
  const out = ok(await tools.leaderElection([...bootstrap(), '--election-type', 'preferred', '--all-topic-partitions']));
  expect(out).toContain('Successfully completed leader election (PREFERRED) for partitions');
  for (const p of moved) expect(out).toContain(`${topic}-${p.partition}`);
  const after = await partitionStates(cluster, topic);
  for (const p of after) expect(p.leader).toBe(p.replicas[0]);
  expect(await describe(['--topic', topic])).toEqual(expect.arrayContaining(after.map((p) => partitionLine(topic, p))));
  // Nothing left to do: Kafka says so instead of failing.
  expect(ok(await tools.leaderElection([...bootstrap(), '--election-type', 'preferred', '--all-topic-partitions']))).not.toContain('Successfully completed');
}, 120_000);

it('kafka-reassign-partitions --generate, --execute, --verify moves a replica to another broker under load; nothing acknowledged is lost', async () => {
  const topic = 'moved';
  // RF 2 on brokers 1 and 2: the move puts each partition on 2 and 3.
  ok(await tools.topics([...bootstrap(), '--create', '--topic', topic, '--replica-assignment', '1:2,2:1']));
  await fullIsr(cluster, topic, 30_000);
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 2, { tag: 'moved' });
  await producer.start();
  let verify = '';
  try {
    await producer.progressed(200, 30_000);
    const topicsFile = join(dir, 'topics.json');
    await writeFile(topicsFile, JSON.stringify({ version: 1, topics: [{ topic }] }));
    const generated = ok(await tools.reassign([...bootstrap(), '--generate', '--topics-to-move-json-file', topicsFile, '--broker-list', '2,3']));
    const proposed = JSON.parse(generated.split('Proposed partition reassignment configuration')[1]!.trim().split('\n')[0]!) as { partitions: { topic: string; partition: number; replicas: number[] }[] };
    expect(proposed.partitions.map((p) => [...p.replicas].sort())).toEqual([[2, 3], [2, 3]]);
    const planFile = join(dir, 'plan.json');
    await writeFile(planFile, JSON.stringify(proposed));
    expect(ok(await tools.reassign([...bootstrap(), '--execute', '--reassignment-json-file', planFile]))).toContain('Successfully started partition reassignment');
    verify = await until('the reassignment completed (--verify)', async () => {
      // As an operator runs it: without --preserve-throttles, a completed move also clears the
      // throttle configs (IncrementalAlterConfigs DELETE on every broker and on the topic).
      const out = ok(await tools.reassign([...bootstrap(), '--verify', '--reassignment-json-file', planFile]));
      return !out.includes('still in progress') && out.includes(`Reassignment of partition ${topic}-1 is completed`) && out;
    }, 60_000);
    await producer.progressed(200, 30_000);
  } finally {
    await producer.stop();
  }
  expect(verify).toContain(`Reassignment of partition ${topic}-0 is completed`);
  expect(verify).toContain(`Clearing topic-level throttles on topic ${topic}`);
  expect(verify).toMatch(/Clearing broker-level throttles on brokers [1-3],[1-3],[1-3]/);
  const states = await fullIsr(cluster, topic, 30_000);
  for (const p of states) expect([...p.replicas].sort()).toEqual([2, 3]);
  expect(ok(await tools.reassign([...bootstrap(), '--list']))).toContain('No partition reassignments found.');
  const figures = await readAndCheck(cluster, topic, producer);
  const batches = await replicasConverge(cluster, topic, 20_000);
  report('kafka-reassign-partitions under load', figures, { client_errors: producer.errors.length, replica_batches_compared: batches });
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 180_000);
