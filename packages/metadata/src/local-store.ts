import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MetadataError } from './errors.ts';
import type {
  BrokerRegistration, CreateTopicSpec, MetadataEvent, MetadataSnapshot, MetadataStore, NodeRegistrationInput, TopicMetadata,
} from './types.ts';
import { assignReplicas, checkDeletable, validateTopicName } from './validate.ts';

/**
 * On-disk state of the embedded store: one JSON document, replaced atomically (write a temporary
 * file, fsync it, rename over the old one), so a crash leaves either the old or the new state.
 *
 *   { "version": 1, "clusterId": "...", "epoch": 7, "brokerEpoch": 2, "nextProducerId": "1000",
 *     "topics": [ TopicMetadata... ] }
 */
interface PersistedState {
  version: 1;
  clusterId: string;
  epoch: number;
  brokerEpoch: number;
  nextProducerId: string;
  topics: TopicMetadata[];
}

/** Kafka's cluster id: 16 random bytes, base64url without padding (22 characters). */
export const newClusterId = () => randomBytes(16).toString('base64url');
const newTopicId = () => randomBytes(16).toString('hex');

/**
 * The single-node metadata store used by `runnel start`: the same MetadataStore contract the
 * cluster's Redis store fulfils, kept in memory and persisted to one file. This process is the
 * only writer, so writes need no fencing beyond being applied one at a time.
 */
export class LocalStore implements MetadataStore {
  readonly #path: string;
  readonly #nodeId: number;
  readonly #wantedClusterId: string | undefined;
  #state: PersistedState | undefined;
  #brokers = new Map<number, BrokerRegistration>();
  #listeners = new Set<(e: MetadataEvent) => void>();
  #writes: Promise<unknown> = Promise.resolve();
  #snapshot: MetadataSnapshot | undefined;

  private constructor(options: { path: string; nodeId: number; clusterId?: string }) {
    this.#path = options.path;
    this.#nodeId = options.nodeId;
    this.#wantedClusterId = options.clusterId;
  }

  /** @param options.path the state file, e.g. `<first log dir>/runnel-metadata.json` */
  static create(options: { path: string; nodeId: number; clusterId?: string }): LocalStore {
    return new LocalStore(options);
  }

