import { readSync, writeSync, writevSync } from 'node:fs';
import { rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { scanLog, type BatchInfo } from '@runnel/native';
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, OFF_LAST_OFFSET_DELTA, OFF_LENGTH, OFF_MAGIC, OFF_MAX_TIMESTAMP, fileName } from './batch.ts';
import { unlinkIfExists } from './checkpoint.ts';
import { StorageError, ignoreNoSpace } from './errors.ts';
import { segmentFiles, type CachedFile, type FileCache } from './file-cache.ts';
import { CorruptIndexError, OffsetIndex, TimeIndex } from './offset-index.ts';
import { CorruptTxnIndexError, TxnIndex } from './txn-index.ts';

const INT32_MAX = 0x7fffffff;
/** Read size while scanning a segment (recovery, index rebuild). */
const SCAN_CHUNK = 16 * 1024 * 1024;
/** Offset index entries checked against their batches when the active segment loads (see indexEntriesOnBatches). */
const LOAD_CHECKED_ENTRIES = 1024;
/** Small read used to walk batch headers from an index entry to the target batch. */
const HEADER_WINDOW = 8 * 1024;
/**
 * A synchronous segment write slower than this (the kernel throttling dirty pages, a failing disk)
 * sends this process's writes through the threadpool for SLOW_WRITE_BACKOFF_MS: a slow disk then
 * holds up the appends to it, not the event loop and with it every connection and partition.
 */
const SLOW_WRITE_MS = 20;
const SLOW_WRITE_BACKOFF_MS = 10_000;
let syncWritesResumeAt = 0;

/** Segment writes go through the threadpool for the next `ms` (after a slow one; tests). */
export function backOffSyncWrites(ms: number): void {
  syncWritesResumeAt = performance.now() + ms;
}

/** How far from its end the active segment is read synchronously (`read`): what was just written. */
const HOT_TAIL_BYTES = 8 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);
/** A batch length beyond this is treated as garbage while scanning (Kafka caps batches at int32 anyway). */
const MAX_SANE_BATCH = 1024 * 1024 * 1024;

export interface SegmentOptions {
  indexIntervalBytes: number;
  segmentIndexBytes: number;
  /** Where the `.log` handle lives (default: the process's `segmentFiles`, sized by log.max.open.files). */
  files?: FileCache;
}

/** A batch header seen while scanning, with its file position. */
export type ScannedBatch = BatchInfo;

/** Called per valid batch of a scan: `buf[at]` is the batch's first byte (control batches are read from there). */
export type OnBatch = (b: BatchInfo, buf: Buffer, at: number) => void;

export interface ScanResult {
  /** Bytes from the scan start that hold valid, in-order batches. */
  validEnd: number;
  /** Why the scan stopped before the end of the file, or null. */
  stopReason: string | null;
  lastOffset: bigint | null;
}

/**
 * One segment of a partition log: `<20-digit base offset>.log` holding record batches exactly as
 * validated (offsets already assigned), plus its sparse `.index` and `.timeindex` (see
 * offset-index.ts) and `.txnindex` (txn-index.ts; only once it holds an aborted transaction). Invariants: every byte below `size` is a whole, valid batch; batch offsets are
 * increasing and >= baseOffset; `nextOffset` = last offset + 1 (baseOffset when empty); offsets fit
 * in baseOffset + int32 (the index stores them relative).
 *
 * Not thread-safe by design: the owning PartitionLog serializes appends, truncation and rolls.
 * Reads may run concurrently with an append: they only look below the `size` captured when they
 * start, and `size` grows only after a write completed.
 *
 * The `.log` descriptor is not held for the segment's life: it is a {@link CachedFile} of the
 * bounded `log.max.open.files` cache, open while in use (each read, append, scan, truncate or
 * sync holds a reference for its whole duration) and closed when idle and least recently used,
 * reopened on the next use. The indexes live in memory and are opened only to be written.
 */
