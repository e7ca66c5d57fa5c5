import { readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Codec, crc32c, scanLog } from '@runnel/native';
import { OffloadPool } from '@runnel/offload';
import { decodeRecordBatches, encodeRecordBatch } from '@runnel/protocol';
import { LogManager, type LogConfig } from '../src/index.ts';
import { backOffSyncWrites } from '../src/segment.ts';
import { batch, batchesIn, tempDir, testConfig } from './helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  // Every cleanup runs even if one fails (a busy mount point, a manager already stopped).
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve().then(c).catch(() => {});
});

async function setup(over: Partial<LogConfig> = {}, extra: { durable?: boolean; clusterId?: string; nodeId?: number } = {}) {
  const d = tempDir();
  cleanups.push(d.cleanup);
  const open = async () => {
    const m = LogManager.create({ logDirs: [d.path], defaults: testConfig(over), ...extra });
    await m.start();
    return m;
  };
  let mgr = await open();
  cleanups.push(() => mgr.stop());
  const restart = async (unclean = false) => {
    await mgr.stop();
    if (unclean) unlinkSync(join(d.path, '.kafka_cleanshutdown'));
    mgr = await open();
    return mgr;
  };
  return { dir: d.path, mgr: () => mgr, restart };
}

/** A log of three 2-record batches (offsets 0, 2, 4: 'sound', 'rotten', 'later') and its segment file's bytes, to corrupt and write back. */
async function soundRottenLater() {
  const { dir, mgr } = await setup();
  const log = await mgr().createLog('t', 0);
  await log.append(batch(2, { prefix: 'sound' }));
  await log.append(batch(2, { prefix: 'rotten' }));
  await log.append(batch(2, { prefix: 'later' }));
  const file = join(dir, 't-0', '00000000000000000000.log');
  return { mgr, log, file, bytes: readFileSync(file) };
}

const pid = 4242n;
const idem = (seq: number, count = 2, epoch = 0) => batch(count, { producerId: pid, producerEpoch: epoch, baseSequence: seq });

