import { afterEach, describe, expect, it } from 'vitest';
import { Codec, scanLog } from '@runnel/native';
import { OffloadPool } from '@runnel/offload';
import { decodeRecordBatches, encodeRecordBatch } from '@runnel/protocol';
import { LogManager, type PartitionLog } from '../src/index.ts';
import { tempDir, testConfig } from './helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  // Every cleanup runs even if one fails (a busy mount point, a manager already stopped).
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve().then(c).catch(() => {});
});

async function readRecords(log: PartitionLog) {
  const out: { offset: bigint; key: string | null; value: string | null }[] = [];
  let at = log.logStartOffset;
  while (at < log.logEndOffset) {
    const r = await log.read(at, 1 << 20);
    if (r.records.length === 0) break;
    expect(scanLog(r.records).validBytes).toBe(r.records.length);
    const batches = decodeRecordBatches(r.records);
    for (const b of batches) for (const rec of b.records) out.push({ offset: rec.offset, key: rec.key?.toString() ?? null, value: rec.value?.toString() ?? null });
    const last = batches.at(-1)!;
    at = last.baseOffset + BigInt(last.lastOffsetDelta) + 1n;
  }
  return out;
}

describe('compaction', () => {
  for (const withPool of [true, false]) {
    it(`keeps the latest record per key with original offsets, drops old tombstones (${withPool ? 'offload pool' : 'inline'})`, async () => {
      const d = tempDir();
      cleanups.push(d.cleanup);
      const pool = withPool ? OffloadPool.create({ threads: 1 }) : undefined;
      if (pool) cleanups.push(() => pool.stop());
      const mgr = LogManager.create({ logDirs: [d.path], defaults: testConfig({ segmentBytes: 1500, cleanupPolicy: ['compact'], deleteRetentionMs: 60_000 }), pool });
      await mgr.start();
      cleanups.push(() => mgr.stop());
      const log = await mgr.createLog('c', 0);
      const now = Date.now();
      const written: { offset: bigint; key: string | null; value: string | null; ts: number }[] = [];
      let offset = 0n;
      for (let i = 0; i < 60; i++) {
        // 3 records per batch over 7 keys; every 5th batch lz4-compressed; some tombstones.
        const ts = i < 20 ? now - 3_600_000 : now;
        const records = [0, 1, 2].map((j) => {
          const key = `k${(i * 3 + j) % 7}`;
          const value = (i * 3 + j) % 11 === 0 ? null : `v${i}-${j}`;
          return { key, value, timestamp: ts };
        });
        if (i === 50) records[0] = { key: null as unknown as string, value: 'no-key', timestamp: ts };
        await log.append(encodeRecordBatch({ records, codec: i % 5 === 0 ? Codec.Lz4 : Codec.None }));
        for (const r of records) written.push({ offset: offset++, key: r.key, value: r.value, ts });
      }
      const segments = log.segmentInfo();
      expect(segments.length).toBeGreaterThan(4);
      const activeBase = segments.at(-1)!.baseOffset;
      const before = await readRecords(log);
      expect(before.length).toBe(written.length);
      await mgr.runCompaction(now);
      const after = await readRecords(log);
      // Expected: in the non-active part, the latest record per key (tombstones dropped only when old),
      // unkeyed records kept; the active segment untouched.
      const latest = new Map<string, bigint>();
      for (const w of written) if (w.offset < activeBase && w.key !== null) latest.set(w.key, w.offset);
      const expected = written.filter((w) => {
        if (w.offset >= activeBase || w.key === null) return true;
        if (latest.get(w.key) !== w.offset) return false;
        return w.value !== null || w.ts >= now - 60_000;
      });
      expect(after.map((r) => [r.offset, r.key, r.value])).toEqual(expected.map((w) => [w.offset, w.key, w.value]));
      expect(after.length).toBeLessThan(before.length);
      expect(log.logEndOffset).toBe(offset);
      // Reads from any offset still land on the right batch, and it all survives a restart.
      const some = expected[Math.floor(expected.length / 2)];
      const r = await log.read(some.offset, 1);
      const first = decodeRecordBatches(r.records)[0];
      expect(first.records.some((x) => x.offset === some.offset)).toBe(true);
      await mgr.stop();
      const again = LogManager.create({ logDirs: [d.path], defaults: testConfig({ segmentBytes: 1500, cleanupPolicy: ['compact'] }) });
      await again.start();
      cleanups.push(() => again.stop());
      expect((await readRecords(again.getLog('c', 0)!)).map((x) => x.offset)).toEqual(expected.map((w) => w.offset));
      // Appends continue after compaction.
      expect((await again.getLog('c', 0)!.append(encodeRecordBatch({ records: [{ key: 'k1', value: 'new' }] }))).baseOffset).toBe(offset);
    });
  }
});
