import { ConfigError, RunnelError } from '@runnel/common';
import { MetadataError } from '@runnel/metadata';
import { metadataErrorCode } from '@runnel/kafka-server';
import { ErrorCode } from '@runnel/protocol';
import { StorageError } from '@runnel/storage';
import { NotLeaderError } from './replication/replica-manager.ts';

/**
 * The one place where Runnel's errors become Kafka error codes (errors are mapped at the edge).
 * Storage, metadata and config keep their own closed `code` unions; these tables say what each
 * means to a Kafka client (metadata's is kafka-server's, shared with the coordinator node).
 */
const storageCodes: Record<StorageError['code'], number> = {
  OFFSET_OUT_OF_RANGE: ErrorCode.OFFSET_OUT_OF_RANGE,
  CORRUPT_MESSAGE: ErrorCode.CORRUPT_MESSAGE,
  RECORD_TOO_LARGE: ErrorCode.MESSAGE_TOO_LARGE,
  OUT_OF_ORDER_SEQUENCE: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  INVALID_PRODUCER_EPOCH: ErrorCode.INVALID_PRODUCER_EPOCH,
  INVALID_TXN_STATE: ErrorCode.INVALID_TXN_STATE,
  TRANSACTION_COORDINATOR_FENCED: ErrorCode.TRANSACTION_COORDINATOR_FENCED,
  UNKNOWN_PRODUCER_ID: ErrorCode.UNKNOWN_PRODUCER_ID,
  DUPLICATE_SEQUENCE: ErrorCode.DUPLICATE_SEQUENCE_NUMBER,
  // A marker refused while the high watermark stalls: nothing written, the coordinator retries.
  TOO_MANY_UNREPLICATED_TXNS: ErrorCode.NOT_ENOUGH_REPLICAS,
  LOG_DIR_OFFLINE: ErrorCode.KAFKA_STORAGE_ERROR,
  STORAGE_ERROR: ErrorCode.KAFKA_STORAGE_ERROR,
  NO_SPACE: ErrorCode.KAFKA_STORAGE_ERROR,
  INVALID_CONFIG: ErrorCode.INVALID_CONFIG,
  LOG_DIR_IN_USE: ErrorCode.KAFKA_STORAGE_ERROR,
};


/** Native batch validation codes that are about records rather than the batch envelope. */
const recordLevel = new Set(['INVALID_RECORD', 'RECORD_COUNT_MISMATCH', 'DECOMPRESS_LIMIT', 'CORRUPT_COMPRESSED']);

export interface MappedError {
  code: number;
  message: string;
}

/**
 * Maps any error to a Kafka code. `fallback` is used for errors nobody anticipated: on the produce
 * path it must be retriable and never UNKNOWN_SERVER_ERROR (which makes some clients duplicate,
 * redpanda#5355), so produce passes KAFKA_STORAGE_ERROR.
 */
export function toKafkaError(err: unknown, fallback: number = ErrorCode.UNKNOWN_SERVER_ERROR): MappedError {
  if (err instanceof StorageError) return { code: storageCodes[err.code], message: err.message };
  if (err instanceof NotLeaderError) return { code: ErrorCode.NOT_LEADER_OR_FOLLOWER, message: err.message };
  if (err instanceof MetadataError) return { code: metadataErrorCode(err, fallback), message: err.message };
  if (err instanceof ConfigError) return { code: ErrorCode.INVALID_CONFIG, message: err.message };
  if (err instanceof RunnelError && err.name === 'BatchError') {
    return { code: recordLevel.has(err.code) ? ErrorCode.INVALID_RECORD : ErrorCode.CORRUPT_MESSAGE, message: err.message };
  }
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}

/** Whether an error is expected input trouble (log at debug) rather than a server fault (log at error). */
export function isClientFault(err: unknown): boolean {
  return err instanceof MetadataError || err instanceof ConfigError || err instanceof NotLeaderError
    || (err instanceof StorageError && !['STORAGE_ERROR', 'NO_SPACE', 'LOG_DIR_OFFLINE'].includes(err.code))
    || (err instanceof RunnelError && err.name === 'BatchError');
}
