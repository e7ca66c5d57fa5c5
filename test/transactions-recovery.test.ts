// Transactions surviving a crash, in a cluster (3 brokers, replicated __transaction_state, one
// coordinator node): a coordinator killed with -9 between PREPARE and COMPLETE. Made deterministic
// by stopping (SIGSTOP) the only broker holding the transaction's data partition before the
// commit: EndTxn answers once PrepareCommit is durable, the COMMIT marker cannot reach the stopped
// leader, so the transaction sits in PrepareCommit (DescribeTransactions says so) when the
// coordinator is killed. The broker resumes, the coordinator starts again on its data dir, loads
// __transaction_state, resends the markers and writes CompleteCommit: read_committed sees the
// records (docs/transactions.md, Recovery).
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { runKcat } from './helpers/kcat.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

describe('transactions across a coordinator crash (cluster)', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    // A stopped follower leaves the ISR of __transaction_state within 1 s, so PrepareCommit is
    // durable on the two others (min.isr 2) while the data partition's only replica is stopped.
    cluster = await startCluster({ brokers: 3, coordinators: 1, set: ['transaction.state.log.num.partitions=2', 'replica.lag.time.max.ms=1000'] });
  }, 90_000);
  afterAll(async () => {
    // A SIGSTOPped process ignores SIGTERM until resumed: make sure nothing is left stopped.
    for (const b of cluster?.brokers ?? []) b.process.child.kill('SIGCONT');
    await cluster?.cleanup();
  });

  const describeTxn = async (id: string) => {
    const r = await kafkaRequest(cluster.coordinators[0]!.port, ApiKey.DescribeTransactions, 0, { transactionalIds: [id] });
    return r.transactionStates[0]!;
  };

  it('a coordinator killed with -9 in PrepareCommit completes the commit after restart', async () => {
    const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    let stopped: (typeof cluster.brokers)[number] | undefined;
    try {
      // __transaction_state exists once a producer has found its coordinator; the victim broker
      // leads none of its partitions (so stopping it only shrinks their ISR).
      await until('the transaction coordinator of rec-tx', async () => {
        const r = await kafkaRequest(cluster.coordinators[0]!.port, ApiKey.FindCoordinator, 3, { key: 'rec-tx', keyType: 1 });
        return r.errorCode === ErrorCode.NONE;
      }, 30_000);
      const meta = await admin.fetchTopicMetadata({ topics: ['__transaction_state'] });
      const leaders = new Set(meta.topics[0]!.partitions.map((p) => p.leader));
      const victim = cluster.brokers.find((b) => !leaders.has(b.nodeId))!;
      expect(victim).toBeDefined();
      await admin.createTopics({ topics: [{ topic: 'rec', replicaAssignment: [{ partition: 0, replicas: [victim.nodeId] }] }], waitForLeaders: true });

      const producer = kafka.producer({ transactionalId: 'rec-tx', maxInFlightRequests: 1, idempotent: true });
      await producer.connect();
      try {
        const tx = await producer.transaction();
        await tx.send({ topic: 'rec', messages: [{ value: 'r1' }, { value: 'r2' }, { value: 'r3' }] });
        stopped = victim;
        victim.process.child.kill('SIGSTOP');
        await tx.commit();
      } finally {
        await producer.disconnect().catch(() => {});
      }
      // EndTxn answered after PrepareCommit; the marker to the stopped leader cannot complete.
      const prepared = await describeTxn('rec-tx');
      expect(prepared).toMatchObject({ errorCode: ErrorCode.NONE, transactionState: 'PrepareCommit' });
      expect(prepared.topics).toEqual([{ topic: 'rec', partitions: [0] }]);

      const coordinator = cluster.coordinators[0]!;
      coordinator.process.child.kill('SIGKILL');
      await coordinator.process.exited();
      victim.process.child.kill('SIGCONT');
      stopped = undefined;
      await cluster.restart(coordinator, { samePort: true });

      // The restarted coordinator resends the COMMIT marker and writes CompleteCommit.
      await until('CompleteCommit after the restart', async () => {
        const d = await describeTxn('rec-tx').catch(() => undefined);
        return d?.errorCode === ErrorCode.NONE && d.transactionState === 'CompleteCommit';
      }, 45_000);
      const bootstrap = cluster.bootstrap;
      const read = await until('read_committed sees the transaction', async () => {
        const r = await runKcat(['-b', bootstrap, '-C', '-t', 'rec', '-p', '0', '-o', 'beginning', '-e', '-X', 'isolation.level=read_committed', '-f', '%s\n'], { timeoutMs: 20_000 });
        const lines = r.stdout.split('\n').filter(Boolean);
        return lines.length > 0 && lines;
      }, 30_000);
      expect(read).toEqual(['r1', 'r2', 'r3']);
      // Three records and one COMMIT marker, written once.
      expect((await admin.fetchTopicOffsets('rec'))[0]!.high).toBe('4');
    } finally {
      stopped?.process.child.kill('SIGCONT');
      await admin.disconnect();
    }
  }, 120_000);
});
