import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Handler } from '@runnel/kafka-server';
import { ApiKey, ErrorCode, decodeRecordBatches } from '@runnel/protocol';
import { LogManager, defaultLogConfig } from '@runnel/storage';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator, ManualClock, MemoryOffsetsLog, encodeSubscription, logManagerOffsetsLog, partitionForGroup, type OffsetsLog } from '../src/index.ts';
import { callHandler as call } from './wire.ts';

/**
 * TxnOffsetCommit in the group coordinator: offsets pending per (group, producer) until the
 * transaction's marker (Coordinator.writeTxnMarker), UNSTABLE_OFFSET_COMMIT for requireStable
 * fetches meanwhile, replay of both on load, and Kafka's member/generation checks. Over
 * MemoryOffsetsLog and over a real @runnel/storage log (transactional batches and control
 * batches on disk, read back after a restart).
 */

const SELF = { nodeId: 7, host: 'coord.local', port: 19092 };
const PARTITIONS = 5;
const stopping: Coordinator[] = [];
afterEach(async () => {
  for (const c of stopping.splice(0)) await c.stop();
});

async function coordinator(log: OffsetsLog = new MemoryOffsetsLog(PARTITIONS)) {
  const c = Coordinator.create({ offsetsLog: log, clock: new ManualClock(), self: () => SELF, config: { 'group.initial.rebalance.delay.ms': 0 } });
  await c.start();
  stopping.push(c);
  return { c, h: c.handlers(), log };
}

const PID = 4000n;
const txnCommit = (h: Handler[], groupId: string, offset: bigint, o: { producerId?: bigint; generationId?: number; memberId?: string; partition?: number; version?: number } = {}) =>
  call(h, ApiKey.TxnOffsetCommit, o.version ?? 3, {
    transactionalId: 'tx-1',
    groupId,
    producerId: o.producerId ?? PID,
    producerEpoch: 0,
    generationId: o.generationId ?? -1,
    memberId: o.memberId ?? '',
    groupInstanceId: null,
    topics: [{ name: 'orders', partitions: [{ partitionIndex: o.partition ?? 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: 'm' }] }],
  });
const errorOf = (r: { topics: { partitions: { errorCode: number }[] }[] }) => r.topics[0]!.partitions[0]!.errorCode;

/** OffsetFetch v7 of orders-0: [errorCode, committedOffset]. */
async function fetch(h: Handler[], groupId: string, requireStable: boolean): Promise<[number, bigint]> {
  const r = await call(h, ApiKey.OffsetFetch, 7, { groupId, topics: [{ name: 'orders', partitionIndexes: [0] }], requireStable });
  const p = r.topics[0]!.partitions[0]!;
  return [p.errorCode, p.committedOffset];
}

const plainCommit = (h: Handler[], groupId: string, offset: bigint) =>
  call(h, ApiKey.OffsetCommit, 8, { groupId, generationIdOrMemberEpoch: -1, memberId: '', groupInstanceId: null, topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null }] }] });

const marker = (commit: boolean, producerId = PID) => ({ producerId, producerEpoch: 0, commit, coordinatorEpoch: 0 });

