import type { BatchInfo } from '@runnel/native';
import { StorageError } from './errors.ts';

/** Kafka `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`: the client keeps at most 5 requests in flight. */
export const NUM_BATCHES_TO_RETAIN = 5;
const INT32_MAX = 0x7fffffff;

export interface BatchMetadata {
  firstSeq: number;
  lastSeq: number;
  firstOffset: bigint;
  lastOffset: bigint;
}

export interface ProducerEntry {
  producerId: bigint;
  epoch: number;
  /** Oldest first, at most NUM_BATCHES_TO_RETAIN. A transactional batch without sequence (baseSequence -1) is kept as -1:-1. */
  batches: BatchMetadata[];
  lastTimestamp: bigint;
  /** Coordinator epoch of the producer's last transaction marker, -1 before any. */
  coordinatorEpoch: number;
  /** First offset of the producer's open transaction in this partition, -1n when none. */
  currentTxnFirstOffset: bigint;
}

/** A transaction a marker closed (Kafka `CompletedTxn`). */
export interface CompletedTxn {
  producerId: bigint;
  firstOffset: bigint;
  /** The marker's offset. */
  lastOffset: bigint;
  aborted: boolean;
}

/** A transaction marker to apply (control batch of type COMMIT or ABORT). */
export interface TxnMarker {
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
  commit: boolean;
  /** The marker's offset. */
  offset: bigint;
  timestamp: bigint;
}

/** Sequence of the last record: baseSequence + lastOffsetDelta, wrapping at Integer.MAX_VALUE (Kafka `incrementSequence`). */
export function lastSequence(baseSequence: number, lastOffsetDelta: number): number {
  if (baseSequence > INT32_MAX - lastOffsetDelta) return lastOffsetDelta - (INT32_MAX - baseSequence) - 1;
  return baseSequence + lastOffsetDelta;
}

const inSequence = (last: number, next: number) => next === last + 1 || (next === 0 && last === INT32_MAX);

export type ProducerCheck = { kind: 'append' } | { kind: 'duplicate'; firstOffset: bigint; lastOffset: bigint };

/**
 * Idempotent-producer state of one partition (Kafka `ProducerStateManager` + `ProducerAppendInfo`):
 * per producer id its epoch and the metadata of its last 5 batches. Rules, for client appends:
 * - a batch whose (epoch, firstSeq, lastSeq) matches a retained batch is a duplicate: the caller
 *   returns its original offsets and writes nothing;
 * - epoch below the current one → INVALID_PRODUCER_EPOCH;
 * - a new (higher) epoch must start at sequence 0 → else OUT_OF_ORDER_SEQUENCE;
 * - same epoch: firstSeq must be lastSeq + 1 (0 after Integer.MAX_VALUE) → else OUT_OF_ORDER_SEQUENCE;
 * - an unknown producer id may start at any sequence (its state may have been removed by retention);
 * - a transactional batch without sequence (baseSequence -1: the group coordinator's transactional
 *   offset commits) is only checked for its epoch;
 * - a non-transactional batch while the producer's transaction is open → INVALID_TXN_STATE.
 * Transactions (Kafka's KIP-98 bookkeeping): a producer's first transactional batch opens its
 * transaction at the batch's base offset (`currentTxnFirstOffset`, listed in `ongoing`); a COMMIT or
 * ABORT marker (control batch) closes it and records the marker's coordinator epoch. Markers are
 * fenced by producer epoch (older → INVALID_PRODUCER_EPOCH) and coordinator epoch (older →
 * TRANSACTION_COORDINATOR_FENCED); a marker for a producer without an open transaction is valid and
 * closes nothing. Replaying the log (recovery, followers) applies batches and markers without checks.
 * Non-idempotent batches (producerId -1) are ignored.
 *
 * Snapshot format (`producer-state-checkpoint` in the partition dir, written atomically on roll and
 * clean shutdown, Kafka checkpoint style):
 * ```
 * 0
 * <count>
 * <producerId> <epoch> <lastTimestamp> <firstSeq>:<lastSeq>:<firstOffset>:<lastOffset>[,...] <coordinatorEpoch> <currentTxnFirstOffset>
 * ```
 * preceded by the `snapshotOffset` line as the first entry line (`offset <N>`): the state reflects
 * every batch below N. The batch list may be empty (two spaces). The last two fields were added
 * for transactions; a line without them (older snapshots) reads as -1 -1 (no marker, no open
 * transaction).
 */
export class ProducerStateManager {
  readonly producers = new Map<bigint, ProducerEntry>();
  /** Open transactions: producer id → first offset (kept in step with `producers` by `put`). */
  readonly ongoing = new Map<bigint, bigint>();

