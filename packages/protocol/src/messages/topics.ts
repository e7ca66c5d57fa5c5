import { api, arr, f, message, structs } from '../schema.ts';

/** CreateTopics (key 19). v4+: numPartitions −1 / replicationFactor −1 mean the broker default. */
export const CreateTopics = api(19,
  message('CreateTopicsRequest', [0, 7], 5, [
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      f('numPartitions', 'int32', '0+'),
      f('replicationFactor', 'int16', '0+'),
      structs('assignments', '0+', [
        f('partitionIndex', 'int32', '0+'),
        arr('brokerIds', 'int32', '0+'),
      ]),
      structs('configs', '0+', [
        f('name', 'string', '0+'),
        f('value', 'string', '0+', { nullable: '0+' }),
      ]),
    ]),
    f('timeoutMs', 'int32', '0+', { default: 60000 }),
    f('validateOnly', 'bool', '1+', { default: false }),
  ]),
  message('CreateTopicsResponse', [0, 7], 5, [
    f('throttleTimeMs', 'int32', '2+'),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      f('topicId', 'uuid', '7+'),
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '1+', { nullable: '0+', default: null }),
      f('topicConfigErrorCode', 'int16', '5+', { tag: 0, taggedVersions: '5+', default: 0 }),
      f('numPartitions', 'int32', '5+', { default: -1 }),
      f('replicationFactor', 'int16', '5+', { default: -1 }),
      structs('configs', '5+', [
        f('name', 'string', '5+'),
        f('value', 'string', '5+', { nullable: '5+' }),
        f('readOnly', 'bool', '5+'),
        f('configSource', 'int8', '5+', { default: -1 }),
        f('isSensitive', 'bool', '5+'),
      ], { nullable: '5+' }),
    ]),
  ]),
);

/** DeleteTopics (key 20). v6 names topics by name or id. */
export const DeleteTopics = api(20,
  message('DeleteTopicsRequest', [0, 6], 4, [
    structs('topics', '6+', [
      f('name', 'string', '6+', { nullable: '6+', default: null }),
      f('topicId', 'uuid', '6+'),
    ]),
    arr('topicNames', 'string', '0-5'),
    f('timeoutMs', 'int32', '0+'),
  ]),
  message('DeleteTopicsResponse', [0, 6], 4, [
    f('throttleTimeMs', 'int32', '1+'),
    structs('responses', '0+', [
      f('name', 'string', '0+', { nullable: '6+' }),
      f('topicId', 'uuid', '6+'),
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '5+', { nullable: '5+', default: null }),
    ]),
  ]),
);

/** DeleteRecords (key 21): move the log start offset forward. */
export const DeleteRecords = api(21,
  message('DeleteRecordsRequest', [0, 2], 2, [
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('offset', 'int64', '0+'),
      ]),
    ]),
    f('timeoutMs', 'int32', '0+'),
  ]),
  message('DeleteRecordsResponse', [0, 2], 2, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('lowWatermark', 'int64', '0+'),
        f('errorCode', 'int16', '0+'),
      ]),
    ]),
  ]),
);

/** InitProducerId (key 22). v3+ lets an idempotent producer bump its epoch. */
export const InitProducerId = api(22,
  message('InitProducerIdRequest', [0, 5], 2, [
    f('transactionalId', 'string', '0+', { nullable: '0+' }),
    f('transactionTimeoutMs', 'int32', '0+'),
    f('producerId', 'int64', '3+', { default: -1 }),
    f('producerEpoch', 'int16', '3+', { default: -1 }),
  ]),
  message('InitProducerIdResponse', [0, 5], 2, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    f('errorCode', 'int16', '0+'),
    f('producerId', 'int64', '0+', { default: -1 }),
    f('producerEpoch', 'int16', '0+'),
  ]),
);

/** DescribeConfigs (key 32). resourceType 2 = topic, 4 = broker. */
export const DescribeConfigs = api(32,
  message('DescribeConfigsRequest', [0, 4], 4, [
    structs('resources', '0+', [
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
      arr('configurationKeys', 'string', '0+', { nullable: '0+' }),
    ]),
    f('includeSynonyms', 'bool', '1+', { default: false }),
    f('includeDocumentation', 'bool', '3+', { default: false }),
  ]),
  message('DescribeConfigsResponse', [0, 4], 4, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('results', '0+', [
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
      structs('configs', '0+', [
        f('name', 'string', '0+'),
        f('value', 'string', '0+', { nullable: '0+' }),
        f('readOnly', 'bool', '0+'),
        f('isDefault', 'bool', '0', { default: false }),
        f('configSource', 'int8', '1+', { default: -1 }),
        f('isSensitive', 'bool', '0+'),
        structs('synonyms', '1+', [
          f('name', 'string', '1+'),
          f('value', 'string', '1+', { nullable: '1+' }),
          f('source', 'int8', '1+'),
        ]),
        f('configType', 'int8', '3+', { default: 0 }),
        f('documentation', 'string', '3+', { nullable: '0+', default: null }),
      ]),
    ]),
  ]),
);

