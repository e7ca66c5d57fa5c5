import { randomUUID } from 'node:crypto';
import type { Clock, Timer } from './clock.ts';
import {
  EMPTY,
  Group,
  type GroupError,
  type GroupState,
  type JoinGroupResult,
  Member,
  type MemberIdentity,
  offsetKey,
  type SyncGroupResult,
  joinError,
  syncError,
} from './group.ts';
import { partitionForGroup } from '@runnel/protocol';
import {
  type OffsetsRecord,
  decodeGroupMetadataValue,
  decodeKey,
  decodeOffsetCommitValue,
  encodeGroupMetadataKey,
  encodeGroupMetadataValue,
  encodeOffsetCommitKey,
  encodeOffsetCommitValue,
} from './records.ts';
import { ConsumerGroups, type ConsumerGroupState, type ConsumerHeartbeatRequest, type ConsumerHeartbeatResult, type DescribedConsumerGroup, type TopicLookup } from './consumer-group.ts';

/**
 * The classic group coordinator as a deterministic state machine: no sockets, no disk, no wall
 * clock. Every operation returns an {@link Outcome}: the `__consumer_offsets` records it wants
 * appended, a `settle` the runtime calls once they are durable (or failed), and the response.
 * Responses that depend on the records (OffsetCommit, the SyncGroup that carries the leader's
 * assignment, DeleteGroups, OffsetDelete) resolve only inside `settle`; JoinGroup and SyncGroup
 * responses of waiting members resolve later, when the group moves on. Timer-driven changes
 * (session expiry, rebalance timeout, offset expiry) hand their records to `onRecords`.
 *
 * Loading a partition replays its records through {@link GroupCoordinator.replay}; live offset
 * commits are applied through the same code once durable, so a restart rebuilds the same state.
 *
 * Behaviour follows Kafka's GroupCoordinator/GroupMetadata (3.x classic protocol); see README.md.
 */

export interface GroupCoordinatorConfig {
  'group.min.session.timeout.ms': number;
  'group.max.session.timeout.ms': number;
  'group.initial.rebalance.delay.ms': number;
  'group.max.size': number;
  'offsets.topic.num.partitions': number;
  'offsets.retention.minutes': number;
  'offsets.retention.check.interval.ms': number;
  'offset.metadata.max.bytes': number;
  /** How long an operation waits for its records to be appended before answering with an error. */
  'offsets.commit.timeout.ms': number;
  /** KIP-848 consumer groups: the heartbeat interval told to members. */
  'group.consumer.heartbeat.interval.ms': number;
  /** KIP-848 consumer groups: a member without a heartbeat this long is removed. */
  'group.consumer.session.timeout.ms': number;
  /** KIP-848 server assignors offered (`uniform`, `range`); the first is the default. */
  'group.consumer.assignors': string[];
}

export const defaultGroupCoordinatorConfig: GroupCoordinatorConfig = {
  'group.min.session.timeout.ms': 6000,
  'group.max.session.timeout.ms': 1_800_000,
  'group.initial.rebalance.delay.ms': 3000,
  'group.max.size': 2_147_483_647,
  'offsets.topic.num.partitions': 50,
  'offsets.retention.minutes': 10_080,
  'offsets.retention.check.interval.ms': 600_000,
  'offset.metadata.max.bytes': 4096,
  'offsets.commit.timeout.ms': 5000,
  'group.consumer.heartbeat.interval.ms': 5000,
  'group.consumer.session.timeout.ms': 45_000,
  'group.consumer.assignors': ['uniform', 'range'],
};

/**
 * The coordinator settings found in a broker configuration (`runnel start` passes its
 * BrokerConfig): every key of GroupCoordinatorConfig the config knows, as numbers. `has` guards
 * against names the configuration table does not define.
 */
export function groupCoordinatorConfigFrom(config: { has?(name: string): boolean; get(name: never): unknown }): Partial<GroupCoordinatorConfig> {
  const out: Partial<GroupCoordinatorConfig> = {};
  const get = config.get as (name: string) => unknown;
  for (const key of Object.keys(defaultGroupCoordinatorConfig) as (keyof GroupCoordinatorConfig)[]) {
    if (config.has && !config.has(key)) continue;
    let value: unknown;
    try {
      value = get.call(config, key);
    } catch {
      continue;
    }
    if (typeof value === 'number' && Number.isFinite(value)) (out as Record<string, unknown>)[key] = value;
    else if (Array.isArray(value) && value.every((x) => typeof x === 'string')) (out as Record<string, unknown>)[key] = value;
  }
  return out;
}

/** How long a member that joined but never completed a join may stay (Kafka's NewMemberJoinTimeoutMs). */
export const NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000;

export interface Outcome<R> {
  /** Records to append to `__consumer_offsets`, each tagged with its partition. */
  readonly records: readonly OffsetsRecord[];
  /** The runtime calls this exactly once, after the records are durable (or with the append error). */
  settle(error?: unknown): void;
  readonly response: Promise<R>;
}

export interface JoinGroupRequest extends MemberIdentity {
  groupId: string;
  /** JoinGroup v4+ without a group instance id: hand out a member id first (MEMBER_ID_REQUIRED). */
  requireKnownMemberId: boolean;
  /** JoinGroup v9+ (KIP-814): the client understands SkipAssignment. */
  supportSkippingAssignment?: boolean;
}

export interface SyncGroupRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  /** v5+ only; null when absent. */
  protocolType: string | null;
  protocolName: string | null;
  assignments: { memberId: string; assignment: Buffer }[];
}

export interface HeartbeatRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface LeaveGroupRequest {
  groupId: string;
  members: { memberId: string; groupInstanceId: string | null }[];
}

export interface LeaveGroupResult {
  error: GroupError;
  members: { memberId: string; groupInstanceId: string | null; error: GroupError }[];
}

export interface OffsetCommitRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  /** OffsetCommit v2–4 retention; -1 = the broker's `offsets.retention.minutes`. */
  retentionTimeMs: number;
  topics: {
    name: string;
    partitions: { partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number; committedMetadata: string | null }[];
  }[];
}

export interface OffsetCommitResult {
  topics: { name: string; partitions: { partitionIndex: number; error: GroupError }[] }[];
}

/** TxnOffsetCommit (key 28): offsets committed as part of a producer's transaction. */
export interface TxnOffsetCommitRequest {
  groupId: string;
  producerId: bigint;
  producerEpoch: number;
  /** v3+; -1 (older versions) = not checked against the group. */
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  topics: OffsetCommitRequest['topics'];
}

/** A transactional offset written but not yet committed or aborted by its transaction's marker. */
interface PendingTxnOffset {
  topic: string;
  partition: number;
  offset: bigint;
  leaderEpoch: number;
  metadata: string;
  commitTimestamp: number;
  /** Not yet durable (the TxnOffsetCommit's append is in flight). */
  inFlight: boolean;
  /** A plain commit of the same partition was applied after this one: the COMMIT marker must not overwrite it (Kafka compares log offsets). */
  superseded: boolean;
}

export interface OffsetFetchRequest {
  groupId: string;
  /** OffsetFetch v7+ (KIP-447): answer UNSTABLE_OFFSET_COMMIT for partitions with commits pending (transactional ones included). */
  requireStable?: boolean;
  /** null = every committed offset of the group (OffsetFetch v2+). */
  topics: { name: string; partitionIndexes: number[] }[] | null;
  /**
   * OffsetFetch v9+ (KIP-848): the asking member and its epoch, checked for a consumer-protocol
   * group (null/−1, the admin client's and classic members', are not); a classic group ignores them.
   */
  memberId?: string | null;
  memberEpoch?: number;
}

export interface FetchedOffset {
  partitionIndex: number;
  committedOffset: bigint;
  committedLeaderEpoch: number;
  metadata: string;
  error: GroupError;
}

export interface OffsetFetchResult {
  error: GroupError;
  topics: { name: string; partitions: FetchedOffset[] }[];
}

export interface DescribedGroup {
  error: GroupError;
  groupId: string;
  groupState: GroupState;
  protocolType: string;
  /** The chosen protocol when Stable, else "". */
  protocolData: string;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    memberMetadata: Buffer;
    memberAssignment: Buffer;
  }[];
}

export interface ListedGroup {
  groupId: string;
  protocolType: string;
  /** A classic group's state, or a KIP-848 group's (Empty, Assigning, Reconciling, Stable). */
  groupState: GroupState | ConsumerGroupState;
  /** ListGroups v5: 'classic' or 'consumer' (KIP-848). */
  groupType: 'classic' | 'consumer';
}

export interface OffsetDeleteRequest {
  groupId: string;
  topics: { name: string; partitions: number[] }[];
}

export interface OffsetDeleteResult {
  error: GroupError;
  topics: { name: string; partitions: { partitionIndex: number; error: GroupError }[] }[];
}

export interface LagRow {
  topic: string;
  partition: number;
  committedOffset: bigint;
  logEndOffset: bigint;
  lag: bigint;
  /** Seconds since the offset was committed (its age), from the injected clock. */
  secondsSinceCommit: number;
}

export interface GroupCoordinatorOptions {
  config?: Partial<GroupCoordinatorConfig>;
  clock: Clock;
  /** Records produced by timers (expiry, rebalance completion to Empty); the runtime appends them. */
  onRecords?: (records: OffsetsRecord[]) => void;
  /** Member id generator suffix; defaults to randomUUID (tests may make it predictable). */
  newUuid?: () => string;
  /** Topics known to the cluster, for KIP-848 consumer groups' server-side assignment; default none. */
  topics?: TopicLookup;
}

