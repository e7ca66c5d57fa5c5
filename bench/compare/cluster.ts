/**
 * The cluster suite (`npm run bench -- --suite cluster`): a replicated Runnel cluster and a
 * replicated Apache Kafka cluster on this machine, in the same run, with the same topic settings:
 * 3 brokers, replication factor 3, min.insync.replicas=2, producers with acks=all.
 *
 * - Runnel: `runnel cluster up --brokers 3 --port 0` in a temp dir (Redis, a controller, 3 brokers
 *   and a coordinator, each its own process).
 * - Kafka: one dedicated KRaft controller JVM (node 0) and 3 broker JVMs (nodes 1..3), the same
 *   shape (a controller apart from the brokers).
 *
 * Rows: produce throughput, latency at a fixed rate, broker CPU per GB summed over the three
 * broker processes (controllers, Redis and Runnel's coordinator are not counted: neither is on the
 * produce path), and failover after `kill -9` of a partition leader. Failover goes last: it leaves
 * each cluster one broker short.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KafkaClient, Producer } from '@runnel/client';
import { median } from '../lib/report.ts';
import { freePort, type SystemName } from './brokers.ts';
import type { Driver, ProduceResult } from './drivers.ts';
import { formatClusterNode, newClusterId, spawnKafka, type KafkaArtifacts, type KafkaBroker } from './kafka.ts';
import { cpuFieldsOf, cpuOf, type Cell, type CompareRow } from './output.ts';
import { adoptGroup, groupCpuSeconds, spawnGroup, tail, type Proc } from './proc.ts';

export const CLUSTER_BROKERS = 3;
export const REPLICATION_FACTOR = 3;
export const MIN_INSYNC = 2;

export interface ClusterBroker { nodeId: number; address: string; pid: number }


export interface RunningCluster {
  system: SystemName;
  /** Every broker's `host:port`, comma-separated. */
  bootstrap: string;
  brokers: ClusterBroker[];
  /** SIGKILL to one broker process (no shutdown of any kind), as `kill -9 <pid>`. */
  kill9(nodeId: number): void;
  /** Starts a killed broker again with the command line, environment and directory it had (same id, port and data). */
  restart(nodeId: number): void;
  stop(): Promise<void>;
}

/**
 * kill -9 and restart for the brokers of either system: the command line, environment and working
 * directory are read from /proc before the kill, and the broker is started again from them (its
 * own process group, killed at exit like every other). `stopRestarted` stops those before the
 * cluster itself is stopped.
 */
