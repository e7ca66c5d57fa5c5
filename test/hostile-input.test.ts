// Bad input against a real broker process (reliability matrix T18 and T19(b)): corrupt batches are
// refused with CORRUPT_MESSAGE or INVALID_RECORD and never appended, hostile frames close only
// their own connection without allocating, decompression bombs are refused, and meanwhile a
// healthy client keeps producing with nothing lost and the broker's memory stays bounded.
import { constants, createGzip, createZstdCompress } from 'node:zlib';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '@runnel/native';
import { ApiKey, decodeResponse, encodeRecordBatch, encodeRequest } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { RawKafka } from './helpers/raw-kafka.ts';

const CORRUPT_MESSAGE = 2;
const INVALID_RECORD = 87;
const MiB = 1024 * 1024;

let broker: TestBroker;
let admin: Admin;
let kafka: Kafka;

beforeAll(async () => {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  broker = await startBroker({ set: ['message.max.bytes=4194304'] });
  kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'hostile' }, { topic: 'healthy' }] });
});
afterAll(async () => {
  await admin?.disconnect();
  await broker?.cleanup();
});

let correlation = 1;
const produceRequest = (records: Buffer, topic = 'hostile') => encodeRequest(
  { apiKey: ApiKey.Produce, apiVersion: 7, correlationId: correlation++, clientId: 'hostile' },
  { transactionalId: null, acks: 1, timeoutMs: 5_000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] },
);
const produceError = (frame: Buffer) => decodeResponse(ApiKey.Produce, 7, frame).body.responses[0]!.partitionResponses[0]!.errorCode;
const endOffset = async (topic: string) => BigInt((await admin.fetchTopicOffsets(topic))[0]!.high);

/** Zigzag varint, as records encode their lengths. */
function varint(n: number): Buffer {
  let z = (n << 1) ^ (n >> 31);
  const out: number[] = [];
  do {
    let b = z & 0x7f;
    z >>>= 7;
    if (z !== 0) b |= 0x80;
    out.push(b);
  } while (z !== 0);
  return Buffer.from(out);
}

/** A v2 batch around arbitrary records bytes with a correct CRC, so only what the test breaks is broken. */
function batchAround(records: Buffer, options: { count: number; attributes?: number; lastOffsetDelta?: number }): Buffer {
  const b = Buffer.alloc(61 + records.length);
  b.writeInt32BE(b.length - 12, 8);
  b.writeInt8(2, 16);
  b.writeInt16BE(options.attributes ?? 0, 21);
  b.writeInt32BE(options.lastOffsetDelta ?? options.count - 1, 23);
  b.writeBigInt64BE(BigInt(Date.now()), 27);
  b.writeBigInt64BE(BigInt(Date.now()), 35);
  b.writeBigInt64BE(-1n, 43);
  b.writeInt16BE(-1, 51);
  b.writeInt32BE(-1, 53);
  b.writeInt32BE(options.count, 57);
  records.copy(b, 61);
  b.writeUInt32BE(crc32c(b.subarray(21)) >>> 0, 17);
  return b;
}

/** One record: length, attributes, timestamp delta, offset delta, then the given body. */
const record = (body: Buffer) => {
  const inner = Buffer.concat([Buffer.from([0]), varint(0), varint(0), body]);
  return Buffer.concat([varint(inner.length), inner]);
};

/** Streams `bytes` of zeros through a compressor without ever holding them. */
async function compressZeros(stream: NodeJS.ReadWriteStream, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve, reject) => { stream.on('end', resolve); stream.on('error', reject); });
  const zeros = Buffer.alloc(MiB);
  for (let written = 0; written < bytes; written += zeros.length) {
    if (!stream.write(zeros)) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  await done;
  return Buffer.concat(chunks);
}

