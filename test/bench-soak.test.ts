// The soak suite (bench/compare/soak.ts) must not rot: a 15 s run against Runnel only (no Java),
// checked for its table, its JSON rows (value = last window, baseline = first) and that the load
// really ran (produced, consumed, one topic churned); and the window arithmetic on known samples.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runHarness } from './helpers/bench-harness.ts';
import { windowMs, windowStats } from '../bench/compare/soak.ts';

const dir = mkdtempSync(join(tmpdir(), 'runnel-bench-soak-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface JsonRow { name: string; unit: string; value: number | null; baseline: number | null; baselineName: string | null; ratio: number | null; better: string }

describe('bench/compare.ts --suite soak', () => {
  it('runs the mixed load on Runnel and compares the last window with the first', async () => {
    const json = join(dir, 'soak.json');
    const r = await runHarness(['--suite', 'soak', '--minutes', '0.25', '--no-kafka', '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('## Runnel');
    expect(r.stdout).toMatch(/\| broker CPU per GB produced \(CPU s\/GB\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| (met|not met) \|/);

    const doc = JSON.parse(readFileSync(json, 'utf8')) as { benchmark: string; machine: Record<string, unknown>; notes: string[]; rows: JsonRow[]; series: Record<string, Array<{ t: number; gb: number }>> };
    expect(doc.benchmark).toBe('compare');
    expect(doc.machine.suite).toBe('soak');
    expect(doc.rows.map((x) => x.name)).toEqual([
      'Runnel: broker CPU per GB produced, last window vs first',
      'Runnel: produce p99 (acks=all, per request), last window vs first',
      'Runnel: broker RSS (mean of 1 s samples), last window vs first',
    ]);
    for (const row of doc.rows) {
      expect(row.value, row.name).toBeGreaterThan(0);
      expect(row.baseline, row.name).toBeGreaterThan(0);
      expect(row.ratio, row.name).toBeCloseTo(row.value! / row.baseline!, 9);
      expect(row.better).toBe('lower');
      expect(row.baselineName).toBe('Runnel: first window');
    }
    // The load ran: records produced and consumed by the group, a topic churned, nothing failed.
    const summary = doc.notes.find((n) => n.startsWith('Runnel: ') && n.includes('records produced'))!;
    const m = summary.match(/([\d,]+) records produced \((\d+) failed requests\), ([\d,]+) consumed, (\d+) topics churned \((\d+) failed\)/)!;
    expect(m, summary).not.toBeNull();
    const num = (s: string) => Number(s.replace(/,/g, ''));
    expect(num(m[1]!)).toBeGreaterThan(10_000);
    expect(num(m[2]!)).toBe(0);
    expect(num(m[3]!)).toBeGreaterThan(0);
    expect(num(m[4]!)).toBeGreaterThanOrEqual(1);
    expect(num(m[5]!)).toBe(0);
    expect(doc.series.Runnel!.length).toBeGreaterThan(1);
    expect(doc.series.Runnel!.at(-1)!.gb).toBeGreaterThan(0);
  }, 120_000);
});

describe('soak windows', () => {
  it('is 5 minutes, or a sixth of a shorter run', () => {
    expect(windowMs(30)).toBe(300_000);
    expect(windowMs(60)).toBe(300_000);
    expect(windowMs(3)).toBe(30_000);
  });

  it('takes CPU per GB from the window\'s first and last sample, p99 and mean RSS from inside it', () => {
    const samples = [0, 1, 2, 3, 4].map((s) => ({ t: s * 1000, cpu: s * 0.5, rss: (100 + s) * 1e6, anon: 60e6, file: 40e6, bytes: s * 0.25e9 }));
    const latencies = Array.from({ length: 100 }, (_, i) => ({ t: i * 20, ms: i + 1 }));
    const w = windowStats(samples, latencies, 1000, 3000)!;
    // CPU 1.0 s over 0.5 GB; latencies from t = 1000 to 1980 ms are 51..100 ms.
    expect(w.cpuPerGb).toBeCloseTo(2, 9);
    expect(w.gb).toBeCloseTo(0.5, 9);
    expect(w.requests).toBe(50);
    expect(w.p99Ms).toBe(100);
    expect(w.rssMB).toBeCloseTo(102, 9);
    expect(w.rssAnonMB).toBeCloseTo(60, 9);
    expect(windowStats(samples, latencies, 10_000, 20_000)).toBeNull();
  });
});