export class LogSegment {
  readonly dir: string;
  readonly baseOffset: bigint;
  readonly options: SegmentOptions;
  file: CachedFile;
  size: number;
  /** Bytes known to be on stable storage. */
  flushedSize: number;
  index: OffsetIndex;
  timeIndex: TimeIndex;
  /** Aborted transactions whose marker is in this segment (owned by the PartitionLog's transaction bookkeeping). */
  txnIndex: TxnIndex;
  /** The `.txnindex` on disk was malformed (loaded empty): the partition's load rebuilds it by replaying the log. */
  txnIndexCorrupt = false;
  nextOffset: bigint;
  maxTimestamp = -1n;
  offsetOfMaxTimestamp = -1n;
  /** Wall-clock ms of the first append (segment.ms rolls), or of the load. */
  createdMs: number;
  private bytesSinceLastIndexEntry = 0;
  deleted = false;
  /** A read found an offset index entry that is not on its batch: the owner rebuilds the index (`rebuildIndex`). */
  indexSuspect = false;

  private constructor(dir: string, baseOffset: bigint, options: SegmentOptions, file: CachedFile, size: number, index: OffsetIndex, timeIndex: TimeIndex, txnIndex: TxnIndex) {
    this.dir = dir;
    this.baseOffset = baseOffset;
    this.options = options;
    this.file = file;
    this.size = size;
    this.flushedSize = size;
    this.index = index;
    this.timeIndex = timeIndex;
    this.txnIndex = txnIndex;
    this.nextOffset = baseOffset;
    this.createdMs = Date.now();
  }

  get logPath(): string {
    return join(this.dir, `${fileName(this.baseOffset)}.log`);
  }
  get indexPath(): string {
    return join(this.dir, `${fileName(this.baseOffset)}.index`);
  }
  get timeIndexPath(): string {
    return join(this.dir, `${fileName(this.baseOffset)}.timeindex`);
  }
  get txnIndexPath(): string {
    return join(this.dir, `${fileName(this.baseOffset)}.txnindex`);
  }

  static async create(dir: string, baseOffset: bigint, options: SegmentOptions): Promise<LogSegment> {
    const name = join(dir, fileName(baseOffset));
    const fh = await (options.files ?? segmentFiles).open(`${name}.log`, 'w+');
    try {
      const index = new OffsetIndex(`${name}.index`, baseOffset, options.segmentIndexBytes);
      const timeIndex = new TimeIndex(`${name}.timeindex`, baseOffset, options.segmentIndexBytes);
      // Empty index files exist from the start, as in Kafka.
      await index.flush(false);
      await timeIndex.flush(false);
      return new LogSegment(dir, baseOffset, options, fh, 0, index, timeIndex, new TxnIndex(`${name}.txnindex`));
    } catch (err) {
      await fh.retire();
      // No half-created segment stays behind (a full disk): the roll is retried at the same base.
      await LogSegment.removeFiles(dir, baseOffset).catch(() => {});
      throw err;
    }
  }

