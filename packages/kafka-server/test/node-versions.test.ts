// ApiVersions v3/v4 with the KIP-584 features, and InitProducerId v0-5, on a real KafkaServer over
// a real LocalStore, through raw frames (each version's exact shape).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStore } from '@runnel/metadata';
import { ApiKey, ErrorCode, type RequestInputs, type SupportedApiKey } from '@runnel/protocol';
import { kafkaRequest } from '../../../test/helpers/raw-kafka.ts';
import { featureFields, initProducerIdHandler, KafkaServer, metadataHandler, nodeFeatures, METADATA_VERSION_LEVEL } from '../src/index.ts';

let dir: string;
let store: LocalStore;
let server: KafkaServer;
/** Each request on a fresh raw connection: enough to see each version's exact shape. */
const client = {
  call: <K extends SupportedApiKey>(apiKey: K, apiVersion: number, body: RequestInputs[K]) => kafkaRequest(server.address().port, apiKey, apiVersion, body),
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnel-node-versions-'));
  store = LocalStore.create({ path: join(dir, 'meta.json'), nodeId: 1, clusterId: 'c' });
  await store.start();
  server = KafkaServer.create({
    host: '127.0.0.1', port: 0,
    handlers: [
      metadataHandler({ metadata: store, autoCreate: () => false, createTopic: async () => {}, errorCode: () => ErrorCode.UNKNOWN_SERVER_ERROR }),
      initProducerIdHandler(store),
    ],
  });
  await server.start();
});

afterEach(async () => {
  await server.stop();
  await store.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('ApiVersions features (KIP-584)', () => {
  it('v3 and v4 advertise metadata.version at Kafka 4.0 and nothing the node does not serve; v2 has no features', async () => {
    for (const v of [3, 4]) {
      const r = await client.call(ApiKey.ApiVersions, v, { clientSoftwareName: 't', clientSoftwareVersion: '1' });
      expect(r.errorCode).toBe(0);
      expect(r.apiKeys).toContainEqual({ apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 4 });
      expect(r.apiKeys).toContainEqual({ apiKey: ApiKey.InitProducerId, minVersion: 0, maxVersion: 5 });
      // No ConsumerGroupHeartbeat here: no group.version; no transactions: no transaction.version.
      expect(r.supportedFeatures).toEqual([{ name: 'metadata.version', minVersion: 25, maxVersion: 25 }]);
      expect(r.finalizedFeatures).toEqual([{ name: 'metadata.version', minVersionLevel: 25, maxVersionLevel: 25 }]);
      expect(r.finalizedFeaturesEpoch).toBe(0n);
      expect(r.zkMigrationReady).toBe(false);
    }
    const v2 = await client.call(ApiKey.ApiVersions, 2, {});
    expect(v2.supportedFeatures).toEqual([]);
    expect(v2.finalizedFeaturesEpoch).toBe(-1n);
  });

  it('group.version 1 is advertised exactly when ConsumerGroupHeartbeat is served; below v4 a supported minimum of 0 is sent as 1', () => {
    expect(METADATA_VERSION_LEVEL).toBe(25);
    const classic = nodeFeatures([ApiKey.Metadata, ApiKey.JoinGroup]);
    expect(classic.supported.map((f) => f.name)).toEqual(['metadata.version']);
    const kip848 = nodeFeatures([ApiKey.Metadata, ApiKey.JoinGroup, ApiKey.ConsumerGroupHeartbeat]);
    expect(featureFields(kip848, 4)).toEqual({
      supportedFeatures: [{ name: 'metadata.version', minVersion: 25, maxVersion: 25 }, { name: 'group.version', minVersion: 0, maxVersion: 1 }],
      finalizedFeaturesEpoch: 0n,
      finalizedFeatures: [{ name: 'metadata.version', minVersionLevel: 25, maxVersionLevel: 25 }, { name: 'group.version', minVersionLevel: 1, maxVersionLevel: 1 }],
      zkMigrationReady: false,
    });
    expect(featureFields(kip848, 3).supportedFeatures).toContainEqual({ name: 'group.version', minVersion: 1, maxVersion: 1 });
  });
});

describe('InitProducerId v0-5', () => {
  it('hands a fresh producer id at epoch 0 at every version, also to a producer that sends the id and epoch it has (v3+)', async () => {
    const seen = new Set<bigint>();
    for (let v = 0; v <= 5; v++) {
      const r = await client.call(ApiKey.InitProducerId, v, { transactionalId: null, transactionTimeoutMs: 60_000 });
      expect(r).toMatchObject({ errorCode: 0, producerEpoch: 0 });
      seen.add(r.producerId);
    }
    const first = [...seen][0]!;
    // KIP-360: an idempotent producer may send its current id and epoch; Kafka answers a new id
    // for a null transactional id (only a transactional id's epoch is bumped by a coordinator).
    for (const v of [3, 4, 5]) {
      const r = await client.call(ApiKey.InitProducerId, v, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: first, producerEpoch: 7 });
      expect(r).toMatchObject({ errorCode: 0, producerEpoch: 0 });
      expect(seen.has(r.producerId)).toBe(false);
      seen.add(r.producerId);
    }
    expect(seen.size).toBe(9);
  });

  it('v3+ refuses an id without an epoch, or an epoch without an id, with INVALID_REQUEST', async () => {
    for (const v of [3, 5]) {
      const noEpoch = await client.call(ApiKey.InitProducerId, v, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: 1000n, producerEpoch: -1 });
      expect(noEpoch).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST, producerId: -1n, producerEpoch: -1 });
      const noId = await client.call(ApiKey.InitProducerId, v, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: 3 });
      expect(noId.errorCode).toBe(ErrorCode.INVALID_REQUEST);
    }
  });
});
