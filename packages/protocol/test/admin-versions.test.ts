// The admin API versions of Kafka 4 through the codec, with the values each version adds: Metadata 13's
// top-level error code, DescribeCluster 1-2, the new DescribeTopicPartitions (75) with its nullable
// cursor, CreateTopics 5/7, DeleteTopics 6, DescribeConfigs 3-4, DescribeLogDirs 3-5,
// AlterPartitionReassignments 1, CreatePartitions 3, DeleteRecords 2 (codec.test.ts checks random
// round trips of every table; these pin the fields and bytes).
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { ApiKey, decodeRequest, decodeResponse, encodeRequest, encodeResponse, schemaVersions } from '../src/index.ts';

const header = (apiKey: number, apiVersion: number) => ({ apiKey, apiVersion, correlationId: 7, clientId: 'c' });
const ID = '0f5d3318-2bba-af35-6aa9-0a4f193fe7ff';

/** Encodes a request and decodes it back: the body the broker sees. */
function request(apiKey: number, version: number, body: object): Record<string, unknown> {
  const frame = encodeRequest(header(apiKey, version), body);
  return decodeRequest(frame.subarray(4)).body as Record<string, unknown>;
}

/** Encodes a response and decodes it back (the frame after the size prefix). */
function response(apiKey: number, version: number, body: object): { frame: Buffer; body: Record<string, unknown> } {
  const frame = encodeResponse(apiKey, version, 7, body).subarray(4);
  return { frame, body: decodeResponse(apiKey, version, frame).body as Record<string, unknown> };
}