describe('append and read', () => {
  it('assigns offsets, reads whole batches, honours maxOffset and minOneBatch', async () => {
    const { mgr } = await setup();
    const log = await mgr().createLog('t', 0);
    expect((await log.append(batch(5))).baseOffset).toBe(0n);
    expect(await log.append(batch(5))).toEqual({ baseOffset: 5n, lastOffset: 9n, logAppendTime: -1n, duplicate: false });
    expect(batchesIn((await log.read(7n, 1_000_000)).records).map((b) => b.baseOffset)).toEqual([5n]);
    expect(batchesIn((await log.read(0n, 1_000_000, { maxOffset: 5n })).records).map((b) => b.baseOffset)).toEqual([0n]);
    expect(batchesIn((await log.read(0n, 1_000_000, { maxOffset: 4n })).records)).toEqual([]);
    expect((await log.read(0n, 10)).records.length).toBeGreaterThan(10);
    expect((await log.read(0n, 10, { minOneBatch: false })).records.length).toBe(0);
    expect((await log.read(10n, 100)).records.length).toBe(0);
    await expect(log.read(11n, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
  });

  it('writes the same through the threadpool as synchronously (after a slow write), and reads old and new data alike', async () => {
    const { mgr, restart } = await setup();
    const log = await mgr().createLog('t', 0);
    await log.append(batch(3, { prefix: 'sync' }));
    backOffSyncWrites(60_000); // as after a write slower than SLOW_WRITE_MS
    try {
      await Promise.all([log.append(batch(2, { prefix: 'pool' })), log.append(batch(2, { prefix: 'pool' }))]);
    } finally {
      backOffSyncWrites(0);
    }
    await log.append(batch(1, { prefix: 'sync' }));
    const read = async (l: typeof log) => batchesIn((await l.read(0n, 1_000_000)).records).map((b) => [b.baseOffset, b.lastOffset]);
    expect(await read(log)).toEqual([[0n, 2n], [3n, 4n], [5n, 6n], [7n, 7n]]);
    // The same bytes from disk after a restart (the active segment's tail is read synchronously).
    const reopened = (await restart(true)).getLog('t', 0)!;
    expect(await read(reopened)).toEqual([[0n, 2n], [3n, 4n], [5n, 6n], [7n, 7n]]);
  });

  it('rejects corrupt and oversized batches without writing', async () => {
    const { mgr } = await setup({ maxMessageBytes: 500 });
    const log = await mgr().createLog('t', 0);
    const bad = batch(2);
    bad[bad.length - 1] ^= 1;
    await expect(log.append(bad)).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
    await expect(log.append(batch(2, { size: 600 }))).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
    expect(log.logEndOffset).toBe(0n);
    expect(log.sizeBytes).toBe(0);
  });

  it('LogAppendTime sets maxTimestamp and the attribute and keeps the CRC valid', async () => {
    const { mgr } = await setup({ messageTimestampType: 'LogAppendTime' });
    const log = await mgr().createLog('t', 0);
    const before = BigInt(Date.now());
    const r = await log.append(batch(3, { timestamp: 1000 }));
    expect(r.logAppendTime >= before).toBe(true);
    const { records } = await log.read(0n, 10_000);
    const scan = scanLog(records);
    expect(scan.stopReason).toBeNull();
    expect(scan.batches[0].timestampType).toBe(1);
    expect(scan.batches[0].maxTimestamp).toBe(r.logAppendTime);
    expect(crc32c(records.subarray(21))).toBe(records.readUInt32BE(17));
  });

  it('offsetForTimestamp finds the first record at or after a timestamp', async () => {
    const { mgr } = await setup({ segmentBytes: 1000, indexIntervalBytes: 100 });
    const log = await mgr().createLog('t', 0);
    for (let i = 0; i < 50; i++) await log.append(batch(4, { timestamp: 10_000 + i * 10 })); // records at 10000+10i+j
    expect(log.segmentInfo().length).toBeGreaterThan(2);
    expect(await log.offsetForTimestamp(0n)).toEqual({ offset: 0n, timestamp: 10_000n, leaderEpoch: 0 });
    expect(await log.offsetForTimestamp(10_102n)).toEqual({ offset: 42n, timestamp: 10_102n, leaderEpoch: 0 });
    expect(await log.offsetForTimestamp(10_105n)).toEqual({ offset: 44n, timestamp: 10_110n, leaderEpoch: 0 });
    expect(await log.offsetForTimestamp(99_999n)).toBeNull();
  });
});

describe('idempotent producers', () => {
  it('returns the original offsets for a retry inside the last 5 batches and writes nothing', async () => {
    const { mgr } = await setup();
    const log = await mgr().createLog('t', 0);
    const first = await log.append(idem(0));
    for (let s = 2; s < 12; s += 2) await log.append(idem(s));
    const size = log.sizeBytes;
    // seq 0 has left the window of 5: it is now out of order.
    await expect(log.append(idem(0))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    const dup = await log.append(idem(4));
    expect(dup).toEqual({ baseOffset: 4n, lastOffset: 5n, logAppendTime: -1n, duplicate: true });
    expect(log.sizeBytes).toBe(size);
    expect(first.baseOffset).toBe(0n);
  });

  it('detects a retry written in the same coalesced write as its original', async () => {
    const { mgr } = await setup();
    const log = await mgr().createLog('t', 0);
    const [a, b, c, d] = await Promise.allSettled([log.append(idem(0)), log.append(idem(0)), log.append(idem(3)), log.append(idem(2))]);
    expect(a).toMatchObject({ status: 'fulfilled', value: { baseOffset: 0n, duplicate: false } });
    expect(b).toMatchObject({ status: 'fulfilled', value: { baseOffset: 0n, lastOffset: 1n, duplicate: true } });
    expect(c).toMatchObject({ status: 'rejected', reason: { code: 'OUT_OF_ORDER_SEQUENCE' } });
    expect(d).toMatchObject({ status: 'fulfilled', value: { baseOffset: 2n, duplicate: false } });
    expect(log.stats.appends).toBe(2);
  }, 10_000);

  it('rejects gaps, fences old epochs, requires seq 0 for a new epoch, wraps at 2^31-1', async () => {
    const { mgr } = await setup();
    const log = await mgr().createLog('t', 0);
    await log.append(idem(0));
    await expect(log.append(idem(3))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    await expect(log.append(idem(5, 2, 1))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    await log.append(idem(0, 2, 1));
    await expect(log.append(idem(2, 2, 0))).rejects.toMatchObject({ code: 'INVALID_PRODUCER_EPOCH' });
    // An unknown producer may start anywhere; wrap-around continues at 0.
    const other = (seq: number, n: number) => batch(n, { producerId: 7n, producerEpoch: 0, baseSequence: seq });
    await log.append(other(0x7fffffff - 1, 2));
    await log.append(other(0, 1));
    await expect(log.append(other(5, 1))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
  });

  for (const mode of ['clean restart', 'clean restart without snapshot', 'crash', 'crash without snapshot or recovery point'] as const) {
    it(`rebuilds producer state after a ${mode}`, async () => {
      const { dir, mgr, restart } = await setup({ segmentBytes: 400 });
      let log = await mgr().createLog('t', 0);
      for (let s = 0; s < 40; s += 2) await log.append(idem(s));
      expect(log.segmentInfo().length).toBeGreaterThan(3);
      if (mode === 'crash without snapshot or recovery point') {
        await mgr().stop();
        unlinkSync(join(dir, 't-0', 'producer-state-checkpoint'));
        unlinkSync(join(dir, 'recovery-point-offset-checkpoint'));
      }
      if (mode === 'clean restart without snapshot') {
        await mgr().stop();
        unlinkSync(join(dir, 't-0', 'producer-state-checkpoint'));
      }
      await restart(mode.startsWith('crash'));
      log = mgr().getLog('t', 0)!;
      expect(await log.append(idem(36))).toMatchObject({ baseOffset: 36n, duplicate: true });
      await expect(log.append(idem(44))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
      expect((await log.append(idem(40))).baseOffset).toBe(40n);
    });
  }
});

/** A started manager on a fresh dir whose big record checks and inflations run in a one-thread offload pool. */
async function pooled() {
  const d = tempDir();
  cleanups.push(d.cleanup);
  const pool = OffloadPool.create({ threads: 1 });
  cleanups.push(() => pool.stop());
  const mgr = LogManager.create({ logDirs: [d.path], defaults: testConfig(), pool });
  await mgr.start();
  cleanups.push(() => mgr.stop());
  return { pool, mgr };
}

describe('createLog', () => {
  it('calls for one partition share its creation: the dir stays online and nothing appended meanwhile is overwritten', async () => {
    const { mgr, restart } = await setup();
    // At once: two creations of one dir would race on its files.
    const [a, b] = await Promise.all([mgr().createLog('twice', 0), mgr().createLog('twice', 0)]);
    expect(a).toBe(b);
    // Queued behind many other creations (8 run at a time) while the first call's log already took writes.
    const first = mgr().createLog('dup', 0);
    const others = Array.from({ length: 200 }, (_, p) => mgr().createLog('other', p));
    const second = mgr().createLog('dup', 0);
    const log = await first;
    await log.append(batch(3));
    expect(await second).toBe(log);
    await Promise.all(others);
    expect(mgr().dirs()[0]!.online).toBe(true);
    expect(batchesIn((await log.read(0n, 1 << 20)).records).map((x) => x.lastOffset)).toEqual([2n]);
    expect((await restart()).getLog('dup', 0)!.logEndOffset).toBe(3n);
  }, 60_000);
});

describe('appends with record checks in the offload pool', () => {
  it('keeps call order across a slow off-thread check and never detaches the payload', async () => {
    const { mgr } = await pooled();
    const log = await mgr.createLog('p', 0);
    // > 64 KiB compressed: checked in the pool. The buffer owns its ArrayBuffer (transferable).
    const enc = encodeRecordBatch({ records: Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: randomBytes(1000) })), codec: Codec.Lz4, producerId: 5n, producerEpoch: 0, baseSequence: 0 });
    const big = Buffer.allocUnsafeSlow(enc.length);
    enc.copy(big);
    const small = batch(2, { producerId: 5n, producerEpoch: 0, baseSequence: 200 });
    const [a, b] = await Promise.all([log.append(big), log.append(small)]);
    expect(a).toMatchObject({ baseOffset: 0n, lastOffset: 199n });
    expect(b).toMatchObject({ baseOffset: 200n, lastOffset: 201n });
    const got = decodeRecordBatches((await log.read(0n, 1 << 20)).records);
    expect(got.map((x) => x.records.length)).toEqual([200, 2]);
  });
});

describe('seek by time in a compressed batch inflated in the offload pool', () => {
  it('is record-exact, and a stopped pool is a retriable error, never the batch-level guess', async () => {
    const { pool, mgr } = await pooled();
    const log = await mgr.createLog('p', 0);
    // > 64 KiB compressed (random values): inflated in the pool. Records at 50_000 + i.
    await log.append(encodeRecordBatch({ records: Array.from({ length: 100 }, (_, i) => ({ key: null, value: randomBytes(1000), timestamp: 50_000 + i })), codec: Codec.Lz4, timestamp: 50_000 }));
    expect(await log.offsetForTimestamp(50_042n)).toEqual({ offset: 42n, timestamp: 50_042n, leaderEpoch: 0 });
    await pool.stop();
    await expect(log.offsetForTimestamp(50_042n)).rejects.toMatchObject({ code: 'STORAGE_ERROR', retriable: true });
    expect(log.online).toBe(true);
  });
});

describe('follower appends', () => {
  it('copies a leader log byte for byte, keeping offsets and epochs, and rejects corrupt or overlapping data', async () => {
    const { mgr } = await setup({ segmentBytes: 1200 });
    const leader = await mgr().createLog('t', 0);
    const follower = await mgr().createLog('t', 1);
    for (let i = 0; i < 30; i++) await leader.append(batch(3, { producerId: 9n, producerEpoch: 0, baseSequence: i * 3 }), { leaderEpoch: i < 10 ? 1 : 2 });
    let at = 0n;
    while (at < leader.logEndOffset) {
      const { records } = await leader.read(at, 700);
      const r = await follower.appendAsFollower(Buffer.from(records));
      expect(r.firstOffset).toBe(at);
      at = r.lastOffset + 1n;
    }
    expect(follower.logEndOffset).toBe(90n);
    expect(follower.leaderEpochs.entries).toEqual([{ epoch: 1, startOffset: 0n }, { epoch: 2, startOffset: 30n }]);
    expect(Buffer.compare((await follower.read(0n, 1 << 20)).records, (await leader.read(0n, 1 << 20)).records)).toBe(0);
    // Producer state came along: the follower, as a new leader, deduplicates a retry.
    expect(await follower.append(batch(3, { producerId: 9n, producerEpoch: 0, baseSequence: 87 }))).toMatchObject({ baseOffset: 87n, duplicate: true });
    const { records } = await leader.read(0n, 100);
    await expect(follower.appendAsFollower(Buffer.from(records))).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
    const bad = Buffer.from(batch(2));
    bad.writeBigInt64BE(90n, 0);
    bad[bad.length - 1] ^= 1;
    await expect(follower.appendAsFollower(bad)).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
  });
});

describe('replication state on disk', () => {
  it('keeps each high watermark in replication-offset-checkpoint across a restart (clean or not), never above the log end', async () => {
    const { dir, mgr, restart } = await setup();
    const a = await mgr().createLog('t', 0);
    const b = await mgr().createLog('t', 1);
    const fresh = await mgr().createLog('t', 2);
    for (let i = 0; i < 5; i++) await a.append(batch(2));
    await b.append(batch(3));
    await fresh.append(batch(4));
    a.highWatermark = 6n; // a follower that learned 6 from its leader; 7..9 are not committed yet
    b.highWatermark = 3n;
    await restart();
    const lines = readFileSync(join(dir, 'replication-offset-checkpoint'), 'utf8').trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['0', '3']);
    expect(lines.slice(2).sort()).toEqual(['t 0 6', 't 1 3', 't 2 0']); // storage alone never moves it: its leader does
    expect(mgr().getLog('t', 0)!).toMatchObject({ highWatermark: 6n, logEndOffset: 10n });
    expect(mgr().getLog('t', 1)!.highWatermark).toBe(3n);
    // The checkpoint claims more than survived (a torn tail): clamped to the recovered end.
    await mgr().stop();
    writeFileSync(join(dir, 'replication-offset-checkpoint'), '0\n3\nt 0 6\nt 1 99\nt 2 1\n');
    await restart(true);
    expect(mgr().getLog('t', 0)!.highWatermark).toBe(6n);
    expect(mgr().getLog('t', 1)!.highWatermark).toBe(3n);
    expect(mgr().getLog('t', 2)!.highWatermark).toBe(1n);
    // An unreadable checkpoint is ignored: every partition starts at its log end (single-node behaviour).
    await mgr().stop();
    writeFileSync(join(dir, 'replication-offset-checkpoint'), 'garbage');
    await restart();
    expect(mgr().getLog('t', 0)!.highWatermark).toBe(10n);
  });

  it('read({ verify }) serves the batches before a rotten one and refuses a rotten first batch; a plain read serves the bytes as stored', async () => {
    const { log, file, bytes } = await soundRottenLater();
    bytes[bytes.indexOf('rotten-1')] ^= 0x20; // 'Rotten-1': the batch's CRC no longer matches
    writeFileSync(file, bytes);
    const served = await log.read(0n, 1 << 20, { verify: true });
    expect(batchesIn(served.records).map((b) => b.baseOffset)).toEqual([0n]);
    await expect(log.read(2n, 1 << 20, { verify: true })).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
    expect(batchesIn((await log.read(4n, 1 << 20, { verify: true })).records).map((b) => b.baseOffset)).toEqual([4n]);
    expect((await log.read(0n, 1 << 20)).records.includes('Rotten-1')).toBe(true);
  });

  for (const [rot, flip] of [['its sign bit flipped', (b: Buffer, at: number) => { b[at] ^= 0x80; }], ['zeroed (a length of 0 with the overhead)', (b: Buffer, at: number) => { b.writeInt32BE(-12, at); }]] as const) {
    it(`a stored batch whose length field is ${rot} is never walked past: reads refuse it, serve the batches before it, and truncateTo cuts at it`, async () => {
      const { mgr, log, file, bytes } = await soundRottenLater();
      flip(bytes, 12 + bytes.readInt32BE(8) + 8); // the second batch's length field
      writeFileSync(file, bytes);
      expect(batchesIn((await log.read(0n, 1 << 20, { verify: true })).records).map((b) => b.baseOffset)).toEqual([0n]);
      // Behind the rotten header nothing can be found: CORRUPT_MESSAGE (the replica steps down and repairs), not a loop.
      await expect(log.read(2n, 1 << 20, { verify: true })).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
      await expect(log.read(4n, 1 << 20)).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
      expect(mgr().getLog('t', 0)!.online).toBe(true);
      // The repair: truncate at the rotten batch (asked for a later offset, it cuts there too), then append again.
      await log.truncateTo(4n);
      expect(log.logEndOffset).toBe(2n);
      expect((await log.append(batch(2, { prefix: 'again' }))).baseOffset).toBe(2n);
      expect(batchesIn((await log.read(0n, 1 << 20, { verify: true })).records).map((b) => b.baseOffset)).toEqual([0n, 2n]);
    });
  }

  it('truncateFullyAndStartAt empties the log and starts it past its old end (a follower below its leader\'s log start)', async () => {
    const { mgr, restart } = await setup();
    const log = await mgr().createLog('t', 0);
    await log.append(batch(3, { producerId: 7n, producerEpoch: 0, baseSequence: 0 }), { leaderEpoch: 2 });
    await log.truncateFullyAndStartAt(50n);
    expect(log).toMatchObject({ logStartOffset: 50n, logEndOffset: 50n, highWatermark: 50n });
    expect(log.leaderEpochs.entries).toEqual([]);
    expect(log.producerState.producers.size).toBe(0);
    await expect(log.read(0n, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    const leader = await mgr().createLog('t', 1);
    await leader.truncateFullyAndStartAt(50n);
    await leader.append(batch(2), { leaderEpoch: 3 });
    expect(await log.appendAsFollower(Buffer.from((await leader.read(50n, 1 << 20)).records))).toEqual({ firstOffset: 50n, lastOffset: 51n });
    await restart();
    expect(mgr().getLog('t', 0)!).toMatchObject({ logStartOffset: 50n, logEndOffset: 52n });
    expect(mgr().getLog('t', 0)!.leaderEpochs.entries).toEqual([{ epoch: 3, startOffset: 50n }]);
  });
});

describe('flush policy', () => {
  it('flush.messages fsyncs and moves the recovery point to the log end', async () => {
    const { mgr } = await setup({ flushMessages: 10 });
    const log = await mgr().createLog('t', 0);
    await log.append(batch(4));
    expect(log.recoveryPoint).toBe(0n);
    await log.append(batch(4));
    await log.append(batch(4));
    expect(log.recoveryPoint).toBe(12n);
    await log.append(batch(4));
    expect(log.recoveryPoint).toBe(12n);
    await log.flush();
    expect(log.recoveryPoint).toBe(16n);
  });
});

describe('rolling', () => {
  it('rolls when an index is full and when segment.ms has passed', async () => {
    const { dir, mgr } = await setup({ segmentIndexBytes: 24, indexIntervalBytes: 0 });
    const log = await mgr().createLog('t', 0);
    for (let i = 0; i < 20; i++) await log.append(batch(2, { timestamp: 1000 + i }));
    const segs = log.segmentInfo();
    expect(segs.length).toBeGreaterThanOrEqual(6);
    await mgr().stop();
    for (const s of segs) {
      const name = String(s.baseOffset).padStart(20, '0');
      expect(statSync(join(dir, 't-0', `${name}.index`)).size).toBeLessThanOrEqual(24);
      expect(statSync(join(dir, 't-0', `${name}.timeindex`)).size).toBeLessThanOrEqual(24);
    }
  });

  it('segment.ms rolls a non-empty active segment', async () => {
    const { mgr } = await setup({ segmentMs: 1 });
    const log = await mgr().createLog('t', 0);
    await log.append(batch(1));
    await new Promise((r) => setTimeout(r, 5));
    await log.append(batch(1));
    expect(log.segmentInfo().map((s) => s.baseOffset)).toEqual([0n, 1n]);
  });
});

describe('on-disk format', () => {
  it('writes Kafka-readable segment, index, checkpoint and meta files', async () => {
    const { dir, mgr } = await setup({ segmentBytes: 1500, indexIntervalBytes: 100 }, { clusterId: 'abcDEF', nodeId: 3 });
    const log = await mgr().createLog('orders', 2);
    for (let i = 0; i < 40; i++) await log.append(batch(2, { timestamp: 5000 + i }), { leaderEpoch: i < 20 ? 0 : 4 });
    await mgr().stop();
    const pdir = join(dir, 'orders-2');
    const files = readdirSync(pdir).sort();
    expect(files).toContain('00000000000000000000.log');
    expect(files).toContain('00000000000000000000.index');
    expect(files).toContain('00000000000000000000.timeindex');
    expect(files).toContain('leader-epoch-checkpoint');
    const logs = files.filter((f) => f.endsWith('.log'));
    expect(logs.length).toBeGreaterThan(1);
    for (const f of logs) {
      const base = BigInt(f.slice(0, 20));
      const data = readFileSync(join(pdir, f));
      const scan = scanLog(data);
      expect(scan.validBytes).toBe(data.length);
      expect(scan.batches[0].baseOffset).toBe(base);
      const index = readFileSync(join(pdir, f.replace('.log', '.index')));
      const tindex = readFileSync(join(pdir, f.replace('.log', '.timeindex')));
      expect(index.length % 8).toBe(0);
      expect(tindex.length % 12).toBe(0);
      expect(index.length).toBeGreaterThan(0);
      // Each index entry points at the start of the batch whose last offset it names.
      for (let i = 0; i < index.length; i += 8) {
        const rel = BigInt(index.readInt32BE(i));
        const pos = index.readInt32BE(i + 4);
        const b = scan.batches.find((x) => x.position === pos)!;
        expect(b.baseOffset + BigInt(b.lastOffsetDelta)).toBe(base + rel);
      }
      // The time index ends with the segment's max timestamp.
      const maxTs = scan.batches.reduce((m, b) => (b.maxTimestamp > m ? b.maxTimestamp : m), -1n);
      expect(tindex.readBigInt64BE(tindex.length - 12)).toBe(maxTs);
    }
    expect(readFileSync(join(pdir, 'leader-epoch-checkpoint'), 'utf8')).toBe('0\n2\n0 0\n4 40\n');
    expect(readFileSync(join(dir, 'recovery-point-offset-checkpoint'), 'utf8')).toBe('0\n1\norders 2 80\n');
    expect(readFileSync(join(dir, 'log-start-offset-checkpoint'), 'utf8')).toBe('0\n1\norders 2 0\n');
    const meta = readFileSync(join(dir, 'meta.properties'), 'utf8');
    expect(meta).toMatch(/^version=1$/m);
    expect(meta).toMatch(/^cluster\.id=abcDEF$/m);
    expect(meta).toMatch(/^node\.id=3$/m);
    expect(statSync(join(dir, '.kafka_cleanshutdown')).isFile()).toBe(true);
    // A different cluster id refuses to start.
    const other = LogManager.create({ logDirs: [dir], defaults: testConfig(), clusterId: 'other' });
    await expect(other.start()).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    // Every record is still readable by the protocol decoder.
    const decoded = decodeRecordBatches(readFileSync(join(pdir, logs[0])));
    expect(decoded[0].records[0].value?.toString()).toBe('v-0');
  });
});
