import { Reader, Writer, arr, decodeMessage, encodeMessage, f, message, structs, type MessageSchema } from '@runnel/protocol';

/**
 * The KIP-848 consumer group records of `__consumer_offsets`, in Kafka's encoding (record types =
 * key versions 3–8; a key is int16 type + a non-flexible struct, a value is int16 version 0 + a
 * flexible struct with tagged fields):
 *
 * ```text
 * 3 ConsumerGroupMetadata          key group           value Epoch int32, tag 0 MetadataHash int64
 * 5 ConsumerGroupMemberMetadata    key group, member   value InstanceId?, RackId?, ClientId, ClientHost,
 *                                                       SubscribedTopicNames [], SubscribedTopicRegex?,
 *                                                       RebalanceTimeoutMs, ServerAssignor?
 * 6 ConsumerGroupTargetAssignmentMetadata  key group   value AssignmentEpoch int32
 * 7 ConsumerGroupTargetAssignmentMember    key group, member  value TopicPartitions [TopicId, Partitions]
 * 8 ConsumerGroupCurrentMemberAssignment   key group, member  value MemberEpoch, PreviousMemberEpoch,
 *                                                       State int8, AssignedPartitions [], PartitionsPendingRevocation []
 * ```
 *
 * Type 4 (ConsumerGroupPartitionMetadata, replaced by MetadataHash in Kafka 4.1) is not written and
 * is ignored when read. A null value is a tombstone. MetadataHash is Runnel's own hash of the
 * subscribed topics (ids and partition counts): a Kafka broker reading this log would see a
 * different hash and rebalance once, which is harmless.
 */

export const CONSUMER_GROUP_METADATA = 3;
export const CONSUMER_GROUP_PARTITION_METADATA = 4;
export const CONSUMER_GROUP_MEMBER_METADATA = 5;
export const CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA = 6;
export const CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER = 7;
export const CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT = 8;

const topicPartitions = [f('topicId', 'uuid', '0+'), arr('partitions', 'int32', '0+')] as const;

const GroupMetadataValue = message('ConsumerGroupMetadataValue', [0, 0], 0, [
  f('epoch', 'int32', '0+'),
  f('metadataHash', 'int64', '0+', { default: 0n, tag: 0 }),
]);
const MemberMetadataValue = message('ConsumerGroupMemberMetadataValue', [0, 0], 0, [
  f('instanceId', 'string', '0+', { nullable: '0+' }),
  f('rackId', 'string', '0+', { nullable: '0+' }),
  f('clientId', 'string', '0+'),
  f('clientHost', 'string', '0+'),
  arr('subscribedTopicNames', 'string', '0+'),
  f('subscribedTopicRegex', 'string', '0+', { nullable: '0+' }),
  f('rebalanceTimeoutMs', 'int32', '0+', { default: -1 }),
  f('serverAssignor', 'string', '0+', { nullable: '0+' }),
]);
const TargetAssignmentMetadataValue = message('ConsumerGroupTargetAssignmentMetadataValue', [0, 0], 0, [
  f('assignmentEpoch', 'int32', '0+'),
]);
const TargetAssignmentMemberValue = message('ConsumerGroupTargetAssignmentMemberValue', [0, 0], 0, [
  structs('topicPartitions', '0+', topicPartitions),
]);
const CurrentMemberAssignmentValue = message('ConsumerGroupCurrentMemberAssignmentValue', [0, 0], 0, [
  f('memberEpoch', 'int32', '0+'),
  f('previousMemberEpoch', 'int32', '0+'),
  f('state', 'int8', '0+'),
  structs('assignedPartitions', '0+', topicPartitions),
  structs('partitionsPendingRevocation', '0+', topicPartitions),
]);

/** topicId → partitions, as the records carry them. */
export type WireAssignment = { topicId: string; partitions: number[] }[];

export interface MemberMetadata {
  instanceId: string | null;
  rackId: string | null;
  clientId: string;
  clientHost: string;
  subscribedTopicNames: string[];
  subscribedTopicRegex: string | null;
  rebalanceTimeoutMs: number;
  serverAssignor: string | null;
}

