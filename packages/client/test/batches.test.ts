import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Codec, decodeRecordBatches, decodeRequest, encodeRecordBatch } from '@runnel/protocol';
import { BatchTemplates, crc32c, produceRequestPrefix, restampBatch, walkRecordSet } from '../src/index.ts';

const bytes = fc.option(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), { nil: null });
const record = fc.record({ key: bytes, value: bytes, headers: fc.array(fc.record({ key: fc.string({ maxLength: 5 }), value: bytes }), { maxLength: 2 }) });

describe('crc32c (JavaScript)', () => {
  it('matches the CRC-32C check value and the native CRC of encoded batches', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 20 }), (records) => {
      const b = encodeRecordBatch({ records });
      expect(crc32c(b, 21)).toBe(b.readUInt32BE(17));
    }), { numRuns: 50 });
  });
});

describe('walkRecordSet', () => {
  it('counts records and key+value bytes like a full decode, from any offset', () => {
    fc.assert(fc.property(
      fc.array(fc.array(record, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 5 }),
      fc.constantFrom(Codec.None, Codec.Lz4, Codec.Gzip),
      fc.nat(40),
      fc.nat(200),
      (batches, codec, from, cut) => {
        let base = 0n;
        const parts = batches.map((records) => {
          const b = encodeRecordBatch({ records, codec, baseOffset: base });
          base += BigInt(records.length);
          return b;
        });
        // A fetch may end in the middle of a batch: cut some bytes off the end.
        const whole = Buffer.concat(parts);
        const set = whole.subarray(0, Math.max(0, whole.length - cut));
        const decoded = decodeRecordBatches(set).flatMap((b) => b.records).filter((r) => r.offset >= BigInt(from));
        const s = walkRecordSet(set, BigInt(from));
        expect(s.records).toBe(decoded.length);
        expect(s.keyValueBytes).toBe(decoded.reduce((a, r) => a + (r.key?.length ?? 0) + (r.value?.length ?? 0), 0));
        const complete = decodeRecordBatches(set);
        expect(s.batches).toBe(complete.length);
        expect(s.nextOffset).toBe(complete.length ? complete.at(-1)!.baseOffset + BigInt(complete.at(-1)!.lastOffsetDelta) + 1n : -1n);
      },
    ), { numRuns: 60 });
  });
});

describe('restampBatch', () => {
  it('rewrites producer fields and timestamps with a valid CRC', () => {
    const b = encodeRecordBatch({ records: [{ value: 'a', timestamp: 1000 }, { value: 'b', timestamp: 1005 }], codec: Codec.Lz4 });
    restampBatch(b, { producerId: 42n, producerEpoch: 3, baseSequence: 7, timestamp: 5000n });
    const [d] = decodeRecordBatches(b);
    expect(d).toMatchObject({ producerId: 42n, producerEpoch: 3, baseSequence: 7, baseTimestamp: 5000n, maxTimestamp: 5005n });
    expect(d!.records.map((r) => [r.value!.toString(), r.timestamp])).toEqual([['a', 5000n], ['b', 5005n]]);
  });
});

describe('BatchTemplates', () => {
  it('fills batch.size with distinct A-Z payloads and refreshes timestamps', () => {
    const t = new BatchTemplates({ recordSize: 100, batchSize: 16384, codec: Codec.None });
    expect(t.perBatch).toBeGreaterThan(140);
    const full = t.get(t.perBatch, 10_000);
    expect(full.batch.length).toBeLessThanOrEqual(16384);
    expect(full.valueBytes).toBe(100 * t.perBatch);
    const [d] = decodeRecordBatches(full.batch);
    expect(d!.recordCount).toBe(t.perBatch);
    expect(d!.records.every((r) => /^[A-Z]{100}$/.test(r.value!.toString()))).toBe(true);
    expect(new Set(d!.records.map((r) => r.value!.toString())).size).toBe(t.perBatch);
    expect(t.get(t.perBatch, 10_500)).toBe(full); // reused within the refresh period
    const later = t.get(t.perBatch, 11_000);
    expect(later).not.toBe(full);
    expect(decodeRecordBatches(later.batch)[0]!.baseTimestamp).toBe(11_000n);
  });

  it('picks from a payload list', () => {
    const t = new BatchTemplates({ payloads: [Buffer.from('x'), Buffer.from('yy')] });
    const d = decodeRecordBatches(t.get(50).batch)[0]!;
    expect(new Set(d.records.map((r) => r.value!.toString()))).toEqual(new Set(['x', 'yy']));
  });
});

describe('produceRequestPrefix', () => {
  it('plus a batch is a Produce request that @runnel/protocol decodes, for v3 to v8', () => {
    const batch = encodeRecordBatch({ records: [{ value: 'v' }] });
    for (let version = 3; version <= 8; version++) {
      const prefix = produceRequestPrefix('perf-client', version, -1, 1234, 'tøpic', 7, batch.length);
      prefix.writeInt32BE(99, 8);
      const frame = Buffer.concat([prefix, batch]);
      expect(frame.readInt32BE(0)).toBe(frame.length - 4);
      const req = decodeRequest(frame.subarray(4));
      expect(req.header).toEqual({ apiKey: 0, apiVersion: version, correlationId: 99, clientId: 'perf-client' });
      if (req.apiKey !== 0) throw new Error('not produce');
      expect(req.body).toMatchObject({ transactionalId: null, acks: -1, timeoutMs: 1234 });
      expect(req.body.topicData).toEqual([{ name: 'tøpic', partitionData: [{ index: 7, records: batch }] }]);
    }
  });
});
