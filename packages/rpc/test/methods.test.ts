import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient, RpcServer, type RpcHandlers, type RpcMethod, type RpcMethods } from '../src/index.ts';
import { encodeEnvelope, envelopeCodec, int64ForTest, methodNames, methodSchema } from '../src/schema.ts';
import { FrameReader, frameHeader, frameLength } from '../src/frame.ts';

const BIG = 2n ** 53n + 7n; // not representable as a JS number
const MAX_I64 = 2n ** 63n - 1n;
const MIN_I64 = -(2n ** 63n);

/**
 * Two samples per method: one with every nullable absent and every list empty, one full. The
 * mapped type makes a method missing here a type error; the test below makes a schema method
 * missing here a failure.
 */
const SAMPLES: { [M in RpcMethod]: [RpcMethods[M][0], RpcMethods[M][1]][] } = {
  'controller.registerNode': [
    [
      { nodeId: 0, host: '', port: 0, rack: null, roles: [], rpc: null, incarnationId: '', endpoints: [] },
      { registration: { nodeId: 0, host: '', port: 0, rack: null, roles: [], rpc: null, brokerEpoch: 0, incarnationId: '', endpoints: [] }, version: 0 },
    ],
    [
      { nodeId: 3, host: 'b3.local', port: 9092, rack: 'r1', roles: ['broker', 'coordinator'], rpc: { host: '10.0.0.3', port: 7000 }, incarnationId: 'k2Vd9',
        endpoints: [{ listener: 'INTERNAL', host: 'b3.local', port: 19092, securityProtocol: 'PLAINTEXT' }, { listener: 'EXTERNAL', host: 'localhost', port: 9092, securityProtocol: 'PLAINTEXT' }] },
      {
        registration: { nodeId: 3, host: 'b3.local', port: 9092, rack: '', roles: ['coordinator'], rpc: { host: '::1', port: 65535 }, brokerEpoch: 17, incarnationId: 'k2Vd9',
          endpoints: [{ listener: 'EXTERNAL', host: '', port: 0, securityProtocol: '' }, { listener: 'E2', host: '::1', port: 65535, securityProtocol: 'PLAINTEXT' }] },
        version: 4_000_000_000,
      },
    ],
  ],
  'controller.heartbeat': [
    [{ nodeId: 1, brokerEpoch: 2 }, { fenced: false }],
    [{ nodeId: 2_000_000_000, brokerEpoch: -1 }, { fenced: true }],
  ],
  'controller.createTopic': [
    [
      { name: 't', partitions: -1, replicationFactor: -1, configs: {}, internal: false, assignments: [] },
      { topic: { name: 't', topicId: '', internal: false, partitions: [], configs: {} }, version: 1 },
    ],
    [
      {
        name: '__consumer_offsets', partitions: 3, replicationFactor: 1, internal: true,
        configs: { 'cleanup.policy': 'compact', 'segment.bytes': '104857600', 'empty': '' },
        assignments: [[1], [], [2, 3, 4]],
      },
      {
        topic: {
          name: '__consumer_offsets', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', internal: true,
          partitions: [
            { partition: 0, leader: -1, leaderEpoch: 5, replicas: [1], isr: [], version: 9 },
            { partition: 1, leader: 2, leaderEpoch: 0, replicas: [2, 3], isr: [3, 2], version: -1 },
          ],
          configs: { 'cleanup.policy': 'compact' },
        },
        version: 12,
      },
    ],
  ],
  'controller.deleteTopic': [[{ name: 'gone' }, { version: 77 }]],
  'controller.createPartitions': [
    [{ name: 'x', totalCount: 5, assignments: [] }, { topic: { name: 'x', topicId: 'id', internal: false, partitions: [], configs: {} }, version: 2 }],
    [{ name: 'x', totalCount: 2, assignments: [[7, 8], [9]] }, { topic: { name: 'x', topicId: 'id', internal: false, partitions: [{ partition: 1, leader: 7, leaderEpoch: 1, replicas: [7, 8], isr: [7], version: 1 }], configs: { a: 'b' } }, version: 3 }],
  ],
  'controller.alterTopicConfigs': [
    [{ name: 'x', set: {}, remove: [] }, { topic: { name: 'x', topicId: 'id', internal: false, partitions: [], configs: {} }, version: 4 }],
    [{ name: 'x', set: { 'retention.ms': '-1', 'ü': 'ß' }, remove: ['segment.ms', 'x'] }, { topic: { name: 'x', topicId: 'id', internal: false, partitions: [], configs: { 'retention.ms': '-1' } }, version: 5 }],
  ],
  'controller.alterScramCredentials': [
    [{ upserts: [], deletions: [] }, { version: 0 }],
    [{
      upserts: [{ user: 'alice', mechanism: 'SCRAM-SHA-256', salt: Buffer.from('salt'), storedKey: Buffer.alloc(32, 1), serverKey: Buffer.alloc(32, 2), iterations: 8192 }],
      deletions: [{ user: 'bob', mechanism: 'SCRAM-SHA-512' }],
    }, { version: 12 }],
  ],
  'controller.alterClientQuotas': [
    [{ entries: [] }, { version: 0 }],
    [{ entries: [{ entity: '[["client-id","c1"],["user",null]]', set: [{ key: 'producer_byte_rate', value: 1048576 }], remove: ['consumer_byte_rate'] }] }, { version: 7 }],
  ],
  'controller.alterBrokerConfigs': [
    [{ nodeId: -1, set: {}, remove: [] }, { version: 0 }],
    [{ nodeId: 3, set: { 'leader.replication.throttled.rate': '200000' }, remove: ['follower.replication.throttled.rate'] }, { version: 9 }],
  ],
  'controller.createAcls': [
    [{ acls: [] }, { version: 0 }],
    [{ acls: [{ resourceType: 2, resourceName: 'orders', patternType: 4, principal: 'User:alice', host: '*', operation: 4, permissionType: 3 }] }, { version: 7 }],
  ],
  'controller.deleteAcls': [
    [{ filters: [] }, { deleted: [], version: 0 }],
    [
      { filters: [{ resourceType: 1, resourceName: null, patternType: 1, principal: null, host: null, operation: 1, permissionType: 1 }, { resourceType: 2, resourceName: 'ö', patternType: 2, principal: 'User:*', host: '10.0.0.1', operation: 8, permissionType: 2 }] },
      { deleted: [{ acls: [] }, { acls: [{ resourceType: 3, resourceName: 'g', patternType: 3, principal: 'User:bob', host: '*', operation: 3, permissionType: 2 }] }], version: 8 },
    ],
  ],
  'controller.allocateProducerId': [
    [{}, { producerId: 0n }],
    [{}, { producerId: BIG }],
    [{}, { producerId: MAX_I64 }],
  ],
  'controller.alterPartition': [
    [{ nodeId: 1, brokerEpoch: 2, topic: 't', partition: 0, leaderEpoch: 0, version: 0, isr: [] }, { error: '', partition: null, version: 0 }],
    [
      { nodeId: 1, brokerEpoch: 2, topic: 't', partition: 3, leaderEpoch: 4, version: 9, isr: [1, 2, 3] },
      { error: 'INVALID_UPDATE_VERSION', partition: { partition: 3, leader: 1, leaderEpoch: 4, replicas: [1, 2, 3], isr: [1, 2], version: 10 }, version: 55 },
    ],
  ],
  'controller.shutdownNode': [[{ nodeId: 2, brokerEpoch: 7 }, { remaining: 0, version: 8 }], [{ nodeId: 0, brokerEpoch: 0 }, { remaining: 3, version: 0 }]],
  'controller.alterReassignments': [
    [{ reassignments: [] }, { results: [], version: 0 }],
    [
      { reassignments: [{ topic: 't', partition: 2, replicas: [3, 1, 2], cancel: false }, { topic: 'u', partition: 0, replicas: [], cancel: true }] },
      { results: [{ topic: 't', partition: 2, error: '', message: '' }, { topic: 'u', partition: 0, error: 'NO_REASSIGNMENT_IN_PROGRESS', message: 'none' }], version: 12 },
    ],
  ],
  'controller.electLeaders': [
    [{ partitions: [], unclean: false }, { results: [], version: 0 }],
    [
      { partitions: [{ topic: 'a', partition: 1 }], unclean: true },
      { results: [{ topic: 'a', partition: 1, error: 'ELECTION_NOT_NEEDED', message: 'leader 1 is preferred' }], version: 3 },
    ],
  ],
  'broker.replicaFetch': [
    [{ replicaId: 1, brokerEpoch: 1, maxWaitMs: 0, minBytes: 0, maxBytes: 0, partitionMaxBytes: 0, partitions: [] }, { partitions: [] }],
    [
      {
        replicaId: 2, brokerEpoch: 9, maxWaitMs: 500, minBytes: 1, maxBytes: 1 << 20, partitionMaxBytes: 1 << 20,
        partitions: [{ topic: 't', partition: 0, fetchOffset: BIG, currentLeaderEpoch: 3, lastFetchedEpoch: -1, logStartOffset: 0n }],
      },
      {
        partitions: [
          { topic: 't', partition: 0, error: '', highWatermark: BIG, logStartOffset: 0n, logEndOffset: BIG + 1n, records: Buffer.from([1, 2, 3]), divergingEpoch: -1, divergingEndOffset: -1n },
          { topic: 't', partition: 1, error: 'FENCED_LEADER_EPOCH', highWatermark: -1n, logStartOffset: -1n, logEndOffset: -1n, records: Buffer.alloc(0), divergingEpoch: 2, divergingEndOffset: 40n },
        ],
      },
    ],
  ],
  'broker.append': [
    [{ topic: 't', partition: 0, records: Buffer.alloc(0), coordinatorEpoch: -1 }, { baseOffset: 0n, lastOffset: -1n }],
    [{ topic: 't', partition: 7, records: Buffer.from([0, 1, 2, 255, 254]), coordinatorEpoch: 3 }, { baseOffset: BIG, lastOffset: BIG + 4n }],
  ],
  'broker.read': [
    [{ topic: 't', partition: 0, offset: 0n, maxBytes: 0, coordinatorEpoch: -1 }, { records: Buffer.alloc(0), highWatermark: 0n, logStartOffset: 0n }],
    [{ topic: 't', partition: 1, offset: BIG, maxBytes: 1 << 20, coordinatorEpoch: 4 }, { records: Buffer.alloc(70_000, 0xab), highWatermark: MAX_I64, logStartOffset: BIG - 1n }],
  ],
  'broker.offsets': [
    [{ partitions: [] }, { partitions: [] }],
    [
      { partitions: [{ topic: 'a', partition: 0 }, { topic: 'b', partition: 9 }] },
      {
        partitions: [
          { topic: 'a', partition: 0, error: '', highWatermark: BIG, logStartOffset: 3n },
          { topic: 'b', partition: 9, error: 'NOT_LEADER_OR_FOLLOWER', highWatermark: -1n, logStartOffset: -1n },
        ],
      },
    ],
  ],
  'broker.writeTxnMarkers': [
    [{ markers: [], groupCoordinatorEpoch: null }, { markers: [] }],
    [
      {
        markers: [
          { producerId: BIG, producerEpoch: 32767, coordinatorEpoch: -1, commit: true, partitions: [{ topic: 'a', partition: 0 }, { topic: 'b', partition: 9 }] },
          { producerId: 0n, producerEpoch: 0, coordinatorEpoch: 7, commit: false, partitions: [] },
        ],
        groupCoordinatorEpoch: 0,
      },
      { markers: [{ partitions: [{ topic: 'a', partition: 0, error: '' }, { topic: 'b', partition: 9, error: 'NOT_LEADER_OR_FOLLOWER' }] }, { partitions: [] }] },
    ],
  ],
  'coordinator.writeTxnMarkers': [
    [
      { markers: [{ producerId: 5n, producerEpoch: 1, coordinatorEpoch: 3, commit: true, partitions: [{ topic: '__consumer_offsets', partition: 4 }] }], groupCoordinatorEpoch: null },
      { markers: [{ partitions: [{ topic: '__consumer_offsets', partition: 4, error: '' }] }] },
    ],
  ],
  'broker.recordTimestamp': [
    [{ topic: 't', partition: 0, offset: 5n }, { timestamp: -1n }],
    [{ topic: 't', partition: 0, offset: BIG }, { timestamp: 1_763_700_000_000n }],
    [{ topic: 't', partition: 0, offset: MAX_I64 }, { timestamp: MIN_I64 }],
  ],
};

