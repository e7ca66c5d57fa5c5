/**
 * The controller's decisions as pure functions: each takes the ClusterState it holds (the last
 * one it committed) and returns the ClusterChange to commit, or throws the MetadataError the
 * caller gets back. No I/O and no clocks here, so every rule is unit-tested on plain values; the
 * Controller class only times, fences and commits.
 *
 * Invariants these functions keep (docs/replication.md, "Rules the controller keeps"):
 * - A partition's leader is live, in its ISR and one of its replicas, or -1 (offline). The ISR is
 *   a subset of the replicas and is never empty: when its last live members are fenced they stay
 *   in it (they hold every acknowledged record), so only they, or an unclean election, bring the
 *   partition back.
 * - A new leader is the first replica, in assignment order, that is a live broker, in the ISR and
 *   not in controlled shutdown; with `unclean.leader.election.enable` (topic override, else the
 *   controller's config, dynamic broker configs included) and no such replica, the first live replica, with isr [it].
 * - Every change to a partition's leader or ISR bumps its `version`; a new leader bumps
 *   `leaderEpoch`. Going offline keeps the epoch, so whoever leads next leads with epoch + 1.
 * - A broker never joins an ISR by registering (its leader proposes it with alterPartition once
 *   it has caught up); it leads again only partitions that are offline with it in their ISR.
 * - A node id that is live belongs to the process (incarnation) that registered it.
 * - `coordinators` covers exactly the partitions of `__consumer_offsets` (empty before the topic
 *   is first created): live coordinators sorted by node id, partition p → coordinators[p % n]. An
 *   entry's `epoch` grows by one whenever its owner changes or its owner registers again (a new
 *   incarnation must reload the partition and fence its former self). With no live coordinator
 *   the map is left as it is: the owners are fenced, so nodes answer COORDINATOR_NOT_AVAILABLE.
 * - A coordinator epoch never goes down, since a broker refuses only *older* epochs: while the
 *   offsets topic is missing the map is kept as it is, and when the topic is (re)created, or
 *   grows, every partition without an entry starts one above the highest epoch in the map, every
 *   other partition of a recreated topic too. `__consumer_offsets` cannot be deleted (Kafka's rule).
 */
import { OFFSETS_TOPIC, OFFSETS_TOPIC_CONFIGS } from '@runnel/common';
import type {
  AlterPartitionResult, ClusterChange, ClusterState, CoordinatorAssignment, ElectionResult, NodeRole, PartitionState, ReassignmentInput,
  ReassignmentResult, StoredNode, TopicMetadata,
} from '@runnel/metadata';
import { MetadataError, checkDeletable, checkPartitionsPerRequest, validateAclBinding, validateTopicName, withAcls, withoutAcls, type AclBinding, type AclBindingFilter } from '@runnel/metadata';
import type { AlterPartitionRequest, CreateTopicRequest, RegisterNodeRequest } from '@runnel/rpc';
import { ControllerError } from './errors.ts';

/** What a node sends to register: the RPC request (the broker epoch is the controller's to give). */
export type RegistrationInput = RegisterNodeRequest;
export type { AlterPartitionRequest, CreateTopicRequest };

/** Inputs that are not part of the state: configuration and a topic id source. */
export interface Settings {
  offsetsPartitions: number;
  newTopicId: () => string;
  /** `offsets.topic.replication.factor` (default 1), capped at the live brokers when the topic is created. */
  offsetsReplicationFactor?: number;
  /**
   * `unclean.leader.election.enable` where a topic has no override (default false): a value, or
   * read from the state being decided on (the controller's dynamic broker configs over its static
   * one), so a change made with AlterConfigs applies at the next election.
   */
  uncleanLeaderElection?: boolean | ((state: ClusterState) => boolean);
}

// ------------------------------------------------------------------------------------ reading the state

/** Unfenced nodes with `role`, sorted by id. */
export function liveNodeIds(state: ClusterState, role: NodeRole): number[] {
  const ids: number[] = [];
  for (const node of state.nodes.values()) if (!node.fenced && node.roles.includes(role)) ids.push(node.nodeId);
  return ids.sort((a, b) => a - b);
}

/** A heartbeat's answer: true (register again) for an unknown node, a fenced one or an old incarnation. */
export function isFenced(state: ClusterState, nodeId: number, brokerEpoch: number): boolean {
  const node = state.nodes.get(nodeId);
  return node === undefined || node.fenced || node.brokerEpoch !== brokerEpoch;
}

export function isEmpty(change: ClusterChange): boolean {
  return change.clusterId === undefined && !change.nodes?.length && !change.topics?.length && !change.deleteTopics?.length && change.coordinators === undefined
    && !change.brokerConfigs?.length && change.acls === undefined;
}

// ------------------------------------------------------------------------------------ membership

/**
 * A node registers (first time, after being fenced, or as a restarted process). It gets the new
 * broker epoch; as a broker it leads again every offline partition with it in the ISR (see
 * `electOffline`), and it joins no ISR; as a coordinator it takes its share of the offsets
 * partitions (see `settle`). A node id that is live under another incarnation is refused with
 * DUPLICATE_BROKER_REGISTRATION (retriable: that process's session may expire); the same
 * incarnation registering again is accepted.
 */
