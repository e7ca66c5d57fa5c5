/**
 * Kafka clients from other ecosystems, for end-to-end tests: franz-go (Go, test/go/runnel-franz)
 * and confluent-kafka-python (librdkafka, test/python/runnel_ck.py). Both negotiate the newest
 * protocol versions a broker advertises. The first call in a test process builds or installs the
 * client (test/go/build.sh from the Go module proxy, test/python/setup.sh from PyPI, both into
 * .cache/ and quick once done; concurrent test files wait on the scripts' lock), then each call runs
 * one subcommand and returns its JSON lines, typed:
 *
 *   const franz = await franzGo();                       // or: await confluentPython()
 *   const p = await franz.produce({ bootstrap, topic: 't', count: 100, compression: 'zstd' });
 *   expect(p.acked).toBe(100);
 *   const c = await franz.consume({ bootstrap, topic: 't', group: 'g', count: 100 });
 *   expect(c.records.map((r) => r.value)).toEqual(values('franz', 100));
 *   const m = franz.startConsumer({ bootstrap, topic: 't', group: 'g', groupProtocol: 'consumer' });
 *   await m.assigned();  ...  const done = await m.stop();   // SIGTERM: commit, leave, summary
 *   const a = await franz.admin({ bootstrap, groups: ['g'] }); // FranzAdmin / CkAdmin
 *   const t = await franz.txn({ bootstrap, topic: 't' });      // { ok: false, error, elapsedMs }
 *
 * Every summary carries `requests`: each request the client sent and the versions it used.
 * sarama() and kafkaPython() run the same cases with IBM's sarama and kafka-python (the
 * `sarama` / `kafka-python` subcommands of the same two programs; their admin is DescribeCluster).
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const buildScript = join(root, 'test/go/build.sh');
const setupScript = join(root, 'test/python/setup.sh');
const ckScript = join(root, 'test/python/runnel_ck.py');

/** The franz-go release test/go/go.mod pins (for test titles). */
export const FRANZ_GO_VERSION = readFileSync(join(root, 'test/go/go.mod'), 'utf8').match(/github\.com\/twmb\/franz-go (v[\d.]+)/)?.[1] ?? '?';
/** The sarama release test/go/go.mod pins (for test titles). */
export const SARAMA_VERSION = readFileSync(join(root, 'test/go/go.mod'), 'utf8').match(/github\.com\/IBM\/sarama (v[\d.]+)/)?.[1] ?? '?';
/** The kafka-python release test/python/requirements.txt pins. */
export const KAFKA_PYTHON_VERSION = readFileSync(join(root, 'test/python/requirements.txt'), 'utf8').match(/kafka-python==([\d.]+)/)?.[1] ?? '?';
/** The confluent-kafka release test/python/requirements.txt pins (its wheel bundles that librdkafka). */
export const CONFLUENT_KAFKA_VERSION = readFileSync(join(root, 'test/python/requirements.txt'), 'utf8').match(/confluent-kafka==([\d.]+)/)?.[1] ?? '?';

