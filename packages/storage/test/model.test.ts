import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogManager, StorageError, type PartitionLog } from '../src/index.ts';
import { batch, batchesIn, tempDir, testConfig } from './helpers.ts';
import { seededRandom } from '@runnel/common';


interface OracleBatch {
  baseOffset: bigint;
  lastOffset: bigint;
  bytes: Buffer;
}

const dirs: (() => void)[] = [];
afterEach(() => {
  for (const c of dirs.splice(0)) c();
});

async function check(log: PartitionLog, oracle: OracleBatch[], leo: bigint, lso: bigint, offset: bigint, maxBytes: number, minOneBatch: boolean, maxOffset?: bigint) {
  const r = await log.read(offset, maxBytes, { minOneBatch, maxOffset });
  expect(r.logEndOffset).toBe(leo);
  expect(r.logStartOffset).toBe(lso);
  const got = batchesIn(r.records);
  const limit = maxOffset !== undefined && maxOffset < leo ? maxOffset : leo;
  const start = oracle.findIndex((b) => b.lastOffset >= offset);
  if (offset >= limit || start < 0) {
    expect(got).toEqual([]);
    return;
  }
  // Byte-identical consecutive oracle batches from the one containing `offset`.
  let total = 0;
  for (let i = 0; i < got.length; i++) {
    const o = oracle[start + i];
    expect(o, `batch ${i} of read(${offset}) beyond the oracle`).toBeDefined();
    expect(got[i].baseOffset).toBe(o.baseOffset);
    total += got[i].size;
    expect(o.lastOffset < limit).toBe(true);
  }
  expect(Buffer.compare(r.records, Buffer.concat(oracle.slice(start, start + got.length).map((b) => b.bytes)))).toBe(0);
  if (total > maxBytes) expect(got.length === 1 && minOneBatch).toBe(true);
  // Stopping early is allowed only at maxBytes, maxOffset, or a segment boundary.
  const next = oracle[start + got.length];
  if (next && next.lastOffset < limit) {
    const atSegmentStart = log.segmentInfo().some((s) => s.baseOffset === next.baseOffset || (got.length === 0 ? false : s.baseOffset > got.at(-1)!.lastOffset && s.baseOffset <= next.baseOffset));
    const full = total + next.bytes.length > maxBytes && !(got.length === 0 && minOneBatch);
    expect(full || atSegmentStart, `read(${offset}, ${maxBytes}) stopped early at ${next.baseOffset}`).toBe(true);
  }
}

