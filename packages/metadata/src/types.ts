/**
 * Cluster metadata as the roles see it. The controller is its only writer in a cluster; under
 * `runnel start` the embedded LocalStore plays that part. Every record carries the version or
 * epoch a receiver needs to refuse stale updates (docs/metadata.md).
 */
import type { AclBinding, AclBindingFilter } from './acls.ts';
import type { ScramCredentialDeletion, ScramCredentials, ScramCredentialUpsert } from './scram.ts';
import type { ClientQuotaAlteration, ClientQuotas } from './client-quotas.ts';

/** What a cluster node does: lead partitions (broker) or run group coordination (coordinator). */
export type NodeRole = 'broker' | 'coordinator';

/** A node's RPC listener (the `runnel.rpc.listener` it bound). */
export interface RpcAddress {
  host: string;
  port: number;
}

/**
 * One Kafka listener of a node as its clients are told: the advertised host and port of listener
 * `listener` (upper case, e.g. INTERNAL, EXTERNAL) and its security protocol.
 */
export interface Endpoint {
  listener: string;
  host: string;
  port: number;
  securityProtocol: string;
}

/**
 * A registered node (broker or coordinator). `host`/`port` is its inter-broker listener's
 * advertised address (its only one for registrations without `endpoints`).
 */
export interface BrokerRegistration {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
  /** Assigned at registration; a stale broker epoch cannot lead or join an ISR. */
  brokerEpoch: number;
  roles: NodeRole[];
  /** Where other nodes reach it over @runnel/rpc; null under `runnel start`. */
  rpc: RpcAddress | null;
  /**
   * The registering process (a random id per store instance): while a node id is live, only the
   * process that holds it may register it again (DUPLICATE_BROKER_REGISTRATION otherwise).
   * Absent ('' on the wire) in registrations written before it existed.
   */
  incarnationId?: string;
  /**
   * Every advertised listener: a Metadata request is answered with the endpoint of the listener
   * it arrived on, and nodes without that listener are left out. Absent or empty in
   * registrations made before listeners had names: `host`/`port` then serves every listener.
   */
  endpoints?: Endpoint[];
}

/** What a node registers with; `roles` defaults to ['broker'], `rpc` to null; the store supplies the incarnation id. */
export type NodeRegistrationInput = Omit<BrokerRegistration, 'brokerEpoch' | 'roles' | 'rpc' | 'incarnationId'> & {
  roles?: NodeRole[];
  rpc?: RpcAddress | null;
};

/** Which coordinator node owns a `__consumer_offsets` partition; `epoch` grows with every change of owner. */
export interface CoordinatorAssignment {
  nodeId: number;
  epoch: number;
}

export interface PartitionState {
  partition: number;
  leader: number; // -1 when offline
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  /** Compare-and-set version of this partition's state. */
  version: number;
  /**
   * A reassignment in progress (Kafka's KIP-455): `replicas` is then the target followed by the
   * replicas leaving; these are the ones joining and the ones leaving. Absent when none runs.
   */
  addingReplicas?: number[];
  removingReplicas?: number[];
}

export interface TopicMetadata {
  name: string;
  /** 16 random bytes as 32 hex characters (Kafka's Uuid). */
  topicId: string;
  internal: boolean;
  partitions: PartitionState[];
  /** Topic-level config overrides only (Kafka names); defaults come from the broker config. */
  configs: Record<string, string>;
}

export interface CreateTopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs?: Record<string, string>;
  internal?: boolean;
  /** Explicit replica lists per partition; otherwise the store assigns them round-robin. */
  assignments?: number[][];
}

export interface MetadataSnapshot {
  clusterId: string;
  /** -1 when no controller is known. */
  controllerId: number;
  /** Live (unfenced) nodes only, brokers and coordinators alike. */
  brokers: ReadonlyMap<number, BrokerRegistration>;
  topics: ReadonlyMap<string, TopicMetadata>;
  /** `__consumer_offsets` partition → its coordinator; empty under `runnel start`. */
  coordinators: ReadonlyMap<number, CoordinatorAssignment>;
  /** The controller's RPC address (the lease holder); null under `runnel start` or with no controller. */
  controllerRpc: RpcAddress | null;
  /** Increases with every change; receivers ignore snapshots older than the one they hold. */
  epoch: number;
  /**
   * Dynamic broker configs (Kafka's `kafka-configs --entity-type brokers`), set at runtime with
   * (Incremental)AlterConfigs: key '' = the cluster-wide default (`<default>`), else a node id in
   * decimal; values are overrides only. A node id's entry wins over the default, which wins over
   * the node's static config. Absent (or empty) when none was ever set.
   */
  brokerConfigs?: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /**
   * The ACLs (Kafka's CreateAcls/DeleteAcls; acls.ts), in creation order, without duplicates. The
   * authorizer indexes them again whenever this array changes. Absent (or empty) when none exist.
   */
  acls?: readonly AclBinding[];
  /**
   * SCRAM credentials by user and mechanism (scram.ts): salted and hashed only, never a password.
   * Absent (or empty) when none exist.
   */
  scramCredentials?: ScramCredentials;
  /**
   * Client quotas (client-quotas.ts): canonical entity key → quota values (`producer_byte_rate`,
   * ...). Absent (or empty) when none are set.
   */
  clientQuotas?: ClientQuotas;
}

