import { spawn } from 'node:child_process';
import { cpSync, existsSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, closeSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { scanLog } from '@runnel/native';
import { decodeRecordBatches } from '@runnel/protocol';
import { LogManager, type PartitionLog } from '../src/index.ts';
import { batch, batchesIn, tempDir, testConfig } from './helpers.ts';
import { seededRandom } from '@runnel/common';

const CHILD = fileURLToPath(new URL('./fixtures/append-child.ts', import.meta.url));
const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((c) => c()));

/** Run the appending child until it has acknowledged `acks` appends, then SIGKILL it. */
function runChildAndKill(dir: string, acks: number, prefix: string, durable: boolean): Promise<Map<number, bigint>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, '65536', durable ? '1' : '0', '5', String(100 + Math.floor(Math.random() * 400)), '', prefix], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Map<number, bigint>();
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const m = /^ACK (\d+) (\d+)$/.exec(line);
      if (!m) return;
      acked.set(Number(m[1]), BigInt(m[2]));
      if (acked.size === acks) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(acked) : reject(new Error(`child exited with ${code}`))));
  });
}

async function readAll(log: PartitionLog): Promise<Buffer> {
  const parts: Buffer[] = [];
  let at = log.logStartOffset;
  while (at < log.logEndOffset) {
    const r = await log.read(at, 1 << 20);
    const got = batchesIn(r.records);
    if (got.length === 0) throw new Error(`empty read at ${at}`);
    parts.push(r.records);
    at = got.at(-1)!.lastOffset + 1n;
  }
  return Buffer.concat(parts);
}

describe('recovery after SIGKILL mid-append', () => {
  for (const durable of [false, true]) {
    it(`recovers a valid prefix holding every acknowledged append (${durable ? 'durable' : 'page cache'})`, async () => {
      const d = tempDir();
      cleanups.push(d.cleanup);
      const allAcked: { prefix: string; n: number; last: bigint }[] = [];
      for (let round = 0; round < 3; round++) {
        const prefix = `r${round}`;
        const acked = await runChildAndKill(d.path, 150, prefix, durable);
        for (const [n, last] of acked) allAcked.push({ prefix, n, last });
        const mgr = LogManager.create({ logDirs: [d.path], defaults: testConfig({ segmentBytes: 65536 }) });
        await mgr.start();
        const log = mgr.getLog('torn', 0)!;
        const maxAcked = allAcked.reduce((m, a) => (a.last > m ? a.last : m), -1n);
        expect(log.logEndOffset > maxAcked).toBe(true);
        const bytes = await readAll(log);
        expect(scanLog(bytes).validBytes).toBe(bytes.length);
        const values = new Set<string>();
        let expectedOffset = 0n;
        for (const b of decodeRecordBatches(bytes)) {
          for (const r of b.records) {
            expect(r.offset).toBe(expectedOffset++);
            values.add(r.value!.toString().split('-').slice(0, 3).join('-'));
          }
        }
        for (const a of allAcked) for (let i = 0; i < 5; i++) expect(values.has(`${a.prefix}-${a.n}-${i}`)).toBe(true);
        await mgr.stop();
        // The next child continues on an unclean log: remove the marker the clean stop left.
        unlinkSync(join(d.path, '.kafka_cleanshutdown'));
      }
    });
  }
});