export type Codec = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
export const CODECS: readonly Codec[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** An error as the client reported it: its Kafka error name when it has one. */
export interface ClientError {
  message: string;
  /** Kafka's error name (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), or librdkafka's (_TIMED_OUT). */
  code?: string;
  errorCode?: number;
  retriable?: boolean;
  /** confluent-kafka only. */
  fatal?: boolean;
  txnRequiresAbort?: boolean;
}

/** Request name (as the client names it: "Fetch", "ApiVersion(s)", "InitProducerID/Id") → versions sent. */
export type SentRequests = Record<string, number[]>;

export interface Produced {
  type: 'produced';
  acked: number;
  failed: number;
  error: ClientError | null;
  /** Records acknowledged per partition ("0": 100). */
  partitions: Record<string, number>;
  compression: Codec;
  elapsedMs: number;
  requests: SentRequests;
  /** franz-go only. */
  producerId?: number;
  producerEpoch?: number;
}

export interface ConsumedRecord {
  type: 'record';
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: string;
  headers: Record<string, string>;
  /** franz-go only: the codec of the batch the record came in. */
  codec?: Codec;
}

export interface GroupEvent {
  type: 'assigned' | 'revoked' | 'lost';
  partitions: Record<string, number[]>;
  commitError?: ClientError | null;
}

export interface FetchErrorLine { type: 'error'; topic: string; partition: number; error: ClientError }

export interface ConsumeDone {
  type: 'done';
  count: number;
  commitError: ClientError | null;
  leaveError: ClientError | null;
  lastError: ClientError | null;
  elapsedMs: number;
  requests: SentRequests;
}

export interface Consumed {
  records: ConsumedRecord[];
  events: GroupEvent[];
  errors: FetchErrorLine[];
  done: ConsumeDone;
  stderr: string;
}

export interface TxnResult {
  type: 'txn';
  ok: boolean;
  error: ClientError | null;
  elapsedMs: number;
  requests: SentRequests;
}

/** runnel-franz admin (kadm). */
export interface FranzAdmin {
  type: 'admin';
  apiVersionsError: ClientError | null;
  apiVersions: Array<{
    node: number;
    /** kversion's guess of the Kafka release these versions match ("v4.0", "between v0.9.0 and v0.10.0", ...). */
    guess: string;
    /** The same guess over the APIs the node advertises only (skipping `missing`). */
    guessServed: string;
    /** APIs franz-go knows that the node does not advertise (beyond kversion's own broker-to-broker skip list). */
    missing: string[] | null;
    /** API name (franz-go's) → [min, max] as the node advertises. */
    versions: Record<string, [number, number]>;
    /** API name → the version franz-go uses (its own maximum capped by the node's). */
    negotiated: Record<string, number>;
    error: ClientError | null;
  }>;
  cluster: { version?: number; clusterId?: string; controllerId?: number; brokers?: Array<{ nodeId: number; host: string; port: number; rack: string | null }>; error: ClientError | null; errorMessage?: string | null };
  topicsError: ClientError | null;
  /** Kafka's topic id text (URL-safe base64, no padding; all zeros is AAAAAAAAAAAAAAAAAAAAAA). */
  topics: Array<{ name: string; id: string; internal: boolean; partitions: number; error: ClientError | null }> | null;
  logDirsError: ClientError | null;
  logDirs: Array<{ broker: number; dir: string; error: ClientError | null; partitions: Record<string, number[]> }> | null;
  groupsError?: ClientError | null;
  groups?: Array<{ group: string; state: string; protocolType: string; protocol: string; members: Array<{ memberId: string; clientId: string; assigned: Record<string, number[]> }> | null; error: ClientError | null }> | null;
  consumerGroupsError?: ClientError | null;
  /** ConsumerGroupDescribe (KIP-848 groups). */
  consumerGroups?: Array<{ group: string; state: string; epoch: number; assignor: string; members: Array<{ memberId: string; clientId: string; memberEpoch: number; assigned: Record<string, number[]> }> | null; error: ClientError | null }> | null;
  requests: SentRequests;
}

type Part<T> = T | { error: ClientError };

/** runnel_ck.py admin (confluent-kafka AdminClient); each part is its result or { error }. */
export interface CkAdmin {
  type: 'admin';
  cluster: Part<{ clusterId: string; controllerId: number | null; brokers: Array<{ nodeId: number; host: string; port: number; rack: string | null }> }>;
  topics: Part<Array<{ name: string; partitions: number; error: ClientError | null }>>;
  /** describe_topics of `topics` (DescribeTopicPartitions where the broker has it). */
  describedTopics?: Part<Array<{ name: string; id?: string; internal?: boolean; partitions?: Array<{ id: number; leader: number | null; replicas: number[]; isr: number[] }>; error: ClientError | null }>>;
  /** describe_configs of each of `topics`: name → value. */
  topicConfigs?: Part<Record<string, Record<string, string | null> | { error: ClientError }>>;
  /** describe_configs of the controller node DescribeCluster names. */
  brokerConfig: Part<{ nodeId: number; configs: Record<string, string | null> }>;
  listedGroups: Part<{ groups: string[]; errors: ClientError[] }>;
  groups?: Part<Array<{ group: string; state?: string; type?: string; assignor?: string; members?: Array<{ memberId: string; clientId: string; assigned: Record<string, number[]> }>; error: ClientError | null }>>;
  requests: SentRequests;
}

export interface ProduceOptions { bootstrap: string; topic: string; count: number; compression?: Codec; prefix?: string; maxMs?: number }
export interface ConsumeOptions {
  bootstrap: string;
  topic: string;
  group: string;
  /** Exit after this many records (0 or absent: until stop() or maxMs). */
  count?: number;
  /** Default 60 s. */
  maxMs?: number;
  /** classic (JoinGroup/SyncGroup, the default) or consumer (KIP-848, ConsumerGroupHeartbeat). */
  groupProtocol?: 'classic' | 'consumer';
}
export interface AdminOptions { bootstrap: string; groups?: string[]; /** confluent-kafka: topics for describe_topics/describe_configs. */ topics?: string[]; maxMs?: number }
export interface TxnOptions { bootstrap: string; topic: string; transactionalId?: string; maxMs?: number }

/** A consumer running in the background (startConsumer). */
export interface RunningConsumer {
  readonly pid: number;
  records(): ConsumedRecord[];
  events(): GroupEvent[];
  /** Resolves with the first assignment event that gives this member at least one partition. */
  assigned(timeoutMs?: number): Promise<GroupEvent>;
  /** Resolves once `predicate` holds (over this member's records, or anything else: it is also checked every 100 ms); rejects on exit or deadline. */
  waitFor(predicate: (records: ConsumedRecord[]) => boolean, timeoutMs?: number): Promise<void>;
  /** SIGTERM: the client commits what it read, leaves the group and prints its summary. */
  stop(): Promise<Consumed>;
  /** SIGKILL, as a crash: nothing committed, no LeaveGroup. */
  kill(): Promise<void>;
}

export interface EcosystemClient<Admin> {
  /** "franz-go v1.22.3" / "confluent-kafka 2.16.2". */
  readonly name: string;
  /** The command line that runs the program (then the subcommand and its flags). */
  readonly command: readonly string[];
  produce(o: ProduceOptions): Promise<Produced>;
  consume(o: ConsumeOptions): Promise<Consumed>;
  startConsumer(o: ConsumeOptions): RunningConsumer;
  admin(o: AdminOptions): Promise<Admin>;
  txn(o: TxnOptions): Promise<TxnResult>;
}

/** The values both programs produce for record i: `<prefix>-<i>-` and a repeated pattern. */
export function values(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${i}-${'runnel-'.repeat(16)}`);
}

interface Ran { code: number | null; stdout: string; stderr: string; timedOut: boolean }

function exec(command: string, args: readonly string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number | string; killed?: boolean }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr, timedOut: Boolean(e?.killed) });
    });
  });
}

const prepared = new Map<string, Promise<string>>();

/** Runs a build/setup script once per process (the script itself skips what .cache holds). */
function prepare(script: string, what: string): Promise<string> {
  let p = prepared.get(script);
  if (!p) {
    p = (async () => {
      const r = await exec(script, [], 900_000);
      if (r.code !== 0) throw new Error(`${what}: ${script} failed (${r.code}${r.timedOut ? ', deadline passed' : ''}):\n${r.stderr.trim()}`);
      if (r.stderr.trim()) process.stderr.write(`${r.stderr.trim()}\n`);
      return r.stdout.trim().split('\n').at(-1)!;
    })();
    prepared.set(script, p);
    p.catch(() => prepared.delete(script));
  }
  return p;
}

function parseLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').filter((l) => l.trim()).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON line: ${l.slice(0, 500)}`);
    }
  });
}