export type MetadataEvent =
  | { type: 'topic-created'; topic: TopicMetadata }
  | { type: 'topic-deleted'; name: string }
  | { type: 'topic-updated'; topic: TopicMetadata }
  | { type: 'broker-registered'; broker: BrokerRegistration }
  /** The node left the live set (its session expired). */
  | { type: 'node-fenced'; nodeId: number }
  /** `snapshot().coordinators` changed. */
  | { type: 'coordinators-changed' }
  /** `snapshot().brokerConfigs` (dynamic broker configs) changed: nodes re-apply them. */
  | { type: 'broker-configs-changed' }
  /** `snapshot().acls` changed. */
  | { type: 'acls-changed' }
  /** `snapshot().scramCredentials` changed. */
  | { type: 'scram-credentials-changed' }
  /** `snapshot().clientQuotas` changed. */
  | { type: 'client-quotas-changed' };

/**
 * What every role needs from metadata. Reads are synchronous against a local snapshot (the hot
 * path must not wait on Redis); writes are asynchronous and fenced by the implementation.
 */
export interface MetadataStore {
  start(): Promise<void>;
  stop(): Promise<void>;
  snapshot(): MetadataSnapshot;
  subscribe(listener: (event: MetadataEvent) => void): () => void;
  /** Registers this node; in a cluster it also keeps the session alive until stop(). */
  registerBroker(input: NodeRegistrationInput): Promise<BrokerRegistration>;
  /**
   * The registration this process made for its node id (its own broker epoch), undefined before it
   * registered. Not `snapshot().brokers.get(nodeId)`: that is the live holder of the id, which is
   * another process once this one lost it. Replica fetches carry its epoch.
   */
  registration(): BrokerRegistration | undefined;
  createTopic(spec: CreateTopicSpec): Promise<TopicMetadata>;
  deleteTopic(name: string): Promise<void>;
  createPartitions(name: string, totalCount: number, assignments?: number[][]): Promise<TopicMetadata>;
  alterTopicConfigs(name: string, configs: Record<string, string | null>): Promise<TopicMetadata>;
  /** A cluster-unique producer id for InitProducerId. */
  allocateProducerId(): Promise<bigint>;
  /**
   * Replication, leader side (Kafka's AlterPartition): propose a new ISR for a partition this node
   * leads, based on the state it holds (`leaderEpoch`, `version`). Resolves once the answer is
   * known and, when committed, once this store's snapshot holds it; never throws for a refusal.
   */
  alterPartition(request: AlterPartitionInput): Promise<AlterPartitionResult>;
  /**
   * Controlled shutdown: move this node's leaderships away and leave every ISR; resolves with the
   * count it still leads. With none left the controller fences the node (as KRaft does). `final`
   * (the process is stopping) then ends the session, so it never registers again and a restart
   * registers at once; without it (a step-down) the node registers again at once, which ends the
   * controlled shutdown: it follows and is proposed back into the ISRs once caught up.
   */
  controlledShutdown(options?: { final?: boolean }): Promise<{ remaining: number }>;
  /** Kafka's ElectLeaders (preferred, or unclean); `partitions` null = all. */
  electLeaders(partitions: { topic: string; partition: number }[] | null, unclean: boolean): Promise<ElectionResult[]>;
  /**
   * Kafka's AlterPartitionReassignments: start (or replace, or with `replicas` null cancel) moving
   * partitions to other brokers; resolves once the controller accepted them (the moves finish in
   * the background: the target replicas catch up, join the ISR, and the others leave). Ongoing
   * ones show in the snapshot (`addingReplicas`/`removingReplicas`). Optional: stores without it
   * answer the API with an error.
   */
  alterPartitionReassignments?(reassignments: ReassignmentInput[]): Promise<ReassignmentResult[]>;
  /**
   * Sets (string) or removes (null) dynamic broker configs of node `nodeId`, or with null the
   * cluster-wide default; resolves once this store's snapshot holds them (`brokerConfigs`).
   * Names and values are the caller's to validate. Optional: stores without it answer
   * AlterConfigs for brokers with an error.
   */
  alterBrokerConfigs?(nodeId: number | null, configs: Record<string, string | null>): Promise<void>;
  /**
   * Adds ACL bindings (validated by the caller with validateAclBinding; one already present is
   * kept once); resolves once this store's snapshot holds them (`acls`). Optional: stores without
   * it answer CreateAcls with an error.
   */
  createAcls?(bindings: AclBinding[]): Promise<void>;
  /** Removes every binding a filter matches; resolves with the bindings each filter matched, once the snapshot is without them. */
  deleteAcls?(filters: AclBindingFilter[]): Promise<AclBinding[][]>;
  /**
   * Sets (upserts) and removes (deletions) SCRAM credentials, deletions first; resolves once this
   * store's snapshot holds the change (`scramCredentials`). Validated by the caller. Optional:
   * stores without it answer AlterUserScramCredentials with an error.
   */
  alterScramCredentials?(upserts: ScramCredentialUpsert[], deletions: ScramCredentialDeletion[]): Promise<void>;
  /**
   * Sets (number) or removes (null) client quota values per entity (validated by the caller);
   * resolves once this store's snapshot holds them (`clientQuotas`). Optional: stores without it
   * answer AlterClientQuotas with an error.
   */
  alterClientQuotas?(entries: ClientQuotaAlteration[]): Promise<void>;
}

