import type { Timer } from './clock.ts';
import { subscribedTopics } from './subscription.ts';

/**
 * A classic consumer group and its members, as data plus the small rules that only look at one
 * group. The timers, records and responses live in GroupCoordinator; this file has no I/O.
 *
 * States and transitions (Kafka's GroupMetadata):
 *
 * ```text
 *            join                    all joined / rebalance timeout         leader SyncGroup stored
 *   Empty ───────► PreparingRebalance ─────────────────────► CompletingRebalance ───────► Stable
 *     ▲                 ▲   │ (no members left)                  │                       │
 *     └─────────────────┼───┘                                    │ join/leave/expiry     │ join/leave/expiry
 *                       └────────────────────────────────────────┴───────────────────────┘
 *   Empty ──(DeleteGroups, all offsets expired, partition unloaded)──► Dead   (any state → Dead on unload)
 * ```
 */
export const GroupState = {
  Empty: 'Empty',
  PreparingRebalance: 'PreparingRebalance',
  CompletingRebalance: 'CompletingRebalance',
  Stable: 'Stable',
  Dead: 'Dead',
} as const;
export type GroupState = (typeof GroupState)[keyof typeof GroupState];

const validPrevious: Record<GroupState, readonly GroupState[]> = {
  Empty: ['PreparingRebalance'],
  PreparingRebalance: ['Stable', 'CompletingRebalance', 'Empty'],
  CompletingRebalance: ['PreparingRebalance'],
  Stable: ['CompletingRebalance'],
  Dead: ['Stable', 'PreparingRebalance', 'CompletingRebalance', 'Empty', 'Dead'],
};

/** Kafka's error names, the closed set the state machine answers with. Handlers map them to codes. */
export type GroupError =
  | 'NONE'
  | 'UNKNOWN_SERVER_ERROR'
  | 'OFFSET_METADATA_TOO_LARGE'
  | 'COORDINATOR_LOAD_IN_PROGRESS'
  | 'COORDINATOR_NOT_AVAILABLE'
  | 'NOT_COORDINATOR'
  | 'ILLEGAL_GENERATION'
  | 'INCONSISTENT_GROUP_PROTOCOL'
  | 'INVALID_GROUP_ID'
  | 'UNKNOWN_MEMBER_ID'
  | 'INVALID_SESSION_TIMEOUT'
  | 'REBALANCE_IN_PROGRESS'
  | 'NON_EMPTY_GROUP'
  | 'GROUP_ID_NOT_FOUND'
  | 'MEMBER_ID_REQUIRED'
  | 'GROUP_MAX_SIZE_REACHED'
  | 'FENCED_INSTANCE_ID'
  | 'GROUP_SUBSCRIBED_TO_TOPIC'
  // Transactional offsets (TxnOffsetCommit, OffsetFetch requireStable).
  | 'UNSTABLE_OFFSET_COMMIT'
  | 'INVALID_PRODUCER_EPOCH'
  | 'PRODUCER_FENCED';

export interface Protocol {
  readonly name: string;
  readonly metadata: Buffer;
}

export interface JoinGroupResult {
  readonly error: GroupError;
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly leader: string;
  readonly memberId: string;
  /** Non-empty only for the leader: every member with its metadata for the chosen protocol. */
  readonly members: readonly { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
  /** JoinGroup v9+ (KIP-814): the leader must not run the assignment (a restarted static leader of a Stable group). */
  readonly skipAssignment?: boolean;
}

export interface SyncGroupResult {
  readonly error: GroupError;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly assignment: Buffer;
}

export const EMPTY = Buffer.alloc(0);

export function joinError(memberId: string, error: GroupError): JoinGroupResult {
  return { error, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId, members: [] };
}

export function syncError(error: GroupError): SyncGroupResult {
  return { error, protocolType: null, protocolName: null, assignment: EMPTY };
}

/** Who a member is and what it asked for when it joined (JoinGroup's fields, and replay's). */
export interface MemberIdentity {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  /** JoinGroup v0 has none: pass the session timeout. */
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
}

export class Member {
  memberId: string;
  readonly groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
  assignment: Buffer = EMPTY;
  lastHeartbeatMs: number;
  /** Joined but never completed a join: expires after the new-member join timeout, not the session. */
  isNew = false;
  joinWaiter: ((r: JoinGroupResult) => void) | null = null;
  syncWaiter: ((r: SyncGroupResult) => void) | null = null;
  heartbeatTimer: Timer | null = null;

  constructor(init: MemberIdentity & { now: number }) {
    this.memberId = init.memberId;
    this.groupInstanceId = init.groupInstanceId;
    this.clientId = init.clientId;
    this.clientHost = init.clientHost;
    this.sessionTimeoutMs = init.sessionTimeoutMs;
    this.rebalanceTimeoutMs = init.rebalanceTimeoutMs;
    this.protocolType = init.protocolType;
    this.protocols = init.protocols;
    this.lastHeartbeatMs = init.now;
  }

  get isAwaitingJoin(): boolean {
    return this.joinWaiter !== null;
  }

