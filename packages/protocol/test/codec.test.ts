// Round-trip properties for every API, direction and version in the tables, plus hostile frames.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apis, decodeRequest, decodeResponse, encodeRequest, encodeResponse, ProtocolError, type RequestHeader } from '../src/index.ts';
import { planFor, type Plan } from '../src/codec.ts';
import type { ApiSchema, Prim } from '../src/schema.ts';

const scalar = (type: Prim, nullable: boolean): fc.Arbitrary<unknown> => {
  let a: fc.Arbitrary<unknown>;
  switch (type) {
    case 'int8': a = fc.integer({ min: -128, max: 127 }); break;
    case 'int16': a = fc.integer({ min: -32768, max: 32767 }); break;
    case 'uint16': a = fc.integer({ min: 0, max: 65535 }); break;
    case 'int32': a = fc.integer(); break;
    case 'int64': a = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }); break;
    case 'float64': a = fc.double({ noNaN: true }); break;
    case 'bool': a = fc.boolean(); break;
    case 'string': a = fc.string({ maxLength: 12, unit: 'grapheme' }); break;
    case 'uuid': a = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => {
      const h = Buffer.from(b).toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }); break;
    case 'bytes': case 'records': a = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)); break;
  }
  return nullable ? fc.option(a, { nil: null, freq: 4 }) : a;
};

function arbitraryOf(plan: Plan, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of [...plan.fields, ...plan.tagged]) {
    let a: fc.Arbitrary<unknown>;
    const maxLength = depth > 1 ? 2 : 3;
    if (f.kind === 'scalar') a = scalar(f.type!, f.nullable);
    else if (f.kind === 'scalarArray') a = fc.array(scalar(f.type!, false), { maxLength });
    else if (f.kind === 'structArray') a = fc.array(arbitraryOf(f.sub!, depth + 1), { maxLength });
    else a = arbitraryOf(f.sub!, depth + 1);
    if (f.nullable && f.kind !== 'scalar') a = fc.option(a, { nil: null, freq: 4 });
    fields[f.name] = a;
  }
  return fc.record(fields);
}

/** The decoded value restricted to the keys the generator produced (decode also fills absent fields). */
function project(decoded: unknown, like: unknown): unknown {
  if (Array.isArray(like)) return (decoded as unknown[]).map((d, i) => project(d, like[i]));
  if (like && typeof like === 'object' && !Buffer.isBuffer(like)) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(like)) o[k] = project((decoded as Record<string, unknown>)[k], (like as Record<string, unknown>)[k]);
    return o;
  }
  return decoded;
}

const all = Object.values(apis) as ApiSchema[];

describe('round trip: decode(encode(x)) = x and encode(decode(encode(x))) = encode(x)', () => {
  for (const a of all) {
    const [min, max] = a.request.validVersions;
    it(`${a.request.name.replace(/Request$/, '')} v${min}-${max}`, () => {
      for (let v = min; v <= max; v++) {
        const header: RequestHeader = { apiKey: a.apiKey, apiVersion: v, correlationId: 0, clientId: 'c' };
        fc.assert(fc.property(arbitraryOf(planFor(a.request, v)), fc.integer(), fc.option(fc.string({ maxLength: 8 }), { nil: null }), (body, correlationId, clientId) => {
          const frame = encodeRequest({ ...header, correlationId, clientId }, body);
          expect(frame.readInt32BE(0)).toBe(frame.length - 4);
          const d = decodeRequest(frame.subarray(4));
          expect(d.header).toEqual({ apiKey: a.apiKey, apiVersion: v, correlationId, clientId });
          expect(project(d.body, body)).toEqual(body);
          expect(encodeRequest({ ...header, correlationId, clientId }, d.body)).toEqual(frame);
        }), { numRuns: 25 });
        fc.assert(fc.property(arbitraryOf(planFor(a.response, v)), fc.integer(), (body, correlationId) => {
          const frame = encodeResponse(a.apiKey, v, correlationId, body);
          const d = decodeResponse(a.apiKey, v, frame.subarray(4));
          expect(d.correlationId).toBe(correlationId);
          expect(project(d.body, body)).toEqual(body);
          expect(encodeResponse(a.apiKey, v, correlationId, d.body as object)).toEqual(frame);
        }), { numRuns: 25 });
      }
    });
  }
});

