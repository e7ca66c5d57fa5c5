// Consumer groups end to end, with real clients in real processes, run twice: against `runnel
// start` (the coordinator inside the single node) and against a cluster whose coordinator is its
// own process (Redis, a controller, two brokers, one coordinator; clients find it through
// FindCoordinator and Metadata). A kafkajs member killed with -9 hands its partitions over without
// skipping records; kcat -G (librdkafka) and @platformatic/kafka split and rebalance a topic;
// committed offsets survive a kill -9 of the coordinator; a hung member is removed after its
// session timeout, while a LeaveGroup rebalances at once.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Consumer, MessagesStreamModes, stringDeserializers } from '@platformatic/kafka';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, decodeResponse, encodeRequest, ErrorCode } from '@runnel/protocol';
import { startBroker } from './helpers/broker.ts';
import { startCluster } from './helpers/cluster.ts';
import { startProcess, type Started } from './helpers/process.ts';
import { RawKafka } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const memberScript = join(import.meta.dirname, 'fixtures/group-member.ts');
// The members' session timeout: 6 s (kafkajs's default is 30 s; Kafka's smallest allowed), so the
// kill -9 and the hang are each waited out in seconds. Not shorter: on a loaded CI machine a
// LeaveGroup rebalance (the rejoin of every member) takes ~3 s, and the test tells it from a
// session expiry; the nodes' group.min.session.timeout.ms (GROUP_SET) allows shorter ones.
const SESSION_MS = 6_000;
const GROUP_SET = ['group.min.session.timeout.ms=1000'];

interface MemberEvent { name: string; ev: 'join' | 'msg' | 'commit'; memberId?: string; assignment?: number[]; partition?: number; offset?: number; value?: string; generation?: number; at: number }

/** A group member process and the events it printed, stamped with the time they were read. */
class Member {
  readonly events: MemberEvent[] = [];
  readonly name: string;
  readonly proc: Started;
  private constructor(name: string, proc: Started) {
    this.name = name;
    this.proc = proc;
    let pending = '';
    proc.child.stdout!.on('data', (b: Buffer) => {
      pending += b.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.startsWith('{')) this.events.push({ ...JSON.parse(line), at: Date.now() });
    });
  }
  static async start(target: Target, group: string, topic: string, name: string): Promise<Member> {
    return new Member(name, await startProcess(process.execPath, [memberScript, target.bootstrap, group, topic, name, String(SESSION_MS)]));
  }
  lastJoin(after = 0) { return this.events.filter((e) => e.ev === 'join' && e.at >= after).at(-1) as (MemberEvent & { assignment: number[] }) | undefined; }
  messages() { return this.events.filter((e) => e.ev === 'msg'); }
  commits() { return this.events.filter((e) => e.ev === 'commit'); }
}

/** True when the members' latest assignments (after `since`) split all `n` partitions between them. */
function covers(members: Member[], n: number, since = 0): boolean {
  const parts = members.flatMap((m) => m.lastJoin(since)?.assignment ?? []);
  return parts.length === n && new Set(parts).size === n && members.every((m) => (m.lastJoin(since)?.assignment.length ?? 0) > 0);
}

/** Produces one record every few ms, round robin over the partitions, until stopped. */
function steadyProducer(producer: Producer, topic: string, partitions: number) {
  let seq = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      const batch = Array.from({ length: 5 }, () => ({ partition: seq % partitions, value: String(seq++) }));
      for (const m of batch) await producer.send({ topic, messages: [{ value: m.value }], acks: -1 }).then(() => undefined, () => undefined);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return { stop: async () => { running = false; await done; return seq; } };
}

/** Where the group tests run: what they need to reach, crash and restart the coordinator. */
interface Target {
  readonly bootstrap: string;
  /** The Kafka port of the node that coordinates the test groups (for raw requests). */
  readonly coordinatorPort: number;
  /** kill -9 the coordinator, then start it again on its data; resolves when it serves again. */
  crashAndRestartCoordinator(): Promise<void>;
  /** A line the restarted coordinator logs that proves it came back from its durable state. */
  readonly recoveredLine: RegExp;
  output(): string;
  cleanup(): Promise<void>;
}

