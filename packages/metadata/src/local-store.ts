import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { replaceFileDurably } from '@runnel/common';
import { MetadataError } from './errors.ts';
import type {
  AlterPartitionInput, AlterPartitionResult, BrokerRegistration, CreateTopicSpec, ElectionResult, MetadataEvent, MetadataSnapshot, MetadataStore,
  NodeRegistrationInput, PartitionState, ReassignmentInput, ReassignmentResult, TopicMetadata,
} from './types.ts';
import { assignReplicas, checkDeletable, validateTopicName } from './validate.ts';
import { withAcls, withoutAcls, type AclBinding, type AclBindingFilter } from './acls.ts';
import { decodeScramCredentials, withScramChanges, type PersistedUserScram, type ScramCredentialDeletion, type ScramCredentialUpsert } from './scram.ts';
import { withClientQuotaChanges, type ClientQuotaAlteration } from './client-quotas.ts';

/**
 * On-disk state of the embedded store: one JSON document, replaced atomically (write a temporary
 * file, fsync it, rename over the old one, fsync the directory: @runnel/common's
 * replaceFileDurably), so a crash leaves either the old or the new state, and never the old one
 * once a change was acknowledged.
 *
 *   { "version": 1, "clusterId": "...", "epoch": 7, "brokerEpoch": 2, "nextProducerId": "1000",
 *     "topics": [ TopicMetadata... ], "brokerConfigs"?: { "": {...}, "1": {...} }, "acls"?: [ AclBinding... ],
 *     "scramCredentials"?: { "<user>": { "SCRAM-SHA-256": { "salt", "storedKey", "serverKey", "iterations" } } },
 *     "clientQuotas"?: { "[[\"client-id\",\"c1\"]]": { "producer_byte_rate": 1048576 } } }
 *
 * `brokerConfigs` (dynamic broker configs, key '' = cluster default, else a node id) is absent in
 * files written before it existed.
 */
