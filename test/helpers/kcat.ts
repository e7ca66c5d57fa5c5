/**
 * Runs the system `kcat` (librdkafka) as a child process for interop tests and fixture capture.
 * Every run has a deadline so that a client stuck retrying against a broken broker fails the test
 * instead of hanging it; stdin is written in full and closed, which is how `kcat -P` knows to
 * flush and exit.
 */
import { spawn, spawnSync } from 'node:child_process';

export interface KcatResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the deadline passed and the process was killed. */
  timedOut: boolean;
}

/** The kcat binary, or null when it is not installed (tests then skip with a reason). */
export function kcatPath(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v kcat'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** `kcat -V`'s first version line, e.g. `1.7.1 (librdkafka 2.0.2)`. */
export function kcatVersion(): { kcat: string; librdkafka: string } {
  const r = spawnSync('kcat', ['-V'], { encoding: 'utf8' });
  const m = /Version (\S+) .*librdkafka (\S+)/.exec(r.stdout);
  if (!m) throw new Error(`cannot read kcat version from: ${r.stdout}${r.stderr}`);
  return { kcat: m[1], librdkafka: m[2] };
}

export function runKcat(args: string[], options: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<KcatResult> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut });
    });
    // A client that exits early closes its stdin; ignore the resulting EPIPE, the exit code tells.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}
