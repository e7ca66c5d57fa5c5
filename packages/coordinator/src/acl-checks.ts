import { AclOperation, authorized, authorizedNames, clusterAuthorized, ResourceType, type Handler, type RequestContext } from '@runnel/kafka-server';
import { ApiKey, ErrorCode } from '@runnel/protocol';

/**
 * The coordinator's ACL checks (Kafka's KafkaApis rules for the group APIs; the table is
 * kafka-server's API_AUTHORIZATION and docs/security.md). Each check runs before its handler: a
 * request refused as a whole is answered here, a partly refused one goes on with only the
 * resources the principal may use and the refused ones are added back to the answer with their
 * error. Without an authorizer (`ctx.authorizer` unset) every handler runs untouched.
 */

const G = ResourceType.GROUP;
const T = ResourceType.TOPIC;
const A = AclOperation;

type Any = any; // the wrapped handlers' own request/response types are checked where they are declared

/** A check: undefined = serve as is; `answer` = refused as a whole; `request` + `merge` = serve part. */
type Check = (req: Any, ctx: RequestContext) => undefined | { answer: Any } | { request: Any; merge(res: Any): Any };

const partitionsOf = (t: { name: string; partitions: { partitionIndex: number }[] }, errorCode: number) =>
  ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })) });

/** Refused whole: a single top-level error (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat). */
const groupError = (code: number, extra: object = {}) => ({ throttleTimeMs: 0, errorCode: code, ...extra });

const readGroup: (fields: (version: number) => object) => Check = (fields) => (req, ctx) =>
  authorized(ctx, A.READ, G, req.groupId) ? undefined : { answer: groupError(ErrorCode.GROUP_AUTHORIZATION_FAILED, fields(ctx.header.apiVersion)) };

/** Topics split into the ones `op` allows and the others. */
function splitTopics<X extends { name: string }>(ctx: RequestContext, op: AclOperation, topics: X[]): { allowed: X[]; denied: X[] } {
  const ok = authorizedNames(ctx, op, T, topics.map((t) => t.name));
  return { allowed: topics.filter((t) => ok.has(t.name)), denied: topics.filter((t) => !ok.has(t.name)) };
}

