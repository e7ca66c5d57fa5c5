// The Apache Kafka Java client (kafka-clients 4.3.1 from Maven Central), run twice: against a real
// `runnel start` process, and against a cluster (a controller, two brokers and a coordinator node,
// each its own process; partitions, RF 1, spread over both brokers; the group coordinator found
// through FindCoordinator and listed in Metadata). test/java/RunnelInterop.java does the client
// work and the checks, and prints one `OK ...` or `FAIL <step>: ...` line per step; this file
// asserts those lines. The jars
// and the compiled class live in .cache/java-clients/<version> (git-ignored, fetched once by
// test/java/fetch-clients.sh). Without java, javac or mvn the file fails and says what to install.
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker } from './helpers/broker.ts';
import { startCluster } from './helpers/cluster.ts';

const version = process.env.RUNNEL_JAVA_CLIENT_VERSION ?? '4.3.1';
const fetchScript = join(import.meta.dirname, 'java/fetch-clients.sh');
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
async function scenario(name: string, bootstrap: string): Promise<string[]> {
  // C1 only and the serial collector: a short-lived client JVM then starts on about half the CPU.
  const r = await run('java', ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Drunnel.timeout.ms=60000', '-cp', classpath, 'RunnelInterop', bootstrap, name], 75_000);
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
}, 620_000);

/** Where the scenarios run, and the lines that differ between a single node and a cluster. */
interface Target {
  bootstrap: string;
  /** Nodes in Metadata: brokers and coordinator nodes. */
  nodes: number;
  /** The Kafka listener port of the node clients are told is the controller (the lowest broker). */
  controllerPort: number;
  /** The node that coordinates the groups. */
  coordinator: number;
  cleanup(): Promise<void>;
}

const targets: Record<string, () => Promise<Target>> = {
  'runnel start': async () => {
    const broker = await startBroker();
    return { bootstrap: broker.bootstrap, nodes: 1, controllerPort: broker.port, coordinator: 1, cleanup: () => broker.cleanup() };
  },
  // The Runnel controller has no Kafka listener, so clients are told the lowest live broker.
  'a runnel cluster (2 brokers, 1 coordinator node)': async () => {
    const cluster = await startCluster({ brokers: 2, coordinators: 1 });
    return { bootstrap: cluster.bootstrap, nodes: 3, controllerPort: cluster.brokers[0]!.port, coordinator: cluster.coordinators[0]!.nodeId, cleanup: () => cluster.cleanup() };
  },
};

describe.each(Object.keys(targets))(`Java kafka-clients ${version} against %s`, (targetName) => {
  let target: Target;
  const scenarioHere = (name: string) => scenario(name, target.bootstrap);

  beforeAll(async () => {
    target = await targets[targetName]!();
  }, 60_000);

  afterAll(async () => {
    await target?.cleanup();
  });

  it('Admin: createTopics with configs, listTopics, describeTopics, describeConfigs, createPartitions, deleteTopics, describeCluster', async () => {
    const lines = await scenarioHere('admin');
    expect(lines).toEqual([
      'OK createTopics java-admin',
      'OK listTopics contains java-admin',
      'OK describeTopics java-admin partitions=3 internal=false',
      'OK describeConfigs retention.ms=3600000 cleanup.policy=delete',
      'OK createPartitions java-admin partitions=5',
      'OK deleteTopics java-admin',
      `OK describeCluster nodes=${target.nodes} controller=1 port=${target.controllerPort}`,
      'DONE',
    ]);
  }, 80_000);

  it('default (idempotent, acks=all) producer with every codec; a group consumer reads keys, values, headers in order, commits, and a second member resumes after the commit', async () => {
    const lines = await scenarioHere('produce-consume');
    expect(lines).toEqual([
      ...['none', 'gzip', 'snappy', 'lz4', 'zstd'].map((codec) => `OK ${codec} 300 partitions=3 resumed=0`),
      // Transactions: abort, commit with sendOffsetsToTransaction, read_committed, zombie fencing (docs/transactions.md).
      'OK transactional: 5 aborted hidden, 5 committed read in order with read_committed, offsets committed, zombie fenced',
      'DONE',
    ]);
  }, 80_000);

  it('static membership (group.instance.id): commits with OffsetCommit v7 and a restarted instance resumes after them', async () => {
    const lines = await scenarioHere('static-member');
    expect(lines).toEqual(['OK static-member 20+10 members=1 instance=instance-1', 'DONE']);
  }, 80_000);

  it('two members split the partitions (range), read every record between them, and the survivor takes all after LeaveGroup', async () => {
    const lines = await scenarioHere('rebalance');
    expect(lines).toEqual(['OK rebalance split=2+2 records=40 after-leave=4', 'DONE']);
  }, 80_000);

  it('ListOffsets earliest/latest/by timestamp, seek, commit with metadata, Admin listOffsets; null keys, values and header values', async () => {
    const lines = await scenarioHere('offsets');
    expect(lines).toEqual(['OK offsets begin=0 end=10 time=5@5000 after-last=null seek7=3 committed=8/meta admin-latest=10', 'OK nulls', 'DONE']);
  }, 80_000);

  it('Admin on groups and records (kafka-consumer-groups.sh / kafka-delete-records.sh calls); group.protocol=consumer gets an assignment', async () => {
    const lines = await scenarioHere('groups-admin');
    expect(lines).toEqual([
      `OK describeConsumerGroups members=1 assignor=range partitions=2 simple=false coordinator=${target.coordinator}`,
      'OK alterConsumerGroupOffsets p0=3 p1=10',
      'OK deleteConsumerGroupOffsets left=[0]',
      'OK deleteRecords earliest=5',
      'OK describeLogDirs dirs=1 java-ga-1 has bytes',
      'OK deleteConsumerGroups',
      // KIP-848 (ConsumerGroupHeartbeat): server-side assignment, through the coordinator node in a cluster.
      'OK group.protocol=consumer assigned partitions=2',
      'DONE',
    ]);
  }, 80_000);

  // The Java client sends some requests to whichever listed node it picks (leastLoadedNode): an
  // idempotent producer's InitProducerId, a topic's DescribeConfigs. Every node, the coordinator
  // node too, must serve them.
  it('every listed node serves what clients send to any node: an idempotent producer bootstrapped from it, a fresh Admin\'s describeConfigs', async () => {
    const lines = await scenarioHere('any-node');
    expect(lines).toEqual([`OK idempotent producer via each of ${target.nodes} nodes`, 'OK describeConfigs fresh-admins=12', 'DONE']);
  }, 80_000);
});
