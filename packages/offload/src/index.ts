/**
 * @runnel/offload: the one worker pool (piscina) for CPU-heavy byte work that must not block an
 * event loop: compression, decompression, deep record validation, and any other package's own
 * worker modules (storage compaction) through `run`.
 *
 * Back-pressure, never refusal: at most `threads + maxQueue` tasks are handed to piscina; further
 * calls wait their turn in one FIFO queue and start, in call order, as slots free. The pool does not
 * bound what waits: its callers do (the Kafka listener's queued.max.request.bytes stops reading
 * requests while the bytes of those being handled are over budget), so being busy is never an error.
 *
 * Inputs: a Uint8Array that owns its whole ArrayBuffer is transferred (and so detached in the
 * caller); a view into a larger buffer (Node's pooled slabs, a slice of a segment read) is copied
 * by structured clone; a view on a SharedArrayBuffer crosses without a copy.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { RunnelError } from '@runnel/common';
import { BatchError, NativeError, type BatchErrorCode, type Codec, type NativeErrorCode } from '@runnel/native';
import type { BytesResult, FlatError, WorkerResult } from './worker.ts';

export type OffloadErrorCode = 'STOPPED' | 'TASK_FAILED';

export class OffloadError extends RunnelError<OffloadErrorCode> {}

export interface OffloadOptions {
  /** Worker threads; default max(1, cpus - 1), leaving a core for the event loop. */
  threads?: number;
  /**
   * Tasks handed to piscina beyond the running ones (so a thread never idles between tasks);
   * default threads² × 4. Calls past `threads + maxQueue` wait in the pool's FIFO, not rejected.
   */
  maxQueue?: number;
  /** Called when a worker fails outside any task (see the constructor); default: ignore. */
  onWorkerError?: (err: Error) => void;
}

export interface OffloadTask {
  /** Worker module (path or file URL); its named export `name` (default export when absent) runs. */
  filename: string | URL;
  name?: string;
  args: unknown;
  /** ArrayBuffers to transfer instead of clone; they are detached in the caller. */
  transfer?: ArrayBuffer[];
}

const WORKER = new URL('./worker.ts', import.meta.url).href;

/** The buffer to transfer for `view`, or undefined when it must be cloned or can be shared. */
function ownedBuffer(view: Uint8Array): ArrayBuffer | undefined {
  const buf = view.buffer;
  if (!(buf instanceof ArrayBuffer) || buf.byteLength === 0) return undefined;
  return view.byteOffset === 0 && view.byteLength === buf.byteLength ? buf : undefined;
}

function rebuild(e: FlatError): Error {
  if (e.kind === 'BatchError') return new BatchError(e.code as BatchErrorCode, e.message, e.batchIndex ?? 0, e.position ?? 0);
  if (e.kind === 'NativeError') return new NativeError(e.code as NativeErrorCode, e.message);
  return new OffloadError('TASK_FAILED', e.message);
}

function unwrap<T>(r: WorkerResult<T>): T {
  if ('error' in r) throw rebuild(r.error);
  return r.ok;
}

function asBuffer(r: BytesResult): Buffer {
  if (r instanceof Uint8Array) return Buffer.from(r.buffer, r.byteOffset, r.byteLength);
  throw rebuild(r.error);
}

export class OffloadPool {
  readonly threads: number;
  readonly maxQueue: number;
  #pool: Piscina;
  /** Tasks handed to piscina (running or in its queue); at most threads + maxQueue. */
  #inFlight = 0;
  /** Calls waiting for a slot, oldest first; a freed slot passes straight to the head. */
  #waiting: Array<{ go: () => void; stop: (err: Error) => void }> = [];
  #stopped = false;

