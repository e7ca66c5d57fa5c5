/**
 * The controller's decisions as pure functions: each takes the ClusterState it holds (the last
 * one it committed) and returns the ClusterChange to commit, or throws the MetadataError the
 * caller gets back. No I/O and no clocks here, so every rule is unit-tested on plain values; the
 * Controller class only times, fences and commits.
 *
 * Invariants these functions keep (replication is not built: every cluster topic has RF 1):
 * - A partition led by a live broker has `isr = [leader]`; a partition whose broker is fenced has
 *   `leader = -1, isr = []` and keeps its replica list (the broker's disk still holds it).
 * - Every change to a partition's leader or ISR bumps its `version`; a new leader bumps
 *   `leaderEpoch`. Going offline keeps the epoch, so the broker that comes back leads with
 *   the epoch it had + 1.
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
import type { ClusterChange, ClusterState, CoordinatorAssignment, NodeRole, PartitionState, StoredNode, TopicMetadata } from '@runnel/metadata';
import { MetadataError, assignReplicas, checkDeletable, validateTopicName } from '@runnel/metadata';
import type { CreateTopicRequest, RegisterNodeRequest } from '@runnel/rpc';
import { ControllerError } from './errors.ts';

/** What a node sends to register: the RPC request (the broker epoch is the controller's to give). */
export type RegistrationInput = RegisterNodeRequest;
export type { CreateTopicRequest };


/** Inputs that are not part of the state: the configured offsets topic size and a topic id source. */
export interface Settings {
  offsetsPartitions: number;
  newTopicId: () => string;
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
  return change.clusterId === undefined && !change.nodes?.length && !change.topics?.length && !change.deleteTopics?.length && change.coordinators === undefined;
}

// ------------------------------------------------------------------------------------ membership

/**
 * A node registers (first time, after being fenced, or as a restarted process). It gets the new
 * broker epoch; as a broker it leads again every offline partition it holds (leaderEpoch + 1,
 * isr [it]); as a coordinator it takes its share of the offsets partitions (see `settle`).
 */
export function registerNode(state: ClusterState, input: RegistrationInput, brokerEpoch: number): ClusterChange {
  if (!Number.isInteger(input.nodeId) || input.nodeId < 0) throw new ControllerError('BAD_REQUEST', `node id must be a non-negative integer, got ${input.nodeId}`);
  if (input.roles.length === 0) throw new ControllerError('BAD_REQUEST', `node ${input.nodeId} registered with no roles`);
  const unknown = input.roles.filter((r) => r !== 'broker' && r !== 'coordinator');
  if (unknown.length > 0) throw new ControllerError('BAD_REQUEST', `node ${input.nodeId} registered with unknown role(s) ${unknown.join(', ')}`);
  const node: StoredNode = {
    nodeId: input.nodeId, host: input.host, port: input.port, rack: input.rack, brokerEpoch,
    roles: [...new Set(input.roles)].sort(), rpc: input.rpc, fenced: false,
    // Only when given, so registrations without listener names keep their old shape.
    ...(input.endpoints?.length ? { endpoints: input.endpoints } : {}),
  };
  const topics: ClusterChange['topics'] = [];
  if (node.roles.includes('broker')) {
    for (const topic of state.topics.values()) {
      const updated = mapPartitions(topic, (p) => (p.leader === -1 && p.replicas.includes(node.nodeId)
        ? { ...p, leader: node.nodeId, leaderEpoch: p.leaderEpoch + 1, isr: [node.nodeId], version: p.version + 1 }
        : p));
      if (updated) topics.push({ topic: updated, previous: topic });
    }
  }
  return { nodes: [node], ...(topics.length > 0 ? { topics } : {}) };
}

