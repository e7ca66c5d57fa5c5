// KIP-848 end to end with the two other ecosystems' clients (test/helpers/ecosystems.ts):
// librdkafka (confluent-kafka-python) and franz-go, each with `group.protocol=consumer`, against a
// real `runnel start`. Two consumers split a 4-partition topic by incremental revocation (no
// partition owned by two live members at once, from their assigned/revoked events as they arrive);
// one killed with -9 is expired after group.consumer.session.timeout.ms and the other takes its
// partitions; every produced record is consumed at least once; the client sent
// ConsumerGroupHeartbeat and no JoinGroup.
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { confluentPython, franzGo, type EcosystemClient, type RunningConsumer } from './helpers/ecosystems.ts';
import { until } from './helpers/until.ts';

// 4 s (Kafka's default is 45 s): the kill -9 is waited out in seconds; members heartbeat every
// 500 ms (HEARTBEAT_MS), eight times a session, as with Kafka's 5 s in 45 s.
const SESSION_MS = 4000;
const HEARTBEAT_MS = 500;
let broker: TestBroker | undefined;

beforeAll(async () => {
  broker = await startBroker({ set: [`group.consumer.session.timeout.ms=${SESSION_MS}`, `group.consumer.heartbeat.interval.ms=${HEARTBEAT_MS}`] });
}, 60_000);

afterAll(async () => {
  await broker?.cleanup();
});

/** Follows members' assigned/revoked/lost events in arrival order and records any double ownership. */
class Ownership {
  readonly owned = new Map<RunningConsumer, Set<number>>();
  readonly overlaps: string[] = [];
  readonly #seen = new Map<RunningConsumer, number>();
  readonly #timer: NodeJS.Timeout;
  readonly topic: string;
  constructor(topic: string) {
    this.topic = topic;
    this.#timer = setInterval(() => this.poll(), 20);
  }
  add(c: RunningConsumer): void {
    this.owned.set(c, new Set());
    this.#seen.set(c, 0);
  }
  /** A killed member owns nothing (its partitions may move once its session expired). */
  dead(c: RunningConsumer): void {
    this.poll();
    this.owned.get(c)!.clear();
    this.#seen.set(c, Infinity);
  }
  poll(): void {
    for (const [c, mine] of this.owned) {
      const events = c.events();
      for (let i = this.#seen.get(c)!; i < events.length; i++) {
        const e = events[i]!;
        const ps = e.partitions[this.topic] ?? [];
        if (e.type === 'assigned') {
          for (const p of ps) {
            for (const [o, theirs] of this.owned) if (o !== c && theirs.has(p)) this.overlaps.push(`member ${c.pid} got ${p} while ${o.pid} owned it`);
            mine.add(p);
          }
        } else {
          for (const p of ps) mine.delete(p);
        }
      }
      if (this.#seen.get(c) !== Infinity) this.#seen.set(c, events.length);
    }
  }
  of(c: RunningConsumer): number[] {
    this.poll();
    return [...this.owned.get(c)!].sort((a, b) => a - b);
  }
  close(): void {
    clearInterval(this.#timer);
  }
}

const clients: [string, () => Promise<EcosystemClient<unknown>>][] = [
  ['librdkafka (confluent-kafka-python)', confluentPython],
  ['franz-go', franzGo],
];

describe.each(clients)('KIP-848 consumer groups with %s (group.protocol=consumer)', (name, load) => {
  it('two members split by revocation; one killed with -9 is expired and the other takes over; nothing skipped', async () => {
    const client = await load();
    const topic = `kip848-${name.split(' ')[0]}`;
    const group = `g-${topic}`;
    const kafka = new Kafka({ brokers: [broker!.bootstrap], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    const produce = (from: number, count: number) =>
      producer.send({ topic, messages: Array.from({ length: count }, (_, k) => ({ partition: (from + k) % 4, value: `r${from + k}` })) });
    const own = new Ownership(topic);
    const running: RunningConsumer[] = [];
    try {
      await produce(0, 400);
      const options = { bootstrap: broker!.bootstrap, topic, group, groupProtocol: 'consumer' as const, maxMs: 240_000 };
      const a = client.startConsumer(options);
      running.push(a);
      own.add(a);
      await until('a to own all 4 partitions', () => own.of(a).length === 4, 90_000);
      const b = client.startConsumer(options);
      running.push(b);
      own.add(b);
      await until('a and b to own 2 partitions each', () => own.of(a).length === 2 && own.of(b).length === 2, 90_000);
      // a gave up two partitions and kept the other two all along (incremental, not stop-the-world).
      const revoked = a.events().filter((e) => e.type === 'revoked').flatMap((e) => e.partitions[topic] ?? []);
      expect(revoked.sort(), JSON.stringify(a.events())).toEqual(own.of(b));

      const killedAt = Date.now();
      await a.kill();
      own.dead(a);
      await produce(400, 200);
      await until('b to take over the killed member\'s partitions', () => own.of(b).length === 4, SESSION_MS + 30_000);
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual(SESSION_MS - 1000);
      const all = () => new Set([...a.records(), ...b.records()].map((r) => r.value));
      await until('all 600 records to be consumed', () => all().size === 600, 60_000);
      for (let i = 0; i < 600; i++) expect(all().has(`r${i}`)).toBe(true);
      expect(own.overlaps).toEqual([]);

      const done = await b.stop();
      expect(done.done.requests.ConsumerGroupHeartbeat).toBeDefined();
      expect(done.done.requests.JoinGroup).toBeUndefined();
    } finally {
      own.close();
      for (const c of running) await c.kill().catch(() => {});
      await producer.disconnect();
    }
  }, 300_000);
});
