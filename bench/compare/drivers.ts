/**
 * Load tools. Every broker in one run is driven by the same tool, so the tool's own costs cancel:
 *
 * - `java`: Kafka's kafka-producer-perf-test, kafka-consumer-perf-test and end-to-end latency tool
 *   (org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance / EndToEndLatency), one JVM
 *   per measurement, the tools Kafka's own numbers come from;
 * - `runnel`: `runnel perf produce|consume` (the project's perf tool; consume joins a fresh group);
 * - `node`: a minimal in-process driver over @runnel/client, for machines without Java or without
 *   `runnel perf` (its consumer joins no group, and its rows say so).
 *
 * MB are decimal (10^6 bytes) of record values; the Java tools print MiB, converted here.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Codec, Consumer, KafkaClient, Producer } from '@runnel/client';
import { encodeRecordBatch } from '@runnel/protocol';
import { run } from './proc.ts';

export interface ProduceSpec {
  topic: string;
  partitions: number;
  records: number;
  recordSize: number;
  acks: '1' | 'all';
  compression: 'none' | 'lz4';
  /** Records per second, or -1 for as fast as possible. */
  throughput: number;
}

export interface ProduceResult {
  recordsPerSec: number;
  mbPerSec: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Wall time of the whole tool run (JVM start included for the Java tools). */
  wallMs: number;
  /** CPU seconds the load tool used. */
  toolCpu: number;
}

export interface ConsumeResult {
  /** Steady-state fetch rate (after the group join), MB/s. */
  mbPerSec: number;
  recordsPerSec: number;
  /** Group join time before the first fetch, ms (0 for group-less drivers). */
  joinMs: number;
  wallMs: number;
  toolCpu: number;
}

export interface LatencyResult { avgMs: number; p50Ms: number; p99Ms: number; wallMs: number; toolCpu: number }

export interface Driver {
  readonly name: string;
  /** Short label that row names carry. */
  readonly tag: string;
  readonly description: string;
  /** Whether `consume` joins a consumer group (and reports the join separately) or assigns partitions directly. */
  readonly joinsGroup: boolean;
  produce(bootstrap: string, spec: ProduceSpec): Promise<ProduceResult>;
  consume(bootstrap: string, spec: { topic: string; records: number; recordSize: number }): Promise<ConsumeResult>;
  /**
   * A transactional producer (`transactional.id`, so idempotent and acks=all) committing every
   * `transactionDurationMs`; absent when the tool has none (only Kafka's ProducerPerformance).
   */
  produceTransactional?(bootstrap: string, spec: ProduceSpec & { transactionDurationMs: number }): Promise<ProduceResult>;
  /** `consume` with isolation.level=read_committed; absent when the tool has no such setting here. */
  consumeCommitted?(bootstrap: string, spec: { topic: string; records: number; recordSize: number }): Promise<ConsumeResult>;
  /** One record at a time: send, wait until it is consumed, repeat. */
  endToEnd(bootstrap: string, spec: { topic: string; records: number; recordSize: number; acks: '1' | 'all' }): Promise<LatencyResult>;
}

const MIB = 1024 * 1024;

