// Listeners as Docker users write them, against real processes and kcat: a `runnel start` node and a
// cluster (controller, two brokers, a coordinator) whose Kafka nodes each have an INTERNAL and an
// EXTERNAL listener. INTERNAL is advertised under a host name that does not resolve here (as a
// compose service name does not resolve on the host), so the EXTERNAL produce/group-consume runs
// can only succeed if every address an EXTERNAL client is told (Metadata, FindCoordinator) is the
// EXTERNAL one. A listener whose protocol is SSL or SASL_* refuses the start with one line.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { runKcat } from './helpers/kcat.ts';
import { freePort } from './helpers/ports.ts';
import { startProcess, type Started } from './helpers/process.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { startRedis, type TestRedis } from './helpers/redis.ts';

const runnel = join(import.meta.dirname, '../packages/cli/bin/runnel.ts');
const MAP = 'listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT';

/** `kcat -L -J` through one address: the broker list a librdkafka client gets there, as "id host:port". */
async function brokersVia(bootstrap: string): Promise<string[]> {
  const r = await runKcat(['-b', bootstrap, '-L', '-J', '-m', '10']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { brokers: Array<{ id: number; name: string }> }).brokers.map((b) => `${b.id} ${b.name}`).sort();
}

/** Produces `n` records to a new topic and reads them back with a kcat -G group, both through `bootstrap`. */
async function roundTrip(bootstrap: string, topic: string, n: number, partitions: number): Promise<string[]> {
  const create = await runKcat(['-b', bootstrap, '-L', '-t', topic, '-X', 'allow.auto.create.topics=true']);
  expect(create.code, create.stderr).toBe(0);
  const input = Array.from({ length: n }, (_, i) => `k${i % partitions}:v${i}`).join('\n') + '\n';
  const produced = await runKcat(['-b', bootstrap, '-P', '-t', topic, '-K:', '-X', 'topic.partitioner=murmur2_random'], { input, timeoutMs: 30_000 });
  expect(produced.code, produced.stderr).toBe(0);
  const consumed = await runKcat(['-b', bootstrap, '-G', `${topic}-group`, '-c', String(n), '-f', '%s\\n', '-X', 'auto.offset.reset=earliest', topic], { timeoutMs: 45_000 });
  expect(consumed.code, consumed.stderr).toBe(0);
  return consumed.stdout.trim().split('\n').sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
}

/** The `listeners` of a node's ready line: what each listener's clients are told, by name. */
function readyListeners(line: RegExpMatchArray): Map<string, string> {
  const json = JSON.parse(line[0].slice(line[0].indexOf('{'))) as { listeners: string[] };
  return new Map(json.listeners.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf('://') + 3)]));
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', () => resolve(true));
  });
}

describe('runnel start with INTERNAL, EXTERNAL and CONTROLLER listeners', () => {
  let dir: string;
  let node: Started;
  let internal: number;
  let external: number;
  let controllerPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runnel-listeners-'));
    [internal, external, controllerPort] = [await freePort(), await freePort(), await freePort()];
    node = await startProcess(process.execPath, [runnel, 'start', '--set', `log.dirs=${dir}`, '--set', 'group.initial.rebalance.delay.ms=0'], {
      // The apache/kafka image's variables, as a compose file sets them.
      env: {
        KAFKA_LISTENERS: `INTERNAL://127.0.0.1:${internal},EXTERNAL://0.0.0.0:${external},CONTROLLER://127.0.0.1:${controllerPort}`,
        KAFKA_ADVERTISED_LISTENERS: `INTERNAL://runnel.internal.invalid:${internal},EXTERNAL://127.0.0.1:${external}`,
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: MAP.split('=')[1],
        KAFKA_INTER_BROKER_LISTENER_NAME: 'INTERNAL',
        KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
        KAFKA_PROCESS_ROLES: 'broker,controller',
      },
    });
    await node.waitFor(/runnel is ready/, 30_000);
  });

  afterAll(async () => {
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('says what each listener advertises when ready, and binds no controller listener', async () => {
    const line = await node.waitFor(/^.*runnel is ready.*$/m);
    expect(readyListeners(line)).toEqual(new Map([['INTERNAL', `runnel.internal.invalid:${internal}`], ['EXTERNAL', `127.0.0.1:${external}`]]));
    expect(line[0]).toContain(`"listener":"INTERNAL://runnel.internal.invalid:${internal}"`);
    expect(await refused(controllerPort)).toBe(true);
  });

  it('answers Metadata with the address of the listener the request came in on', async () => {
    expect(await brokersVia(`127.0.0.1:${internal}`)).toEqual([`1 runnel.internal.invalid:${internal}`]);
    expect(await brokersVia(`127.0.0.1:${external}`)).toEqual([`1 127.0.0.1:${external}`]);
  });

  it('answers FindCoordinator with the address of the listener the request came in on', async () => {
    const viaInternal = await kafkaRequest(internal, ApiKey.FindCoordinator, 3, { key: 'g', keyType: 0 });
    expect(viaInternal).toMatchObject({ errorCode: ErrorCode.NONE, nodeId: 1, host: 'runnel.internal.invalid', port: internal });
    const viaExternal = await kafkaRequest(external, ApiKey.FindCoordinator, 3, { key: 'g', keyType: 0 });
    expect(viaExternal).toMatchObject({ errorCode: ErrorCode.NONE, nodeId: 1, host: '127.0.0.1', port: external });
  });

  it('answers DescribeCluster with the address of the listener the request came in on', async () => {
    const brokers = async (port: number) => (await kafkaRequest(port, ApiKey.DescribeCluster, 0, { includeClusterAuthorizedOperations: false })).brokers
      .map((b) => `${b.brokerId} ${b.host}:${b.port}`);
    expect(await brokers(internal)).toEqual([`1 runnel.internal.invalid:${internal}`]);
    expect(await brokers(external)).toEqual([`1 127.0.0.1:${external}`]);
  });

  it('serves kcat produce and a kcat -G group entirely over EXTERNAL', async () => {
    const values = await roundTrip(`127.0.0.1:${external}`, 'outside', 60, 1);
    expect(values).toEqual(Array.from({ length: 60 }, (_, i) => `v${i}`));
  });
});

