/**
 * Out of file descriptors is a process limit, not a failed disk: this test process's own
 * `ulimit -n` is lowered to what it holds (prlimit on its pid), so creating a partition fails
 * with EMFILE for real. The failure is a retriable STORAGE_ERROR naming the limit, the dir stays
 * online, no half-made partition dir is left, and everything works once descriptors are free.
 * Also: the bounded segment file cache keeps at most log.max.open.files segment files open.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { LogManager, StorageError } from '../src/index.ts';
import { segmentFiles } from '../src/file-cache.ts';
import { batch, tempDir, testConfig } from './helpers.ts';

const fds = () => readdirSync('/proc/self/fd').length;
const setLimit = (soft: number, hard: number) => execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${soft}:${hard}`]);
const hard = Number(execFileSync('prlimit', [`--pid=${process.pid}`, '--nofile', '--raw', '--noheadings', '--output=HARD']).toString().trim());
const soft = Number(execFileSync('prlimit', [`--pid=${process.pid}`, '--nofile', '--raw', '--noheadings', '--output=SOFT']).toString().trim());

/**
 * Starves this process: its limit is lowered to what it holds plus 16, which are then taken here
 * (opening /dev/null) but for `free`. Returns what gives them back and restores the limit (the
 * spare descriptors are what lets that prlimit child run).
 */
function starve(free = 0): () => void {
  setLimit(fds() + 16, hard);
  const spare: number[] = [];
  for (;;) {
    try {
      spare.push(openSync('/dev/null', 'r'));
    } catch {
      break; // full: nothing is left to open
    }
  }
  for (let i = 0; i < free; i++) closeSync(spare.pop()!);
  return () => {
    for (const fd of spare) closeSync(fd);
    setLimit(soft, hard);
  };
}

let stop: (() => Promise<void>) | null = null;
afterEach(async () => {
  setLimit(soft, hard);
  await stop?.();
  stop = null;
});

describe('file descriptors', () => {
  it('EMFILE while creating a partition: retriable STORAGE_ERROR naming the limit, dir online, no orphan dir, works again after', async () => {
    const { path: dir, cleanup } = tempDir();
    const logs = LogManager.create({ logDirs: [dir], defaults: testConfig() });
    await logs.start();
    stop = async () => {
      await logs.stop();
      cleanup();
    };
    await logs.createLog('warm', 0); // every module the path needs is loaded before the starvation
    await logs.deleteLog('warm', 0); // and no idle segment file is left for the cache to give back
    let err: unknown;
    const unstarve = starve();
    try {
      await logs.createLog('starved', 0);
    } catch (e) {
      err = e;
    } finally {
      unstarve();
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('STORAGE_ERROR');
    expect((err as StorageError).retriable).toBe(true);
    expect((err as Error).message).toMatch(/too many open files \(EMFILE\): this process may open \d+ \(ulimit -n\)/);
    expect(logs.dirs()[0]!.online).toBe(true);
    expect(readdirSync(dir).filter((d) => d.startsWith('starved'))).toEqual([]);

    const log = await logs.createLog('starved', 0);
    expect((await log.append(batch(2))).baseOffset).toBe(0n);
    await logs.stop();
    const again = LogManager.create({ logDirs: [dir], defaults: testConfig() });
    await again.start();
    stop = async () => {
      await again.stop();
      cleanup();
    };
    expect(again.dirs()[0]!.online).toBe(true);
    expect(again.getLog('starved', 0)!.logEndOffset).toBe(2n);
  });

  it('EMFILE while loading a log dir at start: the dir is offline (not half-loaded and online), a partition it did not load is not created anew over its files', async () => {
    const { path: dir, cleanup } = tempDir();
    stop = async () => cleanup();
    const first = LogManager.create({ logDirs: [dir], defaults: testConfig() });
    await first.start();
    const log = await first.createLog('kept', 0);
    for (let i = 0; i < 5; i++) await log.append(batch(2));
    await first.stop();
    // One descriptor left: the dir's .lock takes it, reading meta.properties then fails with EMFILE.
    const starved = LogManager.create({ logDirs: [dir], defaults: testConfig() });
    const unstarve = starve(1);
    try {
      await starved.start();
    } finally {
      unstarve();
    }
    stop = async () => {
      await starved.stop();
      cleanup();
    };
    expect(starved.getLog('kept', 0)).toBeUndefined();
    expect(starved.dirs()[0]!.online).toBe(false);
    // The broker asking for its replica finds no dir to create it in, so the files stay as they were.
    await expect(starved.createLog('kept', 0)).rejects.toMatchObject({ code: 'LOG_DIR_OFFLINE' });
    await starved.stop();
    const again = LogManager.create({ logDirs: [dir], defaults: testConfig() });
    await again.start();
    stop = async () => {
      await again.stop();
      cleanup();
    };
    expect(again.getLog('kept', 0)!.logEndOffset).toBe(10n);
  });

  it('keeps at most log.max.open.files segment files open; idle ones reopen transparently', async () => {
    const { path: dir, cleanup } = tempDir();
    const before = segmentFiles.maxOpen;
    const logs = LogManager.create({ logDirs: [dir], defaults: testConfig(), maxOpenFiles: 8 });
    await logs.start();
    stop = async () => {
      await logs.stop();
      segmentFiles.maxOpen = before;
      cleanup();
    };
    const open = () => readdirSync('/proc/self/fd').filter((f) => {
      try {
        return execFileSync('readlink', [`/proc/self/fd/${f}`]).toString().startsWith(dir);
      } catch {
        return false;
      }
    }).length;
    const parts = await Promise.all(Array.from({ length: 40 }, (_, p) => logs.createLog('many', p)));
    await Promise.all(parts.map((l, p) => l.append(batch(1, { values: [`v${p}`] }))));
    expect(segmentFiles.openCount).toBeLessThanOrEqual(8);
    // Reads of every partition at once: each reopens its file, at most 8 at a time.
    const reads = await Promise.all(parts.map((l) => l.read(0n, 1 << 20, { maxOffset: l.logEndOffset })));
    expect(reads.every((r) => r.records.length > 0)).toBe(true);
    expect(segmentFiles.openCount).toBeLessThanOrEqual(8);
    expect(open()).toBeLessThanOrEqual(8 + 1); // + the dir's .lock
  });
});