/** The final summary line of ProducerPerformance. */
export function parseProducerPerformance(output: string): Omit<ProduceResult, 'mbPerSec' | 'wallMs' | 'toolCpu'> {
  const m = output.match(/(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th/);
  if (!m) throw new Error(`no summary line in ProducerPerformance output: ${output.slice(-400)}`);
  return { recordsPerSec: Number(m[2]), avgMs: Number(m[4]), p50Ms: Number(m[6]), p99Ms: Number(m[8]) };
}

/** ConsumerPerformance's CSV line (header: start.time, end.time, data.consumed.in.MB, MB.sec, ...). */
export function parseConsumerPerformance(output: string): { consumed: number; fetchMiBPerSec: number; fetchRecordsPerSec: number; joinMs: number } {
  const lines = output.split('\n');
  const h = lines.findIndex((l) => l.startsWith('start.time'));
  if (h === -1 || !lines[h + 1]) throw new Error(`no CSV in ConsumerPerformance output: ${output.slice(-400)}`);
  const names = lines[h]!.split(',').map((s) => s.trim());
  const values = lines[h + 1]!.split(',').map((s) => s.trim());
  const get = (n: string) => Number(values[names.indexOf(n)]);
  return { consumed: get('data.consumed.in.nMsg'), fetchMiBPerSec: get('fetch.MB.sec'), fetchRecordsPerSec: get('fetch.nMsg.sec'), joinMs: get('rebalance.time.ms') };
}

export function parseEndToEndLatency(output: string): { avgMs: number; p50Ms: number; p99Ms: number } {
  const avg = output.match(/Avg latency: ([\d.]+) ms/);
  const pct = output.match(/50th = ([\d.]+), 99th = ([\d.]+)/);
  if (!avg || !pct) throw new Error(`no latency summary in EndToEndLatency output: ${output.slice(-400)}`);
  return { avgMs: Number(avg[1]), p50Ms: Number(pct[1]), p99Ms: Number(pct[2]) };
}

export function javaDriver(classpath: string, timeoutMs: number): Driver {
  const java = (mainClass: string, args: string[]) => run('java', ['-Xms256m', '-Xmx1g', '-cp', classpath, mainClass, ...args], { timeoutMs });
  let transactionalIds = 0;
  // A consumer config file (every ConsumerPerformance version reads --consumer.config).
  let committedConfig: string | undefined;
  const consume = async (bootstrap: string, spec: { topic: string; records: number }, extra: string[]) => {
    const r = await java('org.apache.kafka.tools.ConsumerPerformance', [
      '--bootstrap-server', bootstrap, '--topic', spec.topic, '--messages', String(spec.records), '--timeout', '30000', ...extra,
    ]);
    const c = parseConsumerPerformance(r.output);
    if (c.consumed < spec.records) throw new Error(`consumed ${c.consumed} of ${spec.records} records`);
    return { mbPerSec: (c.fetchMiBPerSec * MIB) / 1e6, recordsPerSec: c.fetchRecordsPerSec, joinMs: c.joinMs, wallMs: r.wallMs, toolCpu: r.cpuSeconds };
  };
  return {
    name: 'java',
    tag: 'Kafka tools',
    description: "Kafka's own perf tools (ProducerPerformance, ConsumerPerformance, EndToEndLatency), one JVM per run",
    joinsGroup: true,
    async produce(bootstrap, spec) {
      const r = await java('org.apache.kafka.tools.ProducerPerformance', [
        '--topic', spec.topic, '--num-records', String(spec.records), '--record-size', String(spec.recordSize),
        '--throughput', String(spec.throughput),
        '--producer-props', `bootstrap.servers=${bootstrap}`, `acks=${spec.acks}`, 'linger.ms=5', 'batch.size=65536',
        `compression.type=${spec.compression}`,
      ]);
      const p = parseProducerPerformance(r.output);
      return { ...p, mbPerSec: (p.recordsPerSec * spec.recordSize) / 1e6, wallMs: r.wallMs, toolCpu: r.cpuSeconds };
    },
    consume: (bootstrap, spec) => consume(bootstrap, spec, []),
    async produceTransactional(bootstrap, spec) {
      // A new transactional id per run: a run's producer fences nobody's and waits for no one's abort.
      const r = await java('org.apache.kafka.tools.ProducerPerformance', [
        '--topic', spec.topic, '--num-records', String(spec.records), '--record-size', String(spec.recordSize),
        '--throughput', String(spec.throughput),
        '--transactional-id', `bench-txn-${process.pid}-${++transactionalIds}`, '--transaction-duration-ms', String(spec.transactionDurationMs),
        '--producer-props', `bootstrap.servers=${bootstrap}`, 'acks=all', 'linger.ms=5', 'batch.size=65536',
        `compression.type=${spec.compression}`,
      ]);
      const p = parseProducerPerformance(r.output);
      return { ...p, mbPerSec: (p.recordsPerSec * spec.recordSize) / 1e6, wallMs: r.wallMs, toolCpu: r.cpuSeconds };
    },
    async consumeCommitted(bootstrap, spec) {
      if (!committedConfig) {
        committedConfig = join(mkdtempSync(join(tmpdir(), 'runnel-bench-')), 'read-committed.properties');
        writeFileSync(committedConfig, 'isolation.level=read_committed\n');
      }
      return consume(bootstrap, spec, ['--consumer.config', committedConfig]);
    },
    async endToEnd(bootstrap, spec) {
      const r = await java('org.apache.kafka.tools.EndToEndLatency', [
        '--bootstrap-server', bootstrap, '--topic', spec.topic, '--num-records', String(spec.records),
        '--producer-acks', spec.acks, '--record-size', String(spec.recordSize),
      ]);
      return { ...parseEndToEndLatency(r.output), wallMs: r.wallMs, toolCpu: r.cpuSeconds };
    },
  };
}

/** `runnel perf` if this checkout has it. */
export function runnelPerfAvailable(root: string): boolean {
  return existsSync(join(root, 'packages/cli/src/perf.ts'));
}

/**
 * `runnel perf produce|consume`: the same flags and output lines as Kafka's tools, one Node
 * process per run. It has no end-to-end latency tool, so that row uses the in-process driver.
 */
export function runnelPerfDriver(root: string, timeoutMs: number): Driver {
  const perf = (args: string[]) => run(process.execPath, [join(root, 'packages/cli/bin/runnel.ts'), 'perf', ...args], { cwd: root, timeoutMs });
  const inProcess = nodeDriver();
  let groups = 0;
  return {
    name: 'runnel-perf',
    tag: 'runnel perf',
    description: "Runnel's perf tool (`runnel perf produce|consume`, Kafka's flags and output; consume joins a new consumer group per run, as Kafka's tool does), one Node process per run; it has no end-to-end latency tool, so those rows use an in-process @runnel/client loop (send one record, fetch it, repeat)",
    joinsGroup: true,
    async produce(bootstrap, spec) {
      const r = await perf([
        'produce', '--topic', spec.topic, '--num-records', String(spec.records), '--record-size', String(spec.recordSize),
        '--throughput', String(spec.throughput),
        '--producer-props', `bootstrap.servers=${bootstrap}`, `acks=${spec.acks}`, 'linger.ms=5', 'batch.size=65536', `compression.type=${spec.compression}`,
      ]);
      const p = parseProducerPerformance(r.output);
      return { ...p, mbPerSec: (p.recordsPerSec * spec.recordSize) / 1e6, wallMs: r.wallMs, toolCpu: r.cpuSeconds };
    },
    async consume(bootstrap, spec) {
      // A new group per run (Kafka's tool picks a random one too): a reused group would start at its committed offsets.
      const group = `runnel-perf-bench-${process.pid}-${++groups}`;
      const r = await perf(['consume', '--bootstrap-server', bootstrap, '--topic', spec.topic, '--messages', String(spec.records), '--timeout', '30000', '--group', group]);
      const c = parseConsumerPerformance(r.output);
      if (c.consumed < spec.records) throw new Error(`consumed ${c.consumed} of ${spec.records} records`);
      return { mbPerSec: (c.fetchMiBPerSec * MIB) / 1e6, recordsPerSec: c.fetchRecordsPerSec, joinMs: c.joinMs, wallMs: r.wallMs, toolCpu: r.cpuSeconds };
    },
    endToEnd: (bootstrap, spec) => inProcess.endToEnd(bootstrap, spec),
  };
}

/** Percentile of a sorted array (nearest rank). */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * In-process driver over @runnel/client: prebuilt batches of `batch.size` (64 KiB), round-robin
 * over partitions, five requests in flight; latency is per batch from send to acknowledgement.
 * The consumer is group-less (assigns every partition from the earliest offset).
 */
export function nodeDriver(): Driver {
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  return {
    name: 'node',
    tag: 'in-process client',
    description: 'a minimal in-process driver over @runnel/client (no Java on this machine); its consumer assigns partitions directly (no group)',
    joinsGroup: false,
    async produce(bootstrap, spec) {
      const client = await KafkaClient.connect({ bootstrapServers: bootstrap, clientId: 'runnel-bench' });
      const cpu0 = cpu();
      const began = performance.now();
      try {
        const producer = new Producer(client, { acks: spec.acks === 'all' ? -1 : 1, codec: spec.compression === 'lz4' ? Codec.Lz4 : Codec.None });
        const value = Buffer.alloc(spec.recordSize, 'x');
        for (let i = 0; i < value.length; i++) value[i] = 65 + ((i * 7919) % 26);
        const perBatch = Math.max(1, Math.floor(65536 / (spec.recordSize + 20)));
        const latencies: number[] = [];
        let sent = 0;
        let partition = 0;
        const inFlight = new Set<Promise<void>>();
        const t0 = performance.now();
        while (sent < spec.records) {
          const n = Math.min(perBatch, spec.records - sent);
          if (spec.throughput > 0) {
            const due = t0 + (sent / spec.throughput) * 1000;
            const wait = due - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          }
          const batch = encodeRecordBatch({ records: Array.from({ length: n }, () => ({ value })), codec: spec.compression === 'lz4' ? Codec.Lz4 : Codec.None });
          const start = performance.now();
          const p: Promise<void> = producer.send(spec.topic, partition, batch).then(() => { latencies.push(performance.now() - start); inFlight.delete(p); });
          inFlight.add(p);
          partition = (partition + 1) % spec.partitions;
          sent += n;
          if (inFlight.size >= 5) await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
        const seconds = (performance.now() - t0) / 1000;
        latencies.sort((a, b) => a - b);
        const recordsPerSec = spec.records / seconds;
        return {
          recordsPerSec, mbPerSec: (recordsPerSec * spec.recordSize) / 1e6,
          avgMs: latencies.reduce((a, b) => a + b, 0) / latencies.length, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99),
          wallMs: performance.now() - began, toolCpu: cpu() - cpu0,
        };
      } finally {
        await client.close();
      }
    },
    async consume(bootstrap, spec) {
      const client = await KafkaClient.connect({ bootstrapServers: bootstrap, clientId: 'runnel-bench' });
      const cpu0 = cpu();
      const began = performance.now();
      try {
        const md = await client.metadata([spec.topic]);
        const partitions = md.topics[0]?.partitions.map((p) => p.partitionIndex) ?? [0];
        const consumer = new Consumer(client, { raw: true });
        await consumer.assign(partitions.map((partition) => ({ topic: spec.topic, partition, offset: 'earliest' as const })));
        const t0 = performance.now();
        let got = 0;
        let bytes = 0;
        const deadline = t0 + 60_000;
        while (got < spec.records) {
          if (performance.now() > deadline) throw new Error(`consumed ${got} of ${spec.records} records in 60 s`);
          for (const p of await consumer.poll()) { got += p.recordCount; bytes += p.keyValueBytes; }
        }
        const seconds = (performance.now() - t0) / 1000;
        return { mbPerSec: bytes / 1e6 / seconds, recordsPerSec: got / seconds, joinMs: 0, wallMs: performance.now() - began, toolCpu: cpu() - cpu0 };
      } finally {
        await client.close();
      }
    },
    async endToEnd(bootstrap, spec) {
      const client = await KafkaClient.connect({ bootstrapServers: bootstrap, clientId: 'runnel-bench' });
      const cpu0 = cpu();
      const began = performance.now();
      try {
        const producer = new Producer(client, { acks: spec.acks === 'all' ? -1 : 1 });
        const consumer = new Consumer(client, { raw: true, maxWaitMs: 500 });
        await consumer.assign([{ topic: spec.topic, partition: 0, offset: 'latest' }]);
        const value = Buffer.alloc(spec.recordSize, 'x');
        const latencies: number[] = [];
        for (let i = 0; i < spec.records; i++) {
          const start = performance.now();
          await producer.send(spec.topic, 0, [{ value }]);
          let seen = 0;
          while (seen === 0) for (const p of await consumer.poll()) seen += p.recordCount;
          latencies.push(performance.now() - start);
        }
        latencies.sort((a, b) => a - b);
        return { avgMs: latencies.reduce((a, b) => a + b, 0) / latencies.length, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), wallMs: performance.now() - began, toolCpu: cpu() - cpu0 };
      } finally {
        await client.close();
      }
    },
  };
}