export function registerNode(state: ClusterState, input: RegistrationInput, brokerEpoch: number, settings: Partial<Settings> = {}): ClusterChange {
  if (!Number.isInteger(input.nodeId) || input.nodeId < 0) throw new ControllerError('BAD_REQUEST', `node id must be a non-negative integer, got ${input.nodeId}`);
  if (input.roles.length === 0) throw new ControllerError('BAD_REQUEST', `node ${input.nodeId} registered with no roles`);
  const unknown = input.roles.filter((r) => r !== 'broker' && r !== 'coordinator');
  if (unknown.length > 0) throw new ControllerError('BAD_REQUEST', `node ${input.nodeId} registered with unknown role(s) ${unknown.join(', ')}`);
  refuseDuplicate(state, input);
  const incarnationId = input.incarnationId ?? '';
  const node: StoredNode = {
    nodeId: input.nodeId, host: input.host, port: input.port, rack: input.rack, brokerEpoch,
    roles: [...new Set(input.roles)].sort(), rpc: input.rpc, incarnationId, fenced: false,
    // Only when given, so registrations without listener names keep their old shape.
    ...(input.endpoints?.length ? { endpoints: input.endpoints } : {}),
  };
  // Registering ends a controlled shutdown: the new record has no `shuttingDown` mark, so the node
  // may lead and join ISRs again.
  const registered: ClusterChange = { nodes: [node] };
  return mergeChanges(registered, electOffline(applyChange(state, registered, state.version), settings));
}

/** DUPLICATE_BROKER_REGISTRATION (retriable) when the node id is live under another incarnation. */
export function refuseDuplicate(state: ClusterState, input: Pick<RegistrationInput, 'nodeId' | 'incarnationId'>): void {
  const incarnationId = input.incarnationId ?? '';
  const held = state.nodes.get(input.nodeId);
  if (held && !held.fenced && (held.incarnationId ?? '') !== incarnationId) {
    throw new MetadataError('DUPLICATE_BROKER_REGISTRATION',
      `node id ${input.nodeId} is held by a live process at ${held.host}:${held.port} (incarnation ${held.incarnationId || '?'}); this one (${incarnationId || '?'}) must wait for its session to expire`,
      { retriable: true });
  }
}

/**
 * Fences nodes the controller has not heard from. Each leaves every ISR it was in, except that an
 * ISR is never emptied (its last members stay: they hold every acknowledged record); partitions
 * they led get a new leader from the live ISR (epoch + 1), or an unclean one where allowed, or go
 * offline (leader -1, epoch kept).
 */
export function fenceNodes(state: ClusterState, nodeIds: Iterable<number>, settings: Partial<Settings> = {}): ClusterChange {
  const fenced = new Set<number>();
  const nodes: StoredNode[] = [];
  for (const id of nodeIds) {
    const node = state.nodes.get(id);
    if (!node || node.fenced || fenced.has(id)) continue;
    fenced.add(id);
    // A fenced node is out of every election anyway; its next registration starts clean.
    const { shuttingDown: _done, ...rest } = node;
    nodes.push({ ...rest, fenced: true });
  }
  if (nodes.length === 0) return {};
  const after = applyChange(state, { nodes }, state.version);
  const eligible = electable(after);
  const topics: ClusterChange['topics'] = [];
  for (const topic of state.topics.values()) {
    const unclean = uncleanAllowed(topic, state, settings);
    const updated = mapPartitions(topic, (p) => {
      const remaining = p.isr.filter((id) => !fenced.has(id));
      const isr = remaining.length > 0 ? remaining : p.isr;
      if (!fenced.has(p.leader)) return isr.length === p.isr.length ? p : { ...p, isr, version: p.version + 1 };
      return elect({ ...p, leader: -1, isr }, eligible, unclean) ?? { ...p, leader: -1, isr, version: p.version + 1 };
    });
    if (updated) topics.push({ topic: updated, previous: topic });
  }
  return { nodes, ...(topics.length > 0 ? { topics } : {}) };
}

/**
 * Leaders for offline partitions that can have one now: the first eligible ISR member, else (with
 * unclean election allowed) the first eligible replica with isr [it]. Run after every change
 * (`settle`): a broker that came back, a topic whose unclean setting changed.
 */
export function electOffline(state: ClusterState, settings: Partial<Settings> = {}): ClusterChange {
  const eligible = electable(state);
  const topics: ClusterChange['topics'] = [];
  for (const topic of state.topics.values()) {
    const unclean = uncleanAllowed(topic, state, settings);
    const updated = mapPartitions(topic, (p) => (p.leader === -1 ? elect(p, eligible, unclean) ?? p : p));
    if (updated) topics.push({ topic: updated, previous: topic });
  }
  return topics.length > 0 ? { topics } : {};
}

/**
 * Controlled shutdown (Kafka's ControlledShutdown / KRaft's wantShutDown): every partition the
 * node leads moves to the first other eligible ISR member (epoch + 1), and the node leaves every
 * ISR that has other members. `remaining` counts the partitions it still leads (no other in-sync
 * replica); they go offline when it is fenced. With none left it is fenced in the same change
 * (KRaft fences a broker whose controlled shutdown is done): it leads nothing and is in no ISR,
 * and a restarted process may register at once. A stale broker epoch (another incarnation, or a
 * fenced node) leads nothing under that epoch: no change, remaining 0.
 */
