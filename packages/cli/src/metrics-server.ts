import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMetricsRegistry, type BrokerConfig, type Logger, type Registry } from '@runnel/common';

/**
 * The Prometheus endpoint: `GET /metrics` renders the registry (the roles' gauges are computed at
 * that moment); anything else is 404. `listener` is `host:port` (`runnel.metrics.listener`).
 */
export interface MetricsServer { url: string; close(): Promise<void> }

export async function serveMetrics(registry: Registry, listener: string): Promise<MetricsServer> {
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

/**
 * The node's Prometheus endpoint when `runnel.metrics.listener` is set (opt-in: a fixed port would
 * clash between nodes on one machine); `register` adds the roles' gauges to a fresh registry.
 */
export async function startMetrics(config: BrokerConfig, register: (registry: Registry) => void, log: Logger): Promise<MetricsServer | undefined> {
  const listener = config.get('runnel.metrics.listener');
  if (!listener) return undefined;
  const registry = createMetricsRegistry();
  register(registry);
  const metrics = await serveMetrics(registry, listener);
  log.info({ url: metrics.url }, 'metrics endpoint ready');
  return metrics;
}
