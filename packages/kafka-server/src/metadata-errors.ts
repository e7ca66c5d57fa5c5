import { MetadataError } from '@runnel/metadata';
import { ErrorCode } from '@runnel/protocol';

/**
 * What each metadata refusal means to a Kafka client: one table for every role that answers with
 * metadata (the broker's admin APIs, any node's auto-create). In a cluster these errors come back
 * from the controller over RPC and are rebuilt as MetadataErrors, so they map the same way there.
 */
const metadataCodes: Record<MetadataError['code'], number> = {
  TOPIC_ALREADY_EXISTS: ErrorCode.TOPIC_ALREADY_EXISTS,
  UNKNOWN_TOPIC: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  INVALID_PARTITIONS: ErrorCode.INVALID_PARTITIONS,
  INVALID_REPLICATION_FACTOR: ErrorCode.INVALID_REPLICATION_FACTOR,
  INVALID_REPLICA_ASSIGNMENT: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
  INVALID_TOPIC_NAME: ErrorCode.INVALID_TOPIC_EXCEPTION,
  POLICY_VIOLATION: ErrorCode.POLICY_VIOLATION,
  CLUSTER_ID_MISMATCH: ErrorCode.INCONSISTENT_CLUSTER_ID,
  STALE_EPOCH: ErrorCode.STALE_CONTROLLER_EPOCH,
  CONFLICT: ErrorCode.REQUEST_TIMED_OUT,
  STORE_UNAVAILABLE: ErrorCode.REQUEST_TIMED_OUT,
  CORRUPT_STATE: ErrorCode.KAFKA_STORAGE_ERROR,
  DUPLICATE_BROKER_REGISTRATION: ErrorCode.DUPLICATE_BROKER_REGISTRATION,
};

/** The Kafka code of a metadata error; anything else gets `fallback`. */
export function metadataErrorCode(err: unknown, fallback: number): number {
  return err instanceof MetadataError ? metadataCodes[err.code] : fallback;
}
