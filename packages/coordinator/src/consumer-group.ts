import { randomUUID } from 'node:crypto';
import { Script, createContext } from 'node:vm';
import type { Clock, Timer } from './clock.ts';
import { ASSIGNORS, type Assignor, type AssignorMember, type TopicAssignment } from './assignors.ts';
import {
  type MemberMetadata,
  type WireAssignment,
  consumerKeys,
  decodeConsumerGroupMetadata,
  decodeConsumerKey,
  decodeCurrentMemberAssignment,
  decodeMemberMetadata,
  decodeTargetAssignmentMember,
  decodeTargetAssignmentMetadata,
  encodeConsumerGroupMetadata,
  encodeCurrentMemberAssignment,
  encodeMemberMetadata,
  encodeTargetAssignmentMember,
  encodeTargetAssignmentMetadata,
} from './consumer-records.ts';
import type { GroupError } from './group.ts';
import type { OffsetsRecord } from './records.ts';

/**
 * KIP-848 consumer groups ("consumer" group type): the group coordinator side of
 * ConsumerGroupHeartbeat, as Kafka 4's GroupMetadataManager and CurrentAssignmentBuilder.
 *
 * - The **group epoch** grows whenever what the assignment depends on changes: a member joins or
 *   leaves, a subscription or server assignor changes, a subscribed topic gains partitions or is
 *   deleted (checked on each heartbeat against the topic lookup).
 * - The **target assignment** is computed here by the group's assignor (`uniform` by default, or
 *   what the members ask for in ServerAssignor, from `group.consumer.assignors`) whenever the group
 *   epoch is ahead of the assignment epoch.
 * - Each member moves towards its target through the **reconciliation** state machine: partitions
 *   it must give up are revoked first (UNREVOKED_PARTITIONS, member epoch unchanged); only once its
 *   heartbeat no longer reports them does it get the target's epoch and its new partitions, and a
 *   partition still held (or pending revocation) by another member is withheld
 *   (UNRELEASED_PARTITIONS) until that member lets it go. So no partition is ever owned by two
 *   members at once. A member that does not revoke within its rebalance timeout is fenced.
 * - Sessions: a member that sends no heartbeat within `group.consumer.session.timeout.ms` is
 *   removed (its partitions move on), the same for leave (epoch −1); a static member leaving with
 *   −2 keeps its assignment for the session timeout, for a new instance with its instance id.
 *
 * The state is applied when the heartbeat is handled; its records (Kafka's types 3, 5–8) are
 * returned for the runtime to append, and the answer is sent once they are durable. Loading
 * replays them (see {@link ConsumerGroups.replay}).
 */

export type ConsumerGroupState = 'Empty' | 'Assigning' | 'Reconciling' | 'Stable' | 'Dead';
/** Kafka's MemberState values (persisted). */
export const MemberState = { STABLE: 0, UNREVOKED_PARTITIONS: 1, UNRELEASED_PARTITIONS: 2 } as const;

export interface TopicImage {
  /** 32 hex characters. */
  readonly topicId: string;
  readonly name: string;
  readonly partitions: number;
}

/** What the coordinator knows of topics (metadata): the subscriptions resolve through it. */
export interface TopicLookup {
  byName(name: string): TopicImage | undefined;
  byId(topicId: string): TopicImage | undefined;
  /** Every topic name (regex subscriptions); without it a regex matches nothing. */
  names?(): Iterable<string>;
}

export interface ConsumerGroupConfig {
  heartbeatIntervalMs: number;
  sessionTimeoutMs: number;
  /** Server assignors offered, the first being the default (`group.consumer.assignors`). */
  assignors: readonly string[];
}

export class ConsumerMember {
  memberId: string;
  instanceId: string | null = null;
  rackId: string | null = null;
  clientId = '';
  clientHost = '';
  subscribedTopicNames: string[] = [];
  subscribedTopicRegex: string | null = null;
  serverAssignor: string | null = null;
  rebalanceTimeoutMs = -1;
  memberEpoch = 0;
  previousMemberEpoch = -1;
  state: number = MemberState.STABLE;
  assigned: TopicAssignment = new Map();
  pendingRevocation: TopicAssignment = new Map();
  sessionTimer: Timer | null = null;
  revocationTimer: Timer | null = null;

  constructor(memberId: string) {
    this.memberId = memberId;
  }

  metadata(): MemberMetadata {
    return {
      instanceId: this.instanceId,
      rackId: this.rackId,
      clientId: this.clientId,
      clientHost: this.clientHost,
      subscribedTopicNames: this.subscribedTopicNames,
      subscribedTopicRegex: this.subscribedTopicRegex,
      rebalanceTimeoutMs: this.rebalanceTimeoutMs,
      serverAssignor: this.serverAssignor,
    };
  }
}

export class ConsumerGroup {
  groupEpoch = 0;
  assignmentEpoch = 0;
  metadataHash = 0n;
  readonly members = new Map<string, ConsumerMember>();
  readonly target = new Map<string, TopicAssignment>();
  readonly groupId: string;
  readonly partition: number;
  constructor(groupId: string, partition: number) {
    this.groupId = groupId;
    this.partition = partition;
  }