interface PersistedState {
  version: 1;
  clusterId: string;
  epoch: number;
  brokerEpoch: number;
  nextProducerId: string;
  topics: TopicMetadata[];
  brokerConfigs?: Record<string, Record<string, string>>;
  /** The ACLs (acls.ts), in creation order; absent in files written before ACLs existed. */
  acls?: AclBinding[];
  /** SCRAM credentials by user (scram.ts: salt and keys in base64, never a password); absent when none. */
  scramCredentials?: Record<string, PersistedUserScram>;
  /** Client quotas by canonical entity key (client-quotas.ts); absent when none. */
  clientQuotas?: Record<string, Record<string, number>>;
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
  readonly #incarnationId = randomBytes(16).toString('base64url');
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
      brokerConfigs: new Map(Object.entries(state.brokerConfigs ?? {})),
      acls: state.acls ?? [],
      scramCredentials: decodeScramCredentials(state.scramCredentials),
      clientQuotas: new Map(Object.entries(state.clientQuotas ?? {})),
    };
    return this.#snapshot;
  }

  /** This node's registration (one process holds the file: it is always this store's own). */
  registration(): BrokerRegistration | undefined {
    return this.#brokers.get(this.#nodeId);
  }

  subscribe(listener: (event: MetadataEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  registerBroker(input: NodeRegistrationInput): Promise<BrokerRegistration> {
    return this.#write(() => {
      const state = this.#require();
      const registration: BrokerRegistration = {
        ...input, roles: input.roles ?? ['broker'], rpc: input.rpc ?? null, brokerEpoch: ++state.brokerEpoch, incarnationId: this.#incarnationId,
      };
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

  alterBrokerConfigs(nodeId: number | null, configs: Record<string, string | null>): Promise<void> {
    return this.#write(() => {
      const state = this.#require();
      const key = nodeId === null ? '' : String(nodeId);
      const all = { ...state.brokerConfigs };
      const merged = { ...all[key] };
      for (const [k, v] of Object.entries(configs)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      if (Object.keys(merged).length > 0) all[key] = merged;
      else delete all[key];
      state.brokerConfigs = all;
      return { result: undefined, event: { type: 'broker-configs-changed' } };
    });
  }

  createAcls(bindings: AclBinding[]): Promise<void> {
    return this.#write(() => {
      const state = this.#require();
      state.acls = withAcls(state.acls ?? [], bindings);
      return { result: undefined, event: { type: 'acls-changed' } };
    });
  }

  deleteAcls(filters: AclBindingFilter[]): Promise<AclBinding[][]> {
    return this.#write(() => {
      const state = this.#require();
      const { acls, deleted } = withoutAcls(state.acls ?? [], filters);
      state.acls = acls;
      return { result: deleted, event: deleted.some((d) => d.length > 0) ? { type: 'acls-changed' } : undefined };
    });
  }

  alterScramCredentials(upserts: ScramCredentialUpsert[], deletions: ScramCredentialDeletion[]): Promise<void> {
    return this.#write(() => {
      const state = this.#require();
      const next = withScramChanges(state.scramCredentials ?? {}, upserts, deletions);
      if (Object.keys(next).length > 0) state.scramCredentials = next;
      else delete state.scramCredentials;
      return { result: undefined, event: { type: 'scram-credentials-changed' } };
    });
  }

  alterClientQuotas(entries: ClientQuotaAlteration[]): Promise<void> {
    return this.#write(() => {
      const state = this.#require();
      const next = withClientQuotaChanges(state.clientQuotas ?? {}, entries);
      if (Object.keys(next).length > 0) state.clientQuotas = next;
      else delete state.clientQuotas;
      return { result: undefined, event: { type: 'client-quotas-changed' } };
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

  /**
   * The one broker proposing an ISR: the controller's rules on one node (it must lead the
   * partition under the request's leader epoch and version; the ISR contains it, lists distinct
   * replicas, adds only registered brokers). Committed directly; never throws for a refusal.
   */
  alterPartition(request: AlterPartitionInput): Promise<AlterPartitionResult> {
    return this.#write<AlterPartitionResult>(() => {
      const topic = this.#require().topics.find((t) => t.name === request.topic);
      const current = topic?.partitions[request.partition] ?? null;
      const refuse = (error: NonNullable<AlterPartitionResult['error']>) => ({ result: { error, partition: current }, event: undefined, unchanged: true });
      if (!this.#brokers.has(this.#nodeId)) return refuse('STALE_BROKER_EPOCH');
      if (!topic || !current) return refuse('UNKNOWN_TOPIC_OR_PARTITION');
      if (current.leader !== this.#nodeId) return refuse('NOT_LEADER_OR_FOLLOWER');
      if (current.leaderEpoch !== request.leaderEpoch) return refuse('FENCED_LEADER_EPOCH');
      if (current.version !== request.version) return refuse('INVALID_UPDATE_VERSION');
      const isr = request.isr;
      if (!isr.includes(current.leader) || new Set(isr).size !== isr.length
        || !isr.every((id) => current.replicas.includes(id) && (current.isr.includes(id) || this.#brokers.has(id)))) return refuse('INELIGIBLE_REPLICA');
      if (isr.length === current.isr.length && isr.every((id, i) => current.isr[i] === id)) return { result: { error: null, partition: current }, event: undefined, unchanged: true };
      const partition: PartitionState = { ...current, isr: [...isr], version: current.version + 1 };
      const updated = { ...topic, partitions: topic.partitions.map((p) => (p.partition === partition.partition ? partition : p)) };
      this.#replaceTopic(updated);
      return { result: { error: null, partition }, event: { type: 'topic-updated', topic: updated } };
    });
  }

  /** One node has nowhere to move its leaderships: nothing changes, and it still leads all it led. */
  async controlledShutdown(): Promise<{ remaining: number }> {
    await this.#writes;
    let remaining = 0;
    for (const topic of this.#require().topics) for (const p of topic.partitions) if (p.leader === this.#nodeId) remaining++;
    return { remaining };
  }

  /**
   * Kafka's ElectLeaders on one node: preferred elects the first replica when it is registered
   * and in the ISR; unclean elects only for partitions without a leader. `partitions` null means
   * all of them, and then partitions needing no election are left out (as Kafka).
   */
  electLeaders(partitions: { topic: string; partition: number }[] | null, unclean: boolean): Promise<ElectionResult[]> {
    return this.#write(() => {
      const state = this.#require();
      const wanted = partitions ?? state.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition })));
      const results: ElectionResult[] = [];
      const changed = new Map<string, TopicMetadata>();
      for (const { topic: name, partition } of wanted) {
        const topic = changed.get(name) ?? state.topics.find((t) => t.name === name);
        const p = topic?.partitions[partition];
        const result = (error: ElectionResult['error'], message: string) => {
          if (!(partitions === null && error === 'ELECTION_NOT_NEEDED')) results.push({ topic: name, partition, error, message });
        };
        if (!topic || !p) {
          result('UNKNOWN_TOPIC_OR_PARTITION', `partition ${name}-${partition} does not exist`);
          continue;
        }
        const candidate = unclean ? p.replicas.find((id) => this.#brokers.has(id)) : p.replicas[0]!;
        if (unclean ? p.leader !== -1 : p.leader === candidate) {
          result('ELECTION_NOT_NEEDED', `${name}-${partition} has ${unclean ? 'a' : 'its preferred'} leader (${p.leader})`);
          continue;
        }
        if (candidate === undefined || !this.#brokers.has(candidate) || (!unclean && !p.isr.includes(candidate))) {
          result(unclean ? 'ELIGIBLE_LEADERS_NOT_AVAILABLE' : 'PREFERRED_LEADER_NOT_AVAILABLE', `no eligible leader for ${name}-${partition}`);
          continue;
        }
        const isr = unclean && !p.isr.includes(candidate) ? [candidate] : p.isr;
        const next: PartitionState = { ...p, leader: candidate, leaderEpoch: p.leaderEpoch + 1, isr, version: p.version + 1 };
        changed.set(name, { ...topic, partitions: topic.partitions.map((q) => (q.partition === partition ? next : q)) });
        result(null, '');
      }
      for (const topic of changed.values()) this.#replaceTopic(topic);
      const events = [...changed.values()].map((topic): MetadataEvent => ({ type: 'topic-updated', topic }));
      return { result: results, event: events, unchanged: changed.size === 0 };
    });
  }

  /**
   * One node has nowhere to move a partition: a target naming only registered brokers (this one) is
   * where the partition already is (accepted, nothing to do); any other broker is unknown
   * (INVALID_REPLICA_ASSIGNMENT), and there is never a move to cancel.
   */
  async alterPartitionReassignments(reassignments: ReassignmentInput[]): Promise<ReassignmentResult[]> {
    await this.#writes;
    const state = this.#require();
    return reassignments.map(({ topic, partition, replicas }): ReassignmentResult => {
      const at = (error: ReassignmentResult['error'], message = '') => ({ topic, partition, error, message });
      const p = state.topics.find((t) => t.name === topic)?.partitions[partition];
      if (!p) return at('UNKNOWN_TOPIC_OR_PARTITION', `partition ${topic}-${partition} does not exist`);
      if (replicas === null) return at('NO_REASSIGNMENT_IN_PROGRESS', `no reassignment of ${topic}-${partition} is in progress`);
      const unknown = replicas.filter((id) => !this.#brokers.has(id));
      if (replicas.length === 0 || new Set(replicas).size !== replicas.length || unknown.length > 0) {
        return at('INVALID_REPLICA_ASSIGNMENT', unknown.length > 0 ? `Unknown broker(s) in replica assignment: ${unknown.join(', ')}.` : 'the replicas must be distinct brokers, at least one');
      }
      return at(null);
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
    const known = new Set(this.#brokerIds());
    const unknown = [...new Set(assignments.flat())].filter((id) => !known.has(id)).sort((a, b) => a - b);
    if (unknown.length > 0) throw new MetadataError('INVALID_REPLICA_ASSIGNMENT', `Unknown broker(s) in replica assignment: ${unknown.join(', ')}.`);
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
   * restores the previous state so memory never runs ahead of disk. `unchanged` (a refusal or a
   * no-op that mutated nothing) skips the epoch and the write.
   */
  #write<T>(change: () => { result: T; event: MetadataEvent | MetadataEvent[] | undefined; unchanged?: boolean }): Promise<T> {
    const next = this.#writes.then(async () => {
      const state = this.#require();
      const before = structuredClone(state);
      const brokersBefore = new Map(this.#brokers);
      let outcome: { result: T; event: MetadataEvent | MetadataEvent[] | undefined; unchanged?: boolean };
      try {
        outcome = change();
        if (outcome.unchanged) return outcome.result;
        state.epoch++;
        await this.#persist();
      } catch (err) {
        this.#state = before;
        this.#brokers = brokersBefore;
        throw err;
      } finally {
        this.#snapshot = undefined;
      }
      for (const event of [outcome.event ?? []].flat()) for (const listener of this.#listeners) listener(event);
      return outcome.result;
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  async #persist(): Promise<void> {
    try {
      // tmp, fsync, rename, fsync of the directory: a crash never brings back an older state.
      await replaceFileDurably(this.#path, JSON.stringify(this.#state, null, 1));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
      // A full disk is retryable: the old file is whole, the change is rolled back by #write.
      throw new MetadataError('STORE_UNAVAILABLE', `${this.#path}: no space left to write the metadata file`, { cause: err, retriable: true });
    }
  }
}
