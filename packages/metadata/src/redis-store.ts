import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { silentLogger, type Logger } from '@runnel/common';
import { readEpochFile, writeEpochFile, type EpochRecord } from './epoch-file.ts';
import { MetadataError } from './errors.ts';
import { connectRedis, mapRedisError, waitReady } from './redis-connection.ts';
import type { ClientQuotaAlteration } from './client-quotas.ts';
import { encodeUserScram, type ScramCredentialDeletion, type ScramCredentialUpsert } from './scram.ts';
import { CHANGES_CHANNEL, KEYS, canonicalJson, encodeCoordinators, readCluster, type RawCluster } from './redis-layout.ts';
import type {
  AlterPartitionInput, AlterPartitionResult, BrokerRegistration, CreateTopicSpec, ElectionResult, MetadataEvent, MetadataSnapshot, MetadataStore,
  MetadataWriter, NodeRegistrationInput, ReassignmentInput, ReassignmentResult, TopicMetadata,
} from './types.ts';
import type { AclBinding, AclBindingFilter } from './acls.ts';

export interface RedisStoreOptions {
  /** `runnel.redis.url`: redis://host:port[/db] or redis+unix:///path.sock */
  url: string;
  nodeId: number;
  /** Where writes go (the controller over RPC); this store never writes to Redis. */
  writer: MetadataWriter;
  /**
   * The cluster id on this node's disk: a Redis holding another one is refused at start()
   * (CLUSTER_ID_MISMATCH). Without it the node takes the id of the first metadata it loads.
   */
  clusterId?: string;
  /** `broker.heartbeat.interval.ms` (default 2000). */
  heartbeatIntervalMs?: number;
  /** `broker.session.timeout.ms` (default 9000): heartbeats failing this long mean the session is gone; register again. */
  sessionTimeoutMs?: number;
  /** The version poll, the backstop for lost pub/sub messages (default 1000). */
  pollIntervalMs?: number;
  /** How long start() waits for Redis (default 5000). */
  startTimeoutMs?: number;
  /** How long a write waits for its version to become visible here (default 10000). */
  writeVisibleTimeoutMs?: number;
  /**
   * Where this node keeps the highest controller epoch (and the version then, and the cluster id)
   * it has followed, across restarts (format: epoch-file.ts); the cli puts it in the first log
   * dir. start() refuses a Redis below it (STALE_EPOCH) or of another cluster (CLUSTER_ID_MISMATCH),
   * and a file it cannot read (CORRUPT_STATE). Without it the floor lives in memory only.
   */
  epochFile?: string;
  logger?: Logger;
}

interface Session {
  input: Omit<BrokerRegistration, 'brokerEpoch'>;
  registration: BrokerRegistration;
  lastOk: number;
  register: boolean;
  /** Registering again is refused: another process holds the node id (logged once). */
  held?: boolean;
}

/**
 * A cluster node's view of metadata (docs/metadata.md): it reads Redis (key layout in redis-layout.ts)
 * and sends every write to the controller through `writer`. The snapshot is reloaded whole,
 * atomically (MULTI), when the controller PUBLISHes a new version and when the 1 s version poll
 * finds one it missed (pub/sub is at-most-once); events come from diffing two snapshots, so a
 * missed message loses nothing. While Redis is away the last snapshot keeps serving (docs/metadata.md, rule 6).
 *
 * What it refuses to take from Redis (docs/metadata.md, rules 1 and 6), because only a wiped or rolled-back Redis
 * shows it: another cluster id than the one pinned (the `clusterId` option, else the first one
 * loaded; no id at all once one was seen), a controller epoch below the highest applied, a version
 * below the one served. Then the node is *detached*: it logs one error, keeps serving its last
 * snapshot, stops heartbeating and registering (a node must not join another cluster), and
 * refuses writes with CLUSTER_ID_MISMATCH until an operator restarts it.
 *
 * With `epochFile` that floor survives a restart: the node records its highest controller epoch
 * (with the version then and the cluster id) on disk whenever the epoch rises, and start() refuses
 * a Redis below it (STALE_EPOCH) or without its cluster id (CLUSTER_ID_MISMATCH).
 */
