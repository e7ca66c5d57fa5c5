/**
 * Shared benchmark plumbing: timing helpers, the stdout table and the JSON result format
 * `{"benchmark", "machine", "rows": [{"name","unit","value","baseline","baselineName","ratio","better"}]}`
 * where ratio = value / baseline, both measured in the same run.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';

export interface BenchRow {
  name: string;
  unit: string;
  value: number;
  baseline: number | null;
  baselineName: string | null;
  /** value / baseline, or null without a baseline. */
  ratio: number | null;
  better: 'higher' | 'lower';
}

/** Builds a row; `baseline` is omitted or null when there is nothing to compare against. */
export function row(
  name: string,
  unit: string,
  value: number,
  baseline?: { name: string; value: number } | null,
  better: 'higher' | 'lower' = 'higher',
): BenchRow {
  const b = baseline && Number.isFinite(baseline.value) && baseline.value > 0 ? baseline : null;
  return { name, unit, value, baseline: b?.value ?? null, baselineName: b?.name ?? null, ratio: b ? value / b.value : null, better };
}

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Bytes per second of `op` (which handles `bytesPerOp` bytes per call): repeats it for at least
 * `minMs`, after a warm-up, `runs` times, and returns the median.
 */
export function throughput(bytesPerOp: number, op: () => void, options: { runs?: number; minMs?: number; warmupMs?: number } = {}): number {
  const { runs = 3, minMs = 200, warmupMs = 100 } = options;
  const once = (ms: number) => timeOnce(bytesPerOp, op, ms);
  once(warmupMs);
  return median(Array.from({ length: Math.max(1, runs) }, () => once(minMs)));
}

/**
 * Like `throughput` for a value and its baseline, with their runs interleaved (value, baseline,
 * value, …) so that a change in machine load hits both sides of the ratio alike.
 */
export function throughputPair(
  bytesPerOp: number,
  op: () => void,
  baselineOp: () => void,
  options: { runs?: number; minMs?: number; warmupMs?: number } = {},
): { value: number; baseline: number } {
  const { runs = 3, minMs = 200, warmupMs = 100 } = options;
  timeOnce(bytesPerOp, op, warmupMs);
  timeOnce(bytesPerOp, baselineOp, warmupMs);
  const values: number[] = [];
  const baselines: number[] = [];
  for (let i = 0; i < Math.max(1, runs); i++) {
    values.push(timeOnce(bytesPerOp, op, minMs));
    baselines.push(timeOnce(bytesPerOp, baselineOp, minMs));
  }
  return { value: median(values), baseline: median(baselines) };
}

/** Bytes per second of `op` repeated for at least `ms` milliseconds. */
function timeOnce(bytesPerOp: number, op: () => void, ms: number): number {
  const start = process.hrtime.bigint();
  const limit = BigInt(Math.round(ms * 1e6));
  let n = 0;
  let elapsed = 0n;
  do {
    op();
    n++;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  return (n * bytesPerOp) / (Number(elapsed) / 1e9);
}

function fmt(n: number | null, digits = 2): string {
  if (n === null) return '-';
  if (Math.abs(n) >= 1000) return n.toFixed(0);
  return n.toFixed(digits);
}

export function printTable(title: string, rows: BenchRow[], notes: string[] = []): void {
  const header = ['name', 'value', 'unit', 'baseline', 'baseline name', 'ratio'];
  const body = rows.map((r) => [r.name, fmt(r.value), r.unit, fmt(r.baseline), r.baselineName ?? '-', r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 2 || i === 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [`# ${title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  if (notes.length) out.push('', ...notes.map((n) => `note: ${n}`));
  process.stdout.write(`${out.join('\n')}\n`);
}

/** `--json FILE` from argv, if given. */
export function jsonPath(argv: string[] = process.argv): string | null {
  const i = argv.indexOf('--json');
  if (i === -1) return null;
  const file = argv[i + 1];
  if (!file) throw new Error('--json needs a file name');
  return file;
}

/** Prints the table and, with `--json FILE`, writes the JSON result. */
export function report(benchmark: string, rows: BenchRow[], options: { notes?: string[]; argv?: string[]; extra?: Record<string, unknown> } = {}): void {
  printTable(benchmark, rows, options.notes);
  const file = jsonPath(options.argv);
  if (file) {
    const doc = { benchmark, machine: machine(), rows, ...(options.notes?.length ? { notes: options.notes } : {}), ...options.extra };
    writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  }
}