function killAndRestart(brokers: ClusterBroker[]): Pick<RunningCluster, 'kill9' | 'restart'> & { stopRestarted(): Promise<void> } {
  const saved = new Map<number, { argv: string[]; env: Record<string, string>; cwd: string }>();
  const restarted: Proc[] = [];
  const find = (nodeId: number) => {
    const b = brokers.find((x) => x.nodeId === nodeId);
    if (!b) throw new Error(`no broker ${nodeId}`);
    return b;
  };
  return {
    kill9(nodeId) {
      const b = find(nodeId);
      const nul = (f: string) => readFileSync(`/proc/${b.pid}/${f}`, 'utf8').split('\0').filter(Boolean);
      const env = Object.fromEntries(nul('environ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      saved.set(nodeId, { argv: nul('cmdline'), env, cwd: readlinkSync(`/proc/${b.pid}/cwd`) });
      process.kill(b.pid, 'SIGKILL');
    },
    restart(nodeId) {
      const b = find(nodeId);
      const s = saved.get(nodeId);
      if (!s) throw new Error(`broker ${nodeId} was not killed here`);
      // On the port it had (`cluster up --port 0` gave it `listeners=...:0`), as a restarted server would.
      const argv = s.argv.map((a) => (/^listeners=PLAINTEXT:\/\/[^,]+:0$/.test(a) ? `listeners=PLAINTEXT://${b.address}` : a));
      const proc = spawnGroup(argv[0]!, argv.slice(1), { cwd: s.cwd, env: s.env });
      restarted.push(proc);
      b.pid = proc.pid;
    },
    async stopRestarted() { for (const p of restarted) await p.stop(15_000); },
  };
}

export interface ClusterSuiteOptions {
  root: string;
  workDir: string;
  art: KafkaArtifacts | null;
  drivers: Driver[];
  log: (s: string) => void;
  /** 1 KB records per produce run. */
  records: number;
  runs: number;
  warmup: boolean;
  /** Seconds of load per fixed-rate latency run. */
  fixedRateSeconds: number;
  failoverRuns: number;
}

const SEGMENT_BYTES = 1024 * 1024 * 1024;

/** `runnel cluster up --brokers 3` in `dir`; resolves once its summary names every process. */
export async function startRunnelCluster(root: string, dir: string): Promise<RunningCluster> {
  const proc = spawnGroup(process.execPath, [
    join(root, 'packages/cli/bin/runnel.ts'), 'cluster', 'up', '--brokers', String(CLUSTER_BROKERS), '--dir', dir, '--port', '0',
    '--set', `log.segment.bytes=${SEGMENT_BYTES}`, '--set', 'group.initial.rebalance.delay.ms=0',
  ], { cwd: root });
  // The summary (state.ts `summary`): `bootstrap.servers=...`, then `  <name> <address> pid <pid>` per process.
  try {
    await proc.waitFor(/runnel cluster is up[\s\S]*\n\s+coordinator-\d+\s+\S+\s+pid \d+/, 120_000);
  } catch (err) {
    // SIGTERM lets `cluster up` stop the nodes it started (a SIGKILL at exit would orphan them).
    await proc.stop(30_000);
    throw new Error(`runnel cluster up: ${(err as Error).message.replace(/^.*?(did not print|exited)/, '$1').slice(0, 200)}: ${tail(proc.output().split('\n').filter((l) => !l.startsWith('{') && !/^\d+:[MC] /.test(l)).join('\n'))}`);
  }
  const out = proc.output();
  const processes = [...out.matchAll(/^\s+(redis|controller|broker-(\d+)|coordinator-\d+)\s+(\S+)\s+pid (\d+)/gm)];
  // Each node is its own process group under `cluster up`: SIGKILL to `cluster up` alone would orphan them.
  for (const m of processes) adoptGroup(Number(m[4]));
  const brokers = processes.filter((m) => m[2]).map((m) => ({ nodeId: Number(m[2]), address: m[3]!.replace('PLAINTEXT://', ''), pid: Number(m[4]) }));
  if (brokers.length !== CLUSTER_BROKERS) throw new Error(`cluster up named ${brokers.length} brokers: ${tail(out)}`);
  const k = killAndRestart(brokers);
  return {
    system: 'Runnel',
    bootstrap: brokers.map((b) => b.address).join(','),
    brokers,
    kill9: k.kill9,
    restart: k.restart,
    // SIGTERM to `cluster up` stops the nodes, the controller and Redis in order (a restarted
    // broker is not its child: stopped first).
    async stop() { await k.stopRestarted(); await proc.stop(30_000); },
  };
}

/** One controller JVM and three broker JVMs, formatted with one cluster id; resolves once they run (readiness is probed by the caller). */
export async function startKafkaCluster(art: KafkaArtifacts, dir: string, log: (s: string) => void): Promise<RunningCluster> {
  const clusterId = newClusterId();
  const controllerPort = await freePort();
  const nodes = [{ nodeId: 0, port: controllerPort }];
  for (let i = 1; i <= CLUSTER_BROKERS; i++) nodes.push({ nodeId: i, port: await freePort() });
  const jvms: Array<{ nodeId: number; k: KafkaBroker }> = [];
  const stop = async () => { for (const j of [...jvms].reverse()) await j.k.stop(); };
  try {
    for (const n of nodes) {
      const role = n.nodeId === 0 ? 'controller' : 'broker';
      const file = await formatClusterNode(art, { role, nodeId: n.nodeId, port: n.port, controllerPort, dataDir: join(dir, `${role}-${n.nodeId}`), segmentBytes: SEGMENT_BYTES, brokers: CLUSTER_BROKERS }, clusterId);
      // Modest heaps: four JVMs share the machine with Runnel's cluster and the load tools.
      jvms.push({ nodeId: n.nodeId, k: spawnKafka(art, { port: n.port, heap: role === 'controller' ? '512m' : '1g' }, file) });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  log(`Kafka cluster: controller pid ${jvms[0]!.k.pid}, brokers ${jvms.slice(1).map((j) => `${j.nodeId}:${j.k.pid}`).join(', ')}`);
  const brokers = jvms.slice(1).map((j) => ({ nodeId: j.nodeId, address: j.k.bootstrap, pid: j.k.pid }));
  const k = killAndRestart(brokers);
  return {
    system: 'Kafka',
    bootstrap: brokers.map((b) => b.address).join(','),
    brokers,
    kill9: k.kill9,
    restart: k.restart,
    async stop() { await k.stopRestarted(); await stop(); },
  };
}

/** Connects (to any live broker) and waits until all brokers are registered. */
async function connectCluster(c: RunningCluster, timeoutMs = 120_000): Promise<KafkaClient> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const client = await KafkaClient.connect({ bootstrapServers: c.bootstrap, clientId: 'runnel-bench', connectTimeoutMs: 1_000, requestTimeoutMs: 10_000 });
      try {
        const md = await client.metadata([]);
        if (md.brokers.length >= c.brokers.length) return client;
        last = new Error(`${md.brokers.length} of ${c.brokers.length} brokers registered`);
      } catch (err) { last = err; }
      await client.close();
    } catch (err) { last = err; }
    if (performance.now() > deadline) throw new Error(`${c.system} cluster not ready within ${timeoutMs} ms: ${(last as Error)?.message}`);
    await sleep(200);
  }
}

/** Creates a topic with RF 3 and min.insync.replicas=2; waits until every partition has a leader and a full ISR. */
async function createReplicatedTopic(client: KafkaClient, name: string, partitions: number): Promise<void> {
  const deadline = performance.now() + 60_000;
  // Retried: right after a broker restart the controller may not count it yet (too few brokers for RF 3).
  for (;;) {
    try {
      await client.createTopics([{ name, partitions, replicationFactor: REPLICATION_FACTOR, configs: { 'min.insync.replicas': String(MIN_INSYNC) } }], { ignoreExisting: true });
      break;
    } catch (err) {
      if (performance.now() > deadline) throw err;
      await sleep(500);
    }
  }
  for (;;) {
    const md = await client.metadata([name]);
    const t = md.topics.find((x) => x.name === name);
    if (t && t.errorCode === 0 && t.partitions.length === partitions
      && t.partitions.every((p) => p.errorCode === 0 && p.leaderId >= 0 && p.isrNodes.length === REPLICATION_FACTOR)) return;
    if (performance.now() > deadline) throw new Error(`topic ${name}: no leader or ISR below ${REPLICATION_FACTOR} after 60 s`);
    await sleep(100);
  }
}

async function leaderOf(client: KafkaClient, topic: string, partition: number): Promise<number> {
  const md = await client.metadata([topic]);
  const p = md.topics.find((t) => t.name === topic)?.partitions.find((x) => x.partitionIndex === partition);
  if (!p || p.leaderId < 0) throw new Error(`${topic}-${partition} has no leader`);
  return p.leaderId;
}

/**
 * Failover, measured with a small client loop over @runnel/client (the same code against both):
 * one 1 KB record at a time, acks=all, to partition 0 of a 1-partition RF 3 topic, bootstrapped
 * from the two brokers that survive. Once one send has succeeded (the topic known everywhere), after
 * 3 s of successful sends the partition's leader is killed
 * with SIGKILL. A send that fails (connection reset, NOT_LEADER, timeout...) is followed by a metadata
 * refresh and a new send 20 ms later. The result is the time from the kill to the acknowledgement
 * of the first send started after the kill.
 */
async function failoverOnce(c: RunningCluster, topic: string): Promise<{ ms: number; failedSends: number; oldLeader: number; newLeader: number }> {
  const admin = await connectCluster(c);
  let oldLeader: number;
  let survivors: string;
  try {
    await createReplicatedTopic(admin, topic, 1);
    oldLeader = await leaderOf(admin, topic, 0);
    // Addresses from metadata: a restarted Runnel broker has a new port (`cluster up --port 0`).
    survivors = (await admin.metadata([])).brokers.filter((b) => b.nodeId !== oldLeader).map((b) => `${b.host}:${b.port}`).join(',');
  } finally {
    await admin.close();
  }
  const client = await KafkaClient.connect({ bootstrapServers: survivors, clientId: 'runnel-bench-failover', connectTimeoutMs: 1_000, requestTimeoutMs: 10_000 });
  try {
    // A fresh Producer after each failure: with retries: 0 a Producer keeps its cached connection
    // to the partition's old leader (it drops it only between its own retries).
    const newProducer = () => new Producer(client, { acks: -1, retries: 0, timeoutMs: 10_000 });
    let producer = newProducer();
    /** After a failed send: a fresh Producer and the partition's leader looked up again. */
    const recover = async (pauseMs: number) => {
      producer = newProducer();
      client.invalidateLeader(topic, 0);
      await client.metadata([topic]).catch(() => {});
      await sleep(pauseMs);
    };
    const value = Buffer.alloc(1024, 'x');
    // Until the first acknowledgement, a failure is the new topic still reaching every broker
    // (Kafka's brokers learn it from the controller's log a moment after CreateTopics answers).
    const warmUntil = performance.now() + 30_000;
    for (;;) {
      try {
        await producer.send(topic, 0, [{ value }]);
        break;
      } catch (err) {
        if (performance.now() > warmUntil) throw new Error(`no send succeeded within 30 s of creating the topic: ${(err as Error).message}`);
        await recover(100);
      }
    }
    const started = performance.now();
    let killedAt = 0;
    let failedSends = 0;
    for (;;) {
      if (!killedAt && performance.now() - started > 3_000) {
        c.kill9(oldLeader);
        killedAt = performance.now();
      }
      const sentAt = performance.now();
      try {
        await producer.send(topic, 0, [{ value }]);
        if (killedAt && sentAt >= killedAt) break;
      } catch (err) {
        if (!killedAt) throw new Error(`a send failed before the kill: ${(err as Error).message}`);
        failedSends++;
        await recover(20);
      }
      if (killedAt && performance.now() - killedAt > 120_000) throw new Error('no acks=all produce succeeded within 120 s of the kill');
    }
    const ms = performance.now() - killedAt;
    const newLeader = await leaderOf(client, topic, 0).catch(() => -1);
    return { ms, failedSends, oldLeader, newLeader };
  } finally {
    await client.close();
  }
}

const failed = (err: unknown): Cell => ({ value: null, samples: [], error: (err as Error)?.message ?? String(err) });

interface Target { system: SystemName; cluster: RunningCluster; admin: KafkaClient; results: Map<string, Cell> }

const sumCpu = (c: RunningCluster) => c.brokers.reduce((a, b) => a + groupCpuSeconds(b.pid), 0);
/** CPU fields of a row measured on the cluster: the brokers' CPU is summed, so saturation is per broker process. */
const clusterCpu = (ok: Array<{ r: ProduceResult; brokerCpu: number }>, brokers: number) => cpuOf(ok.map((x) => ({ brokerCpu: x.brokerCpu, toolCpu: x.r.toolCpu, wallMs: x.r.wallMs })), brokers);

/** Interleaved runs (K R, R K, ...), as in the single-node suites, with CPU summed over the brokers. */
async function interleaved(targets: Target[], runs: number, warmup: ((t: Target) => Promise<unknown>) | null,
  run: (t: Target) => Promise<ProduceResult>, log: (s: string) => void): Promise<Map<Target, Array<{ r: ProduceResult; brokerCpu: number } | Error>>> {
  const out = new Map<Target, Array<{ r: ProduceResult; brokerCpu: number } | Error>>(targets.map((t) => [t, []]));
  const dead = new Map<Target, Error>();
  if (warmup) for (const t of targets) await warmup(t).catch((err: Error) => { dead.set(t, err); });
  for (let i = 0; i < runs; i++) {
    for (const t of i % 2 === 0 ? targets : [...targets].reverse()) {
      if (dead.has(t)) continue;
      try {
        const c0 = sumCpu(t.cluster);
        const r = await run(t);
        out.get(t)!.push({ r, brokerCpu: sumCpu(t.cluster) - c0 });
      } catch (err) {
        log(`${t.system}: ${(err as Error).message}`);
        dead.set(t, err as Error);
      }
    }
  }
  for (const [t, err] of dead) out.get(t)!.push(err);
  return out;
}

export const clusterNames = {
  produce: `produce 1 KB, acks=all, 3 partitions, RF ${REPLICATION_FACTOR}, min.insync.replicas=${MIN_INSYNC}`,
  p50: 'produce latency at half the max rate (acks=all, RF 3), p50',
  p99: 'produce latency at half the max rate (acks=all, RF 3), p99',
  cpu: 'broker CPU per GB (3 brokers summed): produce 1 KB, acks=all, RF 3',
  idle: 'broker CPU cores with no load (3 brokers summed, 10 s after the warm-up)',
  failover: 'failover: kill -9 of the partition leader to the first acks=all produce acknowledged',
};

/** Runs the whole suite; every row that fails carries its error. */
export async function clusterSuite(o: ClusterSuiteOptions): Promise<{ rows: CompareRow[]; notes: string[] }> {
  const systems: SystemName[] = o.art ? ['Kafka', 'Runnel'] : ['Runnel'];
  const results = new Map<SystemName, Map<string, Cell>>(systems.map((s) => [s, new Map()]));
  const startErrors = new Map<SystemName, unknown>();
  const notes: string[] = [];
  const targets: Target[] = [];
  const tagged = (row: string, d: Driver) => `${row} [${d.tag}]`;
  try {
    for (const system of systems) {
      let cluster: RunningCluster | undefined;
      try {
        o.log(`starting the ${system} cluster`);
        cluster = system === 'Kafka' ? await startKafkaCluster(o.art!, join(o.workDir, 'kafka'), o.log) : await startRunnelCluster(o.root, join(o.workDir, 'runnel'));
        const admin = await connectCluster(cluster);
        targets.push({ system, cluster, admin, results: results.get(system)! });
      } catch (err) {
        o.log(`${system} cluster did not start: ${(err as Error).message}`);
        await cluster?.stop();
        startErrors.set(system, err);
      }
    }
    // JIT and page-cache warm-up before anything is timed, as in the single-node suites.
    if (o.drivers[0]) {
      o.log('warming up the clusters');
      for (const t of targets) {
        try {
          await createReplicatedTopic(t.admin, 'bench-warmup', 3);
          await o.drivers[0].produce(t.cluster.bootstrap, { topic: 'bench-warmup', partitions: 3, records: o.records, recordSize: 1024, acks: 'all', compression: 'none', throughput: -1 });
          await t.admin.deleteTopics(['bench-warmup'], { ignoreMissing: true });
        } catch (err) {
          o.log(`${t.system}: warm-up failed (${(err as Error).message}); measuring anyway`);
        }
      }
    }
    // What the brokers burn with no load (replica fetchers, heartbeats, GC, timers): both clusters
    // in the same 10 s window after the warm-up. It is part of every CPU-per-GB row at these rates.
    {
      const c0 = targets.map((t) => sumCpu(t.cluster));
      const w0 = performance.now();
      await sleep(10_000);
      const wall = (performance.now() - w0) / 1000;
      targets.forEach((t, i) => { const v = (sumCpu(t.cluster) - c0[i]!) / wall; t.results.set(clusterNames.idle, { value: v, samples: [v] }); });
    }
    for (const d of o.drivers) {
      const topic = `bench-cluster-${d.name}`;
      const spec = { topic, partitions: 3, records: o.records, recordSize: 1024, acks: 'all' as const, compression: 'none' as const, throughput: -1 };
      const name = tagged(clusterNames.produce, d);
      o.log(name);
      for (const t of targets) await createReplicatedTopic(t.admin, topic, 3).catch((err: Error) => t.results.set(name, failed(err)));
      const live = targets.filter((t) => !t.results.has(name));
      const got = await interleaved(live, o.runs, o.warmup ? (t) => d.produce(t.cluster.bootstrap, { ...spec, records: Math.ceil(spec.records / 4) }) : null, (t) => d.produce(t.cluster.bootstrap, spec), o.log);
      const maxRate = new Map<SystemName, number>();
      for (const [t, list] of got) {
        const err = list.find((x): x is Error => x instanceof Error);
        const ok = list.filter((x): x is { r: ProduceResult; brokerCpu: number } => !(x instanceof Error));
        if (err || ok.length === 0) { t.results.set(name, failed(err)); t.results.set(tagged(clusterNames.cpu, d), failed(err)); continue; }
        const cpu = clusterCpu(ok, t.cluster.brokers.length);
        t.results.set(name, { value: median(ok.map((x) => x.r.mbPerSec)), samples: ok.map((x) => x.r.mbPerSec), ...cpu });
        const total = ok.reduce((a, x) => a + x.brokerCpu, 0);
        t.results.set(tagged(clusterNames.cpu, d), { value: total / ((spec.records * 1024 * ok.length) / 1e9), samples: ok.map((x) => x.brokerCpu / ((spec.records * 1024) / 1e9)), ...cpuFieldsOf(t.results.get(name)) });
        maxRate.set(t.system, median(ok.map((x) => x.r.recordsPerSec)));
      }

      // Latency at a fixed rate: half of Kafka's maximum on the row above (Runnel's own without Kafka).
      const max = maxRate.get('Kafka') ?? (o.art ? undefined : maxRate.get('Runnel'));
      const rate = max ? Math.round(max / 2) : null;
      const fixedTopic = `bench-cluster-fixed-${d.name}`;
      const fixed = { ...spec, topic: fixedTopic, records: Math.max(100, Math.round((rate ?? 0) * o.fixedRateSeconds)), throughput: rate ?? 1 };
      const p50 = tagged(clusterNames.p50, d);
      const p99 = tagged(clusterNames.p99, d);
      o.log(`${tagged('fixed-rate latency', d)} at ${rate} records/s`);
      if (!rate) {
        for (const t of targets) { const e = failed(new Error('no maximum rate to take half of (the produce row failed on Kafka)')); t.results.set(p50, e); t.results.set(p99, e); }
      } else {
        for (const t of targets) await createReplicatedTopic(t.admin, fixedTopic, 3).catch((err: Error) => { t.results.set(p50, failed(err)); t.results.set(p99, failed(err)); });
        const lat = await interleaved(targets.filter((t) => !t.results.has(p50)), o.runs, o.warmup ? (t) => d.produce(t.cluster.bootstrap, { ...fixed, records: Math.ceil(fixed.records / 4) }) : null, (t) => d.produce(t.cluster.bootstrap, fixed), o.log);
        for (const [t, list] of lat) {
          const err = list.find((x): x is Error => x instanceof Error);
          const ok = list.filter((x): x is { r: ProduceResult; brokerCpu: number } => !(x instanceof Error));
          if (err || ok.length === 0) { t.results.set(p50, failed(err)); t.results.set(p99, failed(err)); continue; }
          const cpu = clusterCpu(ok, t.cluster.brokers.length);
          t.results.set(p50, { value: median(ok.map((x) => x.r.p50Ms)), samples: ok.map((x) => x.r.p50Ms), ...cpu });
          t.results.set(p99, { value: median(ok.map((x) => x.r.p99Ms)), samples: ok.map((x) => x.r.p99Ms), ...cpu });
        }
      }
    }

    // Failover last. The measured topics go first, so a restarted broker has little to catch up on
    // while the next run is measured.
    o.log(clusterNames.failover);
    for (const t of targets) {
      const names = o.drivers.flatMap((d) => [`bench-cluster-${d.name}`, `bench-cluster-fixed-${d.name}`]);
      await t.admin.deleteTopics(names, { ignoreMissing: true }).catch((err: Error) => o.log(`${t.system}: deleting the produce topics: ${err.message}`));
    }
    const failovers = new Map<Target, number[]>(targets.map((t) => [t, []]));
    for (let i = 0; i < o.failoverRuns; i++) {
      for (const t of i % 2 === 0 ? targets : [...targets].reverse()) {
        if (t.results.has(clusterNames.failover)) continue;
        try {
          const f = await failoverOnce(t.cluster, `bench-failover-${i}`);
          const what = `${t.system}: leader ${f.oldLeader} killed, acks=all produce acknowledged after ${Math.round(f.ms)} ms (new leader ${f.newLeader}, ${f.failedSends} failed sends)`;
          o.log(what);
          notes.push(`Failover run ${i + 1}, ${what}.`);
          failovers.get(t)!.push(f.ms);
          // Back to three brokers for the next run (its topic waits for a full ISR).
          if (i + 1 < o.failoverRuns) t.cluster.restart(f.oldLeader);
        } catch (err) {
          o.log(`${t.system}: failover: ${(err as Error).message}`);
          t.results.set(clusterNames.failover, failed(err));
        }
      }
    }
    for (const [t, samples] of failovers) if (!t.results.has(clusterNames.failover)) t.results.set(clusterNames.failover, { value: median(samples), samples });
  } finally {
    for (const t of targets) {
      await t.admin.close().catch(() => {});
      await t.cluster.stop();
    }
  }

  const rows: CompareRow[] = [];
  const cell = (system: SystemName, name: string): Cell | null => {
    if (!results.has(system)) return null;
    return results.get(system)!.get(name) ?? failed(startErrors.get(system) ?? new Error('not measured'));
  };
  const add = (name: string, unit: string, better: 'higher' | 'lower') => rows.push({ name, unit, better, kafka: cell('Kafka', name), runnel: cell('Runnel', name)! });
  for (const d of o.drivers) {
    add(tagged(clusterNames.produce, d), 'MB/s', 'higher');
    add(tagged(clusterNames.p50, d), 'ms', 'lower');
    add(tagged(clusterNames.p99, d), 'ms', 'lower');
  }
  for (const d of o.drivers) add(tagged(clusterNames.cpu, d), 'CPU s/GB', 'lower');
  add(clusterNames.idle, 'cores', 'lower');
  add(clusterNames.failover, 'ms', 'lower');

  // Before the per-run failover notes gathered above.
  notes.unshift(
    `${o.art ? 'Both clusters' : 'The Runnel cluster (Apache Kafka was not run)'}: ${CLUSTER_BROKERS} brokers on 127.0.0.1, topics with replication factor ${REPLICATION_FACTOR} and min.insync.replicas=${MIN_INSYNC}, producers with acks=all; log.segment.bytes=1 GiB, no fsync (flush left to the OS); broker.session.timeout.ms=9000 and broker.heartbeat.interval.ms=2000 (both defaults).`,
    `Runnel: \`runnel cluster up --brokers 3\` (Redis for metadata, a controller, 3 brokers and a coordinator, each its own process).${o.art ? ' Kafka: a dedicated KRaft controller JVM (-Xmx512m) and 3 broker JVMs (-Xms1g -Xmx1g, G1), a static one-voter quorum.' : ''}`,
    `Produce rows: ${o.records.toLocaleString('en-US')} records of 1 KB per run over 3 partitions (one leader per broker); ${o.warmup ? 'one warm-up run, then ' : ''}the median of ${o.runs} run${o.runs > 1 ? 's' : ''}${o.art ? ", the clusters' runs interleaved" : ''}. Fixed-rate latency: half of ${o.art ? "Kafka's" : "Runnel's"} maximum rate on the produce row, ${o.fixedRateSeconds} s per run, send to acknowledgement as kafka-producer-perf-test reports it.`,
    'Broker CPU per GB and broker CPU cores: CPU seconds of the 3 broker processes summed (not the controllers, Redis or Runnel\'s coordinator: none is on the produce path), over all measured runs together.',
    `Failover (${o.failoverRuns} run${o.failoverRuns > 1 ? 's' : ''} per cluster, ${o.art ? 'interleaved, ' : ''}median; after each the killed broker is started again with its command line and data, and the next run's topic waits for a full ISR): a new 1-partition RF 3 topic per run; one @runnel/client loop (${o.art ? 'the same code against both' : 'the same code as against Kafka'}) sends one 1 KB acks=all record at a time, bootstrapped from the two brokers that survive; after 3 s the partition leader gets SIGKILL; after a failed send the loop refreshes metadata and sends again 20 ms later. Measured: from the kill to the acknowledgement of the first send started after it. It includes the controller's detection of the dead broker (on both, by default, a missed-heartbeat session of up to 9 s) and the election of a new leader from the ISR.`,
  );
  return { rows, notes };
}
