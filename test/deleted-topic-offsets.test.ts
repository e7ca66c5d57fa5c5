// A deleted topic's committed offsets go from every group, as in Kafka (GroupCoordinator
// onPartitionsDeleted): a topic recreated under the same name is read from the group's reset
// policy (earliest here: everything), not from the old offset, and the offsets stay gone after the
// coordinator restarts (the tombstones are in __consumer_offsets). On `runnel start` and on a
// cluster's coordinator node (a controller, one broker, one coordinator node), at once; kafkajs
// commits, consumes and fetches the offsets.
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { until } from './helpers/until.ts';

let broker: TestBroker;
let cluster: TestCluster;

beforeAll(async () => {
  [broker, cluster] = await Promise.all([startBroker(), startCluster({ brokers: 1, coordinators: 1 })]);
}, 60_000);
afterAll(async () => {
  await Promise.all([broker?.cleanup(), cluster?.cleanup()]);
});

const kafka = (bootstrap: string) => new Kafka({ clientId: 'deleted-topic-offsets', brokers: [bootstrap], logLevel: logLevel.NOTHING });

async function produce(bootstrap: string, topic: string, values: string[]): Promise<void> {
  const producer = kafka(bootstrap).producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value })) });
  await producer.disconnect();
}

/** A group member that reads `count` records from `topic` (committing them), then leaves. */
async function consume(bootstrap: string, groupId: string, topic: string, count: number): Promise<string[]> {
  const consumer = kafka(bootstrap).consumer({ groupId, retry: { retries: 20 } });
  const seen: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.value!.toString());
          if (seen.length >= count) resolve();
        },
      });
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${groupId} read ${seen.length} of ${count} records of ${topic} within 30 s: ${seen.join(',')}`)), 30_000);
    });
    await Promise.race([done, late]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

async function committed(bootstrap: string, groupId: string, topic: string): Promise<string> {
  const admin = kafka(bootstrap).admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return t!.partitions[0]!.offset;
  } finally {
    await admin.disconnect();
  }
}

async function recreate(bootstrap: string, topic: string, deleteFirst: boolean): Promise<void> {
  const admin = kafka(bootstrap).admin();
  await admin.connect();
  try {
    if (deleteFirst) await admin.deleteTopics({ topics: [topic] });
    await until(`${topic} created`, async () => {
      try {
        return await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
      } catch {
        return false; // deletion still in progress (TOPIC_ALREADY_EXISTS / marked for deletion)
      }
    }, 20_000);
  } finally {
    await admin.disconnect();
  }
}

/** One run of the scenario; `restart` restarts the coordinator and returns the new bootstrap. */
async function scenario(bootstrap: string, restart: () => Promise<string>): Promise<void> {
  const topic = 'reborn';
  await recreate(bootstrap, topic, false);
  await produce(bootstrap, topic, ['a0', 'a1', 'a2', 'a3', 'a4']);
  // Two groups commit 5; `reader` reads the recreated topic below, `idle` never comes back.
  expect(await consume(bootstrap, 'reader', topic, 5)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
  expect(await consume(bootstrap, 'idle', topic, 5)).toHaveLength(5);
  await until('offsets committed', async () => (await committed(bootstrap, 'reader', topic)) === '5' && (await committed(bootstrap, 'idle', topic)) === '5', 10_000);

  await recreate(bootstrap, topic, true);
  await until('the deleted topic\'s offsets removed', async () => (await committed(bootstrap, 'idle', topic)) === '-1', 10_000);
  // More records than the old offset: a kept offset 5 would skip b0..b4 without any reset.
  const fresh = Array.from({ length: 8 }, (_, i) => `b${i}`);
  await produce(bootstrap, topic, fresh);
  expect(await consume(bootstrap, 'reader', topic, 8)).toEqual(fresh);

  const again = await restart();
  expect(await committed(again, 'idle', topic)).toBe('-1');
  await until('reader\'s new commit', async () => (await committed(again, 'reader', topic)) === '8', 10_000);
}

describe('committed offsets of a deleted topic', () => {
  it('runnel start: removed from every group, durably; the recreated topic is read from the reset policy', async () => {
    await scenario(broker.bootstrap, async () => {
      await broker.stop();
      broker = await startBroker({ logDir: broker.logDir });
      return broker.bootstrap;
    });
  }, 45_000);

  it('a cluster coordinator node: the same, and after the coordinator node restarts', async () => {
    await scenario(cluster.bootstrap, async () => {
      await cluster.restart(cluster.coordinators[0]!);
      return cluster.bootstrap;
    });
  }, 45_000);
});