export class RedisStore implements MetadataStore {
  readonly #o: Required<Omit<RedisStoreOptions, 'clusterId' | 'epochFile' | 'logger'>> & { clusterId: string | undefined; epochFile: string | undefined };
  readonly #logger: Logger;
  /** This process's registrations (Kafka's incarnation id): a live node id is refused to any other. */
  readonly #incarnationId = randomBytes(16).toString('base64url');
  #redis: Redis | undefined;
  #sub: Redis | undefined;
  #snapshot: MetadataSnapshot | undefined;
  #listeners = new Set<(e: MetadataEvent) => void>();
  #inflight: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #session: Session | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The cluster this node belongs to: the `clusterId` option, else the first id loaded from Redis. */
  #clusterId: string | undefined;
  /** Redis has shown #clusterId: from then on a Redis showing none was wiped. */
  #clusterIdSeen = false;
  /** The highest controller epoch applied; a lower one is never applied (docs/metadata.md, rule 1). */
  #controllerEpoch = 0;
  /** Why this node stopped following Redis (see the class comment), once it has. */
  #detached: string | undefined;
  /** What the epoch file had at start(): the floor the first load must reach. */
  #floor: EpochRecord | undefined;
  /** What was last handed to the epoch file (written or being written); undefined before the first load. */
  #recorded: EpochRecord | undefined;
  /** The last epoch-file write failed: the next applied change writes again. */
  #recordFailed = false;
  /** Epoch-file writes, one at a time, in order. */
  #recording: Promise<void> = Promise.resolve();

