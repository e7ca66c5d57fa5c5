/**
 * Damage that recovery and reads must survive without losing what they cannot prove bad: a flipped
 * byte mid-log (later segments are moved aside, never deleted) and offset index entries that point
 * inside a batch (on disk at load, or in memory while running).
 */
import { existsSync, readFileSync, readdirSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '@runnel/common';
import { decodeRecordBatches } from '@runnel/protocol';
import { CORRUPT_ASIDE_PREFIX, LogManager, type PartitionLog } from '../src/index.ts';
import { batch, batchesIn, tempDir, testConfig } from './helpers.ts';

const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((c) => c()));

/** A pino-shaped logger that keeps warnings (the storage package logs through this interface only). */
function capturingLogger(): { logger: Logger; warnings: { fields: Record<string, unknown>; msg: string }[] } {
  const warnings: { fields: Record<string, unknown>; msg: string }[] = [];
  const noop = () => {};
  const logger = {
    warn: (fields: Record<string, unknown>, msg: string) => warnings.push({ fields, msg }),
    info: noop,
    debug: noop,
    trace: noop,
    error: noop,
    fatal: noop,
    child: () => logger,
  };
  return { logger: logger as unknown as Logger, warnings };
}

/** Every record value from `from` to the log end, read batch by batch. */
async function readValues(log: PartitionLog, from = log.logStartOffset): Promise<string[]> {
  const out: string[] = [];
  let at = from;
  while (at < log.logEndOffset) {
    const r = await log.read(at, 1 << 20);
    const got = decodeRecordBatches(r.records);
    if (got.length === 0) throw new Error(`empty read at ${at} below the log end ${log.logEndOffset}`);
    for (const b of got) for (const rec of b.records) if (rec.offset >= at) out.push(rec.value!.toString());
    at = got.at(-1)!.records.at(-1)!.offset + 1n;
  }
  return out;
}

/**
 * 30,000 records in 100-record batches over 3+ segments, stopped with neither a clean-shutdown
 * marker nor a recovery checkpoint, then one byte flipped (under the CRC) in the middle of the
 * first segment. Returns what the test needs to check the outcome.
 */
async function corruptedLog() {
  const dir = tempDir();
  cleanups.push(dir.cleanup);
  const config = testConfig({ segmentBytes: 256 * 1024 });
  const values: string[] = [];
  {
    const mgr = LogManager.create({ logDirs: [dir.path], defaults: config });
    await mgr.start();
    const log = await mgr.createLog('c', 0);
    for (let n = 0; n < 300; n++) {
      const vs = Array.from({ length: 100 }, (_, i) => `r-${n * 100 + i}-${'p'.repeat(20)}`);
      values.push(...vs);
      await log.append(batch(100, { values: vs }));
    }
    expect(log.logEndOffset).toBe(30_000n);
    await mgr.stop();
  }
  unlinkSync(join(dir.path, '.kafka_cleanshutdown'));
  unlinkSync(join(dir.path, 'recovery-point-offset-checkpoint'));
  const pdir = join(dir.path, 'c-0');
  const segs = readdirSync(pdir).filter((f) => f.endsWith('.log')).sort();
  expect(segs.length).toBeGreaterThanOrEqual(3);
  const later = segs.slice(1).flatMap((s) => [s, s.replace('.log', '.index'), s.replace('.log', '.timeindex')]);
  const before = new Map(later.map((f) => [f, readFileSync(join(pdir, f))]));
  const first = readFileSync(join(pdir, segs[0]));
  const mid = Math.floor(first.length / 2);
  let badBatchStart = 0;
  let badBase = 0n;
  for (let p = 0; p < first.length; p += 12 + first.readInt32BE(p + 8)) {
    if (p + 12 + first.readInt32BE(p + 8) > mid) {
      badBatchStart = p;
      badBase = first.readBigInt64BE(p);
      break;
    }
  }
  first[mid] ^= 0x40;
  writeFileSync(join(pdir, segs[0]), first);
  return { dir, config, values, pdir, segs, later, before, badBatchStart, badBase };
}

