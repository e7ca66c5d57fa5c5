// The reliability matrix's T13: a fast double failover under an acks=all load, on 3 broker
// processes with RF 3 and min.insync.replicas=2 (its own file, so vitest runs it beside T02 in
// leader-failover.test.ts): the leader is killed with -9, then the new leader within 0-2 s, both
// restart at once; a kafkajs idempotent producer records every acknowledged record, and at the end
// every acknowledged record is read back once, at its offset, and every replica holds the same
// batches as its leader.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestCluster } from '../helpers/cluster.ts';
import { brokerById, createTopic, fullIsr, kafkaOf, kill9, newLeader, partitionStates, readAndCheck, replicasConverge, report, startReplicatedCluster, VerifiableProducer, INTACT, intact } from './harness.ts';

let cluster: TestCluster;
beforeAll(async () => {
  // A 2 s broker session (the harness's is 3 s, Kafka's 9 s): a cycle waits for a session to expire
  // twice (the first leader fenced; the second one's restarted process registering, which waits, as
  // in Kafka, until its old incarnation's session is over), and T13 runs 20 cycles.
  cluster = await startReplicatedCluster({ set: ['broker.session.timeout.ms=2000'] });
});
afterAll(async () => {
  await cluster?.cleanup();
});

it('T13: fast double failover (kill -9 the leader, then the new leader within 0-2 s, restart both), 20 cycles: nothing acknowledged is lost, replicas converge', async () => {
  const topic = 't13';
  await createTopic(cluster, topic, 1);
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 1, { tag: 't13' });
  await producer.start();
  const cycles = 20;
  // Seconds per phase, summed over the cycles (printed: where a cycle's time goes).
  const spent = { failover: 0, pause: 0, restart: 0, isr: 0, produce: 0 };
  const phase = async <T>(name: keyof typeof spent, work: Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await work;
    } finally {
      spent[name] += (performance.now() - t) / 1000;
    }
  };
  try {
    await producer.progressed(100, 30_000);
    for (let cycle = 0; cycle < cycles; cycle++) {
      const first = (await partitionStates(cluster, topic))[0]!;
      const a = brokerById(cluster, first.leader);
      const at = performance.now();
      await kill9(a);
      const { state } = await phase('failover', newLeader(cluster, topic, 0, a.nodeId, at));
      await phase('pause', new Promise((r) => setTimeout(r, Math.random() * 2_000)));
      const b = brokerById(cluster, state.leader);
      await kill9(b);
      // One replica is left: it leads if it was in the ISR, else the partition waits, offline, for one that was.
      // Both restart at once (a's session is over; b's new process registers as soon as its old session expires).
      await phase('restart', Promise.all([cluster.restart(a, { samePort: true }), cluster.restart(b, { samePort: true })]));
      await phase('isr', fullIsr(cluster, topic, 30_000));
      await phase('produce', producer.progressed(50, 30_000));
    }
  } finally {
    await producer.stop();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  const batches = await replicasConverge(cluster, topic, 20_000);
  const perCycle = Object.fromEntries(Object.entries(spent).map(([k, v]) => [`${k}_s_per_cycle`, (v / cycles).toFixed(2)]));
  report(`T13 double failover x${cycles}`, figures, { client_errors: producer.errors.length, replica_batches_compared: batches, ...perCycle });
  // kafkajs retries the retriable errors (NOT_LEADER, NOT_ENOUGH_REPLICAS, timeouts); nothing else may reach the application.
  expect(producer.errors).toEqual([]);
  expect(intact(figures)).toEqual(INTACT);
}, 420_000);
