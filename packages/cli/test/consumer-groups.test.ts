/**
 * `runnel consumer-groups` against a real broker process with a real kafkajs group: Kafka's
 * kafka-consumer-groups.sh output formats (exact headers and padding), LAG = LOG-END-OFFSET −
 * CURRENT-OFFSET, Runnel's LAG-SECONDS column (the age of the record at CURRENT-OFFSET − 1, with
 * a fixed clock so the value is exact), members and state while the group is active, the
 * "no active members" note after it stops, offset resets and group deletion.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Buffer } from 'node:buffer';
import { Command } from 'commander';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from '../../../test/helpers/broker.ts';
import { decodeConsumerAssignment } from '@runnel/client';
import { consumerGroupsCommand, parseDuration } from '../src/consumer-groups.ts';

const runnel = join(import.meta.dirname, '../bin/runnel.ts');
const exec = promisify(execFile);

const TOPIC = 'cg-orders';
const GROUP = 'cg-app';
const CLIENT_ID = 'cg-client';
/** The fixed "now" of every in-process run, so LAG-SECONDS is exact. */
const NOW = Date.now();
/** Record i (same on both partitions) is stamped NOW − age(i) seconds: the oldest first. */
const ageSeconds = (i: number) => 1000 - i * 10;

let broker: TestBroker;
let kafka: Kafka;
let consumer: Consumer | null = null;
let memberId = '';

interface Run { code: number; stdout: string; stderr: string; lines: string[] }

/** Runs `runnel consumer-groups ...args` in-process with captured output and a fixed clock. */
async function cg(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  let code = 0;
  const io = { out: (t: string) => { stdout += t; }, err: (t: string) => { stderr += t; }, now: () => NOW };
  const saved = process.exitCode;
  const program = new Command('runnel').exitOverride().addCommand(consumerGroupsCommand(io));
  await program.parseAsync(['node', 'runnel', 'consumer-groups', '--bootstrap-server', broker.bootstrap, ...args]);
  code = Number(process.exitCode ?? 0);
  process.exitCode = saved;
  return { code, stdout, stderr, lines: stdout.split('\n') };
}

const cols = (line: string) => line.trim().split(/\s+/);
const pad = (s: string, n: number) => s.padEnd(n);

async function produce(partition: number, from: number, to: number): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (let i = from; i < to; i++) messages.push({ partition, value: `v${i}`, timestamp: String(NOW - ageSeconds(i) * 1000) });
  await producer.send({ topic: TOPIC, messages });
  await producer.disconnect();
}

beforeAll(async () => {
  broker = await startBroker();
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: CLIENT_ID, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();
  // Offsets 0..5 on both partitions before the group commits.
  await produce(0, 0, 6);
  await produce(1, 0, 6);

  consumer = kafka.consumer({ groupId: GROUP, maxWaitTimeInMs: 100 });
  const joined = new Promise<string>((resolve) => consumer!.on(consumer!.events.GROUP_JOIN, (e) => resolve(e.payload.memberId)));
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await consumer.run({ autoCommit: false, eachMessage: async () => {} });
  memberId = await joined;
  // p0 committed at 3 (last committed record: offset 2), p1 at 6 (offset 5).
  await consumer.commitOffsets([{ topic: TOPIC, partition: 0, offset: '3' }, { topic: TOPIC, partition: 1, offset: '6' }]);
  // More (old) records arrive after the commit: the log end moves to 10, the committed offsets stay.
  await produce(0, 6, 10);
  await produce(1, 6, 10);
}, 60_000);

afterAll(async () => {
  await consumer?.disconnect().catch(() => {});
  await broker?.cleanup();
});

