// The small tables and helpers: murmur2 vectors (docs/protocol.md, Partitioners), API and error names, the unsupported-version
// ApiVersions error reply, header peeking.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { Reader, Writer } from '../src/index.ts';
import { apiName, ApiKey, decodeResponse, encodeResponse, encodeResponseParts, encodeApiVersionsUnsupported, encodeRequest, ErrorCode, errorName, javaPartition, murmur2, peekRequestHeader, schemaVersions } from '../src/index.ts';

describe('murmur2 (Kafka vectors)', () => {
  const vectors: [string, number, number, number][] = [
    // key, int32 hash, Java partition n=3, n=10
    ['kafka', 0xd067cf64 | 0, 1, 0],
    ['giberish123456789', 0x8f552b0c | 0, 2, 0],
    ['1234', 0x9fc97b14 | 0, 0, 0],
    ['234', 0xe7c009ca | 0, 2, 6],
    ['4', 0x5a4b5ca1 | 0, 1, 3],
    ['PreAmbleWillBeRemoved,ThePrePartThatIs', 0x78424f1c | 0, 2, 8],
    ['', 0x106e08d9 | 0, 0, 1],
  ];
  for (const [key, hash, p3, p10] of vectors) {
    it(`"${key}"`, () => {
      const b = Buffer.from(key, 'utf8');
      expect(murmur2(b)).toBe(hash);
      expect(javaPartition(b, 3)).toBe(p3);
      expect(javaPartition(b, 10)).toBe(p10);
    });
  }
});

describe('tables', () => {
  it('names API keys and error codes as Kafka does', () => {
    expect(apiName(ApiKey.Produce)).toBe('Produce');
    expect(apiName(60)).toBe('DescribeCluster');
    expect(apiName(9999)).toBe('Unknown(9999)');
    expect(errorName(ErrorCode.NOT_LEADER_OR_FOLLOWER)).toBe('NOT_LEADER_OR_FOLLOWER');
    expect(errorName(-1)).toBe('UNKNOWN_SERVER_ERROR');
    expect(errorName(79)).toBe('MEMBER_ID_REQUIRED');
    for (let c = -1; c <= 90; c++) expect(errorName(c)).not.toMatch(/^UNKNOWN\(/);
    expect(new Set(Object.values(ErrorCode)).size).toBe(Object.keys(ErrorCode).length);
  });

  it('reports the version ranges of the schemas', () => {
    expect(schemaVersions(ApiKey.Produce)).toEqual([0, 11]);
    expect(schemaVersions(ApiKey.Fetch)).toEqual([4, 17]);
    expect(schemaVersions(ApiKey.ApiVersions)).toEqual([0, 4]);
    expect(schemaVersions(ApiKey.OffsetForLeaderEpoch)).toEqual([0, 4]);
    expect(schemaVersions(ApiKey.LeaderAndIsr)).toBeUndefined();
  });

  it('encodes the v0-format UNSUPPORTED_VERSION ApiVersions reply', () => {
    const b = encodeApiVersionsUnsupported(1234, [0, 3]);
    expect(b.toString('hex')).toBe('00000010' + '000004d2' + '0023' + '00000001' + '0012' + '0000' + '0003');
    expect(decodeResponse(ApiKey.ApiVersions, 0, b.subarray(4))).toEqual({ correlationId: 1234, body: { errorCode: 35, apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 3 }], throttleTimeMs: 0, supportedFeatures: [], finalizedFeaturesEpoch: -1n, finalizedFeatures: [], zkMigrationReady: false } });
  });

  it('peeks the header of any request without knowing its version', () => {
    const frame = encodeRequest({ apiKey: ApiKey.ApiVersions, apiVersion: 3, correlationId: 99, clientId: 'x' }, {}).subarray(4);
    expect(peekRequestHeader(frame)).toEqual({ apiKey: 18, apiVersion: 3, correlationId: 99 });
    const odd = Buffer.from([0x00, 0x12, 0x00, 0x09, 0x7f, 0xff, 0xff, 0xff]);
    expect(peekRequestHeader(odd.subarray(0))).toEqual({ apiKey: 18, apiVersion: 9, correlationId: 0x7fffffff });
    expect(() => peekRequestHeader(odd.subarray(0, 7))).toThrow();
  });

  it('encodeResponseParts references large record sets instead of copying them', () => {
    const records = Buffer.alloc(4096, 7);
    const body = { responses: [{ topic: 't', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 1n, records }] }] };
    const parts = encodeResponseParts(ApiKey.Fetch, 11, 5, body);
    expect(Buffer.concat(parts)).toEqual(encodeResponse(ApiKey.Fetch, 11, 5, body));
    expect(parts.some((p) => p === records)).toBe(true);
    expect(parts[0]!.readInt32BE(0)).toBe(parts.reduce((n, p) => n + p.length, 0) - 4);
  });

  it('zigzag varints and varlongs round-trip at their boundaries', () => {
    const longs = [0n, 1n, -1n, 63n, -64n, 64n, 2n ** 30n - 1n, 2n ** 30n, -(2n ** 30n), -(2n ** 30n) - 1n, 2n ** 31n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n)];
    const ints = [0, 1, -1, 63, -64, 2 ** 30, -(2 ** 30), 2 ** 31 - 1, -(2 ** 31)];
    const w = new Writer();
    for (const v of longs) w.varlong(v);
    for (const v of ints) w.varint(v);
    const r = new Reader(w.finish());
    expect(longs.map(() => r.varlong())).toEqual(longs);
    expect(ints.map(() => r.varint())).toEqual(ints);
    expect(r.remaining).toBe(0);
  });
});
