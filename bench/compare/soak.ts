/**
 * `--suite soak`: does a broker stay flat over time? Each broker (Runnel's `runnel start`, then
 * Apache Kafka, one after the other: two brokers at once would fight over the cores) takes N
 * minutes of the same mixed load, driven by the same code:
 *
 * - a steady producer (@runnel/client, acks=all, 1 KB records in batches of 32, round-robin over
 *   the 2 partitions of `soak-main`, at most 5 requests in flight) at a fixed rate;
 * - a consumer group of 2 members (kafkajs, classic protocol) reading `soak-main`; member 2 leaves
 *   and rejoins every 60 s, so the group rebalances every minute;
 * - every 10 s a topic `soak-churn-<i>` is created, gets 10 records and is deleted.
 *
 * Every second the harness samples the broker's process-group CPU seconds and RSS (proc.ts) and
 * the bytes acknowledged so far; every produce request's latency is kept with its time. The first
 * and the last window (min(5 min, N/6)) are compared: broker CPU seconds per GB produced, produce
 * p99 and mean RSS; a metric is met when last / first ≤ 1.10.
 *
 * `--profile` (Runnel only): the broker runs with `--inspect=127.0.0.1:0`; at minute 1 and 30 s
 * before the end the harness records a 30 s CPU profile and takes a heap snapshot over the
 * inspector protocol, written to .cache/bench-soak/<run>/ (open them in Chrome DevTools).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel, type Consumer as KjsConsumer } from 'kafkajs';
import { KafkaClient, Producer } from '@runnel/client';
import { encodeRecordBatch } from '@runnel/protocol';
import { row, type BenchRow } from '../lib/report.ts';
import { connectWhenReady, createTopic, deleteTopic, spawnBroker, type BrokerSettings, type RunningBroker, type SystemName } from './brokers.ts';
import type { KafkaArtifacts } from './kafka.ts';
import { groupCpuSeconds, rssBytes } from './proc.ts';

export interface SoakOptions {
  root: string;
  workDir: string;
  art: KafkaArtifacts | null;
  minutes: number;
  /** MB/s (10^6 bytes of record values) the producer sends. */
  rateMBps: number;
  profile: boolean;
  log: (s: string) => void;
}

export const RECORD_SIZE = 1024;
const PER_BATCH = 32;
const IN_FLIGHT = 5;
const PARTITIONS = 2;
const CHURN_EVERY_MS = 10_000;
const REBALANCE_EVERY_MS = 60_000;
const LIMIT = 1.1;
const PROFILE_MS = 30_000;

/** The first and last windows: 5 minutes, or a sixth of a shorter run. */
export const windowMs = (minutes: number) => Math.min(5, minutes / 6) * 60_000;

interface Sample { t: number; cpu: number; rss: number; anon: number; file: number; bytes: number }

export interface WindowStats {
  cpuPerGb: number;
  p99Ms: number;
  rssMB: number;
  /** RSS split (means): anonymous memory (heaps, buffers) and file-backed pages (mapped files, code), to tell a leak from mapped data. */
  rssAnonMB: number;
  rssFileMB: number;
  requests: number;
  gb: number;
}

/** RssAnon and RssFile of a process (bytes; NaN when gone). */
function rssSplit(pid: number): { anon: number; file: number } {
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(st.match(new RegExp(`^${k}:\\s+(\\d+)\\s+kB`, 'm'))?.[1] ?? Number.NaN) * 1024;
    return { anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
  } catch {
    return { anon: Number.NaN, file: Number.NaN };
  }
}

