import { api, arr, f, message, structs } from '../schema.ts';

/**
 * APIs Runnel does not serve yet (transactions, ACLs). Their tables exist so a node can decode
 * such a request and answer it in its own schema with UNSUPPORTED_VERSION (kafka-server's
 * unsupportedAnswer) instead of closing the connection; no handler declares them, so they are
 * never advertised in ApiVersions. Field names and versions follow Kafka's message schemas.
 */

const txnTopic = [
  f('name', 'string', '0+'),
  arr('partitions', 'int32', '0+'),
] as const;
const txnTopicResult = [
  f('name', 'string', '0+'),
  structs('resultsByPartition', '0+', [
    f('partitionIndex', 'int32', '0+'),
    f('partitionErrorCode', 'int16', '0+'),
  ]),
] as const;

/**
 * AddPartitionsToTxn (key 24). v3 flexible; v4 (KIP-890, brokers only) batches transactions and
 * adds a top-level error code; v3 and below answer per topic and partition.
 */
export const AddPartitionsToTxn = api(24,
  message('AddPartitionsToTxnRequest', [0, 5], 3, [
    structs('transactions', '4+', [
      f('transactionalId', 'string', '4+'),
      f('producerId', 'int64', '4+'),
      f('producerEpoch', 'int16', '4+'),
      f('verifyOnly', 'bool', '4+', { default: false }),
      structs('topics', '4+', txnTopic),
    ]),
    f('v3AndBelowTransactionalId', 'string', '0-3', { default: '' }),
    f('v3AndBelowProducerId', 'int64', '0-3', { default: -1n }),
    f('v3AndBelowProducerEpoch', 'int16', '0-3', { default: -1 }),
    structs('v3AndBelowTopics', '0-3', txnTopic),
  ]),
  message('AddPartitionsToTxnResponse', [0, 5], 3, [
    f('throttleTimeMs', 'int32', '0+'),
    f('errorCode', 'int16', '4+', { default: 0 }),
    structs('resultsByTransaction', '4+', [
      f('transactionalId', 'string', '4+'),
      structs('topicResults', '4+', txnTopicResult),
    ]),
    structs('resultsByTopicV3AndBelow', '0-3', txnTopicResult),
  ]),
);

/** TxnOffsetCommit (key 28). v2 adds the leader epoch, v3 is flexible with the member's generation. */
export const TxnOffsetCommit = api(28,
  message('TxnOffsetCommitRequest', [0, 5], 3, [
    f('transactionalId', 'string', '0+'),
    f('groupId', 'string', '0+'),
    f('producerId', 'int64', '0+'),
    f('producerEpoch', 'int16', '0+'),
    f('generationId', 'int32', '3+', { default: -1 }),
    f('memberId', 'string', '3+', { default: '' }),
    f('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('committedOffset', 'int64', '0+'),
        f('committedLeaderEpoch', 'int32', '2+', { default: -1 }),
        f('committedMetadata', 'string', '0+', { nullable: '0+' }),
      ]),
    ]),
  ]),
  message('TxnOffsetCommitResponse', [0, 5], 3, [
    f('throttleTimeMs', 'int32', '0+'),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
      ]),
    ]),
  ]),
);

/** AddOffsetsToTxn (key 25). v3 flexible; v4 (KIP-890) only allows newer error codes. */
export const AddOffsetsToTxn = api(25,
  message('AddOffsetsToTxnRequest', [0, 4], 3, [
    f('transactionalId', 'string', '0+'),
    f('producerId', 'int64', '0+'),
    f('producerEpoch', 'int16', '0+'),
    f('groupId', 'string', '0+'),
  ]),
  message('AddOffsetsToTxnResponse', [0, 4], 3, [
    f('throttleTimeMs', 'int32', '0+'),
    f('errorCode', 'int16', '0+'),
  ]),
);

