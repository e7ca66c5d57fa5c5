// Transactions surviving crashes, in a cluster (3 brokers, replicated __transaction_state, one
// coordinator node).
//
// An exactly-once copier (test/java/RunnelEos.java, the Java client kafka-clients 4.3.1: read
// input with read_committed, write output in a transaction with sendOffsetsToTransaction) is killed
// with -9 while a transaction's records are in the output log, three times, and started again each
// time (Kafka's transactions_test): a concurrent read_committed reader (kafkajs) sees the input
// exactly once, in order, and none of the aborted records that a read_uncommitted read shows.
//
// Zombie fencing (kafkajs): a second producer with the same transactional.id aborts the first
// one's open transaction; the first one's commit is refused PRODUCER_FENCED.
//
// A coordinator killed with -9 between PREPARE and COMPLETE. Made deterministic
// by stopping (SIGSTOP) the only broker holding the transaction's data partition before the
// commit: EndTxn answers once PrepareCommit is durable, the COMMIT marker cannot reach the stopped
// leader, so the transaction sits in PrepareCommit (DescribeTransactions says so) when the
// coordinator is killed. The broker resumes, the coordinator starts again on its data dir, loads
// __transaction_state, resends the markers and writes CompleteCommit: read_committed sees the
// records (docs/transactions.md, Recovery).
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { startProcess } from './helpers/process.ts';
import { runKcat } from './helpers/kcat.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

const version = process.env.RUNNEL_JAVA_CLIENT_VERSION ?? '4.3.1';

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