export interface SoakResult {
  system: SystemName;
  first: WindowStats | null;
  last: WindowStats | null;
  error?: string;
  /** What the load did, for the notes. */
  produced: number;
  consumed: number;
  churned: number;
  churnErrors: number;
  rebalances: number;
  produceErrors: number;
  lastError?: string;
  profiles?: string[];
  /** Every 10th 1 s sample (seconds since the load began, broker CPU seconds, RSS and anonymous RSS in MB, GB acknowledged): the trend between the windows. */
  series: Array<{ t: number; cpuSeconds: number; rssMB: number; rssAnonMB: number; gb: number }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A window's figures from the 1 s samples and the per-request latencies (times in ms since the load began). */
export function windowStats(samples: Sample[], latencies: Array<{ t: number; ms: number }>, from: number, to: number): WindowStats | null {
  const inside = samples.filter((s) => s.t >= from && s.t <= to);
  if (inside.length < 2) return null;
  const a = inside[0]!;
  const b = inside[inside.length - 1]!;
  const gb = (b.bytes - a.bytes) / 1e9;
  const lat = latencies.filter((x) => x.t >= from && x.t <= to).map((x) => x.ms).sort((x, y) => x - y);
  const mean = (xs: number[]) => { const f = xs.filter((x) => Number.isFinite(x)); return f.reduce((x, y) => x + y, 0) / f.length / 1e6; };
  return {
    cpuPerGb: gb > 0 ? (b.cpu - a.cpu) / gb : Number.NaN,
    p99Ms: percentile(lat, 99),
    rssMB: mean(inside.map((s) => s.rss)),
    rssAnonMB: mean(inside.map((s) => s.anon)),
    rssFileMB: mean(inside.map((s) => s.file)),
    requests: lat.length,
    gb,
  };
}

/** Minimal Chrome DevTools Protocol session over the inspector's WebSocket (Node 24 has WebSocket built in). */
class Inspector {
  private id = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, (params: Record<string, unknown>) => void>();
  private readonly ws: WebSocket;
  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, unknown> };
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(msg.error.message)); else p?.resolve(msg.result);
      } else if (msg.method) this.listeners.get(msg.method)?.(msg.params ?? {});
    });
  }
  static connect(url: string): Promise<Inspector> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.addEventListener('open', () => resolve(new Inspector(ws)), { once: true });
      ws.addEventListener('error', () => reject(new Error(`inspector ${url} refused the connection`)), { once: true });
    });
  }
  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
  on(method: string, f: (params: Record<string, unknown>) => void): void { this.listeners.set(method, f); }
  close(): void { this.ws.close(); }
}

/**
 * A 30 s CPU profile, then the main thread's process.memoryUsage() (heap, external, array buffers:
 * what outside the JS heap holds memory) and a heap snapshot: `<label>.cpuprofile`,
 * `<label>.memory.json`, `<label>.heapsnapshot`.
 */
async function profileBroker(insp: Inspector, dir: string, label: string): Promise<string[]> {
  await insp.send('Profiler.enable');
  await insp.send('Profiler.start');
  await sleep(PROFILE_MS);
  const { profile } = await insp.send<{ profile: unknown }>('Profiler.stop');
  const cpuFile = join(dir, `${label}.cpuprofile`);
  writeFileSync(cpuFile, JSON.stringify(profile));
  const mem = await insp.send<{ result: { value: unknown } }>('Runtime.evaluate', { expression: 'process.memoryUsage()', returnByValue: true });
  const memFile = join(dir, `${label}.memory.json`);
  writeFileSync(memFile, `${JSON.stringify(mem.result.value, null, 2)}\n`);
  const chunks: string[] = [];
  insp.on('HeapProfiler.addHeapSnapshotChunk', (p) => { chunks.push(String(p.chunk)); });
  await insp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  const heapFile = join(dir, `${label}.heapsnapshot`);
  writeFileSync(heapFile, chunks.join(''));
  return [cpuFile, memFile, heapFile];
}

