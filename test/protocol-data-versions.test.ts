// The data APIs at Kafka 4's versions (issue 13): Fetch 12–17, Produce 8–11, ListOffsets 8–10.
// - The Java client 4.3.1 (test/java/RunnelDataVersions.java) and @platformatic/kafka 2.x produce
//   and consume through a proxy that records the versions they send: they must send the newest.
// - Raw requests for what clients reach only in faults: UNKNOWN_TOPIC_ID for an unknown topic id
//   and for a recreated topic's old one; ListOffsets −4/−5 only from the version that defines them;
//   a refused record named in `record_errors`.
// - A cluster of two brokers whose partition leader moved (epoch 0 → 1): a fetch whose
//   last_fetched_epoch the log contradicts is answered with the diverging epoch (raw requests:
//   Kafka's followers send that field, while the Java consumer and platformatic send −1 and the
//   Java consumer finds truncation with OffsetsForLeaderEpoch instead); a node that is
//   not the leader, or a stale leader epoch, names the current leader and (v16, Produce v10) its
//   address.
import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Consumer, MessagesStreamModes, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { crc32c } from '@runnel/native';
import { ApiKey, ErrorCode, decodeRecordBatches, encodeRecordBatch } from '@runnel/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type ClusterNode, type TestCluster } from './helpers/cluster.ts';
import { freePort } from './helpers/ports.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { redisCli } from './helpers/redis.ts';
import { until } from './helpers/until.ts';
import { versionSpy, type VersionSpy } from './helpers/version-spy.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const javaVersion = process.env.RUNNEL_JAVA_CLIENT_VERSION ?? '4.3.1';

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** test/java/RunnelDataVersions.java, compiled once (kafka-clients from test/java/fetch-clients.sh). */
let compiled: Promise<{ classpath: string; classes: string }> | undefined;