export function controlledShutdown(state: ClusterState, nodeId: number, brokerEpoch: number, settings: Partial<Settings> = {}): { change: ClusterChange; remaining: number } {
  if (isFenced(state, nodeId, brokerEpoch)) return { change: {}, remaining: 0 };
  const eligible = electable(state);
  eligible.delete(nodeId);
  let remaining = 0;
  const topics: ClusterChange['topics'] = [];
  for (const topic of state.topics.values()) {
    const updated = mapPartitions(topic, (p) => {
      if (!p.isr.includes(nodeId)) return p;
      const isr = p.isr.length > 1 ? p.isr.filter((id) => id !== nodeId) : p.isr;
      if (p.leader !== nodeId) return isr.length === p.isr.length ? p : { ...p, isr, version: p.version + 1 };
      const leader = p.replicas.find((id) => eligible.has(id) && isr.includes(id) && id !== nodeId);
      if (leader === undefined) {
        remaining++;
        return p;
      }
      return { ...p, leader, leaderEpoch: p.leaderEpoch + 1, isr, version: p.version + 1 };
    });
    if (updated) topics.push({ topic: updated, previous: topic });
  }
  // The mark is part of the node's stored record, so a controller that takes over honours it too.
  const node = state.nodes.get(nodeId)!;
  const marked: ClusterChange = node.shuttingDown ? {} : { nodes: [{ ...node, shuttingDown: true }] };
  const change: ClusterChange = { ...marked, ...(topics.length > 0 ? { topics } : {}) };
  if (remaining > 0) return { change, remaining };
  return { change: mergeChanges(change, fenceNodes(applyChange(state, change, state.version), [nodeId], settings)), remaining };
}

/** Same as fenceNodes for one node. */
export function fenceNode(state: ClusterState, nodeId: number): ClusterChange {
  return fenceNodes(state, [nodeId]);
}

/** Unfenced nodes whose last heartbeat is older than the session timeout. */
export function expiredNodes(state: ClusterState, lastSeen: ReadonlyMap<number, number>, now: number, sessionTimeoutMs: number): number[] {
  const out: number[] = [];
  for (const node of state.nodes.values()) {
    if (node.fenced) continue;
    const seen = lastSeen.get(node.nodeId);
    if (seen === undefined || now - seen > sessionTimeoutMs) out.push(node.nodeId);
  }
  return out.sort((a, b) => a - b);
}

// ------------------------------------------------------------------------------------ ISR changes and elections

/**
 * Kafka's AlterPartition: the leader proposes a new ISR, based on the state it holds. Refused
 * (with the committed state, never thrown) unless the caller is a live node with its current
 * broker epoch (STALE_BROKER_EPOCH), the partition exists (UNKNOWN_TOPIC_OR_PARTITION), the
 * caller leads it (NOT_LEADER_OR_FOLLOWER) under the request's epoch (FENCED_LEADER_EPOCH) and
 * version (INVALID_UPDATE_VERSION), and the ISR contains the leader, lists distinct replicas, and
 * adds only live brokers not shutting down (INELIGIBLE_REPLICA). The same ISR commits nothing.
 */
export function alterPartition(state: ClusterState, request: AlterPartitionRequest, settings: Partial<Settings> = {}): { change: ClusterChange; result: AlterPartitionResult } {
  const topic = state.topics.get(request.topic);
  const current = topic?.partitions[request.partition] ?? null;
  const refuse = (error: NonNullable<AlterPartitionResult['error']>) => ({ change: {}, result: { error, partition: current } });
  if (isFenced(state, request.nodeId, request.brokerEpoch)) return refuse('STALE_BROKER_EPOCH');
  if (!topic || !current) return refuse('UNKNOWN_TOPIC_OR_PARTITION');
  if (current.leader !== request.nodeId) return refuse('NOT_LEADER_OR_FOLLOWER');
  if (current.leaderEpoch !== request.leaderEpoch) return refuse('FENCED_LEADER_EPOCH');
  if (current.version !== request.version) return refuse('INVALID_UPDATE_VERSION');
  const isr = request.isr;
  const eligible = electable(state);
  const valid = isr.includes(current.leader) && new Set(isr).size === isr.length && isr.every((id) => current.replicas.includes(id))
    && isr.every((id) => current.isr.includes(id) || eligible.has(id));
  if (!valid) return refuse('INELIGIBLE_REPLICA');
  if (isr.length === current.isr.length && isr.every((id, i) => current.isr[i] === id)) return { change: {}, result: { error: null, partition: current } };
  const partition: PartitionState = { ...current, isr: [...isr], version: current.version + 1 };
  const updated = mapPartitions(topic, (p) => (p.partition === request.partition ? partition : p))!;
  return { change: { topics: [{ topic: updated, previous: topic }] }, result: { error: null, partition } };
}

/**
 * Kafka's ElectLeaders. Preferred: the first replica becomes leader if it is eligible and in the
 * ISR (ELECTION_NOT_NEEDED when it leads already, PREFERRED_LEADER_NOT_AVAILABLE otherwise).
 * Unclean: only offline partitions (ELECTION_NOT_NEEDED otherwise) get a leader, from the ISR if
 * one is live, else any live replica (ELIGIBLE_LEADERS_NOT_AVAILABLE when none). `partitions`
 * null means every partition, and then (as Kafka) partitions that need no election are left out.
 */
