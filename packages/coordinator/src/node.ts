import { OFFSETS_TOPIC, silentLogger, TRANSACTION_STATE_TOPIC, type BrokerConfig, type Logger, type Registry } from '@runnel/common';
import {
  advertisedAddress, advertisedEndpoints, alterClientQuotasHandler, describeClientQuotasHandler, alterConfigsHandler, createAclsHandler, deleteAclsHandler, describeAclsHandler, describeConfigsHandler, incrementalAlterConfigsHandler, initProducerIdHandler, KafkaServer, listenerOptions, metadataErrorCode, metadataHandler,
  nodeAddressLookup, saslOptions, scramCredentialHandlers, type Handler,
} from '@runnel/kafka-server';
import type { BrokerRegistration, Endpoint, MetadataStore } from '@runnel/metadata';
import { ErrorCode } from '@runnel/protocol';
import { parseAddress, RpcServer, RpcTls, type Address, type RpcHandlers } from '@runnel/rpc';
import { systemClock, type Clock } from './clock.ts';
import { Coordinator, CoordinatorError } from './coordinator.ts';
import { groupCoordinatorConfigFrom } from './group-coordinator.ts';
import { topicLookup } from './consumer-group.ts';
import { registerCoordinatorMetrics, type LagSources } from './metrics.ts';
import { BrokerClients, rpcOffsetsLog, type RpcOffsetsLog } from './rpc-offsets-log.ts';
import { txnCoordinatorConfigFrom } from './txn-coordinator.ts';
import { markerSink, type MarkerResult } from './txn-markers.ts';
import { createTransactionStateTopic } from './txn-state-topic.ts';

export interface CoordinatorNodeOptions {
  /** Listeners, node id, the group.* / offsets.* keys, auto-create defaults. */
  config: BrokerConfig;
  /** A cluster store (RedisStore), started by the caller; its writes go to the controller. */
  metadata: MetadataStore;
  logger?: Logger;
  clock?: Clock;
  /** How often the lag sources refresh their high-watermark cache, default 5000 ms. */
  lagRefreshMs?: number;
  /** Called once when the node cannot go on serving (the process should exit); default: log it. */
  onFatal?: (err: Error) => void;
  /**
   * More handlers on the Kafka listener, for APIs this node does not serve itself: the cli passes
   * the broker's `nonLeaderHandlers`, so the node answers every API a broker does, as any node
   * listed in Metadata must (docs/protocol.md, "Who answers what"). The node's own handlers win.
   */
  extraHandlers?: Handler[];
}

/**
 * The one line that says a changed `offsets.topic.num.partitions` has no effect: as in Kafka, the
 * count is fixed when `__consumer_offsets` is created, and groups keep hashing over the topic's.
 */
export function offsetsCountIgnored(topicPartitions: number, configured: number): string {
  return `__consumer_offsets already exists with ${topicPartitions} partitions; offsets.topic.num.partitions=${configured} is ignored (the count is fixed when the topic is created, as in Kafka; groups keep hashing over ${topicPartitions})`;
}

/**
 * The group coordinator as its own process in a cluster (docs/architecture.md): its own Kafka
 * listener answering ApiVersions, Metadata, FindCoordinator and the group APIs; it appears in the
 * Metadata broker list and leads no partitions. Its state is the `__consumer_offsets` partitions
 * the controller assigns to it (`snapshot.coordinators`), read and written on the brokers that
 * lead them over RPC ({@link rpcOffsetsLog}), every append fenced by the partition's coordinator
 * epoch.
 *
 * Lifecycle: `create` does no I/O. `start` opens the listener and returns; everything else happens
 * in the background: registration with roles ['coordinator'] (retried until it succeeds; the store
 * keeps the session alive after that), and ownership, which follows metadata: partitions assigned
 * here are loaded (a failing load is retried while they stay assigned; their groups answer
 * COORDINATOR_LOAD_IN_PROGRESS), partitions assigned elsewhere are unloaded (waiting members get
 * NOT_COORDINATOR), and a partition regained under a newer epoch is reloaded. FindCoordinator for a
 * group owned elsewhere answers the owner. `stop` closes the listener first, then the coordinator
 * (waiting members answered, appends drained), then the RPC clients; the caller stops the store.
 */