const targets: Record<string, () => Promise<Target>> = {
  'runnel start': async () => {
    let broker = await startBroker({ set: GROUP_SET });
    const first = broker;
    return {
      get bootstrap() { return broker.bootstrap; },
      get coordinatorPort() { return broker.port; },
      async crashAndRestartCoordinator() {
        broker.process.child.kill('SIGKILL');
        await broker.process.exited();
        broker = await startBroker({ logDir: first.logDir, set: GROUP_SET });
      },
      recoveredLine: /recovering log dir after an unclean shutdown/,
      output: () => broker.process.output(),
      cleanup: () => broker.cleanup(),
    };
  },
  'a cluster with the coordinator in its own process': async () => {
    const cluster = await startCluster({ brokers: 2, coordinators: 1, set: GROUP_SET });
    return {
      get bootstrap() { return cluster.bootstrap; },
      get coordinatorPort() { return cluster.coordinators[0]!.port; },
      async crashAndRestartCoordinator() {
        const c = cluster.coordinators[0]!;
        c.process.child.kill('SIGKILL');
        await c.process.exited();
        await cluster.restart(c);
      },
      recoveredLine: /took over __consumer_offsets partition/,
      output: () => cluster.coordinators[0]!.process.output(),
      cleanup: () => cluster.cleanup(),
    };
  },
};

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

