import { open, readFile, unlink } from 'node:fs/promises';
import { briefFiles } from './file-cache.ts';

/** One aborted transaction of a partition (Kafka `AbortedTxn`). */
export interface AbortedTxn {
  producerId: bigint;
  /** Offset of the transaction's first batch in this partition. */
  firstOffset: bigint;
  /** Offset of the ABORT marker. */
  lastOffset: bigint;
  /** The partition's last stable offset right after the marker: the first offset of the earliest other open transaction, else lastOffset + 1. */
  lastStableOffset: bigint;
}

export const TXN_INDEX_ENTRY_SIZE = 34;
const TXN_INDEX_VERSION = 0;

export class CorruptTxnIndexError extends Error {}

/**
 * `<base offset>.txnindex`: the aborted transactions whose ABORT marker is in the segment (Kafka
 * `TransactionIndex`, byte for byte, so `kafka-dump-log.sh --files X.txnindex` reads it). Entries
 * of 34 bytes, big-endian, in marker order:
 * ```
 * int16 version           // 0
 * int64 producerId
 * int64 firstOffset       // first offset of the transaction (may be in an earlier segment)
 * int64 lastOffset        // offset of the ABORT marker (in this segment)
 * int64 lastStableOffset  // the LSO once the marker was written
 * ```
 * Only aborted transactions are indexed (a read_committed Fetch returns them so the consumer drops
 * their records). Like Kafka, the file exists only once the segment holds an aborted transaction:
 * a missing file is an empty index. Kept in memory (entries are few) and written whole on flush,
 * roll and close; a file whose size is not a multiple of 34 or with another version is corrupt,
 * and the partition's load then replays the log from its start to rebuild every txnindex.
 */
export class TxnIndex {
  readonly path: string;
  private entries: AbortedTxn[] = [];
  /** Bumped by every change of `entries`; the file holds `entries` as of `writtenVersion`. */
  private version = 0;
  private writtenVersion = 0;
  /**
   * Flushes run one at a time: an append during a write must stay dirty (the write may have
   * encoded the entries before it), and two overlapping writes must not land out of order.
   */
  private flushing: Promise<void> = Promise.resolve();
  /** The file exists on disk. */
  private onDisk = false;
  /** What is on disk was fsynced. */
  private synced = true;

  constructor(path: string) {
    this.path = path;
  }

  /** Loads the file; absent = empty. Throws CorruptTxnIndexError on a malformed file. */
  static async load(path: string): Promise<TxnIndex> {
    const idx = new TxnIndex(path);
    let buf: Buffer;
    try {
      buf = await briefFiles.run(() => readFile(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return idx;
      throw err;
    }
    idx.onDisk = true;
    idx.entries = TxnIndex.decode(buf, path);
    return idx;
  }

  static decode(buf: Buffer, where = 'txnindex'): AbortedTxn[] {
    if (buf.length % TXN_INDEX_ENTRY_SIZE !== 0) throw new CorruptTxnIndexError(`${where}: size ${buf.length} is not a multiple of ${TXN_INDEX_ENTRY_SIZE}`);
    const out: AbortedTxn[] = [];
    for (let at = 0; at < buf.length; at += TXN_INDEX_ENTRY_SIZE) {
      const version = buf.readInt16BE(at);
      if (version !== TXN_INDEX_VERSION) throw new CorruptTxnIndexError(`${where}: entry ${at / TXN_INDEX_ENTRY_SIZE} has version ${version}`);
      out.push({ producerId: buf.readBigInt64BE(at + 2), firstOffset: buf.readBigInt64BE(at + 10), lastOffset: buf.readBigInt64BE(at + 18), lastStableOffset: buf.readBigInt64BE(at + 26) });
    }
    return out;
  }

  static encode(entries: readonly AbortedTxn[]): Buffer {
    const buf = Buffer.alloc(entries.length * TXN_INDEX_ENTRY_SIZE);
    entries.forEach((e, i) => {
      const at = i * TXN_INDEX_ENTRY_SIZE;
      buf.writeInt16BE(TXN_INDEX_VERSION, at);
      buf.writeBigInt64BE(e.producerId, at + 2);
      buf.writeBigInt64BE(e.firstOffset, at + 10);
      buf.writeBigInt64BE(e.lastOffset, at + 18);
      buf.writeBigInt64BE(e.lastStableOffset, at + 26);
    });
    return buf;
  }

  get size(): number {
    return this.entries.length;
  }

  all(): readonly AbortedTxn[] {
    return this.entries;
  }

  /** Adds an entry after the last one; one at or before it is already there (a replay at load) and skipped. */
  append(e: AbortedTxn): void {
    const last = this.entries.at(-1);
    if (last && e.lastOffset <= last.lastOffset) return;
    this.entries.push(e);
    this.version++;
  }

  /** Drop the entries whose marker is at or past `offset` (log truncation, recovery rebuilding the tail). */
  truncateTo(offset: bigint): void {
    const keep = this.entries.filter((e) => e.lastOffset < offset);
    if (keep.length !== this.entries.length) {
      this.entries = keep;
      this.version++;
    }
  }

  /**
   * Kafka `TransactionIndex.collectAbortedTxns`: the entries whose range meets
   * [fetchOffset, upperBound); `complete` when an entry's lastStableOffset reaches upperBound (no
   * later segment can add one).
   */
  collect(fetchOffset: bigint, upperBound: bigint, into: AbortedTxn[]): boolean {
    for (const e of this.entries) {
      if (e.lastOffset >= fetchOffset && e.firstOffset < upperBound) into.push(e);
      if (e.lastStableOffset >= upperBound) return true;
    }
    return false;
  }

  /** Write the file when it changed (whole, it is small); no file while there is no entry. */
  flush(sync: boolean): Promise<void> {
    const run = this.flushing.then(() => this.flushOnce(sync));
    this.flushing = run.catch(() => {});
    return run;
  }

  private async flushOnce(sync: boolean): Promise<void> {
    if (this.writtenVersion === this.version && (!sync || this.synced)) return;
    const version = this.version;
    if (this.entries.length === 0) {
      if (this.onDisk) {
        await unlink(this.path).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
        this.onDisk = false;
      }
      this.writtenVersion = version;
      return;
    }
    const bytes = TxnIndex.encode(this.entries);
    await briefFiles.run(async () => {
      const fh = await open(this.path, 'w');
      try {
        await fh.write(bytes, 0, bytes.length, 0);
        if (sync) await fh.datasync();
      } finally {
        await fh.close();
      }
    });
    this.onDisk = true;
    this.writtenVersion = version;
    this.synced = sync;
  }
}
