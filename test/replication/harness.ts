/**
 * What the replication fault tests share: a 3-broker cluster with RF 3 and min.insync.replicas=2,
 * the controller's committed partition state read straight from Redis, a verifiable producer
 * (kafkajs, idempotent, acks=all) that records every acknowledged record, the read-back and the
 * checker (acknowledged vs read: lost, duplicates, inconsistent and out-of-order offsets), the
 * replica logs compared batch by batch from the brokers' segment files, and the one line of
 * figures each test prints.
 */
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { PartitionState } from '@runnel/metadata';
import { startCluster, type ClusterNode, type ClusterOptions, type TestCluster } from '../helpers/cluster.ts';
import { runKcat } from '../helpers/kcat.ts';
import { redisCli } from '../helpers/redis.ts';
import { until } from '../helpers/until.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

/**
 * Every node gets these (on top of the cluster helper's short session: 3 s): RF 3 everywhere,
 * acks=all needs 2, no unclean election, and a follower out of the ISR after 3 s without catching up.
 */
export const REPLICATED = [
  'default.replication.factor=3',
  'offsets.topic.replication.factor=3',
  'min.insync.replicas=2',
  'unclean.leader.election.enable=false',
  'replica.lag.time.max.ms=3000',
];

export function startReplicatedCluster(o: { coordinators?: number; set?: string[]; nodeSet?: ClusterOptions['nodeSet'] } = {}): Promise<TestCluster> {
  return startCluster({ brokers: 3, coordinators: o.coordinators ?? 0, set: [...REPLICATED, ...(o.set ?? [])], nodeSet: o.nodeSet });
}

/** A kafkajs client that retries for long enough to ride out a failover (kafkajs retries retriable errors). */
/** The kafkajs clients' latest warnings and errors (retries included), shown when a wait fails. */
export const clientLog: string[] = [];

export function kafkaOf(cluster: TestCluster, clientId = 'replication-test'): Kafka {
  return new Kafka({
    clientId,
    brokers: cluster.bootstrap.split(','),
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, log }) => {
      const { message, timestamp: _t, logger: _l, ...extra } = log as { message: string; timestamp?: string; logger?: string } & Record<string, unknown>;
      clientLog.push(`${new Date().toISOString().slice(11, 23)} ${namespace}: ${message} ${JSON.stringify(extra).slice(0, 300)}`);
      if (clientLog.length > 200) clientLog.splice(0, clientLog.length - 200);
    },
    connectionTimeout: 1_000,
    requestTimeout: 10_000,
    retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 60 },
  });
}

/** The controller's committed state of one partition (what it stores in Redis, `runnel:topics`). */
export type PartitionView = PartitionState;

/** The partitions of `topic` as the controller committed them, read from Redis; [] when the topic is not there. */
export async function partitionStates(cluster: TestCluster, topic: string): Promise<PartitionView[]> {
  const json = await redisCli(cluster.redis.socketPath, 'HGET', 'runnel:topics', topic);
  if (!json) return [];
  return (JSON.parse(json) as { partitions: PartitionView[] }).partitions;
}

/**
 * Creates a topic with RF 3 and waits until every partition has a leader and a full ISR; returns
 * the states. (The controller picks the replicas, and the tests pick their victims from the states.)
 */
export async function createTopic(cluster: TestCluster, topic: string, partitions: number): Promise<PartitionView[]> {
  const admin = kafkaOf(cluster).admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: 3 }] });
  } catch (err) {
    const inner = (err as { errors?: { message: string; type?: string }[] }).errors ?? [];
    throw new Error(`creating ${topic}: ${(err as Error).message}: ${inner.map((e) => `${e.type ?? ''} ${e.message}`).join('; ')}`);
  } finally {
    await admin.disconnect();
  }
  return fullIsr(cluster, topic, 20_000);
}

