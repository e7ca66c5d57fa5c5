import { join, resolve } from 'node:path';
import { OFFSETS_TOPIC, OFFSETS_TOPIC_CONFIGS, TRANSACTION_STATE_TOPIC, type BrokerConfig, type Logger } from '@runnel/common';
import { Broker } from '@runnel/broker';
import { Coordinator, createTransactionStateTopic, markerSink, topicLookup, groupCoordinatorConfigFrom, offsetsCountIgnored, partitionLogOffsetsLog, registerCoordinatorMetrics, txnCoordinatorConfigFrom, type TxnMarker } from '@runnel/coordinator';
import { LocalStore, type MetadataStore } from '@runnel/metadata';
import { loadConfig, type ConfigArgs } from './config.ts';
import { cliLogger, warnUnknownKeys } from './logging.ts';
import { startMetrics, type MetricsServer } from './metrics-server.ts';

/**
 * `runnel start`: the broker and the group coordinator in this one process with the embedded
 * metadata store, the single-node default that needs nothing installed. The coordinator's
 * handlers are served on the broker's listener (so FindCoordinator points at this node) and its
 * state lives in the broker's `__consumer_offsets` partitions. Resolves once the listener is up;
 * `stop` shuts down cleanly (listener first, then checkpoints).
 */
export async function startSingleNode(args: ConfigArgs, env: NodeJS.ProcessEnv, logger?: Logger): Promise<{ stop: () => Promise<void>; port: number }> {
  const began = performance.now();
  const { config, unknown } = loadConfig(args, env);
  const log = logger ?? cliLogger('runnel', env);
  warnUnknownKeys(log, unknown);
  for (const line of config.summary()) log.debug(line);

  const metadata = LocalStore.create({ path: join(resolve(config.logDirs[0]!), 'runnel-metadata.json'), nodeId: config.nodeId, clusterId: config.get('cluster.id') ?? undefined });
  await metadata.start();
  await ensureOffsetsTopic(metadata, config);
  // Groups hash over the partitions the topic has: the setting only counts when it is created.
  const offsetsPartitions = metadata.snapshot().topics.get(OFFSETS_TOPIC)?.partitions.length ?? config.get('offsets.topic.num.partitions');
  if (offsetsPartitions !== config.get('offsets.topic.num.partitions')) log.warn(offsetsCountIgnored(offsetsPartitions, config.get('offsets.topic.num.partitions')));

  // The offsets log reaches the broker's partitions through a closure: both roles must exist
  // before either starts, and the broker serves the coordinator's handlers.
  let broker: Broker | undefined;
  // A marker on one local partition, through the broker (written as leader, answered once committed).
  const writeMarker = async (topic: string, partition: number, m: TxnMarker) => {
    const result = (await broker!.writeTxnMarkers([{ ...m, partitions: [{ topic, partition }] }]))[0]![0]!;
    if (result.error !== null) throw Object.assign(new Error(`writing a transaction marker to ${topic}-${partition}: ${result.error}`), { code: result.error });
  };
  const coordinator: Coordinator = Coordinator.create({
    config: groupCoordinatorConfigFrom(config),
    offsetsLog: partitionLogOffsetsLog({
      partitions: offsetsPartitions,
      log: (p) => broker!.localLog(OFFSETS_TOPIC, p),
      append: (p, batch) => broker!.appendLocal(OFFSETS_TOPIC, p, batch),
      appendMarker: (p, m) => writeMarker(OFFSETS_TOPIC, p, m),
    }),
    // The transaction coordinator, in this process too: its state in the local __transaction_state
    // (created on first use), markers straight to the broker and to the group coordinator.
    transactions: {
      log: partitionLogOffsetsLog({
        partitions: metadata.snapshot().topics.get(TRANSACTION_STATE_TOPIC)?.partitions.length ?? config.get('transaction.state.log.num.partitions'),
        log: (p) => broker!.localLog(TRANSACTION_STATE_TOPIC, p),
        append: (p, batch) => broker!.appendLocal(TRANSACTION_STATE_TOPIC, p, batch),
      }),
      markers: markerSink({
        writeData: async (m, partitions) => (await broker!.writeTxnMarkers([{ ...m, partitions }]))[0]!,
        writeOffsets: (p, m) => coordinator.writeTxnMarker(p, m),
        topicExists: (topic) => metadata.snapshot().topics.has(topic),
        logger: log.child({ component: 'txn-markers' }),
      }),
      allocateProducerId: () => metadata.allocateProducerId(),
      config: txnCoordinatorConfigFrom(config),
      topic: { exists: () => metadata.snapshot().topics.has(TRANSACTION_STATE_TOPIC), create: () => createTransactionStateTopic(metadata, config, 1) },
    },
    self: () => ({ nodeId: config.nodeId, ...broker!.advertisedAddress() }),
    logger: log.child({ component: 'coordinator' }),
    // KIP-848 groups assign partitions server-side: they read the topics from metadata.
    topics: topicLookup(() => metadata.snapshot()),
  });
  // WriteTxnMarkers (kafka-transactions abort) on __consumer_offsets: the coordinator writes it and resolves its pending offsets.
  broker = Broker.create({ config, metadata, logger: log, extraHandlers: coordinator.handlers(), groupTxnMarker: (p, m) => coordinator.writeTxnMarker(p, m) });

  let metrics: MetricsServer | undefined;
  // A deleted (or recreated) topic's committed offsets go from every group (Kafka's onPartitionsDeleted).
  let unsubscribe: (() => void) | undefined;
  try {
    await broker.start();
    await coordinator.start();
    unsubscribe = metadata.subscribe((event) => {
      if (event.type === 'topic-deleted') coordinator.topicsDeleted([event.name]);
    });
    metrics = await startMetrics(config, (registry) => {
      broker.registerMetrics(registry);
      registerCoordinatorMetrics(registry, coordinator, {
        logEndOffset: (t, p) => broker.highWatermark(t, p),
        recordTimestamp: (t, p, o) => broker.recordTimestamp(t, p, o),
      });
    }, log);
  } catch (err) {
    // Release what did start (files, worker threads) so the process can exit with the error.
    unsubscribe?.();
    await coordinator.stop().catch(() => {});
    await broker.stop().catch(() => {});
    await metadata.stop().catch(() => {});
    throw err;
  }

  const { host, port } = broker.advertisedAddress();
  // `listener` is the primary (inter-broker) listener; `listeners` is what each listener's clients are told.
  const listeners = broker.advertisedEndpoints().map((e) => `${e.listener}://${e.host}:${e.port}`);
  log.info({ listener: `${config.listenerSetup.interBrokerListener}://${host}:${port}`, listeners, clusterId: metadata.snapshot().clusterId, logDirs: config.logDirs, startupMs: Math.round(performance.now() - began) }, 'runnel is ready');
  return {
    port: broker.address().port,
    stop: async () => {
      unsubscribe?.();
      await metrics?.close();
      await coordinator.stop();
      await broker.stop();
      await metadata.stop();
      log.info('runnel stopped');
    },
  };
}

/** `__consumer_offsets` is a real, internal, compacted topic, visible in Metadata as in Kafka. */
async function ensureOffsetsTopic(metadata: MetadataStore, config: BrokerConfig): Promise<void> {
  if (metadata.snapshot().topics.has(OFFSETS_TOPIC)) return;
  await metadata.createTopic({
    name: OFFSETS_TOPIC,
    partitions: config.get('offsets.topic.num.partitions'),
    replicationFactor: config.get('offsets.topic.replication.factor'),
    internal: true,
    configs: { ...OFFSETS_TOPIC_CONFIGS },
  });
}
