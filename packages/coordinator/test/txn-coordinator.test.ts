import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import { partitionForGroup } from '@runnel/protocol';
import { TransactionCoordinator, partitionForTransactionalId, type TxnMarkerRequest, type TxnStateLog } from '../src/txn-coordinator.ts';
import { decodeTxnKey, decodeTxnValue, type TxnLogValue } from '../src/txn-records.ts';
import { initProducerIdTxn, transactionHandlers } from '../src/txn-handlers.ts';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { notCoordinatorHandlers } from '../src/not-coordinator.ts';

const PARTITIONS = 4;

/** An in-memory __transaction_state: appends can be made to fail. */
class TestLog implements TxnStateLog {
  readonly partitions = PARTITIONS;
  readonly entries = new Map<number, { key: Buffer; value: Buffer | null }[]>();
  failNext: Error | null = null;
  async append(partition: number, records: readonly { key: Buffer; value: Buffer | null }[]): Promise<void> {
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      throw e;
    }
    const list = this.entries.get(partition) ?? [];
    list.push(...records);
    this.entries.set(partition, list);
  }
  async load(partition: number, apply: (key: Buffer, value: Buffer | null) => void): Promise<void> {
    for (const r of this.entries.get(partition) ?? []) apply(r.key, r.value);
  }
  /** The values written for an id, decoded (null = tombstone). */
  values(id: string): (TxnLogValue | null)[] {
    const p = partitionForTransactionalId(id, PARTITIONS);
    return (this.entries.get(p) ?? []).filter((r) => decodeTxnKey(r.key) === id).map((r) => (r.value === null ? null : decodeTxnValue(r.value)));
  }
  states(id: string): string[] {
    return this.values(id).map((v) => (v === null ? 'tombstone' : `${v.state}@${v.producerEpoch}`));
  }
}

