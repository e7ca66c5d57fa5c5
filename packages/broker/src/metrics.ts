import { Counter, Gauge, Histogram, ScrapedMetric, type Registry } from '@runnel/common';
import type { MetadataStore, TopicMetadata } from '@runnel/metadata';
import type { LogManager } from '@runnel/storage';
import type { FetchPurgatory } from './purgatory.ts';
import type { ReplicaManager } from './replication/replica-manager.ts';

/**
 * Broker gauges, computed when scraped: per partition its offsets and size, per log dir its
 * health and space (the same figures DescribeLogDirs reports).
 */
export function registerBrokerMetrics(registry: Registry, logs: LogManager): void {
  const partition = ['topic', 'partition'];
  const perLog = (name: string, help: string, value: (l: ReturnType<LogManager['logs']>[number]) => bigint | number) =>
    new Gauge({
      name, help, labelNames: partition, registers: [registry],
      collect() {
        this.reset();
        for (const l of logs.logs()) this.set({ topic: l.topic, partition: String(l.partition) }, Number(value(l)));
      },
    });
  perLog('runnel_log_end_offset', 'Next offset to be written, per partition.', (l) => l.logEndOffset);
  perLog('runnel_log_start_offset', 'First offset still in the log, per partition.', (l) => l.logStartOffset);
  perLog('runnel_log_high_watermark', 'Offset up to which consumers may read, per partition.', (l) => l.highWatermark);
  perLog('runnel_log_size_bytes', 'Bytes of segments, per partition.', (l) => l.sizeBytes);

  const perDir = (name: string, help: string, value: (d: ReturnType<LogManager['dirs']>[number]) => number) =>
    new Gauge({
      name, help, labelNames: ['dir'], registers: [registry],
      collect() {
        this.reset();
        for (const d of logs.dirs()) this.set({ dir: d.path }, value(d));
      },
    });
  perDir('runnel_log_dir_online', '1 while the log dir serves, 0 once an I/O error took it offline.', (d) => (d.online ? 1 : 0));
  perDir('runnel_log_dir_free_bytes', 'Free bytes on the log dir\'s filesystem.', (d) => d.freeBytes);
  perDir('runnel_log_dir_used_bytes', 'Bytes of partition data in the log dir.', (d) => d.usedBytes);
  perDir('runnel_log_dir_partitions', 'Partitions placed in the log dir.', (d) => d.partitions);

  // Counted where storage writes, reads and fdatasyncs (LogManager.ioObserver): appends as leader
  // and follower, reads for consumers and followers, group-commit and flush fdatasyncs. Bytes are
  // counted on every append and read: plain numbers per dir, rendered when scraped (as the
  // request-path metrics; a labelled prom-client counter hashes its labels on every increment).
  const io = new Map(logs.dirs().map((d) => [d.path, { written: 0, read: 0 }]));
  const ioOf = (dir: string) => {
    let c = io.get(dir);
    if (!c) io.set(dir, (c = { written: 0, read: 0 }));
    return c;
  };
  registry.registerMetric(new ScrapedMetric('runnel_log_dir_written_bytes_total', 'Bytes of record batches appended to the log dir\'s segments.', 'counter',
    () => [...io].map(([dir, c]) => ({ labels: { dir }, value: c.written }))).asMetric());
  registry.registerMetric(new ScrapedMetric('runnel_log_dir_read_bytes_total', 'Bytes of record batches read from the log dir\'s segments (consumers and followers).', 'counter',
    () => [...io].map(([dir, c]) => ({ labels: { dir }, value: c.read }))).asMetric());
  const fsync = new Histogram({
    name: 'runnel_log_dir_fsync_seconds', help: 'Duration of each fdatasync of the log dir\'s segments (group commit with runnel.durable, flushes).', labelNames: ['dir'], registers: [registry],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  });
  logs.ioObserver = {
    written: (dir, n) => void (ioOf(dir).written += n),
    read: (dir, n) => void (ioOf(dir).read += n),
    fsynced: (dir, s) => fsync.observe({ dir }, s),
  };
}

/** One topic's BrokerTopicMetrics counts: plain numbers, rendered when scraped. */
export interface TopicCounts {
  bytesIn: number; messagesIn: number; bytesOut: number;
  produceRequests: number; fetchRequests: number; failedProduce: number; failedFetch: number;
}

const TOPIC_METRICS: Array<[keyof TopicCounts, string, string]> = [
  ['bytesIn', 'bytesin', 'Record bytes appended by producers, per topic (BytesInPerSec).'],
  ['messagesIn', 'messagesin', 'Records appended by producers, per topic (MessagesInPerSec).'],
  ['bytesOut', 'bytesout', 'Record bytes sent to consumers, per topic (BytesOutPerSec; replication is counted apart).'],
  ['produceRequests', 'totalproducerequests', 'Produce requests, once per partition, per topic (TotalProduceRequestsPerSec).'],
  ['fetchRequests', 'totalfetchrequests', 'Fetch requests, once per partition answered, per topic (TotalFetchRequestsPerSec).'],
  ['failedProduce', 'failedproducerequests', 'Partitions of produce requests answered with an error, per topic (FailedProduceRequestsPerSec).'],
  ['failedFetch', 'failedfetchrequests', 'Partitions of fetch requests answered with an error, per topic (FailedFetchRequestsPerSec).'],
];

/**
 * Kafka's BrokerTopicMetrics per topic (kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,
 * topic=t → `kafka_server_brokertopicmetrics_bytesin_total{topic="t"}`, docs/metrics.md), counted
 * by the Produce and Fetch handlers once per partition of a request, never per record: each topic
 * has one object of plain counts (found in a Map, no labels hashed, nothing allocated), rendered
 * when scraped. A deleted topic's series go at the next scrape. Kafka also reports a topic-less
 * aggregate under the same name; here, sum over `topic`.
 */
