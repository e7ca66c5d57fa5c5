// A frozen controller must not fence healthy brokers (issue 17, item 8). Two controllers (active +
// standby), a 3 s session and lease, 3 brokers and a coordinator, an RF 3 topic under an
// idempotent acks=all producer: the active controller is SIGSTOPped. As with a KRaft quorum, the
// standby takes the lease once it expires, every node's heartbeats go to it at once (they are
// bounded by the session timeout and follow the controller recorded in Redis), and the new
// controller counts a full session from its takeover before it fences anyone. So no node is
// fenced, no partition changes leader or goes offline, and the producer loses nothing. After
// SIGCONT the old controller steps down (T09 covers its fenced writes).
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ClusterNode, TestCluster } from '../helpers/cluster.ts';
import { redisCli } from '../helpers/redis.ts';
import { until } from '../helpers/until.ts';
import { createTopic, kafkaOf, logTail, readAndCheck, replicasConverge, report, startReplicatedCluster, VerifiableProducer, INTACT, intact } from './harness.ts';

let cluster: TestCluster;
let standby: ClusterNode;
beforeAll(async () => {
  cluster = await startReplicatedCluster({ coordinators: 1 });
  standby = await cluster.startNode('controller', 9);
});
afterAll(async () => {
  await cluster?.cleanup();
});

interface Sample { at: number; leaders: Map<string, { leader: number; leaderEpoch: number }>; fenced: number[]; controllerId: number }

/** One look at Redis: every partition's leader (topic and offsets), the fenced nodes, the controller. */
async function sample(): Promise<Sample> {
  const sock = cluster.redis.socketPath;
  const at = performance.now();
  const topics = (await redisCli(sock, 'HVALS', 'runnel:topics')).split('\n').filter((l) => l.startsWith('{'));
  const leaders = new Map<string, { leader: number; leaderEpoch: number }>();
  for (const json of topics) {
    const t = JSON.parse(json) as { name: string; partitions: { partition: number; leader: number; leaderEpoch: number }[] };
    for (const p of t.partitions) leaders.set(`${t.name}-${p.partition}`, { leader: p.leader, leaderEpoch: p.leaderEpoch });
  }
  const nodes = (await redisCli(sock, 'HVALS', 'runnel:nodes')).split('\n').filter((l) => l.startsWith('{'));
  const fenced = nodes.map((n) => JSON.parse(n) as { nodeId: number; fenced: boolean }).filter((n) => n.fenced).map((n) => n.nodeId);
  const controller = JSON.parse(await redisCli(sock, 'GET', 'runnel:controller')) as { controllerId: number };
  return { at, leaders, fenced, controllerId: controller.controllerId };
}

/**
 * What the freeze cost, from the samples: the nodes ever fenced, the controllers' fencing log lines,
 * the partitions whose leader or leader epoch changed, and how long some partition had no leader.
 */
function harm(before: Sample, samples: Sample[]): { fenced: number[]; fencedLines: string[]; moved: string[]; offlineMs: number } {
  const fenced = new Set(samples.flatMap((s) => s.fenced));
  const moved = new Set<string>();
  let offlineMs = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    for (const [p, was] of before.leaders) {
      const now = s.leaders.get(p);
      if (now && (now.leader !== was.leader || now.leaderEpoch !== was.leaderEpoch)) moved.add(p);
    }
    if (i > 0 && [...s.leaders.values()].some((l) => l.leader < 0)) offlineMs += s.at - samples[i - 1]!.at;
  }
  const fencedLines = [standby, cluster.controller].flatMap((c) => c.process.output().split('\n').filter((l) => l.includes('fenced nodes not heard from')).map((l) => l.slice(0, 300)));
  return { fenced: [...fenced].sort((a, b) => a - b), fencedLines, moved: [...moved].sort(), offlineMs: Math.round(offlineMs) };
}

it('a SIGSTOPped controller is replaced by the standby without fencing a node or moving a leader', async () => {
  const topic = 'frozen';
  await createTopic(cluster, topic, 3);
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 3, { tag: 'frozen' });
  await producer.start();
  const frozen = cluster.controller;
  const samples: Sample[] = [];
  let takeoverS = 0;
  let stepDownS = 0;
  let before: Sample | undefined;
  try {
    await producer.progressed(200, 30_000);
    before = await sample();
    expect(before.controllerId).toBe(frozen.nodeId);
    expect(before.fenced).toEqual([]);
    const at = performance.now();
    process.kill(frozen.process.child.pid!, 'SIGSTOP');
    // Watch Redis through the takeover and two more sessions (a node missed by the new
    // controller would be fenced within one session of its takeover).
    let tookOverAt = 0;
    while (tookOverAt === 0 || performance.now() - tookOverAt < 6_000) {
      const s = await sample();
      samples.push(s);
      if (tookOverAt === 0 && s.controllerId === standby.nodeId) tookOverAt = s.at;
      if (performance.now() - at > 30_000) throw new Error(`the standby did not take over within 30 s\nstandby:\n${logTail(standby)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    takeoverS = (tookOverAt - at) / 1000;
    // Judged before anything else can fail (and hide it): nobody fenced, no leader moved.
    const window = harm(before, samples);
    if (window.fenced.length + window.moved.length + window.fencedLines.length > 0) {
      console.log(`[replication] frozen controller (while frozen): takeover_s=${takeoverS.toFixed(1)} fenced_nodes=${window.fenced.length} leader_changes=${window.moved.length} offline_s=${(window.offlineMs / 1000).toFixed(1)}`);
    }
    expect(window).toEqual({ fenced: [], fencedLines: [], moved: [], offlineMs: 0 });
    await producer.progressed(100, 30_000);
    const resumedAt = performance.now();
    process.kill(frozen.process.child.pid!, 'SIGCONT');
    await frozen.process.waitFor(/no longer the active controller/, 15_000);
    stepDownS = (performance.now() - resumedAt) / 1000;
    samples.push(await sample());
    await producer.progressed(100, 30_000);
  } finally {
    if (frozen.process.child.exitCode === null) process.kill(frozen.process.child.pid!, 'SIGCONT');
    await producer.stop();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  const batches = await replicasConverge(cluster, topic, 20_000);

  const whole = harm(before!, samples);
  report('frozen controller', figures, {
    takeover_s: takeoverS.toFixed(1), step_down_s: stepDownS.toFixed(1), fenced_nodes: whole.fenced.length, leader_changes: whole.moved.length,
    offline_s: (whole.offlineMs / 1000).toFixed(1), client_errors: producer.errors.length, replica_batches_compared: batches,
  });
  expect(whole).toEqual({ fenced: [], fencedLines: [], moved: [], offlineMs: 0 });
  // kafkajs retries the retriable errors; nothing else may reach the application.
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 90_000);
