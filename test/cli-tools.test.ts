/**
 * Runnel's Kafka-style CLI tools as an operator runs them, each a real `runnel` process against a
 * real `runnel start`: `topics` (create, list, describe, alter, delete; the describe lines equal
 * kafka-topics.sh 4.x's for the same topic), `console-producer` with keys and headers from stdin →
 * `console-consumer` printing them with Kafka's formatter properties, `--max-messages`, `--group`
 * commits that `consumer-groups --describe` shows, `configs` alter/describe (the same lines as
 * kafka-configs.sh), `consumer-groups --reset-offsets --export` then `--from-file`, and bad input
 * (unknown topic, bad config, bad line) as one line and exit code 1. The first call of each kind
 * runs a real `runnel` process (exit codes, stdin, stdio); the rest run the same commands in this
 * process to keep the file quick.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicsCommand } from '../packages/cli/src/topics.ts';
import { configsCommand } from '../packages/cli/src/configs.ts';
import { consumerGroupsCommand } from '../packages/cli/src/consumer-groups.ts';
import { consoleProducerCommand } from '../packages/cli/src/console-producer.ts';
import { consoleConsumerCommand } from '../packages/cli/src/console-consumer.ts';
import { Progress } from '../packages/cli/src/tool-common.ts';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { kafkaTools, ok, type KafkaTools } from './helpers/kafka-tools.ts';

const runnelBin = join(import.meta.dirname, '../packages/cli/bin/runnel.ts');

let broker: TestBroker;
let tools: KafkaTools;
let tmp: string;

interface Run { code: number | null; stdout: string; stderr: string }

/** `runnel <args>` with `input` on stdin; killed after 60 s. */
function runnel(args: string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runnelBin, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.end(input);
  });
}

const bs = () => ['--bootstrap-server', broker.bootstrap];

/**
 * The same commands in this process (no Node start per call, which is most of a call's time on a
 * busy machine), with stdout/stderr captured and the exit code the command sets.
 */
async function run(args: string[], input = ''): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = { out: (t: string) => { stdout += t; }, err: (t: string) => { stderr += t; }, now: () => Date.now() };
  const saved = process.exitCode;
  process.exitCode = 0;
  const program = new Command('runnel').exitOverride()
    .addCommand(topicsCommand(io)).addCommand(configsCommand(io)).addCommand(consumerGroupsCommand(io))
    .addCommand(consoleProducerCommand(io, Readable.from([input]))).addCommand(consoleConsumerCommand(io));
  await program.parseAsync(['node', 'runnel', ...args]);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = saved;
  return { code, stdout, stderr };
}

beforeAll(async () => {
  [broker, tools, tmp] = await Promise.all([startBroker(), kafkaTools(), mkdtemp(join(tmpdir(), 'runnel-cli-tools-'))]);
}, 120_000);