/** Waits until every partition of `topic` has a leader and all its replicas in the ISR (in Redis); returns the states. */
export async function fullIsr(cluster: TestCluster, topic: string, timeoutMs: number): Promise<PartitionView[]> {
  let last: PartitionView[] = [];
  try {
    return await until(`every partition of ${topic} led, with its whole ISR`, async () => {
      const states = await partitionStates(cluster, topic).catch(() => []);
      last = states;
      return states.length > 0 && states.every((s) => s.leader >= 0 && s.isr.length === s.replicas.length) && states;
    }, timeoutMs);
  } catch (err) {
    // The log lines of the replicas left out say why (a fetcher error, a refused proposal).
    const out = new Set(last.flatMap((s) => [...s.replicas.filter((r) => !s.isr.includes(r)), s.leader].filter((id) => id >= 0)));
    const tails = [...out].map((id) => `node ${id}:\n${logTail(brokerById(cluster, id), 15, topic)}`).join('\n')
      + `\ncontroller:\n${logTail(cluster.controller, 15, topic)}`;
    throw new Error(`${(err as Error).message}; last seen: ${last.map((s) => `p${s.partition} leader ${s.leader}@${s.leaderEpoch} isr [${s.isr}] replicas [${s.replicas}]`).join('; ')}\n${tails}`);
  }
}

/** A node's last warning and error log lines (JSON lines with level >= 40) and those naming `topic`, for failure messages. */
export function logTail(node: ClusterNode, lines = 12, topic?: string): string {
  return node.process.output().split('\n')
    .filter((l) => /"level":(4|5|6)\d/.test(l) || (topic !== undefined && l.includes(`"${topic}"`)))
    .slice(-lines).map((l) => l.slice(0, 400)).join('\n');
}

export function brokerById(cluster: TestCluster, nodeId: number): ClusterNode {
  const b = cluster.brokers.find((n) => n.nodeId === nodeId);
  if (!b) throw new Error(`no broker ${nodeId}`);
  return b;
}

export async function kill9(node: ClusterNode): Promise<void> {
  node.process.child.kill('SIGKILL');
  await node.process.exited();
}

/**
 * Waits for the controller to give `partition` a leader other than `old` (and not offline) and
 * returns the new state and the seconds since `since` (performance.now() at the fault).
 */
export async function newLeader(cluster: TestCluster, topic: string, partition: number, old: number, since: number, timeoutMs = 30_000): Promise<{ state: PartitionView; seconds: number }> {
  const state = await until(`a new leader of ${topic}-${partition} (not ${old})`, async () => {
    const s = (await partitionStates(cluster, topic).catch(() => []))[partition];
    return s !== undefined && s.leader >= 0 && s.leader !== old && s;
  }, timeoutMs);
  return { state, seconds: (performance.now() - since) / 1000 };
}

export interface Ack { partition: number; offset: bigint; value: string }

/**
 * A verifiable producer: one kafkajs idempotent producer (acks=all), one send loop per partition
 * (so at most one request per partition is in flight and idempotence keeps order), each send a few
 * records with unique values `<tag>-<partition>-<seq>`. Every acknowledged record is recorded with
 * the offset the broker gave it; every error that reached the application is kept (kafkajs itself
 * retries the retriable ones).
 */
export class VerifiableProducer {
  readonly acked: Ack[] = [];
  readonly errors: string[] = [];
  /** Values whose send failed: they may or may not be in the log (never counted as lost). */
  readonly uncertain = new Set<string>();
  readonly #producer: Producer;
  readonly #topic: string;
  readonly #partitions: number;
  readonly #batch: number;
  readonly #tag: string;
  #running = false;
  #loops: Promise<void>[] = [];

  constructor(kafka: Kafka, topic: string, partitions: number, o: { batch?: number; tag?: string } = {}) {
    this.#producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: Number.MAX_SAFE_INTEGER } });
    this.#topic = topic;
    this.#partitions = partitions;
    this.#batch = o.batch ?? 5;
    this.#tag = o.tag ?? 'v';
  }

  async start(): Promise<void> {
    await this.#producer.connect();
    this.#running = true;
    this.#loops = Array.from({ length: this.#partitions }, (_, p) => this.#loop(p));
  }

  /** Acknowledged records so far. */
  get count(): number {
    return this.acked.length;
  }

