// kcat (librdkafka 2.0.2, Debian's kcat 1.7.1) against a real `runnel start` process: metadata,
// every codec with keys and headers, the offset selectors, 1 MiB messages and 100,000 records.
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { runKcat } from './helpers/kcat.ts';

let broker: TestBroker;
const kcat = async (args: string[], input?: string | Buffer, timeoutMs = 30_000) => {
  const r = await runKcat(['-b', broker.bootstrap, ...args], { input, timeoutMs });
  if (r.code !== 0 || r.timedOut) throw new Error(`kcat ${args.join(' ')} failed (${r.code}${r.timedOut ? ', timed out' : ''}):\n${r.stderr}`);
  return r.stdout;
};
/** Consume a whole topic (or one partition) and return one parsed line per record. */
const consume = async (topic: string, extra: string[] = []) => {
  const out = await kcat(['-C', '-t', topic, '-e', '-q', '-f', '%p|%o|%k|%s|%h\\n', ...extra]);
  return out.split('\n').filter(Boolean).map((line) => {
    const [partition, offset, key, value, headers] = line.split('|');
    return { partition: Number(partition), offset: Number(offset), key, value, headers };
  });
};

beforeAll(async () => {
  broker = await startBroker({ set: ['message.max.bytes=4194304', 'num.partitions=1'] });
});
afterAll(async () => {
  await broker?.cleanup();
});

describe('kcat against runnel', () => {
  it('-L lists this broker as controller and the topics with their partitions', async () => {
    await kcat(['-P', '-t', 'listed'], 'x\n');
    const out = await kcat(['-L']);
    expect(out).toMatch(/^Metadata for all topics \(from broker 1: 127\.0\.0\.1:\d+\/1\):/);
    expect(out).toContain(` 1 brokers:\n  broker 1 at 127.0.0.1:${broker.port} (controller)`);
    expect(out).toMatch(/topic "listed" with 1 partitions:\n\s+partition 0, leader 1, replicas: 1, isrs: 1/);
    expect(out).toMatch(/topic "__consumer_offsets" with 50 partitions/);
  });

  for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
    it(`produces with -z ${codec} and reads back keys, values and headers`, async () => {
      const topic = `codec-${codec}`;
      const lines = Array.from({ length: 200 }, (_, i) => `key-${i}:value ${i} ${'abc'.repeat(i % 20)}`);
      await kcat(['-P', '-t', topic, '-z', codec, '-K:', '-H', 'source=kcat', '-H', `codec=${codec}`, '-X', 'linger.ms=20'], lines.join('\n') + '\n');
      const records = await consume(topic);
      expect(records.map((r) => `${r.key}:${r.value}`)).toEqual(lines);
      expect(records.map((r) => r.offset)).toEqual(lines.map((_, i) => i));
      expect(new Set(records.map((r) => r.headers))).toEqual(new Set([`source=kcat,codec=${codec}`]));
    });
  }

  it('-o beginning|end|N|-N|s@ts select the records Kafka would', async () => {
    const topic = 'offsets';
    await kcat(['-P', '-t', topic, '-K:'], Array.from({ length: 10 }, (_, i) => `k${i}:first-${i}`).join('\n') + '\n');
    await new Promise((r) => setTimeout(r, 50));
    const boundary = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    await kcat(['-P', '-t', topic, '-K:'], Array.from({ length: 5 }, (_, i) => `k${i}:second-${i}`).join('\n') + '\n');

    expect((await consume(topic, ['-o', 'beginning'])).map((r) => r.offset)).toEqual([...Array(15).keys()]);
    expect(await consume(topic, ['-o', 'end'])).toEqual([]);
    expect((await consume(topic, ['-o', '12'])).map((r) => r.offset)).toEqual([12, 13, 14]);
    expect((await consume(topic, ['-p', '0', '-o', '-4'])).map((r) => r.offset)).toEqual([11, 12, 13, 14]);
    expect((await consume(topic, ['-o', `s@${boundary}`])).map((r) => r.value)).toEqual([0, 1, 2, 3, 4].map((i) => `second-${i}`));
  });

  it('round-trips 1 MiB messages', async () => {
    const big = (i: number) => String.fromCharCode(97 + i).repeat(1024 * 1024);
    const input = [0, 1, 2].map(big).join('\n') + '\n';
    await kcat(['-P', '-t', 'big', '-X', 'message.max.bytes=4000000'], input, 60_000);
    const out = await kcat(['-C', '-t', 'big', '-e', '-q', '-f', '%S %o\\n', '-X', 'fetch.message.max.bytes=4000000'], undefined, 60_000);
    expect(out.trim().split('\n')).toEqual(['1048576 0', '1048576 1', '1048576 2']);
    const values = await kcat(['-C', '-t', 'big', '-e', '-q', '-o', '1', '-c', '1', '-f', '%s']);
    expect(values).toBe(big(1));
  });

  it('reads back 100,000 records exactly once and in order within each partition', async () => {
    const topic = 'many';
    const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] });
    await admin.disconnect();
    const count = 100_000;
    // Keys spread records over the partitions librdkafka picks (consistent_random = CRC32 of the key).
    const input = Array.from({ length: count }, (_, i) => `k${i % 97}:${i}`).join('\n') + '\n';
    await kcat(['-P', '-t', topic, '-K:', '-z', 'lz4', '-X', 'linger.ms=5'], input, 60_000);
    const records = await consume(topic);
    expect(records.length).toBe(count);
    expect(new Set(records.map((r) => r.partition))).toEqual(new Set([0, 1, 2, 3]));
    expect(new Set(records.map((r) => r.value)).size).toBe(count);
    // Within a partition, the sequence numbers of each key rise with the offsets.
    const lastByKey = new Map<string, number>();
    const offsets = new Map<number, number>();
    for (const r of records) {
      const seq = Number(r.value);
      expect(seq).toBeGreaterThan(lastByKey.get(r.key) ?? -1);
      lastByKey.set(r.key, seq);
      expect(r.offset).toBe((offsets.get(r.partition) ?? -1) + 1);
      offsets.set(r.partition, r.offset);
    }
  });
});
