import type { BrokerConfig, Logger } from '@runnel/common';
import type { MetadataStore } from '@runnel/metadata';
import type { LogManager } from '@runnel/storage';
import type { Partitions } from './partitions.ts';
import type { BrokerTopicMetrics } from './metrics.ts';
import type { FetchPurgatory } from './purgatory.ts';
import type { ReplicaManager } from './replication/replica-manager.ts';

/** What every broker handler may use. Handlers are declarations built from this context. */
export interface BrokerContext {
  readonly nodeId: number;
  readonly config: BrokerConfig;
  readonly metadata: MetadataStore;
  /** The partitions led here (a node that leads none answers from metadata alone: non-leader.ts). */
  readonly partitions: Pick<Partitions, 'leaderLog' | 'replicaLog' | 'topicConfig'>;
  /** The local logs and log dirs (DescribeLogDirs, AlterReplicaLogDirs). */
  readonly logs: Pick<LogManager, 'logs' | 'dirs' | 'alterLogDir' | 'futureLogs'>;
  readonly purgatory: FetchPurgatory;
  /** Leader and follower state of every local replica: appends as leader, the high watermark, acks=all waits. */
  readonly replicas: ReplicaManager;
  readonly logger: Logger;
  /** Per-topic bytes, records and requests (Kafka's BrokerTopicMetrics); absent where nothing is led. */
  readonly topicMetrics?: BrokerTopicMetrics;
  /**
   * A WriteTxnMarkers request's (the Kafka API's) marker for a `__consumer_offsets` partition, handed
   * to the group coordinator that owns it: it writes the marker and applies it to its pending
   * transactional offsets (Kafka's groupCoordinator.onTransactionCompleted). Null or a Kafka error
   * name, as writeTxnMarkers. Injected by the cli wiring (the broker imports no role); absent, the
   * marker is written like any other and the coordinator only sees it at its next load.
   */
  readonly groupTxnMarker?: GroupTxnMarker;
  /**
   * Creates a topic with the broker's defaults (auto-creation from Metadata and CreateTopics -1
   * values), or with explicit replica lists per partition (CreateTopics assignments).
   */
  createTopic(name: string, partitions?: number, replicationFactor?: number, configs?: Record<string, string>, assignments?: number[][]): Promise<void>;
}

/** See BrokerContext.groupTxnMarker. */
export type GroupTxnMarker = (partition: number, marker: { producerId: bigint; producerEpoch: number; coordinatorEpoch: number; commit: boolean }) => Promise<string | null>;