describe('transactions across crashes (cluster)', () => {
  let cluster: TestCluster;
  let classpath = '';
  let classes = '';
  beforeAll(async () => {
    const missing = ['java', 'javac', 'mvn'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
    if (missing.length > 0) throw new Error(`this test needs ${missing.join(', ')}: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)`);
    const fetched = await run(join(import.meta.dirname, 'java/fetch-clients.sh'), [version], 600_000);
    if (fetched.code !== 0) throw new Error(`fetch-clients.sh ${version} failed (${fetched.code}):\n${fetched.stderr}`);
    classpath = fetched.stdout.trim().split('\n').at(-1)!;
    classes = await mkdtemp(join(tmpdir(), 'runnel-eos-'));
    const javac = await run('javac', ['-nowarn', '-d', classes, '-cp', classpath, join(import.meta.dirname, 'java/RunnelEos.java')], 120_000);
    if (javac.code !== 0) throw new Error(`javac RunnelEos.java failed:\n${javac.stderr}`);
    // A stopped follower leaves the ISR of __transaction_state within 1 s, so PrepareCommit is
    // durable on the two others (min.isr 2) while the data partition's only replica is stopped.
    cluster = await startCluster({ brokers: 3, coordinators: 1, set: ['transaction.state.log.num.partitions=2', 'replica.lag.time.max.ms=1000'] });
  }, 720_000);
  afterAll(async () => {
    if (classes) await rm(classes, { recursive: true, force: true });
    // A SIGSTOPped process ignores SIGTERM until resumed: make sure nothing is left stopped.
    for (const b of cluster?.brokers ?? []) b.process.child.kill('SIGCONT');
    await cluster?.cleanup();
  });

  const describeTxn = async (id: string) => {
    const r = await kafkaRequest(cluster.coordinators[0]!.port, ApiKey.DescribeTransactions, 0, { transactionalIds: [id] });
    return r.transactionStates[0]!;
  };

  it('an exactly-once copier killed with -9 mid-transaction three times: read_committed sees the input once, in order', async () => {
    const N = 300;
    const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    const reader = kafka.consumer({ groupId: 'eos-reader', readUncommitted: false });
    await admin.connect();
    const copiers: Awaited<ReturnType<typeof startProcess>>[] = [];
    try {
      await admin.createTopics({ topics: [{ topic: 'eos-in', numPartitions: 1, replicationFactor: 3 }, { topic: 'eos-out', numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true });
      const input = Array.from({ length: N }, (_, i) => `v${String(i).padStart(4, '0')}`);
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: 'eos-in', acks: -1, messages: input.map((value) => ({ value })) });
      await producer.disconnect();

      // The concurrent read_committed reader, running through every kill.
      const seen: string[] = [];
      let lastOffset = -1n;
      await reader.connect();
      await reader.subscribe({ topic: 'eos-out', fromBeginning: true });
      await reader.run({ eachMessage: async ({ message }) => {
        seen.push(message.value!.toString());
        lastOffset = BigInt(message.offset);
      } });

      const copier = (pauseMs: number) => startProcess('java', ['-cp', `${classes}:${classpath}`, 'RunnelEos', cluster.bootstrap, 'eos-in', 'eos-out', 'eos-copier', 'eos-tx', String(N), String(pauseMs)]);
      for (let round = 1; round <= 3; round++) {
        // Each round commits at least one transaction, then is killed while the next one's
        // records are flushed to the output but not committed (from its second transaction on the
        // copier pauses 10 s there).
        const c = await copier(10_000);
        copiers.push(c);
        await until(`round ${round}: a commit, then a transaction's records in the log`, () => {
          const out = c.output();
          const committed = out.indexOf('COMMITTED');
          if (c.child.exitCode !== null) throw new Error(`the copier exited ${c.child.exitCode}:\n${out.slice(-3000)}`);
          return committed >= 0 && out.indexOf('SENT', committed) > committed;
        }, 60_000);
        c.child.kill('SIGKILL');
        await c.exited();
      }
      const last = await copier(0);
      copiers.push(last);
      await last.waitFor(/^DONE$/m, 60_000);
      expect(await last.exited()).toBe(0);

      // Nothing is open on the output now: the last record sits just before the last COMMIT marker.
      const end = BigInt((await admin.fetchTopicOffsets('eos-out'))[0]!.high);
      await until('the reader at the end of the output', () => lastOffset === end - 2n, 30_000);
      expect(seen.length).toBe(N);
      expect(seen).toEqual(input);
      const committed = await runKcat(['-b', cluster.bootstrap, '-C', '-t', 'eos-out', '-p', '0', '-o', 'beginning', '-e', '-X', 'isolation.level=read_committed', '-f', '%s\n'], { timeoutMs: 30_000 });
      expect(committed.stdout.split('\n').filter(Boolean)).toEqual(input);
      // The kills left aborted records in the log: read_uncommitted shows them, read_committed did not.
      const uncommitted = await runKcat(['-b', cluster.bootstrap, '-C', '-t', 'eos-out', '-p', '0', '-o', 'beginning', '-e', '-X', 'isolation.level=read_uncommitted', '-f', '%s\n'], { timeoutMs: 30_000 });
      expect(uncommitted.stdout.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(N + 3);
    } finally {
      for (const c of copiers) await c.stop(1_000).catch(() => {});
      await reader.disconnect().catch(() => {});
      await admin.disconnect();
    }
  }, 240_000);

  it('zombie fencing: a second producer with the same transactional.id aborts the first one\'s open transaction and fences it', async () => {
    const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    const zombie = kafka.producer({ transactionalId: 'zombie-tx', maxInFlightRequests: 1, idempotent: true });
    const successor = kafka.producer({ transactionalId: 'zombie-tx', maxInFlightRequests: 1, idempotent: true });
    try {
      await admin.createTopics({ topics: [{ topic: 'zombie', numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true });
      await zombie.connect();
      const open = await zombie.transaction();
      await open.send({ topic: 'zombie', messages: [{ value: 'from the zombie' }] });
      // The successor's InitProducerId bumps the epoch, aborting the zombie's open transaction.
      await successor.connect();
      const tx = await successor.transaction();
      await tx.send({ topic: 'zombie', messages: [{ value: 'from the successor' }] });
      await tx.commit();
      const err = await open.commit().then(() => null, (e: unknown) => e as { type?: string; name: string });
      expect(err?.type ?? err?.name).toMatch(/PRODUCER_FENCED|INVALID_PRODUCER_EPOCH/);
      const read = await until('read_committed past both transactions', async () => {
        const r = await runKcat(['-b', cluster.bootstrap, '-C', '-t', 'zombie', '-p', '0', '-o', 'beginning', '-e', '-X', 'isolation.level=read_committed', '-f', '%s\n'], { timeoutMs: 20_000 });
        const lines = r.stdout.split('\n').filter(Boolean);
        return lines.length > 0 && lines;
      }, 30_000);
      expect(read).toEqual(['from the successor']);
      // The zombie's record is in the log, aborted.
      const all = await runKcat(['-b', cluster.bootstrap, '-C', '-t', 'zombie', '-p', '0', '-o', 'beginning', '-e', '-X', 'isolation.level=read_uncommitted', '-f', '%s\n'], { timeoutMs: 20_000 });
      expect(all.stdout.split('\n').filter(Boolean)).toEqual(['from the zombie', 'from the successor']);
    } finally {
      await zombie.disconnect().catch(() => {});
      await successor.disconnect().catch(() => {});
      await admin.disconnect();
    }
  }, 60_000);

  it('a coordinator killed with -9 in PrepareCommit completes the commit after restart', async () => {
    // A short request timeout: a request the client happens to send to the stopped broker (a
    // metadata refresh) fails over in seconds instead of kafkajs's default 30 s.
    const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, requestTimeout: 5_000, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
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
      // Three records and the COMMIT marker; more COMMITs are allowed (harmless, as in Kafka): the
      // dead coordinator's marker requests (its retries) may still sit in the stopped broker's
      // socket buffers and land on resume. Beyond the three records the log holds only markers.
      expect(Number((await admin.fetchTopicOffsets('rec'))[0]!.high)).toBeGreaterThanOrEqual(4);
      const all = await runKcat(['-b', bootstrap, '-C', '-t', 'rec', '-p', '0', '-o', 'beginning', '-e', '-X', 'isolation.level=read_uncommitted', '-f', '%s\n'], { timeoutMs: 20_000 });
      expect(all.stdout.split('\n').filter(Boolean)).toEqual(['r1', 'r2', 'r3']);
    } finally {
      stopped?.process.child.kill('SIGCONT');
      await admin.disconnect();
    }
  }, 120_000);
});
