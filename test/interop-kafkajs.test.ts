// kafkajs 2.2.4 against a real `runnel start` process: admin, plain and idempotent producers,
// a consumer group, 1 MiB messages and 100,000 records read back exactly once and in order.
import { CompressionTypes, Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  broker = await startBroker({ set: ['message.max.bytes=4194304'] });
  kafka = new Kafka({ clientId: 'interop', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin?.disconnect();
  await broker?.cleanup();
});

/** Consumes `count` messages of `topic` with a fresh group and returns them in arrival order. */
async function consumeAll(topic: string, count: number, groupId = `g-${topic}`) {
  const consumer = kafka.consumer({ groupId, maxBytesPerPartition: 8 * 1024 * 1024, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen: { partition: number; offset: bigint; key: string | null; value: Buffer; headers: Record<string, string> }[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${seen.length} of ${count}`)), 60_000);
    consumer.run({
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        for (const m of batch.messages) {
          seen.push({
            partition: batch.partition,
            offset: BigInt(m.offset),
            key: m.key?.toString() ?? null,
            value: m.value!,
            headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)])),
          });
          resolveOffset(m.offset);
        }
        await heartbeat();
        if (seen.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  return seen;
}

describe('kafkajs against runnel', () => {
  it('admin creates, lists, describes and deletes topics', async () => {
    expect(await admin.createTopics({ topics: [{ topic: 'adm', numPartitions: 3 }] })).toBe(true);
    expect(await admin.createTopics({ topics: [{ topic: 'adm', numPartitions: 3 }] })).toBe(false);
    expect(await admin.listTopics()).toEqual(expect.arrayContaining(['adm', '__consumer_offsets']));
    const md = await admin.fetchTopicMetadata({ topics: ['adm'] });
    expect(md.topics[0]!.partitions.map((p) => [p.partitionId, p.leader, p.replicas, p.isr]).sort()).toEqual([[0, 1, [1], [1]], [1, 1, [1], [1]], [2, 1, [1], [1]]]);
    await admin.deleteTopics({ topics: ['adm'] });
    expect(await admin.listTopics()).not.toContain('adm');
  });

  it('produces (none and gzip) and a consumer group reads keys, values and headers back', async () => {
    await admin.createTopics({ topics: [{ topic: 'kjs', numPartitions: 2 }] });
    const producer = kafka.producer();
    await producer.connect();
    const sent = Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, headers: { n: String(i) } }));
    await producer.send({ topic: 'kjs', messages: sent.slice(0, 150) });
    await producer.send({ topic: 'kjs', messages: sent.slice(150), compression: CompressionTypes.GZIP });
    await producer.disconnect();
    const got = await consumeAll('kjs', 300);
    expect(got.map((m) => `${m.key}=${m.value}:${m.headers.n}`).sort()).toEqual(sent.map((m) => `${m.key}=${m.value}:${m.headers.n}`).sort());
    const offsets = await admin.fetchOffsets({ groupId: 'g-kjs', topics: ['kjs'] });
    const committed = offsets[0]!.partitions.reduce((n, p) => n + Number(p.offset), 0);
    expect(committed).toBe(300);
  });

  it('an idempotent producer writes each record once', async () => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < 20; i++) await producer.send({ topic: 'idem', messages: [{ key: 'k', value: String(i) }] });
    await producer.disconnect();
    const got = await consumeAll('idem', 20);
    expect(got.map((m) => m.value.toString())).toEqual([...Array(20).keys()].map(String));
    expect(got.map((m) => m.offset)).toEqual([...Array(20).keys()].map(BigInt));
  });

  it('round-trips 1 MiB messages', async () => {
    const producer = kafka.producer();
    await producer.connect();
    const values = [0, 1, 2].map((i) => Buffer.alloc(1024 * 1024, 97 + i));
    for (const value of values) await producer.send({ topic: 'big-kjs', messages: [{ value }] });
    await producer.disconnect();
    const got = await consumeAll('big-kjs', 3);
    expect(got.map((m) => m.value.equals(values[Number(m.offset)]!))).toEqual([true, true, true]);
  });

  it('reads back 100,000 records exactly once and in order within each partition', async () => {
    const topic = 'many-kjs';
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] });
    const producer = kafka.producer();
    await producer.connect();
    const count = 100_000;
    for (let start = 0; start < count; start += 5_000) {
      await producer.send({ topic, messages: Array.from({ length: 5_000 }, (_, j) => ({ key: `k${(start + j) % 101}`, value: String(start + j) })) });
    }
    await producer.disconnect();
    const got = await consumeAll(topic, count);
    expect(got.length).toBe(count);
    expect(new Set(got.map((m) => m.value.toString())).size).toBe(count);
    const lastByKey = new Map<string, number>();
    const lastOffset = new Map<number, bigint>();
    for (const m of got) {
      const seq = Number(m.value.toString());
      expect(seq).toBeGreaterThan(lastByKey.get(m.key!) ?? -1);
      lastByKey.set(m.key!, seq);
      expect(m.offset).toBe((lastOffset.get(m.partition) ?? -1n) + 1n);
      lastOffset.set(m.partition, m.offset);
    }
  });
});
