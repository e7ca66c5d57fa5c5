// The broker's side of transactions (docs/transactions.md, "Broker side") against a real
// `runnel start`, before any coordinator: transactional batches produced by hand (the producer ids
// from InitProducerId), markers written with the Kafka API WriteTxnMarkers and with
// `kafka-transactions.sh abort`, then the last stable offset in Fetch and ListOffsets, read_committed
// fetches bounded by it with the aborted transactions listed, a read_committed fetch parked at the
// LSO woken by a marker, real clients (kcat both isolation levels, a kafkajs read_committed
// consumer) dropping the aborted records, `kafka-transactions.sh describe-producers`, and markers on
// `__consumer_offsets` resolving a group's pending transactional offsets.
import { Kafka, logLevel } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, decodeResponse, encodeRecordBatch, encodeRequest, ErrorCode, partitionForGroup } from '@runnel/protocol';
import { kafkaTools, ok, type KafkaTools } from './helpers/kafka-tools.ts';
import { runKcat } from './helpers/kcat.ts';
import { kafkaRequest, RawKafka } from './helpers/raw-kafka.ts';
import { suiteBroker } from './helpers/suite-broker.ts';

const broker = suiteBroker();
const TOPIC = 'txn-data-path';
const TRANSACTIONS = 'org.apache.kafka.tools.TransactionsCommand';

let tools: KafkaTools;
let pidA: bigint;
let pidB: bigint;

async function initProducerId(): Promise<bigint> {
  const r = await kafkaRequest(broker().port, ApiKey.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 });
  expect(r.errorCode).toBe(ErrorCode.NONE);
  return r.producerId;
}

async function produce(transactionalId: string | null, records: Buffer) {
  const r = await kafkaRequest(broker().port, ApiKey.Produce, 9, { transactionalId, acks: -1, timeoutMs: 10_000, topicData: [{ name: TOPIC, partitionData: [{ index: 0, records }] }] });
  return r.responses[0]!.partitionResponses[0]!;
}

const plain = (...values: string[]) => encodeRecordBatch({ records: values.map((value) => ({ value })) });
const txn = (producerId: bigint, ...values: string[]) => encodeRecordBatch({ records: values.map((value) => ({ value })), producerId, producerEpoch: 0, baseSequence: 0, transactional: true });

async function latest(isolationLevel: number): Promise<bigint> {
  const r = await kafkaRequest(broker().port, ApiKey.ListOffsets, 5, { replicaId: -1, isolationLevel, topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }] });
  const p = r.topics[0]!.partitions[0]!;
  expect(p.errorCode).toBe(ErrorCode.NONE);
  return p.offset;
}

