/**
 * The schema language: each Kafka message is a table of fields, written once as data and read by
 * the one generic encoder and decoder in codec.ts (the same idea as Kafka's message generator, but
 * interpreted instead of generated).
 *
 * Field names are the camelCase forms of Kafka's JSON schema names (`TopicData` → `topicData`).
 * Version ranges are strings as in Kafka's schemas: `'0+'`, `'3-7'`, `'5'`, `'none'`.
 *
 * The TypeScript types of messages are derived from the declarations (`as const` via const type
 * parameters), so a schema change is a type change.
 */
import type { Buffer } from 'node:buffer';

export type Prim = 'int8' | 'int16' | 'int32' | 'int64' | 'uint16' | 'float64' | 'bool' | 'string' | 'bytes' | 'records' | 'uuid';

export interface FieldOpts {
  /** Versions in which the value may be null (`'0+'`, ...). */
  readonly nullable?: string;
  /** Tag number; the field is then a tagged field in `taggedVersions` (defaults to `versions`). */
  readonly tag?: number;
  readonly taggedVersions?: string;
  /** Value used when the field is absent from a version (decode) or missing from the object (encode). */
  readonly default?: number | bigint | boolean | string | null;
}

export interface ScalarField extends FieldOpts { readonly kind: 'scalar'; readonly name: string; readonly type: Prim; readonly versions: string }
export interface ScalarArrayField extends FieldOpts { readonly kind: 'scalarArray'; readonly name: string; readonly type: Prim; readonly versions: string }
export interface StructArrayField extends FieldOpts { readonly kind: 'structArray'; readonly name: string; readonly fields: readonly Field[]; readonly versions: string }
export interface StructField extends FieldOpts { readonly kind: 'struct'; readonly name: string; readonly fields: readonly Field[]; readonly versions: string }
export type Field = ScalarField | ScalarArrayField | StructArrayField | StructField;

export interface MessageSchema<Fs extends readonly Field[] = readonly Field[]> {
  readonly name: string;
  /** Inclusive range of versions this table describes. */
  readonly validVersions: readonly [number, number];
  /** First flexible (KIP-482) version, or `null` when no version in the range is flexible. */
  readonly flexibleFrom: number | null;
  readonly fields: Fs;
}

export interface ApiSchema<Req extends MessageSchema = MessageSchema, Res extends MessageSchema = MessageSchema> {
  readonly apiKey: number;
  readonly request: Req;
  readonly response: Res;
}

// ---- declaration helpers (const type parameters keep literal names and versions) ----

/** A scalar field: `f('acks', 'int16', '0+')`. */
export function f<const N extends string, const T extends Prim, const V extends string, const O extends FieldOpts = {}>(
  name: N, type: T, versions: V, opts?: O,
): { kind: 'scalar'; name: N; type: T; versions: V } & O {
  return { kind: 'scalar', name, type, versions, ...(opts as O) };
}

/** An array of scalars: `arr('replicaNodes', 'int32', '0+')`. */
export function arr<const N extends string, const T extends Prim, const V extends string, const O extends FieldOpts = {}>(
  name: N, type: T, versions: V, opts?: O,
): { kind: 'scalarArray'; name: N; type: T; versions: V } & O {
  return { kind: 'scalarArray', name, type, versions, ...(opts as O) };
}

/** An array of structs: `structs('topics', '0+', [ ...fields ])`. */
export function structs<const N extends string, const V extends string, const Fs extends readonly Field[], const O extends FieldOpts = {}>(
  name: N, versions: V, fields: Fs, opts?: O,
): { kind: 'structArray'; name: N; versions: V; fields: Fs } & O {
  return { kind: 'structArray', name, versions, fields, ...(opts as O) };
}

/** A single nested struct (used by tagged fields such as Fetch's CurrentLeader). */
export function struct<const N extends string, const V extends string, const Fs extends readonly Field[], const O extends FieldOpts = {}>(
  name: N, versions: V, fields: Fs, opts?: O,
): { kind: 'struct'; name: N; versions: V; fields: Fs } & O {
  return { kind: 'struct', name, versions, fields, ...(opts as O) };
}