describe('a listener that cannot be served as configured', () => {
  const start = (env: Record<string, string>) => spawnSync(process.execPath, [runnel, 'start'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });

  it('refuses an SSL listener without a keystore with one line naming the key, never serving plaintext there', async () => {
    const port = await freePort();
    const r = start({ KAFKA_LISTENERS: `SSL://127.0.0.1:${port}`, KAFKA_INTER_BROKER_LISTENER_NAME: 'SSL', KAFKA_LOG_DIRS: join(tmpdir(), 'runnel-never-created') });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^runnel: listener SSL: ssl\.keystore\.location: not set: a TLS listener needs its key and certificate[^\n]*\n$/);
    expect(await refused(port)).toBe(true);
  });

  it('refuses a SASL_PLAINTEXT listener that enables PLAIN without a JAAS config of users, in one line naming the key', () => {
    const r = start({
      KAFKA_LISTENERS: 'INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'INTERNAL',
      KAFKA_LOG_DIRS: join(tmpdir(), 'runnel-never-created'),
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^runnel: listener\.name\.external\.plain\.sasl\.jaas\.config: listener EXTERNAL enables PLAIN \(sasl\.enabled\.mechanisms\) but has no JAAS config[^\n]*\n$/);
  });
});

describe('a cluster whose brokers and coordinator each have INTERNAL and EXTERNAL', () => {
  let redis: TestRedis;
  let root: string;
  const procs: Started[] = [];
  /** nodeId → { internal: bound INTERNAL port, external: what EXTERNAL advertises } */
  const nodes = new Map<number, { internal: number; external: string }>();

  beforeAll(async () => {
    redis = await startRedis();
    root = await mkdtemp(join(tmpdir(), 'runnel-listeners-cluster-'));
    const common = [`runnel.redis.url=${redis.url}`, 'broker.session.timeout.ms=3000', 'broker.heartbeat.interval.ms=500', 'runnel.controller.lease.ms=3000',
      'group.initial.rebalance.delay.ms=0', 'offsets.topic.num.partitions=4', 'default.replication.factor=1', 'offsets.topic.replication.factor=1', 'num.partitions=4'];
    const launch = async (role: 'controller' | 'broker' | 'coordinator', nodeId: number, extra: string[]): Promise<RegExpMatchArray> => {
      const args = [runnel, role, ...[`node.id=${nodeId}`, `log.dirs=${join(root, `${role}-${nodeId}`)}`, ...common, ...extra].flatMap((s) => ['--set', s])];
      const proc = await startProcess(process.execPath, args);
      procs.push(proc);
      return proc.waitFor(new RegExp(`^.*runnel ${role} is ready.*$`, 'm'), 30_000);
    };
    await launch('controller', 0, []);
    const kafkaNode = async (role: 'broker' | 'coordinator', nodeId: number) => {
      const internal = await freePort();
      const line = await launch(role, nodeId, [
        `listeners=INTERNAL://127.0.0.1:${internal},EXTERNAL://127.0.0.1:0`,
        // port 0 advertises the port EXTERNAL was bound to
        `advertised.listeners=INTERNAL://node-${nodeId}.internal.invalid:${internal},EXTERNAL://127.0.0.1:0`,
        MAP, 'inter.broker.listener.name=INTERNAL',
      ]);
      nodes.set(nodeId, { internal, external: readyListeners(line).get('EXTERNAL')! });
    };
    await Promise.all([kafkaNode('broker', 1), kafkaNode('broker', 2), kafkaNode('coordinator', 3)]);
  });

  afterAll(async () => {
    for (const p of procs.reverse()) await p.stop(2_000).catch(() => {});
    await redis?.stop().catch(() => {});
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('lists every node with its INTERNAL address to INTERNAL clients and its EXTERNAL one to EXTERNAL clients', async () => {
    const internalView = [1, 2, 3].map((id) => `${id} node-${id}.internal.invalid:${nodes.get(id)!.internal}`);
    const externalView = [1, 2, 3].map((id) => `${id} ${nodes.get(id)!.external}`);
    for (const id of [1, 2, 3]) {
      // Every node has the whole cluster's view, per listener (a node registers all its endpoints).
      await expect.poll(() => brokersVia(`127.0.0.1:${nodes.get(id)!.internal}`), { timeout: 15_000 }).toEqual(internalView);
      await expect.poll(() => brokersVia(nodes.get(id)!.external), { timeout: 15_000 }).toEqual(externalView);
    }
  });

  it('serves kcat produce to both brokers and a kcat -G group on the coordinator node entirely over EXTERNAL', async () => {
    const bootstrap = `${nodes.get(1)!.external},${nodes.get(2)!.external}`;
    const values = await roundTrip(bootstrap, 'both-brokers', 80, 4);
    expect(values).toEqual(Array.from({ length: 80 }, (_, i) => `v${i}`));
  });
});
