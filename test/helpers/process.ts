/**
 * Child processes for cross-process tests (a broker started with `runnel start`, a controller, a
 * redis-server): start one, wait until a line of its output matches, and stop it. Output is kept
 * so a failing test can print it. Every wait has a deadline and fails with the output so far;
 * `stop()` sends SIGTERM, then SIGKILL after a grace period, and resolves once the process is gone.
 * Register `stop` in afterAll/afterEach: nothing here outlives the test file.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Started {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far, interleaved in arrival order. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output (past or future); rejects on exit or deadline. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited(): Promise<number | string>;
  stop(graceMs?: number): Promise<number | string>;
}

export interface StartOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Wait for this before resolving; a match is required within `timeoutMs`. */
  ready?: RegExp;
  timeoutMs?: number;
}

export async function startProcess(command: string, args: string[], options: StartOptions = {}): Promise<Started> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (b: Buffer) => {
    text += b.toString('utf8');
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);

  const exit = new Promise<number | string>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  // An unhandled rejection from a spawn error would otherwise crash the test worker.
  exit.catch(() => {});
  let exitedWith: number | string | undefined;
  let spawnError: Error | undefined;
  exit.then((c) => { exitedWith = c; for (const l of listeners) l(); }, (e: Error) => { spawnError = e; for (const l of listeners) l(); });

  const started: Started = {
    child,
    output: () => text,
    exited: () => exit,
    waitFor(pattern, timeoutMs = options.timeoutMs ?? 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = text.match(pattern);
          if (m) return done(() => resolve(m));
          if (spawnError) return done(() => reject(spawnError));
          if (exitedWith !== undefined) {
            return done(() => reject(new Error(`${command} exited (${exitedWith}) before printing ${pattern}; output:\n${text}`)));
          }
        };
        const timer = setTimeout(() => done(() => reject(new Error(`${command} did not print ${pattern} within ${timeoutMs} ms; output:\n${text}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 5_000) {
      if (exitedWith !== undefined || spawnError) return exitedWith ?? 'error';
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  if (options.ready) {
    try {
      await started.waitFor(options.ready);
    } catch (e) {
      await started.stop(1_000);
      throw e;
    }
  }
  return started;
}