type PartitionState = 'loading' | 'loaded';

function done<R>(response: R): Outcome<R> {
  return { records: [], settle: () => {}, response: Promise.resolve(response) };
}

export class GroupCoordinator {
  readonly config: GroupCoordinatorConfig;
  private readonly clock: Clock;
  private readonly onRecords: (records: OffsetsRecord[]) => void;
  private readonly newUuid: () => string;
  private readonly groups = new Map<string, Group>();
  private readonly partitions = new Map<number, PartitionState>();
  private expiryTimer: Timer | null = null;
  /** KIP-848 consumer groups (consumer-group.ts); their committed offsets live in `groups` as for a classic group. */
  readonly consumer: ConsumerGroups;
  /** Since start (metrics): classic rebalances completed (a new generation with members), offsets committed (per partition). */
  readonly stats = { classicRebalances: 0, offsetCommits: 0 };
  /**
   * Transactional offsets not yet resolved by a marker: group → producerId → `topic\0partition` →
   * offset (Kafka's pendingTransactionalOffsetCommits). Kept apart from the committed offsets;
   * a COMMIT marker moves them there, an ABORT drops them.
   */
  private readonly pendingTxnOffsets = new Map<string, Map<bigint, Map<string, PendingTxnOffset>>>();
  /** Per `__consumer_offsets` partition: producerId → the groups it has pending offsets in (Kafka's openGroupsForProducer). */
  private readonly txnGroups = new Map<number, Map<bigint, Set<string>>>();

  constructor(options: GroupCoordinatorOptions) {
    this.config = { ...defaultGroupCoordinatorConfig, ...options.config };
    this.clock = options.clock;
    this.onRecords = options.onRecords ?? (() => {});
    this.newUuid = options.newUuid ?? randomUUID;
    this.consumer = new ConsumerGroups({
      clock: this.clock,
      config: {
        heartbeatIntervalMs: this.config['group.consumer.heartbeat.interval.ms'],
        sessionTimeoutMs: this.config['group.consumer.session.timeout.ms'],
        assignors: this.config['group.consumer.assignors'],
      },
      topics: options.topics ?? { byName: () => undefined, byId: () => undefined },
      onRecords: (records) => this.onRecords(records),
      check: (groupId) => this.checkGroup(groupId, true),
      partitionFor: (groupId) => this.partitionFor(groupId),
      classicInUse: (groupId) => {
        const g = this.groups.get(groupId);
        return g !== undefined && (g.members.size > 0 || g.pendingMembers.size > 0 || g.is('PreparingRebalance'));
      },
      newUuid: this.newUuid,
    });
  }

  /**
   * ConsumerGroupHeartbeat (KIP-848): join, heartbeat, leave. The state changes at once; the answer
   * waits for the records. An empty classic group of the same id gives way (its GroupMetadata is
   * deleted, its offsets stay).
   */
  consumerGroupHeartbeat(req: ConsumerHeartbeatRequest): Outcome<ConsumerHeartbeatResult> {
    const classic = this.groups.get(req.groupId);
    const takesOver = req.memberEpoch === 0 && !this.consumer.get(req.groupId) && classic !== undefined && classic.protocolType !== null && classic.is('Empty') && classic.pendingMembers.size === 0;
    const { records, result } = this.consumer.heartbeat(req);
    const out = [...records];
    if (takesOver && result.error === 'NONE') {
      out.unshift({ partition: classic.partition, key: encodeGroupMetadataKey(req.groupId), value: null });
      classic.protocolType = null;
      classic.generationId = 0;
      classic.protocolName = null;
    }
    if (out.length === 0) return done(result);
    const { promise, resolve } = Promise.withResolvers<ConsumerHeartbeatResult>();
    return {
      records: out,
      settle: (error) => resolve(error === undefined ? result : { ...result, error: this.appendError(error), errorMessage: null, assignment: null }),
      response: promise,
    };
  }

