import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { seededRandom } from '@runnel/common';
import { decodeRecordBatches, encodeRecordBatch } from '@runnel/protocol';
import { LogManager, StorageError, type PartitionLog } from '../src/index.ts';
import { ProducerStateManager } from '../src/producer-state.ts';
import { TxnIndex } from '../src/txn-index.ts';
import { kafkaTools, ok } from '../../../test/helpers/kafka-tools.ts';
import { tempDir, testConfig } from './helpers.ts';
import { runTxnScenario, txnBatch, txnState } from './fixtures/txn-scenario.ts';

const CHILD = fileURLToPath(new URL('./fixtures/txn-child.ts', import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function open(path: string, segmentBytes = 1 << 20): Promise<LogManager> {
  const mgr = LogManager.create({ logDirs: [path], defaults: testConfig({ segmentBytes }) });
  await mgr.start();
  return mgr;
}

async function fresh(name: string, segmentBytes?: number): Promise<{ mgr: LogManager; log: PartitionLog; dir: string }> {
  const d = tempDir();
  const mgr = await open(d.path, segmentBytes);
  cleanups.push(d.cleanup, () => mgr.stop().catch(() => {}));
  return { mgr, log: await mgr.createLog(name, 0), dir: d.path };
}

const data = (producerId: bigint, baseSequence: number, count = 1, producerEpoch = 0) => txnBatch({ producerId, producerEpoch, baseSequence, transactional: true, count });
const plain = (producerId: bigint, baseSequence: number, count = 1) => txnBatch({ producerId, producerEpoch: 0, baseSequence, transactional: false, count });

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as StorageError).code;
  }
}

