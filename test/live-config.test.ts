// Dynamic broker configs against `runnel start` (LocalStore), through Apache Kafka's own
// kafka-configs (4.3.1, test/helpers/kafka-tools.ts): a cluster-wide default of a log config
// reaches partitions without an override of their own at once (segments roll at the new size, and
// retention trims them without a restart), a per-broker message.max.bytes refuses a bigger batch
// at once and --delete-config lifts it, DescribeConfigs shows the source and Kafka's synonyms (and
// not the transaction-log settings of a subsystem Runnel does not have), a read-only config is
// refused with Kafka's message, and the values survive a restart of the broker.
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { kafkaTools, ok, type KafkaTools } from './helpers/kafka-tools.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

let broker: TestBroker;
let tools: KafkaTools;
let admin: Admin;
let producer: Producer;

async function connect(): Promise<void> {
  const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
  admin = kafka.admin();
  producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  await Promise.all([admin.connect(), producer.connect()]);
}

async function disconnect(): Promise<void> {
  await Promise.allSettled([admin?.disconnect(), producer?.disconnect()]);
}

beforeAll(async () => {
  // The retention task runs every second (a static config: Kafka's is not dynamic either).
  [tools, broker] = await Promise.all([kafkaTools(), startBroker({ set: ['log.retention.check.interval.ms=1000'] })]);
  await connect();
}, 660_000);

afterAll(async () => {
  await disconnect();
  await broker?.cleanup();
});

const configs = async (args: string[]) => ok(await tools.configs(['--bootstrap-server', broker.bootstrap, ...args]));
/** The partition's log start offset (ListOffsets EARLIEST). */
const logStart = async (topic: string) => {
  const res = await kafkaRequest(broker.port, ApiKey.ListOffsets, 1, {
    replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -2n, maxNumOffsets: 1 }] }],
  } as never);
  return Number(res.topics[0]!.partitions[0]!.offset);
};
/** name → [value, source, synonyms as `source:name=value`] of a broker resource ('' = the cluster default). */
async function describeBroker(name: string, keys: string[] | null): Promise<Map<string, [string | null, number, string[]]>> {
  const res = await kafkaRequest(broker.port, ApiKey.DescribeConfigs, 4, { resources: [{ resourceType: 4, resourceName: name, configurationKeys: keys }], includeSynonyms: true, includeDocumentation: false });
  return new Map(res.results[0]!.configs.map((c) => [c.name, [c.value, c.configSource, c.synonyms.map((s) => `${s.source}:${s.name}=${s.value}`)]]));
}

const sendBatch = (topic: string, bytes: number) => producer.send({ topic, acks: 1, messages: [{ value: Buffer.alloc(bytes, 'x') }] });

it('a cluster-wide default of log.segment.bytes and log.retention.ms reaches a partition without an override at once; DescribeConfigs shows it with its synonyms', async () => {
  await admin.createTopics({ topics: [{ topic: 'r', numPartitions: 1 }], waitForLeaders: true });
  expect(await configs(['--alter', '--entity-type', 'brokers', '--entity-default', '--add-config', 'log.segment.bytes=2000'])).toContain('Completed updating default config for brokers in the cluster.');
  for (let i = 0; i < 10; i++) await sendBatch('r', 600);
  expect(await logStart('r')).toBe(0);

  // Nothing is older than 1 ms for long: the closed segments go on the next retention pass.
  ok(await tools.configs(['--bootstrap-server', broker.bootstrap, '--alter', '--entity-type', 'brokers', '--entity-default', '--add-config', 'log.retention.ms=1']));
  const start = await until('retention trimmed r without a restart', async () => { const s = await logStart('r'); return s > 0 && s; }, 20_000);
  expect(start).toBeGreaterThanOrEqual(6); // ~3 batches of 600 bytes per 2000-byte segment: all but the active one went

  const described = await configs(['--describe', '--entity-type', 'topics', '--entity-name', 'r', '--all']);
  expect(described).toContain('retention.ms=1 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=1, DEFAULT_CONFIG:log.retention.hours=168}');
  expect(described).toContain('segment.bytes=2000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.segment.bytes=2000, DEFAULT_CONFIG:log.segment.bytes=1073741824}');
  expect(described).toContain('retention.bytes=-1 sensitive=false synonyms={DEFAULT_CONFIG:log.retention.bytes=-1}');

  // The broker resource (a raw DescribeConfigs: each JVM tool run costs seconds): the dynamic level
  // first, then the static and default ones; the transaction settings are listed as Kafka lists them.
  const node = await describeBroker('1', null);
  expect(node.get('log.segment.bytes')).toEqual(['2000', 3, ['3:log.segment.bytes=2000', '5:log.segment.bytes=1073741824']]);
  expect(node.get('log.retention.check.interval.ms')).toEqual(['1000', 4, ['4:log.retention.check.interval.ms=1000', '5:log.retention.check.interval.ms=300000']]);
  expect(node.get('transaction.max.timeout.ms')).toEqual(['900000', 5, ['5:transaction.max.timeout.ms=900000']]);

  ok(await tools.configs(['--bootstrap-server', broker.bootstrap, '--alter', '--entity-type', 'brokers', '--entity-default', '--delete-config', 'log.retention.ms,log.segment.bytes']));
  expect([...(await describeBroker('', null)).keys()]).toEqual([]);
}, 120_000);

