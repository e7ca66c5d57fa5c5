export { RunnelError } from './errors.ts';
export { createLogger, silentLogger, type Logger } from './logger.ts';
export * from './ids.ts';
export * from './config.ts';
export { seededRandom } from './random.ts';
export { createMetricsRegistry, Counter, Gauge, Histogram, Registry } from './metrics.ts';
