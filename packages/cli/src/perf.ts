/**
 * `runnel perf produce` and `runnel perf consume`: Kafka's kafka-producer-perf-test and
 * kafka-consumer-perf-test (apache/kafka tools ProducerPerformance / ConsumerPerformance) with the
 * same flags and the same output lines, so scripts written for Kafka read ours. "MB" is MiB.
 *
 * After Kafka's lines each command prints one extra line starting with `# ` (the tool's own CPU
 * use and sub-millisecond latencies) that Kafka-minded scripts can skip.
 *
 * Speed: the producer must never be the bottleneck, so it does not encode a batch per request.
 * It encodes a template batch per record count (distinct random A–Z payloads per record, as
 * Kafka's tool generates, so compression ratios are comparable) and re-encodes the templates
 * every second so record timestamps stay within a second of the send. Batches are written as is
 * behind a small request prefix. Idempotent runs re-stamp a copy per batch (producer id, epoch,
 * sequence, timestamp, CRC in JavaScript).
 */
import { readFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import { Command, Option } from 'commander';
import { BatchTemplates, ClientError, Codec, Consumer, GroupAdmin, KafkaClient, Producer, checkKafka, decodeConsumerAssignment, type Acks, type Connection } from '@runnel/client';

export interface PerfIo {
  out(line: string): void;
  err(line: string): void;
}

const stdio: PerfIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

class UsageError extends Error {}

// ---------------------------------------------------------------- producer

export interface ProducePerfOptions {
  topic: string;
  numRecords: number;
  recordSize?: number;
  payloadFile?: string;
  /** Default "\n"; the two characters `\n` mean a newline, as in Kafka's tool. */
  payloadDelimiter?: string;
  /** Records per second; -1 = unthrottled. */
  throughput: number;
  producerProps?: string[];
  producerConfig?: string;
  printMetrics?: boolean;
  warmupRecords?: number;
  bootstrapServer?: string;
}

export interface ProducePerfResult {
  count: number;
  bytes: number;
  elapsedMs: number;
  recordsPerSec: number;
  mbPerSec: number;
  avgLatencyMs: number;
  maxLatencyMs: number;
  percentilesMs: [p50: number, p95: number, p99: number, p999: number];
  /** The same percentiles from a sub-millisecond clock (of the steady state after a warm-up). */
  precisePercentilesMs: [p50: number, p95: number, p99: number, p999: number];
  batches: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  errors: number;
}

/** Java's `%f`/`%.Nf` for the numbers we print (NaN and Infinity as Java spells them). */
function fixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  return x.toFixed(digits);
}

/** ProducerPerformance.Stats: windows of 5 s, totals, and latencies sampled down to ≤500k. */
class Stats {
  readonly start = Date.now();
  private windowStart = Date.now();
  private readonly latencies: Int32Array;
  readonly precise: Float64Array;
  private readonly sampling: number;
  private iteration = 0;
  private index = 0;
  count = 0;
  bytes = 0;
  maxLatency = 0;
  totalLatency = 0;
  private windowCount = 0;
  private windowMaxLatency = 0;
  private windowTotalLatency = 0;
  private windowBytes = 0;
  private suppress = false;
  private readonly io: PerfIo;
  readonly steadyState: boolean;

  constructor(numRecords: number, steadyState: boolean, io: PerfIo) {
    this.sampling = Math.floor(numRecords / Math.min(numRecords, 500_000));
    const n = Math.floor(numRecords / this.sampling) + 1;
    this.latencies = new Int32Array(n);
    this.precise = new Float64Array(n);
    this.steadyState = steadyState;
    this.io = io;
  }

  suppressPrinting(): void {
    this.suppress = true;
  }

  /** `n` records acknowledged together, all with the same latency (ms, and precise ms). */
  record(n: number, latency: number, precise: number, bytesEach: number, time: number): void {
    // The first record may close the window (and is counted in it, as in Kafka); the rest of the
    // batch then falls into the new window, so per-record and per-batch accounting print the same.
    this.add(1, latency, precise, bytesEach);
    if (time - this.windowStart >= 5000) {
      if (this.steadyState && this.count === this.windowCount) this.io.out('In steady state.');
      if (!this.suppress) this.printWindow();
      this.newWindow();
    }
    if (n > 1) this.add(n - 1, latency, precise, bytesEach);
  }

  private add(n: number, latency: number, precise: number, bytesEach: number): void {
    this.count += n;
    this.bytes += n * bytesEach;
    this.totalLatency += n * latency;
    if (latency > this.maxLatency) this.maxLatency = latency;
    this.windowCount += n;
    this.windowBytes += n * bytesEach;
    this.windowTotalLatency += n * latency;
    if (latency > this.windowMaxLatency) this.windowMaxLatency = latency;
    // Samples are iterations that are multiples of `sampling`.
    const first = Math.ceil(this.iteration / this.sampling) * this.sampling;
    for (let it = first; it < this.iteration + n && this.index < this.latencies.length; it += this.sampling) {
      this.latencies[this.index] = latency;
      this.precise[this.index] = precise;
      this.index++;
    }
    this.iteration += n;
  }

