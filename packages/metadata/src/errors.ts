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
  | 'STORE_UNAVAILABLE'
  | 'CORRUPT_STATE';

export class MetadataError extends RunnelError<MetadataErrorCode> {}
