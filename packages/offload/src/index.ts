/**
 * @runnel/offload: the one worker pool (piscina) for CPU-heavy byte work that must not block an
 * event loop: compression, decompression, deep record validation, and any other package's own
 * worker modules (storage compaction) through `run`.
 *
 * Backpressure: at most `threads + maxQueue` tasks are in flight; past that a call rejects at once
 * with OffloadError 'QUEUE_FULL' instead of queueing without bound.
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

export type OffloadErrorCode = 'QUEUE_FULL' | 'STOPPED' | 'TASK_FAILED';

export class OffloadError extends RunnelError<OffloadErrorCode> {}

export interface OffloadOptions {
  /** Worker threads; default max(1, cpus - 1), leaving a core for the event loop. */
  threads?: number;
  /** Tasks waiting for a free thread beyond the running ones; default threads² × 4. */
  maxQueue?: number;
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
  #inFlight = 0;
  #stopped = false;

  private constructor(threads: number, maxQueue: number) {
    this.threads = threads;
    this.maxQueue = maxQueue;
    this.#pool = new Piscina({
      filename: WORKER,
      minThreads: threads,
      maxThreads: threads,
      // Our own counter enforces the bound; piscina's queue limit is the same number, as a backstop.
      maxQueue,
      concurrentTasksPerWorker: 1,
    });
  }

  static create(options: OffloadOptions = {}): OffloadPool {
    const threads = Math.max(1, Math.floor(options.threads ?? availableParallelism() - 1));
    const maxQueue = Math.max(0, Math.floor(options.maxQueue ?? threads * threads * 4));
    return new OffloadPool(threads, maxQueue);
  }

  /** Tasks running or queued right now. */
  get pending(): number {
    return this.#inFlight;
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

  /** Runs another package's worker module in this pool, under the same queue bound. */
  run<T>(task: OffloadTask): Promise<T> {
    const filename = task.filename instanceof URL ? task.filename.href : task.filename;
    return this.#submit<T>(task.name ?? 'default', filename, task.args, task.transfer);
  }

  /** Destroys the pool; running tasks are abandoned and later calls reject with 'STOPPED'. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#pool.destroy();
  }

  async #submit<T>(name: string, filename: string, args: unknown, transfer: ArrayBuffer[] | undefined): Promise<T> {
    if (this.#stopped) throw new OffloadError('STOPPED', 'the offload pool was stopped');
    if (this.#inFlight >= this.threads + this.maxQueue) {
      throw new OffloadError('QUEUE_FULL', `offload queue is full (${this.#inFlight} tasks for ${this.threads} threads)`, { retriable: true });
    }
    this.#inFlight++;
    try {
      return (await this.#pool.run(args, { name, filename, transferList: transfer })) as T;
    } catch (e) {
      if (e instanceof RunnelError) throw e;
      const message = e instanceof Error ? e.message : String(e);
      if (/queue is at limit/i.test(message)) throw new OffloadError('QUEUE_FULL', message, { retriable: true, cause: e });
      throw new OffloadError(this.#stopped ? 'STOPPED' : 'TASK_FAILED', message, { cause: e });
    } finally {
      this.#inFlight--;
    }
  }
}