it('a per-broker message.max.bytes refuses a bigger batch at once, --delete-config lifts it, and a read-only config is refused', async () => {
  await admin.createTopics({ topics: [{ topic: 'm', numPartitions: 1 }], waitForLeaders: true });
  await sendBatch('m', 20_000);
  ok(await tools.configs(['--bootstrap-server', broker.bootstrap, '--alter', '--entity-type', 'brokers', '--entity-name', '1', '--add-config', 'message.max.bytes=10000']));
  await expect(sendBatch('m', 20_000)).rejects.toMatchObject({ type: 'MESSAGE_TOO_LARGE' });
  await sendBatch('m', 5_000);

  // DescribeConfigs says which broker configs can change: message.max.bytes can, log.dirs cannot.
  const res = await kafkaRequest(broker.port, ApiKey.DescribeConfigs, 4, { resources: [{ resourceType: 4, resourceName: '1', configurationKeys: ['message.max.bytes', 'log.dirs'] }], includeSynonyms: true, includeDocumentation: false });
  expect(res.results[0]!.configs.map((c) => [c.name, c.value, c.readOnly, c.configSource, c.synonyms.map((s) => `${s.source}:${s.name}=${s.value}`)]).sort()).toEqual([
    ['log.dirs', broker.logDir, true, 4, [`4:log.dirs=${broker.logDir}`]],
    ['message.max.bytes', '10000', false, 2, ['2:message.max.bytes=10000', '5:message.max.bytes=1048588']],
  ]);

  const refused = await tools.configs(['--bootstrap-server', broker.bootstrap, '--alter', '--entity-type', 'brokers', '--entity-name', '1', '--add-config', 'log.dirs=/tmp/elsewhere']);
  expect(refused.code).not.toBe(0);
  expect(refused.stdout + refused.stderr).toContain('Cannot update these configs dynamically: Set(log.dirs)');

  ok(await tools.configs(['--bootstrap-server', broker.bootstrap, '--alter', '--entity-type', 'brokers', '--entity-name', '1', '--delete-config', 'message.max.bytes']));
  await sendBatch('m', 20_000);
}, 120_000);

it('dynamic broker configs are kept in metadata: a restarted broker applies them at start', async () => {
  await admin.createTopics({ topics: [{ topic: 'p', numPartitions: 1 }], waitForLeaders: true });
  ok(await tools.configs(['--bootstrap-server', broker.bootstrap, '--alter', '--entity-type', 'brokers', '--entity-name', '1', '--add-config', 'message.max.bytes=10000']));
  await disconnect();
  await broker.stop();
  broker = await startBroker({ logDir: broker.logDir, set: ['log.retention.check.interval.ms=1000'] });
  await connect();
  expect((await describeBroker('1', ['message.max.bytes'])).get('message.max.bytes')).toEqual(['10000', 2, ['2:message.max.bytes=10000', '5:message.max.bytes=1048588']]);
  // A partition loaded from disk at start, not created since.
  await expect(sendBatch('m', 20_000)).rejects.toMatchObject({ type: 'MESSAGE_TOO_LARGE' });
  await sendBatch('m', 5_000);
}, 120_000);
