// CreateTopics honours the request's timeout_ms as a KRaft controller does (Apache Kafka 4.4.0
// answers the same): ≤ 0 is REQUEST_TIMED_OUT at once with nothing created (duplicates still
// INVALID_REQUEST); a creation the controller has not finished by the deadline is answered
// REQUEST_TIMED_OUT, and its creation goes on. Real processes: `runnel start`, and a cluster whose
// controller is frozen (SIGSTOP) so the broker's metadata write waits.
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

const topic = (name: string, numPartitions = 1) => ({ name, numPartitions, replicationFactor: 1, assignments: [], configs: [] });
const createTopics = (port: number, topics: ReturnType<typeof topic>[], timeoutMs: number, validateOnly = false) =>
  kafkaRequest(port, ApiKey.CreateTopics, 4, { topics, timeoutMs, validateOnly } as never).then((r) => r.topics);
const exists = async (port: number, name: string) => {
  const m = await kafkaRequest(port, ApiKey.Metadata, 4, { topics: [{ name }], allowAutoTopicCreation: false } as never);
  return m.topics[0]!.errorCode === ErrorCode.NONE;
};

let broker: TestBroker | undefined;
let cluster: TestCluster | undefined;
afterAll(async () => {
  await broker?.cleanup();
  await cluster?.cleanup();
});

describe('CreateTopics timeout_ms', () => {
  it('≤ 0 answers REQUEST_TIMED_OUT at once and creates nothing, as Kafka', async () => {
    broker = await startBroker();
    for (const timeoutMs of [0, -1]) {
      const name = `zero-${-timeoutMs}`;
      const answer = await createTopics(broker.port, [topic(name), topic('dup'), topic('dup')], timeoutMs);
      expect(answer.map((t) => [t.name, t.errorCode])).toEqual([[name, ErrorCode.REQUEST_TIMED_OUT], ['dup', ErrorCode.INVALID_REQUEST], ['dup', ErrorCode.INVALID_REQUEST]]);
      expect(await exists(broker.port, name)).toBe(false);
      // validate_only does not run either.
      expect((await createTopics(broker.port, [topic(name, 0)], timeoutMs, true))[0]!.errorCode).toBe(ErrorCode.REQUEST_TIMED_OUT);
    }
    expect((await createTopics(broker.port, [topic('with-time')], 1_000))[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(await exists(broker.port, 'with-time')).toBe(true);
  });

  it('a creation not finished by the deadline is REQUEST_TIMED_OUT, and goes on', async () => {
    cluster = await startCluster({ brokers: 1, coordinators: 1 });
    const port = cluster.brokers[0]!.port;
    const controller = cluster.controller.process.child;
    controller.kill('SIGSTOP');
    try {
      const began = Date.now();
      const answer = await createTopics(port, [topic('while-frozen', 2)], 1_000);
      // Well before the broker's own 15 s retry window for metadata writes ran out.
      expect(Date.now() - began).toBeLessThan(10_000);
      expect(answer.map((t) => [t.name, t.errorCode])).toEqual([['while-frozen', ErrorCode.REQUEST_TIMED_OUT]]);
    } finally {
      controller.kill('SIGCONT');
    }
    await until('the timed-out topic to be created all the same', () => exists(port, 'while-frozen'), 20_000);
  });
});
