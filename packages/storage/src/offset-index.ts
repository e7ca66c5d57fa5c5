import { open, readFile } from 'node:fs/promises';
import { briefFiles } from './file-cache.ts';

/**
 * Sparse index files of one segment, kept in memory and written to the file on flush, roll and
 * close (Kafka maps them; we append the new entries with one positional write instead). The file
 * always has its real size, so Kafka's DumpLogSegments and an operator can read it.
 *
 * `.index` (OffsetIndex): 8-byte entries, big-endian
 * ```
 * int32 relativeOffset   // offset - segment base offset (last offset of the indexed batch)
 * int32 position         // byte position of that batch in the .log file
 * ```
 * `.timeindex` (TimeIndex): 12-byte entries, big-endian
 * ```
 * int64 timestamp        // the largest timestamp seen in the segment so far
 * int32 relativeOffset   // offset of the batch holding that timestamp (its last offset) - base
 * ```
 * An entry is added when more than `index.interval.bytes` of batches were appended since the last
 * one. Both are strictly increasing in offset (time index: non-decreasing in timestamp), so lookups
 * are binary searches. There is no checksum: on an unclean start the indexes of recovered segments
 * are rebuilt from the log, and every loaded index passes `sanityCheck` or is rebuilt. An entry
 * must also name the batch that starts at its position (base offset <= entry offset <= last
 * offset), which sanityCheck cannot see: the active segment's entries are checked on load (a
 * bounded sample), and every read checks the entry it uses (LogSegment.read); a misplaced entry is
 * never followed, the read walks from the segment start and the index is rebuilt.
 */
abstract class EntryFile {
  readonly path: string;
  readonly baseOffset: bigint;
  readonly maxEntries: number;
  protected buf: Buffer;
  protected count = 0;
  /** Entries already written to the file. */
  private persisted = 0;
  /** Bytes the file currently has (it may be longer than persisted*size after truncation). */
  private fileBytes = 0;
  abstract readonly entrySize: number;

  constructor(path: string, baseOffset: bigint, maxIndexBytes: number, entrySize: number, initial?: Buffer) {
    this.path = path;
    this.baseOffset = baseOffset;
    this.maxEntries = Math.max(1, Math.floor(maxIndexBytes / entrySize));
    this.buf = Buffer.alloc(Math.max(entrySize * 64, initial?.length ?? 0));
    if (initial) {
      initial.copy(this.buf);
      this.count = initial.length / entrySize;
      this.persisted = this.count;
      this.fileBytes = initial.length;
    }
  }

  get entries(): number {
    return this.count;
  }
  get isFull(): boolean {
    return this.count >= this.maxEntries;
  }
  get sizeBytes(): number {
    return this.count * this.entrySize;
  }

  protected reserve(): number {
    const at = this.count * this.entrySize;
    if (at + this.entrySize > this.buf.length) {
      // Doubling; a coalesced write may add a few entries past maxEntries before the roll it triggers.
      const next = Buffer.alloc(Math.max(this.buf.length * 2, at + this.entrySize));
      this.buf.copy(next, 0, 0, at);
      this.buf = next;
    }
    this.count++;
    return at;
  }

  /** Keep only the first `n` entries. */
  protected truncateEntries(n: number): void {
    this.count = Math.min(this.count, n);
    this.persisted = Math.min(this.persisted, this.count);
  }

  clear(): void {
    this.truncateEntries(0);
  }