function javaClient(): Promise<{ classpath: string; classes: string }> {
  compiled ??= (async () => {
    const missing = ['java', 'javac', 'mvn'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
    if (missing.length > 0) throw new Error(`this test needs ${missing.join(', ')}: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)`);
    const fetched = await run(join(import.meta.dirname, 'java/fetch-clients.sh'), [javaVersion], 600_000);
    if (fetched.code !== 0) throw new Error(`fetch-clients.sh ${javaVersion} failed (${fetched.code}):\n${fetched.stderr}`);
    const classpath = fetched.stdout.trim().split('\n').at(-1)!;
    const classes = await mkdtemp(join(tmpdir(), 'runnel-data-versions-'));
    const javac = await run('javac', ['-nowarn', '-d', classes, '-cp', classpath, join(import.meta.dirname, 'java/RunnelDataVersions.java')], 120_000);
    if (javac.code !== 0) throw new Error(`javac RunnelDataVersions.java failed:\n${javac.stderr}`);
    return { classpath, classes };
  })();
  return compiled;
}

/** Runs RunnelDataVersions and returns its stdout lines; a non-zero exit fails with its output. */
async function runJava(...args: string[]): Promise<string[]> {
  const { classpath, classes } = await javaClient();
  // C1 only and the serial collector: a short-lived client JVM then starts on about half the CPU.
  const r = await run('java', ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', `${classes}:${classpath}`, 'RunnelDataVersions', ...args], 75_000);
  if (r.code !== 0) throw new Error(`RunnelDataVersions ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n--- stderr (tail) ---\n${r.stderr.slice(-3000)}`);
  return r.stdout.split('\n').filter(Boolean);
}

afterAll(async () => {
  const done = await compiled?.catch(() => undefined);
  if (done) await rm(done.classes, { recursive: true, force: true });
});

const versionsOf = (spy: VersionSpy) => ({
  Produce: spy.seen.get(ApiKey.Produce), Fetch: spy.seen.get(ApiKey.Fetch), ListOffsets: spy.seen.get(ApiKey.ListOffsets),
});

/** A Metadata v12 lookup: the topic's id (as clients see it). */
async function topicIdOf(port: number, topic: string): Promise<string> {
  const md = await kafkaRequest(port, ApiKey.Metadata, 12, { topics: [{ name: topic }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
  const t = md.topics[0]!;
  expect(t.errorCode).toBe(ErrorCode.NONE);
  return t.topicId;
}

function kafkajs(bootstrap: string): Kafka {
  return new Kafka({ clientId: 'data-versions', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100 } });
}

const fetchInput = (topics: { topic?: string; topicId?: string; partitions: { partition: number; fetchOffset: bigint; lastFetchedEpoch?: number; currentLeaderEpoch?: number }[] }[]) => ({
  replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
  topics: topics.map((t) => ({ ...t, partitions: t.partitions.map((p) => ({ partitionMaxBytes: 1 << 20, ...p })) })), forgottenTopicsData: [], rackId: '',
});

const produceInput = (topic: string, partition: number, records: Buffer, acks = -1) => ({
  transactionalId: null, acks, timeoutMs: 10_000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
});

const batchOf = (...values: string[]) => encodeRecordBatch({ records: values.map((v) => ({ key: Buffer.from(v), value: Buffer.from(v) })) });

/** The values of the records in a fetch answer. */
const valuesIn = (records: Buffer | null) => (records ? decodeRecordBatches(records).flatMap((b) => b.records.map((r) => r.value!.toString())) : []);

describe('runnel start', () => {
  let broker: TestBroker;
  let spy: VersionSpy;

  beforeAll(async () => {
    spy = await versionSpy();
    // The broker binds a free port and advertises the proxy: clients come back through it.
    spy.target = await freePort();
    broker = await startBroker({ set: [`listeners=PLAINTEXT://127.0.0.1:${spy.target}`, `advertised.listeners=PLAINTEXT://127.0.0.1:${spy.port}`] });
  }, 60_000);

  afterAll(async () => {
    await broker?.cleanup();
    await spy?.close();
  });

  it('the Java client 4.3.1 sends Produce 11, Fetch 17 and ListOffsets 10: records come back in order, and Admin listOffsets answers earliestLocal (−4) and latestTiered (−5)', async () => {
    await javaClient();
    spy.seen.clear();
    expect(await runJava(broker.bootstrap, 'java-data')).toEqual([
      'OK produced 40 partitions={0=20, 1=20}',
      'OK consumed 40 in order p0=20 p1=20',
      // Partition 1 holds records 1, 3, ..., 39 at offsets 0..19, timestamps T0 + i.
      'OK listOffsets earliest=0 latest=20 max=19@39 earliestLocal=0 latestTiered=-1 time=10@21',
      'DONE',
    ]);
    expect(versionsOf(spy)).toEqual({ Produce: 11, Fetch: 17, ListOffsets: 10 });
  }, 240_000);

  it('@platformatic/kafka sends Produce 11 and Fetch 17 (topic ids) and reads every record back', async () => {
    const admin = kafkajs(broker.bootstrap).admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: 'plt-data', numPartitions: 2 }] });
    await admin.disconnect();
    spy.seen.clear();
    const producer = new Producer({ clientId: 'plt-data', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers });
    const sent = Array.from({ length: 50 }, (_, i) => ({ topic: 'plt-data', key: `k${i}`, value: `v${i}`, partition: i % 2 }));
    await producer.send({ messages: sent });
    await producer.close();
    const consumer = new Consumer({ groupId: 'plt-data', clientId: 'plt-data', bootstrapBrokers: [broker.bootstrap], deserializers: stringDeserializers, maxWaitTime: 100 });
    const stream = await consumer.consume({ topics: ['plt-data'], mode: MessagesStreamModes.EARLIEST });
    const got: string[] = [];
    const deadline = setTimeout(() => stream.destroy(new Error(`consumed ${got.length} of 50`)), 30_000);
    try {
      for await (const m of stream) {
        got.push(`${m.partition}:${m.offset}:${m.key}=${m.value}`);
        if (got.length >= sent.length) break;
      }
    } finally {
      clearTimeout(deadline);
      await stream.close();
      await consumer.close();
    }
    expect(got.sort()).toEqual(sent.map((m, i) => `${m.partition}:${Math.floor(i / 2)}:${m.key}=${m.value}`).sort());
    const v = versionsOf(spy);
    expect({ Produce: v.Produce, Fetch: v.Fetch }).toEqual({ Produce: 11, Fetch: 17 });
  }, 60_000);

  it('Fetch v13+ by topic id: the topic\'s records; an unknown id, and a deleted and recreated topic\'s old id, are UNKNOWN_TOPIC_ID', async () => {
    const admin = kafkajs(broker.bootstrap).admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: 'by-id', numPartitions: 1 }] });
      const produced = await kafkaRequest(broker.port, ApiKey.Produce, 11, produceInput('by-id', 0, batchOf('a', 'b')));
      expect(produced.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
      const oldId = await topicIdOf(broker.port, 'by-id');
      const unknown = randomUUID();

      for (const v of [13, 15, 17]) {
        const res = await kafkaRequest(broker.port, ApiKey.Fetch, v, fetchInput([{ topicId: oldId, partitions: [{ partition: 0, fetchOffset: 0n }] }, { topicId: unknown, partitions: [{ partition: 0, fetchOffset: 0n }] }]));
        expect(res.responses.map((t) => t.topicId), `v${v}`).toEqual([oldId, unknown]);
        expect(res.responses[0]!.partitions[0], `v${v}`).toMatchObject({ errorCode: ErrorCode.NONE, highWatermark: 2n });
        expect(valuesIn(res.responses[0]!.partitions[0]!.records)).toEqual(['a', 'b']);
        expect(res.responses[1]!.partitions[0], `v${v}`).toMatchObject({ errorCode: ErrorCode.UNKNOWN_TOPIC_ID, highWatermark: -1n });
      }
      // v12 still names topics.
      const v12 = await kafkaRequest(broker.port, ApiKey.Fetch, 12, fetchInput([{ topic: 'by-id', partitions: [{ partition: 0, fetchOffset: 0n }] }]));
      expect(v12.responses[0]!.topic).toBe('by-id');
      expect(valuesIn(v12.responses[0]!.partitions[0]!.records)).toEqual(['a', 'b']);

      await admin.deleteTopics({ topics: ['by-id'] });
      await until('by-id deleted', async () => !(await admin.listTopics()).includes('by-id'), 10_000);
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: 'by-id', numPartitions: 1 }] });
      const newId = await topicIdOf(broker.port, 'by-id');
      expect(newId).not.toBe(oldId);
      const res = await kafkaRequest(broker.port, ApiKey.Fetch, 17, fetchInput([{ topicId: oldId, partitions: [{ partition: 0, fetchOffset: 0n }] }, { topicId: newId, partitions: [{ partition: 0, fetchOffset: 0n }] }]));
      expect(res.responses.map((t) => [t.topicId, t.partitions[0]!.errorCode, t.partitions[0]!.highWatermark])).toEqual([
        [oldId, ErrorCode.UNKNOWN_TOPIC_ID, -1n],
        [newId, ErrorCode.NONE, 0n],
      ]);
    } finally {
      await admin.disconnect();
    }
  }, 60_000);

  it('ListOffsets −4 from v8 and −5 from v9 (UNSUPPORTED_VERSION before)', async () => {
    await kafkaRequest(broker.port, ApiKey.Metadata, 12, { topics: [{ name: 'lo-data' }], allowAutoTopicCreation: true, includeTopicAuthorizedOperations: false });
    await until('lo-data has a leader', async () => (await kafkaRequest(broker.port, ApiKey.Metadata, 12, { topics: [{ name: 'lo-data' }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false })).topics[0]!.partitions.length > 0, 10_000);
    const list = async (v: number, timestamp: bigint) => {
      const res = await kafkaRequest(broker.port, ApiKey.ListOffsets, v, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'lo-data', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }] }], timeoutMs: 1000 });
      const p = res.topics[0]!.partitions[0]!;
      return { errorCode: p.errorCode, offset: p.offset, timestamp: p.timestamp, leaderEpoch: p.leaderEpoch };
    };
    // An empty log: its leader's epoch starts at 0 (as Kafka's makeLeader records it), for −2 and −4 alike.
    expect(await list(8, -2n)).toEqual({ errorCode: ErrorCode.NONE, offset: 0n, timestamp: -1n, leaderEpoch: 0 });
    expect(await list(8, -4n)).toEqual({ errorCode: ErrorCode.NONE, offset: 0n, timestamp: -1n, leaderEpoch: 0 });
    await kafkaRequest(broker.port, ApiKey.Produce, 9, produceInput('lo-data', 0, batchOf('x', 'y', 'z')));
    expect(await list(7, -4n)).toMatchObject({ errorCode: ErrorCode.UNSUPPORTED_VERSION, offset: -1n });
    expect(await list(8, -4n)).toEqual({ errorCode: ErrorCode.NONE, offset: 0n, timestamp: -1n, leaderEpoch: 0 });
    expect(await list(10, -2n)).toEqual({ errorCode: ErrorCode.NONE, offset: 0n, timestamp: -1n, leaderEpoch: 0 });
    expect(await list(8, -5n)).toMatchObject({ errorCode: ErrorCode.UNSUPPORTED_VERSION, offset: -1n });
    // Without tiered storage Kafka answers −5 with offset −1 and epoch −1.
    expect(await list(9, -5n)).toEqual({ errorCode: ErrorCode.NONE, offset: -1n, timestamp: -1n, leaderEpoch: -1 });
    expect(await list(10, -1n)).toEqual({ errorCode: ErrorCode.NONE, offset: 3n, timestamp: -1n, leaderEpoch: 0 });
    expect(await list(10, -6n)).toMatchObject({ errorCode: ErrorCode.UNSUPPORTED_VERSION });
  }, 30_000);

  it('Produce v8+: a batch refused for a bad record says why and names the record (KIP-467); v7 has no such fields', async () => {
    await kafkaRequest(broker.port, ApiKey.Metadata, 12, { topics: [{ name: 'bad-record' }], allowAutoTopicCreation: true, includeTopicAuthorizedOperations: false });
    // Three records of 11 bytes each after the 61-byte header; record 1's offset delta (zigzag 1 = 2)
    // becomes 5, and the CRC is recomputed so only the record check can refuse it.
    const batch = encodeRecordBatch({ timestamp: 1000, records: ['k0', 'k1', 'k2'].map((k) => ({ key: Buffer.from(k), value: Buffer.from('v') })) });
    expect(batch[61 + 10 + 3]).toBe(2);
    batch[61 + 10 + 3] = 10;
    batch.writeUInt32BE(crc32c(batch.subarray(21)) >>> 0, 17);
    await until('bad-record has a leader', async () => {
      const r = await kafkaRequest(broker.port, ApiKey.Produce, 11, produceInput('bad-record', 0, batchOf('ok')));
      return r.responses[0]!.partitionResponses[0]!.errorCode === ErrorCode.NONE;
    }, 10_000);
    for (const v of [8, 9, 11]) {
      const res = await kafkaRequest(broker.port, ApiKey.Produce, v, produceInput('bad-record', 0, batch));
      const p = res.responses[0]!.partitionResponses[0]!;
      expect(p.errorCode, `v${v}`).toBe(ErrorCode.CORRUPT_MESSAGE);
      expect(p.errorMessage, `v${v}`).toMatch(/record 1 at byte 10 of the records: offsetDelta 5/);
      expect(p.recordErrors, `v${v}`).toEqual([{ batchIndex: 1, batchIndexErrorMessage: p.errorMessage }]);
    }
    const v7 = await kafkaRequest(broker.port, ApiKey.Produce, 7, produceInput('bad-record', 0, batch));
    expect(v7.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: ErrorCode.CORRUPT_MESSAGE, errorMessage: null, recordErrors: [] });
    // Nothing of the refused batch was written.
    const fetched = await kafkaRequest(broker.port, ApiKey.Fetch, 12, fetchInput([{ topic: 'bad-record', partitions: [{ partition: 0, fetchOffset: 0n }] }]));
    expect(valuesIn(fetched.responses[0]!.partitions[0]!.records)).toEqual(['ok']);
  }, 30_000);
});