export function electLeaders(
  state: ClusterState, partitions: { topic: string; partition: number }[] | null, unclean: boolean, settings: Partial<Settings> = {},
): { change: ClusterChange; results: ElectionResult[] } {
  const eligible = electable(state);
  const all = partitions === null;
  const wanted = partitions ?? [...state.topics.values()].flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition })));
  const results: ElectionResult[] = [];
  const changed = new Map<string, TopicMetadata>();
  for (const { topic: name, partition } of wanted) {
    const topic = changed.get(name) ?? state.topics.get(name);
    const p = topic?.partitions[partition];
    const result = (error: ElectionResult['error'], message: string) => {
      if (!(all && error === 'ELECTION_NOT_NEEDED')) results.push({ topic: name, partition, error, message });
    };
    if (!topic || !p) {
      result('UNKNOWN_TOPIC_OR_PARTITION', `partition ${name}-${partition} does not exist`);
      continue;
    }
    let next: PartitionState | undefined;
    if (!unclean) {
      const preferred = p.replicas[0]!;
      if (p.leader === preferred) {
        result('ELECTION_NOT_NEEDED', `leader ${preferred} is already the preferred leader of ${name}-${partition}`);
        continue;
      }
      if (!eligible.has(preferred) || !p.isr.includes(preferred)) {
        result('PREFERRED_LEADER_NOT_AVAILABLE', `preferred leader ${preferred} of ${name}-${partition} is ${eligible.has(preferred) ? 'not in the ISR' : 'not live'}`);
        continue;
      }
      next = { ...p, leader: preferred, leaderEpoch: p.leaderEpoch + 1, version: p.version + 1 };
    } else {
      if (p.leader !== -1) {
        result('ELECTION_NOT_NEEDED', `${name}-${partition} has a leader (${p.leader})`);
        continue;
      }
      next = elect(p, eligible, true);
      if (!next) {
        result('ELIGIBLE_LEADERS_NOT_AVAILABLE', `no live replica of ${name}-${partition} (replicas ${p.replicas.join(',')})`);
        continue;
      }
    }
    changed.set(name, { ...topic, partitions: topic.partitions.map((q) => (q.partition === partition ? next! : q)) });
    result(null, '');
  }
  const topics = [...changed.values()].map((topic) => ({ topic, previous: state.topics.get(topic.name)! }));
  return { change: topics.length > 0 ? { topics } : {}, results };
}

/**
 * Kafka's auto leader rebalance (`auto.leader.rebalance.enable`): for each broker, the share of
 * the partitions it is the preferred leader of that someone else leads; above
 * `leader.imbalance.per.broker.percentage`, those whose preferred leader is eligible and in the
 * ISR move back to it (a preferred election each).
 */
export function rebalanceLeaders(state: ClusterState, imbalancePercentage: number, settings: Partial<Settings> = {}): ClusterChange {
  const preferredOf = new Map<number, { total: number; misplaced: { topic: string; partition: number }[] }>();
  for (const topic of state.topics.values()) {
    for (const p of topic.partitions) {
      const preferred = p.replicas[0]!;
      const entry = preferredOf.get(preferred) ?? { total: 0, misplaced: [] };
      entry.total++;
      if (p.leader !== preferred) entry.misplaced.push({ topic: topic.name, partition: p.partition });
      preferredOf.set(preferred, entry);
    }
  }
  const candidates: { topic: string; partition: number }[] = [];
  for (const { total, misplaced } of preferredOf.values()) {
    if (misplaced.length > 0 && (misplaced.length * 100) / total > imbalancePercentage) candidates.push(...misplaced);
  }
  if (candidates.length === 0) return {};
  return electLeaders(state, candidates, false, settings).change;
}

// ------------------------------------------------------------------------------------ reassignments

/**
 * Kafka's AlterPartitionReassignments (KIP-455). Starting a move sets `replicas` to the target
 * followed by the current replicas outside it, `addingReplicas` to the target's newcomers and
 * `removingReplicas` to the leavers; the newcomers follow the leader and are proposed into the
 * ISR like any follower, and `completeReassignments` finishes the move once every target replica
 * is in sync. A new target replaces a move in progress (computed from the replicas before it);
 * `replicas` null cancels it (back to the replicas before it, newcomers out of the ISR).
 */
export function alterReassignments(state: ClusterState, items: ReassignmentInput[], settings: Partial<Settings> = {}): { change: ClusterChange; results: ReassignmentResult[] } {
  const results: ReassignmentResult[] = [];
  const changed = new Map<string, TopicMetadata>();
  const eligible = electable(state);
  for (const item of items) {
    const result = (error: ReassignmentResult['error'], message = '') => results.push({ topic: item.topic, partition: item.partition, error, message });
    const topic = changed.get(item.topic) ?? state.topics.get(item.topic);
    const p = topic?.partitions[item.partition];
    if (!topic || !p) {
      result('UNKNOWN_TOPIC_OR_PARTITION', `partition ${item.topic}-${item.partition} does not exist`);
      continue;
    }
    const adding = p.addingReplicas ?? [];
    const original = p.replicas.filter((id) => !adding.includes(id));
    let next: PartitionState;
    if (item.replicas === null) {
      if (adding.length === 0 && (p.removingReplicas ?? []).length === 0) {
        result('NO_REASSIGNMENT_IN_PROGRESS', `no reassignment of ${item.topic}-${item.partition} is in progress`);
        continue;
      }
      next = moveTo(p, original, eligible);
    } else {
      const target = item.replicas;
      if (target.length === 0 || new Set(target).size !== target.length) {
        result('INVALID_REPLICA_ASSIGNMENT', `the replicas of ${item.topic}-${item.partition} must be distinct brokers, at least one`);
        continue;
      }
      const unknown = target.filter((id) => !state.nodes.get(id)?.roles.includes('broker'));
      if (unknown.length > 0) {
        result('INVALID_REPLICA_ASSIGNMENT', `Unknown broker(s) in replica assignment: ${unknown.join(', ')}.`);
        continue;
      }
      const back = moveTo(p, original, eligible);
      const joining = target.filter((id) => !original.includes(id));
      const leaving = original.filter((id) => !target.includes(id));
      next = joining.length === 0 && leaving.length === 0 && target.every((id, i) => original[i] === id)
        ? back
        : { ...back, replicas: [...target, ...leaving], addingReplicas: joining, removingReplicas: leaving, version: back.version === p.version ? p.version + 1 : back.version };
    }
    if (!samePartition(next, p)) changed.set(topic.name, { ...topic, partitions: topic.partitions.map((q) => (q.partition === p.partition ? next : q)) });
    result(null);
  }
  const topics = [...changed.values()].map((topic) => ({ topic, previous: state.topics.get(topic.name)! }));
  return { change: topics.length > 0 ? { topics } : {}, results };
}

