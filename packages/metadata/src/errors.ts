import { RunnelError } from '@runnel/common';

export type MetadataErrorCode =
  | 'TOPIC_ALREADY_EXISTS'
  | 'UNKNOWN_TOPIC'
  | 'INVALID_PARTITIONS'
  | 'INVALID_REPLICATION_FACTOR'
  | 'INVALID_REPLICA_ASSIGNMENT'
  | 'INVALID_TOPIC_NAME'
  | 'CLUSTER_ID_MISMATCH'
  | 'STALE_EPOCH'
  /** A controller write whose `previous` no longer matches what Redis holds (compare-and-set). */
  | 'CONFLICT'
  | 'STORE_UNAVAILABLE'
  | 'CORRUPT_STATE';

export class MetadataError extends RunnelError<MetadataErrorCode> {}
