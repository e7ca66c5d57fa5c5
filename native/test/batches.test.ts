import { describe, expect, it } from 'vitest';
import {
  assignOffsets, BatchError, Codec, scanLog, validateAndAssign, validateBatches, validateRecords, type BatchErrorCode,
} from '../src/index.ts';
import { buildBatch, encodeRecords, fixCrc, simpleRecords, varint } from './batches.ts';

const CODECS = [Codec.None, Codec.Gzip, Codec.Snappy, Codec.Lz4, Codec.Zstd] as const;

function batchError(fn: () => unknown): BatchError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BatchError);
    return e as BatchError;
  }
  throw new Error('expected a BatchError');
}

describe('validateBatches', () => {
  it.each(CODECS)('reads the header of a codec %i batch', (codec) => {
    const b = buildBatch(simpleRecords(5), {
      codec, baseOffset: 42n, producerId: 7n, producerEpoch: 3, baseSequence: 11, partitionLeaderEpoch: 9,
      firstTimestamp: 1_700_000_000_123n, attributeBits: 0x10,
    });
    const [info] = validateBatches(b);
    expect(info).toEqual({
      position: 0, size: b.length, baseOffset: 42n, lastOffsetDelta: 4, recordCount: 5, partitionLeaderEpoch: 9,
      attributes: codec | 0x10, codec, timestampType: 0, isTransactional: true, isControl: false,
      firstTimestamp: 1_700_000_000_123n, maxTimestamp: 1_700_000_000_127n, producerId: 7n, producerEpoch: 3, baseSequence: 11,
    });
  });

  it('walks several batches back to back and reports their positions', () => {
    const a = buildBatch(simpleRecords(3));
    const b = buildBatch(simpleRecords(2), { codec: Codec.Lz4, attributeBits: 0x08 });
    const infos = validateBatches(Buffer.concat([a, b]));
    expect(infos.map((i) => [i.position, i.size, i.recordCount, i.timestampType])).toEqual([[0, a.length, 3, 0], [a.length, b.length, 2, 1]]);
  });

  it('rejects an empty payload, trailing bytes, and a bad second batch by index', () => {
    expect(batchError(() => validateBatches(Buffer.alloc(0))).code).toBe('EMPTY');
    const a = buildBatch(simpleRecords(3));
    const e = batchError(() => validateBatches(Buffer.concat([a, Buffer.alloc(5)])));
    expect([e.code, e.batchIndex, e.position]).toEqual(['TRUNCATED', 1, a.length]);
    const bad = Buffer.from(a);
    bad[16] = 1;
    const e2 = batchError(() => validateBatches(Buffer.concat([a, bad])));
    expect([e2.code, e2.batchIndex, e2.position]).toEqual(['BAD_MAGIC', 1, a.length]);
  });

  it('checks recordCount == lastOffsetDelta + 1 and attribute bits', () => {
    const recs = simpleRecords(3);
    expect(batchError(() => validateBatches(buildBatch(recs, { lastOffsetDelta: 5 }))).code).toBe('RECORD_COUNT_MISMATCH');
    expect(batchError(() => validateBatches(buildBatch(recs, { recordCount: 2 }))).code).toBe('RECORD_COUNT_MISMATCH');
    expect(batchError(() => validateBatches(buildBatch([], { lastOffsetDelta: -1 }))).code).toBe('RECORD_COUNT_MISMATCH');
    expect(batchError(() => validateBatches(buildBatch(recs, { recordCount: 1_000_000, lastOffsetDelta: 999_999 }))).code).toBe('RECORD_COUNT_MISMATCH');
    const codec5 = buildBatch(recs);
    codec5.writeInt16BE(5, 21);
    expect(batchError(() => validateBatches(fixCrc(codec5))).code).toBe('BAD_ATTRIBUTES');
    expect(batchError(() => validateBatches(buildBatch(recs, { attributeBits: 0x80 }))).code).toBe('BAD_ATTRIBUTES');
    expect(validateBatches(buildBatch(recs, { attributeBits: 0x40 }))[0].attributes).toBe(0x40);
  });

  it('truncation at every cut point gives TRUNCATED (or EMPTY at 0)', () => {
    const b = buildBatch(simpleRecords(4), { codec: Codec.Snappy });
    for (let cut = 0; cut < b.length; cut++) {
      const e = batchError(() => validateBatches(b.subarray(0, cut)));
      expect(e.code).toBe(cut === 0 ? 'EMPTY' : 'TRUNCATED');
      const s = scanLog(b.subarray(0, cut));
      expect(s).toEqual({ validBytes: 0, batches: [], stopReason: cut === 0 ? null : 'TRUNCATED' });
    }
  });

  it('every single-bit flip in the CRC-covered region (and the CRC itself) is caught', () => {
    const b = buildBatch(simpleRecords(3), { codec: Codec.Gzip });
    const allowed: BatchErrorCode[] = ['CORRUPT_CRC'];
    for (let byte = 17; byte < b.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const c = Buffer.from(b);
        c[byte] ^= 1 << bit;
        expect(allowed).toContain(batchError(() => validateBatches(c)).code);
      }
    }
  });

  it('corrupted lengths (negative, huge, smaller than the header) are BAD_LENGTH or TRUNCATED', () => {
    const b = buildBatch(simpleRecords(3));
    for (const [len, code] of [[-1, 'BAD_LENGTH'], [-(2 ** 31), 'BAD_LENGTH'], [0, 'BAD_LENGTH'], [48, 'BAD_LENGTH'], [2 ** 31 - 1, 'TRUNCATED'], [b.length, 'TRUNCATED']] as const) {
      const c = Buffer.from(b);
      c.writeInt32BE(len, 8);
      expect(batchError(() => validateBatches(c)).code).toBe(code);
      expect(scanLog(c).stopReason).toBe(code);
      expect(batchError(() => assignOffsets(c, 0n, 0)).code).toBe(code);
    }
  });
});

