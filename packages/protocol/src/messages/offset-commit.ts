import { api, f, message, structs } from '../schema.ts';

/**
 * OffsetCommit (key 8). v7+ carries group_instance_id (static membership). v9 has v8's body: it is
 * the first version a KIP-848 consumer-protocol member may use, and `generationIdOrMemberEpoch`
 * then carries its member epoch.
 */
export const OffsetCommit = api(8,
  message('OffsetCommitRequest', [0, 9], 8, [
    f('groupId', 'string', '0+'),
    f('generationIdOrMemberEpoch', 'int32', '1+', { default: -1 }),
    f('memberId', 'string', '1+', { default: '' }),
    f('groupInstanceId', 'string', '7+', { nullable: '7+', default: null }),
    f('retentionTimeMs', 'int64', '2-4', { default: -1 }),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('committedOffset', 'int64', '0+'),
        f('committedLeaderEpoch', 'int32', '6+', { default: -1 }),
        f('commitTimestamp', 'int64', '1', { default: -1 }),
        f('committedMetadata', 'string', '0+', { nullable: '0+' }),
      ]),
    ]),
  ]),
  message('OffsetCommitResponse', [0, 9], 8, [
    f('throttleTimeMs', 'int32', '3+'),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
      ]),
    ]),
  ]),
);