  private printWindow(): void {
    const elapsed = Date.now() - this.windowStart;
    const recsPerSec = (1000 * this.windowCount) / elapsed;
    const mbPerSec = (1000 * this.windowBytes) / elapsed / (1024 * 1024);
    this.io.out(`${this.windowCount} records sent, ${fixed(recsPerSec, 1)} records/sec (${fixed(mbPerSec, 2)} MB/sec), `
      + `${fixed(this.windowTotalLatency / this.windowCount, 1)} ms avg latency, ${fixed(this.windowMaxLatency, 1)} ms max latency.`);
  }

  private newWindow(): void {
    this.windowStart = Date.now();
    this.windowCount = 0;
    this.windowMaxLatency = 0;
    this.windowTotalLatency = 0;
    this.windowBytes = 0;
  }

  percentiles(): { ms: [number, number, number, number]; precise: [number, number, number, number] } {
    const size = Math.min(this.index, this.latencies.length);
    const ms = this.latencies.subarray(0, size).sort();
    const pr = this.precise.subarray(0, size).sort();
    const at = <T extends Int32Array | Float64Array>(a: T, q: number) => (size === 0 ? 0 : a[Math.floor(q * size)]!);
    const qs = [0.5, 0.95, 0.99, 0.999];
    return { ms: qs.map((q) => at(ms, q)) as never, precise: qs.map((q) => at(pr, q)) as never };
  }

  printTotal(): { elapsed: number; recsPerSec: number; mbPerSec: number; ms: [number, number, number, number]; precise: [number, number, number, number] } {
    const elapsed = Date.now() - this.start;
    const recsPerSec = (1000 * this.count) / elapsed;
    const mbPerSec = (1000 * this.bytes) / elapsed / (1024 * 1024);
    const p = this.percentiles();
    this.io.out(`${this.count}${this.steadyState ? ' steady state' : ''} records sent, ${fixed(recsPerSec, 6)} records/sec (${fixed(mbPerSec, 2)} MB/sec), `
      + `${fixed(this.totalLatency / this.count, 2)} ms avg latency, ${fixed(this.maxLatency, 2)} ms max latency, `
      + `${p.ms[0]} ms 50th, ${p.ms[1]} ms 95th, ${p.ms[2]} ms 99th, ${p.ms[3]} ms 99.9th.`);
    return { elapsed, recsPerSec, mbPerSec, ...p };
  }
}

/** Java `Properties` file: `k=v` or `k: v` lines, `#`/`!` comments. Enough for producer configs. */
function readPropertiesFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('!')) continue;
    const m = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const CODECS: Record<string, Codec> = { none: Codec.None, gzip: Codec.Gzip, snappy: Codec.Snappy, lz4: Codec.Lz4, zstd: Codec.Zstd };

function intProp(props: Record<string, string>, name: string, def: number): number {
  const v = props[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${name}=${v} is not a number`);
  return n;
}

function readPayloads(file: string, delimiterArg: string, io: PerfIo): Buffer[] {
  const delimiter = delimiterArg === '\\n' ? '\n' : delimiterArg;
  io.out(`Reading payloads from: ${file}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError('File does not exist or empty file provided.');
  }
  if (text.length === 0) throw new UsageError('File does not exist or empty file provided.');
  const payloads = text.split(delimiter).filter((s) => s.length > 0).map((s) => Buffer.from(s, 'utf8'));
  io.out(`Number of messages read: ${payloads.length}`);
  return payloads;
}

function cpuLine(tool: string, cpu: NodeJS.CpuUsage, wallMs: number, extra: string): string {
  const user = cpu.user / 1e6;
  const sys = cpu.system / 1e6;
  return `# runnel ${tool}: cpu user ${user.toFixed(2)} s, system ${sys.toFixed(2)} s, ${(((user + sys) * 1000 * 100) / wallMs).toFixed(1)}% of one core over ${(wallMs / 1000).toFixed(2)} s; ${extra}`;
}