/** One broker through the whole soak; never throws (a failure is the result's `error`). */
async function soakOne(system: SystemName, o: SoakOptions, settings: BrokerSettings): Promise<SoakResult> {
  const res: SoakResult = { system, first: null, last: null, produced: 0, consumed: 0, churned: 0, churnErrors: 0, rebalances: 0, produceErrors: 0, series: [] };
  const profileDir = join(o.root, '.cache', 'bench-soak', `${new Date().toISOString().replace(/[:.]/g, '-')}-${system.toLowerCase()}`);
  const profiling = o.profile && system === 'Runnel';
  let broker: RunningBroker | undefined;
  let admin: KafkaClient | undefined;
  let client: KafkaClient | undefined;
  const members: KjsConsumer[] = [];
  let stopping = false;
  const background: Array<Promise<unknown>> = [];
  try {
    broker = await spawnBroker(system, { ...settings, env: profiling ? { NODE_OPTIONS: '--inspect=127.0.0.1:0' } : undefined }, o.art, o.root);
    admin = await connectWhenReady(broker);
    await createTopic(admin, 'soak-main', PARTITIONS);
    client = await KafkaClient.connect({ bootstrapServers: broker.bootstrap, clientId: 'soak-producer' });

    const kafka = new Kafka({ clientId: 'soak-consumer', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const member = async () => {
      const c = kafka.consumer({ groupId: 'soak-group', sessionTimeout: 10_000, rebalanceTimeout: 10_000, heartbeatInterval: 1_000 });
      c.on(c.events.GROUP_JOIN, () => { res.rebalances++; });
      await c.connect();
      await c.subscribe({ topic: 'soak-main', fromBeginning: false });
      await c.run({ eachBatch: async ({ batch }) => { res.consumed += batch.messages.length; } });
      return c;
    };
    members.push(await member(), await member());

    const producer = new Producer(client, { acks: -1 });
    const value = Buffer.alloc(RECORD_SIZE);
    for (let i = 0; i < value.length; i++) value[i] = 65 + ((i * 7919) % 26);
    const samples: Sample[] = [];
    const latencies: Array<{ t: number; ms: number }> = [];
    let acked = 0;
    const durationMs = o.minutes * 60_000;
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const pid = broker.pid;
    const sample = () => samples.push({ t: now(), cpu: groupCpuSeconds(pid), rss: rssBytes(pid), ...rssSplit(pid), bytes: acked });
    sample();
    const sampler = setInterval(sample, 1000);

    // The producer: batch k is due at k × PER_BATCH × RECORD_SIZE / rate; late batches go at once (no catch-up burst beyond IN_FLIGHT).
    background.push((async () => {
      const inFlight = new Set<Promise<void>>();
      const perBatchMs = (PER_BATCH * RECORD_SIZE) / (o.rateMBps * 1e6) * 1000;
      for (let k = 0; !stopping && now() < durationMs; k++) {
        const wait = k * perBatchMs - now();
        if (wait > 0) await sleep(wait);
        const batch = encodeRecordBatch({ records: Array.from({ length: PER_BATCH }, () => ({ value })) });
        const start = performance.now();
        const p: Promise<void> = producer.send('soak-main', k % PARTITIONS, batch).then(
          () => { latencies.push({ t: start - t0, ms: performance.now() - start }); acked += PER_BATCH * RECORD_SIZE; res.produced += PER_BATCH; },
          (err: unknown) => { res.produceErrors++; res.lastError = (err as Error).message; },
        ).finally(() => { inFlight.delete(p); });
        inFlight.add(p);
        if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    })());

    // Topic churn: create, 10 records, delete, every 10 s.
    background.push((async () => {
      const churnProducer = new Producer(client!, { acks: -1 });
      for (let i = 0; !stopping && now() < durationMs; i++) {
        const due = (i + 1) * CHURN_EVERY_MS;
        while (!stopping && now() < due) await sleep(Math.min(500, due - now()));
        if (stopping || now() >= durationMs) break;
        const topic = `soak-churn-${i}`;
        try {
          await createTopic(admin!, topic, 1);
          await churnProducer.send(topic, 0, Array.from({ length: 10 }, () => ({ value })));
          await deleteTopic(admin!, topic);
          res.churned++;
        } catch (err) {
          res.churnErrors++;
          res.lastError = `churn ${topic}: ${(err as Error).message}`;
          await deleteTopic(admin!, topic).catch(() => {});
        }
      }
    })());

    // Member 2 leaves and rejoins every minute: a rebalance each time.
    background.push((async () => {
      for (let i = 1; !stopping; i++) {
        const due = i * REBALANCE_EVERY_MS;
        while (!stopping && now() < due) await sleep(Math.min(500, due - now()));
        if (stopping || now() >= durationMs) break;
        await members[1]!.disconnect().catch(() => {});
        members[1] = await member();
      }
    })());

    if (profiling) {
      mkdirSync(profileDir, { recursive: true });
      const url = (await broker.proc.waitFor(/Debugger listening on (ws:\/\/\S+)/, 5_000))[1]!;
      background.push((async () => {
        const insp = await Inspector.connect(url);
        try {
          res.profiles = [];
          // Minute 1, or earlier so that a short run's profile falls inside its first window, as the end's does in the last.
          const early = Math.max(0, Math.min(60_000, windowMs(o.minutes) - PROFILE_MS));
          while (!stopping && now() < early) await sleep(500);
          if (!stopping) res.profiles.push(...await profileBroker(insp, profileDir, 'minute-1'));
          const late = durationMs - PROFILE_MS;
          while (!stopping && now() < late) await sleep(500);
          if (!stopping) res.profiles.push(...await profileBroker(insp, profileDir, 'end'));
        } finally {
          insp.close();
        }
      })().catch((err: unknown) => { o.log(`profile failed: ${(err as Error).message}`); }));
    }

    let lastLog = 0;
    while (now() < durationMs) {
      await sleep(1000);
      if (now() - lastLog >= 30_000) {
        lastLog = now();
        o.log(`${system}: ${Math.round(now() / 1000)} s, ${(acked / 1e9).toFixed(2)} GB acknowledged, ${res.consumed.toLocaleString('en-US')} records consumed, ${res.churned} topics churned, ${res.rebalances} group joins, RSS ${(rssBytes(pid) / 1e6).toFixed(0)} MB`);
      }
    }
    // Let the last requests finish and the profile at the end complete before the broker stops.
    await Promise.race([Promise.all(background.slice(0, 1)), sleep(30_000)]);
    sample();
    clearInterval(sampler);
    stopping = true;
    await Promise.race([Promise.all(background), sleep(60_000)]);
    const w = windowMs(o.minutes);
    res.series = samples.filter((_, i) => i % 10 === 0).map((x) => ({ t: Math.round(x.t / 1000), cpuSeconds: x.cpu, rssMB: Math.round(x.rss / 1e5) / 10, rssAnonMB: Math.round(x.anon / 1e5) / 10, gb: Math.round(x.bytes / 1e6) / 1e3 }));
    res.first = windowStats(samples, latencies, 0, w);
    res.last = windowStats(samples, latencies, durationMs - w, durationMs + 60_000);
  } catch (err) {
    res.error = (err as Error).message;
    o.log(`${system}: failed: ${res.error}`);
  } finally {
    stopping = true;
    for (const m of members) await m.disconnect().catch(() => {});
    await client?.close().catch(() => {});
    await admin?.close().catch(() => {});
    await broker?.stop();
  }
  return res;
}

export interface SoakOutput { results: SoakResult[]; rows: BenchRow[]; notes: string[] }

const METRICS = [
  { key: 'cpuPerGb', name: 'broker CPU per GB produced', unit: 'CPU s/GB' },
  { key: 'p99Ms', name: 'produce p99 (acks=all, per request)', unit: 'ms' },
  { key: 'rssMB', name: 'broker RSS (mean of 1 s samples)', unit: 'MB' },
] as const;

/** Runnel first, then Kafka (when its artifacts are here), each for `minutes`. */
export async function soakSuite(o: SoakOptions): Promise<SoakOutput> {
  const systems: SystemName[] = o.art ? ['Runnel', 'Kafka'] : ['Runnel'];
  const results: SoakResult[] = [];
  for (const system of systems) {
    o.log(`soak: ${system} for ${o.minutes} min at ${o.rateMBps} MB/s`);
    results.push(await soakOne(system, o, { dataDir: join(o.workDir, system.toLowerCase()), segmentBytes: 1024 * 1024 * 1024, kafkaHeap: '1g' }));
  }
  const rows: BenchRow[] = [];
  for (const r of results) {
    for (const m of METRICS) {
      const last = r.last?.[m.key] ?? Number.NaN;
      const first = r.first?.[m.key] ?? Number.NaN;
      rows.push(row(`${r.system}: ${m.name}, last window vs first`, m.unit, last, { name: `${r.system}: first window`, value: first }, 'lower'));
    }
  }
  const w = windowMs(o.minutes) / 60_000;
  const notes = [
    `Each broker ran alone for ${o.minutes} min (${systems.join(', then ')}; one after the other, since two brokers at once would fight over the 2 cores). First window: minutes 0–${+w.toFixed(2)} of the load; last window: the final ${+w.toFixed(2)} min. Met = last / first ≤ ${LIMIT.toFixed(2)}.`,
    `Load, the same code against both: @runnel/client producer at ${o.rateMBps} MB/s of 1 KB records (acks=all, batches of ${PER_BATCH}, ${PARTITIONS} partitions, ≤ ${IN_FLIGHT} requests in flight); a kafkajs consumer group of 2 members whose second member leaves and rejoins every 60 s; a topic created, given 10 records and deleted every 10 s.`,
    'CPU: the broker\'s process group (utime+stime+children from /proc) per GB (10^9 bytes of record values) acknowledged in the window; p99 over the window\'s produce requests (send to acknowledgement); RSS: mean of the 1 s samples in the window.',
  ];
  for (const r of results) {
    const split = (x: WindowStats | null) => (x ? `${fmt(x.rssAnonMB)} anonymous + ${fmt(x.rssFileMB)} file-backed MB` : '-');
    notes.push(`${r.system}: RSS first window ${split(r.first)}, last window ${split(r.last)}.`);
    notes.push(`${r.system}: ${r.error ? `failed: ${r.error}; ` : ''}${r.produced.toLocaleString('en-US')} records produced (${r.produceErrors} failed requests), ${r.consumed.toLocaleString('en-US')} consumed, ${r.churned} topics churned (${r.churnErrors} failed), ${r.rebalances} group joins (kafkajs GROUP_JOIN events)${r.lastError ? `; last error: ${r.lastError}` : ''}${r.profiles?.length ? `; profiles: ${r.profiles.join(', ')}` : ''}.`);
  }
  return { results, rows, notes };
}

const fmt = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

/** One table per broker: first window, last window, last / first, met. */
export function soakMarkdown(out: SoakOutput): string {
  const lines: string[] = [];
  for (const r of out.results) {
    lines.push(`## ${r.system}`, '', '| metric | first window | last window | last / first | ≤ 1.10 |', '|---|---:|---:|---:|---|');
    for (const m of METRICS) {
      const f = r.first?.[m.key];
      const l = r.last?.[m.key];
      const ratio = f !== undefined && l !== undefined && f > 0 ? l / f : Number.NaN;
      lines.push(`| ${m.name} (${m.unit}) | ${fmt(f)} | ${fmt(l)} | ${Number.isFinite(ratio) ? ratio.toFixed(2) : '-'} | ${Number.isFinite(ratio) ? (ratio <= LIMIT ? 'met' : 'not met') : '-'} |`);
    }
    lines.push('');
  }
  lines.push(...out.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}
