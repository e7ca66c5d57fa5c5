/**
 * Child processes for the comparison: brokers and load tools run in their own process groups so
 * one signal stops a JVM or a Node broker with everything it forked, and every group still alive
 * is killed with SIGKILL when the harness exits for any reason (normal end, error, Ctrl-C).
 * CPU and memory come from /proc: a live process's (or process group's) utime+stime and VmRSS, and
 * this process's cutime+cstime for load tools that have already exited and been reaped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Linux USER_HZ; /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

const liveGroups = new Set<number>();

function killAllGroups(): void {
  for (const pgid of liveGroups) {
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
  }
  liveGroups.clear();
}

let handlersInstalled = false;

/** Installed on the first spawn, so merely importing this module (e.g. in a test) changes nothing. */
function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', killAllGroups);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllGroups();
      process.stderr.write(`compare: ${signal}, stopped every broker and load tool\n`);
      process.exit(130);
    });
  }
}

/**
 * A process group someone else started (e.g. the nodes `runnel cluster up` spawns, each its own
 * group leader): killed with the rest when the harness exits, since SIGKILL to their parent
 * would leave them running.
 */
export function adoptGroup(pgid: number): void {
  installExitHandlers();
  liveGroups.add(pgid);
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  /** stdout and stderr interleaved, capped to the last 256 KiB. */
  output(): string;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal name). */
  exited(): Promise<number | string>;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the leader has exited. */
  stop(graceMs?: number): Promise<number | string>;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Called with each chunk of output (for live progress). */
  onOutput?: (text: string) => void;
}

const OUTPUT_CAP = 256 * 1024;

export function spawnGroup(command: string, args: string[], options: SpawnOptions = {}): Proc {
  installExitHandlers();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const startedAt = performance.now();
  if (child.pid === undefined) {
    // The 'error' event (ENOENT, EACCES) follows on the next tick; without a listener it would crash the run.
    child.once('error', () => {});
    throw new Error(`could not start ${command}`);
  }
  const pid = child.pid;
  liveGroups.add(pid);
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (b: Buffer) => {
    const s = b.toString('utf8');
    text += s;
    if (text.length > OUTPUT_CAP) text = text.slice(-OUTPUT_CAP);
    options.onOutput?.(s);
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exitedWith: number | string | undefined;
  const exit = new Promise<number | string>((resolve) => {
    child.on('error', (err) => { text += `\n${err.message}`; exitedWith = 'error'; resolve('error'); });
    // 'close' waits for the pipes to drain, so output() is complete when exited() resolves.
    child.on('close', (code, signal) => {
      exitedWith = code ?? signal ?? 'unknown';
      // The leader is gone; anything it left in the group goes with it.
      try { process.kill(-pid, 'SIGKILL'); } catch { /* empty group */ }
      liveGroups.delete(pid);
      resolve(exitedWith);
    });
  });
  exit.then(() => { for (const w of waiters) w(); });

  return {
    child,
    pid,
    startedAt,
    output: () => text,
    exited: () => exit,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = text.match(pattern);
          if (m) return done(() => resolve(m));
          if (exitedWith !== undefined) done(() => reject(new Error(`${command} exited (${exitedWith}) before ${pattern}: ${tail(text)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`${command} did not print ${pattern} within ${timeoutMs} ms: ${tail(text)}`))), timeoutMs);
        const done = (settle: () => void) => { clearTimeout(timer); waiters.delete(check); settle(); };
        waiters.add(check);
        check();
      });
    },
    async stop(graceMs = 10_000) {
      if (exitedWith !== undefined) return exitedWith;
      try { process.kill(-pid, 'SIGTERM'); } catch { /* gone */ }
      const timer = setTimeout(() => { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
      try { return await exit; } finally { clearTimeout(timer); }
    },
  };
}

/** Runs a command to completion with a deadline; rejects with its output on a non-zero exit. */
export async function run(command: string, args: string[], options: SpawnOptions & { timeoutMs: number }): Promise<{ output: string; wallMs: number; cpuSeconds: number }> {
  const before = childrenCpuSeconds();
  const p = spawnGroup(command, args, options);
  const timer = setTimeout(() => { void p.stop(2_000); }, options.timeoutMs);
  const code = await p.exited();
  clearTimeout(timer);
  const wallMs = performance.now() - p.startedAt;
  if (code !== 0) {
    const why = wallMs >= options.timeoutMs ? `timed out after ${Math.round(options.timeoutMs / 1000)} s` : `exited with ${code}`;
    throw new Error(`${shortName(command, args)} ${why}: ${tail(p.output())}`);
  }
  return { output: p.output(), wallMs, cpuSeconds: childrenCpuSeconds() - before };
}

function shortName(command: string, args: string[]): string {
  const main = args.find((a) => /^(org|kafka)\.[\w.]+$/.test(a)) ?? args.find((a) => a.endsWith('.ts')) ?? '';
  return `${command.split('/').pop()} ${main}`.trim();
}

/** The last few meaningful lines of a tool's output, for error rows. */
export function tail(text: string, lines = 6): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('SLF4J')).slice(-lines).join(' | ').slice(0, 800);
}

/** CPU seconds (user + system) a live process has used so far, or NaN if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds of a process and everything in its process group (every broker is spawned as a
 * group leader, so this is the broker with whatever it forked): utime + stime + cutime + cstime of
 * each member, read from /proc. NaN when the leader is gone.
 */
export function groupCpuSeconds(pid: number): number {
  let total = 0;
  let sawLeader = false;
  let entries: string[];
  try { entries = readdirSync('/proc'); } catch { return cpuSeconds(pid); }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try { stat = readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; /* exited meanwhile */ }
    // After the command name: state, ppid, pgrp, ... utime (14), stime, cutime, cstime (17).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const self = Number(name) === pid;
    if (!self && Number(fields[2]) !== pid) continue;
    if (self) sawLeader = true;
    total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
  }
  return sawLeader ? total : Number.NaN;
}

/** CPU seconds of this process's children that have exited and been reaped (cutime + cstime). */
export function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}

/** Resident set size in bytes, or NaN if the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the peak. */
export function sampleRss(pid: number, everyMs = 100): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    const v = rssBytes(pid);
    if (v > peak || Number.isNaN(peak)) peak = v;
  }, everyMs);
  return { stop() { clearInterval(timer); const v = rssBytes(pid); return Math.max(peak, Number.isNaN(v) ? 0 : v); } };
}

export function commandExists(command: string, args: string[] = ['-version']): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn(command, args, { stdio: 'ignore' });
    c.on('error', () => resolve(false));
    c.on('exit', (code) => resolve(code === 0));
  });
}