/** kafka-producer-perf-test. Resolves with the totals it printed. */
export async function perfProduce(opts: ProducePerfOptions, io: PerfIo = stdio): Promise<ProducePerfResult> {
  if (!(opts.numRecords > 0)) throw new UsageError('--num-records should be greater than zero');
  const warmup = Math.max(0, opts.warmupRecords ?? 0);
  if (warmup >= opts.numRecords) throw new UsageError('The value for --warmup-records must be strictly fewer than the number of records in the test, --num-records.');
  if ((opts.recordSize === undefined) === (opts.payloadFile === undefined)) throw new UsageError('either --record-size or --payload-file must be specified but not both.');
  if (opts.recordSize !== undefined && !(opts.recordSize > 0)) throw new UsageError('--record-size should be greater than zero');
  if (!opts.producerProps?.length && !opts.producerConfig && !opts.bootstrapServer) throw new UsageError('Either --producer-props or --producer.config must be specified.');

  const props: Record<string, string> = opts.producerConfig ? readPropertiesFile(opts.producerConfig) : {};
  for (const p of opts.producerProps ?? []) {
    const pieces = p.split('=');
    if (pieces.length !== 2) throw new UsageError(`Invalid property: ${p}`);
    props[pieces[0]!] = pieces[1]!;
  }
  const bootstrap = props['bootstrap.servers'] ?? opts.bootstrapServer;
  if (!bootstrap) throw new UsageError('bootstrap.servers is not set (use --producer-props bootstrap.servers=HOST:PORT or --bootstrap-server)');
  const acksRaw = props.acks ?? 'all';
  const acks = (acksRaw === 'all' ? -1 : Number(acksRaw)) as Acks;
  if (![-1, 0, 1].includes(acks)) throw new UsageError(`acks=${acksRaw} is not one of all, -1, 0, 1`);
  const codec = CODECS[props['compression.type'] ?? 'none'];
  if (codec === undefined) throw new UsageError(`compression.type=${props['compression.type']} is not one of none, gzip, snappy, lz4, zstd`);
  const lingerMs = intProp(props, 'linger.ms', 5);
  const batchSize = intProp(props, 'batch.size', 16384);
  const maxInFlight = intProp(props, 'max.in.flight.requests.per.connection', 5);
  const bufferMemory = intProp(props, 'buffer.memory', 33_554_432);
  const idempotent = props['enable.idempotence'] === 'true';
  const clientId = props['client.id'] ?? 'perf-producer-client';
  const payloads = opts.payloadFile ? readPayloads(opts.payloadFile, opts.payloadDelimiter ?? '\\n', io) : undefined;

  const client = await KafkaClient.connect({ bootstrapServers: bootstrap, clientId, requestTimeoutMs: intProp(props, 'request.timeout.ms', 30_000) });
  try {
    const partitions = await topicPartitions(client, opts.topic, true);
    const producer = new Producer(client, { acks, codec, lingerMs, batchSize, maxInFlight, idempotent });
    await producer.connect();
    const factory = new BatchTemplates({ codec, batchSize, recordSize: opts.recordSize, payloads });

    if (warmup > 0) io.out(`Warmup first ${warmup} records. Steady state results will print after the complete test summary.`);
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const stats = new Stats(opts.numRecords, false, io);
    let steady: Stats | null = null;
    const startMs = Date.now();
    const throughput = opts.throughput;
    let errors = 0;
    const errorMessages = new Set<string>();
    let batches = 0;
    let queuedBytes = 0;
    let waitRoom: (() => void) | null = null;
    let nextPartition = 0;
    let sent = 0;

    // The open batch: runs of [send time ms, precise send time, count, steady?] appended as records are "sent".
    let runs: number[] = [];
    let open = 0;
    let openedAt = 0;

    const dispatch = () => {
      if (open === 0) return;
      const now = Date.now();
      const t = factory.get(open, now);
      const myRuns = runs;
      const count = open;
      const bytesEach = t.valueBytes / count;
      runs = [];
      open = 0;
      const partition = partitions[nextPartition]!;
      nextPartition = (nextPartition + 1) % partitions.length;
      batches++;
      queuedBytes += t.batch.length;
      const size = t.batch.length;
      producer.send(opts.topic, partition, t.batch).then(() => {
        const ackMs = Date.now();
        const ackPrecise = performance.now();
        for (let i = 0; i < myRuns.length; i += 4) {
          const lat = ackMs - myRuns[i]!;
          const precise = ackPrecise - myRuns[i + 1]!;
          const n = myRuns[i + 2]!;
          stats.record(n, lat, precise, bytesEach, ackMs);
          if (steady !== null && myRuns[i + 3] === 1) steady.record(n, lat, precise, bytesEach, ackMs);
        }
      }, (err: Error) => {
        errors += count;
        if (!errorMessages.has(err.message)) {
          errorMessages.add(err.message);
          io.err(`error sending to ${opts.topic}-${partition}: ${err.message}`);
        }
      }).finally(() => {
        queuedBytes -= size;
        const w = waitRoom;
        waitRoom = null;
        w?.();
      });
    };

    const perBatch = factory.perBatch;
    while (sent < opts.numRecords) {
      // buffer.memory: when this much is queued, the sender waits, as KafkaProducer.send blocks.
      while (queuedBytes >= bufferMemory) await new Promise<void>((r) => (waitRoom = r));
      const nowMs = Date.now();
      // At most 16 full batches per turn, then yield so acknowledgements are read.
      let due = Math.min(opts.numRecords - sent, perBatch * 16);
      if (throughput > 0) {
        due = Math.min(due, Math.floor(((nowMs - startMs) * throughput) / 1000) + 1 - sent);
        if (due <= 0) {
          const nextDue = startMs + ((sent + 1) * 1000) / throughput;
          const lingerDue = open > 0 ? openedAt + lingerMs : Infinity;
          if (lingerDue <= nowMs) dispatch();
          else await new Promise((r) => setTimeout(r, Math.max(0, Math.min(nextDue, lingerDue) - nowMs)));
          continue;
        }
      }
      const precise = performance.now();
      let take = Math.min(due, perBatch - open);
      while (take > 0) {
        if (warmup > 0 && steady === null && sent + take > warmup) {
          // Split the run at the warm-up boundary: later records also count in steady state.
          if (sent < warmup) take = warmup - sent;
          else {
            steady = new Stats(opts.numRecords - warmup, true, io);
            stats.suppressPrinting();
          }
        }
        if (open === 0) openedAt = nowMs;
        runs.push(nowMs, precise, take, steady === null ? 0 : 1);
        open += take;
        sent += take;
        due -= take;
        if (open >= perBatch) {
          dispatch();
          if (queuedBytes >= bufferMemory) break;
        }
        take = Math.min(due, perBatch - open);
      }
      if (sent === opts.numRecords || (open > 0 && nowMs - openedAt >= lingerMs)) dispatch();
      await new Promise((r) => setImmediate(r));
    }
    dispatch();
    await producer.flush();
    const wallMs = performance.now() - wall0;
    const cpu = process.cpuUsage(cpu0);

    const total = stats.printTotal();
    const steadyTotal = steady?.printTotal();
    if (opts.printMetrics) {
      io.out('');
      const metrics: Array<[string, number]> = [
        ['producer-metrics:batch-size-avg', stats.bytes / Math.max(1, batches)],
        ['producer-metrics:record-send-total', stats.count],
        ['producer-metrics:record-error-total', errors],
        ['producer-metrics:records-per-request-avg', stats.count / Math.max(1, batches)],
        ['producer-metrics:request-total', batches],
      ];
      const width = Math.max(...metrics.map(([n]) => n.length + `:{client-id=${clientId}}`.length));
      io.out(`${'Metric Name'.padEnd(width)}  Value`);
      for (const [n, v] of metrics) io.out(`${`${n}:{client-id=${clientId}}`.padEnd(width)}: ${v.toFixed(3)}`);
    }
    // Sub-millisecond percentiles, of the steady state when there was a warm-up.
    const precise = (steadyTotal ?? total).precise;
    io.out(cpuLine('perf produce', cpu, wallMs, `${steadyTotal ? 'steady-state ' : ''}latency p50 ${precise[0].toFixed(3)} ms, p99 ${precise[2].toFixed(3)} ms, p99.9 ${precise[3].toFixed(3)} ms; `
      + `${batches} batches, ${(stats.count / Math.max(1, batches)).toFixed(1)} records/batch${errors ? `; ${errors} records failed` : ''}`));
    return {
      count: stats.count, bytes: stats.bytes, elapsedMs: total.elapsed, recordsPerSec: total.recsPerSec, mbPerSec: total.mbPerSec,
      avgLatencyMs: stats.totalLatency / stats.count, maxLatencyMs: stats.maxLatency, percentilesMs: total.ms, precisePercentilesMs: precise,
      batches, cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000, errors,
    };
  } finally {
    await client.close();
  }
}

