import type { TopicConfig } from '@runnel/common';
import type { LogConfig } from '@runnel/storage';

/** A topic's effective configuration (Kafka names) as the storage engine's LogConfig. */
export function logConfigOf(topic: TopicConfig): LogConfig {
  return {
    segmentBytes: topic.get('segment.bytes'),
    segmentMs: topic.get('segment.ms'),
    segmentIndexBytes: topic.get('segment.index.bytes'),
    indexIntervalBytes: topic.get('index.interval.bytes'),
    retentionMs: topic.get('retention.ms'),
    retentionBytes: topic.get('retention.bytes'),
    cleanupPolicy: topic.get('cleanup.policy') as LogConfig['cleanupPolicy'],
    deleteRetentionMs: topic.get('delete.retention.ms'),
    minCleanableDirtyRatio: topic.get('min.cleanable.dirty.ratio'),
    flushMessages: topic.get('flush.messages'),
    flushMs: topic.get('flush.ms'),
    maxMessageBytes: topic.get('max.message.bytes'),
    messageTimestampType: topic.get('message.timestamp.type') as LogConfig['messageTimestampType'],
    compressionType: topic.get('compression.type') as LogConfig['compressionType'],
    fileDeleteDelayMs: topic.get('file.delete.delay.ms'),
  };
}
