// The Kafka comparison harness (bench/compare.ts) must not rot: run its seconds-long smoke suite
// against Runnel only (no Java needed) and check the JSON, the table and the chart; and check the
// parsers against the exact lines Kafka's perf tools print.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runHarness } from './helpers/bench-harness.ts';
import { parseConsumerPerformance, parseEndToEndLatency, parseProducerPerformance } from '../bench/compare/drivers.ts';
import { bottleneckOf, cpuOf, ratioOf, svgChart, type Cell, type CompareRow } from '../bench/compare/output.ts';

const dir = mkdtempSync(join(tmpdir(), 'runnel-bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface JsonRow {
  name: string; unit: string; value: number | null; baseline: number | null; baselineName: string | null; ratio: number | null; better: string; error?: string; physical?: boolean;
  bottleneck: string | null;
  cpu: { runnel: { broker: number; tool: number; brokerSeconds?: number; toolSeconds?: number; wallSeconds?: number } | null; kafka: unknown };
}

const BOTTLENECKS = ['broker', 'tool', 'broker and tool', 'machine CPU (broker + tool)', 'neither (I/O or latency bound)'];
/** Rows that measure no load tool run: no CPU window, so no bottleneck. */
const WITHOUT_TOOL = ['cold start to the first acknowledged produce', 'broker RSS, idle after start'];

describe('bench/compare.ts --suite smoke', () => {
  it('measures Runnel on every row and writes the table, the JSON and the chart', async () => {
    const json = join(dir, 'smoke.json');
    const svg = join(dir, 'smoke.svg');
    const r = await runHarness(['--suite', 'smoke', '--json', json, '--svg', svg]);
    expect(r.code, r.stderr).toBe(0);

    const doc = JSON.parse(readFileSync(json, 'utf8')) as { benchmark: string; machine: Record<string, unknown>; notes: string[]; rows: JsonRow[] };
    expect(doc.benchmark).toBe('compare');
    expect(doc.machine.cpus).toBeGreaterThan(0);
    expect(doc.machine.suite).toBe('smoke');
    const names = doc.rows.map((row) => row.name);
    const tool = (row: string) => `${row} [runnel perf]`;
    for (const expected of [
      tool('produce 1 KB, acks=1, no compression, 1 partition'),
      tool('produce 100 B, acks=1, no compression, 1 partition'),
      tool('consume 1 KB records (fetch rate after the group join)'),
      tool('consumer group join before the first fetch'),
      tool('produce latency at half the max rate, p50'),
      tool('produce latency at half the max rate, p99'),
      tool('end-to-end latency, one 1 KB record at a time, p50'),
      tool('end-to-end latency, one 1 KB record at a time, p99'),
      `broker CPU per GB: ${tool('produce 1 KB, acks=1, no compression, 1 partition')}`,
      `broker CPU per GB: ${tool('consume 1 KB records (fetch rate after the group join)')}`,
      tool('broker RSS, peak under 1 KB produce load'),
      'cold start to the first acknowledged produce',
      'broker RSS, idle after start',
      'raw sequential write (page cache, 1 MiB writes)',
      'loopback TCP copy of the same bytes (one stream)',
    ]) expect(names).toContain(expected);
    for (const row of doc.rows) {
      expect(row.error, `${row.name}: ${row.error}`).toBeUndefined();
      expect(typeof row.value, row.name).toBe('number');
      expect(Number.isFinite(row.value), row.name).toBe(true);
      expect(row.value!, row.name).toBeGreaterThanOrEqual(0);
      // Runnel only: no Kafka baseline, so no ratio.
      expect(row.baseline).toBeNull();
      expect(row.ratio).toBeNull();
      expect(['higher', 'lower']).toContain(row.better);
      // Every row measured with a load tool has the broker's and the tool's CPU over its runs and a bottleneck.
      if (row.physical || WITHOUT_TOOL.includes(row.name)) {
        expect(row.bottleneck, row.name).toBeNull();
      } else {
        expect(BOTTLENECKS, row.name).toContain(row.bottleneck);
        const cpu = row.cpu.runnel!;
        expect(cpu.wallSeconds!, row.name).toBeGreaterThan(0);
        expect(cpu.brokerSeconds!, row.name).toBeGreaterThanOrEqual(0);
        // A Node process (the tool) cannot start and run without CPU time.
        expect(cpu.toolSeconds!, row.name).toBeGreaterThan(0);
        expect(cpu.broker).toBeCloseTo(cpu.brokerSeconds! / cpu.wallSeconds!, 6);
        expect(cpu.tool).toBeCloseTo(cpu.toolSeconds! / cpu.wallSeconds!, 6);
      }
    }
    // Moving 3 MB through the broker takes broker CPU (its process group is measured, not nothing).
    expect(doc.rows.find((row) => row.name === tool('produce 1 KB, acks=1, no compression, 1 partition'))!.cpu.runnel!.brokerSeconds!).toBeGreaterThan(0);
    // The consume row joined a group: `runnel perf consume --group` reported a join time (without a group it reports 0).
    expect(doc.rows.find((row) => row.name === tool('consumer group join before the first fetch'))!.value!).toBeGreaterThan(0);

    // The notes describe this run only: Runnel alone, one run per row, the smoke suite's sizes.
    const notes = doc.notes.join('\n');
    expect(notes).not.toMatch(/both brokers|Kafka's and Runnel's runs interleaved|-Xms|Java tools|median of/);
    expect(notes).toContain('produce 3,000 records of 1 KB / 3,000 records of 100 B per run; consume 3,000 records of 1 KB per run; fixed-rate latency runs of 1 second; end-to-end latency over 50 records; 1 cold start; no broker warm-up');
    expect(notes).toContain('[runnel perf]: ');
    expect(notes).toContain('it drove the Runnel broker.');
    expect(notes).toMatch(/Its fixed-rate latency rows: 1 KB records at [\d,]+ records\/s, half of Runnel's maximum/);
    expect(notes).toContain('Each row: one run.');
    // Throughput rows carry real numbers, not zeros.
    expect(doc.rows.find((row) => row.name.startsWith('produce 1 KB'))!.value!).toBeGreaterThan(0);
    expect(doc.rows.find((row) => row.name.startsWith('consume'))!.value!).toBeGreaterThan(0);

    expect(r.stdout).toContain('| row | unit | Kafka | Runnel | Runnel / Kafka | CPU cores Kafka (broker / tool) | CPU cores Runnel (broker / tool) | bottleneck Kafka | bottleneck Runnel |');
    const base = r.stdout.split('\n').find((l) => l.startsWith('| produce 1 KB, acks=1, no compression, 1 partition [runnel perf] |'))!;
    expect(base.split('|').at(-2)!.trim()).toBe(doc.rows.find((row) => row.name === tool('produce 1 KB, acks=1, no compression, 1 partition'))!.bottleneck);
    expect(r.stdout).toContain('| produce 1 KB, acks=1, no compression, 1 partition [runnel perf] | MB/s |');
    expect(r.stdout).toMatch(/Machine: \d+ ×/);
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg /);
  });
});

describe('parsers of Kafka perf tool output', () => {
  it('reads ProducerPerformance\'s summary line', () => {
    const out = 'Option --producer-props has been deprecated\n12 records sent, 3.0 records/sec\n500000 records sent, 118063.754427 records/sec (11.26 MB/sec), 631.08 ms avg latency, 1136.00 ms max latency, 715 ms 50th, 1091 ms 95th, 1128 ms 99th, 1131 ms 99.9th.\n';
    expect(parseProducerPerformance(out)).toEqual({ recordsPerSec: 118063.754427, avgMs: 631.08, p50Ms: 715, p99Ms: 1128 });
    expect(() => parseProducerPerformance('Exception in thread "main"')).toThrow(/no summary line/);
  });

  it('reads ConsumerPerformance\'s CSV line by header name', () => {
    const out = 'Warning: --messages is deprecated.\nstart.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n2026-11-21 07:46:10:224, 2026-11-21 07:46:13:004, 47.6837, 17.1524, 500000, 179856.1151, 1696, 1084, 43.9887, 461254.6125\n';
    expect(parseConsumerPerformance(out)).toEqual({ consumed: 500000, fetchMiBPerSec: 43.9887, fetchRecordsPerSec: 461254.6125, joinMs: 1696 });
  });

  it('reads EndToEndLatency\'s summary', () => {
    const out = '0\t62.786145\n1000\t1.812967\nAvg latency: 4.1331 ms\nPercentiles: 50th = 2, 99th = 33, 99.9th = 128\n';
    expect(parseEndToEndLatency(out)).toEqual({ avgMs: 4.1331, p50Ms: 2, p99Ms: 33 });
  });
});

describe('the bottleneck of a row', () => {
  const cell = (broker: number, tool: number, brokerProcesses = 1): Cell => ({ value: 1, samples: [1], ...cpuOf([{ brokerCpu: broker * 10, toolCpu: tool * 10, wallMs: 10_000 }], brokerProcesses) });

  it('names the side that used at least 90 % of a core per process, else the machine or neither', () => {
    expect(bottleneckOf(cell(0.95, 0.3), 8)).toBe('broker');
    expect(bottleneckOf(cell(0.3, 0.92), 8)).toBe('tool');
    expect(bottleneckOf(cell(0.97, 0.95), 8)).toBe('broker and tool');
    expect(bottleneckOf(cell(0.5, 0.3), 8)).toBe('neither (I/O or latency bound)');
    // Three brokers on two cores: none of them saturated, but with the tool they filled the machine.
    expect(bottleneckOf(cell(1.5, 0.5, 3), 2)).toBe('machine CPU (broker + tool)');
    // Three brokers summed: 2 cores is not 90 % of each of them.
    expect(bottleneckOf(cell(2, 0.3, 3), 16)).toBe('neither (I/O or latency bound)');
    expect(bottleneckOf(cell(2.8, 0.3, 3), 16)).toBe('broker');
  });

  it('is undefined for rows without a tool run or without a value', () => {
    expect(bottleneckOf({ value: 12, samples: [12] })).toBeNull();
    expect(bottleneckOf({ ...cell(1, 1), value: null })).toBeNull();
    expect(bottleneckOf(null)).toBeNull();
  });
});

describe('ratios and the chart', () => {
  const cell = (value: number | null) => ({ value, samples: value === null ? [] : [value] });
  const rows: CompareRow[] = [
    { name: 'throughput', unit: 'MB/s', better: 'higher', kafka: cell(100), runnel: cell(50) },
    { name: 'latency', unit: 'ms', better: 'lower', kafka: cell(4), runnel: cell(2) },
    { name: 'zero baseline', unit: 'ms', better: 'lower', kafka: cell(0), runnel: cell(1) },
    { name: 'failed', unit: 'MB/s', better: 'higher', kafka: cell(10), runnel: { value: null, samples: [], error: 'timed out' } },
  ];

  it('is Runnel / Kafka, and undefined without both values', () => {
    expect(rows.map(ratioOf)).toEqual([0.5, 0.5, null, null]);
  });

  it('draws one bar per comparable row, red when Runnel is worse and green when better', () => {
    const svg = svgChart(rows, { suite: 'test', kafkaVersion: '4.3.1', runnelVersion: '0', driver: 'java', java: null, notes: [] });
    expect(svg.match(/<rect x=/g)).toHaveLength(2);
    expect(svg).toContain('fill="#c62828"');
    expect(svg).toContain('fill="#2e7d32"');
    expect(svg).toContain('0.50×');
  });
});
