import { RunnelError } from '@runnel/common';

export type StorageErrorCode =
  | 'OFFSET_OUT_OF_RANGE'
  | 'CORRUPT_MESSAGE'
  | 'RECORD_TOO_LARGE'
  | 'OUT_OF_ORDER_SEQUENCE'
  | 'INVALID_PRODUCER_EPOCH'
  | 'INVALID_TXN_STATE'
  | 'TRANSACTION_COORDINATOR_FENCED'
  | 'UNKNOWN_PRODUCER_ID'
  | 'DUPLICATE_SEQUENCE'
  | 'TOO_MANY_UNREPLICATED_TXNS'
  | 'LOG_DIR_OFFLINE'
  | 'STORAGE_ERROR'
  | 'NO_SPACE'
  | 'INVALID_CONFIG'
  | 'LOG_DIR_IN_USE';

/** Every failure of @runnel/storage. The broker maps `code` to a Kafka error code. */
export class StorageError extends RunnelError<StorageErrorCode> {}

/**
 * For writes that may be put off when the disk is full (ENOSPC, EDQUOT): the state they persist is
 * right in memory and written again later. Anything else is rethrown.
 */
export function ignoreNoSpace(err: unknown): void {
  const code = errnoCode(err);
  if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
}

/** An errno-style code of a Node fs error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined;
}
