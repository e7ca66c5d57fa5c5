/**
 * The one generic encoder and decoder over the schema tables (schema.ts).
 *
 * Classic versions: INT16-length strings, INT32-length bytes/records, INT32-count arrays, −1 = null.
 * Flexible versions (KIP-482): unsigned-varint `len+1` / `n+1` (0 = null) for strings, bytes,
 * records and arrays, and every struct ends with a tagged-field section
 * (`uvarint count`, then `uvarint tag, uvarint size, value` in ascending tag order; unknown tags are
 * skipped).
 *
 * Safety invariant of the decoder: every length or count is checked against the bytes left in the
 * frame BEFORE anything is allocated, so a hostile count of 2^31 throws `ProtocolError` instead of
 * allocating. Bytes and records are returned as subarrays of the frame (no copy): callers that keep
 * them beyond the frame's life must copy.
 */
import { Buffer } from 'node:buffer';
import { ProtocolError } from './errors.ts';
import { inVersions, type Field, type MessageSchema, type Prim } from './schema.ts';

// ------------------------------------------------------------------------------------------------
// Reader

export class Reader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number { return this.end - this.pos; }

  need(n: number): void {
    if (this.pos + n > this.end) throw new ProtocolError('TRUNCATED', `need ${n} bytes at ${this.pos}, frame ends at ${this.end}`);
  }

  int8(): number { this.need(1); return this.buf.readInt8(this.pos++); }
  uint8(): number { this.need(1); return this.buf[this.pos++]!; }
  int16(): number { this.need(2); const v = this.buf.readInt16BE(this.pos); this.pos += 2; return v; }
  uint16(): number { this.need(2); const v = this.buf.readUInt16BE(this.pos); this.pos += 2; return v; }
  int32(): number { this.need(4); const v = this.buf.readInt32BE(this.pos); this.pos += 4; return v; }
  uint32(): number { this.need(4); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v; }
  int64(): bigint { this.need(8); const v = this.buf.readBigInt64BE(this.pos); this.pos += 8; return v; }
  float64(): number { this.need(8); const v = this.buf.readDoubleBE(this.pos); this.pos += 8; return v; }
  bool(): boolean { return this.int8() !== 0; }

  /** Unsigned LEB128, at most 5 bytes (32 bits), as used by flexible versions. */
  uvarint(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.uint8();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) break;
        return result;
      }
    }
    throw new ProtocolError('INVALID', 'unsigned varint longer than 32 bits');
  }

  /** Zigzag varint (record format), at most 5 bytes. */
  varint(): number {
    const u = this.uvarint();
    return (u % 2 === 1) ? -((u + 1) / 2) : u / 2;
  }

  /** Zigzag varlong (record format), at most 10 bytes. */
  varlong(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.uint8();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return (result >> 1n) ^ -(result & 1n);
      shift += 7n;
    }
    throw new ProtocolError('INVALID', 'varlong longer than 10 bytes');
  }

  /** A subarray of the frame (no copy). */
  slice(n: number): Buffer {
    if (n < 0) throw new ProtocolError('INVALID', `negative length ${n}`);
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  utf8(n: number): string {
    if (n < 0) throw new ProtocolError('INVALID', `negative string length ${n}`);
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  uuid(): string {
    this.need(16);
    const h = this.buf.toString('hex', this.pos, this.pos + 16);
    this.pos += 16;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** Checks that `count` elements of at least `minSize` bytes each can still be in the frame. */
  checkCount(count: number, minSize: number): void {
    if (count < 0) throw new ProtocolError('INVALID', `negative count ${count}`);
    if (count * minSize > this.remaining) {
      throw new ProtocolError('INVALID', `count ${count} exceeds the ${this.remaining} bytes left in the frame`);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Writer

const CHUNK = 8192;
/** Byte arrays at least this long are referenced, not copied, until the final concat. */
const BIG = 512;

/**
 * Appends into chunks and keeps large byte arrays (record batches) as references, so that a
 * message is copied at most once (into the final frame), or not at all with `finishParts`.
 */
export class Writer {
  private parts: Buffer[] = [];
  private cur: Buffer;
  private pos = 0;
  private total = 0;
  private framed = false;

  constructor(initialSize = 256) {
    this.cur = Buffer.allocUnsafe(initialSize);
  }

  /** A writer whose output starts with a 4-byte size prefix, filled in by `finish`/`finishParts`. */
  static framed(): Writer {
    const w = new Writer();
    w.int32(0);
    w.framed = true;
    return w;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.cur.length) return;
    this.flush();
    this.cur = Buffer.allocUnsafe(Math.max(CHUNK, n));
  }

  private flush(): void {
    if (this.pos > 0) this.parts.push(this.cur.subarray(0, this.pos));
    this.cur = this.cur.subarray(this.pos);
    this.pos = 0;
  }

  get length(): number { return this.total; }

  int8(v: number): void { this.ensure(1); this.cur.writeInt8(v, this.pos); this.pos += 1; this.total += 1; }
  uint8(v: number): void { this.ensure(1); this.cur[this.pos++] = v; this.total += 1; }
  int16(v: number): void { this.ensure(2); this.cur.writeInt16BE(v, this.pos); this.pos += 2; this.total += 2; }
  uint16(v: number): void { this.ensure(2); this.cur.writeUInt16BE(v, this.pos); this.pos += 2; this.total += 2; }
  int32(v: number): void { this.ensure(4); this.cur.writeInt32BE(v, this.pos); this.pos += 4; this.total += 4; }
  uint32(v: number): void { this.ensure(4); this.cur.writeUInt32BE(v, this.pos); this.pos += 4; this.total += 4; }
  int64(v: bigint): void { this.ensure(8); this.cur.writeBigInt64BE(BigInt.asIntN(64, v), this.pos); this.pos += 8; this.total += 8; }
  float64(v: number): void { this.ensure(8); this.cur.writeDoubleBE(v, this.pos); this.pos += 8; this.total += 8; }
  bool(v: boolean): void { this.uint8(v ? 1 : 0); }

  uvarint(v: number): void {
    this.ensure(5);
    while (v >= 0x80) {
      this.cur[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
      this.total += 1;
    }
    this.cur[this.pos++] = v;
    this.total += 1;
  }

  varint(v: number): void { this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1); }

  varlong(v: bigint): void {
    // Most deltas are small: the number path avoids bigint arithmetic (same bytes for |v| < 2^30).
    if (v > -0x40000000n && v < 0x40000000n) { this.varint(Number(v)); return; }
    let u = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    this.ensure(10);
    while (u >= 0x80n) {
      this.cur[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
      this.total += 1;
    }
    this.cur[this.pos++] = Number(u);
    this.total += 1;
  }

  bytes(b: Uint8Array): void {
    if (b.length >= BIG) {
      this.flush();
      this.parts.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length));
    } else {
      this.ensure(b.length);
      this.cur.set(b, this.pos);
      this.pos += b.length;
    }
    this.total += b.length;
  }

  utf8(s: string, len: number): void {
    this.ensure(len);
    this.cur.write(s, this.pos, len, 'utf8');
    this.pos += len;
    this.total += len;
  }

  uuid(s: string): void {
    const hex = s.replace(/-/g, '');
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new ProtocolError('ENCODE', `invalid uuid ${s}`);
    this.ensure(16);
    this.cur.write(hex, this.pos, 16, 'hex');
    this.pos += 16;
    this.total += 16;
  }

  /** The written bytes as pieces, in order, without copying referenced byte arrays (for `writev`). */
  finishParts(): Buffer[] {
    this.flush();
    if (this.framed) this.parts[0]!.writeInt32BE(this.total - 4, 0);
    return this.parts;
  }

  /** The written bytes as one Buffer (the only copy, and none when everything fit in one chunk). */
  finish(): Buffer {
    const parts = this.finishParts();
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.total);
  }
}

// ------------------------------------------------------------------------------------------------
// Plans: a schema resolved for one version, so the hot loops do no version parsing.

interface PlanField {
  name: string;
  kind: Field['kind'];
  type: Prim | null;
  nullable: boolean;
  tag: number | null;
  defaultValue: unknown;
  sub: Plan | null;
}

export interface Plan {
  flexible: boolean;
  fields: PlanField[];
  /** Tagged fields by tag, ascending. */
  tagged: PlanField[];
  /** Smallest encoding of this struct in bytes (at least 1), to bound array counts before allocating. */
  minSize: number;
  /** Every field of the schema that is absent in this version, with its default (decode fills them in). */
  absent: { name: string; defaultValue: unknown; sub: Plan | null; kind: Field['kind'] }[];
}

function scalarDefault(type: Prim, nullable: boolean, declared: unknown): unknown {
  if (declared !== undefined) {
    if (declared === null) return null;
    if (type === 'int64') return BigInt(declared as number | bigint);
    return declared;
  }
  switch (type) {
    case 'int64': return 0n;
    case 'bool': return false;
    case 'string': return '';
    case 'uuid': return '00000000-0000-0000-0000-000000000000';
    case 'bytes': return nullable ? null : Buffer.alloc(0);
    case 'records': return null;
    default: return 0;
  }
}

function buildPlan(fields: readonly Field[], version: number, flexible: boolean): Plan {
  const plan: Plan = { flexible, fields: [], tagged: [], absent: [], minSize: 0 };
  for (const fd of fields) {
    const present = inVersions(fd.versions, version);
    const tagged = fd.tag !== undefined && flexible && inVersions(fd.taggedVersions ?? fd.versions, version);
    const nullable = inVersions(fd.nullable, version);
    const sub = fd.kind === 'structArray' || fd.kind === 'struct' ? buildPlan(fd.fields, version, flexible) : null;
    let defaultValue: unknown;
    if (fd.kind === 'scalar') defaultValue = scalarDefault(fd.type, nullable || fd.default === null, fd.default);
    else if (fd.kind === 'struct') defaultValue = fd.default === null ? null : undefined; // filled lazily
    else defaultValue = fd.default === null ? null : undefined; // arrays: [] (fresh per message)
    const pf: PlanField = { name: fd.name, kind: fd.kind, type: 'type' in fd ? fd.type : null, nullable, tag: tagged ? fd.tag! : null, defaultValue, sub };
    if (!present || (fd.tag !== undefined && !tagged)) plan.absent.push({ name: fd.name, defaultValue, sub, kind: fd.kind });
    else if (tagged) plan.tagged.push(pf);
    else plan.fields.push(pf);
  }
  plan.tagged.sort((a, b) => a.tag! - b.tag!);
  let size = flexible ? 1 : 0;
  for (const f of plan.fields) {
    if (f.kind === 'scalar') size += minSize(f.type, flexible);
    else if (f.kind === 'struct') size += f.sub!.minSize;
    else size += flexible ? 1 : 4;
  }
  plan.minSize = Math.max(1, size);
  return plan;
}

const planCache = new WeakMap<MessageSchema, Plan[]>();

export function planFor(schema: MessageSchema, version: number): Plan {
  let plans = planCache.get(schema);
  if (!plans) {
    plans = [];
    for (let v = schema.validVersions[0]; v <= schema.validVersions[1]; v++) {
      plans[v] = buildPlan(schema.fields, v, schema.flexibleFrom !== null && v >= schema.flexibleFrom);
    }
    planCache.set(schema, plans);
  }
  const plan = plans[version];
  if (!plan) throw new ProtocolError('UNSUPPORTED_VERSION', `${schema.name} v${version} is not supported (${schema.validVersions[0]}-${schema.validVersions[1]})`);
  return plan;
}

export function isFlexible(schema: MessageSchema, version: number): boolean {
  return schema.flexibleFrom !== null && version >= schema.flexibleFrom;
}

function defaultOf(f: { defaultValue: unknown; sub: Plan | null; kind: Field['kind'] }): unknown {
  if (f.kind === 'scalar') return f.defaultValue;
  if (f.defaultValue === null) return null;
  if (f.kind === 'struct') return defaultStruct(f.sub!);
  return [];
}

function defaultStruct(plan: Plan): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of plan.fields) o[f.name] = defaultOf(f);
  for (const f of plan.tagged) o[f.name] = defaultOf(f);
  for (const f of plan.absent) o[f.name] = defaultOf(f);
  return o;
}

