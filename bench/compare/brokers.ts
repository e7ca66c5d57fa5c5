/**
 * The two systems under test behind one shape, started with equivalent settings: one node,
 * PLAINTEXT on 127.0.0.1, the same segment size, no fsync (both default to leaving it to the OS),
 * topics created explicitly with the row's partition count. Admin calls (readiness, topics, the
 * cold-start produce) go through @runnel/client for both, so neither side pays a JVM start there.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { KafkaClient, Producer } from '@runnel/client';
import { formatKafka, spawnKafka, type KafkaArtifacts } from './kafka.ts';
import { spawnGroup, tail, type Proc } from './proc.ts';

export type SystemName = 'Kafka' | 'Runnel';

export interface RunningBroker {
  readonly system: SystemName;
  readonly bootstrap: string;
  readonly pid: number;
  readonly proc: Proc;
  stop(): Promise<void>;
}

export interface BrokerSettings {
  dataDir: string;
  segmentBytes: number;
  kafkaHeap: string;
  /** Extra environment for the Runnel broker (the soak's `--profile` sets NODE_OPTIONS=--inspect). */
  env?: Record<string, string | undefined>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = a && typeof a === 'object' ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Spawns a broker; resolves as soon as the process is running (not yet serving). */
export async function spawnBroker(system: SystemName, s: BrokerSettings, art: KafkaArtifacts | null, root: string): Promise<RunningBroker> {
  const port = await freePort();
  mkdirSync(s.dataDir, { recursive: true });
  if (system === 'Kafka') {
    if (!art) throw new Error('Kafka needs Java and Maven');
    const settings = { port, controllerPort: await freePort(), dataDir: s.dataDir, segmentBytes: s.segmentBytes, heap: s.kafkaHeap };
    const config = await formatKafka(art, settings);
    const k = spawnKafka(art, settings, config);
    return { system, bootstrap: k.bootstrap, pid: k.pid, proc: k.proc, stop: () => k.stop() };
  }
  const proc = spawnGroup(process.execPath, [
    join(root, 'packages/cli/bin/runnel.ts'), 'start',
    '--set', `listeners=PLAINTEXT://127.0.0.1:${port}`,
    '--set', `log.dirs=${join(s.dataDir, 'logs')}`,
    '--set', 'num.partitions=1',
    '--set', `log.segment.bytes=${s.segmentBytes}`,
    '--set', 'group.initial.rebalance.delay.ms=0',
  ], { cwd: root, env: { RUNNEL_LOG_LEVEL: 'info', ...s.env } });
  return { system, bootstrap: `127.0.0.1:${port}`, pid: proc.pid, proc, stop: async () => { await proc.stop(15_000); } };
}

/** Connects, retrying until the broker answers Metadata with itself in it. */
export async function connectWhenReady(b: RunningBroker, timeoutMs = 60_000): Promise<KafkaClient> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (b.proc.child.exitCode !== null || b.proc.child.signalCode !== null) throw new Error(`${b.system} exited during start: ${tail(b.proc.output())}`);
    try {
      const c = await KafkaClient.connect({ bootstrapServers: b.bootstrap, clientId: 'runnel-bench', connectTimeoutMs: 1_000, requestTimeoutMs: 10_000 });
      try {
        const md = await c.metadata([]);
        if (md.brokers.length > 0) return c;
      } catch (err) { last = err; }
      await c.close();
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) throw new Error(`${b.system} not ready within ${timeoutMs} ms (${(last as Error)?.message}): ${tail(b.proc.output())}`);
    await sleep(20);
  }
}

/** Creates a topic and waits until every partition has a leader. */
export async function createTopic(client: KafkaClient, name: string, partitions: number): Promise<void> {
  await client.createTopics([{ name, partitions, replicationFactor: 1 }], { ignoreExisting: true });
  const deadline = performance.now() + 30_000;
  for (;;) {
    const md = await client.metadata([name]);
    const t = md.topics.find((x) => x.name === name);
    if (t && t.errorCode === 0 && t.partitions.length === partitions && t.partitions.every((p) => p.leaderId >= 0 && p.errorCode === 0)) return;
    if (performance.now() > deadline) throw new Error(`topic ${name} has no leaders after 30 s`);
    await sleep(50);
  }
}

export async function deleteTopic(client: KafkaClient, name: string): Promise<void> {
  await client.deleteTopics([name], { ignoreMissing: true });
}

/**
 * Cold start: spawn the broker on an empty (for Kafka: freshly formatted) log dir, then connect,
 * create a topic and produce one record with acks=1 as fast as it allows. Returns milliseconds
 * from the spawn to the acknowledgement (Kafka's storage format runs before the clock starts).
 */
export async function coldStart(system: SystemName, s: BrokerSettings, art: KafkaArtifacts | null, root: string): Promise<number> {
  const b = await spawnBroker(system, s, art, root);
  try {
    const client = await connectWhenReady(b);
    try {
      for (;;) {
        try {
          await createTopic(client, 'cold-start', 1);
          const producer = new Producer(client, { acks: 1 });
          await producer.send('cold-start', 0, [{ value: Buffer.from('first') }]);
          return performance.now() - b.proc.startedAt;
        } catch (err) {
          if (performance.now() - b.proc.startedAt > 60_000) throw err;
          await sleep(20);
        }
      }
    } finally {
      await client.close();
    }
  } finally {
    await b.stop();
  }
}
