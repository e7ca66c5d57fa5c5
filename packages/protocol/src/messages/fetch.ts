import { api, arr, f, message, struct, structs } from '../schema.ts';

/** Fetch (key 1). v12 is the first flexible version; v13+ (topic ids) are not supported. */
export const Fetch = api(1,
  message('FetchRequest', [4, 12], 12, [
    f('clusterId', 'string', '12+', { nullable: '12+', default: null, tag: 0, taggedVersions: '12+' }),
    f('replicaId', 'int32', '0+', { default: -1 }),
    f('maxWaitMs', 'int32', '0+'),
    f('minBytes', 'int32', '0+'),
    f('maxBytes', 'int32', '3+', { default: 0x7fffffff }),
    f('isolationLevel', 'int8', '4+'),
    f('sessionId', 'int32', '7+'),
    f('sessionEpoch', 'int32', '7+', { default: -1 }),
    structs('topics', '0+', [
      f('topic', 'string', '0+'),
      structs('partitions', '0+', [
        f('partition', 'int32', '0+'),
        f('currentLeaderEpoch', 'int32', '9+', { default: -1 }),
        f('fetchOffset', 'int64', '0+'),
        f('lastFetchedEpoch', 'int32', '12+', { default: -1 }),
        f('logStartOffset', 'int64', '5+', { default: -1 }),
        f('partitionMaxBytes', 'int32', '0+'),
      ]),
    ]),
    structs('forgottenTopicsData', '7+', [
      f('topic', 'string', '7+'),
      arr('partitions', 'int32', '7+'),
    ]),
    f('rackId', 'string', '11+', { default: '' }),
  ]),
  message('FetchResponse', [4, 12], 12, [
    f('throttleTimeMs', 'int32', '1+'),
    f('errorCode', 'int16', '7+'),
    f('sessionId', 'int32', '7+'),
    structs('responses', '0+', [
      f('topic', 'string', '0+'),
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
  ]),
);