/** CreatePartitions (key 37): grow a topic to `count` partitions. */
export const CreatePartitions = api(37,
  message('CreatePartitionsRequest', [0, 3], 2, [
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      f('count', 'int32', '0+'),
      structs('assignments', '0+', [
        arr('brokerIds', 'int32', '0+'),
      ], { nullable: '0+' }),
    ]),
    f('timeoutMs', 'int32', '0+'),
    f('validateOnly', 'bool', '0+'),
  ]),
  message('CreatePartitionsResponse', [0, 3], 2, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('results', '0+', [
      f('name', 'string', '0+'),
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    ]),
  ]),
);

/**
 * AlterReplicaLogDirs (key 34): move replicas to other log dirs of the broker. v0 was removed by
 * KIP-896 (Kafka 4.0); v1 is v0's layout, v2 flexible.
 */
export const AlterReplicaLogDirs = api(34,
  message('AlterReplicaLogDirsRequest', [1, 2], 2, [
    structs('dirs', '0+', [
      f('path', 'string', '0+'),
      structs('topics', '0+', [
        f('name', 'string', '0+'),
        arr('partitions', 'int32', '0+'),
      ]),
    ]),
  ]),
  message('AlterReplicaLogDirsResponse', [1, 2], 2, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('results', '0+', [
      f('topicName', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
      ]),
    ]),
  ]),
);

/**
 * DescribeLogDirs (key 35). A null topic list means every partition. v3 adds the top-level error
 * code, v4 each dir's total and usable bytes, v5 (KIP-1066) whether the dir is cordoned.
 */
export const DescribeLogDirs = api(35,
  message('DescribeLogDirsRequest', [0, 5], 2, [
    structs('topics', '0+', [
      f('topic', 'string', '0+'),
      arr('partitions', 'int32', '0+'),
    ], { nullable: '0+' }),
  ]),
  message('DescribeLogDirsResponse', [0, 5], 2, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    f('errorCode', 'int16', '3+', { default: 0 }),
    structs('results', '0+', [
      f('errorCode', 'int16', '0+'),
      f('logDir', 'string', '0+'),
      structs('topics', '0+', [
        f('name', 'string', '0+'),
        structs('partitions', '0+', [
          f('partitionIndex', 'int32', '0+'),
          f('partitionSize', 'int64', '0+'),
          f('offsetLag', 'int64', '0+'),
          f('isFutureKey', 'bool', '0+'),
        ]),
      ]),
      f('totalBytes', 'int64', '4+', { default: -1 }),
      f('usableBytes', 'int64', '4+', { default: -1 }),
      f('isCordoned', 'bool', '5+', { default: false }),
    ]),
  ]),
);

/**
 * DescribeCluster (key 60). Always flexible. v1 (KIP-919) names the endpoint type described
 * (1 = brokers, 2 = controllers); v2 (KIP-1073) may include fenced brokers, marked isFenced.
 */
export const DescribeCluster = api(60,
  message('DescribeClusterRequest', [0, 2], 0, [
    f('includeClusterAuthorizedOperations', 'bool', '0+'),
    f('endpointType', 'int8', '1+', { default: 1 }),
    f('includeFencedBrokers', 'bool', '2+', { default: false }),
  ]),
  message('DescribeClusterResponse', [0, 2], 0, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    f('errorCode', 'int16', '0+'),
    f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    f('endpointType', 'int8', '1+', { default: 1 }),
    f('clusterId', 'string', '0+'),
    f('controllerId', 'int32', '0+', { default: -1 }),
    structs('brokers', '0+', [
      f('brokerId', 'int32', '0+'),
      f('host', 'string', '0+'),
      f('port', 'int32', '0+'),
      f('rack', 'string', '0+', { nullable: '0+', default: null }),
      f('isFenced', 'bool', '2+', { default: false }),
    ]),
    f('clusterAuthorizedOperations', 'int32', '0+', { default: -2147483648 }),
  ]),
);
