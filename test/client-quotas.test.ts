// Client quotas end to end on one `runnel start`: kafka-configs sets and describes them
// (AlterClientQuotas, DescribeClientQuotas), they apply live, Produce and Fetch over quota answer
// with throttle_time_ms and the connection stays muted for it (KIP-219), a throttled Fetch is
// empty and loses nothing, and real clients (kafkajs) are held near the quota. The rate window is
// quota.window.num=2 × 1 s so a burst of one window's worth is all a fresh client gets at once.
import { Kafka, logLevel } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, encodeRecordBatch, encodeRequest, decodeResponse, type RequestInputs } from '@runnel/protocol';
import { suiteBroker } from './helpers/suite-broker.ts';
import { kafkaRequest, RawKafka } from './helpers/raw-kafka.ts';
import { kafkaTools, ok, type KafkaTools } from './helpers/kafka-tools.ts';

const broker = suiteBroker({ set: ['quota.window.num=2', 'quota.window.size.seconds=1', 'num.partitions=1'] });
let tools: KafkaTools;

beforeAll(async () => {
  tools = await kafkaTools();
}, 600_000);

const kafka = (clientId: string) => new Kafka({ clientId, brokers: [broker().bootstrap], logLevel: logLevel.NOTHING });

async function setQuota(entity: { user?: string | null; 'client-id'?: string | null }, key: string, value: number | null): Promise<void> {
  const res = await kafkaRequest(broker().port, ApiKey.AlterClientQuotas, 1, {
    entries: [{
      entity: Object.entries(entity).map(([entityType, entityName]) => ({ entityType, entityName: entityName ?? null })),
      ops: [{ key, value: value ?? 0, remove: value === null }],
    }],
    validateOnly: false,
  });
  expect(res.entries.map((e) => e.errorCode)).toEqual([0]);
}

function produceRequest(topic: string, bytes: number, correlationId: number, clientId: string): Buffer {
  const records = encodeRecordBatch({ records: [{ key: null, value: Buffer.alloc(bytes, 7) }] });
  const body: RequestInputs[typeof ApiKey.Produce] = { transactionalId: null, acks: 1, timeoutMs: 10_000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] };
  return encodeRequest({ apiKey: ApiKey.Produce, apiVersion: 7, correlationId, clientId }, body);
}

describe('kafka-configs --entity-type clients|users', () => {
  it('sets, describes and deletes client, user, user+client and default quotas', async () => {
    const b = broker().bootstrap;
    ok(await tools.configs(['--bootstrap-server', b, '--alter', '--entity-type', 'clients', '--entity-name', 'c1', '--add-config', 'producer_byte_rate=1048576,consumer_byte_rate=2097152']));
    ok(await tools.configs(['--bootstrap-server', b, '--alter', '--entity-type', 'clients', '--entity-default', '--add-config', 'producer_byte_rate=5000000']));
    ok(await tools.configs(['--bootstrap-server', b, '--alter', '--entity-type', 'users', '--entity-name', 'alice', '--entity-type', 'clients', '--entity-name', 'c1', '--add-config', 'consumer_byte_rate=4096']));
    const clients = ok(await tools.configs(['--bootstrap-server', b, '--describe', '--entity-type', 'clients']));
    expect(clients).toMatch(/client-id 'c1' are .*producer_byte_rate=1048576(\.0)?/);
    expect(clients).toMatch(/client-id 'c1' are .*consumer_byte_rate=2097152(\.0)?/);
    expect(clients).toMatch(/default client-id are producer_byte_rate=5000000(\.0)?/);
    const pair = await kafkaRequest(broker().port, ApiKey.DescribeClientQuotas, 1, {
      components: [{ entityType: 'user', matchType: 0, match: 'alice' }, { entityType: 'client-id', matchType: 0, match: 'c1' }], strict: true,
    });
    expect(pair.entries).toEqual([{ entity: [{ entityType: 'client-id', entityName: 'c1' }, { entityType: 'user', entityName: 'alice' }], values: [{ key: 'consumer_byte_rate', value: 4096 }] }]);

    ok(await tools.configs(['--bootstrap-server', b, '--alter', '--entity-type', 'clients', '--entity-name', 'c1', '--delete-config', 'producer_byte_rate,consumer_byte_rate']));
    await setQuota({ 'client-id': null }, 'producer_byte_rate', null);
    await setQuota({ user: 'alice', 'client-id': 'c1' }, 'consumer_byte_rate', null);
    const after = await kafkaRequest(broker().port, ApiKey.DescribeClientQuotas, 1, { components: [], strict: false });
    expect(after.errorCode).toBe(0);
    expect(after.entries).toEqual([]);
  }, 120_000);

  it('refuses unknown keys and fractional byte rates per entry, and writes nothing for validateOnly', async () => {
    const res = await kafkaRequest(broker().port, ApiKey.AlterClientQuotas, 1, {
      entries: [
        { entity: [{ entityType: 'client-id', entityName: 'x' }], ops: [{ key: 'no_such_quota', value: 1, remove: false }] },
        { entity: [{ entityType: 'client-id', entityName: 'x' }], ops: [{ key: 'producer_byte_rate', value: 1.5, remove: false }] },
        { entity: [{ entityType: 'client-id', entityName: 'y' }], ops: [{ key: 'producer_byte_rate', value: 1000, remove: false }] },
      ],
      validateOnly: true,
    });
    expect(res.entries.map((e) => [e.errorCode, e.errorMessage])).toEqual([
      [42, 'Unknown quota key no_such_quota'], [42, 'Quota producer_byte_rate must be a whole number, not 1.5'], [0, null],
    ]);
    const described = await kafkaRequest(broker().port, ApiKey.DescribeClientQuotas, 1, { components: [{ entityType: 'client-id', matchType: 2, match: null }], strict: false });
    expect(described.entries).toEqual([]);
  });
});