/**
 * Finishes the moves whose target replicas are all in the ISR: `replicas` becomes the target, the
 * leavers leave the ISR, and a leader outside the target hands over to the first eligible target
 * replica in the ISR (epoch + 1); without one the move waits. Run after every change (`settle`).
 */
export function completeReassignments(state: ClusterState, settings: Partial<Settings> = {}): ClusterChange {
  const eligible = electable(state);
  const topics: ClusterChange['topics'] = [];
  for (const topic of state.topics.values()) {
    const updated = mapPartitions(topic, (p) => {
      const removing = p.removingReplicas ?? [];
      if ((p.addingReplicas ?? []).length === 0 && removing.length === 0) return p;
      const target = p.replicas.filter((id) => !removing.includes(id));
      if (!target.every((id) => p.isr.includes(id))) return p;
      const done: PartitionState = moveTo(p, target, eligible);
      return done.leader === -1 && p.leader !== -1 ? p : done;
    });
    if (updated) topics.push({ topic: updated, previous: topic });
  }
  return topics.length > 0 ? { topics } : {};
}

/**
 * `p` with `replicas` exactly these and no move in progress: the ISR keeps its members among them
 * (all of it if none is), and a leader outside them hands over to the first eligible one in the
 * ISR (epoch + 1), or -1 when there is none.
 */
function moveTo(p: PartitionState, replicas: number[], eligible: ReadonlySet<number>): PartitionState {
  const { addingReplicas: _a, removingReplicas: _r, ...rest } = p;
  const kept = p.isr.filter((id) => replicas.includes(id));
  const isr = kept.length > 0 ? kept : p.isr;
  let next: PartitionState = { ...rest, replicas: [...replicas], isr };
  if (p.leader !== -1 && !replicas.includes(p.leader)) {
    const leader = replicas.find((id) => eligible.has(id) && isr.includes(id));
    next = { ...next, leader: leader ?? -1, leaderEpoch: p.leaderEpoch + (leader === undefined ? 0 : 1) };
  }
  return samePartition(next, p) ? p : { ...next, version: p.version + 1 };
}

function samePartition(a: PartitionState, b: PartitionState): boolean {
  const list = (x?: number[]) => (x ?? []).join(',');
  return a.leader === b.leader && a.leaderEpoch === b.leaderEpoch && list(a.replicas) === list(b.replicas) && list(a.isr) === list(b.isr)
    && list(a.addingReplicas) === list(b.addingReplicas) && list(a.removingReplicas) === list(b.removingReplicas);
}

// ------------------------------------------------------------------------------------ coordinators and the offsets topic

/**
 * The coordinator map the state should have, or undefined when it already has it (or when it must
 * stay as it is: no offsets topic, or no live coordinator).
 * @param renewed a coordinator that just registered again: its partitions get a new epoch.
 * @param recreated the offsets topic in `state` is not the one the map was made for: every
 *   partition starts above every epoch in the map.
 */
export function assignCoordinators(state: ClusterState, renewed?: number, recreated = false): Map<number, CoordinatorAssignment> | undefined {
  const partitions = state.topics.get(OFFSETS_TOPIC)?.partitions.length ?? 0;
  const coordinators = liveNodeIds(state, 'coordinator');
  // No topic: keep the map (clearing it would let a recreated topic start its epochs at 0 again).
  if (partitions === 0 || coordinators.length === 0) return undefined;
  let highest = -1;
  for (const a of state.coordinators.values()) highest = Math.max(highest, a.epoch);
  const next = new Map<number, CoordinatorAssignment>();
  for (let p = 0; p < partitions; p++) {
    const owner = coordinators[p % coordinators.length]!;
    const previous = recreated ? undefined : state.coordinators.get(p);
    const epoch = previous === undefined ? highest + 1 : previous.nodeId !== owner || owner === renewed ? previous.epoch + 1 : previous.epoch;
    next.set(p, { nodeId: owner, epoch });
  }
  const same = next.size === state.coordinators.size
    && [...next].every(([p, a]) => state.coordinators.get(p)?.nodeId === a.nodeId && state.coordinators.get(p)?.epoch === a.epoch);
  return same ? undefined : next;
}

/**
 * Creates `__consumer_offsets` when it is missing, with `offsets.topic.replication.factor`
 * replicas spread as any topic, once that many brokers are live (brokers of a cluster start
 * together: the first to register must not get it alone). A live coordinator needs the topic at
 * once, so then it is created with the factor capped at the live brokers (Kafka refuses to create
 * it below the factor; the controller logs the cap).
 */
export function ensureOffsetsTopic(state: ClusterState, settings: Settings): ClusterChange {
  const brokers = liveNodeIds(state, 'broker');
  if (state.topics.has(OFFSETS_TOPIC) || brokers.length === 0) return {};
  const wanted = settings.offsetsReplicationFactor ?? 1;
  if (brokers.length < wanted && liveNodeIds(state, 'coordinator').length === 0) return {};
  const rf = Math.min(wanted, brokers.length);
  const assignments = placeReplicas(state, settings.offsetsPartitions, rf, 0, state.topics.size);
  const topic = newTopic(state, OFFSETS_TOPIC, settings.newTopicId(), true, { ...OFFSETS_TOPIC_CONFIGS }, assignments);
  return { topics: [{ topic, previous: null }] };
}