afterAll(async () => {
  await broker?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('runnel topics', () => {
  it('creates, lists, describes (as kafka-topics.sh prints it), alters and deletes a topic', async () => {
    const created = await runnel(['topics', ...bs(), '--create', '--topic', 'tools-a', '--partitions', '3', '--config', 'retention.ms=60000']);
    expect(created).toMatchObject({ code: 0, stdout: 'Created topic tools-a.\n' });
    const again = await run(['topics', ...bs(), '--create', '--topic', 'tools-a']);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/^Error while executing topic command : .*TOPIC_ALREADY_EXISTS.*\n$/);
    expect((await run(['topics', ...bs(), '--create', '--topic', 'tools-a', '--if-not-exists'])).code).toBe(0);

    const list = await run(['topics', ...bs(), '--list', '--exclude-internal']);
    expect(list.stdout.split('\n')).toContain('tools-a');
    expect(list.stdout).not.toContain('__consumer_offsets');

    const ours = await run(['topics', ...bs(), '--describe', '--topic', 'tools-a']);
    expect(ours.code).toBe(0);
    const kafka = ok(await tools.topics([...bs(), '--describe', '--topic', 'tools-a']));
    // The same lines, byte for byte (topic id, tabs, the overridden config, the empty ELR fields).
    expect(ours.stdout).toBe(kafka);
    expect(ours.stdout.split('\n')[0]).toMatch(/^Topic: tools-a\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=60000$/);

    expect(await run(['topics', ...bs(), '--alter', '--topic', 'tools-a', '--partitions', '5'])).toMatchObject({ code: 0, stdout: '' });
    const after = await run(['topics', ...bs(), '--describe', '--topic', 'tools-a']);
    expect(after.stdout).toContain('PartitionCount: 5');
    expect(after.stdout.split('\n').filter((l) => l.startsWith('\tTopic: tools-a\tPartition: '))).toHaveLength(5);
    // Nothing is under-replicated on one node: only the filter's (empty) output.
    expect((await run(['topics', ...bs(), '--describe', '--topic', 'tools-a', '--under-replicated-partitions'])).stdout).toBe('');
    const shrink = await run(['topics', ...bs(), '--alter', '--topic', 'tools-a', '--partitions', '2']);
    expect(shrink.code).toBe(1);
    expect(shrink.stdout.trim().split('\n')).toHaveLength(1);

    expect(await run(['topics', ...bs(), '--delete', '--topic', 'tools-a'])).toMatchObject({ code: 0 });
    expect((await run(['topics', ...bs(), '--list'])).stdout.split('\n')).not.toContain('tools-a');
    expect((await run(['topics', ...bs(), '--delete', '--topic', 'tools-a', '--if-exists'])).code).toBe(0);
  }, 120_000);

  it('says what is wrong in one line with exit code 1', async () => {
    const missing = await runnel(['topics', ...bs(), '--describe', '--topic', 'no-such-topic']);
    expect(missing).toMatchObject({ code: 1, stdout: "Error while executing topic command : Topic 'no-such-topic' does not exist as expected\n" });
    const badConfig = await run(['topics', ...bs(), '--create', '--topic', 'tools-bad', '--config', 'retention.ms=soon']);
    expect(badConfig.code).toBe(1);
    expect(badConfig.stdout).toMatch(/^Error while executing topic command : .*INVALID_CONFIG.*retention\.ms.*\n$/);
    const noAction = await run(['topics', ...bs(), '--topic', 'x']);
    expect(noAction.code).toBe(1);
    expect(noAction.stderr.split('\n')[0]).toBe('Error: Command must include exactly one action: --list, --describe, --create, --alter or --delete');
    const help = await runnel(['topics', '--help']);
    expect(help.stdout).toContain('Examples:');
  }, 60_000);
});

describe('runnel console-producer and console-consumer', () => {
  it('sends keys and headers from stdin and prints them back with the formatter properties', async () => {
    expect((await run(['topics', ...bs(), '--create', '--topic', 'tools-kv', '--partitions', '1'])).code).toBe(0);
    const lines = 'trace:1,src:web\tk1\tfirst\n\tk2\tsecond\nsrc:cli\tk3\tthird\n';
    const produced = await runnel(['console-producer', ...bs(), '--topic', 'tools-kv', '--property', 'parse.key=true', '--property', 'parse.headers=true'], lines);
    expect(produced).toMatchObject({ code: 0, stdout: '' });

    const consumed = await runnel(['console-consumer', ...bs(), '--topic', 'tools-kv', '--from-beginning', '--max-messages', '3',
      '--property', 'print.key=true', '--property', 'print.headers=true', '--property', 'print.offset=true', '--property', 'print.partition=true']);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout).toBe(
      'Partition:0\tOffset:0\ttrace:1,src:web\tk1\tfirst\n'
      + 'Partition:0\tOffset:1\tNO_HEADERS\tk2\tsecond\n'
      + 'Partition:0\tOffset:2\tsrc:cli\tk3\tthird\n');
    expect(consumed.stderr).toContain('Processed a total of 3 messages');

    // --max-messages stops early; a custom key.separator and print.timestamp.
    const two = await run(['console-consumer', ...bs(), '--topic', 'tools-kv', '--from-beginning', '--max-messages', '2',
      '--property', 'print.key=true', '--property', 'key.separator= | ', '--property', 'print.timestamp=true']);
    expect(two.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^CreateTime:\d{13} \| k1 \| first$/), expect.stringMatching(/^CreateTime:\d{13} \| k2 \| second$/)]);
    expect(two.stderr).toContain('Processed a total of 2 messages');

    // --timeout-ms ends a read that finds nothing new (exit 0, as Kafka).
    const idle = await run(['console-consumer', ...bs(), '--topic', 'tools-kv', '--timeout-ms', '1500']);
    expect(idle.code).toBe(0);
    expect(idle.stdout).toBe('');
    expect(idle.stderr).toContain('Processed a total of 0 messages');
  }, 120_000);

  it('places keyed records as the Java client does and reads one partition from an offset', async () => {
    expect((await run(['topics', ...bs(), '--create', '--topic', 'tools-keys', '--partitions', '4'])).code).toBe(0);
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const produced = await run(['console-producer', ...bs(), '--topic', 'tools-keys', '--property', 'parse.key=true', '--property', 'key.separator=:'], keys.map((k) => `${k}:v-${k}\n`).join(''));
    expect(produced.code).toBe(0);
    const all = await run(['console-consumer', ...bs(), '--topic', 'tools-keys', '--from-beginning', '--max-messages', '8', '--property', 'print.key=true', '--property', 'print.partition=true']);
    // Partitions of the Java client's murmur2 partitioner for these keys over 4 partitions.
    const javaPartitions: Record<string, number> = { a: 0, b: 0, c: 2, d: 1, e: 2, f: 3, g: 3, h: 1 };
    const seen = Object.fromEntries(all.stdout.trim().split('\n').map((l) => { const [p, k] = l.split('\t'); return [k!, Number(p!.slice('Partition:'.length))]; }));
    expect(seen).toEqual(javaPartitions);
    const fromOne = await run(['console-consumer', ...bs(), '--topic', 'tools-keys', '--partition', '3', '--offset', '1', '--max-messages', '1']);
    expect(fromOne.stdout).toBe('v-g\n');
  }, 120_000);

  it('sends a long input whole and in order (reading waits while too many records are unacknowledged)', async () => {
    expect((await run(['topics', ...bs(), '--create', '--topic', 'tools-long', '--partitions', '1'])).code).toBe(0);
    const n = 25_000;
    const input = Array.from({ length: n }, (_, i) => `line-${i}\n`).join('');
    expect(await run(['console-producer', ...bs(), '--topic', 'tools-long'], input)).toMatchObject({ code: 0, stderr: '' });
    const read = await run(['console-consumer', ...bs(), '--topic', 'tools-long', '--from-beginning', '--max-messages', String(n)]);
    expect(read.stdout).toBe(input);
  }, 120_000);

  it('commits as a group member: consumer-groups --describe shows the offsets', async () => {
    expect((await run(['topics', ...bs(), '--create', '--topic', 'tools-group', '--partitions', '1'])).code).toBe(0);
    expect((await run(['console-producer', ...bs(), '--topic', 'tools-group'], 'm0\nm1\nm2\nm3\nm4\n')).code).toBe(0);
    const first = await run(['console-consumer', ...bs(), '--topic', 'tools-group', '--group', 'tools-g', '--from-beginning', '--max-messages', '3']);
    expect(first).toMatchObject({ code: 0, stdout: 'm0\nm1\nm2\n' });
    const described = await run(['consumer-groups', ...bs(), '--describe', '--group', 'tools-g']);
    const row = described.stdout.split('\n').find((l) => l.startsWith('tools-g '))!.trim().split(/\s+/);
    expect(row.slice(0, 6)).toEqual(['tools-g', 'tools-group', '0', '3', '5', '2']);
    // The next member of the group starts at the committed offset.
    const second = await run(['console-consumer', ...bs(), '--topic', 'tools-group', '--group', 'tools-g', '--max-messages', '2']);
    expect(second.stdout).toBe('m3\nm4\n');
  }, 120_000);

  it('refuses bad input in one line with exit code 1 and sends the lines before a bad one', async () => {
    expect((await run(['topics', ...bs(), '--create', '--topic', 'tools-bad-line', '--partitions', '1'])).code).toBe(0);
    const bad = await runnel(['console-producer', ...bs(), '--topic', 'tools-bad-line', '--property', 'parse.key=true'], 'k\tv\nno separator here\nk2\tv2\n');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("ERROR No key separator found on line number 2: 'no separator here'\n");
    const read = await run(['console-consumer', ...bs(), '--topic', 'tools-bad-line', '--from-beginning', '--timeout-ms', '1500']);
    expect(read.stdout).toBe('v\n');

    const unknown = await run(['console-consumer', ...bs(), '--topic', 'no-such-topic', '--max-messages', '1']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.split('\n')[0]).toBe('ERROR topic no-such-topic does not exist');
    const badProp = await run(['console-consumer', ...bs(), '--topic', 'tools-bad-line', '--property', 'print.keys=true']);
    expect(badProp.code).toBe(1);
    expect(badProp.stderr.split('\n')[0]).toMatch(/^Error: unknown formatter property print\.keys/);
  }, 120_000);
});