describe('runnel consumer-groups while the group is active', () => {
  it('--list prints the group, --list --state adds Kafka\'s GROUP/STATE table and filters, --all-groups finds it', async () => {
    const r = await cg('--list');
    expect(r.code).toBe(0);
    expect(r.lines).toContain(GROUP);

    const s = await cg('--list', '--state', 'stable,empty');
    expect(s.lines[0]).toBe(`${pad('GROUP', 25)} ${pad('STATE', 20)}`);
    expect(s.lines).toContain(`${pad(GROUP, 25)} ${pad('Stable', 20)}`);

    const none = await cg('--list', '--state', 'Empty');
    expect(none.lines.filter((l) => l.startsWith(GROUP))).toEqual([]);

    const all = await cg('--describe', '--all-groups', '--state');
    expect(all.lines.filter((l) => l.startsWith(`${GROUP} `)).map((l) => cols(l).at(-2))).toEqual(['Stable']);

    const bad = await cg('--list', '--state', 'sleepy');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Invalid state list 'sleepy'/);
  });

  it('--describe prints Kafka\'s nine columns plus LAG-SECONDS, with member columns', async () => {
    const r = await cg('--describe', '--group', GROUP);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.lines[0]).toBe(''); // Kafka starts each table with a blank line
    const c = Math.max(15, memberId.length);
    const header = [pad('GROUP', 15), pad('TOPIC', 15), pad('PARTITION', 10), pad('CURRENT-OFFSET', 15), pad('LOG-END-OFFSET', 15),
      pad('LAG', 15), pad('CONSUMER-ID', c), pad('HOST', 15), pad('CLIENT-ID', 15), 'LAG-SECONDS'].join(' ');
    expect(r.lines[1]).toBe(header);
    const rows = r.lines.slice(2).filter(Boolean).map(cols);
    expect(rows).toEqual([
      // LAG = 10 − 3; the last committed record is offset 2, stamped ageSeconds(2) ago.
      [GROUP, TOPIC, '0', '3', '10', '7', memberId, '/127.0.0.1', CLIENT_ID, String(ageSeconds(2))],
      [GROUP, TOPIC, '1', '6', '10', '4', memberId, '/127.0.0.1', CLIENT_ID, String(ageSeconds(5))],
    ]);
    // Fields 5 and 6 (LEO, LAG), as scripts written for Kafka read them.
    expect(rows.reduce((a, row) => a + Number(row[5]), 0)).toBe(11);
  });

  it('--describe --offsets is the default table; LAG-SECONDS is 0 when LAG is 0', async () => {
    // kafkajs commits through the member, so the group stays Stable.
    await consumer!.commitOffsets([{ topic: TOPIC, partition: 1, offset: '10' }]);
    const r = await cg('--describe', '--offsets', '--group', GROUP);
    const p1 = r.lines.map(cols).find((row) => row[0] === GROUP && row[2] === '1');
    expect(p1).toEqual([GROUP, TOPIC, '1', '10', '10', '0', memberId, '/127.0.0.1', CLIENT_ID, '0']);
  });

  it('--describe --members [--verbose] lists the member with its assignment', async () => {
    const r = await cg('--describe', '--members', '--group', GROUP);
    const c = Math.max(15, memberId.length);
    expect(r.lines[0]).toBe('');
    expect(r.lines[1]).toBe(`${pad('GROUP', 15)} ${pad('CONSUMER-ID', c)} ${pad('HOST', 15)} ${pad('CLIENT-ID', 15)} ${pad('#PARTITIONS', 15)} `);
    expect(cols(r.lines[2]!)).toEqual([GROUP, memberId, '/127.0.0.1', CLIENT_ID, '2']);

    const v = await cg('--describe', '--members', '--verbose', '--group', GROUP);
    expect(v.lines[1]).toBe(`${pad('GROUP', 15)} ${pad('CONSUMER-ID', c)} ${pad('HOST', 15)} ${pad('CLIENT-ID', 15)} ${pad('#PARTITIONS', 15)} ASSIGNMENT`);
    expect(cols(v.lines[2]!)).toEqual([GROUP, memberId, '/127.0.0.1', CLIENT_ID, '2', `${TOPIC}(0,1)`]);
  });

  it('--describe --state shows the coordinator, the assignor, Stable and one member', async () => {
    const r = await cg('--describe', '--state', '--group', GROUP);
    expect(r.lines[0]).toBe('');
    expect(r.lines[1]).toBe(`${pad('GROUP', 15)} ${pad('COORDINATOR (ID)', 25)} ${pad('ASSIGNMENT-STRATEGY', 20)} ${pad('STATE', 20)} #MEMBERS`);
    const m = /^cg-app\s+127\.0\.0\.1:(\d+) {2}\((\d+)\)\s+(\S+)\s+Stable\s+1$/.exec(r.lines[2]!);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBe(broker.port);
    expect(m![3]).toBe('RoundRobinAssigner'); // kafkajs's default assignor
  });

  it('--describe --verbose adds Kafka\'s LEADER-EPOCH (offsets) and epoch columns (state)', async () => {
    const r = await cg('--describe', '--verbose', '--group', GROUP);
    const c = Math.max(15, memberId.length);
    expect(r.lines[1]).toBe([pad('GROUP', 15), pad('TOPIC', 15), pad('PARTITION', 10), pad('LEADER-EPOCH', 15), pad('CURRENT-OFFSET', 15),
      pad('LOG-END-OFFSET', 15), pad('LAG', 15), pad('CONSUMER-ID', c), pad('HOST', 15), pad('CLIENT-ID', 15), 'LAG-SECONDS'].join(' '));
    const p0 = cols(r.lines[2]!);
    expect(p0).toHaveLength(11);
    expect([p0[0], p0[2], p0[4], p0[5], p0[6]]).toEqual([GROUP, '0', '3', '10', '7']);
    const s = await cg('--describe', '--state', '--verbose', '--group', GROUP);
    expect(cols(s.lines[1]!)).toEqual(['GROUP', 'COORDINATOR', '(ID)', 'ASSIGNMENT-STRATEGY', 'STATE', 'GROUP-EPOCH', 'TARGET-ASSIGNMENT-EPOCH', '#MEMBERS']);
    expect(cols(s.lines[2]!).slice(-3)).toEqual(['-', '-', '1']);
  });

  it('--delete-offsets refuses a topic the active group subscribes to', async () => {
    const r = await cg('--delete-offsets', '--group', GROUP, '--topic', `${TOPIC}:0`);
    expect(r.code).toBe(1);
    expect(r.lines[1]).toBe('Error: Encountered some partition-level error, see the follow-up details.');
    expect(r.lines[3]).toBe(`${pad('TOPIC', 15)} ${pad('PARTITION', 10)} ${pad('STATUS', 15)}`);
    expect(r.lines[4]!.trimEnd()).toBe(`${pad(TOPIC, 15)} ${pad('0', 10)} Error: GROUP_SUBSCRIBED_TO_TOPIC`);
  });

  it('--reset-offsets refuses an active group', async () => {
    const r = await cg('--reset-offsets', '--group', GROUP, '--topic', TOPIC, '--to-earliest', '--execute');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`Error: Assignments can only be reset if the group '${GROUP}' is inactive, but the current state is Stable.`);
  });
});

