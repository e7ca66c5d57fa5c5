// Offsets in transactions end to end on `runnel start`: kafkajs's transactional producer with
// sendOffsets (AddOffsetsToTxn, TxnOffsetCommit, EndTxn): the group's offsets count only once the
// transaction commits (the COMMIT marker reaches __consumer_offsets through the group coordinator),
// an aborted transaction's offsets never do, and both survive a restart (replayed from the
// transactional batches and markers on disk). __transaction_state is created on first use.
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { until } from './helpers/until.ts';

describe('transactions with sendOffsets (kafkajs, runnel start)', () => {
  let broker: TestBroker;
  let admin: Admin;
  const kafka = () => new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 } });

  beforeAll(async () => {
    // Few transaction-state partitions: each is a log this test's broker creates and loads.
    broker = await startBroker({ set: ['transaction.state.log.num.partitions=3', 'offsets.topic.num.partitions=3'] });
    admin = kafka().admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'in', numPartitions: 1 }, { topic: 'out', numPartitions: 1 }] });
  }, 60_000);
  afterAll(async () => {
    await admin?.disconnect();
    await broker?.cleanup();
  });

  const committed = async (a: Admin) => (await a.fetchOffsets({ groupId: 'copier', topics: ['in'] }))[0]!.partitions[0]!.offset;

  it('commits the offsets with the transaction and drops them with an aborted one; both survive a restart', async () => {
    const producer = kafka().producer({ transactionalId: 'copier-tx', maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    try {
      const tx = await producer.transaction();
      await tx.send({ topic: 'out', messages: [{ value: 'a' }] });
      await tx.sendOffsets({ consumerGroupId: 'copier', topics: [{ topic: 'in', partitions: [{ partition: 0, offset: '3' }] }] });
      // Not visible before the commit.
      expect(await committed(admin)).toBe('-1');
      await tx.commit();
      // EndTxn answers once PrepareCommit is durable; the markers follow (as in Kafka).
      await until('the offsets committed by the marker', async () => (await committed(admin)) === '3' || undefined, 30_000);

      const aborted = await producer.transaction();
      await aborted.send({ topic: 'out', messages: [{ value: 'b' }] });
      await aborted.sendOffsets({ consumerGroupId: 'copier', topics: [{ topic: 'in', partitions: [{ partition: 0, offset: '7' }] }] });
      await aborted.abort();
      expect(await committed(admin)).toBe('3');
    } finally {
      await producer.disconnect();
    }
    const meta = await admin.fetchTopicMetadata({ topics: ['__transaction_state'] });
    expect(meta.topics[0]!.partitions).toHaveLength(3);

    await admin.disconnect();
    await broker.stop();
    broker = await startBroker({ logDir: broker.logDir, set: ['transaction.state.log.num.partitions=3', 'offsets.topic.num.partitions=3'] });
    admin = kafka().admin();
    await admin.connect();
    expect(await committed(admin)).toBe('3');
  }, 90_000);
});
