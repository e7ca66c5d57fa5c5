// A transaction in a cluster (3 brokers, 2 coordinator nodes) spanning a data partition and
// __consumer_offsets, with the group's offsets partition owned by the other coordinator than the
// transactional id: the COMMIT markers go over RPC to the data partition's leader
// (broker.writeTxnMarkers) and to the other coordinator (coordinator.writeTxnMarkers), which
// commits the group's pending offsets. __transaction_state is created on the first lookup. And a
// hand-built WriteTxnMarkers (what kafka-transactions abort sends) to a __consumer_offsets leader,
// which a broker forwards to the coordinator node owning the partition.
import { ApiKey, ErrorCode, partitionForGroup } from '@runnel/protocol';
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

  it('WriteTxnMarkers (kafka-transactions abort\'s request) to the leader of a __consumer_offsets partition reaches its coordinator node: the pending offsets commit', async () => {
    const meta = await kafkaRequest(cluster.coordinators[0]!.port, ApiKey.Metadata, 9, { topics: [{ name: '__consumer_offsets' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    const portOf = (nodeId: number) => meta.brokers.find((b) => b.nodeId === nodeId)!.port;
    const created = await kafkaRequest(cluster.coordinators[0]!.port, ApiKey.CreateTopics, 4, {
      topics: [{ name: 'hanging', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 10_000, validateOnly: false,
    });
    expect(created.topics[0]!.errorCode).toBe(ErrorCode.NONE);
    const transactionalId = 'tx-hanging';
    const txnNode = await until('the transaction coordinator of tx-hanging', () => coordinatorOf(transactionalId, 1), 30_000);
    const groupId = 'g-hanging';
    const groupNode = await until('the coordinator of g-hanging', () => coordinatorOf(groupId, 0), 30_000);
    const init = await until('a producer id', async () => {
      const r = await kafkaRequest(portOf(txnNode), ApiKey.InitProducerId, 4, { transactionalId, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 });
      return r.errorCode === ErrorCode.NONE ? r : undefined;
    }, 30_000);
    const { producerId, producerEpoch } = init;
    expect((await kafkaRequest(portOf(txnNode), ApiKey.AddOffsetsToTxn, 3, { transactionalId, producerId, producerEpoch, groupId })).errorCode).toBe(ErrorCode.NONE);
    const committed = await kafkaRequest(portOf(groupNode), ApiKey.TxnOffsetCommit, 3, {
      transactionalId, groupId, producerId, producerEpoch, generationId: -1, memberId: '', groupInstanceId: null,
      topics: [{ name: 'hanging', partitions: [{ partitionIndex: 0, committedOffset: 9n, committedLeaderEpoch: -1, committedMetadata: '' }] }],
    });
    expect(committed.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    const stable = async () => {
      const p = (await kafkaRequest(portOf(groupNode), ApiKey.OffsetFetch, 7, { groupId, topics: [{ name: 'hanging', partitionIndexes: [0] }], requireStable: true })).topics[0]!.partitions[0]!;
      return [p.errorCode, p.committedOffset];
    };
    expect(await stable()).toEqual([ErrorCode.UNSTABLE_OFFSET_COMMIT, -1n]);

    // The marker goes where kafka-transactions sends it: the partition's leader, a broker.
    const partition = partitionForGroup(groupId, meta.topics[0]!.partitions.length);
    const leader = meta.topics[0]!.partitions.find((p) => p.partitionIndex === partition)!.leaderId;
    const marker = await kafkaRequest(portOf(leader), ApiKey.WriteTxnMarkers, 1, {
      markers: [{ producerId, producerEpoch, transactionResult: true, coordinatorEpoch: 0, topics: [{ name: '__consumer_offsets', partitionIndexes: [partition] }] }],
    });
    expect(marker.markers[0]!.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(await stable()).toEqual([ErrorCode.NONE, 9n]);
  }, 90_000);
});
