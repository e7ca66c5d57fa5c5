import { api, arr, f, message, struct, structs } from '../schema.ts';

/**
 * DescribeTopicPartitions (key 75, KIP-966; v0, flexible): Metadata's topic part, paged. The
 * response holds at most `responsePartitionLimit` partitions; `nextCursor` (null when done) names
 * the topic and partition the next request starts from (its `cursor`). An empty topic list means
 * every topic, in name order. Kafka 3.9+'s `kafka-topics.sh --describe` and Admin.describeTopics
 * send it. The eligible leader replicas (ELR) fields belong to KIP-966's election rules.
 */
export const DescribeTopicPartitions = api(75,
  message('DescribeTopicPartitionsRequest', [0, 0], 0, [
    structs('topics', '0+', [
      f('name', 'string', '0+'),
    ]),
    f('responsePartitionLimit', 'int32', '0+', { default: 2000 }),
    struct('cursor', '0+', [
      f('topicName', 'string', '0+'),
      f('partitionIndex', 'int32', '0+'),
    ], { nullable: '0+', default: null }),
  ]),
  message('DescribeTopicPartitionsResponse', [0, 0], 0, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('topics', '0+', [
      f('errorCode', 'int16', '0+'),
      f('name', 'string', '0+', { nullable: '0+' }),
      f('topicId', 'uuid', '0+'),
      f('isInternal', 'bool', '0+', { default: false }),
      structs('partitions', '0+', [
        f('errorCode', 'int16', '0+'),
        f('partitionIndex', 'int32', '0+'),
        f('leaderId', 'int32', '0+'),
        f('leaderEpoch', 'int32', '0+', { default: -1 }),
        arr('replicaNodes', 'int32', '0+'),
        arr('isrNodes', 'int32', '0+'),
        arr('eligibleLeaderReplicas', 'int32', '0+', { nullable: '0+', default: null }),
        arr('lastKnownElr', 'int32', '0+', { nullable: '0+', default: null }),
        arr('offlineReplicas', 'int32', '0+'),
      ]),
      f('topicAuthorizedOperations', 'int32', '0+', { default: -2147483648 }),
    ]),
    struct('nextCursor', '0+', [
      f('topicName', 'string', '0+'),
      f('partitionIndex', 'int32', '0+'),
    ], { nullable: '0+', default: null }),
  ]),
);
