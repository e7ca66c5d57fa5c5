/**
 * Ephemeral ports for tests that must pass a port to another process before it binds (kcat,
 * spawned brokers). Prefer binding to port 0 yourself when the server is in-process; this helper
 * asks the kernel for a free port, releases it and returns the number, so another process could
 * in principle take it first; the caller should retry on EADDRINUSE.
 */
import { createServer } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no TCP address'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