describe('transactions in a partition log', () => {
  it('never forgets a closed transaction above a stalled high watermark: markers are refused (retriable) past the cap instead', async () => {
    const { log } = await fresh('txn-unreplicated');
    log.maxUnreplicatedTxns = 2;
    const marker = (producerId: bigint) => log.appendControl({ producerId, producerEpoch: 0, commit: false, coordinatorEpoch: 0 });
    await log.append(data(1n, 0)); // 0
    await marker(1n); // 1
    await log.append(data(2n, 0)); // 2
    await marker(2n); // 3
    await log.append(data(3n, 0)); // 4
    expect(await code(marker(3n))).toBe('TOO_MANY_UNREPLICATED_TXNS');
    // Producer 1's aborted records are still above the LSO (dropping its entry made it 2, then 4).
    expect(log.firstUnstableOffset()).toBe(0n);
    expect(log.logEndOffset).toBe(5n);
    // Once the high watermark moves past the first two markers there is room again.
    log.highWatermark = 4n;
    expect((await marker(3n)).baseOffset).toBe(5n);
    expect(log.firstUnstableOffset()).toBe(4n);
    log.highWatermark = 6n;
    expect(log.firstUnstableOffset()).toBeNull();
  });

  it('opens a transaction at its first batch, closes it at its marker, and indexes aborts with the LSO after them', async () => {
    const { log } = await fresh('txn');
    expect((await log.append(data(1n, 0, 3))).baseOffset).toBe(0n); // 0-2, producer 1 opens at 0
    await log.append(plain(9n, 0, 2)); // 3-4, idempotent, no transaction
    await log.append(data(2n, 0, 2)); // 5-6, producer 2 opens at 5
    await log.append(data(1n, 3)); // 7, producer 1's transaction goes on
    expect(log.firstUnstableOffset()).toBe(0n);
    expect((await log.appendControl({ producerId: 1n, producerEpoch: 0, commit: true, coordinatorEpoch: 4 })).baseOffset).toBe(8n);
    // Committed, but its marker is not below the high watermark yet: still unstable (Kafka's unreplicated transactions).
    expect(log.firstUnstableOffset()).toBe(0n);
    log.highWatermark = 8n;
    expect(log.firstUnstableOffset()).toBe(0n);
    log.highWatermark = 9n;
    expect(log.firstUnstableOffset()).toBe(5n);
    await log.append(data(3n, 0)); // 9, producer 3 opens at 9
    expect((await log.appendControl({ producerId: 2n, producerEpoch: 0, commit: false, coordinatorEpoch: 4 })).baseOffset).toBe(10n);
    log.highWatermark = 11n;
    expect(log.firstUnstableOffset()).toBe(9n);
    // The abort is indexed with the LSO right after it: producer 3's open transaction at 9.
    const seg = log.segmentList()[0];
    expect(seg.txnIndex.all()).toEqual([{ producerId: 2n, firstOffset: 5n, lastOffset: 10n, lastStableOffset: 9n }]);
    expect(log.abortedTransactions(0n, 11n)).toEqual([{ producerId: 2n, firstOffset: 5n }]);
    expect(log.abortedTransactions(10n, 11n)).toEqual([{ producerId: 2n, firstOffset: 5n }]);
    expect(log.abortedTransactions(0n, 5n)).toEqual([]); // the range ends before the transaction
    expect(log.abortedTransactions(11n, 12n)).toEqual([]); // it starts after the marker
    await log.appendControl({ producerId: 3n, producerEpoch: 0, commit: false, coordinatorEpoch: 4 }); // 11
    log.highWatermark = 12n;
    expect(log.firstUnstableOffset()).toBeNull();
    expect(seg.txnIndex.all().at(-1)).toEqual({ producerId: 3n, firstOffset: 9n, lastOffset: 11n, lastStableOffset: 12n });
    expect(log.producerSnapshot().sort((a, b) => Number(a.producerId - b.producerId))).toEqual([
      { producerId: 1n, producerEpoch: 0, lastSequence: 3, lastTimestamp: expect.any(BigInt), coordinatorEpoch: 4, currentTxnStartOffset: -1n },
      { producerId: 2n, producerEpoch: 0, lastSequence: 1, lastTimestamp: expect.any(BigInt), coordinatorEpoch: 4, currentTxnStartOffset: -1n },
      { producerId: 3n, producerEpoch: 0, lastSequence: 0, lastTimestamp: expect.any(BigInt), coordinatorEpoch: 4, currentTxnStartOffset: -1n },
      { producerId: 9n, producerEpoch: 0, lastSequence: 1, lastTimestamp: expect.any(BigInt), coordinatorEpoch: -1, currentTxnStartOffset: -1n },
    ]);
    // The marker is Kafka's control batch: transactional + control, baseSequence -1, key (0, type), value (0, coordinatorEpoch).
    const [marker] = decodeRecordBatches((await log.read(10n, 1 << 20, { maxOffset: 11n })).records);
    expect(marker).toMatchObject({ baseOffset: 10n, control: true, transactional: true, producerId: 2n, producerEpoch: 0, baseSequence: -1, recordCount: 1 });
    expect(marker.records[0].key!.toString('hex')).toBe('00000000');
    expect(marker.records[0].value!.toString('hex')).toBe('000000000004');
  });

  it('fences markers and batches by epoch, keeps a producer inside its transaction, and refuses client control batches', async () => {
    const { log } = await fresh('fence');
    await log.append(data(1n, 0, 2)); // 0-1
    const leo = log.logEndOffset;
    expect(await code(log.append(plain(1n, 2)))).toBe('INVALID_TXN_STATE');
    expect(await code(log.appendControl({ producerId: 1n, producerEpoch: 0, commit: true, coordinatorEpoch: 5 }))).toBe('ok'); // 2
    expect(await code(log.appendControl({ producerId: 1n, producerEpoch: 0, commit: true, coordinatorEpoch: 4 }))).toBe('TRANSACTION_COORDINATOR_FENCED');
    // The coordinator fences the producer (InitProducerId): an abort with the bumped epoch; the old epoch is then refused.
    await log.append(data(1n, 2)); // 3
    await log.appendControl({ producerId: 1n, producerEpoch: 1, commit: false, coordinatorEpoch: 5 }); // 4
    expect(await code(log.append(data(1n, 3)))).toBe('INVALID_PRODUCER_EPOCH');
    expect(await code(log.appendControl({ producerId: 1n, producerEpoch: 0, commit: false, coordinatorEpoch: 5 }))).toBe('INVALID_PRODUCER_EPOCH');
    expect(log.logEndOffset).toBe(leo + 3n); // nothing refused was written
    // A client may not write a control batch (Kafka: INVALID_RECORD).
    const forged = encodeRecordBatch({ records: [{ key: Buffer.from('00000001', 'hex'), value: Buffer.from('000000000001', 'hex') }], control: true, transactional: true, producerId: 7n, producerEpoch: 0, baseSequence: -1 });
    expect(await code(log.append(forged))).toBe('INVALID_RECORD');
    // A marker for a producer with nothing open is written (Kafka does) and closes nothing.
    await log.appendControl({ producerId: 8n, producerEpoch: 0, commit: false, coordinatorEpoch: 5 });
    log.highWatermark = log.logEndOffset;
    expect(log.firstUnstableOffset()).toBeNull();
    expect(log.segmentList()[0].txnIndex.all()).toEqual([{ producerId: 1n, firstOffset: 3n, lastOffset: 4n, lastStableOffset: 5n }]);
    // DeleteRecords past the start of an open transaction: it is unstable from the new log start.
    const opened = (await log.append(data(20n, 0))).baseOffset;
    await log.append(plain(21n, 0));
    log.highWatermark = log.logEndOffset;
    expect(log.firstUnstableOffset()).toBe(opened);
    await log.deleteRecordsBefore(opened + 1n);
    expect(log.firstUnstableOffset()).toBe(opened + 1n);
  });

  it('appends and markers written together in one coalesced write see each other in order', async () => {
    const { log } = await fresh('group');
    const results = await Promise.all([
      log.append(data(1n, 0)), // 0
      log.append(data(2n, 0)), // 1
      log.appendControl({ producerId: 1n, producerEpoch: 0, commit: false, coordinatorEpoch: 0 }), // 2: producer 2 still open
      log.appendControl({ producerId: 2n, producerEpoch: 0, commit: false, coordinatorEpoch: 0 }), // 3: nothing open
      log.append(data(1n, 1)), // 4: producer 1 opens again
      log.appendControl({ producerId: 2n, producerEpoch: 0, commit: false, coordinatorEpoch: -1 }), // fenced coordinator
    ].map((p) => p.then((r) => r.baseOffset, (e: StorageError) => e.code)));
    expect(results).toEqual([0n, 1n, 2n, 3n, 4n, 'TRANSACTION_COORDINATOR_FENCED']);
    expect(log.segmentList()[0].txnIndex.all()).toEqual([
      { producerId: 1n, firstOffset: 0n, lastOffset: 2n, lastStableOffset: 1n },
      { producerId: 2n, firstOffset: 1n, lastOffset: 3n, lastStableOffset: 4n },
    ]);
    log.highWatermark = 5n;
    expect(log.firstUnstableOffset()).toBe(4n);
  });

  it('takes the coordinator\'s sequence-less transactional batches without sequence checks, epoch-fenced', async () => {
    const { log } = await fresh('coord');
    const commit = (epoch: number) => txnBatch({ producerId: 5n, producerEpoch: epoch, baseSequence: -1, transactional: true });
    const a = await log.append(commit(1));
    const b = await log.append(commit(1)); // the same bytes again: not a duplicate, no sequence to check
    expect([a.baseOffset, b.baseOffset, a.duplicate, b.duplicate]).toEqual([0n, 1n, false, false]);
    expect(log.firstUnstableOffset()).toBe(0n);
    expect(await code(log.append(commit(0)))).toBe('INVALID_PRODUCER_EPOCH');
    await log.appendControl({ producerId: 5n, producerEpoch: 1, commit: true, coordinatorEpoch: 0 });
    log.highWatermark = log.logEndOffset;
    expect(log.firstUnstableOffset()).toBeNull();
    expect(log.producerSnapshot()).toEqual([{ producerId: 5n, producerEpoch: 1, lastSequence: -1, lastTimestamp: expect.any(BigInt), coordinatorEpoch: 0, currentTxnStartOffset: -1n }]);
  });

  it('finds an aborted transaction whose records start segments before its marker, and writes Kafka\'s .txnindex bytes', async () => {
    const { log, mgr } = await fresh('span', 1024);
    await log.append(data(1n, 0)); // 0: producer 1 opens
    let seq = 0;
    while (log.segmentList().length < 4) await log.append(data(2n, seq++)); // producer 2's transaction fills three segments
    const beforeMarker = log.segmentList().length;
    const marker = await log.appendControl({ producerId: 1n, producerEpoch: 0, commit: false, coordinatorEpoch: 2 });
    const segs = log.segmentList();
    expect(segs.length).toBe(beforeMarker);
    const last = segs.at(-1)!;
    // Producer 2's transaction (from offset 1) is still open: the LSO after the abort.
    expect(last.txnIndex.all()).toEqual([{ producerId: 1n, firstOffset: 0n, lastOffset: marker.baseOffset, lastStableOffset: 1n }]);
    // A fetch in the first segment learns of the abort from the last segment's index.
    expect(log.abortedTransactions(0n, 3n)).toEqual([{ producerId: 1n, firstOffset: 0n }]);
    expect(log.abortedTransactions(segs[1].baseOffset, segs[2].baseOffset)).toEqual([{ producerId: 1n, firstOffset: 0n }]);
    await log.flush();
    const bytes = readFileSync(last.txnIndexPath);
    const want = Buffer.alloc(34);
    want.writeBigInt64BE(1n, 2);
    want.writeBigInt64BE(0n, 10);
    want.writeBigInt64BE(marker.baseOffset, 18);
    want.writeBigInt64BE(1n, 26);
    expect(bytes.toString('hex')).toBe(want.toString('hex'));
    for (const s of segs.slice(0, -1)) expect(existsSync(s.txnIndexPath)).toBe(false); // created with its first entry, as in Kafka
    // Retention takes a segment's .txnindex with it.
    await log.appendControl({ producerId: 2n, producerEpoch: 0, commit: true, coordinatorEpoch: 2 });
    let s3 = 0;
    while (log.segmentList().at(-1) === last) await log.append(plain(3n, s3++));
    log.highWatermark = log.logEndOffset;
    await log.deleteRecordsBefore(log.logEndOffset);
    await vi.waitFor(() => expect([existsSync(last.txnIndexPath), existsSync(`${last.txnIndexPath}.deleted`), existsSync(last.logPath)]).toEqual([false, false, false]));
    await mgr.stop();
  });

  it('keeps the .txnindex entry of a transaction that began before the log start when a restart must replay without a snapshot', async () => {
    const d = tempDir();
    cleanups.push(d.cleanup);
    let mgr = await open(d.path, 1024);
    let log = await mgr.createLog('start', 0);
    await log.append(data(1n, 0)); // 0: opens, in the first segment
    let s2 = 0;
    while (log.segmentList().length < 3) await log.append(plain(2n, s2++));
    const abort = await log.appendControl({ producerId: 1n, producerEpoch: 0, commit: false, coordinatorEpoch: 0 });
    await log.append(plain(2n, s2++));
    await log.deleteRecordsBefore(log.segmentList().at(-1)!.baseOffset);
    const want = [{ producerId: 1n, firstOffset: 0n }];
    expect(log.abortedTransactions(log.logStartOffset, abort.baseOffset + 1n)).toEqual(want);
    await mgr.stop();
    // Without the snapshot the load replays from the log start, where producer 1's transaction is unknown.
    unlinkSync(join(d.path, 'start-0', 'producer-state-checkpoint'));
    mgr = await open(d.path, 1024);
    cleanups.push(() => mgr.stop().catch(() => {}));
    log = mgr.getLog('start', 0)!;
    expect(log.abortedTransactions(log.logStartOffset, abort.baseOffset + 1n)).toEqual(want);
  });

  it('truncation rolls open and closed transactions back with the log and its .txnindex', async () => {
    const { log } = await fresh('trunc');
    await log.append(data(1n, 0, 2)); // 0-1
    await log.append(data(2n, 0)); // 2
    const abort = await log.appendControl({ producerId: 1n, producerEpoch: 0, commit: false, coordinatorEpoch: 1 }); // 3
    await log.flush();
    const seg = log.segmentList()[0];
    expect(statSync(seg.txnIndexPath).size).toBe(34);
    log.highWatermark = 4n;
    expect(log.firstUnstableOffset()).toBe(2n);
    // Cut the abort marker: producer 1's transaction is open again, its index entry is gone.
    await log.truncateTo(abort.baseOffset);
    log.highWatermark = log.logEndOffset;
    expect(log.firstUnstableOffset()).toBe(0n);
    expect(log.abortedTransactions(0n, 10n)).toEqual([]);
    expect(existsSync(seg.txnIndexPath)).toBe(false);
    expect(log.producerSnapshot().find((p) => p.producerId === 1n)?.currentTxnStartOffset).toBe(0n);
    // Cut producer 2's only batch and producer 1's: nothing is open any more.
    await log.truncateTo(0n);
    expect(log.firstUnstableOffset()).toBeNull();
    expect(log.producerSnapshot()).toEqual([]);
  });

  it('answers as a naive replay of the log bytes for every range (three seeds, transactions across segments)', async () => {
    for (const seed of [1, 2, 3]) {
      const { log } = await fresh(`model${seed}`, 2048);
      await runTxnScenario(log, 150, seed);
      const leo = log.logEndOffset;
      // The model: walk every batch, open a transaction at a producer's first transactional batch, close it at its marker.
      const open = new Map<bigint, bigint>();
      const aborted: { producerId: bigint; firstOffset: bigint; lastOffset: bigint }[] = [];
      for (let at = 0n; at < leo; ) {
        const batches = decodeRecordBatches((await log.read(at, 1 << 20)).records);
        for (const b of batches) {
          if (b.control) {
            const first = open.get(b.producerId);
            open.delete(b.producerId);
            if (first !== undefined && b.records[0].key!.readInt16BE(2) === 0) aborted.push({ producerId: b.producerId, firstOffset: first, lastOffset: b.baseOffset });
          } else if (b.transactional && !open.has(b.producerId)) open.set(b.producerId, b.baseOffset);
          at = b.baseOffset + BigInt(b.lastOffsetDelta) + 1n;
        }
      }
      expect(aborted.length).toBeGreaterThan(5);
      log.highWatermark = leo;
      expect(log.firstUnstableOffset()).toBe([...open.values()].reduce<bigint | null>((m, v) => (m === null || v < m ? v : m), null));
      const rnd = seededRandom(seed);
      for (let i = 0; i < 300; i++) {
        const from = BigInt(rnd.int(0, Number(leo)));
        const to = from + BigInt(rnd.int(1, 120));
        const want = aborted.filter((a) => a.lastOffset >= from && a.firstOffset < to).map((a) => ({ producerId: a.producerId, firstOffset: a.firstOffset }));
        expect(log.abortedTransactions(from, to), `[${from}, ${to})`).toEqual(want);
      }
      expect(log.segmentList().length).toBeGreaterThan(5);
    }
  });

  it('a follower fed the leader\'s bytes knows the same transactions and writes the same .txnindex entries', async () => {
    const leader = await fresh('follow', 4096);
    await runTxnScenario(leader.log);
    const follower = await fresh('follow', 4096);
    let at = 0n;
    while (at < leader.log.logEndOffset) {
      const r = await leader.log.read(at, 1500); // chunks unlike the leader's appends: different segment bases
      const { lastOffset } = await follower.log.appendAsFollower(r.records);
      at = lastOffset + 1n;
    }
    const l = txnState(leader.log);
    const f = txnState(follower.log);
    expect(f.firstUnstableOffset).toBe(l.firstUnstableOffset);
    expect(f.producers).toEqual(l.producers);
    const entries = (s: Record<string, unknown>) => (s.indexes as string[]).flatMap((line) => line.split(': ')[1].split(' ').filter(Boolean));
    expect(entries(l).length).toBeGreaterThan(3);
    expect(entries(f)).toEqual(entries(l));
    for (const [from, to] of [[0n, leader.log.logEndOffset], [0n, 40n], [100n, 180n], [leader.log.logEndOffset - 30n, leader.log.logEndOffset]]) {
      expect(follower.log.abortedTransactions(from, to)).toEqual(leader.log.abortedTransactions(from, to));
    }
  });

  it('recovery after a crash (killed before any final snapshot) rebuilds the same transactions and .txnindex files; a malformed .txnindex is rebuilt', async () => {
    const d = tempDir();
    cleanups.push(d.cleanup);
    const expected = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const child = spawn(process.execPath, [CHILD, d.path, '4096'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let state: Record<string, unknown> | null = null;
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (!line.startsWith('STATE ')) return;
        state = JSON.parse(line.slice(6)) as Record<string, unknown>;
        child.kill('SIGKILL');
      });
      child.on('error', reject);
      child.on('exit', (_code, signal) => (signal === 'SIGKILL' && state ? resolve(state) : reject(new Error(`txn child exited without its state (${signal ?? _code})`))));
    });
    expect(existsSync(join(d.path, '.kafka_cleanshutdown'))).toBe(false);
    expect(Number(expected.firstUnstableOffset)).toBeGreaterThan(0); // the scenario leaves transactions open
    let mgr = await open(d.path, 4096);
    let log = mgr.getLog('txn', 0)!;
    const recovered = txnState(log, true);
    const { files, ...rest } = recovered;
    expect(rest).toEqual(expected);
    // Every segment's file holds exactly its in-memory entries (rebuilt where the crash lost them).
    const onDisk = (files as (string | null)[]).map((hex) => (hex === null ? [] : TxnIndex.decode(Buffer.from(hex, 'hex'))));
    expect(onDisk).toEqual(log.segmentList().map((s) => [...s.txnIndex.all()]));
    expect(onDisk.flat().length).toBeGreaterThan(3);
    // A clean restart reads the snapshot with the open transactions.
    await mgr.stop();
    mgr = await open(d.path, 4096);
    log = mgr.getLog('txn', 0)!;
    expect(txnState(log, true)).toEqual(recovered);
    // A torn .txnindex in an old segment: the load replays every transaction and writes it again.
    const torn = log.segmentList().find((s) => s.txnIndex.size > 0 && s !== log.segmentList().at(-1))!;
    await mgr.stop();
    truncateSync(torn.txnIndexPath, 20);
    mgr = await open(d.path, 4096);
    cleanups.push(() => mgr.stop().catch(() => {}));
    log = mgr.getLog('txn', 0)!;
    expect(txnState(log, true)).toEqual(recovered);
  });

  it('an abort indexed while its .txnindex is being written is written by the next flush, and overlapping flushes land in order', async () => {
    const d = tempDir();
    cleanups.push(d.cleanup);
    const path = join(d.path, '00000000000000000000.txnindex');
    const idx = new TxnIndex(path);
    const entry = (n: bigint) => ({ producerId: n, firstOffset: n * 10n, lastOffset: n * 10n + 5n, lastStableOffset: n * 10n + 6n });
    idx.append(entry(1n));
    const first = idx.flush(false); // encodes [1] once its turn comes
    idx.append(entry(2n)); // arrives while that write is in flight
    const second = idx.flush(false);
    idx.append(entry(3n));
    await Promise.all([first, second]);
    await idx.flush(false);
    expect(TxnIndex.decode(readFileSync(path))).toEqual([entry(1n), entry(2n), entry(3n)]);
  });

  it('reads producer snapshots written before transactions (no coordinator epoch, no open transaction)', () => {
    const state = new ProducerStateManager();
    const at = ProducerStateManager.parse([['offset', '42'], ['7', '3', '1700000000000', '0:4:10:14,5:5:15:15']], state);
    expect(at).toBe(42n);
    expect(state.producers.get(7n)).toEqual({ producerId: 7n, epoch: 3, lastTimestamp: 1700000000000n, batches: [{ firstSeq: 0, lastSeq: 4, firstOffset: 10n, lastOffset: 14n }, { firstSeq: 5, lastSeq: 5, firstOffset: 15n, lastOffset: 15n }], coordinatorEpoch: -1, currentTxnFirstOffset: -1n });
    expect(state.firstOngoingOffset()).toBeNull();
    // And the new lines round-trip, an open transaction included.
    state.applyMarker({ producerId: 8n, producerEpoch: 1, coordinatorEpoch: 2, commit: false, offset: 20n, timestamp: 5n });
    state.producers.set(9n, { producerId: 9n, epoch: 0, lastTimestamp: 1n, batches: [], coordinatorEpoch: 2, currentTxnFirstOffset: 30n });
    const again = new ProducerStateManager();
    ProducerStateManager.parse(state.serialize(31n).map((l) => l.split(' ')), again);
    expect([...again.producers.values()]).toEqual([...state.producers.values()]);
    expect(again.firstOngoingOffset()).toBe(30n);
  });
});