  get state(): ConsumerGroupState {
    if (this.members.size === 0) return 'Empty';
    if (this.groupEpoch > this.assignmentEpoch) return 'Assigning';
    for (const m of this.members.values()) if (m.memberEpoch !== this.assignmentEpoch || m.state !== MemberState.STABLE) return 'Reconciling';
    return 'Stable';
  }

  staticMember(instanceId: string): ConsumerMember | undefined {
    for (const m of this.members.values()) if (m.instanceId === instanceId) return m;
    return undefined;
  }

  /** The member owning each partition now (assigned or still pending revocation): `topicId:p` → memberId. */
  owners(): Map<string, string> {
    const out = new Map<string, string>();
    for (const m of this.members.values()) {
      for (const a of [m.assigned, m.pendingRevocation]) for (const [t, ps] of a) for (const p of ps) out.set(`${t}:${p}`, m.memberId);
    }
    return out;
  }
}

export interface ConsumerHeartbeatRequest {
  apiVersion: number;
  groupId: string;
  memberId: string;
  memberEpoch: number;
  instanceId: string | null;
  rackId: string | null;
  rebalanceTimeoutMs: number;
  subscribedTopicNames: string[] | null;
  subscribedTopicRegex: string | null;
  serverAssignor: string | null;
  topicPartitions: WireAssignment | null;
  clientId: string;
  clientHost: string;
}

export interface ConsumerHeartbeatResult {
  error: GroupError | ConsumerGroupError;
  errorMessage: string | null;
  memberId: string | null;
  memberEpoch: number;
  heartbeatIntervalMs: number;
  assignment: WireAssignment | null;
}

export type ConsumerGroupError = 'INVALID_REQUEST' | 'FENCED_MEMBER_EPOCH' | 'UNRELEASED_INSTANCE_ID' | 'UNSUPPORTED_ASSIGNOR' | 'STALE_MEMBER_EPOCH' | 'GROUP_ID_NOT_FOUND';

export interface DescribedConsumerGroup {
  error: GroupError | ConsumerGroupError;
  errorMessage: string | null;
  groupId: string;
  groupState: string;
  groupEpoch: number;
  assignmentEpoch: number;
  assignorName: string;
  members: {
    memberId: string;
    instanceId: string | null;
    rackId: string | null;
    memberEpoch: number;
    clientId: string;
    clientHost: string;
    subscribedTopicNames: string[];
    subscribedTopicRegex: string | null;
    assignment: { topicId: string; topicName: string; partitions: number[] }[];
    targetAssignment: { topicId: string; topicName: string; partitions: number[] }[];
  }[];
}

export interface ConsumerGroupsOptions {
  clock: Clock;
  config: ConsumerGroupConfig;
  topics: TopicLookup;
  /** Records of timer-driven changes (session expiry, revocation timeout). */
  onRecords: (records: OffsetsRecord[]) => void;
  /** The group's __consumer_offsets partition, and whether it is loaded (null) or why not. */
  check: (groupId: string) => GroupError | null;
  partitionFor: (groupId: string) => number;
  /** A classic group of this id that has members (or is rebalancing): the consumer protocol may not take it. */
  classicInUse: (groupId: string) => boolean;
  newUuid?: () => string;
}

export function toWire(a: TopicAssignment): WireAssignment {
  return [...a].filter(([, ps]) => ps.size > 0).sort(([x], [y]) => (x < y ? -1 : 1)).map(([topicId, ps]) => ({ topicId, partitions: [...ps].sort((x, y) => x - y) }));
}

export function fromWire(w: readonly { topicId: string; partitions: readonly number[] }[]): TopicAssignment {
  const out: TopicAssignment = new Map();
  for (const t of w) {
    const id = t.topicId.replace(/-/g, '').toLowerCase();
    const s = out.get(id) ?? new Set<number>();
    for (const p of t.partitions) s.add(p);
    out.set(id, s);
  }
  return out;
}

function same(a: TopicAssignment, b: TopicAssignment): boolean {
  const norm = (x: TopicAssignment) => JSON.stringify(toWire(x));
  return norm(a) === norm(b);
}

function intersect(a: TopicAssignment, b: TopicAssignment): TopicAssignment {
  const out: TopicAssignment = new Map();
  for (const [t, ps] of a) {
    const other = b.get(t);
    if (!other) continue;
    const s = new Set([...ps].filter((p) => other.has(p)));
    if (s.size > 0) out.set(t, s);
  }
  return out;
}

function minus(a: TopicAssignment, b: TopicAssignment): TopicAssignment {
  const out: TopicAssignment = new Map();
  for (const [t, ps] of a) {
    const other = b.get(t);
    const s = new Set([...ps].filter((p) => !other?.has(p)));
    if (s.size > 0) out.set(t, s);
  }
  return out;
}

function isEmpty(a: TopicAssignment): boolean {
  for (const ps of a.values()) if (ps.size > 0) return false;
  return true;
}

