/**
 * File descriptors are a process limit, not a disk failure (issue 17 item 4):
 * - a broker allowed 512 open files (`prlimit --nofile=512:512`) serves 2,000 partitions: it
 *   creates them, kafkajs produces to and consumes from every one, it restarts on them, and it
 *   never holds more descriptors than it may (idle segments are closed: runnel.log.max.open.files);
 * (EMFILE itself, a partition that cannot be made: packages/storage/test/open-files.test.ts.)
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, decodeResponse, encodeRequest, type RequestInputs, type SupportedApiKey, type DecodedResponses } from '@runnel/protocol';
import { startProcess, type Started } from './helpers/process.ts';
import { RawKafka } from './helpers/raw-kafka.ts';

const runnel = join(import.meta.dirname, '../packages/cli/bin/runnel.ts');

interface Limited {
  proc: Started;
  port: number;
  pid: number;
}

/** `runnel start` on `logDir` with at most `nofile` open files (prlimit execs it: same pid). */
async function startLimited(logDir: string, nofile: number, set: string[] = []): Promise<Limited> {
  const args = [`--nofile=${nofile}:${nofile}`, process.execPath, runnel, 'start', '--set', 'listeners=PLAINTEXT://127.0.0.1:0', '--set', `log.dirs=${logDir}`,
    '--set', 'group.initial.rebalance.delay.ms=0', '--set', 'offsets.topic.num.partitions=5', ...set.flatMap((s) => ['--set', s])];
  const proc = await startProcess('prlimit', args);
  const m = await proc.waitFor(/"listener":"PLAINTEXT:\/\/127\.0\.0\.1:(\d+)".*runnel is ready/, 60_000);
  return { proc, port: Number(m[1]), pid: proc.child.pid! };
}

async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** Requests on one connection (a new connection needs a descriptor the broker may not have). */
async function onConnection(port: number) {
  const conn = await RawKafka.open(port);
  let correlationId = 0;
  return {
    conn,
    async request<K extends SupportedApiKey>(apiKey: K, apiVersion: number, body: RequestInputs[K]): Promise<DecodedResponses[K]> {
      const n = conn.frames.length;
      conn.send(encodeRequest({ apiKey, apiVersion, correlationId: ++correlationId, clientId: 'runnel-test' } as never, body as never));
      const frames = await conn.waitFrames(n + 1, 60_000);
      return decodeResponse(apiKey, apiVersion, frames[n]!).body;
    },
  };
}

const newTopic = (name: string, numPartitions: number) => ({ name, numPartitions, replicationFactor: 1, assignments: [], configs: [] });

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups = [];
});

describe('open files', () => {
  it('a broker allowed 512 open files creates, serves and reloads 2,000 partitions', async () => {
    const LIMIT = 512;
    const logDir = await mkdtemp(join(tmpdir(), 'runnel-fds-'));
    cleanups.push(() => rm(logDir, { recursive: true, force: true }));
    let b = await startLimited(logDir, LIMIT);
    cleanups.push(async () => void (await b.proc.stop()));
    let peak = await openFds(b.pid);
    const sample = setInterval(() => void openFds(b.pid).then((n) => { peak = Math.max(peak, n); }, () => {}), 100);
    cleanups.push(async () => clearInterval(sample));

    const c = await onConnection(b.port);
    const topics = ['fds-a', 'fds-b', 'fds-c', 'fds-d'];
    for (const name of topics) {
      const r = await c.request(ApiKey.CreateTopics, 4, { topics: [newTopic(name, 500)], timeoutMs: 60_000, validateOnly: false });
      expect(r.topics[0]!.errorMessage ?? '').toBe('');
      expect(r.topics[0]!.errorCode).toBe(ErrorCode.NONE);
    }
    c.conn.close();

    const kafkaAt = (port: number) => new Kafka({ brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, clientId: 'fds' });
    const producer = kafkaAt(b.port).producer();
    await producer.connect();
    await producer.sendBatch({
      topicMessages: topics.map((topic) => ({ topic, messages: Array.from({ length: 500 }, (_, p) => ({ partition: p, value: `${topic}/${p}` })) })),
    });
    await producer.disconnect();

    const consumeAll = async (groupId: string) => {
      const consumer = kafkaAt(b.port).consumer({ groupId, maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: true });
      const seen = new Set<string>();
      let wrong = 0;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${seen.size} of 2000 partitions consumed`)), 90_000);
        void consumer.run({
          eachMessage: async ({ topic, partition, message }) => {
            if (message.value?.toString() !== `${topic}/${partition}`) wrong++;
            seen.add(`${topic}/${partition}`);
            if (seen.size === 2000) {
              clearTimeout(timer);
              resolve();
            }
          },
        }).catch(reject);
      });
      await consumer.disconnect();
      expect(wrong).toBe(0);
      expect(seen.size).toBe(2000);
    };
    await consumeAll('fds-1');
    expect(peak).toBeLessThan(LIMIT);

    // Restart on the same 2,000 partitions (a clean stop, then every segment is opened on load).
    // (A clean stop of 2,000 partitions fsyncs each one's files: more than the default 5 s grace.)
    expect(await b.proc.stop(120_000)).toBe(0);
    b = await startLimited(logDir, LIMIT);
    await consumeAll('fds-2');
    expect(peak).toBeLessThan(LIMIT);
    expect(b.proc.output()).not.toMatch(/log dir is offline|too many open files/i);
  }, 240_000);

  it('a broker out of descriptors because of a connection flood keeps running, and its worker pool serves again once they close', async () => {
    const logDir = await mkdtemp(join(tmpdir(), 'runnel-fds-'));
    cleanups.push(() => rm(logDir, { recursive: true, force: true }));
    const b = await startLimited(logDir, 160);
    cleanups.push(async () => void (await b.proc.stop()));
    let exited: number | string | null = null;
    void b.proc.exited().then((code) => { exited = code; });

    // 300 idle connections, at once after start, on a process allowed 160 descriptors: the offload
    // pool's worker threads may still be loading their modules, which then fails with EMFILE.
    const flood: Socket[] = [];
    for (let i = 0; i < 300; i++) flood.push(connect(b.port, '127.0.0.1').on('error', () => {}));
    await new Promise((r) => setTimeout(r, 2_000));
    for (const s of flood) s.destroy();
    await new Promise((r) => setTimeout(r, 500));
    expect(exited).toBe(null);

    // A gzip batch over 64 KiB is validated in the offload pool: the pool must serve it.
    const kafka = new Kafka({ brokers: [`127.0.0.1:${b.port}`], logLevel: logLevel.NOTHING, clientId: 'flood' });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'flood', numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const values = Array.from({ length: 200 }, (_, i) => `${i}:`.padEnd(1_000, String(i % 10)));
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'flood', compression: CompressionTypes.GZIP, messages: values.map((value) => ({ value })) });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: 'flood', maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'flood', fromBeginning: true });
    const seen: string[] = [];
    await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value!.toString()); } });
    const deadline = Date.now() + 60_000;
    while (seen.length < values.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await consumer.disconnect();
    expect(seen).toEqual(values);
    expect(exited).toBe(null);
  }, 120_000);
});
