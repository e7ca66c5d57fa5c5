// Broker obligations end to end, against real `runnel start` processes: acks 0/1/all with
// min.insync.replicas, idempotent produce over the wire, the admin APIs through kafkajs, topic
// auto-creation, configuration from a file, the environment and --set, and a clean SIGTERM.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, decodeRecordBatches, decodeResponse, encodeRecordBatch, encodeRequest, ErrorCode } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { RawKafka } from './helpers/raw-kafka.ts';

const runnel = join(import.meta.dirname, '../packages/cli/bin/runnel.ts');
let correlation = 1;
const header = <K extends number>(apiKey: K, apiVersion: number) => ({ apiKey, apiVersion, correlationId: correlation++, clientId: 'e2e' });

async function produce(conn: RawKafka, topic: string, records: Buffer, acks = 1) {
  conn.send(encodeRequest(header(ApiKey.Produce, 7), { transactionalId: null, acks, timeoutMs: 5_000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] }));
  const frames = await conn.waitFrames(conn.frames.length + 1);
  return decodeResponse(ApiKey.Produce, 7, frames.at(-1)!).body.responses[0]!.partitionResponses[0]!;
}

describe('a running broker', () => {
  let broker: TestBroker;
  let admin: Admin;
  let conn: RawKafka;

  beforeAll(async () => {
    broker = await startBroker();
    admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    conn = await RawKafka.open(broker.port);
  });
  afterAll(async () => {
    conn?.close();
    await admin?.disconnect();
    await broker?.cleanup();
  });

  it('enforces min.insync.replicas for acks=all and sends nothing back for acks=0', async () => {
    await admin.createTopics({ topics: [{ topic: 'min-isr', configEntries: [{ name: 'min.insync.replicas', value: '2' }] }, { topic: 'acks' }] });
    const batch = () => encodeRecordBatch({ records: [{ value: 'x' }] });
    expect((await produce(conn, 'min-isr', batch(), -1)).errorCode).toBe(ErrorCode.NOT_ENOUGH_REPLICAS);
    expect((await produce(conn, 'min-isr', batch(), 1)).errorCode).toBe(ErrorCode.NONE);
    expect((await produce(conn, 'acks', batch(), -1)).baseOffset).toBe(0n);
    expect((await produce(conn, 'acks', batch(), 2)).errorCode).toBe(ErrorCode.INVALID_REQUIRED_ACKS);

    const before = conn.frames.length;
    conn.send(encodeRequest(header(ApiKey.Produce, 7), { transactionalId: null, acks: 0, timeoutMs: 5_000, topicData: [{ name: 'acks', partitionData: [{ index: 0, records: batch() }] }] }));
    // The next request's answer comes first: acks=0 got none.
    expect((await produce(conn, 'acks', batch(), 1)).baseOffset).toBe(2n);
    expect(conn.frames.length).toBe(before + 1);
  });

  it('deduplicates an idempotent retry and refuses a sequence gap', async () => {
    conn.send(encodeRequest(header(ApiKey.InitProducerId, 1), { transactionalId: null, transactionTimeoutMs: 60_000 }));
    const init = decodeResponse(ApiKey.InitProducerId, 1, (await conn.waitFrames(conn.frames.length + 1)).at(-1)!).body;
    expect(init.errorCode).toBe(ErrorCode.NONE);
    const batch = (baseSequence: number, n = 3) => encodeRecordBatch({
      records: Array.from({ length: n }, (_, i) => ({ value: `seq-${baseSequence + i}` })), producerId: init.producerId, producerEpoch: init.producerEpoch, baseSequence,
    });
    const first = await produce(conn, 'idem-wire', batch(0));
    expect(first.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION); // produce does not auto-create, as in Kafka
    await admin.createTopics({ topics: [{ topic: 'idem-wire' }] });
    expect(await produce(conn, 'idem-wire', batch(0))).toMatchObject({ errorCode: 0, baseOffset: 0n });
    expect(await produce(conn, 'idem-wire', batch(3))).toMatchObject({ errorCode: 0, baseOffset: 3n });
    expect(await produce(conn, 'idem-wire', batch(0))).toMatchObject({ errorCode: 0, baseOffset: 0n }); // a retry: its original offset
    expect((await produce(conn, 'idem-wire', batch(9))).errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    expect(await produce(conn, 'idem-wire', batch(6))).toMatchObject({ errorCode: 0, baseOffset: 6n });
    expect((await admin.fetchTopicOffsets('idem-wire'))[0]!.high).toBe('9');
  });

  it('serves the admin APIs: configs, partitions, offsets by time, record deletion, cluster and log dirs', async () => {
    await admin.createTopics({ topics: [{ topic: 'adm2', numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] });
    const described = await admin.describeConfigs({ resources: [{ type: 2, name: 'adm2' }, { type: 4, name: '1' }], includeSynonyms: false });
    const topicEntries = described.resources[0]!.configEntries;
    expect(topicEntries.find((e) => e.configName === 'retention.ms')).toMatchObject({ configValue: '3600000', isDefault: false });
    expect(topicEntries.find((e) => e.configName === 'cleanup.policy')).toMatchObject({ configValue: 'delete', isDefault: true });
    expect(described.resources[1]!.configEntries.find((e) => e.configName === 'num.partitions')).toMatchObject({ configValue: '1' });

    await admin.createPartitions({ topicPartitions: [{ topic: 'adm2', count: 3 }] });
    expect((await admin.fetchTopicMetadata({ topics: ['adm2'] })).topics[0]!.partitions).toHaveLength(3);
    await expect(admin.createPartitions({ topicPartitions: [{ topic: 'adm2', count: 2 }] })).rejects.toThrow();

    const t0 = Date.now();
    for (let i = 0; i < 5; i++) await produce(conn, 'adm2', encodeRecordBatch({ records: [{ value: `r${i}` }], timestamp: t0 + i * 1000 }));
    const byTime = await admin.fetchTopicOffsetsByTimestamp('adm2', t0 + 2500);
    expect(byTime.find((p) => p.partition === 0)!.offset).toBe('3');

    await admin.deleteTopicRecords({ topic: 'adm2', partitions: [{ partition: 0, offset: '2' }] });
    const offsets = (await admin.fetchTopicOffsets('adm2')).find((p) => p.partition === 0)!;
    expect([offsets.low, offsets.high]).toEqual(['2', '5']);

    const cluster = await admin.describeCluster();
    expect(cluster).toMatchObject({ controller: 1, brokers: [{ nodeId: 1, host: '127.0.0.1', port: broker.port }] });
    expect(cluster.clusterId).toMatch(/^[A-Za-z0-9_-]{22}$/);

    conn.send(encodeRequest(header(ApiKey.DescribeLogDirs, 1), { topics: null }));
    const dirs = decodeResponse(ApiKey.DescribeLogDirs, 1, (await conn.waitFrames(conn.frames.length + 1)).at(-1)!).body;
    expect(dirs.results).toHaveLength(1);
    expect(dirs.results[0]).toMatchObject({ errorCode: 0, logDir: broker.logDir });
    const adm2 = dirs.results[0]!.topics.find((t) => t.name === 'adm2')!;
    expect(adm2.partitions.find((p) => p.partitionIndex === 0)!.partitionSize).toBeGreaterThan(0n);
  });

  it('fetches whole batches from the requested offset and long-polls until data arrives', async () => {
    await admin.createTopics({ topics: [{ topic: 'poll' }] });
    const fetchReq = (offset: bigint, maxWaitMs: number) => encodeRequest(header(ApiKey.Fetch, 11), {
      replicaId: -1, maxWaitMs, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 1, sessionId: 0, sessionEpoch: -1,
      topics: [{ topic: 'poll', partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: offset, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [], rackId: '',
    });
    const poller = await RawKafka.open(broker.port);
    const started = Date.now();
    poller.send(fetchReq(0n, 10_000));
    await new Promise((r) => setTimeout(r, 300));
    expect(poller.frames.length).toBe(0); // parked in the purgatory
    await produce(conn, 'poll', encodeRecordBatch({ records: [{ key: 'k', value: 'woke' }] }));
    const [frame] = await poller.waitFrames(1);
    expect(Date.now() - started).toBeLessThan(9_000);
    const part = decodeResponse(ApiKey.Fetch, 11, frame!).body.responses[0]!.partitions[0]!;
    expect(part.highWatermark).toBe(1n);
    expect(decodeRecordBatches(part.records!).flatMap((b) => b.records.map((r) => r.value!.toString()))).toEqual(['woke']);
    // Past the end: OFFSET_OUT_OF_RANGE, as Kafka answers.
    poller.send(fetchReq(5n, 0));
    const out = decodeResponse(ApiKey.Fetch, 11, (await poller.waitFrames(2))[1]!).body.responses[0]!.partitions[0]!;
    expect(out.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
    poller.close();
  });
});

describe('configuration and lifecycle', () => {
  it('takes configs from a file, KAFKA_* variables and --set, in that order of precedence', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runnel-conf-'));
    writeFileSync(join(dir, 'server.properties'), '# Kafka-style file\nnum.partitions=2\nlog.cleaner.delete.retention.ms=5000\nlog.retention.ms=999\n');
    const broker = await startBroker({
      args: ['--config', join(dir, 'server.properties')],
      set: ['log.retention.ms=1234'],
      env: { KAFKA_NUM_PARTITIONS: '3', KAFKA_LOG_SEGMENT_BYTES: '2097152' },
    });
    try {
      const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const [cfg] = (await admin.describeConfigs({ resources: [{ type: 4, name: '1' }], includeSynonyms: false })).resources;
      const value = (name: string) => cfg!.configEntries.find((e) => e.configName === name)?.configValue;
      // file only; env over file; env only; --set over file
      expect([value('log.cleaner.delete.retention.ms'), value('num.partitions'), value('log.segment.bytes'), value('log.retention.ms')])
        .toEqual(['5000', '3', '2097152', '1234']);
      await admin.disconnect();
    } finally {
      await broker.cleanup();
    }
  });

  it('a --config file is read, and a bad value stops the start with a message naming the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'runnel-conf-'));
    writeFileSync(join(dir, 'bad.properties'), 'log.dirs=' + dir + '\nnum.partitions=many\n');
    const bad = spawnSync(process.execPath, [runnel, 'start', '--config', join(dir, 'bad.properties')], { encoding: 'utf8', timeout: 20_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('num.partitions: "many" is not an integer');
    const badSet = spawnSync(process.execPath, [runnel, 'start', '--set', 'compression.type=brotli'], { encoding: 'utf8', timeout: 20_000 });
    expect(badSet.status).toBe(2);
    expect(badSet.stderr).toMatch(/compression\.type: .*brotli.*uncompressed, gzip, snappy, lz4, zstd, producer/);
  });

  it('refuses topic auto-creation when auto.create.topics.enable=false', async () => {
    const broker = await startBroker({ set: ['auto.create.topics.enable=false'] });
    try {
      const conn = await RawKafka.open(broker.port);
      conn.send(encodeRequest(header(ApiKey.Metadata, 4), { topics: [{ name: 'nope' }], allowAutoTopicCreation: true }));
      const md = decodeResponse(ApiKey.Metadata, 4, (await conn.waitFrames(1))[0]!).body;
      expect(md.topics[0]).toMatchObject({ name: 'nope', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION });
      conn.close();
    } finally {
      await broker.cleanup();
    }
  });

  it('stops cleanly on SIGTERM with checkpoints written, and restarts with its data and topics', async () => {
    const first = await startBroker();
    const conn = await RawKafka.open(first.port);
    conn.send(encodeRequest(header(ApiKey.Metadata, 4), { topics: [{ name: 'durable' }], allowAutoTopicCreation: true }));
    await conn.waitFrames(1);
    for (let i = 0; i < 10; i++) await produce(conn, 'durable', encodeRecordBatch({ records: [{ value: `v${i}` }] }));
    conn.close();
    expect(await first.stop()).toBe(0);
    expect(first.process.output()).toContain('runnel stopped');
    expect(existsSync(join(first.logDir, '.kafka_cleanshutdown'))).toBe(true);
    expect(readFileSync(join(first.logDir, 'recovery-point-offset-checkpoint'), 'utf8')).toMatch(/^0\n\d+\n(.*\n)*durable 0 10\n/m);

    const second = await startBroker({ logDir: first.logDir });
    try {
      const admin = new Kafka({ brokers: [second.bootstrap], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      expect((await admin.fetchTopicOffsets('durable'))[0]!.high).toBe('10');
      await admin.disconnect();
      expect(second.process.output()).not.toContain('recovering log dir after an unclean shutdown');
    } finally {
      await second.cleanup();
    }
  });
});

describe('topic compression.type', () => {
  it('recompresses batches into the topic codec and passes them through under producer', async () => {
    const broker = await startBroker();
    try {
      const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'as-zstd', configEntries: [{ name: 'compression.type', value: 'zstd' }] }, { topic: 'as-sent' }] });
      await admin.disconnect();
      const conn = await RawKafka.open(broker.port);
      const records = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `value ${i} `.repeat(20), headers: { i: String(i) } }));
      // Small (inline) and large (worker pool) payloads, in a codec other than the topic's.
      for (const batch of [encodeRecordBatch({ records, codec: 3 }), encodeRecordBatch({ records: Array.from({ length: 2000 }, (_, i) => ({ value: `big ${i} `.repeat(10) })), codec: 1 })]) {
        for (const topic of ['as-zstd', 'as-sent']) expect((await produce(conn, topic, batch)).errorCode).toBe(ErrorCode.NONE);
      }
      // A corrupt batch must not be laundered into a valid one by recompression.
      const corrupt = encodeRecordBatch({ records, codec: 3 });
      corrupt[corrupt.length - 3]! ^= 0x10;
      expect((await produce(conn, 'as-zstd', corrupt)).errorCode).toBe(ErrorCode.CORRUPT_MESSAGE);

      const read = async (topic: string) => {
        conn.send(encodeRequest(header(ApiKey.Fetch, 11), {
          replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes: 64 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
          topics: [{ topic, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0n, logStartOffset: -1, partitionMaxBytes: 64 << 20 }] }],
          forgottenTopicsData: [], rackId: '',
        }));
        return decodeRecordBatches(decodeResponse(ApiKey.Fetch, 11, (await conn.waitFrames(conn.frames.length + 1)).at(-1)!).body.responses[0]!.partitions[0]!.records!);
      };
      const zstd = await read('as-zstd');
      const sent = await read('as-sent');
      expect(zstd.map((b) => b.codec)).toEqual([4, 4]);
      expect(sent.map((b) => b.codec)).toEqual([3, 1]);
      const values = (bs: typeof zstd) => bs.flatMap((b) => b.records.map((r) => `${r.offset}:${r.key}:${r.value}:${r.headers.map((h) => `${h.key}=${h.value}`).join()}`));
      expect(values(zstd)).toEqual(values(sent));
      expect(values(zstd)).toHaveLength(2050);
      conn.close();
    } finally {
      await broker.cleanup();
    }
  });
});

describe('log dir ownership', () => {
  it('refuses a second broker on a log dir in use, and takes over the lock a crashed one left', async () => {
    const first = await startBroker();
    try {
      const second = spawnSync(process.execPath, [runnel, 'start', '--set', 'listeners=PLAINTEXT://127.0.0.1:0', '--set', `log.dirs=${first.logDir}`], { encoding: 'utf8', timeout: 20_000 });
      expect(second.status).toBe(1);
      expect(second.stderr).toMatch(new RegExp(`log dir ${first.logDir} is locked by another Runnel process \\(pid ${first.process.child.pid}\\)`));
      first.process.child.kill('SIGKILL');
      await first.process.exited();
      expect(existsSync(join(first.logDir, '.lock'))).toBe(true);
      const third = await startBroker({ logDir: first.logDir });
      expect(await third.stop()).toBe(0);
      expect(existsSync(join(first.logDir, '.lock'))).toBe(false);
    } finally {
      await first.cleanup();
    }
  });
});
