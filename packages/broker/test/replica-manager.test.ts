/**
 * ReplicaManager races that a process-level cluster cannot hold open on purpose, and the leader's
 * in-memory tail for followers (what it keeps and gives back is only visible in process), driven in this
 * process with the real parts: a LocalStore (metadata file), a LogManager over a temp dir, the
 * broker's Partitions and FetchPurgatory. Broker 2 is registered in the store but never runs: a
 * partition it leads is followed here without an answer, which is all these cases need.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { resolveConfig, silentLogger, topicConfig } from '@runnel/common';
import { LocalStore } from '@runnel/metadata';
import { encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { LogManager } from '@runnel/storage';
import { toKafkaError } from '../src/errors.ts';
import { logConfigOf } from '../src/log-config.ts';
import { Partitions } from '../src/partitions.ts';
import { FetchPurgatory } from '../src/purgatory.ts';
import { NotLeaderError, ReplicaManager } from '../src/replication/replica-manager.ts';

let dir: string;
let store: LocalStore;
let logs: LogManager;
let partitions: Partitions;
let replicas: ReplicaManager;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnel-replica-manager-'));
  const { config } = resolveConfig({ overrides: new Map([['listeners', 'PLAINTEXT://127.0.0.1:0'], ['log.dirs', join(dir, 'logs')], ['node.id', '1'], ['replica.fetch.backoff.ms', '50']]) });
  store = LocalStore.create({ path: join(dir, 'metadata.json'), nodeId: 1 });
  await store.start();
  for (const nodeId of [1, 2]) await store.registerBroker({ nodeId, host: '127.0.0.1', port: 9092 + nodeId, rack: null });
  logs = LogManager.create({ logDirs: [join(dir, 'logs')], defaults: logConfigOf(topicConfig(config)), nodeId: 1, clusterId: store.snapshot().clusterId });
  await logs.start();
  const logger = silentLogger();
  partitions = new Partitions({ config, metadata: store, logs, nodeId: 1, logger });
  replicas = new ReplicaManager({ nodeId: 1, config, metadata: store, partitions, logs, purgatory: new FetchPurgatory(), logger });
});

afterEach(async () => {
  await replicas.stop();
  await partitions.stop();
  await logs.stop();
  await store.stop();
  await rm(dir, { recursive: true, force: true });
});

it('a follower append in flight at the takeover counts as the new leader\'s own end: its records reach the high watermark', async () => {
  const topic = await store.createTopic({ name: 'takeover', partitions: 1, replicationFactor: 1, configs: {}, assignments: [[1]] });
  const state = topic.partitions[0]!;
  const log = await logs.createLog('takeover', 0);
  // The fetcher's append is queued on the log's lock before leadership arrives (not awaited yet).
  const appending = log.appendAsFollower(encodeRecordBatch({ baseOffset: 0n, records: [{ value: 'a' }, { value: 'b' }] }));
  const lead = replicas.leadership(topic, state, log)!;
  expect(lead).not.toBeNull();
  await appending;
  expect(log.logEndOffset).toBe(2n);
  // ISR = [this broker]: the high watermark is the leader's own end, with no further append.
  await until(() => log.highWatermark === 2n);
  expect(lead.localEnd).toBe(2n);
  expect(lead.epochStartOffset).toBe(2n);
});

it('a partition state read before the broker was deposed neither re-creates leadership nor appends under the old epoch', async () => {
  // Broker 2 leads; broker 1 follows it.
  const topic = await store.createTopic({ name: 'deposed', partitions: 1, replicationFactor: 2, configs: {}, assignments: [[2, 1]] });
  const current = topic.partitions[0]!;
  await replicas.start();
  await until(() => replicas.followingFrom('deposed', 0) === 2);
  const log = logs.getLog('deposed', 0)!;
  // What a produce read before its await, when this broker still led at this epoch.
  const stale = { ...current, leader: 1 };
  const refused = await replicas.appendAsLeader(topic, stale, log, encodeRecordBatch({ records: [{ value: 'lost' }] })).then(() => null, (err: unknown) => err);
  expect(refused).toBeInstanceOf(NotLeaderError);
  expect(toKafkaError(refused).code).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
  expect(log.logEndOffset).toBe(0n);
  expect(replicas.followingFrom('deposed', 0)).toBe(2);
  expect(replicas.leadership(topic, stale, log)).toBeNull();
});

it('a replica fetch with a broker epoch other than the live registration\'s is STALE_BROKER_EPOCH and moves nothing', async () => {
  // Broker 1 leads, broker 2 is in the ISR: the high watermark waits for broker 2's fetches.
  const topic = await store.createTopic({ name: 'epochs', partitions: 1, replicationFactor: 2, configs: {}, assignments: [[1, 2]] });
  await replicas.start();
  const found = await partitions.leaderLog('epochs', 0);
  if (!found.ok) throw new Error(found.error);
  await replicas.appendAsLeader(topic, found.state, found.log, encodeRecordBatch({ records: [{ value: 'a' }, { value: 'b' }] }));
  expect(found.log.highWatermark).toBe(0n);
  const own = store.snapshot().brokers.get(2)!.brokerEpoch;
  // This store registered broker 1 itself: its own registration is the live one.
  expect(store.registration()?.brokerEpoch).toBe(store.snapshot().brokers.get(1)!.brokerEpoch);
  const fetch = (brokerEpoch: number) => replicas.handleReplicaFetch({
    replicaId: 2, brokerEpoch, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, partitionMaxBytes: 1 << 20,
    partitions: [{ topic: 'epochs', partition: 0, fetchOffset: 2n, currentLeaderEpoch: 0, lastFetchedEpoch: 0, logStartOffset: 0n }],
  });

  // An old process that lost node id 2 (an older epoch), or one from the future: refused, not counted.
  for (const stale of [own - 1, own + 1, -1]) {
    const res = await fetch(stale);
    expect(res.partitions[0]!.error).toBe('STALE_BROKER_EPOCH');
    expect(res.partitions[0]!.records.length).toBe(0);
  }
  expect(found.log.highWatermark).toBe(0n);

  const res = await fetch(own);
  expect(res.partitions[0]!.error).toBe('');
  expect(found.log.highWatermark).toBe(2n);
});

it('replication throttling counts an in-sync follower\'s bytes of a listed partition and holds back only the out-of-sync one (Kafka\'s rule)', async () => {
  // Broker 1 leads [1, 2, 3]; broker 2 is in the ISR, broker 3 (a new replica) is not.
  await store.registerBroker({ nodeId: 3, host: '127.0.0.1', port: 9095, rack: null });
  const created = await store.createTopic({ name: 'paced', partitions: 1, replicationFactor: 3, configs: {}, assignments: [[1, 2, 3]] });
  const p0 = created.partitions[0]!;
  expect((await store.alterPartition({ topic: 'paced', partition: 0, leaderEpoch: p0.leaderEpoch, version: p0.version, isr: [1, 2] })).error).toBeNull();
  await store.alterTopicConfigs('paced', { 'leader.replication.throttled.replicas': '0:1' });
  await store.alterBrokerConfigs(1, { 'leader.replication.throttled.rate': '1000' });
  const found = await partitions.leaderLog('paced', 0);
  if (!found.ok) throw new Error(found.error);
  expect(found.state.isr).toEqual([1, 2]);
  // 20 KB: over the 10 s minimum window, 2,000 B/s against the 1,000 B/s throttle.
  await replicas.appendAsLeader(found.topic, found.state, found.log, encodeRecordBatch({ records: [{ value: Buffer.alloc(20_000, 1) }] }));
  const fetch = (replicaId: number, fetchOffset = 0n) => replicas.handleReplicaFetch({
    replicaId, brokerEpoch: store.snapshot().brokers.get(replicaId)!.brokerEpoch, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, partitionMaxBytes: 1 << 20,
    partitions: [{ topic: 'paced', partition: 0, fetchOffset, currentLeaderEpoch: found.state.leaderEpoch, lastFetchedEpoch: -1, logStartOffset: 0n }],
  });
  // The in-sync follower is never held back, and its bytes count against the quota.
  expect((await fetch(2)).partitions[0]!.records.length).toBeGreaterThan(20_000);
  await fetch(2, 1n); // caught up: the high watermark moves past what broker 3 has
  expect(found.log.highWatermark).toBe(1n);
  // So the out-of-sync one gets nothing: the total replication traffic is over the rate.
  const held = (await fetch(3)).partitions[0]!;
  expect(held.error).toBe('');
  expect(held.records.length).toBe(0);
  // The in-sync follower still gets its bytes over the quota.
  expect((await fetch(2)).partitions[0]!.records.length).toBeGreaterThan(20_000);
});

// The leader's tail for followers (docs/replication.md "The data path"): a follower fetching at
// the log end gets the leader's latest appends from memory, exactly the bytes the log stored, and
// the memory is given back once every in-sync follower has fetched past them; and the leader state
// never goes back to an older ISR than it has applied. Brokers 2 and 3 never run: the test fetches
// as them.

/** Broker 1 leads `name`-0 with replicas and ISR [1, 2, 3]. */
async function led(name: string, configs: Record<string, string> = {}) {
  await store.registerBroker({ nodeId: 3, host: '127.0.0.1', port: 9095, rack: null });
  await store.createTopic({ name, partitions: 1, replicationFactor: 3, configs, assignments: [[1, 2, 3]] });
  await replicas.start();
  const found = await partitions.leaderLog(name, 0);
  if (!found.ok) throw new Error(found.error);
  const fetch = async (replicaId: number, fetchOffset: bigint) => (await replicas.handleReplicaFetch({
    replicaId, brokerEpoch: store.snapshot().brokers.get(replicaId)!.brokerEpoch, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, partitionMaxBytes: 1 << 20,
    partitions: [{ topic: name, partition: 0, fetchOffset, currentLeaderEpoch: found.state.leaderEpoch, lastFetchedEpoch: -1, logStartOffset: 0n }],
  })).partitions[0]!;
  // As a produce does: the partition's current state, and a batch as a producer sends it (base
  // offset 0, no leader epoch), so what is kept is what the log assigned in place, not what the
  // test wrote.
  const appendBytes = async (payload: Buffer) => {
    const now = await partitions.leaderLog(name, 0);
    if (!now.ok) throw new Error(now.error);
    return replicas.appendAsLeader(now.topic, now.state, now.log, payload);
  };
  const append = (values: string[]) => appendBytes(encodeRecordBatch({
    baseOffset: 0n, partitionLeaderEpoch: -1, records: values.map((value) => ({ value })),
  }));
  return { log: found.log, fetch, append, appendBytes };
}

