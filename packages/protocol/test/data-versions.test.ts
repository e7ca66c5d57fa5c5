// The data APIs at Kafka 4's versions (Fetch 13–17, Produce 10–11, ListOffsets 8–10), field by
// field: @platformatic/kafka 2.x's encoders (the client that sends these versions) decode to what
// they wrote, its parsers read our tagged fields (current leader, node endpoints, diverging
// epoch), and the tagged request fields platformatic never sends (Fetch v15 replica_state, v17
// replica_directory_id) decode from bytes written here by hand after Kafka's JSON schemas.
import { Buffer } from 'node:buffer';
import * as plt from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { apiSchema, decodeRequest, decodeResponse, encodeRequest, encodeResponse, ApiKey, ErrorCode } from '../src/index.ts';

const mods = plt as unknown as Record<string, { createRequest: (...a: unknown[]) => { buffer: Buffer }; parseResponse: (c: number, k: number, v: number, r: unknown) => any }>;

/** A request frame (no size prefix): header v2 (these versions are all flexible) around platformatic's body. */
function frameOf(apiKey: number, apiVersion: number, body: Buffer): Buffer {
  expect(apiVersion).toBeGreaterThanOrEqual(apiSchema(apiKey)!.request.flexibleFrom!);
  const h = Buffer.alloc(14);
  h.writeInt16BE(apiKey, 0); h.writeInt16BE(apiVersion, 2); h.writeInt32BE(77, 4);
  h.writeInt16BE(3, 8); h.write('plt', 10);
  h[13] = 0;
  return Buffer.concat([h, body]);
}

/** platformatic's parse of our response frame; a response with errors comes back through its ResponseError. */
function parse(mod: string, key: number, v: number, body: object): any {
  const frame = encodeResponse(key, v, 77, body);
  expect(frame.readInt32BE(4)).toBe(77);
  try {
    return mods[mod]!.parseResponse(77, key, v, plt.Reader.from(frame.subarray(9)));
  } catch (err) {
    const response = (err as { response?: unknown }).response;
    if (response === undefined) throw err;
    return response;
  }
}

const topicId = '0123abcd-0000-4000-8000-0000000000ff';
const leader = { leaderId: 2, leaderEpoch: 7 };
const endpoints = [{ nodeId: 2, host: 'broker-2', port: 9094, rack: 'r1' }];