const normId = (id: string) => id.replace(/-/g, '').toLowerCase();

/** How long one SubscribedTopicRegex may take over every topic name (see regexMatches). */
export const REGEX_BUDGET_MS = 100;
const MATCH_SCRIPT = new Script('(() => { const re = new RegExp(src); return names.filter((n) => re.test(n)); })()');

export class ConsumerGroups {
  readonly groups = new Map<string, ConsumerGroup>();
  /** Group epoch bumps since start (Kafka's consumer-group-rebalance-count; metrics). */
  rebalances = 0;
  private readonly o: ConsumerGroupsOptions;
  private readonly loaded = new Set<number>();
  private readonly newUuid: () => string;
  /** regexMatches' results per regex, over the topic names in `regexNames` (joined). */
  private readonly regexCache = new Map<string, Set<string> | null>();
  private regexNames = '';

  constructor(o: ConsumerGroupsOptions) {
    this.o = o;
    this.newUuid = o.newUuid ?? randomUUID;
  }

  get(groupId: string): ConsumerGroup | undefined {
    return this.groups.get(groupId);
  }

  // -------------------------------------------------------------------------------------------
  // Heartbeat

  heartbeat(req: ConsumerHeartbeatRequest): { records: OffsetsRecord[]; result: ConsumerHeartbeatResult } {
    const interval = this.o.config.heartbeatIntervalMs;
    const fail = (error: ConsumerHeartbeatResult['error'], errorMessage: string | null = null) => ({
      records: [],
      result: { error, errorMessage, memberId: null, memberEpoch: 0, heartbeatIntervalMs: 0, assignment: null },
    });
    // Kafka's request validation (throwIfConsumerGroupHeartbeatRequestIsInvalid).
    if (req.groupId === '') return fail('INVALID_REQUEST', 'GroupId can\'t be empty.');
    if (req.apiVersion >= 1 && req.memberId === '') return fail('INVALID_REQUEST', 'MemberId can\'t be empty.');
    if (req.instanceId === '') return fail('INVALID_REQUEST', 'InstanceId can\'t be empty.');
    if (req.rackId === '') return fail('INVALID_REQUEST', 'RackId can\'t be empty.');
    if (req.memberEpoch === 0) {
      if (req.rebalanceTimeoutMs === -1) return fail('INVALID_REQUEST', 'RebalanceTimeoutMs must be provided in first request.');
      if (req.topicPartitions === null || req.topicPartitions.length > 0) return fail('INVALID_REQUEST', 'TopicPartitions must be empty when (re-)joining.');
      if (req.subscribedTopicNames === null && req.subscribedTopicRegex === null) return fail('INVALID_REQUEST', 'SubscribedTopicNames or SubscribedTopicRegex must be set in first request.');
    } else if (req.memberEpoch === -2) {
      if (req.instanceId === null) return fail('INVALID_REQUEST', 'InstanceId can\'t be null.');
    } else if (req.memberEpoch < -2) {
      return fail('INVALID_REQUEST', `MemberEpoch ${req.memberEpoch} is invalid.`);
    }
    if (req.memberEpoch !== 0 && req.memberEpoch >= -2 && req.memberId === '') return fail('INVALID_REQUEST', 'MemberId can\'t be empty.');
    if (req.subscribedTopicRegex !== null) {
      // Kafka uses RE2J syntax; a JavaScript RegExp reads the common subset the same way.
      try {
        new RegExp(req.subscribedTopicRegex);
      } catch (err) {
        return fail('INVALID_REQUEST', `SubscribedTopicRegex ${req.subscribedTopicRegex} is not a valid regular expression: ${(err as Error).message}`);
      }
      if (this.regexMatches(req.subscribedTopicRegex) === null) {
        return fail('INVALID_REQUEST', `SubscribedTopicRegex ${req.subscribedTopicRegex} takes longer than ${REGEX_BUDGET_MS} ms to match the topic names.`);
      }
    }
    if (req.serverAssignor !== null && !this.o.config.assignors.includes(req.serverAssignor)) {
      return fail('UNSUPPORTED_ASSIGNOR', `ServerAssignor ${req.serverAssignor} is not supported. Supported assignors: ${this.o.config.assignors.join(', ')}.`);
    }
    const err = this.o.check(req.groupId);
    if (err) return fail(err);

    if (req.memberEpoch === -1 || req.memberEpoch === -2) return this.leave(req);

    let group = this.groups.get(req.groupId);
    if (!group) {
      if (req.memberEpoch !== 0) return fail('UNKNOWN_MEMBER_ID', `Group ${req.groupId} not found.`);
      if (this.o.classicInUse(req.groupId)) return fail('GROUP_ID_NOT_FOUND', `Group ${req.groupId} is not a consumer group.`);
      group = new ConsumerGroup(req.groupId, this.o.partitionFor(req.groupId));
      this.groups.set(req.groupId, group);
    }
    const records: OffsetsRecord[] = [];
    let member: ConsumerMember;
    let bump = false;
    const existing = req.memberId === '' ? undefined : group.members.get(req.memberId);
    if (req.memberEpoch === 0) {
      const previousStatic = req.instanceId !== null ? group.staticMember(req.instanceId) : undefined;
      if (previousStatic !== undefined && previousStatic.memberId !== req.memberId) {
        // A static member coming back under a new member id takes over its predecessor's seat,
        // but only once the predecessor announced it would come back (epoch -2).
        if (previousStatic.memberEpoch !== -2) {
          return fail('UNRELEASED_INSTANCE_ID', `Static member ${req.instanceId} with member id ${previousStatic.memberId} has not released it yet.`);
        }
        const memberId = req.memberId === '' ? this.newUuid() : req.memberId;
        member = new ConsumerMember(memberId);
        // It inherits its predecessor's metadata (so an unchanged subscription is no rebalance: the
        // group epoch stays, as Kafka copies the member) and what it owned; reconciliation below
        // gives it the current epoch.
        Object.assign(member, previousStatic.metadata(), { subscribedTopicNames: [...previousStatic.subscribedTopicNames] });
        member.assigned = previousStatic.assigned;
        member.pendingRevocation = previousStatic.pendingRevocation;
        member.state = previousStatic.state;
        this.removeMember(group, previousStatic, records);
        const target = group.target.get(previousStatic.memberId);
        group.target.delete(previousStatic.memberId);
        if (target) {
          group.target.set(memberId, target);
          records.push({ partition: group.partition, key: consumerKeys.targetMember(group.groupId, memberId), value: encodeTargetAssignmentMember(toWire(target)) });
        }
        group.members.set(memberId, member);
      } else if (existing) {
        member = existing;
      } else {
        const memberId = req.memberId === '' ? this.newUuid() : req.memberId;
        member = new ConsumerMember(memberId);
        member.instanceId = req.instanceId;
        group.members.set(memberId, member);
        bump = true;
      }
    } else {
      if (!existing) return fail('UNKNOWN_MEMBER_ID', `Member ${req.memberId} is not a member of group ${req.groupId}.`);
      member = existing;
      if (req.instanceId !== null && member.instanceId !== req.instanceId) return fail('FENCED_INSTANCE_ID' as GroupError, `Instance id ${req.instanceId} does not belong to member ${req.memberId}.`);
      const owned = req.topicPartitions === null ? null : fromWire(req.topicPartitions);
      // A member whose last answer was lost retries with its previous epoch: accepted when it owns
      // nothing it should not (Kafka's throwIfMemberEpochIsInvalid).
      const lostAnswer = req.memberEpoch === member.previousMemberEpoch && (owned === null || isEmpty(minus(owned, member.assigned)));
      if (req.memberEpoch !== member.memberEpoch && !lostAnswer) {
        return fail('FENCED_MEMBER_EPOCH', `The member epoch ${req.memberEpoch} does not match the expected epoch ${member.memberEpoch}.`);
      }
    }

    // Member metadata: the request's fields, where given (null = unchanged).
    const before = JSON.stringify(member.metadata());
    member.clientId = req.clientId;
    member.clientHost = req.clientHost;
    if (req.rackId !== null) member.rackId = req.rackId;
    if (req.rebalanceTimeoutMs !== -1) member.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    const subBefore = JSON.stringify([member.subscribedTopicNames, member.subscribedTopicRegex, member.serverAssignor]);
    if (req.subscribedTopicNames !== null) member.subscribedTopicNames = [...req.subscribedTopicNames].sort();
    if (req.subscribedTopicRegex !== null) member.subscribedTopicRegex = req.subscribedTopicRegex === '' ? null : req.subscribedTopicRegex;
    if (req.serverAssignor !== null) member.serverAssignor = req.serverAssignor;
    if (subBefore !== JSON.stringify([member.subscribedTopicNames, member.subscribedTopicRegex, member.serverAssignor])) bump = true;
    if (before !== JSON.stringify(member.metadata()) || req.memberEpoch === 0) {
      records.push({ partition: group.partition, key: consumerKeys.member(group.groupId, member.memberId), value: encodeMemberMetadata(member.metadata()) });
    }

    // Topic metadata: new partitions, deleted or (re)created topics change the hash.
    const hash = this.metadataHash(group);
    if (hash !== group.metadataHash) bump = true;
    if (bump) {
      this.rebalances++;
      group.groupEpoch = Math.max(group.groupEpoch, group.assignmentEpoch) + 1;
      group.metadataHash = hash;
      records.push({ partition: group.partition, key: consumerKeys.group(group.groupId), value: encodeConsumerGroupMetadata(group.groupEpoch, hash) });
    }
    if (group.groupEpoch > group.assignmentEpoch) this.computeTarget(group, records);

    // Reconciliation.
    const owned = req.topicPartitions === null ? null : fromWire(req.topicPartitions);
    const epochBefore = member.memberEpoch;
    const assignedBefore = member.assigned;
    this.reconcile(group, member, owned, records);
    this.scheduleSession(group, member);

    // Also to a member that came at an older epoch (its last answer lost): it may not know what
    // that answer gave it, and without its owned partitions nothing else would tell it.
    const sendAssignment =
      req.memberEpoch === 0 || req.memberEpoch !== member.memberEpoch || member.memberEpoch !== epochBefore || !same(assignedBefore, member.assigned) ||
      (owned !== null && !same(owned, member.assigned));
    return {
      records,
      result: {
        error: 'NONE',
        errorMessage: null,
        memberId: member.memberId,
        memberEpoch: member.memberEpoch,
        heartbeatIntervalMs: interval,
        assignment: sendAssignment ? toWire(member.assigned) : null,
      },
    };
  }

