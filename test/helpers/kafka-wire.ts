/**
 * A tiny, independent reader for the two things the golden tests need: a Produce request frame
 * (v3–7, non-flexible; Kafka's ProduceRequest schema) down to each partition's records bytes, and the records of
 * a v2 batch (docs/protocol.md, Record batch v2). It is deliberately separate from @runnel/protocol so that the
 * fixtures check that package rather than share its bugs.
 */

export interface ProducePartition { index: number; records: Buffer | null }
export interface ProduceTopic { name: string; partitions: ProducePartition[] }
export interface ProduceFrame {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  transactionalId: string | null;
  acks: number;
  timeoutMs: number;
  topics: ProduceTopic[];
}

/** A decoded record: text fields are UTF-8 decoded, null stays null. */
export interface DecodedRecord {
  offsetDelta: number;
  timestampDelta: bigint;
  key: string | null;
  value: string | null;
  headers: Array<[string, string | null]>;
}

class Cursor {
  pos: number;
  readonly buf: Buffer;
  constructor(buf: Buffer, pos = 0) {
    this.buf = buf;
    this.pos = pos;
  }
  need(n: number) {
    if (this.pos + n > this.buf.length) throw new RangeError(`read of ${n} bytes at ${this.pos} runs past ${this.buf.length}`);
  }
  int8() { this.need(1); return this.buf.readInt8(this.pos++); }
  int16() { this.need(2); const v = this.buf.readInt16BE(this.pos); this.pos += 2; return v; }
  int32() { this.need(4); const v = this.buf.readInt32BE(this.pos); this.pos += 4; return v; }
  take(n: number) { this.need(n); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
  string(): string | null {
    const n = this.int16();
    return n < 0 ? null : this.take(n).toString('utf8');
  }
  /** Zigzag varlong (protobuf style), as used inside records. */
  varlong(): bigint {
    let raw = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.int8() & 0xff;
      raw |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return (raw >> 1n) ^ -(raw & 1n);
      shift += 7n;
    }
    throw new RangeError('varlong longer than 10 bytes');
  }
  varint(): number {
    const v = this.varlong();
    if (v < -(2n ** 31n) || v >= 2n ** 31n) throw new RangeError(`varint ${v} out of int32 range`);
    return Number(v);
  }
  varBytes(): Buffer | null {
    const n = this.varint();
    return n < 0 ? null : this.take(n);
  }
}

/** Parses a whole Produce request frame, 4-byte size prefix included (the fixtures' format). */
export function parseProduceFrame(frame: Buffer): ProduceFrame {
  const c = new Cursor(frame);
  const size = c.int32();
  if (size !== frame.length - 4) throw new RangeError(`frame size ${size} but ${frame.length - 4} bytes follow`);
  const apiKey = c.int16();
  const apiVersion = c.int16();
  if (apiKey !== 0 || apiVersion < 3 || apiVersion > 7) throw new RangeError(`not a Produce v3-7 request: key ${apiKey} v${apiVersion}`);
  const correlationId = c.int32();
  const clientId = c.string();
  const transactionalId = c.string();
  const acks = c.int16();
  const timeoutMs = c.int32();
  const topics: ProduceTopic[] = [];
  for (let t = c.int32(); t > 0; t--) {
    const name = c.string() ?? '';
    const partitions: ProducePartition[] = [];
    for (let p = c.int32(); p > 0; p--) {
      const index = c.int32();
      const n = c.int32();
      partitions.push({ index, records: n < 0 ? null : Buffer.from(c.take(n)) });
    }
    topics.push({ name, partitions });
  }
  if (c.pos !== frame.length) throw new RangeError(`${frame.length - c.pos} trailing bytes after the Produce body`);
  return { apiKey, apiVersion, correlationId, clientId, transactionalId, acks, timeoutMs, topics };
}

/** Decodes `count` records from uncompressed record bytes (what follows recordsCount, or its inflation). */
export function decodeRecords(bytes: Buffer, count: number): DecodedRecord[] {
  const c = new Cursor(bytes);
  const out: DecodedRecord[] = [];
  const text = (b: Buffer | null) => (b === null ? null : b.toString('utf8'));
  for (let i = 0; i < count; i++) {
    const length = c.varint();
    const end = c.pos + length;
    c.int8(); // attributes, unused
    const timestampDelta = c.varlong();
    const offsetDelta = c.varint();
    const key = text(c.varBytes());
    const value = text(c.varBytes());
    const headers: Array<[string, string | null]> = [];
    for (let h = c.varint(); h > 0; h--) {
      const hk = c.varBytes();
      if (hk === null) throw new RangeError('null header key');
      headers.push([hk.toString('utf8'), text(c.varBytes())]);
    }
    if (c.pos !== end) throw new RangeError(`record ${i}: length says ${length} but fields took ${c.pos - (end - length)}`);
    out.push({ offsetDelta, timestampDelta, key, value, headers });
  }
  if (c.pos !== bytes.length) throw new RangeError(`${bytes.length - c.pos} trailing bytes after ${count} records`);
  return out;
}

/** Fixed v2 batch header offsets (docs/protocol.md, Record batch v2). */
export const BATCH = { length: 8, magic: 16, crc: 17, attributes: 21, lastOffsetDelta: 23, producerId: 43, producerEpoch: 51, baseSequence: 53, recordsCount: 57, records: 61 } as const;