  get isAwaitingSync(): boolean {
    return this.syncWaiter !== null;
  }

  metadataFor(protocol: string): Buffer {
    const p = this.protocols.find((x) => x.name === protocol);
    if (!p) throw new Error(`member ${this.memberId} does not support protocol ${protocol}`);
    return p.metadata;
  }

  /** Same protocol names and metadata, in the same order (Kafka's MemberMetadata.matches). */
  matches(protocols: readonly Protocol[]): boolean {
    if (protocols.length !== this.protocols.length) return false;
    return protocols.every((p, i) => p.name === this.protocols[i]!.name && p.metadata.equals(this.protocols[i]!.metadata));
  }

  /** Kafka's "vote": this member's first preference among the candidates. */
  vote(candidates: ReadonlySet<string>): string {
    const p = this.protocols.find((x) => candidates.has(x.name));
    if (!p) throw new Error(`member ${this.memberId} supports none of the candidate protocols`);
    return p.name;
  }

  resolveJoin(r: JoinGroupResult): boolean {
    const w = this.joinWaiter;
    if (!w) return false;
    this.joinWaiter = null;
    w(r);
    return true;
  }

  resolveSync(r: SyncGroupResult): boolean {
    const w = this.syncWaiter;
    if (!w) return false;
    this.syncWaiter = null;
    w(r);
    return true;
  }
}

export interface CommittedOffset {
  readonly offset: bigint;
  readonly leaderEpoch: number;
  readonly metadata: string;
  readonly commitTimestamp: number;
  /** -1: expires by the group's retention rules; otherwise the explicit expiry (OffsetCommit v2–4). */
  readonly expireTimestamp: number;
}

export class Group {
  readonly groupId: string;
  /** The `__consumer_offsets` partition that owns this group. */
  readonly partition: number;
  state: GroupState;
  protocolType: string | null = null;
  protocolName: string | null = null;
  generationId = 0;
  leaderId: string | null = null;
  readonly members = new Map<string, Member>();
  /** groupInstanceId → memberId, for static members. */
  readonly staticMembers = new Map<string, string>();
  /** Member ids handed out with MEMBER_ID_REQUIRED that have not joined yet, with their expiry timers. */
  readonly pendingMembers = new Map<string, Timer>();
  /** Members of the current generation that have not sent SyncGroup yet. */
  readonly pendingSyncMembers = new Set<string>();
  /** During an initial (delayed) join: a member joined since the last delay, so the delay may extend. */
  newMemberAdded = false;
  currentStateTimestamp: number | null;
  /** Committed offsets by `topic\0partition`. */
  readonly offsets = new Map<string, CommittedOffset & { topic: string; partition: number }>();
  /**
   * Commits appended but not yet durable, by `topic\0partition` (count of commits in flight).
   * Expiry leaves these partitions alone; a delete drops the entry so the late commit is not applied.
   */
  readonly pendingOffsetCommits = new Map<string, number>();
  joinTimer: Timer | null = null;
  /** The running join timer is the initial delay of a new group: it completes only when it fires. */
  joinIsInitial = false;
  syncTimer: Timer | null = null;

  constructor(groupId: string, partition: number, state: GroupState, now: number) {
    this.groupId = groupId;
    this.partition = partition;
    this.state = state;
    this.currentStateTimestamp = now;
  }

  is(state: GroupState): boolean {
    return this.state === state;
  }

  transitionTo(state: GroupState, now: number): void {
    if (!validPrevious[state].includes(this.state)) {
      throw new Error(`group ${this.groupId}: illegal transition ${this.state} → ${state}`);
    }
    this.state = state;
    this.currentStateTimestamp = now;
  }

  get canRebalance(): boolean {
    return this.state === 'Stable' || this.state === 'CompletingRebalance' || this.state === 'Empty';
  }

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  isLeader(memberId: string): boolean {
    return this.leaderId === memberId;
  }

  /** The memberId currently registered for a static instance, or undefined. */
  staticMemberId(groupInstanceId: string): string | undefined {
    return this.staticMembers.get(groupInstanceId);
  }

  add(member: Member): void {
    if (this.members.size === 0) this.protocolType = member.protocolType;
    this.members.set(member.memberId, member);
    if (member.groupInstanceId !== null) this.staticMembers.set(member.groupInstanceId, member.memberId);
    if (this.leaderId === null) this.leaderId = member.memberId;
  }

  remove(memberId: string): Member | undefined {
    const member = this.members.get(memberId);
    if (!member) return undefined;
    this.members.delete(memberId);
    this.pendingSyncMembers.delete(memberId);
    if (member.groupInstanceId !== null && this.staticMembers.get(member.groupInstanceId) === memberId) {
      this.staticMembers.delete(member.groupInstanceId);
    }
    if (this.leaderId === memberId) this.leaderId = this.members.keys().next().value ?? null;
    return member;
  }

