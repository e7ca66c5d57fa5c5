import { validateTopicName, type BrokerRegistration, type MetadataSnapshot, type MetadataStore, type TopicMetadata } from '@runnel/metadata';
import { ApiKey, ErrorCode, type Responses } from '@runnel/protocol';
import { defineHandler, type Handler, type RequestContext } from './handler.ts';
import { AclOperation, authorized, clusterAuthorized, ResourceType } from './authorizer.ts';
import { endpointOn } from './listener.ts';

/**
 * The discovery APIs every node answers, whatever its role: Metadata (where the partitions and
 * nodes are) and FindCoordinator (which node coordinates a group). They read the node's metadata
 * snapshot; what differs between roles (topic creation, the coordinator lookup) comes in as
 * callbacks.
 */

type MetadataResponse = Responses[typeof ApiKey.Metadata];
export type MetadataTopicResponse = MetadataResponse['topics'][number];

export interface MetadataHandlerOptions {
  metadata: MetadataStore;
  /** `auto.create.topics.enable`, read on every request. */
  autoCreate: () => boolean;
  /**
   * Creates a topic with the node's defaults. Must resolve only once the topic is in
   * `metadata.snapshot()`, so the reply describes it.
   */
  createTopic(name: string): Promise<void>;
  /** The Kafka error code for a failed `createTopic` (errors are mapped by the role that made them). */
  errorCode(err: unknown): number;
}

/**
 * Metadata v0–13. All topics for v0's empty list or v1+'s null; unknown requested topics are
 * created when both the client (v4+ `allow_auto_topic_creation`; always for older versions) and
 * `autoCreate()` allow it. Creation completes before the reply, so the client sees a led
 * partition at once instead of LEADER_NOT_AVAILABLE and a retry. An invalid name answers
 * INVALID_TOPIC_EXCEPTION without trying. v10+ answers each topic's id (what Kafka's tools print
 * as TopicId); a topic asked for by id (v12+; its name, null or empty, is ignored) is found by id,
 * else UNKNOWN_TOPIC_ID.
 * v13's top-level error code (KIP-1102: a broker telling the client to rebootstrap) is always 0:
 * every node answers from its own snapshot.
 */
export function metadataHandler(o: MetadataHandlerOptions): Handler {
  return defineHandler({
    api: ApiKey.Metadata,
    versions: [0, 13],
    async handle(req, ctx) {
      const version = ctx.header.apiVersion;
      const all = req.topics === null || (version === 0 && req.topics.length === 0);
      const mayCreate = o.autoCreate() && (version < 4 || req.allowAutoTopicCreation);
      let topics: MetadataTopicResponse[];
      if (all) {
        const live = o.metadata.snapshot().brokers;
        // ACLs: listing all topics shows only those the principal may Describe (docs/security.md).
        topics = [...o.metadata.snapshot().topics.values()].filter((t) => authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, t.name)).map((t) => describeTopic(t, live));
      } else {
        topics = [];
        const denied = (name: string | null, topicId?: string): MetadataTopicResponse => ({ errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED, name, topicId, isInternal: false, partitions: [] });
        const mayCreateAny = clusterAuthorized(ctx, AclOperation.CREATE);
        // A topic with an id is looked up by its id, whatever its name says: the Java client
        // (Admin.describeTopics by id) sends an empty name, not null, with the id, as Kafka allows.
        for (const { name, topicId } of req.topics!) {
          if (name !== null && /^[0-]*$/.test(topicId)) {
            // ACLs, as Kafka: a named topic needs Describe, and its auto-creation Create on the cluster or the topic.
            if (!authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name)) topics.push(denied(name));
            else if (mayCreate && !mayCreateAny && !o.metadata.snapshot().topics.has(name) && !authorized(ctx, AclOperation.CREATE, ResourceType.TOPIC, name)) topics.push(denied(name));
            else topics.push(await lookup(o, name, mayCreate));
          } else {
            const found = byId(o, topicId);
            // Topic ids are not secret (Kafka says so too): refused by id, without the name.
            topics.push(found.name !== null && !authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, found.name) ? denied(null, topicId) : found);
          }
        }
      }
      const snap = o.metadata.snapshot();
      return {
        throttleTimeMs: 0,
        brokers: brokersOn(snap, ctx.listener),
        clusterId: snap.clusterId,
        controllerId: kafkaControllerId(snap, ctx.listener),
        topics,
      };
    },
  });
}

