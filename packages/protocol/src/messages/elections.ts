import { api, arr, f, message, structs } from '../schema.ts';

/**
 * ElectLeaders (key 43, KIP-183 / KIP-460): elect the preferred replica (electionType 0) or, for
 * partitions without a leader, any live replica (1, unclean). v0 has no electionType (preferred).
 * `topicPartitions` null = every partition. v2 is flexible. Sent by the Java Admin's
 * electLeaders and `kafka-leader-election.sh`.
 */
export const ElectLeaders = api(43,
  message('ElectLeadersRequest', [0, 2], 2, [
    f('electionType', 'int8', '1+', { default: 0 }),
    structs('topicPartitions', '0+', [
      f('topic', 'string', '0+'),
      arr('partitions', 'int32', '0+'),
    ], { nullable: '0+' }),
    f('timeoutMs', 'int32', '0+', { default: 60000 }),
  ]),
  message('ElectLeadersResponse', [0, 2], 2, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    f('errorCode', 'int16', '1+', { default: 0 }),
    structs('replicaElectionResults', '0+', [
      f('topic', 'string', '0+'),
      structs('partitionResult', '0+', [
        f('partitionId', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
        f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
      ]),
    ]),
  ]),
);

/**
 * AlterPartitionReassignments (key 45, KIP-455; v0, flexible): move partitions to other brokers,
 * or with `replicas` null cancel the move in progress. Sent by Admin.alterPartitionReassignments
 * and `kafka-reassign-partitions.sh --execute`. v1 (KIP-860) adds allowReplicationFactorChange:
 * false refuses a move that changes a partition's replica count; the response echoes it.
 */
export const AlterPartitionReassignments = api(45,
  message('AlterPartitionReassignmentsRequest', [0, 1], 0, [
    f('timeoutMs', 'int32', '0+', { default: 60000 }),
    f('allowReplicationFactorChange', 'bool', '1+', { default: true }),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        arr('replicas', 'int32', '0+', { nullable: '0+', default: null }),
      ]),
    ]),
  ]),
  message('AlterPartitionReassignmentsResponse', [0, 1], 0, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    f('allowReplicationFactorChange', 'bool', '1+', { default: true }),
    f('errorCode', 'int16', '0+', { default: 0 }),
    f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    structs('responses', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
        f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
      ]),
    ]),
  ]),
);

/** ListPartitionReassignments (key 46, v0, flexible): the moves in progress; topics null = all. */
export const ListPartitionReassignments = api(46,
  message('ListPartitionReassignmentsRequest', [0, 0], 0, [
    f('timeoutMs', 'int32', '0+', { default: 60000 }),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      arr('partitionIndexes', 'int32', '0+'),
    ], { nullable: '0+', default: null }),
  ]),
  message('ListPartitionReassignmentsResponse', [0, 0], 0, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    f('errorCode', 'int16', '0+', { default: 0 }),
    f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        arr('replicas', 'int32', '0+'),
        arr('addingReplicas', 'int32', '0+'),
        arr('removingReplicas', 'int32', '0+'),
      ]),
    ]),
  ]),
);
