/**
 * proto/rpc.proto, loaded with protobufjs (the only file in the repo that imports it), and the
 * mapping between its messages and the typed layer in methods.ts:
 *
 * | wire (proto3)                          | TypeScript                         |
 * |----------------------------------------|------------------------------------|
 * | int64, uint64, sint64, fixed64, sfixed64 | bigint                           |
 * | other numbers                          | number                             |
 * | bytes                                  | Buffer (a view of the frame, no copy) |
 * | `optional` scalar, message field       | `T \| null` (null = absent)        |
 * | repeated Int32List                     | number[][]                         |
 * | map<string, string>                    | Record<string, string>             |
 *
 * int64 values cross protobufjs as `{ low, high }` pairs: encoding hands it such a pair (its
 * writer accepts one without the `long` package) and decoding reads the pair back from the Long
 * protobufjs produces. Without the `long` package protobufjs would decode int64 as a JS number
 * (losing bits above 2^53), so in that case it gets Int64Pair below as its Long class.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import type { RpcMethod } from './methods.ts';

const PROTO_PATH = new URL('../proto/rpc.proto', import.meta.url);

type Type = protobuf.Type;
type Field = protobuf.Field;
type Wire = Record<string, unknown>;

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const UNSIGNED_LONG_TYPES = new Set(['uint64', 'fixed64']);
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * Encode and decode one message type to and from its typed (methods.ts) form. With `attachments`,
 * encoding moves the message's big `bytes` values there (ATTACH_MIN_BYTES) and decoding puts them back.
 */
export interface MessageCodec<T> {
  encode(value: T, attachments?: Buffer[]): Uint8Array;
  decode(bytes: Uint8Array, attachments?: readonly Buffer[]): T;
}

export interface MethodSchema {
  name: string;
  request: MessageCodec<unknown>;
  response: MessageCodec<unknown>;
}

export interface EnvelopeMsg {
  id: number;
  method: string;
  payload: Buffer;
  response: boolean;
  error: FailureMsg | null;
  /** The payload's big `bytes` values (MessageCodec `attachments`), views of the frame when read. */
  attachments: Buffer[];
}

export interface FailureMsg {
  code: string;
  message: string;
  retriable: boolean;
}

/**
 * The part of long.js's Long that protobufjs uses when it decodes (`new Long(low, high, unsigned)`),
 * resolves int64 defaults (`Long.fromNumber(0)`) and generates its toObject (`toNumber()`,
 * `toString()` of a default); installed only when `long` is missing.
 */
class Int64Pair {
  readonly low: number;
  readonly high: number;
  readonly unsigned: boolean;
  constructor(low: number, high: number, unsigned: boolean) {
    this.low = low | 0;
    this.high = high | 0;
    this.unsigned = unsigned;
  }
  static fromBits(low: number, high: number, unsigned: boolean): Int64Pair {
    return new Int64Pair(low, high, unsigned);
  }
  static fromNumber(n: number, unsigned: boolean): Int64Pair {
    const { low, high } = longToBits(BigInt(Math.trunc(n)));
    return new Int64Pair(low, high, unsigned);
  }
  toBigInt(): bigint {
    return bitsToLong(this, this.unsigned);
  }
  toNumber(): number {
    return Number(this.toBigInt());
  }
  toString(): string {
    return String(this.toBigInt());
  }
}

/** True when protobufjs runs without the `long` package and uses Int64Pair (for the tests). */
export const usesInt64Pair = !protobuf.util.Long;
if (usesInt64Pair) {
  protobuf.util.Long = Int64Pair as unknown as typeof protobuf.util.Long;
  protobuf.configure();
}

const root = protobuf.parse(readFileSync(PROTO_PATH, 'utf8'), { keepCase: false }).root;
root.resolveAll();

const LIST_TYPE = root.lookupType('runnel.rpc.Int32List');

/** Every method in the schema, by 'service.method' name. */
export const METHODS: ReadonlyMap<string, MethodSchema> = loadMethods();

