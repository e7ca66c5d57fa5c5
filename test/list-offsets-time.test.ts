// Seek by time against a real `runnel start`: ListOffsets by timestamp answers the first record at
// or after the time, also inside compressed batches (Kafka decompresses to find it), with that
// record's timestamp and its batch's leader epoch; −3 (the largest timestamp) only from v7 on.
// Answers checked with kafkajs (admin.fetchTopicOffsetsByTimestamp), kcat (-o s@ts) and the wire;
// Apache Kafka 4.4.0 gives the same answers to the same requests.
import { randomBytes } from 'node:crypto';
import { Codec, KafkaClient, Producer } from '@runnel/client';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { runKcat } from './helpers/kcat.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';

let broker: TestBroker;
let client: KafkaClient;
let kafka: Kafka;
// Recent (retention is 7 days), whole seconds, so kafkajs and kcat print them exactly.
const t0 = Math.floor(Date.now() / 1000) * 1000 - 600_000;
const CODECS = { none: Codec.None, gzip: Codec.Gzip, lz4: Codec.Lz4, zstd: Codec.Zstd } as const;

/** One batch of 10 records at t0, t0+1 s, ... t0+9 s. */
async function produceTen(topic: string, codec: Codec, configs: Record<string, string> = {}): Promise<void> {
  await client.createTopics([{ name: topic, partitions: 1, replicationFactor: 1, configs }]);
  const producer = await new Producer(client, { acks: -1, codec }).connect();
  try {
    await producer.send(topic, 0, Array.from({ length: 10 }, (_, i) => ({ value: `v${i}`, timestamp: t0 + i * 1000 })));
  } finally {
    await producer.close();
  }
}

const listOffsets = (version: number, topic: string, timestamp: bigint) =>
  kafkaRequest(broker.port, ApiKey.ListOffsets, version, {
    replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }] }],
  } as never).then((r) => r.topics[0]!.partitions[0]!);