describe('enforcement', () => {
  it('throttles Produce over producer_byte_rate (set live), mutes the connection for the throttle, and holds kafkajs near the quota', async () => {
    const quota = 100_000;
    await setQuota({ 'client-id': 'q-prod' }, 'producer_byte_rate', quota);
    const admin = kafka('admin').admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'quota-p', numPartitions: 1 }] });
    await admin.disconnect();

    // A raw client: 300 KB in one request is three times what one second allows.
    const raw = await RawKafka.open(broker().port);
    raw.send(produceRequest('quota-p', 300_000, 1, 'q-prod'));
    const [first] = await raw.waitFrames(1);
    const firstAt = Date.now();
    const r1 = decodeResponse(ApiKey.Produce, 7, first!).body;
    expect(r1.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
    expect(r1.throttleTimeMs).toBeGreaterThan(0);
    // The next request is read only after the throttle (KIP-219: the connection is muted).
    raw.send(produceRequest('quota-p', 10, 2, 'q-prod'));
    await raw.waitFrames(2, 30_000);
    expect(Date.now() - firstAt).toBeGreaterThanOrEqual(r1.throttleTimeMs * 0.8);
    raw.close();

    // kafkajs: 600 KB at 100 KB/s cannot take much less than 6 s (bounded generously: 2× the quota).
    const producer = kafka('q-prod').producer();
    await producer.connect();
    const began = Date.now();
    for (let i = 0; i < 12; i++) await producer.send({ topic: 'quota-p', acks: 1, messages: [{ value: Buffer.alloc(50_000, i) }] });
    const seconds = (Date.now() - began) / 1000;
    await producer.disconnect();
    expect(600_000 / seconds).toBeLessThan(2 * quota);

    // Removing the quota applies live too: a big produce is no longer throttled.
    await setQuota({ 'client-id': 'q-prod' }, 'producer_byte_rate', null);
    const raw2 = await RawKafka.open(broker().port);
    raw2.send(produceRequest('quota-p', 300_000, 1, 'q-prod'));
    expect(decodeResponse(ApiKey.Produce, 7, (await raw2.waitFrames(1))[0]!).body.throttleTimeMs).toBe(0);
    raw2.close();
  }, 60_000);

  it('answers a Fetch over consumer_byte_rate empty with the throttle, and a kafkajs consumer gets every record near the quota', async () => {
    const quota = 100_000;
    const admin = kafka('admin').admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'quota-f', numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka('filler').producer();
    await producer.connect();
    // One batch per record, so a fetch capped at the quota's window can take a few.
    for (let i = 0; i < 12; i++) await producer.send({ topic: 'quota-f', acks: 1, messages: [{ key: String(i), value: Buffer.alloc(50_000, i) }] });
    await producer.disconnect();
    // A user's default-client quota for the ANONYMOUS user (PLAINTEXT) applies to any client id of it.
    await setQuota({ user: 'ANONYMOUS', 'client-id': null }, 'consumer_byte_rate', quota);

    const fetchBody = (offset: bigint, maxWaitMs = 0, minBytes = 0): RequestInputs[typeof ApiKey.Fetch] => ({
      replicaId: -1, maxWaitMs, minBytes, maxBytes: 50 * 1024 * 1024, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
      topics: [{ topic: 'quota-f', partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: offset, logStartOffset: -1n, partitionMaxBytes: 10 * 1024 * 1024 }] }],
      forgottenTopicsData: [], rackId: '',
    });
    const raw = await RawKafka.open(broker().port);
    // Two pipelined fetches; the first long-polls (min_bytes more than the log holds), so the second
    // finishes first: the quota still charges them in the order sent, as Kafka (one request of a
    // connection at a time). Charged in completion order, the first would come back empty.
    raw.send(encodeRequest({ apiKey: ApiKey.Fetch, apiVersion: 11, correlationId: 1, clientId: 'q-fetch' }, fetchBody(0n, 300, 100 * 1024 * 1024)));
    raw.send(encodeRequest({ apiKey: ApiKey.Fetch, apiVersion: 11, correlationId: 2, clientId: 'q-fetch' }, fetchBody(0n)));
    const [f1, f2] = await raw.waitFrames(2, 30_000);
    const r1 = decodeResponse(ApiKey.Fetch, 11, f1!).body;
    const r2 = decodeResponse(ApiKey.Fetch, 11, f2!).body;
    // The first is capped at one window's worth (max_bytes lowered to the quota × window) and served;
    // the second finds the rate over quota: empty, with the throttle.
    expect(r1.responses[0]!.partitions[0]!.records!.length).toBeGreaterThan(0);
    expect(r1.responses[0]!.partitions[0]!.records!.length).toBeLessThan(200_000);
    expect(r2.throttleTimeMs).toBeGreaterThan(0);
    expect(r2.responses).toEqual([]);
    raw.close();

    const consumer = kafka('q-fetch').consumer({ groupId: 'quota-g', maxBytes: 10 * 1024 * 1024 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'quota-f', fromBeginning: true });
    const seen = new Set<string>();
    let began = 0;
    const all = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          if (began === 0) began = Date.now();
          seen.add(message.key!.toString());
          if (seen.size === 12) resolve();
        },
      });
    });
    await all;
    const seconds = (Date.now() - began) / 1000;
    await consumer.disconnect();
    expect(seen.size).toBe(12);
    // 600 KB at 100 KB/s, less what the first window allows at once.
    expect(500_000 / seconds).toBeLessThan(2 * quota);
    await setQuota({ user: 'ANONYMOUS', 'client-id': null }, 'consumer_byte_rate', null);
  }, 60_000);
});
