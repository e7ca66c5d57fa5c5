// `runnel cluster up` replicates by default: with 2 brokers, a topic created without a factor and
// `__consumer_offsets` get min(3, brokers) = 2 replicas, and `min.insync.replicas` is
// min(2, brokers - 1) = 1 (losing a broker never blocks acks=all), unless the user set a key: here
// `--set min.insync.replicas=2` wins over the default.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, expect, it } from 'vitest';
import { startProcess, type Started } from '../helpers/process.ts';
import { until } from '../helpers/until.ts';

const runnel = join(import.meta.dirname, '../../packages/cli/bin/runnel.ts');
let dir: string | undefined;
let up: Started | undefined;

afterAll(async () => {
  await up?.stop(15_000);
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('cluster up sets the replication factors to min(3, brokers), and keeps a min.insync.replicas the user set', async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnel-cluster-up-rf-'));
  up = await startProcess(process.execPath, [runnel, 'cluster', 'up', '--brokers', '2', '--coordinators', '1', '--dir', dir, '--port', '0',
    '--set', 'offsets.topic.num.partitions=3', '--set', 'min.insync.replicas=2'], { env: { KAFKA_DEFAULT_REPLICATION_FACTOR: undefined, KAFKA_MIN_INSYNC_REPLICAS: undefined, KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: undefined } });
  const bootstrap = (await up.waitFor(/bootstrap\.servers=(\S+)/, 60_000))[1]!;
  const admin = new Kafka({ brokers: bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1_000 } }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: 'defaults', numPartitions: 2 }] });
    const replicas = async (topic: string) => (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions.map((p) => p.replicas.length);
    expect(await replicas('defaults')).toEqual([2, 2]);
    expect(await until('__consumer_offsets', () => replicas('__consumer_offsets').catch(() => undefined), 30_000)).toEqual([2, 2, 2]);
    const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.BROKER, name: '1', configNames: ['min.insync.replicas', 'default.replication.factor', 'offsets.topic.replication.factor'] }] });
    const configs = Object.fromEntries(resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
    expect(configs).toEqual({ 'min.insync.replicas': '2', 'default.replication.factor': '2', 'offsets.topic.replication.factor': '2' });
  } finally {
    await admin.disconnect();
  }
}, 90_000);