describe('TxnOffsetCommit', () => {
  it('keeps the offsets pending until a COMMIT marker, written as a transactional batch of the producer', async () => {
    const { c, h, log } = await coordinator();
    const p = partitionForGroup('g', PARTITIONS);
    expect(errorOf(await plainCommit(h, 'g', 5n))).toBe(ErrorCode.NONE);
    expect(errorOf(await txnCommit(h, 'g', 10n))).toBe(ErrorCode.NONE);

    const entries = (log as MemoryOffsetsLog).records[p]!;
    expect(entries.map((e) => e.producerId ?? -1n)).toEqual([-1n, PID]);
    expect(await fetch(h, 'g', false)).toEqual([ErrorCode.NONE, 5n]);
    expect(await fetch(h, 'g', true)).toEqual([ErrorCode.UNSTABLE_OFFSET_COMMIT, -1n]);

    expect(await c.writeTxnMarker(p, marker(true))).toBe(null);
    expect(entries.at(-1)!.marker).toEqual(marker(true));
    expect(await fetch(h, 'g', false)).toEqual([ErrorCode.NONE, 10n]);
    expect(await fetch(h, 'g', true)).toEqual([ErrorCode.NONE, 10n]);
  });

  it('drops the offsets on an ABORT marker, keeping the committed ones', async () => {
    const { c, h } = await coordinator();
    await plainCommit(h, 'g', 5n);
    await txnCommit(h, 'g', 10n);
    expect(await c.writeTxnMarker(partitionForGroup('g', PARTITIONS), marker(false))).toBe(null);
    expect(await fetch(h, 'g', true)).toEqual([ErrorCode.NONE, 5n]);
  });

  it('rebuilds pending, committed and aborted transactional offsets by replay', async () => {
    const log = new MemoryOffsetsLog(PARTITIONS);
    const first = await coordinator(log);
    const pg = (g: string) => partitionForGroup(g, PARTITIONS);
    // committed: g-commit; aborted: g-abort; still open: g-open (another producer).
    await txnCommit(first.h, 'g-commit', 11n);
    await txnCommit(first.h, 'g-abort', 12n, { producerId: PID + 1n });
    await txnCommit(first.h, 'g-open', 13n, { producerId: PID + 2n });
    await first.c.writeTxnMarker(pg('g-commit'), marker(true));
    await first.c.writeTxnMarker(pg('g-abort'), marker(false, PID + 1n));
    await first.c.stop();

    const { c, h } = await coordinator(log);
    expect(await fetch(h, 'g-commit', true)).toEqual([ErrorCode.NONE, 11n]);
    expect(await fetch(h, 'g-abort', true)).toEqual([ErrorCode.NONE, -1n]);
    expect(await fetch(h, 'g-open', true)).toEqual([ErrorCode.UNSTABLE_OFFSET_COMMIT, -1n]);
    // The open one completes after the restart, as a coordinator's recovery resends it.
    expect(await c.writeTxnMarker(pg('g-open'), marker(true, PID + 2n))).toBe(null);
    expect(await fetch(h, 'g-open', true)).toEqual([ErrorCode.NONE, 13n]);
  });

  it('a plain commit after the transactional one wins over it at COMMIT (log order, as Kafka)', async () => {
    const { c, h } = await coordinator();
    await txnCommit(h, 'g', 10n);
    await plainCommit(h, 'g', 20n);
    await c.writeTxnMarker(partitionForGroup('g', PARTITIONS), marker(true));
    expect(await fetch(h, 'g', true)).toEqual([ErrorCode.NONE, 20n]);
  });

  it('a deleted group stays deleted when the COMMIT of its pending offsets arrives, live and after a reload (Kafka drops them)', async () => {
    const log = new MemoryOffsetsLog(PARTITIONS);
    const first = await coordinator(log);
    await plainCommit(first.h, 'g', 5n);
    await txnCommit(first.h, 'g', 10n);
    await txnCommit(first.h, 'g', 11n, { partition: 1, producerId: PID + 1n });
    expect((await call(first.h, ApiKey.DeleteGroups, 2, { groupsNames: ['g'] })).results).toEqual([{ groupId: 'g', errorCode: ErrorCode.NONE }]);
    expect(await first.c.writeTxnMarker(partitionForGroup('g', PARTITIONS), marker(true))).toBe(null);
    expect(await first.c.writeTxnMarker(partitionForGroup('g', PARTITIONS), marker(true, PID + 1n))).toBe(null);
    expect(await fetch(first.h, 'g', true)).toEqual([ErrorCode.NONE, -1n]);
    expect((await call(first.h, ApiKey.ListGroups, 4, { statesFilter: [] })).groups).toEqual([]);
    await first.c.stop();

    const { h } = await coordinator(log);
    expect(await fetch(h, 'g', true)).toEqual([ErrorCode.NONE, -1n]);
    expect((await call(h, ApiKey.ListGroups, 4, { statesFilter: [] })).groups).toEqual([]);
  });

  it('checks the group: generation -1 may create a stand-alone group, a member must be current', async () => {
    const { h } = await coordinator();
    expect(errorOf(await txnCommit(h, 'nobody', 1n, { generationId: 3 }))).toBe(ErrorCode.ILLEGAL_GENERATION);
    // A group with a member (JoinGroup v4: MEMBER_ID_REQUIRED, then join with the id; SyncGroup).
    const subscription = encodeSubscription(['orders']);
    const join = (memberId: string) => call(h, ApiKey.JoinGroup, 5, {
      groupId: 'live', sessionTimeoutMs: 30_000, rebalanceTimeoutMs: 60_000, memberId, groupInstanceId: null, protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: subscription }],
    });
    const memberId = (await join('')).memberId;
    const joined = await join(memberId);
    expect(joined.errorCode).toBe(ErrorCode.NONE);
    await call(h, ApiKey.SyncGroup, 3, { groupId: 'live', generationId: joined.generationId, memberId, groupInstanceId: null, assignments: [] });
    expect(errorOf(await txnCommit(h, 'live', 1n, { generationId: joined.generationId + 1, memberId }))).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(errorOf(await txnCommit(h, 'live', 1n, { generationId: joined.generationId, memberId: 'stranger' }))).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(errorOf(await txnCommit(h, 'live', 1n, { generationId: joined.generationId, memberId }))).toBe(ErrorCode.NONE);
    // v0–2 carry no generation: not checked (as Kafka).
    expect(errorOf(await txnCommit(h, 'live', 2n, { version: 2 }))).toBe(ErrorCode.NONE);
  });

  it('a failed append forgets what it prepared; a marker for a partition not loaded here is NOT_LEADER_OR_FOLLOWER', async () => {
    const log = new MemoryOffsetsLog(PARTITIONS);
    const { c, h } = await coordinator(log);
    log.failAppends = new Error('disk gone');
    expect(errorOf(await txnCommit(h, 'g', 10n))).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    log.failAppends = null;
    expect(await fetch(h, 'g', true)).toEqual([ErrorCode.NONE, -1n]);
    c.unloadPartition(0);
    expect(await c.writeTxnMarker(0, marker(true))).toBe('NOT_LEADER_OR_FOLLOWER');
  });
});

