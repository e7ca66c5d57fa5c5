import { topicConfig, tpKey, type BrokerConfig, type Logger, type TopicConfig } from '@runnel/common';
import type { MetadataStore, PartitionState, TopicMetadata } from '@runnel/metadata';
import type { LogManager, PartitionLog } from '@runnel/storage';
import { logConfigOf } from './log-config.ts';

/** Why a partition cannot be served here, in the terms the handlers map to Kafka codes. */
export type Unavailable = 'UNKNOWN_TOPIC_OR_PARTITION' | 'NOT_LEADER_OR_FOLLOWER' | 'LEADER_NOT_AVAILABLE' | 'KAFKA_STORAGE_ERROR';

export type Lookup =
  | { ok: true; topic: TopicMetadata; state: PartitionState; log: PartitionLog; config: TopicConfig }
  | { ok: false; error: Unavailable };

/**
 * The partitions this broker hosts: metadata says which exist and who leads them, storage holds
 * their logs. Logs are opened lazily on first use (and at start for every local replica), so a
 * topic created through any path is served without racing a metadata event.
 */
export class Partitions {
  readonly #config: BrokerConfig;
  readonly #metadata: MetadataStore;
  readonly #logs: LogManager;
  readonly #nodeId: number;
  readonly #logger: Logger;
  readonly #opening = new Map<string, Promise<PartitionLog>>();
  readonly #topicConfigs = new Map<string, { overrides: Record<string, string>; broker: BrokerConfig; config: TopicConfig }>();
  #unsubscribe: (() => void) | undefined;

  constructor(options: { config: BrokerConfig; metadata: MetadataStore; logs: LogManager; nodeId: number; logger: Logger }) {
    this.#config = options.config;
    this.#metadata = options.metadata;
    this.#logs = options.logs;
    this.#nodeId = options.nodeId;
    this.#logger = options.logger;
  }

  /**
   * Opens every local replica's log and follows metadata: deletions drop logs, config changes
   * reach open logs, and a partition whose leadership moves here (a new topic, or a broker that
   * registered again) is opened at once rather than on its first request. A partition that moved
   * away keeps its log open but `leaderLog` refuses it (NOT_LEADER_OR_FOLLOWER).
   */
  async start(): Promise<void> {
    this.#unsubscribe = this.#metadata.subscribe((event) => {
      if (event.type === 'topic-deleted') void this.#dropTopic(event.name);
      if (event.type === 'topic-updated') this.#applyConfig(event.topic);
      if (event.type === 'topic-created' || event.type === 'topic-updated') this.#openLed(event.topic);
      if (event.type === 'broker-configs-changed') this.#applyAll();
    });
    const opens: Promise<unknown>[] = [];
    for (const topic of this.#metadata.snapshot().topics.values()) {
      for (const p of topic.partitions) if (p.replicas.includes(this.#nodeId)) opens.push(this.#open(topic, p.partition));
    }
    await Promise.all(opens);
    // Logs loaded from disk at start carry the static defaults: give each its topic's overrides
    // and the dynamic broker configs.
    this.#applyAll();
  }

  /** Stops following metadata and waits for the logs still opening, so none opens after the log manager stops. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    await Promise.allSettled([...this.#opening.values()]);
  }

  /**
   * This broker's configuration with the dynamic broker configs in metadata over it (the same
   * object while they are unchanged).
   */
  brokerConfig(): BrokerConfig {
    return this.#config.withDynamic(this.#metadata.snapshot().brokerConfigs, this.#nodeId);
  }

  /**
   * The effective config of a topic (its overrides over the broker's static and dynamic values),
   * cached per override set and broker config.
   */
  topicConfig(topic: TopicMetadata): TopicConfig {
    const broker = this.brokerConfig();
    const cached = this.#topicConfigs.get(topic.name);
    if (cached && cached.overrides === topic.configs && cached.broker === broker) return cached.config;
    const config = topicConfig(broker, topic.configs);
    this.#topicConfigs.set(topic.name, { overrides: topic.configs, broker, config });
    return config;
  }

  /** The log of a partition this broker leads, opening it on first use. */
  async leaderLog(topicName: string, partition: number): Promise<Lookup> {
    const topic = this.#metadata.snapshot().topics.get(topicName);
    const state = topic?.partitions[partition];
    if (!topic || !state) return { ok: false, error: 'UNKNOWN_TOPIC_OR_PARTITION' };
    if (state.leader < 0) return { ok: false, error: 'LEADER_NOT_AVAILABLE' };
    if (state.leader !== this.#nodeId) return { ok: false, error: 'NOT_LEADER_OR_FOLLOWER' };
    const log = this.#logs.getLog(topicName, partition) ?? (await this.#open(topic, partition));
    if (!log.online) return { ok: false, error: 'KAFKA_STORAGE_ERROR' };
    return { ok: true, topic, state, log, config: this.topicConfig(topic) };
  }

  /** The local log of a replica this broker holds (leader or follower), opened if needed; null when metadata has no such partition. */
  async replicaLog(topicName: string, partition: number): Promise<PartitionLog | null> {
    const topic = this.#metadata.snapshot().topics.get(topicName);
    if (!topic?.partitions[partition]) return null;
    return this.#logs.getLog(topicName, partition) ?? (await this.#open(topic, partition));
  }

  #open(topic: TopicMetadata, partition: number): Promise<PartitionLog> {
    const key = tpKey(topic.name, partition);
    const existing = this.#logs.getLog(topic.name, partition);
    if (existing) return Promise.resolve(existing);
    let opening = this.#opening.get(key);
    if (!opening) {
      opening = this.#logs.createLog(topic.name, partition, logConfigOf(this.topicConfig(topic)))
        .finally(() => this.#opening.delete(key));
      this.#opening.set(key, opening);
    }
    return opening;
  }

  #openLed(topic: TopicMetadata): void {
    for (const p of topic.partitions) {
      if (p.leader !== this.#nodeId || this.#logs.getLog(topic.name, p.partition)) continue;
      this.#open(topic, p.partition).catch((err: unknown) => {
        // leaderLog tries again on the next request and answers KAFKA_STORAGE_ERROR if it still fails.
        this.#logger.error({ err, topic: topic.name, partition: p.partition }, 'opening a partition this broker now leads failed');
      });
    }
  }

  /** Every open log gets its topic's effective config again (a dynamic broker config changed, or start). */
  #applyAll(): void {
    for (const topic of this.#metadata.snapshot().topics.values()) {
      try {
        this.#applyConfig(topic);
      } catch (err) {
        this.#logger.error({ err, topic: topic.name }, 'applying a topic\'s config to its logs failed');
      }
    }
  }

  #applyConfig(topic: TopicMetadata): void {
    const config = logConfigOf(this.topicConfig(topic));
    for (const p of topic.partitions) {
      const log = this.#logs.getLog(topic.name, p.partition);
      if (log) log.config = config;
    }
  }

  async #dropTopic(name: string): Promise<void> {
    this.#topicConfigs.delete(name);
    for (const log of this.#logs.logs().filter((l) => l.topic === name)) {
      try {
        await this.#logs.deleteLog(name, log.partition);
      } catch (err) {
        this.#logger.error({ err, topic: name, partition: log.partition }, 'deleting a partition log failed');
      }
    }
  }
}