/** Partition ids of `topic`; creates it (broker defaults) when missing and `create`. */
async function topicPartitions(client: KafkaClient, topic: string, create: boolean): Promise<number[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const md = await client.metadata([topic], { allowAutoTopicCreation: create });
    const t = md.topics.find((x) => x.name === topic);
    if (t && t.errorCode === 0 && t.partitions.length > 0 && t.partitions.every((p) => p.leaderId >= 0)) {
      return t.partitions.map((p) => p.partitionIndex).sort((a, b) => a - b);
    }
    if (create && attempt === 0 && (!t || t.errorCode === 3)) await client.createTopics([{ name: topic }], { ignoreExisting: true });
    if (!create && attempt === 0 && t?.errorCode === 3) throw new UsageError(`topic ${topic} does not exist`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new UsageError(`no leaders for topic ${topic}`);
}

// ---------------------------------------------------------------- consumer group member

// Kafka API keys and error codes the member uses (the CLI reaches the wire only through @runnel/client).
const JOIN_GROUP = 11;
const HEARTBEAT = 12;
const LEAVE_GROUP = 13;
const SYNC_GROUP = 14;
const OFFSET_COMMIT = 8;
const MEMBER_ID_REQUIRED = 79;
const REBALANCE_IN_PROGRESS = 27;
const COORDINATOR_RETRY = new Set([14, 15, 16]); // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR

/** ConsumerProtocolSubscription v0: int16 version, [topic string], nullable bytes userData (-1). */
function encodeSubscription(topics: string[]): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(6);
  head.writeInt16BE(0, 0);
  head.writeInt32BE(topics.length, 2);
  parts.push(head);
  for (const t of topics) {
    const name = Buffer.from(t, 'utf8');
    const len = Buffer.alloc(2);
    len.writeInt16BE(name.length, 0);
    parts.push(len, name);
  }
  const userData = Buffer.alloc(4);
  userData.writeInt32BE(-1, 0);
  parts.push(userData);
  return Buffer.concat(parts);
}

/** ConsumerProtocolAssignment v0: int16 version, [topic string, [int32 partition]], nullable bytes userData (-1). */
function encodeAssignment(topic: string, partitions: number[]): Buffer {
  const name = Buffer.from(topic, 'utf8');
  const b = Buffer.alloc(2 + 4 + 2 + name.length + 4 + 4 * partitions.length + 4);
  let pos = b.writeInt16BE(0, 0);
  pos = b.writeInt32BE(1, pos);
  pos = b.writeInt16BE(name.length, pos);
  pos += name.copy(b, pos);
  pos = b.writeInt32BE(partitions.length, pos);
  for (const p of partitions) pos = b.writeInt32BE(p, pos);
  b.writeInt32BE(-1, pos);
  return b;
}

/**
 * One member of a classic consumer group (protocol type `consumer`, assignor `range`), as
 * kafka-consumer-perf-test's KafkaConsumer is: JoinGroup (retried with the member id a v4+
 * coordinator hands out), the leader assigns the topic's partitions range-wise over the members,
 * SyncGroup, heartbeats every heartbeat.interval.ms, OffsetCommit with the generation, and
 * LeaveGroup on close. It does not follow a later rebalance (a benchmark is one member per
 * group); a heartbeat error is reported once on stderr.
 */
export class GroupMember {
  memberId = '';
  generationId = -1;
  partitions: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private heartbeatError: string | null = null;

  private readonly conn: Connection;
  readonly groupId: string;
  private readonly topic: string;
  private readonly io: PerfIo;

