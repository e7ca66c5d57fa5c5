/**
 * The typed method table: the TypeScript face of proto/rpc.proto. Each interface mirrors the
 * message of the same name (camelCase fields); 64-bit integers are bigint, `T | null` fields are
 * absent on the wire. The round-trip test holds one sample per method, so a method added here
 * without its proto messages (or the other way round) fails there.
 */

export type Address = { host: string; port: number };

export type NodeRole = 'broker' | 'coordinator';

export interface NodeRegistration {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
  roles: NodeRole[];
  rpc: Address | null;
  brokerEpoch: number;
  /** The registering process's random id ('' on the wire when absent). */
  incarnationId?: string;
  /** Every advertised Kafka listener; absent or empty: `host`/`port` serves all (decoded as []). */
  endpoints?: Endpoint[];
}

/** One advertised Kafka listener of a node (listener name upper case). */
export interface Endpoint { listener: string; host: string; port: number; securityProtocol: string }

export type RegisterNodeRequest = Omit<NodeRegistration, 'brokerEpoch'>;
export interface RegisterNodeResponse { registration: NodeRegistration; version: number }

export interface HeartbeatRequest { nodeId: number; brokerEpoch: number }
export interface HeartbeatResponse { fenced: boolean }

export interface PartitionStateMsg {
  partition: number;
  /** -1: offline. */
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  version: number;
}

export interface TopicMsg {
  name: string;
  topicId: string;
  internal: boolean;
  partitions: PartitionStateMsg[];
  configs: Record<string, string>;
}

export interface CreateTopicRequest {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
  internal: boolean;
  /** [] = let the controller assign. */
  assignments: number[][];
}
export interface TopicResponse { topic: TopicMsg; version: number }

export interface DeleteTopicRequest { name: string }
export interface VersionResponse { version: number }

export interface CreatePartitionsRequest { name: string; totalCount: number; assignments: number[][] }

export interface AlterTopicConfigsRequest { name: string; set: Record<string, string>; remove: string[] }
/** SCRAM credential changes (salted keys only); mechanism is SCRAM-SHA-256 or SCRAM-SHA-512. */
export interface ScramCredentialUpsertMsg { user: string; mechanism: string; salt: Buffer; storedKey: Buffer; serverKey: Buffer; iterations: number }
export interface ScramCredentialDeletionMsg { user: string; mechanism: string }
export interface AlterScramCredentialsRequest { upserts: ScramCredentialUpsertMsg[]; deletions: ScramCredentialDeletionMsg[] }
/** Client quota changes per entity (its canonical key): values to set, keys to remove. */
export interface ClientQuotaValueMsg { key: string; value: number }
export interface ClientQuotaEntryMsg { entity: string; set: ClientQuotaValueMsg[]; remove: string[] }
export interface AlterClientQuotasRequest { entries: ClientQuotaEntryMsg[] }

/** nodeId -1 = the cluster-wide default. */
export interface AlterBrokerConfigsRequest { nodeId: number; set: Record<string, string>; remove: string[] }

/** An ACL binding (Kafka's wire codes; @runnel/metadata's AclBinding). */
export interface AclMsg { resourceType: number; resourceName: string; patternType: number; principal: string; host: string; operation: number; permissionType: number }
/** A DescribeAcls/DeleteAcls filter: null strings and the ANY codes match everything. */
export interface AclFilterMsg { resourceType: number; resourceName: string | null; patternType: number; principal: string | null; host: string | null; operation: number; permissionType: number }
export interface CreateAclsRequest { acls: AclMsg[] }
export interface DeleteAclsRequest { filters: AclFilterMsg[] }
/** `deleted[i].acls`: what `filters[i]` matched and removed. */
export interface DeleteAclsResponse { deleted: { acls: AclMsg[] }[]; version: number }

export type AllocateProducerIdRequest = Record<string, never>;
export interface AllocateProducerIdResponse { producerId: bigint }

export interface AppendRequest {
  topic: string;
  partition: number;
  /** One v2 record batch. */
  records: Buffer;
  /** -1: not a coordinator append. */
  coordinatorEpoch: number;
}
export interface AppendResponse { baseOffset: bigint; lastOffset: bigint }

export interface ReadRequest {
  topic: string;
  partition: number;
  offset: bigint;
  maxBytes: number;
  /** A coordinator loading `__consumer_offsets` says under which epoch (fences older owners); -1 otherwise. */
  coordinatorEpoch: number;
}
export interface ReadResponse { records: Buffer; highWatermark: bigint; logStartOffset: bigint }

export interface TopicPartitionMsg { topic: string; partition: number }
export interface OffsetsRequest { partitions: TopicPartitionMsg[] }
export interface PartitionOffsetsMsg {
  topic: string;
  partition: number;
  /** '' = ok, else an error code. */
  error: string;
  highWatermark: bigint;
  logStartOffset: bigint;
}
export interface OffsetsResponse { partitions: PartitionOffsetsMsg[] }

export interface RecordTimestampRequest { topic: string; partition: number; offset: bigint }
/** timestamp -1n: no record at that offset. */
export interface RecordTimestampResponse { timestamp: bigint }

/** Kafka's AlterPartition: the leader proposes an ISR; compare-and-set on leaderEpoch and version. */
export interface AlterPartitionRequest {
  nodeId: number;
  brokerEpoch: number;
  topic: string;
  partition: number;
  leaderEpoch: number;
  version: number;
  isr: number[];
}
/** error '' = committed; `partition` is the committed state either way. */
export interface AlterPartitionResponse { error: string; partition: PartitionStateMsg | null; version: number }

