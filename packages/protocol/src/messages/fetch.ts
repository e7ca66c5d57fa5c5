import { api, arr, f, message, struct, structs } from '../schema.ts';

/**
 * Fetch (key 1), v4–17. v12 is the first flexible version (lastFetchedEpoch; divergingEpoch and
 * currentLeader in the answer); v13 names topics by id instead of name (KIP-516; UNKNOWN_TOPIC_ID);
 * v14 only adds an error a tiered-storage broker may answer; v15 moves the follower's id into the
 * tagged `replicaState` (KIP-903); v16 adds the top-level tagged `nodeEndpoints` (KIP-951);
 * v17 the follower's tagged `replicaDirectoryId` (KIP-853).
 */
export const Fetch = api(1,
  message('FetchRequest', [4, 17], 12, [
    f('clusterId', 'string', '12+', { nullable: '12+', default: null, tag: 0, taggedVersions: '12+' }),
    f('replicaId', 'int32', '0-14', { default: -1 }),
    struct('replicaState', '15+', [
      f('replicaId', 'int32', '15+', { default: -1 }),
      f('replicaEpoch', 'int64', '15+', { default: -1 }),
    ], { tag: 1, taggedVersions: '15+' }),
    f('maxWaitMs', 'int32', '0+'),
    f('minBytes', 'int32', '0+'),
    f('maxBytes', 'int32', '3+', { default: 0x7fffffff }),
    f('isolationLevel', 'int8', '4+'),
    f('sessionId', 'int32', '7+'),
    f('sessionEpoch', 'int32', '7+', { default: -1 }),
    structs('topics', '0+', [
      f('topic', 'string', '0-12', { default: '' }),
      f('topicId', 'uuid', '13+', { default: '00000000-0000-0000-0000-000000000000' }),
      structs('partitions', '0+', [
        f('partition', 'int32', '0+'),
        f('currentLeaderEpoch', 'int32', '9+', { default: -1 }),
        f('fetchOffset', 'int64', '0+'),
        f('lastFetchedEpoch', 'int32', '12+', { default: -1 }),
        f('logStartOffset', 'int64', '5+', { default: -1 }),
        f('partitionMaxBytes', 'int32', '0+'),
        f('replicaDirectoryId', 'uuid', '17+', { default: '00000000-0000-0000-0000-000000000000', tag: 0, taggedVersions: '17+' }),
      ]),
    ]),
    structs('forgottenTopicsData', '7+', [
      f('topic', 'string', '7-12', { default: '' }),
      f('topicId', 'uuid', '13+', { default: '00000000-0000-0000-0000-000000000000' }),
      arr('partitions', 'int32', '7+'),
    ]),
    f('rackId', 'string', '11+', { default: '' }),
  ]),
  message('FetchResponse', [4, 17], 12, [
    f('throttleTimeMs', 'int32', '1+'),
    f('errorCode', 'int16', '7+'),
    f('sessionId', 'int32', '7+'),
    structs('responses', '0+', [
      f('topic', 'string', '0-12', { default: '' }),
      f('topicId', 'uuid', '13+', { default: '00000000-0000-0000-0000-000000000000' }),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
        f('highWatermark', 'int64', '0+'),
        f('lastStableOffset', 'int64', '4+', { default: -1 }),
        f('logStartOffset', 'int64', '5+', { default: -1 }),
        struct('divergingEpoch', '12+', [
          f('epoch', 'int32', '12+', { default: -1 }),
          f('endOffset', 'int64', '12+', { default: -1 }),
        ], { tag: 0, taggedVersions: '12+' }),
        struct('currentLeader', '12+', [
          f('leaderId', 'int32', '12+', { default: -1 }),
          f('leaderEpoch', 'int32', '12+', { default: -1 }),
        ], { tag: 1, taggedVersions: '12+' }),
        struct('snapshotId', '12+', [
          f('endOffset', 'int64', '12+', { default: -1 }),
          f('epoch', 'int32', '12+', { default: -1 }),
        ], { tag: 2, taggedVersions: '12+' }),
        structs('abortedTransactions', '4+', [
          f('producerId', 'int64', '4+'),
          f('firstOffset', 'int64', '4+'),
        ], { nullable: '4+' }),
        f('preferredReadReplica', 'int32', '11+', { default: -1 }),
        f('records', 'records', '0+', { nullable: '0+' }),
      ]),
    ]),
    structs('nodeEndpoints', '16+', [
      f('nodeId', 'int32', '16+'),
      f('host', 'string', '16+'),
      f('port', 'int32', '16+'),
      f('rack', 'string', '16+', { nullable: '16+', default: null }),
    ], { tag: 0, taggedVersions: '16+' }),
  ]),
);