describe('assignOffsets and validateAndAssign', () => {
  it('assigns consecutive base offsets and the leader epoch without breaking the CRC', () => {
    const payload = Buffer.concat([buildBatch(simpleRecords(3)), buildBatch(simpleRecords(1), { codec: Codec.Zstd }), buildBatch(simpleRecords(5))]);
    assignOffsets(payload, 1000n, 7);
    const infos = validateBatches(payload);
    expect(infos.map((i) => [i.baseOffset, i.partitionLeaderEpoch])).toEqual([[1000n, 7], [1003n, 7], [1004n, 7]]);
    const again = validateAndAssign(payload, 2n ** 40n, 8);
    expect(again.map((i) => i.baseOffset)).toEqual([2n ** 40n, 2n ** 40n + 3n, 2n ** 40n + 4n]);
    expect(payload.readBigInt64BE(again[2].position)).toBe(2n ** 40n + 4n);
    expect(payload.readInt32BE(again[1].position + 12)).toBe(8);
  });

  it('validateAndAssign modifies nothing when a later batch is invalid', () => {
    const bad = buildBatch(simpleRecords(2));
    bad[40] ^= 1;
    const payload = Buffer.concat([buildBatch(simpleRecords(3)), bad]);
    const before = Buffer.from(payload);
    expect(batchError(() => validateAndAssign(payload, 50n, 1)).code).toBe('CORRUPT_CRC');
    expect(payload.equals(before)).toBe(true);
  });

  it('works on a subarray view of a larger buffer', () => {
    const batch = buildBatch(simpleRecords(2));
    const outer = Buffer.concat([Buffer.alloc(10, 0xee), batch, Buffer.alloc(10, 0xee)]);
    const view = outer.subarray(10, 10 + batch.length);
    expect(validateAndAssign(view, 5n, 2)[0].baseOffset).toBe(5n);
    expect(outer.readBigInt64BE(10)).toBe(5n);
    expect(outer.subarray(0, 10).every((x) => x === 0xee) && outer.subarray(-10).every((x) => x === 0xee)).toBe(true);
  });
});

