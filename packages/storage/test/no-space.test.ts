// A full disk is retryable on the write paths around the append (the append itself: dirs.test.ts):
// housekeeping's checkpoints, a checkpoint file's `.tmp`, recovery at start, compaction output. Each on a small tmpfs
// that a filler file takes to the last byte; the dir stays online and serves again once the filler
// is deleted.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger, type Logger } from '@runnel/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeCheckpoint } from '../src/checkpoint.ts';
import { compactLog } from '../src/compaction.ts';
import { LogManager } from '../src/index.ts';
import { fillToTheLastByte, mountTmpfs } from '../../../test/helpers/tmpfs.ts';
import { batch, batchesIn, testConfig } from './helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve().then(c).catch(() => {});
});

/** A fresh 4 MiB tmpfs (unmounted after the test). */
function smallDisk(): string {
  const disk = mountTmpfs(4, 'runnel-nospace-');
  cleanups.push(() => disk.unmount());
  return disk.path;
}

/** Fill `<mnt>/filler` until not one byte is left; returns the filler's path. */
function fill(mnt: string): string {
  const path = join(mnt, 'filler');
  fillToTheLastByte(mnt, path);
  return path;
}

describe('a full disk', () => {
  it('a checkpoint write that fails leaves the old file whole and no .tmp behind', async () => {
    const mnt = smallDisk();
    const path = join(mnt, 'recovery-point-offset-checkpoint');
    await writeCheckpoint(path, ['t 0 5']);
    const before = readFileSync(path, 'utf8');
    const filler = fill(mnt);
    await expect(writeCheckpoint(path, Array.from({ length: 2000 }, (_, i) => `t ${i} ${i * 1000}`))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(readFileSync(path, 'utf8')).toBe(before);
    expect(existsSync(`${path}.tmp`)).toBe(false);
    rmSync(filler);
    await writeCheckpoint(path, ['t 0 6']);
    expect(readFileSync(path, 'utf8')).toBe('0\n1\nt 0 6\n');
  });

  it('housekeeping checkpoints failing on a full disk keep the dir online; appends resume once space returns', async () => {
    const mnt = smallDisk();
    // The manager's warnings, as they are logged.
    const warnings: string[] = [];
    const logger = { warn: (_o: unknown, msg: string) => warnings.push(msg), error() {}, info() {}, debug() {}, trace() {}, child: () => logger };
    const options = { logDirs: [mnt], defaults: testConfig({ segmentBytes: 256 * 1024 }), highWatermarkCheckpointIntervalMs: 20, retentionCheckIntervalMs: 20, logger: logger as unknown as Logger };
    const setup = LogManager.create(options);
    await setup.start();
    // Enough partitions that each checkpoint file takes a few pages.
    await Promise.all(Array.from({ length: 200 }, (_, p) => setup.createLog('a-much-longer-topic-name-for-bigger-checkpoints', p)));
    await setup.getLog('a-much-longer-topic-name-for-bigger-checkpoints', 0)!.append(batch(4, { size: 100 }));
    await setup.stop();
    // Filled while no checkpoint write is in flight (one finishing would free its old file's pages).
    const filler = fill(mnt);
    const mgr = LogManager.create(options);
    await mgr.start();
    cleanups.push(() => mgr.stop());
    const log = mgr.getLog('a-much-longer-topic-name-for-bigger-checkpoints', 0)!;
    await expect(log.append(batch(4, { size: 20_000 }))).rejects.toMatchObject({ code: 'NO_SPACE' });
    // Several housekeeping ticks (every 20 ms), each failing to write the checkpoints: said once
    // (rate-limited). Waited for rather than slept on: a loaded machine may run the first tick late.
    const full = () => warnings.filter((w) => w.startsWith('log dir is full: checkpoint not written'));
    await vi.waitFor(() => expect(full().length).toBeGreaterThan(0), { timeout: 10_000, interval: 20 });
    await new Promise((r) => setTimeout(r, 200));
    expect(full()).toHaveLength(1);
    expect(mgr.dirs()[0]!.online).toBe(true);
    expect(log.online).toBe(true);
    rmSync(filler);
    const r = await log.append(batch(4, { size: 20_000 }));
    expect(r.baseOffset).toBe(4n);
    expect(batchesIn((await log.read(0n, 1 << 20)).records).map((b) => b.baseOffset)).toEqual([0n, 4n]);
    // The next ticks write the checkpoints again.
    rmSync(join(mnt, 'replication-offset-checkpoint'));
    await vi.waitFor(() => expect(existsSync(join(mnt, 'replication-offset-checkpoint'))).toBe(true), { timeout: 10_000, interval: 20 });
  });

  it('a start on a full disk (after a stop that could not finish) loads the dir online; appends resume once space returns', async () => {
    const mnt = smallDisk();
    const config = testConfig({ segmentBytes: 64 * 1024, indexIntervalBytes: 100 });
    const first = LogManager.create({ logDirs: [mnt], defaults: config });
    await first.start();
    const log = await first.createLog('r', 0);
    for (let i = 0; i < 40; i++) await log.append(batch(4, { size: 1000 }));
    const filler = fill(mnt);
    // The stop cannot write indexes or checkpoints: no clean-shutdown marker, the next start recovers.
    await first.stop();
    const again = LogManager.create({ logDirs: [mnt], defaults: config });
    await again.start();
    cleanups.push(() => again.stop());
    expect(again.dirs()[0]).toMatchObject({ online: true, partitions: 1 });
    const l2 = again.getLog('r', 0)!;
    expect(l2.logEndOffset).toBe(160n);
    const bases: bigint[] = [];
    for (let at = 0n; at < l2.logEndOffset; ) {
      const got = batchesIn((await l2.read(at, 1 << 20)).records);
      bases.push(...got.map((b) => b.baseOffset));
      at = got.at(-1)!.lastOffset + 1n;
    }
    expect(bases).toEqual(Array.from({ length: 40 }, (_, i) => BigInt(i * 4)));
    await expect(l2.append(batch(4, { size: 10_000 }))).rejects.toMatchObject({ code: 'NO_SPACE' });
    rmSync(filler);
    expect((await l2.append(batch(4, { size: 10_000 }))).baseOffset).toBe(160n);
    await l2.flush();
  });

  it('an append whose leader epoch checkpoint cannot be written (disk full) succeeds; the checkpoint is written once space returns', async () => {
    const mnt = smallDisk();
    const warnings: string[] = [];
    const logger = { warn: (_o: unknown, msg: string) => warnings.push(msg), error() {}, info() {}, debug() {}, trace() {}, child: () => logger };
    const mgr = LogManager.create({ logDirs: [mnt], defaults: testConfig(), logger: logger as unknown as Logger });
    await mgr.start();
    cleanups.push(() => mgr.stop());
    const log = await mgr.createLog('e', 0);
    await log.append(batch(1), { leaderEpoch: 0 });
    const checkpoint = join(log.dir, 'leader-epoch-checkpoint');
    expect(readFileSync(checkpoint, 'utf8')).toBe('0\n1\n0 0\n');
    const filler = fill(mnt);
    // A few bytes still fit the segment's last page; the checkpoint's new file does not. The batch
    // is in the log, so the append succeeds (a retry would duplicate it).
    expect((await log.append(batch(1), { leaderEpoch: 1 })).baseOffset).toBe(1n);
    expect((await log.append(batch(1), { leaderEpoch: 1 })).baseOffset).toBe(2n);
    expect(log.logEndOffset).toBe(3n);
    expect(batchesIn((await log.read(0n, 1 << 20)).records).map((b) => b.baseOffset)).toEqual([0n, 1n, 2n]);
    expect(readFileSync(checkpoint, 'utf8')).toBe('0\n1\n0 0\n');
    expect(warnings.filter((w) => w.startsWith('leader epoch checkpoint not written'))).toHaveLength(1);
    // Until the checkpoint is written the recovery point stays below epoch 1 (a crash rebuilds it from the batches).
    await log.flush();
    expect(log.recoveryPoint).toBeLessThanOrEqual(1n);
    rmSync(filler);
    await log.append(batch(1), { leaderEpoch: 1 });
    expect(readFileSync(checkpoint, 'utf8')).toBe('0\n2\n0 0\n1 1\n');
    await log.flush();
    expect(log.recoveryPoint).toBe(4n);
  });

  it('compaction on a full disk leaves no .cleaned file behind and cleans once space returns', async () => {
    const mnt = smallDisk();
    const mgr = LogManager.create({ logDirs: [mnt], defaults: testConfig({ segmentBytes: 8 * 1024, cleanupPolicy: ['compact'] }) });
    await mgr.start();
    cleanups.push(() => mgr.stop());
    const log = await mgr.createLog('c', 0);
    // The same 4 keys over and over: every segment but the last is mostly dead records.
    for (let i = 0; i < 60; i++) await log.append(batch(4, { keys: ['a', 'b', 'c', 'd'], values: Array.from({ length: 4 }, (_, k) => `${i}-${k}-${'x'.repeat(200)}`) }));
    const segments = log.segmentList().length;
    expect(segments).toBeGreaterThan(3);
    const filler = fill(mnt);
    const cleaned = () => readdirSync(log.dir).filter((f) => f.endsWith('.cleaned'));
    await expect(compactLog(log, { now: Date.now(), logger: silentLogger(), force: true })).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(cleaned()).toEqual([]);
    expect(log.online).toBe(true);
    rmSync(filler);
    const done = await compactLog(log, { now: Date.now(), logger: silentLogger(), force: true });
    expect(done.segmentsCleaned).toBeGreaterThan(0);
    expect(cleaned()).toEqual([]);
  });
});
