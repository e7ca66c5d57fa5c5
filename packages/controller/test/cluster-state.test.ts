import { describe, expect, it } from 'vitest';
import { OFFSETS_TOPIC } from '@runnel/common';
import { MetadataError, type ClusterChange, type ClusterState, type StoredNode, type TopicMetadata } from '@runnel/metadata';
import {
  alterBrokerConfigs, alterPartition, alterReassignments, alterTopicConfigs, applyChange, assignCoordinators, controlledShutdown, createPartitions, createTopic, deleteTopic, electLeaders,
  ensureOffsetsTopic, expiredNodes, fenceNode, fenceNodes, isEmpty, isFenced, mergeChanges, rebalanceLeaders, registerNode, settle,
  type RegistrationInput, type Settings,
} from '../src/cluster-state.ts';
import { ControllerError } from '../src/errors.ts';

function emptyState(): ClusterState {
  return { clusterId: 'c', version: 0, controllerEpoch: 1, nodes: new Map(), topics: new Map(), coordinators: new Map() };
}

let ids = 0;
const settings = (offsetsPartitions = 6): Settings => ({ offsetsPartitions, newTopicId: () => `id${++ids}` });

const broker = (nodeId: number, rack: string | null = null): RegistrationInput => ({
  nodeId, host: '127.0.0.1', port: 9000 + nodeId, rack, roles: ['broker'], rpc: { host: '127.0.0.1', port: 7000 + nodeId }, incarnationId: `inc-${nodeId}`,
});
const coordinator = (nodeId: number): RegistrationInput => ({ ...broker(nodeId), roles: ['coordinator'] });

/** Commits a change the way the controller does: settle, then apply. */
function commit(state: ClusterState, change: ClusterChange, s = settings(), renewed?: number): ClusterState {
  return applyChange(state, settle(state, change, s, renewed), state.version + 1);
}

function withNodes(...inputs: RegistrationInput[]): ClusterState {
  let state = emptyState();
  let epoch = 0;
  for (const input of inputs) state = commit(state, registerNode(state, input, ++epoch), settings(), input.roles.includes('coordinator') ? input.nodeId : undefined);
  return state;
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    if (err instanceof MetadataError || err instanceof ControllerError) return err.code;
    throw err;
  }
  return undefined;
}

describe('registration and the offsets topic', () => {
  it('creates __consumer_offsets when the first broker registers: RF 1, internal, compacted, round-robin', () => {
    const state = withNodes(broker(1), broker(2));
    const offsets = state.topics.get(OFFSETS_TOPIC)!;
    expect(offsets.internal).toBe(true);
    expect(offsets.configs).toEqual({ 'cleanup.policy': 'compact', 'segment.bytes': '104857600' });
    // Created when broker 1 alone was live.
    expect(offsets.partitions.map((p) => p.replicas)).toEqual([[1], [1], [1], [1], [1], [1]]);
    expect(offsets.partitions.every((p) => p.leader === 1 && p.isr.length === 1 && p.leaderEpoch === 0)).toBe(true);
  });

  it('spreads the offsets topic over the brokers live when it is created', () => {
    let state = emptyState();
    state = applyChange(state, { nodes: [{ ...broker(1), brokerEpoch: 1, fenced: false }, { ...broker(2), brokerEpoch: 2, fenced: false }] }, 1);
    const change = ensureOffsetsTopic(state, settings(4));
    expect(change.topics![0]!.topic.partitions.map((p) => p.leader)).toEqual([1, 2, 1, 2]);
    expect(ensureOffsetsTopic(applyChange(state, change, 2), settings(4))).toEqual({});
  });

  it('does not create the offsets topic without a live broker', () => {
    const state = withNodes(coordinator(10));
    expect(state.topics.has(OFFSETS_TOPIC)).toBe(false);
    expect(state.coordinators.size).toBe(0);
  });

  it('assigns every offsets partition to the only coordinator, with epoch 0', () => {
    const state = withNodes(broker(1), broker(2), coordinator(10));
    expect([...state.coordinators.values()]).toEqual(Array(6).fill({ nodeId: 10, epoch: 0 }));
  });

  it('assigns coordinators once the offsets topic appears, whatever the order of registration', () => {
    const state = withNodes(coordinator(10), broker(1));
    expect(state.coordinators.size).toBe(6);
    expect([...state.coordinators.values()].every((a) => a.nodeId === 10)).toBe(true);
  });

  it('splits partitions p -> coordinators[p % n] (sorted by id) and bumps the epoch of moved ones', () => {
    const one = withNodes(broker(1), coordinator(20));
    const two = commit(one, registerNode(one, coordinator(10), 9), settings(), 10);
    expect([...two.coordinators.entries()]).toEqual([
      [0, { nodeId: 10, epoch: 1 }], [1, { nodeId: 20, epoch: 0 }], [2, { nodeId: 10, epoch: 1 }],
      [3, { nodeId: 20, epoch: 0 }], [4, { nodeId: 10, epoch: 1 }], [5, { nodeId: 20, epoch: 0 }],
    ]);
  });

  it('gives a re-registering coordinator new epochs for the partitions it keeps', () => {
    const state = withNodes(broker(1), coordinator(10));
    const again = commit(state, registerNode(state, coordinator(10), 5), settings(), 10);
    expect([...again.coordinators.values()].every((a) => a.nodeId === 10 && a.epoch === 1)).toBe(true);
  });

  it('refuses a node with no roles or a negative id', () => {
    expect(codeOf(() => registerNode(emptyState(), { ...broker(1), roles: [] }, 1))).toBe('BAD_REQUEST');
    expect(codeOf(() => registerNode(emptyState(), broker(-1), 1))).toBe('BAD_REQUEST');
    expect(codeOf(() => registerNode(emptyState(), { ...broker(1), roles: ['controller' as never] }, 1))).toBe('BAD_REQUEST');
  });
});