describe('runnel configs', () => {
  it('alters and describes topic configs with the lines kafka-configs.sh prints', async () => {
    expect((await run(['topics', ...bs(), '--create', '--topic', 'tools-cfg', '--partitions', '1'])).code).toBe(0);
    const altered = await run(['configs', ...bs(), '--alter', '--entity-type', 'topics', '--entity-name', 'tools-cfg', '--add-config', 'retention.ms=5000,segment.bytes=1048576']);
    expect(altered).toMatchObject({ code: 0, stdout: 'Completed updating config for topic tools-cfg.\n' });
    const ours = await run(['configs', ...bs(), '--describe', '--entity-type', 'topics', '--entity-name', 'tools-cfg']);
    const kafka = ok(await tools.configs([...bs(), '--describe', '--entity-type', 'topics', '--entity-name', 'tools-cfg']));
    expect(ours.stdout).toBe(kafka);
    expect(ours.stdout).toContain('  retention.ms=5000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=5000');

    expect((await run(['configs', ...bs(), '--alter', '--topic', 'tools-cfg', '--delete-config', 'segment.bytes'])).code).toBe(0);
    const after = await run(['configs', ...bs(), '--describe', '--topic', 'tools-cfg']);
    expect(after.stdout.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.trim().split('=')[0])).toEqual(['retention.ms']);

    const all = await run(['configs', ...bs(), '--describe', '--topic', 'tools-cfg', '--all']);
    expect(all.stdout.split('\n')[0]).toBe('All configs for topic tools-cfg are:');
    expect(all.stdout).toContain('  cleanup.policy=delete sensitive=false');

    const bad = await runnel(['configs', ...bs(), '--alter', '--topic', 'tools-cfg', '--add-config', 'retention.ms=abc']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^Error while executing config command: .*INVALID_CONFIG.*retention\.ms/);
    const missing = await run(['configs', ...bs(), '--alter', '--topic', 'no-such-topic', '--add-config', 'retention.ms=1']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^Error while executing config command: .*UNKNOWN_TOPIC_OR_PARTITION.*\n$/);
    // Broker configs: the cluster default set, described at its level, and removed again.
    const setDefault = await run(['configs', ...bs(), '--alter', '--entity-type', 'brokers', '--entity-default', '--add-config', 'leader.replication.throttled.rate=1048576']);
    expect(setDefault).toMatchObject({ code: 0, stdout: 'Completed updating default config for brokers in the cluster.\n' });
    const defaults = await run(['configs', ...bs(), '--describe', '--broker-defaults']);
    expect(defaults.stdout).toMatch(/^Default configs for brokers in the cluster are:\n  leader\.replication\.throttled\.rate=1048576 sensitive=false synonyms=\{DYNAMIC_DEFAULT_BROKER_CONFIG:leader\.replication\.throttled\.rate=1048576/);
    expect((await run(['configs', ...bs(), '--alter', '--broker-defaults', '--delete-config', 'leader.replication.throttled.rate'])).code).toBe(0);
    expect((await run(['configs', ...bs(), '--describe', '--broker-defaults'])).stdout).toBe('Default configs for brokers in the cluster are:\n');
    // No name: every broker, then the cluster default, as kafka-configs.sh lists them.
    const everyBroker = (await run(['configs', ...bs(), '--describe', '--entity-type', 'brokers'])).stdout.split('\n').filter((l) => !l.startsWith('  '));
    expect(everyBroker).toEqual(['Dynamic configs for broker 1 are:', 'Default configs for brokers in the cluster are:', '']);
    expect((await run(['configs', ...bs(), '--describe', '--entity-type', 'brokers', '--entity-name', '1'])).stdout.split('\n')[0]).toBe('Dynamic configs for broker 1 are:');
    const noBroker = await run(['configs', ...bs(), '--describe', '--broker', '7']);
    expect(noBroker.code).toBe(1);
    expect(noBroker.stderr).toBe('Error while executing config command: broker 7 is not in the cluster (brokers: 1)\n');

    const noEntity = await run(['configs', ...bs(), '--describe', '--entity-type', 'users']);
    expect(noEntity.code).toBe(1);
    expect(noEntity.stderr.split('\n')[0]).toMatch(/^Error: --entity-type must be topics or brokers/);
  }, 120_000);
});

