/**
 * `--suite tls`: produce and consume over TLS, Runnel next to Apache Kafka (issue 16). Each system
 * runs one node with a PLAINTEXT listener (readiness and topics, through @runnel/client, which has
 * no TLS) and an SSL listener with the same PEM key material from deploy/make-ca.sh (EC P-256,
 * server authentication only, as most deployments run it); Kafka's own perf tools
 * (ProducerPerformance, ConsumerPerformance) drive both over SSL with a PEM truststore, so the
 * client side is the same JVM TLS stack for both brokers. Runs alternate between the systems; the
 * median of `runs` is reported. Needs Java and Maven (the tools); without them the rows fail with
 * the reason.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median } from '../lib/report.ts';
import { connectWhenReady, createTopic, freePort, type RunningBroker, type SystemName } from './brokers.ts';
import { parseConsumerPerformance, parseProducerPerformance } from './drivers.ts';
import { formatKafka, spawnKafka, type KafkaArtifacts } from './kafka.ts';
import type { Cell, CompareRow } from './output.ts';
import { run, spawnGroup } from './proc.ts';

export interface TlsSuiteOptions {
  root: string;
  workDir: string;
  art: KafkaArtifacts | null;
  log: (s: string) => void;
  /** 1 KB records per run. */
  records: number;
  runs: number;
  warmup: boolean;
}

export const tlsNames = {
  produce: 'produce 1 KB over TLS, acks=1, no compression, 1 partition',
  consume: 'consume 1 KB over TLS, 1 partition',
};

const MB = 1e6;
const MIB = 1024 * 1024;
const failed = (err: unknown): Cell => ({ value: null, samples: [], error: (err as Error)?.message ?? String(err) });

interface TlsBroker extends RunningBroker { sslBootstrap: string }

async function startRunnel(root: string, dir: string, certs: string): Promise<TlsBroker> {
  const [port, sslPort] = [await freePort(), await freePort()];
  mkdirSync(dir, { recursive: true });
  const proc = spawnGroup(process.execPath, [
    join(root, 'packages/cli/bin/runnel.ts'), 'start',
    '--set', `listeners=PLAINTEXT://127.0.0.1:${port},SSL://127.0.0.1:${sslPort}`,
    '--set', `ssl.keystore.location=${join(certs, 'broker.pem')}`,
    '--set', `log.dirs=${join(dir, 'logs')}`,
    '--set', 'num.partitions=1',
    '--set', `log.segment.bytes=${1024 * 1024 * 1024}`,
    '--set', 'group.initial.rebalance.delay.ms=0',
  ], { cwd: root, env: { RUNNEL_LOG_LEVEL: 'info' } });
  return { system: 'Runnel', bootstrap: `127.0.0.1:${port}`, sslBootstrap: `127.0.0.1:${sslPort}`, pid: proc.pid, proc, stop: async () => { await proc.stop(15_000); } };
}

async function startKafka(art: KafkaArtifacts, dir: string, certs: string): Promise<TlsBroker> {
  const [port, controllerPort, sslPort] = [await freePort(), await freePort(), await freePort()];
  const settings = { port, controllerPort, dataDir: dir, segmentBytes: 1024 * 1024 * 1024, heap: '1g' };
  const file = await formatKafka(art, settings);
  // The formatted node's properties, with an SSL listener next to PLAINTEXT (format read only the node and controller keys).
  const props = readFileSync(file, 'utf8')
    .replace(/^listeners=PLAINTEXT:\/\/([^,\n]+),/m, `listeners=PLAINTEXT://$1,SSL://127.0.0.1:${sslPort},`)
    .replace(/^advertised\.listeners=(.*)$/m, `advertised.listeners=$1,SSL://127.0.0.1:${sslPort}`)
    .replace(/^listener\.security\.protocol\.map=(.*)$/m, 'listener.security.protocol.map=$1,SSL:SSL')
    + ['ssl.keystore.type=PEM', `ssl.keystore.location=${join(certs, 'broker.pem')}`, ''].join('\n');
  writeFileSync(file, props);
  const k = spawnKafka(art, settings, file);
  return { system: 'Kafka', bootstrap: k.bootstrap, sslBootstrap: `127.0.0.1:${sslPort}`, pid: k.pid, proc: k.proc, stop: () => k.stop() };
}