describe('every method round-trips through a real server', () => {
  let server: RpcServer;
  let client: RpcClient;
  const received: { method: string; req: unknown }[] = [];
  /** What the server answers next (each request is checked on the client side, after the call). */
  let answer: unknown;

  beforeAll(async () => {
    const handlers: Record<string, (req: unknown) => unknown> = {};
    for (const method of methodNames()) {
      handlers[method] = (req) => {
        received.push({ method, req });
        return answer;
      };
    }
    server = RpcServer.create({ host: '127.0.0.1', port: 0, handlers: handlers as RpcHandlers });
    await server.start();
    client = RpcClient.create(server.address());
  });

  afterAll(async () => {
    client.close();
    await server.stop();
  });

  it('has a sample for every method in the schema, and no other', () => {
    expect(methodNames().sort()).toEqual(Object.keys(SAMPLES).sort());
  });

  for (const method of Object.keys(SAMPLES) as RpcMethod[]) {
    it(method, async () => {
      for (const [req, res] of SAMPLES[method] as [never, unknown][]) {
        received.length = 0;
        answer = res;
        const got = await client.call(method, req);
        expect(received).toEqual([{ method, req }]);
        expect(received[0].req).toStrictEqual(req);
        expect(got).toStrictEqual(res);
      }
    });
  }

  it('hands out Buffers for bytes fields', async () => {
    const [req, res] = SAMPLES['broker.read'][1];
    answer = res;
    const got = await client.call('broker.read', req);
    expect(Buffer.isBuffer(got.records)).toBe(true);
    expect(got.records.equals(res.records)).toBe(true);
    expect(typeof got.highWatermark).toBe('bigint');
  });
});

