/**
 * Apache Kafka from the official artifacts on Maven Central: the broker (org.apache.kafka:kafka_2.13)
 * and the perf tools (org.apache.kafka:kafka-tools) with their runtime dependencies, fetched once
 * with `mvn dependency:copy-dependencies` into `.cache/kafka/<version>/libs` (git-ignored) and run as
 * `java -cp <libs>/* <main class>`. The broker is a single-node KRaft cluster (broker and controller
 * in one JVM, like `bin/kafka-server-start.sh config/server.properties`); the cluster suite's
 * replicated cluster is one controller JVM and N broker JVMs (`clusterNodeProperties`).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, spawnGroup, type Proc } from './proc.ts';

export interface KafkaArtifacts {
  version: string;
  /** The `-cp` value: every jar of the broker and the tools. */
  classpath: string;
}

const CENTRAL = 'https://repo.maven.apache.org/maven2/org/apache/kafka';

/** Newest first: release versions of `artifact` on Maven Central, or [] if the network is down. */
async function centralVersions(artifact: string): Promise<string[]> {
  try {
    const res = await fetch(`${CENTRAL}/${artifact}/maven-metadata.xml`, { signal: AbortSignal.timeout(15_000) });
    if (!res.ok) return [];
    const xml = await res.text();
    return [...xml.matchAll(/<version>([\d.]+)<\/version>/g)].map((m) => m[1]!).sort(compareVersions).reverse();
  } catch {
    return [];
  }
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function pom(version: string): string {
  const dep = (a: string) => `<dependency><groupId>org.apache.kafka</groupId><artifactId>${a}</artifactId><version>${version}</version></dependency>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.runnel.bench</groupId>
  <artifactId>kafka-${version}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>${dep('kafka_2.13')}${dep('kafka-tools')}</dependencies>
</project>
`;
}

/**
 * The Kafka jars, fetched if not cached: `wanted` if given, else the newest 4.x (or 3.9.x) whose
 * broker and tools both resolve (a release can be half-published on Central for a while).
 */
export async function kafkaArtifacts(cacheDir: string, wanted: string | null, log: (s: string) => void): Promise<KafkaArtifacts> {
  const cached = (v: string) => existsSync(join(cacheDir, v, 'libs', '.complete'));
  const artifactsOf = (v: string): KafkaArtifacts => ({ version: v, classpath: `${join(cacheDir, v, 'libs')}/*` });
  let candidates: string[];
  if (wanted) {
    candidates = [wanted];
  } else {
    const [server, tools] = await Promise.all([centralVersions('kafka_2.13'), centralVersions('kafka-tools')]);
    candidates = server.filter((v) => tools.includes(v) && (v.startsWith('4.') || v.startsWith('3.9.')));
    if (candidates.length === 0) {
      // Offline: the newest version already in the cache.
      const local = existsSync(cacheDir) ? readdirSync(cacheDir).filter(cached).sort(compareVersions).reverse() : [];
      candidates = local.length ? local : ['4.1.1', '3.9.1'];
    }
  }
  const errors: string[] = [];
  for (const v of candidates.slice(0, 4)) {
    if (cached(v)) return artifactsOf(v);
    const dir = join(cacheDir, v);
    const libs = join(dir, 'libs');
    rmSync(libs, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'pom.xml'), pom(v));
    log(`fetching Apache Kafka ${v} (kafka_2.13 + kafka-tools) from Maven Central into ${libs}`);
    try {
      await run('mvn', ['-q', '-B', '-f', join(dir, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`, '-DincludeScope=runtime'], { timeoutMs: 300_000 });
      writeFileSync(join(libs, '.complete'), `${new Date().toISOString()}\n`);
      return artifactsOf(v);
    } catch (err) {
      errors.push(`${v}: ${(err as Error).message.slice(0, 300)}`);
    }
  }
  throw new Error(`no Kafka version resolved on Maven Central: ${errors.join('; ')}`);
}

export interface KafkaBroker {
  readonly bootstrap: string;
  readonly proc: Proc;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface KafkaSettings {
  port: number;
  controllerPort: number;
  dataDir: string;
  segmentBytes: number;
  heap: string;
}

/** server.properties for a combined broker+controller KRaft node; fsync is left to the OS as in Kafka's defaults. */
export function serverProperties(s: KafkaSettings): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${s.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${s.port},CONTROLLER://127.0.0.1:${s.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${s.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'num.partitions=1',
    `log.segment.bytes=${s.segmentBytes}`,
    `log.dirs=${join(s.dataDir, 'logs')}`,
    '',
  ].join('\n');
}

export interface KafkaClusterNode {
  role: 'controller' | 'broker';
  nodeId: number;
  /** The Kafka listener (brokers) or the CONTROLLER listener (the controller). */
  port: number;
  controllerPort: number;
  dataDir: string;
  segmentBytes: number;
  /** Brokers in the cluster: replication defaults are min(3, brokers) replicas, min.insync.replicas 2. */
  brokers: number;
}

/**
 * server.properties for one node of a replicated KRaft cluster: one dedicated controller (node 0,
 * a static one-voter quorum, like Runnel's single controller) and brokers 1..N. The replication
 * defaults are the ones `runnel cluster up` gives its nodes, so both clusters run the same topic
 * settings for internal topics too.
 */
export function clusterNodeProperties(n: KafkaClusterNode): string {
  const common = [
    `node.id=${n.nodeId}`,
    `controller.quorum.voters=0@127.0.0.1:${n.controllerPort}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${join(n.dataDir, 'logs')}`,
  ];
  if (n.role === 'controller') {
    return [...common, 'process.roles=controller', `listeners=CONTROLLER://127.0.0.1:${n.port}`, ''].join('\n');
  }
  const rf = Math.min(3, n.brokers);
  const isr = Math.max(1, Math.min(2, n.brokers - 1));
  return [
    ...common,
    'process.roles=broker',
    `listeners=PLAINTEXT://127.0.0.1:${n.port}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${n.port}`,
    'inter.broker.listener.name=PLAINTEXT',
    `default.replication.factor=${rf}`,
    `offsets.topic.replication.factor=${rf}`,
    `min.insync.replicas=${isr}`,
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${isr}`,
    `share.coordinator.state.topic.replication.factor=${rf}`,
    `share.coordinator.state.topic.min.isr=${isr}`,
    'group.initial.rebalance.delay.ms=0',
    'num.partitions=1',
    `log.segment.bytes=${n.segmentBytes}`,
    '',
  ].join('\n');
}

/** A cluster id for StorageTool: 16 random bytes, base64url, not starting with '-' (it would read as an option). */
export function newClusterId(): string {
  let id = randomBytes(16).toString('base64url');
  while (id.startsWith('-')) id = randomBytes(16).toString('base64url');
  return id;
}

/** Writes one cluster node's config and formats its storage with the cluster's id (static quorum: no --standalone). */
export async function formatClusterNode(art: KafkaArtifacts, n: KafkaClusterNode, clusterId: string): Promise<string> {
  mkdirSync(n.dataDir, { recursive: true });
  const file = join(n.dataDir, 'server.properties');
  writeFileSync(file, clusterNodeProperties(n));
  await run('java', ['-cp', art.classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', file], { timeoutMs: 60_000 });
  return file;
}

/** Writes the config and formats the storage directory (not part of any timed measurement). */
export async function formatKafka(art: KafkaArtifacts, s: KafkaSettings): Promise<string> {
  mkdirSync(s.dataDir, { recursive: true });
  const file = join(s.dataDir, 'server.properties');
  writeFileSync(file, serverProperties(s));
  await run('java', ['-cp', art.classpath, 'kafka.tools.StorageTool', 'format', '-t', newClusterId(), '-c', file, '--standalone'], { timeoutMs: 60_000 });
  return file;
}

/** Spawns the broker JVM; the caller probes readiness (the JVM logs nothing without an SLF4J binding). */
export function spawnKafka(art: KafkaArtifacts, s: Pick<KafkaSettings, 'port' | 'heap'>, configFile: string): KafkaBroker {
  // kafka-server-start.sh's defaults (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS).
  const jvm = [`-Xms${s.heap}`, `-Xmx${s.heap}`, '-server', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:InitiatingHeapOccupancyPercent=35', '-XX:+ExplicitGCInvokesConcurrent', '-Djava.awt.headless=true'];
  const proc = spawnGroup('java', [...jvm, '-cp', art.classpath, 'kafka.Kafka', configFile]);
  return {
    bootstrap: `127.0.0.1:${s.port}`,
    proc,
    pid: proc.pid,
    async stop() { await proc.stop(15_000); },
  };
}
