/**
 * Transactions across replicas in a real cluster (a redis-server, a `runnel controller`, two
 * `runnel broker` processes; test/helpers/cluster.ts): an open transaction reaches the follower
 * with its batches, so when the leader is killed the promoted follower still holds the last stable
 * offset at the transaction's start and serves read_committed below it; the coordinator's
 * `broker.writeTxnMarkers` RPC commits it there (NOT_LEADER_OR_FOLLOWER from the restarted old
 * leader, now a follower), and the marker replicates: back as preferred leader, the old leader's
 * LSO is its high watermark and read_committed returns every record.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey, encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { RpcClient } from '@runnel/rpc';
import { startCluster, type ClusterNode, type TestCluster } from '../../../test/helpers/cluster.ts';
import { freePort } from '../../../test/helpers/ports.ts';
import { kafkaRequest } from '../../../test/helpers/raw-kafka.ts';
import { until } from '../../../test/helpers/until.ts';

const TOPIC = 'txn-rep';
let cluster: TestCluster;
const rpcPorts = new Map<number, number>();

beforeAll(async () => {
  for (const id of [1, 2]) rpcPorts.set(id, await freePort());
  cluster = await startCluster({
    brokers: 2,
    coordinators: 0,
    set: ['replica.fetch.backoff.ms=200', 'replica.fetch.wait.max.ms=200'],
    nodeSet: (role, id) => (role === 'broker' ? [`runnel.rpc.listener=127.0.0.1:${rpcPorts.get(id)}`] : []),
  });
}, 90_000);

afterAll(async () => {
  await cluster?.cleanup();
});

const broker = (id: number): ClusterNode => cluster.brokers.find((b) => b.nodeId === id)!;

async function partitionMd(via: ClusterNode) {
  const md = await kafkaRequest(via.port, ApiKey.Metadata, 7, { topics: [{ name: TOPIC }], allowAutoTopicCreation: false });
  const p = md.topics[0]!.partitions[0]!;
  return { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: [...p.replicaNodes], isr: [...p.isrNodes].sort() };
}

async function latest(via: ClusterNode, isolationLevel: number) {
  const r = await kafkaRequest(via.port, ApiKey.ListOffsets, 5, { replicaId: -1, isolationLevel, topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }] });
  return r.topics[0]!.partitions[0]!;
}

async function fetchCommitted(via: ClusterNode) {
  const r = await kafkaRequest(via.port, ApiKey.Fetch, 11, {
    replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 1, sessionId: 0, sessionEpoch: -1,
    topics: [{ topic: TOPIC, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0n, logStartOffset: -1n, partitionMaxBytes: 1 << 20 }] }],
    forgottenTopicsData: [], rackId: '',
  });
  const p = r.responses[0]!.partitions[0]!;
  const bases: bigint[] = [];
  for (let pos = 0; p.records && pos + 12 <= p.records.length; pos += 12 + p.records.readInt32BE(pos + 8)) bases.push(p.records.readBigInt64BE(pos));
  return { ...p, bases };
}

async function markers(node: ClusterNode, producerId: bigint, partitions: number[]) {
  const rpc = RpcClient.create({ host: '127.0.0.1', port: rpcPorts.get(node.nodeId)!, requestTimeoutMs: 20_000 });
  try {
    const r = await rpc.call('broker.writeTxnMarkers', { markers: [{ producerId, producerEpoch: 0, coordinatorEpoch: 1, commit: true, partitions: partitions.map((partition) => ({ topic: TOPIC, partition })) }] });
    return r.markers[0]!.partitions.map((p) => [p.partition, p.error]);
  } finally {
    rpc.close();
  }
}

it('a promoted follower keeps the open transaction: LSO, read_committed, the marker over RPC, replicated back', async () => {
  const created = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.CreateTopics, 4, {
    topics: [{ name: TOPIC, numPartitions: 1, replicationFactor: 2, assignments: [], configs: [{ name: 'min.insync.replicas', value: '1' }] }],
    timeoutMs: 10_000, validateOnly: false,
  });
  expect(created.topics[0]!.errorCode).toBe(ErrorCode.NONE);
  const md = await until('both replicas in sync on both brokers', async () => {
    const seen = await Promise.all(cluster.brokers.map((n) => partitionMd(n).catch(() => undefined)));
    return seen.every((m) => m && m.leaderId > 0 && m.isr.length === 2 && m.leaderId === seen[0]!.leaderId) ? seen[0] : undefined;
  }, 20_000);
  const old = broker(md.leaderId);
  const other = broker(md.leaderId === 1 ? 2 : 1);

  const init = await kafkaRequest(old.port, ApiKey.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 });
  expect(init.errorCode).toBe(ErrorCode.NONE);
  const pid = init.producerId;
  const produce = async (transactionalId: string | null, records: Buffer) => (await kafkaRequest(old.port, ApiKey.Produce, 9, {
    transactionalId, acks: -1, timeoutMs: 10_000, topicData: [{ name: TOPIC, partitionData: [{ index: 0, records }] }],
  })).responses[0]!.partitionResponses[0]!;
  expect(await produce(null, encodeRecordBatch({ records: [{ value: 'p0' }] }))).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
  // acks=all: the follower has the transaction's batch when this answers.
  const txn = encodeRecordBatch({ records: [{ value: 't0' }, { value: 't1' }], producerId: pid, producerEpoch: 0, baseSequence: 0, transactional: true });
  expect(await produce('tx-rep', txn)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 1n });
  expect(await latest(old, 1)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 1n });

  old.process.child.kill('SIGKILL');
  await old.process.exited();
  await until('the follower leads', async () => (await partitionMd(other)).leaderId === other.nodeId, 20_000);
  // The promoted follower knows the open transaction from the replicated bytes.
  await until('its high watermark covers the transaction', async () => (await latest(other, 0)).offset === 3n, 20_000);
  expect(await latest(other, 1)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 1n });
  expect(await fetchCommitted(other)).toMatchObject({ errorCode: ErrorCode.NONE, highWatermark: 3n, lastStableOffset: 1n, bases: [0n] });

  const back = await cluster.restart(old);
  await until('the old leader follows again', async () => (await partitionMd(other)).isr.length === 2, 30_000);
  // Not the leader: the coordinator is told to look again; the leader writes it and answers once committed.
  expect(await markers(back, pid, [0])).toEqual([[0, 'NOT_LEADER_OR_FOLLOWER']]);
  expect(await markers(other, pid, [0, 5])).toEqual([[0, ''], [5, 'UNKNOWN_TOPIC_OR_PARTITION']]);
  expect(await latest(other, 1)).toMatchObject({ offset: 4n });
  expect(await fetchCommitted(other)).toMatchObject({ lastStableOffset: 4n, abortedTransactions: [], bases: [0n, 1n, 3n] });

  // The marker replicated: the preferred leader (the old one) takes over with no open transaction.
  await until('the old leader has the marker and is in sync', async () => (await partitionMd(other)).isr.length === 2, 30_000);
  await until('the preferred leader leads again', async () => {
    await kafkaRequest(other.port, ApiKey.ElectLeaders, 2, { electionType: 0, topicPartitions: [{ topic: TOPIC, partitions: [0] }], timeoutMs: 10_000 });
    return (await partitionMd(back)).leaderId === back.nodeId;
  }, 30_000);
  await until('its high watermark covers the marker', async () => (await latest(back, 0)).offset === 4n, 20_000);
  expect(await latest(back, 1)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 4n });
  expect(await fetchCommitted(back)).toMatchObject({ lastStableOffset: 4n, abortedTransactions: [], bases: [0n, 1n, 3n] });
}, 150_000);
