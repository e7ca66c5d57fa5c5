// Reassignment throttling end to end, in a real 2-broker cluster: the throttle is set the way
// `kafka-reassign-partitions --throttle` sets it (broker rates, topic replica lists) through
// kafkajs's alterConfigs (AlterConfigs, key 33) and raw IncrementalAlterConfigs (key 44) frames;
// a partition holding ~3 MB moves from broker 1 to broker 2 (kafkajs alterPartitionReassignments)
// and its new replica cannot catch up faster than the throttle allows (a semantic bound: bytes /
// rate × 0.7, Kafka's 10 s quota window included); a move under a much lower throttle stays
// unfinished until the throttle is removed, then completes. kafkajs's describeConfigs sees the
// dynamic values with Kafka's sources, and they survive a broker restart.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { startBroker } from '../helpers/broker.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { kafkaRequest } from '../helpers/raw-kafka.ts';
import { until } from '../helpers/until.ts';
import { partitionStates } from './harness.ts';

const BROKER = 4;
const TOPIC = 2;
const SET = 0;
const DELETE = 1;
const APPEND = 2;
const BYTES = 3 * 1024 * 1024;
const RATE = 200_000;

let cluster: TestCluster;
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  // A coordinator node too: it answers every API a broker does, these included. The quota's
  // window (Kafka's default: 11 samples of 1 s) lets a fresh quota pass ~10 s worth at once,
  // most of this test's 3 MB; 2 samples keep that burst to ~1 s worth, so the bound below measures
  // the rate. Small replica fetches (64 KiB) for the same reason: one fetch may pass the quota by
  // what it returns.
  cluster = await startCluster({
    brokers: 2, coordinators: 1,
    set: ['auto.leader.rebalance.enable=false', 'replica.fetch.max.bytes=65536', 'replication.quota.window.num=2'],
  });
  kafka = new Kafka({ clientId: 'throttle-test', brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
}, 60_000);

afterAll(async () => {
  await admin?.disconnect().catch(() => {});
  await cluster?.cleanup();
});

/** A topic with one partition on broker 1 only, holding BYTES of incompressible records. */
async function filled(topic: string): Promise<void> {
  await admin.createTopics({ topics: [{ topic, replicaAssignment: [{ partition: 0, replicas: [1] }] }], waitForLeaders: true });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const value = 64 * 1024;
  for (let sent = 0; sent < BYTES; sent += 8 * value) {
    await producer.send({ topic, acks: -1, messages: Array.from({ length: 8 }, () => ({ value: randomBytes(value) })) });
  }
  await producer.disconnect();
}

/** IncrementalAlterConfigs v1 on broker 1's listener; the error codes per resource. */
async function incremental(resources: { resourceType: number; resourceName: string; configs: { name: string; configOperation: number; value: string | null }[] }[], validateOnly = false) {
  const res = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.IncrementalAlterConfigs, 1, { resources, validateOnly });
  return res.responses.map((r) => ({ name: r.resourceName, code: r.errorCode, message: r.errorMessage }));
}

const moved = async (topic: string) => {
  const [p] = await partitionStates(cluster, topic);
  return p!.replicas.join(',') === '2' && (p!.addingReplicas ?? []).length === 0 && (p!.removingReplicas ?? []).length === 0;
};

const reassign = (topic: string) => admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [2] }] }] });

