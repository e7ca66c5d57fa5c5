/**
 * The records of the compacted topic `__consumer_offsets`, in Kafka's own encoding so that Kafka's
 * tools (and an operator's eye) read our topic like Kafka's. Every key and value starts with an
 * int16 schema version followed by a non-flexible struct (INT16-length strings, INT32-length bytes,
 * INT32-count arrays, big-endian integers):
 *
 * ```text
 * key version 0|1  OffsetCommitKey     group string, topic string, partition int32
 * key version 2    GroupMetadataKey    group string
 *
 * OffsetCommitValue v0  offset int64, metadata string, commitTimestamp int64
 *                   v1  offset int64, metadata string, commitTimestamp int64, expireTimestamp int64
 *                   v2  offset int64, metadata string, commitTimestamp int64
 *                   v3  offset int64, leaderEpoch int32, metadata string, commitTimestamp int64
 *
 * GroupMetadataValue v0..v3
 *   protocolType string, generation int32, protocol nullable string, leader nullable string,
 *   currentStateTimestamp int64 (v2+),
 *   members [ memberId string, groupInstanceId nullable string (v3+), clientId string,
 *             clientHost string, rebalanceTimeout int32 (v1+), sessionTimeout int32,
 *             subscription bytes, assignment bytes ]
 * ```
 *
 * A null value is a tombstone: the committed offset, or the whole group, is gone. We write
 * OffsetCommitValue v3 (v1 only when the commit carried an explicit expire timestamp, as Kafka does)
 * and GroupMetadataValue v3; we read every version above. Version 4 of both values is flexible
 * (tagged fields); we read it by ignoring the trailing tag section, which only holds optional data.
 */

export interface OffsetCommitKey {
  readonly type: 'offset';
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
}

export interface GroupMetadataKey {
  readonly type: 'group';
  readonly group: string;
}

export type RecordKey = OffsetCommitKey | GroupMetadataKey;

export interface OffsetCommitValue {
  readonly offset: bigint;
  readonly leaderEpoch: number;
  readonly metadata: string;
  readonly commitTimestamp: bigint;
  /** -1 when the commit did not ask for its own retention (all commits from OffsetCommit v5+). */
  readonly expireTimestamp: bigint;
}

export interface GroupMemberValue {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly rebalanceTimeout: number;
  readonly sessionTimeout: number;
  readonly subscription: Buffer;
  readonly assignment: Buffer;
}

export interface GroupMetadataValue {
  readonly protocolType: string;
  readonly generation: number;
  readonly protocol: string | null;
  readonly leader: string | null;
  readonly currentStateTimestamp: bigint;
  readonly members: readonly GroupMemberValue[];
}

/**
 * One record to append to `__consumer_offsets`; `partition` is the offsets-topic partition. `txn`:
 * written in a transactional batch of that producer (TxnOffsetCommit), applied only once a COMMIT
 * marker follows it.
 */
export interface OffsetsRecord {
  readonly partition: number;
  readonly key: Buffer;
  readonly value: Buffer | null;
  readonly txn?: { readonly producerId: bigint; readonly producerEpoch: number };
}

export class RecordFormatError extends Error {
  override name = 'RecordFormatError';
}

// ---------------------------------------------------------------------------------------------
// A minimal big-endian writer/reader for the non-flexible struct encoding.

