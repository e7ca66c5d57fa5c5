import { describe, expect, it } from 'vitest';
import { OFFSETS_TOPIC } from '@runnel/common';
import { MetadataError, type ClusterChange, type ClusterState, type StoredNode, type TopicMetadata } from '@runnel/metadata';
import {
  alterTopicConfigs, applyChange, assignCoordinators, createPartitions, createTopic, deleteTopic,
  ensureOffsetsTopic, expiredNodes, fenceNode, isEmpty, isFenced, mergeChanges, registerNode, settle, type RegistrationInput, type Settings,
} from '../src/cluster-state.ts';
import { ControllerError } from '../src/errors.ts';

function emptyState(): ClusterState {
  return { clusterId: 'c', version: 0, controllerEpoch: 1, nodes: new Map(), topics: new Map(), coordinators: new Map() };
}

let ids = 0;
const settings = (offsetsPartitions = 6): Settings => ({ offsetsPartitions, newTopicId: () => `id${++ids}` });

const broker = (nodeId: number): RegistrationInput => ({ nodeId, host: '127.0.0.1', port: 9000 + nodeId, rack: null, roles: ['broker'], rpc: { host: '127.0.0.1', port: 7000 + nodeId } });
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
  it('a fenced broker takes its partitions offline and moves nothing else', () => {
    let state = withNodes(broker(1), broker(2), coordinator(10));
    state = applyChange(state, createTopic(state, { name: 't', partitions: 4, replicationFactor: 1, configs: {}, internal: false, assignments: [] }, 'x').change, 9);
    const before = state.topics.get('t')!;
    const fenced = commit(state, fenceNode(state, 2));
    expect(fenced.nodes.get(2)!.fenced).toBe(true);
    for (const p of fenced.topics.get('t')!.partitions) {
      const old = before.partitions[p.partition]!;
      if (old.leader === 2) expect(p).toEqual({ ...old, leader: -1, isr: [], version: old.version + 1 });
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

describe('topic operations (LocalStore rules, RF 1)', () => {
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

  it('refuses RF > 1 (not built) and RF larger than the live brokers, in Kafka\'s words', () => {
    const rf2 = (() => { try { createTopic(two(), req({ replicationFactor: 2 }), 'x'); } catch (e) { return e as MetadataError; } })()!;
    expect(rf2.code).toBe('INVALID_REPLICATION_FACTOR');
    expect(rf2.message).toContain('replication is not built yet');
    expect(codeOf(() => createTopic(two(), req({ partitions: 1, assignments: [[1, 2]] }), 'x'))).toBe('INVALID_REPLICATION_FACTOR');
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