  private leave(req: ConsumerHeartbeatRequest): { records: OffsetsRecord[]; result: ConsumerHeartbeatResult } {
    const group = this.groups.get(req.groupId);
    const answer = (records: OffsetsRecord[], error: ConsumerHeartbeatResult['error'] = 'NONE', message: string | null = null) => ({
      records,
      result: { error, errorMessage: message, memberId: req.memberId, memberEpoch: req.memberEpoch, heartbeatIntervalMs: 0, assignment: null },
    });
    let member = group?.members.get(req.memberId);
    if (!member && req.instanceId !== null) member = group?.staticMember(req.instanceId);
    if (!group || !member) return answer([], 'UNKNOWN_MEMBER_ID', `Member ${req.memberId} is not a member of group ${req.groupId}.`);
    if (req.instanceId !== null && member.memberId !== req.memberId) return answer([], 'FENCED_INSTANCE_ID' as GroupError, `Instance id ${req.instanceId} belongs to another member.`);
    const records: OffsetsRecord[] = [];
    if (req.memberEpoch === -2 && member.instanceId !== null) {
      // A static member announcing its return: it keeps its assignment (no rebalance) until its
      // session expires; its successor takes over with the same instance id. What it was revoking
      // is released now (a closing consumer gives up every partition), as Kafka clears it.
      member.memberEpoch = -2;
      member.pendingRevocation = new Map();
      if (member.state === MemberState.UNREVOKED_PARTITIONS) member.state = MemberState.STABLE;
      member.revocationTimer?.cancel();
      member.revocationTimer = null;
      records.push(this.currentRecord(group, member));
      this.scheduleSession(group, member);
      return answer(records);
    }
    this.fence(group, member, records);
    return answer(records);
  }

