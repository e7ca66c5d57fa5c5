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
  /** Oldest first, at most NUM_BATCHES_TO_RETAIN. */
  batches: BatchMetadata[];
  lastTimestamp: bigint;
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
 * - an unknown producer id may start at any sequence (its state may have been removed by retention).
 * Replaying the log (recovery) applies batches without checks. Non-idempotent batches
 * (producerId -1) are ignored.
 *
 * Snapshot format (`producer-state-checkpoint` in the partition dir, written atomically on roll and
 * clean shutdown, Kafka checkpoint style):
 * ```
 * 0
 * <count>
 * <producerId> <epoch> <lastTimestamp> <firstSeq>:<lastSeq>:<firstOffset>:<lastOffset>[,...]
 * ```
 * preceded by the `snapshotOffset` line as the first entry line (`offset <N>`): the state reflects
 * every batch below N.
 */
export class ProducerStateManager {
  readonly producers = new Map<bigint, ProducerEntry>();

  /**
   * Check a client batch against the state (and `pending`, the earlier batches of the same payload).
   * Throws StorageError on a fenced epoch or a sequence gap.
   */
  check(b: BatchInfo, pending: Map<bigint, ProducerEntry>): ProducerCheck {
    if (b.producerId < 0n) return { kind: 'append' };
    const entry = pending.get(b.producerId) ?? this.producers.get(b.producerId);
    const last = lastSequence(b.baseSequence, b.lastOffsetDelta);
    if (!entry) return { kind: 'append' };
    if (b.producerEpoch === entry.epoch) {
      const dup = entry.batches.find((m) => m.firstSeq === b.baseSequence && m.lastSeq === last);
      if (dup) return { kind: 'duplicate', firstOffset: dup.firstOffset, lastOffset: dup.lastOffset };
    }
    if (b.producerEpoch < entry.epoch) {
      throw new StorageError('INVALID_PRODUCER_EPOCH', `producer ${b.producerId}: epoch ${b.producerEpoch} is older than the current epoch ${entry.epoch}`);
    }
    if (b.producerEpoch > entry.epoch) {
      if (b.baseSequence !== 0) {
        throw new StorageError('OUT_OF_ORDER_SEQUENCE', `producer ${b.producerId}: a new epoch ${b.producerEpoch} must start at sequence 0, got ${b.baseSequence}`);
      }
      return { kind: 'append' };
    }
    const lastSeq = entry.batches.at(-1)?.lastSeq;
    if (lastSeq !== undefined && !inSequence(lastSeq, b.baseSequence)) {
      throw new StorageError('OUT_OF_ORDER_SEQUENCE', `producer ${b.producerId} epoch ${b.producerEpoch}: expected sequence ${lastSeq === INT32_MAX ? 0 : lastSeq + 1}, got ${b.baseSequence}`);
    }
    return { kind: 'append' };
  }

  /** Apply an appended batch (offsets assigned) to `into` (a pending map) or to the state. */
  apply(b: BatchInfo, into?: Map<bigint, ProducerEntry>): void {
    if (b.producerId < 0n || b.isControl) return;
    const target = into ?? this.producers;
    const current = target.get(b.producerId) ?? this.producers.get(b.producerId);
    const entry: ProducerEntry =
      current && current.epoch === b.producerEpoch
        ? { ...current, batches: [...current.batches] }
        : { producerId: b.producerId, epoch: b.producerEpoch, batches: [], lastTimestamp: -1n };
    entry.batches.push({
      firstSeq: b.baseSequence,
      lastSeq: lastSequence(b.baseSequence, b.lastOffsetDelta),
      firstOffset: b.baseOffset,
      lastOffset: b.baseOffset + BigInt(b.lastOffsetDelta),
    });
    if (entry.batches.length > NUM_BATCHES_TO_RETAIN) entry.batches.shift();
    entry.lastTimestamp = b.maxTimestamp;
    target.set(b.producerId, entry);
  }

  commit(pending: Map<bigint, ProducerEntry>): void {
    for (const [k, v] of pending) this.producers.set(k, v);
  }

  clear(): void {
    this.producers.clear();
  }

  /** Forget batches at or past `offset` (after a truncation); producers left with no batch are removed. */
  truncateTo(offset: bigint): void {
    for (const [k, e] of this.producers) {
      e.batches = e.batches.filter((m) => m.lastOffset < offset);
      if (e.batches.length === 0) this.producers.delete(k);
    }
  }

  /** The log start moved to `offset`: forget producers whose last batch is below it (Kafka `truncateHead`). */
  truncateHead(offset: bigint): void {
    for (const [k, e] of this.producers) if ((e.batches.at(-1)?.lastOffset ?? -1n) < offset) this.producers.delete(k);
  }

  serialize(snapshotOffset: bigint): string[] {
    const lines = [`offset ${snapshotOffset}`];
    for (const e of this.producers.values()) {
      lines.push(`${e.producerId} ${e.epoch} ${e.lastTimestamp} ${e.batches.map((m) => `${m.firstSeq}:${m.lastSeq}:${m.firstOffset}:${m.lastOffset}`).join(',')}`);
    }
    return lines;
  }

  /** Returns the snapshot offset. */
  static parse(entries: string[][], into: ProducerStateManager): bigint {
    if (entries[0]?.[0] !== 'offset') throw new Error('producer state: missing offset line');
    const at = BigInt(entries[0][1]);
    for (const e of entries.slice(1)) {
      const batches = (e[3] ?? '').split(',').filter(Boolean).map((s) => {
        const [a, b, c, d] = s.split(':');
        return { firstSeq: Number(a), lastSeq: Number(b), firstOffset: BigInt(c), lastOffset: BigInt(d) };
      });
      into.producers.set(BigInt(e[0]), { producerId: BigInt(e[0]), epoch: Number(e[1]), lastTimestamp: BigInt(e[2]), batches });
    }
    return at;
  }
}
