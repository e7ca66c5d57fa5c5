/** KafkaClient, Producer and Consumer against a real `runnel start` process. */
import { Buffer } from 'node:buffer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, encodeRecordBatch } from '@runnel/protocol';
import { ClientError, Codec, Consumer, KafkaClient, Producer, restampBatch } from '../src/index.ts';
import { startBroker, type Broker } from './broker.ts';

let broker: Broker;
let client: KafkaClient;

beforeAll(async () => {
  broker = await startBroker();
  client = await KafkaClient.connect({ bootstrapServers: `nowhere.invalid:1,${broker.bootstrap}`, clientId: 'client-test' });
});
afterAll(async () => {
  await client?.close();
  await broker?.stop();
});

/** Reads every record from `offset` to the high watermark. */
async function readAll(topic: string, partition: number, offset: bigint | 'earliest' = 'earliest') {
  const c = new Consumer(client, { maxWaitMs: 50 });
  await c.assign([{ topic, partition, offset }]);
  const records = [];
  for (;;) {
    const [p] = await c.poll();
    records.push(...p!.batches.flatMap((b) => b.records));
    if (p!.nextOffset >= p!.highWatermark) return records;
  }
}

describe('KafkaClient admin', () => {
  it('creates, describes and deletes topics, with Kafka errors as KAFKA_ERROR', async () => {
    await client.createTopics([{ name: 'admin-a', partitions: 3, replicationFactor: 1, configs: { 'cleanup.policy': 'delete' } }]);
    const md = await client.metadata(['admin-a']);
    expect(md.topics[0]).toMatchObject({ name: 'admin-a', errorCode: 0 });
    expect(md.topics[0]!.partitions.map((p) => p.partitionIndex).sort()).toEqual([0, 1, 2]);
    expect(md.brokers[0]!.port).toBe(broker.port);

    const err = await client.createTopics([{ name: 'admin-a', partitions: 1 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toMatchObject({ code: 'KAFKA_ERROR', kafkaCode: ErrorCode.TOPIC_ALREADY_EXISTS, kafkaName: 'TOPIC_ALREADY_EXISTS' });
    await client.createTopics([{ name: 'admin-a', partitions: 1 }], { ignoreExisting: true });

    await client.deleteTopics(['admin-a']);
    const after = await client.metadata(['admin-a']);
    expect(after.topics[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    await expect(client.deleteTopics(['admin-a'])).rejects.toMatchObject({ kafkaCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION });
  });

  it('lists earliest and latest offsets', async () => {
    await client.createTopics([{ name: 'offsets', partitions: 1 }]);
    expect(await client.listOffsets('offsets', 0, 'earliest')).toBe(0n);
    await new Producer(client, { acks: 1 }).send('offsets', 0, [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
    expect(await client.listOffsets('offsets', 0, 'latest')).toBe(3n);
    expect(await client.listOffsets('offsets', 0, 'earliest')).toBe(0n);
  });
});

describe('Producer and Consumer', () => {
  it('round-trips keys, values, headers and every codec', async () => {
    await client.createTopics([{ name: 'roundtrip', partitions: 1 }]);
    const producer = new Producer(client, { acks: -1 });
    const sent: string[] = [];
    let expected = 0n;
    for (const codec of [Codec.None, Codec.Gzip, Codec.Snappy, Codec.Lz4, Codec.Zstd]) {
      const values = [`v${codec}-0`, `v${codec}-1`, `v${codec}-2`];
      const r = await producer.send('roundtrip', 0, values.map((value, i) => ({ key: `k${i}`, value, headers: { h: `x${codec}` } })), { codec });
      expect(r.baseOffset).toBe(expected);
      expected += 3n;
      sent.push(...values);
    }
    const got = await readAll('roundtrip', 0);
    expect(got.map((r) => r.value!.toString())).toEqual(sent);
    expect(got.map((r) => r.offset)).toEqual(sent.map((_, i) => BigInt(i)));
    expect(got[4]!.key!.toString()).toBe('k1');
    expect(got[4]!.headers).toEqual([{ key: 'h', value: Buffer.from('x1') }]);
  });

  it('batches appended records by size and linger, keeping order across many requests in flight', async () => {
    await client.createTopics([{ name: 'batched', partitions: 2 }]);
    const producer = new Producer(client, { acks: 1, batchSize: 1024, lingerMs: 2, maxInFlight: 5 });
    const metas = await Promise.all(Array.from({ length: 2000 }, (_, i) => producer.append('batched', i % 2, { value: `r${i}` })));
    await producer.flush();
    expect(metas.filter((m) => m.partition === 0).map((m) => m.offset)).toEqual(Array.from({ length: 1000 }, (_, i) => BigInt(i)));
    const got = await readAll('batched', 1);
    expect(got.map((r) => r.value!.toString())).toEqual(Array.from({ length: 1000 }, (_, i) => `r${2 * i + 1}`));
  });

  it('looks the leader up again after a failed send, also with retries: 0', async () => {
    const own = await startBroker();
    const c = await KafkaClient.connect({ bootstrapServers: own.bootstrap, clientId: 'client-test-restart' });
    let again: Broker | undefined;
    try {
      await c.createTopics([{ name: 'restarted', partitions: 1 }]);
      const producer = new Producer(c, { acks: 1, retries: 0 });
      await producer.send('restarted', 0, [{ value: 'before' }]);
      await own.process.stop();
      // The cached connection is dead: this send fails, and must not leave it cached.
      await expect(producer.send('restarted', 0, [{ value: 'lost' }])).rejects.toBeInstanceOf(ClientError);
      again = await startBroker([`listeners=PLAINTEXT://127.0.0.1:${own.port}`]);
      await c.createTopics([{ name: 'restarted', partitions: 1 }]);
      const result = await producer.send('restarted', 0, [{ value: 'after' }]);
      expect(result.baseOffset).toBe(0n); // the new broker's empty log
    } finally {
      await c.close();
      await again?.stop();
      await own.stop();
    }
  });

  it('sends prebuilt batches as they are, and with acks=0', async () => {
    await client.createTopics([{ name: 'prebuilt', partitions: 1 }]);
    const producer = new Producer(client, { acks: 1 });
    const batch = encodeRecordBatch({ records: [{ value: 'p0' }, { value: 'p1' }] });
    await Promise.all([producer.send('prebuilt', 0, batch), producer.send('prebuilt', 0, batch)]);
    const r0 = await producer.send('prebuilt', 0, batch, { acks: 0 });
    expect(r0.baseOffset).toBe(-1n);
    // acks=0 has no answer: wait until the broker has appended it.
    while (await client.listOffsets('prebuilt', 0, 'latest') < 6n) await new Promise((r) => setTimeout(r, 20));
    expect((await readAll('prebuilt', 0)).map((r) => r.value!.toString())).toEqual(['p0', 'p1', 'p0', 'p1', 'p0', 'p1']);
  });

  it('numbers idempotent batches, and the broker rejects a sequence gap', async () => {
    await client.createTopics([{ name: 'idem', partitions: 1 }]);
    const producer = await new Producer(client, { idempotent: true }).connect();
    const { producerId, producerEpoch } = producer.producerIdentity;
    expect(producerId).toBeGreaterThanOrEqual(0n);
    await producer.send('idem', 0, [{ value: 'a' }, { value: 'b' }]);
    await producer.send('idem', 0, encodeRecordBatch({ records: [{ value: 'c' }] }));
    await Promise.all(['d', 'e', 'f'].map((value) => producer.append('idem', 0, { value })));
    const batches = await (async () => {
      const c = new Consumer(client, { maxWaitMs: 50 });
      await c.assign([{ topic: 'idem', partition: 0, offset: 0n }]);
      return (await c.poll())[0]!.batches;
    })();
    expect(batches.map((b) => [b.producerId, b.baseSequence, b.recordCount])).toEqual([[producerId, 0, 2], [producerId, 2, 1], [producerId, 3, 3]]);

    // A batch from the same producer that skips sequence 6 must be refused.
    const gap = encodeRecordBatch({ records: [{ value: 'x' }] });
    restampBatch(gap, { producerId, producerEpoch, baseSequence: 9 });
    const raw = new Producer(client, { acks: -1, retries: 0 });
    await expect(raw.send('idem', 0, gap)).rejects.toMatchObject({ code: 'KAFKA_ERROR', kafkaCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER });
  });

  it('counts records in raw mode exactly like decoded mode, starting mid-batch', async () => {
    await client.createTopics([{ name: 'raw', partitions: 1 }]);
    const producer = new Producer(client, { acks: 1 });
    for (let i = 0; i < 20; i++) {
      await producer.send('raw', 0, Array.from({ length: 10 }, (_, j) => ({ key: j % 2 ? null : `k${j}`, value: 'x'.repeat(i + j) })), { codec: i % 2 ? Codec.Lz4 : Codec.None });
    }
    const totals = async (raw: boolean) => {
      const c = new Consumer(client, { raw, maxWaitMs: 50, partitionMaxBytes: 700 });
      await c.assign([{ topic: 'raw', partition: 0, offset: 15n }]);
      let records = 0;
      let bytes = 0;
      for (;;) {
        const [p] = await c.poll();
        records += p!.recordCount;
        bytes += p!.keyValueBytes;
        if (p!.nextOffset >= p!.highWatermark) return { records, bytes };
      }
    };
    const decoded = await totals(false);
    expect(decoded.records).toBe(185);
    expect(await totals(true)).toEqual(decoded);
  });

  it('fails a fetch of an unknown partition with a KAFKA_ERROR', async () => {
    const c = new Consumer(client, { maxWaitMs: 10 });
    await expect(c.assign([{ topic: 'no-such-topic', partition: 0, offset: 'earliest' }])).rejects.toBeInstanceOf(ClientError);
  });
});
