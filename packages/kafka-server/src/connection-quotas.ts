/**
 * Kafka's connection quotas at accept time (ConnectionQuotas): `max.connections.per.ip` with its
 * `max.connections.per.ip.overrides`, and `max.connection.creation.rate` (KIP-612). `max.connections`
 * stays in KafkaServer.accept, which asks this class after it.
 *
 * - Per IP: a connection from an address that already has its limit open is closed at once (Kafka
 *   closes it too: TooManyConnectionsException); sockets waiting for the creation rate count.
 * - Creation rate: accepting past the rate is delayed, never refused. Kafka's acceptor stops
 *   accepting for the throttle time; Node has already accepted the socket, so it is held paused
 *   (nothing is read from it) until its turn. Turns follow a GCRA schedule: one connection every
 *   1000 / rate ms, with a burst of one second's worth, so a well-behaved client that opens a few
 *   connections never waits.
 */
export interface ConnectionLimits {
  /** `max.connections.per.ip`. */
  maxPerIp: number;
  /** `max.connections.per.ip.overrides`, by IP address. */
  overrides: ReadonlyMap<string, number>;
  /** `max.connection.creation.rate`, connections per second over all listeners. */
  creationRate: number;
}

export const UNLIMITED: ConnectionLimits = { maxPerIp: Number.MAX_SAFE_INTEGER, overrides: new Map(), creationRate: Number.MAX_SAFE_INTEGER };

/** `host:count` entries (validated by common's config table) → map; IPv4-mapped IPv6 spellings compare as IPv4. */
export function parseIpOverrides(entries: readonly string[] | null | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of entries ?? []) {
    const i = e.lastIndexOf(':');
    if (i <= 0) continue;
    const count = Number(e.slice(i + 1));
    if (Number.isInteger(count) && count >= 0) out.set(normalizeIp(e.slice(0, i).replace(/^\[|\]$/g, '')), count);
  }
  return out;
}

/** `::ffff:127.0.0.1` → `127.0.0.1` (a dual-stack socket's view of an IPv4 peer). */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

export class ConnectionQuotas {
  readonly #limits: () => ConnectionLimits;
  readonly #perIp = new Map<string, number>();
  /** GCRA theoretical arrival time of the next connection, ms. */
  #tat = 0;
  /** Connections closed for the per-IP limit. */
  refusedPerIp = 0;
  /** Accepts delayed by the creation rate, and their total delay. */
  throttledAccepts = 0;
  throttleMs = 0;

  constructor(limits: () => ConnectionLimits) {
    this.#limits = limits;
  }

  /** Open (or held) connections from `ip`. */
  count(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  /**
   * Counts a new connection from `ip` and says how long to hold it before serving it (0 = at once),
   * or `{ refused }` when `ip` is at its limit (nothing counted: close the socket).
   */
  admit(ip: string, now = Date.now()): { limit: number; delayMs: number } | { refused: number } {
    const limits = this.#limits();
    const limit = limits.overrides.get(ip) ?? limits.maxPerIp;
    const open = this.count(ip);
    if (open >= limit) {
      this.refusedPerIp++;
      return { refused: limit };
    }
    this.#perIp.set(ip, open + 1);
    let delayMs = 0;
    const rate = limits.creationRate;
    // INT_MAX, the default, is no limit (as Kafka's Int.MaxValue).
    if (rate > 0 && rate < 2147483647) {
      const interval = 1000 / rate;
      const tolerance = Math.max(0, rate - 1) * interval;
      const start = Math.max(now, this.#tat - tolerance);
      this.#tat = Math.max(this.#tat, start) + interval;
      delayMs = Math.ceil(start - now);
      if (delayMs > 0) {
        this.throttledAccepts++;
        this.throttleMs += delayMs;
      }
    } else {
      this.#tat = 0;
    }
    return { limit, delayMs };
  }

  /** A connection `admit` counted has closed. */
  release(ip: string): void {
    const n = this.count(ip) - 1;
    if (n > 0) this.#perIp.set(ip, n);
    else this.#perIp.delete(ip);
  }
}
