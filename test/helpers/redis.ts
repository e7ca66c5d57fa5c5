/**
 * A throwaway Redis for tests: the Debian `redis-server` on a unix socket in a fresh temp dir
 * (no TCP port, so parallel test files never collide), with the append-only file fsynced on every
 * write so that a SIGKILL loses nothing that was acknowledged. `url` is what `runnel.redis.url`
 * takes: `redis+unix://<dir>/redis.sock`.
 *
 * `kill()` leaves the directory in place: `startRedis({ dir })` starts a new server on the same
 * data (the restart case). `stop()` shuts down gracefully and removes the directory. Register one
 * of them in afterAll/afterEach: nothing here outlives the test file.
 *
 * It pings with `redis-cli` rather than a client library: ioredis has one owner (@runnel/metadata).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type Started } from './process.ts';

export interface TestRedis {
  /** `redis+unix://` + the socket path. */
  readonly url: string;
  readonly socketPath: string;
  readonly dir: string;
  readonly process: Started;
  /** SHUTDOWN (graceful), then remove the directory. */
  stop(): Promise<void>;
  /** SIGKILL, keeping the directory so a new server can start on the same data. */
  kill(): void;
}

/** `redis-cli -s <socket> <args>`; resolves with trimmed stdout, rejects on a non-zero exit. */
export function redisCli(socketPath: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-s', socketPath, ...args], { timeout: 5_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

export async function startRedis(o: { dir?: string; timeoutMs?: number } = {}): Promise<TestRedis> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'runnel-redis-'));
  const socketPath = join(dir, 'redis.sock');
  const timeoutMs = o.timeoutMs ?? 15_000;
  const proc = await startProcess('redis-server', [
    '--port', '0',
    '--unixsocket', socketPath,
    '--unixsocketperm', '700',
    '--dir', dir,
    '--appendonly', 'yes',
    '--appendfsync', 'always',
    '--save', '',
    '--daemonize', 'no',
    '--loglevel', 'notice',
  ], { ready: /ready to accept connections/i, timeoutMs });

  // The ready line and the socket answering are not ordered on every version: wait for PONG too.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await redisCli(socketPath, 'ping')) === 'PONG') break;
    } catch (e) {
      if (Date.now() > deadline) {
        await proc.stop(1_000);
        throw new Error(`redis-server did not answer PING within ${timeoutMs} ms: ${(e as Error).message}\n${proc.output()}`);
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  let stopped = false;
  return {
    url: 'redis+unix://' + socketPath,
    socketPath,
    dir,
    process: proc,
    async stop() {
      if (!stopped) {
        stopped = true;
        // SHUTDOWN closes the connection without a reply; the process exiting is the signal.
        await redisCli(socketPath, 'shutdown', 'nosave').catch(() => {});
        await proc.stop(5_000);
      }
      rmSync(dir, { recursive: true, force: true });
    },
    kill() {
      stopped = true;
      proc.child.kill('SIGKILL');
    },
  };
}
