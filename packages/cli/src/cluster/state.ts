import { spawn } from 'node:child_process';
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { RunnelError } from '@runnel/common';
import { redactRedisUrl } from '@runnel/metadata';

/**
 * What `runnel cluster up` keeps in `<dir>/cluster.json` while it runs: the lock on the directory
 * and what `cluster status` and `cluster down` read.
 *
 * Format (JSON, written whole through a temporary file and a rename, so a reader never sees half):
 *   { "pid": <the cluster up process>, "startedAt": ISO time, "ready": false | true,
 *     "redis": "redis+unix://..." , "bootstrap": "host:port,...",
 *     "processes": [{ "name": "broker-1", "pid": 123, "address": "PLAINTEXT://127.0.0.1:9092" }] }
 * Invariants: the file is created exclusively (a hard link, which fails if it exists, to a copy
 * already written whole) before anything else starts, so two
 * `cluster up` on one directory cannot both run (the second would delete the first's Redis
 * socket); it is removed once every child has exited. A file whose pid is not a running
 * `runnel cluster up` (the process was killed with -9) is stale and the next `cluster up` takes it.
 */
export interface ClusterState {
  pid: number;
  startedAt: string;
  ready: boolean;
  redis?: string;
  bootstrap?: string;
  processes: Array<{ name: string; pid: number; address: string }>;
}

export type ClusterErrorCode = 'IN_USE' | 'PORT_IN_USE' | 'NODE_EXITED' | 'NOT_RUNNING';

/** An operator's problem with `runnel cluster`: printed as one line, never a stack. */
export class ClusterError extends RunnelError<ClusterErrorCode> {}

const stateFile = (dir: string) => join(dir, 'cluster.json');

const inUse = (shownDir: string, pid: number) => new ClusterError('IN_USE',
  `${shownDir} is in use by a running cluster (pid ${pid}); see \`runnel cluster status --dir ${shownDir}\`, stop it with \`runnel cluster down --dir ${shownDir}\``);

export function readState(dir: string): ClusterState | null {
  try {
    return JSON.parse(readFileSync(stateFile(dir), 'utf8')) as ClusterState;
  } catch {
    return null; // absent, or being replaced at this instant
  }
}

/** True while `pid` is a live `runnel cluster up` (not a process that took over a recycled pid). */
export function supervisorAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('\0cluster\0') && cmd.includes('\0up');
  } catch {
    return true; // no /proc (not Linux): trust kill(0)
  }
}

/** Claims `dir` for this process, or throws IN_USE naming the cluster that holds it. */
export function claimDir(dir: string, shownDir: string): (update: Partial<ClusterState>) => void {
  const file = stateFile(dir);
  let state: ClusterState = { pid: process.pid, startedAt: new Date().toISOString(), ready: false, processes: [] };
  for (let attempt = 0; ; attempt++) {
    // Written whole under a name of our own, then linked into place (link fails if the file
    // exists): a second `cluster up` never reads a claim half written (an empty file would look
    // stale, and it would take the directory from under a running cluster).
    const mine = `${file}.${process.pid}`;
    writeFileSync(mine, JSON.stringify(state));
    try {
      linkSync(mine, file);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const other = readState(dir);
      if (other !== null && other.pid !== process.pid && supervisorAlive(other.pid)) {
        throw inUse(shownDir, other.pid);
      }
      rmSync(file, { force: true }); // stale: its cluster up was killed without cleaning up
    } finally {
      rmSync(mine, { force: true });
    }
  }
  return (update) => {
    state = { ...state, ...update };
    writeFileSync(`${file}.tmp`, JSON.stringify(state));
    renameSync(`${file}.tmp`, file);
  };
}

/** Removes the state file if this process holds it. */
export function releaseDir(dir: string): void {
  if (readState(dir)?.pid === process.pid) rmSync(stateFile(dir), { force: true });
}