  private constructor(threads: number, maxQueue: number, onWorkerError: ((err: Error) => void) | undefined) {
    this.threads = threads;
    this.maxQueue = maxQueue;
    this.#pool = new Piscina({
      filename: WORKER,
      minThreads: threads,
      maxThreads: threads,
      // Our own FIFO keeps piscina's queue within this; the limit is a backstop that never trips.
      maxQueue,
      concurrentTasksPerWorker: 1,
    });
    // piscina emits 'error' for a worker that fails outside a task, e.g. one (re)started while the
    // process is out of file descriptors cannot load its module. Unhandled, that event would end
    // the process; the tasks themselves still reject with their own errors.
    this.#pool.on('error', (err: Error) => onWorkerError?.(err));
  }

  static create(options: OffloadOptions = {}): OffloadPool {
    const threads = Math.max(1, Math.floor(options.threads ?? availableParallelism() - 1));
    const maxQueue = Math.max(0, Math.floor(options.maxQueue ?? threads * threads * 4));
    return new OffloadPool(threads, maxQueue, options.onWorkerError);
  }

  /** Tasks running, queued in piscina, or waiting for a slot right now. */
  get pending(): number {
    return this.#inFlight + this.#waiting.length;
  }

  /** Calls waiting for a slot (past threads + maxQueue) right now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  compress(codec: Codec, src: Uint8Array, level?: number): Promise<Buffer> {
    const owned = ownedBuffer(src);
    return this.#submit<BytesResult>('compress', WORKER, { codec, src, level }, owned ? [owned] : undefined).then(asBuffer);
  }

  /** Rejects with NativeError 'DECOMPRESS_LIMIT' past maxOutput, 'CORRUPT_COMPRESSED' on bad input. */
  decompress(codec: Codec, src: Uint8Array, maxOutput: number): Promise<Buffer> {
    const owned = ownedBuffer(src);
    return this.#submit<BytesResult>('decompress', WORKER, { codec, src, maxOutput }, owned ? [owned] : undefined).then(asBuffer);
  }

  /** Deep record check of one batch (see @runnel/native validateRecords); rejects with BatchError. */
  validateRecords(batch: Uint8Array, maxUncompressed: number): Promise<{ recordCount: number; uncompressedBytes: number }> {
    const owned = ownedBuffer(batch);
    return this.#submit<WorkerResult<{ recordCount: number; uncompressedBytes: number }>>('validateRecords', WORKER, { batch, maxUncompressed }, owned ? [owned] : undefined).then(unwrap);
  }

  /** Runs another package's worker module in this pool, in the same FIFO as the built-in tasks. */
  run<T>(task: OffloadTask): Promise<T> {
    const filename = task.filename instanceof URL ? task.filename.href : task.filename;
    return this.#submit<T>(task.name ?? 'default', filename, task.args, task.transfer);
  }

  /** Destroys the pool; running and waiting tasks are abandoned and reject, as do later calls, with 'STOPPED'. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const stopped = new OffloadError('STOPPED', 'the offload pool was stopped');
    for (const w of this.#waiting.splice(0)) w.stop(stopped);
    await this.#pool.destroy();
  }

  /** Takes a slot now, or waits for one behind every earlier caller (FIFO). */
  #acquire(): Promise<void> | undefined {
    if (this.#waiting.length === 0 && this.#inFlight < this.threads + this.maxQueue) {
      this.#inFlight++;
      return undefined;
    }
    return new Promise<void>((go, stop) => this.#waiting.push({ go, stop }));
  }

  /** Frees a slot: handed to the oldest waiter (still counted), so no later call can overtake it. */
  #release(): void {
    const next = this.#waiting.shift();
    if (next) next.go();
    else this.#inFlight--;
  }

  async #submit<T>(name: string, filename: string, args: unknown, transfer: ArrayBuffer[] | undefined): Promise<T> {
    if (this.#stopped) throw new OffloadError('STOPPED', 'the offload pool was stopped');
    const wait = this.#acquire();
    if (wait) await wait;
    try {
      if (this.#stopped) throw new OffloadError('STOPPED', 'the offload pool was stopped');
      return (await this.#pool.run(args, { name, filename, transferList: transfer })) as T;
    } catch (e) {
      if (e instanceof RunnelError) throw e;
      const message = e instanceof Error ? e.message : String(e);
      throw new OffloadError(this.#stopped ? 'STOPPED' : 'TASK_FAILED', message, { cause: e });
    } finally {
      this.#release();
    }
  }
}
