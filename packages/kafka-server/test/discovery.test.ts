// The discovery handlers (Metadata, FindCoordinator) on a real KafkaServer over a real LocalStore:
// raw frames for every version's shape, kafkajs for a real client's view.
import { Buffer } from 'node:buffer';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStore, MetadataError, type MetadataSnapshot, type NodeRole } from '@runnel/metadata';
import { ApiKey, decodeResponse, encodeRequest, ErrorCode, type RequestInputs, type SupportedApiKey } from '@runnel/protocol';
import { CoordinatorKeyType, findCoordinatorHandler, KafkaServer, kafkaControllerId, metadataHandler, type CoordinatorLocator } from '../src/index.ts';

/** One request at a time over a raw socket: enough to see each version's exact shape. */
class RawClient {
  readonly #socket: Socket;
  #buf = Buffer.alloc(0);
  #waiting: ((frame: Buffer) => void) | undefined;
  #correlationId = 0;

  constructor(port: number) {
    this.#socket = connect(port, '127.0.0.1');
    this.#socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      if (this.#buf.length >= 4 && this.#buf.length >= 4 + this.#buf.readInt32BE(0)) {
        const n = this.#buf.readInt32BE(0);
        const frame = this.#buf.subarray(4, 4 + n);
        this.#buf = this.#buf.subarray(4 + n);
        this.#waiting?.(frame);
      }
    });
  }

  async call<K extends SupportedApiKey>(apiKey: K, apiVersion: number, body: RequestInputs[K]) {
    const correlationId = ++this.#correlationId;
    const frame = new Promise<Buffer>((resolve) => { this.#waiting = resolve; });
    this.#socket.write(encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'discovery-test' } as never, body as never));
    const decoded = decodeResponse(apiKey, apiVersion, await frame);
    expect(decoded.correlationId).toBe(correlationId);
    return decoded.body;
  }

  close(): void { this.#socket.destroy(); }
}

let dir: string;
let store: LocalStore;
let server: KafkaServer | undefined;
let client: RawClient | undefined;
let autoCreate = true;
let created: string[] = [];
let failCreate: Error | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnel-discovery-'));
  store = LocalStore.create({ path: join(dir, 'meta.json'), nodeId: 1, clusterId: 'discovery-cluster' });
  await store.start();
  autoCreate = true;
  created = [];
  failCreate = undefined;
});

afterEach(async () => {
  client?.close();
  await server?.stop();
  await store.stop();
  await rm(dir, { recursive: true, force: true });
  server = undefined;
  client = undefined;
});

/** Coordinates: group keys starting with 'x' have no coordinator; everything else is on node 1. */
const locate: CoordinatorLocator = (key, keyType) => {
  if (keyType === CoordinatorKeyType.TRANSACTION) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: 'no transactions' };
  if (key.startsWith('x')) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: `nobody owns ${key}` };
  return { nodeId: 1, host: 'coord.example', port: 19092 };
};

async function start(): Promise<RawClient> {
  server = KafkaServer.create({
    host: '127.0.0.1',
    port: 0,
    handlers: [
      metadataHandler({
        metadata: store,
        autoCreate: () => autoCreate,
        createTopic: async (name) => {
          created.push(name);
          if (failCreate) throw failCreate;
          await store.createTopic({ name, partitions: 2, replicationFactor: 1 });
        },
        errorCode: (err) => (err instanceof MetadataError && err.code === 'TOPIC_ALREADY_EXISTS' ? ErrorCode.TOPIC_ALREADY_EXISTS : ErrorCode.POLICY_VIOLATION),
      }),
      findCoordinatorHandler(locate),
    ],
  });
  await server.start();
  await store.registerBroker({ nodeId: 1, host: '127.0.0.1', port: server.address().port, rack: null });
  client = new RawClient(server.address().port);
  return client;
}