export class BrokerTopicMetrics {
  readonly #topics = new Map<string, TopicCounts>();
  readonly #exists: (topic: string) => boolean;
  /** Map size at which the next new topic prunes first. */
  #pruneAt = 64;

  /** `exists`: whether a topic still exists (metadata); asked when scraped. */
  constructor(exists: (topic: string) => boolean = () => true) {
    this.#exists = exists;
  }

  /** One topic's counts (made on first use). */
  topic(name: string): TopicCounts {
    let c = this.#topics.get(name);
    if (!c) {
      // Also pruned here, amortized, for a node nobody scrapes: topic churn must not grow the map.
      if (this.#topics.size >= this.#pruneAt) this.prune();
      this.#topics.set(name, (c = { bytesIn: 0, messagesIn: 0, bytesOut: 0, produceRequests: 0, fetchRequests: 0, failedProduce: 0, failedFetch: 0 }));
    }
    return c;
  }

  /** Drops the counts of topics that no longer exist (so created-and-deleted topics cannot pile up). */
  prune(exists: (topic: string) => boolean = this.#exists): void {
    for (const name of this.#topics.keys()) if (!exists(name)) this.#topics.delete(name);
    this.#pruneAt = Math.max(64, 2 * this.#topics.size);
  }

  register(registry: Registry): void {
    TOPIC_METRICS.forEach(([field, name, help], i) => {
      registry.registerMetric(new ScrapedMetric(`kafka_server_brokertopicmetrics_${name}_total`, help, 'counter', () => {
        // The first of these rendered drops deleted topics for all of them.
        if (i === 0) this.prune();
        return [...this.#topics].map(([topic, c]) => ({ labels: { topic }, value: c[field] }));
      }).asMetric());
    });
  }
}

/** What the replica-manager gauges read when scraped. */
export interface ReplicaMetricSources {
  nodeId: number;
  metadata: Pick<MetadataStore, 'snapshot'>;
  replicas: Pick<ReplicaManager, 'isrChanges' | 'waitingAcks' | 'replicationBytes'>;
  purgatory: Pick<FetchPurgatory, 'waiting'>;
  /** The topic's min.insync.replicas. */
  minIsr(topic: TopicMetadata): number;
  topics: BrokerTopicMetrics;
}

/**
 * Kafka's ReplicaManager gauges and counters, the purgatory sizes and replication bytes, computed
 * from the metadata snapshot and the replica manager when scraped (nothing on the request path).
 */
export function registerReplicaMetrics(registry: Registry, logs: LogManager, s: ReplicaMetricSources): void {
  s.topics.register(registry);
  const led = () => {
    const out: Array<{ topic: TopicMetadata; isr: number; replicas: number }> = [];
    for (const topic of s.metadata.snapshot().topics.values()) {
      for (const p of topic.partitions) if (p.leader === s.nodeId) out.push({ topic, isr: p.isr.length, replicas: p.replicas.length });
    }
    return out;
  };
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({ name: `kafka_server_replicamanager_${name}`, help, registers: [registry], collect() { this.set(value()); } });
  gauge('partitioncount', 'Partitions with a replica on this broker (PartitionCount).', () => logs.logs().length);
  gauge('leadercount', 'Partitions this broker leads (LeaderCount).', () => led().length);
  gauge('underreplicatedpartitions', 'Led partitions whose ISR is smaller than their replica set (UnderReplicatedPartitions).', () => led().filter((p) => p.isr < p.replicas).length);
  gauge('underminisrpartitioncount', 'Led partitions whose ISR is below min.insync.replicas (UnderMinIsrPartitionCount).', () => led().filter((p) => p.isr < s.minIsr(p.topic)).length);
  gauge('atminisrpartitioncount', 'Led partitions whose ISR is exactly min.insync.replicas (AtMinIsrPartitionCount).', () => led().filter((p) => p.isr === s.minIsr(p.topic)).length);
  gauge('offlinereplicacount', 'Replicas on this broker in an offline log dir (OfflineReplicaCount).', () => logs.dirs().filter((d) => !d.online).reduce((n, d) => n + d.partitions, 0));
  const counter = (name: string, help: string, value: () => number) =>
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(value()); } });
  counter('kafka_server_replicamanager_isrshrinks_total', 'ISR shrinks of led partitions (IsrShrinksPerSec).', () => s.replicas.isrChanges.shrinks);
  counter('kafka_server_replicamanager_isrexpands_total', 'ISR expands of led partitions (IsrExpandsPerSec).', () => s.replicas.isrChanges.expands);
  counter('kafka_server_brokertopicmetrics_replicationbytesin_total', 'Record bytes appended from leaders (ReplicationBytesInPerSec).', () => s.replicas.replicationBytes.in);
  counter('kafka_server_brokertopicmetrics_replicationbytesout_total', 'Record bytes sent to followers (ReplicationBytesOutPerSec).', () => s.replicas.replicationBytes.out);
  new Gauge({
    name: 'kafka_server_delayedoperationpurgatory_purgatorysize', help: 'Operations waiting: Produce = acks=all produces waiting for the ISR, Fetch = fetches waiting for fetch.min.bytes (PurgatorySize).',
    labelNames: ['delayedOperation'], registers: [registry],
    collect() {
      this.set({ delayedOperation: 'Produce' }, s.replicas.waitingAcks);
      this.set({ delayedOperation: 'Fetch' }, s.purgatory.waiting);
    },
  });
}
