/**
 * Runnel side by side with Apache Kafka on the same machine, in one run, driven by the same load
 * tools (Kafka's own perf tools when Java is here):
 *
 *   npm run bench -- [--suite smoke|quick|full] [--json FILE] [--svg FILE] [--md FILE]
 *                    [--driver auto|java|runnel|node] [--kafka-version X.Y.Z] [--no-kafka]
 *
 * Kafka (official Maven Central artifacts, cached in .cache/kafka/) runs first as a single-node
 * KRaft broker, then Runnel with the same settings; every row is a warm-up run plus the median of
 * at least three measured runs (one each in the smoke suite). Rows that fail are reported with
 * their error text and the run goes on. Every process started here is killed on exit.
 * With `--json FILE` the chart goes to FILE with `.svg` (or `--svg FILE`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib/report.ts';
import { coldStart, connectWhenReady, createTopic, deleteTopic, spawnBroker, type BrokerSettings, type SystemName } from './compare/brokers.ts';
import { javaDriver, nodeDriver, runnelPerfAvailable, runnelPerfDriver, type Driver, type ProduceResult } from './compare/drivers.ts';
import { kafkaArtifacts, type KafkaArtifacts } from './compare/kafka.ts';
import { jsonDoc, markdownTable, svgChart, type Cell, type CompareRow, type RunInfo } from './compare/output.ts';
import { physicalLimits } from './compare/physical.ts';
import { commandExists, cpuSeconds, rssBytes, sampleRss } from './compare/proc.ts';
import { BASE, caseName, suite as suiteOf, type ProduceCase, type Suite, type SuiteName } from './compare/suites.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Args {
  suite: SuiteName;
  json: string | null;
  svg: string | null;
  md: string | null;
  driver: 'auto' | 'java' | 'runnel' | 'node';
  kafkaVersion: string | null;
  kafka: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { suite: 'quick', json: null, svg: null, md: null, driver: 'auto', kafkaVersion: null, kafka: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => { const x = argv[++i]; if (x === undefined) throw new Error(`${k} needs a value`); return x; };
    if (k === '--suite') { const s = v(); if (s !== 'smoke' && s !== 'quick' && s !== 'full') throw new Error(`--suite smoke|quick|full, not ${s}`); a.suite = s; }
    else if (k === '--json') a.json = v();
    else if (k === '--svg') a.svg = v();
    else if (k === '--md') a.md = v();
    else if (k === '--driver') { const d = v(); if (!['auto', 'java', 'runnel', 'node'].includes(d)) throw new Error(`--driver auto|java|runnel|node, not ${d}`); a.driver = d as Args['driver']; }
    else if (k === '--kafka-version') a.kafkaVersion = v();
    else if (k === '--no-kafka') a.kafka = false;
    else throw new Error(`unknown option ${k}`);
  }
  // The smoke suite is Runnel only: it runs inside `npm test`, which must not need Java.
  if (a.suite === 'smoke') a.kafka = false;
  return a;
}

const log = (s: string) => process.stderr.write(`compare: ${s}\n`);

function javaVersionFromStderr(): string | null {
  try {
    const r = execFileSync('sh', ['-c', 'java -version 2>&1'], { encoding: 'utf8' });
    return r.split('\n')[0]?.trim() ?? null;
  } catch {
    return null;
  }
}

function runnelVersion(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'packages/cli/package.json'), 'utf8')) as { version?: string };
  let commit = '';
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { /* not a checkout */ }
  return `${pkg.version ?? '0.0.0'}${commit ? ` (${commit})` : ''}`;
}

/** Measurements of one system, keyed by row name. */
type Results = Map<string, Cell>;

function failed(err: unknown): Cell {
  return { value: null, samples: [], error: (err as Error)?.message ?? String(err) };
}

function cellOf(samples: number[], cores: Array<{ broker: number; tool: number }>): Cell {
  return {
    value: median(samples),
    samples,
    brokerCores: median(cores.map((c) => c.broker)),
    toolCores: median(cores.map((c) => c.tool)),
  };
}

const PRODUCE_UNIT = 'MB/s';
const names = {
  consume: 'consume 1 KB records (fetch rate after the group join)',
  join: 'consumer group join before the first fetch',
  fixedP50: 'produce latency at half the max rate, p50',
  fixedP99: 'produce latency at half the max rate, p99',
  e2eP50: 'end-to-end latency, one 1 KB record at a time, p50',
  e2eP99: 'end-to-end latency, one 1 KB record at a time, p99',
  e2eAvg: 'end-to-end latency, one 1 KB record at a time, mean',
  cold: 'cold start to the first acknowledged produce',
  rssIdle: 'broker RSS, idle after start',
  rssLoad: 'broker RSS, peak under 1 KB produce load',
  write: 'raw sequential write (page cache, 1 MiB writes)',
  loopback: 'loopback TCP copy of the same bytes (one stream)',
};

