// IBM's sarama (Go, the `sarama` subcommands of test/go's program) and kafka-python (pure Python,
// the `kafka-python` subcommands of test/python/runnel_ck.py) against a real `runnel start`
// process: a record round trip through a consumer group, DescribeCluster as each client's admin
// API sees it (kafka-python's describe_cluster once broke on a missing DescribeCluster v1), and
// the fail-fast answer to a transactional producer (each used to hang 30–90 s: Runnel has no
// transaction coordinator). Both clients are built/installed on first use (test/helpers/ecosystems.ts).
import { ApiKey } from '@runnel/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { KAFKA_PYTHON_VERSION, SARAMA_VERSION, kafkaPython, sarama, values, type ClusterAdmin, type ConsumedRecord, type EcosystemClient } from './helpers/ecosystems.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';

let broker: TestBroker;
/** The broker's own DescribeCluster answer, which each client's view must match. */
let cluster: { clusterId: string; controllerId: number; brokers: Array<{ nodeId: number; host: string; port: number }> };

beforeAll(async () => {
  broker = await startBroker({ set: ['num.partitions=4'] });
  const d = await kafkaRequest(broker.port, ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType: 1 });
  expect(d.errorCode).toBe(0);
  cluster = {
    clusterId: d.clusterId as string,
    controllerId: d.controllerId as number,
    brokers: (d.brokers as Array<{ brokerId: number; host: string; port: number }>).map((b) => ({ nodeId: b.brokerId, host: b.host, port: b.port })),
  };
}, 60_000);

afterAll(async () => {
  await broker?.cleanup();
});

function byValue(records: ConsumedRecord[]): string[] {
  return records.map((r) => r.value).sort();
}

/** The transaction was committed (init, one record, commit). */
function expectCommitted(t: Awaited<ReturnType<EcosystemClient<ClusterAdmin>['txn']>>): void {
  expect(t).toMatchObject({ ok: true, error: null });
}

describe(`sarama ${SARAMA_VERSION} against runnel start`, () => {
  let client: EcosystemClient<ClusterAdmin>;
  let modern: EcosystemClient<ClusterAdmin>;

  beforeAll(async () => {
    client = await sarama();
    modern = await sarama({ kafkaVersion: '4.0.0' });
  }, 900_000);

  it('idempotent SyncProducer → consumer group round trip (sarama\'s default versions, Kafka 2.8)', async () => {
    const produced = await client.produce({ bootstrap: broker.bootstrap, topic: 'sarama-rt', count: 100, compression: 'snappy', prefix: 's' });
    expect(produced).toMatchObject({ acked: 100, failed: 0, error: null, kafkaVersion: '2.8.0' });
    expect(Object.values(produced.partitions).reduce((a, b) => a + b, 0)).toBe(100);
    const consumed = await client.consume({ bootstrap: broker.bootstrap, topic: 'sarama-rt', group: 'sarama-rt', count: 100, maxMs: 40_000 });
    expect(consumed.done).toMatchObject({ count: 100, lastError: null });
    expect(byValue(consumed.records)).toEqual(values('s', 100).sort());
    expect(consumed.records.find((r) => r.value === values('s', 100)[7])).toMatchObject({ key: 'k-7', headers: { i: '7' } });
  }, 60_000);

  it('round trip with Kafka 4.0 request versions, and ClusterAdmin.DescribeCluster matches the broker', async () => {
    const produced = await modern.produce({ bootstrap: broker.bootstrap, topic: 'sarama-rt4', count: 50, compression: 'zstd', prefix: 's4' });
    expect(produced).toMatchObject({ acked: 50, failed: 0, error: null, kafkaVersion: '4.0.0' });
    const consumed = await modern.consume({ bootstrap: broker.bootstrap, topic: 'sarama-rt4', group: 'sarama-rt4', count: 50, maxMs: 40_000 });
    expect(byValue(consumed.records)).toEqual(values('s4', 50).sort());
    const admin = await modern.admin({ bootstrap: broker.bootstrap });
    expect(admin.cluster).toEqual({ controllerId: cluster.controllerId, brokers: cluster.brokers, error: null });
  }, 60_000);

  it('a transactional idempotent producer commits a transaction (docs/transactions.md)', async () => {
    expectCommitted(await client.txn({ bootstrap: broker.bootstrap, topic: 'sarama-txn', maxMs: 30_000 }));
    expectCommitted(await modern.txn({ bootstrap: broker.bootstrap, topic: 'sarama-txn', maxMs: 30_000 }));
  }, 60_000);
});

describe(`kafka-python ${KAFKA_PYTHON_VERSION} against runnel start`, () => {
  let client: EcosystemClient<ClusterAdmin>;

  beforeAll(async () => {
    client = await kafkaPython();
  }, 900_000);

  it('idempotent KafkaProducer (gzip) → KafkaConsumer group round trip at the negotiated versions', async () => {
    const produced = await client.produce({ bootstrap: broker.bootstrap, topic: 'kp-rt', count: 100, compression: 'gzip', prefix: 'kp' });
    expect(produced).toMatchObject({ acked: 100, failed: 0, error: null });
    expect(produced.requests.InitProducerId?.length).toBe(1);
    const consumed = await client.consume({ bootstrap: broker.bootstrap, topic: 'kp-rt', group: 'kp-rt', count: 100, maxMs: 40_000 });
    expect(consumed.done).toMatchObject({ count: 100, commitError: null, leaveError: null });
    expect(byValue(consumed.records)).toEqual(values('kp', 100).sort());
    expect(consumed.records.find((r) => r.value === values('kp', 100)[3])).toMatchObject({ key: 'k-3', headers: { i: '3' } });
  }, 60_000);

  it('KafkaAdminClient.describe_cluster() answers from DescribeCluster with the broker\'s cluster id, controller and brokers', async () => {
    const admin = await client.admin({ bootstrap: broker.bootstrap });
    expect(admin.cluster).toEqual({ clusterId: cluster.clusterId, controllerId: cluster.controllerId, brokers: cluster.brokers.map((b) => ({ ...b, rack: null })) });
    // From DescribeCluster itself (kafka-python falls back to Metadata only for a broker without it).
    expect(admin.requests.DescribeCluster?.length).toBe(1);
  }, 60_000);

  it('a transactional KafkaProducer commits a transaction (docs/transactions.md)', async () => {
    expectCommitted(await client.txn({ bootstrap: broker.bootstrap, topic: 'kp-txn', maxMs: 30_000 }));
  }, 60_000);
});
