import { Gauge, type Registry } from '@runnel/common';
import type { LogManager } from '@runnel/storage';

/**
 * Broker gauges, computed when scraped: per partition its offsets and size, per log dir its
 * health and space (the same figures DescribeLogDirs reports).
 */
export function registerBrokerMetrics(registry: Registry, logs: LogManager): void {
  const partition = ['topic', 'partition'];
  const perLog = (name: string, help: string, value: (l: ReturnType<LogManager['logs']>[number]) => bigint | number) =>
    new Gauge({
      name, help, labelNames: partition, registers: [registry],
      collect() {
        this.reset();
        for (const l of logs.logs()) this.set({ topic: l.topic, partition: String(l.partition) }, Number(value(l)));
      },
    });
  perLog('runnel_log_end_offset', 'Next offset to be written, per partition.', (l) => l.logEndOffset);
  perLog('runnel_log_start_offset', 'First offset still in the log, per partition.', (l) => l.logStartOffset);
  perLog('runnel_log_high_watermark', 'Offset up to which consumers may read, per partition.', (l) => l.highWatermark);
  perLog('runnel_log_size_bytes', 'Bytes of segments, per partition.', (l) => l.sizeBytes);

  const perDir = (name: string, help: string, value: (d: ReturnType<LogManager['dirs']>[number]) => number) =>
    new Gauge({
      name, help, labelNames: ['dir'], registers: [registry],
      collect() {
        this.reset();
        for (const d of logs.dirs()) this.set({ dir: d.path }, value(d));
      },
    });
  perDir('runnel_log_dir_online', '1 while the log dir serves, 0 once an I/O error took it offline.', (d) => (d.online ? 1 : 0));
  perDir('runnel_log_dir_free_bytes', 'Free bytes on the log dir\'s filesystem.', (d) => d.freeBytes);
  perDir('runnel_log_dir_used_bytes', 'Bytes of partition data in the log dir.', (d) => d.usedBytes);
  perDir('runnel_log_dir_partitions', 'Partitions placed in the log dir.', (d) => d.partitions);
}