// ------------------------------------------------------------------------------------------------
// Decoding

/** Minimum encoded size of one element, used to bound counts before allocating. */
function minSize(type: Prim | null, flexible: boolean): number {
  switch (type) {
    case 'int8': case 'bool': return 1;
    case 'int16': case 'uint16': return 2;
    case 'int32': return 4;
    case 'int64': case 'float64': return 8;
    case 'uuid': return 16;
    case 'string': return flexible ? 1 : 2;
    case 'bytes': case 'records': return flexible ? 1 : 4;
    default: return 1;
  }
}

function readScalar(r: Reader, type: Prim, nullable: boolean, flexible: boolean): unknown {
  switch (type) {
    case 'int8': return r.int8();
    case 'int16': return r.int16();
    case 'uint16': return r.uint16();
    case 'int32': return r.int32();
    case 'int64': return r.int64();
    case 'float64': return r.float64();
    case 'bool': return r.bool();
    case 'uuid': return r.uuid();
    case 'string': {
      const len = flexible ? r.uvarint() - 1 : r.int16();
      if (len < 0) {
        if (len === -1 && nullable) return null;
        throw new ProtocolError('INVALID', `null or negative string length ${len} in a non-nullable field`);
      }
      return r.utf8(len);
    }
    case 'bytes':
    case 'records': {
      const len = flexible ? r.uvarint() - 1 : r.int32();
      if (len < 0) {
        if (len === -1 && nullable) return null;
        throw new ProtocolError('INVALID', `null or negative bytes length ${len} in a non-nullable field`);
      }
      return r.slice(len);
    }
  }
}

