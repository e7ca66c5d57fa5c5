// Small tmpfs mounts for full-disk tests (root only: mount(8)). A filler file takes the mount to the
// last byte; deleting it gives the space back to whatever runs on the mount.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  /** The mount point (a fresh directory). */
  readonly path: string;
  /** `<path>/filler`, the file fill() grows. */
  readonly filler: string;
  /** Append to the filler until not one byte is left (ENOSPC at a 1-byte write); throws if any space remains. */
  fill(): void;
  /** Delete the filler: the space comes back. */
  free(): void;
  /** Unmount (lazily, so open files in a process being stopped do not block it) and remove the directory. */
  unmount(): void;
}

/** Mount a tmpfs of `mib` MiB at a fresh directory under `parent` (default: the OS temp dir). */
export function mountTmpfs(mib: number, prefix = 'runnel-tmpfs-', parent = tmpdir()): Tmpfs {
  const path = mkdtempSync(join(parent, prefix));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', path]);
  const filler = join(path, 'filler');
  let mounted = true;
  return {
    path,
    filler,
    fill: () => fillToTheLastByte(path, filler),
    free: () => rmSync(filler, { force: true }),
    unmount() {
      if (mounted) execFileSync('umount', ['-l', path]);
      mounted = false;
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Append to `file` (on the filesystem of `mount`) until the filesystem has not one byte left. */
export function fillToTheLastByte(mount: string, file: string): void {
  const fd = openSync(file, 'a');
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  try {
    // Halving the write on ENOSPC down to one byte: the last partial page is taken too.
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
  const left = statfsSync(mount).bavail;
  if (left !== 0) throw new Error(`${mount}: ${left} blocks still free after filling`);
}
