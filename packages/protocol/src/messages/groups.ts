import { api, arr, f, message, structs } from '../schema.ts';

/** JoinGroup (key 11). v4+: an empty member id gets MEMBER_ID_REQUIRED (79) and a generated id. */
export const JoinGroup = api(11,
  message('JoinGroupRequest', [0, 6], 6, [
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
  ]),
  message('JoinGroupResponse', [0, 6], 6, [
    f('throttleTimeMs', 'int32', '2+'),
    f('errorCode', 'int16', '0+'),
    f('generationId', 'int32', '0+', { default: -1 }),
    f('protocolName', 'string', '0+'),
    f('leader', 'string', '0+'),
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

/** LeaveGroup (key 13). v0–2 leave one member; v3+ a batch with per-member errors. */
export const LeaveGroup = api(13,
  message('LeaveGroupRequest', [0, 4], 4, [
    f('groupId', 'string', '0+'),
    f('memberId', 'string', '0-2'),
    structs('members', '3+', [
      f('memberId', 'string', '3+'),
      f('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
    ]),
  ]),
  message('LeaveGroupResponse', [0, 4], 4, [
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

/** DescribeGroups (key 15). Metadata and assignment bytes are returned as stored. */
export const DescribeGroups = api(15,
  message('DescribeGroupsRequest', [0, 5], 5, [
    arr('groups', 'string', '0+'),
    f('includeAuthorizedOperations', 'bool', '3+'),
  ]),
  message('DescribeGroupsResponse', [0, 5], 5, [
    f('throttleTimeMs', 'int32', '1+'),
    structs('groups', '0+', [
      f('errorCode', 'int16', '0+'),
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

/** ListGroups (key 16). v4 filters by state. */
export const ListGroups = api(16,
  message('ListGroupsRequest', [0, 4], 3, [
    arr('statesFilter', 'string', '4+'),
  ]),
  message('ListGroupsResponse', [0, 4], 3, [
    f('throttleTimeMs', 'int32', '1+'),
    f('errorCode', 'int16', '0+'),
    structs('groups', '0+', [
      f('groupId', 'string', '0+'),
      f('protocolType', 'string', '0+'),
      f('groupState', 'string', '4+', { default: '' }),
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