describe('fencing and coming back', () => {
  it('a fenced broker takes its RF 1 partitions offline (its ISR kept: never empty) and moves nothing else', () => {
    let state = withNodes(broker(1), broker(2), coordinator(10));
    state = applyChange(state, createTopic(state, { name: 't', partitions: 4, replicationFactor: 1, configs: {}, internal: false, assignments: [] }, 'x').change, 9);
    const before = state.topics.get('t')!;
    const fenced = commit(state, fenceNode(state, 2));
    expect(fenced.nodes.get(2)!.fenced).toBe(true);
    for (const p of fenced.topics.get('t')!.partitions) {
      const old = before.partitions[p.partition]!;
      if (old.leader === 2) expect(p).toEqual({ ...old, leader: -1, isr: [2], version: old.version + 1 });
      else expect(p).toEqual(old);
    }
    expect(fenced.coordinators).toEqual(state.coordinators);
  });

  it('a broker that registers again leads its offline partitions with leaderEpoch + 1 and isr [it]', () => {
    let state = withNodes(broker(1));
    state = commit(state, fenceNode(state, 1));
    expect(state.topics.get(OFFSETS_TOPIC)!.partitions.every((p) => p.leader === -1)).toBe(true);
    state = commit(state, registerNode(state, broker(1), 7));
    expect(state.nodes.get(1)).toMatchObject({ brokerEpoch: 7, fenced: false });
    for (const p of state.topics.get(OFFSETS_TOPIC)!.partitions) expect(p).toMatchObject({ leader: 1, leaderEpoch: 1, isr: [1], version: 2 });
  });

  it('a fenced coordinator loses its partitions to the live ones; with none left the map stays', () => {
    let state = withNodes(broker(1), coordinator(10), coordinator(11));
    state = commit(state, fenceNode(state, 11));
    expect([...state.coordinators.values()]).toEqual([
      // Odd partitions moved to 11 (epoch 1) and back (epoch 2).
      { nodeId: 10, epoch: 0 }, { nodeId: 10, epoch: 2 }, { nodeId: 10, epoch: 0 }, { nodeId: 10, epoch: 2 }, { nodeId: 10, epoch: 0 }, { nodeId: 10, epoch: 2 },
    ]);
    const before = state.coordinators;
    state = commit(state, fenceNode(state, 10));
    expect(state.coordinators).toEqual(before);
    expect(assignCoordinators(state)).toBeUndefined();
  });

  it('never lowers a coordinator epoch: the map stays while the offsets topic is gone, and a new one starts above it', () => {
    let state = withNodes(broker(1), coordinator(10), coordinator(11));
    state = commit(state, fenceNode(state, 11)); // epochs now 0 and 2 (see above)
    const before = state.coordinators;
    // The topic vanishes (not through deleteTopic, which refuses): the map is kept, not cleared.
    const gone = applyChange(state, { deleteTopics: [{ name: OFFSETS_TOPIC, previous: state.topics.get(OFFSETS_TOPIC)! }] }, state.version + 1);
    expect(assignCoordinators(gone)).toBeUndefined();
    // Without a live broker it is not recreated, and the map stays whatever else happens.
    const quiet = commit(gone, fenceNode(gone, 1));
    expect(quiet.topics.has(OFFSETS_TOPIC)).toBe(false);
    expect(quiet.coordinators).toEqual(before);
    // Recreated (here: when the broker comes back), every partition gets an epoch above each it had.
    const back = commit(quiet, registerNode(quiet, broker(1), 20));
    expect(back.topics.get(OFFSETS_TOPIC)!.topicId).not.toBe(state.topics.get(OFFSETS_TOPIC)!.topicId);
    expect(back.coordinators.size).toBe(6);
    for (const [p, a] of back.coordinators) {
      expect(a.nodeId).toBe(10);
      expect(a.epoch).toBeGreaterThanOrEqual(before.get(p)!.epoch + 1);
    }
    expect([...back.coordinators.values()].every((a) => a.epoch === 3)).toBe(true);
    // Recreated with fewer partitions and then grown: a returning partition still starts above its old epoch.
    const fewer = commit(gone, {}, settings(2));
    expect([...fewer.coordinators.keys()]).toEqual([0, 1]);
    const grown = commit(fewer, createPartitions(fewer, OFFSETS_TOPIC, 6, []).change);
    for (const [p, a] of grown.coordinators) expect(a.epoch).toBeGreaterThan(before.get(p)!.epoch);
  });

  it('fencing an unknown or already fenced node changes nothing', () => {
    const state = withNodes(broker(1));
    expect(isEmpty(fenceNode(state, 5))).toBe(true);
    const fenced = commit(state, fenceNode(state, 1));
    expect(isEmpty(fenceNode(fenced, 1))).toBe(true);
  });

  it('heartbeats: unknown, fenced and old-epoch nodes are told to register again', () => {
    const state = withNodes(broker(1), broker(2));
    expect(isFenced(state, 1, 1)).toBe(false);
    expect(isFenced(state, 1, 2)).toBe(true);
    expect(isFenced(state, 3, 1)).toBe(true);
    expect(isFenced(commit(state, fenceNode(state, 2)), 2, 2)).toBe(true);
  });

  it('expiredNodes: unfenced nodes older than the session timeout, or never heard from', () => {
    const state = withNodes(broker(1), broker(2), broker(3));
    const seen = new Map([[1, 1000], [2, 5000]]);
    expect(expiredNodes(state, seen, 10_001, 9000)).toEqual([1, 3]);
    expect(expiredNodes(state, seen, 10_000, 9000)).toEqual([3]);
  });
});