  private constructor(conn: Connection, groupId: string, topic: string, io: PerfIo) {
    this.conn = conn;
    this.groupId = groupId;
    this.topic = topic;
    this.io = io;
  }

  static async join(client: KafkaClient, groupId: string, topic: string, topicPartitions: number[], o: { sessionTimeoutMs: number; rebalanceTimeoutMs: number; heartbeatIntervalMs: number }, io: PerfIo): Promise<GroupMember> {
    const admin = new GroupAdmin(client);
    const deadline = Date.now() + o.rebalanceTimeoutMs + 30_000;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      const coordinator = await admin.findCoordinator(groupId);
      const member = new GroupMember(await client.broker(coordinator.nodeId), groupId, topic, io);
      const code = await member.tryJoin(topicPartitions, o);
      if (code === 0) {
        member.timer = setInterval(() => member.heartbeat(), o.heartbeatIntervalMs);
        member.timer.unref();
        return member;
      }
      if (!(COORDINATOR_RETRY.has(code) || code === REBALANCE_IN_PROGRESS) || Date.now() + delay > deadline) throw ClientError.kafka(code, `joining group ${groupId}`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** JoinGroup + SyncGroup; 0 or the Kafka error code that stopped it. */
  private async tryJoin(topicPartitions: number[], o: { sessionTimeoutMs: number; rebalanceTimeoutMs: number }): Promise<number> {
    const v = this.conn.version(JOIN_GROUP);
    const subscription = encodeSubscription([this.topic]);
    // The coordinator holds JoinGroup until the rebalance completes (group.initial.rebalance.delay.ms for a new group).
    const timeoutMs = o.rebalanceTimeoutMs + 10_000;
    let join;
    for (;;) {
      join = await this.conn.request(JOIN_GROUP, v, {
        groupId: this.groupId, sessionTimeoutMs: o.sessionTimeoutMs, rebalanceTimeoutMs: o.rebalanceTimeoutMs, memberId: this.memberId,
        groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata: subscription }],
      }, timeoutMs);
      if (join.errorCode === MEMBER_ID_REQUIRED) { this.memberId = join.memberId; continue; }
      if (join.errorCode !== 0) return join.errorCode;
      break;
    }
    this.memberId = join.memberId;
    this.generationId = join.generationId;
    let assignments: Array<{ memberId: string; assignment: Buffer }> = [];
    if (join.leader === this.memberId) {
      // Range over the members sorted by id, as Kafka's RangeAssignor does for one topic.
      const members = join.members.map((m) => m.memberId).sort();
      const per = Math.floor(topicPartitions.length / members.length);
      const extra = topicPartitions.length % members.length;
      let next = 0;
      assignments = members.map((memberId, i) => {
        const n = per + (i < extra ? 1 : 0);
        const mine = topicPartitions.slice(next, next + n);
        next += n;
        return { memberId, assignment: encodeAssignment(this.topic, mine) };
      });
    }
    const sync = await this.conn.request(SYNC_GROUP, this.conn.version(SYNC_GROUP), {
      groupId: this.groupId, generationId: this.generationId, memberId: this.memberId, groupInstanceId: null,
      protocolType: 'consumer', protocolName: join.protocolName, assignments,
    }, timeoutMs);
    if (sync.errorCode !== 0) return sync.errorCode;
    this.partitions = decodeConsumerAssignment(sync.assignment).topics.filter((t) => t.topic === this.topic).flatMap((t) => t.partitions).sort((a, b) => a - b);
    return 0;
  }

  private heartbeat(): void {
    this.conn.request(HEARTBEAT, this.conn.version(HEARTBEAT), { groupId: this.groupId, generationId: this.generationId, memberId: this.memberId, groupInstanceId: null })
      .then((r) => { if (r.errorCode !== 0) throw ClientError.kafka(r.errorCode, `heartbeat of group ${this.groupId}`); })
      .catch((err: Error) => {
        if (this.heartbeatError === null) this.io.err(`runnel perf: ${err.message} (this tool does not follow rebalances; the run goes on with its partitions)`);
        this.heartbeatError = err.message;
      });
  }

  /** OffsetCommit of the next offsets to read, with this member's generation. */
  async commit(offsets: Array<{ partition: number; offset: bigint }>): Promise<void> {
    if (offsets.length === 0) return;
    const r = await this.conn.request(OFFSET_COMMIT, this.conn.version(OFFSET_COMMIT), {
      groupId: this.groupId, generationIdOrMemberEpoch: this.generationId, memberId: this.memberId, groupInstanceId: null, retentionTimeMs: -1n,
      topics: [{ name: this.topic, partitions: offsets.map((o) => ({ partitionIndex: o.partition, committedOffset: o.offset, committedLeaderEpoch: -1, commitTimestamp: -1n, committedMetadata: '' })) }],
    });
    for (const t of r.topics) for (const p of t.partitions) checkKafka(p.errorCode, `OffsetCommit ${this.groupId} ${t.name}-${p.partitionIndex}`);
  }

  /** Stops heartbeating and leaves the group (the group stays, Empty, with its committed offsets). */
  async leave(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const v = this.conn.version(LEAVE_GROUP);
    const r = await this.conn.request(LEAVE_GROUP, v, { groupId: this.groupId, memberId: this.memberId, members: [{ memberId: this.memberId, groupInstanceId: null }] });
    checkKafka(r.errorCode, `LeaveGroup ${this.groupId}`);
  }
}