/** Runs every row against one broker; never throws for a row, only records its failure. */
async function measureSystem(system: SystemName, s: Suite, driver: Driver, settings: BrokerSettings, art: KafkaArtifacts | null, fixedRate: () => number | null): Promise<Results> {
  const out: Results = new Map();
  const cold: number[] = [];
  try {
    for (let i = 0; i < s.coldStarts; i++) {
      const dir = join(settings.dataDir, `cold-${i}`);
      cold.push(await coldStart(system, { ...settings, dataDir: dir }, art, ROOT));
      rmSync(dir, { recursive: true, force: true });
    }
    out.set(names.cold, { value: median(cold), samples: cold });
  } catch (err) {
    out.set(names.cold, failed(err));
  }

  let broker;
  try {
    broker = await spawnBroker(system, { ...settings, dataDir: join(settings.dataDir, 'main') }, art, ROOT);
  } catch (err) {
    for (const n of Object.values(names)) if (!out.has(n)) out.set(n, failed(err));
    return out;
  }
  try {
    let admin;
    try {
      admin = await connectWhenReady(broker);
    } catch (err) {
      for (const n of Object.values(names)) if (!out.has(n)) out.set(n, failed(err));
      for (const c of s.produce) out.set(caseName(c), failed(err));
      return out;
    }
    await new Promise((r) => setTimeout(r, 1000));
    out.set(names.rssIdle, { value: rssBytes(broker.pid) / 1e6, samples: [rssBytes(broker.pid) / 1e6] });

    /** One measured tool run with the broker's and the tool's CPU use over it. */
    const measured = async <T extends { wallMs: number; toolCpu: number }>(fn: () => Promise<T>) => {
      const b0 = cpuSeconds(broker.pid);
      const r = await fn();
      const broker1 = cpuSeconds(broker.pid) - b0;
      return { r, cores: { broker: broker1 / (r.wallMs / 1000), tool: r.toolCpu / (r.wallMs / 1000) } };
    };

    const rssPeaks: number[] = [];
    const baseMax: number[] = [];
    for (const c of s.produce) {
      const name = caseName(c);
      const topic = `bench-${c.id}`;
      try {
        log(`${system}: ${name}`);
        await createTopic(admin, topic, c.partitions);
        const spec = { topic, partitions: c.partitions, records: s.records(c.recordSize), recordSize: c.recordSize, acks: c.acks, compression: c.compression, throughput: -1 };
        if (s.warmup) await driver.produce(broker.bootstrap, { ...spec, records: Math.ceil(spec.records / 2) });
        const samples: number[] = [];
        const cores: Array<{ broker: number; tool: number }> = [];
        for (let i = 0; i < s.runs; i++) {
          const rss = c === BASE || c.id === BASE.id ? sampleRss(broker.pid) : null;
          const { r, cores: k } = await measured<ProduceResult>(() => driver.produce(broker.bootstrap, spec));
          if (rss) rssPeaks.push(rss.stop() / 1e6);
          samples.push(r.mbPerSec);
          cores.push(k);
          if (c.id === BASE.id) baseMax.push(r.recordsPerSec);
        }
        out.set(name, cellOf(samples, cores));
        if (c.id !== BASE.id) await deleteTopic(admin, topic).catch(() => {});
      } catch (err) {
        log(`${system}: ${name} failed: ${(err as Error).message}`);
        out.set(name, failed(err));
      }
    }
    out.set(names.rssLoad, rssPeaks.length ? { value: median(rssPeaks), samples: rssPeaks } : failed(new Error('the base produce row did not run')));

    // Consume what the base produce row wrote (warm-up + runs × records, so there is enough).
    try {
      log(`${system}: ${names.consume}`);
      const topic = `bench-${BASE.id}`;
      const spec = { topic, records: Math.min(s.consumeRecords, s.records(BASE.recordSize) * s.runs), recordSize: BASE.recordSize };
      if (s.warmup) await driver.consume(broker.bootstrap, spec);
      const samples: number[] = [];
      const joins: number[] = [];
      const cores: Array<{ broker: number; tool: number }> = [];
      for (let i = 0; i < s.runs; i++) {
        const { r, cores: k } = await measured(() => driver.consume(broker.bootstrap, spec));
        samples.push(r.mbPerSec);
        joins.push(r.joinMs);
        cores.push(k);
      }
      out.set(names.consume, cellOf(samples, cores));
      if (driver.name === 'java') out.set(names.join, { value: median(joins), samples: joins });
    } catch (err) {
      out.set(names.consume, failed(err));
      out.set(names.join, failed(err));
    }

    // Latency at a fixed rate: half of Kafka's maximum on the base row (Runnel's own without Kafka).
    try {
      const rate = fixedRate() ?? (baseMax.length ? Math.round(median(baseMax) / 2) : null);
      if (!rate) throw new Error('no maximum rate to take half of (the base produce row failed)');
      log(`${system}: fixed-rate latency at ${rate} records/s`);
      const topic = 'bench-fixed-rate';
      await createTopic(admin, topic, 1);
      const spec = { topic, partitions: 1, records: Math.max(100, Math.round(rate * s.fixedRateSeconds)), recordSize: 1024, acks: '1' as const, compression: 'none' as const, throughput: rate };
      if (s.warmup) await driver.produce(broker.bootstrap, { ...spec, records: Math.ceil(spec.records / 4) });
      const p50: number[] = [];
      const p99: number[] = [];
      const cores: Array<{ broker: number; tool: number }> = [];
      for (let i = 0; i < s.runs; i++) {
        const { r, cores: k } = await measured<ProduceResult>(() => driver.produce(broker.bootstrap, spec));
        p50.push(r.p50Ms);
        p99.push(r.p99Ms);
        cores.push(k);
      }
      out.set(names.fixedP50, cellOf(p50, cores));
      out.set(names.fixedP99, cellOf(p99, cores));
      await deleteTopic(admin, topic).catch(() => {});
    } catch (err) {
      out.set(names.fixedP50, failed(err));
      out.set(names.fixedP99, failed(err));
    }

    try {
      log(`${system}: end-to-end latency`);
      const topic = 'bench-e2e';
      await createTopic(admin, topic, 1);
      const spec = { topic, records: s.endToEndRecords, recordSize: 1024, acks: '1' as const };
      if (s.warmup) await driver.endToEnd(broker.bootstrap, { ...spec, records: Math.ceil(spec.records / 4) });
      const avg: number[] = [];
      const p50: number[] = [];
      const p99: number[] = [];
      const cores: Array<{ broker: number; tool: number }> = [];
      for (let i = 0; i < s.runs; i++) {
        const { r, cores: k } = await measured(() => driver.endToEnd(broker.bootstrap, spec));
        avg.push(r.avgMs);
        p50.push(r.p50Ms);
        p99.push(r.p99Ms);
        cores.push(k);
      }
      out.set(names.e2eP50, cellOf(p50, cores));
      out.set(names.e2eP99, cellOf(p99, cores));
      out.set(names.e2eAvg, cellOf(avg, cores));
    } catch (err) {
      out.set(names.e2eP50, failed(err));
      out.set(names.e2eP99, failed(err));
      out.set(names.e2eAvg, failed(err));
    }
    await admin.close().catch(() => {});
  } finally {
    await broker.stop();
    rmSync(join(settings.dataDir, 'main'), { recursive: true, force: true });
  }
  return out;
}

