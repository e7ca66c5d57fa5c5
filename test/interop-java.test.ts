// The Apache Kafka Java client (kafka-clients 4.3.1 from Maven Central) against a real
// `runnel start` process, then its group and admin scenarios against a cluster (a controller, two
// brokers and a coordinator node, each its own process; one cluster for the whole block). test/java/RunnelInterop.java does the client work and the checks, and
// prints one `OK ...` or `FAIL <step>: ...` line per step; this file asserts those lines. The jars
// and the compiled class live in .cache/java-clients/<version> (git-ignored, fetched once by
// test/java/fetch-clients.sh). Without java, javac or mvn the file fails and says what to install.
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';

const version = process.env.RUNNEL_JAVA_CLIENT_VERSION ?? '4.3.1';
const fetchScript = join(import.meta.dirname, 'java/fetch-clients.sh');
let broker: TestBroker;
let classpath: string;

interface Run { code: number | null; stdout: string; stderr: string }

function run(command: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr: stderr + (error && code === null ? `\n[${error.message}]` : '') });
    });
  });
}

/** Runs one scenario and returns its stdout lines; the Java watchdog (60 s) fires before ours. */
async function scenario(name: string, bootstrap = broker.bootstrap): Promise<string[]> {
  const r = await run('java', ['-Drunnel.timeout.ms=60000', '-cp', classpath, 'RunnelInterop', bootstrap, name], 75_000);
  const lines = r.stdout.split('\n').filter(Boolean);
  const failures = lines.filter((l) => l.startsWith('FAIL'));
  if (r.code !== 0 || failures.length > 0) {
    throw new Error(`java scenario ${name} exited ${r.code}:\n${failures.join('\n') || r.stdout}\n--- java stderr (tail) ---\n${r.stderr.slice(-4000)}`);
  }
  return lines;
}

beforeAll(async () => {
  const missing = ['java', 'javac', 'mvn'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) {
    throw new Error(`the Java interop test needs ${missing.join(', ')}: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)`);
  }
  const fetched = await run(fetchScript, [version], 600_000);
  if (fetched.code !== 0) throw new Error(`${fetchScript} ${version} failed (${fetched.code}):\n${fetched.stderr}`);
  classpath = fetched.stdout.trim().split('\n').at(-1)!;
  broker = await startBroker();
}, 620_000);

afterAll(async () => {
  await broker?.cleanup();
});

describe(`Java kafka-clients ${version} against runnel`, () => {
  it('Admin: createTopics with configs, listTopics, describeTopics, describeConfigs, createPartitions, deleteTopics, describeCluster', async () => {
    const lines = await scenario('admin');
    expect(lines).toEqual([
      'OK createTopics java-admin',
      'OK listTopics contains java-admin',
      'OK describeTopics java-admin partitions=3 internal=false',
      'OK describeConfigs retention.ms=3600000 cleanup.policy=delete',
      'OK createPartitions java-admin partitions=5',
      'OK deleteTopics java-admin',
      `OK describeCluster nodes=1 controller=1 port=${broker.port}`,
      'DONE',
    ]);
  }, 80_000);

  it('default (idempotent, acks=all) producer with every codec; a group consumer reads keys, values, headers in order, commits, and a second member resumes after the commit', async () => {
    const lines = await scenario('produce-consume');
    expect(lines).toEqual([
      ...['none', 'gzip', 'snappy', 'lz4', 'zstd'].map((codec) => `OK ${codec} 300 partitions=3 resumed=0`),
      // No transaction coordinator yet: FindCoordinator(TRANSACTION) keeps answering COORDINATOR_NOT_AVAILABLE.
      'OK transactional.id unsupported: initTransactions threw TimeoutException',
      'DONE',
    ]);
  }, 80_000);

  it('static membership (group.instance.id): commits with OffsetCommit v7 and a restarted instance resumes after them', async () => {
    const lines = await scenario('static-member');
    expect(lines).toEqual(['OK static-member 20+10 members=1 instance=instance-1', 'DONE']);
  }, 80_000);

  it('two members split the partitions (range), read every record between them, and the survivor takes all after LeaveGroup', async () => {
    const lines = await scenario('rebalance');
    expect(lines).toEqual(['OK rebalance split=2+2 records=40 after-leave=4', 'DONE']);
  }, 80_000);

  it('ListOffsets earliest/latest/by timestamp, seek, commit with metadata, Admin listOffsets; null keys, values and header values', async () => {
    const lines = await scenario('offsets');
    expect(lines).toEqual(['OK offsets begin=0 end=10 time=5@5000 after-last=null seek7=3 committed=8/meta admin-latest=10', 'OK nulls', 'DONE']);
  }, 80_000);

  it('Admin on groups and records (kafka-consumer-groups.sh / kafka-delete-records.sh calls); group.protocol=consumer is refused promptly', async () => {
    const lines = await scenario('groups-admin');
    expect(lines).toEqual([
      'OK describeConsumerGroups members=1 assignor=range partitions=2 simple=false coordinator=1',
      'OK alterConsumerGroupOffsets p0=3 p1=10',
      'OK deleteConsumerGroupOffsets left=[0]',
      'OK deleteRecords earliest=5',
      'OK describeLogDirs dirs=1 java-ga-1 has bytes',
      'OK deleteConsumerGroups',
      // KIP-848 (ConsumerGroupHeartbeat) is not implemented; the client must fail fast, not hang.
      'OK group.protocol=consumer refused with UnsupportedVersionException',
      'DONE',
    ]);
  }, 80_000);

  it('every listed node serves what clients send to any node: an idempotent producer bootstrapped from it, a fresh Admin\'s describeConfigs', async () => {
    const lines = await scenario('any-node');
    expect(lines).toEqual(['OK idempotent producer via each of 1 nodes', 'OK describeConfigs fresh-admins=12', 'DONE']);
  }, 80_000);
});