describe('recovery keeps what it cannot prove bad', () => {
  it('a flipped byte mid-segment truncates that segment at the bad batch and moves the later segments aside, byte-identical', async () => {
    const { dir, config, values, pdir, segs, later, before, badBatchStart, badBase } = await corruptedLog();
    const { logger, warnings } = capturingLogger();
    const mgr = LogManager.create({ logDirs: [dir.path], defaults: config, logger });
    await mgr.start();
    try {
      const log = mgr.getLog('c', 0)!;
      // Everything before the bad batch is readable, nothing after it is served.
      expect(log.logEndOffset).toBe(badBase);
      expect(await readValues(log)).toEqual(values.slice(0, Number(badBase)));
      expect(readFileSync(join(pdir, segs[0])).length).toBe(badBatchStart);
      // The later segments are aside, byte-identical, and not where the loader looks.
      const asides = readdirSync(pdir).filter((f) => f.startsWith(CORRUPT_ASIDE_PREFIX));
      expect(asides).toHaveLength(1);
      const aside = join(pdir, asides[0]);
      expect(readdirSync(aside).sort()).toEqual([...later].sort());
      for (const [f, bytes] of before) {
        expect(Buffer.compare(readFileSync(join(aside, f)), bytes), f).toBe(0);
        expect(existsSync(join(pdir, f)), f).toBe(false);
      }
      // One warning for the partition, naming the folder and how to restore.
      const w = warnings.filter((x) => x.msg.includes('aside'));
      expect(w).toHaveLength(1);
      expect(w[0].msg).toContain(aside);
      expect(w[0].msg).toMatch(/move the files back/);
      expect(w[0].fields.segments).toEqual(segs.slice(1).map((s) => String(BigInt(s.slice(0, 20)))));
      // The log serves: it appends right after the valid prefix and reads it back.
      const r = await log.append(batch(3, { prefix: 'after' }));
      expect(r.baseOffset).toBe(badBase);
      expect((await readValues(log, badBase)).length).toBe(3);
    } finally {
      await mgr.stop();
    }
    // A restart does not touch the aside folder (the loader never reads it).
    const again = LogManager.create({ logDirs: [dir.path], defaults: config });
    await again.start();
    expect(again.getLog('c', 0)!.logEndOffset).toBe(badBase + 3n);
    await again.stop();
    expect(readdirSync(pdir).filter((f) => f.startsWith(CORRUPT_ASIDE_PREFIX))).toHaveLength(1);
  }, 60_000);

  it('deleting the partition (replica moved away, topic deleted) keeps the aside folder in <log dir>/corrupt-aside/, which no start loads', async () => {
    const { dir, config, pdir, before, badBase } = await corruptedLog();
    const { logger, warnings } = capturingLogger();
    const mgr = LogManager.create({ logDirs: [dir.path], defaults: config, logger });
    await mgr.start();
    const folder = readdirSync(pdir).find((f) => f.startsWith(CORRUPT_ASIDE_PREFIX))!;
    expect(mgr.getLog('c', 0)!.logEndOffset).toBe(badBase);
    await mgr.deleteLog('c', 0);
    expect(existsSync(pdir)).toBe(false);
    const kept = join(dir.path, 'corrupt-aside', `c-0-${folder}`);
    for (const [f, bytes] of before) expect(Buffer.compare(readFileSync(join(kept, f)), bytes), f).toBe(0);
    expect(warnings.filter((w) => w.msg.includes(join(dir.path, 'corrupt-aside')))).toHaveLength(1);
    // The partition can come back empty beside it, and a restart loads nothing from it.
    expect((await (await mgr.createLog('c', 0)).append(batch(1))).baseOffset).toBe(0n);
    await mgr.stop();
    const again = LogManager.create({ logDirs: [dir.path], defaults: config });
    await again.start();
    expect(again.logs().map((l) => `${l.topic}-${l.partition}`)).toEqual(['c-0']);
    expect(again.getLog('c', 0)!.logEndOffset).toBe(1n);
    await again.stop();
    expect(readdirSync(kept).sort()).toEqual([...before.keys()].sort());
  }, 60_000);

  it('the documented restore (stop before new writes, move the files back) serves the later segments again, around the gap', async () => {
    const { dir, config, values, pdir, segs, badBase } = await corruptedLog();
    const mgr = LogManager.create({ logDirs: [dir.path], defaults: config });
    await mgr.start();
    expect(mgr.getLog('c', 0)!.logEndOffset).toBe(badBase);
    await mgr.stop();
    const aside = join(pdir, readdirSync(pdir).find((f) => f.startsWith(CORRUPT_ASIDE_PREFIX))!);
    for (const f of readdirSync(aside)) renameSync(join(aside, f), join(pdir, f));
    rmdirSync(aside);
    const restored = LogManager.create({ logDirs: [dir.path], defaults: config });
    await restored.start();
    try {
      const log = restored.getLog('c', 0)!;
      expect(log.logEndOffset).toBe(30_000n);
      const firstMoved = Number(BigInt(segs[1].slice(0, 20)));
      expect(await readValues(log)).toEqual([...values.slice(0, Number(badBase)), ...values.slice(firstMoved)]);
    } finally {
      await restored.stop();
    }
  }, 60_000);
});

