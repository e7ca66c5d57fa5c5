// OffsetForLeaderEpoch (key 23) across a leader change, on a cluster (a controller, two brokers,
// a coordinator node; each its own process): the Java consumer 4.3.1 (test/java/RunnelEpochConsumer.java,
// auto.offset.reset=none) reads a partition, its leader shuts down, and it goes on reading from the
// new leader with no reset and no record twice, after validating its position there (KIP-320: the
// new leader counts OffsetForLeaderEpoch v4 requests; the client sends none to a broker that does
// not advertise v3+, so this fails without the API). Then request by request against the new
// leader: an older epoch ends where the next starts, the current one at the log end,
// currentLeaderEpoch below the leader's is FENCED_LEADER_EPOCH; a node that does not lead answers
// NOT_LEADER_OR_FOLLOWER.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type ClusterNode, type TestCluster } from './helpers/cluster.ts';
import { startProcess } from './helpers/process.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

const version = process.env.RUNNEL_JAVA_CLIENT_VERSION ?? '4.3.1';
const TOPIC = 'epochs';
let cluster: TestCluster;
let classpath: string;
let classes: string;

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

async function compile(): Promise<void> {
  const missing = ['java', 'javac', 'mvn'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) throw new Error(`this test needs ${missing.join(', ')}: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)`);
  const fetched = await run(join(import.meta.dirname, 'java/fetch-clients.sh'), [version], 600_000);
  if (fetched.code !== 0) throw new Error(`fetch-clients.sh ${version} failed (${fetched.code}):\n${fetched.stderr}`);
  classpath = fetched.stdout.trim().split('\n').at(-1)!;
  classes = await mkdtemp(join(tmpdir(), 'runnel-epoch-consumer-'));
  const javac = await run('javac', ['-nowarn', '-d', classes, '-cp', classpath, join(import.meta.dirname, 'java/RunnelEpochConsumer.java')], 120_000);
  if (javac.code !== 0) throw new Error(`javac RunnelEpochConsumer.java failed:\n${javac.stderr}`);
}

beforeAll(async () => {
  [cluster] = await Promise.all([
    startCluster({ brokers: 2, coordinators: 1, nodeSet: (role) => (role === 'broker' ? ['runnel.metrics.listener=127.0.0.1:0'] : []) }),
    compile(),
  ]);
}, 720_000);
afterAll(async () => {
  await cluster?.cleanup();
  if (classes) await rm(classes, { recursive: true, force: true });
});

const kafka = () => new Kafka({ clientId: 'epochs', brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });

async function produce(values: string[]): Promise<void> {
  const producer = kafka().producer();
  await producer.connect();
  await producer.send({ topic: TOPIC, acks: -1, messages: values.map((value) => ({ value })) });
  await producer.disconnect();
}

/** The sum of a Prometheus counter's samples whose labels include `labels`. */
async function counter(node: ClusterNode, name: string, labels: Record<string, string>): Promise<number> {
  const url = (await node.process.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/))[1]!;
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let n = 0;
  for (const line of (await (await fetch(url)).text()).split('\n')) {
    if (line.startsWith(`${name}{`) && want.every((w) => line.includes(w))) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

const ask = (node: ClusterNode, partitions: { partition: number; currentLeaderEpoch: number; leaderEpoch: number }[]) =>
  kafkaRequest(node.port, ApiKey.OffsetForLeaderEpoch, 4, { replicaId: -1, topics: [{ topic: TOPIC, partitions }] } as never)
    .then((r) => r.topics[0]!.partitions);

describe('OffsetForLeaderEpoch across a leader change', () => {
  it('the Java consumer validates its position with the new leader and reads on without a reset; the new leader answers each epoch', async () => {
    const admin = kafka().admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, replicaAssignment: [{ partition: 0, replicas: [1, 2] }] }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    const first = Array.from({ length: 10 }, (_, i) => `a${i}`);
    await produce(first);
    const [oldLeader, newLeader] = cluster.brokers as [ClusterNode, ClusterNode];

    const consumer = await startProcess('java', ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', `${classes}:${classpath}`,
      'RunnelEpochConsumer', cluster.bootstrap, TOPIC, '15', '40000']);
    try {
      await consumer.waitFor(/READ 10\b/, 40_000);
      // A controlled shutdown moves the lead to broker 2 at epoch 1, starting at offset 10.
      await oldLeader.process.stop();
      const next = Array.from({ length: 5 }, (_, i) => `b${i}`);
      await until('records produced to the new leader', () => produce(next).then(() => true, () => false), 20_000);
      const done = await consumer.waitFor(/^(DONE|FAIL) (.*)$/m, 45_000);
      expect(done[1], consumer.output()).toBe('DONE');
      expect(done[2]!.split(',')).toEqual([...first.map((v, i) => `${i}:${v}@0`), ...next.map((v, i) => `${10 + i}:${v}@1`)]);
    } finally {
      await consumer.stop();
    }
    expect(await counter(newLeader, 'kafka_network_requestmetrics_requests_total', { request: 'OffsetForLeaderEpoch', version: '4' })).toBeGreaterThan(0);

    expect(await ask(newLeader, [
      { partition: 0, currentLeaderEpoch: 1, leaderEpoch: 0 },
      { partition: 0, currentLeaderEpoch: 1, leaderEpoch: 1 },
      { partition: 0, currentLeaderEpoch: -1, leaderEpoch: 2 },
      { partition: 0, currentLeaderEpoch: 0, leaderEpoch: 0 },
      { partition: 0, currentLeaderEpoch: 2, leaderEpoch: 0 },
    ])).toEqual([
      { partition: 0, errorCode: ErrorCode.NONE, leaderEpoch: 0, endOffset: 10n },
      { partition: 0, errorCode: ErrorCode.NONE, leaderEpoch: 1, endOffset: 15n },
      { partition: 0, errorCode: ErrorCode.NONE, leaderEpoch: -1, endOffset: -1n },
      { partition: 0, errorCode: ErrorCode.FENCED_LEADER_EPOCH, leaderEpoch: -1, endOffset: -1n },
      { partition: 0, errorCode: ErrorCode.UNKNOWN_LEADER_EPOCH, leaderEpoch: -1, endOffset: -1n },
    ]);
    // The coordinator node leads nothing.
    expect(await ask(cluster.coordinators[0]!, [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }])).toEqual([
      { partition: 0, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, leaderEpoch: -1, endOffset: -1n },
    ]);
  }, 120_000);
});
