/**
 * @runnel/protocol: the Kafka wire format without I/O. Schema tables (messages/*.ts), one generic
 * codec (codec.ts), request/response framing (api.ts), record batches (records.ts), the API and
 * error tables, Kafka's murmur2 partitioner and its group-to-__consumer_offsets-partition hash.
 */
export { ApiKey, apiName } from './api-keys.ts';
export { ErrorCode, errorName } from './error-codes.ts';
export { ProtocolError, type ProtocolErrorCode } from './errors.ts';
export {
  apis, apiSchema, schemaVersions, peekRequestHeader, decodeRequest, encodeRequest, encodeResponse, encodeResponseParts, decodeResponse,
  encodeApiVersionsUnsupported, warmUp,
  type RequestHeader, type Requests, type Responses, type DecodedResponses, type RequestInputs, type SupportedApiKey,
  type DecodedRequest,
} from './api.ts';
export { Reader, Writer, encodeMessage, decodeMessage } from './codec.ts';
export { ConsumerGroupHeartbeat, ConsumerGroupDescribe } from './messages/consumer-group.ts';
export { DescribeTopicPartitions } from './messages/describe-topic-partitions.ts';
export type { ApiSchema, MessageSchema, Field, Decoded, Encodable, RequestOf, ResponseOf } from './schema.ts';
/** The schema language, for tables kept outside this package (the coordinator's KIP-848 records). */
export { f, arr, struct, structs, message } from './schema.ts';
export { inVersions } from './schema.ts';
export { murmur2, javaPartition } from './murmur2.ts';
export { javaStringHashCode, partitionForGroup } from './group-partition.ts';
export {
  encodeRecordBatch, decodeRecordBatches, Codec, BatchAttr, BATCH_HEADER_SIZE, BATCH_LOG_OVERHEAD,
  type EncodeBatchOptions, type RecordInput, type RecordHeader, type DecodedBatch, type DecodedRecord, type DecodeBatchesOptions,
} from './records.ts';
