import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LogManager } from '../src/index.ts';
import { batch, batchesIn, tempDir, testConfig } from './helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  // Every cleanup runs even if one fails (a busy mount point, a manager already stopped).
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve().then(c).catch(() => {});
});

function dir() {
  const d = tempDir();
  cleanups.push(d.cleanup);
  return d.path;
}

describe('durable group commit', () => {
  it('acks many concurrent appends with far fewer fdatasyncs, and all acked data survives a crash', async () => {
    const path = dir();
    const mgr = LogManager.create({ logDirs: [path], defaults: testConfig({ segmentBytes: 64 * 1024 }), durable: true });
    await mgr.start();
    const log = await mgr.createLog('d', 0);
    const results = await Promise.all(Array.from({ length: 400 }, (_, i) => log.append(batch(3, { prefix: `c${i}` }))));
    expect(log.stats.appends).toBe(400);
    // Group commit: one fdatasync round serves every append waiting in it.
    expect(log.stats.groupCommits).toBeLessThan(100);
    expect(log.stats.groupCommits).toBeGreaterThan(0);
    const offsets = results.map((r) => r.baseOffset).sort((a, b) => (a < b ? -1 : 1));
    expect(offsets).toEqual(Array.from({ length: 400 }, (_, i) => BigInt(i * 3)));
    // "Crash": no stop(), a second manager recovers the same dir.
    const again = LogManager.create({ logDirs: [path], defaults: testConfig({ segmentBytes: 64 * 1024 }) });
    await again.start();
    cleanups.push(() => again.stop());
    const l2 = again.getLog('d', 0)!;
    expect(l2.logEndOffset).toBe(1200n);
    expect(batchesIn((await l2.read(1197n, 100)).records)[0].baseOffset).toBe(1197n);
  });
});

