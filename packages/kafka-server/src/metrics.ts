import { ScrapedMetric, type Registry, type ScrapedSample as Sample } from '@runnel/common';
import { ApiKey, apiName, errorName } from '@runnel/protocol';

const TIME_BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];
const BYTES_BUCKETS = [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216];

/** Fixed buckets, counted per bucket (not cumulative) when observed; cumulated when rendered. */
class Buckets {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
  /** Prometheus' histogram samples: cumulative `_bucket{le}`, `_sum`, `_count`. */
  samples(name: string, labels: Record<string, string>, out: Sample[]): void {
    let cumulative = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: i < this.bounds.length ? String(this.bounds[i]) : '+Inf' }, value: cumulative });
    }
    out.push({ metricName: `${name}_sum`, labels, value: this.sum });
    out.push({ metricName: `${name}_count`, labels, value: this.count });
  }
}

/**
 * Request and connection metrics of a Kafka listener, named as the Prometheus JMX exporter names
 * Kafka's MBeans (docs/metrics.md): kafka.network:type=RequestMetrics,name=RequestsPerSec,request=X
 * is `kafka_network_requestmetrics_requests_total{request="X"}`, and so on.
 *
 * Hot path: one `RequestTracker` per API and version, found in a Map; counting a request adds to
 * its plain numbers (no labels, no allocation), and errors are counted once per error code field
 * of the response (per partition, never per record), as Kafka's `errorCounts`. The text is built
 * from these numbers when scraped. The metrics exist from the server's creation and are added to
 * a registry by {@link ServerMetrics.register} when the node serves `/metrics`.
 */
export class ServerMetrics {
  readonly #trackers = new Map<number, RequestTracker>();
  readonly #created = new Map<string, number>();
  readonly #closed = new Map<string, number>();
  readonly #authOk = new Map<string, number>();
  readonly #authFailed = new Map<string, number>();
  readonly #metrics: ScrapedMetric[];