/** Fences nodes the controller has not heard from: their partitions go offline (leader -1, isr []). */
export function fenceNodes(state: ClusterState, nodeIds: Iterable<number>): ClusterChange {
  const fenced = new Set<number>();
  const nodes: StoredNode[] = [];
  for (const id of nodeIds) {
    const node = state.nodes.get(id);
    if (!node || node.fenced || fenced.has(id)) continue;
    fenced.add(id);
    nodes.push({ ...node, fenced: true });
  }
  if (nodes.length === 0) return {};
  const topics: ClusterChange['topics'] = [];
  for (const topic of state.topics.values()) {
    const updated = mapPartitions(topic, (p) => {
      const leaderGone = fenced.has(p.leader);
      const isr = p.isr.filter((id) => !fenced.has(id));
      if (!leaderGone && isr.length === p.isr.length) return p;
      return { ...p, leader: leaderGone ? -1 : p.leader, isr: leaderGone ? [] : isr, version: p.version + 1 };
    });
    if (updated) topics.push({ topic: updated, previous: topic });
  }
  return { nodes, ...(topics.length > 0 ? { topics } : {}) };
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

/** Creates `__consumer_offsets` (RF 1, round-robin over live brokers) once a broker is live and it is missing. */
export function ensureOffsetsTopic(state: ClusterState, settings: Settings): ClusterChange {
  const brokers = liveNodeIds(state, 'broker');
  if (state.topics.has(OFFSETS_TOPIC) || brokers.length === 0) return {};
  const assignments = assignReplicas(brokers, settings.offsetsPartitions, 1, 0, state.topics.size);
  const topic = newTopic(state, OFFSETS_TOPIC, settings.newTopicId(), true, { ...OFFSETS_TOPIC_CONFIGS }, assignments);
  return { topics: [{ topic, previous: null }] };
}

/**
 * Completes a change with what follows from it: the offsets topic once a broker is live, and the
 * coordinator map of the resulting state. Every change the controller commits goes through here.
 */
export function settle(state: ClusterState, change: ClusterChange, settings: Settings, renewed?: number): ClusterChange {
  const merged = mergeChanges(change, ensureOffsetsTopic(applyChange(state, change, state.version), settings));
  const after = applyChange(state, merged, state.version);
  const before = state.topics.get(OFFSETS_TOPIC);
  // The map was made for the topic `state` holds; a topic that appears (or is replaced) here is a new one.
  const recreated = after.topics.get(OFFSETS_TOPIC)?.topicId !== before?.topicId;
  const coordinators = assignCoordinators(after, renewed, recreated);
  return coordinators ? { ...merged, coordinators } : merged;
}

// ------------------------------------------------------------------------------------ topic operations (LocalStore's rules)

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
    : placeReplicas(state, totalCount - current, topic.partitions[0]?.replicas.length ?? 1, current, 0);
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
  return out;
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

/** A new partition led by its first replica, or offline when that broker is fenced. */
function newPartition(state: ClusterState, partition: number, replicas: number[]): PartitionState {
  const live = new Set(liveNodeIds(state, 'broker'));
  const isr = replicas.filter((id) => live.has(id));
  const leader = live.has(replicas[0]!) ? replicas[0]! : -1;
  return { partition, leader, leaderEpoch: 0, replicas: [...replicas], isr: leader === -1 ? [] : isr, version: 0 };
}

const notBuilt = (rf: number) => new MetadataError('INVALID_REPLICATION_FACTOR', `replication factor ${rf}: replication is not built yet (cluster topics have replication factor 1)`);

/** Round-robin over live brokers, refusing what RF 1 cannot do, in Kafka's words where Kafka has them. */
function placeReplicas(state: ClusterState, partitions: number, replicationFactor: number, firstPartition: number, start: number): number[][] {
  if (!Number.isInteger(replicationFactor) || replicationFactor < 1) {
    throw new MetadataError('INVALID_REPLICATION_FACTOR', 'Replication factor must be larger than 0.');
  }
  if (replicationFactor > 1) throw notBuilt(replicationFactor);
  const brokers = liveNodeIds(state, 'broker');
  if (replicationFactor > brokers.length) {
    throw new MetadataError('INVALID_REPLICATION_FACTOR', `Replication factor: ${replicationFactor} larger than available brokers: ${brokers.length}.`);
  }
  return assignReplicas(brokers, partitions, replicationFactor, firstPartition, start);
}

/** Explicit assignments: LocalStore's shape check, brokers that exist, and RF 1. */
function checkAssignments(state: ClusterState, assignments: number[][], expected: number): number[][] {
  if (assignments.length !== expected || assignments.some((r) => r.length === 0 || new Set(r).size !== r.length)) {
    throw new MetadataError('INVALID_REPLICA_ASSIGNMENT', `replica assignment must list ${expected} partition(s), each with distinct brokers`);
  }
  const rf = Math.max(...assignments.map((r) => r.length));
  if (rf > 1) throw notBuilt(rf);
  const unknown = [...new Set(assignments.flat())].filter((id) => !state.nodes.get(id)?.roles.includes('broker')).sort((a, b) => a - b);
  if (unknown.length > 0) throw new MetadataError('INVALID_REPLICA_ASSIGNMENT', `Unknown broker(s) in replica assignment: ${unknown.join(', ')}.`);
  return assignments;
}
