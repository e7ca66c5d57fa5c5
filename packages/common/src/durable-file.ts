import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Replaces the file at `path` with `data` so that a crash at any point leaves the old contents or
 * the new, never a torn or missing file: write `<path>.tmp`, fsync it, rename it over `path`, then
 * fsync the directory (the rename is only durable once the directory entry is; without that, a
 * power loss can bring the old file back after the new state was acted on). The directory is
 * created when missing. A failed write removes the `.tmp` (it must not hold space a retry needs)
 * and rethrows; the old file is untouched.
 */
export async function replaceFileDurably(path: string, data: string | Uint8Array, options: { createDir?: boolean } = {}): Promise<void> {
  const dir = dirname(path);
  // createDir: false for files inside a dir another part owns (a partition dir renamed away for
  // deletion must not come back as an empty one).
  if (options.createDir !== false) await mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp`;
  try {
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDirectory(dir);
}

/** fsync of a directory: makes the entries created, renamed or removed in it durable. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
