import { randomBytes } from 'node:crypto';
import { silentLogger, type BrokerConfig, type Logger, type Registry } from '@runnel/common';
import { MetadataError, clientQuotaKey, newClusterId, parseClientQuotaKey, type ClusterChange, type ClusterState, type ControllerStore } from '@runnel/metadata';
import { RpcServer, RpcTls, parseAddress, type Address, type NodeRegistration, type RpcHandlers } from '@runnel/rpc';
import { OFFSETS_TOPIC } from '@runnel/common';
import {
  alterBrokerConfigs, alterPartition, alterReassignments, alterTopicConfigs, applyChange, controlledShutdown, createAcls, createPartitions, createTopic, deleteAcls, deleteTopic, electLeaders,
  expiredNodes, fenceNodes, isEmpty, isFenced, rebalanceLeaders, refuseDuplicate, registerNode, settle, type Settings,
} from './cluster-state.ts';
import { ControllerError } from './errors.ts';
import { countElections, registerControllerMetrics } from './metrics.ts';

/** Producer ids are taken from Redis in blocks and handed out one by one. */
const PRODUCER_ID_BLOCK = 1000;
/** How often the liveness check runs (fencing happens at most this late after the session timeout). */
const LIVENESS_INTERVAL_MS = 500;
/** Pause between attempts when Redis refuses a campaign or a takeover. */
const RETRY_MS = 500;

export interface ControllerOptions {
  config: BrokerConfig;
  /** Owned from here on: start() connects it, stop() releases the lease and disconnects it. */
  store: ControllerStore;
  logger?: Logger;
  /**
   * Called once when the controller cannot go on (Redis holds another cluster id). The controller
   * has stopped serving; the process should exit. Default: log it at fatal level.
   */
  onFatal?: (err: Error) => void;
}

/**
 * The controller role: the only writer of cluster metadata. It serves the 'controller.*' RPC
 * methods; every process runs one, and the one holding the Redis lease is active, the others are
 * standbys answering NOT_CONTROLLER (retriable) and campaigning for the lease.
 *
 * Decisions come from cluster-state.ts (pure); this class does the I/O and the timing:
 * - writes run one at a time (a promise queue) against the state it last committed, each as one
 *   fenced ControllerStore.commit; a commit that finds a newer controller epoch (STALE_EPOCH)
 *   means the lease is gone: it stops serving at once and campaigns again;
 * - a write that fails otherwise (Redis unreachable, a compare-and-set conflict) leaves the state
 *   unknown: it is reloaded before the next write;
 * - liveness: `lastSeen` per node in memory (monotonic clock), set by registrations and
 *   heartbeats and, on takeover, to "now" for every unfenced node; a timer fences the nodes not
 *   heard from for `broker.session.timeout.ms`.
 */
export class Controller {
  readonly #config: BrokerConfig;
  readonly #store: ControllerStore;
  readonly #baseLog: Logger;
  readonly #onFatal: (err: Error) => void;
  readonly #settings: Settings;
  readonly #sessionTimeoutMs: number;
  #log: Logger;
  #server: RpcServer | undefined;
  #stopped = false;
  /** Set when the controller cannot continue; it never campaigns again. */
  #fatal: Error | undefined;
  #active = false;
  #epoch = -1;
  /**
   * The highest epoch this process was fenced in. The store may still believe it holds that lease
   * until its next renewal, and campaign() would hand the stale epoch back at once.
   */
  #fencedEpoch = -1;
  /** Increases whenever this process wins or loses the lease; work of an older term is dropped. */
  #term = 0;
  #campaigning = false;
  #abort = new AbortController();
  #state: ClusterState | undefined;
  /** Leader elections this process committed (metrics). */
  readonly #elections = { leader: 0, unclean: 0 };
  /** The committed state may differ from #state (a failed or ambiguous commit): reload first. */
  #reload = false;
  #lastSeen = new Map<number, number>();
  #queue: Promise<unknown> = Promise.resolve();
  #liveness: NodeJS.Timeout | undefined;
  #producerIds = { next: 0n, end: 0n };
  #rebalance: NodeJS.Timeout | undefined;

