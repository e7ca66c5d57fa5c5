/**
 * The comparison's three outputs: a Markdown table (stdout and the README), the JSON result
 * (`{"benchmark", "machine", "rows": [{"name","unit","value","baseline","baselineName","ratio","better"}]}`
 * with Runnel as `value` and Kafka as `baseline`, ratio = Runnel / Kafka, plus per-row CPU, the
 * bottleneck, samples and error text), and an SVG chart of the ratios on a log scale around a 1.0 line.
 */
import os from 'node:os';
import { machine } from '../lib/report.ts';

/**
 * Which side limited a measurement. A side is saturated when it used at least SATURATED of a core
 * per process (the broker's request path and the Node tools run on one event loop each; a JVM
 * busy on a whole core is the limit on this scale too); when neither is but together they used
 * SATURATED of every core of the machine, the shared CPU was the limit.
 */
export type Bottleneck = 'broker' | 'tool' | 'broker and tool' | 'machine CPU (broker + tool)' | 'neither (I/O or latency bound)';

export const SATURATED = 0.9;

export function bottleneckOf(c: Cell | null, machineCores = os.cpus().length): Bottleneck | null {
  if (!c || c.value === null || c.brokerCores === undefined || c.toolCores === undefined) return null;
  if (!Number.isFinite(c.brokerCores) || !Number.isFinite(c.toolCores)) return null;
  const broker = c.brokerCores >= SATURATED * (c.brokerProcesses ?? 1);
  const tool = c.toolCores >= SATURATED * (c.toolProcesses ?? 1);
  if (broker && tool) return 'broker and tool';
  if (broker) return 'broker';
  if (tool) return 'tool';
  if (c.brokerCores + c.toolCores >= SATURATED * machineCores) return 'machine CPU (broker + tool)';
  return 'neither (I/O or latency bound)';
}

/** One measured run's CPU: seconds of the broker process(es) and of the load tool over the run's wall time. */
export interface RunCpu { brokerCpu: number; toolCpu: number; wallMs: number }

/**
 * The CPU fields of a cell from its measured runs: totals over all runs, cores = total CPU seconds
 * / total wall seconds (/proc counts in 10 ms ticks, too coarse for one short run's median).
 */
export function cpuOf(runs: RunCpu[], brokerProcesses = 1, toolProcesses = 1): Pick<Cell, 'brokerCpuSeconds' | 'toolCpuSeconds' | 'wallSeconds' | 'brokerCores' | 'toolCores' | 'brokerProcesses' | 'toolProcesses'> {
  const brokerCpuSeconds = runs.reduce((a, r) => a + r.brokerCpu, 0);
  const toolCpuSeconds = runs.reduce((a, r) => a + r.toolCpu, 0);
  const wallSeconds = runs.reduce((a, r) => a + r.wallMs, 0) / 1000;
  return {
    brokerCpuSeconds, toolCpuSeconds, wallSeconds,
    brokerCores: wallSeconds > 0 ? brokerCpuSeconds / wallSeconds : Number.NaN,
    toolCores: wallSeconds > 0 ? toolCpuSeconds / wallSeconds : Number.NaN,
    brokerProcesses, toolProcesses,
  };
}

/** The CPU fields of `c` (to carry a measured row's CPU to rows derived from the same runs). */
export function cpuFieldsOf(c: Cell | undefined): Partial<Cell> {
  if (!c || c.brokerCores === undefined) return {};
  const { brokerCpuSeconds, toolCpuSeconds, wallSeconds, brokerCores, toolCores, brokerProcesses, toolProcesses } = c;
  return { brokerCpuSeconds, toolCpuSeconds, wallSeconds, brokerCores, toolCores, brokerProcesses, toolProcesses };
}

export interface Cell {
  /** The median of the measured runs; null when the row failed. */
  value: number | null;
  samples: number[];
  error?: string;
  /** CPU cores in use during the measurement (CPU seconds / wall seconds), broker and load tool. */
  brokerCores?: number;
  toolCores?: number;
  /** CPU seconds over the measured runs together (children included) and their wall seconds. */
  brokerCpuSeconds?: number;
  toolCpuSeconds?: number;
  wallSeconds?: number;
  /** Broker processes whose CPU is summed (3 in the cluster suite); load tool processes. Default 1. */
  brokerProcesses?: number;
  toolProcesses?: number;
}

export interface CompareRow {
  name: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Null when Kafka was not run (no Java/Maven, or a Runnel-only suite) or the row has no Kafka side. */
  kafka: Cell | null;
  runnel: Cell;
  /** Physical-limit rows describe the machine, not either broker. */
  physical?: boolean;
}

