/**
 * Record batch v2 (magic 2) in TypeScript, for our client, the perf tool and tests. The broker
 * itself passes batch bytes through to the native core and never decodes records.
 *
 * Batch header (big-endian), docs/protocol.md, Record batch v2:
 *   0 baseOffset int64 · 8 batchLength int32 (bytes after this field) · 12 partitionLeaderEpoch int32
 *   16 magic int8 (= 2) · 17 crc uint32 (CRC-32C over [21, end)) · 21 attributes int16
 *   23 lastOffsetDelta int32 · 27 baseTimestamp int64 · 35 maxTimestamp int64 · 43 producerId int64
 *   51 producerEpoch int16 · 53 baseSequence int32 · 57 recordCount int32 · 61 records
 * Attributes: bits 0–2 codec, bit 3 LogAppendTime, bit 4 transactional, bit 5 control.
 * Record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
 *   key (varint len, −1 = null), value (same), headers (varint count; key string, value bytes|null).
 * When compressed, everything after recordCount is one compressed blob of all records.
 */
import { Buffer } from 'node:buffer';
import { Codec, compress, crc32c, decompress } from '@runnel/native';
import { Reader, Writer } from './codec.ts';
import { ProtocolError } from './errors.ts';

export { Codec };

export const BATCH_HEADER_SIZE = 61;
/** baseOffset + batchLength: the part of the header not counted in batchLength. */
export const BATCH_LOG_OVERHEAD = 12;

export const BatchAttr = { CodecMask: 0x07, LogAppendTime: 0x08, Transactional: 0x10, Control: 0x20, DeleteHorizon: 0x40 } as const;

export type Bytesish = Uint8Array | string | null;

export interface RecordHeader { key: string; value: Bytesish }

export interface RecordInput {
  key?: Bytesish;
  value: Bytesish;
  headers?: RecordHeader[] | Record<string, Bytesish>;
  /** Milliseconds since the epoch; defaults to `options.timestamp` or now. */
  timestamp?: bigint | number;
}

export interface EncodeBatchOptions {
  records: RecordInput[];
  codec?: Codec;
  compressionLevel?: number;
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
  control?: boolean;
  logAppendTime?: boolean;
  /** Default timestamp for records without one (defaults to Date.now()). */
  timestamp?: bigint | number;
}

export interface DecodedRecord {
  offset: bigint;
  timestamp: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: { key: string; value: Buffer | null }[];
}

export interface DecodedBatch {
  baseOffset: bigint;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  codec: Codec;
  logAppendTime: boolean;
  transactional: boolean;
  control: boolean;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
  records: DecodedRecord[];
}

export interface DecodeBatchesOptions {
  /** Verify each batch's CRC-32C (default true). */
  verifyCrc?: boolean;
  /** Skip decoding records (header fields only). */
  headersOnly?: boolean;
  /** Upper bound for one batch's decompressed records (default 64 MiB). */
  maxUncompressedBytes?: number;
}

function toBytes(v: Bytesish | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.length);
}

function headerList(h: RecordInput['headers']): RecordHeader[] {
  if (!h) return [];
  if (Array.isArray(h)) return h;
  return Object.entries(h).map(([key, value]) => ({ key, value }));
}

function varintSize(v: number): number {
  let u = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (u >= 0x80) { u = Math.floor(u / 128); n++; }
  return n;
}

function varlongSize(v: bigint): number {
  if (v > -0x40000000n && v < 0x40000000n) return varintSize(Number(v));
  let u = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  let n = 1;
  while (u >= 0x80n) { u >>= 7n; n++; }
  return n;
}

function bytesSize(b: Buffer | null): number {
  return b === null ? 1 : varintSize(b.length) + b.length;
}

function writeNullableVarBytes(w: Writer, b: Buffer | null): void {
  if (b === null) { w.varint(-1); return; }
  w.varint(b.length);
  w.bytes(b);
}

/** Encodes one record batch (magic 2) with a correct CRC-32C. */
export function encodeRecordBatch(options: EncodeBatchOptions): Buffer {
  const { records } = options;
  if (records.length === 0) throw new ProtocolError('ENCODE', 'a record batch needs at least one record');
  const codec = options.codec ?? Codec.None;
  const now = BigInt(options.timestamp ?? Date.now());
  const stamps = records.map((r) => (r.timestamp === undefined ? now : BigInt(r.timestamp)));
  const baseTimestamp = stamps[0]!;
  let maxTimestamp = baseTimestamp;
  for (const t of stamps) if (t > maxTimestamp) maxTimestamp = t;

  const body = new Writer(4096);
  records.forEach((r, i) => {
    const key = toBytes(r.key);
    const value = toBytes(r.value);
    const hs = headerList(r.headers).map((h) => ({ key: Buffer.from(h.key, 'utf8'), value: toBytes(h.value) }));
    const delta = stamps[i]! - baseTimestamp;
    // The record's length prefix comes first, so its size is computed rather than buffered.
    let size = 1 + varlongSize(delta) + varintSize(i) + bytesSize(key) + bytesSize(value) + varintSize(hs.length);
    for (const h of hs) size += varintSize(h.key.length) + h.key.length + bytesSize(h.value);
    body.varint(size);
    body.int8(0);
    body.varlong(delta);
    body.varint(i);
    writeNullableVarBytes(body, key);
    writeNullableVarBytes(body, value);
    body.varint(hs.length);
    for (const h of hs) {
      body.varint(h.key.length);
      body.bytes(h.key);
      writeNullableVarBytes(body, h.value);
    }
  });
  let payload = body.finish();
  if (codec !== Codec.None) payload = compress(codec, payload, options.compressionLevel);

  let attributes = codec & BatchAttr.CodecMask;
  if (options.logAppendTime) attributes |= BatchAttr.LogAppendTime;
  if (options.transactional) attributes |= BatchAttr.Transactional;
  if (options.control) attributes |= BatchAttr.Control;

  const out = Buffer.allocUnsafe(BATCH_HEADER_SIZE + payload.length);
  out.writeBigInt64BE(options.baseOffset ?? 0n, 0);
  out.writeInt32BE(out.length - BATCH_LOG_OVERHEAD, 8);
  out.writeInt32BE(options.partitionLeaderEpoch ?? -1, 12);
  out.writeInt8(2, 16);
  out.writeInt16BE(attributes, 21);
  out.writeInt32BE(records.length - 1, 23);
  out.writeBigInt64BE(baseTimestamp, 27);
  out.writeBigInt64BE(maxTimestamp, 35);
  out.writeBigInt64BE(options.producerId ?? -1n, 43);
  out.writeInt16BE(options.producerEpoch ?? -1, 51);
  out.writeInt32BE(options.baseSequence ?? -1, 53);
  out.writeInt32BE(records.length, 57);
  payload.copy(out, BATCH_HEADER_SIZE);
  out.writeUInt32BE(crc32c(out.subarray(21)), 17);
  return out;
}

