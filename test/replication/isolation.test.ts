// A leader that is cut off or frozen while clients can still reach it (the reliability matrix's
// T05 and T08), on 3 broker processes with RF 3 and min.insync.replicas=2. Each broker's RPC
// listener sits behind a TCP proxy the test can cut (brokers register the proxy with
// runnel.rpc.advertised.listener, so followers fetch through it while clients, Redis and the
// controller reach the broker directly):
// - T05: the followers lose the leader, clients do not (Jepsen's 2013 Kafka case). The leader
//   shrinks the ISR to itself and from then on acknowledges no acks=all write until the followers
//   are back; after the heal nothing acknowledged is missing and the replicas are identical.
// - T08: the leader is SIGSTOPped past its session: the controller elects another ISR member;
//   after SIGCONT the old leader acknowledges nothing under its old epoch (an acknowledgement from
//   it would show up as a lost record) and its unreplicated suffix is truncated (replicas identical).
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';
import { until } from '../helpers/until.ts';
import { batchKey, brokerById, clientLog, logTail, createTopic, replicaBatches, type BatchHeader, fullIsr, kafkaOf, newLeader, partitionStates, readAndCheck, replicasConverge, report, startReplicatedCluster, VerifiableProducer, INTACT, intact } from './harness.ts';
import { startProxy, type TcpProxy } from './proxy.ts';

let cluster: TestCluster;
/** Per broker: the proxy in front of its RPC listener (what other nodes dial). */
const proxies = new Map<number, TcpProxy>();
/** Per broker: the proxy in front of its Kafka listener (what Metadata advertises to clients). */
const clientProxies = new Map<number, TcpProxy>();

beforeAll(async () => {
  // Each broker: its RPC and Kafka listeners on fixed free ports, each registered or advertised as its proxy's address.
  const ports = new Map<number, { rpc: number; kafka: number }>();
  for (const id of [1, 2, 3]) {
    const p = { rpc: await freePort(), kafka: await freePort() };
    ports.set(id, p);
    proxies.set(id, await startProxy({ host: '127.0.0.1', port: p.rpc }));
    clientProxies.set(id, await startProxy({ host: '127.0.0.1', port: p.kafka }));
  }
  cluster = await startReplicatedCluster({
    nodeSet: (role, id) => (role === 'broker'
      ? [`runnel.rpc.listener=127.0.0.1:${ports.get(id)!.rpc}`, `runnel.rpc.advertised.listener=127.0.0.1:${proxies.get(id)!.port}`,
        `listeners=PLAINTEXT://127.0.0.1:${ports.get(id)!.kafka}`, `advertised.listeners=PLAINTEXT://127.0.0.1:${clientProxies.get(id)!.port}`]
      : []),
  });
});
afterAll(async () => {
  await cluster?.cleanup();
  for (const p of [...proxies.values(), ...clientProxies.values()]) await p.close();
});

