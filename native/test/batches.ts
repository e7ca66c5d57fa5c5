/**
 * Test helper: encodes record batches v2 the way Kafka clients do (zigzag varints, CRC-32C over
 * bytes 21..end, the records compressed as one blob), using our own crc32c and compress.
 */
import { Codec, compress, crc32c } from '../src/index.ts';

export interface TestRecord {
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: Array<[string, Uint8Array | null]>;
  timestampDelta?: number;
  /** Override the offsetDelta (defaults to the record's index). */
  offsetDelta?: number;
}

export interface BatchOptions {
  codec?: Codec;
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
  firstTimestamp?: bigint;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  /** Extra attribute bits (timestamp type, transactional, control). */
  attributeBits?: number;
  /** Override the header's lastOffsetDelta and recordCount. */
  lastOffsetDelta?: number;
  recordCount?: number;
}

export function varint(n: number): number[] {
  let z = ((n << 1) ^ (n >> 31)) >>> 0;
  const out: number[] = [];
  while (z >= 0x80) {
    out.push((z & 0x7f) | 0x80);
    z >>>= 7;
  }
  out.push(z);
  return out;
}

export function varlong(n: bigint): number[] {
  let z = BigInt.asUintN(64, (n << 1n) ^ (n >> 63n));
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return out;
}

function field(bytes: Uint8Array | null | undefined): number[] {
  if (bytes == null) return varint(-1);
  return [...varint(bytes.length), ...bytes];
}

export function encodeRecords(records: TestRecord[]): Buffer {
  const parts: number[] = [];
  records.forEach((r, i) => {
    const body = [
      0,
      ...varlong(BigInt(r.timestampDelta ?? i)),
      ...varint(r.offsetDelta ?? i),
      ...field(r.key),
      ...field(r.value),
      ...varint(r.headers?.length ?? 0),
      ...(r.headers ?? []).flatMap(([k, v]) => [...field(Buffer.from(k)), ...field(v)]),
    ];
    parts.push(...varint(body.length), ...body);
  });
  return Buffer.from(parts);
}

export function buildBatch(records: TestRecord[], opts: BatchOptions = {}): Buffer {
  const codec = opts.codec ?? Codec.None;
  const raw = encodeRecords(records);
  const body = codec === Codec.None ? raw : compress(codec, raw);
  const b = Buffer.alloc(61 + body.length);
  b.writeBigInt64BE(opts.baseOffset ?? 0n, 0);
  b.writeInt32BE(b.length - 12, 8);
  b.writeInt32BE(opts.partitionLeaderEpoch ?? -1, 12);
  b.writeInt8(2, 16);
  b.writeInt16BE(codec | (opts.attributeBits ?? 0), 21);
  b.writeInt32BE(opts.lastOffsetDelta ?? records.length - 1, 23);
  const first = opts.firstTimestamp ?? 1_700_000_000_000n;
  b.writeBigInt64BE(first, 27);
  b.writeBigInt64BE(first + BigInt(Math.max(0, records.length - 1)), 35);
  b.writeBigInt64BE(opts.producerId ?? -1n, 43);
  b.writeInt16BE(opts.producerEpoch ?? -1, 51);
  b.writeInt32BE(opts.baseSequence ?? -1, 53);
  b.writeInt32BE(opts.recordCount ?? records.length, 57);
  body.copy(b, 61);
  return fixCrc(b);
}

/** Recomputes the CRC of the batch at `position` after a test edited CRC-covered bytes. */
export function fixCrc(b: Buffer, position = 0): Buffer {
  const end = position + b.readInt32BE(position + 8) + 12;
  b.writeUInt32BE(crc32c(b.subarray(position + 21, end)), position + 17);
  return b;
}

export function simpleRecords(n: number, valueSize = 20): TestRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    key: Buffer.from(`key-${i}`),
    value: Buffer.alloc(valueSize, i & 0xff),
    headers: i % 2 === 0 ? [['trace', Buffer.from('abc')] as [string, Uint8Array | null]] : [],
  }));
}