describe('hostile frames', () => {
  it('every truncation of every request and response throws ProtocolError (TRUNCATED or INVALID)', () => {
    for (const a of all) {
      for (let v = a.request.validVersions[0]; v <= a.request.validVersions[1]; v++) {
        const [req] = fc.sample(arbitraryOf(planFor(a.request, v)), { numRuns: 1, seed: v });
        const frame = encodeRequest({ apiKey: a.apiKey, apiVersion: v, correlationId: 1, clientId: 'x' }, req!).subarray(4);
        for (let cut = 0; cut < frame.length; cut++) {
          expect(() => decodeRequest(frame.subarray(0, cut)), `${a.request.name} v${v} cut at ${cut}`).toThrow(ProtocolError);
        }
        const [res] = fc.sample(arbitraryOf(planFor(a.response, v)), { numRuns: 1, seed: v });
        const rframe = encodeResponse(a.apiKey, v, 1, res!).subarray(4);
        for (let cut = 0; cut < rframe.length; cut++) {
          expect(() => decodeResponse(a.apiKey, v, rframe.subarray(0, cut))).toThrow(ProtocolError);
        }
      }
    }
  });

  const header = (apiKey: number, apiVersion: number) => {
    const b = Buffer.alloc(10);
    b.writeInt16BE(apiKey, 0); b.writeInt16BE(apiVersion, 2); b.writeInt32BE(9, 4); b.writeInt16BE(-1, 8);
    return b;
  };
  const code = (fn: () => unknown) => { try { fn(); } catch (e) { return (e as ProtocolError).code; } return 'NO ERROR'; };

  it('a classic array count of 2^31-1 throws before allocating', () => {
    // Metadata v1: topics = [string] nullable; count 0x7fffffff with 4 bytes behind it.
    const frame = Buffer.concat([header(3, 1), Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0])]);
    const before = process.memoryUsage().arrayBuffers;
    expect(code(() => decodeRequest(frame))).toBe('INVALID');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
  });

  it('a compact array count near 2^32 throws before allocating', () => {
    // Metadata v9 (flexible): header tag section, then topics as a compact array of 0xfffffffe elements.
    const frame = Buffer.concat([header(3, 9), Buffer.from([0x00, 0xff, 0xff, 0xff, 0xff, 0x0f])]);
    expect(code(() => decodeRequest(frame))).toBe('INVALID');
  });

  it('huge string and bytes lengths throw', () => {
    // FindCoordinator v0: key string of length 32767 with 2 bytes behind it.
    expect(code(() => decodeRequest(Buffer.concat([header(10, 0), Buffer.from([0x7f, 0xff, 0x41, 0x41])])))).toBe('TRUNCATED');
    // SaslAuthenticate v0: bytes of length 2^31-1.
    expect(code(() => decodeRequest(Buffer.concat([header(36, 0), Buffer.from([0x7f, 0xff, 0xff, 0xff, 1])])))).toBe('TRUNCATED');
    // A non-nullable string with length -1 and an over-long varint.
    expect(code(() => decodeRequest(Buffer.concat([header(10, 0), Buffer.from([0xff, 0xff])])))).toBe('INVALID');
    expect(code(() => decodeRequest(Buffer.concat([header(60, 0), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80])])))).toBe('INVALID');
  });

  it('unknown api keys and versions are rejected with their own codes', () => {
    expect(code(() => decodeRequest(header(999, 0)))).toBe('UNKNOWN_API');
    expect(code(() => decodeRequest(header(0, 42)))).toBe('UNSUPPORTED_VERSION');
    expect(code(() => decodeRequest(Buffer.alloc(3)))).toBe('TRUNCATED');
  });

  it('unknown tagged fields are skipped, known ones decoded', () => {
    // ApiVersions v3 response: error 0, api_keys [] (compact: 1), throttle 0, tags: {7: 3 bytes}, {3 (zkMigrationReady): true}.
    const frame = Buffer.from([0, 0, 0, 5, /* correlation id */ 0, 0, 0x01, /* compact array, 0 elements */ 0, 0, 0, 0, /* throttle */
      2, /* two tags */ 3, 1, 1, /* tag 3 size 1 = true */ 7, 3, 9, 9, 9]);
    const d = decodeResponse(18, 3, frame);
    expect(d.correlationId).toBe(5);
    expect(d.body).toMatchObject({ errorCode: 0, apiKeys: [], throttleTimeMs: 0, zkMigrationReady: true, finalizedFeaturesEpoch: -1n });
  });
});