it('a follower at the log end gets the latest append from memory: the bytes the log stored, without reading the segment back', async () => {
  const { log, fetch, append } = await led('tail');
  await append(['a', 'b', 'c']);
  const stored = (await log.read(0n, 1 << 20)).records;
  expect(stored.length).toBeGreaterThan(61);
  expect(replicas.followerTailBytes).toBe(stored.length);
  // Damage the stored copy: a read of the segment would now refuse the batch (its CRC fails).
  const file = await open(join(dir, 'logs', 'tail-0', '00000000000000000000.log'), 'r+');
  await file.write(Buffer.from([stored[stored.length - 1]! ^ 0xff]), 0, 1, stored.length - 1);
  await file.close();
  await expect(log.read(0n, 1 << 20, { verify: true })).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });

  const answer = await fetch(2, 0n);
  expect(answer.error).toBe('');
  expect(Buffer.compare(answer.records, stored)).toBe(0);
});

it('the kept appends go once every in-sync follower has fetched past them; a follower behind reads the log', async () => {
  const { log, fetch, append } = await led('trimmed');
  await append(['a', 'b']);
  await append(['c']);
  const stored = (await log.read(0n, 1 << 20)).records;
  expect(replicas.followerTailBytes).toBe(stored.length);
  // Both appends in one answer, as one read would give them.
  expect(Buffer.compare((await fetch(2, 0n)).records, stored)).toBe(0);
  await fetch(2, 3n);
  // Broker 3 (in the ISR) has not fetched yet: everything stays.
  expect(replicas.followerTailBytes).toBe(stored.length);
  await fetch(3, 2n);
  const second = (await log.read(2n, 1 << 20)).records;
  expect(replicas.followerTailBytes).toBe(second.length);
  await fetch(3, 3n);
  expect(replicas.followerTailBytes).toBe(0);
  // Nothing kept: a fetch at an older offset is answered from the log, the same bytes.
  expect(Buffer.compare((await fetch(3, 0n)).records, stored)).toBe(0);
  expect(log.highWatermark).toBe(3n);
});