// The same client against a cluster: the coordinator is its own process (node 3), found through
// FindCoordinator and listed in Metadata; partitions (RF 1, replication is not built) are spread
// over brokers 1 and 2, so produce, fetch, ListOffsets and DeleteRecords go to both.
describe(`Java kafka-clients ${version} against a runnel cluster (2 brokers, 1 coordinator)`, () => {
  let cluster: TestCluster;
  const inCluster = (name: string) => scenario(name, cluster.bootstrap);

  beforeAll(async () => {
    cluster = await startCluster({ brokers: 2, coordinators: 1 });
  }, 60_000);

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('Admin: the topic calls go through broker 1 (the controller clients are told); describeCluster lists the coordinator node too', async () => {
    const lines = await inCluster('admin');
    expect(cluster.coordinators[0]!.nodeId).toBe(3);
    expect(lines).toEqual([
      'OK createTopics java-admin',
      'OK listTopics contains java-admin',
      'OK describeTopics java-admin partitions=3 internal=false',
      'OK describeConfigs retention.ms=3600000 cleanup.policy=delete',
      'OK createPartitions java-admin partitions=5',
      'OK deleteTopics java-admin',
      // Brokers 1 and 2 and coordinator 3. The Runnel controller has no Kafka listener, so clients
      // are told the lowest live broker (kafkaControllerId).
      `OK describeCluster nodes=3 controller=1 port=${cluster.brokers[0]!.port}`,
      'DONE',
    ]);
  }, 80_000);

  it('idempotent producer with every codec over two brokers; a group consumer (coordinator node) commits and a second member resumes', async () => {
    const lines = await inCluster('produce-consume');
    expect(lines).toEqual([
      ...['none', 'gzip', 'snappy', 'lz4', 'zstd'].map((codec) => `OK ${codec} 300 partitions=3 resumed=0`),
      'OK transactional.id unsupported: initTransactions threw TimeoutException',
      'DONE',
    ]);
  }, 80_000);

  it('static membership: a restarted instance resumes after its OffsetCommit v7', async () => {
    const lines = await inCluster('static-member');
    expect(lines).toEqual(['OK static-member 20+10 members=1 instance=instance-1', 'DONE']);
  }, 80_000);

  it('two members split the partitions and the survivor takes all after LeaveGroup', async () => {
    const lines = await inCluster('rebalance');
    expect(lines).toEqual(['OK rebalance split=2+2 records=40 after-leave=4', 'DONE']);
  }, 80_000);

  it('ListOffsets, seek and committed offsets with the partition on one broker and the group on the coordinator node', async () => {
    const lines = await inCluster('offsets');
    expect(lines).toEqual(['OK offsets begin=0 end=10 time=5@5000 after-last=null seek7=3 committed=8/meta admin-latest=10', 'OK nulls', 'DONE']);
  }, 80_000);

  it('Admin on groups and records: the group is described by coordinator node 3, log dirs come from the leader of the partition', async () => {
    const lines = await inCluster('groups-admin');
    expect(lines).toEqual([
      `OK describeConsumerGroups members=1 assignor=range partitions=2 simple=false coordinator=${cluster.coordinators[0]!.nodeId}`,
      'OK alterConsumerGroupOffsets p0=3 p1=10',
      'OK deleteConsumerGroupOffsets left=[0]',
      'OK deleteRecords earliest=5',
      'OK describeLogDirs dirs=1 java-ga-1 has bytes',
      'OK deleteConsumerGroups',
      'OK group.protocol=consumer refused with UnsupportedVersionException',
      'DONE',
    ]);
  }, 80_000);

  // The coordinator node is in the Metadata broker list, and the Java client sends some requests
  // to whichever listed node it picks (NetworkClient.leastLoadedNode): an idempotent producer's
  // InitProducerId, a topic's DescribeConfigs. Every node must serve them.
  it('every listed node serves what clients send to any node, the coordinator node too', async () => {
    const lines = await inCluster('any-node');
    expect(lines).toEqual(['OK idempotent producer via each of 3 nodes', 'OK describeConfigs fresh-admins=12', 'DONE']);
  }, 80_000);
});