describe('TxnOffsetCommit over a real @runnel/storage log', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runnel-txn-offsets-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a transactional batch and a COMMIT control batch, and replays both after a restart', async () => {
    const open = async () => {
      const logs = LogManager.create({ logDirs: [dir], defaults: defaultLogConfig });
      await logs.start();
      return { logs, offsetsLog: logManagerOffsetsLog({ logs, partitions: PARTITIONS }) };
    };
    const p = partitionForGroup('g', PARTITIONS);
    {
      const { logs, offsetsLog } = await open();
      const { c, h } = await coordinator(offsetsLog);
      expect(errorOf(await txnCommit(h, 'g', 10n))).toBe(ErrorCode.NONE);
      expect(errorOf(await txnCommit(h, 'g2', 3n, { producerId: PID + 1n }))).toBe(ErrorCode.NONE);
      expect(await c.writeTxnMarker(p, marker(true))).toBe(null);
      const log = logs.getLog('__consumer_offsets', p)!;
      const batches = decodeRecordBatches((await log.read(0n, 1 << 20)).records);
      const txn = batches.find((b) => !b.control && b.producerId === PID)!;
      expect([txn.transactional, txn.baseSequence]).toEqual([true, -1]);
      const control = batches.find((b) => b.control)!;
      expect([control.transactional, control.producerId, control.records[0]!.key!.readInt16BE(2)]).toEqual([true, PID, 1]);
      await c.stop();
      await logs.stop();
    }
    const { logs, offsetsLog } = await open();
    const { h } = await coordinator(offsetsLog);
    expect(await fetch(h, 'g', true)).toEqual([ErrorCode.NONE, 10n]);
    // g2's transaction never ended: still pending after the restart.
    expect(await fetch(h, 'g2', true)).toEqual([ErrorCode.UNSTABLE_OFFSET_COMMIT, -1n]);
    for (const c of stopping.splice(0)) await c.stop();
    await logs.stop();
  });
});
