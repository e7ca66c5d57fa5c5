/**
 * Time, injected. The state machine never reads the wall clock or calls setTimeout itself, so
 * tests drive it with a {@link ManualClock} and every rebalance, session expiry and offset expiry
 * happens exactly when the test says so.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once, `delayMs` from now, unless cancelled. */
  schedule(delayMs: number, fn: () => void): Timer;
}

/** The real clock: Date.now and unref'd timers (a pending group timer must not keep a process alive). */
export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(delayMs, fn) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told. `advance(ms)` runs every timer due in that window in time
 * order (ties in scheduling order), including timers scheduled by the timers it runs.
 */
export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private timers: Scheduled[] = [];

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  private cancelled = 0;

  schedule(delayMs: number, fn: () => void): Timer {
    const entry: Scheduled = { at: this.time + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    // Drop cancelled entries now and then, so a long test that never advances does not grow forever.
    if (this.cancelled > 1024 && this.cancelled * 2 > this.timers.length) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      this.cancelled = 0;
    }
    this.timers.push(entry);
    return {
      cancel: () => {
        if (entry.cancelled) return;
        entry.cancelled = true;
        this.cancelled++;
      },
    };
  }

  /** Moves time forward by `ms`, firing due timers on the way. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      this.cancelled = 0;
      let next: Scheduled | undefined;
      for (const t of this.timers) {
        if (t.at <= target && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (next === undefined) break;
      this.time = Math.max(this.time, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.time = target;
  }

  /** Number of live timers (handy to assert that nothing leaks after a group dies). */
  pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}