  /** ConsumerGroupDescribe: a classic group (or none) is GROUP_ID_NOT_FOUND, as Kafka answers. */
  describeConsumerGroups(groupIds: readonly string[]): DescribedConsumerGroup[] {
    return groupIds.map((id) => {
      const d = this.consumer.describe(id);
      if (d.error === 'GROUP_ID_NOT_FOUND' && this.groups.get(id)?.protocolType) return { ...d, errorMessage: `Group ${id} is not a consumer group.` };
      return d;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Partition ownership and loading

  partitionFor(groupId: string): number {
    return partitionForGroup(groupId, this.config['offsets.topic.num.partitions']);
  }

  /** Starts owning a partition: its groups answer COORDINATOR_LOAD_IN_PROGRESS until {@link completeLoad}. */
  beginLoad(partition: number): void {
    if (this.partitions.has(partition)) this.unload(partition);
    this.partitions.set(partition, 'loading');
  }

  /**
   * Applies one `__consumer_offsets` record of a partition being loaded (and, for offsets, live
   * commits once they are durable). Later records win, tombstones (null value) delete.
   */
  replay(partition: number, key: Buffer, value: Buffer | null, producerId = -1n): void {
    const k = decodeKey(key);
    if (k === null) {
      this.consumer.replay(partition, key, value);
      return;
    }
    const now = this.clock.now();
    if (k.type === 'offset' && producerId >= 0n) {
      // A TxnOffsetCommit record: pending until its transaction's marker (replayMarker).
      if (value === null) return;
      const v = decodeOffsetCommitValue(value);
      this.addPendingTxnOffset(partition, k.group, producerId, {
        topic: k.topic, partition: k.partition, offset: v.offset, leaderEpoch: v.leaderEpoch, metadata: v.metadata,
        commitTimestamp: Number(v.commitTimestamp), inFlight: false, superseded: false,
      });
      return;
    }
    if (k.type === 'offset') {
      // A plain commit after a transactional one of the same partition wins over it (log order).
      for (const byKey of this.pendingTxnOffsets.get(k.group)?.values() ?? []) {
        const pending = byKey.get(offsetKey(k.topic, k.partition));
        if (pending) pending.superseded = true;
      }
      let group = this.groups.get(k.group);
      if (value === null) {
        if (!group) return;
        group.offsets.delete(offsetKey(k.topic, k.partition));
        // A group known only through its offsets is gone with the last of them.
        if (group.offsets.size === 0 && group.generationId === 0 && group.members.size === 0 && group.protocolType === null) {
          this.cancelTimers(group);
          this.groups.delete(k.group);
        }
        return;
      }
      if (!group) {
        group = new Group(k.group, partition, 'Empty', now);
        group.currentStateTimestamp = null;
        this.groups.set(k.group, group);
      }
      const v = decodeOffsetCommitValue(value);
      group.offsets.set(offsetKey(k.topic, k.partition), {
        topic: k.topic,
        partition: k.partition,
        offset: v.offset,
        leaderEpoch: v.leaderEpoch,
        metadata: v.metadata,
        commitTimestamp: Number(v.commitTimestamp),
        expireTimestamp: Number(v.expireTimestamp),
      });
      return;
    }
    const existing = this.groups.get(k.group);
    if (existing) this.cancelTimers(existing);
    if (value === null) {
      if (existing && existing.offsets.size > 0) {
        const standalone = new Group(k.group, partition, 'Empty', now);
        standalone.currentStateTimestamp = null;
        for (const [key2, o] of existing.offsets) standalone.offsets.set(key2, o);
        this.groups.set(k.group, standalone);
      } else {
        this.groups.delete(k.group);
      }
      return;
    }
    const v = decodeGroupMetadataValue(value);
    const group = new Group(k.group, partition, v.members.length > 0 ? 'Stable' : 'Empty', now);
    group.currentStateTimestamp = v.currentStateTimestamp >= 0n ? Number(v.currentStateTimestamp) : null;
    group.protocolType = v.protocolType === '' && v.members.length === 0 ? null : v.protocolType;
    group.generationId = v.generation;
    group.protocolName = v.protocol;
    for (const m of v.members) {
      const member = new Member({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeout,
        rebalanceTimeoutMs: m.rebalanceTimeout,
        protocolType: v.protocolType,
        protocols: [{ name: v.protocol ?? '', metadata: m.subscription }],
        now,
      });
      member.assignment = m.assignment;
      group.add(member);
    }
    group.leaderId = v.leader;
    if (existing) for (const [key2, o] of existing.offsets) group.offsets.set(key2, o);
    this.groups.set(k.group, group);
  }

  /** The partition is loaded: its members' session timers start now (Kafka's onGroupLoaded). */
  completeLoad(partition: number): void {
    this.partitions.set(partition, 'loaded');
    this.consumer.completeLoad(partition);
    for (const group of this.groups.values()) {
      if (group.partition !== partition) continue;
      for (const member of group.members.values()) this.scheduleHeartbeat(group, member);
    }
  }

  /** Stops owning a partition (takeover elsewhere): waiting members are told NOT_COORDINATOR. */
  unload(partition: number): void {
    this.partitions.delete(partition);
    for (const groups of this.txnGroups.get(partition)?.values() ?? []) for (const g of groups) this.pendingTxnOffsets.delete(g);
    this.txnGroups.delete(partition);
    this.consumer.unload(partition);
    for (const group of [...this.groups.values()]) {
      if (group.partition !== partition) continue;
      this.cancelTimers(group);
      for (const m of group.members.values()) {
        m.resolveJoin(joinError(m.memberId, 'NOT_COORDINATOR'));
        m.resolveSync(syncError('NOT_COORDINATOR'));
      }
      group.transitionTo('Dead', this.clock.now());
      this.groups.delete(group.groupId);
    }
  }

  ownedPartitions(): Map<number, PartitionState> {
    return new Map(this.partitions);
  }

  /** Starts the periodic offset-expiry check (`offsets.retention.check.interval.ms`). */
  startExpiry(): void {
    this.stopExpiry();
    const tick = () => {
      this.expireOffsets();
      this.expiryTimer = this.clock.schedule(this.config['offsets.retention.check.interval.ms'], tick);
    };
    this.expiryTimer = this.clock.schedule(this.config['offsets.retention.check.interval.ms'], tick);
  }

  stopExpiry(): void {
    this.expiryTimer?.cancel();
    this.expiryTimer = null;
  }

  /** Cancels every timer and forgets every group (process shutdown). */
  shutdown(): void {
    this.stopExpiry();
    for (const p of [...this.partitions.keys()]) this.unload(p);
  }

  // -------------------------------------------------------------------------------------------
  // JoinGroup

  joinGroup(req: JoinGroupRequest): Outcome<JoinGroupResult> {
    const err = this.checkGroup(req.groupId, true);
    if (err) return done(joinError(req.memberId, err));
    // Online migration between the protocols is not built: a consumer-protocol group with members
    // keeps its type. An empty one gives way, as Kafka does (its records are deleted, offsets stay).
    const consumerGroup = this.consumer.get(req.groupId);
    if (consumerGroup && consumerGroup.members.size > 0) return done(joinError(req.memberId, 'INCONSISTENT_GROUP_PROTOCOL'));
    if (consumerGroup) this.onRecords(this.consumer.delete(req.groupId).records);
    if (
      req.sessionTimeoutMs < this.config['group.min.session.timeout.ms'] ||
      req.sessionTimeoutMs > this.config['group.max.session.timeout.ms']
    ) {
      return done(joinError(req.memberId, 'INVALID_SESSION_TIMEOUT'));
    }
    const isUnknownMember = req.memberId === '';
    let group = this.groups.get(req.groupId);
    if (!group) {
      if (!isUnknownMember) return done(joinError(req.memberId, 'UNKNOWN_MEMBER_ID'));
      group = new Group(req.groupId, this.partitionFor(req.groupId), 'Empty', this.clock.now());
      this.groups.set(req.groupId, group);
    }
    if (isUnknownMember && group.members.size + group.pendingMembers.size >= this.config['group.max.size']) {
      return done(joinError(req.memberId, 'GROUP_MAX_SIZE_REACHED'));
    }
    const { promise, resolve } = Promise.withResolvers<JoinGroupResult>();
    const write = isUnknownMember ? this.doNewMemberJoin(group, req, resolve) : this.doCurrentMemberJoin(group, req, resolve);
    // A join may be the last one the rebalance waits for.
    if (group.is('PreparingRebalance')) this.tryCompleteJoin(group);
    return { records: write?.records ?? [], settle: write?.settle ?? (() => {}), response: promise };
  }

  private doNewMemberJoin(
    group: Group,
    req: JoinGroupRequest,
    respond: (r: JoinGroupResult) => void,
  ): { records: OffsetsRecord[]; settle: (e?: unknown) => void } | null {
    if (group.is('Dead')) return respond(joinError('', 'COORDINATOR_NOT_AVAILABLE')), null;
    if (!group.supportsProtocols(req.protocolType, req.protocols)) return respond(joinError('', 'INCONSISTENT_GROUP_PROTOCOL')), null;
    const newMemberId = `${req.clientId}-${this.newUuid()}`;
    if (req.groupInstanceId !== null) return this.doStaticMemberJoin(group, newMemberId, req, respond);
    if (req.requireKnownMemberId) {
      this.addPendingMember(group, newMemberId, req.sessionTimeoutMs);
      respond(joinError(newMemberId, 'MEMBER_ID_REQUIRED'));
      return null;
    }
    this.addMemberAndRebalance(group, newMemberId, req, respond);
    return null;
  }

  private doStaticMemberJoin(
    group: Group,
    newMemberId: string,
    req: JoinGroupRequest,
    respond: (r: JoinGroupResult) => void,
  ): { records: OffsetsRecord[]; settle: (e?: unknown) => void } | null {
    const instanceId = req.groupInstanceId!;
    const oldMemberId = group.staticMemberId(instanceId);
    if (oldMemberId === undefined) {
      this.addMemberAndRebalance(group, newMemberId, req, respond);
      return null;
    }
    // A known static member restarted: it takes over its old identity under a new member id.
    const currentLeader = group.leaderId ?? '';
    const member = group.members.get(oldMemberId)!;
    const oldProtocols = member.protocols;
    const oldRebalanceTimeout = member.rebalanceTimeoutMs;
    const oldSessionTimeout = member.sessionTimeoutMs;
    member.protocols = req.protocols;
    member.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    member.sessionTimeoutMs = req.sessionTimeoutMs;
    group.replaceStaticMember(instanceId, oldMemberId, newMemberId);
    this.scheduleHeartbeat(group, member);
    switch (group.state) {
      case 'Stable': {
        // Same protocol for the next generation: persist the new member id, no rebalance.
        if (group.protocolName !== null && group.selectProtocol() === group.protocolName) {
          const assignments = new Map([...group.members.values()].map((m) => [m.memberId, m.assignment]));
          const records = [this.groupMetadataRecord(group, assignments)];
          const generation = group.generationId;
          return {
            records,
            settle: (error) => {
              if (error !== undefined) {
                // Undo: the old id keeps its place; the new one was never made durable.
                if (group.members.get(newMemberId) === member) {
                  group.replaceStaticMember(instanceId, newMemberId, oldMemberId);
                  member.protocols = oldProtocols;
                  member.rebalanceTimeoutMs = oldRebalanceTimeout;
                  member.sessionTimeoutMs = oldSessionTimeout;
                }
                respond(joinError(req.memberId, this.appendError(error)));
                return;
              }
              // A restarted leader must not run an assignment a Stable group would ignore. JoinGroup
              // v9+ (KIP-814) tells it so (SkipAssignment) and gives it the members, so it keeps
              // watching their metadata; before v9 the answer names the leader as it was (the old
              // member id, not the caller's) and no members.
              const skip = req.supportSkippingAssignment === true && group.isLeader(newMemberId);
              respond({
                error: 'NONE',
                generationId: generation,
                protocolType: group.protocolType,
                protocolName: group.protocolName,
                leader: req.supportSkippingAssignment === true ? (group.leaderId ?? '') : currentLeader,
                memberId: newMemberId,
                members: skip ? group.currentMemberMetadata() : [],
                skipAssignment: skip,
              });
            },
          };
        }
        member.joinWaiter = respond;
        this.maybePrepareRebalance(group);
        return null;
      }
      case 'CompletingRebalance':
        // The leader may already be assigning under the old id: rebalance so the new id gets an assignment.
        member.joinWaiter = respond;
        this.prepareRebalance(group);
        return null;
      case 'PreparingRebalance':
        member.joinWaiter = respond;
        return null;
      default:
        respond(joinError(newMemberId, 'UNKNOWN_MEMBER_ID'));
        return null;
    }
  }

  private doCurrentMemberJoin(
    group: Group,
    req: JoinGroupRequest,
    respond: (r: JoinGroupResult) => void,
  ): { records: OffsetsRecord[]; settle: (e?: unknown) => void } | null {
    const memberId = req.memberId;
    if (group.is('Dead')) return respond(joinError(memberId, 'COORDINATOR_NOT_AVAILABLE')), null;
    if (!group.supportsProtocols(req.protocolType, req.protocols)) return respond(joinError(memberId, 'INCONSISTENT_GROUP_PROTOCOL')), null;
    const pending = group.pendingMembers.get(memberId);
    if (pending !== undefined) {
      pending.cancel();
      group.pendingMembers.delete(memberId);
      this.addMemberAndRebalance(group, memberId, req, respond);
      return null;
    }
    const err = this.validateCurrentMember(group, memberId, req.groupInstanceId);
    if (err) return respond(joinError(memberId, err)), null;
    const member = group.members.get(memberId)!;
    switch (group.state) {
      case 'PreparingRebalance':
        this.updateMemberAndRebalance(group, member, req, respond);
        return null;
      case 'CompletingRebalance':
        // A retried join of the current generation: answer with it, unless the member changed.
        if (member.matches(req.protocols)) respond(this.currentJoinResult(group, member.memberId));
        else this.updateMemberAndRebalance(group, member, req, respond);
        return null;
      case 'Stable':
        // The leader rejoining, or anyone with new metadata (e.g. a new subscription), rebalances.
        if (group.isLeader(memberId) || !member.matches(req.protocols)) this.updateMemberAndRebalance(group, member, req, respond);
        else respond(this.currentJoinResult(group, memberId));
        return null;
      default:
        respond(joinError(memberId, 'UNKNOWN_MEMBER_ID'));
        return null;
    }
  }

  private currentJoinResult(group: Group, memberId: string): JoinGroupResult {
    return {
      error: 'NONE',
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leader: group.leaderId ?? '',
      memberId,
      members: group.isLeader(memberId) ? group.currentMemberMetadata() : [],
    };
  }

  private addPendingMember(group: Group, memberId: string, sessionTimeoutMs: number): void {
    const timer = this.clock.schedule(sessionTimeoutMs, () => {
      if (group.pendingMembers.get(memberId) !== timer) return;
      group.pendingMembers.delete(memberId);
      if (group.is('PreparingRebalance')) this.tryCompleteJoin(group);
    });
    group.pendingMembers.set(memberId, timer);
  }

  private addMemberAndRebalance(group: Group, memberId: string, req: JoinGroupRequest, respond: (r: JoinGroupResult) => void): void {
    const member = new Member({
      memberId,
      groupInstanceId: req.groupInstanceId,
      clientId: req.clientId,
      clientHost: req.clientHost,
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols,
      now: this.clock.now(),
    });
    member.isNew = true;
    // While a new group's initial delay runs, each newcomer may extend it.
    if (group.is('PreparingRebalance') && group.generationId === 0) group.newMemberAdded = true;
    group.add(member);
    member.joinWaiter = respond;
    // New members cannot heartbeat yet; a join that never completes expires after this timeout.
    this.scheduleHeartbeat(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS);
    this.maybePrepareRebalance(group);
  }

  private updateMemberAndRebalance(group: Group, member: Member, req: JoinGroupRequest, respond: (r: JoinGroupResult) => void): void {
    member.protocols = req.protocols;
    member.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    member.sessionTimeoutMs = req.sessionTimeoutMs;
    member.clientId = req.clientId;
    member.clientHost = req.clientHost;
    // A second join while the first still waits supersedes it; answer the old one so it does not hang.
    member.resolveJoin(joinError(member.memberId, 'REBALANCE_IN_PROGRESS'));
    member.joinWaiter = respond;
    this.maybePrepareRebalance(group);
  }

  private maybePrepareRebalance(group: Group): void {
    if (group.canRebalance) this.prepareRebalance(group);
  }

  private prepareRebalance(group: Group): void {
    // Members waiting for an assignment of the generation that is being abandoned must rejoin.
    if (group.is('CompletingRebalance')) this.resetAndPropagateAssignmentError(group, 'REBALANCE_IN_PROGRESS');
    group.syncTimer?.cancel();
    group.syncTimer = null;
    group.pendingSyncMembers.clear();
    group.joinTimer?.cancel();
    group.joinTimer = null;
    const initialDelay = this.config['group.initial.rebalance.delay.ms'];
    const isInitial = group.is('Empty') && initialDelay > 0;
    group.transitionTo('PreparingRebalance', this.clock.now());
    if (isInitial) {
      group.newMemberAdded = false;
      this.scheduleInitialJoin(group, initialDelay, Math.max(group.rebalanceTimeoutMs - initialDelay, 0));
    } else {
      group.joinIsInitial = false;
      group.joinTimer = this.clock.schedule(group.rebalanceTimeoutMs, () => this.completeJoin(group));
      this.tryCompleteJoin(group);
    }
  }

  /**
   * Kafka's InitialDelayedJoin: wait `delay`; if members arrived meanwhile and the rebalance timeout
   * is not used up, wait again (at most the configured delay, at most what is left).
   */
  private scheduleInitialJoin(group: Group, delayMs: number, remainingMs: number): void {
    group.joinIsInitial = true;
    group.joinTimer = this.clock.schedule(delayMs, () => {
      group.joinTimer = null;
      if (group.newMemberAdded && remainingMs !== 0) {
        group.newMemberAdded = false;
        const delay = Math.min(this.config['group.initial.rebalance.delay.ms'], remainingMs);
        this.scheduleInitialJoin(group, delay, Math.max(remainingMs - delay, 0));
      } else {
        group.joinIsInitial = false;
        this.completeJoin(group);
      }
    });
  }

  private tryCompleteJoin(group: Group): void {
    if (group.is('PreparingRebalance') && !group.joinIsInitial && group.hasAllMembersJoined()) this.completeJoin(group);
  }

  private completeJoin(group: Group): void {
    if (!group.is('PreparingRebalance')) return;
    group.joinTimer?.cancel();
    group.joinTimer = null;
    group.joinIsInitial = false;
    // Dynamic members that did not rejoin in time are out; static ones keep their seat until their session expires.
    for (const m of group.notYetRejoined()) {
      if (m.groupInstanceId !== null) continue;
      m.heartbeatTimer?.cancel();
      m.resolveSync(syncError('UNKNOWN_MEMBER_ID'));
      group.remove(m.memberId);
    }
    if (!group.maybeElectNewJoinedLeader() && group.members.size > 0) {
      // Only static members that have not rejoined are left: wait another round for them.
      group.joinTimer = this.clock.schedule(group.rebalanceTimeoutMs, () => this.completeJoin(group));
      return;
    }
    const now = this.clock.now();
    group.initNextGeneration(now);
    if (group.members.size > 0) this.stats.classicRebalances++;
    if (group.is('Empty')) {
      this.onRecords([this.groupMetadataRecord(group, new Map())]);
      return;
    }
    for (const m of group.members.values()) {
      m.resolveJoin(this.currentJoinResult(group, m.memberId));
      m.isNew = false;
      this.scheduleHeartbeat(group, m);
    }
    // Members that never send SyncGroup for this generation are removed after the rebalance timeout.
    const generation = group.generationId;
    group.syncTimer = this.clock.schedule(group.rebalanceTimeoutMs, () => this.expirePendingSync(group, generation));
  }

  private expirePendingSync(group: Group, generation: number): void {
    group.syncTimer = null;
    if (group.generationId !== generation) return;
    if (!group.is('CompletingRebalance') && !group.is('Stable')) return;
    if (group.pendingSyncMembers.size === 0) return;
    for (const id of [...group.pendingSyncMembers]) {
      const m = group.members.get(id);
      if (!m) continue;
      m.heartbeatTimer?.cancel();
      m.resolveSync(syncError('UNKNOWN_MEMBER_ID'));
      group.remove(id);
    }
    this.prepareRebalance(group);
  }

  // -------------------------------------------------------------------------------------------
  // SyncGroup

  syncGroup(req: SyncGroupRequest): Outcome<SyncGroupResult> {
    const err = this.checkGroup(req.groupId, true);
    // A loading coordinator has lost any rebalance in progress: send the member back to JoinGroup
    // (older clients do not expect COORDINATOR_LOAD_IN_PROGRESS here).
    if (err) return done(syncError(err === 'COORDINATOR_LOAD_IN_PROGRESS' ? 'REBALANCE_IN_PROGRESS' : err));
    const group = this.groups.get(req.groupId);
    if (!group) return done(syncError('UNKNOWN_MEMBER_ID'));
    if (group.is('Dead')) return done(syncError('COORDINATOR_NOT_AVAILABLE'));
    const memberErr = this.validateCurrentMember(group, req.memberId, req.groupInstanceId);
    if (memberErr) return done(syncError(memberErr));
    if (req.generationId !== group.generationId) return done(syncError('ILLEGAL_GENERATION'));
    if ((req.protocolType !== null && req.protocolType !== group.protocolType) || (req.protocolName !== null && req.protocolName !== group.protocolName)) {
      return done(syncError('INCONSISTENT_GROUP_PROTOCOL'));
    }
    const member = group.members.get(req.memberId)!;
    switch (group.state) {
      case 'Empty':
        return done(syncError('UNKNOWN_MEMBER_ID'));
      case 'PreparingRebalance':
        return done(syncError('REBALANCE_IN_PROGRESS'));
      case 'Stable':
        this.removePendingSyncMember(group, req.memberId);
        this.scheduleHeartbeat(group, member);
        return done({ error: 'NONE', protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment });
      case 'CompletingRebalance': {
        const { promise, resolve } = Promise.withResolvers<SyncGroupResult>();
        member.resolveSync(syncError('REBALANCE_IN_PROGRESS'));
        member.syncWaiter = resolve;
        this.removePendingSyncMember(group, req.memberId);
        if (!group.isLeader(req.memberId)) return { records: [], settle: () => {}, response: promise };
        // The leader's assignment: persist it with the group, then release everyone's SyncGroup.
        const assignments = new Map<string, Buffer>();
        for (const a of req.assignments) if (group.has(a.memberId)) assignments.set(a.memberId, a.assignment);
        const generation = group.generationId;
        return {
          records: [this.groupMetadataRecord(group, assignments)],
          settle: (error) => {
            if (!group.is('CompletingRebalance') || group.generationId !== generation) return;
            if (error !== undefined) {
              this.resetAndPropagateAssignmentError(group, this.appendError(error));
              this.maybePrepareRebalance(group);
              return;
            }
            for (const m of group.members.values()) m.assignment = assignments.get(m.memberId) ?? EMPTY;
            this.propagateAssignment(group, 'NONE');
            group.transitionTo('Stable', this.clock.now());
          },
          response: promise,
        };
      }
      default:
        return done(syncError('COORDINATOR_NOT_AVAILABLE'));
    }
  }

  private removePendingSyncMember(group: Group, memberId: string): void {
    group.pendingSyncMembers.delete(memberId);
    if (group.pendingSyncMembers.size === 0) {
      group.syncTimer?.cancel();
      group.syncTimer = null;
    }
  }

  private propagateAssignment(group: Group, error: GroupError): void {
    for (const m of group.members.values()) {
      const delivered = m.resolveSync({ error, protocolType: group.protocolType, protocolName: group.protocolName, assignment: m.assignment });
      // Expirations were ignored while the member waited; its session starts again now.
      if (delivered) this.scheduleHeartbeat(group, m);
    }
  }

  private resetAndPropagateAssignmentError(group: Group, error: GroupError): void {
    for (const m of group.members.values()) m.assignment = EMPTY;
    this.propagateAssignment(group, error);
  }

  // -------------------------------------------------------------------------------------------
  // Heartbeat and LeaveGroup

  heartbeat(req: HeartbeatRequest): Outcome<{ error: GroupError }> {
    const answer = (error: GroupError) => done({ error });
    const err = this.checkGroup(req.groupId, true);
    // While loading, answer blindly: the member's session is not known yet, and an error would
    // make every member rejoin at once (Kafka does the same).
    if (err) return answer(err === 'COORDINATOR_LOAD_IN_PROGRESS' ? 'NONE' : err);
    const group = this.groups.get(req.groupId);
    if (!group) return answer('UNKNOWN_MEMBER_ID');
    if (group.is('Dead')) return answer('COORDINATOR_NOT_AVAILABLE');
    const memberErr = this.validateCurrentMember(group, req.memberId, req.groupInstanceId);
    if (memberErr) return answer(memberErr);
    if (req.generationId !== group.generationId) return answer('ILLEGAL_GENERATION');
    const member = group.members.get(req.memberId)!;
    switch (group.state) {
      case 'Empty':
        return answer('UNKNOWN_MEMBER_ID');
      case 'CompletingRebalance':
      case 'Stable':
        this.scheduleHeartbeat(group, member);
        return answer('NONE');
      case 'PreparingRebalance':
        this.scheduleHeartbeat(group, member);
        return answer('REBALANCE_IN_PROGRESS');
      default:
        return answer('COORDINATOR_NOT_AVAILABLE');
    }
  }

  leaveGroup(req: LeaveGroupRequest): Outcome<LeaveGroupResult> {
    const err = this.checkGroup(req.groupId, true);
    if (err) return done({ error: err, members: [] });
    const group = this.groups.get(req.groupId);
    if (!group) {
      return done({ error: 'NONE', members: req.members.map((m) => ({ ...m, error: 'UNKNOWN_MEMBER_ID' as GroupError })) });
    }
    if (group.is('Dead')) return done({ error: 'COORDINATOR_NOT_AVAILABLE', members: [] });
    const members = req.members.map(({ memberId, groupInstanceId }) => {
      const out = (error: GroupError) => ({ memberId, groupInstanceId, error });
      const pending = memberId === '' ? undefined : group.pendingMembers.get(memberId);
      if (pending !== undefined) {
        pending.cancel();
        group.pendingMembers.delete(memberId);
        if (group.is('PreparingRebalance')) this.tryCompleteJoin(group);
        return out('NONE');
      }
      let target = memberId;
      if (groupInstanceId !== null) {
        const existing = group.staticMemberId(groupInstanceId);
        if (existing === undefined) return out('UNKNOWN_MEMBER_ID');
        if (memberId !== '' && existing !== memberId) return out('FENCED_INSTANCE_ID');
        target = existing;
      }
      const member = group.members.get(target);
      if (!member) return out('UNKNOWN_MEMBER_ID');
      this.removeMemberAndUpdateGroup(group, member);
      return out('NONE');
    });
    return done({ error: 'NONE', members });
  }

  private removeMemberAndUpdateGroup(group: Group, member: Member): void {
    member.heartbeatTimer?.cancel();
    member.heartbeatTimer = null;
    // A new member whose JoinGroup timed out gets an empty member id back: it starts over.
    member.resolveJoin(joinError('', 'UNKNOWN_MEMBER_ID'));
    member.resolveSync(syncError('UNKNOWN_MEMBER_ID'));
    group.remove(member.memberId);
    switch (group.state) {
      case 'Stable':
      case 'CompletingRebalance':
        this.maybePrepareRebalance(group);
        break;
      case 'PreparingRebalance':
        this.tryCompleteJoin(group);
        break;
      default:
        break;
    }
  }

  private scheduleHeartbeat(group: Group, member: Member, timeoutMs = member.sessionTimeoutMs): void {
    member.heartbeatTimer?.cancel();
    member.lastHeartbeatMs = this.clock.now();
    member.heartbeatTimer = this.clock.schedule(timeoutMs, () => {
      member.heartbeatTimer = null;
      if (group.members.get(member.memberId) !== member) return;
      // Waiting in a rebalance counts as alive: the rebalance and sync timeouts police those members.
      if (!member.isNew && (member.isAwaitingJoin || member.isAwaitingSync)) return;
      this.removeMemberAndUpdateGroup(group, member);
    });
  }

  private validateCurrentMember(group: Group, memberId: string, groupInstanceId: string | null): GroupError | null {
    if (groupInstanceId !== null) {
      const existing = group.staticMemberId(groupInstanceId);
      if (existing === undefined) return 'UNKNOWN_MEMBER_ID';
      if (existing !== memberId) return 'FENCED_INSTANCE_ID';
      return null;
    }
    return group.has(memberId) ? null : 'UNKNOWN_MEMBER_ID';
  }

  // -------------------------------------------------------------------------------------------
  // Offsets

  commitOffsets(req: OffsetCommitRequest): Outcome<OffsetCommitResult> {
    const all = (error: GroupError): OffsetCommitResult => ({
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, error })) })),
    });
    const err = this.checkGroup(req.groupId, false);
    if (err) return done(all(err));
    let group = this.groups.get(req.groupId);
    // A KIP-848 group checks the member and its epoch; its offsets are kept in a plain offsets holder.
    const consumerGroup = this.consumer.get(req.groupId);
    if (consumerGroup) {
      const cErr = this.consumer.validateOffsetRequest(req.groupId, req.memberId, req.generationId, true);
      if (cErr) return done(all(cErr as GroupError));
      if (!group) {
        group = new Group(req.groupId, consumerGroup.partition, 'Empty', this.clock.now());
        this.groups.set(req.groupId, group);
      }
    } else if (!group) {
      // No group: a stand-alone consumer (generation -1) may still keep its offsets here.
      if (req.generationId >= 0) return done(all('ILLEGAL_GENERATION'));
      group = new Group(req.groupId, this.partitionFor(req.groupId), 'Empty', this.clock.now());
      this.groups.set(req.groupId, group);
    }
    if (group.is('Dead')) return done(all('COORDINATOR_NOT_AVAILABLE'));
    let memberErr: GroupError | null = null;
    if (consumerGroup) {
      // Validated above.
    } else if (req.generationId < 0 && group.is('Empty')) {
      // Admin clients and consumers without group management commit with generation -1.
    } else if (req.generationId >= 0 || req.memberId !== '' || req.groupInstanceId !== null) {
      memberErr = this.validateCurrentMember(group, req.memberId, req.groupInstanceId);
      if (memberErr === null && req.generationId !== group.generationId) memberErr = 'ILLEGAL_GENERATION';
    } else if (!group.is('Empty')) {
      // Only members may commit for a group that has members.
      memberErr = 'UNKNOWN_MEMBER_ID';
    }
    if (memberErr) return done(all(memberErr));
    // The member has the new generation from JoinGroup but no assignment yet.
    if (group.is('CompletingRebalance')) return done(all('REBALANCE_IN_PROGRESS'));
    const member = group.members.get(req.memberId);
    if (member && !member.isAwaitingJoin && !member.isAwaitingSync) this.scheduleHeartbeat(group, member);

    const now = this.clock.now();
    const maxMetadata = this.config['offset.metadata.max.bytes'];
    const records: OffsetsRecord[] = [];
    const errors = new Map<string, GroupError>();
    for (const t of req.topics) {
      for (const p of t.partitions) {
        const metadata = p.committedMetadata ?? '';
        if (Buffer.byteLength(metadata, 'utf8') > maxMetadata) {
          errors.set(offsetKey(t.name, p.partitionIndex), 'OFFSET_METADATA_TOO_LARGE');
          continue;
        }
        records.push({
          partition: group.partition,
          key: encodeOffsetCommitKey(group.groupId, t.name, p.partitionIndex),
          value: encodeOffsetCommitValue({
            offset: p.committedOffset,
            leaderEpoch: p.committedLeaderEpoch,
            metadata,
            commitTimestamp: BigInt(now),
            expireTimestamp: req.retentionTimeMs >= 0 ? BigInt(now + req.retentionTimeMs) : -1n,
          }),
        });
      }
    }
    const { promise, resolve } = Promise.withResolvers<OffsetCommitResult>();
    const theGroup = group;
    const keys = records.map((r) => {
      const k = decodeKey(r.key) as { topic: string; partition: number };
      return offsetKey(k.topic, k.partition);
    });
    for (const k of keys) theGroup.pendingOffsetCommits.set(k, (theGroup.pendingOffsetCommits.get(k) ?? 0) + 1);
    return {
      records,
      settle: (error) => {
        const appendErr = error === undefined ? null : this.appendError(error);
        const live = !theGroup.is('Dead') && this.groups.get(theGroup.groupId) === theGroup;
        records.forEach((r, i) => {
          const k = keys[i]!;
          const pending = theGroup.pendingOffsetCommits.get(k);
          // No entry: the offset was deleted while this commit was in flight; its tombstone follows
          // the commit in the log, so the commit must not come back to life here either.
          if (pending === undefined) return;
          if (pending <= 1) theGroup.pendingOffsetCommits.delete(k);
          else theGroup.pendingOffsetCommits.set(k, pending - 1);
          if (appendErr === null && live) this.replay(r.partition, r.key, r.value);
        });
        if (appendErr === null) this.stats.offsetCommits += records.length;
        resolve({
          topics: req.topics.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({
              partitionIndex: p.partitionIndex,
              error: errors.get(offsetKey(t.name, p.partitionIndex)) ?? appendErr ?? 'NONE',
            })),
          })),
        });
      },
      response: promise,
    };
  }

  /**
   * TxnOffsetCommit: the offsets are written as a transactional batch of the producer and kept
   * pending (OffsetFetch does not return them; with requireStable it answers
   * UNSTABLE_OFFSET_COMMIT) until the transaction's marker: COMMIT makes them the committed
   * offsets, ABORT drops them ({@link completeTxn}). Checks as Kafka's
   * validateTransactionalOffsetCommit: an unknown group is created for generation -1 (a
   * stand-alone group), else ILLEGAL_GENERATION; with a generation, member id or instance id the
   * member and generation are checked; a rebalance in progress does not refuse it.
   */
  txnCommitOffsets(req: TxnOffsetCommitRequest): Outcome<OffsetCommitResult> {
    const all = (error: GroupError): OffsetCommitResult => ({
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, error })) })),
    });
    const err = this.checkGroup(req.groupId, false);
    if (err) return done(all(err));
    let group = this.groups.get(req.groupId);
    const consumerGroup = this.consumer.get(req.groupId);
    if (consumerGroup) {
      if (req.generationId >= 0 || req.memberId !== '') {
        const cErr = this.consumer.validateOffsetRequest(req.groupId, req.memberId, req.generationId, true);
        // Kafka answers a stale member epoch in a transaction as ILLEGAL_GENERATION.
        if (cErr) return done(all((cErr as string) === 'STALE_MEMBER_EPOCH' ? 'ILLEGAL_GENERATION' : (cErr as GroupError)));
      }
      if (!group) {
        group = new Group(req.groupId, consumerGroup.partition, 'Empty', this.clock.now());
        this.groups.set(req.groupId, group);
      }
    } else if (!group) {
      if (req.generationId >= 0) return done(all('ILLEGAL_GENERATION'));
      group = new Group(req.groupId, this.partitionFor(req.groupId), 'Empty', this.clock.now());
      group.currentStateTimestamp = null;
      this.groups.set(req.groupId, group);
    }
    if (group.is('Dead')) return done(all('COORDINATOR_NOT_AVAILABLE'));
    if (!consumerGroup && (req.generationId >= 0 || req.memberId !== '' || req.groupInstanceId !== null)) {
      let memberErr = this.validateCurrentMember(group, req.memberId, req.groupInstanceId);
      if (memberErr === null && req.generationId !== group.generationId) memberErr = 'ILLEGAL_GENERATION';
      if (memberErr) return done(all(memberErr));
    }

    const now = this.clock.now();
    const maxMetadata = this.config['offset.metadata.max.bytes'];
    const txn = { producerId: req.producerId, producerEpoch: req.producerEpoch };
    const records: OffsetsRecord[] = [];
    const prepared: PendingTxnOffset[] = [];
    const errors = new Map<string, GroupError>();
    for (const t of req.topics) {
      for (const p of t.partitions) {
        const metadata = p.committedMetadata ?? '';
        if (Buffer.byteLength(metadata, 'utf8') > maxMetadata) {
          errors.set(offsetKey(t.name, p.partitionIndex), 'OFFSET_METADATA_TOO_LARGE');
          continue;
        }
        records.push({
          partition: group.partition,
          key: encodeOffsetCommitKey(group.groupId, t.name, p.partitionIndex),
          value: encodeOffsetCommitValue({ offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata, commitTimestamp: BigInt(now), expireTimestamp: -1n }),
          txn,
        });
        prepared.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata, commitTimestamp: now, inFlight: true, superseded: false });
      }
    }
    // Pending at once (as Kafka's prepareTxnOffsetCommit): requireStable fetches see them in flight.
    for (const o of prepared) this.addPendingTxnOffset(group.partition, group.groupId, req.producerId, o);
    const { promise, resolve } = Promise.withResolvers<OffsetCommitResult>();
    const groupId = group.groupId;
    return {
      records,
      settle: (error) => {
        const appendErr = error === undefined ? null : this.txnAppendError(error);
        const byKey = this.pendingTxnOffsets.get(groupId)?.get(req.producerId);
        for (const o of prepared) {
          if (appendErr === null) {
            o.inFlight = false;
            continue;
          }
          // Failed: forget what this request prepared (a later request's entry stays).
          const k = offsetKey(o.topic, o.partition);
          if (byKey?.get(k) === o) byKey.delete(k);
        }
        if (byKey && byKey.size === 0) this.dropPendingProducer(groupId, req.producerId);
        resolve({
          topics: req.topics.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({
              partitionIndex: p.partitionIndex,
              error: errors.get(offsetKey(t.name, p.partitionIndex)) ?? appendErr ?? 'NONE',
            })),
          })),
        });
      },
      response: promise,
    };
  }

  /**
   * A transaction marker reached `__consumer_offsets` partition `partition` (live, once durable, or
   * replayed while loading): a COMMIT makes the producer's pending offsets in the partition's
   * groups the committed ones (unless a later plain commit of the same partition superseded
   * them), an ABORT drops them. No records: the marker itself is the record.
   */
  completeTxn(partition: number, producerId: bigint, commit: boolean): void {
    const producers = this.txnGroups.get(partition);
    const groupIds = producers?.get(producerId);
    if (!producers || !groupIds) return;
    producers.delete(producerId);
    if (producers.size === 0) this.txnGroups.delete(partition);
    for (const groupId of groupIds) {
      const byProducer = this.pendingTxnOffsets.get(groupId);
      const pending = byProducer?.get(producerId);
      if (!byProducer || !pending) continue;
      byProducer.delete(producerId);
      if (byProducer.size === 0) this.pendingTxnOffsets.delete(groupId);
      if (!commit) continue;
      let group = this.groups.get(groupId);
      for (const o of pending.values()) {
        if (o.superseded) continue;
        if (!group) {
          group = new Group(groupId, partition, 'Empty', this.clock.now());
          group.currentStateTimestamp = null;
          this.groups.set(groupId, group);
        }
        group.offsets.set(offsetKey(o.topic, o.partition), {
          topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata,
          commitTimestamp: o.commitTimestamp, expireTimestamp: -1,
        });
        this.stats.offsetCommits++;
      }
    }
  }

  /** Whether a group has transactional offsets waiting for their marker (for one partition, or any). */
  hasPendingTxnOffsets(groupId: string, topic?: string, partition?: number): boolean {
    const byProducer = this.pendingTxnOffsets.get(groupId);
    if (!byProducer) return false;
    if (topic === undefined) return byProducer.size > 0;
    const k = offsetKey(topic, partition!);
    for (const byKey of byProducer.values()) if (byKey.has(k)) return true;
    return false;
  }

  private addPendingTxnOffset(partition: number, groupId: string, producerId: bigint, o: PendingTxnOffset): void {
    let byProducer = this.pendingTxnOffsets.get(groupId);
    if (!byProducer) this.pendingTxnOffsets.set(groupId, (byProducer = new Map()));
    let byKey = byProducer.get(producerId);
    if (!byKey) byProducer.set(producerId, (byKey = new Map()));
    byKey.set(offsetKey(o.topic, o.partition), o);
    let producers = this.txnGroups.get(partition);
    if (!producers) this.txnGroups.set(partition, (producers = new Map()));
    let groups = producers.get(producerId);
    if (!groups) producers.set(producerId, (groups = new Set()));
    groups.add(groupId);
  }

  /**
   * A deleted group's transactional offsets still waiting for their marker go with it (Kafka's
   * removeAllOffsets; its later COMMIT finds no group): forgotten here, and tombstoned after them
   * (keys not in `tombstoned` already) so that a reload, replaying offsets, tombstone and COMMIT
   * in log order, drops them too instead of bringing the group back.
   */
  private dropPendingTxnOffsets(groupId: string, tombstoned: Set<string>): OffsetsRecord[] {
    const byProducer = this.pendingTxnOffsets.get(groupId);
    if (!byProducer) return [];
    const records: OffsetsRecord[] = [];
    const partition = this.partitionFor(groupId);
    for (const byKey of byProducer.values()) {
      for (const [k, o] of byKey) {
        if (tombstoned.has(k)) continue;
        tombstoned.add(k);
        records.push({ partition, key: encodeOffsetCommitKey(groupId, o.topic, o.partition), value: null });
      }
    }
    for (const producerId of [...byProducer.keys()]) this.dropPendingProducer(groupId, producerId);
    return records;
  }

  private dropPendingProducer(groupId: string, producerId: bigint): void {
    const byProducer = this.pendingTxnOffsets.get(groupId);
    byProducer?.delete(producerId);
    if (byProducer && byProducer.size === 0) this.pendingTxnOffsets.delete(groupId);
    for (const producers of this.txnGroups.values()) {
      const groups = producers.get(producerId);
      groups?.delete(groupId);
      if (groups && groups.size === 0) producers.delete(producerId);
    }
  }

  /** A failed transactional append: the producer was fenced in the log (storage's INVALID_PRODUCER_EPOCH), else as any append. */
  private txnAppendError(error: unknown): GroupError {
    const code = (error as { code?: unknown; remoteCode?: unknown } | null)?.code;
    const remote = (error as { cause?: { remoteCode?: unknown } } | null)?.cause?.remoteCode;
    if (code === 'INVALID_PRODUCER_EPOCH' || remote === 'INVALID_PRODUCER_EPOCH') return 'INVALID_PRODUCER_EPOCH';
    if (code === 'PRODUCER_FENCED' || remote === 'PRODUCER_FENCED') return 'PRODUCER_FENCED';
    return this.appendError(error);
  }

  fetchOffsets(req: OffsetFetchRequest): OffsetFetchResult {
    const err = this.checkGroup(req.groupId, false);
    if (err) return { error: err, topics: (req.topics ?? []).map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((p) => missing(p, err)) })) };
    if (this.consumer.get(req.groupId) && (req.memberId != null || (req.memberEpoch ?? -1) >= 0)) {
      const memberErr = this.consumer.validateOffsetRequest(req.groupId, req.memberId ?? '', req.memberEpoch ?? -1, false);
      if (memberErr) return { error: memberErr as GroupError, topics: [] };
    }
    const group = this.groups.get(req.groupId);
    if (req.topics === null) {
      if (!group) return { error: 'NONE', topics: [] };
      const byTopic = new Map<string, FetchedOffset[]>();
      for (const o of group.offsets.values()) {
        const list = byTopic.get(o.topic) ?? [];
        list.push(this.unstable(req, group, o.topic, o.partition) ? missing(o.partition, 'UNSTABLE_OFFSET_COMMIT') : { partitionIndex: o.partition, committedOffset: o.offset, committedLeaderEpoch: o.leaderEpoch, metadata: o.metadata, error: 'NONE' });
        byTopic.set(o.topic, list);
      }
      return {
        error: 'NONE',
        topics: [...byTopic].map(([name, partitions]) => ({ name, partitions: partitions.sort((a, b) => a.partitionIndex - b.partitionIndex) })),
      };
    }
    return {
      error: 'NONE',
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((p) => {
          if (this.unstable(req, group, t.name, p)) return missing(p, 'UNSTABLE_OFFSET_COMMIT');
          const o = group?.offsets.get(offsetKey(t.name, p));
          return o
            ? { partitionIndex: p, committedOffset: o.offset, committedLeaderEpoch: o.leaderEpoch, metadata: o.metadata, error: 'NONE' as GroupError }
            : missing(p, 'NONE');
        }),
      })),
    };
  }

  /** requireStable and a commit (transactional or plain) of the partition still pending: Kafka's UNSTABLE_OFFSET_COMMIT. */
  private unstable(req: OffsetFetchRequest, group: Group | undefined, topic: string, partition: number): boolean {
    if (!req.requireStable) return false;
    return this.hasPendingTxnOffsets(req.groupId, topic, partition) || (group?.pendingOffsetCommits.has(offsetKey(topic, partition)) ?? false);
  }

  deleteOffsets(req: OffsetDeleteRequest): Outcome<OffsetDeleteResult> {
    const err = this.checkGroup(req.groupId, false);
    if (err) return done({ error: err, topics: [] });
    const group = this.groups.get(req.groupId);
    if (!group || group.is('Dead')) return done({ error: 'GROUP_ID_NOT_FOUND', topics: [] });
    let subscribed: (topic: string) => boolean;
    if (group.is('Empty')) subscribed = () => false;
    else if (group.protocolType === 'consumer') subscribed = (t) => group.isSubscribedToTopic(t);
    else return done({ error: 'NON_EMPTY_GROUP', topics: [] });
    const records: OffsetsRecord[] = [];
    const topics = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        if (subscribed(t.name)) return { partitionIndex: p, error: 'GROUP_SUBSCRIBED_TO_TOPIC' as GroupError };
        const hadPending = group.pendingOffsetCommits.delete(offsetKey(t.name, p));
        if (group.offsets.delete(offsetKey(t.name, p)) || hadPending) {
          records.push({ partition: group.partition, key: encodeOffsetCommitKey(group.groupId, t.name, p), value: null });
        }
        return { partitionIndex: p, error: 'NONE' as GroupError };
      }),
    }));
    const { promise, resolve } = Promise.withResolvers<OffsetDeleteResult>();
    return {
      records,
      settle: (error) => resolve(error === undefined ? { error: 'NONE', topics } : { error: this.appendError(error), topics: [] }),
      response: promise,
    };
  }

  /**
   * Removes expired committed offsets (Kafka's rules: an Empty group's offsets expire
   * `offsets.retention.minutes` after it became Empty; a live consumer group's offsets of topics
   * nobody subscribes to, and a stand-alone group's offsets, expire that long after their commit;
   * an explicit expire timestamp wins; partitions with a commit in flight are left alone). An Empty group left without offsets dies. Returns the
   * tombstones, which also go to `onRecords`.
   */
  expireOffsets(): OffsetsRecord[] {
    const now = this.clock.now();
    const retentionMs = this.config['offsets.retention.minutes'] * 60_000;
    const records: OffsetsRecord[] = [];
    for (const group of [...this.groups.values()]) {
      if (this.partitions.get(group.partition) !== 'loaded') continue;
      let base: ((o: { commitTimestamp: number }) => number) | null = null;
      let keep = new Set<string>();
      if (group.protocolType !== null && group.is('Empty')) {
        const since = group.currentStateTimestamp;
        base = (o) => since ?? o.commitTimestamp;
      } else if (group.protocolType === 'consumer' && !group.is('Empty')) {
        const topics = group.subscribedTopics();
        if (topics !== null) {
          keep = topics;
          base = (o) => o.commitTimestamp;
        }
      } else if (group.protocolType === null) {
        base = (o) => o.commitTimestamp;
        // A KIP-848 group with members keeps the offsets of the topics it subscribes to.
        keep = this.consumer.subscribedTopicNames(group.groupId) ?? keep;
      }
      if (base !== null) {
        for (const [k, o] of group.offsets) {
          if (keep.has(o.topic) || group.pendingOffsetCommits.has(k)) continue;
          const expired = o.expireTimestamp >= 0 ? now >= o.expireTimestamp : now - base(o) >= retentionMs;
          if (!expired) continue;
          group.offsets.delete(k);
          records.push({ partition: group.partition, key: encodeOffsetCommitKey(group.groupId, o.topic, o.partition), value: null });
        }
      }
      if (group.is('Empty') && group.offsets.size === 0 && group.pendingOffsetCommits.size === 0 && group.pendingMembers.size === 0 && !this.consumer.get(group.groupId) && !this.hasPendingTxnOffsets(group.groupId)) {
        group.transitionTo('Dead', now);
        this.cancelTimers(group);
        this.groups.delete(group.groupId);
        // A group that only ever stored offsets (generation 0) never had a metadata record.
        if (group.generationId > 0) records.push({ partition: group.partition, key: encodeGroupMetadataKey(group.groupId), value: null });
      }
    }
    // An empty KIP-848 group whose offsets are all gone dies too (Kafka: deleted once empty with no offsets).
    for (const cg of [...this.consumer.groups.values()]) {
      if (this.partitions.get(cg.partition) !== 'loaded' || cg.members.size > 0) continue;
      const holder = this.groups.get(cg.groupId);
      if (holder && (holder.offsets.size > 0 || holder.pendingOffsetCommits.size > 0)) continue;
      records.push(...this.consumer.delete(cg.groupId).records);
    }
    if (records.length > 0) this.onRecords(records);
    return records;
  }

  /**
   * Topics deleted from metadata (or recreated under a new topic id): Kafka's
   * `GroupCoordinator.onPartitionsDeleted`. Their committed offsets are removed from every loaded
   * group, with tombstones that go to `onRecords` like expiry's (durable, replayed on load), so a
   * topic recreated under the same name starts from the group's reset policy, not an old offset.
   * A commit still in flight is cut too (its tombstone follows it in the log), and a transactional
   * offset waiting for its marker never becomes committed (as a plain commit supersedes it). An
   * Empty group left with nothing dies, as after expiry. Returns the records.
   */
  deleteTopicOffsets(topics: ReadonlySet<string>): OffsetsRecord[] {
    const records: OffsetsRecord[] = [];
    if (topics.size === 0) return records;
    const now = this.clock.now();
    for (const group of [...this.groups.values()]) {
      if (this.partitions.get(group.partition) !== 'loaded') continue;
      const gone = new Map<string, { topic: string; partition: number }>();
      for (const [k, o] of group.offsets) if (topics.has(o.topic)) gone.set(k, o);
      for (const k of group.pendingOffsetCommits.keys()) {
        const sep = k.lastIndexOf('\u0000');
        const topic = k.slice(0, sep);
        if (topics.has(topic) && !gone.has(k)) gone.set(k, { topic, partition: Number(k.slice(sep + 1)) });
      }
      for (const byKey of this.pendingTxnOffsets.get(group.groupId)?.values() ?? []) {
        for (const o of byKey.values()) if (topics.has(o.topic)) o.superseded = true;
      }
      for (const [k, o] of gone) {
        group.offsets.delete(k);
        // No entry: the in-flight commit's settle must not bring the offset back (see commitOffsets).
        group.pendingOffsetCommits.delete(k);
        records.push({ partition: group.partition, key: encodeOffsetCommitKey(group.groupId, o.topic, o.partition), value: null });
      }
      if (gone.size > 0 && group.is('Empty') && group.offsets.size === 0 && group.pendingOffsetCommits.size === 0 && group.pendingMembers.size === 0 && !this.consumer.get(group.groupId) && !this.hasPendingTxnOffsets(group.groupId)) {
        group.transitionTo('Dead', now);
        this.cancelTimers(group);
        this.groups.delete(group.groupId);
        if (group.generationId > 0) records.push({ partition: group.partition, key: encodeGroupMetadataKey(group.groupId), value: null });
      }
    }
    if (records.length > 0) this.onRecords(records);
    return records;
  }

  // -------------------------------------------------------------------------------------------
  // Admin: DescribeGroups, ListGroups, DeleteGroups, lag

  describeGroups(groupIds: readonly string[]): DescribedGroup[] {
    return groupIds.map((groupId) => {
      const dead: DescribedGroup = { error: 'NONE', groupId, groupState: 'Dead', protocolType: '', protocolData: '', members: [] };
      const err = this.checkGroup(groupId, false);
      if (err) return { ...dead, error: err };
      // Kafka 4 answers DescribeGroups for a consumer-protocol group like this; clients use ConsumerGroupDescribe.
      if (this.consumer.get(groupId)) return { ...dead, error: 'GROUP_ID_NOT_FOUND' };
      const group = this.groups.get(groupId);
      if (!group) return dead;
      const stable = group.is('Stable') && group.protocolName !== null;
      return {
        error: 'NONE',
        groupId,
        groupState: group.state,
        protocolType: group.protocolType ?? '',
        protocolData: stable ? group.protocolName! : '',
        members: [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberMetadata: stable ? (m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY) : EMPTY,
          memberAssignment: stable ? m.assignment : EMPTY,
        })),
      };
    });
  }

  /**
   * Every group of the loaded partitions; `states` (ListGroups v4) and `types` (v5: "classic",
   * "consumer") filter case-insensitively, an empty or null filter lets every group through.
   */
  listGroups(states: readonly string[] | null = null, types: readonly string[] | null = null): { error: GroupError; groups: ListedGroup[] } {
    const wanted = states && states.length > 0 ? new Set(states.map((s) => s.toLowerCase())) : null;
    const wantedTypes = types && types.length > 0 ? new Set(types.map((t) => t.toLowerCase())) : null;
    const loading = [...this.partitions.values()].includes('loading');
    const groups: ListedGroup[] = [];
    for (const g of this.groups.values()) {
      if (this.partitions.get(g.partition) !== 'loaded') continue;
      if (this.consumer.get(g.groupId)) continue;
      if (wanted && !wanted.has(g.state.toLowerCase())) continue;
      groups.push({ groupId: g.groupId, protocolType: g.protocolType ?? '', groupState: g.state, groupType: 'classic' });
    }
    for (const g of this.consumer.groups.values()) {
      if (this.partitions.get(g.partition) !== 'loaded') continue;
      if (wanted && !wanted.has(g.state.toLowerCase())) continue;
      groups.push({ groupId: g.groupId, protocolType: 'consumer', groupState: g.state, groupType: 'consumer' });
    }
    return { error: loading ? 'COORDINATOR_LOAD_IN_PROGRESS' : 'NONE', groups: wantedTypes ? groups.filter((g) => wantedTypes.has(g.groupType)) : groups };
  }

  deleteGroups(groupIds: readonly string[]): Outcome<{ groupId: string; error: GroupError }[]> {
    const records: OffsetsRecord[] = [];
    const results = groupIds.map((groupId) => {
      const err = this.checkGroup(groupId, false);
      if (err) return { groupId, error: err };
      const consumerDelete = this.consumer.delete(groupId);
      if (consumerDelete.error === 'NON_EMPTY_GROUP') return { groupId, error: 'NON_EMPTY_GROUP' as GroupError };
      const group = this.groups.get(groupId);
      if (consumerDelete.error === 'NONE' && !group) {
        records.push(...this.dropPendingTxnOffsets(groupId, new Set()), ...consumerDelete.records);
        return { groupId, error: 'NONE' as GroupError };
      }
      if (!group || group.is('Dead')) return { groupId, error: 'GROUP_ID_NOT_FOUND' as GroupError };
      if (!group.is('Empty')) return { groupId, error: 'NON_EMPTY_GROUP' as GroupError };
      group.transitionTo('Dead', this.clock.now());
      this.cancelTimers(group);
      this.groups.delete(groupId);
      for (const o of group.offsets.values()) {
        records.push({ partition: group.partition, key: encodeOffsetCommitKey(groupId, o.topic, o.partition), value: null });
      }
      // Commits still in flight land in the log before these tombstones; delete them too.
      for (const k of group.pendingOffsetCommits.keys()) {
        if (group.offsets.has(k)) continue;
        const sep = k.lastIndexOf('\u0000');
        records.push({ partition: group.partition, key: encodeOffsetCommitKey(groupId, k.slice(0, sep), Number(k.slice(sep + 1))), value: null });
      }
      const tombstoned = new Set([...group.offsets.keys(), ...group.pendingOffsetCommits.keys()]);
      group.pendingOffsetCommits.clear();
      records.push(...this.dropPendingTxnOffsets(groupId, tombstoned));
      records.push({ partition: group.partition, key: encodeGroupMetadataKey(groupId), value: null });
      // A KIP-848 group's own records go last, after its offsets' tombstones.
      records.push(...consumerDelete.records);
      return { groupId, error: 'NONE' as GroupError };
    });
    const { promise, resolve } = Promise.withResolvers<{ groupId: string; error: GroupError }[]>();
    return {
      records,
      settle: (error) => {
        const appendErr = error === undefined ? null : this.appendError(error);
        resolve(results.map((r) => (r.error === 'NONE' && appendErr ? { ...r, error: appendErr } : r)));
      },
      response: promise,
    };
  }

  /** Consumer lag per committed partition, given the log end offsets (from the broker). */
  lag(groupId: string, logEndOffset: (topic: string, partition: number) => bigint): LagRow[] {
    const group = this.groups.get(groupId);
    if (!group) return [];
    const now = this.clock.now();
    return [...group.offsets.values()]
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
      .map((o) => {
        const leo = logEndOffset(o.topic, o.partition);
        const lag = leo - o.offset;
        return {
          topic: o.topic,
          partition: o.partition,
          committedOffset: o.offset,
          logEndOffset: leo,
          lag: lag > 0n ? lag : 0n,
          secondsSinceCommit: Math.max(0, Math.floor((now - o.commitTimestamp) / 1000)),
        };
      });
  }

  /** The group's state for inspection and tests (undefined when unknown). */
  groupState(groupId: string): GroupState | undefined {
    return this.groups.get(groupId)?.state;
  }

  /** Read-only access to a group (tests, lag tools). */
  group(groupId: string): Group | undefined {
    return this.groups.get(groupId);
  }

  // -------------------------------------------------------------------------------------------

  private checkGroup(groupId: string, requireNonEmpty: boolean): GroupError | null {
    if (requireNonEmpty && groupId === '') return 'INVALID_GROUP_ID';
    const state = this.partitions.get(this.partitionFor(groupId));
    if (state === undefined) return 'NOT_COORDINATOR';
    if (state === 'loading') return 'COORDINATOR_LOAD_IN_PROGRESS';
    return null;
  }

  /**
   * What a failed append means to the client (Kafka's mapping): the log is not ours any more →
   * NOT_COORDINATOR; anything else is retriable as COORDINATOR_NOT_AVAILABLE.
   */
  private appendError(error: unknown): GroupError {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'NOT_LEADER' || code === 'NOT_COORDINATOR') return 'NOT_COORDINATOR';
    return 'COORDINATOR_NOT_AVAILABLE';
  }

  private groupMetadataRecord(group: Group, assignments: ReadonlyMap<string, Buffer>): OffsetsRecord {
    const protocol = group.protocolName;
    return {
      partition: group.partition,
      key: encodeGroupMetadataKey(group.groupId),
      value: encodeGroupMetadataValue({
        protocolType: group.protocolType ?? '',
        generation: group.generationId,
        protocol,
        leader: group.members.size > 0 ? group.leaderId : null,
        currentStateTimestamp: BigInt(group.currentStateTimestamp ?? -1),
        members: [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          rebalanceTimeout: m.rebalanceTimeoutMs,
          sessionTimeout: m.sessionTimeoutMs,
          subscription: protocol === null ? EMPTY : m.metadataFor(protocol),
          assignment: assignments.get(m.memberId) ?? EMPTY,
        })),
      }),
    };
  }

  private cancelTimers(group: Group): void {
    group.joinTimer?.cancel();
    group.joinTimer = null;
    group.syncTimer?.cancel();
    group.syncTimer = null;
    for (const t of group.pendingMembers.values()) t.cancel();
    group.pendingMembers.clear();
    for (const m of group.members.values()) {
      m.heartbeatTimer?.cancel();
      m.heartbeatTimer = null;
    }
  }
}

function missing(partitionIndex: number, error: GroupError): FetchedOffset {
  return { partitionIndex, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', error };
}
