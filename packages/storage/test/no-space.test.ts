// A full disk is retryable on the write paths around the append (the append itself: dirs.test.ts):
// housekeeping's checkpoints, a checkpoint file's `.tmp`, compaction output. Each on a small tmpfs
// that a filler file takes to the last byte; the dir stays online and serves again once the filler
// is deleted.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '@runnel/common';
import { afterEach, describe, expect, it } from 'vitest';
import { writeCheckpoint } from '../src/checkpoint.ts';
import { compactLog } from '../src/compaction.ts';
import { LogManager } from '../src/index.ts';
import { batch, batchesIn, tempDir, testConfig } from './helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve().then(c).catch(() => {});
});

/** A fresh 4 MiB tmpfs (unmounted after the test). */
function smallDisk(): string {
  const d = tempDir('runnel-nospace-');
  cleanups.push(d.cleanup);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', d.path]);
  cleanups.push(() => {
    execFileSync('umount', ['-l', d.path]);
  });
  return d.path;
}

/** Append to `<mnt>/filler` until not one byte is left; returns the filler's path. */
function fill(mnt: string): string {
  const path = join(mnt, 'filler');
  const fd = openSync(path, 'a');
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  try {
    for (let size = chunk.length; size >= 1; ) {
      try {
        writeSync(fd, chunk, 0, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        size = size >> 1;
      }
    }
  } finally {
    closeSync(fd);
  }
  expect(statfsSync(mnt).bavail).toBe(0);
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
    const mgr = LogManager.create({ logDirs: [mnt], defaults: testConfig({ segmentBytes: 256 * 1024 }), highWatermarkCheckpointIntervalMs: 20, retentionCheckIntervalMs: 20 });
    await mgr.start();
    cleanups.push(() => mgr.stop());
    // Enough partitions that each checkpoint file needs a page of its own.
    const logs = await Promise.all(Array.from({ length: 200 }, (_, p) => mgr.createLog(`a-much-longer-topic-name-for-bigger-checkpoints`, p)));
    const log = logs[0]!;
    await log.append(batch(4, { size: 100 }));
    rmSync(join(mnt, 'replication-offset-checkpoint'));
    const filler = fill(mnt);
    await expect(log.append(batch(4, { size: 20_000 }))).rejects.toMatchObject({ code: 'NO_SPACE' });
    // Several housekeeping ticks, each failing to write the checkpoints.
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(join(mnt, 'replication-offset-checkpoint'))).toBe(false);
    expect(mgr.dirs()[0]!.online).toBe(true);
    expect(log.online).toBe(true);
    rmSync(filler);
    const r = await log.append(batch(4, { size: 20_000 }));
    expect(r.baseOffset).toBe(4n);
    expect(batchesIn((await log.read(0n, 1 << 20)).records).map((b) => b.baseOffset)).toEqual([0n, 4n]);
    // The next tick writes the checkpoints again.
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(join(mnt, 'replication-offset-checkpoint'))).toBe(true);
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
