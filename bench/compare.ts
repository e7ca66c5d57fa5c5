/**
 * Runnel side by side with Apache Kafka on the same machine, in one run, driven by the same load
 * tools (Kafka's own perf tools when Java is here):
 *
 *   npm run bench -- [--suite smoke|quick|full|cluster|soak|tls] [--json FILE] [--svg FILE] [--md FILE]
 *                    [--driver auto|both|java|runnel|node] [--kafka-version X.Y.Z] [--no-kafka] [--rows REGEX]
 *                    [--minutes N] [--rate MB/s] [--profile]   (the last three: soak suite only)
 *
 * Kafka (official Maven Central artifacts, cached in .cache/kafka/) and Runnel run side by side as
 * single-node brokers with the same settings. Each load tool (Kafka's perf tools, then `runnel
 * perf`) drives both, their runs interleaved; every row is a warm-up run plus the median of three
 * measured runs (one in the smoke suite). Rows that fail are reported with their error text and
 * the run goes on. Every process started here is killed on exit, Ctrl-C included.
 * With `--json FILE` the chart goes to FILE with `.svg` (or `--svg FILE`).
 * `--suite cluster` compares replicated 3-broker clusters instead (compare/cluster.ts); `--suite
 * soak` runs each broker for `--minutes` under steady mixed load and compares its last window with
 * its first (compare/soak.ts).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, median } from './lib/report.ts';
import type { KafkaClient } from '@runnel/client';
import { coldStart, connectWhenReady, createTopic, deleteTopic, spawnBroker, type BrokerSettings, type RunningBroker, type SystemName } from './compare/brokers.ts';
import { javaDriver, nodeDriver, runnelPerfAvailable, runnelPerfDriver, type Driver, type ProduceResult } from './compare/drivers.ts';
import { clusterSuite } from './compare/cluster.ts';
import { tlsSuite } from './compare/tls.ts';
import { soakMarkdown, soakSuite } from './compare/soak.ts';
import { kafkaArtifacts, type KafkaArtifacts } from './compare/kafka.ts';
import { cpuFieldsOf, cpuOf, jsonDoc, markdownTable, svgChart, type Cell, type CompareRow, type RunCpu, type RunInfo } from './compare/output.ts';
import { physicalLimits } from './compare/physical.ts';
import { commandExists, groupCpuSeconds, rssBytes, sampleRss } from './compare/proc.ts';
import { BASE, caseName, suite as suiteOf, TRANSACTION_RECORDS, type Suite, type SuiteName } from './compare/suites.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Args {
  suite: SuiteName | 'cluster' | 'soak' | 'tls';
  json: string | null;
  svg: string | null;
  md: string | null;
  driver: 'auto' | 'java' | 'runnel' | 'node' | 'both';
  kafkaVersion: string | null;
  kafka: boolean;
  /** Only the produce rows whose name matches (the base row always runs: consume, memory and latency build on it). */
  rows: RegExp | null;
  /** Soak suite: minutes per broker, producer MB/s, profiles of the Runnel broker. */
  minutes: number;
  rateMBps: number;
  profile: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { suite: 'quick', json: null, svg: null, md: null, driver: 'auto', kafkaVersion: null, kafka: true, rows: null, minutes: 30, rateMBps: 5, profile: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => { const x = argv[++i]; if (x === undefined) throw new Error(`${k} needs a value`); return x; };
    if (k === '--suite') { const s = v(); if (s !== 'smoke' && s !== 'quick' && s !== 'full' && s !== 'cluster' && s !== 'soak' && s !== 'tls') throw new Error(`--suite smoke|quick|full|cluster|soak|tls, not ${s}`); a.suite = s; }
    else if (k === '--json') a.json = v();
    else if (k === '--svg') a.svg = v();
    else if (k === '--md') a.md = v();
    else if (k === '--driver') { const d = v(); if (!['auto', 'java', 'runnel', 'node', 'both'].includes(d)) throw new Error(`--driver auto|java|runnel|node|both, not ${d}`); a.driver = d as Args['driver']; }
    else if (k === '--kafka-version') a.kafkaVersion = v();
    else if (k === '--no-kafka') a.kafka = false;
    else if (k === '--rows') a.rows = new RegExp(v(), 'i');
    else if (k === '--minutes') { const m = Number(v()); if (!(m > 0)) throw new Error('--minutes must be a positive number'); a.minutes = m; }
    else if (k === '--rate') { const r = Number(v()); if (!(r > 0)) throw new Error('--rate must be a positive number of MB/s'); a.rateMBps = r; }
    else if (k === '--profile') a.profile = true;
    else throw new Error(`unknown option ${k}`);
  }
  // The smoke suite is Runnel only: it runs inside `npm test`, which must not need Java.
  if (a.suite === 'smoke') a.kafka = false;
  return a;
}