describe('a cluster of two brokers whose partition leader moved', () => {
  let cluster: TestCluster;
  let oldLeader: ClusterNode;
  let newLeader: ClusterNode;
  const topic = 'moved';

  const stateOf = async () => (JSON.parse(await redisCli(cluster.redis.socketPath, 'HGET', 'runnel:topics', topic)) as { partitions: { leader: number; leaderEpoch: number; isr: number[] }[] }).partitions[0]!;

  beforeAll(async () => {
    // No automatic rebalance: the leader stays where the failover put it.
    cluster = await startCluster({ brokers: 2, coordinators: 0, set: ['auto.leader.rebalance.enable=false'] });
    const admin = kafkajs(cluster.bootstrap.split(',')[0]!).admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 2 }] });
    await admin.disconnect();
    const first = await until('both replicas in sync', async () => {
      const s = await stateOf().catch(() => undefined);
      return s && s.leader >= 0 && s.isr.length === 2 && s;
    }, 20_000);
    oldLeader = cluster.brokers.find((n) => n.nodeId === first.leader)!;
    newLeader = cluster.brokers.find((n) => n.nodeId !== first.leader)!;
    // Offsets 0–2 in epoch 0 on both replicas (acks=all), then the leader stops: the other takes
    // over in epoch 1 and appends 3–5.
    const acked = await kafkaRequest(oldLeader.port, ApiKey.Produce, 11, produceInput(topic, 0, batchOf('a0', 'a1', 'a2')));
    expect(acked.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    await oldLeader.process.stop();
    await until('the other broker leads in epoch 1', async () => {
      const s = await stateOf();
      return s.leader === newLeader.nodeId && s.leaderEpoch === 1;
    }, 20_000);
    await until('the new leader takes appends', async () => {
      const r = await kafkaRequest(newLeader.port, ApiKey.Produce, 11, produceInput(topic, 0, batchOf('b3', 'b4', 'b5'), 1));
      return r.responses[0]!.partitionResponses[0]!.errorCode === ErrorCode.NONE;
    }, 20_000);
    oldLeader = await cluster.restart(oldLeader);
  }, 120_000);

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('Fetch v12+: a last_fetched_epoch the leader\'s history contradicts is answered with the diverging epoch and no records (Partition.fetchRecords)', async () => {
    const fetchAt = async (v: number, fetchOffset: bigint, lastFetchedEpoch: number) => {
      const res = await kafkaRequest(newLeader.port, ApiKey.Fetch, v, fetchInput([{ topic, partitions: [{ partition: 0, fetchOffset, lastFetchedEpoch }] }]));
      const p = res.responses[0]!.partitions[0]!;
      return { errorCode: p.errorCode, highWatermark: p.highWatermark, divergingEpoch: p.divergingEpoch, values: valuesIn(p.records) };
    };
    const none = { epoch: -1, endOffset: -1n };
    // Epoch 0 ended at offset 3: a fetcher that read epoch-0 records up to offset 5 must truncate to 3.
    expect(await fetchAt(12, 5n, 0)).toEqual({ errorCode: ErrorCode.NONE, highWatermark: 6n, divergingEpoch: { epoch: 0, endOffset: 3n }, values: [] });
    expect(await fetchAt(12, 3n, 0)).toEqual({ errorCode: ErrorCode.NONE, highWatermark: 6n, divergingEpoch: none, values: ['b3', 'b4', 'b5'] });
    // Whole batches, as stored: the one holding offset 5 starts at 3.
    expect(await fetchAt(12, 5n, 1)).toEqual({ errorCode: ErrorCode.NONE, highWatermark: 6n, divergingEpoch: none, values: ['b3', 'b4', 'b5'] });
    // An epoch newer than any the leader has cannot be placed.
    expect(await fetchAt(12, 5n, 7)).toMatchObject({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, values: [] });
    // Before v12 there is no last_fetched_epoch: the records are served.
    expect(await fetchAt(11, 3n, 0)).toMatchObject({ errorCode: ErrorCode.NONE, values: ['b3', 'b4', 'b5'] });
  });

  it('ListOffsets −2 and −4 answer the epoch of the batch at the log start (Kafka\'s epochForOffset), −1 the leader\'s', async () => {
    const list = async (timestamp: bigint) => {
      const res = await kafkaRequest(newLeader.port, ApiKey.ListOffsets, 10, { replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }] }], timeoutMs: 1000 });
      const p = res.topics[0]!.partitions[0]!;
      return [p.errorCode, p.offset, p.leaderEpoch];
    };
    expect(await list(-2n)).toEqual([ErrorCode.NONE, 0n, 0]);
    expect(await list(-4n)).toEqual([ErrorCode.NONE, 0n, 0]);
    expect(await list(-1n)).toEqual([ErrorCode.NONE, 6n, 1]);
  });

  it('NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH name the current leader; Fetch v16+ and Produce v10+ add its address (KIP-951)', async () => {
    const leader = { leaderId: newLeader.nodeId, leaderEpoch: 1 };
    const endpoint = [{ nodeId: newLeader.nodeId, host: '127.0.0.1', port: newLeader.port, rack: null }];
    await until('the restarted broker is a follower again', async () => (await stateOf()).isr.includes(oldLeader.nodeId), 20_000);
    for (const v of [12, 15, 16, 17]) {
      const input = v >= 13
        ? fetchInput([{ topicId: await topicIdOf(newLeader.port, topic), partitions: [{ partition: 0, fetchOffset: 0n }] }])
        : fetchInput([{ topic, partitions: [{ partition: 0, fetchOffset: 0n }] }]);
      const res = await kafkaRequest(oldLeader.port, ApiKey.Fetch, v, input);
      expect(res.responses[0]!.partitions[0], `v${v}`).toMatchObject({ errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, currentLeader: leader });
      expect(res.nodeEndpoints, `v${v}`).toEqual(v >= 16 ? endpoint : []);
    }
    const fenced = await kafkaRequest(newLeader.port, ApiKey.Fetch, 17, fetchInput([{ topicId: await topicIdOf(newLeader.port, topic), partitions: [{ partition: 0, fetchOffset: 0n, currentLeaderEpoch: 0 }] }]));
    expect(fenced.responses[0]!.partitions[0]).toMatchObject({ errorCode: ErrorCode.FENCED_LEADER_EPOCH, currentLeader: leader });
    expect(fenced.nodeEndpoints).toEqual(endpoint);

    for (const v of [9, 10, 11]) {
      const res = await kafkaRequest(oldLeader.port, ApiKey.Produce, v, produceInput(topic, 0, batchOf('nope')));
      const p = res.responses[0]!.partitionResponses[0]!;
      expect(p.errorCode, `v${v}`).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
      expect(p.currentLeader, `v${v}`).toEqual(v >= 10 ? leader : { leaderId: -1, leaderEpoch: -1 });
      expect(res.nodeEndpoints, `v${v}`).toEqual(v >= 10 ? endpoint : []);
    }
  }, 60_000);
});
