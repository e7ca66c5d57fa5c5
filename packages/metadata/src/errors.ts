import { RunnelError } from '@runnel/common';

export type MetadataErrorCode =
  | 'TOPIC_ALREADY_EXISTS'
  | 'UNKNOWN_TOPIC'
  | 'INVALID_PARTITIONS'
  | 'INVALID_REPLICATION_FACTOR'
  | 'INVALID_REPLICA_ASSIGNMENT'
  | 'INVALID_TOPIC_NAME'
  /** Kafka's POLICY_VIOLATION: a request beyond a fixed bound (partitions per request). */
  | 'POLICY_VIOLATION'
  | 'CLUSTER_ID_MISMATCH'
  | 'STALE_EPOCH'
  /** A controller write whose `previous` no longer matches what Redis holds (compare-and-set). */
  | 'CONFLICT'
  | 'STORE_UNAVAILABLE'
  | 'CORRUPT_STATE'
  /**
   * Kafka's DUPLICATE_BROKER_REGISTRATION (retriable): the node id is live (unfenced) under
   * another process's incarnation id; the newcomer waits until that session expires.
   */
  | 'DUPLICATE_BROKER_REGISTRATION';

export class MetadataError extends RunnelError<MetadataErrorCode> {}
