// KIP-848 end to end with the Java client 4.3.1 (`group.protocol=consumer`) against a real
// `runnel start`: test/java/RunnelKip848Consumer.java consumes one topic in a group, printing what
// its rebalance listener and polls see. Two consumers split a 4-partition topic; a third joining
// mid-stream takes partitions over by incremental revocation (no partition ever owned by two
// members: each consumer's owned set, from its ASSIGNED/REVOKED lines in the order they arrive,
// never overlaps another's); one killed with -9 is expired after the session timeout and its
// partitions move; every produced record is consumed at least once (committed offsets: nothing
// skipped). Kafka's kafka-consumer-groups shows the group (--describe, --list --type consumer),
// and a restart of the broker on the same log dir keeps the group's epochs and committed offsets.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { kafkaTools, ok, type KafkaTools } from './helpers/kafka-tools.ts';
import { until } from './helpers/until.ts';

// 4 s (Kafka's default is 45 s): the kill -9 is waited out in seconds; members heartbeat every
// 500 ms (HEARTBEAT_MS), eight times a session, as with Kafka's 5 s in 45 s.
const SESSION_MS = 4000;
const HEARTBEAT_MS = 500;
const TOPIC = 'kip848';
let classpath: string;
let classes: string;
let broker: TestBroker | undefined;
let tools: KafkaTools;
const consumers: Consumer[] = [];

interface Consumer {
  name: string;
  child: ChildProcess;
  /** Partitions owned now, from the listener's lines. */
  owned: Set<number>;
  /** Every record value seen. */
  seen: Set<string>;
  lines: string[];
  exited: Promise<void>;
}

/** Ownership changes of all consumers in arrival order: checked for overlaps as they come. */
const overlaps: string[] = [];

function startConsumer(name: string, group: string, assignor?: string): Consumer {
  const child = spawn('java', ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', `${classes}:${classpath}`, 'RunnelKip848Consumer', broker!.bootstrap, group, TOPIC, ...(assignor ? [assignor] : [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const c: Consumer = { name, child, owned: new Set(), seen: new Set(), lines: [], exited: new Promise((resolve) => child.on('exit', () => resolve())) };
  // A dead process owns nothing any more (the coordinator hands its partitions on only after its
  // session expired, checked below).
  void c.exited.then(() => c.owned.clear());
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      c.lines.push(line);
      const [kind, a, , value] = line.split(' ');
      const ps = (a ?? '').split(',').filter(Boolean).map(Number);
      if (kind === 'ASSIGNED') {
        for (const p of ps) {
          for (const other of consumers) if (other !== c && other.owned.has(p)) overlaps.push(`${c.name} got ${p} while ${other.name} owned it`);
          c.owned.add(p);
        }
      } else if (kind === 'REVOKED' || kind === 'LOST') {
        for (const p of ps) c.owned.delete(p);
      } else if (kind === 'REC') {
        c.seen.add(value!);
      }
    }
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString('utf8');
    if (err.length > 20_000) err = err.slice(-10_000);
  });
  consumers.push(c);
  return c;
}

async function produce(from: number, count: number): Promise<void> {
  const kafka = new Kafka({ brokers: [broker!.bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  for (let i = from; i < from + count; i += 50) {
    const n = Math.min(50, from + count - i);
    await producer.send({ topic: TOPIC, messages: Array.from({ length: n }, (_, k) => ({ partition: (i + k) % 4, value: `v${i + k}` })) });
  }
  await producer.disconnect();
}

const describeGroup = async (group: string) =>
  (await kafkaRequest(broker!.port, 69, 1, { groupIds: [group], includeAuthorizedOperations: false })).groups[0]!;

const ownedBy = (c: Consumer) => [...c.owned].sort((a, b) => a - b);

beforeAll(async () => {
  const missing = ['java', 'javac', 'mvn'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) throw new Error(`this test needs ${missing.join(', ')}: install a JDK 17+ and Maven`);
  const fetched = spawnSync(join(import.meta.dirname, 'java/fetch-clients.sh'), ['4.3.1'], { encoding: 'utf8', timeout: 600_000 });
  if (fetched.status !== 0) throw new Error(`fetch-clients.sh failed:\n${fetched.stderr}`);
  classpath = fetched.stdout.trim().split('\n').at(-1)!;
  classes = await mkdtemp(join(tmpdir(), 'kip848-classes-'));
  const javac = spawnSync('javac', ['-nowarn', '-d', classes, '-cp', classpath, join(import.meta.dirname, 'java/RunnelKip848Consumer.java')], { encoding: 'utf8' });
  if (javac.status !== 0) throw new Error(`javac failed:\n${javac.stderr}`);
  tools = await kafkaTools();
  broker = await startBroker({ set: [`group.consumer.session.timeout.ms=${SESSION_MS}`, `group.consumer.heartbeat.interval.ms=${HEARTBEAT_MS}`] });
  const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 4 }], waitForLeaders: true });
  await admin.disconnect();
}, 660_000);

