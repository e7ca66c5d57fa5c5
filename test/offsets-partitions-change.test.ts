// Changing offsets.topic.num.partitions after the first start: as in Kafka the existing
// __consumer_offsets keeps its partitions, Runnel says so in one line, and groups keep hashing over
// the topic's count, so committed offsets are still found. A real `runnel start` restarted on its
// data dir; kafkajs commits and fetches.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partitionForGroup } from '@runnel/protocol';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';

let broker: TestBroker | undefined;
let dir = '';
afterAll(async () => {
  await broker?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('a changed offsets.topic.num.partitions is ignored with one line, and committed offsets stay found', async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnel-offsets-count-'));
  // A group that lands elsewhere when hashed over 10 partitions instead of 50.
  const groupId = Array.from({ length: 100 }, (_, i) => `g-${i}`).find((g) => partitionForGroup(g, 50) !== partitionForGroup(g, 10))!;
  const admin = (b: TestBroker) => new Kafka({ clientId: 'offsets-count', brokers: [b.bootstrap], logLevel: logLevel.NOTHING }).admin();

  broker = await startBroker({ logDir: dir });
  let a = admin(broker);
  await a.connect();
  await a.createTopics({ topics: [{ topic: 'events', numPartitions: 1 }], waitForLeaders: true });
  await a.setOffsets({ groupId, topic: 'events', partitions: [{ partition: 0, offset: '0' }] });
  await a.disconnect();
  expect(broker.process.output()).not.toMatch(/offsets\.topic\.num\.partitions=.* is ignored/);
  await broker.stop();

  broker = await startBroker({ logDir: dir, set: ['offsets.topic.num.partitions=10'] });
  const said = broker.process.output().split('\n').filter((l) => /offsets\.topic\.num\.partitions/.test(l));
  expect(said).toHaveLength(1);
  expect(said[0]).toMatch(/__consumer_offsets already exists with 50 partitions; offsets\.topic\.num\.partitions=10 is ignored/);
  a = admin(broker);
  await a.connect();
  try {
    const [events] = await a.fetchOffsets({ groupId, topics: ['events'] });
    expect(events!.partitions).toEqual([{ partition: 0, offset: '0', metadata: null }]);
  } finally {
    await a.disconnect();
  }
});