function readCount(r: Reader, flexible: boolean): number {
  return flexible ? r.uvarint() - 1 : r.int32();
}

function readField(r: Reader, f: PlanField, flexible: boolean): unknown {
  switch (f.kind) {
    case 'scalar': return readScalar(r, f.type!, f.nullable, flexible);
    case 'struct': {
      // A nullable struct (ConsumerGroupHeartbeat's Assignment) is prefixed by int8 -1 (null) or 1.
      if (f.nullable && f.tag === null && r.int8() < 0) return null;
      return readStruct(r, f.sub!);
    }
    case 'scalarArray':
    case 'structArray': {
      const n = readCount(r, flexible);
      if (n < 0) {
        if (n === -1 && f.nullable) return null;
        throw new ProtocolError('INVALID', `null or negative array count ${n} for ${f.name}`);
      }
      r.checkCount(n, f.kind === 'structArray' ? f.sub!.minSize : minSize(f.type, flexible));
      const out = new Array(n);
      if (f.kind === 'scalarArray') for (let i = 0; i < n; i++) out[i] = readScalar(r, f.type!, false, flexible);
      else for (let i = 0; i < n; i++) out[i] = readStruct(r, f.sub!);
      return out;
    }
  }
}

export function readStruct(r: Reader, plan: Plan): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of plan.fields) o[f.name] = readField(r, f, plan.flexible);
  for (const f of plan.absent) o[f.name] = defaultOf(f);
  if (plan.flexible) {
    for (const f of plan.tagged) o[f.name] = defaultOf(f);
    readTaggedFields(r, plan, o);
  }
  return o;
}

