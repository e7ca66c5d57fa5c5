import { api, arr, f, message, structs } from '../schema.ts';

/**
 * Metadata (key 3). v0: an empty topic list means all topics; v1+: null means all topics.
 * v10+ carries topic ids (a topic asked for by id has a null name, v12+). v13 (Kafka 4.0, KIP-1102)
 * adds a top-level error code, by which a broker may tell the client to rebootstrap.
 */
export const Metadata = api(3,
  message('MetadataRequest', [0, 13], 9, [
    structs('topics', '0+', [
      f('topicId', 'uuid', '10+'),
      f('name', 'string', '0+', { nullable: '10+', default: null }),
    ], { nullable: '1+' }),
    f('allowAutoTopicCreation', 'bool', '4+', { default: true }),
    f('includeClusterAuthorizedOperations', 'bool', '8-10'),
    f('includeTopicAuthorizedOperations', 'bool', '8+'),
  ]),
  message('MetadataResponse', [0, 13], 9, [
    f('throttleTimeMs', 'int32', '3+'),
    structs('brokers', '0+', [
      f('nodeId', 'int32', '0+'),
      f('host', 'string', '0+'),
      f('port', 'int32', '0+'),
      f('rack', 'string', '1+', { nullable: '1+', default: null }),
    ]),
    f('clusterId', 'string', '2+', { nullable: '2+', default: null }),
    f('controllerId', 'int32', '1+', { default: -1 }),
    structs('topics', '0+', [
      f('errorCode', 'int16', '0+'),
      f('name', 'string', '0+', { nullable: '12+' }),
      f('topicId', 'uuid', '10+'),
      f('isInternal', 'bool', '1+', { default: false }),
      structs('partitions', '0+', [
        f('errorCode', 'int16', '0+'),
        f('partitionIndex', 'int32', '0+'),
        f('leaderId', 'int32', '0+'),
        f('leaderEpoch', 'int32', '7+', { default: -1 }),
        arr('replicaNodes', 'int32', '0+'),
        arr('isrNodes', 'int32', '0+'),
        arr('offlineReplicas', 'int32', '5+'),
      ]),
      f('topicAuthorizedOperations', 'int32', '8+', { default: -2147483648 }),
    ]),
    f('clusterAuthorizedOperations', 'int32', '8-10', { default: -2147483648 }),
    f('errorCode', 'int16', '13+', { default: 0 }),
  ]),
);
