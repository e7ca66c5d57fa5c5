import { CoordinatorKeyType, defineHandler, findCoordinatorHandler, initProducerIdHandler, type Handler, type RequestContext } from '@runnel/kafka-server';
import { OFFSETS_TOPIC } from '@runnel/common';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import type { Coordinator } from './coordinator.ts';
import { withAclChecks } from './acl-checks.ts';
import type { GroupError } from './group.ts';
import { transactionHandlers, txnInitProducerId } from './txn-handlers.ts';

/**
 * The Kafka API handlers of the group coordinator. Each one translates the wire request into a
 * state-machine call, runs the outcome through the runtime (records appended before the answer),
 * and maps the machine's error names to Kafka error codes: this is the only place that knows the
 * numbers.
 *
 * Versions served (Kafka 4's maxima): FindCoordinator 0–6, JoinGroup 0–9, SyncGroup 0–5,
 * Heartbeat 0–4, LeaveGroup 0–5, OffsetCommit 2–9, OffsetFetch 1–9, DescribeGroups 0–6,
 * ListGroups 0–5, DeleteGroups 0–2, OffsetDelete 0, TxnOffsetCommit 0–5.
 */

/** A Kafka error code for a state-machine error name. */
export function errorCode(error: GroupError): number {
  return ErrorCode[error];
}

/**
 * KIP-890 part 1 for TxnOffsetCommit (Kafka verifies it with the transaction coordinator before
 * writing): the group's `__consumer_offsets` partition must be in the producer's Ongoing
 * transaction (AddOffsetsToTxn first), else a zombie or a buggy client's offsets would sit pending
 * in a transaction that never ends them. Checked only where this process coordinates the
 * transactional id too (`runnel start`; a cluster node that also loaded its `__transaction_state`
 * partition): there is no RPC to ask another node's transaction coordinator, so elsewhere the
 * request is accepted unverified, as before KIP-890. Null when accepted, else the error code for
 * every partition: INVALID_TXN_STATE, or INVALID_PRODUCER_EPOCH for a fenced producer (as Kafka's
 * AddPartitionsToTxnManager converts PRODUCER_FENCED), or the producer check's own error.
 */
function verifyTxnOffsetCommit(c: Coordinator, req: { transactionalId: string; producerId: bigint; producerEpoch: number; groupId: string }): number | null {
  const tc = c.transactions;
  if (!tc || !tc.isLoaded(tc.partitionFor(req.transactionalId))) return null;
  const v = tc.verifyPartitions({ ...req, partitions: [{ topic: OFFSETS_TOPIC, partition: c.machine.partitionFor(req.groupId) }] });
  const error = v.error !== 'NONE' ? v.error : v.partitions[0]!.error;
  if (error === 'NONE') return null;
  if (error === 'PRODUCER_FENCED') return ErrorCode.INVALID_PRODUCER_EPOCH;
  return error === 'CONCURRENT_TRANSACTIONS' || error === 'COORDINATOR_LOAD_IN_PROGRESS' ? ErrorCode[error] : ErrorCode.INVALID_TXN_STATE;
}

/** Kafka shows a member's host as `/<ip>` (Java's InetAddress.toString). */
export function clientHostOf(ctx: RequestContext): string {
  const addr = ctx.clientAddress;
  const colon = addr.lastIndexOf(':');
  let host = colon > 0 ? addr.slice(0, colon) : addr;
  if (host.startsWith('::ffff:')) host = host.slice(7);
  return `/${host}`;
}

