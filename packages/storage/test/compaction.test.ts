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

  it('compacts committed transactions like plain records, removes aborted ones and their spent markers, keeps open ones as they are', async () => {
    const d = tempDir();
    cleanups.push(d.cleanup);
    const mgr = LogManager.create({ logDirs: [d.path], defaults: testConfig({ segmentBytes: 300, cleanupPolicy: ['compact'], deleteRetentionMs: 60_000 }) });
    await mgr.start();
    cleanups.push(() => mgr.stop());
    const log = await mgr.createLog('t', 0);
    const old = Date.now() - 3_600_000;
    const seq = new Map<bigint, number>();
    const txn = (producerId: bigint, records: { key: string; value: string | null }[]) => {
      const baseSequence = seq.get(producerId) ?? 0;
      seq.set(producerId, baseSequence + records.length);
      return log.append(encodeRecordBatch({ records: records.map((r) => ({ ...r, timestamp: old })), transactional: true, producerId, producerEpoch: 0, baseSequence }));
    };
    const end = (producerId: bigint, commit: boolean) => log.appendControl({ producerId, producerEpoch: 0, commit, coordinatorEpoch: 0 });
    await log.append(encodeRecordBatch({ records: [{ key: 'k1', value: 'plain', timestamp: old }] }));
    await txn(1n, [{ key: 'k1', value: 'committed' }, { key: 'k2', value: 'committed' }]);
    await txn(2n, [{ key: 'k2', value: 'aborted' }]);
    await end(2n, false);
    await end(1n, true);
    // A transactional offset of a group that was then deleted (its tombstone, old enough to go).
    await txn(3n, [{ key: 'k3', value: 'before deletion' }]);
    await end(3n, true);
    await log.append(encodeRecordBatch({ records: [{ key: 'k3', value: null, timestamp: old }] }));
    await txn(2n, [{ key: 'k4', value: 'second' }]);
    await end(2n, true);
    await txn(4n, [{ key: 'k1', value: 'open' }]);
    for (let i = 0; i < 8; i++) await log.append(encodeRecordBatch({ records: [{ key: `f${i}`, value: 'filler', timestamp: old }] }));
    const activeBase = log.segmentInfo().at(-1)!.baseOffset;
    expect(activeBase).toBeGreaterThan(12n);
    const contents = async () => {
      const out: string[] = [];
      for (let at = log.logStartOffset; at < activeBase;) {
        const batches = decodeRecordBatches((await log.read(at, 1 << 20)).records);
        for (const b of batches) {
          if (b.baseOffset >= activeBase) break;
          if (b.control) out.push(`${b.baseOffset}:${b.producerId}:${b.records[0]!.key!.readInt16BE(2) === 1 ? 'COMMIT' : 'ABORT'}`);
          else for (const x of b.records) out.push(`${x.offset}:${x.key}=${x.value}`);
        }
        const last = batches.at(-1)!;
        at = last.baseOffset + BigInt(last.lastOffsetDelta) + 1n;
      }
      return out;
    };
    expect(await contents()).toEqual([
      '0:k1=plain', '1:k1=committed', '2:k2=committed', '3:k2=aborted', '4:2:ABORT', '5:1:COMMIT',
      '6:k3=before deletion', '7:3:COMMIT', '8:k3=null', '9:k4=second', '10:2:COMMIT', '11:k1=open',
      ...Array.from({ length: Number(activeBase) - 12 }, (_, i) => `${12 + i}:f${i}=filler`),
    ]);
    log.highWatermark = log.logEndOffset;
    const lso = log.firstUnstableOffset();
    // Past the markers' delete horizon too.
    await mgr.runCompaction(Date.now() + 7_200_000);
    expect(await contents()).toEqual([
      // k1: the committed value hides the plain one; the open transaction's record counts for no key.
      '1:k1=committed', '2:k2=committed',
      // The aborted record is gone, and its marker with it (producer 2 wrote later batches).
      '5:1:COMMIT',
      // The deletion's tombstone hid the committed offset and went itself; the marker of producer
      // 3 stays (its last batch: its epoch still fences).
      '7:3:COMMIT', '9:k4=second', '10:2:COMMIT', '11:k1=open',
      ...Array.from({ length: Number(activeBase) - 12 }, (_, i) => `${12 + i}:f${i}=filler`),
    ]);
    // The open transaction still holds the last stable offset.
    expect(lso).toBe(11n);
    expect(log.firstUnstableOffset()).toBe(11n);
  });
});
