// `runnel cluster up` as a user runs it: one command starts Redis, a controller, two brokers and a
// coordinator as separate OS processes. kcat produces through it and consumes as a group (the
// coordinator is found through FindCoordinator and listed in Metadata), `runnel consumer-groups`
// shows the group's lag, the coordinator's /metrics exports it, and SIGINT stops every process.
// A second `cluster up` on a directory in use refuses and leaves the running cluster alone; a port
// in use is one line; `--detach` returns once ready, `cluster status` and `cluster down` work on
// its directory, and a restart of a stopped cluster does not warn about every partition.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKcat } from './helpers/kcat.ts';
import { freePort } from './helpers/ports.ts';
import { startProcess, type Started } from './helpers/process.ts';
import { alive } from './helpers/wrappers.ts';

const runnel = join(import.meta.dirname, '../packages/cli/bin/runnel.ts');
const run = promisify(execFile);

let dir: string;
let up: Started;
let bootstrap: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnel-cluster-up-'));
  up = await startProcess(process.execPath, [runnel, 'cluster', 'up', '--brokers', '2', '--coordinators', '1', '--dir', dir, '--port', '0',
    '--set', 'runnel.metrics.listener=127.0.0.1:0', '--set', 'group.initial.rebalance.delay.ms=0', '--set', 'offsets.topic.num.partitions=5']);
  bootstrap = (await up.waitFor(/bootstrap\.servers=(\S+)/, 60_000))[1]!;
});

afterAll(async () => {
  await up?.stop(15_000);
  await rm(dir, { recursive: true, force: true });
});