export async function tlsSuite(o: TlsSuiteOptions): Promise<{ rows: CompareRow[]; notes: string[] }> {
  const notes: string[] = [];
  const rows: CompareRow[] = [
    { name: tlsNames.produce, unit: 'MB/s', better: 'higher', kafka: null, runnel: failed(new Error('not measured')) },
    { name: tlsNames.consume, unit: 'MB/s', better: 'higher', kafka: null, runnel: failed(new Error('not measured')) },
  ];
  if (!o.art) {
    const why = new Error('the TLS rows are driven by Kafka\'s perf tools: they need Java 17+ and Maven');
    rows[0]!.runnel = failed(why);
    rows[1]!.runnel = failed(why);
    return { rows, notes: [why.message] };
  }
  const art = o.art;
  const certs = join(o.workDir, 'tls');
  const ca = spawnSync(join(o.root, 'deploy/make-ca.sh'), [certs, 'broker'], { encoding: 'utf8' });
  if (ca.status !== 0) throw new Error(`deploy/make-ca.sh failed: ${ca.stderr}`);
  const clientConfig = join(certs, 'client-ssl.properties');
  const clientProps = ['security.protocol=SSL', 'ssl.truststore.type=PEM', `ssl.truststore.location=${join(certs, 'ca.crt')}`];
  writeFileSync(clientConfig, `${clientProps.join('\n')}\n`);
  const java = (mainClass: string, args: string[]) => run('java', ['-Xms256m', '-Xmx1g', '-cp', art.classpath, mainClass, ...args], { timeoutMs: 180_000 });

  const systems: SystemName[] = ['Kafka', 'Runnel'];
  const brokers = new Map<SystemName, TlsBroker>();
  const samples = new Map<string, number[]>();
  const add = (key: string, v: number) => samples.set(key, [...(samples.get(key) ?? []), v]);
  const errors = new Map<string, string>();
  try {
    for (const system of systems) {
      const dir = join(o.workDir, `tls-${system.toLowerCase()}`);
      const b = system === 'Kafka' ? await startKafka(art, dir, certs) : await startRunnel(o.root, dir, certs);
      brokers.set(system, b);
      const admin = await connectWhenReady(b);
      try {
        await createTopic(admin, 'bench-tls', 1);
      } finally {
        await admin.close();
      }
    }
    let topicRun = 0;
    const produce = async (b: TlsBroker, records: number) => {
      const r = await java('org.apache.kafka.tools.ProducerPerformance', [
        '--topic', 'bench-tls', '--num-records', String(records), '--record-size', '1024', '--throughput', '-1',
        '--producer-props', `bootstrap.servers=${b.sslBootstrap}`, 'acks=1', 'linger.ms=5', 'batch.size=65536', ...clientProps,
      ]);
      const p = parseProducerPerformance(r.output);
      return (p.recordsPerSec * 1024) / MB;
    };
    const consume = async (b: TlsBroker, records: number) => {
      const r = await java('org.apache.kafka.tools.ConsumerPerformance', [
        '--bootstrap-server', b.sslBootstrap, '--topic', 'bench-tls', '--messages', String(records), '--timeout', '30000',
        '--consumer.config', clientConfig, '--group', `bench-tls-${topicRun++}`,
      ]);
      const c = parseConsumerPerformance(r.output);
      if (c.consumed < records) throw new Error(`consumed ${c.consumed} of ${records} records`);
      return (c.fetchMiBPerSec * MIB) / MB;
    };
    for (let i = (o.warmup ? -1 : 0); i < o.runs; i++) {
      // Alternate which system goes first, so neither always runs on the warmer machine.
      const order = i % 2 === 0 ? systems : [...systems].reverse();
      for (const system of order) {
        const b = brokers.get(system)!;
        for (const [row, fn] of [[tlsNames.produce, produce], [tlsNames.consume, consume]] as const) {
          const key = `${system}\u0000${row}`;
          if (errors.has(key)) continue;
          try {
            const v = await fn(b, i < 0 ? Math.ceil(o.records / 4) : o.records);
            if (i >= 0) add(key, v);
          } catch (err) {
            errors.set(key, (err as Error).message);
          }
        }
        o.log(`tls: ${system} run ${i < 0 ? 'warm-up' : i + 1}`);
      }
    }
  } catch (err) {
    for (const row of rows) for (const system of systems) if (!samples.has(`${system}\u0000${row.name}`)) errors.set(`${system}\u0000${row.name}`, (err as Error).message);
  } finally {
    for (const b of brokers.values()) await b.stop();
  }
  const cell = (system: SystemName, row: string): Cell => {
    const key = `${system}\u0000${row}`;
    const xs = samples.get(key) ?? [];
    if (xs.length === 0) return failed(new Error(errors.get(key) ?? 'not measured'));
    return { value: median(xs), samples: xs };
  };
  for (const row of rows) {
    row.kafka = cell('Kafka', row.name);
    row.runnel = cell('Runnel', row.name);
  }
  notes.push(`TLS rows: one node each with an SSL listener (PEM, EC P-256 certificate from deploy/make-ca.sh, no client certificate), ${o.records.toLocaleString('en-US')} records of 1 KB per run, median of ${o.runs} runs${o.warmup ? ' after a warm-up run' : ''}, driven by Kafka's ProducerPerformance and ConsumerPerformance over SSL for both.`);
  return { rows, notes };
}
