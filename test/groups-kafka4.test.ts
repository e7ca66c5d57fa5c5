// The group and coordinator APIs at Kafka 4's maxima (issue 13), with the clients that send them,
// against a real `runnel start` behind a proxy that records the versions each client sends:
// - the Java client 4.3.1 (test/java/RunnelInterop.java): a static member restarted in a Stable
//   group (JoinGroup 9 answers its leader SkipAssignment and it resumes after its commits);
//   JoinGroup 9, SyncGroup 5, OffsetCommit 9, OffsetFetch 9, FindCoordinator 6,
//   InitProducerId 5 (its idempotent producer), ApiVersions 4;
// - Kafka 4.3.1's kafka-consumer-groups: --list (with --type and --state), --describe (also of a
//   group that does not exist), --delete-offsets, --delete: ListGroups 5, DescribeGroups 6,
//   OffsetDelete 0, DeleteGroups 2;
// - @platformatic/kafka 2.x as a group consumer (JoinGroup 9, SyncGroup 5, OffsetCommit 9,
//   OffsetFetch 9, LeaveGroup 5).
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Admin, Consumer, MessagesStreamFallbackModes, MessagesStreamModes, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { ApiKey } from '@runnel/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { kafkaTools, ok, type KafkaTools } from './helpers/kafka-tools.ts';
import { freePort } from './helpers/ports.ts';
import { versionSpy, type VersionSpy } from './helpers/version-spy.ts';

const javaVersion = process.env.RUNNEL_JAVA_CLIENT_VERSION ?? '4.3.1';

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** The highest version of each named API the spy saw. */
const versionsOf = (spy: VersionSpy, names: (keyof typeof ApiKey)[]) => Object.fromEntries(names.map((n) => [n, spy.seen.get(ApiKey[n])]));

let broker: TestBroker;
let spy: VersionSpy;
let bootstrap: string;

beforeAll(async () => {
  spy = await versionSpy();
  spy.target = await freePort();
  broker = await startBroker({ set: [`listeners=PLAINTEXT://127.0.0.1:${spy.target}`, `advertised.listeners=PLAINTEXT://127.0.0.1:${spy.port}`] });
  bootstrap = `127.0.0.1:${spy.port}`;
}, 60_000);

afterAll(async () => {
  await broker?.cleanup();
  await spy?.close();
});