// ---------------------------------------------------------------- consumer

export interface ConsumePerfOptions {
  bootstrapServer: string;
  topic: string;
  messages: number;
  group?: string;
  /** max.partition.fetch.bytes (default 1048576). */
  fetchSize?: number;
  /** Consumer properties file: fetch.max.wait.ms, fetch.min.bytes, fetch.max.bytes, max.partition.fetch.bytes, isolation.level, client.id; with a group also enable.auto.commit, auto.commit.interval.ms, session.timeout.ms, heartbeat.interval.ms, max.poll.interval.ms. */
  consumerConfig?: string;
  fromLatest?: boolean;
  /** Max time between returned records (default 10000 ms). */
  timeout?: number;
  showDetailedStats?: boolean;
  reportingInterval?: number;
  hideHeader?: boolean;
  dateFormat?: string;
}

export interface ConsumePerfResult {
  messages: number;
  bytes: number;
  elapsedMs: number;
  fetchTimeMs: number;
  /** Time to join the group (0 without one): rebalance.time.ms. */
  joinMs: number;
  /** Offset commits made (0 without a group or with enable.auto.commit=false). */
  commits: number;
  mbPerSec: number;
  messagesPerSec: number;
  timedOut: boolean;
  cpuUserMs: number;
  cpuSystemMs: number;
}

/** The SimpleDateFormat letters Kafka's default `yyyy-MM-dd HH:mm:ss:SSS` uses, in local time. */
export function formatDate(ms: number, pattern: string): string {
  const d = new Date(ms);
  const pad = (n: number, w: number) => String(n).padStart(w, '0');
  return pattern.replace(/yyyy|MM|dd|HH|mm|ss|SSS/g, (t) => {
    switch (t) {
      case 'yyyy': return pad(d.getFullYear(), 4);
      case 'MM': return pad(d.getMonth() + 1, 2);
      case 'dd': return pad(d.getDate(), 2);
      case 'HH': return pad(d.getHours(), 2);
      case 'mm': return pad(d.getMinutes(), 2);
      case 'ss': return pad(d.getSeconds(), 2);
      default: return pad(d.getMilliseconds(), 3);
    }
  });
}

/**
 * kafka-consumer-perf-test. With `group`, it joins that consumer group first (the join time is
 * rebalance.time.ms and the fetch.* figures start after the first assignment, as in Kafka's tool),
 * starts at the group's committed offsets (else earliest, or latest with `fromLatest`), commits
 * as a KafkaConsumer does (enable.auto.commit, default true: every auto.commit.interval.ms and on
 * close) and leaves the group at the end. Without a group, every partition is assigned directly.
 */