function readTaggedFields(r: Reader, plan: Plan | null, o: Record<string, unknown> | null): void {
  const count = r.uvarint();
  r.checkCount(count, 2);
  let last = -1;
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint();
    if (tag <= last) throw new ProtocolError('INVALID', `tagged fields out of order (${tag} after ${last})`);
    last = tag;
    const size = r.uvarint();
    r.need(size);
    const f = plan?.tagged.find((t) => t.tag === tag);
    if (!f || !o) { r.pos += size; continue; } // unknown tags are skipped
    const sub = new Reader(r.buf, r.pos, r.pos + size);
    o[f.name] = readField(sub, f, true);
    r.pos += size;
  }
}

/** Skips a tagged-field section (request header v2, response header v1). */
export function skipTaggedFields(r: Reader): void {
  readTaggedFields(r, null, null);
}

// ------------------------------------------------------------------------------------------------
// Encoding

function encodeErr(name: string, msg: string): ProtocolError {
  return new ProtocolError('ENCODE', `${name}: ${msg}`);
}

function writeScalar(w: Writer, name: string, type: Prim, nullable: boolean, flexible: boolean, v: unknown): void {
  switch (type) {
    case 'int8': w.int8(num(name, v, -128, 127)); return;
    case 'int16': w.int16(num(name, v, -32768, 32767)); return;
    case 'uint16': w.uint16(num(name, v, 0, 65535)); return;
    case 'int32': w.int32(num(name, v, -2147483648, 2147483647)); return;
    case 'int64':
      if (typeof v === 'bigint') w.int64(v);
      else if (typeof v === 'number' && Number.isSafeInteger(v)) w.int64(BigInt(v));
      else throw encodeErr(name, `expected bigint, got ${typeof v}`);
      return;
    case 'float64': w.float64(v as number); return;
    case 'bool': w.bool(Boolean(v)); return;
    case 'uuid': w.uuid(v as string); return;
    case 'string': {
      if (v === null || v === undefined) {
        if (!nullable && v === null) throw encodeErr(name, 'null in a non-nullable string');
        if (v === null) { if (flexible) w.uvarint(0); else w.int16(-1); return; }
        v = '';
      }
      if (typeof v !== 'string') throw encodeErr(name, `expected string, got ${typeof v}`);
      const len = Buffer.byteLength(v, 'utf8');
      if (flexible) w.uvarint(len + 1);
      else { if (len > 32767) throw encodeErr(name, 'string longer than 32767 bytes'); w.int16(len); }
      w.utf8(v, len);
      return;
    }
    case 'bytes':
    case 'records': {
      if (v === null || v === undefined) {
        if (nullable || type === 'records') { if (flexible) w.uvarint(0); else w.int32(-1); return; }
        if (v === null) throw encodeErr(name, 'null in non-nullable bytes');
        v = Buffer.alloc(0);
      }
      if (!(v instanceof Uint8Array)) throw encodeErr(name, 'expected Buffer');
      if (flexible) w.uvarint(v.length + 1); else w.int32(v.length);
      w.bytes(v);
      return;
    }
  }
}