function readNullableVarBytes(r: Reader): Buffer | null {
  const len = r.varint();
  if (len === -1) return null;
  return r.slice(len);
}

function decodeRecords(batch: DecodedBatch, data: Buffer): DecodedRecord[] {
  const r = new Reader(data);
  r.checkCount(batch.recordCount, 7); // a record is at least 7 bytes
  const out: DecodedRecord[] = new Array(batch.recordCount);
  for (let i = 0; i < batch.recordCount; i++) {
    const len = r.varint();
    if (len < 0) throw new ProtocolError('INVALID', `negative record length ${len}`);
    r.need(len);
    const rr = new Reader(r.buf, r.pos, r.pos + len);
    r.pos += len;
    rr.int8();
    const timestamp = batch.baseTimestamp + rr.varlong();
    const offset = batch.baseOffset + BigInt(rr.varint());
    const key = readNullableVarBytes(rr);
    const value = readNullableVarBytes(rr);
    const hc = rr.varint();
    rr.checkCount(hc, 2);
    const headers = new Array(hc);
    for (let h = 0; h < hc; h++) {
      const kl = rr.varint();
      const hk = rr.utf8(kl);
      headers[h] = { key: hk, value: readNullableVarBytes(rr) };
    }
    out[i] = { offset, timestamp: batch.logAppendTime ? batch.maxTimestamp : timestamp, key, value, headers };
  }
  return out;
}

/**
 * Decodes consecutive record batches (a Produce partition's records or a Fetch response's record
 * set). A truncated last batch is dropped, as consumers do. Keys, values and header values are
 * subarrays of `buf` (or of the decompressed blob).
 */
export function decodeRecordBatches(buf: Buffer, opts: DecodeBatchesOptions = {}): DecodedBatch[] {
  const verifyCrc = opts.verifyCrc ?? true;
  const maxOut = opts.maxUncompressedBytes ?? 64 * 1024 * 1024;
  const batches: DecodedBatch[] = [];
  let pos = 0;
  while (buf.length - pos >= BATCH_LOG_OVERHEAD) {
    const batchLength = buf.readInt32BE(pos + 8);
    if (batchLength < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) throw new ProtocolError('INVALID', `batch length ${batchLength} at ${pos} is too small`);
    const end = pos + BATCH_LOG_OVERHEAD + batchLength;
    if (end > buf.length) break; // truncated last batch
    const magic = buf.readInt8(pos + 16);
    if (magic !== 2) throw new ProtocolError('INVALID', `unsupported record batch magic ${magic} at ${pos}`);
    const crc = buf.readUInt32BE(pos + 17);
    if (verifyCrc && crc32c(buf.subarray(pos + 21, end)) !== crc) throw new ProtocolError('INVALID', `record batch CRC mismatch at ${pos}`);
    const attributes = buf.readInt16BE(pos + 21);
    const batch: DecodedBatch = {
      baseOffset: buf.readBigInt64BE(pos),
      batchLength,
      partitionLeaderEpoch: buf.readInt32BE(pos + 12),
      magic,
      crc,
      attributes,
      codec: (attributes & BatchAttr.CodecMask) as Codec,
      logAppendTime: (attributes & BatchAttr.LogAppendTime) !== 0,
      transactional: (attributes & BatchAttr.Transactional) !== 0,
      control: (attributes & BatchAttr.Control) !== 0,
      lastOffsetDelta: buf.readInt32BE(pos + 23),
      baseTimestamp: buf.readBigInt64BE(pos + 27),
      maxTimestamp: buf.readBigInt64BE(pos + 35),
      producerId: buf.readBigInt64BE(pos + 43),
      producerEpoch: buf.readInt16BE(pos + 51),
      baseSequence: buf.readInt32BE(pos + 53),
      recordCount: buf.readInt32BE(pos + 57),
      records: [],
    };
    if (!opts.headersOnly) {
      let data = buf.subarray(pos + BATCH_HEADER_SIZE, end);
      if (batch.codec !== Codec.None) {
        try {
          data = decompress(batch.codec, data, maxOut);
        } catch (err) {
          throw new ProtocolError('INVALID', `record batch at ${pos} does not decompress (codec ${batch.codec})`, { cause: err });
        }
      }
      batch.records = decodeRecords(batch, data);
    }
    batches.push(batch);
    pos = end;
  }
  return batches;
}
