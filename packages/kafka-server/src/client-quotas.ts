/**
 * Client quotas (KIP-13, KIP-55, KIP-219, KIP-546): the DescribeClientQuotas and AlterClientQuotas
 * handlers over the metadata's `clientQuotas`, and their enforcement on Produce and Fetch.
 *
 * Enforcement is per node, as in Kafka: each node measures the bytes of each quota entity with a
 * sampled rate (`quota.window.num` samples of `quota.window.size.seconds`) and, past the quota,
 * answers at once with `throttle_time_ms` and then mutes the connection for that long (KIP-219;
 * KafkaServer does the muting for any response carrying a throttle). A Produce over quota is
 * still written (its bytes were received); a Fetch over quota is answered empty, its bytes not
 * counted (nothing is lost: the client fetches the same offsets after the throttle), and a fetch
 * never asks for more than the quota allows in one window (Kafka's getMaxValueInQuotaWindow), so
 * a large max_bytes cannot keep a client throttled forever. `request_percentage` and
 * `controller_mutation_rate` are stored and described but not enforced.
 */
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import {
  CLIENT_QUOTA_KEYS, clientQuotaKey, parseClientQuotaKey,
  type ClientQuotaAlteration, type ClientQuotaEntity, type ClientQuotaEntityType, type ClientQuotas, type MetadataStore,
} from '@runnel/metadata';
import { defineHandler, type Handler, type RequestContext } from './handler.ts';
import { metadataErrorCode } from './metadata-errors.ts';

type MatchType = 0 | 1 | 2;
const MATCH_EXACT = 0;
const MATCH_DEFAULT = 1;
const MATCH_ANY = 2;

/** Quota keys that are byte rates, so whole numbers (Kafka's LONG quota configs). */
const WHOLE_KEYS = new Set(['producer_byte_rate', 'consumer_byte_rate']);

/** The entity of a request (a list of type/name pairs) or a one-line reason it is not one. */
function entityOf(pairs: readonly { entityType: string; entityName: string | null }[]): ClientQuotaEntity | string {
  const entity: ClientQuotaEntity = {};
  for (const p of pairs) {
    if (p.entityType === 'ip') return 'IP quotas (connection_creation_rate) are not supported by Runnel';
    if (p.entityType !== 'user' && p.entityType !== 'client-id') return `Unknown entity type ${p.entityType}`;
    if (p.entityType in entity) return `Duplicate ${p.entityType} entity type`;
    entity[p.entityType] = p.entityName;
  }
  if (Object.keys(entity).length === 0) return 'Invalid empty client quota entity';
  return entity;
}

const pairsOf = (entity: ClientQuotaEntity) => Object.entries(entity).map(([entityType, entityName]) => ({ entityType, entityName: entityName ?? null }));

/**
 * DescribeClientQuotas v0–1: the stored entities every component matches (exact name, the
 * default entity, or any), only those of exactly the components' types when `strict`.
 */
export function describeClientQuotasHandler(metadata: Pick<MetadataStore, 'snapshot'>): Handler {
  return defineHandler({
    api: ApiKey.DescribeClientQuotas,
    versions: [0, 1],
    handle(req: Requests[typeof ApiKey.DescribeClientQuotas]) {
      const fail = (errorMessage: string) => ({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage, entries: null });
      const seen = new Set<string>();
      for (const c of req.components) {
        if (c.entityType !== 'user' && c.entityType !== 'client-id' && c.entityType !== 'ip') return fail(`Custom entity type '${c.entityType}' not supported`);
        if (seen.has(c.entityType)) return fail(`Duplicate ${c.entityType} component in the filter`);
        seen.add(c.entityType);
        const m = c.matchType as MatchType;
        if (m !== MATCH_EXACT && m !== MATCH_DEFAULT && m !== MATCH_ANY) return fail(`Unknown match type ${c.matchType}`);
        if (m === MATCH_EXACT && c.match === null) return fail('An exact match needs a name');
      }
      const entries = [];
      for (const [key, values] of metadata.snapshot().clientQuotas ?? []) {
        const entity = parseClientQuotaKey(key);
        const matches = req.components.every((c) => {
          const t = c.entityType as ClientQuotaEntityType;
          if (!(t in entity)) return false;
          if (c.matchType === MATCH_EXACT) return entity[t] === c.match;
          if (c.matchType === MATCH_DEFAULT) return entity[t] === null;
          return true;
        });
        if (!matches) continue;
        if (req.strict && Object.keys(entity).length !== req.components.length) continue;
        entries.push({ entity: pairsOf(entity), values: Object.entries(values).map(([k, value]) => ({ key: k, value })) });
      }
      return { errorCode: ErrorCode.NONE, entries };
    },
  });
}