  private constructor(options: ControllerOptions) {
    this.#config = options.config;
    this.#store = options.store;
    const logger = options.logger ?? silentLogger();
    // The cli's role logger may carry the node id already; JSON lines should not repeat a key.
    this.#baseLog = 'nodeId' in logger.bindings() ? logger : logger.child({ nodeId: options.config.nodeId });
    this.#log = this.#baseLog;
    this.#onFatal = options.onFatal ?? ((err) => this.#log.fatal({ err }, 'controller cannot continue'));
    this.#sessionTimeoutMs = options.config.get('broker.session.timeout.ms');
    this.#settings = {
      offsetsPartitions: options.config.get('offsets.topic.num.partitions'),
      offsetsReplicationFactor: options.config.get('offsets.topic.replication.factor'),
      // Kafka's precedence (topic override, this node's dynamic config, the cluster default, the
      // static value), read from the state each decision is made on: AlterConfigs applies it live.
      uncleanLeaderElection: (state) => options.config.withDynamic(state.brokerConfigs, options.config.nodeId).get('unclean.leader.election.enable'),
      newTopicId: () => randomBytes(16).toString('hex'),
    };
  }

  static create(options: ControllerOptions): Controller {
    return new Controller(options);
  }

  /**
   * Connects the store, refuses a Redis that belongs to another cluster (`cluster.id`), starts the
   * RPC server on `runnel.rpc.listener`, and campaigns for the lease in the background.
   */
  async start(): Promise<void> {
    await this.#store.start();
    try {
      this.#checkClusterId(await this.#store.load());
      const { host, port } = parseAddress(this.#config.get('runnel.rpc.listener'));
      this.#server = RpcServer.create({ host, port, handlers: this.#handlers(), logger: this.#baseLog.child({ component: 'rpc' }), tls: RpcTls.for(this.#config, this.#baseLog.child({ component: 'rpc' })) });
      await this.#server.start();
    } catch (err) {
      this.#server = undefined;
      await this.#store.stop();
      throw err;
    }
    this.#store.onLost(() => this.#lose('the lease was lost'));
    this.#log.info({ rpc: this.#server.address() }, 'controller started; campaigning for the lease');
    this.#campaign();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#term++; // work queued by the current term is dropped
    this.#abort.abort();
    this.#standBy();
    await this.#queue;
    await this.#server?.stop();
    await this.#store.stop();
    this.#log.info('controller stopped');
  }

  /** Where nodes reach this controller (written into the lease, so they find it through Redis). */
  rpcAddress(): Address {
    if (!this.#server) throw new ControllerError('NOT_CONTROLLER', 'controller not started');
    return this.#server.advertisedAddress();
  }

  isActive(): boolean {
    return this.#active;
  }

  /** Adds the controller's metrics (active controller, partition counts, elections) to a registry. */
  registerMetrics(registry: Registry): void {
    registerControllerMetrics(registry, {
      isActive: () => this.#active,
      state: () => this.#state,
      elections: () => ({ ...this.#elections }),
    });
  }

  /** The controller epoch of the current (or last) term; -1 before the first win. */
  epoch(): number {
    return this.#epoch;
  }

  // ---------------------------------------------------------------------------------- the lease

  /** Campaigns in the background until this process holds the lease, then takes over. */
  #campaign(): void {
    if (this.#campaigning || this.#stopped || this.#fatal) return;
    this.#campaigning = true;
    void (async () => {
      try {
        while (!this.#stopped && !this.#fatal) {
          let epoch: number;
          try {
            epoch = await this.#store.campaign(this.rpcAddress(), this.#abort.signal);
          } catch (err) {
            if (this.#stopped) return;
            this.#log.warn({ err }, 'campaign failed; retrying');
            await sleep(RETRY_MS);
            continue;
          }
          if (this.#stopped) return;
          if (epoch <= this.#fencedEpoch) {
            await sleep(RETRY_MS); // wait for the store to notice the lease is gone
            continue;
          }
          const term = ++this.#term;
          if (await this.#takeOver(epoch, term)) return;
          if (this.#term !== term) continue; // lost while taking over: campaign again
          return; // fatal
        }
      } finally {
        this.#campaigning = false;
      }
    })();
  }

  /**
   * Loads the state (retrying while the lease is held), writes the cluster id once, treats every
   * unfenced node as heard from now, and settles what follows (offsets topic, coordinators).
   * @returns true when active, false when the term ended or the controller cannot continue.
   */
  async #takeOver(epoch: number, term: number): Promise<boolean> {
    const log = this.#baseLog.child({ epoch });
    for (;;) {
      if (this.#stopped || this.#fatal || this.#term !== term) return false;
      try {
        return await this.#enqueue(async () => {
          if (this.#term !== term || this.#stopped) return false;
          const loaded = await this.#store.load();
          this.#checkClusterId(loaded);
          let change: ClusterChange = {};
          if (loaded.clusterId === null) change.clusterId = this.#config.get('cluster.id') ?? newClusterId();
          change = settle(loaded, change, this.#settings);
          const state = isEmpty(change) ? loaded : applyChange(loaded, change, await this.#store.commit(change));
          if (this.#term !== term || this.#stopped) return false;
          const now = performance.now();
          this.#lastSeen = new Map([...state.nodes.values()].filter((n) => !n.fenced).map((n) => [n.nodeId, now]));
          this.#state = state;
          this.#reload = false;
          this.#epoch = epoch;
          this.#log = log;
          this.#active = true;
          this.#producerIds = { next: 0n, end: 0n };
          this.#liveness = setInterval(() => this.#checkLiveness(), Math.min(LIVENESS_INTERVAL_MS, this.#sessionTimeoutMs / 3));
          this.#liveness.unref();
          if (this.#config.get('auto.leader.rebalance.enable')) {
            this.#rebalance = setInterval(() => this.#checkImbalance(), this.#config.get('leader.imbalance.check.interval.seconds') * 1000);
            this.#rebalance.unref();
          }
          this.#logOffsetsCap(loaded, state);
          log.info({ clusterId: state.clusterId, version: state.version, nodes: this.#lastSeen.size, topics: state.topics.size }, 'active controller');
          return true;
        });
      } catch (err) {
        if (err instanceof MetadataError && err.code === 'CLUSTER_ID_MISMATCH') {
          this.#fatal = err;
          this.#lose('cluster id mismatch', false);
          this.#onFatal(err);
          return false;
        }
        if (err instanceof MetadataError && err.code === 'STALE_EPOCH') {
          this.#fencedEpoch = Math.max(this.#fencedEpoch, epoch);
          this.#lose('fenced by a newer controller while taking over');
          return false;
        }
        log.warn({ err }, 'takeover failed; retrying');
        await sleep(RETRY_MS);
      }
    }
  }

  /** Stops serving writes at once; campaigns again unless stopping. */
  #lose(reason: string, campaignAgain = true): void {
    if (this.#stopped) return;
    const wasActive = this.#active;
    this.#term++;
    this.#standBy();
    if (wasActive) this.#log.warn({ reason }, 'no longer the active controller');
    this.#log = this.#baseLog;
    if (campaignAgain) this.#campaign();
  }

  #standBy(): void {
    this.#active = false;
    this.#state = undefined;
    if (this.#liveness) clearInterval(this.#liveness);
    this.#liveness = undefined;
    if (this.#rebalance) clearInterval(this.#rebalance);
    this.#rebalance = undefined;
  }

  /** Kafka refuses to create __consumer_offsets below its replication factor; Runnel caps it at the live brokers and says so. */
  #logOffsetsCap(before: ClusterState, after: ClusterState): void {
    if (before.topics.has(OFFSETS_TOPIC)) return;
    const created = after.topics.get(OFFSETS_TOPIC);
    const wanted = this.#config.get('offsets.topic.replication.factor');
    const rf = created?.partitions[0]?.replicas.length ?? wanted;
    if (rf < wanted) {
      this.#log.warn({ topic: OFFSETS_TOPIC, replicationFactor: rf, configured: wanted },
        `${OFFSETS_TOPIC} created with replication factor ${rf}: offsets.topic.replication.factor is ${wanted} but only ${rf} broker(s) are live`);
    }
  }

  #checkClusterId(state: ClusterState): void {
    const wanted = this.#config.get('cluster.id');
    if (wanted !== null && state.clusterId !== null && state.clusterId !== wanted) {
      throw new MetadataError('CLUSTER_ID_MISMATCH', `Redis holds the metadata of cluster ${state.clusterId}, not ${wanted} (cluster.id)`);
    }
  }

  // ---------------------------------------------------------------------------------- writes

  /** Runs `fn` after every earlier write, whatever became of them. */
  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** One write of the current term: refused unless active; `fn` gets the committed state. */
  #write<T>(fn: (state: ClusterState, commit: (change: ClusterChange) => Promise<number>) => Promise<T>): Promise<T> {
    const term = this.#term;
    if (!this.#active) return Promise.reject(this.#notController());
    return this.#enqueue(async () => {
      if (!this.#active || this.#term !== term || !this.#state) throw this.#notController();
      if (this.#reload) {
        this.#state = await this.#guard(term, () => this.#store.load());
        this.#reload = false;
      }
      const commit = async (change: ClusterChange): Promise<number> => {
        const state = this.#state!;
        if (isEmpty(change)) return state.version;
        const version = await this.#guard(term, () => this.#store.commit(change), true);
        this.#state = applyChange(state, change, version);
        const elected = countElections(change);
        this.#elections.leader += elected.leader;
        this.#elections.unclean += elected.unclean;
        return version;
      };
      return fn(this.#state, commit);
    });
  }

  /**
   * Runs one store call of a write. STALE_EPOCH ends the term (NOT_CONTROLLER to the caller);
   * with `ambiguous`, any other failure may or may not have been applied, so the state is
   * reloaded before the next write. Failures other than metadata refusals come back retriable.
   */
  async #guard<T>(term: number, call: () => Promise<T>, ambiguous = false): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof MetadataError && err.code === 'STALE_EPOCH') {
        if (this.#term === term) {
          this.#fencedEpoch = Math.max(this.#fencedEpoch, this.#epoch);
          this.#lose('a newer controller fenced this one');
        }
        throw this.#notController();
      }
      if (ambiguous) this.#reload = true;
      if (err instanceof MetadataError && err.code !== 'STORE_UNAVAILABLE' && err.code !== 'CONFLICT') throw err;
      this.#reload = true;
      throw new MetadataError('STORE_UNAVAILABLE', `metadata write failed: ${(err as Error).message}`, { cause: err, retriable: true });
    }
  }

  #notController(): ControllerError {
    return new ControllerError('NOT_CONTROLLER', `node ${this.#config.nodeId} is not the active controller`, { retriable: true });
  }

  #checkLiveness(): void {
    if (!this.#active || !this.#state) return;
    const expired = expiredNodes(this.#state, this.#lastSeen, performance.now(), this.#sessionTimeoutMs);
    // settle() also recreates a deleted offsets topic and assigns coordinators after a missed change.
    const pending = settle(this.#state, {}, this.#settings);
    if (expired.length === 0 && isEmpty(pending)) return;
    this.#write(async (state, commit) => {
      const now = expiredNodes(state, this.#lastSeen, performance.now(), this.#sessionTimeoutMs);
      const version = await commit(settle(state, fenceNodes(state, now, this.#settings), this.#settings));
      this.#logOffsetsCap(state, this.#state!);
      if (now.length > 0) {
        for (const id of now) {
          this.#lastSeen.delete(id);
        }
        this.#log.warn({ nodes: now, version, timeoutMs: this.#sessionTimeoutMs }, 'fenced nodes not heard from within the session timeout');
      }
    }).catch((err: unknown) => this.#log.warn({ err }, 'liveness check failed'));
  }

  /** `auto.leader.rebalance.enable`: every `leader.imbalance.check.interval.seconds`, preferred leaders take their partitions back. */
  #checkImbalance(): void {
    if (!this.#active || !this.#state) return;
    const percentage = this.#config.get('leader.imbalance.per.broker.percentage');
    if (isEmpty(rebalanceLeaders(this.#state, percentage, this.#settings))) return;
    this.#write(async (state, commit) => {
      const change = rebalanceLeaders(state, percentage, this.#settings);
      const version = await commit(settle(state, change, this.#settings));
      this.#log.info({ partitions: change.topics?.flatMap((t) => t.topic.partitions.filter((p, i) => p.leader !== t.previous?.partitions[i]?.leader).map((p) => `${t.topic.name}-${p.partition}`)), version },
        'moved leadership back to preferred leaders');
    }).catch((err: unknown) => this.#log.warn({ err }, 'leader rebalance failed'));
  }

  // ---------------------------------------------------------------------------------- RPC

  #handlers(): RpcHandlers {
    return {
      'controller.registerNode': (req) => this.#write(async (_state, commit) => {
        const term = this.#term;
        refuseDuplicate(this.#state!, req); // before taking a broker epoch: a waiting newcomer retries every few seconds
        const brokerEpoch = await this.#guard(term, () => this.#store.nextBrokerEpoch());
        const state = this.#state!;
        const renewed = req.roles.includes('coordinator') ? req.nodeId : undefined;
        const change = settle(state, registerNode(state, { ...req, rack: req.rack ?? null, rpc: req.rpc ?? null }, brokerEpoch, this.#settings), this.#settings, renewed);
        const version = await commit(change);
        this.#logOffsetsCap(state, this.#state!);
        this.#lastSeen.set(req.nodeId, performance.now());
        const { fenced: _fenced, shuttingDown: _shuttingDown, ...registration } = this.#state!.nodes.get(req.nodeId)!;
        this.#log.info({ node: req.nodeId, roles: registration.roles, brokerEpoch, version }, 'node registered');
        return { registration: registration as NodeRegistration, version };
      }),

      'controller.heartbeat': async (req) => {
        if (!this.#active || !this.#state) throw this.#notController();
        const fenced = isFenced(this.#state, req.nodeId, req.brokerEpoch);
        if (!fenced) this.#lastSeen.set(req.nodeId, performance.now());
        return { fenced };
      },

      'controller.createTopic': (req) => this.#write(async (state, commit) => {
        const { change, topic } = createTopic(state, { ...req, configs: req.configs ?? {}, assignments: req.assignments ?? [] }, this.#settings.newTopicId());
        const version = await commit(settle(state, change, this.#settings));
        this.#log.info({ topic: topic.name, partitions: topic.partitions.length, version }, 'topic created');
        return { topic: this.#state!.topics.get(topic.name) ?? topic, version };
      }),

      'controller.deleteTopic': (req) => this.#write(async (state, commit) => {
        // Refuses __consumer_offsets, so the coordinator map (only about that topic) is untouched.
        const version = await commit(deleteTopic(state, req.name));
        this.#log.info({ topic: req.name, version }, 'topic deleted');
        return { version };
      }),

      'controller.createPartitions': (req) => this.#write(async (state, commit) => {
        const { change, topic } = createPartitions(state, req.name, req.totalCount, req.assignments ?? []);
        const version = await commit(settle(state, change, this.#settings));
        this.#log.info({ topic: topic.name, partitions: topic.partitions.length, version }, 'partitions created');
        return { topic: this.#state!.topics.get(topic.name) ?? topic, version };
      }),

      'controller.alterTopicConfigs': (req) => this.#write(async (state, commit) => {
        const { change, topic } = alterTopicConfigs(state, req.name, req.set ?? {}, req.remove ?? []);
        // settle: enabling unclean.leader.election.enable elects leaders for offline partitions.
        const version = await commit(settle(state, change, this.#settings));
        this.#log.info({ topic: topic.name, set: req.set, remove: req.remove, version }, 'topic configs altered');
        return { topic: this.#state!.topics.get(topic.name) ?? topic, version };
      }),

      // SCRAM credentials (AlterUserScramCredentials, runnel.sasl.scram.bootstrap.users): their own
      // fenced hash, apart from the cluster state this controller keeps in memory.
      // Client quotas (AlterClientQuotas): a fenced hash of their own, as the SCRAM credentials.
      'controller.alterClientQuotas': (req) => this.#write(async () => {
        const entries = (req.entries ?? []).map((e) => {
          const ops: Record<string, number | null> = {};
          for (const k of e.remove ?? []) ops[k] = null;
          for (const v of e.set ?? []) ops[v.key] = v.value;
          return { entity: parseClientQuotaKey(e.entity), ops };
        });
        const version = await this.#store.alterClientQuotas(entries);
        this.#reload = true;
        this.#log.info({ entities: entries.map((e) => clientQuotaKey(e.entity)), version }, 'client quotas altered');
        return { version };
      }),
      'controller.alterScramCredentials': (req) => this.#write(async () => {
        const mechanism = (m: string): 'SCRAM-SHA-256' | 'SCRAM-SHA-512' => {
          if (m !== 'SCRAM-SHA-256' && m !== 'SCRAM-SHA-512') throw new MetadataError('CONFLICT', `unknown SCRAM mechanism ${m}`);
          return m;
        };
        const upserts = (req.upserts ?? []).map((u) => ({
          user: u.user, mechanism: mechanism(u.mechanism),
          credential: { salt: Buffer.from(u.salt), storedKey: Buffer.from(u.storedKey), serverKey: Buffer.from(u.serverKey), iterations: u.iterations },
        }));
        const deletions = (req.deletions ?? []).map((d) => ({ user: d.user, mechanism: mechanism(d.mechanism) }));
        const version = await this.#store.alterScramCredentials(upserts, deletions);
        // The write bumped the metadata version past the in-memory state's: reload before the next write.
        this.#reload = true;
        this.#log.info({ upserts: upserts.map((u) => `${u.user} (${u.mechanism})`), deletions: deletions.map((d) => `${d.user} (${d.mechanism})`), version }, 'SCRAM credentials altered');
        return { version };
      }),

      'controller.alterBrokerConfigs': (req) => this.#write(async (state, commit) => {
        const nodeId = req.nodeId < 0 ? null : req.nodeId;
        // settle: enabling unclean.leader.election.enable elects leaders for offline partitions.
        const version = await commit(settle(state, alterBrokerConfigs(state, nodeId, req.set ?? {}, req.remove ?? []), this.#settings));
        this.#log.info({ node: nodeId ?? 'default', set: req.set, remove: req.remove, version }, 'broker configs altered');
        return { version };
      }),

      'controller.alterPartition': (req) => this.#write(async (state, commit) => {
        const { change, result } = alterPartition(state, req, this.#settings);
        const version = await commit(settle(state, change, this.#settings));
        if (result.error !== null) {
          this.#log.info({ node: req.nodeId, topic: req.topic, partition: req.partition, error: result.error, leaderEpoch: req.leaderEpoch, version: req.version }, 'ISR change refused');
        } else if (!isEmpty(change)) {
          this.#log.info({ topic: req.topic, partition: req.partition, isr: req.isr, version }, 'ISR changed');
        }
        const partition = this.#state!.topics.get(req.topic)?.partitions[req.partition] ?? result.partition;
        return { error: result.error ?? '', partition, version };
      }),

      'controller.shutdownNode': (req) => this.#write(async (state, commit) => {
        // The "shutting down" mark rides in the node's stored record (controlledShutdown sets it), so a
        // controller taking over mid-shutdown never elects this broker either.
        const { change, remaining } = controlledShutdown(state, req.nodeId, req.brokerEpoch, this.#settings);
        const version = await commit(settle(state, change, this.#settings));
        if (remaining === 0 && change.nodes?.some((n) => n.nodeId === req.nodeId && n.fenced)) this.#lastSeen.delete(req.nodeId);
        this.#log.info({ node: req.nodeId, moved: change.topics?.length ?? 0, remaining, version }, remaining === 0 ? 'controlled shutdown done; node fenced' : 'controlled shutdown');
        return { remaining, version };
      }),

      'controller.alterReassignments': (req) => this.#write(async (state, commit) => {
        const items = req.reassignments.map((r) => ({ topic: r.topic, partition: r.partition, replicas: r.cancel ? null : r.replicas }));
        const { change, results } = alterReassignments(state, items, this.#settings);
        const version = await commit(settle(state, change, this.#settings));
        if (!isEmpty(change)) this.#log.info({ reassignments: items.filter((_, i) => results[i]!.error === null), version }, 'partition reassignments started or cancelled');
        return { results: results.map((r) => ({ ...r, error: r.error ?? '' })), version };
      }),

      'controller.electLeaders': (req) => this.#write(async (state, commit) => {
        const partitions = req.partitions.length > 0 ? req.partitions : null;
        const { change, results } = electLeaders(state, partitions, req.unclean, this.#settings);
        const version = await commit(settle(state, change, this.#settings));
        if (!isEmpty(change)) this.#log.info({ unclean: req.unclean, elected: results.filter((r) => r.error === null).length, version }, 'leaders elected');
        return { results: results.map((r) => ({ ...r, error: r.error ?? '' })), version };
      }),

      // ACLs: the whole list is rewritten by each change (fenced like every write) and read by every node.
      'controller.createAcls': (req) => this.#write(async (state, commit) => {
        const change = createAcls(state, req.acls);
        const version = await commit(change);
        if (!isEmpty(change)) this.#log.info({ created: req.acls.length, total: change.acls!.length, version }, 'ACLs created');
        return { version };
      }),

      'controller.deleteAcls': (req) => this.#write(async (state, commit) => {
        const { change, deleted } = deleteAcls(state, req.filters);
        const version = await commit(change);
        if (!isEmpty(change)) this.#log.info({ deleted: deleted.reduce((n, d) => n + d.length, 0), version }, 'ACLs deleted');
        return { deleted: deleted.map((acls) => ({ acls })), version };
      }),

      'controller.allocateProducerId': () => this.#write(async () => {
        if (this.#producerIds.next >= this.#producerIds.end) {
          const term = this.#term;
          const first = await this.#guard(term, () => this.#store.allocateProducerIds(PRODUCER_ID_BLOCK));
          this.#producerIds = { next: first, end: first + BigInt(PRODUCER_ID_BLOCK) };
          this.#log.info({ first, count: PRODUCER_ID_BLOCK }, 'producer id block allocated');
        }
        return { producerId: this.#producerIds.next++ };
      }),
    };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