const started = performance.now();
const log = (s: string) => process.stderr.write(`compare [${Math.round((performance.now() - started) / 1000)} s]: ${s}\n`);

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

/** The median of the samples, with the broker's and the tool's CPU over the measured runs. */
function cellOf(samples: number[], cpu: RunCpu[]): Cell {
  return { value: median(samples), samples, ...cpuOf(cpu) };
}

const PRODUCE_UNIT = 'MB/s';
const names = {
  consume: 'consume 1 KB records (fetch rate after the group join)',
  consumeDirect: 'consume 1 KB records (fetch rate, partitions assigned directly, no group)',
  join: 'consumer group join before the first fetch',
  txnProduce: `transactional produce 1 KB, about ${TRANSACTION_RECORDS.toLocaleString('en-US')} records per transaction (acks=all)`,
  readCommitted: 'consume 1 KB transactional records, read_committed (fetch rate after the group join)',
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

/** One broker under test and what has been measured on it so far. */
interface Target {
  system: SystemName;
  broker: RunningBroker;
  admin: KafkaClient;
  results: Results;
}

interface Run<T> { r: T; cpu: RunCpu; brokerCpuSeconds: number }

/**
 * One row on every target, interleaved run by run (K R, R K, K R, ...) so that a machine whose
 * load drifts (other work, page cache, thermal) disturbs both sides alike: `setup` and `warmup` per
 * target, then `runs` measured runs each with the broker's and the tool's CPU use, then `record`.
 * A target that fails gets its error recorded through `fail`; the other goes on.
 */
async function interleaved<T extends { wallMs: number; toolCpu: number }>(
  targets: Target[],
  runs: number,
  steps: {
    setup?: (t: Target) => Promise<void>;
    warmup?: (t: Target) => Promise<unknown>;
    run: (t: Target, i: number) => Promise<T>;
    around?: (t: Target) => { stop(): void };
    record: (t: Target, runs: Array<Run<T>>) => void;
    fail: (t: Target, err: unknown) => void;
  },
): Promise<void> {
  const done = new Map<Target, Array<Run<T>>>();
  const errors = new Map<Target, unknown>();
  for (const t of targets) {
    try {
      await steps.setup?.(t);
      await steps.warmup?.(t);
      done.set(t, []);
    } catch (err) {
      errors.set(t, err);
    }
  }
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const list = done.get(t);
      if (!list) continue;
      try {
        const sampler = steps.around?.(t);
        const b0 = groupCpuSeconds(t.broker.pid);
        const r = await steps.run(t, i);
        const brokerCpu = groupCpuSeconds(t.broker.pid) - b0;
        sampler?.stop();
        list.push({ r, brokerCpuSeconds: brokerCpu, cpu: { brokerCpu, toolCpu: r.toolCpu, wallMs: r.wallMs } });
      } catch (err) {
        done.delete(t);
        errors.set(t, err);
      }
    }
  }
  for (const t of targets) {
    const list = done.get(t);
    if (list) steps.record(t, list);
    else {
      log(`${t.system}: failed: ${(errors.get(t) as Error)?.message ?? errors.get(t)}`);
      steps.fail(t, errors.get(t));
    }
  }
}

const coresOf = <T>(runs: Array<Run<T>>) => runs.map((x) => x.cpu);

/**
 * Broker CPU seconds per GB (10^9 bytes) of record values moved: what the broker costs, whoever is
 * the bottleneck. The value is over all measured runs together (total CPU / total bytes), not a
 * median: /proc counts CPU in 10 ms ticks, too coarse for one short run.
 */
function cpuPerGb<T>(runs: Array<Run<T>>, bytesPerRun: number): Cell {
  const samples = runs.map((x) => x.brokerCpuSeconds / (bytesPerRun / 1e9));
  const total = runs.reduce((a, x) => a + x.brokerCpuSeconds, 0);
  return { value: total / ((bytesPerRun * runs.length) / 1e9), samples, ...cpuOf(coresOf(runs)) };
}

const cpuName = (row: string) => `broker CPU per GB: ${row}`;

/** The consume row says whether its tool joined a group: only then is it "after the group join". */
const consumeName = (driver: Driver) => (driver.joinsGroup ? names.consume : names.consumeDirect);

/** Rows measured with a load tool carry its name: the tool is half of every such number. */
const tagged = (row: string, driver: Driver) => `${row} [${driver.tag}]`;

