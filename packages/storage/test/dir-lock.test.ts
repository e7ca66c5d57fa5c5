/**
 * `<log.dir>/.lock` is an OS file lock (flock through the native core): it dies with its process,
 * so a stale pid in the file never blocks a start, and a live holder always does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LogManager, StorageError } from '../src/index.ts';
import { tempDir, testConfig } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/append-child.ts', import.meta.url));
const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((c) => c()));

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** A process that owns `dir` (a LogManager that appended nothing) until it is killed. */
async function holder(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CHILD, dir, '65536', '0', '1', '1', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'READY' && resolve());
    child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
  });
  return child;
}

describe('log dir lock', () => {
  it('a .lock naming a live unrelated process (a reboot reused the pid) does not block the start', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    cleanups.push(() => sleeper.kill('SIGKILL'));
    writeFileSync(join(dir.path, '.lock'), `${sleeper.pid}\n`);
    const mgr = LogManager.create({ logDirs: [dir.path], defaults: testConfig() });
    await mgr.start();
    expect(readFileSync(join(dir.path, '.lock'), 'utf8')).toBe(`${process.pid}\n`);
    await mgr.stop();
    expect(existsSync(join(dir.path, '.lock'))).toBe(false);
    sleeper.kill('SIGKILL');
  });

  it('a second process on a locked dir is refused with the holder pid; kill -9 of the holder frees the lock', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const first = await holder(dir.path);
    const second = LogManager.create({ logDirs: [dir.path], defaults: testConfig() });
    const err = await second.start().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('LOG_DIR_IN_USE');
    expect((err as Error).message).toBe(`log dir ${dir.path} is locked by another Runnel process (pid ${first.pid}): stop it first, or use another log.dirs`);
    first.kill('SIGKILL');
    await exited(first);
    // The file and the dead holder's pid stay behind; the kernel released the lock.
    expect(readFileSync(join(dir.path, '.lock'), 'utf8')).toBe(`${first.pid}\n`);
    const third = LogManager.create({ logDirs: [dir.path], defaults: testConfig() });
    await third.start();
    await third.stop();
  }, 30_000);
});