it('a topic whose compression.type makes the log store other bytes than the producer sent keeps nothing: followers read what the log stored', async () => {
  const { log, fetch, append } = await led('recompressed', { 'compression.type': 'lz4' });
  await append(['a'.repeat(1000), 'b'.repeat(1000)]);
  expect(replicas.followerTailBytes).toBe(0);
  const stored = (await log.read(0n, 1 << 20)).records;
  expect(Buffer.compare((await fetch(2, 0n)).records, stored)).toBe(0);
});

it('a kept append owns exactly its bytes: a small one does not pin a shared 8 KiB pool slab the caps do not count', async () => {
  const { fetch, append } = await led('owned');
  await append(['a']);
  const kept = (await fetch(2, 0n)).records;
  expect(replicas.followerTailBytes).toBe(kept.length);
  // One entry is answered as kept: its memory is what the tail holds.
  expect(kept.buffer.byteLength).toBe(kept.length);
});

it('a big append is kept as a view of the request, counted at the memory under it; a small share of a big buffer is copied', async () => {
  const { fetch, appendBytes } = await led('viewed');
  const batch = (n: number) => encodeRecordBatch({ baseOffset: 0n, partitionLeaderEpoch: -1, records: [{ value: Buffer.alloc(n, 7) }] });
  // A 40 KB batch read into a 100 KB socket chunk: kept in place, the whole chunk counted.
  const chunk = Buffer.alloc(100_000);
  const big = batch(40_000);
  big.copy(chunk, 10);
  await appendBytes(chunk.subarray(10, 10 + big.length));
  expect(replicas.followerTailBytes).toBe(chunk.length);
  const kept = (await fetch(2, 0n)).records;
  expect(kept.buffer).toBe(chunk.buffer);
  // A 10 KB batch in a 100 KB buffer (a request to many partitions): a copy of its own.
  const shared = Buffer.alloc(100_000);
  const small = batch(10_000);
  small.copy(shared, 500);
  await appendBytes(shared.subarray(500, 500 + small.length));
  // (a view would have counted the whole 100 KB)
  expect(replicas.followerTailBytes).toBe(chunk.length + small.length);
});