  /**
   * Check a client batch against the state (and `pending`, the earlier batches of the same payload).
   * Throws StorageError on a fenced epoch or a sequence gap.
   */
  check(b: BatchInfo, pending: Map<bigint, ProducerEntry>): ProducerCheck {
    if (b.producerId < 0n) return { kind: 'append' };
    const entry = pending.get(b.producerId) ?? this.producers.get(b.producerId);
    if (!entry) return { kind: 'append' };
    if (b.isTransactional && b.baseSequence < 0) {
      if (b.producerEpoch < entry.epoch) {
        throw new StorageError('INVALID_PRODUCER_EPOCH', `producer ${b.producerId}: epoch ${b.producerEpoch} is older than the current epoch ${entry.epoch}`);
      }
      return { kind: 'append' };
    }
    const last = lastSequence(b.baseSequence, b.lastOffsetDelta);
    if (b.producerEpoch === entry.epoch) {
      const dup = entry.batches.find((m) => m.firstSeq === b.baseSequence && m.lastSeq === last);
      if (dup) return { kind: 'duplicate', firstOffset: dup.firstOffset, lastOffset: dup.lastOffset };
    }
    if (b.producerEpoch < entry.epoch) {
      throw new StorageError('INVALID_PRODUCER_EPOCH', `producer ${b.producerId}: epoch ${b.producerEpoch} is older than the current epoch ${entry.epoch}`);
    }
    if (!b.isTransactional && entry.currentTxnFirstOffset >= 0n) {
      throw new StorageError('INVALID_TXN_STATE', `producer ${b.producerId}: a non-transactional batch while its transaction from offset ${entry.currentTxnFirstOffset} is open`);
    }
    if (b.producerEpoch > entry.epoch) {
      if (b.baseSequence !== 0) {
        throw new StorageError('OUT_OF_ORDER_SEQUENCE', `producer ${b.producerId}: a new epoch ${b.producerEpoch} must start at sequence 0, got ${b.baseSequence}`);
      }
      return { kind: 'append' };
    }
    const lastSeq = entry.batches.at(-1)?.lastSeq;
    if (lastSeq !== undefined && lastSeq >= 0 && !inSequence(lastSeq, b.baseSequence)) {
      throw new StorageError('OUT_OF_ORDER_SEQUENCE', `producer ${b.producerId} epoch ${b.producerEpoch}: expected sequence ${lastSeq === INT32_MAX ? 0 : lastSeq + 1}, got ${b.baseSequence}`);
    }
    return { kind: 'append' };
  }

  /** Check a marker (control batch) about to be written as leader: producer and coordinator epoch fencing. */
  checkMarker(m: { producerId: bigint; producerEpoch: number; coordinatorEpoch: number }, pending: Map<bigint, ProducerEntry>): void {
    const entry = pending.get(m.producerId) ?? this.producers.get(m.producerId);
    if (!entry) return;
    if (m.producerEpoch < entry.epoch) {
      throw new StorageError('INVALID_PRODUCER_EPOCH', `producer ${m.producerId}: marker epoch ${m.producerEpoch} is older than the current epoch ${entry.epoch}`);
    }
    if (m.coordinatorEpoch < entry.coordinatorEpoch) {
      throw new StorageError('TRANSACTION_COORDINATOR_FENCED', `producer ${m.producerId}: marker coordinator epoch ${m.coordinatorEpoch} is older than ${entry.coordinatorEpoch}`);
    }
  }

  private current(producerId: bigint, into?: Map<bigint, ProducerEntry>): ProducerEntry | undefined {
    return into?.get(producerId) ?? this.producers.get(producerId);
  }

  /** A copy of the producer's entry at `epoch` (a new epoch forgets the batches, keeps the transaction). */
  private next(producerId: bigint, epoch: number, into?: Map<bigint, ProducerEntry>): ProducerEntry {
    const current = this.current(producerId, into);
    if (!current) return { producerId, epoch, batches: [], lastTimestamp: -1n, coordinatorEpoch: -1, currentTxnFirstOffset: -1n };
    return { ...current, epoch, batches: current.epoch === epoch ? [...current.batches] : [] };
  }

  /** Apply an appended data batch (offsets assigned) to `into` (a pending map) or to the state. Control batches go to `applyMarker`. */
  apply(b: BatchInfo, into?: Map<bigint, ProducerEntry>): void {
    if (b.producerId < 0n || b.isControl) return;
    const entry = this.next(b.producerId, b.producerEpoch, into);
    const noSeq = b.isTransactional && b.baseSequence < 0;
    entry.batches.push({
      firstSeq: noSeq ? -1 : b.baseSequence,
      lastSeq: noSeq ? -1 : lastSequence(b.baseSequence, b.lastOffsetDelta),
      firstOffset: b.baseOffset,
      lastOffset: b.baseOffset + BigInt(b.lastOffsetDelta),
    });
    if (entry.batches.length > NUM_BATCHES_TO_RETAIN) entry.batches.shift();
    entry.lastTimestamp = b.maxTimestamp;
    if (b.isTransactional && entry.currentTxnFirstOffset < 0n) entry.currentTxnFirstOffset = b.baseOffset;
    if (into) into.set(b.producerId, entry);
    else this.put(entry);
  }