/** Throws PORT_IN_USE for the first of `ports` that something already listens on. */
export async function checkPorts(host: string, ports: Array<{ port: number; name: string }>): Promise<void> {
  for (const { port, name } of ports) {
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const server = createServer();
      server.once('error', (err) => resolve(err));
      server.listen(port, host, () => server.close(() => resolve(null)));
    });
    if (error !== null) {
      const why = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be bound (${error.code ?? error.message})`;
      throw new ClusterError('PORT_IN_USE', `port ${host}:${port} for ${name} ${why}: pass another --port, or --port 0 for any free ports`);
    }
  }
}

/** The lines `cluster up` prints once ready, and `cluster status` prints while it runs. */
export function summary(state: ClusterState, brokers: number, coordinators: number): string {
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  const lines = [
    `runnel cluster is up: ${brokers} broker(s), ${coordinators} coordinator(s), metadata in ${state.redis === undefined ? state.redis : redactRedisUrl(state.redis)}`,
    `bootstrap.servers=${state.bootstrap}`,
    ...state.processes.map((p) => `  ${p.name.padEnd(16)} ${p.address.padEnd(28)} pid ${p.pid}${alive(p.pid) ? '' : ' (exited)'}`),
  ];
  return `${lines.join('\n')}\n`;
}

const counts = (s: ClusterState) => ({
  brokers: s.processes.filter((p) => p.name.startsWith('broker-')).length,
  coordinators: s.processes.filter((p) => p.name.startsWith('coordinator-')).length,
});

/** `runnel cluster status`: the running cluster in `dir`, or NOT_RUNNING. */
export function clusterStatus(dir: string, shownDir: string): string {
  const state = readState(dir);
  if (state === null || !supervisorAlive(state.pid)) throw new ClusterError('NOT_RUNNING', `no cluster is running in ${shownDir}`);
  if (!state.ready) return `runnel cluster in ${shownDir} is starting (pid ${state.pid})\n`;
  const { brokers, coordinators } = counts(state);
  return `${summary(state, brokers, coordinators)}  ${'cluster up'.padEnd(16)} ${shownDir.padEnd(28)} pid ${state.pid}\n`;
}

/** `runnel cluster down`: SIGTERM to the cluster's `cluster up` process, which stops the nodes, the controller and Redis in order; resolves once it has exited. */
export async function clusterDown(dir: string, shownDir: string, timeoutMs = 60_000): Promise<number> {
  const state = readState(dir);
  if (state === null || !supervisorAlive(state.pid)) throw new ClusterError('NOT_RUNNING', `no cluster is running in ${shownDir}`);
  process.kill(state.pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (supervisorAlive(state.pid)) {
    if (Date.now() > deadline) throw new ClusterError('NOT_RUNNING', `the cluster in ${shownDir} (pid ${state.pid}) is still stopping after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return state.pid;
}

/**
 * `runnel cluster up --detach`: the same `cluster up` as a background process (its own session,
 * output appended to `<dir>/cluster.log`); returns its state once every node is ready, or throws
 * with the reason it gave when it exits first.
 */
export async function detachClusterUp(dir: string, shownDir: string, argv: string[]): Promise<ClusterState> {
  const running = readState(dir);
  if (running !== null && supervisorAlive(running.pid)) {
    throw inUse(shownDir, running.pid);
  }
  mkdirSync(dir, { recursive: true });
  const log = join(dir, 'cluster.log');
  const logStart = existsSync(log) ? readFileSync(log).length : 0;
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, argv, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: string | undefined;
  child.once('exit', (code, signal) => { exited = String(code ?? signal); });
  child.once('error', (err) => { exited = err.message; });
  for (;;) {
    const state = readState(dir);
    if (state !== null && state.pid === child.pid && state.ready) {
      child.unref();
      return state;
    }
    if (exited !== undefined) {
      const said = readFileSync(log).subarray(logStart).toString().split('\n').filter((l) => l.startsWith('runnel')).at(-1);
      throw new ClusterError('NODE_EXITED', said !== undefined ? said.replace(/^runnel: (cannot start: )?/, '') : `cluster up exited (${exited}); see ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
