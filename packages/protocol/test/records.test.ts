// Record batch v2: golden Produce frames from kcat (librdkafka 2.0.2) and kafkajs 2.2.4, our own
// encoder through every codec, and the tolerance rules (truncated last batch, CRC check).
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Codec, decodeRecordBatches, decodeRequest, encodeRecordBatch, ApiKey, ProtocolError } from '../src/index.ts';

const golden = join(import.meta.dirname, '../../../test/fixtures/golden');
const manifest = JSON.parse(readFileSync(join(golden, 'manifest.json'), 'utf8')) as {
  fixtures: { file: string; codec: string; idempotent: boolean; apiVersion: number; topic: string; partition: number; records: { key: string | null; value: string | null; headers: [string, string][] }[] }[];
};
const codecs: Record<string, Codec> = { none: Codec.None, gzip: Codec.Gzip, snappy: Codec.Snappy, lz4: Codec.Lz4, zstd: Codec.Zstd };

describe('golden Produce frames from real clients', () => {
  for (const fx of manifest.fixtures) {
    it(fx.file, () => {
      const whole = readFileSync(join(golden, fx.file));
      expect(whole.readInt32BE(0)).toBe(whole.length - 4);
      const req = decodeRequest(whole.subarray(4));
      expect(req.header.apiKey).toBe(ApiKey.Produce);
      expect(req.header.apiVersion).toBe(fx.apiVersion);
      if (req.apiKey !== ApiKey.Produce) return;
      const topic = req.body.topicData[0]!;
      expect(topic.name).toBe(fx.topic);
      expect(topic.partitionData[0]!.index).toBe(fx.partition);
      const records = topic.partitionData[0]!.records!;
      // Zero copy: the records are a view into the frame.
      expect(records.buffer).toBe(whole.buffer);
      const batches = decodeRecordBatches(records);
      expect(batches).toHaveLength(1);
      const b = batches[0]!;
      expect(b.codec).toBe(codecs[fx.codec]);
      expect(b.producerId >= 0n).toBe(fx.idempotent);
      expect(b.recordCount).toBe(fx.records.length);
      expect(b.lastOffsetDelta).toBe(fx.records.length - 1);
      expect(b.records.map((r) => ({
        key: r.key?.toString() ?? null,
        value: r.value?.toString() ?? null,
        headers: r.headers.map((h) => [h.key, h.value?.toString() ?? null]),
      }))).toEqual(fx.records.map((r) => ({ key: r.key, value: r.value, headers: r.headers })));
      expect(b.records.map((r) => r.offset)).toEqual(fx.records.map((_, i) => BigInt(i)));
    });
  }
});

describe('encodeRecordBatch / decodeRecordBatches', () => {
  const record = fc.record({
    key: fc.option(fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b)), { nil: null }),
    value: fc.option(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), { nil: null }),
    headers: fc.array(fc.record({ key: fc.string({ maxLength: 8 }), value: fc.option(fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)), { nil: null }) }), { maxLength: 3 }),
    timestamp: fc.bigInt({ min: 0n, max: 2n ** 45n }),
  });

  it('round-trips records through every codec', () => {
    fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 20 }), fc.constantFrom(...Object.values(codecs)), fc.bigInt({ min: 0n, max: 2n ** 40n }), (records, codec, baseOffset) => {
      const batch = encodeRecordBatch({ records, codec, baseOffset, producerId: 9n, producerEpoch: 1, baseSequence: 4 });
      const [b, ...rest] = decodeRecordBatches(batch);
      expect(rest).toEqual([]);
      expect(b).toMatchObject({ baseOffset, codec, magic: 2, producerId: 9n, producerEpoch: 1, baseSequence: 4, recordCount: records.length, lastOffsetDelta: records.length - 1, batchLength: batch.length - 12 });
      const maxTs = records.reduce((m, r) => (r.timestamp > m ? r.timestamp : m), records[0]!.timestamp);
      expect(b!.maxTimestamp).toBe(maxTs);
      expect(b!.records).toEqual(records.map((r, i) => ({ offset: baseOffset + BigInt(i), timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers })));
    }), { numRuns: 60 });
  });

  it('drops a truncated last batch and keeps the complete ones', () => {
    const a = encodeRecordBatch({ records: [{ value: 'a' }], baseOffset: 0n });
    const b = encodeRecordBatch({ records: [{ value: 'b' }, { value: 'c' }], baseOffset: 1n });
    const both = Buffer.concat([a, b]);
    for (let cut = a.length; cut < both.length; cut++) {
      expect(decodeRecordBatches(both.subarray(0, cut)).map((x) => x.baseOffset)).toEqual([0n]);
    }
    expect(decodeRecordBatches(both).map((x) => x.records.map((r) => r.value!.toString()))).toEqual([['a'], ['b', 'c']]);
  });

  it('rejects a corrupted batch by CRC, unless asked not to verify', () => {
    const batch = encodeRecordBatch({ records: [{ key: 'k', value: 'value' }] });
    batch[batch.length - 2] ^= 0xff;
    expect(() => decodeRecordBatches(batch)).toThrow(ProtocolError);
    expect(decodeRecordBatches(batch, { verifyCrc: false })).toHaveLength(1);
  });

  it('rejects a record count beyond the batch without allocating', () => {
    const batch = encodeRecordBatch({ records: [{ value: 'x' }] });
    batch.writeInt32BE(0x7fffffff, 57);
    expect(() => decodeRecordBatches(batch, { verifyCrc: false })).toThrow(ProtocolError);
  });

  it('reports a corrupt compressed payload as ProtocolError', () => {
    const batch = encodeRecordBatch({ records: [{ value: 'x'.repeat(1000) }], codec: Codec.Gzip });
    batch.fill(0xaa, 61 + 10);
    expect(() => decodeRecordBatches(batch, { verifyCrc: false })).toThrow(ProtocolError);
  });
});