class Writer {
  private chunks: Buffer[] = [];
  int16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v);
    this.chunks.push(b);
    return this;
  }
  int32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    this.chunks.push(b);
    return this;
  }
  int64(v: bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(v);
    this.chunks.push(b);
    return this;
  }
  string(v: string | null): this {
    if (v === null) return this.int16(-1);
    const s = Buffer.from(v, 'utf8');
    this.int16(s.length);
    this.chunks.push(s);
    return this;
  }
  bytes(v: Buffer): this {
    this.int32(v.length);
    this.chunks.push(v);
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
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new RecordFormatError(`record truncated at byte ${this.pos} (needs ${n} more)`);
  }
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  int64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  nullableString(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    this.need(n);
    const v = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  string(): string {
    return this.nullableString() ?? '';
  }
  bytes(): Buffer {
    const n = this.int32();
    if (n < 0) return Buffer.alloc(0);
    this.need(n);
    // Copy: the record may live in a large fetched buffer that we must not pin.
    const v = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }
  // Flexible (v4) strings/bytes/arrays are compact; we only need a few fields from v4 values.
  uvarint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      this.need(1);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  }
  compactNullableString(): string | null {
    const n = this.uvarint() - 1;
    if (n < 0) return null;
    this.need(n);
    const v = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  compactBytes(): Buffer {
    const n = this.uvarint() - 1;
    if (n < 0) return Buffer.alloc(0);
    this.need(n);
    const v = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }
  skipTags(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint();
      const size = this.uvarint();
      this.need(size);
      this.pos += size;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

export function encodeOffsetCommitKey(group: string, topic: string, partition: number): Buffer {
  return new Writer().int16(1).string(group).string(topic).int32(partition).done();
}

export function encodeGroupMetadataKey(group: string): Buffer {
  return new Writer().int16(2).string(group).done();
}

/** Decodes a key; returns null for key versions we do not know (e.g. KIP-848 records), which are skipped. */
export function decodeKey(buf: Buffer): RecordKey | null {
  const r = new Reader(buf);
  const version = r.int16();
  if (version === 0 || version === 1) {
    const group = r.string();
    const topic = r.string();
    const partition = r.int32();
    return { type: 'offset', group, topic, partition };
  }
  if (version === 2) return { type: 'group', group: r.string() };
  return null;
}

// ---------------------------------------------------------------------------------------------
// Values

export function encodeOffsetCommitValue(v: OffsetCommitValue): Buffer {
  if (v.expireTimestamp >= 0n) {
    return new Writer().int16(1).int64(v.offset).string(v.metadata).int64(v.commitTimestamp).int64(v.expireTimestamp).done();
  }
  return new Writer().int16(3).int64(v.offset).int32(v.leaderEpoch).string(v.metadata).int64(v.commitTimestamp).done();
}

export function decodeOffsetCommitValue(buf: Buffer): OffsetCommitValue {
  const r = new Reader(buf);
  const version = r.int16();
  if (version < 0 || version > 4) throw new RecordFormatError(`unknown OffsetCommitValue version ${version}`);
  const offset = r.int64();
  const leaderEpoch = version >= 3 ? r.int32() : -1;
  const metadata = version >= 4 ? (r.compactNullableString() ?? '') : r.string();
  const commitTimestamp = r.int64();
  const expireTimestamp = version === 1 ? r.int64() : -1n;
  return { offset, leaderEpoch, metadata, commitTimestamp, expireTimestamp };
}

export function encodeGroupMetadataValue(v: GroupMetadataValue): Buffer {
  const w = new Writer()
    .int16(3)
    .string(v.protocolType)
    .int32(v.generation)
    .string(v.protocol)
    .string(v.leader)
    .int64(v.currentStateTimestamp)
    .int32(v.members.length);
  for (const m of v.members) {
    w.string(m.memberId)
      .string(m.groupInstanceId)
      .string(m.clientId)
      .string(m.clientHost)
      .int32(m.rebalanceTimeout)
      .int32(m.sessionTimeout)
      .bytes(m.subscription)
      .bytes(m.assignment);
  }
  return w.done();
}

export function decodeGroupMetadataValue(buf: Buffer): GroupMetadataValue {
  const r = new Reader(buf);
  const version = r.int16();
  if (version < 0 || version > 4) throw new RecordFormatError(`unknown GroupMetadataValue version ${version}`);
  const flex = version >= 4;
  const str = () => (flex ? (r.compactNullableString() ?? '') : r.string());
  const nstr = () => (flex ? r.compactNullableString() : r.nullableString());
  const bytes = () => (flex ? r.compactBytes() : r.bytes());
  const protocolType = str();
  const generation = r.int32();
  const protocol = nstr();
  const leader = nstr();
  const currentStateTimestamp = version >= 2 ? r.int64() : -1n;
  const count = flex ? r.uvarint() - 1 : r.int32();
  const members: GroupMemberValue[] = [];
  for (let i = 0; i < count; i++) {
    const memberId = str();
    const groupInstanceId = version >= 3 ? nstr() : null;
    const clientId = str();
    const clientHost = str();
    const rebalanceTimeout = version >= 1 ? r.int32() : -1;
    const sessionTimeout = r.int32();
    const subscription = bytes();
    const assignment = bytes();
    if (flex) r.skipTags();
    members.push({
      memberId,
      groupInstanceId,
      clientId,
      clientHost,
      rebalanceTimeout: rebalanceTimeout < 0 ? sessionTimeout : rebalanceTimeout,
      sessionTimeout,
      subscription,
      assignment,
    });
  }
  return { protocolType, generation, protocol, leader, currentStateTimestamp, members };
}
