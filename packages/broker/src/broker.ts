import { onceEvery, silentLogger, topicConfig, type BrokerConfig, type Logger, type Registry } from '@runnel/common';
import { ApiKey, decodeRecordBatches, ErrorCode } from '@runnel/protocol';
import { advertisedAddress, advertisedEndpoints, KafkaServer, listenerOptions, nodeAddressLookup, saslOptions, scramCredentialHandlers, seedScramUsers, type Handler } from '@runnel/kafka-server';
import { parseAddress, RpcServer, RpcTls, type Address } from '@runnel/rpc';
import type { Endpoint, MetadataStore } from '@runnel/metadata';
import { OffloadPool } from '@runnel/offload';
import { LogManager, StorageError, type AppendResult, type PartitionLog } from '@runnel/storage';
import type { BrokerContext, GroupTxnMarker } from './context.ts';
import { findCoordinator } from './handlers/find-coordinator.ts';
import { brokerHandlers } from './handlers/index.ts';
import { writeTxnMarkers, type TxnMarkerPartitionResult, type TxnMarkerRequest } from './handlers/write-txn-markers.ts';
import { appendCommitted } from './commit.ts';
import { logConfigOf } from './log-config.ts';
import { BrokerTopicMetrics, registerBrokerMetrics, registerReplicaMetrics } from './metrics.ts';
import { Partitions } from './partitions.ts';
import { FetchPurgatory } from './purgatory.ts';
import { ReplicaManager } from './replication/replica-manager.ts';
import { brokerRpcService } from './rpc-service.ts';

/** How long Broker.stop() keeps asking the controller to move this broker's leaderships away. */
const CONTROLLED_SHUTDOWN_MS = 5_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export interface BrokerOptions {
  config: BrokerConfig;
  /** Started already: its cluster id is written to (or checked against) every log dir's meta.properties. */
  metadata: MetadataStore;
  logger?: Logger;
  /** Handlers of roles co-located in this process (the coordinator under `runnel start`), served on this listener. */
  extraHandlers?: Handler[];
  /**
   * Cluster mode: other nodes reach this broker's partitions over RPC (`broker.*` on
   * `rpcListener`, host:port, port 0 = any), the registration advertises that address, and
   * FindCoordinator is answered from metadata. Without it (single node) the co-located
   * coordinator's `extraHandlers` answer FindCoordinator.
   */
  cluster?: { rpcListener: string };
  /** See BrokerContext.groupTxnMarker: the co-located Coordinator, or an RPC to the owning coordinator node. */
  groupTxnMarker?: GroupTxnMarker;
}

/**
 * The broker role: partition logs on this node's disks behind the Kafka listener.
 *
 * Lifecycle: `create` wires the parts without I/O; `start` recovers the logs, opens the listener
 * and registers the broker (advertising the bound port when the listener asked for port 0);
 * `stop` closes the listener first, so no request arrives at a closing log, then writes the
 * storage checkpoints that let the next start skip recovery.
 */
export class Broker {
  readonly #config: BrokerConfig;
  readonly #metadata: MetadataStore;
  readonly #logger: Logger;
  readonly #pool: OffloadPool;
  readonly #logs: LogManager;
  readonly #partitions: Partitions;
  readonly #replicas: ReplicaManager;
  readonly #context: BrokerContext;
  readonly #server: KafkaServer;
  /** Kafka's BrokerTopicMetrics, counted by Produce and Fetch (metrics.ts). */
  readonly #topicMetrics = new BrokerTopicMetrics((topic) => this.#metadata.snapshot().topics.has(topic));
  readonly #purgatory: FetchPurgatory;
  readonly #rpc: RpcServer | undefined;
  readonly #drainRpc: () => Promise<void> = async () => {};