/** A marker sink that records calls and answers what the test says (default: every partition ok). */
class TestSink {
  calls: TxnMarkerRequest[] = [];
  answer: (m: TxnMarkerRequest) => (string | null) = () => null;
  async write(m: TxnMarkerRequest) {
    this.calls.push(structuredClone(m));
    return m.partitions.map((p) => ({ ...p, error: this.answer(m) }));
  }
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

async function setup(o: { log?: TestLog; config?: object } = {}) {
  const clock = new ManualClock();
  const log = o.log ?? new TestLog();
  const sink = new TestSink();
  let nextId = 1000n;
  const tc = new TransactionCoordinator({
    log, markers: sink, clock, allocateProducerId: async () => nextId++,
    config: { 'offsets.topic.num.partitions': 50, ...o.config }, retry: { initialMs: 100, maxMs: 400 },
  });
  for (let p = 0; p < PARTITIONS; p++) await tc.loadPartition(p, 7);
  tc.start();
  return { clock, log, sink, tc };
}

const TX = 'tx-a';
const base = (producerId: bigint, producerEpoch: number) => ({ transactionalId: TX, producerId, producerEpoch });

describe('TransactionCoordinator', () => {
  it('InitProducerId: a new id at epoch 0, a known one bumped; timeout, ownership and id checks', async () => {
    const { tc, log } = await setup();
    const a = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(a).toEqual({ error: 'NONE', producerId: 1000n, producerEpoch: 0 });
    const b = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(b).toEqual({ error: 'NONE', producerId: 1000n, producerEpoch: 1 });
    expect(log.states(TX)).toEqual(['Empty@0', 'Empty@1']);
    expect((await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 900_001, producerId: -1n, producerEpoch: -1 })).error).toBe('INVALID_TRANSACTION_TIMEOUT');
    expect((await tc.initProducerId({ transactionalId: '', transactionTimeoutMs: 1000, producerId: -1n, producerEpoch: -1 })).error).toBe('INVALID_REQUEST');
    tc.unloadPartition(tc.partitionFor(TX));
    expect((await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 1000, producerId: -1n, producerEpoch: -1 })).error).toBe('NOT_COORDINATOR');
    expect(tc.describe([TX])[0]!.error).toBe('NOT_COORDINATOR');
  });

  it('a failed append changes nothing and answers a retriable error', async () => {
    const { tc, log } = await setup();
    await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    log.failNext = new Error('leader moved');
    expect(await tc.addPartitions({ ...base(1000n, 0), partitions: [{ topic: 't', partition: 0 }] })).toBe('COORDINATOR_NOT_AVAILABLE');
    expect(tc.get(TX)!.state).toBe('Empty');
    log.failNext = Object.assign(new Error('moved'), { code: 'NOT_COORDINATOR' });
    expect(await tc.addPartitions({ ...base(1000n, 0), partitions: [{ topic: 't', partition: 0 }] })).toBe('NOT_COORDINATOR');
    expect(await tc.addPartitions({ ...base(1000n, 0), partitions: [{ topic: 't', partition: 0 }] })).toBe('NONE');
  });

  it('commit: Ongoing → PrepareCommit (answered) → markers → CompleteCommit; retries and wrong decisions', async () => {
    const { tc, log, sink } = await setup();
    const { producerId, producerEpoch } = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(await tc.endTxn({ ...base(producerId, producerEpoch), commit: true })).toBe('INVALID_TXN_STATE');
    expect(await tc.addPartitions({ ...base(producerId, producerEpoch), partitions: [{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }] })).toBe('NONE');
    expect(await tc.addPartitions({ ...base(producerId, producerEpoch), partitions: [{ topic: 't', partition: 1 }] })).toBe('NONE'); // already in: no write
    expect(await tc.addOffsets({ ...base(producerId, producerEpoch), groupId: 'g1' })).toBe('NONE');
    expect(await tc.addPartitions({ ...base(producerId + 1n, producerEpoch), partitions: [] })).toBe('INVALID_PRODUCER_ID_MAPPING');
    expect(await tc.addPartitions({ ...base(producerId, producerEpoch + 1), partitions: [] })).toBe('PRODUCER_FENCED');
    const g = partitionForGroup('g1', 50);
    expect(tc.describe([TX])[0]).toMatchObject({ state: 'Ongoing', partitions: [{ topic: '__consumer_offsets', partitions: [g] }, { topic: 't', partitions: [0, 1] }] });
    expect(tc.verifyPartitions({ ...base(producerId, producerEpoch), partitions: [{ topic: 't', partition: 1 }, { topic: 't', partition: 9 }] }).partitions.map((p) => p.error))
      .toEqual(['NONE', 'INVALID_TXN_STATE']);

    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const write = sink.write.bind(sink);
    sink.write = async (m) => {
      await held;
      return write(m);
    };
    expect(await tc.endTxn({ ...base(producerId, producerEpoch), commit: true })).toBe('NONE');
    expect(tc.get(TX)!.state).toBe('PrepareCommit');
    expect(await tc.endTxn({ ...base(producerId, producerEpoch), commit: true })).toBe('CONCURRENT_TRANSACTIONS');
    expect(await tc.endTxn({ ...base(producerId, producerEpoch), commit: false })).toBe('INVALID_TXN_STATE');
    expect((await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 })).error).toBe('CONCURRENT_TRANSACTIONS');
    release();
    await flush();
    expect(sink.calls).toEqual([{ producerId, producerEpoch, coordinatorEpoch: 7, commit: true, partitions: [{ topic: '__consumer_offsets', partition: g }, { topic: 't', partition: 0 }, { topic: 't', partition: 1 }] }]);
    expect(log.states(TX)).toEqual(['Empty@0', 'Ongoing@0', 'Ongoing@0', 'PrepareCommit@0', 'CompleteCommit@0']);
    expect(log.values(TX).at(-1)!.partitions).toEqual([]);
    expect(await tc.endTxn({ ...base(producerId, producerEpoch), commit: true })).toBe('NONE');
    expect(await tc.endTxn({ ...base(producerId, producerEpoch), commit: false })).toBe('INVALID_TXN_STATE');
    // The next transaction starts from CompleteCommit.
    expect(await tc.addPartitions({ ...base(producerId, producerEpoch), partitions: [{ topic: 'u', partition: 0 }] })).toBe('NONE');
    expect(tc.describe([TX])[0]).toMatchObject({ state: 'Ongoing', partitions: [{ topic: 'u', partitions: [0] }] });
  });

  it('fencing: a new producer aborts the old one\'s Ongoing transaction with a bumped epoch', async () => {
    const { tc, log, sink } = await setup();
    const old = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    await tc.addPartitions({ ...base(old.producerId, old.producerEpoch), partitions: [{ topic: 't', partition: 0 }] });
    sink.answer = () => 'NOT_LEADER_OR_FOLLOWER';
    const first = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(first.error).toBe('CONCURRENT_TRANSACTIONS');
    expect(log.states(TX).at(-1)).toBe('PrepareAbort@1');
    expect(await tc.addPartitions({ ...base(old.producerId, 0), partitions: [{ topic: 't', partition: 1 }] })).toBe('PRODUCER_FENCED');
    expect(await tc.endTxn({ ...base(old.producerId, 0), commit: true })).toBe('PRODUCER_FENCED');
    await flush();
    expect(sink.calls.length).toBe(1);
    expect(sink.calls[0]).toMatchObject({ commit: false, producerEpoch: 1 });
    // A retriable marker error is retried with backoff; the abort completes once the leader answers.
    sink.answer = () => null;
    (tc as unknown as { clock: ManualClock }).clock.advance(100);
    await flush();
    expect(sink.calls.length).toBe(2);
    expect(log.states(TX).at(-1)).toBe('CompleteAbort@1');
    const next = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(next).toEqual({ error: 'NONE', producerId: old.producerId, producerEpoch: 2 });
  });

  it('KIP-360: a producer with its id and epoch is bumped; a stale one is fenced; a retry gets the same epoch', async () => {
    const { tc } = await setup();
    const a = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    const b = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: a.producerId, producerEpoch: a.producerEpoch });
    expect(b).toEqual({ error: 'NONE', producerId: a.producerId, producerEpoch: 1 });
    const retry = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: a.producerId, producerEpoch: a.producerEpoch });
    expect(retry).toEqual({ error: 'NONE', producerId: a.producerId, producerEpoch: 1 });
    expect((await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: 5n, producerEpoch: 0 })).error).toBe('PRODUCER_FENCED');
    await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 }); // epoch 2, last epoch forgotten
    expect((await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: a.producerId, producerEpoch: 0 })).error).toBe('PRODUCER_FENCED');
  });

  it('an exhausted epoch gets a new producer id', async () => {
    const log = new TestLog();
    const { tc } = await setup({ log });
    const a = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    tc.get(TX)!.producerEpoch = 32766;
    const b = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(b.producerId).not.toBe(a.producerId);
    expect(b.producerEpoch).toBe(0);
  });

  it('an Ongoing transaction past its timeout is aborted (epoch bumped); the id expires after transactional.id.expiration.ms', async () => {
    const { tc, log, clock, sink } = await setup({ config: { 'transactional.id.expiration.ms': 3_600_000 } });
    const p = await tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 15_000, producerId: -1n, producerEpoch: -1 });
    await tc.addPartitions({ ...base(p.producerId, p.producerEpoch), partitions: [{ topic: 't', partition: 3 }] });
    clock.advance(10_000);
    await flush();
    expect(tc.get(TX)!.state).toBe('Ongoing');
    clock.advance(10_000);
    await flush();
    expect(sink.calls).toEqual([{ producerId: p.producerId, producerEpoch: 1, coordinatorEpoch: 7, commit: false, partitions: [{ topic: 't', partition: 3 }] }]);
    expect(log.states(TX)).toEqual(['Empty@0', 'Ongoing@0', 'PrepareAbort@1', 'CompleteAbort@1']);
    expect(await tc.endTxn({ ...base(p.producerId, p.producerEpoch), commit: true })).toBe('PRODUCER_FENCED');
    clock.advance(3_600_000 + 3_600_000);
    await flush();
    expect(log.states(TX).at(-1)).toBe('tombstone');
    expect(tc.get(TX)).toBeUndefined();
    expect(tc.describe([TX])[0]!.error).toBe('TRANSACTIONAL_ID_NOT_FOUND');
  });

  it('recovery: a partition loaded in PrepareCommit sends the markers again and completes; a lost partition stops sending', async () => {
    const log = new TestLog();
    const first = await setup({ log });
    const p = await first.tc.initProducerId({ transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    await first.tc.addPartitions({ ...base(p.producerId, p.producerEpoch), partitions: [{ topic: 't', partition: 0 }] });
    first.sink.answer = () => 'NOT_LEADER_OR_FOLLOWER';
    expect(await first.tc.endTxn({ ...base(p.producerId, p.producerEpoch), commit: true })).toBe('NONE');
    await flush();
    // The coordinator "dies" between PREPARE and COMPLETE: it stops, and never retries again.
    first.tc.stop();
    first.clock.advance(10_000);
    await flush();
    expect(first.sink.calls.length).toBe(1);
    expect(log.states(TX).at(-1)).toBe('PrepareCommit@0');

    const second = await setup({ log });
    await flush();
    expect(second.sink.calls).toEqual([{ producerId: p.producerId, producerEpoch: 0, coordinatorEpoch: 7, commit: true, partitions: [{ topic: 't', partition: 0 }] }]);
    expect(log.states(TX).at(-1)).toBe('CompleteCommit@0');
    expect(second.tc.describe([TX])[0]).toMatchObject({ state: 'CompleteCommit', producerId: p.producerId, partitions: [] });
  });

  it('ListTransactions filters by state, producer id and duration; unknown states are answered back', async () => {
    const { tc, clock } = await setup();
    const a = await tc.initProducerId({ transactionalId: 'a', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    await tc.initProducerId({ transactionalId: 'b', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    await tc.addPartitions({ transactionalId: 'a', producerId: a.producerId, producerEpoch: a.producerEpoch, partitions: [{ topic: 't', partition: 0 }] });
    clock.advance(5000);
    const names = (r: { transactions: { transactionalId: string }[] }) => r.transactions.map((t) => t.transactionalId).sort();
    expect(names(tc.list({ states: [], producerIds: [], durationMs: -1n }))).toEqual(['a', 'b']);
    expect(names(tc.list({ states: ['Ongoing'], producerIds: [], durationMs: -1n }))).toEqual(['a']);
    expect(names(tc.list({ states: [], producerIds: [a.producerId], durationMs: -1n }))).toEqual(['a']);
    expect(names(tc.list({ states: [], producerIds: [], durationMs: 4000n }))).toEqual(['a']);
    expect(names(tc.list({ states: [], producerIds: [], durationMs: 6000n }))).toEqual([]);
    expect(tc.list({ states: ['Nope'], producerIds: [], durationMs: -1n }).unknownStates).toEqual(['Nope']);
  });

  it('handlers: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below the versions that know it', async () => {
    const { tc } = await setup();
    const ctx = (apiVersion: number) => ({ header: { apiKey: 0, apiVersion, correlationId: 1, clientId: 'c' } }) as never;
    const init = (v: number) => initProducerIdTxn(tc, { transactionalId: TX, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 }, v);
    const p = await init(4);
    expect(p).toMatchObject({ errorCode: ErrorCode.NONE, producerEpoch: 0 });
    await init(4);
    const handlers = new Map(transactionHandlers(tc).map((h) => [h.api, h]));
    const end = (v: number) => handlers.get(ApiKey.EndTxn)!.handle({ transactionalId: TX, producerId: p.producerId, producerEpoch: 0, committed: true }, ctx(v));
    expect(await end(1)).toMatchObject({ errorCode: ErrorCode.INVALID_PRODUCER_EPOCH });
    expect(await end(2)).toMatchObject({ errorCode: ErrorCode.PRODUCER_FENCED });
    const add = await handlers.get(ApiKey.AddPartitionsToTxn)!.handle({
      v3AndBelowTransactionalId: TX, v3AndBelowProducerId: p.producerId, v3AndBelowProducerEpoch: 1, v3AndBelowTopics: [{ name: 't', partitions: [0, 1] }], transactions: [],
    }, ctx(3));
    expect(add).toEqual({ throttleTimeMs: 0, resultsByTopicV3AndBelow: [{ name: 't', resultsByPartition: [{ partitionIndex: 0, partitionErrorCode: 0 }, { partitionIndex: 1, partitionErrorCode: 0 }] }] });
    const verify = await handlers.get(ApiKey.AddPartitionsToTxn)!.handle({
      transactions: [{ transactionalId: TX, producerId: p.producerId, producerEpoch: 1, verifyOnly: true, topics: [{ name: 't', partitions: [1, 2] }] }],
    }, ctx(4));
    expect(verify.resultsByTransaction[0].topicResults[0].resultsByPartition.map((r: { partitionErrorCode: number }) => r.partitionErrorCode)).toEqual([ErrorCode.NONE, ErrorCode.INVALID_TXN_STATE]);
    const described = await handlers.get(ApiKey.DescribeTransactions)!.handle({ transactionalIds: [TX, 'nobody'] }, ctx(0));
    expect(described.transactionStates.map((s: { errorCode: number; transactionState: string }) => [s.errorCode, s.transactionState])).toEqual([[0, 'Ongoing'], [ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, '']]);
  });

  it('cluster brokers advertise the transaction APIs (kafkajs uses the bootstrap broker\'s versions everywhere) and answer NOT_COORDINATOR', async () => {
    const handlers = new Map(notCoordinatorHandlers().map((h) => [h.api, h]));
    expect([ApiKey.AddPartitionsToTxn, ApiKey.AddOffsetsToTxn, ApiKey.EndTxn, ApiKey.DescribeTransactions, ApiKey.ListTransactions].map((k) => handlers.get(k)?.versions))
      .toEqual([[0, 5], [0, 4], [0, 4], [0, 0], [0, 1]]);
    expect(handlers.has(ApiKey.InitProducerId)).toBe(false); // the broker's own serves idempotent producers
    const ctx = { header: { apiKey: 0, apiVersion: 3, correlationId: 1, clientId: 'c' } } as never;
    expect(await handlers.get(ApiKey.EndTxn)!.handle({ transactionalId: TX, producerId: 1n, producerEpoch: 0, committed: true }, ctx)).toMatchObject({ errorCode: ErrorCode.NOT_COORDINATOR });
    expect(await handlers.get(ApiKey.ListTransactions)!.handle({ stateFilters: [], producerIdFilters: [], durationFilter: -1n }, ctx)).toMatchObject({ errorCode: 0, transactionStates: [] });
  });
});
