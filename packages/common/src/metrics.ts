import { collectDefaultMetrics, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's metrics registry: Node's own metrics (CPU, memory, event-loop lag, GC) under the
 * `runnel_` prefix, to which each role adds its gauges. Roles compute their values when scraped
 * (`collect`), so nothing is tracked on the request path for metrics' sake.
 */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'runnel_' });
  return registry;
}