export interface ShutdownNodeRequest { nodeId: number; brokerEpoch: number }
/** `remaining`: partitions the node still leads (no other in-sync replica to take them). */
export interface ShutdownNodeResponse { remaining: number; version: number }

export interface ElectLeadersRequest { partitions: TopicPartitionMsg[]; unclean: boolean }
export interface ElectionResultMsg { topic: string; partition: number; error: string; message: string }
export interface ElectLeadersResponse { results: ElectionResultMsg[]; version: number }

/** One partition to move to `replicas`, or with `cancel` back to where it was. */
export interface ReassignmentMsg { topic: string; partition: number; replicas: number[]; cancel: boolean }
export interface AlterReassignmentsRequest { reassignments: ReassignmentMsg[] }
export interface AlterReassignmentsResponse { results: ElectionResultMsg[]; version: number }

export interface ReplicaFetchPartition {
  topic: string;
  partition: number;
  fetchOffset: bigint;
  currentLeaderEpoch: number;
  /** -1: the follower's log is empty. */
  lastFetchedEpoch: number;
  logStartOffset: bigint;
}
export interface ReplicaFetchRequest {
  replicaId: number;
  brokerEpoch: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  partitionMaxBytes: number;
  partitions: ReplicaFetchPartition[];
}
export interface ReplicaFetchPartitionResult {
  topic: string;
  partition: number;
  /** '' = ok, else a Kafka error name. */
  error: string;
  highWatermark: bigint;
  logStartOffset: bigint;
  logEndOffset: bigint;
  /** Whole batches as the leader stored them. */
  records: Buffer;
  /** -1: none; else the follower truncates to min(divergingEndOffset, its own end of that epoch). */
  divergingEpoch: number;
  divergingEndOffset: bigint;
}
export interface ReplicaFetchResponse { partitions: ReplicaFetchPartitionResult[] }

/** One transaction marker to write: COMMIT (`commit`) or ABORT for a producer on each partition. */
export interface TxnMarkerMsg {
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
  commit: boolean;
  partitions: TopicPartitionMsg[];
}
/**
 * `groupCoordinatorEpoch`: the epoch a group coordinator writes its `__consumer_offsets` markers
 * under (fenced like its appends); absent (null when decoded) for other callers.
 */
export interface WriteTxnMarkersRequest { markers: TxnMarkerMsg[]; groupCoordinatorEpoch?: number | null }
/** error '' = written and committed, else a Kafka error name. */
export interface TxnMarkerPartitionResult { topic: string; partition: number; error: string }
/** One result per request marker, each with one entry per partition, in the request's order. */
export interface WriteTxnMarkersResponse { markers: { partitions: TxnMarkerPartitionResult[] }[] }

/** Method name → [request, response]. */
export interface RpcMethods {
  'controller.registerNode': [RegisterNodeRequest, RegisterNodeResponse];
  'controller.heartbeat': [HeartbeatRequest, HeartbeatResponse];
  'controller.createTopic': [CreateTopicRequest, TopicResponse];
  'controller.deleteTopic': [DeleteTopicRequest, VersionResponse];
  'controller.createPartitions': [CreatePartitionsRequest, TopicResponse];
  'controller.alterTopicConfigs': [AlterTopicConfigsRequest, TopicResponse];
  'controller.alterBrokerConfigs': [AlterBrokerConfigsRequest, VersionResponse];
  'controller.alterScramCredentials': [AlterScramCredentialsRequest, VersionResponse];
  'controller.alterClientQuotas': [AlterClientQuotasRequest, VersionResponse];
  'controller.allocateProducerId': [AllocateProducerIdRequest, AllocateProducerIdResponse];
  'controller.alterPartition': [AlterPartitionRequest, AlterPartitionResponse];
  'controller.shutdownNode': [ShutdownNodeRequest, ShutdownNodeResponse];
  'controller.electLeaders': [ElectLeadersRequest, ElectLeadersResponse];
  'controller.alterReassignments': [AlterReassignmentsRequest, AlterReassignmentsResponse];
  'controller.createAcls': [CreateAclsRequest, VersionResponse];
  'controller.deleteAcls': [DeleteAclsRequest, DeleteAclsResponse];
  'broker.append': [AppendRequest, AppendResponse];
  'broker.read': [ReadRequest, ReadResponse];
  'broker.offsets': [OffsetsRequest, OffsetsResponse];
  'broker.recordTimestamp': [RecordTimestampRequest, RecordTimestampResponse];
  'broker.replicaFetch': [ReplicaFetchRequest, ReplicaFetchResponse];
  'broker.writeTxnMarkers': [WriteTxnMarkersRequest, WriteTxnMarkersResponse];
  /** To a coordinator node: markers on the `__consumer_offsets` partitions it owns (topic must be `__consumer_offsets`). */
  'coordinator.writeTxnMarkers': [WriteTxnMarkersRequest, WriteTxnMarkersResponse];
}

export type RpcMethod = keyof RpcMethods;

export interface RpcContext {
  /** The caller's address, `host:port`. */
  peer: string;
}

export type RpcHandlers = {
  [M in keyof RpcMethods]?: (req: RpcMethods[M][0], ctx: RpcContext) => Promise<RpcMethods[M][1]> | RpcMethods[M][1];
};