export function coordinatorHandlers(c: Coordinator): Handler[] {
  const m = c.machine;

  const findCoordinator = findCoordinatorHandler((key, keyType) => {
    const none = (error: GroupError, message: string) => ({ errorCode: errorCode(error), errorMessage: message });
    // A transactional id: the owner of its __transaction_state partition (this node or another);
    // COORDINATOR_NOT_AVAILABLE (retriable) while the topic is created or nobody owns it.
    if (keyType === CoordinatorKeyType.TRANSACTION) {
      const found = c.locateTransaction(key);
      if ('error' in found) return none(found.error, found.message);
      return { nodeId: found.nodeId, host: found.host, port: found.port };
    }
    if (keyType !== CoordinatorKeyType.GROUP) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `unknown key type ${keyType}` };
    // This node for its own groups, the owner (from metadata) for the others, so a client that
    // asked the wrong coordinator is redirected.
    const found = c.locate(key);
    if ('error' in found) return none(found.error, found.message);
    return { nodeId: found.nodeId, host: found.host, port: found.port };
  });

  const joinGroup = defineHandler({
    api: ApiKey.JoinGroup,
    versions: [0, 9],
    async handle(req, ctx) {
      const version = ctx.header.apiVersion;
      // v8+ (KIP-800) say why a member (re)joins: Kafka logs it with the rebalance it causes.
      if (req.reason !== null) c.logger.info({ group: req.groupId, memberId: req.memberId, groupInstanceId: req.groupInstanceId, reason: req.reason }, 'JoinGroup');
      const r = await c.execute(
        m.joinGroup({
          groupId: req.groupId,
          memberId: req.memberId,
          groupInstanceId: req.groupInstanceId,
          clientId: ctx.header.clientId ?? '',
          clientHost: clientHostOf(ctx),
          sessionTimeoutMs: req.sessionTimeoutMs,
          // v0 has no rebalance timeout: Kafka uses the session timeout.
          rebalanceTimeoutMs: version >= 1 && req.rebalanceTimeoutMs >= 0 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
          protocolType: req.protocolType,
          protocols: req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) })),
          requireKnownMemberId: version >= 4 && req.groupInstanceId === null,
          supportSkippingAssignment: version >= 9,
        }),
      );
      return {
        throttleTimeMs: 0,
        errorCode: errorCode(r.error),
        generationId: r.generationId,
        // v7+ answer the protocol type, and null names where there is none (an error), as Kafka does.
        protocolType: r.protocolType,
        protocolName: r.protocolName ?? (version >= 7 ? null : ''),
        leader: r.leader,
        skipAssignment: r.skipAssignment ?? false,
        memberId: r.memberId,
        members: r.members.map((x) => ({ memberId: x.memberId, groupInstanceId: x.groupInstanceId, metadata: x.metadata })),
      };
    },
  });

  // v5 sends the protocol type and name the member got from JoinGroup: the machine answers
  // INCONSISTENT_GROUP_PROTOCOL when they are not the group's.
  const syncGroup = defineHandler({
    api: ApiKey.SyncGroup,
    versions: [0, 5],
    async handle(req) {
      const r = await c.execute(
        m.syncGroup({
          groupId: req.groupId,
          generationId: req.generationId,
          memberId: req.memberId,
          groupInstanceId: req.groupInstanceId,
          protocolType: req.protocolType,
          protocolName: req.protocolName,
          assignments: req.assignments.map((a) => ({ memberId: a.memberId, assignment: Buffer.from(a.assignment) })),
        }),
      );
      return { throttleTimeMs: 0, errorCode: errorCode(r.error), protocolType: r.protocolType, protocolName: r.protocolName, assignment: r.assignment };
    },
  });

  const heartbeat = defineHandler({
    api: ApiKey.Heartbeat,
    versions: [0, 4],
    async handle(req) {
      const r = await c.execute(m.heartbeat({ groupId: req.groupId, generationId: req.generationId, memberId: req.memberId, groupInstanceId: req.groupInstanceId }));
      return { throttleTimeMs: 0, errorCode: errorCode(r.error) };
    },
  });

  const leaveGroup = defineHandler({
    api: ApiKey.LeaveGroup,
    versions: [0, 5],
    async handle(req, ctx) {
      const batched = ctx.header.apiVersion >= 3;
      // v5 (KIP-800) says why each member leaves; Kafka logs it.
      for (const x of req.members) {
        if (x.reason !== null) c.logger.info({ group: req.groupId, memberId: x.memberId, groupInstanceId: x.groupInstanceId, reason: x.reason }, 'LeaveGroup');
      }
      const members = batched ? req.members.map((x) => ({ memberId: x.memberId, groupInstanceId: x.groupInstanceId })) : [{ memberId: req.memberId, groupInstanceId: null }];
      const r = await c.execute(m.leaveGroup({ groupId: req.groupId, members }));
      if (!batched) {
        // v0–2 have one error: the group's, else the single member's.
        const error = r.error !== 'NONE' ? r.error : (r.members[0]?.error ?? 'NONE');
        return { throttleTimeMs: 0, errorCode: errorCode(error) };
      }
      return {
        throttleTimeMs: 0,
        errorCode: errorCode(r.error),
        members: r.members.map((x) => ({ memberId: x.memberId, groupInstanceId: x.groupInstanceId, errorCode: errorCode(x.error) })),
      };
    },
  });

  // v9 is v8 on the wire; a KIP-848 member sends its member epoch in generationIdOrMemberEpoch,
  // which the machine checks where it looks the group up.
  // As Kafka's KafkaApis: a partition the metadata does not have is UNKNOWN_TOPIC_OR_PARTITION
  // and is not stored; the others are committed.
  const splitKnown = <P extends { partitionIndex: number }, T extends { name: string; partitions: P[] }>(topics: T[]) => {
    const known = (topic: string, partition: number) => {
      if (!c.topics) return true;
      const t = c.topics.byName(topic);
      return t !== undefined && partition >= 0 && partition < t.partitions;
    };
    return {
      unknown: topics
        .map((t) => ({ name: t.name, partitions: t.partitions.filter((p) => !known(t.name, p.partitionIndex)) }))
        .filter((t) => t.partitions.length > 0),
      wanted: topics
        .map((t) => ({ ...t, partitions: t.partitions.filter((p) => known(t.name, p.partitionIndex)) }))
        .filter((t) => t.partitions.length > 0),
    };
  };

  const offsetCommit = defineHandler({
    api: ApiKey.OffsetCommit,
    versions: [2, 9],
    async handle(req, ctx) {
      const version = ctx.header.apiVersion;
      const { unknown, wanted } = splitKnown(req.topics);
      const r = await c.execute(
        m.commitOffsets({
          groupId: req.groupId,
          generationId: req.generationIdOrMemberEpoch,
          memberId: req.memberId,
          groupInstanceId: req.groupInstanceId,
          // Only v2–4 carry a retention; later versions always use offsets.retention.minutes.
          retentionTimeMs: version <= 4 ? Number(req.retentionTimeMs) : -1,
          topics: wanted.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({
              partitionIndex: p.partitionIndex,
              committedOffset: p.committedOffset,
              committedLeaderEpoch: p.committedLeaderEpoch,
              committedMetadata: p.committedMetadata,
            })),
          })),
        }),
      );
      return {
        throttleTimeMs: 0,
        topics: [
          ...r.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: errorCode(p.error) })) })),
          ...unknown.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION })) })),
        ],
      };
    },
  });

  /**
   * TxnOffsetCommit (KIP-98; v3+ carry the member's generation, KIP-447): the offsets go to
   * `__consumer_offsets` in a transactional batch of the producer and count only after the
   * transaction's COMMIT marker.
   */
  const txnOffsetCommit = defineHandler({
    api: ApiKey.TxnOffsetCommit,
    versions: [0, 5],
    async handle(req) {
      const unverified = verifyTxnOffsetCommit(c, req);
      if (unverified !== null) {
        return { throttleTimeMs: 0, topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: unverified })) })) };
      }
      const { unknown, wanted } = splitKnown(req.topics);
      const r = await c.execute(
        m.txnCommitOffsets({
          groupId: req.groupId,
          producerId: req.producerId,
          producerEpoch: req.producerEpoch,
          generationId: req.generationId,
          memberId: req.memberId,
          groupInstanceId: req.groupInstanceId,
          topics: wanted.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({
              partitionIndex: p.partitionIndex,
              committedOffset: p.committedOffset,
              committedLeaderEpoch: p.committedLeaderEpoch,
              committedMetadata: p.committedMetadata,
            })),
          })),
        }),
      );
      return {
        throttleTimeMs: 0,
        topics: [
          ...r.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: errorCode(p.error) })) })),
          ...unknown.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION })) })),
        ],
      };
    },
  });

  const fetchGroup = (groupId: string, topics: { name: string; partitionIndexes: number[] }[] | null, memberId: string | null = null, memberEpoch = -1, requireStable = false) => {
    const r = m.fetchOffsets({ groupId, topics, memberId, memberEpoch, requireStable });
    return {
      errorCode: errorCode(r.error),
      topics: r.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          committedOffset: p.committedOffset,
          committedLeaderEpoch: p.committedLeaderEpoch,
          metadata: p.metadata,
          errorCode: errorCode(p.error),
        })),
      })),
    };
  };

  const offsetFetch = defineHandler({
    api: ApiKey.OffsetFetch,
    versions: [1, 9],
    handle(req, ctx) {
      const version = ctx.header.apiVersion;
      if (version >= 8) {
        return {
          throttleTimeMs: 0,
          groups: req.groups.map((g) => {
            // v9's member id and epoch (defaults null/−1 before): checked for KIP-848 groups.
            const r = fetchGroup(g.groupId, g.topics, g.memberId, g.memberEpoch, req.requireStable);
            return { groupId: g.groupId, topics: r.errorCode === ErrorCode.NONE ? r.topics : [], errorCode: r.errorCode };
          }),
        };
      }
      // v7+ (KIP-447) may ask for stable offsets only: UNSTABLE_OFFSET_COMMIT while a transaction's are pending.
      const r = fetchGroup(req.groupId, req.topics, null, -1, version >= 7 && req.requireStable);
      // v2+ report a group error at the top with no partitions; v1 only has per-partition errors.
      if (version >= 2 && r.errorCode !== ErrorCode.NONE) return { throttleTimeMs: 0, topics: [], errorCode: r.errorCode };
      return { throttleTimeMs: 0, topics: r.topics, errorCode: r.errorCode };
    },
  });

  /**
   * v6 (KIP-1043): a group that does not exist is GROUP_ID_NOT_FOUND with a message, where v0–5
   * answer it Dead without an error, and so does a group that is not a classic group (a KIP-848
   * group: ConsumerGroupDescribe describes it).
   */
  const describeGroups = defineHandler({
    api: ApiKey.DescribeGroups,
    versions: [0, 6],
    handle(req, ctx) {
      const v6 = ctx.header.apiVersion >= 6;
      const outcome = (g: { error: GroupError; groupId: string; groupState: string }): { errorCode: number; errorMessage: string | null; groupState: string } => {
        if (g.error === 'GROUP_ID_NOT_FOUND') {
          return v6 ? { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, errorMessage: `Group ${g.groupId} is not a classic group.`, groupState: 'Dead' } : { errorCode: ErrorCode.NONE, errorMessage: null, groupState: 'Dead' };
        }
        if (v6 && g.error === 'NONE' && g.groupState === 'Dead') return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, errorMessage: `Group ${g.groupId} not found.`, groupState: 'Dead' };
        return { errorCode: errorCode(g.error), errorMessage: null, groupState: g.groupState };
      };
      return {
        throttleTimeMs: 0,
        groups: m.describeGroups(req.groups).map((g) => ({
          ...outcome(g),
          groupId: g.groupId,
          protocolType: g.protocolType,
          protocolData: g.protocolData,
          members: g.members.map((x) => ({ ...x })),
        })),
      };
    },
  });

  // v4 filters by state, v5 by type and answers each group's ("classic", or "consumer" for KIP-848).
  const listGroups = defineHandler({
    api: ApiKey.ListGroups,
    versions: [0, 5],
    handle(req, ctx) {
      const r = m.listGroups(ctx.header.apiVersion >= 4 ? req.statesFilter : null, ctx.header.apiVersion >= 5 ? req.typesFilter : null);
      return { throttleTimeMs: 0, errorCode: errorCode(r.error), groups: r.groups.map((g) => ({ ...g })) };
    },
  });

  const deleteGroups = defineHandler({
    api: ApiKey.DeleteGroups,
    versions: [0, 2],
    async handle(req) {
      const results = await c.execute(m.deleteGroups(req.groupsNames));
      return { throttleTimeMs: 0, results: results.map((r) => ({ groupId: r.groupId, errorCode: errorCode(r.error) })) };
    },
  });

  const offsetDelete = defineHandler({
    api: ApiKey.OffsetDelete,
    versions: [0, 0],
    async handle(req) {
      const r = await c.execute(m.deleteOffsets({ groupId: req.groupId, topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => p.partitionIndex) })) }));
      return {
        errorCode: errorCode(r.error),
        throttleTimeMs: 0,
        topics: r.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: errorCode(p.error) })) })),
      };
    },
  });

  // KIP-848 (consumer-group.ts): v0 members get a server-generated id, v1 members bring their own.
  const consumerGroupHeartbeat = defineHandler({
    api: ApiKey.ConsumerGroupHeartbeat,
    versions: [0, 1],
    async handle(req, ctx) {
      const r = await c.execute(
        m.consumerGroupHeartbeat({
          apiVersion: ctx.header.apiVersion,
          groupId: req.groupId,
          memberId: req.memberId,
          memberEpoch: req.memberEpoch,
          instanceId: req.instanceId,
          rackId: req.rackId,
          rebalanceTimeoutMs: req.rebalanceTimeoutMs,
          subscribedTopicNames: req.subscribedTopicNames,
          subscribedTopicRegex: req.subscribedTopicRegex,
          serverAssignor: req.serverAssignor,
          topicPartitions: req.topicPartitions,
          clientId: ctx.header.clientId ?? '',
          clientHost: clientHostOf(ctx),
        }),
      );
      return {
        throttleTimeMs: 0,
        errorCode: errorCode(r.error as GroupError),
        errorMessage: r.errorMessage,
        memberId: r.memberId,
        memberEpoch: r.memberEpoch,
        heartbeatIntervalMs: r.heartbeatIntervalMs,
        assignment: r.assignment === null ? null : { topicPartitions: r.assignment },
      };
    },
  });

  const consumerGroupDescribe = defineHandler({
    api: ApiKey.ConsumerGroupDescribe,
    versions: [0, 1],
    handle(req) {
      return {
        throttleTimeMs: 0,
        groups: m.describeConsumerGroups(req.groupIds).map((g) => ({
          errorCode: errorCode(g.error as GroupError),
          errorMessage: g.errorMessage,
          groupId: g.groupId,
          groupState: g.groupState,
          groupEpoch: g.groupEpoch,
          assignmentEpoch: g.assignmentEpoch,
          assignorName: g.assignorName,
          members: g.members.map((x) => ({
            ...x,
            assignment: { topicPartitions: x.assignment },
            targetAssignment: { topicPartitions: x.targetAssignment },
            memberType: 1,
          })),
        })),
      };
    },
  });

  // The transaction coordinator's APIs, and InitProducerId (idempotent ids too, from the same allocator), when this runtime serves transactions.
  const tc = c.transactions;
  const txn = tc ? [...transactionHandlers(tc, c.topics), initProducerIdHandler(tc, txnInitProducerId(tc))] : [];
  // ACL checks before each handler (acl-checks.ts).
  return withAclChecks([findCoordinator, joinGroup, syncGroup, heartbeat, leaveGroup, offsetCommit, txnOffsetCommit, offsetFetch, describeGroups, listGroups, deleteGroups, offsetDelete, consumerGroupHeartbeat, consumerGroupDescribe, ...txn] as Handler[]);
}