  private constructor(o: RedisStoreOptions) {
    this.#o = {
      url: o.url,
      nodeId: o.nodeId,
      writer: o.writer,
      clusterId: o.clusterId,
      heartbeatIntervalMs: o.heartbeatIntervalMs ?? 2_000,
      sessionTimeoutMs: o.sessionTimeoutMs ?? 9_000,
      pollIntervalMs: o.pollIntervalMs ?? 1_000,
      startTimeoutMs: o.startTimeoutMs ?? 5_000,
      writeVisibleTimeoutMs: o.writeVisibleTimeoutMs ?? 10_000,
      epochFile: o.epochFile,
    };
    this.#logger = o.logger ?? silentLogger();
    this.#clusterId = o.clusterId;
  }

  static create(o: RedisStoreOptions): RedisStore {
    return new RedisStore(o);
  }

  /**
   * Reads the epoch file (if any), connects, loads the first snapshot and subscribes.
   * STORE_UNAVAILABLE if Redis does not answer in time; CLUSTER_ID_MISMATCH or STALE_EPOCH if it
   * holds another cluster or less than this node has followed; CORRUPT_STATE for an unreadable epoch file.
   */
  async start(): Promise<void> {
    this.#refuseIfDetached();
    await this.#readFloor();
    this.#stopped = false;
    this.#recorded = undefined;
    const redis = connectRedis(this.#o.url, this.#logger, 'metadata');
    const sub = connectRedis(this.#o.url, this.#logger, 'metadata-subscriber', { autoResubscribe: true });
    this.#redis = redis;
    this.#sub = sub;
    try {
      await waitReady(redis, this.#o.url, this.#o.startTimeoutMs);
      let raw: RawCluster;
      try {
        raw = await readCluster(redis);
      } catch (err) {
        throw mapRedisError(err);
      }
      this.#checkClusterId(raw);
      this.#checkFloor(raw);
      this.#admit(raw);
      this.#refuseIfDetached();
      await this.#recording;
      await waitReady(sub, this.#o.url, this.#o.startTimeoutMs);
      await sub.subscribe(CHANGES_CHANNEL);
    } catch (err) {
      redis.disconnect();
      sub.disconnect();
      this.#redis = this.#sub = undefined;
      throw err;
    }
    sub.on('message', (_channel: string, message: string) => {
      if (Number(message) > (this.#snapshot?.epoch ?? -1)) this.#refreshQuietly();
    });
    // Whatever was published while a connection was down is read on its return.
    redis.on('ready', () => this.#refreshQuietly());
    sub.on('ready', () => this.#refreshQuietly());
    this.#schedulePoll();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#heartbeatTimer);
    this.#session = undefined;
    for (const r of [this.#sub, this.#redis]) {
      if (!r) continue;
      if (r.status === 'ready') await r.quit().catch(() => r.disconnect());
      else r.disconnect();
    }
    this.#redis = this.#sub = undefined;
    await this.#inflight?.catch(() => {});
    await this.#recording;
    this.#listeners.clear();
  }

  snapshot(): MetadataSnapshot {
    if (!this.#snapshot) throw new MetadataError('STORE_UNAVAILABLE', 'metadata store used before start()');
    return this.#snapshot;
  }

  subscribe(listener: (event: MetadataEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Registers through the controller and keeps the session alive: a heartbeat every
   * heartbeatIntervalMs; when the controller answers `fenced` (or heartbeats fail for longer than
   * the session timeout) the node registers again with the same input and a new broker epoch.
   * Every registration carries this store's incarnation id. While the node id is live under
   * another process (DUPLICATE_BROKER_REGISTRATION) it waits, logging once, and tries again every
   * heartbeat interval until that session expires or this store stops.
   */
  async registerBroker(input: NodeRegistrationInput): Promise<BrokerRegistration> {
    const full: Omit<BrokerRegistration, 'brokerEpoch'> = {
      nodeId: input.nodeId, host: input.host, port: input.port, rack: input.rack, roles: input.roles ?? ['broker'], rpc: input.rpc ?? null,
      incarnationId: this.#incarnationId,
      ...(input.endpoints?.length ? { endpoints: input.endpoints } : {}),
    };
    // Look at Redis first: a node must not join a cluster that is not its own.
    await this.refresh().catch(() => {});
    this.#refuseIfDetached();
    const { registration, version } = await this.#registerWaiting(full);
    await this.#reach(version);
    this.#refuseIfDetached();
    clearTimeout(this.#heartbeatTimer);
    const session: Session = { input: full, registration, lastOk: Date.now(), register: false };
    this.#session = session;
    this.#scheduleHeartbeat(session, this.#o.heartbeatIntervalMs);
    return registration;
  }

  /** registerNode, retried while the node id is held by another live process (see registerBroker). */
  async #registerWaiting(input: Omit<BrokerRegistration, 'brokerEpoch'>): Promise<{ registration: BrokerRegistration; version: number }> {
    let logged = false;
    for (;;) {
      try {
        return await this.#o.writer.registerNode(input);
      } catch (err) {
        if (!(err instanceof MetadataError) || err.code !== 'DUPLICATE_BROKER_REGISTRATION') throw err;
        if (!logged) {
          logged = true;
          this.#logHeld(input.nodeId, err, input);
        }
      }
      await new Promise((r) => setTimeout(r, this.#o.heartbeatIntervalMs));
      if (this.#stopped) throw new MetadataError('STORE_UNAVAILABLE', `metadata store stopped while node id ${input.nodeId} was held by another process`);
      this.#refuseIfDetached();
    }
  }

  #logHeld(nodeId: number, err: MetadataError, input: Omit<BrokerRegistration, 'brokerEpoch'>): void {
    const holder = this.#snapshot?.brokers.get(nodeId);
    const where = holder ? `${holder.host}:${holder.port}` : 'another address';
    // The same address is most likely this node's previous process (a quick restart), which
    // resolves itself when that session expires; another address is a duplicated node.id.
    const restart = holder !== undefined && holder.host === input.host && holder.port === input.port;
    const log = restart ? this.#logger.warn.bind(this.#logger) : this.#logger.error.bind(this.#logger);
    log({ refusal: err.message }, `node id ${nodeId} is held by a live process at ${where}; waiting for its session to expire`);
  }

  /**
   * Replication, leader side: the ISR proposal goes to the controller with this node's broker
   * epoch; resolves once the answer's version is in the snapshot. Without a session (not
   * registered, or registering again) it is STALE_BROKER_EPOCH without a call.
   */
  async alterPartition(request: AlterPartitionInput): Promise<AlterPartitionResult> {
    this.#refuseIfDetached();
    const session = this.#session;
    if (!session || session.register) {
      return { error: 'STALE_BROKER_EPOCH', partition: this.#snapshot?.topics.get(request.topic)?.partitions[request.partition] ?? null };
    }
    const { result, version } = await this.#o.writer.alterPartition({ ...request, nodeId: session.input.nodeId, brokerEpoch: session.registration.brokerEpoch });
    await this.#reach(version);
    return result;
  }

  /**
   * Controlled shutdown: the controller moves this node's leaderships to other in-sync replicas
   * and takes it out of every ISR it shares; resolves with the count it still leads once the
   * snapshot shows the change. With `final` (the process is stopping) and none left, the
   * controller has fenced the node and the session ends here: no more heartbeats, no registering
   * again, and a restarted process registers at once. Without `final` (a step-down: the node goes
   * on as a follower) it registers again at once, which ends the controlled shutdown at the
   * controller, so its leaders may propose it back into their ISRs once it has caught up.
   * Without a session there is nothing to hand over.
   */
  async controlledShutdown(options: { final?: boolean } = {}): Promise<{ remaining: number }> {
    this.#refuseIfDetached();
    const session = this.#session;
    if (!session) return { remaining: 0 };
    const { remaining, version } = await this.#o.writer.shutdownNode(session.input.nodeId, session.registration.brokerEpoch);
    if (this.#session === session) {
      clearTimeout(this.#heartbeatTimer);
      if (options.final) {
        if (remaining === 0) this.#session = undefined;
        else this.#scheduleHeartbeat(session, this.#o.heartbeatIntervalMs);
      } else {
        session.register = true;
        this.#scheduleHeartbeat(session, 0);
      }
    }
    await this.#reach(version);
    return { remaining };
  }

  async electLeaders(partitions: { topic: string; partition: number }[] | null, unclean: boolean): Promise<ElectionResult[]> {
    this.#refuseIfDetached();
    const { results, version } = await this.#o.writer.electLeaders(partitions, unclean);
    await this.#reach(version);
    return results;
  }

  /** Kafka's AlterPartitionReassignments through the controller; resolves once the snapshot shows the moves started. */
  async alterPartitionReassignments(reassignments: ReassignmentInput[]): Promise<ReassignmentResult[]> {
    this.#refuseIfDetached();
    if (!this.#o.writer.alterReassignments) throw new MetadataError('STORE_UNAVAILABLE', 'this node\'s controller channel cannot reassign partitions');
    const { results, version } = await this.#o.writer.alterReassignments(reassignments);
    await this.#reach(version);
    return results;
  }

  /** Client quotas through the controller; resolves once the snapshot holds them. */
  async alterClientQuotas(entries: ClientQuotaAlteration[]): Promise<void> {
    this.#refuseIfDetached();
    if (!this.#o.writer.alterClientQuotas) throw new MetadataError('STORE_UNAVAILABLE', 'this node\'s controller channel cannot alter client quotas');
    const { version } = await this.#o.writer.alterClientQuotas(entries);
    await this.#reach(version);
  }

  /** SCRAM credentials through the controller; resolves once the snapshot holds them. */
  async alterScramCredentials(upserts: ScramCredentialUpsert[], deletions: ScramCredentialDeletion[]): Promise<void> {
    this.#refuseIfDetached();
    if (!this.#o.writer.alterScramCredentials) throw new MetadataError('STORE_UNAVAILABLE', 'this node\'s controller channel cannot alter SCRAM credentials');
    const { version } = await this.#o.writer.alterScramCredentials(upserts, deletions);
    await this.#reach(version);
  }

  /** Dynamic broker configs through the controller; resolves once the snapshot holds them. */
  async alterBrokerConfigs(nodeId: number | null, configs: Record<string, string | null>): Promise<void> {
    this.#refuseIfDetached();
    if (!this.#o.writer.alterBrokerConfigs) throw new MetadataError('STORE_UNAVAILABLE', 'this node\'s controller channel cannot alter broker configs');
    const { version } = await this.#o.writer.alterBrokerConfigs(nodeId, configs);
    await this.#reach(version);
  }

  /** ACLs through the controller; resolves once the snapshot holds them. */
  async createAcls(bindings: AclBinding[]): Promise<void> {
    this.#refuseIfDetached();
    if (!this.#o.writer.createAcls) throw new MetadataError('STORE_UNAVAILABLE', 'this node\'s controller channel cannot create ACLs');
    const { version } = await this.#o.writer.createAcls(bindings);
    await this.#reach(version);
  }

  /** Removes the ACLs the filters match through the controller; resolves (with what each matched) once the snapshot is without them. */
  async deleteAcls(filters: AclBindingFilter[]): Promise<AclBinding[][]> {
    this.#refuseIfDetached();
    if (!this.#o.writer.deleteAcls) throw new MetadataError('STORE_UNAVAILABLE', 'this node\'s controller channel cannot delete ACLs');
    const { deleted, version } = await this.#o.writer.deleteAcls(filters);
    await this.#reach(version);
    return deleted;
  }

  /** The registration of the running session (it changes when the node registers again), if any. */
  registration(): BrokerRegistration | undefined {
    return this.#session?.registration;
  }

  async createTopic(spec: CreateTopicSpec): Promise<TopicMetadata> {
    this.#refuseIfDetached();
    const { topic, version } = await this.#o.writer.createTopic(spec);
    await this.#reach(version);
    return topic;
  }

  async deleteTopic(name: string): Promise<void> {
    this.#refuseIfDetached();
    const { version } = await this.#o.writer.deleteTopic(name);
    await this.#reach(version);
  }

  async createPartitions(name: string, totalCount: number, assignments?: number[][]): Promise<TopicMetadata> {
    this.#refuseIfDetached();
    const { topic, version } = await this.#o.writer.createPartitions(name, totalCount, assignments);
    await this.#reach(version);
    return topic;
  }

  async alterTopicConfigs(name: string, configs: Record<string, string | null>): Promise<TopicMetadata> {
    this.#refuseIfDetached();
    const { topic, version } = await this.#o.writer.alterTopicConfigs(name, configs);
    await this.#reach(version);
    return topic;
  }

  async allocateProducerId(): Promise<bigint> {
    this.#refuseIfDetached();
    return this.#o.writer.allocateProducerId();
  }

  /** Reloads now (one load at a time; a call during a load gets the next one, which starts after it). */
  refresh(): Promise<void> {
    if (!this.#inflight) {
      this.#inflight = this.#load().finally(() => { this.#inflight = undefined; });
      return this.#inflight;
    }
    this.#queued ??= this.#inflight.catch(() => {}).then(() => {
      this.#queued = undefined;
      return this.refresh();
    });
    return this.#queued;
  }

  async #load(): Promise<void> {
    const redis = this.#redis;
    if (!redis || this.#stopped || this.#detached) return;
    let raw: RawCluster;
    try {
      raw = await readCluster(redis);
    } catch (err) {
      throw mapRedisError(err);
    }
    if (this.#stopped || this.#detached) return;
    this.#admit(raw);
  }

  /** Applies `raw` if it is newer metadata of this node's cluster; detaches if it cannot be (see the class comment). */
  #admit(raw: RawCluster): void {
    const served = this.#snapshot?.epoch ?? -1;
    const pinned = this.#clusterId;
    let refusal: string | undefined;
    if (pinned !== undefined && raw.clusterId !== pinned && (raw.clusterId !== null || this.#clusterIdSeen)) {
      refusal = `Redis now holds ${raw.clusterId === null ? 'no cluster id' : `cluster ${raw.clusterId}`}, not ${pinned}`;
    } else if (raw.controllerEpoch < this.#controllerEpoch) {
      refusal = `Redis now holds controller epoch ${raw.controllerEpoch}, below ${this.#controllerEpoch} already seen (cluster ${pinned ?? '?'})`;
    } else if (raw.version < served) {
      refusal = `Redis now holds metadata version ${raw.version}, below ${served} already served (cluster ${pinned ?? '?'})`;
    }
    if (refusal !== undefined) return this.#detach(refusal);
    if (raw.clusterId !== null) {
      this.#clusterId ??= raw.clusterId;
      this.#clusterIdSeen = true;
    }
    this.#controllerEpoch = Math.max(this.#controllerEpoch, raw.controllerEpoch);
    if (raw.version > served) this.#apply(raw);
    this.#record();
  }

  /**
   * Hands the epoch file the current floor at the first load, when the controller epoch rises,
   * when the cluster id first shows, and after a failed write; not on every version (that would
   * be an fsync per metadata change). A failed write is logged and never stops the node.
   */
  #record(): void {
    const path = this.#o.epochFile;
    if (path === undefined) return;
    const next: EpochRecord = {
      controllerEpoch: this.#controllerEpoch,
      version: this.#snapshot?.epoch ?? 0,
      clusterId: this.#clusterIdSeen ? this.#clusterId ?? null : null,
    };
    const last = this.#recorded;
    if (last && !this.#recordFailed && next.controllerEpoch <= last.controllerEpoch && next.clusterId === last.clusterId) return;
    this.#recorded = next;
    this.#recordFailed = false;
    this.#recording = this.#recording.then(async () => {
      try {
        await writeEpochFile(path, next);
      } catch (err) {
        this.#recordFailed = true;
        this.#logger.error({ err, path, record: next }, 'cannot write the metadata epoch file; writing it again on the next change');
      }
    });
  }

  /** Reads the epoch file into #floor, and takes its cluster id as this node's. */
  async #readFloor(): Promise<void> {
    const path = this.#o.epochFile;
    if (path === undefined) return;
    const floor = await readEpochFile(path);
    this.#floor = floor;
    if (floor?.clusterId == null) return;
    if (this.#clusterId !== undefined && this.#clusterId !== floor.clusterId) {
      throw new MetadataError('CLUSTER_ID_MISMATCH',
        `this node is configured for cluster ${this.#clusterId}, but its metadata epoch file ${path} belongs to cluster ${floor.clusterId}; an operator must act (remove the file if the node really moved)`);
    }
    this.#clusterId = floor.clusterId;
    this.#clusterIdSeen = true;
  }

  /**
   * The first load against the epoch file: Redis showing no cluster id once one was recorded, a
   * lower controller epoch or a lower version has lost or rolled back data (docs/metadata.md, rules 1 and 6). Refused,
   * so the node never serves it; then the in-memory checks (#admit) keep the floor.
   */
  #checkFloor(raw: RawCluster): void {
    const floor = this.#floor;
    if (!floor) return;
    const path = this.#o.epochFile;
    const act = `Redis lost or rolled back data; an operator must act (restore Redis' data, or remove ${path} to take this Redis as it is)`;
    if (floor.clusterId !== null && raw.clusterId === null) {
      throw new MetadataError('CLUSTER_ID_MISMATCH', `Redis at ${this.#o.url} holds no cluster id, but this node has followed cluster ${floor.clusterId} (${path}): ${act}`);
    }
    if (raw.controllerEpoch < floor.controllerEpoch || raw.version < floor.version) {
      throw new MetadataError('STALE_EPOCH',
        `Redis at ${this.#o.url} holds controller epoch ${raw.controllerEpoch} and metadata version ${raw.version}, but this node has seen controller epoch ${floor.controllerEpoch} and version ${floor.version} (${path}): ${act}`);
    }
    this.#controllerEpoch = Math.max(this.#controllerEpoch, floor.controllerEpoch);
  }

  /** Stops following Redis for good: one error line, the last snapshot stays, the session ends. */
  #detach(reason: string): void {
    if (this.#detached) return;
    this.#detached = reason;
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#pollTimer);
    this.#logger.error({ nodeId: this.#o.nodeId, url: this.#o.url, version: this.#snapshot?.epoch }, `${reason}: keeping the last metadata; an operator must act`);
  }

  #refuseIfDetached(): void {
    if (this.#detached) {
      throw new MetadataError('CLUSTER_ID_MISMATCH', `${this.#detached}: this node no longer follows that Redis, and sends no writes there`);
    }
  }

  #refreshQuietly(): void {
    if (this.#stopped) return;
    this.refresh().catch(() => {}); // the connection logs outages; the poll tries again
  }

  #schedulePoll(): void {
    this.#pollTimer = setTimeout(async () => {
      try {
        const v = Number(await this.#redis?.get(KEYS.version));
        if (v > (this.#snapshot?.epoch ?? -1)) await this.refresh();
      } catch {
        // Redis is away: keep the last snapshot and look again next time.
      }
      if (!this.#stopped && !this.#detached) this.#schedulePoll();
    }, this.#o.pollIntervalMs);
  }

  #checkClusterId(raw: RawCluster): void {
    if (this.#clusterId && raw.clusterId && raw.clusterId !== this.#clusterId) {
      const act = this.#floor?.clusterId === this.#clusterId ? ` (${this.#o.epochFile}): Redis lost or rolled back data; an operator must act` : '';
      throw new MetadataError('CLUSTER_ID_MISMATCH', `Redis at ${this.#o.url} holds cluster ${raw.clusterId}, but this node belongs to ${this.#clusterId}${act}`);
    }
  }

  /** Replaces the snapshot and emits what changed since the previous one. */
  #apply(raw: RawCluster): void {
    const brokers = new Map<number, BrokerRegistration>();
    for (const [id, node] of [...raw.nodes].sort((a, b) => a[0] - b[0])) {
      if (node.fenced) continue;
      const { fenced: _fenced, shuttingDown: _shuttingDown, ...registration } = node;
      brokers.set(id, registration);
    }
    const controller = raw.controller && raw.lease === `${raw.controller.controllerId}:${raw.controller.epoch}` ? raw.controller : null;
    const next: MetadataSnapshot = {
      clusterId: raw.clusterId ?? this.#clusterId ?? '',
      controllerId: controller?.controllerId ?? -1,
      controllerRpc: controller?.rpc ?? null,
      brokers,
      topics: new Map([...raw.topics].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))),
      coordinators: raw.coordinators,
      epoch: raw.version,
      brokerConfigs: raw.brokerConfigs ?? new Map(),
      scramCredentials: raw.scramCredentials ?? new Map(),
      clientQuotas: raw.clientQuotas ?? new Map(),
      // The same array while the ACLs are unchanged: the authorizer indexes them again only on a change.
      acls: this.#snapshot && canonicalJson(this.#snapshot.acls ?? []) === canonicalJson(raw.acls ?? []) ? this.#snapshot.acls : (raw.acls ?? []),
    };
    const previous = this.#snapshot;
    this.#snapshot = next;
    if (!previous) return;
    for (const event of diff(previous, next)) {
      this.#emit(event);
    }
  }

  #emit(event: MetadataEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#logger.error({ err, event: event.type }, 'metadata listener threw');
      }
    }
  }

  /**
   * Waits until the local snapshot has reached `version`: reloads at once, then every 50 ms while
   * Redis shows less (or cannot be read), until writeVisibleTimeoutMs (retriable STORE_UNAVAILABLE).
   */
  async #reach(version: number): Promise<void> {
    const deadline = Date.now() + this.#o.writeVisibleTimeoutMs;
    for (;;) {
      if ((this.#snapshot?.epoch ?? -1) >= version) return;
      if (this.#stopped) throw new MetadataError('STORE_UNAVAILABLE', 'metadata store stopped');
      this.#refuseIfDetached();
      let failure: unknown;
      try {
        await this.refresh();
      } catch (err) {
        failure = err;
      }
      const seen = this.#snapshot?.epoch ?? -1;
      if (seen >= version) return;
      this.#refuseIfDetached();
      if (Date.now() >= deadline) {
        throw failure === undefined
          ? new MetadataError('STORE_UNAVAILABLE', `the change was written, but version ${version} not visible here after ${this.#o.writeVisibleTimeoutMs} ms (Redis shows ${seen})`, { retriable: true })
          : new MetadataError('STORE_UNAVAILABLE', `the change was written (version ${version}) but Redis cannot be read to see it`, { cause: failure, retriable: true });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  #scheduleHeartbeat(session: Session, delayMs: number): void {
    this.#heartbeatTimer = setTimeout(() => void this.#heartbeat(session), delayMs);
  }

  async #heartbeat(session: Session): Promise<void> {
    if (this.#session !== session || this.#stopped || this.#detached) return;
    const nodeId = session.input.nodeId;
    let next = this.#o.heartbeatIntervalMs;
    try {
      if (session.register) {
        // The controller no longer knows this node: is Redis still this node's cluster? (a wipe looks like this)
        await this.refresh();
        if (this.#detached || this.#session !== session) return;
        let answer: { registration: BrokerRegistration; version: number };
        try {
          answer = await this.#o.writer.registerNode(session.input);
        } catch (err) {
          // Another process took the node id while this one was fenced: wait for its session to end.
          if (!(err instanceof MetadataError) || err.code !== 'DUPLICATE_BROKER_REGISTRATION') throw err;
          if (this.#session !== session || this.#detached) return;
          if (!session.held) this.#logHeld(nodeId, err, session.input);
          session.held = true;
          this.#scheduleHeartbeat(session, next);
          return;
        }
        const { registration, version } = answer;
        if (this.#session !== session || this.#detached) return;
        session.held = false;
        session.registration = registration;
        session.register = false;
        session.lastOk = Date.now();
        this.#logger.info({ nodeId, brokerEpoch: registration.brokerEpoch }, 'registered again with the controller');
        this.#reach(version).catch(() => {});
      } else {
        const { fenced } = await this.#o.writer.heartbeat(nodeId, session.registration.brokerEpoch);
        if (this.#session !== session || this.#detached) return;
        if (fenced) {
          this.#logger.warn({ nodeId, brokerEpoch: session.registration.brokerEpoch }, 'the controller fenced this node; registering again');
          session.register = true;
          next = 0;
        } else {
          session.lastOk = Date.now();
        }
      }
    } catch (err) {
      if (this.#session !== session || this.#detached) return;
      const silentFor = Date.now() - session.lastOk;
      this.#logger.warn({ nodeId, err: (err as Error).message, silentFor }, 'heartbeat to the controller failed');
      if (silentFor > this.#o.sessionTimeoutMs) session.register = true;
    }
    if (this.#session === session && !this.#stopped && !this.#detached) this.#scheduleHeartbeat(session, next);
  }
}

/** The events that take `a` to `b`. */
function diff(a: MetadataSnapshot, b: MetadataSnapshot): MetadataEvent[] {
  const events: MetadataEvent[] = [];
  const scramOf = (s: MetadataSnapshot) => canonicalJson([...(s.scramCredentials ?? new Map())].map(([u, m]) => [u, encodeUserScram(m)]));
  if (scramOf(a) !== scramOf(b)) events.push({ type: 'scram-credentials-changed' });
  const quotasOf = (s: MetadataSnapshot) => canonicalJson([...(s.clientQuotas ?? new Map())]);
  if (quotasOf(a) !== quotasOf(b)) events.push({ type: 'client-quotas-changed' });
  for (const [name, topic] of b.topics) {
    const old = a.topics.get(name);
    if (!old || old.topicId !== topic.topicId) {
      if (old) events.push({ type: 'topic-deleted', name });
      events.push({ type: 'topic-created', topic });
    } else if (canonicalJson(old) !== canonicalJson(topic)) {
      events.push({ type: 'topic-updated', topic });
    }
  }
  for (const name of a.topics.keys()) if (!b.topics.has(name)) events.push({ type: 'topic-deleted', name });
  for (const [id, node] of b.brokers) {
    const old = a.brokers.get(id);
    if (!old || canonicalJson(old) !== canonicalJson(node)) events.push({ type: 'broker-registered', broker: node });
  }
  for (const id of a.brokers.keys()) if (!b.brokers.has(id)) events.push({ type: 'node-fenced', nodeId: id });
  if (encodeCoordinators(a.coordinators) !== encodeCoordinators(b.coordinators)) events.push({ type: 'coordinators-changed' });
  const configsOf = (s: MetadataSnapshot) => canonicalJson(Object.fromEntries(s.brokerConfigs ?? []));
  if (configsOf(a) !== configsOf(b)) events.push({ type: 'broker-configs-changed' });
  if (a.acls !== b.acls) events.push({ type: 'acls-changed' });
  return events;
}