describe('PartitionLog against an in-memory oracle', () => {
  for (const seed of [1, 2, 3]) {
    it(`random appends, reads, rolls, truncations, retention, restarts (seed ${seed})`, async () => {
      const rnd = seededRandom(seed);
      const d = tempDir();
      dirs.push(d.cleanup);
      const config = testConfig({ segmentBytes: 2048 + rnd.int(0, 4096), indexIntervalBytes: rnd.int(0, 600), retentionMs: -1 });
      let mgr = LogManager.create({ logDirs: [d.path], defaults: config });
      await mgr.start();
      let log = await mgr.createLog('model', 0);
      let oracle: OracleBatch[] = [];
      let leo = 0n;
      let lso = 0n;
      for (let step = 0; step < 1500; step++) {
        const op = rnd.next();
        if (op < 0.5) {
          // 1–3 batches per payload; sometimes several payloads in flight at once (coalesced writes).
          const inFlight = rnd.next() < 0.3 ? rnd.int(2, 6) : 1;
          const payloads: { payload: Buffer; parts: Buffer[] }[] = [];
          for (let k = 0; k < inFlight; k++) {
            const parts: Buffer[] = [];
            for (let i = 0, n = rnd.int(1, 3); i < n; i++) parts.push(batch(rnd.int(1, 8), { prefix: `s${step}`, size: rnd.int(0, 300) }));
            payloads.push({ payload: Buffer.concat(parts), parts });
          }
          const results = await Promise.all(payloads.map((x) => log.append(x.payload)));
          for (let k = 0; k < inFlight; k++) {
            const { payload, parts } = payloads[k];
            expect(results[k].baseOffset).toBe(leo);
            let p = 0;
            for (const part of parts) {
              const bytes = Buffer.from(payload.subarray(p, p + part.length));
              p += part.length;
              const baseOffset = bytes.readBigInt64BE(0);
              oracle.push({ baseOffset, lastOffset: baseOffset + BigInt(bytes.readInt32BE(23)), bytes });
            }
            leo = oracle.at(-1)!.lastOffset + 1n;
            expect(results[k].lastOffset).toBe(leo - 1n);
          }
        } else if (op < 0.8) {
          const offset = lso + BigInt(rnd.int(0, Number(leo - lso)));
          const maxOffset = rnd.next() < 0.2 ? lso + BigInt(rnd.int(0, Number(leo - lso))) : undefined;
          await check(log, oracle, leo, lso, offset, rnd.int(1, 3000), rnd.next() < 0.8, maxOffset);
        } else if (op < 0.84) {
          // Out of range reads.
          await expect(log.read(leo + 1n, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
          if (lso > 0n) await expect(log.read(lso - 1n, 100)).rejects.toBeInstanceOf(StorageError);
        } else if (op < 0.88 && oracle.length > 2) {
          // Truncate to a batch boundary above the log start.
          const candidates = oracle.filter((b) => b.baseOffset > lso);
          if (candidates.length === 0) continue;
          const to = candidates[rnd.int(0, candidates.length - 1)].baseOffset;
          await log.truncateTo(to);
          oracle = oracle.filter((b) => b.lastOffset < to);
          leo = to;
          expect(log.logEndOffset).toBe(leo);
        } else if (op < 0.91) {
          // retention.bytes pass: whole old segments go, the log start moves to the first kept segment.
          log.config = { ...log.config, retentionBytes: rnd.int(0, log.sizeBytes) };
          await log.applyRetention();
          log.config = { ...log.config, retentionBytes: -1 };
          const first = log.segmentInfo()[0].baseOffset;
          if (first > lso) lso = first;
          expect(log.logStartOffset).toBe(lso);
          expect(log.segmentInfo().at(-1)!.nextOffset).toBe(leo);
          oracle = oracle.filter((b) => b.lastOffset >= first);
        } else if (op < 0.93 && leo > lso) {
          const to = lso + BigInt(rnd.int(0, Number(leo - lso)));
          expect(await log.deleteRecordsBefore(to)).toBe(to > lso ? to : lso);
          if (to > lso) lso = to;
          const first = log.segmentInfo()[0].baseOffset;
          oracle = oracle.filter((b) => b.lastOffset >= first);
        } else if (op < 0.95) {
          // Restart: clean, or "unclean" (marker removed: full recovery from the recovery point).
          await mgr.stop();
          if (rnd.next() < 0.5) unlinkSync(join(d.path, '.kafka_cleanshutdown'));
          mgr = LogManager.create({ logDirs: [d.path], defaults: config });
          await mgr.start();
          log = mgr.getLog('model', 0)!;
          expect(log.logEndOffset).toBe(leo);
          expect(log.logStartOffset).toBe(lso);
        }
      }
      // Final full read-through.
      let at = lso;
      const collected: Buffer[] = [];
      while (at < leo) {
        const r = await log.read(at, 4096);
        const got = batchesIn(r.records);
        expect(got.length).toBeGreaterThan(0);
        collected.push(r.records);
        at = got.at(-1)!.lastOffset + 1n;
      }
      const first = oracle.findIndex((b) => b.lastOffset >= lso);
      expect(Buffer.compare(Buffer.concat(collected), Buffer.concat(oracle.slice(first).map((b) => b.bytes)))).toBe(0);
      await mgr.stop();
    });
  }
});