describe('admin API versions of Kafka 4', () => {
  it('has the version ranges Kafka 4.x defines', () => {
    expect(schemaVersions(ApiKey.Metadata)).toEqual([0, 13]);
    expect(schemaVersions(ApiKey.DescribeCluster)).toEqual([0, 2]);
    expect(schemaVersions(ApiKey.DescribeTopicPartitions)).toEqual([0, 0]);
    expect(schemaVersions(ApiKey.CreateTopics)).toEqual([0, 7]);
    expect(schemaVersions(ApiKey.DeleteTopics)).toEqual([0, 6]);
    expect(schemaVersions(ApiKey.DescribeConfigs)).toEqual([0, 4]);
    expect(schemaVersions(ApiKey.DescribeLogDirs)).toEqual([0, 5]);
    expect(schemaVersions(ApiKey.AlterPartitionReassignments)).toEqual([0, 1]);
    expect(schemaVersions(ApiKey.CreatePartitions)).toEqual([0, 3]);
    expect(schemaVersions(ApiKey.DeleteRecords)).toEqual([0, 2]);
  });

  it('Metadata v13 ends with the top-level error code; v12 has none', () => {
    const body = { throttleTimeMs: 0, brokers: [], clusterId: 'c', controllerId: 1, topics: [], errorCode: 58 };
    const v13 = response(ApiKey.Metadata, 13, body);
    expect(v13.body.errorCode).toBe(58);
    // ... controllerId int32, topics (compact: 1 = empty), errorCode int16, tagged fields (0).
    expect(v13.frame.subarray(-4).toString('hex')).toBe('01003a00');
    const v12 = response(ApiKey.Metadata, 12, body);
    expect(v12.frame.length).toBe(v13.frame.length - 2);
    expect(v12.body.errorCode).toBe(0);
    expect(request(ApiKey.Metadata, 13, { topics: [{ topicId: ID, name: null }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false }))
      .toEqual({ topics: [{ topicId: ID, name: null }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  });

  it('DescribeCluster v1 carries the endpoint type, v2 fenced brokers', () => {
    expect(request(ApiKey.DescribeCluster, 0, { includeClusterAuthorizedOperations: false })).toMatchObject({ endpointType: 1, includeFencedBrokers: false });
    expect(request(ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType: 2 })).toMatchObject({ endpointType: 2, includeFencedBrokers: false });
    expect(request(ApiKey.DescribeCluster, 2, { includeClusterAuthorizedOperations: true, endpointType: 1, includeFencedBrokers: true })).toEqual({ includeClusterAuthorizedOperations: true, endpointType: 1, includeFencedBrokers: true });
    const body = { throttleTimeMs: 0, errorCode: 114, errorMessage: 'm', endpointType: 1, clusterId: 'c', controllerId: 1, brokers: [{ brokerId: 1, host: 'h', port: 9092, rack: null, isFenced: true }] };
    expect(response(ApiKey.DescribeCluster, 2, body).body).toEqual({ ...body, clusterAuthorizedOperations: -2147483648 });
    // v1 has no isFenced: it reads back as the default.
    expect((response(ApiKey.DescribeCluster, 1, body).body.brokers as { isFenced: boolean }[])[0]!.isFenced).toBe(false);
    expect(response(ApiKey.DescribeCluster, 2, body).frame.length).toBe(response(ApiKey.DescribeCluster, 1, body).frame.length + 1);
  });

  it('DescribeTopicPartitions v0: the cursor is a nullable struct (int8 −1 null, 1 present)', () => {
    const noCursor = encodeRequest(header(ApiKey.DescribeTopicPartitions, 0), { topics: [{ name: 'a' }] });
    // ... topics [a], responsePartitionLimit 2000 (the default), cursor null, tagged fields.
    expect(noCursor.subarray(-10).toString('hex')).toBe('02' + '0261' + '00' + '000007d0' + 'ff' + '00');
    expect(decodeRequest(noCursor.subarray(4)).body).toEqual({ topics: [{ name: 'a' }], responsePartitionLimit: 2000, cursor: null });
    expect(request(ApiKey.DescribeTopicPartitions, 0, { topics: [], responsePartitionLimit: 3, cursor: { topicName: 'b', partitionIndex: 4 } }))
      .toEqual({ topics: [], responsePartitionLimit: 3, cursor: { topicName: 'b', partitionIndex: 4 } });
    const partition = { errorCode: 0, partitionIndex: 4, leaderId: 1, leaderEpoch: 2, replicaNodes: [1, 2], isrNodes: [1], eligibleLeaderReplicas: [], lastKnownElr: null, offlineReplicas: [2] };
    const body = { throttleTimeMs: 0, topics: [{ errorCode: 0, name: 'b', topicId: ID, isInternal: false, partitions: [partition], topicAuthorizedOperations: -2147483648 }], nextCursor: { topicName: 'b', partitionIndex: 5 } };
    expect(response(ApiKey.DescribeTopicPartitions, 0, body).body).toEqual(body);
    const done = response(ApiKey.DescribeTopicPartitions, 0, { throttleTimeMs: 0, topics: [], nextCursor: null });
    expect(done.body.nextCursor).toBeNull();
    expect(done.frame.subarray(-2).toString('hex')).toBe('ff00');
  });

  it('CreateTopics v5 answers partitions, replication factor and configs; v7 the topic id', () => {
    const topic = { name: 't', topicId: ID, errorCode: 0, errorMessage: null, numPartitions: 3, replicationFactor: 2, configs: [{ name: 'retention.ms', value: '1', readOnly: false, configSource: 1, isSensitive: false }] };
    const v7 = response(ApiKey.CreateTopics, 7, { throttleTimeMs: 0, topics: [topic] }).body.topics as Record<string, unknown>[];
    expect(v7[0]).toEqual({ ...topic, topicConfigErrorCode: 0 });
    const v5 = response(ApiKey.CreateTopics, 5, { throttleTimeMs: 0, topics: [topic] }).body.topics as Record<string, unknown>[];
    expect(v5[0]).toMatchObject({ numPartitions: 3, replicationFactor: 2, topicId: '00000000-0000-0000-0000-000000000000' });
    const v4 = response(ApiKey.CreateTopics, 4, { throttleTimeMs: 0, topics: [topic] }).body.topics as Record<string, unknown>[];
    expect(v4[0]).toMatchObject({ numPartitions: -1, replicationFactor: -1, configs: [] });
  });

  it('DeleteTopics v6 names topics by name or id; v5 by name', () => {
    expect(request(ApiKey.DeleteTopics, 6, { topics: [{ name: null, topicId: ID }, { name: 'x' }], timeoutMs: 1000 }))
      .toEqual({ topics: [{ name: null, topicId: ID }, { name: 'x', topicId: '00000000-0000-0000-0000-000000000000' }], topicNames: [], timeoutMs: 1000 });
    expect(request(ApiKey.DeleteTopics, 5, { topicNames: ['x'], timeoutMs: 1000 })).toMatchObject({ topics: [], topicNames: ['x'] });
    const body = { throttleTimeMs: 0, responses: [{ name: null, topicId: ID, errorCode: 100, errorMessage: 'unknown id' }] };
    expect(response(ApiKey.DeleteTopics, 6, body).body).toEqual(body);
  });

  it('DescribeConfigs v3+ asks for documentation and answers config types; v4 is flexible', () => {
    expect(request(ApiKey.DescribeConfigs, 4, { resources: [{ resourceType: 2, resourceName: 't', configurationKeys: null }], includeSynonyms: true, includeDocumentation: true }))
      .toEqual({ resources: [{ resourceType: 2, resourceName: 't', configurationKeys: null }], includeSynonyms: true, includeDocumentation: true });
    const config = { name: 'retention.ms', value: '1', readOnly: false, isDefault: false, configSource: 1, isSensitive: false, synonyms: [], configType: 5, documentation: 'How long.' };
    const body = { throttleTimeMs: 0, results: [{ errorCode: 0, errorMessage: null, resourceType: 2, resourceName: 't', configs: [config] }] };
    for (const v of [3, 4]) expect(response(ApiKey.DescribeConfigs, v, body).body).toEqual(body);
    expect((response(ApiKey.DescribeConfigs, 2, body).body.results as { configs: Record<string, unknown>[] }[])[0]!.configs[0]).toMatchObject({ configType: 0, documentation: null });
  });

  it('DescribeLogDirs: v3 top-level error code, v4 total and usable bytes, v5 isCordoned', () => {
    const dir = { errorCode: 0, logDir: '/d', topics: [{ name: 't', partitions: [{ partitionIndex: 0, partitionSize: 10n, offsetLag: 0n, isFutureKey: false }] }], totalBytes: 1000n, usableBytes: 600n, isCordoned: true };
    const body = { throttleTimeMs: 0, errorCode: 0, results: [dir] };
    expect(response(ApiKey.DescribeLogDirs, 5, body).body).toEqual(body);
    expect((response(ApiKey.DescribeLogDirs, 4, body).body.results as Record<string, unknown>[])[0]).toMatchObject({ totalBytes: 1000n, usableBytes: 600n, isCordoned: false });
    expect((response(ApiKey.DescribeLogDirs, 3, body).body.results as Record<string, unknown>[])[0]).toMatchObject({ totalBytes: -1n, usableBytes: -1n });
    expect(response(ApiKey.DescribeLogDirs, 3, { ...body, errorCode: 56 }).body.errorCode).toBe(56);
    expect(response(ApiKey.DescribeLogDirs, 2, { ...body, errorCode: 56 }).body.errorCode).toBe(0);
  });

  it('AlterPartitionReassignments v1 carries allowReplicationFactorChange both ways', () => {
    const req = { timeoutMs: 1000, allowReplicationFactorChange: false, topics: [{ name: 't', partitions: [{ partitionIndex: 0, replicas: [1, 2] }, { partitionIndex: 1, replicas: null }] }] };
    expect(request(ApiKey.AlterPartitionReassignments, 1, req)).toEqual(req);
    expect(request(ApiKey.AlterPartitionReassignments, 0, req)).toMatchObject({ allowReplicationFactorChange: true });
    const body = { throttleTimeMs: 0, allowReplicationFactorChange: false, errorCode: 0, errorMessage: null, responses: [{ name: 't', partitions: [{ partitionIndex: 0, errorCode: 38, errorMessage: 'The replication factor is changed from 1 to 2' }] }] };
    expect(response(ApiKey.AlterPartitionReassignments, 1, body).body).toEqual(body);
  });

  it('CreatePartitions v3 and DeleteRecords v2 are flexible', () => {
    const cp = { topics: [{ name: 't', count: 4, assignments: null }], timeoutMs: 1000, validateOnly: false };
    expect(request(ApiKey.CreatePartitions, 3, cp)).toEqual(cp);
    const dr = { topics: [{ name: 't', partitions: [{ partitionIndex: 0, offset: -1n }] }], timeoutMs: 1000 };
    expect(request(ApiKey.DeleteRecords, 2, dr)).toEqual(dr);
    // Flexible: compact strings (length + 1 as a varint) where v1 has int16 lengths.
    expect(encodeRequest(header(ApiKey.DeleteRecords, 2), dr).length).toBeLessThan(encodeRequest(header(ApiKey.DeleteRecords, 1), dr).length);
  });
});