describe.each(Object.keys(targets))('consumer groups with real clients and processes: %s', (targetName) => {
  // One target per block, started once: every test uses its own topic and group, and the
  // coordinator crash test leaves the target serving (restarted) for the tests after it.
  let shared: Target | undefined;
  beforeAll(async () => {
    shared = await targets[targetName]!();
  });
  afterAll(async () => {
    await shared?.cleanup();
  });
  const start = async () => shared!;

  it('moves a killed kafkajs member\'s partitions to the others without skipping records', async () => {
    const target = await start();
    const kafka = new Kafka({ brokers: target.bootstrap.split(','), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 6 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const production = steadyProducer(producer, 'orders', 6);

    const members = await Promise.all(['m1', 'm2', 'm3'].map((n) => Member.start(target, 'g-kill', 'orders', n)));
    for (const m of members) cleanups.push(() => m.proc.stop(1_000));
    await until('3 members to share 6 partitions', () => covers(members, 6), 30_000);
    await until('the victim to commit', () => members[0]!.commits().length > 0, 10_000);
    await new Promise((r) => setTimeout(r, 1_000));

    const [victim, ...survivors] = members as [Member, Member, Member];
    const killedAt = Date.now();
    victim.proc.child.kill('SIGKILL');
    await until('the survivors to take all 6 partitions', () => covers(survivors, 6, killedAt), SESSION_MS + 10_000);
    const takeoverMs = Math.max(...survivors.map((m) => m.lastJoin(killedAt)!.at)) - killedAt;
    expect(takeoverMs).toBeLessThan(SESSION_MS + 5_000);

    await new Promise((r) => setTimeout(r, 1_000));
    const produced = await production.stop();
    const consumedBy = new Map<string, Member[]>();
    await until('every produced record to be consumed', () => {
      consumedBy.clear();
      for (const m of members) for (const e of m.messages()) consumedBy.set(e.value!, [...(consumedBy.get(e.value!) ?? []), m]);
      return consumedBy.size >= produced;
    }, 30_000);
    for (let i = 0; i < produced; i++) expect(consumedBy.has(String(i))).toBe(true);

    // A record read twice was read first by a member that had not committed past it.
    const lastCommit = (m: Member, p: number) => Math.max(-1, ...m.commits().filter((c) => c.partition === p).map((c) => c.offset!));
    const firstReader = new Map<string, { m: Member; e: MemberEvent }>();
    for (const m of members) for (const e of m.messages()) {
      const key = `${e.partition}:${e.offset}`;
      const seen = firstReader.get(key);
      if (!seen || e.at < seen.e.at) firstReader.set(key, { m, e });
    }
    let duplicates = 0;
    for (const [key, { m }] of firstReader) {
      const [p, o] = key.split(':').map(Number) as [number, number];
      const readers = members.filter((x) => x.messages().some((e) => e.partition === p && e.offset === o));
      if (readers.length > 1) {
        duplicates++;
        expect(o).toBeGreaterThanOrEqual(lastCommit(m, p));
      }
    }
    expect(duplicates).toBeLessThan(produced);

    // The dead member's last generation can no longer commit.
    const last = victim.commits().at(-1)!;
    const conn = await RawKafka.open(target.coordinatorPort);
    conn.send(encodeRequest({ apiKey: ApiKey.OffsetCommit, apiVersion: 2, correlationId: 1, clientId: 'zombie' }, {
      groupId: 'g-kill', generationIdOrMemberEpoch: last.generation!, memberId: last.memberId!, retentionTimeMs: -1n,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: last.partition!, committedOffset: 0n, committedMetadata: null }] }],
    }));
    const [frame] = await conn.waitFrames(1);
    conn.close();
    const code = decodeResponse(ApiKey.OffsetCommit, 2, frame!).body.topics[0]!.partitions[0]!.errorCode;
    expect([ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.ILLEGAL_GENERATION]).toContain(code);
  });

  it('removes a hung member after its session timeout, and rebalances at once on LeaveGroup', async () => {
    const target = await start();
    const admin = new Kafka({ brokers: target.bootstrap.split(','), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'hb', numPartitions: 4 }] });
    await admin.disconnect();
    const members = await Promise.all(['a', 'b', 'c'].map((n) => Member.start(target, 'g-hb', 'hb', n)));
    for (const m of members) cleanups.push(async () => { m.proc.child.kill('SIGCONT'); await m.proc.stop(1_000); });
    await until('3 members to share 4 partitions', () => covers(members, 4), 30_000);

    const [a, b, c] = members as [Member, Member, Member];
    const leftAt = Date.now();
    a.proc.child.kill('SIGTERM'); // kafkajs disconnect: LeaveGroup
    await until('b and c to take all partitions after the LeaveGroup', () => covers([b, c], 4, leftAt), SESSION_MS + 5_000);
    const leaveMs = Math.max(b.lastJoin(leftAt)!.at, c.lastJoin(leftAt)!.at) - leftAt;

    const hungAt = Date.now();
    b.proc.child.kill('SIGSTOP'); // no more heartbeats
    await until('c alone to own every partition', () => covers([c], 4, hungAt), SESSION_MS + 10_000);
    const expiryMs = c.lastJoin(hungAt)!.at - hungAt;
    expect(expiryMs).toBeGreaterThanOrEqual(SESSION_MS - 1_000);
    // "At once" against the session expiry measured in the same run: both rebalances pay the same
    // rejoin overhead on a loaded machine, only the expiry also waits out the session.
    expect(leaveMs).toBeLessThan(expiryMs);
  });

  it('resumes a group from its committed offsets after the coordinator is killed with -9', async () => {
    const target = await start();
    const kafka = new Kafka({ brokers: target.bootstrap.split(','), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'resume', messages: Array.from({ length: 100 }, (_, i) => ({ value: String(i) })) });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: 'g-resume', maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'resume', fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve) => {
      void consumer.run({
        autoCommit: false,
        eachMessage: async ({ message, partition }) => {
          if (++seen === 60) {
            await consumer.commitOffsets([{ topic: 'resume', partition, offset: String(Number(message.offset) + 1) }]);
            resolve();
          }
        },
      });
    });
    await consumer.stop();
    await consumer.disconnect();
    await target.crashAndRestartCoordinator();

    const again = new Kafka({ brokers: target.bootstrap.split(','), logLevel: logLevel.NOTHING }).consumer({ groupId: 'g-resume', maxWaitTimeInMs: 100 });
    await again.connect();
    await again.subscribe({ topic: 'resume', fromBeginning: true });
    const offsets: number[] = [];
    await new Promise<void>((resolve) => {
      void again.run({ eachMessage: async ({ message }) => { offsets.push(Number(message.offset)); if (offsets.length === 40) resolve(); } });
    });
    await again.disconnect();
    expect(offsets).toEqual(Array.from({ length: 40 }, (_, i) => 60 + i));
    expect(target.output()).toMatch(target.recoveredLine);
  });

  it('kcat -G (librdkafka balanced consumer) splits a topic and rebalances when a member leaves', async () => {
    const target = await start();
    const kafka = new Kafka({ brokers: target.bootstrap.split(','), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'rdk', numPartitions: 4 }] });
    await admin.disconnect();
    const kcat = () => {
      const child = spawn('kcat', ['-b', target.bootstrap, '-G', 'g-rdk', '-u', '-f', '%p %o %s\\n', '-q', '-X', 'topic.auto.offset.reset=earliest', 'rdk']);
      const lines: string[] = [];
      let buf = '';
      child.stdout.on('data', (d: Buffer) => { buf += d; const parts = buf.split('\n'); buf = parts.pop()!; lines.push(...parts); });
      cleanups.push(async () => { child.kill('SIGKILL'); });
      return { child, lines };
    };
    const k1 = kcat();
    const k2 = kcat();
    const groupIs = async (state: string, members: number) => {
      const a = kafka.admin();
      await a.connect();
      const g = (await a.describeGroups(['g-rdk'])).groups[0]!;
      await a.disconnect();
      return g.state === state && g.members.length === members;
    };
    await until('a stable group of 2 kcat members', () => groupIs('Stable', 2), 30_000);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'rdk', messages: Array.from({ length: 400 }, (_, i) => ({ partition: i % 4, value: `a${i}` })) });
    await until('400 records across both kcat members', () => k1.lines.length + k2.lines.length >= 400, 20_000);
    const partitionsOf = (lines: string[]) => new Set(lines.map((l) => Number(l.split(' ')[0])));
    const p1 = partitionsOf(k1.lines);
    const p2 = partitionsOf(k2.lines);
    expect(p1.size).toBe(2);
    expect(p2.size).toBe(2);
    expect(new Set([...p1, ...p2]).size).toBe(4);

    k2.child.kill('SIGTERM'); // librdkafka leaves the group on a clean exit
    await until('k1 alone in a stable group', () => groupIs('Stable', 1), 30_000);
    await producer.send({ topic: 'rdk', messages: Array.from({ length: 400 }, (_, i) => ({ partition: i % 4, value: `b${i}` })) });
    await until('k1 to read every new record', () => k1.lines.filter((l) => l.split(' ')[2]!.startsWith('b')).length >= 400, 30_000);
    expect(partitionsOf(k1.lines.filter((l) => l.split(' ')[2]!.startsWith('b'))).size).toBe(4);
    await producer.disconnect();
  });

  it('@platformatic/kafka consumers split a topic and rebalance when one closes', async () => {
    const target = await start();
    const kafka = new Kafka({ brokers: target.bootstrap.split(','), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'plt-g', numPartitions: 4 }] });
    await admin.disconnect();
    const member = async (name: string) => {
      const consumer = new Consumer({ groupId: 'g-plt', clientId: name, bootstrapBrokers: target.bootstrap.split(','), deserializers: stringDeserializers, maxWaitTime: 100, sessionTimeout: SESSION_MS, heartbeatInterval: 300 });
      const stream = await consumer.consume({ topics: ['plt-g'], mode: MessagesStreamModes.COMMITTED, fallbackMode: 'earliest', autocommit: 100 });
      const got: { partition: number; value: string }[] = [];
      stream.on('data', (m) => got.push({ partition: m.partition, value: m.value }));
      return { consumer, stream, got };
    };
    const c1 = await member('p1');
    const c2 = await member('p2');
    cleanups.push(async () => { await c1.stream.close().catch(() => {}); await c1.consumer.close(true).catch(() => {}); });
    // Two each: a sum of 4 is also met while c1 still holds all four from before c2 joined.
    await until('both in a stable group', () => (c1.consumer.assignments?.[0]?.partitions.length ?? 0) === 2
      && (c2.consumer.assignments?.[0]?.partitions.length ?? 0) === 2, 30_000);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'plt-g', messages: Array.from({ length: 400 }, (_, i) => ({ partition: i % 4, value: `a${i}` })) });
    await until('400 records across both', () => c1.got.length + c2.got.length >= 400, 20_000);
    const parts = (got: { partition: number }[]) => new Set(got.map((m) => m.partition));
    expect(parts(c1.got).size).toBe(2);
    expect(parts(c2.got).size).toBe(2);
    expect(new Set([...parts(c1.got), ...parts(c2.got)]).size).toBe(4);

    await c2.stream.close();
    await c2.consumer.close();
    await until('c1 to own all 4 partitions', () => (c1.consumer.assignments?.[0]?.partitions.length ?? 0) === 4, 20_000);
    await producer.send({ topic: 'plt-g', messages: Array.from({ length: 400 }, (_, i) => ({ partition: i % 4, value: `b${i}` })) });
    await until('c1 to read every new record', () => c1.got.filter((m) => m.value.startsWith('b')).length >= 400, 20_000);
    await producer.disconnect();
  });
});