const ENVELOPE = root.lookupType('runnel.rpc.Envelope');
export const envelopeCodec: MessageCodec<EnvelopeMsg> = codecFor(ENVELOPE);
const EMPTY = Buffer.alloc(0);
/** The keys (field number, length-delimited wire type) of the payload and of each attachment. */
const PAYLOAD_KEY = (ENVELOPE.fields.payload!.id << 3) | 2;
const ATTACHMENT_KEY = (ENVELOPE.fields.attachments!.id << 3) | 2;

/**
 * An envelope as the pieces of its encoding, to be written as one frame: the envelope without its
 * payload and attachments, then each of those as its field's key and length followed by the bytes
 * themselves. Protobuf readers take fields in any order, so the payload and the attachments (the
 * records) go to the socket as they are instead of being copied into an envelope-sized buffer:
 * every copy of that size is ArrayBuffer memory, and its churn is what drives V8's full
 * collections on a busy broker.
 */
export function encodeEnvelope(env: EnvelopeMsg): Uint8Array[] {
  const pieces: Uint8Array[] = [envelopeCodec.encode({ ...env, payload: EMPTY, attachments: [] })];
  const field = (key: number, bytes: Uint8Array): void => {
    pieces.push(protobuf.Writer.create().uint32(key).uint32(bytes.length).finish());
    if (bytes.length > 0) pieces.push(bytes);
  };
  if (env.payload.length > 0) field(PAYLOAD_KEY, env.payload);
  for (const a of env.attachments) field(ATTACHMENT_KEY, a);
  return pieces;
}

export function methodSchema(name: string): MethodSchema | undefined {
  return METHODS.get(name);
}

/** Kept as a typed alias so that callers see the method union, not `string`. */
export function methodNames(): RpcMethod[] {
  return [...METHODS.keys()] as RpcMethod[];
}

function loadMethods(): Map<string, MethodSchema> {
  const methods = new Map<string, MethodSchema>();
  const pkg = root.lookup('runnel.rpc') as protobuf.Namespace;
  for (const service of pkg.nestedArray) {
    if (!(service instanceof protobuf.Service)) continue;
    for (const method of service.methodsArray) {
      const name = `${lowerFirst(service.name)}.${lowerFirst(method.name)}`;
      methods.set(name, {
        name,
        request: codecFor(method.resolvedRequestType as Type),
        response: codecFor(method.resolvedResponseType as Type),
      });
    }
  }
  return methods;
}

function codecFor<T>(type: Type): MessageCodec<T> {
  return {
    encode: (value, attachments) => type.encode(toWire(type, value as Wire, attachments)).finish(),
    decode: (bytes, attachments) => {
      const taken = attachments ? { list: attachments, next: 0 } : undefined;
      const out = fromWire(type, type.decode(bytes) as unknown as Wire, taken) as T;
      if (taken && taken.next !== taken.list.length) throw new RangeError(`${taken.list.length - taken.next} attachment(s) of ${type.name} left over`);
      return out;
    },
  };
}

/**
 * Attachments: a singular (not repeated, not `optional`) `bytes` value of at least this many bytes
 * is encoded as an empty field that is present on the wire, and the value itself travels as the
 * envelope's next attachment, written to the socket as it is (encodeEnvelope). Such a field is
 * never present-and-empty otherwise (proto3 leaves an empty one off the wire, and so does toWire),
 * so the reader knows which fields to fill, in the order both sides walk the schema. Records
 * crossing the RPC (replica fetches, appends) are thus never copied into an encoded message:
 * fewer copies, and less of the ArrayBuffer churn that makes V8 run full collections.
 */
const ATTACH_MIN_BYTES = 1024;