  /** Moves a static member to a new member id, fencing whoever waits on the old one. */
  replaceStaticMember(groupInstanceId: string, oldMemberId: string, newMemberId: string): Member {
    const member = this.members.get(oldMemberId);
    if (!member) throw new Error(`static member ${groupInstanceId} has no member ${oldMemberId}`);
    member.resolveJoin(joinError(oldMemberId, 'FENCED_INSTANCE_ID'));
    member.resolveSync(syncError('FENCED_INSTANCE_ID'));
    this.members.delete(oldMemberId);
    member.memberId = newMemberId;
    this.members.set(newMemberId, member);
    if (this.leaderId === oldMemberId) this.leaderId = newMemberId;
    if (this.pendingSyncMembers.delete(oldMemberId)) this.pendingSyncMembers.add(newMemberId);
    this.staticMembers.set(groupInstanceId, newMemberId);
    return member;
  }

  get numAwaitingJoin(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.isAwaitingJoin) n++;
    return n;
  }

  hasAllMembersJoined(): boolean {
    return this.members.size === this.numAwaitingJoin && this.pendingMembers.size === 0;
  }

  notYetRejoined(): Member[] {
    return [...this.members.values()].filter((m) => !m.isAwaitingJoin);
  }

  /** The max rebalance timeout of the members: how long a rebalance waits for rejoins. */
  get rebalanceTimeoutMs(): number {
    let max = 0;
    for (const m of this.members.values()) max = Math.max(max, m.rebalanceTimeoutMs);
    return max;
  }

  /** Protocols that every member supports. */
  candidateProtocols(): Set<string> {
    const counts = new Map<string, number>();
    for (const m of this.members.values()) for (const p of m.protocols) counts.set(p.name, (counts.get(p.name) ?? 0) + 1);
    return new Set([...counts].filter(([, n]) => n === this.members.size).map(([name]) => name));
  }

  /**
   * Whether a member with these protocols may be in this group: an empty group takes any
   * non-empty list with a protocol type; otherwise the type must match and at least one of the
   * protocols must be supported by every current member.
   */
  supportsProtocols(protocolType: string, protocols: readonly Protocol[]): boolean {
    if (this.members.size === 0) return protocolType !== '' && protocols.length > 0;
    if (this.protocolType !== protocolType) return false;
    const candidates = this.candidateProtocols();
    return protocols.some((p) => candidates.has(p.name));
  }

  /**
   * Majority vote over each member's first preference among the common protocols. Ties go to the
   * protocol that comes first in the leader's (or first member's) preference order, which keeps the
   * choice deterministic.
   */
  selectProtocol(): string {
    const candidates = this.candidateProtocols();
    if (candidates.size === 0) throw new Error(`group ${this.groupId}: no protocol supported by all members`);
    const votes = new Map<string, number>();
    for (const m of this.members.values()) {
      const v = m.vote(candidates);
      votes.set(v, (votes.get(v) ?? 0) + 1);
    }
    const tieOrder = (this.leaderId ? this.members.get(this.leaderId) : undefined) ?? this.members.values().next().value!;
    let best: string | null = null;
    let bestVotes = -1;
    for (const p of tieOrder.protocols) {
      const n = votes.get(p.name) ?? -1;
      if (n > bestVotes) {
        best = p.name;
        bestVotes = n;
      }
    }
    return best!;
  }

  /** Keeps the leader if it rejoined; otherwise picks any member that did. False when nobody rejoined. */
  maybeElectNewJoinedLeader(): boolean {
    if (this.leaderId !== null) {
      const leader = this.members.get(this.leaderId);
      if (leader?.isAwaitingJoin) return true;
    }
    for (const m of this.members.values()) {
      if (m.isAwaitingJoin) {
        this.leaderId = m.memberId;
        return true;
      }
    }
    return false;
  }

  initNextGeneration(now: number): void {
    this.generationId += 1;
    if (this.members.size > 0) {
      this.protocolName = this.selectProtocol();
      this.transitionTo('CompletingRebalance', now);
      this.pendingSyncMembers.clear();
      for (const id of this.members.keys()) this.pendingSyncMembers.add(id);
    } else {
      this.protocolName = null;
      this.transitionTo('Empty', now);
    }
  }

  currentMemberMetadata(): { memberId: string; groupInstanceId: string | null; metadata: Buffer }[] {
    const protocol = this.protocolName;
    if (protocol === null) return [];
    return [...this.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.metadataFor(protocol),
    }));
  }

  /**
   * The topics all members subscribe to, parsed from their "consumer" subscriptions for the chosen
   * protocol; null when unknown (not a consumer group, no protocol yet, or unparseable bytes).
   */
  subscribedTopics(): Set<string> | null {
    if (this.protocolType !== 'consumer' || this.protocolName === null) return null;
    const all = new Set<string>();
    for (const m of this.members.values()) {
      const p = m.protocols.find((x) => x.name === this.protocolName);
      if (!p) return null;
      const topics = subscribedTopics(p.metadata);
      if (topics === null) return null;
      for (const t of topics) all.add(t);
    }
    return all;
  }

  isSubscribedToTopic(topic: string): boolean {
    // Unknown subscriptions count as subscribed: safer for OffsetDelete (Kafka does the same).
    return this.subscribedTopics()?.has(topic) ?? true;
  }
}

export const offsetKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;