function byId(o: MetadataHandlerOptions, topicId: string): MetadataTopicResponse {
  const hex = topicId.replace(/-/g, '');
  const live = o.metadata.snapshot().brokers;
  for (const t of o.metadata.snapshot().topics.values()) if (t.topicId === hex) return describeTopic(t, live);
  return { errorCode: ErrorCode.UNKNOWN_TOPIC_ID, name: null, topicId, isInternal: false, partitions: [] };
}

async function lookup(o: MetadataHandlerOptions, name: string, mayCreate: boolean): Promise<MetadataTopicResponse> {
  const existing = o.metadata.snapshot().topics.get(name);
  if (existing) return describeTopic(existing, o.metadata.snapshot().brokers);
  const error = (errorCode: number): MetadataTopicResponse => ({ errorCode, name, isInternal: false, partitions: [] });
  try {
    validateTopicName(name);
  } catch {
    return error(ErrorCode.INVALID_TOPIC_EXCEPTION);
  }
  if (!mayCreate) return error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  try {
    await o.createTopic(name);
  } catch (err) {
    const code = o.errorCode(err);
    // Another request created it meanwhile: answer with it.
    if (code !== ErrorCode.TOPIC_ALREADY_EXISTS) return error(code);
  }
  const created = o.metadata.snapshot().topics.get(name);
  return created ? describeTopic(created, o.metadata.snapshot().brokers) : error(ErrorCode.LEADER_NOT_AVAILABLE);
}

/**
 * The live nodes as the clients of `listener` see them (Metadata, DescribeCluster): each node's
 * endpoint on that listener; nodes without it are left out, as Kafka does.
 */
export function brokersOn(snap: MetadataSnapshot, listener: string | undefined): Array<{ nodeId: number; host: string; port: number; rack: string | null }> {
  const out: Array<{ nodeId: number; host: string; port: number; rack: string | null }> = [];
  for (const n of snap.brokers.values()) {
    const at = endpointOn(n, listener);
    if (at) out.push({ nodeId: n.nodeId, host: at.host, port: at.port, rack: n.rack });
  }
  return out;
}

/**
 * The controller id Kafka clients are told (Metadata, DescribeCluster). Clients send CreateTopics,
 * DeleteTopics and CreatePartitions to that node, so it must be in the broker list and serve them:
 * the metadata controller when it is such a node (a single node: this broker), else the lowest
 * live node with the broker role (brokers forward admin writes to the Runnel controller, which
 * has no Kafka listener), else −1. With a listener, only nodes that have it count (the others
 * are not in the list that listener's clients get).
 */
export function kafkaControllerId(snap: MetadataSnapshot, listener?: string): number {
  const eligible = (n: BrokerRegistration | undefined): n is BrokerRegistration => n !== undefined && n.roles.includes('broker') && endpointOn(n, listener) !== null;
  if (eligible(snap.brokers.get(snap.controllerId))) return snap.controllerId;
  let lowest = -1;
  for (const n of snap.brokers.values()) {
    if (eligible(n) && (lowest < 0 || n.nodeId < lowest)) lowest = n.nodeId;
  }
  return lowest;
}

/**
 * One topic as Metadata describes it; an offline partition (leader −1) says LEADER_NOT_AVAILABLE.
 * `live` (the snapshot's live nodes) makes offline_replicas Kafka's: the replicas whose broker is
 * not live (fenced or never registered); without it none are listed.
 */