function attachable(field: Field): boolean {
  return field.type === 'bytes' && !field.repeated && !field.map && !hasPresence(field);
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function toWire(type: Type, value: Wire, attachments?: Buffer[]): Wire {
  const out: Wire = {};
  for (const field of type.fieldsArray) {
    const v = value[field.name];
    if (v === null || v === undefined) continue;
    if (field.map) {
      const entries: Wire = {};
      for (const [k, x] of Object.entries(v as Wire)) entries[k] = elementToWire(field, x, attachments);
      out[field.name] = entries;
    } else if (field.repeated) {
      out[field.name] = (v as unknown[]).map((x) => elementToWire(field, x, attachments));
    } else if (attachments && attachable(field) && (v as Uint8Array).length >= ATTACH_MIN_BYTES) {
      attachments.push(asBuffer(v));
      out[field.name] = EMPTY;
    } else if (hasPresence(field) || !isDefault(v)) {
      out[field.name] = elementToWire(field, v, attachments);
    }
  }
  return out;
}

/** A message field or a proto3 `optional` scalar: absent and default are different things. */
function hasPresence(field: Field): boolean {
  return field.resolvedType instanceof protobuf.Type || field.partOf !== null;
}

/** proto3 leaves default scalars off the wire; so do we (protobufjs would write what it is given). */
function isDefault(v: unknown): boolean {
  return v === 0 || v === 0n || v === '' || v === false || (v instanceof Uint8Array && v.length === 0);
}

function elementToWire(field: Field, x: unknown, attachments?: Buffer[]): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) return t === LIST_TYPE ? { values: x } : toWire(t, x as Wire, attachments);
  if (LONG_TYPES.has(field.type)) return longToBits(x as bigint);
  return x;
}

/** The attachments of the message being decoded, and the next one to hand out. */
interface Taken {
  readonly list: readonly Buffer[];
  next: number;
}

function fromWire(type: Type, msg: Wire, taken?: Taken): Wire {
  const out: Wire = {};
  for (const field of type.fieldsArray) {
    const v = msg[field.name];
    if (field.map) {
      const entries: Wire = {};
      for (const [k, x] of Object.entries((v ?? {}) as Wire)) entries[k] = elementFromWire(field, x, taken);
      out[field.name] = entries;
    } else if (field.repeated) {
      out[field.name] = ((v ?? []) as unknown[]).map((x) => elementFromWire(field, x, taken));
    } else if (hasPresence(field)) {
      // Nullable: a message field or a proto3 `optional` scalar; present only as an own property.
      out[field.name] = Object.hasOwn(msg, field.name) && v !== null && v !== undefined ? elementFromWire(field, v, taken) : null;
    } else if (taken && attachable(field) && Object.hasOwn(msg, field.name) && (v as Uint8Array).length === 0) {
      const attached = taken.list[taken.next++];
      if (attached === undefined) throw new RangeError(`${type.name}.${field.name} stands for an attachment the envelope does not carry`);
      out[field.name] = attached;
    } else {
      out[field.name] = elementFromWire(field, v, taken);
    }
  }
  return out;
}

function elementFromWire(field: Field, x: unknown, taken?: Taken): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) {
    if (t === LIST_TYPE) return [...(((x as Wire).values ?? []) as number[])];
    return fromWire(t, x as Wire, taken);
  }
  if (LONG_TYPES.has(field.type)) return bitsToLong(x, UNSIGNED_LONG_TYPES.has(field.type));
  if (field.type === 'bytes') return asBuffer(x);
  return x;
}

/** A bigint as the `{ low, high }` pair protobufjs's writer takes for 64-bit fields. */
function longToBits(x: bigint | number): { low: number; high: number; unsigned: boolean } {
  const v = BigInt(x);
  if (v < INT64_MIN || v > UINT64_MAX) throw new RangeError(`${v} does not fit in 64 bits`);
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: false };
}

function bitsToLong(x: unknown, unsigned: boolean): bigint {
  if (typeof x === 'bigint') return x;
  if (typeof x === 'number' || typeof x === 'string') return BigInt(x);
  const { low, high } = x as { low: number; high: number };
  const u = (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
  return unsigned ? u : BigInt.asIntN(64, u);
}

function asBuffer(x: unknown): Buffer {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof Uint8Array) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  return Buffer.alloc(0);
}

/** Exported for the tests: the int64 conversion on its own. */
export const int64ForTest = { longToBits, bitsToLong };