describe('runnel consumer-groups after the group stops', () => {
  beforeAll(async () => {
    await consumer!.disconnect();
    consumer = null;
  });

  it('--describe first says the group has no active members, then shows offsets without members', async () => {
    const r = await cg('--describe', '--group', GROUP);
    expect(r.stderr).toBe(`\nConsumer group '${GROUP}' has no active members.\n`);
    expect(r.lines[1]).toBe([pad('GROUP', 15), pad('TOPIC', 15), pad('PARTITION', 10), pad('CURRENT-OFFSET', 15), pad('LOG-END-OFFSET', 15),
      pad('LAG', 15), pad('CONSUMER-ID', 15), pad('HOST', 15), pad('CLIENT-ID', 15), 'LAG-SECONDS'].join(' '));
    expect(r.lines.slice(2).filter(Boolean).map(cols)).toEqual([
      [GROUP, TOPIC, '0', '3', '10', '7', '-', '-', '-', String(ageSeconds(2))],
      [GROUP, TOPIC, '1', '10', '10', '0', '-', '-', '-', '0'],
    ]);
    const s = await cg('--describe', '--state', '--group', GROUP);
    expect(s.lines[2]).toMatch(/^cg-app\s+127\.0\.0\.1:\d+ {2}\(\d+\)\s+\S+\s+Empty\s+0$/);
  });

  it('--reset-offsets: dry run by default, --execute commits, --shift-by and --to-offset clamp to the log', async () => {
    const dry = await cg('--reset-offsets', '--group', GROUP, '--topic', TOPIC, '--to-earliest');
    expect(dry.code).toBe(0);
    expect(dry.stderr).toMatch(/^WARN: No action will be performed as the --execute option is missing/);
    expect(dry.lines[1]).toBe(`${pad('GROUP', 30)} ${pad('TOPIC', 30)} ${pad('PARTITION', 10)} ${pad('NEW-OFFSET', 15)}`);
    expect(dry.lines.slice(2).filter(Boolean).map(cols)).toEqual([[GROUP, TOPIC, '0', '0'], [GROUP, TOPIC, '1', '0']]);
    const admin = kafka.admin();
    await admin.connect();
    const committed = async () => (await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] }))[0]!.partitions
      .map((p) => [p.partition, p.offset]).sort((a, b) => Number(a[0]) - Number(b[0]));
    expect(await committed()).toEqual([[0, '3'], [1, '10']]);

    const exec1 = await cg('--reset-offsets', '--group', GROUP, '--topic', TOPIC, '--to-earliest', '--execute');
    expect(exec1.code).toBe(0);
    expect(exec1.stderr).toBe('');
    expect(await committed()).toEqual([[0, '0'], [1, '0']]);

    const shift = await cg('--reset-offsets', '--group', GROUP, '--topic', `${TOPIC}:1`, '--shift-by', '-5', '--execute');
    expect(shift.lines.slice(2).filter(Boolean).map(cols)).toEqual([[GROUP, TOPIC, '1', '0']]); // 0 − 5 clamps to 0
    const to = await cg('--reset-offsets', '--group', GROUP, '--topic', `${TOPIC}:0`, '--to-offset', '99', '--execute');
    expect(to.lines.slice(2).filter(Boolean).map(cols)).toEqual([[GROUP, TOPIC, '0', '10']]); // clamps to the log end
    // The first record stamped at or after NOW − ageSeconds(4) is offset 4.
    const at = await cg('--reset-offsets', '--group', GROUP, '--topic', `${TOPIC}:1`, '--to-datetime', new Date(NOW - ageSeconds(4) * 1000).toISOString(), '--execute');
    expect(at.lines.slice(2).filter(Boolean).map(cols)).toEqual([[GROUP, TOPIC, '1', '4']]);
    expect(await committed()).toEqual([[0, '10'], [1, '4']]);
    await admin.disconnect();

    const d = await cg('--describe', '--group', GROUP);
    expect(d.lines.slice(2).filter(Boolean).map((l) => cols(l).slice(0, 6))).toEqual([
      [GROUP, TOPIC, '0', '10', '10', '0'],
      [GROUP, TOPIC, '1', '4', '10', '6'],
    ]);
  });

  it('--delete-offsets removes one partition\'s committed offset of the empty group', async () => {
    const r = await cg('--delete-offsets', '--group', GROUP, '--topic', `${TOPIC}:1`);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toBe(`Request succeeded for deleting offsets from group ${GROUP}.\n\n${pad('TOPIC', 15)} ${pad('PARTITION', 10)} ${pad('STATUS', 15)}\n${pad(TOPIC, 15)} ${pad('1', 10)} ${pad('Successful', 15)}\n`);
    const d = await cg('--describe', '--group', GROUP);
    expect(d.lines.slice(2).filter(Boolean).map((l) => cols(l)[2])).toEqual(['0']);
  });

  it('--delete removes the group; describing it then says it does not exist', async () => {
    const r = await cg('--delete', '--group', GROUP);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Deletion of requested consumer groups ('${GROUP}') was successful.\n`);
    expect((await cg('--list')).lines).not.toContain(GROUP);
    const d = await cg('--describe', '--group', GROUP);
    expect(d.stdout).toBe(`\nError: Consumer group '${GROUP}' does not exist.\n`);
    const again = await cg('--delete', '--group', GROUP);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(new RegExp(`\\* Group '${GROUP}' could not be deleted due to: GROUP_ID_NOT_FOUND`));
  });
});

describe('runnel consumer-groups flags and the command line', () => {
  it('rejects a missing or double action and a reset without a scenario, before connecting', async () => {
    expect((await cg('--group', 'x')).stderr).toMatch(/exactly one action/);
    expect((await cg('--list', '--delete', '--group', 'x')).code).toBe(1);
    const r = await cg('--reset-offsets', '--group', 'x', '--topic', TOPIC);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exactly one of --to-earliest/);
    expect((await cg('--describe')).stderr).toMatch(/--group or --all-groups is required/);
  });

  it('is registered in `runnel` and documents LAG-SECONDS as Runnel\'s addition', async () => {
    const help = await exec(process.execPath, [runnel, 'consumer-groups', '--help'], { timeout: 30_000 });
    expect(help.stdout).toMatch(/LAG-SECONDS is Runnel's addition/);
    const list = await exec(process.execPath, [runnel, 'consumer-groups', '--bootstrap-server', broker.bootstrap, '--list'], { timeout: 30_000 });
    expect(list.stderr).toBe('');
  });

  it('decodes ConsumerProtocolAssignment bytes and ISO durations', () => {
    const topic = Buffer.from('t1');
    const bytes = Buffer.concat([
      Buffer.from([0, 1]), Buffer.from([0, 0, 0, 1]), Buffer.from([0, topic.length]), topic,
      Buffer.from([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 7]), Buffer.from([0, 0, 0, 2, 0xab, 0xcd]),
    ]);
    const a = decodeConsumerAssignment(bytes);
    expect(a.version).toBe(1);
    expect(a.topics).toEqual([{ topic: 't1', partitions: [3, 7] }]);
    expect(a.userData).toEqual(Buffer.from([0xab, 0xcd]));
    expect(decodeConsumerAssignment(Buffer.alloc(0)).topics).toEqual([]);
    expect(() => decodeConsumerAssignment(bytes.subarray(0, 9))).toThrow(/truncated/);
    expect(parseDuration('P1DT2H3M4.5S')).toBe(((24 + 2) * 60 + 3) * 60_000 + 4500);
    expect(parseDuration('PT10M')).toBe(600_000);
    expect(() => parseDuration('10 minutes')).toThrow();
  });
});