afterAll(async () => {
  for (const c of consumers) c.child.kill('SIGKILL');
  await Promise.all(consumers.map((c) => c.exited));
  await broker?.cleanup();
  if (classes) await rm(classes, { recursive: true, force: true });
});

describe('KIP-848 consumer groups with the Java client 4.3.1 (group.protocol=consumer)', () => {
  it('split, kill -9, a third member mid-stream, nothing skipped; tools describe it; a restart keeps epochs and offsets', async () => {
    await produce(0, 200);
    const a = startConsumer('a', 'g');
    await until('a to own all 4 partitions', () => ownedBy(a).length === 4, 60_000);
    const b = startConsumer('b', 'g');
    await until('a and b to own 2 partitions each', () => ownedBy(a).length === 2 && ownedBy(b).length === 2, 60_000);
    // a gave up two partitions (incremental: it kept the other two all along).
    expect(a.lines.filter((l) => l.startsWith('REVOKED'))).toHaveLength(1);
    let d = await describeGroup('g');
    expect(d.errorCode).toBe(0);
    expect(d.members).toHaveLength(2);
    expect(d.members.every((m) => m.memberType === 1 && m.assignment.topicPartitions.flatMap((t) => t.partitions).length === 2)).toBe(true);

    await produce(200, 200);
    await until('the first 400 records to be consumed', () => a.seen.size + b.seen.size >= 400 && new Set([...a.seen, ...b.seen]).size === 400, 60_000);

    // kill -9: b takes over a's partitions once a's session expired, not before.
    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await a.exited;
    await produce(400, 200);
    await until('b to take over the killed member\'s partitions', () => ownedBy(b).length === 4, SESSION_MS + 20_000);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(SESSION_MS - 1000);

    // A third member mid-stream: partitions move from b by revocation, never owned twice.
    const producing = produce(600, 400);
    const c = startConsumer('c', 'g');
    await until('b and c to own 2 partitions each', () => ownedBy(b).length === 2 && ownedBy(c).length === 2, 60_000);
    await producing;
    const all = () => new Set(consumers.flatMap((x) => [...x.seen]));
    await until('all 1000 records to be consumed', () => all().size === 1000, 60_000);
    expect(overlaps).toEqual([]);
    for (let i = 0; i < 1000; i++) expect(all().has(`v${i}`)).toBe(true);

    d = await describeGroup('g');
    expect(d).toMatchObject({ groupState: 'Stable', assignorName: 'uniform' });
    const epoch = d.groupEpoch;

    // Kafka's own tool: members and lag, and the group listed as a consumer-protocol group.
    const members = ok(await tools.consumerGroups(['--bootstrap-server', broker!.bootstrap, '--describe', '--group', 'g', '--members']));
    expect(members.split('\n').filter((l) => l.startsWith('g ')).length).toBe(2);
    await until('kafka-consumer-groups --describe showing 4 partitions at lag 0', async () => {
      const out = ok(await tools.consumerGroups(['--bootstrap-server', broker!.bootstrap, '--describe', '--group', 'g']));
      const rows = out.split('\n').filter((l) => l.startsWith(`g `) && l.includes(TOPIC));
      // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
      return rows.length === 4 && rows.every((r) => r.split(/\s+/)[5] === '0');
    }, 30_000);
    const listed = ok(await tools.consumerGroups(['--bootstrap-server', broker!.bootstrap, '--list', '--type', 'consumer']));
    // GROUP TYPE
    expect(listed.split('\n').map((l) => l.trim().split(/\s+/))).toContainEqual(['g', 'Consumer']);

    // Restart on the same log dir (members killed first, so they are still in the group's records).
    for (const x of [b, c]) x.child.kill('SIGKILL');
    await Promise.all([b.exited, c.exited]);
    const before = await kafkaRequest(broker!.port, 9, 9, { groups: [{ groupId: 'g', memberId: null, memberEpoch: -1, topics: null }], requireStable: false });
    await broker!.stop();
    broker = await startBroker({ logDir: broker!.logDir, set: [`group.consumer.session.timeout.ms=${SESSION_MS}`, `group.consumer.heartbeat.interval.ms=${HEARTBEAT_MS}`] });
    const after = await describeGroup('g');
    expect(after.groupEpoch).toBe(epoch);
    expect(after.members.map((m) => m.memberEpoch)).toEqual(d.members.map((m) => m.memberEpoch));
    const offsets = await kafkaRequest(broker!.port, 9, 9, { groups: [{ groupId: 'g', memberId: null, memberEpoch: -1, topics: null }], requireStable: false });
    expect(offsets.groups).toEqual(before.groups);
    expect(offsets.groups[0]!.topics[0]!.partitions.reduce((n, p) => n + Number(p.committedOffset), 0)).toBe(1000);
  }, 400_000);
});