/** Every row on every target; never throws for a row, only records its failure. */
async function measureAll(targets: Target[], s: Suite, driver: Driver, withEndToEnd: boolean, topicSuffix: string): Promise<{ fixedRate: number | null }> {
  const n = (row: string) => tagged(row, driver);
  const rssPeaks = new Map<Target, number[]>(targets.map((t) => [t, []]));
  const baseCpu = new Map<Target, Cell>();
  const baseMax = new Map<Target, number>();

  for (const c of s.produce) {
    const name = n(caseName(c));
    const topic = `bench-${c.id}${topicSuffix}`;
    const spec = { topic, partitions: c.partitions, records: s.records(c.recordSize), recordSize: c.recordSize, acks: c.acks, compression: c.compression, throughput: -1 };
    log(name);
    await interleaved<ProduceResult>(targets, s.runs, {
      setup: (t) => createTopic(t.admin, topic, c.partitions),
      warmup: s.warmup ? (t) => driver.produce(t.broker.bootstrap, { ...spec, records: Math.ceil(spec.records / 4) }) : undefined,
      around: (t) => {
        if (c.id !== BASE.id) return { stop() {} };
        const sampler = sampleRss(t.broker.pid);
        return { stop: () => rssPeaks.get(t)!.push(sampler.stop() / 1e6) };
      },
      run: (t) => driver.produce(t.broker.bootstrap, spec),
      record: (t, runs) => {
        t.results.set(name, cellOf(runs.map((x) => x.r.mbPerSec), coresOf(runs)));
        t.results.set(cpuName(name), cpuPerGb(runs, spec.records * spec.recordSize));
        if (c.id === BASE.id) {
          baseMax.set(t, median(runs.map((x) => x.r.recordsPerSec)));
          baseCpu.set(t, t.results.get(name)!);
        }
      },
      fail: (t, err) => { t.results.set(name, failed(err)); t.results.set(cpuName(name), failed(err)); },
    });
    if (c.id !== BASE.id) for (const t of targets) await deleteTopic(t.admin, topic).catch(() => {});
  }
  for (const t of targets) {
    const peaks = rssPeaks.get(t)!;
    // Sampled during the base produce row's runs: that row's CPU and bottleneck are this row's too.
    t.results.set(n(names.rssLoad), peaks.length ? { value: median(peaks), samples: peaks, ...cpuFieldsOf(baseCpu.get(t)) } : failed(new Error('the base produce row did not run')));
  }

  // Consume what the base produce row wrote (warm-up + runs × records, so there is enough).
  const consumeRow = n(consumeName(driver));
  log(consumeRow);
  const consumeSpec = { topic: `bench-${BASE.id}${topicSuffix}`, records: Math.min(s.consumeRecords, s.records(BASE.recordSize) * s.runs), recordSize: BASE.recordSize };
  await interleaved(targets, s.runs, {
    warmup: s.warmup ? (t) => driver.consume(t.broker.bootstrap, consumeSpec) : undefined,
    run: (t) => driver.consume(t.broker.bootstrap, consumeSpec),
    record: (t, runs) => {
      t.results.set(consumeRow, cellOf(runs.map((x) => x.r.mbPerSec), coresOf(runs)));
      t.results.set(cpuName(consumeRow), cpuPerGb(runs, consumeSpec.records * consumeSpec.recordSize));
      // The join is part of the same tool runs; its CPU is the runs' CPU.
      if (driver.joinsGroup) t.results.set(n(names.join), { value: median(runs.map((x) => x.r.joinMs)), samples: runs.map((x) => x.r.joinMs), ...cpuOf(coresOf(runs)) });
    },
    fail: (t, err) => { for (const row of [consumeRow, cpuName(consumeRow), n(names.join)]) t.results.set(row, failed(err)); },
  });

  const kafkaTarget = targets.find((t) => t.system === 'Kafka');
  const max = kafkaTarget ? baseMax.get(kafkaTarget) : baseMax.get(targets[0]!);
  if (s.transactions) await measureTransactions(targets, s, driver, topicSuffix, max);

  // Latency at a fixed rate: half of Kafka's maximum on the base row (Runnel's own without Kafka).
  const rate = max ? Math.round(max / 2) : null;
  const fixedTopic = `bench-fixed-rate${topicSuffix}`;
  log(n(`fixed-rate latency at ${rate} records/s`));
  const fixedSpec = { topic: fixedTopic, partitions: 1, records: Math.max(100, Math.round((rate ?? 0) * s.fixedRateSeconds)), recordSize: 1024, acks: '1' as const, compression: 'none' as const, throughput: rate ?? 1 };
  await interleaved<ProduceResult>(targets, s.runs, {
    setup: async (t) => {
      if (!rate) throw new Error(`no maximum rate to take half of (the base produce row failed on ${kafkaTarget ? 'Kafka' : t.system})`);
      await createTopic(t.admin, fixedTopic, 1);
    },
    warmup: s.warmup ? (t) => driver.produce(t.broker.bootstrap, { ...fixedSpec, records: Math.ceil(fixedSpec.records / 4) }) : undefined,
    run: (t) => driver.produce(t.broker.bootstrap, fixedSpec),
    record: (t, runs) => {
      t.results.set(n(names.fixedP50), cellOf(runs.map((x) => x.r.p50Ms), coresOf(runs)));
      t.results.set(n(names.fixedP99), cellOf(runs.map((x) => x.r.p99Ms), coresOf(runs)));
    },
    fail: (t, err) => { t.results.set(n(names.fixedP50), failed(err)); t.results.set(n(names.fixedP99), failed(err)); },
  });

  if (!withEndToEnd) return { fixedRate: rate };
  log(n('end-to-end latency'));
  const e2eSpec = { topic: `bench-e2e${topicSuffix}`, records: s.endToEndRecords, recordSize: 1024, acks: '1' as const };
  await interleaved(targets, s.runs, {
    setup: (t) => createTopic(t.admin, e2eSpec.topic, 1),
    warmup: s.warmup ? (t) => driver.endToEnd(t.broker.bootstrap, { ...e2eSpec, records: Math.ceil(e2eSpec.records / 4) }) : undefined,
    run: (t) => driver.endToEnd(t.broker.bootstrap, e2eSpec),
    record: (t, runs) => {
      t.results.set(n(names.e2eP50), cellOf(runs.map((x) => x.r.p50Ms), coresOf(runs)));
      t.results.set(n(names.e2eP99), cellOf(runs.map((x) => x.r.p99Ms), coresOf(runs)));
      t.results.set(n(names.e2eAvg), cellOf(runs.map((x) => x.r.avgMs), coresOf(runs)));
    },
    fail: (t, err) => { for (const row of [n(names.e2eP50), n(names.e2eP99), n(names.e2eAvg)]) t.results.set(row, failed(err)); },
  });
  return { fixedRate: rate };
}

