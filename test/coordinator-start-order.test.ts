// A group coordinator that starts while the brokers leading __consumer_offsets are down (a cluster
// restarted with the coordinator first) waits for them quietly: one line saying what it waits
// for, no warning per partition, and an error line only when they do not come within
// `runnel.coordinator.load.wait.error.ms`. Real processes: Redis, a controller, a broker and a
// coordinator (test/helpers/cluster.ts); the coordinator's JSON log lines (pino) are read.
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { until } from './helpers/until.ts';

interface LogLine { level: number; msg: string; [k: string]: unknown }
const WARN = 40;
const ERROR = 50;

/** The coordinator's log lines from `from` (a character offset of its output) on. */
function lines(cluster: TestCluster, from = 0): LogLine[] {
  return cluster.coordinators[0]!.process.output().slice(from).split('\n').flatMap((l) => {
    try {
      const v = JSON.parse(l) as LogLine;
      return typeof v.level === 'number' ? [v] : [];
    } catch {
      return [];
    }
  });
}
const waiting = (l: LogLine) => /waiting for/.test(l.msg) && /__consumer_offsets/.test(l.msg);

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.cleanup();
  cluster = undefined;
});

/** Lines about __consumer_offsets at warn or above (per partition or not). */
const offsetsWarnings = (log: LogLine[]) => log.filter((l) => l.level >= WARN && (/__consumer_offsets/.test(l.msg) || 'partition' in l));

/** Stops the broker, then restarts the coordinator alone: its __consumer_offsets partitions have no live leader. */
async function restartCoordinatorBeforeBroker(c: TestCluster): Promise<void> {
  await c.brokers[0]!.process.stop(2_000);
  await c.restart(c.coordinators[0]!);
}

describe('a coordinator that starts before the brokers', () => {
  it('logs one line saying what it waits for, no per-partition warnings, and serves its groups once the broker is back', async () => {
    cluster = await startCluster({ brokers: 1, coordinators: 1 });
    const kafka = new Kafka({ clientId: 'start-order', brokers: [cluster.brokers[0]!.address], logLevel: logLevel.NOTHING, retry: { retries: 30 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'events', numPartitions: 1 }], waitForLeaders: true });
    await admin.setOffsets({ groupId: 'restarted', topic: 'events', partitions: [{ partition: 0, offset: '0' }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'events', messages: [{ value: 'a' }, { value: 'b' }] });
    await producer.disconnect();

    await restartCoordinatorBeforeBroker(cluster);
    // Long enough for several load attempts of every partition (they back off from 200 ms).
    await new Promise((r) => setTimeout(r, 3_000));
    const broker = await cluster.restart(cluster.brokers[0]!, { samePort: true });
    expect(broker.address).toBe(cluster.brokers[0]!.address);

    const consumer = kafka.consumer({ groupId: 'restarted', sessionTimeout: 6_000 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'events' });
    const seen: string[] = [];
    await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value!.toString()); } });
    // The group's committed offset (0) was loaded: both records, from the start.
    await until('both records consumed', () => seen.length === 2, 60_000);
    await consumer.disconnect();
    expect(seen).toEqual(['a', 'b']);

    await until('the coordinator saying it loaded', () => lines(cluster!).some((l) => /loaded after waiting/.test(l.msg)), 10_000);
    const log = lines(cluster);
    const waits = log.filter(waiting);
    expect(waits, JSON.stringify(waits)).toHaveLength(1);
    expect(waits[0]!.level).toBeLessThan(WARN);
    expect(offsetsWarnings(log), JSON.stringify(offsetsWarnings(log))).toEqual([]);
  });

  it('logs one error line when the brokers do not come within runnel.coordinator.load.wait.error.ms', async () => {
    cluster = await startCluster({ brokers: 1, coordinators: 1, nodeSet: (role) => role === 'coordinator' ? ['runnel.coordinator.load.wait.error.ms=1500'] : [] });
    await until('__consumer_offsets loaded', () => /took over __consumer_offsets partitions/.test(cluster!.coordinators[0]!.process.output()), 30_000);
    await restartCoordinatorBeforeBroker(cluster);
    const errorAbout = (l: LogLine) => l.level >= ERROR && /__consumer_offsets/.test(l.msg);
    await until('an error line', () => lines(cluster!).some(errorAbout), 15_000);
    // Keep waiting a while longer: the error is said once, not once per retry or per partition.
    await new Promise((r) => setTimeout(r, 2_500));
    const log = lines(cluster);
    const errors = log.filter(errorAbout);
    expect(errors, JSON.stringify(errors)).toHaveLength(1);
    expect(errors[0]!.msg).toMatch(/10 __consumer_offsets partitions still cannot be loaded after 1500 ms/);
    expect(log.filter(waiting)).toHaveLength(1);
    expect(log.filter((l) => l.level === WARN && /__consumer_offsets/.test(l.msg))).toEqual([]);
  });
});

describe('a coordinator restarted at once after kill -9', () => {
  it('waits for its previous session with a warning, not an error (same address: its own old process)', async () => {
    cluster = await startCluster({ brokers: 1, coordinators: 1 });
    const old = cluster.coordinators[0]!;
    old.process.child.kill('SIGKILL');
    await old.process.exited();
    // Its session is still live in the controller's view, so the new process must wait for it.
    const again = await cluster.restart(old, { samePort: true });
    await again.process.waitFor(/is held by a live process/, 30_000);
    const held = lines(cluster).filter((l) => /is held by a live process/.test(l.msg));
    expect(held, JSON.stringify(held)).toHaveLength(1);
    expect(held[0]!.level).toBe(WARN);
    expect(lines(cluster).filter((l) => l.level >= ERROR)).toEqual([]);
  });
});