describe('replication throttling (leader/follower.replication.throttled.rate and .replicas)', () => {
  it('refuses unknown configs, bad values and read-only broker configs, one resource at a time, and honours validateOnly', async () => {
    await admin.createTopics({ topics: [{ topic: 'configs', numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    expect(await incremental([
      { resourceType: TOPIC, resourceName: 'configs', configs: [{ name: 'retention.ms', configOperation: SET, value: '1000' }] },
      { resourceType: TOPIC, resourceName: 'configs', configs: [{ name: 'no.such.config', configOperation: SET, value: '1' }] },
      { resourceType: TOPIC, resourceName: 'configs', configs: [{ name: 'leader.replication.throttled.replicas', configOperation: SET, value: '0:x' }] },
      { resourceType: BROKER, resourceName: '1', configs: [{ name: 'log.dirs', configOperation: SET, value: '/tmp/x' }] },
      { resourceType: BROKER, resourceName: '', configs: [{ name: 'leader.replication.throttled.rate', configOperation: SET, value: '-5' }] },
      { resourceType: BROKER, resourceName: '', configs: [{ name: 'leader.replication.throttled.rate', configOperation: APPEND, value: '5' }] },
      { resourceType: TOPIC, resourceName: 'missing', configs: [] },
    ])).toEqual([
      { name: 'configs', code: ErrorCode.NONE, message: null },
      { name: 'configs', code: ErrorCode.INVALID_CONFIG, message: 'Unknown topic config name: no.such.config' },
      { name: 'configs', code: ErrorCode.INVALID_CONFIG, message: expect.stringContaining('leader.replication.throttled.replicas') },
      { name: '1', code: ErrorCode.INVALID_REQUEST, message: expect.stringContaining('Cannot update these configs dynamically: Set(log.dirs)') },
      { name: '', code: ErrorCode.INVALID_CONFIG, message: expect.stringContaining('out of range') },
      { name: '', code: ErrorCode.INVALID_CONFIG, message: 'Config value append is not allowed for config key: leader.replication.throttled.rate' },
      { name: 'missing', code: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message: 'topic "missing" does not exist' },
    ]);
    expect(await incremental([{ resourceType: TOPIC, resourceName: 'configs', configs: [{ name: 'retention.ms', configOperation: DELETE, value: null }] }], true))
      .toEqual([{ name: 'configs', code: ErrorCode.NONE, message: null }]);
    const [described] = (await admin.describeConfigs({ resources: [{ type: TOPIC, name: 'configs', configNames: ['retention.ms'] }], includeSynonyms: false })).resources;
    expect(described!.configEntries).toMatchObject([{ configName: 'retention.ms', configValue: '1000', configSource: 1 }]);

    // The coordinator node (listed in Metadata: the Java Admin may pick it) alters configs too.
    const viaCoordinator = await kafkaRequest(cluster.coordinators[0]!.port, ApiKey.IncrementalAlterConfigs, 0, {
      resources: [{ resourceType: TOPIC, resourceName: 'configs', configs: [{ name: 'retention.ms', configOperation: SET, value: '2000' }] }], validateOnly: false,
    });
    expect(viaCoordinator.responses.map((r) => r.errorCode)).toEqual([ErrorCode.NONE]);
    await until('the broker sees the coordinator\'s change', async () => {
      const [r] = (await admin.describeConfigs({ resources: [{ type: TOPIC, name: 'configs', configNames: ['retention.ms'] }], includeSynonyms: false })).resources;
      return r!.configEntries[0]?.configValue === '2000';
    }, 10_000);
  }, 30_000);

  it('a throttled new replica catches up no faster than the throttle; kafkajs describeConfigs shows the dynamic values with their sources', async () => {
    await filled('paced');
    // kafkajs sends AlterConfigs (key 33) to broker 1 for its own resource; the rest as the reassign tool does.
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: BROKER, name: '1', configEntries: [{ name: 'leader.replication.throttled.rate', value: String(RATE) }] }] });
    expect(await incremental([
      { resourceType: BROKER, resourceName: '', configs: [{ name: 'follower.replication.throttled.rate', configOperation: SET, value: String(RATE) }] },
      { resourceType: TOPIC, resourceName: 'paced', configs: [
        { name: 'leader.replication.throttled.replicas', configOperation: SET, value: '0:1' },
        { name: 'follower.replication.throttled.replicas', configOperation: APPEND, value: '0:2' },
      ] },
    ])).toEqual([{ name: '', code: 0, message: null }, { name: 'paced', code: 0, message: null }]);

    const described = await admin.describeConfigs({
      resources: [{ type: BROKER, name: '1', configNames: ['leader.replication.throttled.rate', 'follower.replication.throttled.rate'] }, { type: TOPIC, name: 'paced', configNames: ['follower.replication.throttled.replicas'] }],
      includeSynonyms: false,
    });
    const entries = described.resources.flatMap((r) => r.configEntries.map((e) => ({ name: e.configName, value: e.configValue, source: e.configSource, readOnly: e.readOnly })));
    expect(entries).toEqual(expect.arrayContaining([
      { name: 'leader.replication.throttled.rate', value: String(RATE), source: 2, readOnly: false }, // DYNAMIC_BROKER_CONFIG
      { name: 'follower.replication.throttled.rate', value: String(RATE), source: 3, readOnly: false }, // DYNAMIC_DEFAULT_BROKER_CONFIG
      { name: 'follower.replication.throttled.replicas', value: '0:2', source: 1, readOnly: false }, // DYNAMIC_TOPIC_CONFIG
    ]));

    const started = Date.now();
    await reassign('paced');
    await until('paced moved to broker 2', () => moved('paced'), 90_000);
    const seconds = (Date.now() - started) / 1000;
    const bound = (BYTES / RATE) * 0.7;
    console.log(`[throttle] ${BYTES} bytes moved at ${RATE} B/s in ${seconds.toFixed(1)} s (bound ${bound.toFixed(1)} s)`);
    expect(seconds).toBeGreaterThanOrEqual(bound);
  }, 150_000);

  it('a move under a tiny throttle stays unfinished until the throttle is removed, then completes', async () => {
    await filled('stalled');
    expect(await incremental([
      { resourceType: BROKER, resourceName: '1', configs: [{ name: 'leader.replication.throttled.rate', configOperation: SET, value: '10000' }] },
      { resourceType: TOPIC, resourceName: 'stalled', configs: [
        { name: 'leader.replication.throttled.replicas', configOperation: SET, value: '*' },
        { name: 'follower.replication.throttled.replicas', configOperation: SET, value: '*' },
      ] },
    ])).toEqual([{ name: '1', code: 0, message: null }, { name: 'stalled', code: 0, message: null }]);
    await reassign('stalled');
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const [p] = await partitionStates(cluster, 'stalled');
    expect(p!.addingReplicas).toEqual([2]);
    // validateOnly removes nothing.
    const removeRates = [
      { resourceType: BROKER, resourceName: '1', configs: [{ name: 'leader.replication.throttled.rate', configOperation: DELETE, value: null }] },
      { resourceType: BROKER, resourceName: '', configs: [{ name: 'follower.replication.throttled.rate', configOperation: DELETE, value: null }] },
    ];
    await incremental(removeRates, true);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await partitionStates(cluster, 'stalled'))[0]!.addingReplicas).toEqual([2]);
    expect(await incremental(removeRates)).toEqual([{ name: '1', code: 0, message: null }, { name: '', code: 0, message: null }]);
    await until('stalled moved to broker 2 once the throttle was removed', () => moved('stalled'), 30_000);
  }, 120_000);

  it('dynamic broker configs survive a restart of the broker', async () => {
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: BROKER, name: '1', configEntries: [{ name: 'follower.replication.throttled.rate', value: '123456789' }] }] });
    await admin.disconnect();
    await cluster.restart(cluster.brokers[0]!);
    kafka = new Kafka({ clientId: 'throttle-test-2', brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    const described = await admin.describeConfigs({ resources: [{ type: BROKER, name: '1', configNames: ['follower.replication.throttled.rate', 'leader.replication.throttled.rate'] }], includeSynonyms: false });
    expect(described.resources[0]!.configEntries.map((e) => ({ name: e.configName, value: e.configValue, source: e.configSource }))).toEqual(expect.arrayContaining([
      { name: 'follower.replication.throttled.rate', value: '123456789', source: 2 },
      { name: 'leader.replication.throttled.rate', value: '9223372036854775807', source: 5 },
    ]));
  }, 60_000);
});