beforeAll(async () => {
  broker = await startBroker({ set: ['num.partitions=1'] });
  client = await KafkaClient.connect({ bootstrapServers: broker.bootstrap });
  kafka = new Kafka({ clientId: 'seek-by-time', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
});
afterAll(async () => {
  await client?.close();
  await broker?.cleanup();
});

describe('ListOffsets by timestamp', () => {
  for (const [name, codec] of Object.entries(CODECS)) {
    it(`${name}: the first record at or after the time, with its own timestamp`, async () => {
      const topic = `seek-${name}`;
      await produceTen(topic, codec);
      const admin = kafka.admin();
      await admin.connect();
      try {
        expect(await admin.fetchTopicOffsetsByTimestamp(topic, t0 + 4500)).toEqual([{ partition: 0, offset: '5' }]);
        expect(await admin.fetchTopicOffsetsByTimestamp(topic, t0 + 9000)).toEqual([{ partition: 0, offset: '9' }]);
        expect(await admin.fetchTopicOffsetsByTimestamp(topic, t0 - 1)).toEqual([{ partition: 0, offset: '0' }]);
      } finally {
        await admin.disconnect();
      }

      const r = await runKcat(['-b', broker.bootstrap, '-C', '-t', topic, '-o', `s@${t0 + 4500}`, '-c', '1', '-q', '-f', '%o %T %s\\n']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`5 ${t0 + 5000} v5\n`);

      for (const version of [1, 5, 6, 7]) {
        const p = await listOffsets(version, topic, BigInt(t0 + 4500));
        expect(p, `v${version}`).toMatchObject({ errorCode: ErrorCode.NONE, offset: 5n, timestamp: BigInt(t0 + 5000) });
        if (version >= 4) expect(p.leaderEpoch, `v${version}`).toBe(0);
      }
      // Past the last record: no offset.
      expect(await listOffsets(7, topic, BigInt(t0 + 9001))).toMatchObject({ errorCode: ErrorCode.NONE, offset: -1n, timestamp: -1n });
    });
  }

  it('a batch too big to inflate on the event loop is searched in the worker pool, with the same answer', async () => {
    const topic = 'seek-big-batch';
    await client.createTopics([{ name: topic, partitions: 1, replicationFactor: 1, configs: {} }]);
    const producer = await new Producer(client, { acks: -1, codec: Codec.Zstd }).connect();
    try {
      // Random bytes do not compress: 10 × 20 KiB is well past the 64 KiB kept inline.
      await producer.send(topic, 0, Array.from({ length: 10 }, (_, i) => ({ value: randomBytes(20_000), timestamp: t0 + i * 1000 })));
    } finally {
      await producer.close();
    }
    expect(await listOffsets(7, topic, BigInt(t0 + 6500))).toMatchObject({ errorCode: ErrorCode.NONE, offset: 7n, timestamp: BigInt(t0 + 7000) });
  });

  it('a LogAppendTime topic answers the first record with the broker time, every record carrying it', async () => {
    const topic = 'seek-log-append-time';
    const before = Date.now();
    await produceTen(topic, Codec.Zstd, { 'message.timestamp.type': 'LogAppendTime' });
    const p = await listOffsets(7, topic, BigInt(before - 1));
    expect(p.errorCode).toBe(ErrorCode.NONE);
    expect(p.offset).toBe(0n);
    expect(Number(p.timestamp)).toBeGreaterThanOrEqual(before);
    expect((await listOffsets(7, topic, p.timestamp + 1n)).offset).toBe(-1n);
  });

  it('the answer is never below the log start offset, even inside a compressed batch', async () => {
    const topic = 'seek-after-delete';
    await produceTen(topic, Codec.Gzip);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.fetchTopicMetadata({ topics: [topic] });
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] });
      expect(await admin.fetchTopicOffsetsByTimestamp(topic, t0)).toEqual([{ partition: 0, offset: '3' }]);
      expect(await admin.fetchTopicOffsetsByTimestamp(topic, t0 + 4500)).toEqual([{ partition: 0, offset: '5' }]);
    } finally {
      await admin.disconnect();
    }
  });

  it('−3 answers the record with the largest timestamp from v7 on, UNSUPPORTED_VERSION before (as Kafka)', async () => {
    const topic = 'seek-max-timestamp';
    await client.createTopics([{ name: topic, partitions: 1, replicationFactor: 1, configs: {} }]);
    // Empty: no record, no error.
    expect(await listOffsets(7, topic, -3n)).toMatchObject({ errorCode: ErrorCode.NONE, offset: -1n, timestamp: -1n });
    const producer = await new Producer(client, { acks: -1, codec: Codec.Lz4 }).connect();
    try {
      // The largest timestamp sits in the middle of the first batch, and a later batch is older.
      await producer.send(topic, 0, [3, 7, 9, 7, 1].map((s, i) => ({ value: `a${i}`, timestamp: t0 + s * 1000 })));
      await producer.send(topic, 0, [2, 4].map((s, i) => ({ value: `b${i}`, timestamp: t0 + s * 1000 })));
    } finally {
      await producer.close();
    }
    expect(await listOffsets(7, topic, -3n)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 2n, timestamp: BigInt(t0 + 9000), leaderEpoch: 0 });
    for (const version of [1, 5, 6]) {
      expect(await listOffsets(version, topic, -3n), `v${version}`).toMatchObject({ errorCode: ErrorCode.UNSUPPORTED_VERSION, offset: -1n });
    }
    // Other negative timestamps are not defined up to v7 either (−4 needs v8).
    expect((await listOffsets(7, topic, -4n)).errorCode).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect((await listOffsets(7, topic, -7n)).errorCode).toBe(ErrorCode.UNSUPPORTED_VERSION);
    // −1 and −2 are unchanged.
    expect(await listOffsets(6, topic, -1n)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 7n });
    expect(await listOffsets(6, topic, -2n)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 0n });
  });
});