describe('metadataHandler', () => {
  it('lists every topic for v0 with an empty list and for v1+ with null, with brokers, cluster and controller', async () => {
    await store.createTopic({ name: 'a', partitions: 2, replicationFactor: 1 });
    await store.createTopic({ name: 'b', partitions: 1, replicationFactor: 1 });
    const c = await start();
    const port = server!.address().port;
    const v0 = await c.call(ApiKey.Metadata, 0, { topics: [] });
    expect(v0.topics.map((t) => t.name).sort()).toEqual(['a', 'b']);
    expect(v0.brokers).toMatchObject([{ nodeId: 1, host: '127.0.0.1', port }]);
    const v9 = await c.call(ApiKey.Metadata, 9, { topics: null, allowAutoTopicCreation: false });
    expect(v9.clusterId).toBe('discovery-cluster');
    expect(v9.controllerId).toBe(1);
    const a = v9.topics.find((t) => t.name === 'a')!;
    expect(a).toMatchObject({ errorCode: 0, isInternal: false });
    expect(a.partitions.map((p) => [p.partitionIndex, p.leaderId, p.errorCode])).toEqual([[0, 1, 0], [1, 1, 0]]);
    // v1+ with an empty list asks for no topics at all.
    expect((await c.call(ApiKey.Metadata, 1, { topics: [] })).topics).toEqual([]);
    expect(created).toEqual([]);
  });

  it('v10+ answers topic ids; v12 finds a topic asked for by id alone, UNKNOWN_TOPIC_ID for an unknown one', async () => {
    await store.createTopic({ name: 'a', partitions: 1, replicationFactor: 1 });
    const c = await start();
    const hex = store.snapshot().topics.get('a')!.topicId;
    const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    const v10 = await c.call(ApiKey.Metadata, 10, { topics: [{ name: 'a', topicId: '00000000-0000-0000-0000-000000000000' }], allowAutoTopicCreation: false });
    expect(v10.topics).toMatchObject([{ name: 'a', topicId: uuid, errorCode: 0 }]);
    const none = '0123456789abcdef0123456789abcdef';
    const v12 = await c.call(ApiKey.Metadata, 12, { topics: [{ name: null, topicId: uuid }, { name: null, topicId: none }], allowAutoTopicCreation: false });
    expect(v12.topics).toMatchObject([{ name: 'a', topicId: uuid, errorCode: 0, partitions: [{ leaderId: 1 }] }, { name: null, errorCode: 100, partitions: [] }]);
  });

  it('creates an unknown topic before answering when the client and the config allow it', async () => {
    const c = await start();
    const v9 = await c.call(ApiKey.Metadata, 9, { topics: [{ name: 'fresh' }], allowAutoTopicCreation: true });
    expect(created).toEqual(['fresh']);
    expect(v9.topics).toMatchObject([{ name: 'fresh', errorCode: 0, partitions: [{ leaderId: 1 }, { leaderId: 1 }] }]);
    expect(store.snapshot().topics.has('fresh')).toBe(true);
    // v0–3 have no flag: creation is always asked for.
    expect((await c.call(ApiKey.Metadata, 3, { topics: [{ name: 'old-client' }] })).topics[0]!.errorCode).toBe(0);
    expect(created).toEqual(['fresh', 'old-client']);
  });

  it('answers UNKNOWN_TOPIC_OR_PARTITION when the client (v4+) or the config forbids creation', async () => {
    const c = await start();
    const denied = await c.call(ApiKey.Metadata, 4, { topics: [{ name: 'nope' }], allowAutoTopicCreation: false });
    expect(denied.topics).toEqual([expect.objectContaining({ name: 'nope', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partitions: [] })]);
    autoCreate = false;
    const off = await c.call(ApiKey.Metadata, 9, { topics: [{ name: 'nope' }], allowAutoTopicCreation: true });
    expect(off.topics[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    expect(created).toEqual([]);
  });

  it('refuses an invalid name without trying to create it', async () => {
    const c = await start();
    const r = await c.call(ApiKey.Metadata, 9, { topics: [{ name: 'bad/name' }, { name: '..' }], allowAutoTopicCreation: true });
    expect(r.topics.map((t) => t.errorCode)).toEqual([ErrorCode.INVALID_TOPIC_EXCEPTION, ErrorCode.INVALID_TOPIC_EXCEPTION]);
    expect(created).toEqual([]);
  });

  it('answers with the topic when another request created it first, and with the mapped code otherwise', async () => {
    const c = await start();
    await store.createTopic({ name: 'raced', partitions: 1, replicationFactor: 1 });
    // The snapshot already has it: no creation at all.
    expect((await c.call(ApiKey.Metadata, 9, { topics: [{ name: 'raced' }], allowAutoTopicCreation: true })).topics[0]!.errorCode).toBe(0);
    expect(created).toEqual([]);
    failCreate = new MetadataError('INVALID_PARTITIONS', 'no');
    const failed = await c.call(ApiKey.Metadata, 9, { topics: [{ name: 'broken' }], allowAutoTopicCreation: true });
    expect(failed.topics[0]!.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
    // TOPIC_ALREADY_EXISTS from the creator, yet the topic is not there: LEADER_NOT_AVAILABLE (retry).
    failCreate = new MetadataError('TOPIC_ALREADY_EXISTS', 'exists');
    const ghost = await c.call(ApiKey.Metadata, 9, { topics: [{ name: 'ghost' }], allowAutoTopicCreation: true });
    expect(ghost.topics[0]!.errorCode).toBe(ErrorCode.LEADER_NOT_AVAILABLE);
  });

  it('serves kafkajs', async () => {
    await start();
    const kafka = new Kafka({ brokers: [`127.0.0.1:${server!.address().port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await store.createTopic({ name: 'seen', partitions: 3, replicationFactor: 1 });
      const { topics } = await admin.fetchTopicMetadata({ topics: ['seen'] });
      expect(topics[0]!.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);
      expect(await admin.listTopics()).toEqual(['seen']);
    } finally {
      await admin.disconnect();
    }
  });
});

describe('findCoordinatorHandler', () => {
  it('answers one key in v0–3 with the version shapes', async () => {
    const c = await start();
    expect(await c.call(ApiKey.FindCoordinator, 0, { key: 'g' })).toMatchObject({ errorCode: 0, nodeId: 1, host: 'coord.example', port: 19092 });
    for (const v of [1, 2, 3]) {
      expect(await c.call(ApiKey.FindCoordinator, v, { key: 'g', keyType: CoordinatorKeyType.GROUP }))
        .toMatchObject({ throttleTimeMs: 0, errorCode: 0, errorMessage: null, nodeId: 1, host: 'coord.example', port: 19092 });
    }
    expect(await c.call(ApiKey.FindCoordinator, 3, { key: 'xg', keyType: CoordinatorKeyType.GROUP }))
      .toMatchObject({ throttleTimeMs: 0, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: 'nobody owns xg', nodeId: -1, host: '', port: -1 });
    expect((await c.call(ApiKey.FindCoordinator, 0, { key: 'xg' })).errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect((await c.call(ApiKey.FindCoordinator, 1, { key: 'tx', keyType: CoordinatorKeyType.TRANSACTION })).errorMessage).toBe('no transactions');
  });

  it('answers every key of a v4 batch on its own', async () => {
    const c = await start();
    const r = await c.call(ApiKey.FindCoordinator, 4, { keyType: CoordinatorKeyType.GROUP, coordinatorKeys: ['a', 'xb', 'c'] });
    expect(r).toMatchObject({ throttleTimeMs: 0 });
    expect(r.coordinators).toEqual([
      { key: 'a', nodeId: 1, host: 'coord.example', port: 19092, errorCode: 0, errorMessage: null },
      { key: 'xb', nodeId: -1, host: '', port: -1, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: 'nobody owns xb' },
      { key: 'c', nodeId: 1, host: 'coord.example', port: 19092, errorCode: 0, errorMessage: null },
    ]);
    const tx = await c.call(ApiKey.FindCoordinator, 4, { keyType: CoordinatorKeyType.TRANSACTION, coordinatorKeys: ['t'] });
    expect(tx.coordinators).toEqual([expect.objectContaining({ key: 't', errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, nodeId: -1 })]);
    expect((await c.call(ApiKey.FindCoordinator, 4, { keyType: 0, coordinatorKeys: [] })).coordinators).toEqual([]);
  });
});

describe('kafkaControllerId', () => {
  const snap = (controllerId: number, nodes: [number, NodeRole[]][]): MetadataSnapshot => ({
    clusterId: 'c', controllerId, epoch: 1, topics: new Map(), coordinators: new Map(), controllerRpc: null,
    brokers: new Map(nodes.map(([nodeId, roles]) => [nodeId, { nodeId, host: 'h', port: 1, rack: null, brokerEpoch: 1, roles, rpc: null }])),
  });

  it('is the metadata controller when it is a live broker, else the lowest live broker, else -1', () => {
    expect(kafkaControllerId(snap(1, [[1, ['broker']]]))).toBe(1);
    expect(kafkaControllerId(snap(100, [[7, ['broker']], [3, ['broker']], [2, ['coordinator']]]))).toBe(3);
    expect(kafkaControllerId(snap(2, [[2, ['coordinator']], [5, ['broker']]]))).toBe(5);
    expect(kafkaControllerId(snap(100, [[2, ['coordinator']]]))).toBe(-1);
  });
});
