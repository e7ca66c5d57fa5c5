export { defaultLogConfig, type LogConfig } from './config.ts';
export { StorageError, type StorageErrorCode } from './errors.ts';
export { LogManager, type LogManagerOptions } from './log-manager.ts';
export { PartitionLog, type AppendResult, type ReadResult } from './partition-log.ts';
