import { collectDefaultMetrics, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** One sample of a {@link ScrapedMetric}: `metricName` for a histogram's `_bucket`, `_sum`, `_count`. */
export type ScrapedSample = { labels: Record<string, string>; value: number; metricName?: string };

/**
 * A metric rendered from plain numbers when scraped, for hot paths: what the registry needs of a
 * metric (`name`, `help`, `type`, `get()`), with nothing done per event but the caller's own
 * arithmetic (prom-client's labelled children hash their labels on every increment).
 * Register it with `registry.registerMetric(m.asMetric())`.
 */
export class ScrapedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator = 'sum' as const;
  readonly #values: () => ScrapedSample[];
  constructor(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => ScrapedSample[]) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#values = values;
  }
  get(): { name: string; help: string; type: string; values: ScrapedSample[]; aggregator: 'sum' } {
    return { name: this.name, help: this.help, type: this.type, values: this.#values(), aggregator: 'sum' };
  }
  reset(): void {}
  /** This, typed as the registry's metric. */
  asMetric(): Parameters<Registry['registerMetric']>[0] {
    return this as unknown as Parameters<Registry['registerMetric']>[0];
  }
}

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