describe('topic operations (LocalStore checks)', () => {
  const two = () => withNodes(broker(1), broker(2));
  const req = (o: Partial<Parameters<typeof createTopic>[1]> = {}) => ({ name: 't', partitions: 3, replicationFactor: 1, configs: {}, internal: false, assignments: [], ...o });

  it('creates a topic round-robin over live brokers, led by its replica', () => {
    const { topic, change } = createTopic(two(), req({ configs: { 'retention.ms': '5' } }), 'abc');
    expect(topic).toMatchObject({ name: 't', topicId: 'abc', internal: false, configs: { 'retention.ms': '5' } });
    // Round-robin starts at the topic count (1, the offsets topic), as LocalStore's does.
    expect(topic.partitions.map((p) => p.leader)).toEqual([2, 1, 2]);
    expect(topic.partitions.every((p) => p.isr[0] === p.leader && p.replicas.length === 1 && p.version === 0)).toBe(true);
    expect(change.topics).toEqual([{ topic, previous: null }]);
  });

  it('refuses what LocalStore refuses, with the same codes', () => {
    const state = two();
    expect(codeOf(() => createTopic(state, req({ name: 'bad name' }), 'x'))).toBe('INVALID_TOPIC_NAME');
    expect(codeOf(() => createTopic(state, req({ name: OFFSETS_TOPIC }), 'x'))).toBe('TOPIC_ALREADY_EXISTS');
    expect(codeOf(() => createTopic(state, req({ partitions: 0 }), 'x'))).toBe('INVALID_PARTITIONS');
    expect(codeOf(() => createTopic(state, req({ partitions: 2, assignments: [[1]] }), 'x'))).toBe('INVALID_REPLICA_ASSIGNMENT');
    expect(codeOf(() => createTopic(state, req({ partitions: 1, assignments: [[9]] }), 'x'))).toBe('INVALID_REPLICA_ASSIGNMENT');
    expect(codeOf(() => deleteTopic(state, 'nope'))).toBe('UNKNOWN_TOPIC');
    expect(codeOf(() => createPartitions(state, 'nope', 3, []))).toBe('UNKNOWN_TOPIC');
    expect(codeOf(() => alterTopicConfigs(state, 'nope', {}, []))).toBe('UNKNOWN_TOPIC');
  });

  it('refuses RF larger than the live brokers, in Kafka\'s words; explicit assignments of any factor', () => {
    const rf3 = (() => { try { createTopic(two(), req({ replicationFactor: 3 }), 'x'); } catch (e) { return e as MetadataError; } })()!;
    expect(rf3.code).toBe('INVALID_REPLICATION_FACTOR');
    expect(rf3.message).toBe('Replication factor: 3 larger than available brokers: 2.');
    expect(createTopic(two(), req({ partitions: 1, assignments: [[2, 1]] }), 'x').topic.partitions).toEqual([
      { partition: 0, leader: 2, leaderEpoch: 0, replicas: [2, 1], isr: [2, 1], version: 0 },
    ]);
    const none = (() => { try { createTopic(emptyState(), req(), 'x'); } catch (e) { return e as MetadataError; } })()!;
    expect(none.code).toBe('INVALID_REPLICATION_FACTOR');
    expect(none.message).toBe('Replication factor: 1 larger than available brokers: 0.');
    expect(codeOf(() => createTopic(two(), req({ replicationFactor: 0 }), 'x'))).toBe('INVALID_REPLICATION_FACTOR');
  });

  it('places new topics only on live brokers', () => {
    let state = two();
    state = commit(state, fenceNode(state, 2));
    expect(createTopic(state, req(), 'x').topic.partitions.every((p) => p.leader === 1)).toBe(true);
  });

  it('adds partitions after the existing ones, and refuses a count that does not grow', () => {
    let state = two();
    state = applyChange(state, createTopic(state, req(), 'x').change, 5);
    const { topic, change } = createPartitions(state, 't', 5, []);
    expect(topic.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3, 4]);
    expect(topic.partitions.slice(0, 3)).toEqual(state.topics.get('t')!.partitions);
    expect(change.topics![0]!.previous).toBe(state.topics.get('t'));
    expect(codeOf(() => createPartitions(state, 't', 3, []))).toBe('INVALID_PARTITIONS');
    expect(createPartitions(state, 't', 4, [[2]]).topic.partitions[3]!.leader).toBe(2);
  });

  it('alters configs: set and remove; deletes with the stored topic as the compare-and-set value', () => {
    let state = two();
    state = applyChange(state, createTopic(state, req({ configs: { a: '1', b: '2' } }), 'x').change, 5);
    expect(alterTopicConfigs(state, 't', { c: '3', a: '9' }, ['b']).topic.configs).toEqual({ a: '9', c: '3' });
    expect(deleteTopic(state, 't')).toEqual({ deleteTopics: [{ name: 't', previous: state.topics.get('t') }] });
  });

  it('alters dynamic broker configs of a node or of the cluster default; an emptied entry goes', () => {
    let state = two();
    state = applyChange(state, alterBrokerConfigs(state, null, { 'leader.replication.throttled.rate': '10' }, []), state.version + 1);
    state = applyChange(state, alterBrokerConfigs(state, 2, { a: '1', b: '2' }, []), state.version + 1);
    state = applyChange(state, mergeChanges(alterBrokerConfigs(state, 1, { x: '1' }, []), alterBrokerConfigs(state, 2, { c: '3' }, ['a'])), state.version + 1);
    expect(state.brokerConfigs?.get('1')).toEqual({ x: '1' });
    state = applyChange(state, alterBrokerConfigs(state, 1, {}, ['x']), state.version + 1);
    expect(state.brokerConfigs).toEqual(new Map([['', { 'leader.replication.throttled.rate': '10' }], ['2', { b: '2', c: '3' }]]));
    state = applyChange(state, alterBrokerConfigs(state, 2, {}, ['b', 'c']), state.version + 1);
    expect(state.brokerConfigs).toEqual(new Map([['', { 'leader.replication.throttled.rate': '10' }]]));
    expect(isEmpty(alterBrokerConfigs(state, 1, {}, []))).toBe(false);
    expect(() => alterBrokerConfigs(state, -2, {}, [])).toThrow(/non-negative/);
  });

  it('refuses to delete __consumer_offsets (Kafka\'s internal topic; INVALID_TOPIC_EXCEPTION on the wire)', () => {
    const state = withNodes(broker(1), coordinator(10));
    let err: unknown;
    try {
      deleteTopic(state, OFFSETS_TOPIC);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MetadataError);
    expect(err).toMatchObject({ code: 'INVALID_TOPIC_NAME', message: 'Topic __consumer_offsets is a Kafka internal topic and may not be deleted' });
  });

  it('growing the offsets topic assigns the new partitions to coordinators', () => {
    let state = withNodes(broker(1), coordinator(10));
    state = commit(state, createPartitions(state, OFFSETS_TOPIC, 8, []).change);
    expect(state.coordinators.size).toBe(8);
  });
});

