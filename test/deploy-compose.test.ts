// The compose files' topologies run as local processes: every service's command starts as it would
// in its container (the image's ENTRYPOINT, ENV and WORKDIR from deploy/Dockerfile, the service's
// command and environment from the compose file), with container host names mapped to 127.0.0.1,
// each (service, container port) to a free local port and each volume to a temp dir. Kafka clients
// then use the addresses a client on the Docker host would (the EXTERNAL listeners' published
// ports) and a client inside the compose network would (INTERNAL). A key the CLI does not know, a
// role that does not start or stay healthy, or a listener advertised wrongly fails the test: the
// compose files and the real CLI cannot drift apart.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { CORE_SCHEMA, load, mergeTag } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKcat } from './helpers/kcat.ts';
import { kafkaTools } from './helpers/kafka-tools.ts';
import { freePort } from './helpers/ports.ts';
import { startProcess, type Started } from './helpers/process.ts';
import { until } from './helpers/until.ts';
import { loadConfig } from '../packages/cli/src/config.ts';
import { listenerOptions } from '@runnel/kafka-server';
import { RpcClient, RpcError, RpcTls } from '@runnel/rpc';

const repo = join(import.meta.dirname, '..');
/** A host:port inside a value (`INTERNAL://broker-1:19092`, `redis://redis:6379`, `0.0.0.0:9192`). */
const HOST_PORT = /(^|[/,=@\s])([A-Za-z0-9_.-]*):(\d+)(?=$|[,/\s])/g;

interface Service {
  image?: string;
  build?: unknown;
  hostname?: string;
  command?: string[];
  environment?: Record<string, string | number | boolean>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test: string[] };
}

/** What the runtime stage of deploy/Dockerfile gives every container. */
interface ImageConfig {
  env: Record<string, string>;
  workdir: string;
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
  volumes: string[];
}