/**
 * The transaction rows, for a tool that has them (Kafka's ProducerPerformance commits by time, not
 * by count): transactions of `TRANSACTION_RECORDS / maxRate` ms, `maxRate` the base produce row's
 * records/s on Kafka (Runnel's own without Kafka), so about that many records each at full speed;
 * the same duration for both brokers. Then a read_committed consume of what they wrote.
 */
async function measureTransactions(targets: Target[], s: Suite, driver: Driver, topicSuffix: string, maxRate: number | undefined): Promise<void> {
  const produceTxn = driver.produceTransactional?.bind(driver);
  const consumeCommitted = driver.consumeCommitted?.bind(driver);
  if (!produceTxn || !consumeCommitted) return;
  const n = (row: string) => tagged(row, driver);
  const txnRow = n(names.txnProduce);
  const topic = `bench-transactions${topicSuffix}`;
  const transactionDurationMs = maxRate ? Math.max(1, Math.round((TRANSACTION_RECORDS * 1000) / maxRate)) : 0;
  transactionDurations.set(driver, transactionDurationMs || null);
  const spec = { topic, partitions: 1, records: s.records(1024), recordSize: 1024, acks: 'all' as const, compression: 'none' as const, throughput: -1, transactionDurationMs };
  log(`${txnRow}: transactions of ${transactionDurationMs} ms`);
  await interleaved<ProduceResult>(targets, s.runs, {
    setup: async (t) => {
      if (!transactionDurationMs) throw new Error('no maximum rate to size the transactions by (the base produce row failed)');
      await createTopic(t.admin, topic, 1);
    },
    warmup: s.warmup ? (t) => produceTxn(t.broker.bootstrap, { ...spec, records: Math.ceil(spec.records / 4) }) : undefined,
    run: (t) => produceTxn(t.broker.bootstrap, spec),
    record: (t, runs) => {
      t.results.set(txnRow, cellOf(runs.map((x) => x.r.mbPerSec), coresOf(runs)));
      t.results.set(cpuName(txnRow), cpuPerGb(runs, spec.records * spec.recordSize));
    },
    fail: (t, err) => { t.results.set(txnRow, failed(err)); t.results.set(cpuName(txnRow), failed(err)); },
  });
  const rcRow = n(names.readCommitted);
  log(rcRow);
  const consumeSpec = { topic, records: Math.min(s.consumeRecords, s.records(1024) * s.runs), recordSize: 1024 };
  await interleaved(targets, s.runs, {
    warmup: s.warmup ? (t) => consumeCommitted(t.broker.bootstrap, consumeSpec) : undefined,
    run: (t) => consumeCommitted(t.broker.bootstrap, consumeSpec),
    record: (t, runs) => {
      t.results.set(rcRow, cellOf(runs.map((x) => x.r.mbPerSec), coresOf(runs)));
      t.results.set(cpuName(rcRow), cpuPerGb(runs, consumeSpec.records * consumeSpec.recordSize));
    },
    fail: (t, err) => { t.results.set(rcRow, failed(err)); t.results.set(cpuName(rcRow), failed(err)); },
  });
  for (const t of targets) await deleteTopic(t.admin, topic).catch(() => {});
}

/** The transaction length each driver's transactional row used (run notes), null when it could not run. */
const transactionDurations = new Map<Driver, number | null>();

