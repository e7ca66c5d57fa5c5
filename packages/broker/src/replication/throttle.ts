import type { BrokerConfig } from '@runnel/common';
import type { MetadataStore, TopicMetadata } from '@runnel/metadata';

/**
 * Replication throttling (Kafka's ReplicationQuotaManager, KIP-73), used by partition reassignment:
 * `kafka-reassign-partitions --throttle N` sets the dynamic broker configs
 * `leader.replication.throttled.rate` / `follower.replication.throttled.rate` (bytes/s) and the
 * topic configs `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`
 * (`partition:brokerId,...` or `*`), and `--verify` removes them once the move is done.
 *
 * Rules (Kafka's `shouldLeaderThrottle` / `shouldFollowerThrottle`): a replica's traffic is held
 * back only when (1) its partition is listed for this broker (`p:thisNodeId`, or `*`), (2) the
 * replica is not in the ISR, and (3) this broker's quota is exceeded. In-sync and unlisted traffic
 * is never delayed. The bytes of every listed partition count against the quota, in-sync
 * replicas' too (as Kafka's ReplicaFetcherThread and KafkaApis record them), so the total
 * replication traffic of the listed partitions is what the rate bounds. The leader holds back by
 * answering a throttled partition with no records; the follower by leaving it out of its next fetch.
 */

/** Kafka's `replication.quota.window.num` and `replication.quota.window.size.seconds` defaults. */
const SAMPLES = 11;
const SAMPLE_MS = 1_000;

/**
 * Bytes per second over a sliding window of samples (Kafka's Rate with SampledStat; by default 11
 * samples of 1 s): the bytes recorded in the last `samples` samples divided by the time they
 * cover, which counts as at least `samples - 1` full samples, so a fresh quota allows at most the
 * rate over ~10 s at once, and any window of `samples` samples holds at most about
 * `samples × sample × rate` bytes: over a long transfer the average is the rate. `now` is
 * injectable for tests.
 */
export class RateQuota {
  readonly #samples: { start: number; bytes: number }[] = [];
  readonly #count: number;
  readonly #sampleMs: number;

  constructor(options: { samples?: number; sampleMs?: number } = {}) {
    this.#count = options.samples ?? SAMPLES;
    this.#sampleMs = options.sampleMs ?? SAMPLE_MS;
  }

  record(bytes: number, now = Date.now()): void {
    this.#purge(now);
    const last = this.#samples.at(-1);
    if (last && now < last.start + this.#sampleMs) last.bytes += bytes;
    else this.#samples.push({ start: now, bytes });
  }

  /** Bytes per second over the window. */
  rate(now = Date.now()): number {
    this.#purge(now);
    const first = this.#samples[0];
    if (!first) return 0;
    const total = this.#samples.reduce((sum, s) => sum + s.bytes, 0);
    const elapsed = Math.max(now - first.start, (this.#count - 1) * this.#sampleMs);
    return (total * 1000) / elapsed;
  }

  /** True when the window's rate is above `bytesPerSecond`. */
  exceeded(bytesPerSecond: number, now = Date.now()): boolean {
    return this.rate(now) > bytesPerSecond;
  }

  /** How long until the rate falls to `bytesPerSecond` with nothing more recorded (at most one sample). */
  delayMs(bytesPerSecond: number, now = Date.now()): number {
    const rate = this.rate(now);
    if (rate <= bytesPerSecond || bytesPerSecond <= 0) return rate <= bytesPerSecond ? 0 : this.#sampleMs;
    const windowMs = (this.#count - 1) * this.#sampleMs;
    return Math.min(this.#sampleMs, Math.ceil(((rate - bytesPerSecond) / bytesPerSecond) * windowMs));
  }

  #purge(now: number): void {
    const oldest = now - this.#count * this.#sampleMs;
    while (this.#samples.length > 0 && this.#samples[0]!.start + this.#sampleMs <= oldest) this.#samples.shift();
  }
}

export type ThrottleSide = 'leader' | 'follower';

/** Which partitions of a topic a throttled-replicas value lists for `nodeId`: 'all' for `*`. */
export function throttledPartitions(value: string | undefined, nodeId: number): Set<number> | 'all' {
  const out = new Set<number>();
  for (const item of (value ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    if (item === '*') return 'all';
    const m = /^(\d+):(\d+)$/.exec(item);
    if (m && Number(m[2]) === nodeId) out.add(Number(m[1]));
  }
  return out;
}

/**
 * One broker's replication throttle: its two quotas, and the live rates and throttled partitions
 * read from metadata at every call (dynamic broker configs: this node's entry, then the cluster
 * default, then the static config), so a change applies at once without a restart.
 */
export class ReplicationThrottle {
  readonly #nodeId: number;
  readonly #metadata: MetadataStore;
  readonly #config: BrokerConfig;
  readonly #quotas: Record<ThrottleSide, RateQuota>;
  /** Parsed lists per topic metadata object (replaced whenever the topic changes). */
  readonly #lists = new WeakMap<TopicMetadata, Record<ThrottleSide, Set<number> | 'all'>>();

  constructor(options: { nodeId: number; metadata: MetadataStore; config: BrokerConfig }) {
    this.#nodeId = options.nodeId;
    this.#metadata = options.metadata;
    this.#config = options.config;
    // Kafka's replication.quota.window.num samples of replication.quota.window.size.seconds.
    const window = { samples: this.#config.get('replication.quota.window.num'), sampleMs: this.#config.get('replication.quota.window.size.seconds') * 1000 };
    this.#quotas = { leader: new RateQuota(window), follower: new RateQuota(window) };
  }

  /** `<side>.replication.throttled.rate` in effect on this broker, bytes/s. */
  rate(side: ThrottleSide): number {
    return this.#config.withDynamic(this.#metadata.snapshot().brokerConfigs, this.#nodeId).get(`${side}.replication.throttled.rate`);
  }

  /** The partition is listed in the topic's `<side>.replication.throttled.replicas` for this broker: its bytes count. */
  listed(side: ThrottleSide, topic: TopicMetadata | undefined, partition: number): boolean {
    if (!topic) return false;
    let lists = this.#lists.get(topic);
    if (!lists) {
      lists = {
        leader: throttledPartitions(topic.configs['leader.replication.throttled.replicas'], this.#nodeId),
        follower: throttledPartitions(topic.configs['follower.replication.throttled.replicas'], this.#nodeId),
      };
      this.#lists.set(topic, lists);
    }
    const l = lists[side];
    return l === 'all' || l.has(partition);
  }

  /** This broker's `side` quota is exceeded: a listed partition's out-of-sync replica is held back. */
  exceeded(side: ThrottleSide): boolean {
    return this.#quotas[side].exceeded(this.rate(side));
  }

  record(side: ThrottleSide, bytes: number): void {
    if (bytes > 0) this.#quotas[side].record(bytes);
  }

  /** How long a held-back fetch should wait before trying again. */
  delayMs(side: ThrottleSide): number {
    return this.#quotas[side].delayMs(this.rate(side));
  }
}