describe('runnel start (LocalStore)', () => {
  it('alters topic and broker configs; they survive a restart on the same data', async () => {
    let broker = await startBroker();
    const logDir = broker.logDir;
    try {
      const single = new Kafka({ clientId: 'throttle-single', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
      await single.connect();
      await single.createTopics({ topics: [{ topic: 'kept', numPartitions: 1 }], waitForLeaders: true });
      await single.alterConfigs({ validateOnly: false, resources: [
        { type: TOPIC, name: 'kept', configEntries: [{ name: 'retention.ms', value: '5000' }] },
        { type: BROKER, name: '1', configEntries: [{ name: 'leader.replication.throttled.rate', value: '777' }] },
      ] });
      await single.disconnect();
      await broker.stop();
      broker = await startBroker({ logDir });
      const again = new Kafka({ clientId: 'throttle-single-2', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
      await again.connect();
      const described = await again.describeConfigs({ includeSynonyms: false, resources: [
        { type: TOPIC, name: 'kept', configNames: ['retention.ms'] },
        { type: BROKER, name: '1', configNames: ['leader.replication.throttled.rate'] },
      ] });
      await again.disconnect();
      expect(described.resources.map((r) => r.configEntries.map((e) => [e.configName, e.configValue, e.configSource]))).toEqual([
        [['retention.ms', '5000', 1]],
        [['leader.replication.throttled.rate', '777', 2]],
      ]);
    } finally {
      await broker.cleanup();
    }
  }, 60_000);

  it('a broker resource named "01" is node 1: a DELETE through it removes what "1" set; a non-numeric name is INVALID_REQUEST', async () => {
    const broker = await startBroker();
    try {
      const alter = async (resourceName: string, configOperation: number, value: string | null) => {
        const res = await kafkaRequest(broker.port, ApiKey.IncrementalAlterConfigs, 1, {
          validateOnly: false,
          resources: [{ resourceType: BROKER, resourceName, configs: [{ name: 'leader.replication.throttled.rate', configOperation, value }] }],
        });
        return res.responses.map((r) => [r.resourceName, r.errorCode]);
      };
      const single = new Kafka({ clientId: 'throttle-single-01', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
      await single.connect();
      const rate = async () => (await single.describeConfigs({ includeSynonyms: false, resources: [
        { type: BROKER, name: '1', configNames: ['leader.replication.throttled.rate'] },
      ] })).resources[0]!.configEntries.map((e) => [e.configValue, e.configSource]);
      try {
        expect(await alter('1', SET, '777')).toEqual([['1', ErrorCode.NONE]]);
        expect(await rate()).toEqual([['777', 2]]);
        expect(await alter('01', DELETE, null)).toEqual([['01', ErrorCode.NONE]]);
        expect(await rate()).not.toEqual([['777', 2]]);
        expect(await alter('01', SET, '888')).toEqual([['01', ErrorCode.NONE]]);
        expect(await rate()).toEqual([['888', 2]]);
        expect(await alter('one', SET, '1')).toEqual([['one', ErrorCode.INVALID_REQUEST]]);
        expect(await rate()).toEqual([['888', 2]]);
      } finally {
        await single.disconnect();
      }
    } finally {
      await broker.cleanup();
    }
  }, 60_000);
});
