// Golden bytes from real clients: every Produce request in test/fixtures/golden was written by
// kcat (librdkafka 2.0.2) or kafkajs 2.2.4 against a fake broker (test/fixtures/capture.ts). The
// native core must accept each batch as-is, report the codec the client chose, inflate it to the
// exact records that were sent, and reject the batch once any CRC-covered bit changes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Codec, crc32c, decompress, validateBatches, validateRecords } from '@runnel/native';
import { ApiKey, decodeRecordBatches, decodeRequest } from '@runnel/protocol';
import { BATCH, decodeRecords, parseProduceFrame } from './helpers/kafka-wire.ts';

interface Fixture {
  file: string;
  client: string;
  clientVersion: string;
  apiKey: number;
  apiVersion: number;
  codec: keyof typeof CODECS;
  idempotent: boolean;
  topic: string;
  partition: number;
  records: Array<{ key: string | null; value: string | null; headers: Array<[string, string]> }>;
}

const CODECS = { none: Codec.None, gzip: Codec.Gzip, snappy: Codec.Snappy, lz4: Codec.Lz4, zstd: Codec.Zstd } as const;
const dir = join(import.meta.dirname, 'fixtures', 'golden');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { fixtures: Fixture[] };
const MAX_INFLATE = 1 << 20;

/** The single batch of the single partition of a fixture's Produce request. */
function batchOf(f: Fixture): Buffer {
  const req = parseProduceFrame(readFileSync(join(dir, f.file)));
  expect(req.apiVersion).toBe(f.apiVersion);
  expect(req.topics.map((t) => t.name)).toEqual([f.topic]);
  const [partition] = req.topics[0].partitions;
  expect(partition.index).toBe(f.partition);
  if (partition.records === null) throw new Error(`${f.file}: null records`);
  return partition.records;
}

/** The uncompressed record bytes of a batch: the tail itself, or its inflation. */
function recordBytes(batch: Buffer, codec: number): Buffer {
  const tail = batch.subarray(BATCH.records);
  return codec === Codec.None ? tail : Buffer.from(decompress(codec as Codec, tail, MAX_INFLATE));
}

describe('golden Produce requests from real clients', () => {
  it('covers every codec from kcat and both kafkajs codecs, idempotent producers of both clients included', () => {
    const names = manifest.fixtures.map((f) => f.file).sort();
    expect(names).toEqual(['kafkajs-gzip.bin', 'kafkajs-none-idempotent.bin', 'kafkajs-none.bin',
      'kcat-gzip.bin', 'kcat-lz4.bin', 'kcat-none-idempotent.bin', 'kcat-none.bin', 'kcat-snappy.bin', 'kcat-zstd.bin']);
  });

  for (const f of manifest.fixtures) {
    describe(`${f.file} (${f.clientVersion}, produce v${f.apiVersion}, ${f.codec})`, () => {
      it('is one v2 batch that the native core validates, with the codec the client chose', () => {
        const batch = batchOf(f);
        const infos = validateBatches(batch);
        expect(infos).toHaveLength(1);
        const [info] = infos;
        expect(info.codec).toBe(CODECS[f.codec]);
        expect(batch.readInt8(BATCH.magic)).toBe(2);
        expect(batch.readInt16BE(BATCH.attributes) & 0x07).toBe(CODECS[f.codec]);
        expect(batch.readInt32BE(BATCH.recordsCount)).toBe(f.records.length);
        expect(info.lastOffsetDelta).toBe(f.records.length - 1);
        // The stored CRC is CRC-32C over [attributes, end): checked with the native crc32c too.
        expect(crc32c(batch.subarray(BATCH.attributes))).toBe(batch.readUInt32BE(BATCH.crc));
      });

      it('inflates to exactly the keys, values and headers that were sent', () => {
        const batch = batchOf(f);
        const bytes = recordBytes(batch, CODECS[f.codec]);
        const records = decodeRecords(bytes, f.records.length);
        expect(records.map((r) => ({ key: r.key, value: r.value, headers: r.headers }))).toEqual(f.records);
        expect(records.map((r) => r.offsetDelta)).toEqual(f.records.map((_, i) => i));
      });

      it('passes the native record-level validation', () => {
        const batch = batchOf(f);
        expect(() => validateRecords(batch, MAX_INFLATE)).not.toThrow();
      });

      it(f.idempotent ? 'carries a producer id and sequence 0' : 'carries no producer id', () => {
        const batch = batchOf(f);
        if (f.idempotent) {
          expect(batch.readBigInt64BE(BATCH.producerId)).toBeGreaterThanOrEqual(0n);
          expect(batch.readInt16BE(BATCH.producerEpoch)).toBe(0);
          expect(batch.readInt32BE(BATCH.baseSequence)).toBe(0);
        } else {
          expect(batch.readBigInt64BE(BATCH.producerId)).toBe(-1n);
          // Without a producer id, librdkafka writes epoch and sequence -1 (as Java does), but
          // kafkajs writes 0 and 0: a broker must ignore both when producerId is -1.
          const none = f.client === 'kafkajs' ? 0 : -1;
          expect(batch.readInt16BE(BATCH.producerEpoch)).toBe(none);
          expect(batch.readInt32BE(BATCH.baseSequence)).toBe(none);
        }
      });

      it('is rejected after a bit flip anywhere in the CRC-covered region', () => {
        const batch = batchOf(f);
        // Attributes, a header field, the records count and the last byte of the (maybe compressed) records.
        const positions = [BATCH.attributes + 1, BATCH.lastOffsetDelta + 3, BATCH.records - 1, batch.length - 1,
          BATCH.records + Math.floor((batch.length - BATCH.records) / 2)];
        for (const pos of positions) {
          const flipped = Buffer.from(batch);
          flipped[pos] ^= 0x10;
          expect(() => validateBatches(flipped), `bit flip at byte ${pos}`).toThrow(expect.objectContaining({ name: 'BatchError', code: 'CORRUPT_CRC' }));
        }
      });

      it('decodes with @runnel/protocol to the same request and records', () => {
        const frame = readFileSync(join(dir, f.file));
        const req = decodeRequest(frame.subarray(4));
        expect(req.header).toMatchObject({ apiKey: 0, apiVersion: f.apiVersion });
        if (req.header.apiKey !== ApiKey.Produce) throw new Error('not a Produce request');
        // The structural type is spelled out so this test does not depend on protocol's inferred types.
        const body = req.body as unknown as { acks: number; topicData: Array<{ name: string; partitionData: Array<{ index: number; records: Buffer | null }> }> };
        expect(body.acks).toBe(-1);
        expect(body.topicData.map((t) => t.name)).toEqual([f.topic]);
        expect(Buffer.compare(body.topicData[0].partitionData[0].records!, batchOf(f))).toBe(0);
        const [batch] = decodeRecordBatches(batchOf(f));
        expect(batch.codec).toBe(CODECS[f.codec]);
        const text = (b: Buffer | null) => (b === null ? null : b.toString('utf8'));
        expect(batch.records.map((r) => ({ key: text(r.key), value: text(r.value), headers: r.headers.map((h) => [h.key, text(h.value)]) }))).toEqual(f.records);
      });

      it('still validates after changes outside the CRC (baseOffset, partitionLeaderEpoch)', () => {
        const batch = Buffer.from(batchOf(f));
        batch.writeBigInt64BE(123456789n, 0);
        batch.writeInt32BE(7, 12);
        const [info] = validateBatches(batch);
        expect(info.baseOffset).toBe(123456789n);
        expect(info.partitionLeaderEpoch).toBe(7);
      });
    });
  }
});