describe('mergeChanges', () => {
  const node = (id: number, fenced = false): StoredNode => ({ ...broker(id), brokerEpoch: 1, fenced });
  const topic = (name: string, v: number): TopicMetadata => ({ name, topicId: name, internal: false, configs: { v: String(v) }, partitions: [] });

  it('keeps the first previous of a topic changed twice, and the last node and coordinator map', () => {
    const a: ClusterChange = { nodes: [node(1)], topics: [{ topic: topic('t', 1), previous: topic('t', 0) }], coordinators: new Map() };
    const b: ClusterChange = { nodes: [node(1, true)], topics: [{ topic: topic('t', 2), previous: topic('t', 1) }], clusterId: 'x' };
    expect(mergeChanges(a, b)).toEqual({ clusterId: 'x', nodes: [node(1, true)], topics: [{ topic: topic('t', 2), previous: topic('t', 0) }], coordinators: new Map() });
  });

  it('a topic created then deleted disappears; updated then deleted deletes the original', () => {
    expect(mergeChanges({ topics: [{ topic: topic('t', 1), previous: null }] }, { deleteTopics: [{ name: 't', previous: topic('t', 1) }] })).toEqual({});
    expect(mergeChanges({ topics: [{ topic: topic('t', 1), previous: topic('t', 0) }] }, { deleteTopics: [{ name: 't', previous: topic('t', 1) }] }))
      .toEqual({ deleteTopics: [{ name: 't', previous: topic('t', 0) }] });
  });
});

// ------------------------------------------------------------------------------------ replication

const topicReq = (name: string, partitions: number, replicationFactor: number, o: Partial<Parameters<typeof createTopic>[1]> = {}) =>
  ({ name, partitions, replicationFactor, configs: {}, internal: false, assignments: [], ...o });

/** A state with live brokers 1..n and topic `t` with the given replica lists (all in sync, led by the first). */
function withTopic(n: number, assignments: number[][], configs: Record<string, string> = {}): ClusterState {
  const state = withNodes(...Array.from({ length: n }, (_, i) => broker(i + 1)));
  return applyChange(state, createTopic(state, topicReq('t', assignments.length, 0, { assignments, configs }), 'tid').change, state.version + 1);
}

const part = (state: ClusterState, p = 0, topic = 't') => state.topics.get(topic)!.partitions[p]!;

