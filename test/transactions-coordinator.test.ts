// The transaction coordinator against a real `runnel start` (docs/transactions.md): the wire
// answers (FindCoordinator key type 1 creates __transaction_state and then names this node;
// InitProducerId bumps the epoch; a timeout above transaction.max.timeout.ms is refused), a
// librdkafka transactional producer (kcat -X transactional.id) whose records a read_committed
// consumer reads, Kafka's kafka-transactions tool listing and describing the transactions, and a
// transaction left open past its timeout: aborted by the coordinator (its producer fenced) and the
// last stable offset moves past it. The Java client is in test/interop-java.test.ts, kafkajs with
// sendOffsets in test/transactions-offsets.test.ts.
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { kafkaTools, ok } from './helpers/kafka-tools.ts';
import { runKcat } from './helpers/kcat.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { suiteBroker } from './helpers/suite-broker.ts';
import { until } from './helpers/until.ts';

// Few partitions (each is a log this broker creates and loads) and a short abort check.
const broker = suiteBroker({ set: ['transaction.state.log.num.partitions=4', 'offsets.topic.num.partitions=4', 'transaction.abort.timed.out.transaction.cleanup.interval.ms=500'] });

const TRANSACTIONS_COMMAND = 'org.apache.kafka.tools.TransactionsCommand';