export interface CurrentMemberAssignment {
  memberEpoch: number;
  previousMemberEpoch: number;
  /** Kafka's MemberState: 0 STABLE, 1 UNREVOKED_PARTITIONS, 2 UNRELEASED_PARTITIONS. */
  state: number;
  assignedPartitions: WireAssignment;
  partitionsPendingRevocation: WireAssignment;
}

export type ConsumerRecordKey =
  | { type: 3 | 4 | 6; group: string }
  | { type: 5 | 7 | 8; group: string; member: string };

function value(schema: MessageSchema, body: object): Buffer {
  const w = new Writer();
  w.int16(0);
  encodeMessage(schema, 0, w, body);
  return w.finish();
}

function read(schema: MessageSchema, buf: Buffer): Record<string, unknown> {
  const r = new Reader(buf);
  r.int16(); // value version: 0 is the only one; later versions only add tagged fields
  return decodeMessage(schema, 0, r);
}

function groupKey(type: number, group: string): Buffer {
  const w = new Writer();
  w.int16(type);
  w.int16(Buffer.byteLength(group));
  w.utf8(group, Buffer.byteLength(group));
  return w.finish();
}

function memberKey(type: number, group: string, member: string): Buffer {
  const w = new Writer();
  w.int16(type);
  for (const s of [group, member]) {
    w.int16(Buffer.byteLength(s));
    w.utf8(s, Buffer.byteLength(s));
  }
  return w.finish();
}

/** The key of a consumer-group record, or null when the key is not one (types 3–8). */
export function decodeConsumerKey(buf: Buffer): ConsumerRecordKey | null {
  const r = new Reader(buf);
  const type = r.int16();
  if (type < 3 || type > 8) return null;
  const group = r.utf8(r.int16());
  if (type === 3 || type === 4 || type === 6) return { type, group };
  return { type: type as 5 | 7 | 8, group, member: r.utf8(r.int16()) };
}

export const consumerKeys = {
  group: (g: string) => groupKey(CONSUMER_GROUP_METADATA, g),
  partitionMetadata: (g: string) => groupKey(CONSUMER_GROUP_PARTITION_METADATA, g),
  member: (g: string, m: string) => memberKey(CONSUMER_GROUP_MEMBER_METADATA, g, m),
  targetMetadata: (g: string) => groupKey(CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA, g),
  targetMember: (g: string, m: string) => memberKey(CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER, g, m),
  current: (g: string, m: string) => memberKey(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, g, m),
};

export const encodeConsumerGroupMetadata = (epoch: number, metadataHash: bigint) => value(GroupMetadataValue, { epoch, metadataHash });
export const decodeConsumerGroupMetadata = (b: Buffer) => read(GroupMetadataValue, b) as { epoch: number; metadataHash: bigint };
export const encodeMemberMetadata = (m: MemberMetadata) => value(MemberMetadataValue, m);
export const decodeMemberMetadata = (b: Buffer) => read(MemberMetadataValue, b) as unknown as MemberMetadata;
export const encodeTargetAssignmentMetadata = (assignmentEpoch: number) => value(TargetAssignmentMetadataValue, { assignmentEpoch });
export const decodeTargetAssignmentMetadata = (b: Buffer) => read(TargetAssignmentMetadataValue, b) as { assignmentEpoch: number };
export const encodeTargetAssignmentMember = (topicPartitions: WireAssignment) => value(TargetAssignmentMemberValue, { topicPartitions });
export const decodeTargetAssignmentMember = (b: Buffer) => (read(TargetAssignmentMemberValue, b) as { topicPartitions: WireAssignment }).topicPartitions;
export const encodeCurrentMemberAssignment = (v: CurrentMemberAssignment) => value(CurrentMemberAssignmentValue, v);
export const decodeCurrentMemberAssignment = (b: Buffer) => read(CurrentMemberAssignmentValue, b) as unknown as CurrentMemberAssignment;
