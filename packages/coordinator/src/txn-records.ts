/**
 * The records of the compacted topic `__transaction_state`, in Kafka's encoding
 * (TransactionLogKey.json, TransactionLogValue.json of Kafka's transaction coordinator), so Kafka's
 * tools and an operator read our topic like Kafka's:
 *
 * ```text
 * key    int16 version 0, transactionalId string
 * value  int16 version 0 (non-flexible; what Kafka writes below transaction.version 2):
 *          producerId int64, producerEpoch int16, transactionTimeoutMs int32, state int8,
 *          partitions nullable [topic string, partitionIds [int32]],
 *          lastUpdateTimestampMs int64, startTimestampMs int64
 *        version 1 (flexible: compact strings and arrays, tagged fields): the same fields, plus
 *          tagged previousProducerId (0), nextProducerId (1), clientTransactionVersion (2),
 *          nextProducerEpoch (3); we read v1 and skip its tags
 * ```
 *
 * A null value is a tombstone: the transactional id expired. States are Kafka's numbers
 * (0 Empty, 1 Ongoing, 2 PrepareCommit, 3 PrepareAbort, 4 CompleteCommit, 5 CompleteAbort,
 * 6 Dead, 7 PrepareEpochFence).
 */

export const TXN_STATES = ['Empty', 'Ongoing', 'PrepareCommit', 'PrepareAbort', 'CompleteCommit', 'CompleteAbort', 'Dead', 'PrepareEpochFence'] as const;
export type TxnState = (typeof TXN_STATES)[number];

export interface TxnTopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

export interface TxnLogValue {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly transactionTimeoutMs: number;
  readonly state: TxnState;
  readonly partitions: readonly TxnTopicPartitions[];
  readonly lastUpdateTimestampMs: bigint;
  readonly startTimestampMs: bigint;
}

export class TxnRecordFormatError extends Error {
  override name = 'TxnRecordFormatError';
}

class Writer {
  private chunks: Buffer[] = [];
  private fixed(n: number, write: (b: Buffer) => void): this {
    const b = Buffer.allocUnsafe(n);
    write(b);
    this.chunks.push(b);
    return this;
  }
  int8(v: number): this { return this.fixed(1, (b) => b.writeInt8(v)); }
  int16(v: number): this { return this.fixed(2, (b) => b.writeInt16BE(v)); }
  int32(v: number): this { return this.fixed(4, (b) => b.writeInt32BE(v)); }
  int64(v: bigint): this { return this.fixed(8, (b) => b.writeBigInt64BE(v)); }
  string(v: string): this {
    const s = Buffer.from(v, 'utf8');
    if (s.length > 0x7fff) throw new TxnRecordFormatError(`string of ${s.length} bytes does not fit an INT16 length`);
    this.int16(s.length);
    this.chunks.push(s);
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

class Reader {
  private pos = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  private need(n: number): number {
    if (this.pos + n > this.buf.length) throw new TxnRecordFormatError(`record truncated at byte ${this.pos} (needs ${n} more)`);
    const at = this.pos;
    this.pos += n;
    return at;
  }
  int8(): number { return this.buf.readInt8(this.need(1)); }
  int16(): number { return this.buf.readInt16BE(this.need(2)); }
  int32(): number { return this.buf.readInt32BE(this.need(4)); }
  int64(): bigint { return this.buf.readBigInt64BE(this.need(8)); }
  uvarint(): number {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.buf.readUInt8(this.need(1));
      v |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v >>> 0;
    }
    throw new TxnRecordFormatError('varint longer than 5 bytes');
  }
  utf8(n: number): string {
    const at = this.need(n);
    return this.buf.toString('utf8', at, at + n);
  }
  string(): string {
    const n = this.int16();
    if (n < 0) throw new TxnRecordFormatError('null string where a string is required');
    return this.utf8(n);
  }
  compactString(): string {
    const n = this.uvarint();
    if (n === 0) throw new TxnRecordFormatError('null string where a string is required');
    return this.utf8(n - 1);
  }
  skipTags(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint();
      this.need(this.uvarint());
    }
  }
  count(n: number): number {
    // Each element takes at least one byte: a count beyond the bytes left is corrupt, not an allocation.
    if (n > this.buf.length - this.pos) throw new TxnRecordFormatError(`array of ${n} elements in ${this.buf.length - this.pos} bytes`);
    return n;
  }
}

/** The key of a transactional id's record (version 0). */
export function encodeTxnKey(transactionalId: string): Buffer {
  return new Writer().int16(0).string(transactionalId).done();
}

/** The transactional id of a key; null for a key version this topic does not hold (skipped on load). */
export function decodeTxnKey(key: Buffer): string | null {
  const r = new Reader(key);
  const version = r.int16();
  if (version !== 0) return null;
  return r.string();
}

/** TransactionLogValue v0. Partitions are sorted by topic and id so equal states encode equally. */
export function encodeTxnValue(v: TxnLogValue): Buffer {
  const w = new Writer()
    .int16(0)
    .int64(v.producerId)
    .int16(v.producerEpoch)
    .int32(v.transactionTimeoutMs)
    .int8(TXN_STATES.indexOf(v.state));
  w.int32(v.partitions.length);
  for (const tp of v.partitions) {
    w.string(tp.topic).int32(tp.partitions.length);
    for (const p of tp.partitions) w.int32(p);
  }
  return w.int64(v.lastUpdateTimestampMs).int64(v.startTimestampMs).done();
}

/** Reads TransactionLogValue v0 or v1; a null partitions array reads as empty. */
export function decodeTxnValue(value: Buffer): TxnLogValue {
  const r = new Reader(value);
  const version = r.int16();
  if (version !== 0 && version !== 1) throw new TxnRecordFormatError(`TransactionLogValue version ${version} is not known`);
  const flexible = version === 1;
  const producerId = r.int64();
  const producerEpoch = r.int16();
  const transactionTimeoutMs = r.int32();
  const stateId = r.int8();
  const state = TXN_STATES[stateId];
  if (state === undefined) throw new TxnRecordFormatError(`transaction state ${stateId} is not known`);
  const arrayLength = () => (flexible ? r.uvarint() - 1 : r.int32());
  const partitions: TxnTopicPartitions[] = [];
  const topics = arrayLength();
  for (let i = 0; i < (topics < 0 ? 0 : r.count(topics)); i++) {
    const topic = flexible ? r.compactString() : r.string();
    const n = arrayLength();
    if (n < 0) throw new TxnRecordFormatError('null partition ids');
    const ids: number[] = [];
    for (let j = 0; j < r.count(n); j++) ids.push(r.int32());
    if (flexible) r.skipTags();
    partitions.push({ topic, partitions: ids });
  }
  const lastUpdateTimestampMs = r.int64();
  const startTimestampMs = r.int64();
  if (flexible) r.skipTags();
  return { producerId, producerEpoch, transactionTimeoutMs, state, partitions, lastUpdateTimestampMs, startTimestampMs };
}