  /** Removes a member and bumps the group epoch (leave, session expiry, revocation timeout). */
  private fence(group: ConsumerGroup, member: ConsumerMember, records: OffsetsRecord[]): void {
    this.removeMember(group, member, records);
    group.target.delete(member.memberId);
    this.rebalances++;
    group.groupEpoch = Math.max(group.groupEpoch, group.assignmentEpoch) + 1;
    records.push({ partition: group.partition, key: consumerKeys.group(group.groupId), value: encodeConsumerGroupMetadata(group.groupEpoch, group.metadataHash) });
    if (group.members.size > 0) this.computeTarget(group, records);
  }

  private removeMember(group: ConsumerGroup, member: ConsumerMember, records: OffsetsRecord[]): void {
    member.sessionTimer?.cancel();
    member.revocationTimer?.cancel();
    member.sessionTimer = member.revocationTimer = null;
    group.members.delete(member.memberId);
    const g = group.groupId;
    const m = member.memberId;
    records.push(
      { partition: group.partition, key: consumerKeys.current(g, m), value: null },
      { partition: group.partition, key: consumerKeys.targetMember(g, m), value: null },
      { partition: group.partition, key: consumerKeys.member(g, m), value: null },
    );
  }

  private subscribedTopicIds(member: ConsumerMember): Set<string> {
    const out = new Set<string>();
    for (const name of member.subscribedTopicNames) {
      const t = this.o.topics.byName(name);
      if (t) out.add(normId(t.topicId));
    }
    if (member.subscribedTopicRegex !== null) {
      for (const name of this.regexMatches(member.subscribedTopicRegex) ?? []) {
        const t = this.o.topics.byName(name);
        if (t) out.add(normId(t.topicId));
      }
    }
    return out;
  }

  /**
   * The topic names (internal ones left out) a SubscribedTopicRegex matches as a whole name, or
   * null when matching them took longer than {@link REGEX_BUDGET_MS}. JavaScript's RegExp
   * backtracks (Kafka's RE2J is linear): `(a+)+` against a long name of `a`s would hold the event
   * loop for minutes, so matching runs in a vm script with a timeout, once per regex and set of names.
   */
  private regexMatches(regex: string): ReadonlySet<string> | null {
    const names = this.o.topics.names ? [...this.o.topics.names()].filter((n) => !n.startsWith('__')) : [];
    const key = names.join('\n');
    if (key !== this.regexNames || this.regexCache.size >= 1000) {
      this.regexCache.clear();
      this.regexNames = key;
    }
    const hit = this.regexCache.get(regex);
    if (hit !== undefined) return hit;
    let matched: Set<string> | null;
    try {
      const found = MATCH_SCRIPT.runInContext(createContext({ src: `^(?:${regex})$`, names }), { timeout: REGEX_BUDGET_MS }) as string[];
      matched = new Set(found);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw err;
      matched = null;
    }
    this.regexCache.set(regex, matched);
    return matched;
  }