  /**
   * `state` is read when scraped: open connections per listener, handlers running, and the bytes
   * reserved from queued.max.request.bytes.
   */
  constructor(state: () => {
    connections: Iterable<{ listener: string; inFlight: number }>; listeners: string[]; queuedBytes: number;
    /** The accept-time quotas' counters (connection-quotas.ts). */
    connectionQuotas?: { refusedPerIp: number; throttledAccepts: number; throttleMs: number };
  }) {
    const trackers = () => [...this.#trackers.values()].sort((a, b) => a.apiKey - b.apiKey || a.apiVersion - b.apiVersion);
    /** Per API (versions added up); Fetch is also reported as FetchConsumer (see RequestTracker). */
    const perApi = <T>(fold: (ts: RequestTracker[]) => T) => {
      const byApi = new Map<number, RequestTracker[]>();
      for (const t of trackers()) byApi.set(t.apiKey, [...(byApi.get(t.apiKey) ?? []), t]);
      return [...byApi].map(([apiKey, ts]) => ({ apiKey, request: apiName(apiKey), value: fold(ts) }));
    };
    const merged = (ts: RequestTracker[], pick: (t: RequestTracker) => Buckets) => {
      const b = new Buckets(pick(ts[0]!).bounds);
      for (const t of ts) {
        const x = pick(t);
        for (let i = 0; i < x.counts.length; i++) b.counts[i]! += x.counts[i]!;
        b.sum += x.sum;
        b.count += x.count;
      }
      return b;
    };
    const perListener = (m: Map<string, number>) => [...m].map(([listener, value]) => ({ labels: { listener }, value }));
    this.#metrics = [
      new ScrapedMetric('kafka_network_requestmetrics_requests_total', 'Requests received, per API and version (Kafka: RequestMetrics RequestsPerSec).', 'counter',
        () => trackers().map((t) => ({ labels: { request: apiName(t.apiKey), version: String(t.apiVersion) }, value: t.requests }))),
      new ScrapedMetric('kafka_network_requestmetrics_errors_total',
        'Error codes in responses, per API and error, NONE included: one per error field (per partition), as Kafka counts them (RequestMetrics ErrorsPerSec).', 'counter',
        () => perApi((ts) => {
          const codes = new Map<number, number>();
          for (const t of ts) for (const [code, n] of t.errors) codes.set(code, (codes.get(code) ?? 0) + n);
          return codes;
        }).flatMap(({ request, value }) => [...value].map(([code, n]) => ({ labels: { request, error: code === -1 ? 'UNKNOWN_SERVER_ERROR' : errorName(code) }, value: n })))),
      new ScrapedMetric('kafka_network_requestmetrics_totaltimems',
        'Milliseconds from a request\'s arrival to its response being queued, per API (RequestMetrics TotalTimeMs; Fetch is also reported as FetchConsumer).', 'histogram',
        () => {
          const out: Sample[] = [];
          for (const { apiKey, request, value } of perApi((ts) => merged(ts, (t) => t.time))) {
            value.samples('kafka_network_requestmetrics_totaltimems', { request }, out);
            // Kafka times a fetch both as Fetch and as FetchConsumer or FetchFollower; Runnel's
            // followers fetch over RPC, so every Kafka Fetch is a consumer's.
            if (apiKey === ApiKey.Fetch) value.samples('kafka_network_requestmetrics_totaltimems', { request: 'FetchConsumer' }, out);
          }
          return out;
        }),
      new ScrapedMetric('kafka_network_requestmetrics_requestbytes', 'Request sizes in bytes, per API (RequestMetrics RequestBytes).', 'histogram', () => {
        const out: Sample[] = [];
        for (const { request, value } of perApi((ts) => merged(ts, (t) => t.requestBytes))) value.samples('kafka_network_requestmetrics_requestbytes', { request }, out);
        return out;
      }),
      new ScrapedMetric('runnel_network_response_bytes_total', 'Bytes of responses written, per API (framing included).', 'counter',
        () => perApi((ts) => ts.reduce((n, t) => n + t.responseBytes, 0)).map(({ request, value }) => ({ labels: { request }, value }))),
      new ScrapedMetric('kafka_server_socket_server_metrics_connection_creation_total', 'Connections accepted, per listener (socket-server-metrics connection-creation-total).', 'counter',
        () => perListener(this.#created)),
      new ScrapedMetric('kafka_server_socket_server_metrics_connection_close_total', 'Connections closed, per listener (socket-server-metrics connection-close-total).', 'counter',
        () => perListener(this.#closed)),
      new ScrapedMetric('kafka_server_socket_server_metrics_connection_count', 'Open connections, per listener (socket-server-metrics connection-count).', 'gauge', () => {
        const s = state();
        const counts = new Map(s.listeners.map((l) => [l, 0]));
        for (const c of s.connections) counts.set(c.listener, (counts.get(c.listener) ?? 0) + 1);
        return perListener(counts);
      }),
      new ScrapedMetric('kafka_server_socket_server_metrics_successful_authentication_total', 'SASL authentications that succeeded, per listener (socket-server-metrics successful-authentication-total).', 'counter',
        () => perListener(this.#authOk)),
      new ScrapedMetric('kafka_server_socket_server_metrics_failed_authentication_total', 'SASL authentications that failed, per listener (socket-server-metrics failed-authentication-total).', 'counter',
        () => perListener(this.#authFailed)),
      new ScrapedMetric('runnel_network_requests_in_flight', 'Requests being handled (read, not yet answered), over all connections.', 'gauge', () => {
        let n = 0;
        for (const c of state().connections) n += c.inFlight;
        return [{ labels: {}, value: n }];
      }),
      new ScrapedMetric('runnel_network_connections_refused_per_ip_total', 'Connections closed on accept because their IP had max.connections.per.ip (or its override) open.', 'counter',
        () => [{ labels: {}, value: state().connectionQuotas?.refusedPerIp ?? 0 }]),
      new ScrapedMetric('runnel_network_connection_accept_throttled_total', 'Accepted connections held back by max.connection.creation.rate before being served.', 'counter',
        () => [{ labels: {}, value: state().connectionQuotas?.throttledAccepts ?? 0 }]),
      new ScrapedMetric('runnel_network_connection_accept_throttle_ms_total', 'Milliseconds connections were held back by max.connection.creation.rate, summed (Kafka: connection-accept-throttle-time).', 'counter',
        () => [{ labels: {}, value: state().connectionQuotas?.throttleMs ?? 0 }]),
      new ScrapedMetric('runnel_network_queued_request_bytes', 'Bytes of requests being received or handled (reserved from queued.max.request.bytes).', 'gauge',
        () => [{ labels: {}, value: state().queuedBytes }]),
    ];
  }

  /** Adds these metrics to a registry (a node's `/metrics`). */
  register(registry: Registry): void {
    for (const m of this.#metrics) registry.registerMetric(m.asMetric());
  }

  /** The tracker of one API and version (made on first use). */
  tracker(apiKey: number, apiVersion: number): RequestTracker {
    const key = apiKey * 256 + apiVersion;
    let t = this.#trackers.get(key);
    if (!t) this.#trackers.set(key, (t = new RequestTracker(apiKey, apiVersion)));
    return t;
  }

  /** Counts one SASL authentication (or re-authentication) of a listener. */
  authentication(listener: string, ok: boolean): void {
    const m = ok ? this.#authOk : this.#authFailed;
    m.set(listener, (m.get(listener) ?? 0) + 1);
  }

  connectionOpened(listener: string): void {
    this.#created.set(listener, (this.#created.get(listener) ?? 0) + 1);
  }

  connectionClosed(listener: string): void {
    this.#closed.set(listener, (this.#closed.get(listener) ?? 0) + 1);
  }
}

/** What one API and version counted: plain numbers, rendered when scraped. */
export class RequestTracker {
  readonly apiKey: number;
  readonly apiVersion: number;
  requests = 0;
  responseBytes = 0;
  readonly time = new Buckets(TIME_BUCKETS_MS);
  readonly requestBytes = new Buckets(BYTES_BUCKETS);
  /** Error code (-1: the handler failed) → how many error fields carried it. */
  readonly errors = new Map<number, number>();
  readonly #count = (code: number) => { this.errors.set(code, (this.errors.get(code) ?? 0) + 1); };

  constructor(apiKey: number, apiVersion: number) {
    this.apiKey = apiKey;
    this.apiVersion = apiVersion;
  }

  /** A request of `bytes` (its frame) was read and goes to its handler. */
  received(bytes: number): void {
    this.requests++;
    this.requestBytes.observe(bytes);
  }

  /** Its response (undefined: none, acks=0) was queued `ms` after the request arrived. */
  answered(ms: number, response: unknown, parts: readonly Buffer[] | null): void {
    this.time.observe(ms);
    if (parts) for (const p of parts) this.responseBytes += p.length;
    if (response !== undefined) countErrorCodes(response, this.#count);
  }

  /** The handler threw: the connection is closed, as Kafka does; counted as UNKNOWN_SERVER_ERROR. */
  failed(ms: number): void {
    this.time.observe(ms);
    this.#count(-1);
  }
}

/**
 * Calls `visit` with every `errorCode` field of a response body, nested ones included (per topic,
 * per partition). Record sets (Buffers) and scalars are not entered.
 */
export function countErrorCodes(body: unknown, visit: (code: number) => void): void {
  if (body === null || typeof body !== 'object' || ArrayBuffer.isView(body)) return;
  if (Array.isArray(body)) {
    for (const item of body) countErrorCodes(item, visit);
    return;
  }
  for (const key in body) {
    const value = (body as Record<string, unknown>)[key];
    if (key === 'errorCode' && typeof value === 'number') visit(value);
    else if (value !== null && typeof value === 'object') countErrorCodes(value, visit);
  }
}
