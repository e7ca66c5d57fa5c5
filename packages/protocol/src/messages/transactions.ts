import { api, arr, f, message, structs } from '../schema.ts';

/**
 * The transaction APIs (KIP-98) the transaction coordinator serves: AddPartitionsToTxn,
 * AddOffsetsToTxn, EndTxn, TxnOffsetCommit (the group coordinator's), DescribeTransactions and
 * ListTransactions (KIP-664). InitProducerId is in topics.ts. Field names and versions follow
 * Kafka's message schemas (clients/src/main/resources/common/message).
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

/** DescribeTransactions (key 65, KIP-664): flexible from v0. */
export const DescribeTransactions = api(65,
  message('DescribeTransactionsRequest', [0, 0], 0, [
    arr('transactionalIds', 'string', '0+'),
  ]),
  message('DescribeTransactionsResponse', [0, 0], 0, [
    f('throttleTimeMs', 'int32', '0+'),
    structs('transactionStates', '0+', [
      f('errorCode', 'int16', '0+'),
      f('transactionalId', 'string', '0+'),
      f('transactionState', 'string', '0+'),
      f('transactionTimeoutMs', 'int32', '0+'),
      f('transactionStartTimeMs', 'int64', '0+'),
      f('producerId', 'int64', '0+'),
      f('producerEpoch', 'int16', '0+'),
      structs('topics', '0+', [
        f('topic', 'string', '0+'),
        arr('partitions', 'int32', '0+'),
      ]),
    ]),
  ]),
);

/**
 * ListTransactions (key 66, KIP-664): flexible from v0; v1 adds the duration filter (KIP-994),
 * v2 a transactional id pattern (KIP-1152).
 */
export const ListTransactions = api(66,
  message('ListTransactionsRequest', [0, 2], 0, [
    arr('stateFilters', 'string', '0+'),
    arr('producerIdFilters', 'int64', '0+'),
    f('durationFilter', 'int64', '1+', { default: -1n }),
    f('transactionalIdPattern', 'string', '2+', { nullable: '2+', default: null }),
  ]),
  message('ListTransactionsResponse', [0, 2], 0, [
    f('throttleTimeMs', 'int32', '0+'),
    f('errorCode', 'int16', '0+'),
    arr('unknownStateFilters', 'string', '0+'),
    structs('transactionStates', '0+', [
      f('transactionalId', 'string', '0+'),
      f('producerId', 'int64', '0+'),
      f('transactionState', 'string', '0+'),
    ]),
  ]),
);
