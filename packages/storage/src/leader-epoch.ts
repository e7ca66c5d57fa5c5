import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';

/**
 * Leader epoch cache (Kafka `LeaderEpochFileCache`): the start offset of every leader epoch seen in
 * this partition, persisted as `leader-epoch-checkpoint` in the partition dir:
 * ```
 * 0            <- version
 * 2            <- count
 * 0 0          <- epoch startOffset
 * 3 1500
 * ```
 * Epochs and start offsets are strictly increasing. Rebuilt from the batches' partitionLeaderEpoch
 * on recovery; truncated with the log.
 */
export class LeaderEpochCache {
  readonly path: string;
  entries: { epoch: number; startOffset: bigint }[] = [];
  private dirty = false;

  constructor(path: string) {
    this.path = path;
  }

  static async load(path: string): Promise<LeaderEpochCache> {
    const c = new LeaderEpochCache(path);
    try {
      const lines = (await readCheckpoint(path)) ?? [];
      c.entries = lines.map((l) => ({ epoch: Number(l[0]), startOffset: BigInt(l[1]) }));
    } catch {
      c.entries = [];
      c.dirty = true;
    }
    return c;
  }

  latestEpoch(): number {
    return this.entries.at(-1)?.epoch ?? -1;
  }

  /** Record that `epoch` starts at `offset` (ignored unless the epoch is newer than the latest). */
  assign(epoch: number, offset: bigint): void {
    if (epoch < 0) return;
    const last = this.entries.at(-1);
    if (last && epoch <= last.epoch) return;
    if (last && offset <= last.startOffset) this.entries.pop();
    this.entries.push({ epoch, startOffset: offset });
    this.dirty = true;
  }

  /** Remove epochs starting at or after `endOffset` (log truncated to endOffset). */
  truncateFromEnd(endOffset: bigint): void {
    const n = this.entries.length;
    this.entries = this.entries.filter((e) => e.startOffset < endOffset);
    if (this.entries.length !== n) this.dirty = true;
  }

  /** Log start moved to `startOffset`: drop epochs wholly below it, clamp the first. */
  truncateFromStart(startOffset: bigint): void {
    while (this.entries.length > 1 && this.entries[1].startOffset <= startOffset) {
      this.entries.shift();
      this.dirty = true;
    }
    if (this.entries.length > 0 && this.entries[0].startOffset < startOffset) {
      this.entries[0] = { ...this.entries[0], startOffset };
      this.dirty = true;
    }
  }

  /**
   * The end offset of leader epoch `epoch` in this log: Kafka's `LeaderEpochFileCache.endOffsetFor`,
   * the one rule behind OffsetForLeaderEpoch, a fetch's `lastFetchedEpoch` check (consumers and
   * followers) and a follower's truncation point.
   * - the latest epoch: `(epoch, logEndOffset)` (the epoch still being written);
   * - an epoch we have, or one between two we have: the largest epoch ≤ it, ending where the next
   *   higher one starts;
   * - an epoch older than all we have: `(epoch, start of our first epoch)` (epochs below the log
   *   start were dropped, so this may be late, as in Kafka);
   * - −1 (UNDEFINED_EPOCH), one newer than all we have, or an empty cache: `(−1, −1)` (undefined).
   */
  endOffsetFor(epoch: number, logEndOffset: bigint): { epoch: number; endOffset: bigint } {
    const undefinedEnd = { epoch: -1, endOffset: -1n };
    if (epoch < 0) return undefinedEnd;
    const latest = this.entries.at(-1);
    if (latest?.epoch === epoch) return { epoch, endOffset: logEndOffset };
    const higher = this.entries.findIndex((e) => e.epoch > epoch);
    if (higher < 0) return undefinedEnd;
    const endOffset = this.entries[higher].startOffset;
    return { epoch: higher === 0 ? epoch : this.entries[higher - 1].epoch, endOffset };
  }

  clear(): void {
    this.entries = [];
    this.dirty = true;
  }

  /** Changed since the last successful write of the file (a write failed on a full disk, or nothing tried yet). */
  get unwritten(): boolean {
    return this.dirty;
  }

  async flush(force = false): Promise<void> {
    if (!this.dirty && !force) return;
    this.dirty = false;
    try {
      await writeCheckpoint(this.path, this.entries.map((e) => `${e.epoch} ${e.startOffset}`));
    } catch (err) {
      // Not written (a full disk): still to be written, by the next flush.
      this.dirty = true;
      throw err;
    }
  }
}