  private metadataHash(group: ConsumerGroup): bigint {
    const ids = new Set<string>();
    for (const m of group.members.values()) for (const id of this.subscribedTopicIds(m)) ids.add(id);
    let h = 1469598103934665603n; // FNV-1a over "id:partitions;" of the subscribed topics, sorted
    for (const id of [...ids].sort()) {
      const s = `${id}:${this.o.topics.byId(id)?.partitions ?? 0};`;
      for (let i = 0; i < s.length; i++) h = BigInt.asIntN(64, (h ^ BigInt(s.charCodeAt(i))) * 1099511628211n);
    }
    return ids.size === 0 ? 0n : h;
  }

  /** The group's assignor: the one most members ask for, else the first configured (Kafka's rule). */
  private assignorOf(group: ConsumerGroup): Assignor {
    const votes = new Map<string, number>();
    for (const m of group.members.values()) if (m.serverAssignor !== null) votes.set(m.serverAssignor, (votes.get(m.serverAssignor) ?? 0) + 1);
    let name = this.o.config.assignors[0] ?? 'uniform';
    let best = 0;
    for (const [n, c] of votes) if (c > best) [name, best] = [n, c];
    return ASSIGNORS.find((a) => a.name === name) ?? ASSIGNORS[0]!;
  }

  assignorName(group: ConsumerGroup): string {
    return this.assignorOf(group).name;
  }

