// Kafka's ElectLeaders (key 43) as the Java Admin sends it (Admin.electLeaders, what
// kafka-leader-election.sh runs), kafka-clients 4.3.1 from test/java/fetch-clients.sh, against
// `runnel start` and against a cluster whose preferred leader went away and came back; and
// AlterPartitionReassignments / ListPartitionReassignments (keys 45, 46) moving a partition with
// its records to another broker: test/java/RunnelElect.java does the client work and prints one
// `OK ...` line per step.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker } from './helpers/broker.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { redisCli } from './helpers/redis.ts';
import { until } from './helpers/until.ts';

const version = process.env.RUNNEL_JAVA_CLIENT_VERSION ?? '4.3.1';
let classpath: string;
let classes: string;

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

async function elect(bootstrap: string, ...args: string[]): Promise<string[]> {
  // C1 only and the serial collector: a short-lived client JVM then starts on about half the CPU.
  const r = await run('java', ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', `${classes}:${classpath}`, 'RunnelElect', bootstrap, ...args], 60_000);
  const lines = r.stdout.split('\n').filter(Boolean);
  if (r.code !== 0) throw new Error(`RunnelElect ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n--- stderr (tail) ---\n${r.stderr.slice(-3000)}`);
  return lines;
}

beforeAll(async () => {
  const missing = ['java', 'javac', 'mvn'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) throw new Error(`this test needs ${missing.join(', ')}: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)`);
  const fetched = await run(join(import.meta.dirname, 'java/fetch-clients.sh'), [version], 600_000);
  if (fetched.code !== 0) throw new Error(`fetch-clients.sh ${version} failed (${fetched.code}):\n${fetched.stderr}`);
  classpath = fetched.stdout.trim().split('\n').at(-1)!;
  classes = await mkdtemp(join(tmpdir(), 'runnel-elect-'));
  const javac = await run('javac', ['-nowarn', '-d', classes, '-cp', classpath, join(import.meta.dirname, 'java/RunnelElect.java')], 120_000);
  if (javac.code !== 0) throw new Error(`javac RunnelElect.java failed:\n${javac.stderr}`);
}, 720_000);

afterAll(async () => {
  if (classes) await rm(classes, { recursive: true, force: true });
});

describe('ElectLeaders from the Java Admin', () => {
  it('runnel start: every partition has its preferred leader; an unknown partition is UNKNOWN_TOPIC_OR_PARTITION; an assignment to an unknown broker is refused', async () => {
    const broker = await startBroker();
    try {
      expect(await elect(broker.bootstrap, 'single')).toEqual([
        'OK preferred ElectionNotNeededException UnknownTopicOrPartitionException',
        'OK unclean ElectionNotNeededException',
        'OK all 0',
        'OK assignment to 9 InvalidReplicaAssignmentException',
        'DONE',
      ]);
    } finally {
      await broker.cleanup();
    }
  }, 90_000);

  describe('a cluster of two brokers', () => {
    let cluster: TestCluster;
    beforeAll(async () => {
      // No automatic rebalance: the election below is the one the test asks for.
      cluster = await startCluster({ brokers: 2, coordinators: 0, set: ['auto.leader.rebalance.enable=false'] });
    }, 60_000);
    afterAll(async () => {
      await cluster?.cleanup();
    });

    const partition = async (topic: string) => {
      const json = await redisCli(cluster.redis.socketPath, 'hget', 'runnel:topics', topic);
      return (JSON.parse(json) as { partitions: { leader: number; isr: number[]; leaderEpoch: number }[] }).partitions[0]!;
    };

    it('the preferred replica, stopped and restarted, back in the ISR, leads again after a preferred election', async () => {
      const created = await elect(cluster.bootstrap, 'create', 'elect-c');
      const [, preferred, other] = /^OK created leader=(\d) replicas=\1,(\d) isr=\1,\2$/.exec(created[0]!) ?? [];
      expect(created).toEqual([`OK created leader=${preferred} replicas=${preferred},${other} isr=${preferred},${other}`, 'DONE']);
      const leader = cluster.brokers.find((b) => b.nodeId === Number(preferred))!;
      await leader.process.stop();
      await until('the other replica leads', async () => (await partition('elect-c')).leader === Number(other), 30_000);
      await cluster.restart(leader, { samePort: true });
      // It follows the new leader, catches up, and is proposed back into the ISR.
      await until('the preferred replica back in the ISR', async () => (await partition('elect-c')).isr.includes(Number(preferred)), 60_000);
      expect((await partition('elect-c')).leader).toBe(Number(other));
      expect(await elect(cluster.bootstrap, 'preferred', 'elect-c', preferred!)).toEqual([
        `OK before leader=${other} replicas=${preferred},${other} isr=${other},${preferred}`,
        'OK elected elected',
        `OK after leader=${preferred} replicas=${preferred},${other} isr=${other},${preferred}`,
        'OK again ElectionNotNeededException',
        'DONE',
      ]);
    }, 150_000);
  });
});

describe('partition reassignment from the Java Admin', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({ brokers: 3, coordinators: 0, set: ['auto.leader.rebalance.enable=false'] });
  }, 60_000);
  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('creates a topic with explicit replica lists (kafka-topics.sh --replica-assignment), led by the first of each', async () => {
    expect(await elect(cluster.bootstrap, 'assign', 'assigned')).toEqual([
      'OK p0 leader=2 replicas=2,3 isr=2,3',
      'OK p1 leader=3 replicas=3,1 isr=3,1',
      'DONE',
    ]);
  }, 90_000);

  it('moves a partition and its records to another broker: the newcomer catches up, joins the ISR, leads; the leaver leaves', async () => {
    const created = await elect(cluster.bootstrap, 'create', 'moving');
    const [, first, second] = /^OK created leader=(\d) replicas=\1,(\d) isr=\1,\2$/.exec(created[0]!) ?? [];
    const third = [1, 2, 3].find((id) => id !== Number(first) && id !== Number(second))!;
    const lines = await elect(cluster.bootstrap, 'reassign', 'moving', `${third},${second}`);
    expect(lines).toEqual([
      'OK produced 100',
      'OK cancel none NoReassignmentInProgressException',
      `OK reassigning to ${third},${second}`,
      expect.stringMatching(new RegExp(`^OK done leader=${third} replicas=${third},${second} isr=(${third},${second}|${second},${third})$`)),
      'OK consumed 100 inOrder=true',
      'DONE',
    ]);
    const json = JSON.parse(await redisCli(cluster.redis.socketPath, 'hget', 'runnel:topics', 'moving')) as { partitions: Record<string, unknown>[] };
    expect(json.partitions[0]).not.toHaveProperty('addingReplicas');
  }, 150_000);
});