export interface RunInfo {
  suite: string;
  kafkaVersion: string | null;
  runnelVersion: string;
  driver: string;
  java: string | null;
  notes: string[];
  durationSeconds?: number;
  /** os.loadavg() at the start and the end of the run: other work on the machine skews both sides. */
  load?: { start: number[]; end: number[] };
}

export function ratioOf(r: CompareRow): number | null {
  const v = r.runnel.value;
  const b = r.kafka?.value;
  if (v === null || b === null || b === undefined || !(b > 0) || !(v >= 0)) return null;
  // Times below the tools' resolution print as 0 ms: "0× better" would claim too much.
  if (r.better === 'lower' && v === 0) return null;
  return v / b;
}

function num(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  const a = Math.abs(n);
  if (a >= 1000) return Math.round(n).toLocaleString('en-US');
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function cpu(c: Cell | null): string {
  if (!c || c.brokerCores === undefined) return '';
  return `${c.brokerCores.toFixed(2)} / ${(c.toolCores ?? Number.NaN).toFixed(2)}`;
}

function bottleneckText(c: Cell | null): string {
  return bottleneckOf(c) ?? '-';
}

function cellText(c: Cell | null, kafkaMissing: string): string {
  if (!c) return kafkaMissing;
  if (c.value === null) return `failed: ${(c.error ?? 'unknown error').replace(/\|/g, '/').slice(0, 160)}`;
  return num(c.value);
}

/** A Markdown table; readable as plain text on a terminal too. */
export function markdownTable(rows: CompareRow[], info: RunInfo): string {
  const m = machine();
  const kafkaName = info.kafkaVersion ? `Kafka ${info.kafkaVersion}` : 'Kafka';
  const missing = info.kafkaVersion ? '-' : 'n/a';
  const out: string[] = [];
  out.push(`| row | unit | ${kafkaName} | Runnel | Runnel / Kafka | CPU cores Kafka (broker / tool) | CPU cores Runnel (broker / tool) | bottleneck Kafka | bottleneck Runnel |`);
  out.push('|---|---|---:|---:|---:|---:|---:|---|---|');
  for (const r of rows.filter((x) => !x.physical)) {
    const ratio = ratioOf(r);
    const verdict = ratio === null ? '' : (r.better === 'higher' ? ratio >= 1 : ratio <= 1) ? ' better' : ' worse';
    out.push(`| ${r.name} | ${r.unit}${r.better === 'lower' ? ' (lower is better)' : ''} | ${cellText(r.kafka, missing)} | ${cellText(r.runnel, missing)} | ${ratio === null ? '-' : `${ratio.toFixed(2)}×${verdict}`} | ${cpu(r.kafka)} | ${cpu(r.runnel)} | ${r.kafka ? bottleneckText(r.kafka) : missing} | ${bottleneckText(r.runnel)} |`);
  }
  const physical = rows.filter((x) => x.physical);
  if (physical.length) {
    out.push('', '| physical limit (same machine, same run) | unit | value |', '|---|---|---:|');
    for (const r of physical) out.push(`| ${r.name} | ${r.unit} | ${cellText(r.runnel, '-')} |`);
  }
  out.push('');
  out.push(`Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB RAM, ${m.platform}; Node ${m.node}; ${info.java ?? 'no Java'}.`);
  if (info.load) out.push(`Load average (1 min) at start / end: ${info.load.start[0]!.toFixed(2)} / ${info.load.end[0]!.toFixed(2)} on ${m.cpus} cores${info.durationSeconds ? `; the run took ${Math.round(info.durationSeconds)} s` : ''}.`);
  out.push(`Versions: ${info.kafkaVersion ? `Apache Kafka ${info.kafkaVersion} (official Maven Central artifacts)` : 'Apache Kafka not run'}, Runnel ${info.runnelVersion}. Suite \`${info.suite}\`, load tool: ${info.driver}.`);
  out.push(`Bottleneck: \`broker\` or \`tool\` when that side used at least ${SATURATED * 100} % of a core per process over the measured runs (CPU seconds from /proc, children included), \`machine CPU\` when together they used ${SATURATED * 100} % of all ${m.cpus} cores, else \`neither\` (I/O or latency bound); \`-\` for rows without a load tool.`);
  for (const n of info.notes) out.push(`- ${n}`);
  return `${out.join('\n')}\n`;
}

export function jsonDoc(rows: CompareRow[], info: RunInfo): Record<string, unknown> {
  const baselineName = info.kafkaVersion ? `Apache Kafka ${info.kafkaVersion}` : null;
  return {
    benchmark: 'compare',
    machine: { ...machine(), java: info.java, kafka: info.kafkaVersion, runnel: info.runnelVersion, driver: info.driver, suite: info.suite },
    ...(info.durationSeconds !== undefined ? { durationSeconds: Math.round(info.durationSeconds) } : {}),
    ...(info.load ? { loadAverage: info.load } : {}),
    notes: info.notes,
    rows: rows.map((r) => ({
      name: r.name,
      unit: r.unit,
      value: r.runnel.value,
      baseline: r.kafka?.value ?? null,
      baselineName: r.kafka ? baselineName : null,
      ratio: ratioOf(r),
      better: r.better,
      ...(r.physical ? { physical: true } : {}),
      ...(r.runnel.error ? { error: r.runnel.error } : {}),
      ...(r.kafka?.error ? { baselineError: r.kafka.error } : {}),
      bottleneck: bottleneckOf(r.runnel),
      ...(r.kafka ? { baselineBottleneck: bottleneckOf(r.kafka) } : {}),
      samples: r.runnel.samples,
      ...(r.kafka ? { baselineSamples: r.kafka.samples } : {}),
      cpu: { runnel: cpuJson(r.runnel), kafka: cpuJson(r.kafka) },
    })),
  };
}

/** `broker`/`tool` are cores (as before); the `*Seconds` fields are CPU seconds over the measured runs. */
function cpuJson(c: Cell | null): Record<string, unknown> | null {
  if (!c || c.brokerCores === undefined) return null;
  return {
    broker: c.brokerCores, tool: c.toolCores ?? null,
    ...(c.brokerCpuSeconds !== undefined ? { brokerSeconds: c.brokerCpuSeconds, toolSeconds: c.toolCpuSeconds ?? null, wallSeconds: c.wallSeconds ?? null } : {}),
    brokerProcesses: c.brokerProcesses ?? 1,
  };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Horizontal bars of Runnel / Kafka per row on a log2 axis, drawn from the 1.0 line: green where
 * Runnel is better (higher throughput, lower latency or memory), red where it is worse.
 */
export function svgChart(rows: CompareRow[], info: RunInfo): string {
  const data = rows.map((r) => ({ r, ratio: ratioOf(r) })).filter((d): d is { r: CompareRow; ratio: number } => d.ratio !== null && d.ratio > 0);
  // Wide enough for the longest row name at about 6.3 px per character of a 12 px sans-serif.
  const labelW = Math.max(200, Math.ceil(Math.max(0, ...data.map((d) => d.r.name.length)) * 6.3) + 24);
  const plotW = 420;
  const rowH = 22;
  const top = 64;
  const width = labelW + plotW + 90;
  const height = top + Math.max(1, data.length) * rowH + 50;
  const span = Math.max(1, Math.ceil(Math.max(0, ...data.map((d) => Math.abs(Math.log2(d.ratio))))));
  const x = (ratio: number) => labelW + ((Math.max(-span, Math.min(span, Math.log2(ratio))) + span) / (2 * span)) * plotW;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="12" y="22" font-size="15" font-weight="bold">Runnel / Apache Kafka ${esc(info.kafkaVersion ?? '')}, suite ${esc(info.suite)} (log scale)</text>`);
  parts.push(`<text x="12" y="42" fill="#555">green: Runnel better, red: Runnel worse; bars start at 1.0 (equal)</text>`);
  for (let e = -span; e <= span; e++) {
    const gx = x(2 ** e);
    parts.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${top + data.length * rowH}" stroke="${e === 0 ? '#000' : '#ddd'}" stroke-width="${e === 0 ? 1.5 : 1}"/>`);
    const label = e >= 0 ? `${2 ** e}×` : `1/${2 ** -e}×`;
    parts.push(`<text x="${gx}" y="${top + data.length * rowH + 16}" text-anchor="middle" fill="#555">${label}</text>`);
  }
  data.forEach(({ r, ratio }, i) => {
    const y = top + i * rowH;
    const good = r.better === 'higher' ? ratio >= 1 : ratio <= 1;
    const x0 = x(1);
    const x1 = x(ratio);
    parts.push(`<text x="${labelW - 8}" y="${y + 15}" text-anchor="end">${esc(r.name)}</text>`);
    parts.push(`<rect x="${Math.min(x0, x1)}" y="${y + 4}" width="${Math.max(1, Math.abs(x1 - x0))}" height="${rowH - 8}" fill="${good ? '#2e7d32' : '#c62828'}"/>`);
    parts.push(`<text x="${Math.max(x0, x1) + 4}" y="${y + 15}" fill="#333">${ratio.toFixed(2)}×</text>`);
  });
  if (data.length === 0) parts.push(`<text x="${labelW}" y="${top + 15}">no rows with both Kafka and Runnel values</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
