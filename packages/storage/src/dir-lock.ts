import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError, errnoCode } from './errors.ts';

export const LOCK_FILE = '.lock';

/**
 * `<logDir>/.lock`: the pid of the process that owns the log dir. Two brokers appending to the
 * same segments would corrupt them, and Kafka refuses with an OS file lock; Node has no flock, so
 * the file is created exclusively and a lock left by a dead process (a crash) is taken over. A lock
 * naming a live process other than this one refuses the start. Returns the release function.
 */
export async function lockLogDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => unlink(path).catch(() => {});
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new StorageError('LOG_DIR_IN_USE', `log dir ${dir} is in use by process ${owner} (${path}); stop it first, or use another log.dirs`);
    }
    await unlink(path).catch(() => {}); // stale: its owner is gone
  }
  throw new StorageError('LOG_DIR_IN_USE', `log dir ${dir}: another process took ${path} at the same moment`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}