export async function perfConsume(opts: ConsumePerfOptions, io: PerfIo = stdio): Promise<ConsumePerfResult> {
  if (opts.messages === undefined) throw new UsageError('--messages (or --num-records) is required');
  if (!(opts.messages > 0)) throw new UsageError('--messages must be greater than zero');
  const dateFormat = opts.dateFormat ?? 'yyyy-MM-dd HH:mm:ss:SSS';
  const timeoutMs = opts.timeout ?? 10_000;
  const reportingIntervalMs = opts.reportingInterval ?? 5000;
  const detailed = opts.showDetailedStats ?? false;
  if (opts.group !== undefined && opts.group.length === 0) throw new UsageError('--group must not be empty');
  if (!opts.hideHeader) {
    const tail = ', rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec';
    io.out(detailed ? `time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec${tail}` : `start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec${tail}`);
  }
  const props = opts.consumerConfig ? readPropertiesFile(opts.consumerConfig) : {};
  const client = await KafkaClient.connect({ bootstrapServers: opts.bootstrapServer, clientId: props['client.id'] ?? 'perf-consumer-client' });
  try {
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const startMs = Date.now();
    const topicParts = await topicPartitions(client, opts.topic, false);
    const autoCommit = (props['enable.auto.commit'] ?? 'true') !== 'false';
    const autoCommitIntervalMs = intProp(props, 'auto.commit.interval.ms', 5000);
    let member: GroupMember | null = null;
    let joinMs = 0;
    let commits = 0;
    let partitions = topicParts;
    const start: Map<number, bigint> = new Map();
    if (opts.group !== undefined) {
      const joinStart = performance.now();
      member = await GroupMember.join(client, opts.group, opts.topic, topicParts, {
        sessionTimeoutMs: intProp(props, 'session.timeout.ms', 45_000),
        rebalanceTimeoutMs: intProp(props, 'max.poll.interval.ms', 300_000),
        heartbeatIntervalMs: intProp(props, 'heartbeat.interval.ms', 3000),
      }, io);
      partitions = member.partitions;
      if (partitions.length === 0) io.err(`runnel perf: group ${opts.group} assigned no partition of ${opts.topic} to this member (more members than partitions); waiting out --timeout`);
      const admin = new GroupAdmin(client);
      try {
        for (const c of await admin.fetchOffsets(opts.group, [{ topic: opts.topic, partitions }])) start.set(c.partition, c.offset);
      } finally {
        await admin.close();
      }
      joinMs = Math.round(performance.now() - joinStart);
    }
    // fetch.max.wait.ms of 100 mirrors the tool's poll(100 ms), so the timeout is checked as often.
    const consumer = new Consumer(client, {
      raw: true,
      maxWaitMs: Math.min(100, intProp(props, 'fetch.max.wait.ms', 100)),
      minBytes: intProp(props, 'fetch.min.bytes', 1),
      maxBytes: intProp(props, 'fetch.max.bytes', 52_428_800),
      // --fetch-size wins, as in Kafka's tool (it sets max.partition.fetch.bytes after reading the file).
      partitionMaxBytes: opts.fetchSize ?? intProp(props, 'max.partition.fetch.bytes', 1_048_576),
      isolationLevel: props['isolation.level'] === 'read_committed' ? 1 : 0,
    });
    await consumer.assign(partitions.map((partition) => ({ topic: opts.topic, partition, offset: start.get(partition) ?? (opts.fromLatest ? 'latest' : 'earliest') })));
    const commit = async () => {
      if (!member) return;
      const offsets = partitions.map((partition) => ({ partition, offset: consumer.position(opts.topic, partition) })).filter((o): o is { partition: number; offset: bigint } => o.offset !== undefined && o.offset >= 0n);
      await member.commit(offsets);
      commits++;
    };
    let lastCommitMs = Date.now();
    // The join counts in the first detailed line only, as in Kafka's tool.
    let joinInRound = joinMs;

    let messagesRead = 0;
    let bytesRead = 0;
    let lastMessagesRead = 0;
    let lastBytesRead = 0;
    let currentTimeMs = Date.now();
    let lastReportTimeMs = currentTimeMs;
    let lastConsumedTimeMs = currentTimeMs;
    while (messagesRead < opts.messages && currentTimeMs - lastConsumedTimeMs <= timeoutMs) {
      // With nothing assigned a poll returns at once: wait as KafkaConsumer.poll(100 ms) would.
      const got = partitions.length > 0 ? await consumer.poll() : await new Promise<[]>((r) => setTimeout(() => r([]), 100));
      currentTimeMs = Date.now();
      let n = 0;
      for (const p of got) {
        n += p.recordCount;
        bytesRead += p.keyValueBytes;
      }
      if (n > 0) lastConsumedTimeMs = currentTimeMs;
      messagesRead += n;
      if (member && autoCommit && currentTimeMs - lastCommitMs >= autoCommitIntervalMs) {
        await commit();
        lastCommitMs = currentTimeMs;
      }
      if (n > 0 && currentTimeMs - lastReportTimeMs >= reportingIntervalMs) {
        if (detailed) {
          const elapsedMs = currentTimeMs - lastReportTimeMs;
          const totalMb = bytesRead / (1024 * 1024);
          const intervalMb = (bytesRead - lastBytesRead) / (1024 * 1024);
          const fetchTimeMs = elapsedMs - joinInRound;
          io.out(`${formatDate(currentTimeMs, dateFormat)}, 0, ${fixed(totalMb, 4)}, ${fixed((1000 * intervalMb) / elapsedMs, 4)}, ${messagesRead}, `
            + `${fixed(((messagesRead - lastMessagesRead) / elapsedMs) * 1000, 4)}, ${joinInRound}, ${fetchTimeMs}, `
            + `${fixed(fetchTimeMs <= 0 ? 0 : (1000 * intervalMb) / fetchTimeMs, 4)}, ${fixed(fetchTimeMs <= 0 ? 0 : (1000 * (messagesRead - lastMessagesRead)) / fetchTimeMs, 4)}`);
        }
        lastReportTimeMs = currentTimeMs;
        joinInRound = 0;
        lastMessagesRead = messagesRead;
        lastBytesRead = bytesRead;
      }
    }
    const timedOut = messagesRead < opts.messages;
    if (timedOut) io.out(`WARNING: Exiting before consuming the expected number of messages: timeout (${timeoutMs} ms) exceeded. You can use the --timeout option to increase the timeout.`);
    const endMs = Date.now();
    // Closing as a KafkaConsumer does: a last commit (with auto-commit), then LeaveGroup. After the
    // end time, as in Kafka's tool (its consumer.close() comes after the numbers).
    if (member) {
      if (autoCommit) await commit();
      await member.leave();
    }
    const wallMs = performance.now() - wall0;
    const cpu = process.cpuUsage(cpu0);
    const elapsedSec = (endMs - startMs) / 1000;
    const fetchTimeMs = endMs - startMs - joinMs;
    const totalMb = bytesRead / (1024 * 1024);
    if (!detailed) {
      io.out(`${formatDate(startMs, dateFormat)}, ${formatDate(endMs, dateFormat)}, ${fixed(totalMb, 4)}, ${fixed(totalMb / elapsedSec, 4)}, ${messagesRead}, `
        + `${fixed(messagesRead / elapsedSec, 4)}, ${joinMs}, ${fetchTimeMs}, ${fixed(totalMb / (fetchTimeMs / 1000), 4)}, ${fixed(messagesRead / (fetchTimeMs / 1000), 4)}`);
    }
    const how = member
      ? `group ${member.groupId} (member ${member.memberId}, generation ${member.generationId}), joined in ${joinMs} ms, ${commits} offset commit${commits === 1 ? '' : 's'}${autoCommit ? '' : ' (enable.auto.commit=false)'}, left the group`
      : 'no group (partitions assigned directly)';
    io.out(cpuLine('perf consume', cpu, wallMs, `${partitions.length} partition(s), ${how}`));
    return {
      messages: messagesRead, bytes: bytesRead, elapsedMs: endMs - startMs, fetchTimeMs, joinMs, commits, mbPerSec: totalMb / elapsedSec,
      messagesPerSec: messagesRead / elapsedSec, timedOut, cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000,
    };
  } finally {
    await client.close();
  }
}