describe('file surgery on stopped logs', () => {
  it('200 trials: recovery keeps exactly the valid prefix and index lookups match the oracle', async () => {
    const base = tempDir();
    cleanups.push(base.cleanup);
    const config = testConfig({ segmentBytes: 8192, indexIntervalBytes: 256 });
    // Build the log once: ~4 segments.
    const oracle: { baseOffset: bigint; lastOffset: bigint; bytes: Buffer }[] = [];
    {
      const mgr = LogManager.create({ logDirs: [base.path], defaults: config });
      await mgr.start();
      const log = await mgr.createLog('s', 0);
      const rnd = seededRandom(99).next;
      for (let i = 0; i < 150; i++) {
        const payload = batch(1 + Math.floor(rnd() * 6), { prefix: `b${i}`, size: Math.floor(rnd() * 120), timestamp: 1000 + i * 10 });
        await log.append(payload);
        const baseOffset = payload.readBigInt64BE(0);
        oracle.push({ baseOffset, lastOffset: baseOffset + BigInt(payload.readInt32BE(23)), bytes: Buffer.from(payload) });
      }
      await mgr.stop();
    }
    const pbase = join(base.path, 's-0');
    const segs = readdirSync(pbase).filter((f) => f.endsWith('.log')).sort();
    expect(segs.length).toBeGreaterThan(3);
    const lastSeg = segs.at(-1)!;
    const lastBase = BigInt(lastSeg.slice(0, 20));
    const lastBatches = oracle.filter((b) => b.baseOffset >= lastBase);
    const lastSize = statSync(join(pbase, lastSeg)).size;
    // Byte ranges of the last segment's batches.
    const ranges: { start: number; end: number; index: number }[] = [];
    {
      let p = 0;
      for (const b of lastBatches) {
        ranges.push({ start: p, end: p + b.bytes.length, index: oracle.indexOf(b) });
        p += b.bytes.length;
      }
      expect(p).toBe(lastSize);
    }
    const rnd = seededRandom(7).next;
    const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
    const trial = tempDir();
    cleanups.push(trial.cleanup);
    let lookups = 0;
    for (let t = 0; t < 200; t++) {
      rmSync(trial.path, { recursive: true, force: true });
      cpSync(base.path, trial.path, { recursive: true });
      const pdir = join(trial.path, 's-0');
      const segPath = join(pdir, lastSeg);
      const kind = t % 6;
      // Index of the first oracle batch that must be gone (oracle.length = nothing lost).
      let firstLost = oracle.length;
      const lostFrom = (pos: number) => {
        const r = ranges.find((x) => x.end > pos);
        return r ? r.index : oracle.length;
      };
      if (kind === 0) {
        // Truncate inside the last batch.
        const last = ranges.at(-1)!;
        const cut = int(last.start + 1, last.end - 1);
        truncateSync(segPath, cut);
        firstLost = lostFrom(cut);
      } else if (kind === 1) {
        // Append 1–4096 random bytes.
        const junk = Buffer.alloc(int(1, 4096));
        for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rnd() * 256);
        const fd = openSync(segPath, 'a');
        writeSync(fd, junk);
        closeSync(fd);
      } else if (kind === 2) {
        // Zero the last 4 KiB.
        const from = Math.max(0, lastSize - 4096);
        const fd = openSync(segPath, 'r+');
        writeSync(fd, Buffer.alloc(lastSize - from), 0, lastSize - from, from);
        closeSync(fd);
        firstLost = lostFrom(from);
      } else if (kind === 3) {
        // Flip one bit of the last batch, in the bytes recovery can check: length, magic, CRC and
        // everything it covers (baseOffset and partitionLeaderEpoch are not CRC-covered, in Kafka too).
        const last = ranges.at(-1)!;
        const choices = [];
        for (let p = last.start + 8; p < last.end; p++) if (p < last.start + 12 || p >= last.start + 16) choices.push(p);
        const at = choices[int(0, choices.length - 1)];
        const data = readFileSync(segPath);
        data[at] ^= 1 << int(0, 7);
        writeFileSync(segPath, data);
        firstLost = last.index;
      } else {
        // Delete or corrupt an index of a random segment.
        const seg = segs[int(0, segs.length - 1)];
        const which = kind === 4 ? '.index' : '.timeindex';
        const ipath = join(pdir, seg.replace('.log', which));
        const mode = int(0, 2);
        if (mode === 0) unlinkSync(ipath);
        else if (mode === 1) writeFileSync(ipath, Buffer.concat([readFileSync(ipath), Buffer.from([1, 2, 3])]));
        else writeFileSync(ipath, Buffer.alloc(Math.max(readFileSync(ipath).length, 24), 0xff));
      }
      // Index damage is checked after both clean and unclean stops; tail damage after a crash.
      if (kind < 4 || t % 2 === 0) unlinkSync(join(trial.path, '.kafka_cleanshutdown'));
      const mgr = LogManager.create({ logDirs: [trial.path], defaults: config });
      await mgr.start();
      const log = mgr.getLog('s', 0)!;
      const kept = oracle.slice(0, firstLost);
      const leo = kept.length ? kept.at(-1)!.lastOffset + 1n : 0n;
      expect(log.logEndOffset, `trial ${t} kind ${kind}`).toBe(leo);
      // Every surviving batch byte-identical.
      expect(Buffer.compare(await readAll(log), Buffer.concat(kept.map((b) => b.bytes))), `trial ${t}`).toBe(0);
      // Random offset lookups against the oracle.
      for (let i = 0; i < 6 && leo > 0n; i++) {
        const off = BigInt(int(0, Number(leo) - 1));
        const want = kept.find((b) => b.lastOffset >= off)!;
        const got = batchesIn((await log.read(off, 1)).records);
        expect(got[0].baseOffset).toBe(want.baseOffset);
        lookups++;
      }
      // The log takes new appends right after the valid prefix.
      const after = await log.append(batch(2, { prefix: 'after' }));
      expect(after.baseOffset).toBe(leo);
      expect(batchesIn((await log.read(leo, 1)).records)[0].baseOffset).toBe(leo);
      // Index files are sane again on disk after a clean stop, and the invalid tail is gone from the file.
      await mgr.stop();
      if (firstLost > ranges[0].index) {
        const keptInLast = kept.filter((b) => b.baseOffset >= lastBase).reduce((n, b) => n + b.bytes.length, 0);
        const appended = batch(2, { prefix: 'after' }).length;
        expect(statSync(join(pdir, lastSeg)).size, `trial ${t}`).toBe(keptInLast + appended);
      }
      for (const f of readdirSync(pdir).filter((x) => x.endsWith('.index'))) expect(statSync(join(pdir, f)).size % 8).toBe(0);
      expect(existsSync(join(pdir, lastSeg)) || firstLost <= ranges[0].index).toBe(true);
    }
    expect(lookups).toBeGreaterThanOrEqual(1000);
  });
});