/**
 * Completes a change with what follows from it: the offsets topic once a broker is live, leaders
 * for offline partitions that can have one, and the coordinator map of the resulting state. Every change the controller commits goes through here.
 */
export function settle(state: ClusterState, change: ClusterChange, settings: Settings, renewed?: number): ClusterChange {
  let merged = mergeChanges(change, ensureOffsetsTopic(applyChange(state, change, state.version), settings));
  merged = mergeChanges(merged, electOffline(applyChange(state, merged, state.version), settings));
  merged = mergeChanges(merged, completeReassignments(applyChange(state, merged, state.version), settings));
  const after = applyChange(state, merged, state.version);
  const before = state.topics.get(OFFSETS_TOPIC);
  // The map was made for the topic `state` holds; a topic that appears (or is replaced) here is a new one.
  const recreated = after.topics.get(OFFSETS_TOPIC)?.topicId !== before?.topicId;
  const coordinators = assignCoordinators(after, renewed, recreated);
  return coordinators ? { ...merged, coordinators } : merged;
}

// ------------------------------------------------------------------------------------ topic operations (LocalStore's checks, Kafka's placement)

export function createTopic(state: ClusterState, request: CreateTopicRequest, topicId: string): { change: ClusterChange; topic: TopicMetadata } {
  validateTopicName(request.name);
  if (state.topics.has(request.name)) throw new MetadataError('TOPIC_ALREADY_EXISTS', `topic "${request.name}" already exists`);
  if (!Number.isInteger(request.partitions) || request.partitions < 1) {
    throw new MetadataError('INVALID_PARTITIONS', `number of partitions must be at least 1, got ${request.partitions}`);
  }
  const assignments = request.assignments.length > 0
    ? checkAssignments(state, request.assignments, request.partitions)
    : placeReplicas(state, request.partitions, request.replicationFactor, 0, state.topics.size);
  const topic = newTopic(state, request.name, topicId, request.internal || request.name.startsWith('__'), { ...request.configs }, assignments);
  return { change: { topics: [{ topic, previous: null }] }, topic };
}

export function deleteTopic(state: ClusterState, name: string): ClusterChange {
  checkDeletable(name);
  const topic = requireTopic(state, name);
  return { deleteTopics: [{ name, previous: topic }] };
}

export function createPartitions(state: ClusterState, name: string, totalCount: number, assignments: number[][]): { change: ClusterChange; topic: TopicMetadata } {
  const topic = requireTopic(state, name);
  const current = topic.partitions.length;
  if (!Number.isInteger(totalCount) || totalCount <= current) {
    throw new MetadataError('INVALID_PARTITIONS', `topic "${name}" has ${current} partitions; the new count must be larger, got ${totalCount}`);
  }
  const added = assignments.length > 0
    ? checkAssignments(state, assignments, totalCount - current)
    : placeReplicas(state, totalCount - current, topic.partitions[0]?.replicas.length ?? 1, current, existingStart(state, topic));
  const updated: TopicMetadata = { ...topic, partitions: [...topic.partitions, ...added.map((replicas, i) => newPartition(state, current + i, replicas))] };
  return { change: { topics: [{ topic: updated, previous: topic }] }, topic: updated };
}

export function alterTopicConfigs(state: ClusterState, name: string, set: Record<string, string>, remove: string[]): { change: ClusterChange; topic: TopicMetadata } {
  const topic = requireTopic(state, name);
  const configs = { ...topic.configs, ...set };
  for (const key of remove) delete configs[key];
  const updated = { ...topic, configs };
  return { change: { topics: [{ topic: updated, previous: topic }] }, topic: updated };
}

/**
 * Dynamic broker configs of node `nodeId` (null = the cluster-wide default): `set` over the ones
 * held, then `remove`. Names and values were validated by the node that took the request.
 */
export function alterBrokerConfigs(state: ClusterState, nodeId: number | null, set: Record<string, string>, remove: string[]): ClusterChange {
  if (nodeId !== null && (!Number.isInteger(nodeId) || nodeId < 0)) throw new ControllerError('BAD_REQUEST', `broker id must be a non-negative integer, got ${nodeId}`);
  const key = nodeId === null ? '' : String(nodeId);
  const configs = { ...state.brokerConfigs?.get(key), ...set };
  for (const name of remove) delete configs[name];
  return { brokerConfigs: [{ key, configs }] };
}

// ------------------------------------------------------------------------------------ ACLs

/** CreateAcls: the whole list with `bindings` added (each validated again: the controller keeps the invariants). */
export function createAcls(state: ClusterState, bindings: AclBinding[]): ClusterChange {
  for (const b of bindings) {
    const invalid = validateAclBinding(b);
    if (invalid !== null) throw new ControllerError('BAD_REQUEST', invalid);
  }
  const acls = withAcls(state.acls ?? [], bindings);
  return acls.length === (state.acls ?? []).length ? {} : { acls };
}

/** DeleteAcls: the list without what the filters match, and what each matched. */
export function deleteAcls(state: ClusterState, filters: AclBindingFilter[]): { change: ClusterChange; deleted: AclBinding[][] } {
  const { acls, deleted } = withoutAcls(state.acls ?? [], filters);
  return { change: deleted.some((d) => d.length > 0) ? { acls } : {}, deleted };
}

// ------------------------------------------------------------------------------------ applying and merging changes

