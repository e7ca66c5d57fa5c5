import { closeSync, ftruncateSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NativeError, lockFile } from '@runnel/native';
import { StorageError } from './errors.ts';

export const LOCK_FILE = '.lock';

/**
 * `<logDir>/.lock`: an OS file lock (flock, through the native core) held for as long as the
 * process owns the log dir, as Kafka's `FileChannel.tryLock` on the same file. Two brokers
 * appending to the same segments would corrupt them. The kernel drops the lock when its holder
 * dies, so a crash (or a reboot) never leaves the dir locked, whatever pid the file still names;
 * the pid written into it only makes the refusal message useful. A clean release unlinks the
 * file while still holding the lock (the native lock re-checks the path after locking, so a
 * process racing that unlink locks the new file, never the removed one). Returns the release
 * function.
 *
 * Locks are per process: a second lock of the same dir in this process (a test re-opening a log
 * dir it "crashed" without closing) takes over the first, whose release then does nothing.
 */
export async function lockLogDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const previous = held.get(path);
  if (previous !== undefined) {
    held.delete(path);
    closeSync(previous.fd);
  }
  let fd: number;
  try {
    fd = lockFile(path);
  } catch (err) {
    if (err instanceof NativeError && err.code === 'LOCKED') {
      const owner = readFileSafe(path).trim();
      const who = /^\d+$/.test(owner) ? ` (pid ${owner})` : '';
      throw new StorageError('LOG_DIR_IN_USE', `log dir ${dir} is locked by another Runnel process${who}: stop it first, or use another log.dirs`);
    }
    throw err;
  }
  try {
    const pid = Buffer.from(`${process.pid}\n`);
    ftruncateSync(fd, 0);
    writeSync(fd, pid, 0, pid.length, 0);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // The pid only names the holder in the error above; on a full disk the (OS) lock holds without it.
    if (code !== 'ENOSPC' && code !== 'EDQUOT') {
      closeSync(fd);
      throw err;
    }
  }
  const token = { fd };
  held.set(path, token);
  return async () => {
    if (held.get(path) !== token) return;
    held.delete(path);
    try {
      unlinkSync(path);
    } catch {
      // already gone: nothing to clean
    }
    closeSync(fd);
  };
}

/** Locks this process holds, by lock file path. */
const held = new Map<string, { fd: number }>();

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