/** Cold starts, alternating the systems; each on a fresh (for Kafka: freshly formatted) log dir. */
async function coldStarts(systems: SystemName[], s: Suite, settings: (system: SystemName) => BrokerSettings, art: KafkaArtifacts | null): Promise<Map<SystemName, Cell>> {
  const samples = new Map<SystemName, number[]>(systems.map((x) => [x, []]));
  const errors = new Map<SystemName, unknown>();
  for (let i = 0; i < s.coldStarts; i++) {
    for (const system of i % 2 === 0 ? systems : [...systems].reverse()) {
      if (errors.has(system)) continue;
      const dir = join(settings(system).dataDir, `cold-${i}`);
      try {
        samples.get(system)!.push(await coldStart(system, { ...settings(system), dataDir: dir }, art, ROOT));
      } catch (err) {
        errors.set(system, err);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return new Map(systems.map((x) => [x, errors.has(x) ? failed(errors.get(x)) : { value: median(samples.get(x)!), samples: samples.get(x)! }]));
}

/** Starts the brokers, measures every row on them, stops them; failures become failed rows. */
async function measure(systems: SystemName[], s: Suite, drivers: Driver[], settings: (system: SystemName) => BrokerSettings, art: KafkaArtifacts | null): Promise<{ results: Map<SystemName, Results>; startErrors: Map<SystemName, unknown>; fixedRates: Map<Driver, number | null> }> {
  const out = new Map<SystemName, Results>(systems.map((x) => [x, new Map()]));
  log('cold starts');
  for (const [system, cell] of await coldStarts(systems, s, settings, art)) out.get(system)!.set(names.cold, cell);

  const targets: Target[] = [];
  const startErrors = new Map<SystemName, unknown>();
  const fixedRates = new Map<Driver, number | null>();
  try {
    for (const system of systems) {
      let broker: RunningBroker | undefined;
      try {
        broker = await spawnBroker(system, { ...settings(system), dataDir: join(settings(system).dataDir, 'main') }, art, ROOT);
        const admin = await connectWhenReady(broker);
        targets.push({ system, broker, admin, results: out.get(system)! });
      } catch (err) {
        log(`${system} did not start: ${(err as Error).message}`);
        await broker?.stop();
        startErrors.set(system, err);
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
    for (const t of targets) t.results.set(names.rssIdle, { value: rssBytes(t.broker.pid) / 1e6, samples: [rssBytes(t.broker.pid) / 1e6] });
    // JIT and page-cache warm-up for both brokers before anything is timed (Kafka's JVM runs
    // interpreted and profiled code until methods are hot); the per-row warm-ups come on top.
    if (targets.length && drivers[0] && s.brokerWarmupRecords > 0) {
      log('warming up the brokers');
      const d = drivers[0];
      for (const t of targets) {
        try {
          await createTopic(t.admin, 'bench-warmup', 1);
          await d.produce(t.broker.bootstrap, { topic: 'bench-warmup', partitions: 1, records: s.brokerWarmupRecords, recordSize: 1024, acks: '1', compression: 'none', throughput: -1 });
          await d.consume(t.broker.bootstrap, { topic: 'bench-warmup', records: s.brokerWarmupRecords, recordSize: 1024 });
          // Thousands of small requests too: per-request code paths get hot per request, not per byte.
          await d.endToEnd(t.broker.bootstrap, { topic: 'bench-warmup', records: 3000, recordSize: 1024, acks: '1' });
          await deleteTopic(t.admin, 'bench-warmup');
        } catch (err) {
          log(`${t.system}: warm-up failed (${(err as Error).message}); measuring anyway`);
        }
      }
    }
    for (const [i, driver] of drivers.entries()) {
      // Separate topics per tool, so each starts from an empty log.
      if (targets.length) fixedRates.set(driver, (await measureAll(targets, s, driver, i === 0, `-${driver.name}`)).fixedRate);
    }
  } finally {
    for (const t of targets) {
      await t.admin.close().catch(() => {});
      await t.broker.stop();
    }
  }
  return { results: out, startErrors, fixedRates };
}

function orderedRows(s: Suite, drivers: Driver[], results: Map<SystemName, Results>, startErrors: Map<SystemName, unknown>): CompareRow[] {
  const rows: CompareRow[] = [];
  const cell = (system: SystemName, name: string): Cell | null => {
    if (!results.has(system)) return null;
    return results.get(system)!.get(name) ?? failed(startErrors.get(system) ?? new Error('not measured'));
  };
  const add = (name: string, unit: string, better: 'higher' | 'lower') => {
    rows.push({ name, unit, better, kafka: cell('Kafka', name), runnel: cell('Runnel', name)! });
  };
  for (const [i, d] of drivers.entries()) {
    const n = (row: string) => tagged(row, d);
    for (const c of s.produce) add(n(caseName(c)), PRODUCE_UNIT, 'higher');
    add(n(consumeName(d)), 'MB/s', 'higher');
    if (d.joinsGroup) add(n(names.join), 'ms', 'lower');
    if (s.transactions && d.produceTransactional && d.consumeCommitted) {
      add(n(names.txnProduce), PRODUCE_UNIT, 'higher');
      add(n(names.readCommitted), 'MB/s', 'higher');
    }
    add(n(names.fixedP50), 'ms', 'lower');
    add(n(names.fixedP99), 'ms', 'lower');
    if (i === 0) {
      add(n(names.e2eP50), 'ms', 'lower');
      add(n(names.e2eP99), 'ms', 'lower');
      add(n(names.e2eAvg), 'ms', 'lower');
    }
  }
  for (const d of drivers) {
    for (const c of s.produce) add(cpuName(tagged(caseName(c), d)), 'CPU s/GB', 'lower');
    add(cpuName(tagged(consumeName(d), d)), 'CPU s/GB', 'lower');
    if (s.transactions && d.produceTransactional && d.consumeCommitted) {
      add(cpuName(tagged(names.txnProduce, d)), 'CPU s/GB', 'lower');
      add(cpuName(tagged(names.readCommitted, d)), 'CPU s/GB', 'lower');
    }
  }
  add(names.cold, 'ms', 'lower');
  add(names.rssIdle, 'MB', 'lower');
  for (const d of drivers) add(tagged(names.rssLoad, d), 'MB', 'lower');
  return rows;
}

async function main(): Promise<void> {
  const began = performance.now();
  const loadStart = os.loadavg();
  const args = parseArgs(process.argv.slice(2));
  // The cluster suite takes the quick suite's run sizes (compare/cluster.ts has its own rows).
  const all = suiteOf(args.suite === 'cluster' || args.suite === 'soak' || args.suite === 'tls' ? 'quick' : args.suite);
  const s = args.rows ? { ...all, produce: all.produce.filter((c) => c.id === BASE.id || args.rows!.test(caseName(c))), transactions: all.transactions && args.rows.test(names.txnProduce) } : all;
  const notes: string[] = [];
  const workDir = join(ROOT, '.cache', 'bench-compare', `${process.pid}`);
  mkdirSync(workDir, { recursive: true });
  // Also on Ctrl-C, where `finally` does not run (proc.ts kills the processes first).
  process.once('exit', () => rmSync(workDir, { recursive: true, force: true }));

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

  if (args.rows) notes.push(`Produce rows limited to /${args.rows.source}/ (plus the base row).`);
  // Kafka's tools drive both brokers when Java is here (the fairest comparison), then Runnel's perf
  // tool drives both again; without Java, Runnel's perf tool (or the in-process client) alone.
  const perf = () => (runnelPerfAvailable(ROOT) ? runnelPerfDriver(ROOT, 180_000) : nodeDriver());
  let drivers: Driver[];
  if (args.driver === 'java' || args.driver === 'both') {
    if (!art) throw new Error(`--driver ${args.driver} needs the Kafka tools (Java and Maven)`);
    drivers = args.driver === 'java' ? [javaDriver(art.classpath, 180_000)] : [javaDriver(art.classpath, 180_000), perf()];
  } else if (args.driver === 'runnel') {
    drivers = [runnelPerfDriver(ROOT, 180_000)];
  } else if (args.driver === 'node') {
    drivers = [nodeDriver()];
  } else {
    drivers = art ? [javaDriver(art.classpath, 180_000), perf()] : [perf()];
  }
  if (args.suite === 'soak') {
    let out: Awaited<ReturnType<typeof soakSuite>>;
    try {
      out = await soakSuite({ root: ROOT, workDir, art, minutes: args.minutes, rateMBps: args.rateMBps, profile: args.profile, log });
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
    const table = soakMarkdown({ ...out, notes: [...notes, ...out.notes] });
    process.stdout.write(`\n# Soak: last window vs first (${args.minutes} min per broker)\n\n${table}`);
    if (args.json) {
      // The other suites' shape (compare/output.ts jsonDoc); rows compare a broker with itself: value = last window, baseline = first.
      const doc = {
        benchmark: 'compare',
        machine: { ...machine(), java, kafka: art?.version ?? null, runnel: runnelVersion(), driver: '@runnel/client producer, kafkajs group', suite: 'soak' },
        durationSeconds: Math.round((performance.now() - began) / 1000), loadAverage: { start: loadStart, end: os.loadavg() },
        minutes: args.minutes, rateMBps: args.rateMBps, notes: [...notes, ...out.notes], rows: out.rows,
        series: Object.fromEntries(out.results.map((r) => [r.system, r.series])),
      };
      writeFileSync(args.json, `${JSON.stringify(doc, null, 2)}\n`);
    }
    if (args.md) writeFileSync(args.md, table);
    log(`done in ${Math.round((performance.now() - began) / 1000)} s`);
    return;
  }
  const suiteName = args.suite === 'cluster' || args.suite === 'tls' ? args.suite : s.name;
  log(`suite ${suiteName}, load tools: ${drivers.map((d) => d.name).join(', ')}${art ? `, Apache Kafka ${art.version}` : ', Runnel only'}`);
  if (args.suite === 'tls') {
    // compare/tls.ts: produce and consume over SSL listeners, both brokers driven by Kafka's perf tools.
    let out: Awaited<ReturnType<typeof tlsSuite>>;
    try {
      out = await tlsSuite({ root: ROOT, workDir, art, log, records: s.records(1024), runs: s.runs, warmup: s.warmup });
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
    notes.push(...out.notes);
    if (loadStart[0]! > os.cpus().length) notes.push(busyNote(art !== null));
    writeOutputs(args, out.rows, { suite: 'tls', kafkaVersion: art?.version ?? null, runnelVersion: runnelVersion(), driver: 'java (Kafka perf tools over SSL)', java, notes, durationSeconds: (performance.now() - began) / 1000, load: { start: loadStart, end: os.loadavg() } });
    log(`done in ${Math.round((performance.now() - began) / 1000)} s`);
    return;
  }
  if (args.suite === 'cluster') {
    let cluster: Awaited<ReturnType<typeof clusterSuite>>;
    try {
      cluster = await clusterSuite({ root: ROOT, workDir, art, drivers, log, records: s.records(1024), runs: s.runs, warmup: s.warmup, fixedRateSeconds: s.fixedRateSeconds, failoverRuns: 3 });
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
    notes.push(...cluster.notes, ...drivers.map((d) => `[${d.tag}]: ${d.description}; it drove ${art ? 'both clusters' : 'the Runnel cluster'}.`));
    if (loadStart[0]! > os.cpus().length) {
      notes.push(busyNote(art !== null));
    }
    writeOutputs(args, cluster.rows, { suite: 'cluster', kafkaVersion: art?.version ?? null, runnelVersion: runnelVersion(), driver: drivers.map((d) => d.name).join(', '), java, notes, durationSeconds: (performance.now() - began) / 1000, load: { start: loadStart, end: os.loadavg() } });
    log(`done in ${Math.round((performance.now() - began) / 1000)} s`);
    return;
  }

  const settings: BrokerSettings = { dataDir: workDir, segmentBytes: 1024 * 1024 * 1024, kafkaHeap: '1g' };
  const rows: CompareRow[] = [];
  let ran: { systems: SystemName[]; fixedRates: Map<Driver, number | null> } = { systems: [], fixedRates: new Map() };
  try {
    log('physical limits');
    let phys: { writeMBps: number; loopbackMBps: number } | null = null;
    try { phys = await physicalLimits(workDir, s.physicalBytes); } catch (err) { log(`physical limits failed: ${(err as Error).message}`); }

    const systems: SystemName[] = art ? ['Kafka', 'Runnel'] : ['Runnel'];
    const { results, startErrors, fixedRates } = await measure(systems, s, drivers, (system) => ({ ...settings, dataDir: join(workDir, system.toLowerCase()) }), art);
    ran = { systems: systems.filter((x) => !startErrors.has(x)), fixedRates };
    rows.push(...orderedRows(s, drivers, results, startErrors));
    const physical = (name: string, v: number | undefined) => rows.push({ name, unit: 'MB/s', better: 'higher', kafka: null, runnel: v === undefined ? failed(new Error('not measured')) : { value: v, samples: [v] }, physical: true });
    physical(names.write, phys?.writeMBps);
    physical(names.loopback, phys?.loopbackMBps);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }

  notes.push(...runNotes(s, drivers, ran.systems, ran.fixedRates, settings));
  const info: RunInfo = { suite: s.name, kafkaVersion: art?.version ?? null, runnelVersion: runnelVersion(), driver: drivers.map((d) => d.name).join(', '), java, notes, durationSeconds: (performance.now() - began) / 1000, load: { start: loadStart, end: os.loadavg() } };
  if (loadStart[0]! > os.cpus().length) {
    notes.push(busyNote(ran.systems.length > 1));
  }
  writeOutputs(args, rows, info);
  log(`done in ${Math.round((performance.now() - began) / 1000)} s`);
}

/** Only a run with both systems has interleaved runs and ratios to speak of. */
const busyNote = (both: boolean) => `The machine was busy with other work before the run (load average above ${os.cpus().length} at its start; the run's own brokers and tools load it too, so the end figure says nothing of other work); absolute numbers are low and noisy${both ? ', the interleaved runs keep the ratios fairer than the absolutes' : ''}.`;

const plural = (n: number, what: string) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;

/**
 * The notes under the table, derived from what this run did (its suite's sizes, its tools, the
 * brokers that ran), so that no note describes a side, a tool or a setting that was not there.
 */
function runNotes(s: Suite, drivers: Driver[], systems: SystemName[], fixedRates: Map<Driver, number | null>, settings: BrokerSettings): string[] {
  const both = systems.length > 1;
  const brokers = both ? 'both brokers' : systems.length === 1 ? `the ${systems[0]} broker` : 'no broker (none started)';
  const notes: string[] = [];
  const sizes = [...new Set(s.produce.map((c) => c.recordSize))].map((size) => `${plural(s.records(size), 'record')} of ${size >= 1024 ? `${size / 1024} KB` : `${size} B`}`);
  const consumed = Math.min(s.consumeRecords, s.records(BASE.recordSize) * s.runs);
  notes.push(`Run sizes: produce ${sizes.join(' / ')} per run; consume ${plural(consumed, 'record')} of 1 KB per run; fixed-rate latency runs of ${plural(s.fixedRateSeconds, 'second')}; end-to-end latency over ${plural(s.endToEndRecords, 'record')}; ${plural(s.coldStarts, 'cold start')}; ${s.brokerWarmupRecords > 0 ? `each broker took ${plural(s.brokerWarmupRecords, 'record')} of warm-up first` : 'no broker warm-up'}.`);
  for (const d of drivers) {
    const rate = fixedRates.get(d);
    notes.push(`[${d.tag}]: ${d.description}; it drove ${brokers}.${rate ? ` Its fixed-rate latency rows: 1 KB records at ${plural(rate, 'record')}/s, half of ${both ? "Kafka's" : `${systems[0]}'s`} maximum on the base produce row (send to acknowledgement, as kafka-producer-perf-test reports it).` : ''}`);
  }
  for (const d of drivers) {
    if (!s.transactions || !transactionDurations.has(d)) continue;
    const ms = transactionDurations.get(d);
    notes.push(`[${d.tag}] transaction rows: ${ms ? `kafka-producer-perf-test commits every ${ms} ms (--transaction-duration-ms: ${TRANSACTION_RECORDS.toLocaleString('en-US')} records at ${both ? "Kafka's" : `${systems[0]}'s`} base-row maximum rate; it has no per-count option), a new transactional.id per run, acks=all` : 'not run (no base-row rate to size the transactions by)'}; the read_committed row consumes that topic with isolation.level=read_committed.`);
  }
  const perfTools = drivers.filter((d) => d.name !== 'node');
  if (perfTools.length) notes.push(`Produce with ${perfTools.map((d) => d.tag).join(' and ')}: linger.ms=5, batch.size=65536, random A–Z payloads.`);
  if (drivers.some((d) => d.name === 'node')) notes.push('Produce with the in-process client: prebuilt 64 KiB batches of A–Z payloads, five requests in flight, round-robin over partitions.');
  notes.push('MB are 10^6 bytes of record values. Broker CPU per GB = broker CPU seconds / GB of record values moved in the runs.');
  notes.push(`Each row: ${s.warmup ? 'one warm-up run, then ' : ''}${s.runs > 1 ? `the median of ${s.runs} runs` : 'one run'}${both ? ", Kafka's and Runnel's runs interleaved" : ''}. CPU cores = CPU seconds / wall seconds over the measured runs (broker: its process group; tool: its process and children, its start included in the wall time); the machine has ${os.cpus().length} cores shared by broker and tool.`);
  const segment = `log.segment.bytes=${settings.segmentBytes >= 1024 ** 3 ? `${settings.segmentBytes / 1024 ** 3} GiB` : `${settings.segmentBytes} bytes`}`;
  notes.push(both
    ? `Same settings on both: one node, PLAINTEXT on 127.0.0.1, ${segment}, no fsync (flush left to the OS), topics created with the row's partitions. Kafka: -Xms${settings.kafkaHeap} -Xmx${settings.kafkaHeap}, G1.`
    : `${systems[0] ?? 'Runnel'}: one node, PLAINTEXT on 127.0.0.1, ${segment}, no fsync (flush left to the OS), topics created with the row's partitions; Apache Kafka was not run.`);
  if (drivers.some((d) => d.name === 'java')) notes.push('Latency rows from the Java tools are whole milliseconds (the tools print integers); a 0 ms baseline has no ratio.');
  return notes;
}

function writeOutputs(args: Args, rows: CompareRow[], info: RunInfo): void {
  const table = markdownTable(rows, info);
  process.stdout.write(`\n# Runnel vs Apache Kafka (${info.suite})\n\n${table}`);
  if (args.json) writeFileSync(args.json, `${JSON.stringify(jsonDoc(rows, info), null, 2)}\n`);
  const svg = args.svg ?? (args.json ? args.json.replace(/\.json$/, '') + '.svg' : null);
  if (svg) writeFileSync(svg, svgChart(rows, info));
  if (args.md) writeFileSync(args.md, table);
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`compare: ${(err as Error)?.stack ?? err}\n`);
  process.exit(1);
});
