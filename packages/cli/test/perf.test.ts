/**
 * `runnel perf produce|consume` against a real single-node broker: Kafka's output line formats
 * (kafka-producer-perf-test / kafka-consumer-perf-test) and that the counts add up.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { startBroker, type TestBroker } from '../../../test/helpers/broker.ts';

const runnel = join(import.meta.dirname, '../bin/runnel.ts');
const exec = promisify(execFile);
let broker: TestBroker;
let dir: string;

async function perf(...args: string[]): Promise<{ stdout: string; stderr: string; lines: string[] }> {
  const { stdout, stderr } = await exec(process.execPath, [runnel, 'perf', ...args], { timeout: 60_000 });
  return { stdout, stderr, lines: stdout.trimEnd().split('\n') };
}

const num = String.raw`\d+(?:\.\d+)?`;
const FINAL = (steady: boolean) => new RegExp(String.raw`^(\d+)${steady ? ' steady state' : ''} records sent, (\d+\.\d{6}) records/sec \((\d+\.\d{2}) MB/sec\), (\d+\.\d{2}) ms avg latency, (\d+\.\d{2}) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$`);
const WINDOW = new RegExp(String.raw`^(\d+) records sent, (\d+\.\d) records/sec \((\d+\.\d{2}) MB/sec\), (\d+\.\d) ms avg latency, (\d+\.\d) ms max latency\.$`);
const DATE = String.raw`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}:\d{3}`;
const CSV = new RegExp(String.raw`^(${DATE}), (${DATE}), (\d+\.\d{4}), (\d+\.\d{4}), (\d+), (\d+\.\d{4}), (\d+), (\d+), (\d+\.\d{4}), (\d+\.\d{4})$`);
const HEADER = 'start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec';

beforeAll(async () => {
  broker = await startBroker();
  dir = await mkdtemp(join(tmpdir(), 'runnel-perf-test-'));
});
afterAll(async () => {
  await broker?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('runnel perf', () => {
  it('produces with Kafka\'s summary, steady-state and CPU lines, then consumes the same count and bytes', async () => {
    const p = await perf('produce', '--topic', 'perf-a', '--num-records', '20000', '--record-size', '100', '--throughput', '-1',
      '--warmup-records', '5000', '--producer-props', `bootstrap.servers=${broker.bootstrap}`, 'acks=1', 'compression.type=lz4', 'linger.ms=1');
    expect(p.lines[0]).toBe('Warmup first 5000 records. Steady state results will print after the complete test summary.');
    const total = p.lines.find((l) => FINAL(false).test(l));
    const steady = p.lines.find((l) => FINAL(true).test(l));
    expect(total, p.stdout).toBeDefined();
    expect(steady, p.stdout).toBeDefined();
    const t = FINAL(false).exec(total!)!;
    expect(Number(t[1])).toBe(20000);
    expect(Number(FINAL(true).exec(steady!)![1])).toBe(15000);
    // percentiles are ordered, and the MB/s figure is MiB-based: 20000 * 100 B / elapsed
    const [p50, p95, p99, p999] = [t[6], t[7], t[8], t[9]].map(Number);
    expect(p50! <= p95! && p95! <= p99! && p99! <= p999! && p999! <= Number(t[5])).toBe(true);
    const recsPerSec = Number(t[2]);
    expect(Number(t[3])).toBeCloseTo((recsPerSec * 100) / (1024 * 1024), 1);
    expect(p.lines.at(-1)).toMatch(new RegExp(String.raw`^# runnel perf produce: cpu user ${num} s, system ${num} s, ${num}% of one core`));

    const c = await perf('consume', '--bootstrap-server', broker.bootstrap, '--topic', 'perf-a', '--messages', '20000');
    expect(c.lines[0]).toBe(HEADER);
    const m = CSV.exec(c.lines[1]!);
    expect(m, c.stdout).not.toBeNull();
    expect(Number(m![5])).toBe(20000);
    expect(Number(m![3])).toBeCloseTo((20000 * 100) / (1024 * 1024), 4);
    expect(Number(m![7])).toBe(0); // no rebalance without a group
    expect(c.lines.at(-1)).toMatch(/^# runnel perf consume: cpu user .*; 1 partition\(s\), no group \(partitions assigned directly\)$/);
  });

  it('joins the --group, measures fetches after the join, commits the offsets it read and leaves', async () => {
    const kafka = new Kafka({ clientId: 'perf-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    // Three partitions: the member (the group's leader) assigns all three to itself.
    await admin.createTopics({ topics: [{ topic: 'perf-g', numPartitions: 3 }], waitForLeaders: true });
    await perf('produce', '--topic', 'perf-g', '--num-records', '3000', '--record-size', '100', '--throughput', '-1',
      '--producer-props', `bootstrap.servers=${broker.bootstrap}`, 'acks=1');
    const c = await perf('consume', '--bootstrap-server', broker.bootstrap, '--topic', 'perf-g', '--messages', '3000', '--group', 'perf-group-g');
    const m = CSV.exec(c.lines[1]!);
    expect(m, c.stdout).not.toBeNull();
    expect(Number(m![5])).toBe(3000);
    const join = Number(m![7]);
    const fetch = Number(m![8]);
    // rebalance.time.ms is the join (FindCoordinator, JoinGroup, SyncGroup, OffsetFetch), and
    // fetch.time.ms is what came after it: together the whole run.
    expect(join).toBeGreaterThan(0);
    expect(join + fetch).toBe(Date.parse(m![2]!.replace(/:(\d{3})$/, '.$1')) - Date.parse(m![1]!.replace(/:(\d{3})$/, '.$1')));
    expect(c.lines.at(-1)).toMatch(new RegExp(String.raw`; 3 partition\(s\), group perf-group-g \(member \S+, generation \d+\), joined in ${join} ms, [1-9]\d* offset commits?, left the group$`));

    // Another client sees the group: Empty after the leave, a consumer group, offsets at the end.
    try {
      const { groups } = await admin.describeGroups(['perf-group-g']);
      expect(groups[0]).toMatchObject({ groupId: 'perf-group-g', state: 'Empty', protocolType: 'consumer' });
      const offsets = await admin.fetchOffsets({ groupId: 'perf-group-g', topics: ['perf-g'] });
      const committed = offsets[0]!.partitions.sort((a, b) => a.partition - b.partition);
      expect(committed.map((p) => p.partition)).toEqual([0, 1, 2]);
      const ends = await admin.fetchTopicOffsets('perf-g');
      for (const p of committed) expect(p.offset).toBe(ends.find((e) => e.partition === p.partition)!.high);
      expect(committed.reduce((a, p) => a + Number(p.offset), 0)).toBe(3000);
    } finally {
      await admin.disconnect();
    }

    // A second run in the same group starts at the committed offsets: nothing is left to read.
    const again = await perf('consume', '--bootstrap-server', broker.bootstrap, '--topic', 'perf-g', '--messages', '1', '--group', 'perf-group-g', '--timeout', '500');
    expect(again.lines).toContain('WARNING: Exiting before consuming the expected number of messages: timeout (500 ms) exceeded. You can use the --timeout option to increase the timeout.');
  });

  it('throttles, prints a 5-second window line, reads a payload file and produces idempotently', async () => {
    const file = join(dir, 'payloads.txt');
    await writeFile(file, 'alpha\nbeta\ngamma-delta\n');
    const p = await perf('produce', '--topic', 'perf-b', '--num-records', '5600', '--payload-file', file, '--throughput', '1000',
      '--bootstrap-server', broker.bootstrap, '--producer-props', 'enable.idempotence=true', 'acks=all', 'linger.ms=20', 'max.in.flight.requests.per.connection=5');
    expect(p.lines[0]).toBe(`Reading payloads from: ${file}`);
    expect(p.lines[1]).toBe('Number of messages read: 3');
    const windows = p.lines.filter((l) => WINDOW.test(l));
    // 5.6 s at 1000 records/s: at least one 5-second window (more only on a very slow machine).
    expect(windows.length, p.stdout).toBeGreaterThanOrEqual(1);
    const windowed = windows.reduce((a, l) => a + Number(WINDOW.exec(l)![1]), 0);
    expect(windowed).toBeLessThanOrEqual(5600);
    expect(Number(FINAL(false).exec(p.lines.find((l) => FINAL(false).test(l))!)![1])).toBe(5600);

    const config = join(dir, 'consumer.properties');
    await writeFile(config, '# small fetches: many polls, many detailed lines\nmax.partition.fetch.bytes=4096\nfetch.max.wait.ms=50\n');
    const c = await perf('consume', '--bootstrap-server', broker.bootstrap, '--topic', 'perf-b', '--messages', '5600', '--hide-header',
      '--show-detailed-stats', '--reporting-interval', '1', '--consumer.config', config);
    const rows = c.lines.filter((l) => !l.startsWith('#'));
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r).toMatch(new RegExp(String.raw`^${DATE}, 0, \d+\.\d{4}, \d+\.\d{4}, \d+, \d+\.\d{4}, 0, \d+, \d+\.\d{4}, \d+\.\d{4}$`));
    // As in Kafka's tool, a detailed row is printed only when its interval has passed, so the last
    // poll may land after the last row: every row counts at most 5600, and no timeout warning means
    // all 5600 arrived.
    expect(Number(rows.at(-1)!.split(', ')[4])).toBeLessThanOrEqual(5600);
    expect(Number(rows.at(-1)!.split(', ')[4])).toBeGreaterThan(0);
    expect(c.lines.some((l) => l.startsWith('WARNING: Exiting before consuming'))).toBe(false);
  });

  it('warns when the timeout passes before --messages arrive', async () => {
    const c = await perf('consume', '--bootstrap-server', broker.bootstrap, '--topic', 'perf-a', '--messages', '20001', '--timeout', '300');
    expect(c.lines).toContain('WARNING: Exiting before consuming the expected number of messages: timeout (300 ms) exceeded. You can use the --timeout option to increase the timeout.');
    expect(Number(CSV.exec(c.lines.find((l) => CSV.test(l))!)![5])).toBe(20000);
  });

  it('rejects bad flags like Kafka\'s tool', async () => {
    const err = await perf('produce', '--topic', 'x', '--num-records', '10', '--throughput', '-1', '--producer-props', 'bootstrap.servers=127.0.0.1:1')
      .catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 1 });
    expect((err as { stderr: string }).stderr).toMatch(/either --record-size or --payload-file must be specified but not both/);
  });
});
