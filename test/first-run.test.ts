// A newcomer's first command: a fresh clone of this repository (its HEAD), nothing installed (no
// node_modules, no native build), the system Node first on PATH, and `npm start` as the README
// says. It must install, build the native core, start on the pinned Node 24, serve kcat, and stop
// cleanly when npm (only npm, as a supervisor would) gets SIGTERM.
//
// Speed, honestly: npm installs everything into the clone from its warm cache, with
// prefer-offline (no registry round trip per package for what the cache has; anything missing is
// still fetched). Cargo builds the crate from the clone's sources; only its compiled crates.io
// dependencies come from this repository's own native build (CARGO_TARGET_DIR=native/target,
// outside the clone, always built before the tests run, also on a fresh CI machine where a
// separate cache would start empty and cost a second full build of every dependency), so the
// clone itself still starts with nothing built. The clone's crate has its own path, so cargo
// builds it as a unit of its own there and copies its .node into the clone, never into native/.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKcat } from './helpers/kcat.ts';
import { startProcess, type Started } from './helpers/process.ts';
import { until } from './helpers/until.ts';
import { newcomerEnv, portFree, processesUnder } from './helpers/wrappers.ts';

const repo = join(import.meta.dirname, '..');
let base: string;
let clone: string;
let npmStart: Started | undefined;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'runnel-first-run-'));
  clone = join(base, 'runnel');
  execFileSync('git', ['clone', '--quiet', repo, clone], { stdio: 'pipe' });
});

afterAll(async () => {
  await npmStart?.stop(10_000);
  for (const p of processesUnder(clone ?? '/nonexistent')) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  if (base) await rm(base, { recursive: true, force: true });
});

describe('a fresh clone', () => {
  it('has nothing installed, and the system node comes first on PATH', () => {
    expect(existsSync(join(clone, 'node_modules'))).toBe(false);
    expect(readdirSync(join(clone, 'native')).filter((n) => n.endsWith('.node'))).toEqual([]);
    const env = newcomerEnv();
    const systemNode = execFileSync('sh', ['-c', 'command -v node && node --version'], { env, encoding: 'utf8' });
    expect(systemNode).not.toContain('node_modules');
  });

  it('`npm start` installs, builds, serves kcat on Node 24, and stops cleanly on SIGTERM to npm', async () => {
    const cargoTarget = join(repo, 'native/target');
    // Port 0: this machine runs other brokers; everything else is the README's defaults (./data).
    npmStart = await startProcess('npm', ['start'], {
      cwd: clone,
      env: newcomerEnv({ CARGO_TARGET_DIR: cargoTarget, npm_config_prefer_offline: 'true', KAFKA_LISTENERS: 'PLAINTEXT://127.0.0.1:0' }),
    });
    const ready = await npmStart.waitFor(/"listener":"PLAINTEXT:\/\/127\.0\.0\.1:(\d+)"[^\n]*runnel is ready/, 540_000);
    const port = Number(ready[1]);
    expect(npmStart.output()).toContain('[bootstrap] npm ci');
    expect(npmStart.output()).toContain('[bootstrap] npm run build --workspace @runnel/native');

    // The broker is the pinned Node 24, a direct child of npm (no shell in between to lose a signal).
    const broker = processesUnder(clone).filter((p) => p.cmd.includes('runnel.ts start'));
    expect(broker).toHaveLength(1);
    const version = execFileSync('sh', ['-c', `readlink -f /proc/${broker[0]!.pid}/exe`], { encoding: 'utf8' }).trim();
    expect(execFileSync(version, ['--version'], { encoding: 'utf8' })).toMatch(/^v24\./);
    expect(execFileSync('ps', ['-o', 'ppid=', '-p', String(broker[0]!.pid)], { encoding: 'utf8' }).trim()).toBe(String(npmStart.child.pid));

    const bootstrap = `127.0.0.1:${port}`;
    const produced = await runKcat(['-b', bootstrap, '-P', '-t', 'first-run', '-K', ':'], { input: 'a:1\nb:2\nc:3\n' });
    expect(produced.code).toBe(0);
    const consumed = await runKcat(['-b', bootstrap, '-C', '-t', 'first-run', '-e', '-f', '%k=%s@%o\n']);
    expect(consumed.stdout.trim().split('\n')).toEqual(['a=1@0', 'b=2@1', 'c=3@2']);

    // SIGTERM to npm only, not its process group: npm forwards it to the broker.
    npmStart.child.kill('SIGTERM');
    expect(await npmStart.exited()).toBe(0);
    expect(npmStart.output()).toContain('runnel stopped');
    expect(existsSync(join(clone, 'data/.kafka_cleanshutdown'))).toBe(true);
    expect(await portFree(port)).toBe(true);
    await until('no process left under the clone', () => processesUnder(clone).length === 0, 10_000)
      .catch(() => { throw new Error(`still running: ${JSON.stringify(processesUnder(clone))}`); });
  }, 600_000);

  it('every npm script bootstraps first, then runs nothing through a `node` the shell looked up before the install', () => {
    // The run above proves `npm start`; the other scripts share its form, which is what makes them
    // work as a first command too: bash looked `node` up (the system's) before bootstrap installed
    // node_modules/.bin/node, so after `&&` Node is run by path (or through a bin whose
    // `#!/usr/bin/env node` finds the pinned one), and a long-running command is exec'd so a
    // signal from npm reaches it.
    const { scripts } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    for (const [name, command] of Object.entries(scripts)) {
      expect(command, name).toMatch(/^node scripts\/bootstrap\.mjs && /);
      const rest = command.slice('node scripts/bootstrap.mjs && '.length);
      expect(rest, name).not.toMatch(/(^|[;&|]\s*|\bexec\s+)node\s/);
    }
    expect(scripts.start).toMatch(/&& exec node_modules\/\.bin\/node /);
  });

  it('then takes the fast path: bootstrap has nothing to do', () => {
    const r = spawnSync('node', ['scripts/bootstrap.mjs'], { cwd: clone, env: newcomerEnv({ CARGO_TARGET_DIR: join(repo, 'native/target') }), encoding: 'utf8' });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, '', '']);
  });
});
