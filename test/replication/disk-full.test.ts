// A full disk in a replicated cluster (the reliability matrix's T14), on 3 broker processes with
// RF 3 and min.insync.replicas=2 under an acks=all load from a kafkajs idempotent producer. Each
// broker's log dir is its own 64 MiB tmpfs; the victim's is filled to the last byte by a filler file.
// Leader: its appends fail with KAFKA_STORAGE_ERROR (retriable), it steps down so an in-sync replica
// leads, it does not crash; after the filler is deleted it rejoins the ISR as a follower, without a
// restart, and every batch it stores passes its CRC. Follower: it falls out of the ISR
// (replica.lag.time.max.ms) with no client error, and rejoins once space is back. Nothing
// acknowledged is lost in either case.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { scanLog } from '@runnel/native';
import type { TestCluster } from '../helpers/cluster.ts';
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs.ts';
import { until } from '../helpers/until.ts';
import { batchKey, brokerById, createTopic, fullIsr, kafkaOf, newLeader, partitionStates, readAndCheck, replicaBatches, report, startReplicatedCluster, VerifiableProducer, INTACT, intact } from './harness.ts';

/** Broker id → the tmpfs holding its log dir (`<mount>/data`). */
const mounts = new Map<number, Tmpfs>();
let cluster: TestCluster;

const dataDir = (id: number) => join(mounts.get(id)!.path, 'data');

/** Every stored batch of `topic` on broker `id` passes its CRC-32C and framing check (native scanLog); returns the batch count. */
function crcCheckedBatches(id: number, topic: string): number {
  let batches = 0;
  for (const d of readdirSync(dataDir(id)).filter((n) => n.startsWith(`${topic}-`))) {
    for (const f of readdirSync(join(dataDir(id), d)).filter((n) => n.endsWith('.log'))) {
      const bytes = readFileSync(join(dataDir(id), d, f));
      const scan = scanLog(bytes);
      expect({ file: `${d}/${f}`, stopReason: scan.stopReason, validBytes: scan.validBytes }).toEqual({ file: `${d}/${f}`, stopReason: null, validBytes: bytes.length });
      batches += scan.batches.length;
    }
  }
  return batches;
}

/** Creates an RF 3 topic (1 partition) without waiting for its ISR (a replica on a full disk may not join it yet). */
async function createTopicWithoutWaiting(topic: string): Promise<void> {
  const admin = kafkaOf(cluster).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }] });
  } finally {
    await admin.disconnect();
  }
}