/**
 * AlterClientQuotas v0–1: validates every entry (entity types `user` and `client-id`, Kafka's
 * quota keys, whole non-negative byte rates), then writes the valid ones in one metadata change
 * unless `validateOnly`. Each entry answers on its own: INVALID_REQUEST with the reason, or the
 * store's error mapped to a Kafka code.
 */
export function alterClientQuotasHandler(metadata: MetadataStore): Handler {
  return defineHandler({
    api: ApiKey.AlterClientQuotas,
    versions: [0, 1],
    async handle(req: Requests[typeof ApiKey.AlterClientQuotas]) {
      const results = req.entries.map((e): { reason: string } | { alteration: ClientQuotaAlteration } => {
        const entity = entityOf(e.entity);
        if (typeof entity === 'string') return { reason: entity };
        const ops: Record<string, number | null> = {};
        for (const op of e.ops) {
          if (!(CLIENT_QUOTA_KEYS as readonly string[]).includes(op.key)) return { reason: `Unknown quota key ${op.key}` };
          if (!op.remove) {
            if (!Number.isFinite(op.value) || op.value < 0) return { reason: `Quota ${op.key} must be a non-negative number, not ${op.value}` };
            if (WHOLE_KEYS.has(op.key) && !Number.isInteger(op.value)) return { reason: `Quota ${op.key} must be a whole number, not ${op.value}` };
          }
          if (op.key in ops) return { reason: `Duplicate quota key ${op.key}` };
          ops[op.key] = op.remove ? null : op.value;
        }
        return { alteration: { entity, ops } };
      });
      const valid = results.flatMap((r) => ('alteration' in r ? [r.alteration] : []));
      let storeError: { errorCode: number; errorMessage: string } | undefined;
      if (!req.validateOnly && valid.length > 0) {
        try {
          if (!metadata.alterClientQuotas) throw new Error('this node\'s metadata store cannot alter client quotas');
          await metadata.alterClientQuotas(valid);
        } catch (err) {
          storeError = { errorCode: metadataErrorCode(err, ErrorCode.UNKNOWN_SERVER_ERROR), errorMessage: err instanceof Error ? err.message : String(err) };
        }
      }
      const entries: Responses[typeof ApiKey.AlterClientQuotas]['entries'] = req.entries.map((e, i) => {
        const r = results[i]!;
        const entity = e.entity.map((p) => ({ entityType: p.entityType, entityName: p.entityName }));
        if ('reason' in r) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: r.reason, entity };
        return { errorCode: storeError?.errorCode ?? ErrorCode.NONE, errorMessage: storeError?.errorMessage ?? null, entity };
      });
      return { entries };
    },
  });
}

/**
 * A rate sampled as Kafka's SampledStat Rate: `num` samples of `windowMs` each; the rate is the
 * bytes in the live samples over the time they span, counted as at least (num - 1) windows, so a
 * fresh sensor allows about that many windows' worth of bytes at once.
 */
class SampledRate {
  readonly #num: number;
  readonly #windowMs: number;
  readonly #starts: number[];
  readonly #values: number[];
  #current = 0;
  lastRecord = 0;

  constructor(num: number, windowMs: number, now: number) {
    this.#num = Math.max(2, num);
    this.#windowMs = windowMs;
    this.#starts = Array(this.#num).fill(now);
    this.#values = Array(this.#num).fill(0);
  }