export function message<const Fs extends readonly Field[]>(
  name: string, validVersions: readonly [number, number], flexibleFrom: number | null, fields: Fs,
): MessageSchema<Fs> {
  return { name, validVersions, flexibleFrom, fields };
}

export function api<const K extends number, Req extends MessageSchema, Res extends MessageSchema>(
  apiKey: K, request: Req, response: Res,
): { apiKey: K; request: Req; response: Res } {
  return { apiKey, request, response };
}

// ---- type-level mapping from declarations to message types ----

type PrimValue<T> = T extends 'int64' ? bigint
  : T extends 'bool' ? boolean
  : T extends 'string' | 'uuid' ? string
  : T extends 'bytes' | 'records' ? Buffer
  : number;

type Nullable<F, V> = F extends { nullable: string } ? V | null : V;

type DecodedValue<F> = F extends { kind: 'scalar'; type: infer T } ? Nullable<F, PrimValue<T>>
  : F extends { kind: 'scalarArray'; type: infer T } ? Nullable<F, PrimValue<T>[]>
  : F extends { kind: 'structArray'; fields: infer Fs extends readonly Field[] } ? Nullable<F, Decoded<Fs>[]>
  : F extends { kind: 'struct'; fields: infer Fs extends readonly Field[] } ? Nullable<F, Decoded<Fs>>
  : never;

/** A decoded message: every field is present (absent-in-this-version fields hold their default). */
export type Decoded<Fs extends readonly Field[]> = { -readonly [F in Fs[number] as F['name']]: DecodedValue<F> };

type EncodeValue<F> = F extends { kind: 'scalar'; type: infer T } ? Nullable<F, PrimValue<T>>
  : F extends { kind: 'scalarArray'; type: infer T } ? Nullable<F, readonly PrimValue<T>[]>
  : F extends { kind: 'structArray'; fields: infer Fs extends readonly Field[] } ? Nullable<F, readonly Encodable<Fs>[]>
  : F extends { kind: 'struct'; fields: infer Fs extends readonly Field[] } ? Nullable<F, Encodable<Fs>>
  : never;

/** Fields that exist in every version and have no declared default must be given when encoding. */
type Required<F> = F extends { versions: '0+' } ? (F extends { default: unknown } ? false : F extends { tag: number } ? false : true) : false;

/**
 * The input of the encoder: fields present since v0 without a default are required, the rest are
 * optional and fall back to their default (which is what Kafka's generated classes do).
 */
export type Encodable<Fs extends readonly Field[]> =
  & { -readonly [F in Fs[number] as Required<F> extends true ? F['name'] : never]: EncodeValue<F> }
  & { -readonly [F in Fs[number] as Required<F> extends true ? never : F['name']]?: EncodeValue<F> };

export type RequestOf<A extends ApiSchema> = Decoded<A['request']['fields']>;
export type ResponseOf<A extends ApiSchema> = Encodable<A['response']['fields']>;
export type DecodedResponseOf<A extends ApiSchema> = Decoded<A['response']['fields']>;
export type RequestInputOf<A extends ApiSchema> = Encodable<A['request']['fields']>;

/** Parses `'0+'`, `'3-7'`, `'5'`, `'none'` into an inclusive range (`null` for none). */
export function parseVersions(v: string): [number, number] | null {
  if (v === 'none') return null;
  if (v.endsWith('+')) return [Number(v.slice(0, -1)), 0x7fff];
  const dash = v.indexOf('-');
  if (dash >= 0) return [Number(v.slice(0, dash)), Number(v.slice(dash + 1))];
  return [Number(v), Number(v)];
}

export function inVersions(v: string | undefined, version: number): boolean {
  if (v === undefined) return false;
  const r = parseVersions(v);
  return r !== null && version >= r[0] && version <= r[1];
}
