// The Prometheus endpoint of a real `runnel start` (runnel.metrics.listener): partition and log
// dir gauges, and consumer-group lag in records and in seconds (the age of the last committed record).
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, decodeResponse, encodeRequest } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { RawKafka } from './helpers/raw-kafka.ts';

let broker: TestBroker;
let metricsUrl: string;

beforeAll(async () => {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  broker = await startBroker({ set: ['runnel.metrics.listener=127.0.0.1:0'] });
  metricsUrl = (await broker.process.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/))[1]!;
});
afterAll(async () => {
  await broker?.cleanup();
});

/** A stand-alone commit (generation -1, no member), as admin tools make: kafkajs' setOffsets runs a whole consumer. */
async function commit(group: string, topic: string, offset: bigint) {
  const conn = await RawKafka.open(broker.port);
  conn.send(encodeRequest({ apiKey: ApiKey.OffsetCommit, apiVersion: 2, correlationId: 1, clientId: 'metrics-test' }, {
    groupId: group, generationIdOrMemberEpoch: -1, memberId: '', retentionTimeMs: -1n,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, committedOffset: offset, committedMetadata: null }] }],
  }));
  const [frame] = await conn.waitFrames(1);
  conn.close();
  expect(decodeResponse(ApiKey.OffsetCommit, 2, frame!).body.topics[0]!.partitions[0]!.errorCode).toBe(0);
}

