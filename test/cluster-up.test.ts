// `runnel cluster up` as a user runs it: one command starts Redis, a controller, two brokers and a
// coordinator as separate OS processes. kcat produces through it and consumes as a group (the
// coordinator is found through FindCoordinator and listed in Metadata), `runnel consumer-groups`
// shows the group's lag, the coordinator's /metrics exports it, and SIGINT stops every process.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKcat } from './helpers/kcat.ts';
import { startProcess, type Started } from './helpers/process.ts';

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

  it('stops every process on SIGINT', async () => {
    const pids = [...up.output().matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(5); // redis, controller, 2 brokers, coordinator
    up.child.kill('SIGINT');
    expect(await up.exited()).toBe(0);
    const alive = pids.filter((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
    expect(alive).toEqual([]);
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
