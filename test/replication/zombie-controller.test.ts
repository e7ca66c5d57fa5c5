// A zombie controller (the reliability matrix's T09), with 3 broker processes (RF 3,
// min.insync.replicas=2) under an acks=all load and a standby controller: the active controller is
// SIGSTOPped past its lease, the standby takes over with a higher epoch, a leader is killed with -9
// meanwhile (the new controller elects its successor), then the old controller resumes. It must
// step down, and nothing it believed before the pause may land: the controller record, the epoch
// and the partition's leader stay the new controller's. Nothing acknowledged is lost.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ClusterNode, TestCluster } from '../helpers/cluster.ts';
import { redisCli } from '../helpers/redis.ts';
import { until } from '../helpers/until.ts';
import { brokerById, createTopic, fullIsr, kafkaOf, kill9, newLeader, partitionStates, readAndCheck, replicasConverge, report, startReplicatedCluster, VerifiableProducer, INTACT, intact } from './harness.ts';

let cluster: TestCluster;
let standby: ClusterNode;
beforeAll(async () => {
  cluster = await startReplicatedCluster();
  standby = await cluster.startNode('controller', 9);
});
afterAll(async () => {
  await cluster?.cleanup();
});

async function controllerRecord(): Promise<{ controllerId: number; epoch: number }> {
  return JSON.parse(await redisCli(cluster.redis.socketPath, 'GET', 'runnel:controller')) as { controllerId: number; epoch: number };
}

it('T09: a controller SIGSTOPped past its lease is replaced; after SIGCONT it steps down and none of its old-epoch writes land', async () => {
  const topic = 't09';
  await createTopic(cluster, topic, 1);
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 1, { tag: 't09' });
  await producer.start();
  const zombie = cluster.controller;
  let takeoverS = 0;
  let failoverS = 0;
  let stepDownS = 0;
  let before = { controllerId: -1, epoch: -1 };
  let after = { controllerId: -1, epoch: -1 };
  let leaderEpochAfterFailover = -1;
  let leaderEpochAtEnd = -1;
  try {
    await producer.progressed(200, 30_000);
    before = await controllerRecord();
    expect(before.controllerId).toBe(0);
    const at = performance.now();
    process.kill(zombie.process.child.pid!, 'SIGSTOP');
    after = await until('the standby controller to take over', async () => {
      const r = await controllerRecord();
      return r.controllerId === standby.nodeId && r;
    }, 30_000);
    takeoverS = (performance.now() - at) / 1000;
    // A broker dies while the zombie is frozen: the new controller elects its successor.
    const victim = brokerById(cluster, (await partitionStates(cluster, topic))[0]!.leader);
    const killedAt = performance.now();
    await kill9(victim);
    const elected = await newLeader(cluster, topic, 0, victim.nodeId, killedAt);
    failoverS = elected.seconds;
    leaderEpochAfterFailover = elected.state.leaderEpoch;
    await new Promise((r) => setTimeout(r, Math.max(0, 8_000 - (performance.now() - at))));
    const resumedAt = performance.now();
    process.kill(zombie.process.child.pid!, 'SIGCONT');
    await zombie.process.waitFor(/no longer the active controller/, 15_000);
    stepDownS = (performance.now() - resumedAt) / 1000;
    await producer.progressed(100, 30_000);
    // Still the new controller's cluster some seconds later: the zombie's view (the victim alive and leading) never landed.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await controllerRecord()).toMatchObject({ controllerId: standby.nodeId, epoch: after.epoch });
    const now = (await partitionStates(cluster, topic))[0]!;
    leaderEpochAtEnd = now.leaderEpoch;
    expect(now.leader).not.toBe(victim.nodeId);
    await cluster.restart(victim, { samePort: true });
    await fullIsr(cluster, topic, 30_000);
    await producer.progressed(100, 30_000);
  } finally {
    if (zombie.process.child.exitCode === null) process.kill(zombie.process.child.pid!, 'SIGCONT');
    await producer.stop();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  const batches = await replicasConverge(cluster, topic, 20_000);
  report('T09 zombie controller', figures, {
    controller_epoch: `${before.epoch}->${after.epoch}`, takeover_s: takeoverS.toFixed(1), failover_s: failoverS.toFixed(1), step_down_s: stepDownS.toFixed(1),
    leader_epoch: `${leaderEpochAfterFailover}..${leaderEpochAtEnd}`, client_errors: producer.errors.length, replica_batches_compared: batches,
  });
  expect(after.epoch).toBeGreaterThan(before.epoch);
  expect(leaderEpochAtEnd).toBeGreaterThanOrEqual(leaderEpochAfterFailover);
  // kafkajs retries the retriable errors (NOT_LEADER, NOT_ENOUGH_REPLICAS, timeouts); nothing else may reach the application.
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 120_000);
