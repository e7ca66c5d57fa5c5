import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from '@runnel/common';

/**
 * The Prometheus endpoint: `GET /metrics` renders the registry (the roles' gauges are computed at
 * that moment); anything else is 404. `listener` is `host:port` (`runnel.metrics.listener`).
 */
export async function serveMetrics(registry: Registry, listener: string): Promise<{ url: string; close: () => Promise<void> }> {
  const colon = listener.lastIndexOf(':');
  const host = colon > 0 ? listener.slice(0, colon) : '127.0.0.1';
  const port = Number(listener.slice(colon + 1));
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(`metrics failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    url: `http://${host}:${bound.port}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