const CHECKS: Record<number, Check> = {
  // Null names only where the version has nullable ones (v7+), as the handler answers.
  [ApiKey.JoinGroup]: readGroup((v) => ({ generationId: -1, protocolType: null, protocolName: v >= 7 ? null : '', leader: '', skipAssignment: false, memberId: '', members: [] })),
  [ApiKey.SyncGroup]: readGroup(() => ({ protocolType: null, protocolName: null, assignment: Buffer.alloc(0) })),
  [ApiKey.Heartbeat]: readGroup(() => ({})),
  [ApiKey.LeaveGroup]: readGroup(() => ({ members: [] })),

  [ApiKey.ConsumerGroupHeartbeat]: (req, ctx) => {
    const none = { memberId: null, memberEpoch: -1, heartbeatIntervalMs: 0, assignment: null };
    if (!authorized(ctx, A.READ, G, req.groupId)) return { answer: groupError(ErrorCode.GROUP_AUTHORIZATION_FAILED, { errorMessage: null, ...none }) };
    const names: string[] = req.subscribedTopicNames ?? [];
    const denied = names.filter((n) => !authorized(ctx, A.DESCRIBE, T, n));
    if (denied.length === 0) return undefined;
    return { answer: groupError(ErrorCode.TOPIC_AUTHORIZATION_FAILED, { errorMessage: `The consumer is not authorized to access topics: [${denied.join(', ')}]`, ...none }) };
  },

  // Read on the group, then Read on each topic.
  [ApiKey.OffsetCommit]: (req, ctx) => {
    if (!authorized(ctx, A.READ, G, req.groupId)) {
      return { answer: { throttleTimeMs: 0, topics: req.topics.map((t: Any) => partitionsOf(t, ErrorCode.GROUP_AUTHORIZATION_FAILED)) } };
    }
    const { allowed, denied } = splitTopics(ctx, A.READ, req.topics);
    if (denied.length === 0) return undefined;
    return {
      request: { ...req, topics: allowed },
      merge: (res) => ({ ...res, topics: [...res.topics, ...denied.map((t) => partitionsOf(t as Any, ErrorCode.TOPIC_AUTHORIZATION_FAILED))] }),
    };
  },

  // Write on the transactional id, Read on the group, Read on each topic.
  [ApiKey.TxnOffsetCommit]: (req, ctx) => {
    const code = !authorized(ctx, A.WRITE, ResourceType.TRANSACTIONAL_ID, req.transactionalId) ? ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
      : !authorized(ctx, A.READ, G, req.groupId) ? ErrorCode.GROUP_AUTHORIZATION_FAILED : ErrorCode.NONE;
    if (code !== ErrorCode.NONE) return { answer: { throttleTimeMs: 0, topics: req.topics.map((t: Any) => partitionsOf(t, code)) } };
    const { allowed, denied } = splitTopics(ctx, A.READ, req.topics);
    if (denied.length === 0) return undefined;
    return {
      request: { ...req, topics: allowed },
      merge: (res) => ({ ...res, topics: [...res.topics, ...denied.map((t) => partitionsOf(t as Any, ErrorCode.TOPIC_AUTHORIZATION_FAILED))] }),
    };
  },

  // Describe on the group; named topics without Describe are TOPIC_AUTHORIZATION_FAILED, all topics lists only the others.
  [ApiKey.OffsetFetch]: (req, ctx) => {
    const version = ctx.header.apiVersion;
    type Wanted = { name: string; partitionIndexes: number[] }[] | null;
    const refused = (topics: Wanted, code: number) => (topics ?? []).map((t) => ({
      name: t.name, partitions: t.partitionIndexes.map((p) => ({ partitionIndex: p, committedOffset: -1n, committedLeaderEpoch: -1, metadata: null, errorCode: code })),
    }));
    const visible = (topics: { name: string }[]) => topics.filter((t) => authorized(ctx, A.DESCRIBE, T, t.name));
    if (version >= 8) {
      const deniedGroups = new Set<string>(req.groups.filter((g: Any) => !authorized(ctx, A.DESCRIBE, G, g.groupId)).map((g: Any) => g.groupId));
      const deniedTopics = new Map<string, Wanted>();
      const groups = req.groups.filter((g: Any) => !deniedGroups.has(g.groupId)).map((g: Any) => {
        if (g.topics === null) return g;
        const { allowed, denied } = splitTopics(ctx, A.DESCRIBE, g.topics as { name: string; partitionIndexes: number[] }[]);
        deniedTopics.set(g.groupId, denied);
        return { ...g, topics: allowed };
      });
      return {
        request: { ...req, groups },
        merge: (res) => ({
          ...res,
          groups: req.groups.map((g: Any) => {
            if (deniedGroups.has(g.groupId)) return { groupId: g.groupId, topics: [], errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED };
            const got = res.groups.find((x: Any) => x.groupId === g.groupId) ?? { groupId: g.groupId, topics: [], errorCode: ErrorCode.NONE };
            if (got.errorCode !== ErrorCode.NONE) return got;
            return { ...got, topics: [...(g.topics === null ? visible(got.topics) : got.topics), ...refused(deniedTopics.get(g.groupId) ?? [], ErrorCode.TOPIC_AUTHORIZATION_FAILED)] };
          }),
        }),
      };
    }
    if (!authorized(ctx, A.DESCRIBE, G, req.groupId)) {
      // v2+ have a top-level error; v1 only per partition.
      return { answer: version >= 2 ? { throttleTimeMs: 0, topics: [], errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED } : { throttleTimeMs: 0, topics: refused(req.topics, ErrorCode.GROUP_AUTHORIZATION_FAILED), errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED } };
    }
    if (req.topics === null) return { request: req, merge: (res) => ({ ...res, topics: visible(res.topics) }) };
    const { allowed, denied } = splitTopics(ctx, A.DESCRIBE, req.topics as { name: string; partitionIndexes: number[] }[]);
    if (denied.length === 0) return undefined;
    return { request: { ...req, topics: allowed }, merge: (res) => ({ ...res, topics: [...res.topics, ...refused(denied, ErrorCode.TOPIC_AUTHORIZATION_FAILED)] }) };
  },

  // Describe on each group.
  [ApiKey.DescribeGroups]: (req, ctx) => {
    const ok = authorizedNames(ctx, A.DESCRIBE, G, req.groups);
    if (ok.size === new Set(req.groups).size) return undefined;
    return {
      request: { ...req, groups: req.groups.filter((g: string) => ok.has(g)) },
      merge: (res) => ({
        ...res,
        groups: req.groups.map((g: string) => (ok.has(g)
          ? res.groups.find((x: Any) => x.groupId === g)
          : { errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, errorMessage: null, groupId: g, groupState: '', protocolType: '', protocolData: '', members: [], authorizedOperations: -2147483648 })),
      }),
    };
  },
  [ApiKey.ConsumerGroupDescribe]: (req, ctx) => {
    const ok = authorizedNames(ctx, A.DESCRIBE, G, req.groupIds);
    if (ok.size === new Set(req.groupIds).size) return undefined;
    return {
      request: { ...req, groupIds: req.groupIds.filter((g: string) => ok.has(g)) },
      merge: (res) => ({
        ...res,
        groups: req.groupIds.map((g: string) => (ok.has(g)
          ? res.groups.find((x: Any) => x.groupId === g)
          : { errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, errorMessage: null, groupId: g, groupState: '', groupEpoch: -1, assignmentEpoch: -1, assignorName: '', members: [], authorizedOperations: -2147483648 })),
      }),
    };
  },

  // Describe on the cluster lists every group; else only those with Describe.
  [ApiKey.ListGroups]: (req, ctx) => (clusterAuthorized(ctx, A.DESCRIBE) ? undefined : {
    request: req,
    merge: (res) => ({ ...res, groups: res.groups.filter((g: Any) => authorized(ctx, A.DESCRIBE, G, g.groupId)) }),
  }),

  // The transaction APIs: Write on the transactional id (AddOffsetsToTxn also Read on the group;
  // AddPartitionsToTxn also Write on each topic, the others OPERATION_NOT_ATTEMPTED; its v4+ batches
  // are brokers' and need ClusterAction).
  [ApiKey.EndTxn]: (req, ctx) => (authorized(ctx, A.WRITE, ResourceType.TRANSACTIONAL_ID, req.transactionalId) ? undefined
    : { answer: { throttleTimeMs: 0, errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producerId: -1n, producerEpoch: -1 } }),
  [ApiKey.AddOffsetsToTxn]: (req, ctx) => {
    if (!authorized(ctx, A.WRITE, ResourceType.TRANSACTIONAL_ID, req.transactionalId)) return { answer: { throttleTimeMs: 0, errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED } };
    return authorized(ctx, A.READ, G, req.groupId) ? undefined : { answer: { throttleTimeMs: 0, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED } };
  },
  [ApiKey.AddPartitionsToTxn]: (req, ctx) => {
    if (ctx.header.apiVersion >= 4) {
      return clusterAuthorized(ctx, A.CLUSTER_ACTION) ? undefined : { answer: { throttleTimeMs: 0, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, resultsByTransaction: [] } };
    }
    const topics = req.v3AndBelowTopics as { name: string; partitions: number[] }[];
    const result = (code: (name: string) => number) => ({
      answer: { throttleTimeMs: 0, resultsByTopicV3AndBelow: topics.map((t) => ({ name: t.name, resultsByPartition: t.partitions.map((p) => ({ partitionIndex: p, partitionErrorCode: code(t.name) })) })) },
    });
    if (!authorized(ctx, A.WRITE, ResourceType.TRANSACTIONAL_ID, req.v3AndBelowTransactionalId)) return result(() => ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    const { denied } = splitTopics(ctx, A.WRITE, topics);
    if (denied.length === 0) return undefined;
    const refused = new Set(denied.map((t) => t.name));
    return result((name) => (refused.has(name) ? ErrorCode.TOPIC_AUTHORIZATION_FAILED : ErrorCode.OPERATION_NOT_ATTEMPTED));
  },
  [ApiKey.DescribeTransactions]: (req, ctx) => {
    const ok = authorizedNames(ctx, A.DESCRIBE, ResourceType.TRANSACTIONAL_ID, req.transactionalIds);
    if (ok.size === new Set(req.transactionalIds).size) return undefined;
    return {
      request: { ...req, transactionalIds: req.transactionalIds.filter((id: string) => ok.has(id)) },
      merge: (res) => ({
        ...res,
        transactionStates: req.transactionalIds.map((id: string) => (ok.has(id)
          ? res.transactionStates.find((x: Any) => x.transactionalId === id)
          : { errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, transactionalId: id, transactionState: '', transactionTimeoutMs: 0, transactionStartTimeMs: -1n, producerId: -1n, producerEpoch: -1, topics: [] })),
      }),
    };
  },
  [ApiKey.ListTransactions]: (req, ctx) => ({
    request: req,
    merge: (res) => ({ ...res, transactionStates: res.transactionStates.filter((t: Any) => authorized(ctx, A.DESCRIBE, ResourceType.TRANSACTIONAL_ID, t.transactionalId)) }),
  }),

  // Delete on each group.
  [ApiKey.DeleteGroups]: (req, ctx) => {
    const ok = authorizedNames(ctx, A.DELETE, G, req.groupsNames);
    if (ok.size === new Set(req.groupsNames).size) return undefined;
    return {
      request: { ...req, groupsNames: req.groupsNames.filter((g: string) => ok.has(g)) },
      merge: (res) => ({
        ...res,
        results: req.groupsNames.map((g: string) => (ok.has(g) ? res.results.find((x: Any) => x.groupId === g) : { groupId: g, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED })),
      }),
    };
  },

  // Delete on the group, Read on each topic.
  [ApiKey.OffsetDelete]: (req, ctx) => {
    if (!authorized(ctx, A.DELETE, G, req.groupId)) return { answer: { errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, throttleTimeMs: 0, topics: [] } };
    const { allowed, denied } = splitTopics(ctx, A.READ, req.topics);
    if (denied.length === 0) return undefined;
    return {
      request: { ...req, topics: allowed },
      merge: (res) => ({ ...res, topics: [...res.topics, ...denied.map((t) => partitionsOf(t as Any, ErrorCode.TOPIC_AUTHORIZATION_FAILED))] }),
    };
  },
};

/**
 * Wraps the coordinator's handlers with their ACL checks (the ones this file has a check for;
 * FindCoordinator and InitProducerId check in kafka-server's handlers).
 */
export function withAclChecks(handlers: Handler[]): Handler[] {
  return handlers.map((h) => {
    const check = CHECKS[h.api];
    if (!check) return h;
    return {
      api: h.api,
      versions: h.versions,
      async handle(req: Any, ctx: RequestContext) {
        if (!ctx.authorizer) return h.handle(req, ctx);
        const verdict = check(req, ctx);
        if (verdict === undefined) return h.handle(req, ctx);
        if ('answer' in verdict) return verdict.answer;
        const res = await h.handle(verdict.request, ctx);
        return res === undefined ? undefined : verdict.merge(res);
      },
    };
  });
}

/** The API keys whose coordinator handlers this file checks (test/acl-rules.test.ts). */
export const COORDINATOR_CHECKED_APIS: readonly number[] = Object.keys(CHECKS).map(Number);