/** The harness's replicasConverge for these log dirs: every replica holds its leader's batches (offsets, epochs, CRCs); returns the count. */
async function replicasConverge(topic: string, timeoutMs: number): Promise<number> {
  let last = '';
  try {
    return await until(`the replicas of ${topic} to hold identical batches`, async () => {
      let batches = 0;
      for (const s of await partitionStates(cluster, topic)) {
        const logs = await Promise.all(s.replicas.map(async (id) => ({ id, keys: (await replicaBatches(dataDir(id), topic, s.partition)).map(batchKey) })));
        const leader = logs.find((l) => l.id === s.leader) ?? logs[0]!;
        const behind = logs.find((l) => l.keys.join(',') !== leader.keys.join(','));
        if (behind) {
          last = `partition ${s.partition}: node ${behind.id} has ${behind.keys.length} batches, leader ${leader.id} has ${leader.keys.length}`;
          return false;
        }
        batches += leader.keys.length;
      }
      return batches > 0 && batches;
    }, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${last}`);
  }
}

beforeAll(async () => {
  for (const id of [1, 2, 3]) {
    mounts.set(id, mountTmpfs(64, `runnel-t14-broker-${id}-`));
  }
  cluster = await startReplicatedCluster({ nodeSet: (role, id) => (role === 'broker' ? [`log.dirs=${dataDir(id)}`] : []) });
}, 60_000);

afterAll(async () => {
  await cluster?.cleanup();
  for (const disk of mounts.values()) disk.unmount();
});

it('T14 leader: a full disk fails appends retriably, leadership moves to an in-sync replica, the broker does not crash; once space returns it rejoins without a restart and every batch passes its CRC', async () => {
  const topic = 't14-leader';
  const states = await createTopic(cluster, topic, 1);
  const victimId = states[0]!.leader;
  const victim = brokerById(cluster, victimId);
  expect(victim.process.output()).toContain(dataDir(victimId));
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 1, { tag: 't14l' });
  await producer.start();
  let failoverS = 0;
  let rejoinS = 0;
  try {
    await producer.progressed(200, 30_000);
    mounts.get(victimId)!.fill();
    const at = performance.now();
    ({ seconds: failoverS } = await newLeader(cluster, topic, 0, victimId, at, 30_000));
    // Appends on the full disk were refused with KAFKA_STORAGE_ERROR (NO_SPACE), never acknowledged.
    await until(`broker ${victimId} logging its full log dir`, () => /log dir is full: stepping down/.test(victim.process.output()), 10_000);
    expect(victim.process.output()).toMatch(/produce refused: log dir is full/);
    await producer.progressed(200, 30_000);
    // Still running, the dir still online: a full disk is retryable.
    expect(victim.process.child.exitCode).toBeNull();
    expect(victim.process.output()).not.toMatch(/log dir is offline/);

    // The same process catches up as a follower once its appends find space again.
    mounts.get(victimId)!.free();
    const freedAt = performance.now();
    await fullIsr(cluster, topic, 30_000);
    rejoinS = (performance.now() - freedAt) / 1000;
    await producer.progressed(100, 30_000);
  } finally {
    await producer.stop();
    mounts.get(victimId)!.free();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  const compared = await replicasConverge(topic, 20_000);
  const crcChecked = crcCheckedBatches(victimId, topic);
  report('T14 leader disk full', figures, { failover_s: failoverS.toFixed(1), isr_rejoin_s: rejoinS.toFixed(1), client_errors: producer.errors.length, victim_batches_crc_ok: crcChecked, replica_batches_compared: compared });
  expect(failoverS).toBeLessThanOrEqual(10);
  expect(crcChecked).toBeGreaterThan(0);
  expect({ ...intact(figures), phantom: figures.phantom }).toEqual({ ...INTACT, phantom: 0 });
}, 150_000);

it('T14 follower: a follower whose disk is full leaves the ISR without a client error and rejoins once space is back', async () => {
  const topic = 't14-follower';
  // Two partitions on three brokers: one broker leads neither and only follows.
  const states = await createTopic(cluster, topic, 2);
  const victimId = [1, 2, 3].find((id) => states.every((s) => s.leader !== id))!;
  const victim = brokerById(cluster, victimId);
  // The same process may have been the leader test's victim: only what it logs from here on counts.
  const logFrom = victim.process.output().length;
  const producer = new VerifiableProducer(kafkaOf(cluster), topic, 2, { tag: 't14f' });
  await producer.start();
  let outS = 0;
  let backS = 0;
  try {
    await producer.progressed(200, 30_000);
    mounts.get(victimId)!.fill();
    const at = performance.now();
    await until(`broker ${victimId} out of every ISR of ${topic}`, async () => (await partitionStates(cluster, topic)).every((s) => !s.isr.includes(victimId)), 30_000);
    outS = (performance.now() - at) / 1000;
    await producer.progressed(200, 30_000);
    expect(victim.process.child.exitCode).toBeNull();
    // A topic created meanwhile: the victim creates its (empty) replica log on the full disk and
    // fetches into it once space returns.
    await createTopicWithoutWaiting(`${topic}-new`);
    await until(`broker ${victimId} holding a replica log of ${topic}-new`, () => readdirSync(dataDir(victimId)).includes(`${topic}-new-0`), 10_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(victim.process.output()).not.toContain(`no space to create ${topic}-new-0`);

    mounts.get(victimId)!.free();
    const freedAt = performance.now();
    await fullIsr(cluster, topic, 30_000);
    await fullIsr(cluster, `${topic}-new`, 30_000);
    backS = (performance.now() - freedAt) / 1000;
    await producer.progressed(100, 30_000);
  } finally {
    await producer.stop();
    mounts.get(victimId)!.free();
  }
  const figures = await readAndCheck(cluster, topic, producer);
  const compared = await replicasConverge(topic, 20_000);
  const crcChecked = crcCheckedBatches(victimId, topic);
  report('T14 follower disk full', figures, { isr_shrink_s: outS.toFixed(1), isr_rejoin_s: backS.toFixed(1), client_errors: producer.errors.length, victim_batches_crc_ok: crcChecked, replica_batches_compared: compared });
  expect(outS).toBeLessThanOrEqual(12);
  expect(producer.errors).toEqual([]);
  expect(victim.process.output()).not.toMatch(/log dir is offline/);
  // The follower retried every replica.fetch.backoff.ms, and said so once per partition (rate-limited).
  const fullLines = victim.process.output().slice(logFrom).split('\n').filter((l) => l.includes('log dir is full: replica fetch not applied'));
  expect(fullLines.length).toBeGreaterThan(0);
  expect(fullLines.length).toBeLessThanOrEqual(2);
  expect({ ...intact(figures), phantom: figures.phantom }).toEqual({ ...INTACT, phantom: 0 });
}, 150_000);