describe('the transaction coordinator on runnel start', () => {
  it('FindCoordinator key type 1 names this node once __transaction_state exists; InitProducerId bumps the epoch and checks the timeout', async () => {
    const find = () => kafkaRequest(broker().port, ApiKey.FindCoordinator, 3, { key: 'wire-tx', keyType: 1 });
    // The first lookup creates the topic (retriable meanwhile), as Kafka does.
    const found = await until('the transaction coordinator', async () => {
      const r = await find();
      expect([ErrorCode.NONE, ErrorCode.COORDINATOR_NOT_AVAILABLE]).toContain(r.errorCode);
      return r.errorCode === ErrorCode.NONE && r;
    }, 20_000);
    expect(found).toMatchObject({ nodeId: 1, port: broker().port });
    const v4 = await kafkaRequest(broker().port, ApiKey.FindCoordinator, 4, { keyType: 1, coordinatorKeys: ['a', 'b'] });
    expect(v4.coordinators.map((c) => [c.key, c.errorCode, c.nodeId])).toEqual([['a', 0, 1], ['b', 0, 1]]);

    const init = (transactionTimeoutMs: number) => kafkaRequest(broker().port, ApiKey.InitProducerId, 4, { transactionalId: 'wire-tx', transactionTimeoutMs, producerId: -1n, producerEpoch: -1 });
    const first = await until('InitProducerId', async () => {
      const r = await init(60_000);
      return r.errorCode === ErrorCode.NONE && r; // COORDINATOR_LOAD_IN_PROGRESS while the partition loads
    }, 20_000);
    expect(first.producerEpoch).toBe(0);
    const second = await init(60_000);
    expect(second).toMatchObject({ errorCode: ErrorCode.NONE, producerId: first.producerId, producerEpoch: 1 });
    expect((await init(900_001)).errorCode).toBe(ErrorCode.INVALID_TRANSACTION_TIMEOUT);
  }, 40_000);

  it('AddPartitionsToTxn naming a partition that does not exist adds nothing: UNKNOWN_TOPIC_OR_PARTITION for it, OPERATION_NOT_ATTEMPTED for the rest (as Kafka)', async () => {
    const kafka = new Kafka({ clientId: 'tx-unknown', brokers: [broker().bootstrap], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'tx-known', numPartitions: 2 }] });
    } finally {
      await admin.disconnect();
    }
    // A client finds the coordinator first (which creates __transaction_state, as Kafka does).
    await until('the transaction coordinator', async () => (await kafkaRequest(broker().port, ApiKey.FindCoordinator, 3, { key: 'unknown-tx', keyType: 1 })).errorCode === ErrorCode.NONE, 20_000);
    const p = await until('InitProducerId', async () => {
      const r = await kafkaRequest(broker().port, ApiKey.InitProducerId, 4, { transactionalId: 'unknown-tx', transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 });
      return r.errorCode === ErrorCode.NONE && r;
    }, 20_000);
    const add = (topics: { name: string; partitions: number[] }[]) => kafkaRequest(broker().port, ApiKey.AddPartitionsToTxn, 3, {
      v3AndBelowTransactionalId: 'unknown-tx', v3AndBelowProducerId: p.producerId, v3AndBelowProducerEpoch: p.producerEpoch, v3AndBelowTopics: topics,
    });
    const codes = (r: { resultsByTopicV3AndBelow: { name: string; resultsByPartition: { partitionIndex: number; partitionErrorCode: number }[] }[] }) =>
      r.resultsByTopicV3AndBelow.flatMap((t) => t.resultsByPartition.map((x) => [t.name, x.partitionIndex, x.partitionErrorCode]));
    expect(codes(await add([{ name: 'tx-known', partitions: [0, 2] }, { name: 'tx-missing', partitions: [0] }]))).toEqual([
      ['tx-known', 0, ErrorCode.OPERATION_NOT_ATTEMPTED], ['tx-known', 2, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION], ['tx-missing', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    // Nothing joined the transaction (it is still Empty); the existing partitions can then be added.
    const described = await kafkaRequest(broker().port, ApiKey.DescribeTransactions, 0, { transactionalIds: ['unknown-tx'] });
    expect(described.transactionStates[0]).toMatchObject({ transactionState: 'Empty', topics: [] });
    expect(codes(await add([{ name: 'tx-known', partitions: [0, 1] }]))).toEqual([['tx-known', 0, ErrorCode.NONE], ['tx-known', 1, ErrorCode.NONE]]);
  }, 40_000);

  it('librdkafka (kcat) commits a transaction that a read_committed consumer reads; kafka-transactions lists and describes it', async () => {
    const produced = await runKcat(['-b', broker().bootstrap, '-P', '-t', 'tx-kcat', '-p', '0', '-X', 'transactional.id=kcat-tx', '-X', 'transaction.timeout.ms=60000'], { input: 'a\nb\nc\n', timeoutMs: 60_000 });
    expect(produced.code, produced.stderr).toBe(0);
    const read = await runKcat(['-b', broker().bootstrap, '-C', '-t', 'tx-kcat', '-p', '0', '-o', 'beginning', '-e', '-X', 'isolation.level=read_committed', '-f', '%s\n'], { timeoutMs: 30_000 });
    expect(read.stdout.split('\n').filter(Boolean)).toEqual(['a', 'b', 'c']);

    const tools = await kafkaTools();
    const list = ok(await tools.run(TRANSACTIONS_COMMAND, ['--bootstrap-server', broker().bootstrap, 'list']));
    const row = list.split('\n').find((l) => l.startsWith('kcat-tx'));
    expect(row, list).toMatch(/^kcat-tx\s+1\s+\d+\s+CompleteCommit/);
    const described = ok(await tools.run(TRANSACTIONS_COMMAND, ['--bootstrap-server', broker().bootstrap, 'describe', '--transactional-id', 'kcat-tx']));
    expect(described).toMatch(/CompleteCommit/);
    expect(described).toMatch(/kcat-tx/);
  }, 120_000);

  it('a transaction left open past its timeout is aborted: its producer is fenced and the last stable offset moves past it', async () => {
    const kafka = new Kafka({ clientId: 'tx-timeout', brokers: [broker().bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer({ transactionalId: 'timeout-tx', transactionTimeout: 2_000, maxInFlightRequests: 1, idempotent: true });
    try {
      await admin.createTopics({ topics: [{ topic: 'tx-timeout', numPartitions: 1 }] });
      await producer.connect();
      const tx = await producer.transaction();
      await tx.send({ topic: 'tx-timeout', messages: [{ value: 'never committed' }] });
      const lso = async () => (await kafkaRequest(broker().port, ApiKey.ListOffsets, 5, {
        replicaId: -1, isolationLevel: 1, topics: [{ name: 'tx-timeout', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }],
      })).topics[0]!.partitions[0]!.offset;
      // Open: the last stable offset stays at the transaction's first record.
      expect(await lso()).toBe(0n);
      // Within the timeout plus a few abort checks the coordinator aborts: the ABORT marker is at
      // offset 1, so the last stable offset is 2.
      await until('the timed-out transaction aborted', async () => (await lso()) === 2n, 15_000);
      const err = await tx.commit().then(() => null, (e: unknown) => e as { type?: string; name: string });
      expect(err?.type ?? err?.name).toMatch(/INVALID_PRODUCER_EPOCH|PRODUCER_FENCED|Fenced/i);
    } finally {
      await producer.disconnect().catch(() => {});
      await admin.disconnect();
    }
  }, 60_000);
});
