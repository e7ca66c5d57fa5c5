// Apache Kafka's own kafka-configs and kafka-reassign-partitions (4.3.1, from Maven Central
// through test/java/fetch-tools.sh) against 2 broker processes: topic and broker configs are
// altered (IncrementalAlterConfigs) and described (DescribeConfigs) as Kafka prints them, a config
// Runnel cannot change at runtime is refused with Kafka's message, and `--execute --throttle`
// sets the replication throttle on every broker and on the moving topic, which `--verify`
// removes once the move is done. A per-broker dynamic config (message.max.bytes) applies at once on
// that broker only, and a restarted broker reads it back from Redis.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey } from '@runnel/protocol';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { kafkaTools, ok, type KafkaTools } from '../helpers/kafka-tools.ts';
import { kafkaRequest } from '../helpers/raw-kafka.ts';
import { until } from '../helpers/until.ts';
import { partitionStates } from './harness.ts';

let cluster: TestCluster;
let tools: KafkaTools;
let dir: string;

beforeAll(async () => {
  [tools, cluster, dir] = await Promise.all([
    kafkaTools(),
    startCluster({ brokers: 2, coordinators: 0, set: ['auto.leader.rebalance.enable=false'] }),
    mkdtemp(join(tmpdir(), 'runnel-kafka-configs-')),
  ]);
}, 660_000);
afterAll(async () => {
  await cluster?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const bootstrap = () => ['--bootstrap-server', cluster.bootstrap];
const configs = async (args: string[]) => ok(await tools.configs([...bootstrap(), ...args]));

/**
 * The dynamic configs (source DYNAMIC_BROKER_CONFIG 2 or DYNAMIC_TOPIC_CONFIG 1) of a broker or
 * topic as `name=value`, through a raw DescribeConfigs to broker 1 (each JVM tool run costs seconds).
 */
async function dynamic(resourceType: 2 | 4, resourceName: string): Promise<string[]> {
  const port = resourceType === 4 ? cluster.brokers.find((b) => String(b.nodeId) === resourceName)!.port : cluster.brokers[0]!.port;
  const res = await kafkaRequest(port, ApiKey.DescribeConfigs, 2, { resources: [{ resourceType, resourceName, configurationKeys: null }], includeSynonyms: false });
  return res.results[0]!.configs.filter((c) => c.configSource === (resourceType === 4 ? 2 : 1)).map((c) => `${c.name}=${c.value}`).sort();
}

it('kafka-configs alters and describes topic and broker configs; a static broker config is refused', async () => {
  ok(await tools.topics([...bootstrap(), '--create', '--topic', 't', '--replica-assignment', '1']));
  expect(await configs(['--alter', '--entity-type', 'topics', '--entity-name', 't', '--add-config', 'retention.ms=1000'])).toContain('Completed updating config for topic t.');
  expect(await configs(['--describe', '--entity-type', 'topics', '--entity-name', 't'])).toMatch(/Dynamic configs for topic t are:\n\s+retention\.ms=1000 sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:retention\.ms=1000/);

  // A cluster default that does not interfere with the move below (Runnel has no log-dir moves).
  expect(await configs(['--alter', '--entity-type', 'brokers', '--entity-default', '--add-config', 'replica.alter.log.dirs.io.max.bytes.per.second=300000'])).toContain('Completed updating default config for brokers in the cluster.');
  expect(await configs(['--describe', '--entity-type', 'brokers', '--entity-default'])).toMatch(/Default configs for brokers in the cluster are:\n\s+replica\.alter\.log\.dirs\.io\.max\.bytes\.per\.second=300000 sensitive=false synonyms=\{DYNAMIC_DEFAULT_BROKER_CONFIG:replica\.alter\.log\.dirs\.io\.max\.bytes\.per\.second=300000/);

  const refused = await tools.configs([...bootstrap(), '--alter', '--entity-type', 'brokers', '--entity-name', '1', '--add-config', 'log.dirs=/tmp/elsewhere']);
  expect(refused.code).not.toBe(0);
  expect(refused.stdout + refused.stderr).toContain('Cannot update these configs dynamically: Set(log.dirs)');
}, 120_000);

it('kafka-reassign-partitions --execute --throttle sets the throttle; --verify removes it once the move is done', async () => {
  const plan = join(dir, 'plan.json');
  await writeFile(plan, JSON.stringify({ version: 1, partitions: [{ topic: 't', partition: 0, replicas: [2] }] }));
  const executed = ok(await tools.reassign([...bootstrap(), '--execute', '--throttle', '200000', '--reassignment-json-file', plan]));
  expect(executed).toContain('Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.');
  expect(executed).toContain('The inter-broker throttle limit was set to 200000 B/s');
  expect(executed).toContain('Successfully started partition reassignment for t-0');
  for (const id of ['1', '2']) expect(await dynamic(4, id)).toEqual(['follower.replication.throttled.rate=200000', 'leader.replication.throttled.rate=200000']);
  expect(await dynamic(2, 't')).toEqual(['follower.replication.throttled.replicas=0:2', 'leader.replication.throttled.replicas=0:1', 'retention.ms=1000']);

  const verified = await until('the reassignment completed (--verify)', async () => {
    const out = ok(await tools.reassign([...bootstrap(), '--verify', '--reassignment-json-file', plan]));
    return !out.includes('still in progress') && out.includes('Reassignment of partition t-0 is completed') && out;
  }, 60_000);
  expect(verified).toContain('Clearing broker-level throttles on brokers 1,2');
  expect(verified).toContain('Clearing topic-level throttles on topic t');
  expect((await partitionStates(cluster, 't'))[0]!.replicas).toEqual([2]);
  for (const id of ['1', '2']) expect(await dynamic(4, id)).toEqual([]);
  expect(await dynamic(2, 't')).toEqual(['retention.ms=1000']);
}, 120_000);

it('a per-broker message.max.bytes applies at once on that broker only, survives its restart (Redis), and --delete-config lifts it', async () => {
  ok(await tools.topics([...bootstrap(), '--create', '--topic', 'on2', '--replica-assignment', '2']));
  ok(await tools.topics([...bootstrap(), '--create', '--topic', 'on1', '--replica-assignment', '1']));
  const kafka = () => new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 0 } });
  let producer = kafka().producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  await producer.connect();
  const send = (topic: string) => producer.send({ topic, acks: -1, messages: [{ value: Buffer.alloc(20_000, 'x') }] });
  try {
    ok(await tools.configs([...bootstrap(), '--alter', '--entity-type', 'brokers', '--entity-name', '2', '--add-config', 'message.max.bytes=10000']));
    // The tool returns once the node it asked sees the change; broker 2 follows metadata by itself.
    await until('broker 2 has the value', async () => (await dynamic(4, '2')).includes('message.max.bytes=10000'), 10_000);
    await expect(send('on2')).rejects.toMatchObject({ type: 'MESSAGE_TOO_LARGE' });
    await send('on1'); // broker 1 keeps its own value

    await producer.disconnect();
    await cluster.restart(cluster.brokers.find((b) => b.nodeId === 2)!, { samePort: true });
    producer = kafka().producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
    await producer.connect();
    await until('broker 2 leads on2 again', async () => (await partitionStates(cluster, 'on2'))[0]!.leader === 2, 30_000);
    await expect(send('on2')).rejects.toMatchObject({ type: 'MESSAGE_TOO_LARGE' });

    ok(await tools.configs([...bootstrap(), '--alter', '--entity-type', 'brokers', '--entity-name', '2', '--delete-config', 'message.max.bytes']));
    await until('broker 2 dropped the value', async () => (await dynamic(4, '2')).length === 0, 10_000);
    await send('on2');
  } finally {
    await producer.disconnect();
  }
}, 120_000);