  private constructor(options: BrokerOptions) {
    this.#config = options.config;
    this.#metadata = options.metadata;
    this.#logger = options.logger ?? silentLogger();
    const config = options.config;
    const workerFailures = onceEvery(60_000);
    this.#pool = OffloadPool.create({
      onWorkerError: (err) => {
        if (workerFailures.allow('worker')) this.#logger.warn({ err }, 'an offload worker failed outside a task (logged once a minute at most)');
      },
    });
    this.#logs = LogManager.create({
      logDirs: config.logDirs,
      defaults: logConfigOf(topicConfig(config)),
      durable: config.get('runnel.durable'),
      groupCommitWindowMs: config.get('runnel.group.commit.ms'),
      retentionCheckIntervalMs: config.get('log.retention.check.interval.ms'),
      highWatermarkCheckpointIntervalMs: config.get('replica.high.watermark.checkpoint.interval.ms'),
      recoveryThreads: config.get('num.recovery.threads.per.data.dir'),
      maxOpenFiles: config.get('runnel.log.max.open.files'),
      // With the dynamic broker configs: kafka-reassign-partitions --replica-alter-log-dirs-throttle
      // sets it per broker while the move runs (read on every chunk; #partitions exists by then).
      moveBytesPerSecond: () => this.#partitions.brokerConfig().get('replica.alter.log.dirs.io.max.bytes.per.second'),
      pool: this.#pool,
      logger: this.#logger.child({ component: 'storage' }),
      nodeId: config.nodeId,
      // A disk of another cluster refuses to start: a wiped Redis cannot pass for this cluster (docs/metadata.md, rule 6).
      clusterId: this.#metadata.snapshot().clusterId || undefined,
    });
    this.#partitions = new Partitions({ config, metadata: this.#metadata, logs: this.#logs, nodeId: config.nodeId, logger: this.#logger });
    const purgatory = new FetchPurgatory();
    this.#purgatory = purgatory;
    this.#replicas = new ReplicaManager({
      nodeId: config.nodeId, config, metadata: this.#metadata, partitions: this.#partitions, logs: this.#logs, purgatory,
      logger: this.#logger.child({ component: 'replication' }),
    });
    const replicas = this.#replicas;
    this.#logs.onLogReplaced = (topic, partition) => replicas.logReplaced(topic, partition);
    const context: BrokerContext = {
      nodeId: config.nodeId,
      config,
      metadata: this.#metadata,
      partitions: this.#partitions,
      logs: this.#logs,
      purgatory,
      replicas: this.#replicas,
      logger: this.#logger,
      topicMetrics: this.#topicMetrics,
      ...(options.groupTxnMarker ? { groupTxnMarker: options.groupTxnMarker } : {}),
      createTopic: (name, partitions, replicationFactor, configs, assignments) => this.#createTopic(name, partitions, replicationFactor, configs, assignments),
    };
    this.#context = context;
    const cluster = options.cluster;
    if (cluster) {
      const rpcAt = parseAddress(cluster.rpcListener);
      const service = brokerRpcService({ context, recordTimestamp: (t, p, o) => this.recordTimestamp(t, p, o) });
      this.#drainRpc = service.drain;
      this.#rpc = RpcServer.create({
        host: rpcAt.host === '' ? '0.0.0.0' : rpcAt.host,
        port: rpcAt.port,
        handlers: service.handlers,
        logger: this.#logger.child({ component: 'rpc' }),
        tls: RpcTls.for(config, this.#logger.child({ component: 'rpc' })),
      });
    }
    this.#server = KafkaServer.create({
      ...listenerOptions(config, this.#metadata),
      addressOf: nodeAddressLookup(this.#metadata),
      // A co-located transaction coordinator serves InitProducerId itself (transactional ids and
      // idempotent ones): it replaces the broker's, which knows no transactional id.
      handlers: [
        ...brokerHandlers(context).filter((h) => h.api !== ApiKey.InitProducerId || !(options.extraHandlers ?? []).some((x) => x.api === ApiKey.InitProducerId)),
        ...(cluster ? [findCoordinator(context)] : []), ...scramCredentialHandlers(this.#metadata), ...(options.extraHandlers ?? []),
      ],
      // SASL_* listeners (kafka-server sasl/): PLAIN users from the JAAS config, SCRAM from metadata.
      ...(saslOptions(config, this.#metadata) ? { sasl: saslOptions(config, this.#metadata)! } : {}),
      logger: this.#logger.child({ component: 'kafka-server' }),
    });
  }

  static create(options: BrokerOptions): Broker {
    return new Broker(options);
  }

  async start(): Promise<void> {
    await this.#logs.start();
    await this.#partitions.start();
    await this.#server.start();
    await this.#rpc?.start();
    const registration = {
      nodeId: this.#config.nodeId,
      ...this.advertisedAddress(),
      rack: this.#config.get('broker.rack'),
      endpoints: this.advertisedEndpoints(),
      ...(this.#rpc ? { roles: ['broker' as const], rpc: this.rpcAddress() } : {}),
    };
    await this.#metadata.registerBroker(registration);
    // runnel.sasl.scram.bootstrap.users: the first SCRAM users (kafka-storage format --add-scram).
    await seedScramUsers(this.#config, this.#metadata, this.#logger);
    // Only once registered, as this process's incarnation: while another live process holds the
    // node id (registerBroker waits), fetching as that node would count this process's log as its
    // (the leader would raise its fetch state and propose it into the ISR). Requests served before
    // this point take their leader state on first use.
    await this.#replicas.start();
  }

  async stop(): Promise<void> {
    if (this.#rpc) await this.#controlledShutdown();
    await this.#server.stop();
    // Before the logs close: no RPC may reach a closing log, and the calls still running finish.
    await this.#rpc?.stop();
    // Fetchers stop and acks waiters are answered (NOT_LEADER_OR_FOLLOWER) before the drain, so
    // no coordinator append waiting for its ISR holds the stop up.
    await this.#replicas.stop();
    await this.#drainRpc();
    await this.#partitions.stop();
    await this.#logs.stop();
    await this.#pool.stop();
  }

  /**
   * Controlled shutdown (cluster mode): ask the controller to move this broker's leaderships to
   * other ISR members and take it out of every ISR, while it still serves, so clients see only
   * retriable NOT_LEADER_OR_FOLLOWER and move on. Retried briefly while something it leads could
   * still move (another ISR member exists); partitions with no other in-sync replica stay (they go
   * offline when the broker is fenced). Bounded: a controller that cannot be reached does not
   * hold the stop up for more than a few seconds.
   */
  async #controlledShutdown(): Promise<void> {
    const deadline = Date.now() + CONTROLLED_SHUTDOWN_MS;
    const movable = () => {
      let n = 0;
      for (const t of this.#metadata.snapshot().topics.values()) {
        for (const p of t.partitions) if (p.leader === this.#config.nodeId && p.isr.some((id) => id !== this.#config.nodeId)) n++;
      }
      return n;
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const { remaining } = await withTimeout(this.#metadata.controlledShutdown({ final: true }), Math.max(1, deadline - Date.now()));
        if (remaining === 0 || movable() === 0) return;
        this.#logger.info({ remaining, attempt }, 'controlled shutdown: partitions still led here');
      } catch (err) {
        this.#logger.warn({ err: (err as Error).message, attempt }, 'controlled shutdown failed');
      }
      if (Date.now() + 250 >= deadline) {
        this.#logger.warn('controlled shutdown incomplete; stopping anyway');
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Where the Kafka listener is bound. */
  address(): { host: string; port: number } {
    return this.#server.address();
  }

  /**
   * Where other nodes reach this broker's RPC service (cluster mode; null otherwise):
   * `runnel.rpc.advertised.listener` when set, else the bound address, with this machine's host
   * name when it listens on all interfaces.
   */
  rpcAddress(): Address | null {
    const advertised = this.#config.get('runnel.rpc.advertised.listener');
    if (this.#rpc && advertised !== null) return parseAddress(advertised);
    return this.#rpc?.advertisedAddress() ?? null;
  }

  /** The partition logs, for co-located roles that keep state in internal topics (wired by the cli). */
  get logs(): LogManager {
    return this.#logs;
  }

  /**
   * A partition this broker leads, opened if needed: how co-located roles (the coordinator's
   * `__consumer_offsets`) reach their internal topics without going through the network.
   */
  async localLog(topic: string, partition: number): Promise<PartitionLog> {
    const found = await this.#partitions.leaderLog(topic, partition);
    if (!found.ok) throw new StorageError('STORAGE_ERROR', `${topic}-${partition} is not served here (${found.error})`);
    return found.log;
  }

  /** Where clients reach this broker (see kafka-server's advertisedAddress: the inter-broker listener's, port 0 and 0.0.0.0 resolved). */
  advertisedAddress(): { host: string; port: number } {
    return advertisedAddress(this.#config, this.#server.listenerAddresses());
  }

  /** What the clients of each listener are told (see kafka-server's advertisedEndpoints). */
  advertisedEndpoints(): Endpoint[] {
    return advertisedEndpoints(this.#config, this.#server.listenerAddresses());
  }

  /**
   * Appends to a partition this broker leads, as a produce does: the records are validated and
   * written, and the high watermark moves past them (a single node commits what it acknowledges).
   * How co-located roles write their internal topics.
   */
  async appendLocal(topic: string, partition: number, batch: Buffer): Promise<AppendResult> {
    const found = await this.#partitions.leaderLog(topic, partition);
    if (!found.ok) throw new StorageError('STORAGE_ERROR', `${topic}-${partition} is not served here (${found.error})`, { retriable: true });
    const { result, code } = await appendCommitted(this.#replicas, found, batch, this.#config.get('offsets.commit.timeout.ms'));
    if (code !== ErrorCode.NONE) throw new StorageError('STORAGE_ERROR', `${topic}-${partition}: append at ${result.baseOffset} not committed (error ${code})`, { retriable: true });
    return result;
  }

  /**
   * Writes transaction markers on the partitions this broker leads, each answered once committed
   * (handlers/write-txn-markers.ts): how the transaction coordinator completes a transaction
   * in-process under `runnel start` (the `broker.writeTxnMarkers` RPC in a cluster).
   */
  writeTxnMarkers(markers: TxnMarkerRequest[]): Promise<TxnMarkerPartitionResult[][]> {
    return writeTxnMarkers(this.#context, markers);
  }

  /** Adds this broker's gauges (partition offsets and sizes, log dir health) to a metrics registry. */
  registerMetrics(registry: Registry): void {
    registerBrokerMetrics(registry, this.#logs);
    registerReplicaMetrics(registry, this.#logs, {
      nodeId: this.#config.nodeId, metadata: this.#metadata, replicas: this.#replicas, purgatory: this.#purgatory, topics: this.#topicMetrics,
      minIsr: (topic) => this.#partitions.topicConfig(topic).get('min.insync.replicas'),
    });
    this.#server.metrics.register(registry);
  }

  /** The replica manager (tests and co-located roles: leader and follower state). */
  get replicas(): ReplicaManager {
    return this.#replicas;
  }

  /** The high watermark of a local partition (what a consumer can reach), or -1 when not hosted here. */
  highWatermark(topic: string, partition: number): bigint {
    return this.#logs.getLog(topic, partition)?.highWatermark ?? -1n;
  }

  /** The timestamp of the record at `offset` in a local partition, or null when it is not there (any more). */
  async recordTimestamp(topic: string, partition: number, offset: bigint): Promise<bigint | null> {
    const log = this.#logs.getLog(topic, partition);
    if (!log || offset < log.logStartOffset || offset >= log.highWatermark) return null;
    const { records } = await log.read(offset, 1, { minOneBatch: true });
    for (const batch of decodeRecordBatches(records)) {
      for (const record of batch.records) if (record.offset === offset) return record.timestamp;
    }
    return null;
  }

  /** Creates a topic and opens its local logs before resolving, so the creator can use it at once. */
  async #createTopic(name: string, partitions?: number, replicationFactor?: number, configs: Record<string, string> = {}, assignments?: number[][]): Promise<void> {
    const topic = await this.#metadata.createTopic({
      name,
      partitions: assignments?.length ?? partitions ?? this.#config.get('num.partitions'),
      replicationFactor: assignments?.[0]?.length ?? replicationFactor ?? this.#config.get('default.replication.factor'),
      configs,
      ...(assignments ? { assignments } : {}),
    });
    await Promise.all(topic.partitions.map((p) => this.#partitions.leaderLog(name, p.partition)));
  }
}