  /**
   * Open an existing segment. Indexes are loaded and sanity-checked; a missing or corrupt index is
   * rebuilt by a full scan (`recover`). `upperBound` is the next segment's base offset (or null for
   * the last segment, whose tail is scanned from the last index entry to find nextOffset).
   * Returns the segment and whether it had to be recovered (bytes truncated). `hasTxnIndex: false`
   * (the caller listed the dir): no `.txnindex` to read.
   */
  static async open(dir: string, baseOffset: bigint, options: SegmentOptions, upperBound: bigint | null, hasTxnIndex = true): Promise<{ segment: LogSegment; truncatedBytes: number; rebuilt: boolean }> {
    const name = join(dir, fileName(baseOffset));
    const fh = await (options.files ?? segmentFiles).open(`${name}.log`, 'r+');
    const size = await fh.use(async (h) => (await h.stat()).size).catch(async (err: unknown) => {
      await fh.retire();
      throw err;
    });
    let index: OffsetIndex | null = null;
    let timeIndex: TimeIndex | null = null;
    let txnIndex: TxnIndex;
    let txnIndexCorrupt = false;
    try {
      txnIndex = hasTxnIndex ? await TxnIndex.load(`${name}.txnindex`) : new TxnIndex(`${name}.txnindex`);
    } catch (err) {
      if (!(err instanceof CorruptTxnIndexError)) {
        await fh.retire();
        throw err;
      }
      txnIndex = new TxnIndex(`${name}.txnindex`);
      txnIndexCorrupt = true;
    }
    try {
      index = await OffsetIndex.load(`${name}.index`, baseOffset, options.segmentIndexBytes, size);
      timeIndex = await TimeIndex.load(`${name}.timeindex`, baseOffset, options.segmentIndexBytes, upperBound ?? baseOffset + BigInt(INT32_MAX) + 1n);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!(err instanceof CorruptIndexError) && code !== 'ENOENT') {
        await fh.retire();
        throw err;
      }
      index = null;
    }
    const seg = new LogSegment(
      dir,
      baseOffset,
      options,
      fh,
      size,
      index ?? new OffsetIndex(`${name}.index`, baseOffset, options.segmentIndexBytes),
      timeIndex ?? new TimeIndex(`${name}.timeindex`, baseOffset, options.segmentIndexBytes),
      txnIndex,
    );
    seg.txnIndexCorrupt = txnIndexCorrupt;
    if (!index || !timeIndex) {
      const r = await seg.recover(null);
      return { segment: seg, truncatedBytes: r.truncatedBytes, rebuilt: true };
    }
    const last = timeIndex.lastEntry();
    if (last) {
      seg.maxTimestamp = last.timestamp;
      seg.offsetOfMaxTimestamp = last.offset;
    }
    if (upperBound !== null) {
      seg.nextOffset = upperBound;
      return { segment: seg, truncatedBytes: 0, rebuilt: false };
    }
    // Last segment: every index entry must sit on its batch (an entry pointing inside a batch
    // passes sanityCheck but would send reads astray), then walk the tail after the last entry to
    // find nextOffset and the max timestamp.
    if (!(await seg.indexEntriesOnBatches())) {
      const r = await seg.recover(null);
      return { segment: seg, truncatedBytes: r.truncatedBytes, rebuilt: true };
    }
    const from = index.lastEntry()?.position ?? 0;
    const scan = await seg.scan(from, null, (b) => seg.trackTimestamp(b));
    if (scan.validEnd !== size) {
      const r = await seg.recover(null);
      return { segment: seg, truncatedBytes: r.truncatedBytes, rebuilt: true };
    }
    seg.nextOffset = scan.lastOffset !== null ? scan.lastOffset + 1n : (index.lastEntry()?.offset ?? baseOffset - 1n) + 1n;
    if (scan.lastOffset === null && from === 0) seg.nextOffset = baseOffset;
    // bytesSinceLastIndexEntry: conservative, the bytes after the last entry.
    seg.bytesSinceLastIndexEntry = size - from;
    return { segment: seg, truncatedBytes: 0, rebuilt: false };
  }

  private trackTimestamp(b: BatchInfo): void {
    if (b.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = b.maxTimestamp;
      this.offsetOfMaxTimestamp = b.baseOffset + BigInt(b.lastOffsetDelta);
    }
  }

  /** Index bookkeeping for one batch at `position` (Kafka `LogSegment.append`). */
  private indexBatch(b: { lastOffset: bigint; maxTimestamp: bigint; size: number }, position: number): void {
    if (b.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = b.maxTimestamp;
      this.offsetOfMaxTimestamp = b.lastOffset;
    }
    if (this.bytesSinceLastIndexEntry > this.options.indexIntervalBytes) {
      this.index.append(b.lastOffset, position);
      this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
      this.bytesSinceLastIndexEntry = 0;
    }
    this.bytesSinceLastIndexEntry += b.size;
  }

  /** Would appending `bytes` ending at `lastOffset` overflow the relative offset or index capacity? */
  canHold(lastOffset: bigint): boolean {
    return lastOffset - this.baseOffset <= BigInt(INT32_MAX) && !this.index.isFull && !this.timeIndex.isFull;
  }

  /**
   * Write validated payloads at the end with one positional writev (group of coalesced appends).
   * On any write error the file is truncated back to the old size (a partial batch never stays)
   * and the error is rethrown. `batches[i]` positions are relative to `payloads[i]`.
   */
  append(payloads: Buffer[], batches: BatchInfo[][]): Promise<void> {
    return this.file.use((fh) => this.#append(fh, payloads, batches));
  }

  async #append(fh: FileHandle, payloads: Buffer[], batches: BatchInfo[][]): Promise<void> {
    const start = this.size;
    let total = 0;
    for (const p of payloads) total += p.length;
    // Synchronous writes, as Kafka's request threads write: to the page cache they cost tens of
    // microseconds, less than a hop through libuv's threadpool and back, and under load each hop
    // waits for a thread and then for the event loop (measured on a 3-broker RF 3 cluster: the
    // threadpool hops of leader and follower appends were the largest share of acks=all's tail).
    // After a slow one (see SLOW_WRITE_MS) writes go through the threadpool for a while.
    const began = performance.now();
    const sync = began >= syncWritesResumeAt;
    try {
      let done = 0;
      if (payloads.length > 1) done = sync ? writevSync(fh.fd, payloads, start) : (await fh.writev(payloads, start)).bytesWritten;
      // A short writev (or a single payload): finish with plain writes from where it stopped.
      let skip = done;
      for (const p of payloads) {
        if (skip >= p.length) {
          skip -= p.length;
          continue;
        }
        let off = skip;
        skip = 0;
        while (off < p.length) {
          const bytesWritten = sync ? writeSync(fh.fd, p, off, p.length - off, start + done) : (await fh.write(p, off, p.length - off, start + done)).bytesWritten;
          if (bytesWritten === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
          off += bytesWritten;
          done += bytesWritten;
        }
      }
    } catch (err) {
      try {
        await fh.truncate(start);
      } catch (truncErr) {
        throw Object.assign(new Error(`write failed and the partial write could not be truncated: ${(truncErr as Error).message}`), { code: 'EIO', cause: err });
      }
      throw err;
    } finally {
      if (sync && performance.now() - began > SLOW_WRITE_MS) backOffSyncWrites(SLOW_WRITE_BACKOFF_MS);
    }
    if (this.size === 0 && this.nextOffset === this.baseOffset) this.createdMs = Date.now();
    let at = start;
    for (let i = 0; i < payloads.length; i++) {
      for (const b of batches[i]) {
        this.indexBatch({ lastOffset: b.baseOffset + BigInt(b.lastOffsetDelta), maxTimestamp: b.maxTimestamp, size: b.size }, at + b.position);
      }
      at += payloads[i].length;
    }
    this.size = start + total;
    for (let i = batches.length - 1; i >= 0; i--) {
      const last = batches[i].at(-1);
      if (last) {
        this.nextOffset = last.baseOffset + BigInt(last.lastOffsetDelta) + 1n;
        break;
      }
    }
  }

  /**
   * Scan batches from `from` with the native validator, in chunks, checking offsets increase and
   * stay in range. `onBatch` gets each valid batch with `position` relative to the file.
   */
  scan(from: number, onChunk: ((batches: BatchInfo[], chunk: Buffer, chunkPos: number) => void) | null, onBatch?: OnBatch): Promise<ScanResult> {
    return this.file.use((fh) => this.#scan(fh, from, onChunk, onBatch));
  }

  async #scan(fh: FileHandle, from: number, onChunk: ((batches: BatchInfo[], chunk: Buffer, chunkPos: number) => void) | null, onBatch?: OnBatch): Promise<ScanResult> {
    const size = (await fh.stat()).size;
    let pos = from;
    let expected = this.baseOffset;
    let lastOffset: bigint | null = null;
    let buf = Buffer.allocUnsafeSlow(Math.min(SCAN_CHUNK, Math.max(size - from, BATCH_HEADER_SIZE)));
    while (pos < size) {
      const want = Math.min(buf.length, size - pos);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      const chunk = buf.subarray(0, bytesRead);
      const r = scanLog(chunk, 0);
      // Offsets must increase and fit the segment (Kafka `ensureOffsetInRange`).
      let valid = 0;
      let bad: string | null = null;
      const good: BatchInfo[] = [];
      for (const b of r.batches) {
        const last = b.baseOffset + BigInt(b.lastOffsetDelta);
        if (b.baseOffset < expected || last - this.baseOffset > BigInt(INT32_MAX) || b.lastOffsetDelta < 0) {
          bad = 'OFFSET_OUT_OF_ORDER';
          break;
        }
        expected = last + 1n;
        lastOffset = last;
        valid = b.position + b.size;
        const at = b.position;
        b.position += pos;
        good.push(b);
        onBatch?.(b, chunk, at);
      }
      onChunk?.(good, chunk, pos);
      if (bad) return { validEnd: pos + valid, stopReason: bad, lastOffset };
      if (r.stopReason === null && r.validBytes === bytesRead) {
        pos += bytesRead;
        continue;
      }
      pos += valid;
      if (pos + LOG_OVERHEAD <= size && bytesRead === buf.length) {
        // The chunk ended inside a batch: re-read from its start, growing the buffer for a batch
        // larger than the chunk (when its length is plausible).
        if (valid === 0) {
          const lenBuf = Buffer.alloc(4);
          await fh.read(lenBuf, 0, 4, pos + OFF_LENGTH);
          const total = LOG_OVERHEAD + lenBuf.readInt32BE(0);
          if (total > buf.length && total <= MAX_SANE_BATCH && pos + total <= size) {
            buf = Buffer.allocUnsafeSlow(total);
            continue;
          }
          return { validEnd: pos, stopReason: String(r.stopReason ?? 'CORRUPT'), lastOffset };
        }
        continue;
      }
      return { validEnd: pos, stopReason: String(r.stopReason ?? 'TRUNCATED'), lastOffset };
    }
    return { validEnd: pos, stopReason: null, lastOffset };
  }

  /**
   * Kafka `LogSegment.recover`: validate every batch, rebuild both indexes, truncate at the first
   * invalid byte. `onBatch` sees each valid batch (producer state, leader epochs).
   */
  async recover(onBatch: OnBatch | null): Promise<{ truncatedBytes: number; validBytes: number }> {
    this.index.clear();
    this.timeIndex.clear();
    this.indexSuspect = false;
    this.bytesSinceLastIndexEntry = 0;
    this.maxTimestamp = -1n;
    this.offsetOfMaxTimestamp = -1n;
    const r = await this.scan(0, null, (b, buf, at) => {
      this.indexBatch({ lastOffset: b.baseOffset + BigInt(b.lastOffsetDelta), maxTimestamp: b.maxTimestamp, size: b.size }, b.position);
      onBatch?.(b, buf, at);
    });
    const truncatedBytes = await this.file.use(async (fh) => {
      const cut = (await fh.stat()).size - r.validEnd;
      if (cut > 0) await fh.truncate(r.validEnd);
      return cut;
    });
    this.size = r.validEnd;
    this.flushedSize = Math.min(this.flushedSize, this.size);
    this.nextOffset = r.lastOffset !== null ? r.lastOffset + 1n : this.baseOffset;
    // On a full disk the rebuilt indexes stay in memory (they are right) and are written at the next
    // flush, roll or close: recovery at start must not fail, and take the dir offline, for want of space.
    await this.index.flush(false).catch(ignoreNoSpace);
    await this.timeIndex.flush(false).catch(ignoreNoSpace);
    return { truncatedBytes, validBytes: r.validEnd };
  }

  /**
   * Read `length` bytes at `position` into one new Buffer; `hot`: synchronously (see `read`).
   */
  async readAt(position: number, length: number, fh?: FileHandle, hot = false): Promise<Buffer> {
    if (!fh) return this.file.use((h) => this.readAt(position, length, h, hot));
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const bytesRead = hot ? readSync(fh.fd, buf, done, length - done, position + done) : (await fh.read(buf, done, length - done, position + done)).bytesRead;
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === length ? buf : buf.subarray(0, done);
  }

  /**
   * Whole batches starting with the one that contains `offset` (the first batch whose last offset
   * is >= offset), up to `maxBytes` (the first batch even if larger when `minOneBatch`), stopping
   * before any batch whose last offset is >= `maxOffset`. Small header reads (8 KiB) walk from the
   * index entry to the target batch, then ONE read of the byte range goes into one new Buffer and
   * the result is a view of it (no per-batch copies). Returns null when no batch of this segment
   * reaches `offset`.
   *
   * `hot` (the active segment): reads within its last HOT_TAIL_BYTES, just written and so in the
   * page cache, are synchronous preads, a memcpy from the page cache as Kafka's sendfile from its
   * network threads, instead of two hops through libuv's threadpool per fetch (a consumer or
   * follower keeping up reads there). Anything older may be on disk only, and a read that waits for
   * the disk must not hold up the event loop: those stay asynchronous.
   */
  read(offset: bigint, maxBytes: number, minOneBatch: boolean, maxOffset: bigint, hot = false): Promise<Buffer | null> {
    // One consistent view even if compaction swaps the file meanwhile: the file is held (so never
    // closed) for the whole read, and a swap installs a new file and new index objects.
    const { size, file, index } = this;
    return file.use((fh) => this.#read(fh, size, index, offset, maxBytes, minOneBatch, maxOffset, hot));
  }

  async #read(fh: FileHandle, size: number, index: OffsetIndex, offset: bigint, maxBytes: number, minOneBatch: boolean, maxOffset: bigint, hot: boolean): Promise<Buffer | null> {
    // 1. Locate the first batch with lastOffset >= offset: walk headers from the index entry with
    //    small reads (an entry names its batch's last offset, so the target is usually one batch on).
    const entry = index.lookup(offset);
    const syncAt = (at: number): boolean => hot && size - at <= HOT_TAIL_BYTES;
    let pos = entry.position;
    let win: Buffer = EMPTY;
    let winPos = 0;
    let firstLen = 0;
    let checkEntry = pos > 0;
    for (;;) {
      if (pos + BATCH_HEADER_SIZE > size) {
        if (!checkEntry) return null;
      } else if (pos < winPos || pos + BATCH_HEADER_SIZE > winPos + win.length) {
        winPos = pos;
        win = await this.readAt(pos, Math.min(size - pos, HEADER_WINDOW), fh, syncAt(pos));
        if (win.length < BATCH_HEADER_SIZE && !checkEntry) return null;
      }
      // The index entry must name the batch at its position; otherwise (a damaged .index) walk
      // from the segment start, which needs no index, and let the owner rebuild the index.
      if (checkEntry) {
        checkEntry = false;
        if (pos + BATCH_HEADER_SIZE > size || win.length < BATCH_HEADER_SIZE || !this.#entryOnBatch(win, pos - winPos, entry.offset, size - pos)) {
          this.indexSuspect = true;
          pos = 0;
          continue;
        }
      }
      const at = pos - winPos;
      const len = LOG_OVERHEAD + win.readInt32BE(at + OFF_LENGTH);
      // Every stored batch is whole and at least a header long: any other length is bit rot, and
      // walking on by it would loop forever (a length of 0 or below) or read garbage as headers.
      if (len < BATCH_HEADER_SIZE || pos + len > size) throw this.#rotten(pos, len);
      const last = win.readBigInt64BE(at) + BigInt(win.readInt32BE(at + OFF_LAST_OFFSET_DELTA));
      if (last >= offset) {
        if (last >= maxOffset) return EMPTY;
        firstLen = len;
        break;
      }
      pos += len;
    }
    // 2. One read of the byte range from that batch, then whole batches up to the limits.
    const want = Math.min(size - pos, Math.max(maxBytes, minOneBatch ? firstLen : 0));
    if (want < firstLen && !minOneBatch) return EMPTY;
    const buf = pos >= winPos && pos + want <= winPos + win.length ? win.subarray(pos - winPos, pos - winPos + want) : await this.readAt(pos, want, fh, syncAt(pos));
    let e = 0;
    let total = 0;
    while (e + BATCH_HEADER_SIZE <= buf.length) {
      const len = LOG_OVERHEAD + buf.readInt32BE(e + OFF_LENGTH);
      // A rotten length ends the read before it (the first batch was checked above); the next read starts there.
      if (len < BATCH_HEADER_SIZE) break;
      const last = buf.readBigInt64BE(e) + BigInt(buf.readInt32BE(e + OFF_LAST_OFFSET_DELTA));
      if (last >= maxOffset) break;
      if (total + len > maxBytes && !(total === 0 && minOneBatch)) break;
      if (e + len > buf.length) break;
      e += len;
      total += len;
    }
    return buf.subarray(0, e);
  }

  /**
   * Does the header at `buf[at]` (with `room` bytes of the segment from there) start a batch that
   * holds `entryOffset`? Magic 2, a length that fits, base offset <= entryOffset <= last offset,
   * and not below the segment's base.
   */
  #entryOnBatch(buf: Buffer, at: number, entryOffset: bigint, room: number): boolean {
    if (buf[at + OFF_MAGIC] !== 2) return false;
    const len = LOG_OVERHEAD + buf.readInt32BE(at + OFF_LENGTH);
    if (len < BATCH_HEADER_SIZE || len > room) return false;
    const base = buf.readBigInt64BE(at);
    const last = base + BigInt(buf.readInt32BE(at + OFF_LAST_OFFSET_DELTA));
    return base >= this.baseOffset && base <= entryOffset && entryOffset <= last;
  }

  async #entryOnBatchAt(position: number, entryOffset: bigint): Promise<boolean> {
    if (position + BATCH_HEADER_SIZE > this.size) return false;
    const header = await this.readAt(position, BATCH_HEADER_SIZE);
    return header.length === BATCH_HEADER_SIZE && this.#entryOnBatch(header, 0, entryOffset, this.size - position);
  }

  /**
   * Offset index entries sit on the start of the batch they name: all of them up to
   * LOAD_CHECKED_ENTRIES, else that many spread evenly and always the last (one header read each,
   * so a 1 GiB active segment does not cost 256k reads at startup; reads check every entry they use).
   */
  async indexEntriesOnBatches(): Promise<boolean> {
    const index = this.index;
    const n = index.entries;
    const step = n <= LOAD_CHECKED_ENTRIES ? 1 : n / LOAD_CHECKED_ENTRIES;
    for (let k = 0; k * step < n; k++) {
      const e = index.entry(k + 1 >= n / step ? n - 1 : Math.floor(k * step));
      if (!(await this.#entryOnBatchAt(e.position, e.offset))) return false;
    }
    return true;
  }

  /** Where a walk to `offset` starts: its index entry, or the segment start when that entry is not on its batch. */
  async startPosition(offset: bigint): Promise<number> {
    const entry = this.index.lookup(offset);
    if (entry.position === 0 || (await this.#entryOnBatchAt(entry.position, entry.offset))) return entry.position;
    this.indexSuspect = true;
    return 0;
  }

  /**
   * Rebuild both indexes from the log without changing it (a read found a misplaced entry). New
   * index objects: a read in flight keeps the old ones. The caller serializes this with appends.
   */
  async rebuildIndex(): Promise<void> {
    this.index = new OffsetIndex(this.indexPath, this.baseOffset, this.options.segmentIndexBytes);
    this.timeIndex = new TimeIndex(this.timeIndexPath, this.baseOffset, this.options.segmentIndexBytes);
    this.bytesSinceLastIndexEntry = 0;
    const size = this.size;
    for await (const { position, buf, at } of this.batchesFrom(0, () => {})) {
      const len = LOG_OVERHEAD + buf.readInt32BE(at + OFF_LENGTH);
      if (position + len > size) break;
      this.indexBatch({ lastOffset: buf.readBigInt64BE(at) + BigInt(buf.readInt32BE(at + OFF_LAST_OFFSET_DELTA)), maxTimestamp: buf.readBigInt64BE(at + OFF_MAX_TIMESTAMP), size: len }, position);
    }
    this.indexSuspect = false;
    await this.index.flush(false);
    await this.timeIndex.flush(false);
  }

  /** A stored batch header whose length cannot be (CORRUPT_MESSAGE: never served; replication repairs it). */
  #rotten(pos: number, len: number): StorageError {
    return new StorageError('CORRUPT_MESSAGE', `${this.logPath}: the stored batch at byte ${pos} has an impossible length ${len - LOG_OVERHEAD}`);
  }

  /**
   * Position and header of batches from `position` (sequential header walk). A batch whose length
   * cannot be ends the walk: CORRUPT_MESSAGE, or with `atRotten` a call with its position.
   */
  async *batchesFrom(position: number, atRotten?: (position: number) => void): AsyncGenerator<{ position: number; buf: Buffer; at: number }> {
    const size = this.size;
    let pos = position;
    while (pos + BATCH_HEADER_SIZE <= size) {
      const buf = await this.readAt(pos, Math.min(size - pos, 1024 * 1024));
      let p = 0;
      while (p + BATCH_HEADER_SIZE <= buf.length) {
        const len = LOG_OVERHEAD + buf.readInt32BE(p + OFF_LENGTH);
        if (len < BATCH_HEADER_SIZE || pos + p + len > size) {
          if (!atRotten) throw this.#rotten(pos + p, len);
          atRotten(pos + p);
          return;
        }
        if (p + len > buf.length) break;
        yield { position: pos + p, buf, at: p };
        p += len;
      }
      if (p === 0) {
        // One batch larger than the window.
        const len = LOG_OVERHEAD + buf.readInt32BE(OFF_LENGTH);
        const whole = await this.readAt(pos, len);
        yield { position: pos, buf: whole, at: 0 };
        p = len;
      }
      pos += p;
    }
  }

  /** Truncate to the start of the first batch whose last offset is >= offset. Returns bytes removed. */
  async truncateTo(offset: bigint): Promise<number> {
    if (offset >= this.nextOffset) return 0;
    let cut = this.size;
    // A damaged entry would make the walk below cut at a "rotten" batch that is only a misplaced index.
    const start = await this.startPosition(offset);
    // A rotten batch on the way is cut too: nothing from it on can be read (a repair truncates at it).
    for await (const { position, buf, at } of this.batchesFrom(start, (rotten) => { cut = rotten; })) {
      const last = buf.readBigInt64BE(at) + BigInt(buf.readInt32BE(at + OFF_LAST_OFFSET_DELTA));
      if (last >= offset) {
        cut = position;
        break;
      }
    }
    const removed = this.size - cut;
    await this.file.use((fh) => fh.truncate(cut));
    this.size = cut;
    this.flushedSize = Math.min(this.flushedSize, cut);
    // Rebuild the in-memory state of the remaining prefix (indexes, next offset, max timestamp).
    await this.recover(null);
    this.txnIndex.truncateTo(this.nextOffset);
    // As the indexes in recover(): right in memory, written at the next flush on a full disk.
    await this.txnIndex.flush(false).catch(ignoreNoSpace);
    return removed;
  }

  async flush(sync: boolean): Promise<void> {
    const size = this.size;
    if (sync && this.flushedSize < size) await this.file.use((fh) => fh.datasync());
    this.flushedSize = Math.max(this.flushedSize, size);
    await this.index.flush(sync);
    await this.timeIndex.flush(sync);
    await this.txnIndex.flush(sync);
  }

  /** The segment stops being active: record the final max timestamp in the time index (Kafka `onBecomeInactiveSegment`). */
  onBecomeInactive(): void {
    if (this.maxTimestamp >= 0n) this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
  }

  async close(): Promise<void> {
    try {
      await this.index.flush(false);
      await this.timeIndex.flush(false);
      await this.txnIndex.flush(false);
    } finally {
      await this.file.retire();
    }
  }

  /** fdatasync of the `.log` (reopened if it was closed while idle: the kernel syncs the file, not the descriptor). */
  datasync(): Promise<void> {
    return this.file.use((fh) => fh.datasync());
  }

  /** Close without flushing the indexes (the log dir is gone or the partition is being deleted). */
  closeQuietly(): Promise<void> {
    return this.file.retire();
  }

  /** Rename files to `*.deleted` (Kafka's asynchronous delete): returns a function that unlinks them. */
  async markDeleted(): Promise<() => Promise<void>> {
    this.deleted = true;
    const paths = [this.logPath, this.indexPath, this.timeIndexPath, this.txnIndexPath];
    const renamed: string[] = [];
    // Held open across the rename: a closed idle file would otherwise be reopened by its old name.
    await this.file.acquire();
    try {
      for (const p of paths) {
        try {
          await rename(p, `${p}.deleted`);
          renamed.push(`${p}.deleted`);
          if (p === this.logPath) this.file.renamed(`${p}.deleted`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    } finally {
      this.file.release();
    }
    return async () => {
      await this.file.retire();
      for (const p of renamed) await unlinkIfExists(p);
    };
  }

  /** Replace the log file by `cleanedPath` (compaction swap) and rebuild the indexes from it. */
  async replaceWith(cleanedPath: string): Promise<{ close(): Promise<void> }> {
    await unlinkIfExists(this.indexPath);
    await unlinkIfExists(this.timeIndexPath);
    const old = this.file;
    // Held until the swap: after the rename the path names the cleaned file, so the old one must
    // not be closed (and reopened by name) meanwhile; retired after it, it closes once the reads
    // that hold it finish and is never reopened.
    await old.acquire();
    let fh: CachedFile;
    try {
      await rename(cleanedPath, this.logPath);
      fh = await (this.options.files ?? segmentFiles).open(this.logPath, 'r+');
    } finally {
      old.release();
    }
    void old.retire();
    const size = (await stat(this.logPath)).size;
    // New objects, never mutated in place: a read in flight keeps the old file, index and size.
    this.index = new OffsetIndex(this.indexPath, this.baseOffset, this.options.segmentIndexBytes);
    this.timeIndex = new TimeIndex(this.timeIndexPath, this.baseOffset, this.options.segmentIndexBytes);
    this.file = fh;
    this.size = size;
    this.flushedSize = 0;
    const savedNext = this.nextOffset;
    await this.recover(null);
    // A cleaned segment may end before its original next offset (the last records were dropped).
    if (this.nextOffset < savedNext) this.nextOffset = savedNext;
    await this.flush(true);
    return { close: () => old.retire() };
  }

  static async removeFiles(dir: string, baseOffset: bigint): Promise<void> {
    const name = join(dir, fileName(baseOffset));
    for (const ext of ['.log', '.index', '.timeindex', '.txnindex']) await unlinkIfExists(`${name}${ext}`);
  }
}

export { unlink };