const scrape = async () => (await fetch(metricsUrl)).text();
const sample = (text: string, name: string, labels: Record<string, string>) => {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && want.every((w) => l.includes(w)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

describe('metrics endpoint', () => {
  it('reports partition offsets, log dir health, and group lag in records and seconds', async () => {
    const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const hourAgo = Date.now() - 3_600_000;
    // 10 old records, then 5 recent ones; the group commits after the 10 old ones.
    await producer.send({ topic: 'lagged', messages: Array.from({ length: 10 }, (_, i) => ({ value: `old-${i}`, timestamp: String(hourAgo + i * 1000) })) });
    await producer.send({ topic: 'lagged', messages: Array.from({ length: 5 }, (_, i) => ({ value: `new-${i}` })) });
    await producer.disconnect();
    await commit('lagging', 'lagged', 10n);

    const text = await scrape();
    expect(text).toContain('# TYPE runnel_consumergroup_lag gauge');
    const labels = { group: 'lagging', topic: 'lagged', partition: '0' };
    expect(sample(text, 'runnel_log_end_offset', { topic: 'lagged', partition: '0' })).toBe(15);
    expect(sample(text, 'runnel_consumergroup_committed_offset', labels)).toBe(10);
    expect(sample(text, 'runnel_consumergroup_lag', labels)).toBe(5);
    // The last committed record (offset 9) was stamped an hour ago, minus 9 seconds.
    const lagSeconds = sample(text, 'runnel_consumergroup_lag_seconds', labels)!;
    expect(lagSeconds).toBeGreaterThan(3_590 - 9);
    expect(lagSeconds).toBeLessThan(3_700);
    expect(sample(text, 'runnel_consumergroup_commit_age_seconds', labels)).toBeLessThan(60);
    expect(sample(text, 'runnel_log_dir_online', { dir: broker.logDir })).toBe(1);
    expect(sample(text, 'runnel_log_dir_free_bytes', { dir: broker.logDir })).toBeGreaterThan(0);
    expect(text).toMatch(/^runnel_process_cpu_seconds_total \d/m);
    // The coordinator's commits are committed records of __consumer_offsets too: high watermark = log end.
    const offsetsTopic = (name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`) && l.includes('topic="__consumer_offsets"'))
      .map((l) => [l.match(/partition="(\d+)"/)![1], Number(l.slice(l.lastIndexOf(' ') + 1))] as const);
    const ends = new Map(offsetsTopic('runnel_log_end_offset'));
    const hws = offsetsTopic('runnel_log_high_watermark');
    expect(hws.length).toBe(50);
    expect(hws.every(([p, hw]) => ends.get(p) === hw)).toBe(true);
    expect(hws.some(([, hw]) => hw > 0)).toBe(true);

    // Kafka's names (docs/metrics.md) for the same figures: per-topic records in, the Produce
    // requests, and kafka_exporter's lag.
    expect(sample(text, 'kafka_server_brokertopicmetrics_messagesin_total', { topic: 'lagged' })).toBe(15);
    expect(sample(text, 'kafka_server_brokertopicmetrics_bytesin_total', { topic: 'lagged' })).toBeGreaterThan(15 * 5);
    expect(sample(text, 'kafka_network_requestmetrics_requests_total', { request: 'Produce' })).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'kafka_network_requestmetrics_errors_total', { request: 'OffsetCommit', error: 'NONE' })).toBe(1);
    expect(sample(text, 'kafka_consumergroup_lag', { consumergroup: 'lagging', topic: 'lagged', partition: '0' })).toBe(5);
    expect(sample(text, 'kafka_consumergroup_current_offset', { consumergroup: 'lagging', topic: 'lagged', partition: '0' })).toBe(10);
    expect(sample(text, 'kafka_server_replicamanager_underreplicatedpartitions', {})).toBe(0);

    // Caught up: lag 0 in records and in seconds.
    await commit('lagging', 'lagged', 15n);
    const after = await scrape();
    expect(sample(after, 'runnel_consumergroup_lag', labels)).toBe(0);
    expect(sample(after, 'runnel_consumergroup_lag_seconds', labels)).toBe(0);
  });

  it('counts error codes per API and partition, and failed produces per topic', async () => {
    const before = await scrape();
    const errors = () => sample(before, 'kafka_network_requestmetrics_errors_total', { request: 'Produce', error: 'UNKNOWN_TOPIC_OR_PARTITION' }) ?? 0;
    const failed = sample(before, 'kafka_server_brokertopicmetrics_failedproducerequests_total', { topic: 'lagged' }) ?? 0;
    // Partitions 5 and 6 of a one-partition topic: two error fields in one response.
    const conn = await RawKafka.open(broker.port);
    conn.send(encodeRequest({ apiKey: ApiKey.Produce, apiVersion: 7, correlationId: 1, clientId: 'metrics-test' }, {
      transactionalId: null, acks: 1, timeoutMs: 1000, topicData: [{ name: 'lagged', partitionData: [{ index: 5, records: null }, { index: 6, records: null }] }],
    }));
    const [frame] = await conn.waitFrames(1);
    conn.close();
    expect(decodeResponse(ApiKey.Produce, 7, frame!).body.responses[0]!.partitionResponses.map((p) => p.errorCode)).toEqual([3, 3]);
    const after = await scrape();
    expect(sample(after, 'kafka_network_requestmetrics_errors_total', { request: 'Produce', error: 'UNKNOWN_TOPIC_OR_PARTITION' })).toBe(errors() + 2);
    expect(sample(after, 'kafka_server_brokertopicmetrics_failedproducerequests_total', { topic: 'lagged' })).toBe(failed + 2);
    expect(sample(after, 'kafka_network_requestmetrics_requestbytes_count', { request: 'Produce' })).toBeGreaterThanOrEqual(3);
  });

  it('shows a long-polling fetch in the fetch purgatory, in flight, on an open connection', async () => {
    const conn = await RawKafka.open(broker.port);
    conn.send(encodeRequest({ apiKey: ApiKey.Fetch, apiVersion: 11, correlationId: 1, clientId: 'metrics-test' }, {
      replicaId: -1, maxWaitMs: 4000, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
      topics: [{ topic: 'lagged', partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 15n, logStartOffset: -1n, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [], rackId: '',
    }));
    const waiting = async () => sample(await scrape(), 'kafka_server_delayedoperationpurgatory_purgatorysize', { delayedOperation: 'Fetch' });
    for (let i = 0; i < 40 && (await waiting()) !== 1; i++) await new Promise((r) => setTimeout(r, 50));
    const text = await scrape();
    expect(sample(text, 'kafka_server_delayedoperationpurgatory_purgatorysize', { delayedOperation: 'Fetch' })).toBe(1);
    expect(sample(text, 'kafka_server_delayedoperationpurgatory_purgatorysize', { delayedOperation: 'Produce' })).toBe(0);
    expect(sample(text, 'runnel_network_requests_in_flight', {})).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'kafka_server_socket_server_metrics_connection_count', { listener: 'PLAINTEXT' })).toBeGreaterThanOrEqual(1);
    conn.close();
    await conn.closed;
    for (let i = 0; i < 40 && (await waiting()) !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await waiting()).toBe(0);
  });

  it('drops a deleted topic\'s per-topic series', async () => {
    const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'short-lived', messages: [{ value: 'x' }] });
    await producer.disconnect();
    expect(sample(await scrape(), 'kafka_server_brokertopicmetrics_messagesin_total', { topic: 'short-lived' })).toBe(1);
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: ['short-lived'] });
    await admin.disconnect();
    const text = await scrape();
    expect(text.split('\n').filter((l) => l.startsWith('kafka_server_brokertopicmetrics_') && l.includes('topic="short-lived"'))).toEqual([]);
  });

  it('answers 404 off the metrics path', async () => {
    expect((await fetch(metricsUrl.replace('/metrics', '/nope'))).status).toBe(404);
  });
});