function describe(command: readonly string[], r: Ran): string {
  return `${command.join(' ')} exited ${r.code}${r.timedOut ? ' (deadline passed, killed)' : ''}\n--- stdout (tail) ---\n${r.stdout.slice(-4000)}\n--- stderr (tail) ---\n${r.stderr.slice(-4000)}`;
}

function consumeArgs(o: ConsumeOptions): string[] {
  return ['consume', '--bootstrap', o.bootstrap, '--topic', o.topic, '--group', o.group, '--count', String(o.count ?? 0),
    '--max-ms', String(o.maxMs ?? 60_000), '--group-protocol', o.groupProtocol ?? 'classic'];
}

function toConsumed(lines: Array<Record<string, unknown>>, stderr: string, command: readonly string[]): Consumed {
  const done = lines.find((l) => l.type === 'done') as ConsumeDone | undefined;
  if (!done) throw new Error(`${command.join(' ')} printed no summary\n--- stderr (tail) ---\n${stderr.slice(-4000)}`);
  return {
    records: lines.filter((l) => l.type === 'record') as unknown as ConsumedRecord[],
    events: lines.filter((l) => l.type === 'assigned' || l.type === 'revoked' || l.type === 'lost') as unknown as GroupEvent[],
    errors: lines.filter((l) => l.type === 'error') as unknown as FetchErrorLine[],
    done,
    stderr,
  };
}