  /** Write entries not yet in the file and trim the file to the real size; fsync when asked. */
  async flush(sync: boolean): Promise<void> {
    const bytes = this.count * this.entrySize;
    if (this.persisted === this.count && this.fileBytes === bytes && !sync) return;
    // A bounded number of these writes hold a descriptor at once (file-cache.ts `briefFiles`).
    await briefFiles.run(async () => {
      const fh = await open(this.path, this.fileBytes === 0 && this.persisted === 0 ? 'w' : 'r+').catch(async (err) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return open(this.path, 'w');
        throw err;
      });
      try {
        const from = this.persisted * this.entrySize;
        if (bytes > from) await fh.write(this.buf, from, bytes - from, from);
        if (this.fileBytes !== bytes) await fh.truncate(bytes);
        if (sync) await fh.datasync();
      } finally {
        await fh.close();
      }
    });
    this.persisted = this.count;
    this.fileBytes = bytes;
  }

  /** The whole index as file bytes (for tests and the compaction worker). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.count * this.entrySize);
  }
}

export class OffsetIndex extends EntryFile {
  readonly entrySize = 8;

  constructor(path: string, baseOffset: bigint, maxIndexBytes: number, initial?: Buffer) {
    super(path, baseOffset, maxIndexBytes, 8, initial);
  }

  static async load(path: string, baseOffset: bigint, maxIndexBytes: number, logSize: number): Promise<OffsetIndex> {
    const data = await readFile(path);
    const problem = OffsetIndex.sanityCheck(data, logSize);
    if (problem) throw new CorruptIndexError(`${path}: ${problem}`);
    return new OffsetIndex(path, baseOffset, Math.max(maxIndexBytes, data.length), data);
  }

  /** Kafka's `OffsetIndex.sanityCheck` plus positions: size a multiple of 8, offsets and positions increasing, positions inside the log. */
  static sanityCheck(data: Buffer, logSize: number): string | null {
    if (data.length % 8 !== 0) return `size ${data.length} is not a multiple of 8`;
    let prevRel = -1;
    let prevPos = -1;
    for (let i = 0; i < data.length; i += 8) {
      const rel = data.readInt32BE(i);
      const pos = data.readInt32BE(i + 4);
      if (rel <= prevRel) return `entry ${i / 8}: relative offset ${rel} not above ${prevRel}`;
      if (pos <= prevPos || pos >= logSize) return `entry ${i / 8}: position ${pos} out of order or past the log (${logSize} bytes)`;
      prevRel = rel;
      prevPos = pos;
    }
    return null;
  }

  append(offset: bigint, position: number): void {
    const rel = Number(offset - this.baseOffset);
    if (this.count > 0 && rel <= this.buf.readInt32BE((this.count - 1) * 8)) return;
    const at = this.reserve();
    this.buf.writeInt32BE(rel, at);
    this.buf.writeInt32BE(position, at + 4);
  }

  /** The last entry with offset <= target, or (baseOffset, 0) when there is none (Kafka's contract). */
  lookup(offset: bigint): { offset: bigint; position: number } {
    const rel = offset - this.baseOffset;
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (BigInt(this.buf.readInt32BE(mid * 8)) <= rel) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return { offset: this.baseOffset, position: 0 };
    return { offset: this.baseOffset + BigInt(this.buf.readInt32BE(found * 8)), position: this.buf.readInt32BE(found * 8 + 4) };
  }

  /** Drop entries whose position is at or past `position` (after the log was truncated there). */
  truncateToPosition(position: number): void {
    let n = this.count;
    while (n > 0 && this.buf.readInt32BE((n - 1) * 8 + 4) >= position) n--;
    this.truncateEntries(n);
  }

  /** Entry `i` (0 <= i < entries). */
  entry(i: number): { offset: bigint; position: number } {
    return { offset: this.baseOffset + BigInt(this.buf.readInt32BE(i * 8)), position: this.buf.readInt32BE(i * 8 + 4) };
  }

  lastEntry(): { offset: bigint; position: number } | null {
    if (this.count === 0) return null;
    const at = (this.count - 1) * 8;
    return { offset: this.baseOffset + BigInt(this.buf.readInt32BE(at)), position: this.buf.readInt32BE(at + 4) };
  }
}

export class TimeIndex extends EntryFile {
  readonly entrySize = 12;

  constructor(path: string, baseOffset: bigint, maxIndexBytes: number, initial?: Buffer) {
    super(path, baseOffset, maxIndexBytes, 12, initial);
  }

  static async load(path: string, baseOffset: bigint, maxIndexBytes: number, nextOffset: bigint): Promise<TimeIndex> {
    const data = await readFile(path);
    const problem = TimeIndex.sanityCheck(data, nextOffset - baseOffset);
    if (problem) throw new CorruptIndexError(`${path}: ${problem}`);
    return new TimeIndex(path, baseOffset, Math.max(maxIndexBytes, data.length), data);
  }

  /** Size a multiple of 12, timestamps non-decreasing, offsets increasing and inside the segment. */
  static sanityCheck(data: Buffer, relNextOffset: bigint): string | null {
    if (data.length % 12 !== 0) return `size ${data.length} is not a multiple of 12`;
    let prevTs = -1n << 63n;
    let prevRel = -1;
    for (let i = 0; i < data.length; i += 12) {
      const ts = data.readBigInt64BE(i);
      const rel = data.readInt32BE(i + 8);
      if (ts < prevTs) return `entry ${i / 12}: timestamp ${ts} below ${prevTs}`;
      if (rel < prevRel || BigInt(rel) >= relNextOffset) return `entry ${i / 12}: relative offset ${rel} out of order or past the segment`;
      prevTs = ts;
      prevRel = rel;
    }
    return null;
  }

  /** Append when the timestamp grows (Kafka's `maybeAppend`). */
  maybeAppend(timestamp: bigint, offset: bigint): void {
    const last = this.lastEntry();
    if (last && timestamp <= last.timestamp) return;
    const rel = Number(offset - this.baseOffset);
    if (last && rel < Number(last.offset - this.baseOffset)) return;
    const at = this.reserve();
    this.buf.writeBigInt64BE(timestamp, at);
    this.buf.writeInt32BE(rel, at + 8);
  }

  /** The last entry with timestamp <= target, or null when every entry is newer. */
  lookup(timestamp: bigint): { timestamp: bigint; offset: bigint } | null {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.buf.readBigInt64BE(mid * 12) <= timestamp) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return null;
    return { timestamp: this.buf.readBigInt64BE(found * 12), offset: this.baseOffset + BigInt(this.buf.readInt32BE(found * 12 + 8)) };
  }

  lastEntry(): { timestamp: bigint; offset: bigint } | null {
    if (this.count === 0) return null;
    const at = (this.count - 1) * 12;
    return { timestamp: this.buf.readBigInt64BE(at), offset: this.baseOffset + BigInt(this.buf.readInt32BE(at + 8)) };
  }

  /** Drop entries at or past `offset`. */
  truncateToOffset(offset: bigint): void {
    let n = this.count;
    while (n > 0 && this.baseOffset + BigInt(this.buf.readInt32BE((n - 1) * 12 + 8)) >= offset) n--;
    this.truncateEntries(n);
  }
}

export class CorruptIndexError extends Error {}