export interface AlterPartitionInput {
  topic: string;
  partition: number;
  leaderEpoch: number;
  version: number;
  isr: number[];
}

/** error null = committed. `partition` is the committed state either way (null when the partition is gone). */
export interface AlterPartitionResult {
  error: null | 'FENCED_LEADER_EPOCH' | 'INVALID_UPDATE_VERSION' | 'INELIGIBLE_REPLICA' | 'UNKNOWN_TOPIC_OR_PARTITION' | 'NOT_LEADER_OR_FOLLOWER' | 'STALE_BROKER_EPOCH';
  partition: PartitionState | null;
}

export interface ElectionResult {
  topic: string;
  partition: number;
  /** null = elected; else Kafka's error name. */
  error: null | 'ELECTION_NOT_NEEDED' | 'PREFERRED_LEADER_NOT_AVAILABLE' | 'ELIGIBLE_LEADERS_NOT_AVAILABLE' | 'UNKNOWN_TOPIC_OR_PARTITION';
  message: string;
}

/** One partition to move (Kafka's AlterPartitionReassignments): `replicas` null cancels the one in progress. */
export interface ReassignmentInput {
  topic: string;
  partition: number;
  replicas: number[] | null;
}

export interface ReassignmentResult {
  topic: string;
  partition: number;
  /** null = accepted (the move runs in the background); else Kafka's error name. */
  error: null | 'INVALID_REPLICA_ASSIGNMENT' | 'UNKNOWN_TOPIC_OR_PARTITION' | 'NO_REASSIGNMENT_IN_PROGRESS';
  message: string;
}

/** Where a cluster node's writes go: the controller, over RPC (the cli implements it). */
export interface MetadataWriter {
  registerNode(input: Omit<BrokerRegistration, 'brokerEpoch'>): Promise<{ registration: BrokerRegistration; version: number }>;
  heartbeat(nodeId: number, brokerEpoch: number): Promise<{ fenced: boolean }>;
  createTopic(spec: CreateTopicSpec): Promise<{ topic: TopicMetadata; version: number }>;
  deleteTopic(name: string): Promise<{ version: number }>;
  createPartitions(name: string, totalCount: number, assignments?: number[][]): Promise<{ topic: TopicMetadata; version: number }>;
  alterTopicConfigs(name: string, configs: Record<string, string | null>): Promise<{ topic: TopicMetadata; version: number }>;
  allocateProducerId(): Promise<bigint>;
  alterPartition(request: AlterPartitionInput & { nodeId: number; brokerEpoch: number }): Promise<{ result: AlterPartitionResult; version: number }>;
  shutdownNode(nodeId: number, brokerEpoch: number): Promise<{ remaining: number; version: number }>;
  electLeaders(partitions: { topic: string; partition: number }[] | null, unclean: boolean): Promise<{ results: ElectionResult[]; version: number }>;
  alterReassignments?(reassignments: ReassignmentInput[]): Promise<{ results: ReassignmentResult[]; version: number }>;
  alterBrokerConfigs?(nodeId: number | null, configs: Record<string, string | null>): Promise<{ version: number }>;
  alterScramCredentials?(upserts: ScramCredentialUpsert[], deletions: ScramCredentialDeletion[]): Promise<{ version: number }>;
  createAcls?(bindings: AclBinding[]): Promise<{ version: number }>;
  deleteAcls?(filters: AclBindingFilter[]): Promise<{ deleted: AclBinding[][]; version: number }>;
  alterClientQuotas?(entries: ClientQuotaAlteration[]): Promise<{ version: number }>;
}
