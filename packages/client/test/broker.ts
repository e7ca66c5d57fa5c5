/**
 * A real broker process for this package's tests: `runnel start` on port 0 in a temp dir; the
 * port comes from its "runnel is ready" log line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type Started } from '../../../test/helpers/process.ts';

const runnel = join(import.meta.dirname, '../../cli/bin/runnel.ts');

export interface Broker { port: number; bootstrap: string; process: Started; stop(): Promise<void> }

export async function startBroker(set: string[] = []): Promise<Broker> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-client-test-'));
  const args = [runnel, 'start', '--set', 'listeners=PLAINTEXT://127.0.0.1:0', '--set', `log.dirs=${dir}`, ...set.flatMap((s) => ['--set', s])];
  const proc = await startProcess(process.execPath, args);
  let port: number;
  try {
    port = Number((await proc.waitFor(/"listener":"PLAINTEXT:\/\/[^"]*:(\d+)".*runnel is ready/, 30_000))[1]);
  } catch (err) {
    await proc.stop(1_000);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    bootstrap: `127.0.0.1:${port}`,
    process: proc,
    async stop() {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
