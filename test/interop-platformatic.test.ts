// @platformatic/kafka 2.x against a real `runnel start` process: admin, producer, a consumer
// group, 1 MiB messages and 100,000 records read back exactly once and in order.
import { Admin, Consumer, MessagesStreamModes, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';

let broker: TestBroker;
let admin: Admin;

beforeAll(async () => {
  broker = await startBroker({ set: ['message.max.bytes=4194304'] });
  admin = new Admin({ clientId: 'plt-admin', bootstrapBrokers: [broker.bootstrap] });
});
afterAll(async () => {
  await admin?.close();
  await broker?.cleanup();
});

/** Consumes `count` messages of `topic` with a fresh group, in arrival order. */
async function consumeAll(topic: string, count: number) {
  const consumer = new Consumer({
    groupId: `plt-${topic}`, clientId: 'plt-consumer', bootstrapBrokers: [broker.bootstrap],
    deserializers: stringDeserializers, maxWaitTime: 100, maxBytes: 16 * 1024 * 1024,
  });
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: 100 });
  const seen: { partition: number; offset: bigint; key: string; value: string; headers: Map<string, string> }[] = [];
  const deadline = setTimeout(() => stream.destroy(new Error(`consumed ${seen.length} of ${count}`)), 60_000);
  try {
    for await (const m of stream) {
      seen.push({ partition: m.partition, offset: m.offset, key: m.key, value: m.value, headers: m.headers as Map<string, string> });
      if (seen.length >= count) break;
    }
  } finally {
    clearTimeout(deadline);
    await stream.close();
    await consumer.close();
  }
  return seen;
}

describe('@platformatic/kafka against runnel', () => {
  it('admin creates, describes and deletes topics', async () => {
    await admin.createTopics({ topics: ['plt-adm'], partitions: 3, replicas: 1 });
    const md = await admin.metadata({ topics: ['plt-adm'] });
    expect(md.topics.get('plt-adm')!.partitionsCount).toBe(3);
    expect(await admin.listTopics()).toContain('plt-adm');
    await admin.deleteTopics({ topics: ['plt-adm'] });
    expect(await admin.listTopics()).not.toContain('plt-adm');
  });

  it('produces and a consumer group reads keys, values and headers back', async () => {
    await admin.createTopics({ topics: ['plt'], partitions: 2, replicas: 1 });
    const producer = new Producer({ clientId: 'plt-producer', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers });
    const sent = Array.from({ length: 200 }, (_, i) => ({ topic: 'plt', key: `k${i}`, value: `v${i}`, headers: { n: String(i) } }));
    await producer.send({ messages: sent });
    await producer.close();
    const got = await consumeAll('plt', 200);
    expect(got.map((m) => `${m.key}=${m.value}:${m.headers.get('n')}`).sort()).toEqual(sent.map((m) => `${m.key}=${m.value}:${m.headers.n}`).sort());
  });

  it('round-trips 1 MiB messages (creating the topic on demand, as the client asks)', async () => {
    // platformatic sends allow_auto_topic_creation=false unless told otherwise.
    const producer = new Producer({ clientId: 'plt-producer', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers, autocreateTopics: true });
    const values = [0, 1, 2].map((i) => String.fromCharCode(97 + i).repeat(1024 * 1024));
    for (const value of values) await producer.send({ messages: [{ topic: 'plt-big', value }] });
    await producer.close();
    const got = await consumeAll('plt-big', 3);
    expect(got.map((m) => m.value === values[Number(m.offset)])).toEqual([true, true, true]);
  });

  it('reads back 100,000 records exactly once and in order within each partition', async () => {
    const topic = 'plt-many';
    await admin.createTopics({ topics: [topic], partitions: 4, replicas: 1 });
    const producer = new Producer({ clientId: 'plt-producer', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers });
    const count = 100_000;
    for (let start = 0; start < count; start += 5_000) {
      await producer.send({ messages: Array.from({ length: 5_000 }, (_, j) => ({ topic, key: `k${(start + j) % 101}`, value: String(start + j) })) });
    }
    await producer.close();
    const got = await consumeAll(topic, count);
    expect(got.length).toBe(count);
    expect(new Set(got.map((m) => m.value)).size).toBe(count);
    const lastByKey = new Map<string, number>();
    const lastOffset = new Map<number, bigint>();
    for (const m of got) {
      expect(Number(m.value)).toBeGreaterThan(lastByKey.get(m.key) ?? -1);
      lastByKey.set(m.key, Number(m.value));
      expect(m.offset).toBe((lastOffset.get(m.partition) ?? -1n) + 1n);
      lastOffset.set(m.partition, m.offset);
    }
  });
});
