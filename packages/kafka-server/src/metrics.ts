import { Counter, Gauge, Histogram, type Registry } from '@runnel/common';
import { ApiKey, apiName, errorName } from '@runnel/protocol';

/**
 * Request and connection metrics of a Kafka listener, named as the Prometheus JMX exporter names
 * Kafka's MBeans (docs/metrics.md): kafka.network:type=RequestMetrics,name=RequestsPerSec,request=X
 * is `kafka_network_requestmetrics_requests_total{request="X"}`, and so on.
 *
 * Hot path: one `RequestTracker` is looked up per request from a cache keyed by API and version
 * (the prom-client children are made once), so counting a request allocates nothing; errors are
 * counted once per error code field of the response (per partition, never per record), as
 * Kafka's `errorCounts`. The metrics exist from the server's creation and are added to a registry
 * by {@link ServerMetrics.register} when the node serves `/metrics`.
 */
export class ServerMetrics {
  readonly requests = new Counter({
    name: 'kafka_network_requestmetrics_requests_total', help: 'Requests received, per API and version (Kafka: RequestMetrics RequestsPerSec).',
    labelNames: ['request', 'version'] as const, registers: [],
  });
  readonly errors = new Counter({
    name: 'kafka_network_requestmetrics_errors_total',
    help: 'Error codes in responses, per API and error, NONE included: one per error field (per partition), as Kafka counts them (RequestMetrics ErrorsPerSec).',
    labelNames: ['request', 'error'] as const, registers: [],
  });
  readonly totalTime = new Histogram({
    name: 'kafka_network_requestmetrics_totaltimems',
    help: 'Milliseconds from a request\'s arrival to its response being queued, per API (RequestMetrics TotalTimeMs; Fetch is also counted as FetchConsumer).',
    labelNames: ['request'] as const, registers: [],
    buckets: [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000],
  });
  readonly requestBytes = new Histogram({
    name: 'kafka_network_requestmetrics_requestbytes', help: 'Request sizes in bytes, per API (RequestMetrics RequestBytes).',
    labelNames: ['request'] as const, registers: [],
    buckets: [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216],
  });
  readonly responseBytes = new Counter({
    name: 'runnel_network_response_bytes_total', help: 'Bytes of responses written, per API (framing included).',
    labelNames: ['request'] as const, registers: [],
  });
  readonly connectionsCreated = new Counter({
    name: 'kafka_server_socket_server_metrics_connection_creation_total', help: 'Connections accepted, per listener (socket-server-metrics connection-creation-total).',
    labelNames: ['listener'] as const, registers: [],
  });
  readonly connectionsClosed = new Counter({
    name: 'kafka_server_socket_server_metrics_connection_close_total', help: 'Connections closed, per listener (socket-server-metrics connection-close-total).',
    labelNames: ['listener'] as const, registers: [],
  });
  readonly #trackers = new Map<number, RequestTracker>();
  readonly #errorChildren = new Map<number, Counter.Internal>();
  readonly #gauges: Gauge[] = [];