it('a topic with LogAppendTime keeps the batches as the log stamped them', async () => {
  const { log, fetch, append } = await led('append-time', { 'message.timestamp.type': 'LogAppendTime' });
  await append(['a']);
  const stored = (await log.read(0n, 1 << 20)).records;
  expect(replicas.followerTailBytes).toBe(stored.length);
  // attributes int16 at 21: the timestamp type bit (0x08) is set in what followers get.
  expect((await fetch(2, 0n)).records.readInt16BE(21) & 0x08).toBe(0x08);
  expect(Buffer.compare((await fetch(2, 0n)).records, stored)).toBe(0);
});

it('nothing is kept for followers out of the ISR: a shrink to the leader alone drops the tail, and later appends are not kept', async () => {
  const { log, append } = await led('shrunk');
  await append(['a']);
  expect(replicas.followerTailBytes).toBeGreaterThan(0);
  const p0 = store.snapshot().topics.get('shrunk')!.partitions[0]!;
  expect((await store.alterPartition({ topic: 'shrunk', partition: 0, leaderEpoch: p0.leaderEpoch, version: p0.version, isr: [1] })).error).toBeNull();
  for (let i = 0; i < 500 && replicas.followerTailBytes > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(replicas.followerTailBytes).toBe(0);
  await append(['b']);
  expect(log.highWatermark).toBe(2n);
  expect(replicas.followerTailBytes).toBe(0);
});

it('a partition state read before a later ISR change does not bring the older ISR back', async () => {
  const { log, append, fetch } = await led('versions');
  const before = store.snapshot().topics.get('versions')!;
  const old = before.partitions[0]!;
  // The controller takes broker 3 out (version + 1); this leader follows the event.
  expect((await store.alterPartition({ topic: 'versions', partition: 0, leaderEpoch: old.leaderEpoch, version: old.version, isr: [1, 2] })).error).toBeNull();
  for (let i = 0; i < 500 && replicas.leadership(before, store.snapshot().topics.get('versions')!.partitions[0]!, log)!.isr.length !== 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // A caller that read the partition before the change (then awaited) presents the old state.
  expect(replicas.leadership(before, old, log)!.isr).toEqual([1, 2]);
  // So the high watermark follows the committed ISR [1, 2]: broker 2's fetch alone commits.
  await append(['a']);
  await fetch(2, 1n);
  expect(log.highWatermark).toBe(1n);
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}
