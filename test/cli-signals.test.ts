// Stopping through a wrapper, as a supervisor does: SIGTERM or SIGINT goes to the `npm start` or
// `npx runnel ...` process only (not its process group), and the broker behind it must stop
// cleanly: the wrapper exits 0 after it, the port is free, the clean-shutdown marker is written,
// and no process of the tree is left (an orphaned broker would keep its port and log-dir lock).
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startProcess, type Started } from './helpers/process.ts';
import { until } from './helpers/until.ts';
import { alive, descendants, newcomerEnv, portFree, processesUnder } from './helpers/wrappers.ts';

const repo = join(import.meta.dirname, '..');
const started: Started[] = [];
const dirs: string[] = [];
let tree: number[] = [];

afterEach(async () => {
  for (const s of started.splice(0)) await s.stop(10_000);
  for (const pid of tree) if (alive(pid)) process.kill(pid, 'SIGKILL');
  tree = [];
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'runnel-signals-'));
  dirs.push(d);
  return d;
}

describe('a signal to the wrapper stops the broker cleanly', () => {
  it.each([
    { wrapper: 'npm start', command: 'npm', args: ['start'], signal: 'SIGTERM' },
    { wrapper: 'npm start', command: 'npm', args: ['start'], signal: 'SIGINT' },
    { wrapper: 'npx runnel start', command: 'npx', args: ['runnel', 'start'], signal: 'SIGTERM' },
    { wrapper: 'npx runnel start', command: 'npx', args: ['runnel', 'start'], signal: 'SIGINT' },
  ] as const)('$wrapper, $signal', async ({ command, args, signal }) => {
    const dir = await tempDir();
    const wrapper = await startProcess(command, [...args], { cwd: repo, env: newcomerEnv({ KAFKA_LISTENERS: 'PLAINTEXT://127.0.0.1:0', KAFKA_LOG_DIRS: dir }) });
    started.push(wrapper);
    const port = Number((await wrapper.waitFor(/"listener":"PLAINTEXT:\/\/127\.0\.0\.1:(\d+)"[^\n]*runnel is ready/, 60_000))[1]);
    tree = descendants(wrapper.child.pid!).map((p) => p.pid);
    expect(tree.length).toBeGreaterThan(0);
    expect(await portFree(port)).toBe(false);

    wrapper.child.kill(signal);
    expect(await wrapper.exited()).toBe(0);
    expect(wrapper.output()).toContain(`runnel: ${signal}, stopping`);
    expect(wrapper.output()).toContain('runnel stopped');
    expect(tree.filter(alive)).toEqual([]);
    expect(await portFree(port)).toBe(true);
    expect(existsSync(join(dir, '.kafka_cleanshutdown'))).toBe(true);
  });

  it('npx runnel cluster up, SIGTERM: every node, the controller and Redis stop', async () => {
    const dir = await tempDir();
    const wrapper = await startProcess('npx', ['runnel', 'cluster', 'up', '--brokers', '1', '--coordinators', '1', '--dir', dir, '--port', '0'], { cwd: repo, env: newcomerEnv() });
    started.push(wrapper);
    await wrapper.waitFor(/bootstrap\.servers=\S+/, 90_000);
    const ports = [...wrapper.output().matchAll(/PLAINTEXT:\/\/127\.0\.0\.1:(\d+)\s+pid/g)].map((m) => Number(m[1]));
    expect(ports).toHaveLength(2); // broker-1, coordinator-2
    tree = descendants(wrapper.child.pid!).map((p) => p.pid);
    expect(tree.length).toBeGreaterThanOrEqual(5); // cluster up, redis, controller, broker, coordinator

    wrapper.child.kill('SIGTERM');
    expect(await wrapper.exited()).toBe(0);
    expect(wrapper.output()).toContain('runnel cluster: SIGTERM, stopping');
    expect(tree.filter(alive)).toEqual([]);
    for (const port of ports) expect(await portFree(port)).toBe(true);
    expect(existsSync(join(dir, 'broker-1/.kafka_cleanshutdown'))).toBe(true);
    expect(existsSync(join(dir, 'redis/redis.sock'))).toBe(false);
    expect(existsSync(join(dir, 'cluster.json'))).toBe(false);
  });

  it('runnel cluster up in a terminal that closes: the nodes still stop cleanly, though its stderr is gone', async () => {
    const dir = await tempDir();
    // script(1) gives cluster up a pseudo-terminal; killing script closes it: SIGHUP (which never
    // reaches the nodes, in their own process groups), then EIO on every write to stderr.
    const term = await startProcess('script', ['-qec', `exec ${process.execPath} ${join(repo, 'packages/cli/bin/runnel.ts')} cluster up --brokers 1 --coordinators 1 --dir ${dir} --port 0`, '/dev/null']);
    started.push(term);
    await term.waitFor(/bootstrap\.servers=\S+/, 60_000);
    tree = descendants(term.child.pid!).map((p) => p.pid);
    const up = descendants(term.child.pid!).find((p) => p.cmd.includes('cluster up'))!;
    term.child.kill('SIGKILL');
    await until('cluster up to exit', () => !alive(up.pid), 30_000);
    expect(tree.filter(alive)).toEqual([]);
    expect(processesUnder(dir)).toEqual([]);
    expect(existsSync(join(dir, 'broker-1/.kafka_cleanshutdown'))).toBe(true);
    expect(existsSync(join(dir, 'cluster.json'))).toBe(false);
  });

  it('runnel cluster up, SIGTERM while it is still starting: a clean stop (exit 0), nothing started after it', async () => {
    const dir = await tempDir();
    const up = await startProcess(process.execPath, [join(repo, 'packages/cli/bin/runnel.ts'), 'cluster', 'up', '--brokers', '2', '--coordinators', '1', '--dir', dir, '--port', '0']);
    started.push(up);
    // Redis is ready: cluster up is now starting the controller, and the brokers come after it.
    await up.waitFor(/ready to accept connections/i, 60_000);
    up.child.kill('SIGTERM');
    expect(await up.exited()).toBe(0);
    expect(up.output()).toContain('runnel cluster: SIGTERM, stopping');
    expect(up.output()).not.toContain('cannot start');
    expect(up.output()).not.toContain('bootstrap.servers=');
    expect(processesUnder(dir)).toEqual([]);
    expect(existsSync(join(dir, 'cluster.json'))).toBe(false);
  });
});
