// A small but real MetadataWriter for tests: each write is a ControllerStore commit (fenced Lua,
// topic CAS), the way the controller does it, minus the RPC hop and the liveness loop. `fence(id)`
// marks a node fenced, as the controller's session timeout would. Also the small helpers the
// RedisStore tests share.
import { randomBytes } from 'node:crypto';
import type { Logger } from '@runnel/common';
import {
  assignReplicas, MetadataError, validateTopicName,
  type BrokerRegistration, type ControllerStore, type CreateTopicSpec, type MetadataWriter, type StoredNode, type TopicMetadata,
} from '../src/index.ts';

/** The RPC address tests give the controller (nothing listens: the writer calls the store directly). */
export const controllerRpc = { host: '127.0.0.1', port: 4321 };

export async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** A logger that keeps every line (level and message) for assertions. */
export function captureLogger(): { logger: Logger; lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (obj: unknown, msg?: string) => {
    lines.push({ level, msg: typeof obj === 'string' ? obj : msg ?? '' });
  };
  const logger = {
    trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'),
    child: () => logger, bindings: () => ({}),
  } as unknown as Logger;
  return { logger, lines };
}

export interface TestWriter extends MetadataWriter {
  fence(nodeId: number): Promise<number>;
  calls: string[];
}

export function storeWriter(store: ControllerStore): TestWriter {
  const calls: string[] = [];
  const topicOf = async (name: string) => {
    const t = (await store.load()).topics.get(name);
    if (!t) throw new MetadataError('UNKNOWN_TOPIC', `topic "${name}" does not exist`);
    return t;
  };
  const update = async (previous: TopicMetadata, topic: TopicMetadata) => ({ topic, version: await store.commit({ topics: [{ topic, previous }] }) });
  return {
    calls,
    async registerNode(input: Omit<BrokerRegistration, 'brokerEpoch'>) {
      calls.push(`register ${input.nodeId}`);
      const registration: StoredNode = { ...input, brokerEpoch: await store.nextBrokerEpoch(), fenced: false };
      const version = await store.commit({ nodes: [registration] });
      const { fenced: _f, ...reg } = registration;
      return { registration: reg, version };
    },
    async heartbeat(nodeId: number, brokerEpoch: number) {
      calls.push(`heartbeat ${nodeId}`);
      const node = (await store.load()).nodes.get(nodeId);
      return { fenced: !node || node.fenced || node.brokerEpoch !== brokerEpoch };
    },
    async createTopic(spec: CreateTopicSpec) {
      validateTopicName(spec.name);
      const state = await store.load();
      if (state.topics.has(spec.name)) throw new MetadataError('TOPIC_ALREADY_EXISTS', `topic "${spec.name}" already exists`);
      const live = [...state.nodes.values()].filter((n) => !n.fenced && n.roles.includes('broker')).map((n) => n.nodeId);
      const assignments = spec.assignments ?? assignReplicas(live, spec.partitions, spec.replicationFactor);
      const topic: TopicMetadata = {
        name: spec.name, topicId: randomBytes(16).toString('hex'), internal: spec.internal ?? false, configs: { ...spec.configs },
        partitions: assignments.map((replicas, partition) => ({ partition, leader: replicas[0]!, leaderEpoch: 0, replicas, isr: [...replicas], version: 0 })),
      };
      return { topic, version: await store.commit({ topics: [{ topic, previous: null }] }) };
    },
    async deleteTopic(name: string) {
      return { version: await store.commit({ deleteTopics: [{ name, previous: await topicOf(name) }] }) };
    },
    async createPartitions(name: string, totalCount: number) {
      const t = await topicOf(name);
      const added = Array.from({ length: totalCount - t.partitions.length }, (_, i) => t.partitions.length + i);
      return update(t, { ...t, partitions: [...t.partitions, ...added.map((partition) => ({ partition, leader: 1, leaderEpoch: 0, replicas: [1], isr: [1], version: 0 }))] });
    },
    async alterTopicConfigs(name: string, configs: Record<string, string | null>) {
      const t = await topicOf(name);
      const merged = { ...t.configs };
      for (const [k, v] of Object.entries(configs)) if (v === null) delete merged[k]; else merged[k] = v;
      return update(t, { ...t, configs: merged });
    },
    async alterBrokerConfigs(nodeId: number | null, configs: Record<string, string | null>) {
      const key = nodeId === null ? '' : String(nodeId);
      const merged = { ...(await store.load()).brokerConfigs?.get(key) };
      for (const [k, v] of Object.entries(configs)) if (v === null) delete merged[k]; else merged[k] = v;
      return { version: await store.commit({ brokerConfigs: [{ key, configs: merged }] }) };
    },
    async allocateProducerId() {
      return store.allocateProducerIds(1);
    },
    // The controller's rules live in @runnel/controller (tested there); this stand-in keeps the
    // compare-and-set that RedisStore relies on: the caller leads under the epoch and version it names.
    async alterPartition(request) {
      calls.push(`alterPartition ${request.topic}-${request.partition}`);
      const state = await store.load();
      const t = state.topics.get(request.topic);
      const p = t?.partitions[request.partition];
      if (!t || !p) return { result: { error: 'UNKNOWN_TOPIC_OR_PARTITION' as const, partition: null }, version: state.version };
      if (p.leader !== request.nodeId || p.leaderEpoch !== request.leaderEpoch || p.version !== request.version) {
        return { result: { error: 'INVALID_UPDATE_VERSION' as const, partition: p }, version: state.version };
      }
      const partition = { ...p, isr: request.isr, version: p.version + 1 };
      const { version } = await update(t, { ...t, partitions: t.partitions.map((q) => (q.partition === p.partition ? partition : q)) });
      return { result: { error: null, partition }, version };
    },
    async shutdownNode(nodeId: number) {
      calls.push(`shutdownNode ${nodeId}`);
      const state = await store.load();
      const remaining = [...state.topics.values()].flatMap((t) => t.partitions).filter((p) => p.leader === nodeId).length;
      return { remaining, version: state.version };
    },
    async electLeaders() {
      return { results: [], version: (await store.load()).version };
    },
    async fence(nodeId: number) {
      const node = (await store.load()).nodes.get(nodeId)!;
      return store.commit({ nodes: [{ ...node, fenced: true }] });
    },
  };
}