describe('Fetch 13–17', () => {
  for (const v of [13, 14, 15, 16, 17]) {
    it(`v${v}: topics by id in the request and the response; current leader and diverging epoch read back${v >= 16 ? ', with node endpoints' : ''}`, () => {
      const body = mods[`fetchV${v}`]!.createRequest(500, 1, 1 << 20, 0, 0, -1,
        [{ topicId, partitions: [{ partition: 3, currentLeaderEpoch: 5, fetchOffset: 42n, lastFetchedEpoch: 4, partitionMaxBytes: 1000 }] }],
        [{ topicId, partitions: [1] }], 'rack-a').buffer;
      const d = decodeRequest(frameOf(ApiKey.Fetch, v, body));
      if (d.apiKey !== ApiKey.Fetch) throw new Error('not a fetch');
      expect(d.body).toMatchObject({
        replicaId: -1, replicaState: { replicaId: -1, replicaEpoch: -1n }, maxWaitMs: 500, minBytes: 1, sessionId: 0, sessionEpoch: -1, rackId: 'rack-a',
        topics: [{ topic: '', topicId, partitions: [{ partition: 3, currentLeaderEpoch: 5, fetchOffset: 42n, lastFetchedEpoch: 4, partitionMaxBytes: 1000 }] }],
        forgottenTopicsData: [{ topicId, partitions: [1] }],
      });

      const parsed = parse(`fetchV${v}`, ApiKey.Fetch, v, {
        sessionId: 0,
        responses: [{ topicId, partitions: [
          { partitionIndex: 3, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, highWatermark: -1n, abortedTransactions: null, records: null, currentLeader: leader },
          { partitionIndex: 4, errorCode: 0, highWatermark: 50n, lastStableOffset: 50n, logStartOffset: 0n, abortedTransactions: null, records: null, divergingEpoch: { epoch: 3, endOffset: 40n } },
        ] }],
        nodeEndpoints: endpoints,
      });
      expect(parsed.responses[0].topicId).toBe(topicId);
      expect(parsed.responses[0].partitions[0]).toMatchObject({ partitionIndex: 3, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, currentLeader: leader });
      expect(parsed.responses[0].partitions[1]).toMatchObject({ partitionIndex: 4, highWatermark: 50n, divergingEpoch: { epoch: 3, endOffset: 40n } });
      if (v >= 16) expect(parsed.nodeEndpoints).toEqual(endpoints);
      // Before v16 the field does not exist: it is not written, whatever the handler gives.
      else expect(decodeResponse(ApiKey.Fetch, v, encodeResponse(ApiKey.Fetch, v, 1, { sessionId: 0, responses: [], nodeEndpoints: endpoints }).subarray(4)).body.nodeEndpoints).toEqual([]);
    });
  }

  it('v15 replica_state (tag 1) and v17 replica_directory_id (partition tag 0) decode; v14 still has replica_id', () => {
    const input = {
      replicaId: 7, replicaState: { replicaId: 3, replicaEpoch: 11n }, maxWaitMs: 10, minBytes: 1, maxBytes: 100, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
      topics: [{ topicId, partitions: [{ partition: 0, fetchOffset: 1n, partitionMaxBytes: 10, replicaDirectoryId: topicId }] }], forgottenTopicsData: [], rackId: '',
    };
    const header = (v: number) => ({ apiKey: ApiKey.Fetch, apiVersion: v, correlationId: 1, clientId: 'c' });
    const at = (v: number) => {
      const d = decodeRequest(encodeRequest(header(v), input).subarray(4));
      if (d.apiKey !== ApiKey.Fetch) throw new Error('not a fetch');
      return d.body;
    };
    expect(at(14)).toMatchObject({ replicaId: 7, replicaState: { replicaId: -1, replicaEpoch: -1n } });
    expect(at(15)).toMatchObject({ replicaId: -1, replicaState: { replicaId: 3, replicaEpoch: 11n } });
    expect(at(16).topics[0]!.partitions[0]!.replicaDirectoryId).toBe('00000000-0000-0000-0000-000000000000');
    expect(at(17).topics[0]!.partitions[0]!.replicaDirectoryId).toBe(topicId);

    // By hand (Kafka's FetchRequest.json): the request's tagged section comes last; the null
    // cluster id (tag 0) is the default and left out, so it holds one field, tag 1, 13 bytes:
    // int32 3, int64 11 and the struct's own (empty) tagged section.
    const v15 = encodeRequest(header(15), input).subarray(4);
    const tail = Buffer.from([1, 1, 13, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 11, 0]);
    expect(v15.subarray(v15.length - tail.length)).toEqual(tail);
  });

  it('v16 node endpoints are the response\'s top-level tag 0, after the responses', () => {
    const frame = encodeResponse(ApiKey.Fetch, 16, 5, { sessionId: 0, responses: [], nodeEndpoints: [{ nodeId: 1, host: 'h', port: 9, rack: null }] });
    // size, correlation id, header tags, throttle, error, session, responses (empty: 1), then tags.
    const tags = frame.subarray(4 + 4 + 1 + 4 + 2 + 4 + 1);
    expect(tags).toEqual(Buffer.from([1, 0, 13, 2, 0, 0, 0, 1, 2, 0x68, 0, 0, 0, 9, 0, 0]));
    expect(decodeResponse(ApiKey.Fetch, 16, frame.subarray(4)).body.nodeEndpoints).toEqual([{ nodeId: 1, host: 'h', port: 9, rack: null }]);
  });
});