  /** Resolves once `n` more records than now have been acknowledged. */
  async progressed(n: number, timeoutMs: number): Promise<number> {
    const target = this.acked.length + n;
    try {
      return await until(`${n} more acknowledged records`, () => this.acked.length >= target && this.acked.length, timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message} (${this.acked.length} so far); the client's last warnings:\n${clientLog.slice(-8).join('\n')}`);
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    await this.#producer.disconnect().catch(() => {});
  }

  async #loop(partition: number): Promise<void> {
    let seq = 0;
    while (this.#running) {
      const values = Array.from({ length: this.#batch }, () => `${this.#tag}-${partition}-${seq++}`);
      try {
        const [meta] = await this.#producer.send({ topic: this.#topic, acks: -1, timeout: 10_000, messages: values.map((value) => ({ partition, value })) });
        const base = BigInt(meta!.baseOffset!);
        values.forEach((value, i) => this.acked.push({ partition, offset: base + BigInt(i), value }));
      } catch (err) {
        this.errors.push(`${(err as Error).name}: ${(err as Error).message}`);
        for (const v of values) this.uncertain.add(v);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

export interface Read { partition: number; offset: bigint; value: string }

/** Every record of `topic` below each partition's high watermark, read with kcat (librdkafka, an independent client). */
export async function readAll(cluster: TestCluster, topic: string): Promise<Read[]> {
  const r = await runKcat(['-b', cluster.bootstrap, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%p %o %s\\n'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`kcat read of ${topic} failed (${r.code ?? r.signal}${r.timedOut ? ', timed out' : ''}): ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((line) => {
    const [p, o, ...v] = line.split(' ');
    return { partition: Number(p), offset: BigInt(o!), value: v.join(' ') };
  });
}

export interface Figures {
  acknowledged: number;
  read: number;
  /** Acknowledged and never read. */
  lost: number;
  /** Values read at more than one offset. */
  duplicates: number;
  /** An acknowledged (partition, offset) read with another value, or two reads of one offset disagreeing. */
  inconsistent: number;
  /** Offsets of a partition not strictly increasing in the read. */
  outOfOrder: number;
  /** Values read that were never sent (corruption) — a failed send's values are expected to appear or not. */
  phantom: number;
  samples: string[];
}

/** The checker (Jepsen's lost-write, duplicate, inconsistent-offsets; Redpanda's consistency workload). */
export function check(acked: readonly Ack[], read: readonly Read[], sent?: (value: string) => boolean): Figures {
  const samples: string[] = [];
  const note = (s: string) => { if (samples.length < 10) samples.push(s); };
  const readByValue = new Map<string, Read[]>();
  const readAt = new Map<string, string>();
  let inconsistent = 0;
  let outOfOrder = 0;
  let phantom = 0;
  const lastOffset = new Map<number, bigint>();
  for (const r of read) {
    const list = readByValue.get(r.value) ?? [];
    list.push(r);
    readByValue.set(r.value, list);
    const at = `${r.partition}@${r.offset}`;
    const before = readAt.get(at);
    if (before !== undefined && before !== r.value) { inconsistent++; note(`offset ${at} read as ${before} and ${r.value}`); }
    readAt.set(at, r.value);
    const last = lastOffset.get(r.partition);
    if (last !== undefined && r.offset <= last) { outOfOrder++; note(`partition ${r.partition}: offset ${r.offset} after ${last}`); }
    lastOffset.set(r.partition, r.offset);
    if (sent && !sent(r.value)) { phantom++; note(`read a value never sent: ${JSON.stringify(r.value)} at ${at}`); }
  }
  let lost = 0;
  for (const a of acked) {
    const at = `${a.partition}@${a.offset}`;
    const found = readAt.get(at);
    if (found === undefined && !readByValue.has(a.value)) { lost++; note(`lost ${a.value} (acknowledged at ${at})`); continue; }
    if (found !== a.value) { inconsistent++; note(`acknowledged ${a.value} at ${at}, read ${found ?? 'nothing'} there`); }
  }
  let duplicates = 0;
  for (const [value, list] of readByValue) if (list.length > 1) { duplicates += list.length - 1; note(`${value} read ${list.length} times`); }
  return { acknowledged: acked.length, read: read.length, lost, duplicates, inconsistent, outOfOrder, phantom, samples };
}

/** What every fault test requires of its figures: nothing lost, doubled, changed or reordered. */
export const INTACT = { lost: 0, duplicates: 0, inconsistent: 0, outOfOrder: 0, samples: [] as string[] };
/** The figures `INTACT` speaks of, with the samples that would explain a failure. */
export function intact(f: Figures): typeof INTACT {
  return { lost: f.lost, duplicates: f.duplicates, inconsistent: f.inconsistent, outOfOrder: f.outOfOrder, samples: f.samples };
}

/** Reads back until nothing acknowledged is missing (the high watermark may trail just after a heal), at most `timeoutMs`; returns the last check. */
export async function readAndCheck(cluster: TestCluster, topic: string, producer: VerifiableProducer, timeoutMs = 20_000): Promise<Figures> {
  const deadline = Date.now() + timeoutMs;
  const sent = (v: string) => /^[\w.]+-\d+-\d+$/.test(v);
  for (;;) {
    const figures = check(producer.acked, await readAll(cluster, topic), sent);
    if (figures.lost === 0 || Date.now() > deadline) return figures;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Prints the one line of figures a fault test reports (vitest shows the console output). */
export function report(test: string, f: Figures, extra: Record<string, string | number> = {}): void {
  const more = Object.entries(extra).map(([k, v]) => ` ${k}=${v}`).join('');
  console.log(`[replication] ${test}: acknowledged=${f.acknowledged} lost=${f.lost} duplicates=${f.duplicates} inconsistent=${f.inconsistent} out_of_order=${f.outOfOrder}${more}${f.samples.length ? ` e.g. ${f.samples.slice(0, 3).join('; ')}` : ''}`);
}

export interface BatchHeader { baseOffset: bigint; lastOffset: bigint; leaderEpoch: number; crc: number }

/** A batch's identity across replicas: offsets, leader epoch and CRC. */
export const batchKey = (b: BatchHeader): string => `${b.baseOffset}-${b.lastOffset}@${b.leaderEpoch}#${b.crc}`;

/**
 * The record batches of one replica, straight from its segment files (`<logDir>/<topic>-<p>/*.log`,
 * Kafka's format: baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8,
 * crc uint32, attributes int16, lastOffsetDelta int32, ...). A torn tail is not listed.
 */
export async function replicaBatches(logDir: string, topic: string, partition: number): Promise<BatchHeader[]> {
  const dir = join(logDir, `${topic}-${partition}`);
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.log')).sort();
  const out: BatchHeader[] = [];
  for (const f of files) {
    const fh = await open(join(dir, f), 'r');
    try {
      const buf = await fh.readFile();
      let pos = 0;
      while (pos + 61 <= buf.length) {
        const length = buf.readInt32BE(pos + 8);
        if (length < 49 || pos + 12 + length > buf.length) break;
        out.push({
          baseOffset: buf.readBigInt64BE(pos),
          lastOffset: buf.readBigInt64BE(pos) + BigInt(buf.readInt32BE(pos + 23)),
          leaderEpoch: buf.readInt32BE(pos + 12),
          crc: buf.readUInt32BE(pos + 17),
        });
        pos += 12 + length;
      }
    } finally {
      await fh.close();
    }
  }
  return out;
}

/**
 * Waits until every replica of every partition of `topic` holds the same batches (same offsets,
 * leader epochs and CRCs) as its leader (C7, replica divergence = 0 after heal); returns the batch
 * count compared. Fails with the first difference.
 */
export async function replicasConverge(cluster: TestCluster, topic: string, timeoutMs: number): Promise<number> {
  let last = '';
  try {
    return await until(`the replicas of ${topic} to hold identical batches`, async () => {
      let batches = 0;
      for (const s of await partitionStates(cluster, topic)) {
        const key = batchKey;
        const logs = await Promise.all(s.replicas.map(async (id) => ({ id, batches: await replicaBatches(brokerById(cluster, id).logDir, topic, s.partition) })));
        const leader = logs.find((l) => l.id === s.leader) ?? logs[0]!;
        for (const l of logs) {
          const a = leader.batches.map(key).join(',');
          const b = l.batches.map(key).join(',');
          if (a !== b) {
            const i = leader.batches.findIndex((x, j) => l.batches[j] === undefined || key(x) !== key(l.batches[j]!));
            last = `partition ${s.partition}: node ${l.id} has ${l.batches.length} batches, leader ${leader.id} has ${leader.batches.length}; first difference at batch ${i}: leader ${leader.batches[i] ? key(leader.batches[i]!) : '-'}, replica ${l.batches[i] ? key(l.batches[i]!) : '-'}`;
            return false;
          }
        }
        batches += leader.batches.length;
      }
      return batches;
    }, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${last}`);
  }
}