describe('bad input against a real broker', () => {
  it('refuses 10,000 produce requests with one flipped bit each, appends none, while a healthy producer loses nothing', async () => {
    const template = encodeRecordBatch({ records: Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: `value-${i}`, headers: { h: 'x' } })) });
    const producer = kafka.producer();
    await producer.connect();
    let healthyAcked = 0;
    const healthy = (async () => {
      for (let i = 0; i < 50; i++) {
        await producer.send({ topic: 'healthy', messages: Array.from({ length: 100 }, (_, j) => ({ value: `${i}-${j}` })) });
        healthyAcked += 100;
      }
    })();

    const conn = await RawKafka.open(broker.port);
    const codes = new Map<number, number>();
    let seed = 42;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const total = 10_000;
    for (let sent = 0; sent < total; sent += 500) {
      const window: Buffer[] = [];
      for (let i = 0; i < 500; i++) {
        const batch = Buffer.from(template);
        // Any bit from batchLength on, except the partition leader epoch, which the broker overwrites.
        let pos: number;
        do pos = 8 + Math.floor(random() * (batch.length - 8)); while (pos >= 12 && pos < 16);
        batch[pos]! ^= 1 << Math.floor(random() * 8);
        window.push(produceRequest(batch));
      }
      conn.send(...window);
      await conn.waitFrames(sent + 500, 30_000);
    }
    for (const frame of conn.frames) codes.set(produceError(frame), (codes.get(produceError(frame)) ?? 0) + 1);
    conn.close();
    await healthy;
    await producer.disconnect();

    expect([...codes.keys()].every((c) => c === CORRUPT_MESSAGE || c === INVALID_RECORD)).toBe(true);
    expect([...codes.values()].reduce((a, b) => a + b, 0)).toBe(total);
    expect(await endOffset('hostile')).toBe(0n);
    expect(healthyAcked).toBe(5_000);
    expect(await endOffset('healthy')).toBe(5_000n);
  });

  it('refuses bad lengths, magic, record counts, key lengths, header counts and codecs, appending nothing', async () => {
    const good = record(Buffer.concat([varint(1), Buffer.from('k'), varint(1), Buffer.from('v'), varint(0)]));
    const cases: Record<string, Buffer> = {
      'batchLength larger than the request': (() => { const b = batchAround(good, { count: 1 }); b.writeInt32BE(1 << 30, 8); return b; })(),
      'batchLength negative': (() => { const b = batchAround(good, { count: 1 }); b.writeInt32BE(-1, 8); return b; })(),
      'batchLength smaller than a header': (() => { const b = batchAround(good, { count: 1 }); b.writeInt32BE(10, 8); return b; })(),
      'magic 1': (() => { const b = batchAround(good, { count: 1 }); b.writeInt8(1, 16); return b; })(),
      'record count above the records present': batchAround(good, { count: 2, lastOffsetDelta: 1 }),
      'record count disagreeing with lastOffsetDelta': batchAround(good, { count: 1, lastOffsetDelta: 4 }),
      'negative key length': batchAround(record(Buffer.concat([varint(-5), varint(1), Buffer.from('v'), varint(0)])), { count: 1 }),
      'header count 2^31-1': batchAround(record(Buffer.concat([varint(-1), varint(1), Buffer.from('v'), varint(0x7fffffff)])), { count: 1 }),
      'value length past the record': batchAround(record(Buffer.concat([varint(-1), varint(1000), Buffer.from('v'), varint(0)])), { count: 1 }),
      'compression codec 5': batchAround(good, { count: 1, attributes: 5 }),
      'compression codec 7': batchAround(good, { count: 1, attributes: 7 }),
      'gzip attribute over bytes that are not gzip': batchAround(good, { count: 1, attributes: 1 }),
    };
    const conn = await RawKafka.open(broker.port);
    const names = Object.keys(cases);
    conn.send(...names.map((n) => produceRequest(cases[n]!)));
    const frames = await conn.waitFrames(names.length);
    conn.close();
    const refused = Object.fromEntries(names.map((n, i) => [n, produceError(frames[i]!)]));
    for (const n of names) expect([n, [CORRUPT_MESSAGE, INVALID_RECORD].includes(refused[n]!)]).toEqual([n, true]);
    expect(await endOffset('hostile')).toBe(0n);
  });

  it('refuses gzip and zstd batches that would inflate to 1 GiB, with the broker\'s memory bounded', async () => {
    const gzipBomb = await compressZeros(createGzip({ level: 9 }), 1024 * MiB);
    const zstdBomb = await compressZeros(createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: 1 } }), 1024 * MiB);
    expect(gzipBomb.length).toBeLessThan(4 * MiB);
    expect(zstdBomb.length).toBeLessThan(4 * MiB);
    const conn = await RawKafka.open(broker.port);
    conn.send(produceRequest(batchAround(gzipBomb, { count: 1, attributes: 1 })), produceRequest(batchAround(zstdBomb, { count: 1, attributes: 4 })));
    const frames = await conn.waitFrames(2, 30_000);
    conn.close();
    expect(frames.map(produceError).every((c) => c === CORRUPT_MESSAGE || c === INVALID_RECORD)).toBe(true);
    expect(await endOffset('hostile')).toBe(0n);
    expect((await broker.memory()).peak).toBeLessThan(512 * MiB);
  });

  it('closes a connection on a hostile frame without allocating, and keeps serving the others', async () => {
    const size = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
    const frame = (body: Buffer) => Buffer.concat([size(body.length), body]);
    const header = (apiKey: number, apiVersion: number) => {
      const b = Buffer.alloc(10);
      b.writeInt16BE(apiKey, 0); b.writeInt16BE(apiVersion, 2); b.writeInt32BE(99, 4); b.writeInt16BE(-1, 8);
      return b;
    };
    const hostile: Record<string, Buffer> = {
      'size -1': size(-1),
      'size 0': size(0),
      'size 2^31-1': Buffer.concat([size(0x7fffffff), Buffer.alloc(10)]),
      'size socket.request.max.bytes + 1': Buffer.concat([size(104857601), Buffer.alloc(10)]),
      'array count 2^31-1 with a 10-byte body': frame(Buffer.concat([header(ApiKey.Metadata, 1), size(0x7fffffff), Buffer.alloc(10)])),
      'array count -2': frame(Buffer.concat([header(ApiKey.Metadata, 1), size(-2), Buffer.alloc(10)])),
      'string length past the frame': frame(Buffer.concat([header(ApiKey.Metadata, 1), size(1), Buffer.from([0x7f, 0xff]), Buffer.alloc(10)])),
      'varint longer than 5 bytes': frame(Buffer.concat([header(ApiKey.ApiVersions, 3), Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])])),
      'unknown api key': frame(header(999, 0)),
      'unsupported version': frame(header(ApiKey.Metadata, 99)),
      'a header cut short': frame(Buffer.from([0, 3, 0])),
    };
    const conns = await Promise.all(Object.keys(hostile).map(() => RawKafka.open(broker.port)));
    Object.values(hostile).forEach((bytes, i) => conns[i]!.send(bytes));
    const closed = await Promise.all(conns.map((c) => c.closedWithin(2_000)));
    expect(Object.fromEntries(Object.keys(hostile).map((k, i) => [k, closed[i]]))).toEqual(Object.fromEntries(Object.keys(hostile).map((k) => [k, true])));

    // An ApiVersions request at a version the broker does not know gets an answer, not a close.
    const probe = await RawKafka.open(broker.port);
    probe.send(frame(header(ApiKey.ApiVersions, 99)));
    const [reply] = await probe.waitFrames(1);
    expect(reply!.readInt16BE(4)).toBe(35);
    probe.close();

    // The broker is alive, answers a healthy client, and never held the hostile sizes in memory.
    expect(await admin.listTopics()).toContain('healthy');
    expect((await broker.memory()).peak).toBeLessThan(512 * MiB);
  });
});
