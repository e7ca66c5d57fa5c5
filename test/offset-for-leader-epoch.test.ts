// OffsetForLeaderEpoch (key 23, v2–4) against a real `runnel start`, request by request, with the
// answers Kafka 4 gives: the end of the current epoch is the log end offset, an epoch the log cannot
// place is −1/−1 (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET) with no error, `currentLeaderEpoch` above
// the leader's is UNKNOWN_LEADER_EPOCH, an unknown partition UNKNOWN_TOPIC_OR_PARTITION. Older epochs
// (the start of the next one), FENCED_LEADER_EPOCH and NOT_LEADER_OR_FOLLOWER need leader changes:
// test/offset-for-leader-epoch-cluster.test.ts.
import { KafkaClient, Producer } from '@runnel/client';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';

let broker: TestBroker;
const TOPIC = 'epochs';

const ask = (version: number, partitions: { partition: number; currentLeaderEpoch: number; leaderEpoch: number }[], topic = TOPIC, replicaId = -1) =>
  kafkaRequest(broker.port, ApiKey.OffsetForLeaderEpoch, version, { replicaId, topics: [{ topic, partitions }] } as never)
    .then((r) => r.topics[0]!.partitions);

beforeAll(async () => {
  broker = await startBroker({ set: ['num.partitions=1'] });
  const client = await KafkaClient.connect({ bootstrapServers: broker.bootstrap });
  try {
    await client.createTopics([{ name: TOPIC, partitions: 2, replicationFactor: 1 }]);
    const producer = await new Producer(client, { acks: -1 }).connect();
    await producer.send(TOPIC, 0, [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
    await producer.close();
  } finally {
    await client.close();
  }
});
afterAll(async () => {
  await broker?.cleanup();
});

describe('OffsetForLeaderEpoch on runnel start', () => {
  it('is advertised as v2–4, as Kafka 4 serves it', async () => {
    const versions = await kafkaRequest(broker.port, ApiKey.ApiVersions, 3, { clientSoftwareName: 'runnel-test', clientSoftwareVersion: '1' } as never);
    expect(versions.apiKeys.find((k) => k.apiKey === ApiKey.OffsetForLeaderEpoch)).toMatchObject({ minVersion: 2, maxVersion: 4 });
  });

  it('answers the current epoch with the log end offset, in every version and for a follower id too', async () => {
    for (const version of [2, 3, 4]) {
      expect(await ask(version, [
        { partition: 0, currentLeaderEpoch: 0, leaderEpoch: 0 },
        { partition: 1, currentLeaderEpoch: -1, leaderEpoch: 0 },
      ])).toEqual([
        { partition: 0, errorCode: ErrorCode.NONE, leaderEpoch: 0, endOffset: 3n },
        { partition: 1, errorCode: ErrorCode.NONE, leaderEpoch: 0, endOffset: 0n },
      ]);
    }
    expect(await ask(4, [{ partition: 0, currentLeaderEpoch: 0, leaderEpoch: 0 }], TOPIC, 2)).toEqual([
      { partition: 0, errorCode: ErrorCode.NONE, leaderEpoch: 0, endOffset: 3n },
    ]);
  });

  it('answers an epoch newer than the log has −1/−1 without an error, and refuses a currentLeaderEpoch from the future', async () => {
    expect(await ask(4, [
      { partition: 0, currentLeaderEpoch: -1, leaderEpoch: 7 },
      { partition: 0, currentLeaderEpoch: 3, leaderEpoch: 0 },
      { partition: 9, currentLeaderEpoch: -1, leaderEpoch: 0 },
    ])).toEqual([
      { partition: 0, errorCode: ErrorCode.NONE, leaderEpoch: -1, endOffset: -1n },
      { partition: 0, errorCode: ErrorCode.UNKNOWN_LEADER_EPOCH, leaderEpoch: -1, endOffset: -1n },
      { partition: 9, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, leaderEpoch: -1, endOffset: -1n },
    ]);
    expect(await ask(3, [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }], 'no-such-topic')).toEqual([
      { partition: 0, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, leaderEpoch: -1, endOffset: -1n },
    ]);
  });
});
