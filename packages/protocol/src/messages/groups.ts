import { api, arr, f, message, structs } from '../schema.ts';

/**
 * JoinGroup (key 11). v4+: an empty member id gets MEMBER_ID_REQUIRED (79) and a generated id.
 * v7 answers the protocol type (and a null protocol name on errors), v8 sends the reason for
 * (re)joining (KIP-800), v9 tells a restarted static leader of a Stable group to skip the
 * assignment (KIP-814).
 */
export const JoinGroup = api(11,
  message('JoinGroupRequest', [0, 9], 6, [
    f('groupId', 'string', '0+'),
    f('sessionTimeoutMs', 'int32', '0+'),
    f('rebalanceTimeoutMs', 'int32', '1+', { default: -1 }),
    f('memberId', 'string', '0+'),
    f('groupInstanceId', 'string', '5+', { nullable: '5+', default: null }),
    f('protocolType', 'string', '0+'),
    structs('protocols', '0+', [
      f('name', 'string', '0+'),
      f('metadata', 'bytes', '0+'),
    ]),
    f('reason', 'string', '8+', { nullable: '8+', default: null }),
  ]),
  message('JoinGroupResponse', [0, 9], 6, [
    f('throttleTimeMs', 'int32', '2+'),
    f('errorCode', 'int16', '0+'),
    f('generationId', 'int32', '0+', { default: -1 }),
    f('protocolType', 'string', '7+', { nullable: '7+', default: null }),
    f('protocolName', 'string', '0+', { nullable: '7+' }),
    f('leader', 'string', '0+'),
    f('skipAssignment', 'bool', '9+', { default: false }),
    f('memberId', 'string', '0+'),
    structs('members', '0+', [
      f('memberId', 'string', '0+'),
      f('groupInstanceId', 'string', '5+', { nullable: '5+', default: null }),
      f('metadata', 'bytes', '0+'),
    ]),
  ]),
);

/** Heartbeat (key 12). */
export const Heartbeat = api(12,
  message('HeartbeatRequest', [0, 4], 4, [
    f('groupId', 'string', '0+'),
    f('generationId', 'int32', '0+'),
    f('memberId', 'string', '0+'),
    f('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
  ]),
  message('HeartbeatResponse', [0, 4], 4, [
    f('throttleTimeMs', 'int32', '1+'),
    f('errorCode', 'int16', '0+'),
  ]),
);

/** LeaveGroup (key 13). v0–2 leave one member; v3+ a batch with per-member errors; v5 says why (KIP-800). */
export const LeaveGroup = api(13,
  message('LeaveGroupRequest', [0, 5], 4, [
    f('groupId', 'string', '0+'),
    f('memberId', 'string', '0-2'),
    structs('members', '3+', [
      f('memberId', 'string', '3+'),
      f('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
      f('reason', 'string', '5+', { nullable: '5+', default: null }),
    ]),
  ]),
  message('LeaveGroupResponse', [0, 5], 4, [
    f('throttleTimeMs', 'int32', '1+'),
    f('errorCode', 'int16', '0+'),
    structs('members', '3+', [
      f('memberId', 'string', '3+'),
      f('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
      f('errorCode', 'int16', '3+'),
    ]),
  ]),
);

/** SyncGroup (key 14). The leader sends the assignments; everyone gets their own back. */
export const SyncGroup = api(14,
  message('SyncGroupRequest', [0, 5], 4, [
    f('groupId', 'string', '0+'),
    f('generationId', 'int32', '0+'),
    f('memberId', 'string', '0+'),
    f('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
    f('protocolType', 'string', '5+', { nullable: '5+', default: null }),
    f('protocolName', 'string', '5+', { nullable: '5+', default: null }),
    structs('assignments', '0+', [
      f('memberId', 'string', '0+'),
      f('assignment', 'bytes', '0+'),
    ]),
  ]),
  message('SyncGroupResponse', [0, 5], 4, [
    f('throttleTimeMs', 'int32', '1+'),
    f('errorCode', 'int16', '0+'),
    f('protocolType', 'string', '5+', { nullable: '5+', default: null }),
    f('protocolName', 'string', '5+', { nullable: '5+', default: null }),
    f('assignment', 'bytes', '0+'),
  ]),
);

/**
 * DescribeGroups (key 15). Metadata and assignment bytes are returned as stored. v6 (KIP-1043)
 * answers GROUP_ID_NOT_FOUND with a message for an unknown group, where older versions say Dead.
 */
export const DescribeGroups = api(15,
  message('DescribeGroupsRequest', [0, 6], 5, [
    arr('groups', 'string', '0+'),
    f('includeAuthorizedOperations', 'bool', '3+'),
  ]),
  message('DescribeGroupsResponse', [0, 6], 5, [
    f('throttleTimeMs', 'int32', '1+'),
    structs('groups', '0+', [
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '6+', { nullable: '6+', default: null }),
      f('groupId', 'string', '0+'),
      f('groupState', 'string', '0+'),
      f('protocolType', 'string', '0+'),
      f('protocolData', 'string', '0+'),
      structs('members', '0+', [
        f('memberId', 'string', '0+'),
        f('groupInstanceId', 'string', '4+', { nullable: '4+', default: null }),
        f('clientId', 'string', '0+'),
        f('clientHost', 'string', '0+'),
        f('memberMetadata', 'bytes', '0+'),
        f('memberAssignment', 'bytes', '0+'),
      ]),
      f('authorizedOperations', 'int32', '3+', { default: -2147483648 }),
    ]),
  ]),
);

/** ListGroups (key 16). v4 filters by state (KIP-518), v5 by group type, "classic" or "consumer" (KIP-848). */
export const ListGroups = api(16,
  message('ListGroupsRequest', [0, 5], 3, [
    arr('statesFilter', 'string', '4+'),
    arr('typesFilter', 'string', '5+'),
  ]),
  message('ListGroupsResponse', [0, 5], 3, [
    f('throttleTimeMs', 'int32', '1+'),
    f('errorCode', 'int16', '0+'),
    structs('groups', '0+', [
      f('groupId', 'string', '0+'),
      f('protocolType', 'string', '0+'),
      f('groupState', 'string', '4+', { default: '' }),
      f('groupType', 'string', '5+', { default: '' }),
    ]),
  ]),
);

/** DeleteGroups (key 42). */
export const DeleteGroups = api(42,
  message('DeleteGroupsRequest', [0, 2], 2, [
    arr('groupsNames', 'string', '0+'),
  ]),
  message('DeleteGroupsResponse', [0, 2], 2, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('results', '0+', [
      f('groupId', 'string', '0+'),
      f('errorCode', 'int16', '0+'),
    ]),
  ]),
);

/** OffsetDelete (key 47). */
export const OffsetDelete = api(47,
  message('OffsetDeleteRequest', [0, 0], null, [
    f('groupId', 'string', '0+'),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
      ]),
    ]),
  ]),
  message('OffsetDeleteResponse', [0, 0], null, [
    f('errorCode', 'int16', '0+'),
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
      ]),
    ]),
  ]),
);