  /**
   * Apply a marker to `into` or to the state (Kafka `appendEndTxnMarker`): closes the producer's
   * open transaction; returns it, or null when none was open.
   */
  applyMarker(m: TxnMarker, into?: Map<bigint, ProducerEntry>): CompletedTxn | null {
    const entry = this.next(m.producerId, m.producerEpoch, into);
    const completed = entry.currentTxnFirstOffset >= 0n ? { producerId: m.producerId, firstOffset: entry.currentTxnFirstOffset, lastOffset: m.offset, aborted: !m.commit } : null;
    entry.currentTxnFirstOffset = -1n;
    entry.coordinatorEpoch = m.coordinatorEpoch;
    entry.lastTimestamp = m.timestamp;
    if (into) into.set(m.producerId, entry);
    else this.put(entry);
    return completed;
  }

  private put(e: ProducerEntry): void {
    this.producers.set(e.producerId, e);
    if (e.currentTxnFirstOffset >= 0n) {
      if (this.ongoing.get(e.producerId) !== e.currentTxnFirstOffset) this.ongoing.set(e.producerId, e.currentTxnFirstOffset);
    } else this.ongoing.delete(e.producerId);
  }

  private remove(producerId: bigint): void {
    this.producers.delete(producerId);
    this.ongoing.delete(producerId);
  }

  commit(pending: Map<bigint, ProducerEntry>): void {
    for (const v of pending.values()) this.put(v);
  }

  clear(): void {
    this.producers.clear();
    this.ongoing.clear();
  }

  /** Take every producer of `other` (a parsed snapshot), open transactions included. */
  adopt(other: ProducerStateManager): void {
    for (const e of other.producers.values()) this.put(e);
  }

  /** First offset of the earliest open transaction, or null (`except`: leave that producer out). */
  firstOngoingOffset(except?: bigint, pending?: Map<bigint, ProducerEntry>): bigint | null {
    let min: bigint | null = null;
    for (const [pid, first] of this.ongoing) {
      if (pid === except || pending?.has(pid)) continue;
      if (min === null || first < min) min = first;
    }
    if (pending) {
      for (const [pid, e] of pending) {
        if (pid === except || e.currentTxnFirstOffset < 0n) continue;
        if (min === null || e.currentTxnFirstOffset < min) min = e.currentTxnFirstOffset;
      }
    }
    return min;
  }

  /** Forget batches at or past `offset` (after a truncation); producers left with no batch and no open transaction are removed. */
  truncateTo(offset: bigint): void {
    for (const [k, e] of this.producers) {
      const batches = e.batches.filter((m) => m.lastOffset < offset);
      const txn = e.currentTxnFirstOffset >= offset ? -1n : e.currentTxnFirstOffset;
      if (batches.length === 0 && txn < 0n) this.remove(k);
      else this.put({ ...e, batches, currentTxnFirstOffset: txn });
    }
  }

  /**
   * The log start moved to `offset`: forget producers whose last batch is below it (Kafka
   * `truncateHead`), except those with an open transaction (it still pins the LSO until its marker)
   * and those without batches (only markers: their epochs still fence zombie writers).
   */
  truncateHead(offset: bigint): void {
    for (const [k, e] of this.producers) {
      const last = e.batches.at(-1);
      if (last && last.lastOffset < offset && e.currentTxnFirstOffset < 0n) this.remove(k);
    }
  }

  serialize(snapshotOffset: bigint): string[] {
    const lines = [`offset ${snapshotOffset}`];
    for (const e of this.producers.values()) {
      lines.push(`${e.producerId} ${e.epoch} ${e.lastTimestamp} ${e.batches.map((m) => `${m.firstSeq}:${m.lastSeq}:${m.firstOffset}:${m.lastOffset}`).join(',')} ${e.coordinatorEpoch} ${e.currentTxnFirstOffset}`);
    }
    return lines;
  }

  /** Returns the snapshot offset. */
  static parse(entries: string[][], into: ProducerStateManager): bigint {
    if (entries[0]?.[0] !== 'offset') throw new Error('producer state: missing offset line');
    const at = BigInt(entries[0][1]);
    const parsed: ProducerEntry[] = [];
    for (const e of entries.slice(1)) {
      const batches = (e[3] ?? '').split(',').filter(Boolean).map((s) => {
        const [a, b, c, d] = s.split(':');
        return { firstSeq: Number(a), lastSeq: Number(b), firstOffset: BigInt(c), lastOffset: BigInt(d) };
      });
      parsed.push({
        producerId: BigInt(e[0]),
        epoch: Number(e[1]),
        lastTimestamp: BigInt(e[2]),
        batches,
        coordinatorEpoch: Number(e[4] ?? -1),
        currentTxnFirstOffset: BigInt(e[5] ?? -1),
      });
    }
    for (const p of parsed) into.put(p);
    return at;
  }
}