it('T05: a leader cut off from its followers (not from clients) acknowledges no acks=all write once its ISR is below min.insync.replicas; nothing is lost after the heal', async () => {
  const topic = 't05';
  const leader = (await createTopic(cluster, topic, 1))[0]!.leader;
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 1, { tag: 't05' });
  await producer.start();
  const proxy = proxies.get(leader)!;
  let shrunkAfterS = 0;
  let ackedWhileShort = -1;
  try {
    await producer.progressed(200, 30_000);
    const cutAt = performance.now();
    proxy.cut();
    // The leader stays leader (it still heartbeats to the controller) and proposes the ISR down to itself.
    const shrunk = await until('the ISR of t05 below min.insync.replicas', async () => {
      const s = (await partitionStates(cluster, topic))[0]!;
      return s.isr.length < 2 && s;
    }, 30_000);
    shrunkAfterS = (performance.now() - cutAt) / 1000;
    expect(shrunk.leader).toBe(leader);
    const ackedAtShrink = producer.count;
    // Some seconds of a short ISR: the producer keeps retrying (NOT_ENOUGH_REPLICAS is retriable), nothing may be acknowledged.
    await new Promise((r) => setTimeout(r, 3_000));
    ackedWhileShort = producer.count - ackedAtShrink;
    proxy.heal();
    await fullIsr(cluster, topic, 30_000);
    await producer.progressed(100, 30_000);
  } finally {
    proxy.heal();
    await producer.stop();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  const batches = await replicasConverge(cluster, topic, 20_000);
  report('T05 leader cut off from followers', figures, { isr_shrink_s: shrunkAfterS.toFixed(1), acked_while_isr_short: ackedWhileShort, client_errors: producer.errors.length, replica_batches_compared: batches });
  expect(ackedWhileShort).toBe(0);
  // kafkajs retries the retriable errors (NOT_LEADER, NOT_ENOUGH_REPLICAS, timeouts); nothing else may reach the application.
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 120_000);

it('T08: a leader SIGSTOPped past its session is replaced; after SIGCONT it acknowledges nothing under its old epoch and its unreplicated suffix is truncated', async () => {
  const topic = 't08';
  const old = brokerById(cluster, (await createTopic(cluster, topic, 1))[0]!.leader);
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 1, { tag: 't08' });
  await producer.start();
  const side = kafkaOf(cluster, 'acks-1').producer();
  await side.connect();
  let failoverS = 0;
  let oldEpoch = -1;
  let newEpoch = -1;
  let frozen: BatchHeader[] = [];
  try {
    await producer.progressed(200, 30_000);
    oldEpoch = (await partitionStates(cluster, topic))[0]!.leaderEpoch;
    // First its followers lose it (for less than replica.lag.time.max.ms, so the ISR stays) and an
    // acks=1 record lands on it alone: an unreplicated suffix when it freezes. (The acks=all
    // producer cannot make one for sure: its one batch in flight may reach the followers and
    // then wait for a high watermark that cannot move.)
    const proxy = proxies.get(old.nodeId)!;
    const others = cluster.brokers.filter((b) => b.nodeId !== old.nodeId);
    const lastOffset = async (logDir: string) => (await replicaBatches(logDir, topic, 0)).at(-1)?.lastOffset ?? -1n;
    proxy.cut();
    await side.send({ topic, acks: 1, messages: [{ partition: 0, value: 'unreplicated' }] });
    await until('the cut-off leader to hold a batch its followers do not have', async () => {
      const followers = await Promise.all(others.map((b) => lastOffset(b.logDir)));
      return (await lastOffset(old.logDir)) > followers.reduce((a, b) => (a > b ? a : b));
    }, 2_500);
    const at = performance.now();
    process.kill(old.process.child.pid!, 'SIGSTOP');
    proxy.heal();
    // What the frozen leader holds (its files are readable while it is stopped): anything here that
    // the cluster does not end with is its unreplicated suffix, which it must truncate.
    frozen = await replicaBatches(old.logDir, topic, 0);
    const { state, seconds } = await newLeader(cluster, topic, 0, old.nodeId, at);
    failoverS = seconds;
    newEpoch = state.leaderEpoch;
    // (No progress is awaited here: kafkajs does not refresh metadata after a request timeout, so
    // it keeps waiting on the frozen leader until that one answers.)
    // Twice the session (3 s) in all, then it wakes up believing it still leads.
    await new Promise((r) => setTimeout(r, Math.max(0, 6_000 - (performance.now() - at))));
    process.kill(old.process.child.pid!, 'SIGCONT');
    await fullIsr(cluster, topic, 30_000);
    await producer.progressed(100, 30_000);
  } catch (err) {
    const states = await partitionStates(cluster, topic);
    throw new Error(`${(err as Error).message}\nstate: ${JSON.stringify(states)}\nold leader ${old.nodeId}:\n${logTail(old, 20)}`);
  } finally {
    proxies.get(old.nodeId)!.heal();
    if (old.process.child.exitCode === null) process.kill(old.process.child.pid!, 'SIGCONT');
    await side.disconnect().catch(() => {});
    await producer.stop();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  const batches = await replicasConverge(cluster, topic, 20_000);
  const final = new Set((await replicaBatches(old.logDir, topic, 0)).map(batchKey));
  const truncated = frozen.filter((b) => !final.has(batchKey(b))).length;
  report('T08 leader SIGSTOP past its session', figures, { failover_s: failoverS.toFixed(1), leader_epoch: `${oldEpoch}->${newEpoch}`, truncated_suffix_batches: truncated, client_errors: producer.errors.length, replica_batches_compared: batches });
  expect(newEpoch).toBeGreaterThan(oldEpoch);
  expect(truncated).toBeGreaterThan(0);
  // kafkajs retries the retriable errors (NOT_LEADER, NOT_ENOUGH_REPLICAS, timeouts); nothing else may reach the application.
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 120_000);

it('T12: the leader\'s answers to the producer lost for 5 s (the leader stays): the batches sent again are not written twice', async () => {
  const topic = 't12';
  const leader = (await createTopic(cluster, topic, 2))[0]!.leader;
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 2, { tag: 't12' });
  await producer.start();
  const proxy = clientProxies.get(leader)!;
  const logged = clientLog.length;
  let timeouts = 0;
  let writtenUnanswered = 0;
  try {
    await producer.progressed(200, 30_000);
    // Requests reach the leader and are written, their answers are lost: the client sends them
    // again (same producer id and sequence numbers) once the link is back.
    proxy.cut('replies');
    await new Promise((r) => setTimeout(r, 5_000));
    // What the leader holds beyond the last record the client was told about: written, never answered.
    const end = (await replicaBatches(brokerById(cluster, leader).logDir, topic, 0)).at(-1)?.lastOffset ?? -1n;
    const told = producer.acked.filter((a) => a.partition === 0).reduce((m, a) => (a.offset > m ? a.offset : m), -1n);
    writtenUnanswered = Number(end - told);
    proxy.heal();
    await producer.progressed(200, 40_000);
    timeouts = clientLog.slice(logged).filter((l) => /timed out|Connection (error|timeout)|closed/i.test(l)).length;
  } finally {
    proxy.heal();
    await producer.stop();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  report('T12 answers to the producer lost', figures, { records_written_unanswered: writtenUnanswered, client_retries_logged: timeouts, client_errors: producer.errors.length });
  // The fault did hit: the leader wrote records whose answers were lost, and the client sent them again.
  expect(writtenUnanswered).toBeGreaterThan(0);
  expect(timeouts).toBeGreaterThan(0);
  expect((await partitionStates(cluster, topic))[0]!.leader).toBe(leader);
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 120_000);