function client<Admin>(name: string, command: readonly string[]): EcosystemClient<Admin> {
  /** Runs one subcommand to its end and returns its lines; throws unless it exited 0 with a `type` summary. */
  const run = async (args: string[], summary: string, maxMs: number): Promise<{ lines: Array<Record<string, unknown>>; stderr: string }> => {
    const full = [...command, ...args];
    const r = await exec(full[0]!, full.slice(1), maxMs + 20_000);
    if (r.code !== 0) throw new Error(describe(full, r));
    const lines = parseLines(r.stdout);
    if (!lines.some((l) => l.type === summary)) throw new Error(`no "${summary}" line from ${describe(full, r)}`);
    return { lines, stderr: r.stderr };
  };
  const last = <T>(lines: Array<Record<string, unknown>>, type: string) => lines.filter((l) => l.type === type).at(-1) as T;

  return {
    name,
    command,
    async produce(o) {
      const maxMs = o.maxMs ?? 60_000;
      const { lines } = await run(['produce', '--bootstrap', o.bootstrap, '--topic', o.topic, '--count', String(o.count),
        '--compression', o.compression ?? 'none', ...(o.prefix ? ['--prefix', o.prefix] : []), '--max-ms', String(maxMs)], 'produced', maxMs);
      return last<Produced>(lines, 'produced');
    },
    async consume(o) {
      const { lines, stderr } = await run(consumeArgs(o), 'done', o.maxMs ?? 60_000);
      return toConsumed(lines, stderr, command);
    },
    async admin(o) {
      const maxMs = o.maxMs ?? 60_000;
      const { lines } = await run(['admin', '--bootstrap', o.bootstrap, '--max-ms', String(maxMs),
        ...(o.groups?.length ? ['--groups', o.groups.join(',')] : []), ...(o.topics?.length ? ['--topics', o.topics.join(',')] : [])], 'admin', maxMs);
      return last<Admin>(lines, 'admin');
    },
    async txn(o) {
      const maxMs = o.maxMs ?? 60_000;
      const { lines } = await run(['txn', '--bootstrap', o.bootstrap, '--topic', o.topic, '--max-ms', String(maxMs),
        ...(o.transactionalId ? ['--transactional-id', o.transactionalId] : [])], 'txn', maxMs);
      return last<TxnResult>(lines, 'txn');
    },
    startConsumer(o) {
      const full = [...command, ...consumeArgs(o)];
      const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      const lines: Array<Record<string, unknown>> = [];
      let partial = '';
      let stderr = '';
      let exitCode: number | string | undefined;
      const waiters = new Set<() => void>();
      const wake = () => { for (const w of waiters) w(); };
      child.stdout.on('data', (b: Buffer) => {
        partial += b.toString('utf8');
        const complete = partial.split('\n');
        partial = complete.pop()!;
        for (const l of complete) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        wake();
      });
      child.stderr.on('data', (b: Buffer) => { stderr += b.toString('utf8'); });
      const exited = new Promise<number | string>((resolve) => {
        child.on('error', (e) => { stderr += `\n[${e.message}]`; exitCode = 'error'; resolve('error'); wake(); });
        child.on('exit', (code, signal) => { exitCode = code ?? signal ?? 'unknown'; resolve(exitCode); wake(); });
      });
      const records = () => lines.filter((l) => l.type === 'record') as unknown as ConsumedRecord[];
      const events = () => lines.filter((l) => l.type === 'assigned' || l.type === 'revoked' || l.type === 'lost') as unknown as GroupEvent[];
      const until = <T>(what: string, probe: () => T | undefined, timeoutMs: number) => new Promise<T>((resolve, reject) => {
        const check = () => {
          const v = probe();
          if (v !== undefined) return settle(() => resolve(v));
          if (exitCode !== undefined) return settle(() => reject(new Error(`${name} consumer exited (${exitCode}) before ${what}\n--- stdout (tail) ---\n${JSON.stringify(lines.slice(-20))}\n--- stderr (tail) ---\n${stderr.slice(-4000)}`)));
        };
        const timer = setTimeout(() => settle(() => reject(new Error(`${name} consumer: no ${what} within ${timeoutMs} ms; ${records().length} records; events ${JSON.stringify(events())}\n--- stderr (tail) ---\n${stderr.slice(-4000)}`))), timeoutMs);
        // Also on a tick: a predicate may read other members' records, which do not wake this one.
        const tick = setInterval(check, 100);
        const settle = (f: () => void) => { clearTimeout(timer); clearInterval(tick); waiters.delete(check); f(); };
        waiters.add(check);
        check();
      });
      return {
        pid: child.pid ?? -1,
        records,
        events,
        assigned: (timeoutMs = 30_000) => until('assignment', () => events().find((e) => e.type === 'assigned' && Object.values(e.partitions).some((ps) => ps.length > 0)), timeoutMs),
        waitFor: async (predicate, timeoutMs = 30_000) => { await until('records matching the predicate', () => (predicate(records()) ? true : undefined), timeoutMs); },
        async stop() {
          if (exitCode === undefined) child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
          await exited;
          clearTimeout(timer);
          return toConsumed(lines, stderr, full);
        },
        async kill() {
          if (exitCode === undefined) child.kill('SIGKILL');
          await exited;
        },
      };
    },
  };
}