describe('assignment (Kafka\'s AdminUtils placement)', () => {
  it('spreads replicas and preferred leaders evenly, shifting the followers every round of brokers', () => {
    const state = withNodes(broker(1), broker(2), broker(3));
    const { topic } = createTopic(state, topicReq('t', 6, 3), 'x');
    // Start index and first shift = topic count (1): first replicas go 2,3,1,...; the follower shift grows after 3 partitions.
    expect(topic.partitions.map((p) => p.replicas)).toEqual([[2, 1, 3], [3, 2, 1], [1, 3, 2], [2, 3, 1], [3, 1, 2], [1, 2, 3]]);
    const leaders = new Map<number, number>();
    const replicas = new Map<number, number>();
    for (const p of topic.partitions) {
      leaders.set(p.leader, (leaders.get(p.leader) ?? 0) + 1);
      for (const r of p.replicas) replicas.set(r, (replicas.get(r) ?? 0) + 1);
      expect(new Set(p.replicas).size).toBe(3);
      expect(p.isr).toEqual(p.replicas);
    }
    expect([...leaders.values()]).toEqual([2, 2, 2]);
    expect([...replicas.values()]).toEqual([6, 6, 6]);
  });

  it('matches Kafka\'s own expectation (AssignmentTest, brokers 0-4, 10 partitions, RF 3, fixed start index 0)', () => {
    let state = emptyState();
    state = applyChange(state, { nodes: [0, 1, 2, 3, 4].map((id) => ({ ...broker(id), brokerEpoch: 1, fenced: false })) }, 1);
    const { topic } = createTopic(state, topicReq('t', 10, 3), 'x'); // no topics yet: start index 0
    expect(topic.partitions.map((p) => p.replicas)).toEqual([
      [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 1], [0, 2, 3], [1, 3, 4], [2, 4, 0], [3, 0, 1], [4, 1, 2],
    ]);
  });

  it('with racks on every broker, puts a partition\'s replicas on distinct racks first', () => {
    const state = withNodes(broker(1, 'a'), broker(2, 'a'), broker(3, 'b'), broker(4, 'b'), broker(5, 'c'), broker(6, 'c'));
    const rack = (id: number) => state.nodes.get(id)!.rack;
    const { topic } = createTopic(state, topicReq('t', 12, 3), 'x');
    for (const p of topic.partitions) expect(new Set(p.replicas.map(rack)).size).toBe(3);
    const two = createTopic(state, topicReq('u', 12, 2), 'y').topic;
    for (const p of two.partitions) expect(new Set(p.replicas.map(rack)).size).toBe(2);
    // Leaders spread over all six brokers (the rack-alternated list is 1,3,5,2,4,6).
    expect(new Set(topic.partitions.map((p) => p.leader)).size).toBe(6);
    // More replicas than racks: every rack first, then the remaining brokers.
    const four = createTopic(state, topicReq('v', 6, 4), 'z').topic;
    for (const p of four.partitions) {
      expect(new Set(p.replicas).size).toBe(4);
      expect(new Set(p.replicas.slice(0, 3).map(rack)).size).toBe(3);
    }
  });

  it('added partitions follow the same spread from where the topic started', () => {
    let state = withNodes(broker(1), broker(2), broker(3));
    state = applyChange(state, createTopic(state, topicReq('t', 3, 2), 'x').change, state.version + 1);
    const { topic } = createPartitions(state, 't', 6, []);
    expect(topic.partitions.slice(3).every((p) => p.replicas.length === 2 && p.isr.length === 2)).toBe(true);
    expect(new Set(topic.partitions.slice(3).map((p) => p.leader)).size).toBe(3);
  });

  it('explicit assignments must name registered brokers', () => {
    const state = withNodes(broker(1), broker(2));
    expect(codeOf(() => createTopic(state, topicReq('t', 1, 0, { assignments: [[1, 9]] }), 'x'))).toBe('INVALID_REPLICA_ASSIGNMENT');
    expect(codeOf(() => createTopic(state, topicReq('t', 1, 0, { assignments: [[1, 1]] }), 'x'))).toBe('INVALID_REPLICA_ASSIGNMENT');
  });

  it('__consumer_offsets waits for offsets.topic.replication.factor brokers, or is capped at the live ones once a coordinator needs it', () => {
    let state = emptyState();
    const nodes = [1, 2, 3, 4].map((id, i) => ({ ...broker(id), brokerEpoch: i + 1, fenced: false }));
    const four = applyChange(state, { nodes }, 1);
    const created = ensureOffsetsTopic(four, { ...settings(4), offsetsReplicationFactor: 3 }).topics![0]!.topic;
    expect(created.partitions.every((p) => p.replicas.length === 3 && p.isr.length === 3)).toBe(true);
    // Fewer brokers than the factor: wait for more, until a coordinator needs the topic; then capped.
    state = applyChange(state, { nodes: nodes.slice(0, 2) }, 1);
    expect(ensureOffsetsTopic(state, { ...settings(4), offsetsReplicationFactor: 3 })).toEqual({});
    state = applyChange(state, { nodes: [{ ...coordinator(10), brokerEpoch: 9, fenced: false }] }, 2);
    const capped = ensureOffsetsTopic(state, { ...settings(4), offsetsReplicationFactor: 3 }).topics![0]!.topic;
    expect(capped.partitions.every((p) => p.replicas.length === 2)).toBe(true);
  });
});

