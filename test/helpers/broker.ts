/**
 * A real Runnel broker process for end-to-end tests: `runnel start` on an ephemeral port with its
 * data in a fresh temporary directory. The port comes from the broker's own "ready" log line, so
 * there is no race for a free port.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type Started } from './process.ts';

const runnel = join(import.meta.dirname, '../../packages/cli/bin/runnel.ts');

export interface TestBroker {
  readonly port: number;
  readonly bootstrap: string;
  readonly logDir: string;
  readonly process: Started;
  /** SIGTERM and wait; the data directory is kept until `cleanup`. */
  stop(): Promise<number | string>;
  /** Stop (if running) and delete the data directory. */
  cleanup(): Promise<void>;
  /** Peak resident memory (VmHWM) and current RSS of the broker process, in bytes. */
  memory(): Promise<{ rss: number; peak: number }>;
}

/** `set` become `--set k=v` arguments; `args` are passed as they are (e.g. `--config FILE`). */
export async function startBroker(options: { set?: string[]; args?: string[]; logDir?: string; env?: Record<string, string> } = {}): Promise<TestBroker> {
  const logDir = options.logDir ?? await mkdtemp(join(tmpdir(), 'runnel-test-'));
  const args = [runnel, 'start', '--set', 'listeners=PLAINTEXT://127.0.0.1:0', '--set', `log.dirs=${logDir}`,
    '--set', 'group.initial.rebalance.delay.ms=0', ...(options.set ?? []).flatMap((s) => ['--set', s]), ...(options.args ?? [])];
  const proc = await startProcess(process.execPath, args, { env: options.env });
  const match = await proc.waitFor(/"listener":"PLAINTEXT:\/\/127\.0\.0\.1:(\d+)".*runnel is ready/, 30_000);
  const port = Number(match[1]);
  return {
    port,
    bootstrap: `127.0.0.1:${port}`,
    logDir,
    process: proc,
    stop: () => proc.stop(),
    async cleanup() {
      await proc.stop();
      await rm(logDir, { recursive: true, force: true });
    },
    async memory() {
      const { readFile } = await import('node:fs/promises');
      const status = await readFile(`/proc/${proc.child.pid}/status`, 'utf8');
      const kb = (field: string) => Number(status.match(new RegExp(`${field}:\\s+(\\d+) kB`))?.[1] ?? 0) * 1024;
      return { rss: kb('VmRSS'), peak: kb('VmHWM') };
    },
  };
}