describe('scanLog', () => {
  const log = Buffer.concat([buildBatch(simpleRecords(3)), buildBatch(simpleRecords(2), { codec: Codec.Gzip }), buildBatch(simpleRecords(4))]);
  const sizes = validateBatches(log).map((i) => i.size);

  it('reads a whole log and stops cleanly at its end', () => {
    const s = scanLog(log);
    expect(s.validBytes).toBe(log.length);
    expect(s.stopReason).toBeNull();
    expect(s.batches).toHaveLength(3);
  });

  it('starts at a position and stops at a torn tail or a corrupted batch', () => {
    expect(scanLog(log, sizes[0]).batches.map((b) => b.position)).toEqual([sizes[0], sizes[0] + sizes[1]]);
    const torn = scanLog(log.subarray(0, log.length - 3));
    expect([torn.validBytes, torn.batches.length, torn.stopReason]).toEqual([sizes[0] + sizes[1], 2, 'TRUNCATED']);
    const corrupt = Buffer.from(log);
    corrupt[sizes[0] + 30] ^= 0x10;
    expect(scanLog(corrupt)).toMatchObject({ validBytes: sizes[0], stopReason: 'CORRUPT_CRC' });
    expect(scanLog(log, log.length)).toEqual({ validBytes: log.length, batches: [], stopReason: null });
  });

  it('accepts compacted batches (fewer records than the offset span, even none)', () => {
    const compacted = buildBatch(simpleRecords(2).map((r, i) => ({ ...r, offsetDelta: i * 3 })), { lastOffsetDelta: 5 });
    const empty = buildBatch([], { lastOffsetDelta: 3 });
    const s = scanLog(Buffer.concat([compacted, empty]));
    expect(s.stopReason).toBeNull();
    expect(s.batches.map((b) => [b.recordCount, b.lastOffsetDelta])).toEqual([[2, 5], [0, 3]]);
    expect(validateRecords(compacted, 1 << 20).recordCount).toBe(2);
    expect(batchError(() => validateBatches(compacted)).code).toBe('RECORD_COUNT_MISMATCH');
  });

  it('never throws on random garbage', () => {
    for (let i = 0; i < 200; i++) {
      const junk = Buffer.from(Array.from({ length: 100 + i }, (_, k) => (k * 7919 + i * 31) & 0xff));
      const s = scanLog(junk);
      expect(s.validBytes).toBe(0);
      expect(s.stopReason).not.toBeNull();
    }
  });
});