function orderedRows(s: Suite, kafka: Results | null, runnel: Results, driver: Driver): CompareRow[] {
  const rows: CompareRow[] = [];
  const add = (name: string, unit: string, better: 'higher' | 'lower') => {
    const r = runnel.get(name);
    if (!r) return;
    rows.push({ name, unit, better, kafka: kafka ? kafka.get(name) ?? failed(new Error('not measured')) : null, runnel: r });
  };
  for (const c of s.produce) add(caseName(c), PRODUCE_UNIT, 'higher');
  add(names.consume, 'MB/s', 'higher');
  if (driver.name === 'java') add(names.join, 'ms', 'lower');
  add(names.fixedP50, 'ms', 'lower');
  add(names.fixedP99, 'ms', 'lower');
  add(names.e2eP50, 'ms', 'lower');
  add(names.e2eP99, 'ms', 'lower');
  add(names.e2eAvg, 'ms', 'lower');
  add(names.cold, 'ms', 'lower');
  add(names.rssIdle, 'MB', 'lower');
  add(names.rssLoad, 'MB', 'lower');
  return rows;
}

async function main(): Promise<void> {
  const began = performance.now();
  const args = parseArgs(process.argv.slice(2));
  const s = suiteOf(args.suite);
  const notes: string[] = [];
  const workDir = join(ROOT, '.cache', 'bench-compare', `${process.pid}`);
  mkdirSync(workDir, { recursive: true });

  let art: KafkaArtifacts | null = null;
  const java = javaVersionFromStderr();
  if (args.kafka) {
    const hasJava = java !== null && (await commandExists('java'));
    const hasMaven = await commandExists('mvn', ['-v']);
    if (!hasJava || !hasMaven) {
      notes.push(`Kafka rows need Java 17+ and Maven (missing: ${[!hasJava && 'java', !hasMaven && 'mvn'].filter(Boolean).join(', ')}); this run measured Runnel only.`);
    } else {
      try {
        art = await kafkaArtifacts(join(ROOT, '.cache', 'kafka'), args.kafkaVersion, log);
      } catch (err) {
        notes.push(`Kafka rows skipped: ${(err as Error).message}`);
      }
    }
  }

  let driver: Driver;
  const wantJava = args.driver === 'java' || (args.driver === 'auto' && art !== null);
  if (wantJava) {
    if (!art) throw new Error('--driver java needs the Kafka tools (Java and Maven)');
    driver = javaDriver(art.classpath, 180_000);
  } else if (args.driver === 'runnel' || (args.driver === 'auto' && runnelPerfAvailable(ROOT))) {
    driver = runnelPerfDriver(ROOT, 180_000);
  } else {
    driver = nodeDriver();
  }
  log(`suite ${s.name}, load tool: ${driver.name}${art ? `, Apache Kafka ${art.version}` : ', Runnel only'}`);

  const settings: BrokerSettings = { dataDir: workDir, segmentBytes: 1024 * 1024 * 1024, kafkaHeap: '1g' };
  const rows: CompareRow[] = [];
  try {
    log('physical limits');
    let phys: { writeMBps: number; loopbackMBps: number } | null = null;
    try { phys = await physicalLimits(workDir, s.physicalBytes); } catch (err) { log(`physical limits failed: ${(err as Error).message}`); }

    let kafka: Results | null = null;
    let kafkaHalf: number | null = null;
    if (art) {
      kafka = await measureSystem('Kafka', s, driver, { ...settings, dataDir: join(workDir, 'kafka') }, art, () => null);
      const base = kafka.get(caseName(BASE));
      if (base?.value) kafkaHalf = Math.round((base.value * 1e6) / BASE.recordSize / 2);
    }
    const runnel = await measureSystem('Runnel', s, driver, { ...settings, dataDir: join(workDir, 'runnel') }, art, () => kafkaHalf);
    rows.push(...orderedRows(s, kafka, runnel, driver));
    const physical = (name: string, v: number | undefined) => rows.push({ name, unit: 'MB/s', better: 'higher', kafka: null, runnel: v === undefined ? failed(new Error('not measured')) : { value: v, samples: [v] }, physical: true });
    physical(names.write, phys?.writeMBps);
    physical(names.loopback, phys?.loopbackMBps);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }

  notes.push(
    `Fixed-rate latency rows: 1 KB records at half of ${art ? "Kafka's" : "Runnel's"} maximum on the base produce row (send to acknowledgement, as kafka-producer-perf-test reports it).`,
    `${driver.description}; both brokers were driven by it. Produce: linger.ms=5, batch.size=65536; MB are 10^6 bytes of record values.`,
    `Each row: ${s.warmup ? 'one warm-up run, then ' : ''}the median of ${s.runs} run${s.runs > 1 ? 's' : ''}. CPU cores = CPU seconds / wall seconds of the tool run (the tool's JVM start is in its wall time); the machine has ${(await import('node:os')).cpus().length} cores shared by broker and tool.`,
    'Same settings on both: one node, PLAINTEXT on 127.0.0.1, log.segment.bytes=1 GiB, no fsync (flush left to the OS), topics created with the row\'s partitions. Kafka: -Xms1g -Xmx1g, G1.',
    'Latency rows from the Java tools are whole milliseconds (the tools print integers); a 0 ms baseline has no ratio.',
  );
  const info: RunInfo = { suite: s.name, kafkaVersion: art?.version ?? null, runnelVersion: runnelVersion(), driver: driver.name, java, notes, durationSeconds: (performance.now() - began) / 1000 };
  const table = markdownTable(rows, info);
  process.stdout.write(`\n# Runnel vs Apache Kafka (${s.name})\n\n${table}`);
  if (args.json) writeFileSync(args.json, `${JSON.stringify(jsonDoc(rows, info), null, 2)}\n`);
  const svg = args.svg ?? (args.json ? args.json.replace(/\.json$/, '') + '.svg' : null);
  if (svg) writeFileSync(svg, svgChart(rows, info));
  if (args.md) writeFileSync(args.md, table);
  log(`done in ${Math.round((performance.now() - began) / 1000)} s`);
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`compare: ${(err as Error)?.stack ?? err}\n`);
  process.exit(1);
});
