import { readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from '@runnel/common';
import { errnoCode } from './errors.ts';

/**
 * A bounded set of open segment files (`log.max.open.files`): file descriptors are a process
 * limit (`ulimit -n`), and a broker with thousands of partitions must not hold one per segment
 * while they sit idle. Each segment's `.log` is a {@link CachedFile}: `use`/`acquire` open it on
 * demand and count references; once more than `maxOpen` files are open, the least recently used
 * ones that nobody holds are closed. A busy partition's active segment stays open (it is always
 * recently used); reopening is transparent to reads and appends.
 *
 * Invariants: a file is never closed while a reference is held (so a read or write in flight
 * never sees its handle vanish); a retired file (deleted, replaced by compaction, log closed) is
 * never reopened, because its path may already name another file. A reopen waits while `maxOpen`
 * files are open and all are in use (a Fetch of thousands of partitions reads them a cap at a
 * time); a new segment file (create, load, compaction swap) never waits, so the cap is exceeded
 * only by files being created, which callers bound (LogManager creates a few partitions at a time).
 */
export class FileCache {
  #maxOpen: number;
  /** Open files, least recently used first (Map order; a use moves the file to the end). */
  readonly #open = new Map<CachedFile, true>();
  #evicting = false;
  /** Reopens waiting for a slot (woken one per closed file). */
  readonly #waiters: (() => void)[] = [];
  /** Reopens between their slot and their open. */
  #reserved = 0;

  constructor(maxOpen: number) {
    this.#maxOpen = Math.max(1, maxOpen);
  }

  get maxOpen(): number {
    return this.#maxOpen;
  }
  set maxOpen(n: number) {
    this.#maxOpen = Math.max(1, n);
    this.evict(this.#maxOpen);
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Files open now (held or idle). */
  get openCount(): number {
    return this.#open.size;
  }

  /**
   * Opens `path` (`flags` for this first open; reopens use r+) as a cached file. Out of
   * descriptors (EMFILE/ENFILE), every idle file of the cache is closed and the open tried once more.
   */
  async open(path: string, flags: string): Promise<CachedFile> {
    const f = new CachedFile(this, path, 'r+', await openRetrying(this, path, flags));
    this.opened(f);
    return f;
  }

  /** @internal */ opened(f: CachedFile): void {
    this.#open.set(f, true);
    this.evict(this.#maxOpen);
  }
  /** @internal */ touched(f: CachedFile): void {
    if (this.#open.delete(f)) this.#open.set(f, true);
  }
  /** @internal */ closed(f: CachedFile): void {
    this.#open.delete(f);
    this.#waiters.shift()?.();
  }

  /**
   * @internal Resolves when one more file may be opened (an idle one is closed for it if need
   * be), with the slot reserved until `unreserve` (opens in flight count against the cap).
   */
  async slot(): Promise<void> {
    for (;;) {
      if (this.#open.size + this.#reserved >= this.#maxOpen) this.evict(this.#maxOpen - 1 - this.#reserved);
      if (this.#open.size + this.#reserved < this.#maxOpen) {
        this.#reserved++;
        return;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
  /** @internal A file nobody holds any more: a waiting reopen may take its place, else trim to the cap. */
  idle(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.evict(this.#maxOpen);
  }
  /** @internal */ unreserve(): void {
    this.#reserved--;
    this.#waiters.shift()?.();
  }

  /** Close idle files, least recently used first, until at most `target` are open. */
  evict(target: number): void {
    if (this.#open.size <= target || this.#evicting) return;
    this.#evicting = true;
    try {
      for (const f of this.#open.keys()) {
        if (this.#open.size <= target) break;
        f.closeIfIdle();
      }
    } finally {
      this.#evicting = false;
    }
  }
}

export class CachedFile {
  readonly #cache: FileCache;
  #path: string;
  readonly #flags: string;
  #fh: FileHandle | null;
  #opening: Promise<FileHandle> | null = null;
  #refs = 0;
  #retired = false;

  constructor(cache: FileCache, path: string, flags: string, fh: FileHandle | null) {
    this.#cache = cache;
    this.#path = path;
    this.#flags = flags;
    this.#fh = fh;
  }

  get path(): string {
    return this.#path;
  }
  get isOpen(): boolean {
    return this.#fh !== null;
  }
  get retired(): boolean {
    return this.#retired;
  }

  /** The file was renamed (e.g. to `*.deleted`): a reopen uses the new name. */
  renamed(path: string): void {
    this.#path = path;
  }

  /** Runs `fn` with the open handle, held for the whole call. */
  async use<T>(fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    const fh = await this.acquire();
    try {
      return await fn(fh);
    } finally {
      this.release();
    }
  }

  /**
   * The open handle, with one reference taken (give it back with `release`). The reference is
   * taken synchronously, before the first await, so a caller that captured this file before a
   * retire still finds it open.
   */
  acquire(): Promise<FileHandle> {
    this.#refs++;
    if (this.#fh) {
      this.#cache.touched(this);
      return Promise.resolve(this.#fh);
    }
    if (this.#retired) {
      this.#refs--;
      return Promise.reject(Object.assign(new Error(`${this.#path} is closed`), { code: 'EBADF' }));
    }
    this.#opening ??= this.#openFile().finally(() => {
      this.#opening = null;
    });
    return this.#opening.catch((err: unknown) => {
      this.#refs--;
      throw err;
    });
  }

  release(): void {
    this.#refs--;
    if (this.#refs > 0) return;
    if (this.#retired) void this.#close();
    else this.#cache.idle();
  }

  /** Closed now if nobody holds it (eviction); it reopens on the next use. */
  closeIfIdle(): void {
    if (this.#refs === 0 && this.#fh && !this.#opening) void this.#close();
  }

  /** Never used again: closed now, or when the last holder releases it. Idempotent. */
  async retire(): Promise<void> {
    this.#retired = true;
    if (this.#refs === 0) await this.#close();
  }

  async #openFile(): Promise<FileHandle> {
    await this.#cache.slot();
    let fh: FileHandle;
    try {
      fh = await openRetrying(this.#cache, this.#path, this.#flags);
    } finally {
      this.#cache.unreserve();
    }
    this.#fh = fh;
    this.#cache.opened(this);
    return fh;
  }

  async #close(): Promise<void> {
    const fh = this.#fh;
    if (!fh) return;
    this.#fh = null;
    this.#cache.closed(this);
    await fh.close().catch(() => {});
  }
}

/** `open`, and once more after closing every idle file of `cache` when the process is out of descriptors. */
async function openRetrying(cache: FileCache, path: string, flags: string): Promise<FileHandle> {
  try {
    return await open(path, flags);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EMFILE' && code !== 'ENFILE') throw err;
    cache.evict(0);
    return await open(path, flags);
  }
}

/**
 * The process's open-file limit (`ulimit -n`, the soft "Max open files" of /proc/self/limits), or
 * null when it cannot be read (not Linux) or is unlimited.
 */
let knownLimit: number | null = null;

export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    const n = Number(soft);
    knownLimit = Number.isInteger(n) && n > 0 ? n : null;
    return knownLimit;
  } catch {
    // Reading it needs a descriptor too: out of them, the last value read stands.
    return knownLimit;
  }
}

/**
 * `log.max.open.files` when unset (−1): half the process limit, so sockets, checkpoints and the
 * index files being written keep the other half, at most 10,000 and at least 64 (1,000 when the
 * limit cannot be read).
 */
export function defaultMaxOpenFiles(limit = openFileLimit()): number {
  if (limit === null) return 1_000;
  return Math.max(64, Math.min(10_000, Math.floor(limit / 2)));
}

/** The one cache of this process (the descriptor limit is per process); LogManager sets its size. */
export const segmentFiles = new FileCache(defaultMaxOpenFiles());

/** EMFILE (this process) or ENFILE (the whole system) is out of file descriptors: a limit, not a failed disk. */
export function isOutOfDescriptors(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'EMFILE' || code === 'ENFILE';
}

/** What the limit is and what to do about it, for an error answer or a log line. */
export function outOfDescriptorsMessage(err: unknown): string {
  const limit = openFileLimit();
  const which = errnoCode(err) === 'ENFILE' ? 'the system is out of file descriptors (ENFILE, fs.file-max)' : `too many open files (EMFILE): this process may open ${limit ?? 'an unknown number of'} (ulimit -n)`;
  return `${which}; log.max.open.files keeps at most ${segmentFiles.maxOpen} segment files open, the rest are sockets and files being written: raise the limit (ulimit -n, systemd LimitNOFILE, docker --ulimit nofile) or lower log.max.open.files`;
}

let lastReport = 0;
let suppressed = 0;

/** One error line per 10 s at most (a CreateTopics of thousands of partitions would fail thousands of times). */
export function reportOutOfDescriptors(logger: Logger, where: string, err: unknown): void {
  const now = Date.now();
  if (now - lastReport < 10_000) {
    suppressed++;
    return;
  }
  lastReport = now;
  logger.error({ where, limit: openFileLimit(), maxOpenFiles: segmentFiles.maxOpen, openSegmentFiles: segmentFiles.openCount, suppressed, hint: outOfDescriptorsMessage(err) }, 'out of file descriptors: the request fails and can be retried, the log dir stays online');
  suppressed = 0;
}

/** At most `limit` callers of `run` at once (the rest wait in order): bounds descriptors held by work in flight. */
export class Gate {
  readonly #limit: number;
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#queue.push(resolve));
    else this.#running++;
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

/**
 * Files opened only to be written and closed again (checkpoints, index flushes, directory
 * fsyncs): at most 32 at once in the process, so thousands of partitions doing it together (a
 * first produce to each writes its leader-epoch checkpoint) cannot exhaust the descriptors.
 * Never nest `run` calls on it (a holder waiting for a second slot could wait forever).
 */
export const briefFiles = new Gate(32);