describe('leader election and the ISR when brokers are fenced', () => {
  it('elects the first live ISR member in replica order, bumps the epoch, and drops the dead broker from every ISR', () => {
    const state = withTopic(3, [[1, 2, 3], [2, 3, 1], [3, 1, 2]]);
    const after = commit(state, fenceNode(state, 1));
    expect(part(after, 0)).toMatchObject({ leader: 2, leaderEpoch: 1, isr: [2, 3], version: 1 });
    expect(part(after, 1)).toMatchObject({ leader: 2, leaderEpoch: 0, isr: [2, 3], version: 1 });
    expect(part(after, 2)).toMatchObject({ leader: 3, leaderEpoch: 0, isr: [3, 2], version: 1 });
  });

  it('never empties an ISR: the last member stays and the partition goes offline with its epoch', () => {
    let state = withTopic(2, [[1, 2]]);
    state = commit(state, fenceNode(state, 2));
    expect(part(state)).toMatchObject({ leader: 1, isr: [1], leaderEpoch: 0, version: 1 });
    state = commit(state, fenceNode(state, 1));
    expect(part(state)).toMatchObject({ leader: -1, isr: [1], leaderEpoch: 0, version: 2 });
    // Two fenced together both stay: each holds every acknowledged record.
    let both = withTopic(3, [[1, 2, 3]]);
    both = commit(both, fenceNode(both, 3));
    both = commit(both, fenceNodes(both, [1, 2]));
    expect(part(both)).toMatchObject({ leader: -1, isr: [1, 2] });
  });

  it('a returning broker leads only offline partitions whose ISR holds it, and joins no ISR by registering', () => {
    let state = withTopic(3, [[1, 2], [2, 1], [3, 1]]);
    state = commit(state, fenceNode(state, 1)); // p0 → 2; p1 loses 1 from its ISR; p2 likewise
    state = commit(state, fenceNode(state, 2)); // p0 offline isr [2]; p1 offline isr [2]
    expect(part(state, 0)).toMatchObject({ leader: -1, isr: [2] });
    state = commit(state, registerNode(state, broker(1), 50));
    // 1 is a replica of all three, but in no ISR: it leads nothing and joins nothing.
    expect(part(state, 0)).toMatchObject({ leader: -1, isr: [2] });
    expect(part(state, 1)).toMatchObject({ leader: -1, isr: [2] });
    expect(part(state, 2)).toMatchObject({ leader: 3, isr: [3] });
    const epoch = part(state, 0).leaderEpoch;
    state = commit(state, registerNode(state, broker(2), 51));
    expect(part(state, 0)).toMatchObject({ leader: 2, isr: [2], leaderEpoch: epoch + 1 });
    expect(part(state, 1)).toMatchObject({ leader: 2, isr: [2] });
  });

  it('unclean.leader.election.enable (topic override, else the controller\'s) elects any live replica with isr [it]', () => {
    // 2 left the ISR, then 1 (the last member) died: 2 is live again but out of sync.
    const scenario = (configs: Record<string, string>, unclean?: boolean) => {
      let state = withTopic(2, [[1, 2]], configs);
      state = commit(state, fenceNode(state, 2));
      state = commit(state, registerNode(state, broker(2), 40));
      const s = { ...settings(), uncleanLeaderElection: unclean };
      return applyChange(state, settle(state, fenceNodes(state, [1], s), s), state.version + 1);
    };
    expect(part(scenario({}))).toMatchObject({ leader: -1, isr: [1] });
    expect(part(scenario({}, true))).toMatchObject({ leader: 2, isr: [2], leaderEpoch: 1 });
    expect(part(scenario({ 'unclean.leader.election.enable': 'true' }))).toMatchObject({ leader: 2, isr: [2] });
    expect(part(scenario({ 'unclean.leader.election.enable': 'false' }, true))).toMatchObject({ leader: -1, isr: [1] });
  });

  it('enabling unclean election on a topic elects its offline partitions at the next settle', () => {
    let state = withTopic(2, [[1, 2]]);
    state = commit(state, fenceNode(state, 2));
    state = commit(state, registerNode(state, broker(2), 40));
    state = commit(state, fenceNode(state, 1));
    expect(part(state)).toMatchObject({ leader: -1, isr: [1] });
    state = commit(state, alterTopicConfigs(state, 't', { 'unclean.leader.election.enable': 'true' }, []).change);
    expect(part(state)).toMatchObject({ leader: 2, isr: [2] });
  });

  it('a setting read from the state (the controller\'s dynamic broker configs) elects at the settle of the config change', () => {
    const s = { ...settings(), uncleanLeaderElection: (st: ClusterState) => st.brokerConfigs?.get('')?.['unclean.leader.election.enable'] === 'true' };
    let state = withTopic(2, [[1, 2]]);
    state = commit(state, fenceNode(state, 2), s);
    state = commit(state, registerNode(state, broker(2), 40), s);
    state = commit(state, fenceNodes(state, [1], s), s);
    expect(part(state)).toMatchObject({ leader: -1, isr: [1] });
    state = commit(state, alterBrokerConfigs(state, null, { 'unclean.leader.election.enable': 'true' }, []), s);
    expect(part(state)).toMatchObject({ leader: 2, isr: [2] });
  });
});

describe('node identity', () => {
  it('refuses a live node id to another incarnation (retriable), accepts the same one, and any once fenced', () => {
    let state = withNodes(broker(1));
    const other = { ...broker(1), port: 9999, incarnationId: 'another' };
    let err: unknown;
    try {
      registerNode(state, other, 9);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'DUPLICATE_BROKER_REGISTRATION', retriable: true });
    expect((err as Error).message).toContain('127.0.0.1:9001');
    expect(isEmpty(registerNode(state, broker(1), 9))).toBe(false);
    state = commit(state, fenceNode(state, 1));
    state = commit(state, registerNode(state, other, 10));
    expect(state.nodes.get(1)).toMatchObject({ port: 9999, incarnationId: 'another', brokerEpoch: 10, fenced: false });
  });
});

describe('alterPartition', () => {
  const request = (state: ClusterState, isr: number[], o: Partial<Parameters<typeof alterPartition>[1]> = {}) => {
    const p = part(state);
    return { nodeId: p.leader, brokerEpoch: state.nodes.get(p.leader)!.brokerEpoch, topic: 't', partition: 0, leaderEpoch: p.leaderEpoch, version: p.version, isr, ...o };
  };

  it('commits a shrink and an expand by compare-and-set, bumping only the version', () => {
    let state = withTopic(3, [[1, 2, 3]]);
    const shrink = alterPartition(state, request(state, [1, 3]));
    expect(shrink.result).toEqual({ error: null, partition: { ...part(state), isr: [1, 3], version: 1 } });
    state = applyChange(state, shrink.change, state.version + 1);
    const expand = alterPartition(state, request(state, [1, 3, 2]));
    expect(expand.result.partition).toMatchObject({ isr: [1, 3, 2], version: 2, leaderEpoch: 0 });
    // The same ISR again: nothing to commit, no error.
    state = applyChange(state, expand.change, state.version + 1);
    expect(alterPartition(state, request(state, [1, 3, 2]))).toEqual({ change: {}, result: { error: null, partition: part(state) } });
  });

  it('refuses, with the committed state, stale callers and proposals', () => {
    let state = withTopic(3, [[1, 2, 3]]);
    state = commit(state, fenceNode(state, 3)); // isr [1, 2], version 1
    const current = part(state);
    const error = (o: Partial<Parameters<typeof alterPartition>[1]>, isr = [1, 2]) => {
      const { change, result } = alterPartition(state, request(state, isr, o));
      expect(change).toEqual({});
      expect(result.partition).toEqual(o.topic === 'nope' || o.partition === 5 ? null : current);
      return result.error;
    };
    expect(error({ brokerEpoch: 99 })).toBe('STALE_BROKER_EPOCH');
    expect(error({ nodeId: 3, brokerEpoch: state.nodes.get(3)!.brokerEpoch })).toBe('STALE_BROKER_EPOCH'); // fenced
    expect(error({ topic: 'nope' })).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(error({ partition: 5 })).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(error({ nodeId: 2, brokerEpoch: state.nodes.get(2)!.brokerEpoch })).toBe('NOT_LEADER_OR_FOLLOWER');
    expect(error({ leaderEpoch: 7 })).toBe('FENCED_LEADER_EPOCH');
    expect(error({ version: 0 })).toBe('INVALID_UPDATE_VERSION');
    expect(error({}, [2])).toBe('INELIGIBLE_REPLICA'); // leaves the leader out
    expect(error({}, [1, 1])).toBe('INELIGIBLE_REPLICA');
    expect(error({}, [1, 4])).toBe('INELIGIBLE_REPLICA'); // not a replica
    expect(error({}, [1, 2, 3])).toBe('INELIGIBLE_REPLICA'); // 3 is fenced
    // A broker in controlled shutdown is not added either.
    const { result } = alterPartition(state, request(state, [1]), {});
    state = applyChange(state, alterPartition(state, request(state, [1])).change, state.version + 1);
    expect(result.error).toBeNull();
    const marked = applyChange(state, { nodes: [{ ...state.nodes.get(2)!, shuttingDown: true }] }, state.version + 1);
    expect(alterPartition(marked, request(marked, [1, 2])).result.error).toBe('INELIGIBLE_REPLICA');
    expect(alterPartition(state, request(state, [1, 2])).result.error).toBeNull();
  });
});

