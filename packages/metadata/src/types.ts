/**
 * Cluster metadata as the roles see it. The controller is its only writer in a cluster; under
 * `runnel start` the embedded LocalStore plays that part. Every record carries the version or
 * epoch a receiver needs to refuse stale updates (DESIGN.md §5).
 */
export interface BrokerRegistration {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
  /** Assigned at registration; a stale broker epoch cannot lead or join an ISR. */
  brokerEpoch: number;
}

export interface PartitionState {
  partition: number;
  leader: number; // -1 when offline
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  /** Compare-and-set version of this partition's state. */
  version: number;
}

export interface TopicMetadata {
  name: string;
  /** 16 random bytes as 32 hex characters (Kafka's Uuid). */
  topicId: string;
  internal: boolean;
  partitions: PartitionState[];
  /** Topic-level config overrides only (Kafka names); defaults come from the broker config. */
  configs: Record<string, string>;
}

export interface CreateTopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs?: Record<string, string>;
  internal?: boolean;
  /** Explicit replica lists per partition; otherwise the store assigns them round-robin. */
  assignments?: number[][];
}

export interface MetadataSnapshot {
  clusterId: string;
  controllerId: number;
  brokers: ReadonlyMap<number, BrokerRegistration>;
  topics: ReadonlyMap<string, TopicMetadata>;
  /** Increases with every change; receivers ignore snapshots older than the one they hold. */
  epoch: number;
}

export type MetadataEvent =
  | { type: 'topic-created'; topic: TopicMetadata }
  | { type: 'topic-deleted'; name: string }
  | { type: 'topic-updated'; topic: TopicMetadata }
  | { type: 'broker-registered'; broker: BrokerRegistration };

/**
 * What every role needs from metadata. Reads are synchronous against a local snapshot (the hot
 * path must not wait on Redis); writes are asynchronous and fenced by the implementation.
 */
export interface MetadataStore {
  start(): Promise<void>;
  stop(): Promise<void>;
  snapshot(): MetadataSnapshot;
  subscribe(listener: (event: MetadataEvent) => void): () => void;
  registerBroker(broker: Omit<BrokerRegistration, 'brokerEpoch'>): Promise<BrokerRegistration>;
  createTopic(spec: CreateTopicSpec): Promise<TopicMetadata>;
  deleteTopic(name: string): Promise<void>;
  createPartitions(name: string, totalCount: number, assignments?: number[][]): Promise<TopicMetadata>;
  alterTopicConfigs(name: string, configs: Record<string, string | null>): Promise<TopicMetadata>;
  /** A cluster-unique producer id for InitProducerId. */
  allocateProducerId(): Promise<bigint>;
}