async function fetch(isolationLevel: number, fetchOffset: bigint, maxWaitMs = 0) {
  const conn = await RawKafka.open(broker().port);
  let frame: Buffer;
  try {
    conn.send(encodeRequest({ apiKey: ApiKey.Fetch, apiVersion: 11, correlationId: 1, clientId: 'runnel-test' }, {
      replicaId: -1, maxWaitMs, minBytes: 1, maxBytes: 1 << 20, isolationLevel, sessionId: 0, sessionEpoch: -1,
      topics: [{ topic: TOPIC, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset, logStartOffset: -1n, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [], rackId: '',
    } as never));
    [frame] = (await conn.waitFrames(1, maxWaitMs + 10_000)) as [Buffer];
  } finally {
    conn.close();
  }
  const r = decodeResponse(ApiKey.Fetch, 11, frame).body;
  const p = r.responses[0]!.partitions[0]!;
  expect(p.errorCode).toBe(ErrorCode.NONE);
  return p;
}

/** The base offsets of the batches in a fetch's records. */
function batchOffsets(records: Buffer | null): bigint[] {
  const out: bigint[] = [];
  for (let pos = 0; records && pos + 12 <= records.length; pos += 12 + records.readInt32BE(pos + 8)) out.push(records.readBigInt64BE(pos));
  return out;
}

async function writeMarker(producerId: bigint, commit: boolean, partitions = [0], topic = TOPIC, producerEpoch = 0) {
  const r = await kafkaRequest(broker().port, ApiKey.WriteTxnMarkers, 1, {
    markers: [{ producerId, producerEpoch, transactionResult: commit, coordinatorEpoch: 0, topics: [{ name: topic, partitionIndexes: partitions }] }],
  });
  expect(r.markers[0]!.producerId).toBe(producerId);
  return r.markers[0]!.topics[0]!.partitions.map((p) => [p.partitionIndex, p.errorCode]);
}

const txnTool = (args: string[]) => tools.run(TRANSACTIONS, ['--bootstrap-server', broker().bootstrap, ...args]);

beforeAll(async () => {
  tools = await kafkaTools();
  const created = await kafkaRequest(broker().port, ApiKey.CreateTopics, 4, {
    topics: [{ name: TOPIC, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 10_000, validateOnly: false,
  });
  expect(created.topics[0]!.errorCode).toBe(ErrorCode.NONE);
  [pidA, pidB] = await Promise.all([initProducerId(), initProducerId()]);
}, 120_000);

describe('transactions on the broker data path', () => {
  it('accepts transactional batches; the LSO stops at the first open transaction in ListOffsets and Fetch', async () => {
    expect(await produce(null, plain('p0', 'p1'))).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    expect(await produce('tx-a', txn(pidA, 'a0', 'a1', 'a2'))).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 2n });
    expect(await produce('tx-b', txn(pidB, 'b0', 'b1'))).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 5n });
    expect(await produce(null, plain('p2'))).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 7n });

    expect(await latest(0)).toBe(8n);
    expect(await latest(1)).toBe(2n);
    const uncommitted = await fetch(0, 0n);
    expect(uncommitted).toMatchObject({ highWatermark: 8n, lastStableOffset: 2n, abortedTransactions: null });
    expect(batchOffsets(uncommitted.records)).toEqual([0n, 2n, 5n, 7n]);
    const committed = await fetch(1, 0n);
    expect(committed).toMatchObject({ highWatermark: 8n, lastStableOffset: 2n, abortedTransactions: [] });
    expect(batchOffsets(committed.records)).toEqual([0n]);
    // At the LSO a read_committed fetch has nothing yet.
    expect(batchOffsets((await fetch(1, 2n)).records)).toEqual([]);
  });

  it('kafka-transactions describe-producers lists both open transactions with their start offsets', async () => {
    const out = ok(await txnTool(['describe-producers', '--topic', TOPIC, '--partition', '0']));
    const rows = out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    // ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTransactionStartOffset
    expect(rows.map((r) => [r[0], r[1], r[3], r[5]]).sort()).toEqual([[String(pidA), '0', '2', '2'], [String(pidB), '0', '1', '5']].sort());
  }, 60_000);

  it('kafka-transactions abort ends the hanging transaction: a read_committed fetch parked at the LSO wakes with its records and the abort', async () => {
    const started = Date.now();
    const parked = fetch(1, 2n, 45_000);
    const aborted = ok(await txnTool(['abort', '--topic', TOPIC, '--partition', '0', '--start-offset', '2']));
    expect(aborted).not.toMatch(/error/i);
    const woken = await parked;
    // Woken by the marker, not by max_wait_ms (45 s).
    expect(Date.now() - started).toBeLessThan(40_000);
    // The ABORT marker is at 8; B (from 5) is still open.
    expect(woken).toMatchObject({ highWatermark: 9n, lastStableOffset: 5n, abortedTransactions: [{ producerId: pidA, firstOffset: 2n }] });
    expect(batchOffsets(woken.records)).toEqual([2n]);
    expect(await latest(1)).toBe(5n);
  }, 90_000);

  it('WriteTxnMarkers commits B; read_committed reads to the high watermark and lists A as aborted', async () => {
    expect(await writeMarker(pidB, true)).toEqual([[0, ErrorCode.NONE]]);
    expect(await latest(1)).toBe(10n);
    expect(await latest(0)).toBe(10n);
    const all = await fetch(1, 0n);
    expect(all).toMatchObject({ highWatermark: 10n, lastStableOffset: 10n, abortedTransactions: [{ producerId: pidA, firstOffset: 2n }] });
    expect(batchOffsets(all.records)).toEqual([0n, 2n, 5n, 7n, 8n, 9n]);
    // A's range runs to its marker (8): a fetch from 5 meets it, one from 9 does not.
    expect((await fetch(1, 5n)).abortedTransactions).toEqual([{ producerId: pidA, firstOffset: 2n }]);
    expect(await fetch(1, 9n)).toMatchObject({ abortedTransactions: [] });
    expect(batchOffsets((await fetch(1, 9n)).records)).toEqual([9n]);
    // A partition this broker does not have, in the same request shape.
    expect(await writeMarker(pidB, true, [7])).toEqual([[7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]);
  });

  it('WriteTxnMarkers on __consumer_offsets reaches the group coordinator: a hanging TxnOffsetCommit (accepted only after AddOffsetsToTxn) resolves (kafka-transactions abort, a hand-built COMMIT)', async () => {
    const offsetsPartitions = (await kafkaRequest(broker().port, ApiKey.Metadata, 9, { topics: [{ name: '__consumer_offsets' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false })).topics[0]!.partitions.length;
    const stable = async (groupId: string) => {
      const r = await kafkaRequest(broker().port, ApiKey.OffsetFetch, 7, { groupId, topics: [{ name: TOPIC, partitionIndexes: [0] }], requireStable: true });
      const p = r.topics[0]!.partitions[0]!;
      return [p.errorCode, p.committedOffset];
    };
    // A transaction that sent its offsets and never ended (its coordinator would abort it after 60 s).
    const hanging = async (groupId: string, offset: bigint) => {
      const transactionalId = `tx-${groupId}`;
      let init;
      // The first FindCoordinator for a transactional id creates __transaction_state: COORDINATOR_NOT_AVAILABLE meanwhile.
      for (let i = 0; (await kafkaRequest(broker().port, ApiKey.FindCoordinator, 3, { key: transactionalId, keyType: 1 })).errorCode !== ErrorCode.NONE && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
      for (let i = 0; (init = await kafkaRequest(broker().port, ApiKey.InitProducerId, 4, { transactionalId, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })).errorCode !== ErrorCode.NONE && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
      expect(init.errorCode).toBe(ErrorCode.NONE);
      const { producerId, producerEpoch } = init;
      const commit = async () => (await kafkaRequest(broker().port, ApiKey.TxnOffsetCommit, 3, {
        transactionalId, groupId, producerId, producerEpoch, generationId: -1, memberId: '', groupInstanceId: null,
        topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: '' }] }],
      })).topics[0]!.partitions[0]!.errorCode;
      // KIP-890 part 1: not before AddOffsetsToTxn put the group's partition in the transaction.
      expect(await commit()).toBe(ErrorCode.INVALID_TXN_STATE);
      expect(await stable(groupId)).toEqual([ErrorCode.NONE, -1n]);
      expect((await kafkaRequest(broker().port, ApiKey.AddOffsetsToTxn, 3, { transactionalId, producerId, producerEpoch, groupId })).errorCode).toBe(ErrorCode.NONE);
      expect(await commit()).toBe(ErrorCode.NONE);
      expect(await stable(groupId)).toEqual([ErrorCode.UNSTABLE_OFFSET_COMMIT, -1n]);
      return { producerId, producerEpoch, partition: partitionForGroup(groupId, offsetsPartitions) };
    };

    const committed = await hanging('g-marker-commit', 7n);
    expect(await writeMarker(committed.producerId, true, [committed.partition], '__consumer_offsets', committed.producerEpoch)).toEqual([[committed.partition, ErrorCode.NONE]]);
    expect(await stable('g-marker-commit')).toEqual([ErrorCode.NONE, 7n]);

    const aborted = await hanging('g-marker-abort', 8n);
    ok(await txnTool(['abort', '--topic', '__consumer_offsets', '--partition', String(aborted.partition), '--producer-id', String(aborted.producerId), '--producer-epoch', String(aborted.producerEpoch), '--coordinator-epoch', '0']));
    expect(await stable('g-marker-abort')).toEqual([ErrorCode.NONE, -1n]);
  }, 90_000);

  it('real clients: kcat read_committed and read_uncommitted, a kafkajs read_committed consumer', async () => {
    const kcat = async (isolation: string) => {
      const r = await runKcat(['-b', broker().bootstrap, '-C', '-t', TOPIC, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%s\\n', '-X', `isolation.level=${isolation}`], { timeoutMs: 30_000 });
      expect(r.code).toBe(0);
      return r.stdout.trim().split('\n');
    };
    expect(await kcat('read_uncommitted')).toEqual(['p0', 'p1', 'a0', 'a1', 'a2', 'b0', 'b1', 'p2']);
    expect(await kcat('read_committed')).toEqual(['p0', 'p1', 'b0', 'b1', 'p2']);

    const kafka = new Kafka({ clientId: 'txn-data-path', brokers: [broker().bootstrap], logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: 'txn-data-path', readUncommitted: false });
    const seen: string[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        consumer.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value!.toString());
            if (message.value!.toString() === 'p2') resolve();
          },
        }).catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    expect(seen).toEqual(['p0', 'p1', 'b0', 'b1', 'p2']);
  }, 60_000);

  it('describe-producers after the markers: no open transaction, the markers\' coordinator epochs', async () => {
    const out = ok(await txnTool(['describe-producers', '--topic', TOPIC, '--partition', '0']));
    const rows = out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    expect(rows.map((r) => [r[0], r[5]]).sort()).toEqual([[String(pidA), 'None'], [String(pidB), 'None']].sort());
    const unknown = await kafkaRequest(broker().port, ApiKey.DescribeProducers, 0, { topics: [{ name: TOPIC, partitionIndexes: [3] }] });
    expect(unknown.topics[0]!.partitions[0]).toMatchObject({ partitionIndex: 3, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, activeProducers: [] });
  }, 60_000);
});