describe('validateRecords', () => {
  it.each(CODECS)('counts records and uncompressed bytes for codec %i', (codec) => {
    const recs = [
      ...simpleRecords(50, 300),
      { key: null, value: null },
      { value: Buffer.alloc(0), headers: [['h', null] as [string, Uint8Array | null]] },
    ];
    const r = validateRecords(buildBatch(recs, { codec }), 1 << 20);
    expect(r).toEqual({ recordCount: recs.length, uncompressedBytes: encodeRecords(recs).length });
  });

  it('bounds decompression by maxUncompressedBytes', () => {
    const b = buildBatch(simpleRecords(100, 1000), { codec: Codec.Zstd });
    expect(batchError(() => validateRecords(b, 50_000)).code).toBe('DECOMPRESS_LIMIT');
    expect(batchError(() => validateRecords(buildBatch(simpleRecords(100, 1000)), 50_000)).code).toBe('DECOMPRESS_LIMIT');
  });

  it('reports corrupt compressed data with CORRUPT_COMPRESSED', () => {
    const b = buildBatch(simpleRecords(10), { codec: Codec.Lz4 });
    b.fill(0x33, 70);
    expect(batchError(() => validateRecords(fixCrc(b), 1 << 20)).code).toBe('CORRUPT_COMPRESSED');
  });

  /** Builds a batch whose records section is `raw` exactly, claiming `count` records. */
  function rawBatch(raw: number[], count: number): Buffer {
    const b = buildBatch(simpleRecords(count));
    const header = b.subarray(0, 61);
    const out = Buffer.concat([header, Buffer.from(raw)]);
    out.writeInt32BE(out.length - 12, 8);
    return fixCrc(out);
  }
  const rec = (body: number[]) => [...varint(body.length), ...body];
  const good = [0, 0, ...varint(0), ...varint(1), 65, ...varint(-1), 0]; // ts 0, delta 0, key "A", null value, no headers

  it('rejects bad record framing with INVALID_RECORD', () => {
    expect(validateRecords(rawBatch(rec(good), 1), 1 << 20).recordCount).toBe(1);
    const cases: Array<[string, number[], number]> = [
      ['length overruns', [...varint(100), ...good], 1],
      ['negative length', [...varint(-5), ...good], 1],
      ['wrong offsetDelta', rec([0, 0, ...varint(3), ...varint(1), 65, ...varint(-1), 0]), 1],
      ['key length past the record', rec([0, 0, 0, ...varint(50), 65, ...varint(-1), 0]), 1],
      ['key length below -1', rec([0, 0, 0, ...varint(-2), ...varint(-1), 0]), 1],
      ['negative header count', rec([0, 0, 0, ...varint(-1), ...varint(-1), ...varint(-1)]), 1],
      ['null header key', rec([0, 0, 0, ...varint(-1), ...varint(-1), ...varint(1), ...varint(-1), ...varint(-1)]), 1],
      ['varlong longer than 10 bytes', rec([0, ...Array(11).fill(0x80), 0]), 1],
      ['record ends inside a varint', rec([0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]), 1],
      ['bytes left inside the record', rec([...good, 9]), 1],
      ['trailing bytes after the records', [...rec(good), 1, 2], 1],
    ];
    for (const [what, raw, count] of cases) {
      expect(batchError(() => validateRecords(rawBatch(raw, count), 1 << 20)).code, what).toBe('INVALID_RECORD');
    }
    expect(batchError(() => validateRecords(rawBatch(rec(good), 2), 1 << 20)).code).toBe('RECORD_COUNT_MISMATCH');
  });

  it('requires exactly one batch and checks the header first', () => {
    const b = buildBatch(simpleRecords(2));
    expect(batchError(() => validateRecords(Buffer.concat([b, b]), 1 << 20)).code).toBe('BAD_LENGTH');
    const c = Buffer.from(b);
    c[30] ^= 1;
    expect(batchError(() => validateRecords(c, 1 << 20)).code).toBe('CORRUPT_CRC');
  });

  it('checks a control batch has one record with a 4-byte key', () => {
    const commit = { key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0, 0, 0, 0, 0]) };
    expect(validateRecords(buildBatch([commit], { attributeBits: 0x30 }), 1024).recordCount).toBe(1);
    expect(validateBatches(buildBatch([commit], { attributeBits: 0x30 }))[0].isControl).toBe(true);
    expect(batchError(() => validateRecords(buildBatch([commit, commit], { attributeBits: 0x20 }), 1024)).code).toBe('RECORD_COUNT_MISMATCH');
    expect(batchError(() => validateRecords(buildBatch([{ key: Buffer.from([0]), value: null }], { attributeBits: 0x20 }), 1024)).code).toBe('INVALID_RECORD');
  });
});

describe('many batches (past the facade scratch of 64 headers)', () => {
  const many = Array.from({ length: 150 }, (_, i) => buildBatch(simpleRecords(1 + (i % 3)), { codec: i % 2 ? Codec.Lz4 : Codec.None, baseSequence: i }));
  const payload = Buffer.concat(many);

  it('validateBatches and validateAndAssign return every header in order', () => {
    const infos = validateBatches(payload);
    expect(infos.map((b) => b.baseSequence)).toEqual(many.map((_, i) => i));
    const copy = Buffer.from(payload);
    const assigned = validateAndAssign(copy, 10n, 3);
    let next = 10n;
    for (const [i, b] of assigned.entries()) {
      expect([b.baseOffset, b.baseSequence, b.partitionLeaderEpoch]).toEqual([next, i, 3]);
      expect(copy.readBigInt64BE(b.position)).toBe(next);
      next += BigInt(b.lastOffsetDelta + 1);
    }
    expect(scanLog(copy).batches.map((b) => b.baseOffset)).toEqual(assigned.map((b) => b.baseOffset));
  });

  it('scanLog resumes across scratch refills and still stops at the first bad batch', () => {
    const s = scanLog(payload);
    expect([s.batches.length, s.validBytes, s.stopReason]).toEqual([150, payload.length, null]);
    expect(s.batches.map((b) => b.baseSequence)).toEqual(many.map((_, i) => i));
    const broken = Buffer.from(payload);
    const at = many.slice(0, 120).reduce((n, b) => n + b.length, 0);
    broken[at + 30] ^= 0xff;
    const t = scanLog(broken);
    expect([t.batches.length, t.validBytes, t.stopReason]).toEqual([120, at, 'CORRUPT_CRC']);
    const fromMiddle = scanLog(payload, many[0].length);
    expect(fromMiddle.batches.length).toBe(149);
  });
});
