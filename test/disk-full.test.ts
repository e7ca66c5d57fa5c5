// A full disk never needs a restart (single node, `runnel start`): the log dir sits on a small tmpfs
// that a filler file takes to the last byte. Produce gets KAFKA_STORAGE_ERROR (retriable), topic
// creation and offset commits get retriable errors, the periodic checkpoint writes fail while the
// disk is full (the dir must stay online), and once the filler is deleted everything resumes in the
// same process: every acknowledged record is readable, nothing from a failed request is.
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiKey, encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { runKcat } from './helpers/kcat.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { mountTmpfs, type Tmpfs } from './helpers/tmpfs.ts';

const CHECKPOINT_MS = 200;
const RETRYABLE = new Set<number>([ErrorCode.KAFKA_STORAGE_ERROR, ErrorCode.REQUEST_TIMED_OUT, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR]);

let disk: Tmpfs | undefined;
let mnt = '';
let broker: TestBroker | undefined;

async function produce(topic: string, keys: string[]): Promise<number> {
  const records = encodeRecordBatch({ records: keys.map((k) => ({ key: k, value: `${k}:`.padEnd(4000, 'v') })) });
  const body = await kafkaRequest(broker!.port, ApiKey.Produce, 7, { transactionalId: null, acks: -1, timeoutMs: 5_000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  return body.responses[0]!.partitionResponses[0]!.errorCode;
}

async function createTopic(name: string): Promise<number> {
  const body = await kafkaRequest(broker!.port, ApiKey.CreateTopics, 4, { topics: [{ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5_000, validateOnly: false });
  return body.topics[0]!.errorCode;
}

async function commit(group: string, topic: string, offset: bigint): Promise<number> {
  const body = await kafkaRequest(broker!.port, ApiKey.OffsetCommit, 2, {
    groupId: group, generationIdOrMemberEpoch: -1, memberId: '', retentionTimeMs: -1n,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, committedOffset: offset, committedMetadata: null }] }],
  });
  return body.topics[0]!.partitions[0]!.errorCode;
}

async function fetchCommitted(group: string, topic: string): Promise<bigint> {
  const body = await kafkaRequest(broker!.port, ApiKey.OffsetFetch, 2, { groupId: group, topics: [{ name: topic, partitionIndexes: [0] }] });
  return body.topics[0]!.partitions[0]!.committedOffset;
}

describe('a full disk (single node)', () => {
  beforeAll(async () => {
    disk = mountTmpfs(64, 'runnel-diskfull-');
    mnt = disk.path;
    broker = await startBroker({
      logDir: join(mnt, 'data'),
      set: [
        `replica.high.watermark.checkpoint.interval.ms=${CHECKPOINT_MS}`,
        `log.retention.check.interval.ms=${CHECKPOINT_MS}`,
        'log.segment.bytes=1048576',
        'offsets.topic.num.partitions=1',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await broker?.stop();
    disk?.unmount();
  });

  it('is retryable on every path and the dir comes back when space does, without a restart', async () => {
    expect(await createTopic('full')).toBe(ErrorCode.NONE);
    // The group coordinator's partition exists before the disk fills.
    expect(await commit('g', 'full', 0n)).toBe(ErrorCode.NONE);

    const acked = new Set<string>();
    const failed = new Set<string>();
    let n = 0;
    const batch = () => Array.from({ length: 8 }, () => `k${n++}`);

    // Fill most of the disk with the filler, then produce until a batch no longer fits.
    const free = statfsSync(mnt).bavail * statfsSync(mnt).bsize;
    const fd = openSync(disk!.filler, 'w');
    writeSync(fd, Buffer.alloc(free - 6 * 1024 * 1024));
    closeSync(fd);
    let code: number = ErrorCode.NONE;
    for (let i = 0; i < 1000 && code === ErrorCode.NONE; i++) {
      const keys = batch();
      code = await produce('full', keys);
      for (const k of keys) (code === ErrorCode.NONE ? acked : failed).add(k);
    }
    expect(code).toBe(ErrorCode.KAFKA_STORAGE_ERROR);
    expect(acked.size).toBeGreaterThan(0);

    // Not one byte left: every checkpoint write now fails too, which housekeeping says (waited for,
    // not slept on: a loaded machine may run the tick late).
    disk!.fill();
    await vi.waitFor(() => expect(broker!.process.output()).toMatch(/log dir is full: checkpoint not written/), { timeout: 30_000, interval: CHECKPOINT_MS });
    for (let i = 0; i < 3; i++) {
      const keys = batch();
      const c = await produce('full', keys);
      expect(RETRYABLE.has(c), `produce on a full disk answered ${c}`).toBe(true);
      for (const k of keys) failed.add(k);
    }
    const createCode = await createTopic('while-full');
    expect(RETRYABLE.has(createCode), `CreateTopics on a full disk answered ${createCode}`).toBe(true);
    // A commit is a few dozen bytes: it may still fit the tail of a page the offsets segment holds.
    const commitCode = await commit('g', 'full', 5n);
    expect(commitCode === ErrorCode.NONE || RETRYABLE.has(commitCode), `OffsetCommit on a full disk answered ${commitCode}`).toBe(true);
    expect(await fetchCommitted('g', 'full')).toBe(commitCode === ErrorCode.NONE ? 5n : 0n);

    // Free the space: the same process serves again.
    disk!.free();
    let resumed = ErrorCode.NONE as number;
    for (let i = 0; i < 20; i++) {
      const keys = batch();
      resumed = await produce('full', keys);
      expect(resumed, 'produce after space came back').toBe(ErrorCode.NONE);
      for (const k of keys) acked.add(k);
    }
    expect(await createTopic('while-full')).toBe(ErrorCode.NONE);
    expect(await commit('g', 'full', 7n)).toBe(ErrorCode.NONE);
    expect(await fetchCommitted('g', 'full')).toBe(7n);

    // Every acknowledged record is there, once; nothing of a refused request is (no partial batch).
    const r = await runKcat(['-C', '-b', broker!.bootstrap, '-t', 'full', '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%k\n'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const read = r.stdout.split('\n').filter(Boolean);
    expect(new Set(read).size).toBe(read.length);
    expect(read.filter((k) => failed.has(k))).toEqual([]);
    expect(new Set(read)).toEqual(acked);

    const out = broker!.process.output();
    expect(out).not.toMatch(/log dir is offline/);
    // Each refused produce was answered, but the full disk was logged once for the partition (rate-limited).
    const fullDiskLines = out.split('\n').filter((l) => l.includes('"topic":"full"') && (l.includes('"code":"NO_SPACE"') || l.includes('produce refused: log dir is full')));
    expect(fullDiskLines).toHaveLength(1);
    expect(broker!.process.child.exitCode).toBeNull();
    console.log(`[disk-full single node] acknowledged ${acked.size} records, refused ${failed.size}, read back ${read.length}`);
  }, 120_000);
});