describe('controlled shutdown', () => {
  it('moves each led partition to another ISR member (epoch + 1), leaves every ISR with others, counts what stays', () => {
    let state = withTopic(3, [[1, 2, 3], [2, 1, 3], [1, 2, 3]]);
    // p2: only 1 in sync.
    const p2 = { ...part(state, 2), isr: [1], version: 1 };
    state = applyChange(state, { topics: [{ topic: { ...state.topics.get('t')!, partitions: [part(state, 0), part(state, 1), p2] }, previous: state.topics.get('t')! }] }, state.version + 1);
    const { change, remaining } = controlledShutdown(state, 1, state.nodes.get(1)!.brokerEpoch);
    const after = applyChange(state, change, state.version + 1);
    // p2, and the RF 1 offsets partitions broker 1 leads (created while it was the only broker).
    const offsetsLed = state.topics.get(OFFSETS_TOPIC)!.partitions.filter((p) => p.leader === 1).length;
    expect(offsetsLed).toBeGreaterThan(0);
    expect(remaining).toBe(1 + offsetsLed);
    expect(part(after, 0)).toMatchObject({ leader: 2, leaderEpoch: 1, isr: [2, 3], version: 1 });
    expect(part(after, 1)).toMatchObject({ leader: 2, leaderEpoch: 0, isr: [2, 3], version: 1 });
    expect(part(after, 2)).toEqual(p2);
    // A stale broker epoch leads nothing under it: nothing moves.
    expect(controlledShutdown(state, 1, 999)).toEqual({ change: {}, remaining: 0 });
  });

  it('with nothing left to lead, the node is fenced in the same change (a restart registers at once)', () => {
    const state = withTopic(3, [[3, 1], [2, 3]]);
    const { change, remaining } = controlledShutdown(state, 3, state.nodes.get(3)!.brokerEpoch);
    expect(remaining).toBe(0);
    const after = applyChange(state, change, state.version + 1);
    expect(after.nodes.get(3)!.fenced).toBe(true);
    expect(part(after, 0)).toMatchObject({ leader: 1, isr: [1], leaderEpoch: 1 });
    expect(part(after, 1)).toMatchObject({ leader: 2, isr: [2] });
    // Another process may take the id now.
    expect(isEmpty(registerNode(after, { ...broker(3), incarnationId: 'restarted' }, 99))).toBe(false);
  });

  it('skips brokers already shutting down when it picks new leaders', () => {
    const unmarked = withTopic(3, [[1, 2, 3]]);
    const state = applyChange(unmarked, { nodes: [{ ...unmarked.nodes.get(2)!, shuttingDown: true }] }, unmarked.version + 1);
    const { change } = controlledShutdown(state, 1, state.nodes.get(1)!.brokerEpoch);
    expect(part(applyChange(state, change, 9))).toMatchObject({ leader: 3, isr: [2, 3] });
  });
});