/** EndTxn (key 26). v3 flexible; v5 (KIP-890) answers the producer id and the bumped epoch. */
export const EndTxn = api(26,
  message('EndTxnRequest', [0, 5], 3, [
    f('transactionalId', 'string', '0+'),
    f('producerId', 'int64', '0+'),
    f('producerEpoch', 'int16', '0+'),
    f('committed', 'bool', '0+'),
  ]),
  message('EndTxnResponse', [0, 5], 3, [
    f('throttleTimeMs', 'int32', '0+'),
    f('errorCode', 'int16', '0+'),
    f('producerId', 'int64', '5+', { default: -1n }),
    f('producerEpoch', 'int16', '5+', { default: -1 }),
  ]),
);

/** DescribeAcls (key 29). v1 adds pattern types (KIP-290), v2 is flexible. */
export const DescribeAcls = api(29,
  message('DescribeAclsRequest', [0, 3], 2, [
    f('resourceTypeFilter', 'int8', '0+'),
    f('resourceNameFilter', 'string', '0+', { nullable: '0+' }),
    f('patternTypeFilter', 'int8', '1+', { default: 3 }),
    f('principalFilter', 'string', '0+', { nullable: '0+' }),
    f('hostFilter', 'string', '0+', { nullable: '0+' }),
    f('operation', 'int8', '0+'),
    f('permissionType', 'int8', '0+'),
  ]),
  message('DescribeAclsResponse', [0, 3], 2, [
    f('throttleTimeMs', 'int32', '0+'),
    f('errorCode', 'int16', '0+'),
    f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    structs('resources', '0+', [
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
      f('patternType', 'int8', '1+', { default: 3 }),
      structs('acls', '0+', [
        f('principal', 'string', '0+'),
        f('host', 'string', '0+'),
        f('operation', 'int8', '0+'),
        f('permissionType', 'int8', '0+'),
      ]),
    ]),
  ]),
);

/** CreateAcls (key 30): one result per creation. v1 adds pattern types, v2 is flexible. */
export const CreateAcls = api(30,
  message('CreateAclsRequest', [0, 3], 2, [
    structs('creations', '0+', [
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
      f('resourcePatternType', 'int8', '1+', { default: 3 }),
      f('principal', 'string', '0+'),
      f('host', 'string', '0+'),
      f('operation', 'int8', '0+'),
      f('permissionType', 'int8', '0+'),
    ]),
  ]),
  message('CreateAclsResponse', [0, 3], 2, [
    f('throttleTimeMs', 'int32', '0+'),
    structs('results', '0+', [
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    ]),
  ]),
);

/** DeleteAcls (key 31): one result per filter. v1 adds pattern types, v2 is flexible. */
export const DeleteAcls = api(31,
  message('DeleteAclsRequest', [0, 3], 2, [
    structs('filters', '0+', [
      f('resourceTypeFilter', 'int8', '0+'),
      f('resourceNameFilter', 'string', '0+', { nullable: '0+' }),
      f('patternTypeFilter', 'int8', '1+', { default: 3 }),
      f('principalFilter', 'string', '0+', { nullable: '0+' }),
      f('hostFilter', 'string', '0+', { nullable: '0+' }),
      f('operation', 'int8', '0+'),
      f('permissionType', 'int8', '0+'),
    ]),
  ]),
  message('DeleteAclsResponse', [0, 3], 2, [
    f('throttleTimeMs', 'int32', '0+'),
    structs('filterResults', '0+', [
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
      structs('matchingAcls', '0+', [
        f('errorCode', 'int16', '0+'),
        f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
        f('resourceType', 'int8', '0+'),
        f('resourceName', 'string', '0+'),
        f('patternType', 'int8', '1+', { default: 3 }),
        f('principal', 'string', '0+'),
        f('host', 'string', '0+'),
        f('operation', 'int8', '0+'),
        f('permissionType', 'int8', '0+'),
      ]),
    ]),
  ]),
);
