/**
 * One admin request must not take a node down: CreateTopics, CreatePartitions and auto-creation
 * asking for 2,147,483,647 partitions are refused at once (Kafka's POLICY_VIOLATION, "Excessively
 * large number of partitions per request") before any placement array is built, the process's
 * memory stays flat and it keeps serving. Single node (LocalStore) and a cluster (the controller
 * places the partitions there).
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';

const INT32_MAX = 2_147_483_647;
/** Growth allowed while the refusals are answered: far below what one placement array of 2^31 entries needs (GBs). */
const FLAT = 150 * 1024 * 1024;

async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(status.match(new RegExp(`${field}:\\s+(\\d+) kB`))?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

const topic = (name: string, numPartitions: number, replicationFactor = 1) => ({ name, numPartitions, replicationFactor, assignments: [], configs: [] });

function createTopics(port: number, topics: ReturnType<typeof topic>[], validateOnly = false) {
  return kafkaRequest(port, ApiKey.CreateTopics, 4, { topics, timeoutMs: 30_000, validateOnly });
}

function metadata(port: number, names: string[]) {
  return kafkaRequest(port, ApiKey.Metadata, 9, { topics: names.map((name) => ({ name })), allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
}

describe('single node: partitions per request are bounded before anything is placed', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    // The default partition count is huge too, so CreateTopics with -1 and auto-creation ask for it.
    broker = await startBroker({ set: [`num.partitions=${INT32_MAX}`] });
  }, 60_000);
  afterAll(async () => {
    await broker?.cleanup();
  });

  it('refuses CreateTopics, CreatePartitions and auto-creation of 2^31-1 partitions at once, stays small and keeps serving', async () => {
    const pid = broker.process.child.pid!;
    const before = await memoryOf(pid);

    const huge = await createTopics(broker.port, [topic('huge', INT32_MAX), topic('small-with-it', 1)]);
    // Kafka refuses the whole request: every topic in it gets the error.
    for (const t of huge.topics) {
      expect(t.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
      expect(t.errorMessage).toMatch(/Excessively large number of partitions per request/);
    }
    const validateOnly = await createTopics(broker.port, [topic('huge-validate', INT32_MAX)], true);
    expect(validateOnly.topics[0]!.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
    // The sum counts, not each topic alone: 2 × 6,000 > 10,000.
    const sum = await createTopics(broker.port, [topic('sum-a', 6_000), topic('sum-b', 6_000)]);
    expect(sum.topics.map((t) => t.errorCode)).toEqual([ErrorCode.POLICY_VIOLATION, ErrorCode.POLICY_VIOLATION]);
    // -1 takes num.partitions (huge here).
    const byDefault = await createTopics(broker.port, [topic('by-default', -1)]);
    expect(byDefault.topics[0]!.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
    // Auto-creation goes straight to the metadata store (no CreateTopics handler in front).
    const auto = await metadata(broker.port, ['auto-huge']);
    expect(auto.topics[0]!.errorCode).toBe(ErrorCode.POLICY_VIOLATION);

    const ok = await createTopics(broker.port, [topic('fine', 3)]);
    expect(ok.topics[0]!.errorCode).toBe(ErrorCode.NONE);
    const grow = await kafkaRequest(broker.port, ApiKey.CreatePartitions, 1, { topics: [{ name: 'fine', count: INT32_MAX, assignments: null }], timeoutMs: 30_000, validateOnly: false });
    expect(grow.results[0]!.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
    const grow2 = await kafkaRequest(broker.port, ApiKey.CreatePartitions, 1, { topics: [{ name: 'fine', count: 5, assignments: null }], timeoutMs: 30_000, validateOnly: false });
    expect(grow2.results[0]!.errorCode).toBe(ErrorCode.NONE);

    const after = await memoryOf(pid);
    expect(after.peak - before.peak).toBeLessThan(FLAT);
    expect(broker.process.child.exitCode).toBeNull();
    const md = await metadata(broker.port, ['fine', 'huge', 'sum-a']);
    expect(md.topics.map((t) => [t.name, t.errorCode, t.partitions.length])).toEqual([
      ['fine', ErrorCode.NONE, 5],
      // Metadata auto-creates on this request too: refused again, nothing was left behind.
      ['huge', ErrorCode.POLICY_VIOLATION, 0],
      ['sum-a', ErrorCode.POLICY_VIOLATION, 0],
    ]);
  }, 60_000);
});

describe('cluster: the controller bounds partitions per request', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({ brokers: 1, coordinators: 1, set: [`num.partitions=${INT32_MAX}`] });
  }, 90_000);
  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('refuses a topic of 2^31-1 partitions placed by the controller, which stays small and keeps serving', async () => {
    const broker = cluster.brokers[0]!;
    const controllerPid = cluster.controller.process.child.pid!;
    const before = await memoryOf(controllerPid);
    // Auto-creation is forwarded to the controller as it is: the controller's own bound refuses it.
    const auto = await metadata(broker.port, ['auto-huge']);
    expect(auto.topics[0]!.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
    const huge = await createTopics(broker.port, [topic('huge', INT32_MAX)]);
    expect(huge.topics[0]!.errorCode).toBe(ErrorCode.POLICY_VIOLATION);

    const ok = await createTopics(broker.port, [topic('fine', 2)]);
    expect(ok.topics[0]!.errorCode).toBe(ErrorCode.NONE);
    const after = await memoryOf(controllerPid);
    expect(after.peak - before.peak).toBeLessThan(FLAT);
    expect(cluster.controller.process.child.exitCode).toBeNull();
    expect(broker.process.child.exitCode).toBeNull();
  }, 60_000);
});