describe('group APIs at Kafka 4 versions', () => {
  it('the Java client 4.3.1 runs a classic group at JoinGroup 9, SyncGroup 5, OffsetCommit 9, OffsetFetch 9: a restarted static leader resumes without reassigning', async () => {
    const missing = ['java', 'javac', 'mvn'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
    if (missing.length > 0) throw new Error(`this test needs ${missing.join(', ')}: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)`);
    const fetched = await run(join(import.meta.dirname, 'java/fetch-clients.sh'), [javaVersion], 600_000);
    if (fetched.code !== 0) throw new Error(`fetch-clients.sh ${javaVersion} failed (${fetched.code}):\n${fetched.stderr}`);
    const classpath = fetched.stdout.trim().split('\n').at(-1)!;
    spy.seen.clear();
    // test/interop-java.test.ts runs the other group scenarios, at the same versions now.
    for (const scenario of ['static-member']) {
      // C1 only and the serial collector: a short-lived client JVM then starts on about half the CPU.
      const r = await run('java', ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Drunnel.timeout.ms=60000', '-cp', classpath, 'RunnelInterop', bootstrap, scenario], 75_000);
      const lines = r.stdout.split('\n').filter(Boolean);
      if (r.code !== 0 || lines.some((l) => l.startsWith('FAIL'))) throw new Error(`java ${scenario} exited ${r.code}:\n${r.stdout}\n--- stderr (tail) ---\n${r.stderr.slice(-4000)}`);
      expect(lines.some((l) => l.startsWith(`OK ${scenario}`))).toBe(true);
    }
    // A static member leaves no LeaveGroup on close (its session timeout keeps its seat).
    expect(versionsOf(spy, ['ApiVersions', 'FindCoordinator', 'JoinGroup', 'SyncGroup', 'OffsetCommit', 'OffsetFetch', 'InitProducerId'])).toEqual({
      ApiVersions: 4, FindCoordinator: 6, JoinGroup: 9, SyncGroup: 5, OffsetCommit: 9, OffsetFetch: 9, InitProducerId: 5,
    });
  }, 240_000);

  describe('kafka-consumer-groups 4.3.1', () => {
    let tools: KafkaTools;
    const groups = (args: string[]) => tools.consumerGroups(['--bootstrap-server', bootstrap, ...args], { timeoutMs: 60_000 });

    beforeAll(async () => {
      tools = await kafkaTools();
      // Two classic groups with offsets: one Stable with a member, one Empty (its consumer left).
      const admin = new Admin({ clientId: 'g4-admin', bootstrapBrokers: [bootstrap] });
      await admin.createTopics({ topics: ['g4-a', 'g4-b'], partitions: 2, replicas: 1 });
      await admin.close();
      const producer = new Producer({ clientId: 'g4-producer', bootstrapBrokers: [bootstrap], serializers: stringSerializers });
      await producer.send({ messages: Array.from({ length: 10 }, (_, i) => ({ topic: i % 2 ? 'g4-a' : 'g4-b', key: `k${i}`, value: `v${i}` })) });
      await producer.close();
    }, 660_000);

    it('lists, filters by type and state, describes, deletes offsets and groups (ListGroups 5, DescribeGroups 6, OffsetDelete 0, DeleteGroups 2) with a platformatic group consumer at JoinGroup 9', async () => {
      spy.seen.clear();
      const consume = async (groupId: string, topics: string[], count: number) => {
        const consumer = new Consumer({ groupId, clientId: 'g4-consumer', bootstrapBrokers: [bootstrap], deserializers: stringDeserializers, maxWaitTime: 100 });
        // From the committed offsets (OffsetFetch), else the earliest.
        const stream = await consumer.consume({ topics, mode: MessagesStreamModes.COMMITTED, fallbackMode: MessagesStreamFallbackModes.EARLIEST, autocommit: false });
        let n = 0;
        const deadline = setTimeout(() => stream.destroy(new Error(`${groupId} consumed ${n} of ${count}`)), 60_000);
        for await (const m of stream) {
          await m.commit();
          if (++n >= count) break;
        }
        clearTimeout(deadline);
        return { consumer, stream };
      };
      const empty = await consume('g4-empty', ['g4-a', 'g4-b'], 10);
      await empty.stream.close();
      await empty.consumer.close(); // LeaveGroup: Empty, offsets kept
      const stable = await consume('g4-stable', ['g4-a'], 5);
      try {
        expect(versionsOf(spy, ['JoinGroup', 'SyncGroup', 'OffsetCommit', 'OffsetFetch', 'LeaveGroup'])).toEqual({ JoinGroup: 9, SyncGroup: 5, OffsetCommit: 9, OffsetFetch: 9, LeaveGroup: 5 });

        // The read-only calls at once: each is a JVM start.
        const [byType, byState, described, members, missingGroup] = await Promise.all([
          groups(['--list', '--type', 'classic']),
          groups(['--list', '--state', 'Stable']),
          groups(['--describe', '--group', 'g4-empty']),
          groups(['--describe', '--group', 'g4-stable', '--members']),
          groups(['--describe', '--group', 'g4-nope']),
        ]);
        expect(ok(byType)).toMatch(/GROUP\s+TYPE/);
        expect(byType.stdout).toMatch(/g4-empty\s+Classic/i);
        expect(byType.stdout).toMatch(/g4-stable\s+Classic/i);
        expect(ok(byState)).toMatch(/g4-stable\s+Stable/);
        expect(byState.stdout).not.toMatch(/g4-empty/);
        expect(spy.seen.get(ApiKey.ListGroups)).toBe(5);

        ok(described);
        expect(described.stderr + described.stdout).toMatch(/Consumer group 'g4-empty' has no active members/);
        // Every partition at lag 0: what the consumer read it committed.
        for (const [topic, p] of [['g4-a', 0], ['g4-a', 1], ['g4-b', 0], ['g4-b', 1]]) expect(described.stdout).toMatch(new RegExp(`g4-empty\\s+${topic}\\s+${p}\\s+(\\d+)\\s+\\1\\s+0\\s+-`));
        expect(ok(members)).toMatch(/g4-stable\s+\S+\s+\/127\.0\.0\.1\s+g4-consumer\s+2/);
        // As against Kafka 4: DescribeGroups v6 (and ConsumerGroupDescribe) answer GROUP_ID_NOT_FOUND.
        expect(missingGroup.stdout + missingGroup.stderr).toMatch(/GroupIdNotFoundException: Group g4-nope not found\./);
        expect(spy.seen.get(ApiKey.DescribeGroups)).toBe(6);

        expect(ok(await groups(['--delete-offsets', '--group', 'g4-empty', '--topic', 'g4-b']))).toMatch(/g4-b\s+0\s+Successful[\s\S]*g4-b\s+1\s+Successful/);
        expect(spy.seen.get(ApiKey.OffsetDelete)).toBe(0);
        expect(ok(await groups(['--delete', '--group', 'g4-empty']))).toMatch(/Deletion of requested consumer groups \('g4-empty'\) was successful/);
        expect(ok(await groups(['--list'])).split('\n').filter((g) => g.startsWith('g4-'))).toEqual(['g4-stable']);
        expect(spy.seen.get(ApiKey.DeleteGroups)).toBe(2);
      } finally {
        await stable.stream.close();
        await stable.consumer.close();
      }
    }, 300_000);
  });
});