  async start(): Promise<void> {
    let text: string | undefined;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) {
      this.#state = { version: 1, clusterId: this.#wantedClusterId ?? newClusterId(), epoch: 0, brokerEpoch: 0, nextProducerId: '0', topics: [] };
      await this.#persist();
    } else {
      try {
        this.#state = JSON.parse(text) as PersistedState;
      } catch (err) {
        throw new MetadataError('CORRUPT_STATE', `metadata file ${this.#path} is not valid JSON`, { cause: err });
      }
      if (this.#wantedClusterId && this.#wantedClusterId !== this.#state.clusterId) {
        throw new MetadataError('CLUSTER_ID_MISMATCH', `metadata file ${this.#path} belongs to cluster ${this.#state.clusterId}, not ${this.#wantedClusterId}`);
      }
    }
    this.#snapshot = undefined;
  }

  async stop(): Promise<void> {
    await this.#writes;
    this.#listeners.clear();
  }

  snapshot(): MetadataSnapshot {
    const state = this.#require();
    this.#snapshot ??= {
      clusterId: state.clusterId,
      controllerId: this.#nodeId,
      brokers: new Map(this.#brokers),
      topics: new Map(state.topics.map((t) => [t.name, t])),
      coordinators: new Map(),
      controllerRpc: null,
      epoch: state.epoch,
    };
    return this.#snapshot;
  }

  subscribe(listener: (event: MetadataEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  registerBroker(input: NodeRegistrationInput): Promise<BrokerRegistration> {
    return this.#write(() => {
      const state = this.#require();
      const registration: BrokerRegistration = { ...input, roles: input.roles ?? ['broker'], rpc: input.rpc ?? null, brokerEpoch: ++state.brokerEpoch };
      this.#brokers.set(input.nodeId, registration);
      return { result: registration, event: { type: 'broker-registered', broker: registration } };
    });
  }

  createTopic(spec: CreateTopicSpec): Promise<TopicMetadata> {
    return this.#write(() => {
      const state = this.#require();
      validateTopicName(spec.name);
      if (state.topics.some((t) => t.name === spec.name)) {
        throw new MetadataError('TOPIC_ALREADY_EXISTS', `topic "${spec.name}" already exists`);
      }
      if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
        throw new MetadataError('INVALID_PARTITIONS', `number of partitions must be at least 1, got ${spec.partitions}`);
      }
      const assignments = spec.assignments ?? assignReplicas(this.#brokerIds(), spec.partitions, spec.replicationFactor, 0, state.topics.length);
      this.#checkAssignments(assignments, spec.partitions);
      const topic: TopicMetadata = {
        name: spec.name,
        topicId: newTopicId(),
        internal: spec.internal ?? spec.name.startsWith('__'),
        configs: { ...spec.configs },
        partitions: assignments.map((replicas, partition) => ({ partition, leader: replicas[0]!, leaderEpoch: 0, replicas, isr: [...replicas], version: 0 })),
      };
      state.topics.push(topic);
      return { result: topic, event: { type: 'topic-created', topic } };
    });
  }

  deleteTopic(name: string): Promise<void> {
    return this.#write(() => {
      const state = this.#require();
      checkDeletable(name);
      const index = state.topics.findIndex((t) => t.name === name);
      if (index < 0) throw new MetadataError('UNKNOWN_TOPIC', `topic "${name}" does not exist`);
      state.topics.splice(index, 1);
      return { result: undefined, event: { type: 'topic-deleted', name } };
    });
  }

  createPartitions(name: string, totalCount: number, assignments?: number[][]): Promise<TopicMetadata> {
    return this.#write(() => {
      const topic = this.#topic(name);
      const current = topic.partitions.length;
      if (!Number.isInteger(totalCount) || totalCount <= current) {
        throw new MetadataError('INVALID_PARTITIONS', `topic "${name}" has ${current} partitions; the new count must be larger, got ${totalCount}`);
      }
      const rf = topic.partitions[0]!.replicas.length;
      const added = assignments ?? assignReplicas(this.#brokerIds(), totalCount - current, rf, current);
      this.#checkAssignments(added, totalCount - current);
      const updated: TopicMetadata = {
        ...topic,
        partitions: [...topic.partitions, ...added.map((replicas, i) => ({ partition: current + i, leader: replicas[0]!, leaderEpoch: 0, replicas, isr: [...replicas], version: 0 }))],
      };
      this.#replaceTopic(updated);
      return { result: updated, event: { type: 'topic-updated', topic: updated } };
    });
  }

  alterTopicConfigs(name: string, configs: Record<string, string | null>): Promise<TopicMetadata> {
    return this.#write(() => {
      const topic = this.#topic(name);
      const merged = { ...topic.configs };
      for (const [k, v] of Object.entries(configs)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      const updated = { ...topic, configs: merged };
      this.#replaceTopic(updated);
      return { result: updated, event: { type: 'topic-updated', topic: updated } };
    });
  }

  allocateProducerId(): Promise<bigint> {
    return this.#write(() => {
      const state = this.#require();
      const id = BigInt(state.nextProducerId);
      state.nextProducerId = String(id + 1n);
      return { result: id, event: undefined };
    });
  }

  #require(): PersistedState {
    if (!this.#state) throw new MetadataError('STORE_UNAVAILABLE', 'metadata store used before start()');
    return this.#state;
  }

  #brokerIds(): number[] {
    const ids = [...this.#brokers.keys()];
    return ids.length > 0 ? ids : [this.#nodeId];
  }

  #checkAssignments(assignments: number[][], expected: number): void {
    if (assignments.length !== expected || assignments.some((r) => r.length === 0 || new Set(r).size !== r.length)) {
      throw new MetadataError('INVALID_REPLICA_ASSIGNMENT', `replica assignment must list ${expected} partition(s), each with distinct brokers`);
    }
  }

  #topic(name: string): TopicMetadata {
    const topic = this.#require().topics.find((t) => t.name === name);
    if (!topic) throw new MetadataError('UNKNOWN_TOPIC', `topic "${name}" does not exist`);
    return topic;
  }

  #replaceTopic(topic: TopicMetadata): void {
    const state = this.#require();
    state.topics[state.topics.findIndex((t) => t.name === topic.name)] = topic;
  }

  /**
   * Applies one change at a time: mutate, bump the epoch, persist, then notify. A failed persist
   * restores the previous state so memory never runs ahead of disk.
   */
  #write<T>(change: () => { result: T; event: MetadataEvent | undefined }): Promise<T> {
    const next = this.#writes.then(async () => {
      const state = this.#require();
      const before = structuredClone(state);
      const brokersBefore = new Map(this.#brokers);
      let outcome: { result: T; event: MetadataEvent | undefined };
      try {
        outcome = change();
        state.epoch++;
        await this.#persist();
      } catch (err) {
        this.#state = before;
        this.#brokers = brokersBefore;
        throw err;
      } finally {
        this.#snapshot = undefined;
      }
      if (outcome.event) for (const listener of this.#listeners) listener(outcome.event);
      return outcome.result;
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  async #persist(): Promise<void> {
    await mkdir(dirname(this.#path), { recursive: true });
    const tmp = `${this.#path}.tmp`;
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(JSON.stringify(this.#state, null, 1));
      await file.datasync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.#path);
  }
}
