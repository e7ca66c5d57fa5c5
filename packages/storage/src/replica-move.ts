/**
 * Copying a partition's files between log dirs of one broker (AlterReplicaLogDirs, driven by
 * LogManager.alterLogDir). The copy goes to `<target dir>/<topic>-<partition>.<uuid>-future/`
 * (Kafka's name for a future replica) while the partition keeps serving: segment `.log` files only
 * grow at their end (retention deletes whole segments, a follower's truncation cuts the end), so
 * each pass appends what a file gained since the last one; a file that shrank is copied again from
 * its start. The last pass runs with the partition closed (see LogManager), copying the tails and
 * every small file (indexes, checkpoints, producer snapshot) whole.
 */
import { copyFile, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from './checkpoint.ts';

/** Kafka's suffix of a future replica's dir: `<topic>-<partition>.<uuid>-future`. */
export const FUTURE_SUFFIX = '-future';
/**
 * Written into the source partition dir right before the future dir takes the partition's name: a
 * start that finds `<topic>-<partition>` in two log dirs drops the one holding this file (both are
 * whole and equal then: the source was closed for the last pass).
 */
export const MOVED_MARKER = '.runnel-moved';

/** Caps copy bandwidth (`replica.alter.log.dirs.io.max.bytes.per.second`), read on every chunk so a dynamic change applies at once. */
export class Throttle {
  readonly #rate: () => number;
  #allowance = 0;
  #last = Date.now();
  constructor(rate: () => number) {
    this.#rate = rate;
  }

  /** Wait until `bytes` more may be copied. A rate ≤ 0 or ≥ 2^53 is unlimited. */
  async take(bytes: number, cancelled: () => boolean): Promise<void> {
    for (;;) {
      const rate = this.#rate();
      if (!(rate > 0) || rate >= Number.MAX_SAFE_INTEGER) return;
      const now = Date.now();
      // At most one second of burst.
      this.#allowance = Math.min(rate, this.#allowance + ((now - this.#last) * rate) / 1000);
      this.#last = now;
      if (this.#allowance >= bytes || (this.#allowance >= rate && bytes > rate)) {
        this.#allowance -= bytes;
        return;
      }
      if (cancelled()) return;
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(200, Math.ceil(((bytes - this.#allowance) * 1000) / rate)))));
    }
  }
}

const CHUNK = 1024 * 1024;

/** What one copy knows: per segment file, how many bytes of it the future dir has. */
export class FutureCopy {
  readonly dir: string;
  readonly #copied = new Map<string, number>();
  /** The source's PartitionLog.rewrites when the copy was last made whole with it. */
  #rewrites = 0;
  readonly #throttle: Throttle;
  readonly #cancelled: () => boolean;
  constructor(dir: string, throttle: Throttle, cancelled: () => boolean) {
    this.dir = dir;
    this.#throttle = throttle;
    this.#cancelled = cancelled;
  }

  /** Bytes of segment files copied so far (DescribeLogDirs reports it as the future replica's size). */
  get bytes(): number {
    let n = 0;
    for (const v of this.#copied.values()) n += v;
    return n;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  /**
   * One pass over the source's `.log` files (`all`: every file, the last pass with the source
   * closed). Returns the bytes copied. Files gone from the source are removed from the copy. After
   * a truncation or compaction swap of the source (its `rewrites` changed) every file is copied
   * again from its start: a cut file that has since grown past the copy's end would otherwise
   * keep the cut bytes below it. The last pass is not throttled: the partition is offline until
   * it ends, and what it copies is only what the previous pass left (under 1 MiB, or what the
   * passes could not catch up with).
   */
  async pass(log: { readonly dir: string; readonly rewrites: number }, all: boolean): Promise<number> {
    const source = log.dir;
    if (log.rewrites !== this.#rewrites) {
      this.#rewrites = log.rewrites;
      for (const name of this.#copied.keys()) this.#copied.set(name, 0);
    }
    let moved = 0;
    const names = new Set(await readdir(source));
    for (const name of [...this.#copied.keys()]) {
      if (!names.has(name)) {
        this.#copied.delete(name);
        await rm(join(this.dir, name), { recursive: true, force: true });
      }
    }
    if (all) for (const name of await readdir(this.dir)) if (!names.has(name)) await rm(join(this.dir, name), { recursive: true, force: true });
    for (const name of names) {
      if (this.#cancelled()) return moved;
      if (name === MOVED_MARKER) continue;
      const from = join(source, name);
      const to = join(this.dir, name);
      const st = await stat(from).catch(() => null);
      if (!st) continue;
      if (st.isDirectory()) {
        // corrupt-aside-* folders: kept as they are.
        if (all) await copyTree(from, to);
        continue;
      }
      if (name.endsWith('.log')) moved += await this.#appendTail(from, to, st.size, !all);
      else if (all) {
        await copyFile(from, to);
        await syncFile(to);
      }
    }
    if (all) await fsyncDir(this.dir);
    return moved;
  }

  /** `throttled`: false in the last pass, which runs with the partition closed (see pass). */
  async #appendTail(from: string, to: string, size: number, throttled: boolean): Promise<number> {
    const name = to.slice(this.dir.length + 1);
    let done = this.#copied.get(name) ?? 0;
    if (size < done) done = 0; // truncated: copy again
    if (size === done) return 0;
    const src = await open(from, 'r');
    const dst = await open(to, done === 0 ? 'w' : 'r+');
    try {
      if (done === 0) await dst.truncate(0);
      const buf = Buffer.allocUnsafe(CHUNK);
      let moved = 0;
      while (done < size) {
        if (this.#cancelled()) break;
        const want = Math.min(CHUNK, size - done);
        if (throttled) await this.#throttle.take(want, this.#cancelled);
        const { bytesRead } = await src.read(buf, 0, want, done);
        if (bytesRead === 0) break;
        await dst.write(buf, 0, bytesRead, done);
        done += bytesRead;
        moved += bytesRead;
        this.#copied.set(name, done);
      }
      await dst.truncate(done);
      await dst.datasync();
      return moved;
    } finally {
      await src.close();
      await dst.close();
    }
  }
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const d of await readdir(from, { withFileTypes: true })) {
    if (d.isDirectory()) await copyTree(join(from, d.name), join(to, d.name));
    else {
      await copyFile(join(from, d.name), join(to, d.name));
      await syncFile(join(to, d.name));
    }
  }
  await fsyncDir(to);
}
