/**
 * Where empty fetches wait (Kafka's "delayed fetch purgatory"): a Fetch that found fewer than
 * `fetch.min.bytes` parks here, keyed by the partitions it reads, until an append to one of them
 * wakes it or its `max.wait.ms` runs out. Waking only re-runs the read; the waiter decides whether
 * it now has enough bytes.
 */
export class FetchPurgatory {
  readonly #waiters = new Map<string, Set<() => void>>();

  /**
   * Resolves `true` when one of `keys` sees an append, `false` on timeout or abort. Registers once
   * per call, and always unregisters, so a long-polling consumer leaves nothing behind.
   */
  wait(keys: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (woken: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        for (const key of keys) {
          const set = this.#waiters.get(key);
          set?.delete(wake);
          if (set?.size === 0) this.#waiters.delete(key);
        }
        resolve(woken);
      };
      const wake = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(done, Math.max(0, timeoutMs), false);
      signal?.addEventListener('abort', onAbort, { once: true });
      for (const key of keys) {
        let set = this.#waiters.get(key);
        if (!set) this.#waiters.set(key, (set = new Set()));
        set.add(wake);
      }
    });
  }

  /** Called after every append (and high-watermark move) on a partition. */
  notify(key: string): void {
    const set = this.#waiters.get(key);
    if (!set) return;
    for (const wake of [...set]) wake();
  }

  get waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }
}