export class CoordinatorNode {
  readonly coordinator: Coordinator;
  readonly #config: BrokerConfig;
  readonly #metadata: MetadataStore;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #server: KafkaServer;
  readonly #clients: BrokerClients;
  readonly #offsetsLog: RpcOffsetsLog;
  /** `__transaction_state` over RPC (the transaction coordinator's log). */
  readonly #txnLog: RpcOffsetsLog;
  /** Serves 'coordinator.writeTxnMarkers' (other coordinators' markers for our `__consumer_offsets` partitions). */
  readonly #rpc: RpcServer;
  readonly #partitions: number;
  readonly #lagRefreshMs: number;
  /** Epoch under which each partition owned here was taken on (a newer one means lost and regained). */
  #epochs = new Map<number, number>();
  #unsubscribe: (() => void) | null = null;
  #registration: Promise<BrokerRegistration> | null = null;
  #stopped = new AbortController();
  #lagCache = new Map<string, bigint>();
  #lagTimer: NodeJS.Timeout | null = null;
  #running = false;
  #countMismatch = false;
  readonly #onFatal: (err: Error) => void;

  private constructor(o: CoordinatorNodeOptions) {
    const config = o.config;
    this.#config = config;
    this.#metadata = o.metadata;
    this.#logger = o.logger ?? silentLogger();
    this.#clock = o.clock ?? systemClock;
    this.#lagRefreshMs = o.lagRefreshMs ?? 5000;
    this.#onFatal = o.onFatal ?? ((err) => this.#logger.fatal({ err }, 'coordinator node cannot continue'));
    // Groups must hash over the partitions the topic has (as brokers' FindCoordinator does), not
    // over this process's setting; the setting only counts before the controller created it.
    this.#partitions = o.metadata.snapshot().topics.get(OFFSETS_TOPIC)?.partitions.length ?? config.get('offsets.topic.num.partitions');
    if (this.#partitions !== config.get('offsets.topic.num.partitions')) this.#logger.warn(offsetsCountIgnored(this.#partitions, config.get('offsets.topic.num.partitions')));
    this.#clients = new BrokerClients({ metadata: o.metadata, logger: this.#logger.child({ component: 'rpc' }), tls: RpcTls.for(config, this.#logger.child({ component: 'rpc' })) });
    this.#offsetsLog = rpcOffsetsLog({ metadata: o.metadata, nodeId: config.nodeId, partitions: this.#partitions, clients: this.#clients, logger: this.#logger });
    // __transaction_state partition q goes with __consumer_offsets partition q % offsets partitions.
    this.#txnLog = rpcOffsetsLog({
      metadata: o.metadata, nodeId: config.nodeId, topic: TRANSACTION_STATE_TOPIC, offsetsPartitions: this.#partitions, clients: this.#clients, logger: this.#logger,
      // Asked on every use: another node may create the topic later with its own setting.
      partitions: () => o.metadata.snapshot().topics.get(TRANSACTION_STATE_TOPIC)?.partitions.length ?? config.get('transaction.state.log.num.partitions'),
    });
    const liveBrokers = () => [...o.metadata.snapshot().brokers.values()].filter((b) => b.roles.includes('broker')).length;
    this.coordinator = Coordinator.create({
      transactions: {
        log: this.#txnLog,
        markers: markerSink({
          writeData: (m, partitions) => this.#writeDataMarkers(m, partitions),
          writeOffsets: (p, m) => this.#writeOffsetsMarker(p, m),
          topicExists: (topic) => o.metadata.snapshot().topics.has(topic),
          logger: this.#logger.child({ component: 'txn-markers' }),
        }),
        allocateProducerId: () => o.metadata.allocateProducerId(),
        config: txnCoordinatorConfigFrom(config),
        topic: {
          exists: () => o.metadata.snapshot().topics.has(TRANSACTION_STATE_TOPIC),
          create: () => createTransactionStateTopic(o.metadata, config, liveBrokers()),
        },
        coordinatorEpoch: (p) => o.metadata.snapshot().coordinators.get(p)?.epoch ?? 0,
      },
      config: groupCoordinatorConfigFrom(config),
      offsetsLog: this.#offsetsLog,
      ownedPartitions: [],
      self: () => ({ nodeId: config.nodeId, ...this.advertisedAddress() }),
      locate: (p) => this.#owner(p),
      loadWaitErrorMs: config.get('runnel.coordinator.load.wait.error.ms'),
      clock: this.#clock,
      logger: this.#logger.child({ component: 'coordinator' }),
      topics: topicLookup(() => o.metadata.snapshot()),
    });
    const own: Handler[] = [
      ...this.coordinator.handlers(),
      metadataHandler({
        metadata: o.metadata,
        autoCreate: () => config.get('auto.create.topics.enable'),
        createTopic: async (name) => {
          await o.metadata.createTopic({ name, partitions: config.get('num.partitions'), replicationFactor: config.get('default.replication.factor'), configs: {} });
        },
        // Anything but a metadata refusal (controller unreachable, a fenced write) is worth a retry.
        errorCode: (err) => metadataErrorCode(err, ErrorCode.REQUEST_TIMED_OUT),
      }),
      // Listed in Metadata, so clients send it what they send any node (the Java client's
      // producer ids and config lookups go to its least loaded node).
      // With a transaction coordinator its handlers (above) include InitProducerId, transactional ids too.
      ...(this.coordinator.transactions ? [] : [initProducerIdHandler(o.metadata)]),
      describeConfigsHandler({ nodeId: config.nodeId, config, metadata: o.metadata }),
      alterConfigsHandler({ config, metadata: o.metadata }),
      incrementalAlterConfigsHandler({ config, metadata: o.metadata }),
      describeClientQuotasHandler(o.metadata),
      alterClientQuotasHandler(o.metadata),
      // kafka-acls, like the other admin tools, may pick any listed node.
      describeAclsHandler(o.metadata),
      createAclsHandler(o.metadata),
      deleteAclsHandler(o.metadata),
      // kafka-configs --entity-type users (SCRAM credentials) may pick any listed node too.
      ...scramCredentialHandlers(o.metadata),
    ];
    const served = new Set(own.map((h) => h.api));
    const rpcAt = parseAddress(config.get('runnel.rpc.listener'));
    const rpcHandlers: RpcHandlers = {
      'coordinator.writeTxnMarkers': async (req) => ({
        markers: await Promise.all(req.markers.map(async (m) => ({
          partitions: await Promise.all(m.partitions.map(async ({ topic, partition }) => ({
            topic,
            partition,
            error: topic !== OFFSETS_TOPIC ? 'UNKNOWN_TOPIC_OR_PARTITION' : ((await this.coordinator.writeTxnMarker(partition, m)) ?? ''),
          }))),
        }))),
      }),
    };
    this.#rpc = RpcServer.create({
      host: rpcAt.host === '' ? '0.0.0.0' : rpcAt.host,
      port: rpcAt.port,
      handlers: rpcHandlers,
      logger: this.#logger.child({ component: 'rpc' }),
      tls: RpcTls.for(config, this.#logger.child({ component: 'rpc' })),
    });
    this.#server = KafkaServer.create({
      ...listenerOptions(config, o.metadata),
      // SASL_* listeners (kafka-server sasl/): PLAIN users from the JAAS config, SCRAM from metadata.
      ...(saslOptions(config, o.metadata) ? { sasl: saslOptions(config, o.metadata)! } : {}),
      addressOf: nodeAddressLookup(o.metadata),
      handlers: [...own, ...(o.extraHandlers ?? []).filter((h) => !served.has(h.api))],
      logger: this.#logger.child({ component: 'kafka-server' }),
    });
  }

  static create(o: CoordinatorNodeOptions): CoordinatorNode {
    return new CoordinatorNode(o);
  }

  /** Opens the listener; registration and ownership follow in the background (see the class doc). */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#stopped = new AbortController();
    await this.coordinator.start();
    try {
      await this.#server.start();
      await this.#rpc.start();
    } catch (err) {
      this.#running = false;
      await this.#server.stop();
      await this.coordinator.stop();
      throw err;
    }
    this.#unsubscribe = this.#metadata.subscribe((event) => {
      if (event.type === 'coordinators-changed' || event.type === 'node-fenced' || event.type === 'broker-registered') this.#follow();
      // An offsets partition got a leader (again): loads waiting on it need not sit out their backoff.
      if ((event.type === 'topic-updated' || event.type === 'topic-created') && (event.topic.name === OFFSETS_TOPIC || event.topic.name === TRANSACTION_STATE_TOPIC)) this.coordinator.retryLoadsNow();
      // __transaction_state created (by whichever node saw the first transaction): load our part.
      if (event.type === 'topic-created' && event.topic.name === TRANSACTION_STATE_TOPIC) this.coordinator.loadTransactionState();
      // A deleted (or recreated) topic's committed offsets go from every group (Kafka's onPartitionsDeleted).
      if (event.type === 'topic-deleted') this.coordinator.topicsDeleted([event.name]);
    });
    this.#registration = this.#register();
    this.#registration.catch(() => {});
    this.#follow();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#stopped.abort();
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#lagTimer) clearInterval(this.#lagTimer);
    this.#lagTimer = null;
    await this.#server.stop();
    await this.#rpc.stop();
    await this.coordinator.stop();
    this.#offsetsLog.close();
    this.#txnLog.close();
    this.#clients.close();
    this.#epochs.clear();
  }

  /** Resolves with this node's registration once the controller accepted it (rejects if stopped first). */
  registered(): Promise<BrokerRegistration> {
    if (!this.#registration) return Promise.reject(new Error('the coordinator node is not started'));
    return this.#registration;
  }

  /** Where the Kafka listener is bound. */
  address(): { host: string; port: number } {
    return this.#server.address();
  }

  /**
   * Where other nodes reach this node's RPC service ('coordinator.writeTxnMarkers'), registered as
   * its `rpc`: `runnel.rpc.advertised.listener` when set, else the bound address.
   */
  rpcAddress(): Address {
    const advertised = this.#config.get('runnel.rpc.advertised.listener');
    return advertised !== null ? parseAddress(advertised) : this.#rpc.advertisedAddress();
  }

  /**
   * Markers for data partitions, one 'broker.writeTxnMarkers' call per leading broker; a partition
   * without a live leader, or whose leader cannot be reached, answers NOT_LEADER_OR_FOLLOWER (the
   * sink retries it against the leader metadata names then).
   */
  async #writeDataMarkers(m: { producerId: bigint; producerEpoch: number; coordinatorEpoch: number; commit: boolean }, partitions: { topic: string; partition: number }[]): Promise<MarkerResult[]> {
    const byLeader = new Map<number, { topic: string; partition: number }[]>();
    const out: MarkerResult[] = [];
    for (const tp of partitions) {
      const leader = this.#metadata.snapshot().topics.get(tp.topic)?.partitions[tp.partition]?.leader ?? -1;
      if (leader < 0) {
        out.push({ ...tp, error: this.#metadata.snapshot().topics.has(tp.topic) ? 'NOT_LEADER_OR_FOLLOWER' : 'UNKNOWN_TOPIC_OR_PARTITION' });
        continue;
      }
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), tp]);
    }
    await Promise.all([...byLeader].map(async ([nodeId, list]) => {
      try {
        const res = await this.#clients.forNode(nodeId).call('broker.writeTxnMarkers', { markers: [{ ...m, partitions: list }] });
        for (const r of res.markers[0]?.partitions ?? []) out.push({ topic: r.topic, partition: r.partition, error: r.error === '' ? null : r.error });
      } catch (err) {
        this.#logger.debug({ nodeId, err }, 'broker.writeTxnMarkers failed');
        for (const tp of list) out.push({ ...tp, error: 'NOT_LEADER_OR_FOLLOWER' });
      }
    }));
    return out;
  }

  /** A marker for a `__consumer_offsets` partition: to our own group coordinator, or over RPC to the node that owns it. */
  async #writeOffsetsMarker(partition: number, m: { producerId: bigint; producerEpoch: number; coordinatorEpoch: number; commit: boolean }): Promise<string | null> {
    const owner = this.#metadata.snapshot().coordinators.get(partition)?.nodeId;
    if (owner === undefined) return 'NOT_LEADER_OR_FOLLOWER';
    return owner === this.#config.nodeId ? this.coordinator.writeTxnMarker(partition, m) : this.#clients.offsetsMarker(partition, m);
  }

  /** Where clients reach this node (see kafka-server's advertisedAddress). */
  advertisedAddress(): { host: string; port: number } {
    return advertisedAddress(this.#config, this.#server.listenerAddresses());
  }

  /** What the clients of each listener are told (see kafka-server's advertisedEndpoints). */
  advertisedEndpoints(): Endpoint[] {
    return advertisedEndpoints(this.#config, this.#server.listenerAddresses());
  }

  /**
   * Lag sources for {@link registerCoordinatorMetrics}. `logEndOffset` is synchronous, so it reads
   * a cache of high watermarks refreshed every `lagRefreshMs` (one 'broker.offsets' call per
   * leading broker, for the partitions groups committed); a partition not in the cache yet is -1
   * (unknown, no lag row). `recordTimestamp` asks the leader with 'broker.recordTimestamp'. The
   * refresh timer starts on the first call and stops with the node.
   */
  lagSources(): LagSources {
    if (this.#lagTimer === null && this.#running) {
      void this.refreshLag();
      this.#lagTimer = setInterval(() => void this.refreshLag(), this.#lagRefreshMs);
      this.#lagTimer.unref();
    }
    return {
      logEndOffset: (topic, partition) => this.#lagCache.get(`${topic}\u0000${partition}`) ?? -1n,
      recordTimestamp: async (topic, partition, offset) => {
        const { client } = this.#clients.leaderOf(topic, partition);
        const { timestamp } = await client.call('broker.recordTimestamp', { topic, partition, offset });
        return timestamp < 0n ? null : timestamp;
      },
    };
  }

  /** Adds the consumer-group gauges (over {@link lagSources}) to a metrics registry. */
  registerMetrics(registry: Registry): void {
    registerCoordinatorMetrics(registry, this.coordinator, this.lagSources());
    this.#server.metrics.register(registry);
  }

  /** Refreshes the high-watermark cache behind `lagSources().logEndOffset` now (the timer calls it too). */
  async refreshLag(): Promise<void> {
    const m = this.coordinator.machine;
    const snap = this.#metadata.snapshot();
    const byLeader = new Map<number, { topic: string; partition: number }[]>();
    const seen = new Set<string>();
    for (const { groupId } of m.listGroups().groups) {
      for (const o of m.group(groupId)?.offsets.values() ?? []) {
        const key = `${o.topic}\u0000${o.partition}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const leader = snap.topics.get(o.topic)?.partitions[o.partition]?.leader ?? -1;
        if (leader < 0) continue;
        const list = byLeader.get(leader) ?? [];
        list.push({ topic: o.topic, partition: o.partition });
        byLeader.set(leader, list);
      }
    }
    const next = new Map<string, bigint>();
    await Promise.all([...byLeader].map(async ([nodeId, partitions]) => {
      try {
        const res = await this.#clients.forNode(nodeId).call('broker.offsets', { partitions });
        for (const r of res.partitions) if (r.error === '') next.set(`${r.topic}\u0000${r.partition}`, r.highWatermark);
      } catch (err) {
        this.#logger.debug({ nodeId, err }, 'lag refresh: broker.offsets failed');
      }
    }));
    this.#lagCache = next;
  }

  /** The Kafka address of a partition's owner in metadata (FindCoordinator for groups not owned here). */
  #owner(partition: number): { nodeId: number; host: string; port: number } | null {
    const snap = this.#metadata.snapshot();
    const assignment = snap.coordinators.get(partition);
    if (!assignment) return null;
    const node = snap.brokers.get(assignment.nodeId);
    if (!node) return null;
    return { nodeId: node.nodeId, host: node.host, port: node.port };
  }

  /** Makes the coordinator own what metadata assigns to this node, reloading partitions regained under a newer epoch. */
  #follow(): void {
    if (!this.#running) return;
    const topicPartitions = this.#metadata.snapshot().topics.get(OFFSETS_TOPIC)?.partitions.length;
    if (topicPartitions !== undefined && topicPartitions !== this.#partitions) {
      // Created after we started, with another count: hashing over ours would answer for groups
      // that live elsewhere. Own nothing, and end the process (onFatal): the controller keeps
      // assigning partitions to a live node, so its groups would wait on it forever; a restart
      // hashes over the topic's count.
      void this.coordinator.setOwned([]);
      if (!this.#countMismatch) {
        this.#countMismatch = true;
        this.#onFatal(new CoordinatorError('LOAD_FAILED', `__consumer_offsets has ${topicPartitions} partitions but this coordinator hashes groups over ${this.#partitions} (offsets.topic.num.partitions differs from the controller's); restart it`));
      }
      return;
    }
    const nodeId = this.#config.nodeId;
    const mine = new Map<number, number>();
    for (const [p, a] of this.#metadata.snapshot().coordinators) {
      if (a.nodeId === nodeId && p < this.#partitions) mine.set(p, a.epoch);
    }
    // Another node owned it in between (we missed the events): what we hold may be stale.
    const regained = [...mine].filter(([p, epoch]) => this.#epochs.has(p) && this.#epochs.get(p) !== epoch).map(([p]) => p);
    if (regained.length > 0) {
      this.#logger.info({ partitions: regained }, 'reloading __consumer_offsets partitions regained under a newer coordinator epoch');
      void this.coordinator.setOwned(this.coordinator.owned().filter((p) => !regained.includes(p)));
    }
    this.#epochs = mine;
    void this.coordinator.setOwned(mine.keys());
  }

  /** Registers with roles ['coordinator'], retrying with backoff until it succeeds or the node stops. */
  async #register(): Promise<BrokerRegistration> {
    const signal = this.#stopped.signal;
    let delay = 200;
    for (;;) {
      try {
        const registration = await this.#metadata.registerBroker({ nodeId: this.#config.nodeId, ...this.advertisedAddress(), rack: null, roles: ['coordinator'], rpc: this.rpcAddress(),
          endpoints: this.advertisedEndpoints() });
        this.#logger.info({ nodeId: registration.nodeId, brokerEpoch: registration.brokerEpoch }, 'coordinator node registered');
        return registration;
      } catch (err) {
        if (signal.aborted) throw err;
        this.#logger.warn({ err, retryInMs: delay }, 'registering the coordinator node failed; retrying');
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          t.unref();
          signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
        });
        if (signal.aborted) throw new Error('the coordinator node stopped before it registered');
        delay = Math.min(delay * 2, 5000);
      }
    }
  }
}