describe('several log dirs', () => {
  it('places partitions by free space minus promised bytes and keeps serving when one dir fails', async () => {
    const a = dir();
    const b = dir();
    const broken = join(dir(), 'not-a-dir');
    writeFileSync(broken, 'x');
    const mgr = LogManager.create({ logDirs: [a, b, broken], defaults: testConfig({ segmentBytes: 4096 }) });
    await mgr.start();
    cleanups.push(() => mgr.stop());
    const d = mgr.dirs();
    expect(d[2].online).toBe(false);
    expect(d[2].error).toMatch(/not a directory|ENOTDIR|EEXIST/);
    expect(d[0].online && d[1].online).toBe(true);
    const p0 = await mgr.createLog('m', 0);
    const p1 = await mgr.createLog('m', 1);
    // Same disk, so the promise of p0's segment sends p1 to the other dir.
    expect(new Set([p0.logDir, p1.logDir]).size).toBe(2);
    for (let i = 0; i < 10; i++) await p0.append(batch(5, { size: 50 }));
    // Replace p0's partition dir by a file: the next roll fails with an I/O error.
    renameSync(p0.dir, `${p0.dir}.moved`);
    writeFileSync(p0.dir, 'boom');
    let err: unknown;
    for (let i = 0; i < 200 && !err; i++) await p0.append(batch(5, { size: 50 })).catch((e) => (err = e));
    expect(err).toMatchObject({ code: 'LOG_DIR_OFFLINE' });
    expect(p0.online).toBe(false);
    await expect(p0.read(0n, 100)).rejects.toMatchObject({ code: 'LOG_DIR_OFFLINE' });
    // The other dir keeps serving.
    expect((await p1.append(batch(2))).baseOffset).toBe(0n);
    expect(batchesIn((await p1.read(0n, 1000)).records).length).toBe(1);
    const after = mgr.dirs();
    expect(after.find((x) => x.path === p0.logDir)!.online).toBe(false);
    expect(after.find((x) => x.path === p1.logDir)!.online).toBe(true);
    // New partitions avoid the offline dir.
    const p2 = await mgr.createLog('m', 2);
    expect(p2.logDir).not.toBe(p0.logDir);
    rmSync(p0.dir);
    renameSync(`${p0.dir}.moved`, p0.dir);
  });

  it('a full disk gives NO_SPACE and keeps everything acknowledged before', async (ctx) => {
    const mnt = dir();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      ctx.skip('mount -t tmpfs is not permitted here (needs root / CAP_SYS_ADMIN)');
    }
    cleanups.push(() => {
      execFileSync('umount', ['-l', mnt]);
    });
    const mgr = LogManager.create({ logDirs: [mnt], defaults: testConfig({ segmentBytes: 256 * 1024 }) });
    await mgr.start();
    const log = await mgr.createLog('full', 0);
    const acked: bigint[] = [];
    let err: unknown;
    for (let i = 0; i < 10_000 && !err; i++) {
      try {
        acked.push((await log.append(batch(4, { prefix: `f${i}`, size: 1000 }))).lastOffset);
      } catch (e) {
        err = e;
      }
    }
    expect(err).toMatchObject({ code: 'NO_SPACE' });
    expect(log.online).toBe(true);
    const leo = acked.at(-1)! + 1n;
    expect(log.logEndOffset).toBe(leo);
    // Still consistent and readable; a retry still fails cleanly.
    await expect(log.append(batch(4, { size: 1000 }))).rejects.toMatchObject({ code: 'NO_SPACE' });
    expect(batchesIn((await log.read(leo - 4n, 100_000)).records)[0].lastOffset).toBe(leo - 1n);
    // Stopping on a full disk may fail to write indexes and checkpoints: that is a crash for the data.
    await mgr.stop().catch(() => {});
    // Free space (grow the tmpfs) and restart: every acknowledged append is there.
    execFileSync('mount', ['-o', 'remount,size=4m', mnt]);
    const again = LogManager.create({ logDirs: [mnt], defaults: testConfig({ segmentBytes: 256 * 1024 }) });
    await again.start();
    const l2 = again.getLog('full', 0)!;
    expect(l2.logEndOffset).toBe(leo);
    let at = 0n;
    let n = 0;
    while (at < leo) {
      const got = batchesIn((await l2.read(at, 1 << 20)).records);
      n += got.length;
      at = got.at(-1)!.lastOffset + 1n;
    }
    expect(n).toBe(acked.length);
    await again.stop().catch(() => {});
  });
});

