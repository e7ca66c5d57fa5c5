import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NativeError, lockFile } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'runnel-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** flock(1) from util-linux in another process: 0 when it got the lock at once, 1 when it is held. */
function lockedElsewhere(path: string): boolean {
  const r = spawnSync('flock', ['--nonblock', '--conflict-exit-code', '9', path, 'true'], { encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 9) throw new Error(`flock: ${r.stderr || r.error}`);
  return r.status === 9;
}

function thrown(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NativeError);
    return err as NativeError;
  }
  throw new Error('expected a throw');
}

describe('lockFile', () => {
  it('holds an exclusive flock until the fd is closed, and refuses a second lock with LOCKED', () => {
    const path = join(dir, 'a.lock');
    const fd = lockFile(path);
    expect(lockedElsewhere(path)).toBe(true);
    expect(thrown(() => lockFile(path))).toMatchObject({ code: 'LOCKED', message: `${path} is locked by another process` });
    closeSync(fd);
    expect(lockedElsewhere(path)).toBe(false);
    closeSync(lockFile(path));
  });

  it('a holder that unlinks the file while releasing never leaves two owners (the path is re-checked after locking)', () => {
    const path = join(dir, 'b.lock');
    const fd = lockFile(path);
    unlinkSync(path);
    // The path is free now: a new lock takes a new file even though the old fd still holds the old inode.
    const fd2 = lockFile(path);
    expect(lockedElsewhere(path)).toBe(true);
    closeSync(fd);
    closeSync(fd2);
  });

  it('a missing directory is IO, a clear one-line error', () => {
    const err = thrown(() => lockFile(join(dir, 'nope', 'c.lock')));
    expect(err).toMatchObject({ code: 'IO' });
    expect(err.message).toMatch(/^\S+nope\/c\.lock: No such file or directory/);
  });
});
