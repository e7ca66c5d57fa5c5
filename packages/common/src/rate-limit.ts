/** A keyed once-per-interval limiter (see onceEvery). */
export interface OnceEvery {
  /** True at most once per interval for each key (the first call for a key is true). */
  allow(key: string): boolean;
  /** Keys held now: only those allowed within the last interval (and until the next sweep). */
  readonly size: number;
}

/**
 * `onceEvery(ms)`: limits log lines that a retry loop would otherwise repeat many times a second
 * (a full disk refusing every produce and replica fetch) to one per key per `ms`. Keys not allowed
 * for `ms` are forgotten at the next call after an interval, so the limiter holds only the keys of
 * the last interval or two, however many come and go. `now` is the clock (tests pass their own).
 */
export function onceEvery(ms: number, now: () => number = Date.now): OnceEvery {
  const last = new Map<string, number>();
  let swept = now();
  return {
    allow(key) {
      const t = now();
      if (t - swept >= ms) {
        for (const [k, at] of last) if (t - at >= ms) last.delete(k);
        swept = t;
      }
      const at = last.get(key);
      if (at !== undefined && t - at < ms) return false;
      last.set(key, t);
      return true;
    },
    get size() {
      return last.size;
    },
  };
}