describe('createLog and deleteLog', () => {
  it('returns the existing log, deletes the partition dir, and does not load it again', async () => {
    const path = dir();
    const mgr = LogManager.create({ logDirs: [path], defaults: testConfig() });
    await mgr.start();
    const log = await mgr.createLog('del', 0);
    expect(await mgr.createLog('del', 0)).toBe(log);
    await log.append(batch(3));
    await mgr.createLog('keep', 0);
    await mgr.deleteLog('del', 0);
    expect(mgr.getLog('del', 0)).toBeUndefined();
    await expect(log.append(batch(1))).rejects.toMatchObject({ code: 'LOG_DIR_OFFLINE' });
    expect(mgr.dirs()[0].partitions).toBe(1);
    await mgr.stop();
    const again = LogManager.create({ logDirs: [path], defaults: testConfig() });
    await again.start();
    cleanups.push(() => again.stop());
    expect(again.logs().map((l) => `${l.topic}-${l.partition}`)).toEqual(['keep-0']);
    await expect(again.createLog('bad/name', 0)).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    await expect(again.createLog('ok', 0, { segmentBytes: 1 })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });
});

describe('retention', () => {
  it('retention.ms deletes whole old segments (never the active one) and checkpoints the log start', async () => {
    const path = dir();
    const mgr = LogManager.create({ logDirs: [path], defaults: testConfig({ segmentBytes: 2000, retentionMs: 60_000 }), retentionCheckIntervalMs: 20 });
    await mgr.start();
    cleanups.push(() => mgr.stop());
    const log = await mgr.createLog('r', 0);
    const old = Date.now() - 3_600_000;
    for (let i = 0; i < 30; i++) await log.append(batch(3, { timestamp: old }));
    for (let i = 0; i < 10; i++) await log.append(batch(3));
    const segs = log.segmentInfo();
    const firstNew = segs.find((s) => s.maxTimestamp > BigInt(old + 10_000))!;
    // The housekeeping timer runs retention.
    await vi.waitFor(() => expect(log.logStartOffset).toBe(firstNew.baseOffset), { timeout: 10_000 });
    expect(log.segmentInfo()[0].baseOffset).toBe(firstNew.baseOffset);
    await expect(log.read(0n, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    // The checkpoint is written after the start moves, asynchronously: wait for it rather than race it.
    await vi.waitFor(() => expect(readFileSync(join(path, 'log-start-offset-checkpoint'), 'utf8')).toBe(`0\n1\nr 0 ${firstNew.baseOffset}\n`), { timeout: 10_000 });
    // Everything old: all but the active segment go.
    const all = await mgr.createLog('r', 1, { segmentBytes: 2000, retentionMs: 1 });
    for (let i = 0; i < 30; i++) await all.append(batch(3, { timestamp: old }));
    await mgr.runRetention();
    expect(all.segmentInfo().length).toBe(1);
    expect(all.logStartOffset).toBe(all.segmentInfo()[0].baseOffset);
  });

  it('retention.bytes keeps the partition under the limit by whole segments', async () => {
    const path = dir();
    const mgr = LogManager.create({ logDirs: [path], defaults: testConfig({ segmentBytes: 2000, retentionBytes: 5000, retentionMs: -1 }) });
    await mgr.start();
    cleanups.push(() => mgr.stop());
    const log = await mgr.createLog('rb', 0);
    for (let i = 0; i < 100; i++) await log.append(batch(3));
    await mgr.runRetention();
    // Kafka's rule: drop the oldest segment while the rest still holds at least retention.bytes.
    const size = log.sizeBytes;
    expect(size).toBeGreaterThanOrEqual(5000);
    expect(size - log.segmentInfo()[0].size).toBeLessThan(5000);
    expect(log.segmentInfo().length).toBeLessThan(10);
    expect(log.logEndOffset).toBe(300n);
    expect(log.logStartOffset).toBe(log.segmentInfo()[0].baseOffset);
    // DeleteRecords moves the start inside a segment.
    const inside = log.logStartOffset + 2n;
    expect(await log.deleteRecordsBefore(inside)).toBe(inside);
    await expect(log.read(inside - 1n, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    expect(batchesIn((await log.read(inside, 100)).records)[0].lastOffset >= inside).toBe(true);
    mkdirSync(join(path, 'unused'), { recursive: true });
  });
});

describe('node identity on disk', () => {
  it('a log dir whose meta.properties names another node.id refuses to start, in one line, and loses nothing', async () => {
    const path = dir();
    const first = LogManager.create({ logDirs: [path], defaults: testConfig(), nodeId: 1, clusterId: 'c1' });
    await first.start();
    await (await first.createLog('mine', 0)).append(batch(5));
    await first.stop();
    expect(readFileSync(join(path, 'meta.properties'), 'utf8')).toMatch(/^node\.id=1$/m);

    const other = LogManager.create({ logDirs: [path], defaults: testConfig(), nodeId: 2, clusterId: 'c1' });
    const refused = await other.start().then(() => undefined, (err: unknown) => err as Error & { code: string });
    cleanups.push(() => other.stop());
    expect(refused).toMatchObject({ code: 'INVALID_CONFIG' });
    expect(refused!.message).toBe(`${join(path, 'meta.properties')}: node.id 1 does not match the configured node id 2`);
    expect(refused!.message).not.toContain('\n');

    // The rightful node still finds everything.
    const again = LogManager.create({ logDirs: [path], defaults: testConfig(), nodeId: 1, clusterId: 'c1' });
    await again.start();
    cleanups.push(() => again.stop());
    expect(again.getLog('mine', 0)!.logEndOffset).toBe(5n);
  });
});