describe('Produce 10–11', () => {
  for (const v of [10, 11]) {
    it(`v${v}: the request decodes; current leader (partition tag 0), node endpoints (tag 0), record errors and the error message read back`, () => {
      const body = mods[`produceV${v}`]!.createRequest(-1, 3000, [{ topic: 't', partition: 1, key: Buffer.from('k'), value: Buffer.from('v'), timestamp: 5n }], {}).buffer;
      const d = decodeRequest(frameOf(ApiKey.Produce, v, body));
      if (d.apiKey !== ApiKey.Produce) throw new Error('not a produce');
      expect(d.body).toMatchObject({ transactionalId: null, acks: -1, timeoutMs: 3000, topicData: [{ name: 't', partitionData: [{ index: 1 }] }] });

      const parsed = parse(`produceV${v}`, ApiKey.Produce, v, {
        responses: [{ name: 't', partitionResponses: [
          { index: 1, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, baseOffset: -1n, currentLeader: leader },
          { index: 2, errorCode: ErrorCode.CORRUPT_MESSAGE, baseOffset: -1n, errorMessage: 'bad record', recordErrors: [{ batchIndex: 3, batchIndexErrorMessage: 'bad record' }] },
        ] }],
        throttleTimeMs: 0,
        nodeEndpoints: endpoints,
      });
      expect(parsed.responses[0].partitionResponses[0]).toMatchObject({ index: 1, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, currentLeader: leader });
      expect(parsed.responses[0].partitionResponses[1]).toMatchObject({ errorMessage: 'bad record', recordErrors: [{ batchIndex: 3, batchIndexErrorMessage: 'bad record' }] });
      expect(parsed.nodeEndpoints).toEqual(endpoints);
    });
  }
});

describe('ListOffsets 8–10', () => {
  for (const v of [8, 9]) {
    it(`v${v}: −4 and −5 decode; the answer reads back`, () => {
      const body = mods[`listOffsetsV${v}`]!.createRequest(-1, 0, [{ name: 't', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -4n }, { partitionIndex: 1, currentLeaderEpoch: 2, timestamp: -5n }] }]).buffer;
      const d = decodeRequest(frameOf(ApiKey.ListOffsets, v, body));
      if (d.apiKey !== ApiKey.ListOffsets) throw new Error('not a list offsets');
      expect(d.body).toMatchObject({ replicaId: -1, isolationLevel: 0, topics: [{ name: 't', partitions: [{ partitionIndex: 0, timestamp: -4n }, { partitionIndex: 1, currentLeaderEpoch: 2, timestamp: -5n }] }] });
      const parsed = parse(`listOffsetsV${v}`, ApiKey.ListOffsets, v, { topics: [{ name: 't', partitions: [{ partitionIndex: 0, errorCode: 0, timestamp: -1n, offset: 12n, leaderEpoch: 1 }] }] });
      expect(parsed.topics[0].partitions[0]).toMatchObject({ partitionIndex: 0, offset: 12n, leaderEpoch: 1 });
    });
  }

  it('v10 adds timeout_ms after the topics (Kafka\'s ListOffsetsRequest.json); v9 has none', () => {
    const input = { replicaId: -1, isolationLevel: 1, topics: [], timeoutMs: 1234 };
    const v10 = encodeRequest({ apiKey: ApiKey.ListOffsets, apiVersion: 10, correlationId: 1, clientId: null }, input).subarray(4);
    expect(v10.subarray(v10.length - 6)).toEqual(Buffer.from([1, 0, 0, 0x04, 0xd2, 0])); // empty topics, 1234, no tags
    const d = decodeRequest(v10);
    if (d.apiKey !== ApiKey.ListOffsets) throw new Error('not a list offsets');
    expect(d.body.timeoutMs).toBe(1234);
    const v9 = decodeRequest(encodeRequest({ apiKey: ApiKey.ListOffsets, apiVersion: 9, correlationId: 1, clientId: null }, input).subarray(4));
    if (v9.apiKey !== ApiKey.ListOffsets) throw new Error('not a list offsets');
    expect(v9.body.timeoutMs).toBe(0);
  });
});