  private computeTarget(group: ConsumerGroup, records: OffsetsRecord[]): void {
    const members: AssignorMember[] = [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      topics: this.subscribedTopicIds(m),
      current: group.target.get(m.memberId) ?? new Map(),
    }));
    const result = this.assignorOf(group).assign(members, (id) => this.o.topics.byId(id)?.partitions ?? 0);
    for (const [memberId, a] of result) {
      const prev = group.target.get(memberId);
      if (prev && same(prev, a)) continue;
      group.target.set(memberId, a);
      records.push({ partition: group.partition, key: consumerKeys.targetMember(group.groupId, memberId), value: encodeTargetAssignmentMember(toWire(a)) });
    }
    group.assignmentEpoch = group.groupEpoch;
    records.push({ partition: group.partition, key: consumerKeys.targetMetadata(group.groupId), value: encodeTargetAssignmentMetadata(group.assignmentEpoch) });
  }

  private currentRecord(group: ConsumerGroup, m: ConsumerMember): OffsetsRecord {
    return {
      partition: group.partition,
      key: consumerKeys.current(group.groupId, m.memberId),
      value: encodeCurrentMemberAssignment({
        memberEpoch: m.memberEpoch,
        previousMemberEpoch: m.previousMemberEpoch,
        state: m.state,
        assignedPartitions: toWire(m.assigned),
        partitionsPendingRevocation: toWire(m.pendingRevocation),
      }),
    };
  }

  /**
   * Kafka's CurrentAssignmentBuilder: moves the member one step towards its target assignment.
   * `owned` is what the member reported owning (null: not reported in this heartbeat).
   */
  private reconcile(group: ConsumerGroup, m: ConsumerMember, owned: TopicAssignment | null, records: OffsetsRecord[]): void {
    const before = JSON.stringify([m.memberEpoch, m.previousMemberEpoch, m.state, toWire(m.assigned), toWire(m.pendingRevocation)]);
    const target = group.target.get(m.memberId) ?? new Map();
    const targetEpoch = group.assignmentEpoch;
    // Partitions of deleted topics are gone: nobody has to revoke them.
    const live = (a: TopicAssignment) => new Map([...a].filter(([t]) => this.o.topics.byId(t) !== undefined));
    m.assigned = live(m.assigned);
    m.pendingRevocation = live(m.pendingRevocation);
    if (m.state === MemberState.UNREVOKED_PARTITIONS) {
      // Still holding partitions it must give up: wait until its heartbeat no longer reports them.
      const stillOwned = owned === null || !isEmpty(intersect(owned, m.pendingRevocation));
      if (stillOwned && !isEmpty(m.pendingRevocation)) return this.afterReconcile(group, m, before, records);
      m.pendingRevocation = new Map();
      m.state = MemberState.STABLE;
    }
    if (m.state === MemberState.STABLE && m.memberEpoch === targetEpoch && same(m.assigned, target)) return this.afterReconcile(group, m, before, records);
    const keep = intersect(m.assigned, target);
    const revoke = minus(m.assigned, target);
    // Revoked only from a member that may still hold them: not from one that reports not owning
    // them, e.g. a (re)joining one (Kafka's ownsRevokedPartitions). A static successor inherits
    // its predecessor's partitions at epoch 0 and would otherwise be answered epoch 0.
    const mayOwn = owned === null || !isEmpty(intersect(owned, revoke));
    if (!isEmpty(revoke) && mayOwn) {
      m.assigned = keep;
      m.pendingRevocation = revoke;
      m.state = MemberState.UNREVOKED_PARTITIONS;
      return this.afterReconcile(group, m, before, records);
    }
    // Everything to revoke is revoked: take the target's epoch and the partitions that are free.
    const owners = group.owners();
    const next: TopicAssignment = new Map([...keep].map(([t, ps]) => [t, new Set(ps)]));
    let unreleased = false;
    for (const [t, ps] of minus(target, keep)) {
      for (const p of ps) {
        const o = owners.get(`${t}:${p}`);
        if (o !== undefined && o !== m.memberId) {
          unreleased = true;
          continue;
        }
        const s = next.get(t) ?? new Set<number>();
        s.add(p);
        next.set(t, s);
      }
    }
    if (m.memberEpoch !== targetEpoch) {
      m.previousMemberEpoch = m.memberEpoch;
      m.memberEpoch = targetEpoch;
    }
    m.assigned = next;
    m.state = unreleased ? MemberState.UNRELEASED_PARTITIONS : MemberState.STABLE;
    this.afterReconcile(group, m, before, records);
  }

  private afterReconcile(group: ConsumerGroup, m: ConsumerMember, before: string, records: OffsetsRecord[]): void {
    const after = JSON.stringify([m.memberEpoch, m.previousMemberEpoch, m.state, toWire(m.assigned), toWire(m.pendingRevocation)]);
    if (after !== before) records.push(this.currentRecord(group, m));
    if (m.state === MemberState.UNREVOKED_PARTITIONS) {
      if (m.revocationTimer === null) {
        // Kafka gives a member its rebalance timeout to revoke; past it, it is fenced.
        const epoch = m.memberEpoch;
        m.revocationTimer = this.o.clock.schedule(Math.max(m.rebalanceTimeoutMs, 0), () => {
          m.revocationTimer = null;
          if (group.members.get(m.memberId) !== m || m.state !== MemberState.UNREVOKED_PARTITIONS || m.memberEpoch !== epoch) return;
          const out: OffsetsRecord[] = [];
          this.fence(group, m, out);
          this.o.onRecords(out);
        });
      }
    } else {
      m.revocationTimer?.cancel();
      m.revocationTimer = null;
    }
  }

  private scheduleSession(group: ConsumerGroup, m: ConsumerMember): void {
    m.sessionTimer?.cancel();
    m.sessionTimer = this.o.clock.schedule(this.o.config.sessionTimeoutMs, () => {
      m.sessionTimer = null;
      if (group.members.get(m.memberId) !== m) return;
      const out: OffsetsRecord[] = [];
      this.fence(group, m, out);
      this.o.onRecords(out);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Offsets, admin

  /**
   * OffsetCommit/OffsetFetch against a consumer group (Kafka's ConsumerGroup.validateOffsetCommit):
   * the member must exist (UNKNOWN_MEMBER_ID) and send its current epoch (STALE_MEMBER_EPOCH);
   * generation/epoch −1 with no member id is an admin's commit, allowed only while the group is empty.
   */
  validateOffsetRequest(groupId: string, memberId: string, memberEpoch: number, commit: boolean): GroupError | ConsumerGroupError | null {
    const group = this.groups.get(groupId);
    if (!group) return null;
    if (memberEpoch < 0 && memberId === '') return commit && group.members.size > 0 ? 'UNKNOWN_MEMBER_ID' : null;
    const m = group.members.get(memberId);
    if (!m) return 'UNKNOWN_MEMBER_ID';
    if (memberEpoch !== m.memberEpoch) return 'STALE_MEMBER_EPOCH';
    return null;
  }

  /** Names of the topics its members subscribe to (offsets of other topics may expire). */
  subscribedTopicNames(groupId: string): Set<string> | null {
    const group = this.groups.get(groupId);
    if (!group || group.members.size === 0) return null;
    const out = new Set<string>();
    for (const m of group.members.values()) {
      for (const id of this.subscribedTopicIds(m)) {
        const t = this.o.topics.byId(id);
        if (t) out.add(t.name);
      }
    }
    return out;
  }

  describe(groupId: string): DescribedConsumerGroup {
    const err = this.o.check(groupId);
    const base = { errorMessage: null, groupId, groupState: 'Dead', groupEpoch: 0, assignmentEpoch: 0, assignorName: '', members: [] };
    if (err) return { ...base, error: err };
    const group = this.groups.get(groupId);
    if (!group) return { ...base, error: 'GROUP_ID_NOT_FOUND', errorMessage: `Group ${groupId} not found.` };
    const named = (a: TopicAssignment) =>
      toWire(a).map((t) => ({ topicId: t.topicId, topicName: this.o.topics.byId(t.topicId)?.name ?? '', partitions: t.partitions }));
    return {
      error: 'NONE',
      errorMessage: null,
      groupId,
      groupState: group.state,
      groupEpoch: group.groupEpoch,
      assignmentEpoch: group.assignmentEpoch,
      assignorName: this.assignorOf(group).name,
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        instanceId: m.instanceId,
        rackId: m.rackId,
        memberEpoch: m.memberEpoch,
        clientId: m.clientId,
        clientHost: m.clientHost,
        subscribedTopicNames: m.subscribedTopicNames,
        subscribedTopicRegex: m.subscribedTopicRegex,
        assignment: named(m.assigned),
        targetAssignment: named(group.target.get(m.memberId) ?? new Map()),
      })),
    };
  }

  /** DeleteGroups: an empty consumer group's records become tombstones (its offsets are the caller's). */
  delete(groupId: string): { error: GroupError | null; records: OffsetsRecord[] } {
    const group = this.groups.get(groupId);
    if (!group) return { error: null, records: [] };
    if (group.members.size > 0) return { error: 'NON_EMPTY_GROUP', records: [] };
    this.groups.delete(groupId);
    const p = group.partition;
    const records: OffsetsRecord[] = [];
    for (const memberId of group.target.keys()) records.push({ partition: p, key: consumerKeys.targetMember(groupId, memberId), value: null });
    records.push(
      { partition: p, key: consumerKeys.targetMetadata(groupId), value: null },
      { partition: p, key: consumerKeys.group(groupId), value: null },
    );
    return { error: 'NONE', records };
  }

  // -------------------------------------------------------------------------------------------
  // Loading

  /** Applies one record of types 3–8 (returns false for other keys). Later records win; null deletes. */
  replay(partition: number, key: Buffer, value: Buffer | null): boolean {
    const k = decodeConsumerKey(key);
    if (k === null) return false;
    let group = this.groups.get(k.group);
    if (k.type === 4) return true;
    if (k.type === 3 && value === null) {
      if (group) for (const m of group.members.values()) this.stopTimers(m);
      this.groups.delete(k.group);
      return true;
    }
    if (!group) {
      if (value === null) return true;
      group = new ConsumerGroup(k.group, partition);
      this.groups.set(k.group, group);
    }
    switch (k.type) {
      case 3: {
        const v = decodeConsumerGroupMetadata(value!);
        group.groupEpoch = v.epoch;
        group.metadataHash = v.metadataHash;
        break;
      }
      case 6:
        if (value !== null) group.assignmentEpoch = decodeTargetAssignmentMetadata(value).assignmentEpoch;
        break;
      case 5: {
        if (value === null) {
          const m = group.members.get(k.member);
          if (m) this.stopTimers(m);
          group.members.delete(k.member);
          break;
        }
        const v = decodeMemberMetadata(value);
        const m = group.members.get(k.member) ?? new ConsumerMember(k.member);
        Object.assign(m, { ...v, subscribedTopicNames: [...v.subscribedTopicNames] });
        group.members.set(k.member, m);
        break;
      }
      case 7:
        if (value === null) group.target.delete(k.member);
        else group.target.set(k.member, fromWire(decodeTargetAssignmentMember(value)));
        break;
      case 8: {
        if (value === null) break;
        const v = decodeCurrentMemberAssignment(value);
        const m = group.members.get(k.member) ?? new ConsumerMember(k.member);
        m.memberEpoch = v.memberEpoch;
        m.previousMemberEpoch = v.previousMemberEpoch;
        m.state = v.state;
        m.assigned = fromWire(v.assignedPartitions);
        m.pendingRevocation = fromWire(v.partitionsPendingRevocation);
        group.members.set(k.member, m);
        break;
      }
    }
    return true;
  }

  /** Members of a loaded partition start their session (and revocation) timers now, as Kafka does. */
  completeLoad(partition: number): void {
    this.loaded.add(partition);
    for (const group of this.groups.values()) {
      if (group.partition !== partition) continue;
      for (const m of group.members.values()) {
        this.scheduleSession(group, m);
        if (m.state === MemberState.UNREVOKED_PARTITIONS) this.afterReconcile(group, m, '', []);
      }
    }
  }

  unload(partition: number): void {
    this.loaded.delete(partition);
    for (const group of [...this.groups.values()]) {
      if (group.partition !== partition) continue;
      for (const m of group.members.values()) this.stopTimers(m);
      this.groups.delete(group.groupId);
    }
  }

  private stopTimers(m: ConsumerMember): void {
    m.sessionTimer?.cancel();
    m.revocationTimer?.cancel();
    m.sessionTimer = m.revocationTimer = null;
  }
}

/** A {@link TopicLookup} over a metadata snapshot source (the MetadataStore's `snapshot()`), read live. */
export function topicLookup(snapshot: () => { topics: ReadonlyMap<string, { name: string; topicId: string; partitions: readonly unknown[] }> }): TopicLookup {
  const image = (t: { name: string; topicId: string; partitions: readonly unknown[] }): TopicImage => ({ topicId: normId(t.topicId), name: t.name, partitions: t.partitions.length });
  return {
    byName: (name) => {
      const t = snapshot().topics.get(name);
      return t ? image(t) : undefined;
    },
    byId: (id) => {
      const want = normId(id);
      for (const t of snapshot().topics.values()) if (normId(t.topicId) === want) return image(t);
      return undefined;
    },
    names: () => snapshot().topics.keys(),
  };
}