  /**
   * `state` is read when scraped: open connections per listener, handlers running, and the bytes
   * reserved from queued.max.request.bytes.
   */
  constructor(state: () => { connections: Iterable<{ listener: string; inFlight: number }>; listeners: string[]; queuedBytes: number }) {
    this.#gauges.push(
      new Gauge({
        name: 'kafka_server_socket_server_metrics_connection_count', help: 'Open connections, per listener (socket-server-metrics connection-count).',
        labelNames: ['listener'], registers: [],
        collect() {
          const s = state();
          const counts = new Map(s.listeners.map((l) => [l, 0]));
          for (const c of s.connections) counts.set(c.listener, (counts.get(c.listener) ?? 0) + 1);
          this.reset();
          for (const [listener, n] of counts) this.set({ listener }, n);
        },
      }),
      new Gauge({
        name: 'runnel_network_requests_in_flight', help: 'Requests being handled (read, not yet answered), over all connections.', registers: [],
        collect() {
          let n = 0;
          for (const c of state().connections) n += c.inFlight;
          this.set(n);
        },
      }),
      new Gauge({
        name: 'runnel_network_queued_request_bytes', help: 'Bytes of requests being received or handled (reserved from queued.max.request.bytes).', registers: [],
        collect() { this.set(state().queuedBytes); },
      }),
    );
  }

  /** Adds these metrics to a registry (a node's `/metrics`). */
  register(registry: Registry): void {
    const all: unknown[] = [this.requests, this.errors, this.totalTime, this.requestBytes, this.responseBytes, this.connectionsCreated, this.connectionsClosed, ...this.#gauges];
    for (const m of all) registry.registerMetric(m as Parameters<Registry['registerMetric']>[0]);
  }

  /** The cached children of one API and version (made on first use). */
  tracker(apiKey: number, apiVersion: number): RequestTracker {
    const key = apiKey * 256 + apiVersion;
    let t = this.#trackers.get(key);
    if (!t) this.#trackers.set(key, (t = new RequestTracker(this, apiKey, apiVersion)));
    return t;
  }

  /** @internal the errors child of one API and code. */
  errorChild(apiKey: number, code: number): Counter.Internal {
    const key = apiKey * 65536 + (code & 0xffff);
    let c = this.#errorChildren.get(key);
    if (!c) this.#errorChildren.set(key, (c = this.errors.labels({ request: apiName(apiKey), error: errorName(code) })));
    return c;
  }
}

/** The prom-client children one API and version counts into. */
export class RequestTracker {
  readonly #metrics: ServerMetrics;
  readonly #apiKey: number;
  readonly #requests: Counter.Internal;
  readonly #time: Histogram.Internal<'request'>[];
  readonly #requestBytes: Histogram.Internal<'request'>;
  readonly #responseBytes: Counter.Internal;

  constructor(metrics: ServerMetrics, apiKey: number, apiVersion: number) {
    const request = apiName(apiKey);
    this.#metrics = metrics;
    this.#apiKey = apiKey;
    this.#requests = metrics.requests.labels({ request, version: String(apiVersion) });
    // Kafka times a fetch both as Fetch and as FetchConsumer or FetchFollower; Runnel's followers
    // fetch over RPC, so every Kafka Fetch is a consumer's.
    this.#time = [metrics.totalTime.labels({ request })];
    if (apiKey === ApiKey.Fetch) this.#time.push(metrics.totalTime.labels({ request: 'FetchConsumer' }));
    this.#requestBytes = metrics.requestBytes.labels({ request });
    this.#responseBytes = metrics.responseBytes.labels({ request });
  }

  /** A request of `bytes` (its frame) was read and goes to its handler. */
  received(bytes: number): void {
    this.#requests.inc();
    this.#requestBytes.observe(bytes);
  }

  /** Its response (undefined: none, acks=0) was queued `ms` after the request arrived. */
  answered(ms: number, response: unknown, parts: readonly Buffer[] | null): void {
    for (const t of this.#time) t.observe(ms);
    if (parts) {
      let n = 0;
      for (const p of parts) n += p.length;
      this.#responseBytes.inc(n);
    }
    if (response !== undefined) countErrorCodes(response, (code) => this.#metrics.errorChild(this.#apiKey, code).inc());
  }

  /** The handler threw: the connection is closed, as Kafka does; counted as UNKNOWN_SERVER_ERROR. */
  failed(ms: number): void {
    for (const t of this.#time) t.observe(ms);
    this.#metrics.errorChild(this.#apiKey, -1).inc();
  }
}

/**
 * Calls `visit` with every `errorCode` field of a response body, nested ones included (per topic,
 * per partition). Record sets (Buffers) and scalars are not entered.
 */
export function countErrorCodes(body: unknown, visit: (code: number) => void): void {
  if (body === null || typeof body !== 'object' || Buffer.isBuffer(body)) return;
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