  record(value: number, now: number): void {
    this.lastRecord = now;
    this.#purge(now);
    if (now >= this.#starts[this.#current]! + this.#windowMs) {
      this.#current = (this.#current + 1) % this.#num;
      this.#starts[this.#current] = now;
      this.#values[this.#current] = 0;
    }
    this.#values[this.#current]! += value;
  }

  /** Bytes in the live samples. */
  total(now: number): number {
    this.#purge(now);
    let total = 0;
    for (const v of this.#values) total += v;
    return total;
  }

  /** Bytes per second now, and the window length (ms) it was measured over. */
  measure(now: number): { rate: number; windowMs: number } {
    this.#purge(now);
    let total = 0;
    let oldest = now;
    for (let i = 0; i < this.#num; i++) {
      total += this.#values[i]!;
      oldest = Math.min(oldest, this.#starts[i]!);
    }
    const windowMs = Math.max(now - oldest, (this.#num - 1) * this.#windowMs, 1);
    return { rate: (total * 1000) / windowMs, windowMs };
  }

  /** Samples older than the whole window count nothing. */
  #purge(now: number): void {
    const horizon = this.#num * this.#windowMs;
    for (let i = 0; i < this.#num; i++) {
      if (now - this.#starts[i]! >= horizon) {
        this.#starts[i] = now;
        this.#values[i] = 0;
      }
    }
  }
}

type QuotaKey = 'producer_byte_rate' | 'consumer_byte_rate';

/**
 * The quota that applies to a (user, client id) pair for `key`, in Kafka's order of precedence:
 * user+client, user+default client, user, default user+client, default user+default client,
 * default user, client, default client. Also the sensor key: the pair's actual names for the types
 * of the entity that matched (so every client under a default quota has its own rate, as in Kafka).
 */
export function resolveClientQuota(quotas: ClientQuotas, key: string, user: string, clientId: string): { quota: number; sensor: string } | null {
  const levels: [ClientQuotaEntity, string][] = [
    [{ user, 'client-id': clientId }, `u:${user}\0c:${clientId}`],
    [{ user, 'client-id': null }, `u:${user}\0c:${clientId}`],
    [{ user }, `u:${user}`],
    [{ user: null, 'client-id': clientId }, `u:${user}\0c:${clientId}`],
    [{ user: null, 'client-id': null }, `u:${user}\0c:${clientId}`],
    [{ user: null }, `u:${user}`],
    [{ 'client-id': clientId }, `c:${clientId}`],
    [{ 'client-id': null }, `c:${clientId}`],
  ];
  for (const [entity, sensor] of levels) {
    const q = quotas.get(clientQuotaKey(entity))?.[key];
    if (q !== undefined) return { quota: q, sensor };
  }
  return null;
}

export interface ClientQuotaOptions {
  /** The stored quotas now (the metadata snapshot's `clientQuotas`). */
  quotas(): ClientQuotas | undefined;
  /** `quota.window.num` and `quota.window.size.seconds` (in ms). */
  windowNum: number;
  windowSizeMs: number;
  now?: () => number;
}

/** What the server does with a request's response under the quotas. */
export interface Throttle {
  throttleMs: number;
  /** The response to send instead (the throttle set; an empty Fetch). */
  response: object | undefined;
}

/**
 * Produce and Fetch byte quotas of one node (see the file comment). KafkaServer calls
 * `beforeFetch` on a decoded Fetch and `afterResponse` on every Produce and Fetch answer.
 */
export class ClientQuotaEnforcer {
  readonly #o: ClientQuotaOptions;
  readonly #sensors = new Map<string, SampledRate>();
  readonly #now: () => number;
  #swept = 0;
  /** Responses throttled, by quota key (metrics). */
  readonly throttled = { producer_byte_rate: 0, consumer_byte_rate: 0 };

  constructor(o: ClientQuotaOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  #quota(key: QuotaKey, ctx: RequestContext): { quota: number; sensor: string } | null {
    const quotas = this.#o.quotas();
    if (!quotas || quotas.size === 0) return null;
    return resolveClientQuota(quotas, key, ctx.principal?.name ?? 'ANONYMOUS', ctx.header.clientId ?? '');
  }

  #sensor(key: QuotaKey, sensor: string, now: number): SampledRate {
    // Sensors of clients gone quiet for a few windows are dropped (Kafka expires them after an hour).
    const idleMs = 2 * this.#o.windowNum * this.#o.windowSizeMs;
    if (now - this.#swept > idleMs) {
      for (const [k, s] of this.#sensors) if (now - s.lastRecord > idleMs) this.#sensors.delete(k);
      this.#swept = now;
    }
    const k = `${key}\0${sensor}`;
    let s = this.#sensors.get(k);
    if (!s) this.#sensors.set(k, (s = new SampledRate(this.#o.windowNum, this.#o.windowSizeMs, now)));
    return s;
  }

  /**
   * Throttle time after recording `bytes`: Kafka's (rate - quota) / quota × window, capped at the
   * whole window. `withdraw`: over quota, the bytes are taken back (the answer will be empty) and
   * `withdrawn` says so; except when nothing else was counted in the window, when they stay: a
   * single batch larger than the quota allows in a window (the first batch is always returned,
   * KIP-74) would otherwise be refused forever.
   */
  #throttle(key: QuotaKey, ctx: RequestContext, bytes: number, withdraw: boolean): { ms: number; withdrawn: boolean } {
    const q = this.#quota(key, ctx);
    if (!q) return { ms: 0, withdrawn: false };
    const now = this.#now();
    const s = this.#sensor(key, q.sensor, now);
    const before = withdraw ? s.total(now) : 0;
    s.record(bytes, now);
    const { rate, windowMs } = s.measure(now);
    if (rate <= q.quota) return { ms: 0, withdrawn: false };
    const withdrawn = withdraw && before > 0;
    if (withdrawn) s.record(-bytes, now);
    this.throttled[key]++;
    const ms = q.quota <= 0 ? this.#o.windowNum * this.#o.windowSizeMs : ((rate - q.quota) / q.quota) * windowMs;
    return { ms: Math.max(1, Math.min(Math.ceil(ms), this.#o.windowNum * this.#o.windowSizeMs)), withdrawn };
  }

  /** Caps a Fetch's max_bytes at what its quota allows in one whole window. */
  beforeFetch(ctx: RequestContext, req: { maxBytes: number }): void {
    const q = this.#quota('consumer_byte_rate', ctx);
    if (!q) return;
    // Kafka's getMaxValueInQuotaWindow: what the quota allows over the (num - 1) windows the rate counts at least.
    const windowBytes = Math.floor((q.quota * Math.max(1, this.#o.windowNum - 1) * this.#o.windowSizeMs) / 1000);
    req.maxBytes = Math.max(1, Math.min(req.maxBytes, windowBytes));
  }

  /**
   * Records a Produce's request bytes or a Fetch's response bytes and says how to answer: null =
   * unchanged; else the throttle time and the response to send (`undefined` for acks=0).
   */
  afterResponse(apiKey: number, ctx: RequestContext, requestBytes: number, responseBytes: number, response: unknown): Throttle | null {
    if (apiKey === ApiKey.Produce) {
      const { ms: throttleMs } = this.#throttle('producer_byte_rate', ctx, requestBytes, false);
      if (throttleMs === 0) return null;
      return { throttleMs, response: response === undefined ? undefined : { ...(response as object), throttleTimeMs: throttleMs } };
    }
    if (apiKey === ApiKey.Fetch && response !== undefined) {
      const { ms: throttleMs, withdrawn } = this.#throttle('consumer_byte_rate', ctx, responseBytes, true);
      if (throttleMs === 0) return null;
      const r = response as Responses[typeof ApiKey.Fetch];
      if (!withdrawn) return { throttleMs, response: { ...r, throttleTimeMs: throttleMs } };
      return { throttleMs, response: { throttleTimeMs: throttleMs, errorCode: ErrorCode.NONE, sessionId: r.sessionId ?? 0, responses: [], nodeEndpoints: [] } };
    }
    return null;
  }
}