/** The state after a committed change (what ControllerStore.load() would now return). */
export function applyChange(state: ClusterState, change: ClusterChange, version: number): ClusterState {
  const nodes = new Map(state.nodes);
  for (const node of change.nodes ?? []) nodes.set(node.nodeId, node);
  const topics = new Map(state.topics);
  for (const { topic } of change.topics ?? []) topics.set(topic.name, topic);
  for (const { name } of change.deleteTopics ?? []) topics.delete(name);
  return {
    clusterId: change.clusterId ?? state.clusterId,
    version,
    controllerEpoch: state.controllerEpoch,
    nodes,
    topics,
    coordinators: change.coordinators ? new Map(change.coordinators) : state.coordinators,
    ...brokerConfigsAfter(state, change),
    ...(change.acls ? { acls: change.acls } : state.acls ? { acls: state.acls } : {}),
  };
}

/** One change with the effect of `a` then `b` (a topic's `previous` stays the one `a` started from). */
export function mergeChanges(a: ClusterChange, b: ClusterChange): ClusterChange {
  if (isEmpty(b)) return a;
  if (isEmpty(a)) return b;
  const nodes = new Map<number, StoredNode>();
  for (const n of [...(a.nodes ?? []), ...(b.nodes ?? [])]) nodes.set(n.nodeId, n);
  const topics = new Map<string, { topic: TopicMetadata; previous: TopicMetadata | null }>();
  for (const t of a.topics ?? []) topics.set(t.topic.name, t);
  for (const t of b.topics ?? []) topics.set(t.topic.name, { topic: t.topic, previous: topics.get(t.topic.name)?.previous ?? t.previous });
  const deletes = new Map<string, { name: string; previous: TopicMetadata }>();
  for (const d of a.deleteTopics ?? []) deletes.set(d.name, d);
  for (const d of b.deleteTopics ?? []) {
    const earlier = topics.get(d.name);
    topics.delete(d.name);
    if (earlier === undefined) deletes.set(d.name, d);
    else if (earlier.previous !== null) deletes.set(d.name, { name: d.name, previous: earlier.previous });
  }
  for (const name of topics.keys()) deletes.delete(name);
  const out: ClusterChange = {};
  const clusterId = b.clusterId ?? a.clusterId;
  if (clusterId !== undefined) out.clusterId = clusterId;
  if (nodes.size > 0) out.nodes = [...nodes.values()];
  if (topics.size > 0) out.topics = [...topics.values()];
  if (deletes.size > 0) out.deleteTopics = [...deletes.values()];
  const coordinators = b.coordinators ?? a.coordinators;
  if (coordinators !== undefined) out.coordinators = coordinators;
  const brokerConfigs = new Map<string, { key: string; configs: Record<string, string> }>();
  for (const entry of [...(a.brokerConfigs ?? []), ...(b.brokerConfigs ?? [])]) brokerConfigs.set(entry.key, entry);
  if (brokerConfigs.size > 0) out.brokerConfigs = [...brokerConfigs.values()];
  const acls = b.acls ?? a.acls;
  if (acls !== undefined) out.acls = acls;
  return out;
}

/** `{ brokerConfigs }` after `change` (empty entries deleted), or nothing when neither holds any. */
function brokerConfigsAfter(state: ClusterState, change: ClusterChange): Pick<ClusterState, 'brokerConfigs'> {
  if (!change.brokerConfigs?.length) return state.brokerConfigs ? { brokerConfigs: state.brokerConfigs } : {};
  const brokerConfigs = new Map(state.brokerConfigs);
  for (const { key, configs } of change.brokerConfigs) {
    if (Object.keys(configs).length > 0) brokerConfigs.set(key, configs);
    else brokerConfigs.delete(key);
  }
  return { brokerConfigs };
}

// ------------------------------------------------------------------------------------ helpers

function requireTopic(state: ClusterState, name: string): TopicMetadata {
  const topic = state.topics.get(name);
  if (!topic) throw new MetadataError('UNKNOWN_TOPIC', `topic "${name}" does not exist`);
  return topic;
}

/** The topic with `f` applied to every partition, or undefined when no partition changed. */
function mapPartitions(topic: TopicMetadata, f: (p: PartitionState) => PartitionState): TopicMetadata | undefined {
  let changed = false;
  const partitions = topic.partitions.map((p) => {
    const q = f(p);
    if (q !== p) changed = true;
    return q;
  });
  return changed ? { ...topic, partitions } : undefined;
}

function newTopic(state: ClusterState, name: string, topicId: string, internal: boolean, configs: Record<string, string>, assignments: number[][]): TopicMetadata {
  return { name, topicId, internal, configs, partitions: assignments.map((replicas, p) => newPartition(state, p, replicas)) };
}

/**
 * A new partition: its ISR is its live replicas, led by the first of them. With none live it is
 * offline with isr = all replicas (it holds no record yet, so any of them may lead when it comes).
 */
function newPartition(state: ClusterState, partition: number, replicas: number[]): PartitionState {
  const live = new Set(liveNodeIds(state, 'broker'));
  const isr = replicas.filter((id) => live.has(id));
  return { partition, leader: isr[0] ?? -1, leaderEpoch: 0, replicas: [...replicas], isr: isr.length > 0 ? isr : [...replicas], version: 0 };
}

/** Brokers that may lead or join an ISR: registered as brokers, unfenced, not in controlled shutdown. */
function electable(state: ClusterState): Set<number> {
  const out = new Set<number>();
  for (const id of liveNodeIds(state, 'broker')) if (!state.nodes.get(id)!.shuttingDown) out.add(id);
  return out;
}

/** The topic's `unclean.leader.election.enable` override, else the controller's (Settings). */
function uncleanAllowed(topic: TopicMetadata, state: ClusterState, settings: Partial<Settings>): boolean {
  const override = topic.configs['unclean.leader.election.enable'];
  if (override !== undefined) return override.trim().toLowerCase() === 'true';
  const setting = settings.uncleanLeaderElection;
  return typeof setting === 'function' ? setting(state) : setting ?? false;
}

