import { setFlagsFromString } from 'node:v8';

/**
 * V8's garbage collector, set for a server process, as Kafka's start scripts set the JVM's G1
 * (`KAFKA_JVM_PERFORMANCE_OPTS`). `RUNNEL_V8_FLAGS` replaces them (an empty value keeps V8's own).
 *
 * `--heap-growing-percent=400`: after a full collection the old generation may grow to 5× what
 * survived before the next one starts. With V8's default (about 1.1–1.5×, at least the young
 * generation's size) a broker, which keeps ~20 MB alive and churns tens of MB/s of short-lived
 * buffers, is left with less old-generation headroom than its young generation holds right after
 * each full collection, so V8 starts the next incremental marking at once. Measured on a 3-broker
 * RF 3 cluster at 11.75 MB/s acks=all (2 cores): full collections back to back every 0.3–0.6 s per
 * broker, each with 6–37 ms of pauses, and those pauses were the produce p99. With this flag: about
 * a tenth as many, p99 11–16 ms instead of 35–75, the maximum rate about 50 MB/s instead of 30–40; the
 * heap then peaks near 60 MB instead of 40 (docs/tuning.md, "The garbage collector").
 *
 * Not in the default: `--external-memory-accounted-in-global-limit` (docs/tuning.md), which cuts
 * the produce p99 further but lets Buffers already done with wait longer to be freed: a burst of
 * 120 MB of requests then grew RSS by 190 MB, past what the request budget is meant to bound.
 */
export const SERVER_V8_FLAGS = '--heap-growing-percent=400';

/** Applies the server's V8 flags (from `env`, else SERVER_V8_FLAGS); returns what was applied. */
export function applyServerV8Flags(env: NodeJS.ProcessEnv): string {
  const flags = (env.RUNNEL_V8_FLAGS ?? SERVER_V8_FLAGS).trim();
  if (flags !== '') setFlagsFromString(flags);
  return flags;
}
