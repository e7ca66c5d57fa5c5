// The shared test helpers work as documented: a free port can be bound, kcat runs and reports
// librdkafka's version, child processes are awaited, waited on and stopped.
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from './ports.ts';
import { kcatPath, kcatVersion, runKcat } from './kcat.ts';
import { startProcess } from './process.ts';

describe('test helpers', () => {
  it('freePort returns a port that can be bound', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const server = createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it.skipIf(kcatPath() === null)('runs kcat and reads its librdkafka version', async () => {
    expect(kcatVersion().librdkafka).toMatch(/^\d+\.\d+\.\d+/);
    // Nothing listens on a freshly freed port: -L fails within its timeout instead of hanging.
    const port = await freePort();
    const r = await runKcat(['-L', '-b', `127.0.0.1:${port}`, '-m', '2'], { timeoutMs: 20_000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
  });

  it('startProcess waits for a ready line, and stop() ends the process', async () => {
    const p = await startProcess(process.execPath, ['-e', 'console.log("listening on 1234"); setInterval(() => {}, 1000)'], { ready: /listening on (\d+)/ });
    expect((await p.waitFor(/listening on (\d+)/))[1]).toBe('1234');
    expect(await p.stop()).toBe('SIGTERM');
  });

  it('startProcess reports an early exit with the output so far', async () => {
    await expect(startProcess(process.execPath, ['-e', 'console.error("boom"); process.exit(3)'], { ready: /never/ }))
      .rejects.toThrow(/exited \(3\).*\n.*boom/s);
  });
});
