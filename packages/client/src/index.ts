/**
 * @runnel/client: a small, fast Kafka client for the CLI, benchmarks and tests. Connections with
 * pipelining and version negotiation, admin helpers, a producer (single requests, batching,
 * idempotent) and a group-less consumer.
 */
export { Connection, type ConnectionOptions } from './connection.ts';
export { KafkaClient, parseBootstrap, type KafkaClientOptions, type MetadataResponse, type NewTopic, type TopicResult, type OffsetSpec } from './client.ts';
export { Producer, produceRequestPrefix, type ProducerOptions, type ProduceResult, type RecordMetadata, type Acks } from './producer.ts';
export { Consumer, type ConsumerOptions, type Assignment, type FetchedPartition } from './consumer.ts';
export { walkRecordSet, restampBatch, batchRecordCount, type RecordSetStats } from './batches.ts';
export { crc32c } from './crc32c.ts';
export {
  describeConfigs, incrementalAlterConfigs, createPartitions, ConfigResourceType, CONFIG_SOURCES,
  type ConfigEntry, type ConfigSynonym, type ConfigResource, type ConfigResourceTypeId, type AlterConfigOp,
} from './admin.ts';
export { javaPartition, type RecordInput, type DecodedRecord } from '@runnel/protocol';
export { ClientError, checkKafka, type ClientErrorCode } from './errors.ts';
export { Codec } from '@runnel/protocol';
export { BatchTemplates, type BatchTemplate, type BatchTemplatesOptions } from './templates.ts';
export {
  GroupAdmin, decodeConsumerAssignment, fetchRecordTimestamp,
  type GroupAdminOptions, type GroupCoordinator, type GroupListing, type GroupDescription, type GroupMemberDescription,
  type ConsumerAssignment, type TopicPartitions, type CommittedOffset, type OffsetToCommit, type PartitionResult,
} from './groups.ts';