// ---------------------------------------------------------------- commander

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${name} must be a number, got "${v}"`);
  return n;
};

async function run<T>(fn: () => Promise<T>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof UsageError || err instanceof ClientError) {
      process.stderr.write(`runnel perf: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}

/** The `perf` command with `produce` and `consume` subcommands. */
export function perfCommand(): Command {
  const perf = new Command('perf').description('load generators with the flags and output of kafka-producer-perf-test and kafka-consumer-perf-test');

  perf.command('produce')
    .description('kafka-producer-perf-test: produce --num-records records and print throughput and latency')
    .requiredOption('--topic <topic>', 'produce messages to this topic')
    .requiredOption('--num-records <n>', 'number of messages to produce', num('--num-records'))
    .option('--record-size <bytes>', 'message size in bytes (exactly one of --record-size or --payload-file)', num('--record-size'))
    .option('--payload-file <file>', 'UTF-8 file to take message payloads from, chosen at random')
    .option('--payload-delimiter <delimiter>', 'delimiter of payloads in --payload-file', '\\n')
    .requiredOption('--throughput <n>', 'throttle to about this many messages/sec; -1 disables throttling', num('--throughput'))
    .option('--producer-props <props...>', 'producer properties (bootstrap.servers, acks, linger.ms, batch.size, compression.type, max.in.flight.requests.per.connection, enable.idempotence, buffer.memory, client.id)')
    .addOption(new Option('--producer.config <file>', 'producer properties file'))
    .option('--print-metrics', 'print producer metrics at the end')
    .option('--warmup-records <n>', 'records excluded from the steady-state summary line', num('--warmup-records'), 0)
    .option('--bootstrap-server <servers>', 'bootstrap.servers (alternative to --producer-props bootstrap.servers=...)')
    .option('--command-property <props...>', 'Kafka 4.x name of --producer-props')
    .option('--command-config <file>', 'Kafka 4.x name of --producer.config')
    .action((o: Record<string, unknown>) => run(() => perfProduce({
      topic: o.topic as string,
      numRecords: o.numRecords as number,
      recordSize: o.recordSize as number | undefined,
      payloadFile: o.payloadFile as string | undefined,
      payloadDelimiter: o.payloadDelimiter as string,
      throughput: o.throughput as number,
      producerProps: [...(o.producerProps as string[] | undefined ?? []), ...(o.commandProperty as string[] | undefined ?? [])],
      producerConfig: (o['producer.config'] ?? o.commandConfig) as string | undefined,
      printMetrics: Boolean(o.printMetrics),
      warmupRecords: o.warmupRecords as number,
      bootstrapServer: o.bootstrapServer as string | undefined,
    })));

  perf.command('consume')
    .description('kafka-consumer-perf-test: consume --messages records and print one CSV line. With --group it joins that consumer group (fetch figures start after the join) and commits offsets; without, all partitions are assigned directly.')
    .requiredOption('--bootstrap-server <servers>', 'the server(s) to connect to')
    .requiredOption('--topic <topic>', 'the topic to consume from')
    .option('--messages <n>', 'the number of messages to consume (required, or --num-records)', num('--messages'))
    .option('--num-records <n>', 'Kafka 4.x name of --messages', num('--num-records'))
    .option('--group <id>', 'join this consumer group (commits offsets per enable.auto.commit, leaves on exit); without it, no group is joined')
    .option('--fetch-size <bytes>', 'max.partition.fetch.bytes (default 1048576)', num('--fetch-size'))
    .option('--from-latest', 'start at the end of each partition instead of the beginning')
    .option('--timeout <ms>', 'maximum time between returned records', num('--timeout'), 10000)
    .option('--show-detailed-stats', 'print one line per --reporting-interval instead of a summary')
    .option('--reporting-interval <ms>', 'interval for --show-detailed-stats', num('--reporting-interval'), 5000)
    .option('--hide-header', 'do not print the CSV header')
    .option('--date-format <format>', 'SimpleDateFormat pattern (yyyy MM dd HH mm ss SSS)', 'yyyy-MM-dd HH:mm:ss:SSS')
    .addOption(new Option('--consumer.config <file>', 'consumer properties file (fetch.max.wait.ms, fetch.min.bytes, fetch.max.bytes, max.partition.fetch.bytes, isolation.level, client.id, enable.auto.commit, auto.commit.interval.ms, session.timeout.ms, heartbeat.interval.ms, max.poll.interval.ms)'))
    .option('--command-config <file>', 'Kafka 4.x name of --consumer.config')
    .action((o: Record<string, unknown>) => run(() => perfConsume({
      bootstrapServer: o.bootstrapServer as string,
      topic: o.topic as string,
      messages: (o.messages ?? o.numRecords) as number,
      group: o.group as string | undefined,
      fetchSize: o.fetchSize as number | undefined,
      fromLatest: Boolean(o.fromLatest),
      timeout: o.timeout as number,
      showDetailedStats: Boolean(o.showDetailedStats),
      reportingInterval: o.reportingInterval as number,
      hideHeader: Boolean(o.hideHeader),
      dateFormat: o.dateFormat as string,
      consumerConfig: (o['consumer.config'] ?? o.commandConfig) as string | undefined,
    })));

  return perf;
}
