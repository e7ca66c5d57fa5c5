export { defaultLogConfig, type CompressionType, type LogConfig } from './config.ts';
export { MAX_UNCOMPRESSED_BATCH_BYTES } from './incoming.ts';
export { StorageError, type StorageErrorCode } from './errors.ts';
export { LogManager, type DirIoObserver, type LogManagerOptions } from './log-manager.ts';
export { CORRUPT_ASIDE_PREFIX, PartitionLog, type AppendResult, type ProducerSnapshotEntry, type ReadResult, type TxnMarkerInput } from './partition-log.ts';
