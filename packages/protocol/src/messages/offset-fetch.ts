import { api, arr, f, message, structs } from '../schema.ts';

/**
 * OffsetFetch (key 9). v0–7 ask for one group (`groupId`, `topics`); v8 asks for many (`groups`).
 * A null topic list (v2+) means every committed partition of the group. v9 adds each group's
 * `memberId`/`memberEpoch` (KIP-848: checked for consumer-protocol groups; null/-1 from the admin
 * client and classic members); its response is v8's.
 */
export const OffsetFetch = api(9,
  message('OffsetFetchRequest', [0, 9], 6, [
    f('groupId', 'string', '0-7'),
    structs('topics', '0-7', [
      f('name', 'string', '0-7'),
      arr('partitionIndexes', 'int32', '0-7'),
    ], { nullable: '2-7' }),
    structs('groups', '8+', [
      f('groupId', 'string', '8+'),
      f('memberId', 'string', '9+', { nullable: '9+', default: null }),
      f('memberEpoch', 'int32', '9+', { default: -1 }),
      structs('topics', '8+', [
        f('name', 'string', '8+'),
        arr('partitionIndexes', 'int32', '8+'),
      ], { nullable: '8+' }),
    ]),
    f('requireStable', 'bool', '7+', { default: false }),
  ]),
  message('OffsetFetchResponse', [0, 9], 6, [
    f('throttleTimeMs', 'int32', '3+'),
    structs('topics', '0-7', [
      f('name', 'string', '0-7'),
      structs('partitions', '0-7', [
        f('partitionIndex', 'int32', '0-7'),
        f('committedOffset', 'int64', '0-7'),
        f('committedLeaderEpoch', 'int32', '5-7', { default: -1 }),
        f('metadata', 'string', '0-7', { nullable: '0-7' }),
        f('errorCode', 'int16', '0-7'),
      ]),
    ]),
    f('errorCode', 'int16', '2-7', { default: 0 }),
    structs('groups', '8+', [
      f('groupId', 'string', '8+'),
      structs('topics', '8+', [
        f('name', 'string', '8+'),
        structs('partitions', '8+', [
          f('partitionIndex', 'int32', '8+'),
          f('committedOffset', 'int64', '8+'),
          f('committedLeaderEpoch', 'int32', '8+', { default: -1 }),
          f('metadata', 'string', '8+', { nullable: '8+' }),
          f('errorCode', 'int16', '8+'),
        ]),
      ]),
      f('errorCode', 'int16', '8+', { default: 0 }),
    ]),
  ]),
);