/** Reads the last stage of the Dockerfile: ENV, WORKDIR, ENTRYPOINT, CMD, HEALTHCHECK, VOLUME. */
function imageConfig(): ImageConfig {
  const text = readFileSync(join(repo, 'deploy/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const last = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  const out: ImageConfig = { env: {}, workdir: '/', entrypoint: [], cmd: [], healthcheck: [], volumes: [] };
  for (const line of lines.slice(last + 1)) {
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(line)!;
    if (op === 'ENV') for (const [, k, v] of args!.matchAll(/([A-Za-z_]\w*)=(\S+)/g)) out.env[k!] = v!;
    if (op === 'WORKDIR') out.workdir = posix.resolve(out.workdir, args!);
    if (op === 'ENTRYPOINT') out.entrypoint = JSON.parse(args!);
    if (op === 'CMD') out.cmd = JSON.parse(args!);
    if (op === 'VOLUME') out.volumes = args!.split(/\s+/);
    if (op === 'HEALTHCHECK') out.healthcheck = JSON.parse(/CMD\s+(\[.*\])$/.exec(args!)![1]!);
  }
  return out;
}

/** Prometheus and Grafana: checked through their configuration files, not run. */
function isMonitoring(s: Service): boolean {
  return s.image?.startsWith('prom/prometheus:') === true || s.image?.startsWith('grafana/grafana:') === true;
}

function readCompose(file: string): Record<string, Service> {
  const doc = load(readFileSync(join(repo, file), 'utf8'), { schema: CORE_SCHEMA.withTags(mergeTag) }) as { services: Record<string, Service> };
  return doc.services;
}

/**
 * Compose's interpolation with `vars` as the environment of `docker compose up`: `${VAR}`,
 * `${VAR:-default}`, and `${VAR:?message}`, which fails when VAR is unset, as compose does.
 */
function interpolate(value: string, vars: Readonly<Record<string, string>> = {}): string {
  return value.replace(/\$\{([A-Za-z_]\w*)(?::?([-?])([^}]*))?\}/g, (_all, name: string, op?: string, arg?: string) => {
    if (vars[name] !== undefined && vars[name] !== '') return vars[name];
    if (op === '?') throw new Error(`compose would refuse to start: ${name} is unset (${arg})`);
    return op === '-' ? arg! : '';
  });
}

/** One compose file's services running as local processes, and the address mapping between the two worlds. */
class Topology {
  readonly image = imageConfig();
  readonly services: Record<string, Service>;
  readonly processes = new Map<string, Started>();
  readonly #ports = new Map<string, number>();
  readonly file: string;
  /** Bind mounts' host paths (`./tls`) to the local directories standing in for them. */
  readonly #binds: Record<string, string>;
  #dir = '';

  /** Variables set where `docker compose up` runs (`${VAR}` in the file). */
  readonly vars: Readonly<Record<string, string>>;

  constructor(file: string, binds: Record<string, string> = {}, vars: Record<string, string> = {}) {
    this.file = file;
    this.services = readCompose(file);
    this.#binds = binds;
    this.vars = vars;
  }

  /** The local port standing in for `port` inside `service`'s container. */
  async port(service: string, port: number): Promise<number> {
    const key = `${service}:${port}`;
    if (!this.#ports.has(key)) {
      // The kernel may hand a just-released port out again: two services must not share one.
      let free = await freePort();
      while ([...this.#ports.values()].includes(free)) free = await freePort();
      if (!this.#ports.has(key)) this.#ports.set(key, free);
    }
    return this.#ports.get(key)!;
  }

  /** The service that `host` names on the compose network (a service name or a hostname). */
  serviceNamed(host: string): string | undefined {
    return Object.keys(this.services).find((s) => s === host || this.services[s]!.hostname === host);
  }

  /** The service and container port that publish `hostPort` on the Docker host. */
  published(hostPort: number): [string, number] | undefined {
    for (const [name, s] of Object.entries(this.services)) {
      for (const p of s.ports ?? []) {
        const [h, c] = String(p).split(':').map(Number);
        if (h === hostPort) return [name, c ?? h!];
      }
    }
    return undefined;
  }

  /**
   * A value as `service` sees it in its container, rewritten for this machine: host:port pairs
   * become 127.0.0.1 and the mapped port (0.0.0.0 and, `inside` a container, localhost mean the
   * service itself; otherwise localhost is the Docker host and its published ports), volume paths
   * become temp dirs. A host:port naming nothing in the file fails: the file would not work either.
   */
  async map(service: string, value: string, inside = false): Promise<string> {
    let out = value;
    for (const target of this.#volumeTargets(service)) if (out.includes(target)) out = out.split(target).join(this.#volumeDir(service, target));
    const pairs = [...out.matchAll(HOST_PORT)];
    const replacements: string[] = [];
    for (const m of pairs) {
      const [, , host, portText] = m;
      const port = Number(portText);
      let to: [string, number] | undefined;
      if (host === '' || host === '0.0.0.0') to = [service, port];
      else if (host === 'localhost' || host === '127.0.0.1') to = inside ? [service, port] : this.published(port);
      else if (this.serviceNamed(host!)) to = [this.serviceNamed(host!)!, port];
      if (!to) throw new Error(`${this.file}: ${service} refers to ${host}:${port}, which no service provides (in ${JSON.stringify(value)})`);
      replacements.push(`127.0.0.1:${await this.port(to[0], to[1])}`);
    }
    let i = 0;
    return out.replace(HOST_PORT, (_all, lead: string) => lead + replacements[i++]);
  }

  #volumeTargets(service: string): string[] {
    const s = this.services[service]!;
    const own = (s.volumes ?? []).map((v) => String(v).split(':')[1]!);
    return [...new Set([...own, ...(s.image === 'runnel:local' ? this.image.volumes : [])])];
  }

  #volumeDir(service: string, target: string): string {
    const source = (this.services[service]!.volumes ?? []).map((v) => String(v).split(':')).find(([, t]) => t === target)?.[0];
    if (source !== undefined && /^[./]/.test(source)) {
      // A bind mount: every service sees the same host directory, which the test must provide.
      if (!this.#binds[source]) throw new Error(`${this.file}: ${service} mounts ${source}, which the test did not provide`);
      return this.#binds[source];
    }
    return join(this.#dir, service, target.replace(/[^A-Za-z0-9]+/g, '_'));
  }

  /** Services in an order that satisfies depends_on. */
  order(): string[] {
    const done: string[] = [];
    const visit = (name: string, path: string[]) => {
      if (done.includes(name)) return;
      if (path.includes(name)) throw new Error(`${this.file}: depends_on cycle ${[...path, name].join(' -> ')}`);
      for (const dep of Object.keys(this.services[name]!.depends_on ?? {})) visit(dep, [...path, name]);
      done.push(name);
    };
    for (const name of Object.keys(this.services)) visit(name, []);
    return done;
  }

  /** The environment a runnel container gets: the image's ENV, then the service's, mapped. */
  async env(service: string): Promise<Record<string, string>> {
    const s = this.services[service]!;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...this.image.env, ...s.environment })) env[k] = await this.map(service, interpolate(String(v), this.vars));
    return env;
  }

  /** The health check Docker would run in `service`'s container, as a local command. */
  async healthcheck(service: string): Promise<string[]> {
    const test = this.services[service]!.healthcheck?.test ?? ['CMD', ...this.image.healthcheck];
    expect(test[0], `${service}: healthcheck test form`).toBe('CMD');
    return Promise.all(test.slice(1).map((a) => this.map(service, a, true)));
  }

  /** start(), and on failure cleanup() before the error goes on (for beforeAll). */
  async up(): Promise<void> {
    try {
      await this.start();
    } catch (e) {
      await this.cleanup();
      throw e;
    }
  }

  async start(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'runnel-compose-'));
    for (const name of this.order()) {
      const s = this.services[name]!;
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        if (condition === 'service_healthy') await this.waitHealthy(dep);
      }
      if (s.image?.startsWith('redis:')) await this.#startRedis(name, s);
      else if (s.image === 'runnel:local') await this.#startRunnel(name, s);
      // Monitoring images are not run: the tests check their configuration against the running roles.
      else if (isMonitoring(s)) continue;
      else throw new Error(`${this.file}: ${name} uses image ${s.image}, which this test cannot run as a process`);
    }
  }

  /** What redis-cli gets in `service`'s container: its environment (REDISCLI_AUTH when the file sets a password). */
  #redisCliEnv(service: string): NodeJS.ProcessEnv {
    const own = Object.entries(this.services[service]!.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), this.vars)]);
    return { ...process.env, ...Object.fromEntries(own) };
  }

  async #startRedis(name: string, s: Service): Promise<void> {
    const [command, ...args] = (s.command ?? ['redis-server']).map((a) => interpolate(a, this.vars));
    expect(command).toBe('redis-server');
    const port = await this.port(name, 6379);
    // The redis image runs in /data (its volume); the compose file's own flags come first.
    const dataDir = this.#volumeDir(name, '/data');
    mkdirSync(dataDir, { recursive: true });
    this.processes.set(name, await startProcess('redis-server', [...args, '--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--daemonize', 'no'], { ready: /ready to accept connections/i, timeoutMs: 15_000 }));
  }

  async #startRunnel(name: string, s: Service): Promise<void> {
    const [node, script] = this.image.entrypoint;
    expect(node).toBe('node');
    const args = await Promise.all((s.command ?? this.image.cmd).map((a) => this.map(name, a)));
    const env = await this.env(name);
    // Nothing from this machine's own KAFKA_* environment leaks in: the container would not have it.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KAFKA_')));
    const role = args[0] === 'start' ? '' : ` ${args[0]}`;
    const started = await startProcess(process.execPath, [join(repo, script!), ...args], {
      cwd: repo, // the image's WORKDIR holds the repository's layout
      env: { ...base, ...env },
      ready: new RegExp(`"runnel${role} is ready"`),
      timeoutMs: 60_000,
    });
    this.processes.set(name, started);
    // The CLI only warns about a key it does not know (as Kafka does); here that is a failure. The
    // CLI's own loadConfig reads the same command line and environment.
    const set = args.flatMap((a, i) => (args[i - 1] === '--set' ? [a] : []));
    const { unknown } = loadConfig({ set }, env);
    if (unknown.length > 0) throw new Error(`${this.file}: ${name} sets configuration the CLI does not know: ${unknown.join(', ')}`);
  }

  /** Runs the service's health check until it passes; fails with its last output after 30 s. */
  async waitHealthy(service: string): Promise<void> {
    if (this.services[service]!.image?.startsWith('redis:')) {
      const port = await this.port(service, 6379);
      await until(`${service} to answer PING`, () => spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8', env: this.#redisCliEnv(service) }).stdout.trim() === 'PONG', 15_000);
      return;
    }
    const [cmd, ...args] = await this.healthcheck(service);
    const env = { ...process.env, ...(await this.env(service)) };
    let last = '';
    await until(`${service}'s health check`, () => {
      const r = spawnSync(cmd === 'node' ? process.execPath : cmd!, args, { cwd: repo, env, encoding: 'utf8', timeout: 10_000 });
      last = `${r.status} ${r.stderr}`;
      return r.status === 0;
    }, 30_000).catch((e: Error) => { throw new Error(`${e.message}: ${last}`); });
  }

  /** SIGTERM in reverse start order; every runnel process must exit 0. */
  async stop(): Promise<Record<string, number | string>> {
    const codes: Record<string, number | string> = {};
    for (const name of [...this.processes.keys()].reverse()) {
      const p = this.processes.get(name)!;
      if (this.services[name]!.image?.startsWith('redis:')) {
        spawnSync('redis-cli', ['-p', String(await this.port(name, 6379)), 'shutdown', 'nosave'], { env: this.#redisCliEnv(name) });
      }
      codes[name] = await p.stop(15_000);
    }
    this.processes.clear();
    return codes;
  }

  async cleanup(): Promise<void> {
    for (const p of this.processes.values()) await p.stop(2_000);
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
  }

  output(): string {
    return [...this.processes].map(([n, p]) => `--- ${n}\n${p.output()}`).join('\n');
  }
}

interface KcatMetadata { brokers: { id: number; name: string }[]; topics: { topic: string; partitions: { replicas: { id: number }[] }[] }[] }

async function metadata(bootstrap: string, topic?: string): Promise<KcatMetadata> {
  const r = await runKcat(['-b', bootstrap, '-L', '-J', ...(topic ? ['-t', topic] : [])]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as KcatMetadata;
}

describe('deploy/docker-compose.cluster.yml as local processes', () => {
  const t = new Topology('deploy/docker-compose.cluster.yml');
  const byRole = (role: string) => Object.keys(t.services).filter((n) => t.services[n]!.command?.[0] === role);
  /** What a client on the Docker host bootstraps from: the brokers' published ports. */
  const external = async (names: string[]) =>
    (await Promise.all(names.map((n) => t.map(n, `localhost:${String(t.services[n]!.ports![0]).split(':')[0]}`)))).join(',');

  beforeAll(() => t.up(), 180_000);
  afterAll(() => t.cleanup());

  it('has the roles the README describes: Redis, a controller, three brokers, a coordinator', () => {
    expect(Object.keys(t.services).sort()).toEqual(['broker-1', 'broker-2', 'broker-3', 'controller', 'coordinator', 'grafana', 'prometheus', 'redis']);
    expect(byRole('broker')).toHaveLength(3);
    expect(byRole('controller')).toHaveLength(1);
    expect(byRole('coordinator')).toHaveLength(1);
    // Every listener setting is Kafka's: the users' copy-paste pattern.
    for (const n of [...byRole('broker'), ...byRole('coordinator')]) {
      const env = t.services[n]!.environment!;
      expect(env.KAFKA_LISTENERS).toBe('INTERNAL://0.0.0.0:19092,EXTERNAL://0.0.0.0:9092');
      expect(env.KAFKA_ADVERTISED_LISTENERS).toBe(`INTERNAL://${t.services[n]!.hostname}:19092,EXTERNAL://localhost:${String(t.services[n]!.ports![0]).split(':')[0]}`);
      expect(env.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP).toBe('INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT');
      expect(env.KAFKA_INTER_BROKER_LISTENER_NAME).toBe('INTERNAL');
    }
  });

  it('starts every service, and each passes the health check its container would run', async () => {
    for (const name of Object.keys(t.services).filter((n) => !isMonitoring(t.services[n]!))) {
      expect(t.processes.get(name)?.child.exitCode, `${name} is running`).toBeNull();
      await t.waitHealthy(name);
    }
  });

  it('advertises the EXTERNAL listeners to clients on the host and INTERNAL ones inside the network', async () => {
    const nodes = [...byRole('broker'), ...byRole('coordinator')];
    const ids = (m: KcatMetadata) => m.brokers.map((b) => b.id).sort();
    const wantedIds = nodes.map((n) => Number(/node\.id=(\d+)/.exec(t.services[n]!.command!.join(' '))![1])).sort();
    // Registration is asynchronous: wait until every node is listed.
    const outside = await until('every node in Metadata', async () => {
      const m = await metadata(await external(byRole('broker')));
      return ids(m).join() === wantedIds.join() ? m : undefined;
    }, 30_000);
    const idOf = (n: string) => Number(/node\.id=(\d+)/.exec(t.services[n]!.command!.join(' '))![1]);
    for (const n of nodes) {
      expect(outside.brokers.find((b) => b.id === idOf(n))!.name).toBe(await external([n]));
    }
    const inside = await metadata(await t.map('broker-1', 'broker-1:19092'));
    for (const n of nodes) {
      expect(inside.brokers.find((b) => b.id === idOf(n))!.name).toBe(await t.map(n, `${t.services[n]!.hostname}:19092`));
    }
  });

  it('produces through the brokers and consumes as a group through the coordinator', async () => {
    const bootstrap = await external(byRole('broker'));
    const records = Array.from({ length: 300 }, (_, i) => `k${i}:v${i}`).join('\n') + '\n';
    const produced = await runKcat(['-b', bootstrap, '-P', '-t', 'compose', '-K', ':'], { input: records });
    expect(produced.code, produced.stderr).toBe(0);
    // KAFKA_NUM_PARTITIONS and KAFKA_DEFAULT_REPLICATION_FACTOR from the compose file reached the
    // controller that created the topic: 3 partitions, each on all 3 brokers.
    const partitions = (await metadata(bootstrap, 'compose')).topics[0]!.partitions;
    expect(partitions).toHaveLength(3);
    for (const p of partitions) expect(p.replicas.map((r) => r.id).sort()).toEqual([1, 2, 3]);
    const consumed = await runKcat(['-b', bootstrap, '-G', 'compose-group', '-c', '300', '-f', '%s\\n', '-X', 'auto.offset.reset=earliest', 'compose'], { timeoutMs: 45_000 });
    expect(consumed.code, consumed.stderr).toBe(0);
    expect(new Set(consumed.stdout.trim().split('\n')).size).toBe(300);
  });

  it('is a valid compose file for docker-compose', () => {
    const r = spawnSync('docker-compose', ['-f', join(repo, t.file), 'config', '-q'], { encoding: 'utf8' });
    expect(r.error, 'docker-compose (Debian\'s v1, installed by .ci/run) runs').toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  /** Every scrape target in deploy/prometheus.yml as the compose service and port it names. */
  const scrapeTargets = () => {
    const prom = load(readFileSync(join(repo, 'deploy/prometheus.yml'), 'utf8')) as { scrape_configs: { metrics_path?: string; static_configs: { targets: string[] }[] }[] };
    return prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((g) => g.targets.map((target) => ({ target, path: c.metrics_path ?? '/metrics' }))));
  };
  /** Each target's /metrics, fetched at the local port standing in for it, as Prometheus in the network would. */
  const scrapeAll = async () => Promise.all(scrapeTargets().map(async ({ target, path }) => {
    const res = await fetch(`http://${await t.map('prometheus', target, true)}${path}`);
    return { target, status: res.status, text: await res.text() };
  }));

  it('has Prometheus scrape every Runnel role at the /metrics it serves', async () => {
    const prometheus = t.services.prometheus!;
    // The config Prometheus loads is deploy/prometheus.yml, mounted where its command reads it.
    expect(prometheus.volumes).toContain('./prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    expect(prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const runnel = Object.keys(t.services).filter((n) => t.services[n]!.image === 'runnel:local');
    const scraped = scrapeTargets().map(({ target }) => t.serviceNamed(target.split(':')[0]!));
    expect(scraped.sort()).toEqual(runnel.sort());
    const byRoleMetric: Record<string, string> = {
      controller: 'kafka_controller_kafkacontroller_activecontrollercount',
      broker: 'kafka_server_replicamanager_leadercount',
      coordinator: 'kafka_server_groupmetadatamanager_numgroups',
    };
    for (const { target, status, text } of await scrapeAll()) {
      expect(status, target).toBe(200);
      const role = t.services[t.serviceNamed(target.split(':')[0]!)!]!.command![0]!;
      expect(text, `${target} serves the ${role} metrics`).toMatch(new RegExp(`^${byRoleMetric[role]} \\d`, 'm'));
    }
  });

  it('provisions Grafana with that Prometheus and a dashboard whose every query names a metric the cluster serves', async () => {
    const grafana = t.services.grafana!;
    const datasources = load(readFileSync(join(repo, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: { uid: string; url: string }[] };
    const ds = datasources.datasources[0]!;
    const url = new URL(ds.url);
    expect(t.serviceNamed(url.hostname)).toBe('prometheus');
    expect(t.services.prometheus!.ports!.map((p) => String(p).split(':')[1])).toContain(url.port);
    const provider = load(readFileSync(join(repo, 'deploy/grafana/provisioning/dashboards/runnel.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
    expect(grafana.volumes).toContain(`./grafana/runnel.json:${provider.providers[0]!.options.path}/runnel.json:ro`);
    expect(grafana.volumes).toContain('./grafana/provisioning:/etc/grafana/provisioning:ro');

    const dashboard = JSON.parse(readFileSync(join(repo, 'deploy/grafana/runnel.json'), 'utf8')) as { panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string; datasource?: { uid: string } }[] }[] };
    const queries = dashboard.panels.filter((p) => p.type !== 'row').flatMap((p) => (p.targets ?? []).map((q) => ({ panel: p.title, ...q })));
    expect(queries.length).toBeGreaterThan(20);
    for (const q of queries) expect(q.datasource?.uid, q.panel).toBe(ds.uid);
    // What the cluster serves after the produce and group consume above: sample names and # TYPE names.
    const served = new Set<string>();
    for (const { text } of await scrapeAll()) {
      for (const line of text.split('\n')) {
        const m = /^(?:# TYPE )?([a-zA-Z_:][a-zA-Z0-9_:]*)( histogram)?/.exec(line);
        if (!m || line.startsWith('# HELP')) continue;
        served.add(m[1]!);
        // A histogram with no observation yet has no samples, only its # TYPE line.
        if (m[2]) for (const suffix of ['_bucket', '_sum', '_count']) served.add(m[1]! + suffix);
      }
    }
    const missing: string[] = [];
    for (const q of queries) {
      for (const name of q.expr.match(/\b(?:kafka|runnel)_[a-zA-Z0-9_:]*/g) ?? []) {
        if (!served.has(name)) missing.push(`${q.panel}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
    // The dashboard covers what the issue asks of it.
    const exprs = queries.map((q) => q.expr).join('\n');
    for (const name of ['brokertopicmetrics_bytesin_total', 'brokertopicmetrics_bytesout_total', 'requestmetrics_totaltimems_bucket', 'underreplicatedpartitions',
      'offlinepartitionscount', 'isrshrinks_total', 'isrexpands_total', 'kafka_consumergroup_lag', 'runnel_log_dir_free_bytes',
      'runnel_log_dir_written_bytes_total', 'runnel_log_dir_read_bytes_total', 'runnel_log_dir_fsync_seconds_bucket']) {
      expect(exprs).toContain(name);
    }
  });

  it('stops every role cleanly on SIGTERM, as docker compose down does', async () => {
    const codes = await t.stop();
    for (const [name, code] of Object.entries(codes)) expect(code, `${name}'s exit`).toBe(0);
  });
});

describe('deploy/docker-compose.yml as a local process', () => {
  const t = new Topology('deploy/docker-compose.yml');

  beforeAll(() => t.up(), 120_000);
  afterAll(() => t.cleanup());

  it('serves its EXTERNAL listener to the host and INTERNAL to the network, and stops cleanly', async () => {
    await t.waitHealthy('runnel');
    const outside = await t.map('runnel', 'localhost:9092');
    const inside = await t.map('runnel', 'runnel:19092');
    expect((await metadata(outside)).brokers.map((b) => b.name)).toEqual([outside]);
    expect((await metadata(inside)).brokers.map((b) => b.name)).toEqual([inside]);
    const produced = await runKcat(['-b', outside, '-P', '-t', 'single', '-K', ':'], { input: 'a:1\nb:2\n' });
    expect(produced.code, produced.stderr).toBe(0);
    const read = await runKcat(['-b', inside, '-C', '-t', 'single', '-o', 'beginning', '-e', '-f', '%k=%s\\n']);
    expect(read.stdout.trim().split('\n').sort()).toEqual(['a=1', 'b=2']);
    expect(await t.stop()).toEqual({ runnel: 0 });
  });
});

describe('deploy/healthcheck.mjs', () => {
  const check = (...args: string[]) => spawnSync(process.execPath, [join(repo, 'deploy/healthcheck.mjs'), ...args], { encoding: 'utf8', env: { ...process.env, KAFKA_LISTENERS: '' } });

  it('fails with one line when nothing listens or the listener is not Kafka', async () => {
    const closed = check('kafka', `127.0.0.1:${await freePort()}`);
    expect(closed.status).toBe(1);
    expect(closed.stderr).toMatch(/^unhealthy: 127\.0\.0\.1:\d+: connect ECONNREFUSED[^\n]*\n$/);
    // redis-server answers a Kafka request with an error line and is not a healthy Kafka listener.
    const port = await freePort();
    const redis = await startProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { ready: /ready to accept connections/i });
    try {
      expect(check('tcp', `127.0.0.1:${port}`).status).toBe(0);
      const notKafka = check('kafka', `127.0.0.1:${port}`);
      expect(notKafka.status).toBe(1);
      expect(notKafka.stderr).toMatch(/^unhealthy: /);
    } finally {
      await redis.stop();
    }
    expect(check().stderr).toMatch(/KAFKA_LISTENERS is not set/);
    expect(check('bogus', 'x').stderr).toMatch(/unknown mode "bogus"/);
  });

  it('checks the Kafka listeners of a configuration with a controller listener, which Runnel does not bind', async () => {
    // Kafka images' pattern: KAFKA_LISTENERS names a CONTROLLER listener too. Its port stays closed
    // under Runnel, so probing it would call a healthy node unhealthy forever.
    const dir = await mkdtemp(join(tmpdir(), 'runnel-health-'));
    const [kafka, controller] = [await freePort(), await freePort()];
    const env = {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KAFKA_'))),
      KAFKA_LISTENERS: `PLAINTEXT://127.0.0.1:${kafka},CONTROLLER://127.0.0.1:${controller}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LOG_DIRS: dir,
    } as Record<string, string>;
    const node = await startProcess(process.execPath, [join(repo, 'packages/cli/bin/runnel.ts'), 'start'], { env, ready: /runnel is ready/ });
    try {
      const healthy = spawnSync(process.execPath, [join(repo, 'deploy/healthcheck.mjs')], { encoding: 'utf8', env });
      expect(healthy.stderr).toBe('');
      expect(healthy.status).toBe(0);
      const onlyController = spawnSync(process.execPath, [join(repo, 'deploy/healthcheck.mjs')], { encoding: 'utf8', env: { ...env, KAFKA_LISTENERS: `CONTROLLER://127.0.0.1:${controller}` } });
      expect(onlyController.status).toBe(1);
      expect(onlyController.stderr).toMatch(/^unhealthy: KAFKA_LISTENERS has only controller listeners/);
    } finally {
      await node.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/docker-compose.secure.yml', () => {
  const file = 'deploy/docker-compose.secure.yml';
  const services = readCompose(file);
  const runnel = Object.keys(services).filter((n) => services[n]!.image === 'runnel:local');
  // What `docker compose up` would be run with: the Redis password the file requires (no default).
  const redisPassword = `redis-${randomBytes(12).toString('hex')}`;
  const vars = { RUNNEL_REDIS_PASSWORD: redisPassword };
  let tls: string;
  let t: Topology;

  beforeAll(async () => {
    // The certificates the file expects in deploy/tls, made by the script its header names.
    tls = mkdtempSync(join(tmpdir(), 'runnel-compose-tls-'));
    const r = spawnSync(join(repo, 'deploy/make-ca.sh'), [tls], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    // Then the file's services as local processes, deploy/tls being that directory.
    t = new Topology(file, { './tls': tls }, vars);
    await t.up();
  }, 180_000);
  afterAll(async () => {
    await t?.cleanup();
    rmSync(tls, { recursive: true, force: true });
  });

  /** kcat over SASL_SSL with SCRAM-SHA-512, as the file's header shows, to the brokers' published ports. */
  const brokers = ['broker-1', 'broker-2', 'broker-3'];
  const external = async (names: string[]) =>
    (await Promise.all(names.map((n) => t.map(n, `localhost:${String(t.services[n]!.ports![0]).split(':')[0]}`)))).join(',');
  const kcatAs = async (user: string, password: string, names = brokers) => [
    '-b', await external(names), '-X', 'security.protocol=SASL_SSL', '-X', `ssl.ca.location=${tls}/ca.crt`,
    '-X', 'sasl.mechanisms=SCRAM-SHA-512', '-X', `sasl.username=${user}`, '-X', `sasl.password=${password}`,
  ];
  const records = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `k${from + i}:v${from + i}`);

  it('is a valid compose file for docker-compose, which refuses it without RUNNEL_REDIS_PASSWORD', () => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'RUNNEL_REDIS_PASSWORD'));
    const r = spawnSync('docker-compose', ['-f', join(repo, file), 'config', '-q'], { encoding: 'utf8', env: { ...base, ...vars } });
    expect(r.error).toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const without = spawnSync('docker-compose', ['-f', join(repo, file), 'config', '-q'], { encoding: 'utf8', env: base });
    expect(without.status).not.toBe(0);
    expect(without.stderr).toContain('RUNNEL_REDIS_PASSWORD');
  });

  it('has the topology of the cluster file, with SASL_SSL client listeners and TLS between roles', () => {
    expect(runnel.sort()).toEqual(['broker-1', 'broker-2', 'broker-3', 'controller', 'coordinator']);
    for (const n of runnel) {
      const s = services[n]!;
      expect(s.volumes, n).toContain('./tls:/etc/runnel/tls:ro');
      expect(s.environment!.KAFKA_RUNNEL_RPC_SSL_ENABLED, n).toBe('true');
      expect(s.environment!.KAFKA_SSL_KEYSTORE_LOCATION, n).toBe(`/etc/runnel/tls/${n}.pem`);
      if (n !== 'controller') expect(s.environment!.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP, n).toBe('INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL');
    }
  });

  it('every role\'s configuration resolves with no unknown key, and its TLS material (from make-ca.sh) loads', () => {
    for (const n of runnel) {
      const s = services[n]!;
      // Docker would substitute ${RUNNEL_ADMIN_PASSWORD:-admin-secret} and the others; the mount puts deploy/tls at /etc/runnel/tls.
      const env = Object.fromEntries(Object.entries(s.environment!).map(([k, v]) => [k, interpolate(String(v), vars).replace('/etc/runnel/tls', tls)]));
      const args = s.command!;
      const set = args.flatMap((a, i) => (args[i - 1] === '--set' ? [a] : []));
      const { config, unknown } = loadConfig({ set }, env);
      expect(unknown, n).toEqual([]);
      expect(RpcTls.for(config)?.options().cert, n).toMatch(/BEGIN CERTIFICATE/);
      if (n === 'controller') continue;
      const listeners = listenerOptions(config).listeners;
      expect(listeners.map((l) => [l.name, l.securityProtocol, l.tls !== undefined]), n).toEqual([['INTERNAL', 'SASL_SSL', true], ['EXTERNAL', 'SASL_SSL', true]]);
    }
  });

  it('starts every service from the file\'s environment, each passes its health check, and plaintext or no login is refused', async () => {
    for (const n of runnel) await t.waitHealthy(n);
    // Clients must log in over TLS: a TLS client without SASL and a plaintext one are refused.
    const [anonymous, plaintext] = await Promise.all([
      runKcat(['-b', await external(['broker-1']), '-X', 'security.protocol=SSL', '-X', `ssl.ca.location=${tls}/ca.crt`, '-L', '-m', '5'], { timeoutMs: 20_000 }),
      runKcat(['-b', await external(['broker-1']), '-L', '-m', '5'], { timeoutMs: 20_000 }),
    ]);
    expect(anonymous.code).not.toBe(0);
    expect(plaintext.code).not.toBe(0);
    const md = await runKcat([...(await kcatAs('admin', 'admin-secret')), '-L', '-J']);
    expect(md.code, md.stderr).toBe(0);
    const ids = (JSON.parse(md.stdout) as KcatMetadata).brokers.map((b) => b.id).sort();
    expect(ids).toEqual([1, 2, 3, 4]);
  });

  it('admin produces through one broker and consumes as a group through the others over SASL_SSL; a user without ACLs is refused', async () => {
    const produced = await runKcat([...(await kcatAs('admin', 'admin-secret', ['broker-1'])), '-P', '-t', 'secure', '-K', ':'], { input: records(0, 30).join('\n') + '\n' });
    expect(produced.code, produced.stderr).toBe(0);
    const md = JSON.parse((await runKcat([...(await kcatAs('admin', 'admin-secret')), '-L', '-J', '-t', 'secure'])).stdout) as KcatMetadata;
    // The file's defaults: 3 partitions, each on the three brokers.
    expect(md.topics[0]!.partitions.map((p) => p.replicas.map((r) => r.id).sort())).toEqual([[1, 2, 3], [1, 2, 3], [1, 2, 3]]);
    const consumed = await runKcat([...(await kcatAs('admin', 'admin-secret', ['broker-2', 'broker-3'])), '-G', 'secure-group', '-X', 'auto.offset.reset=earliest', '-f', '%k:%s\\n', '-c', '30', '-e', 'secure'], { timeoutMs: 60_000 });
    expect(consumed.code, consumed.stderr).toBe(0);
    expect(consumed.stdout.trim().split('\n').sort()).toEqual(records(0, 30).sort());
    // A second SCRAM user, added by admin with kafka-configs over SASL_SSL, logs in but has no ACL.
    const tools = await kafkaTools();
    const config = join(tls, 'admin.properties');
    writeFileSync(config, [
      'security.protocol=SASL_SSL', 'ssl.truststore.type=PEM', `ssl.truststore.location=${tls}/ca.crt`, 'sasl.mechanism=SCRAM-SHA-512',
      'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";',
    ].join('\n') + '\n');
    const alter = await tools.configs(['--bootstrap-server', await external(['broker-2']), '--command-config', config, '--alter', '--entity-type', 'users', '--entity-name', 'eve', '--add-config', 'SCRAM-SHA-512=[password=eve-secret]']);
    expect(alter.code, alter.stderr).toBe(0);
    const denied = await runKcat([...(await kcatAs('eve', 'eve-secret')), '-P', '-t', 'secure', '-K', ':', '-X', 'message.timeout.ms=10000'], { input: 'eve:nope\n', timeoutMs: 30_000 });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/Topic authorization failed|TOPIC_AUTHORIZATION_FAILED/i);
    const read = await runKcat([...(await kcatAs('eve', 'eve-secret')), '-C', '-t', 'secure', '-o', 'beginning', '-e', '-m', '10'], { timeoutMs: 30_000 });
    expect(read.stdout).not.toContain('v0');
    expect(read.stderr).toMatch(/Topic authorization failed|TOPIC_AUTHORIZATION_FAILED|not authorized/i);
  }, 120_000);

  it('the RPC between roles refuses make-ca.sh\'s client certificate (another CA) and takes a node\'s', async () => {
    const at = { host: '127.0.0.1', port: await t.port('controller', 9192), connectTimeoutMs: 5000, requestTimeoutMs: 5000 };
    const as = (name: string) => RpcClient.create({ ...at, tls: { key: readFileSync(join(tls, `${name}.key`)), cert: readFileSync(join(tls, `${name}.crt`)), ca: [readFileSync(join(tls, 'ca.crt'))] } });
    const [client, node] = [as('client'), as('broker-1')];
    const [refused, taken] = await Promise.all([client, node].map((c) => c.call('controller.heartbeat', { nodeId: 99, brokerEpoch: 0 }).then(() => null, (e: unknown) => e)));
    client.close();
    node.close();
    // Refused in the TLS handshake: the call never reaches the controller.
    expect(refused).toBeInstanceOf(RpcError);
    expect((refused as RpcError).code).toBe('UNAVAILABLE');
    // A node's certificate gets through TLS; the controller answers (an unknown node id: its own error, or none).
    if (taken !== null) expect((taken as RpcError).code).not.toBe('UNAVAILABLE');
  });

  it('Redis requires the password: a client without it is refused, a node with a wrong one exits with a one-line error, no log shows it', async () => {
    const port = await t.port('redis', 6379);
    const anonymous = spawnSync('redis-cli', ['-p', String(port), 'hgetall', 'runnel:scram-credentials'], { encoding: 'utf8', env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'REDISCLI_AUTH')) });
    expect(anonymous.stdout + anonymous.stderr).toMatch(/NOAUTH/);
    // broker-1's environment with another password in its Redis URL.
    const env = await t.env('broker-1');
    expect(env.KAFKA_RUNNEL_REDIS_URL).toContain(`:${redisPassword}@`);
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KAFKA_')));
    const child = spawn(process.execPath, [join(repo, t.image.entrypoint[1]!), 'broker', '--set', 'node.id=9'], {
      cwd: repo, env: { ...base, ...env, KAFKA_RUNNEL_REDIS_URL: env.KAFKA_RUNNEL_REDIS_URL!.replace(redisPassword, 'not-the-redis-password') },
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).not.toBe(0);
    const error = out.split('\n').filter((l) => l.includes('refused the login'));
    expect(error, out).toHaveLength(1);
    expect(error[0]).toMatch(/WRONGPASS/);
    expect(error[0]).toContain('check the password in runnel.redis.url');
    for (const secret of [redisPassword, 'not-the-redis-password']) {
      expect(out).not.toContain(secret);
      expect(t.output()).not.toContain(secret);
    }
  }, 60_000);

  it('a broker killed with -9 fails over: produce and consume go on over the TLS RPC replication', async () => {
    const md = JSON.parse((await runKcat([...(await kcatAs('admin', 'admin-secret')), '-L', '-J', '-t', 'secure'])).stdout) as { topics: { partitions: { partition: number; leader: number }[] }[] };
    const leader = md.topics[0]!.partitions.find((p) => p.partition === 0)!.leader;
    const victim = `broker-${leader}`;
    t.processes.get(victim)!.child.kill('SIGKILL');
    const survivors = brokers.filter((b) => b !== victim);
    // acks=all with min.insync.replicas=2: the two survivors take every write once the victim is fenced.
    const produced = await runKcat([...(await kcatAs('admin', 'admin-secret', survivors)), '-P', '-t', 'secure', '-K', ':', '-X', 'acks=all'], { input: records(30, 60).join('\n') + '\n', timeoutMs: 90_000 });
    expect(produced.code, produced.stderr).toBe(0);
    const after = JSON.parse((await runKcat([...(await kcatAs('admin', 'admin-secret', survivors)), '-L', '-J', '-t', 'secure'])).stdout) as { topics: { partitions: { partition: number; leader: number }[] }[] };
    expect(after.topics[0]!.partitions.find((p) => p.partition === 0)!.leader).not.toBe(leader);
    const consumed = await runKcat([...(await kcatAs('admin', 'admin-secret', survivors)), '-G', 'secure-failover', '-X', 'auto.offset.reset=earliest', '-f', '%k:%s\\n', '-c', '60', '-e', 'secure'], { timeoutMs: 60_000 });
    expect(consumed.code, consumed.stderr).toBe(0);
    expect(consumed.stdout.trim().split('\n').sort()).toEqual(records(0, 60).sort());
  }, 150_000);
});