export function describeTopic(topic: TopicMetadata, live?: ReadonlyMap<number, unknown>): MetadataTopicResponse {
  return {
    errorCode: ErrorCode.NONE,
    name: topic.name,
    topicId: topic.topicId,
    isInternal: topic.internal,
    partitions: topic.partitions.map((p) => ({
      errorCode: p.leader < 0 ? ErrorCode.LEADER_NOT_AVAILABLE : ErrorCode.NONE,
      partitionIndex: p.partition,
      leaderId: p.leader,
      leaderEpoch: p.leaderEpoch,
      replicaNodes: p.replicas,
      isrNodes: p.isr,
      offlineReplicas: live ? p.replicas.filter((id) => !live.has(id)) : [],
    })),
  };
}

/** FindCoordinator's key types (SHARE: KIP-932 share groups, FindCoordinator v6+). */
export const CoordinatorKeyType = { GROUP: 0, TRANSACTION: 1, SHARE: 2 } as const;

/** Where a coordinator key lives, or why it cannot be said (`errorMessage` goes to the client). */
export type CoordinatorLocation =
  | { nodeId: number; host: string; port: number }
  | { errorCode: number; errorMessage: string };

/** Finds the coordinator of one key; `keyType` is the request's (0 = group, 1 = transaction). */
export type CoordinatorLocator = (key: string, keyType: number) => CoordinatorLocation;

/**
 * FindCoordinator v0–6. v0–3 ask for one key (v0 has no key type: group), v4+ batch
 * `coordinatorKeys` and answer one entry per key; v5 and v6 are v4 on the wire. A failed lookup
 * answers node −1, host '' and port −1 with the locator's error, as Kafka does. The address is the
 * coordinator's on the request's listener when the server knows it (`ctx.addressOf`); a
 * coordinator without that listener is COORDINATOR_NOT_AVAILABLE, as in Kafka. Share groups
 * (key type 2) are not served: INVALID_REQUEST, which Kafka also answers below v6 (a
 * non-retriable code, so a share consumer fails at once instead of waiting for a coordinator).
 */
export function findCoordinatorHandler(locate: CoordinatorLocator): Handler {
  const answer = (key: string, keyType: number, ctx: RequestContext) => {
    const failed = (errorCode: number, errorMessage: string) => ({ nodeId: -1, host: '', port: -1, errorCode, errorMessage });
    if (keyType === CoordinatorKeyType.SHARE) {
      return failed(ErrorCode.INVALID_REQUEST, ctx.header.apiVersion < 6 ? 'share coordinator keys need FindCoordinator v6' : 'share groups (KIP-932) are not supported');
    }
    // ACLs: Describe on the group or the transactional id (docs/security.md).
    if (keyType === CoordinatorKeyType.TRANSACTION
      ? !authorized(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, key)
      : !authorized(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, key)) {
      return keyType === CoordinatorKeyType.TRANSACTION
        ? failed(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 'Transactional Id authorization failed.')
        : failed(ErrorCode.GROUP_AUTHORIZATION_FAILED, 'Group authorization failed.');
    }
    const found = locate(key, keyType);
    if ('errorCode' in found) return failed(found.errorCode, found.errorMessage);
    const at = ctx.addressOf ? ctx.addressOf(found.nodeId) : found;
    if (!at) return failed(ErrorCode.COORDINATOR_NOT_AVAILABLE, `the coordinator (node ${found.nodeId}) has no listener ${ctx.listener}`);
    return { nodeId: found.nodeId, host: at.host, port: at.port, errorCode: ErrorCode.NONE, errorMessage: null };
  };
  return defineHandler({
    api: ApiKey.FindCoordinator,
    versions: [0, 6],
    handle(req, ctx) {
      if (ctx.header.apiVersion >= 4) {
        return { throttleTimeMs: 0, coordinators: req.coordinatorKeys.map((key) => ({ key, ...answer(key, req.keyType, ctx) })) };
      }
      return { throttleTimeMs: 0, ...answer(req.key, req.keyType, ctx) };
    },
  });
}