/**
 * franz-go (kgo + kadm), built from test/go by test/go/build.sh on first use. Throws one line
 * when go is missing or the module proxy is unreachable.
 */
export async function franzGo(): Promise<EcosystemClient<FranzAdmin>> {
  const bin = await prepare(buildScript, 'franz-go');
  return client<FranzAdmin>(`franz-go ${FRANZ_GO_VERSION}`, [bin]);
}

/**
 * confluent-kafka-python (librdkafka), installed into a venv by test/python/setup.sh on first
 * use. Throws one line when python3/venv is missing or PyPI is unreachable.
 */
export async function confluentPython(): Promise<EcosystemClient<CkAdmin>> {
  const python = await prepare(setupScript, 'confluent-kafka-python');
  return client<CkAdmin>(`confluent-kafka ${CONFLUENT_KAFKA_VERSION}`, [python, ckScript]);
}

/** runnel-franz sarama admin / runnel_ck.py kafka-python admin: DescribeCluster as the client sees it. */
export interface ClusterAdmin {
  type: 'admin';
  cluster: { clusterId?: string | null; controllerId?: number | null; brokers?: Array<{ nodeId: number; host: string; port: number; rack?: string | null }>; error: ClientError | null };
  requests: SentRequests;
  /** sarama only: the Kafka release whose request versions it sent (its config.Version). */
  kafkaVersion?: string;
}

/**
 * IBM's sarama, the `sarama` subcommands of the same Go program (test/go/sarama.go). sarama
 * sends the request versions of the Kafka release `kafkaVersion` names (its config.Version;
 * sarama's default, 2.8, when absent) rather than negotiating, so `requests` is empty and each
 * summary carries `kafkaVersion`. Consumers use the classic protocol only.
 */
export async function sarama(o: { kafkaVersion?: string } = {}): Promise<EcosystemClient<ClusterAdmin>> {
  const bin = await prepare(buildScript, 'franz-go');
  return client<ClusterAdmin>(`sarama ${SARAMA_VERSION}${o.kafkaVersion ? ` (Kafka ${o.kafkaVersion} versions)` : ''}`,
    [bin, 'sarama', ...(o.kafkaVersion ? [`--kafka-version=${o.kafkaVersion}`] : [])]);
}

/**
 * kafka-python, the `kafka-python` subcommands of test/python/runnel_ck.py (same venv). It
 * negotiates versions from ApiVersions; produce supports none and gzip; consumers are classic.
 * `admin` is KafkaAdminClient.describe_cluster().
 */
export async function kafkaPython(): Promise<EcosystemClient<ClusterAdmin>> {
  const python = await prepare(setupScript, 'confluent-kafka-python');
  return client<ClusterAdmin>(`kafka-python ${KAFKA_PYTHON_VERSION}`, [python, ckScript, 'kafka-python']);
}