function num(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw encodeErr(name, `${String(v)} is not an integer in [${min}, ${max}]`);
  return v;
}

function writeField(w: Writer, f: PlanField, flexible: boolean, v: unknown): void {
  switch (f.kind) {
    case 'scalar':
      writeScalar(w, f.name, f.type!, f.nullable, flexible, v === undefined ? f.defaultValue : v);
      return;
    case 'struct':
      if (f.nullable && f.tag === null) {
        if (v === null || (v === undefined && f.defaultValue === null)) {
          w.int8(-1);
          return;
        }
        w.int8(1);
      }
      writeStruct(w, f.sub!, (v ?? {}) as Record<string, unknown>);
      return;
    case 'scalarArray':
    case 'structArray': {
      if (v === undefined) v = f.defaultValue === null ? null : [];
      if (v === null) {
        if (!f.nullable) throw encodeErr(f.name, 'null in a non-nullable array');
        if (flexible) w.uvarint(0); else w.int32(-1);
        return;
      }
      if (!Array.isArray(v)) throw encodeErr(f.name, 'expected an array');
      if (flexible) w.uvarint(v.length + 1); else w.int32(v.length);
      if (f.kind === 'scalarArray') for (const x of v) writeScalar(w, f.name, f.type!, false, flexible, x);
      else for (const x of v) writeStruct(w, f.sub!, x as Record<string, unknown>);
      return;
    }
  }
}

function isDefaultTagged(f: PlanField, v: unknown): boolean {
  if (v === undefined) return true;
  if (f.kind === 'scalar') return v === f.defaultValue || (typeof v === 'bigint' && typeof f.defaultValue === 'number' && v === BigInt(f.defaultValue));
  // Kafka writes a tagged struct only when it differs from a default one (the generated
  // `!replicaState.equals(new ReplicaState())`): Fetch v15+'s replicaState from a consumer is absent.
  if (f.kind === 'struct') return v === null || (f.defaultValue !== null && typeof v === 'object' && [...f.sub!.fields, ...f.sub!.tagged].every((g) => isDefaultTagged(g, (v as Record<string, unknown>)[g.name])));
  return v === null ? f.defaultValue === null : (Array.isArray(v) && v.length === 0 && f.defaultValue !== null);
}

export function writeStruct(w: Writer, plan: Plan, o: Record<string, unknown>): void {
  if (o === null || typeof o !== 'object') throw new ProtocolError('ENCODE', 'expected an object');
  for (const f of plan.fields) writeField(w, f, plan.flexible, o[f.name]);
  if (!plan.flexible) return;
  if (plan.tagged.length === 0) { w.uint8(0); return; }
  const present = plan.tagged.filter((f) => !isDefaultTagged(f, o[f.name]));
  w.uvarint(present.length);
  for (const f of present) {
    const sub = new Writer();
    writeField(sub, f, true, o[f.name]);
    w.uvarint(f.tag!);
    w.uvarint(sub.length);
    w.bytes(sub.finish());
  }
}

export function decodeMessage(schema: MessageSchema, version: number, r: Reader): Record<string, unknown> {
  return readStruct(r, planFor(schema, version));
}

export function encodeMessage(schema: MessageSchema, version: number, w: Writer, body: object): void {
  writeStruct(w, planFor(schema, version), body as Record<string, unknown>);
}
