// A transaction in a cluster (3 brokers, 2 coordinator nodes) spanning a data partition and
// __consumer_offsets, with the group's offsets partition owned by the other coordinator than the
// transactional id: the COMMIT markers go over RPC to the data partition's leader
// (broker.writeTxnMarkers) and to the other coordinator (coordinator.writeTxnMarkers), which
// commits the group's pending offsets. __transaction_state is created on the first lookup.
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

describe('transactions across coordinators (cluster)', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({ brokers: 3, coordinators: 2, set: ['transaction.state.log.num.partitions=4'] });
  }, 90_000);
  afterAll(async () => {
    await cluster?.cleanup();
  });

  /** FindCoordinator v3 asked of a coordinator node: the node id, or null while not available. */
  const coordinatorOf = async (key: string, keyType: 0 | 1): Promise<number | undefined> => {
    const r = await kafkaRequest(cluster.coordinators[0]!.port, ApiKey.FindCoordinator, 3, { key, keyType });
    return r.errorCode === ErrorCode.NONE ? r.nodeId : undefined;
  };

  it('commits offsets kept by another coordinator, with markers over RPC', async () => {
    const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'out', numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true });
      // The first lookup creates __transaction_state; the answer comes once an owner is known.
      const txnCoordinator = await until('the transaction coordinator of tx-x', () => coordinatorOf('tx-x', 1), 30_000);
      let groupId = '';
      for (let i = 0; groupId === '' && i < 100; i++) {
        const owner = await until(`the coordinator of g${i}`, () => coordinatorOf(`g${i}`, 0), 30_000);
        if (owner !== txnCoordinator) groupId = `g${i}`;
      }
      expect(groupId).not.toBe('');

      const producer = kafka.producer({ transactionalId: 'tx-x', maxInFlightRequests: 1, idempotent: true });
      await producer.connect();
      try {
        const tx = await producer.transaction();
        await tx.send({ topic: 'out', messages: [{ value: 'v' }] });
        await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: 'out', partitions: [{ partition: 0, offset: '5' }] }] });
        expect((await admin.fetchOffsets({ groupId, topics: ['out'] }))[0]!.partitions[0]!.offset).toBe('-1');
        await tx.commit();
      } finally {
        await producer.disconnect();
      }
      // EndTxn answers once PrepareCommit is durable; the markers follow (as in Kafka).
      await until('the offsets committed by the marker', async () => (await admin.fetchOffsets({ groupId, topics: ['out'] }))[0]!.partitions[0]!.offset === '5' || undefined, 30_000);
      // The data partition has the record and the COMMIT marker after it.
      await until('the COMMIT marker on out-0', async () => (await admin.fetchTopicOffsets('out'))[0]!.high === '2' || undefined, 30_000);
    } finally {
      await admin.disconnect();
    }
  }, 90_000);
});