describe('offset index entries must point at their batch', () => {
  /** A clean log of 3+ segments, many batches of 1-5 records, a dense index. */
  async function buildLog(path: string) {
    const config = testConfig({ segmentBytes: 16 * 1024, indexIntervalBytes: 200 });
    const values: string[] = [];
    const mgr = LogManager.create({ logDirs: [path], defaults: config });
    await mgr.start();
    const log = await mgr.createLog('ix', 0);
    for (let n = 0; n < 400; n++) {
      const vs = Array.from({ length: 1 + (n % 5) }, (_, i) => `v-${n}-${i}`);
      values.push(...vs);
      await log.append(batch(vs.length, { values: vs }));
    }
    return { mgr, log, values, config };
  }

  /** Every offset, fetched one at a time: the first batch returned holds it. */
  async function fetchEvery(log: PartitionLog, values: string[]): Promise<void> {
    for (let o = 0n; o < log.logEndOffset; o++) {
      const r = await log.read(o, 1);
      const got = decodeRecordBatches(r.records);
      expect(got.length, `fetch at ${o}`).toBeGreaterThan(0);
      const rec = got[0].records.find((x) => x.offset === o);
      expect(rec?.value?.toString(), `fetch at ${o}`).toBe(values[Number(o)]);
    }
  }

  /** Move entry `i` of an index file 7 bytes into its batch (still increasing, still inside the log). */
  function shiftEntry(indexPath: string, i: number): void {
    const data = readFileSync(indexPath);
    data.writeInt32BE(data.readInt32BE(i * 8 + 4) + 7, i * 8 + 4);
    writeFileSync(indexPath, data);
  }

  it('a misplaced entry on disk (active and older segments) is never followed: every offset is fetched, the index is rebuilt', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const built = await buildLog(dir.path);
    await built.mgr.stop();
    const pdir = join(dir.path, 'ix-0');
    const indexes = readdirSync(pdir).filter((f) => f.endsWith('.index')).sort();
    expect(indexes.length).toBeGreaterThanOrEqual(3);
    const good = new Map(indexes.map((f) => [f, readFileSync(join(pdir, f))]));
    for (const f of [indexes[0], indexes.at(-1)!]) {
      const entries = good.get(f)!.length / 8;
      expect(entries).toBeGreaterThan(4);
      shiftEntry(join(pdir, f), Math.floor(entries / 2));
    }
    const { logger, warnings } = capturingLogger();
    const mgr = LogManager.create({ logDirs: [dir.path], defaults: built.config, logger });
    await mgr.start();
    try {
      const log = mgr.getLog('ix', 0)!;
      // The clean start loaded the active segment's index: checked and rebuilt at once.
      expect(Buffer.compare(readFileSync(join(pdir, indexes.at(-1)!)), good.get(indexes.at(-1)!)!)).toBe(0);
      await fetchEvery(log, built.values);
      // The older segment's entry was caught by a read, which rebuilt that index in the background.
      await expect.poll(() => Buffer.compare(readFileSync(join(pdir, indexes[0])), good.get(indexes[0])!), { timeout: 10_000 }).toBe(0);
      expect(warnings.some((w) => /does not point at the start of its batch/.test(w.msg))).toBe(true);
    } finally {
      await mgr.stop();
    }
  }, 60_000);

  it('an active segment with more than 1,024 entries: the bounded load check samples across it (one in the middle is caught at start)', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const config = testConfig({ indexIntervalBytes: 1 });
    const values: string[] = [];
    {
      const mgr = LogManager.create({ logDirs: [dir.path], defaults: config });
      await mgr.start();
      const log = await mgr.createLog('big', 0);
      for (let n = 0; n < 1500; n++) {
        values.push(`b-${n}`);
        await log.append(batch(1, { values: [`b-${n}`] }));
      }
      await mgr.stop();
    }
    const indexPath = join(dir.path, 'big-0', '00000000000000000000.index');
    const good = readFileSync(indexPath);
    expect(good.length / 8).toBeGreaterThan(1024);
    // Entry 512 of the 1,024 checked (the check takes every (entries / 1024)-th entry).
    shiftEntry(indexPath, Math.floor((512 * good.length) / 8 / 1024));
    const mgr = LogManager.create({ logDirs: [dir.path], defaults: config });
    await mgr.start();
    try {
      expect(Buffer.compare(readFileSync(indexPath), good)).toBe(0);
      await fetchEvery(mgr.getLog('big', 0)!, values);
    } finally {
      await mgr.stop();
    }
  }, 60_000);

  it('ListOffsets by time never walks from a misplaced entry either', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const mgr = LogManager.create({ logDirs: [dir.path], defaults: testConfig({ segmentBytes: 16 * 1024, indexIntervalBytes: 200 }) });
    await mgr.start();
    try {
      const log = await mgr.createLog('ts', 0);
      const firstOffsets: bigint[] = [];
      for (let n = 0; n < 300; n++) firstOffsets.push((await log.append(batch(1 + (n % 3), { prefix: `t${n}`, size: 40, timestamp: 1_000_000 + n * 10 }))).baseOffset);
      const segs = (log as unknown as { segments: { baseOffset: bigint; index: { buf: Buffer; entries: number } }[] }).segments;
      expect(segs.length).toBeGreaterThanOrEqual(3);
      // Misplace every entry of segment 1 (the time index sends lookups to any of them).
      const idx = segs[1].index;
      for (let i = 0; i < idx.entries; i++) idx.buf.writeInt32BE(idx.buf.readInt32BE(i * 8 + 4) + 7, i * 8 + 4);
      const inSeg1 = firstOffsets.map((o, n) => ({ o, n })).filter(({ o }) => o >= segs[1].baseOffset && o < segs[2].baseOffset);
      expect(inSeg1.length).toBeGreaterThan(10);
      for (const { o, n } of inSeg1) {
        const found = await log.offsetForTimestamp(BigInt(1_000_000 + n * 10));
        expect(found?.offset, `batch ${n}`).toBe(o);
      }
    } finally {
      await mgr.stop();
    }
  }, 60_000);

  it('an entry damaged in memory while running is detected on read and repaired', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const { mgr, log, values } = await buildLog(dir.path);
    try {
      const seg = (log as unknown as { segments: { index: { buf: Buffer; entries: number } }[] }).segments[1];
      const idx = seg.index;
      const i = Math.floor(idx.entries / 2);
      const pos = idx.buf.readInt32BE(i * 8 + 4);
      idx.buf.writeInt32BE(pos + 7, i * 8 + 4);
      await fetchEvery(log, values);
      // The rebuilt index has the entry back on its batch.
      await expect.poll(() => (log as unknown as { segments: { index: { buf: Buffer } }[] }).segments[1].index.buf.readInt32BE(i * 8 + 4), { timeout: 10_000 }).toBe(pos);
      await fetchEvery(log, values);
    } finally {
      await mgr.stop();
    }
  }, 60_000);
});
