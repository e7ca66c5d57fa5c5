export { RunnelError } from './errors.ts';
export { createLogger, silentLogger, prettyLogLine, isLogLevel, LOG_LEVELS, type Logger, type LogFormat, type LogLevel } from './logger.ts';
export * from './ids.ts';
export * from './config.ts';
export { seededRandom } from './random.ts';
export { onceEvery, type OnceEvery } from './rate-limit.ts';
export { replaceFileDurably, fsyncDirectory } from './durable-file.ts';
export { secureContextOptions, tlsSettings, tlsFiles, tlsFileStamp, type ClientAuth, type TlsSettings } from './tls.ts';
export { createMetricsRegistry, Counter, Gauge, Histogram, Registry, ScrapedMetric, type ScrapedSample } from './metrics.ts';
