/**
 * For tests that run Runnel the way a user or a supervisor does, through `npm start` or `npx`:
 * an environment as a newcomer's shell has it (no npm variables, no node_modules/.bin on PATH),
 * the processes still running from a directory, and whether a port is free again.
 */
import { readFileSync, readlinkSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The test's environment without what the outer `npm test` added (npm_* variables and the
 * node_modules/.bin directories on PATH), so `node` is the system's and npm starts from scratch.
 */
export function newcomerEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^npm_/i.test(k) || k === 'INIT_CWD' || k === 'NODE' || k.startsWith('VITEST') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  env.PATH = (process.env.PATH ?? '').split(':').filter((p) => p !== '' && !p.includes('node_modules')).join(':');
  return { ...env, ...extra };
}

/** Pids of the processes (other than this one) whose working directory or command line is under `dir`. */
export function processesUnder(dir: string): Array<{ pid: number; cmd: string }> {
  const found: Array<{ pid: number; cmd: string }> = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (cmd === '') continue; // a zombie: already exited, waiting for its parent to reap it
      if (cwd === dir || cwd.startsWith(`${dir}/`) || cmd.includes(dir)) found.push({ pid, cmd });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** True when nothing listens on host:port (we could bind it, and did not keep it). */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** The live descendants of `pid` (children, their children, ...), from /proc. */
export function descendants(pid: number): Array<{ pid: number; cmd: string }> {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the command (field 2) may contain spaces, so split after its ')'.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') parent.set(p, Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: Array<{ pid: number; cmd: string }> = [];
  const walk = (of: number) => {
    for (const [p, pp] of parent) {
      if (pp !== of) continue;
      let cmd = '';
      try { cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ').trim(); } catch { /* gone */ }
      out.push({ pid: p, cmd });
      walk(p);
    }
  };
  walk(pid);
  return out;
}

/** True while `pid` is a live process (not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