describe('preferred and unclean elections, auto rebalance', () => {
  /** Brokers 1-3, partitions [1,2,3] and [2,3,1]; 1 was fenced and came back: both led by 2, 1 out of every ISR. */
  function moved(): ClusterState {
    let state = withTopic(3, [[1, 2, 3], [2, 3, 1]]);
    state = commit(state, fenceNode(state, 1));
    return commit(state, registerNode(state, broker(1), 30));
  }

  it('preferred: the first replica when live and in the ISR; Kafka\'s error names otherwise', () => {
    let state = moved();
    const tp = [{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }, { topic: 'nope', partition: 0 }];
    expect(electLeaders(state, tp, false).results.map((r) => r.error)).toEqual(['PREFERRED_LEADER_NOT_AVAILABLE', 'ELECTION_NOT_NEEDED', 'UNKNOWN_TOPIC_OR_PARTITION']);
    // 1 caught up and its leader proposed it.
    const p = part(state);
    state = applyChange(state, alterPartition(state, { nodeId: 2, brokerEpoch: state.nodes.get(2)!.brokerEpoch, topic: 't', partition: 0, leaderEpoch: p.leaderEpoch, version: p.version, isr: [2, 3, 1] }).change, state.version + 1);
    const { change, results } = electLeaders(state, tp.slice(0, 1), false);
    expect(results).toEqual([{ topic: 't', partition: 0, error: null, message: '' }]);
    expect(part(applyChange(state, change, 99))).toMatchObject({ leader: 1, leaderEpoch: p.leaderEpoch + 1, isr: [2, 3, 1] });
    // All partitions (null): those needing no election are left out.
    expect(electLeaders(state, null, false).results.map((r) => `${r.topic}-${r.partition}`)).toEqual(['t-0']);
  });

  it('unclean: only partitions without a leader, any live replica when no ISR member is', () => {
    let state = withTopic(2, [[1, 2]]);
    state = commit(state, fenceNode(state, 2));
    state = commit(state, registerNode(state, broker(2), 40));
    state = commit(state, fenceNode(state, 1));
    expect(electLeaders(state, [{ topic: 't', partition: 0 }], false).results[0]!.error).toBe('PREFERRED_LEADER_NOT_AVAILABLE');
    const { change, results } = electLeaders(state, [{ topic: 't', partition: 0 }], true);
    expect(results[0]!.error).toBeNull();
    const after = applyChange(state, change, 99);
    expect(part(after)).toMatchObject({ leader: 2, isr: [2] });
    expect(electLeaders(after, [{ topic: 't', partition: 0 }], true).results[0]!.error).toBe('ELECTION_NOT_NEEDED');
    const gone = commit(after, fenceNode(after, 2));
    expect(electLeaders(gone, [{ topic: 't', partition: 0 }], true).results[0]!.error).toBe('ELIGIBLE_LEADERS_NOT_AVAILABLE');
  });

  it('auto rebalance moves leadership back once a broker\'s imbalance passes the percentage', () => {
    let state = moved();
    expect(isEmpty(rebalanceLeaders(state, 10))).toBe(true); // 1 is in no ISR yet
    const p = part(state);
    state = applyChange(state, alterPartition(state, { nodeId: 2, brokerEpoch: state.nodes.get(2)!.brokerEpoch, topic: 't', partition: 0, leaderEpoch: p.leaderEpoch, version: p.version, isr: [2, 3, 1] }).change, state.version + 1);
    // Broker 1 is preferred for t-0 and the offsets partitions it was placed first on; all of t-0's share is misplaced.
    const back = applyChange(state, rebalanceLeaders(state, 10), 99);
    expect(part(back)).toMatchObject({ leader: 1 });
    expect(isEmpty(rebalanceLeaders(back, 10))).toBe(true);
    // At 100 % nothing is ever imbalanced enough.
    expect(isEmpty(rebalanceLeaders(state, 100))).toBe(true);
  });
});

describe('partition reassignment (KIP-455)', () => {
  const isrOf = (state: ClusterState, isr: number[]) => {
    const p = part(state);
    const request = { nodeId: p.leader, brokerEpoch: state.nodes.get(p.leader)!.brokerEpoch, topic: 't', partition: 0, leaderEpoch: p.leaderEpoch, version: p.version, isr };
    const { change, result } = alterPartition(state, request);
    expect(result.error).toBeNull();
    return applyChange(state, settle(state, change, settings()), state.version + 1);
  };

  it('adds the target replicas, finishes once they are in sync, hands leadership over and drops the leavers', async () => {
    let state = withTopic(4, [[1, 2]]);
    const start = alterReassignments(state, [{ topic: 't', partition: 0, replicas: [3, 4] }]);
    expect(start.results).toEqual([{ topic: 't', partition: 0, error: null, message: '' }]);
    state = applyChange(state, settle(state, start.change, settings()), state.version + 1);
    expect(part(state)).toMatchObject({ leader: 1, replicas: [3, 4, 1, 2], isr: [1, 2], addingReplicas: [3, 4], removingReplicas: [1, 2], version: 1 });
    // 3 catches up: not done yet. 4 too: done, 3 leads (the first target replica in sync).
    state = isrOf(state, [1, 2, 3]);
    expect(part(state).addingReplicas).toEqual([3, 4]);
    state = isrOf(state, [1, 2, 3, 4]);
    const done = part(state);
    expect(done).toMatchObject({ leader: 3, leaderEpoch: 1, replicas: [3, 4], isr: [3, 4] });
    expect(done.addingReplicas).toBeUndefined();
    expect(done.removingReplicas).toBeUndefined();
  });

  it('cancels back to the replicas before the move; a new target replaces the one in progress; refusals in Kafka\'s names', () => {
    let state = withTopic(4, [[1, 2]]);
    state = applyChange(state, alterReassignments(state, [{ topic: 't', partition: 0, replicas: [1, 3] }]).change, state.version + 1);
    expect(part(state)).toMatchObject({ replicas: [1, 3, 2], addingReplicas: [3], removingReplicas: [2] });
    const replaced = applyChange(state, alterReassignments(state, [{ topic: 't', partition: 0, replicas: [2, 4] }]).change, state.version + 1);
    expect(part(replaced)).toMatchObject({ replicas: [2, 4, 1], addingReplicas: [4], removingReplicas: [1], leader: 1 });
    const cancelled = applyChange(state, alterReassignments(state, [{ topic: 't', partition: 0, replicas: null }]).change, state.version + 1);
    expect(part(cancelled)).toMatchObject({ replicas: [1, 2], isr: [1, 2], leader: 1 });
    expect(part(cancelled).addingReplicas).toBeUndefined();
    const errors = alterReassignments(cancelled, [
      { topic: 't', partition: 0, replicas: null }, { topic: 't', partition: 0, replicas: [1, 9] }, { topic: 't', partition: 0, replicas: [] },
      { topic: 't', partition: 7, replicas: [1] }, { topic: 't', partition: 0, replicas: [1, 2] },
    ]);
    expect(errors.results.map((r) => r.error)).toEqual(['NO_REASSIGNMENT_IN_PROGRESS', 'INVALID_REPLICA_ASSIGNMENT', 'INVALID_REPLICA_ASSIGNMENT', 'UNKNOWN_TOPIC_OR_PARTITION', null]);
    expect(errors.change).toEqual({}); // the same replicas: nothing to do
  });
});