describe("Kafka's kafka-dump-log reads the transactional files", () => {
  it('prints the control batches of a .log and the entries of a .txnindex', { timeout: 120_000 }, async () => {
    const { log } = await fresh('dump');
    await log.append(data(11n, 0, 2)); // 0-1
    await log.appendControl({ producerId: 11n, producerEpoch: 0, commit: true, coordinatorEpoch: 6 }); // 2
    await log.append(data(12n, 0)); // 3
    await log.appendControl({ producerId: 12n, producerEpoch: 0, commit: false, coordinatorEpoch: 7 }); // 4
    await log.flush();
    const seg = log.segmentList()[0];
    const tools = await kafkaTools();
    const [dumpLog, dumpTxn] = await Promise.all([
      tools.run('org.apache.kafka.tools.DumpLogSegments', ['--files', seg.logPath, '--print-data-log']),
      tools.run('org.apache.kafka.tools.DumpLogSegments', ['--files', seg.txnIndexPath]),
    ]);
    const logOut = ok(dumpLog);
    expect(logOut).toMatch(/baseOffset: 0 lastOffset: 1 count: 2 .*producerId: 11 producerEpoch: 0 .*isTransactional: true isControl: false/);
    expect(logOut).toMatch(/baseOffset: 2 lastOffset: 2 count: 1 .*producerId: 11 .*isTransactional: true isControl: true/);
    expect(logOut).toMatch(/endTxnMarker: COMMIT coordinatorEpoch: 6/);
    expect(logOut).toMatch(/endTxnMarker: ABORT coordinatorEpoch: 7/);
    expect(ok(dumpTxn)).toMatch(/version: 0 producerId: 12 firstOffset: 3 lastOffset: 4 lastStableOffset: 5/);
  });
});