/**
 * A new leader for `p` (its current leader is ignored): the first replica in the ISR that is
 * eligible, or with `unclean` the first eligible replica (isr [it]: nothing else is known to be in
 * sync with it). The ISR keeps its members that are eligible. Undefined when nobody can lead.
 */
function elect(p: PartitionState, eligible: ReadonlySet<number>, unclean: boolean): PartitionState | undefined {
  const clean = p.replicas.find((id) => eligible.has(id) && p.isr.includes(id));
  if (clean !== undefined) {
    const isr = p.isr.filter((id) => eligible.has(id));
    return { ...p, leader: clean, leaderEpoch: p.leaderEpoch + 1, isr, version: p.version + 1 };
  }
  if (!unclean) return undefined;
  const any = p.replicas.find((id) => eligible.has(id));
  return any === undefined ? undefined : { ...p, leader: any, leaderEpoch: p.leaderEpoch + 1, isr: [any], version: p.version + 1 };
}

/**
 * Kafka's placement (AdminUtils.assignReplicasToBrokers) with a fixed start index instead of a
 * random one: partition p's first replica is brokers[(p + start) % n], the others follow at a
 * shift that grows by one every n partitions, so both replicas and preferred leaders spread
 * evenly. When every live broker has a rack, the list is rack-alternated first and each replica
 * goes to a rack (then a broker) that has none of the partition's replicas yet, while one remains.
 */
function placeReplicas(state: ClusterState, partitions: number, replicationFactor: number, firstPartition: number, start: number): number[][] {
  checkPartitionsPerRequest(partitions); // before the arrays below are built
  if (!Number.isInteger(replicationFactor) || replicationFactor < 1) {
    throw new MetadataError('INVALID_REPLICATION_FACTOR', 'Replication factor must be larger than 0.');
  }
  const live = liveNodeIds(state, 'broker');
  if (replicationFactor > live.length) {
    throw new MetadataError('INVALID_REPLICATION_FACTOR', `Replication factor: ${replicationFactor} larger than available brokers: ${live.length}.`);
  }
  const racks = new Map<number, string>();
  for (const id of live) {
    const rack = state.nodes.get(id)!.rack;
    if (rack !== null && rack !== '') racks.set(id, rack);
  }
  const rackAware = racks.size === live.length;
  const brokers = rackAware ? rackAlternated(racks) : live;
  const n = brokers.length;
  const rackCount = new Set(racks.values()).size;
  const out: number[][] = [];
  let shift = start;
  for (let p = firstPartition; p < firstPartition + partitions; p++) {
    if (p > 0 && p % n === 0) shift++;
    const first = (p + start) % n;
    const replicas = [brokers[first]!];
    if (!rackAware) {
      for (let j = 0; j < replicationFactor - 1; j++) replicas.push(brokers[replicaIndex(first, shift, j, n)]!);
    } else {
      const usedRacks = new Set([racks.get(brokers[first]!)]);
      const used = new Set([brokers[first]!]);
      let k = 0;
      while (replicas.length < replicationFactor) {
        const broker = brokers[replicaIndex(first, shift * rackCount, k++, n)]!;
        const rack = racks.get(broker)!;
        if ((!usedRacks.has(rack) || usedRacks.size === rackCount) && (!used.has(broker) || used.size === n)) {
          replicas.push(broker);
          usedRacks.add(rack);
          used.add(broker);
        }
      }
    }
    out.push(replicas);
  }
  return out;
}

function replicaIndex(first: number, shift: number, j: number, n: number): number {
  return (first + 1 + ((shift + j) % (n - 1))) % n;
}

/** Kafka's rack-alternated broker list: racks sorted, one broker of each in turn (brokers sorted within a rack). */
function rackAlternated(racks: ReadonlyMap<number, string>): number[] {
  const byRack = new Map<string, number[]>();
  for (const [id, rack] of [...racks].sort((a, b) => a[0] - b[0])) byRack.set(rack, [...(byRack.get(rack) ?? []), id]);
  const names = [...byRack.keys()].sort();
  const out: number[] = [];
  for (let i = 0; out.length < racks.size; i++) {
    const next = byRack.get(names[i % names.length]!)!.shift();
    if (next !== undefined) out.push(next);
  }
  return out;
}

/** Where added partitions continue (Kafka's createPartitions): the index of the broker leading the existing partition 0's preferred replica. */
function existingStart(state: ClusterState, topic: TopicMetadata): number {
  const first = topic.partitions[0]?.replicas[0];
  const live = liveNodeIds(state, 'broker');
  return first === undefined ? 0 : Math.max(0, live.findIndex((id) => id >= first));
}

/** Explicit assignments: LocalStore's shape check and brokers that exist (any replication factor). */
function checkAssignments(state: ClusterState, assignments: number[][], expected: number): number[][] {
  checkPartitionsPerRequest(assignments.length);
  if (assignments.length !== expected || assignments.some((r) => r.length === 0 || new Set(r).size !== r.length)) {
    throw new MetadataError('INVALID_REPLICA_ASSIGNMENT', `replica assignment must list ${expected} partition(s), each with distinct brokers`);
  }
  const unknown = [...new Set(assignments.flat())].filter((id) => !state.nodes.get(id)?.roles.includes('broker')).sort((a, b) => a - b);
  if (unknown.length > 0) throw new MetadataError('INVALID_REPLICA_ASSIGNMENT', `Unknown broker(s) in replica assignment: ${unknown.join(', ')}.`);
  return assignments;
}