describe('runnel cluster up', () => {
  it('lists the brokers and the coordinator in Metadata', async () => {
    // Every node is registered when cluster up says so; a broker's metadata follows within moments.
    let brokers: number[] = [];
    for (let i = 0; i < 50 && brokers.length < 3; i++) {
      const meta = await runKcat(['-b', bootstrap, '-L', '-J']);
      expect(meta.code).toBe(0);
      brokers = (JSON.parse(meta.stdout) as { brokers: { id: number }[] }).brokers.map((b) => b.id).sort();
      if (brokers.length < 3) await new Promise((r) => setTimeout(r, 100));
    }
    expect(brokers).toEqual([1, 2, 3]);
    expect(up.output()).toMatch(/coordinator-3\s+PLAINTEXT:\/\/127\.0\.0\.1:\d+/);
  });

  it('serves produce, a group consume with commits, the CLI lag and the coordinator metrics', async () => {
    const records = Array.from({ length: 200 }, (_, i) => `r${i}`).join('\n') + '\n';
    const produced = await runKcat(['-b', bootstrap, '-P', '-t', 'up', '-K', ':'], { input: records });
    expect(produced.code).toBe(0);
    // Consume the first 150 as group g-up; librdkafka commits the stored offsets when kcat closes.
    const consumed = await runKcat(['-b', bootstrap, '-G', 'g-up', '-c', '150', '-f', '%s\\n', '-X', 'auto.offset.reset=earliest', 'up'], { timeoutMs: 30_000 });
    expect(consumed.stdout.trim().split('\n')).toHaveLength(150);

    const { stdout } = await run(process.execPath, [runnel, 'consumer-groups', '--bootstrap-server', bootstrap, '--describe', '--group', 'g-up']);
    const row = stdout.split('\n').find((l) => l.startsWith('g-up'))!.trim().split(/\s+/);
    // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
    expect(row.slice(1, 6)).toEqual(['up', '0', '150', '200', '50']);

    const url = up.output().match(/"role":"coordinator"[^\n]*"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/)![1]!;
    let lag: string | undefined;
    for (let i = 0; i < 100 && lag === undefined; i++) {
      // The coordinator refreshes log end offsets from the brokers on a timer.
      lag = (await (await fetch(url)).text()).split('\n').find((l) => l.startsWith('runnel_consumergroup_lag{') && l.includes('group="g-up"'));
      if (lag === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(lag).toMatch(/ 50$/);
  });

  it('refuses a second cluster up on its directory in one line, and leaves the running cluster alone', async () => {
    const second = await run(process.execPath, [runnel, 'cluster', 'up', '--brokers', '1', '--dir', dir, '--port', '0']).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(second?.code).toBe(1);
    expect(second?.stderr).toMatch(/^runnel: cannot start: \S+ is in use by a running cluster \(pid \d+\); see `runnel cluster status --dir \S+`, stop it with `runnel cluster down --dir \S+`\n$/);
    expect(existsSync(join(dir, 'redis/redis.sock'))).toBe(true);
    const meta = await runKcat(['-b', bootstrap, '-L', '-J']);
    expect(meta.code).toBe(0);
    expect((JSON.parse(meta.stdout) as { brokers: unknown[] }).brokers).toHaveLength(3);
  });

  it('cluster status shows it from another shell', async () => {
    const { stdout } = await run(process.execPath, [runnel, 'cluster', 'status', '--dir', dir]);
    expect(stdout).toContain(`bootstrap.servers=${bootstrap}\n`);
    expect(stdout).toMatch(/broker-2\s+PLAINTEXT:\/\/127\.0\.0\.1:\d+\s+pid \d+\n/);
    expect(stdout).toMatch(new RegExp(`cluster up\\s+\\S+\\s+pid ${up.child.pid}\\n`));
  });

  it('stops every process on SIGINT', async () => {
    const pids = [...up.output().matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(5); // redis, controller, 2 brokers, coordinator
    up.child.kill('SIGINT');
    expect(await up.exited()).toBe(0);
    const alive = pids.filter((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
    expect(alive).toEqual([]);
    expect(existsSync(join(dir, 'cluster.json'))).toBe(false);
  });
});

describe('runnel cluster up --detach, status, down, and a restart', () => {
  let ddir: string;
  beforeAll(async () => { ddir = await mkdtemp(join(tmpdir(), 'runnel-cluster-detach-')); });
  afterAll(async () => {
    await run(process.execPath, [runnel, 'cluster', 'down', '--dir', ddir]).catch(() => {});
    await rm(ddir, { recursive: true, force: true });
  });
  const detach = () => run(process.execPath, [runnel, 'cluster', 'up', '--detach', '--brokers', '1', '--coordinators', '1', '--dir', ddir, '--port', '0',
    '--set', 'offsets.topic.num.partitions=10'], { timeout: 120_000 });
  const pidsOf = (text: string) => [...text.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));

  it('returns once every node is ready; status and down work on its directory', async () => {
    const { stdout } = await detach();
    const servers = /bootstrap\.servers=(\S+)/.exec(stdout)![1]!;
    const meta = await runKcat(['-b', servers, '-L', '-J']);
    expect((JSON.parse(meta.stdout) as { brokers: unknown[] }).brokers).toHaveLength(2);
    const produced = await runKcat(['-b', servers, '-P', '-t', 'detached'], { input: 'one\ntwo\n' });
    expect(produced.code).toBe(0);

    const status = await run(process.execPath, [runnel, 'cluster', 'status', '--dir', ddir]);
    const pids = pidsOf(status.stdout);
    expect(pids).toHaveLength(5); // redis, controller, broker, coordinator, cluster up
    expect(pids.every(alive)).toBe(true);

    const down = await run(process.execPath, [runnel, 'cluster', 'down', '--dir', ddir]);
    expect(down.stdout).toMatch(/stopped \(pid \d+\)/);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(join(ddir, 'broker-1/.kafka_cleanshutdown'))).toBe(true);
    const after = await run(process.execPath, [runnel, 'cluster', 'status', '--dir', ddir]).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(after?.code).toBe(1);
    expect(after?.stderr).toBe(`runnel cluster: no cluster is running in ${ddir}\n`);
  });

  it('restarts a stopped cluster without a warning per partition, keeping its data', async () => {
    const logBefore = readFileSync(join(ddir, 'cluster.log')).length;
    const { stdout } = await detach();
    const servers = /bootstrap\.servers=(\S+)/.exec(stdout)![1]!;
    const consumed = await runKcat(['-b', servers, '-C', '-t', 'detached', '-e', '-f', '%s\n']);
    expect(consumed.stdout).toBe('one\ntwo\n');
    // The restart's own log lines: nothing at warn or above about a partition (there used to be
    // one per __consumer_offsets partition, repeated, while the brokers re-registered).
    const restartLog = readFileSync(join(ddir, 'cluster.log')).subarray(logBefore).toString().split('\n');
    const partitionWarnings = restartLog.filter((l) => /"level":(40|50|60)/.test(l) && /"partition":/.test(l));
    expect(partitionWarnings).toEqual([]);
    await run(process.execPath, [runnel, 'cluster', 'down', '--dir', ddir]);
  });
});

describe('runnel cluster up refusing a bad start', () => {
  let blocker: Server;
  let pdir: string;
  afterAll(async () => {
    blocker?.close();
    if (pdir) await rm(pdir, { recursive: true, force: true });
  });

  it('refuses in one line before starting anything', async () => {
    pdir = await mkdtemp(join(tmpdir(), 'runnel-cluster-port-'));
    blocker = createServer();
    const port = await new Promise<number>((r) => blocker.listen(0, '127.0.0.1', () => r((blocker.address() as { port: number }).port)));
    const failed = await run(process.execPath, [runnel, 'cluster', 'up', '--brokers', '1', '--dir', pdir, '--port', String(port)]).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toBe(`runnel: cannot start: port 127.0.0.1:${port} for broker-1 is in use: pass another --port, or --port 0 for any free ports\n`);
    expect(existsSync(join(pdir, 'redis'))).toBe(false);
    expect(existsSync(join(pdir, 'cluster.json'))).toBe(false);
  });

  it('refuses a bad --port in one line, before starting anything', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'runnel-cluster-badport-'));
    try {
      // 2 brokers and a coordinator take --port and the next two.
      for (const [port, detach] of [['abc', []], ['-5', []], ['65534', []], ['65534', ['--detach']]] as const) {
        const bad = await run(process.execPath, [runnel, 'cluster', 'up', ...detach, '--brokers', '2', '--dir', join(parent, 'dir'), '--port', port]).then(() => null, (e: { code: number; stderr: string }) => e);
        expect(bad?.code).toBe(2);
        expect(bad?.stderr).toBe(`runnel: --port: expected 0 (any free ports) or a port from 1 to 65533 (3 nodes take it and the next ones), got ${Number(port)}\n`);
      }
      expect(existsSync(join(parent, 'dir'))).toBe(false);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('refuses a bad --set value once, in one line, before starting anything', async () => {
    const bad = await run(process.execPath, [runnel, 'cluster', 'up', '--dir', join(pdir, 'bad'), '--port', '0', '--set', 'num.partitions=-5']).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toBe('runnel: num.partitions: "-5" is out of range (expected an int >= 1)\n');
    expect(existsSync(join(pdir, 'bad'))).toBe(false);
  });
});

describe('the cluster roles refuse a bad start with one clear line', () => {
  it('exits 2 without runnel.redis.url, and 1 when Redis cannot be reached', async () => {
    const noUrl = await run(process.execPath, [runnel, 'broker', '--set', `log.dirs=${dir}/x`]).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(noUrl?.code).toBe(2);
    expect(noUrl?.stderr).toMatch(/runnel\.redis\.url: the cluster roles keep metadata in Redis/);
    const noRedis = await run(process.execPath, [runnel, 'coordinator', '--set', `log.dirs=${dir}/y`, '--set', `runnel.redis.url=redis+unix://${dir}/no-such.sock`]).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(noRedis?.code).toBe(1);
    expect(noRedis?.stderr).toMatch(/runnel: cannot start: .*(Redis|redis)/);
  });
});

describe('runnel cluster up --redis with a password', () => {
  let pdir: string;
  let redis: Started;
  let url: string;
  const password = 'up-redis-pw-7f3c';
  beforeAll(async () => {
    pdir = await mkdtemp(join(tmpdir(), 'runnel-cluster-pw-'));
    const port = await freePort();
    redis = await startProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', '--appendonly', 'no'], { ready: /ready to accept connections/i });
    url = `redis://:${password}@127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await run(process.execPath, [runnel, 'cluster', 'down', '--dir', pdir]).catch(() => {});
    await redis?.stop();
    await rm(pdir, { recursive: true, force: true });
  });

  it('logs in with the URL\'s password and prints the URL with it masked', async () => {
    const { stdout, stderr } = await run(process.execPath, [runnel, 'cluster', 'up', '--detach', '--brokers', '1', '--coordinators', '1', '--dir', pdir, '--port', '0', '--redis', url], { timeout: 120_000 });
    expect(stdout).toContain(`metadata in redis://:***@127.0.0.1:`);
    expect(stdout + stderr).not.toContain(password);
    const servers = /bootstrap\.servers=(\S+)/.exec(stdout)![1]!;
    const meta = await runKcat(['-b', servers, '-L', '-J']);
    expect(meta.code, meta.stderr).toBe(0);
  });
});
