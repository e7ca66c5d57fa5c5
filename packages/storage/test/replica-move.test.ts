// FutureCopy (AlterReplicaLogDirs) appends what each segment file gained since the last pass. A
// follower's truncation cuts a segment and appends other batches at the same positions: once the
// file has grown past what the copy holds, only the part past the copy's end would be copied, and
// the future replica (loaded as cleanly shut down, without a scan) would keep the cut batches.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { LogManager } from '../src/index.ts';
import { FutureCopy, Throttle } from '../src/replica-move.ts';
import { batch, tempDir, testConfig } from './helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a truncation between passes makes the next pass copy the segment again: the copy equals the source', async () => {
  const d = tempDir();
  const other = tempDir();
  const logs = LogManager.create({ logDirs: [d.path], defaults: testConfig() });
  cleanups.push(d.cleanup, other.cleanup, () => logs.stop());
  await logs.start();
  const log = await logs.createLog('t', 0);
  for (let i = 0; i < 3; i++) await log.append(batch(5, { prefix: `old${i}` }), { leaderEpoch: 1 });
  const copy = new FutureCopy(join(other.path, 't-0.0123abcd-future'), new Throttle(() => Infinity), () => false);
  await copy.init();
  expect(await copy.pass(log, false)).toBeGreaterThan(0);

  // A new leader's log diverged after offset 5: cut there and append its (longer) batches.
  await log.truncateTo(5n);
  for (let i = 0; i < 3; i++) await log.append(batch(5, { prefix: `new${i}`, size: 40 }), { leaderEpoch: 2 });
  await log.close();
  await copy.pass(log, true);

  const logFiles = readdirSync(log.dir).filter((n) => n.endsWith('.log'));
  expect(logFiles.length).toBeGreaterThan(0);
  for (const name of readdirSync(log.dir)) {
    expect(readFileSync(join(copy.dir, name)).equals(readFileSync(join(log.dir, name))), name).toBe(true);
  }
});

it('the last pass (the partition closed) is not throttled: at 1 byte/s it still copies the rest at once', async () => {
  const d = tempDir();
  const other = tempDir();
  // Small segments: several files, each a chunk of its own (a first chunk passes at once).
  const logs = LogManager.create({ logDirs: [d.path], defaults: testConfig({ segmentBytes: 1024 }) });
  cleanups.push(d.cleanup, other.cleanup, () => logs.stop());
  await logs.start();
  const log = await logs.createLog('t', 0);
  for (let i = 0; i < 4; i++) await log.append(batch(5, { prefix: `r${i}`, size: 100 }), { leaderEpoch: 1 });
  expect(log.segmentInfo().length).toBeGreaterThan(2);
  const copy = new FutureCopy(join(other.path, 't-0.0123abcd-future'), new Throttle(() => 1), () => false);
  await copy.init();
  await log.close();
  // Throttled, this pass would wait about a second per byte of every file after the first (the test times out).
  await copy.pass(log, true);
  for (const name of readdirSync(log.dir)) {
    expect(readFileSync(join(copy.dir, name)).equals(readFileSync(join(log.dir, name))), name).toBe(true);
  }
}, 20_000);

it('deleteLog during a move ends the move first: nothing of the partition is left in either dir', async () => {
  const a = tempDir();
  const b = tempDir();
  // 1 byte/s: the copy is held in its first pass until deleteLog cancels it.
  const logs = LogManager.create({ logDirs: [a.path, b.path], defaults: testConfig({ segmentBytes: 1024 }), moveBytesPerSecond: () => 1 });
  cleanups.push(a.cleanup, b.cleanup, () => logs.stop());
  await logs.start();
  const log = await logs.createLog('t', 0);
  for (let i = 0; i < 4; i++) await log.append(batch(5, { prefix: `r${i}`, size: 100 }), { leaderEpoch: 1 });
  const target = log.logDir === a.path ? b.path : a.path;
  expect(logs.alterLogDir('t', 0, target)).toBe('ok');
  for (let i = 0; i < 200 && !readdirSync(target).some((n) => n.endsWith('-future')); i++) await new Promise((r) => setTimeout(r, 10));
  expect(readdirSync(target).filter((n) => n.endsWith('-future'))).toHaveLength(1);

  await logs.deleteLog('t', 0);
  expect(logs.getLog('t', 0)).toBeUndefined();
  for (const dir of [a.path, b.path]) expect(readdirSync(dir).filter((n) => n.startsWith('t-0')), dir).toEqual([]);
}, 20_000);

it('takes a log dir written as Kafka would accept it (a trailing slash) and moves the partition there', async () => {
  const a = tempDir();
  const b = tempDir();
  const logs = LogManager.create({ logDirs: [a.path, b.path], defaults: testConfig() });
  cleanups.push(a.cleanup, b.cleanup, () => logs.stop());
  await logs.start();
  const log = await logs.createLog('t', 0);
  await log.append(batch(5), { leaderEpoch: 1 });
  const source = log.logDir;
  const target = source === a.path ? b.path : a.path;
  // The dir it is in, spelt otherwise: nothing to do.
  expect(logs.alterLogDir('t', 0, `${source}/`)).toBe('ok');
  expect(logs.futureLogs()).toEqual([]);
  expect(logs.alterLogDir('t', 0, `${target}/`)).toBe('ok');
  for (let i = 0; i < 500 && logs.getLog('t', 0)?.logDir !== target; i++) await new Promise((r) => setTimeout(r, 10));
  expect(logs.getLog('t', 0)!.logDir).toBe(target);
  expect((await logs.getLog('t', 0)!.read(0n, 1 << 20)).records.length).toBeGreaterThan(0);
}, 20_000);