describe('runnel consumer-groups --export and --from-file', () => {
  it('exports a reset plan as CSV and applies it from the file', async () => {
    expect((await run(['topics', ...bs(), '--create', '--topic', 'tools-reset', '--partitions', '2'])).code).toBe(0);
    const lines = Array.from({ length: 10 }, (_, i) => `${i % 2 === 0 ? 'even' : 'odd'}-${i}\tv${i}\n`).join('');
    expect((await run(['console-producer', ...bs(), '--topic', 'tools-reset', '--property', 'parse.key=true'], lines)).code).toBe(0);
    const ends = await Promise.all([0, 1].map(async (p) => {
      const r = await run(['console-consumer', ...bs(), '--topic', 'tools-reset', '--partition', String(p), '--offset', 'earliest', '--timeout-ms', '1500']);
      return r.stdout.trim().split('\n').filter(Boolean).length;
    }));
    expect(ends[0]! + ends[1]!).toBe(10);

    const exported = await run(['consumer-groups', ...bs(), '--reset-offsets', '--group', 'tools-csv', '--topic', 'tools-reset', '--to-latest', '--export', '--dry-run']);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toBe(`tools-reset,0,${ends[0]}\ntools-reset,1,${ends[1]}\n`);
    // Edit the plan: partition 0 back to 1, and apply it from the file.
    const file = join(tmp, 'offsets.csv');
    await writeFile(file, `tools-reset,0,1\ntools-reset,1,${ends[1]}\n`);
    const applied = await run(['consumer-groups', ...bs(), '--reset-offsets', '--group', 'tools-csv', '--from-file', file, '--execute']);
    expect(applied.code).toBe(0);
    const rows = applied.stdout.split('\n').filter((l) => l.startsWith('tools-csv')).map((l) => l.trim().split(/\s+/));
    expect(rows).toEqual([['tools-csv', 'tools-reset', '0', '1'], ['tools-csv', 'tools-reset', '1', String(ends[1])]]);
    const described = await run(['consumer-groups', ...bs(), '--describe', '--group', 'tools-csv']);
    const current = described.stdout.split('\n').filter((l) => l.startsWith('tools-csv ')).map((l) => l.trim().split(/\s+/).slice(2, 4));
    expect(current).toEqual([['0', '1'], ['1', String(ends[1])]]);
    // Round trip: exporting the group's current offsets gives the file back.
    const again = await run(['consumer-groups', ...bs(), '--reset-offsets', '--group', 'tools-csv', '--all-topics', '--to-current', '--export', '--dry-run']);
    expect(again.stdout).toBe(`tools-reset,0,1\ntools-reset,1,${ends[1]}\n`);

    // As Kafka's tool: an offset past the log's end in the file is the end; a partition the topic
    // does not have is an error, nothing committed.
    await writeFile(file, `tools-reset,0,999\n`);
    const clamped = await run(['consumer-groups', ...bs(), '--reset-offsets', '--group', 'tools-csv', '--from-file', file, '--execute']);
    expect(clamped.code).toBe(0);
    expect(clamped.stdout.split('\n').filter((l) => l.startsWith('tools-csv')).map((l) => l.trim().split(/\s+/))).toEqual([['tools-csv', 'tools-reset', '0', String(ends[0])]]);
    await writeFile(file, `tools-reset,7,1\n`);
    const missing = await run(['consumer-groups', ...bs(), '--reset-offsets', '--group', 'tools-csv', '--from-file', file, '--execute']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain('Error: Executing consumer group command failed due to Metadata tools-reset-7: UNKNOWN_TOPIC_OR_PARTITION');
    const after = await run(['consumer-groups', ...bs(), '--reset-offsets', '--group', 'tools-csv', '--all-topics', '--to-current', '--export', '--dry-run']);
    expect(after.stdout).toBe(`tools-reset,0,${ends[0]}\ntools-reset,1,${ends[1]}\n`);

    await writeFile(file, 'tools-reset,zero,1\n');
    const bad = await run(['consumer-groups', ...bs(), '--reset-offsets', '--group', 'tools-csv', '--from-file', file, '--execute']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.split('\n')[0]).toBe(`Error: line 1 of ${file} is not topic,partition,offset: "tools-reset,zero,1" (with several --group the lines start with the group)`);
  }, 120_000);
});

describe('progress on a terminal', () => {
  it('redraws a count on stderr once a second when stderr is a terminal, and stays quiet otherwise', async () => {
    let tty = '';
    let pipe = '';
    const onTty = new Progress({ out: () => {}, err: (t) => { tty += t; }, now: Date.now, errIsTty: true }, 'orders: records sent');
    const onPipe = new Progress({ out: () => {}, err: (t) => { pipe += t; }, now: Date.now, errIsTty: false }, 'orders: records sent');
    onTty.add(5);
    onPipe.add(5);
    await new Promise((r) => setTimeout(r, 1300));
    onTty.add(2);
    onTty.done();
    onPipe.done();
    expect(tty).toBe('\rorders: records sent: 5\x1b[K\r\x1b[K');
    expect(pipe).toBe('');
  });
});