describe('int64 conversion', () => {
  it('keeps every bit of signed and unsigned values', () => {
    for (const v of [0n, 1n, -1n, BIG, -BIG, MAX_I64, MIN_I64, 2n ** 32n, 2n ** 32n - 1n, -(2n ** 31n)]) {
      expect(int64ForTest.bitsToLong(int64ForTest.longToBits(v), false)).toBe(v);
    }
    expect(int64ForTest.bitsToLong(int64ForTest.longToBits(2n ** 64n - 1n), true)).toBe(2n ** 64n - 1n);
    expect(() => int64ForTest.longToBits(2n ** 64n)).toThrow(RangeError);
    expect(() => int64ForTest.longToBits(-(2n ** 63n) - 1n)).toThrow(RangeError);
    // A protobufjs configured without `long` hands back plain numbers.
    expect(int64ForTest.bitsToLong(42, false)).toBe(42n);
  });
});

describe('frame format', () => {
  it('matches the worked example in frame.ts', () => {
    const payload = Buffer.alloc(12, 7);
    const body = Buffer.from(envelopeCodec.encode({ id: 1, method: 'broker.read', payload, response: false, error: null, attachments: [] }));
    const expected = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x0b]), Buffer.from('broker.read'), Buffer.from([0x1a, 0x0c]), payload]);
    expect(body.equals(expected)).toBe(true);
    expect(frameHeader(body.length).equals(Buffer.from([0, 0, 0, 0x1d]))).toBe(true);
  });

  it('writes the payload as its own piece, after the rest of the envelope, decoding the same', () => {
    const payload = Buffer.alloc(12, 7);
    // A call: the pieces are byte for byte the worked example (payload is the last field anyway).
    const call = encodeEnvelope({ id: 1, method: 'broker.read', payload, response: false, error: null, attachments: [] });
    expect(call).toHaveLength(3);
    expect(call[2]).toBe(payload); // the caller's buffer itself, not a copy
    expect(Buffer.concat(call).equals(Buffer.from(envelopeCodec.encode({ id: 1, method: 'broker.read', payload, response: false, error: null, attachments: [] })))).toBe(true);
    // An answer: `response` now precedes the payload on the wire; a reader sees the same message.
    const answer = { id: 9, method: 'broker.replicaFetch', payload: Buffer.alloc(70_000, 3), response: true, error: null, attachments: [] };
    const pieces = encodeEnvelope(answer);
    expect(frameLength(pieces)).toBe(Buffer.concat(pieces).length);
    expect(envelopeCodec.decode(Buffer.concat(pieces))).toEqual(answer);
    const failed = { id: 2, method: 'broker.append', payload: Buffer.alloc(0), response: true, error: { code: 'NOT_LEADER', message: 'moved', retriable: true }, attachments: [] };
    expect(encodeEnvelope(failed)).toHaveLength(1);
    expect(envelopeCodec.decode(Buffer.concat(encodeEnvelope(failed)))).toEqual(failed);
  });

  it('sends big bytes values as attachments, and the reader gets views of the frame back in their place', () => {
    const schema = methodSchema('broker.replicaFetch')!.response;
    const records = [Buffer.alloc(70_000, 1), Buffer.alloc(1023, 2), Buffer.alloc(0), Buffer.alloc(5000, 3)];
    const value = {
      partitions: records.map((r, i) => ({
        topic: 't', partition: i, error: '', highWatermark: 5n, logStartOffset: 0n, logEndOffset: 5n, records: r, divergingEpoch: -1, divergingEndOffset: -1n,
      })),
    };
    const attachments: Buffer[] = [];
    const payload = Buffer.from(schema.encode(value, attachments));
    // The two of at least 1 KiB travel beside the payload, as the very buffers given.
    expect(attachments).toHaveLength(2);
    expect(attachments[0]).toBe(records[0]);
    expect(attachments[1]).toBe(records[3]);
    expect(payload.length).toBeLessThan(1200);
    const frame = Buffer.concat(encodeEnvelope({ id: 3, method: 'broker.replicaFetch', payload, response: true, error: null, attachments }));
    const envelope = envelopeCodec.decode(frame);
    const decoded = schema.decode(envelope.payload, envelope.attachments) as typeof value;
    expect(decoded).toEqual(value);
    expect(decoded.partitions[0]!.records.buffer).toBe(frame.buffer); // a view, not a copy
    // Without attachments the same value encodes whole, and decodes the same.
    expect(schema.decode(schema.encode(value))).toEqual(value);
    // A payload naming more attachments than the envelope carries, or fewer, does not decode.
    expect(() => schema.decode(envelope.payload, envelope.attachments.slice(1))).toThrow(/attachment/);
    expect(() => schema.decode(envelope.payload, [...envelope.attachments, Buffer.alloc(1)])).toThrow(/left over/);
  });

  it('splits a stream cut at every byte into the same frames', () => {
    const bodies = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello world'), Buffer.alloc(300, 1)];
    const stream = Buffer.concat(bodies.flatMap((b) => [frameHeader(b.length), b]));
    for (let cut = 0; cut <= stream.length; cut++) {
      const reader = new FrameReader(1024);
      const out = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      expect(out.map((b) => b.toString('hex'))).toEqual(bodies.map((b) => b.toString('hex')));
    }
  });

  it('refuses a length above the limit as soon as the prefix is complete', () => {
    const reader = new FrameReader(100);
    expect(reader.push(Buffer.from([0, 0]))).toEqual([]);
    expect(() => reader.push(Buffer.from([0, 101]))).toThrow(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
    expect(new FrameReader(100).push(Buffer.concat([frameHeader(100), Buffer.alloc(100)]))).toHaveLength(1);
  });
});
