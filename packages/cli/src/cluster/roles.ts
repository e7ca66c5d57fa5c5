import { join, resolve } from 'node:path';
import { ConfigError, type BrokerConfig, type Logger } from '@runnel/common';
import { Broker, nonLeaderHandlers } from '@runnel/broker';
import { Controller } from '@runnel/controller';
import { BrokerClients, CoordinatorNode, notCoordinatorHandlers } from '@runnel/coordinator';
import { ControllerStore, RedisStore } from '@runnel/metadata';
import { RpcTls } from '@runnel/rpc';
import { loadConfig, type ConfigArgs } from '../config.ts';
import { cliLogger, warnUnknownKeys } from '../logging.ts';
import { startMetrics, type MetricsServer } from '../metrics-server.ts';
import { controllerChannel } from './controller-channel.ts';

/** A started role: what the command's signal handlers stop. */
export interface RunningRole {
  stop(): Promise<void>;
}

/**
 * The cluster roles as separate processes (`runnel controller|broker|coordinator`): each is the
 * role's library plus its metadata wiring. Brokers and coordinators read metadata from Redis and
 * send their writes to the controller over RPC; the controller is Redis' only writer.
 */
export async function startRole(role: 'controller' | 'broker' | 'coordinator', args: ConfigArgs, env: NodeJS.ProcessEnv): Promise<RunningRole> {
  const began = performance.now();
  const { config, unknown } = loadConfig(args, env);
  const log = cliLogger(`runnel-${role}`, env).child({ role, nodeId: config.nodeId });
  warnUnknownKeys(log, unknown);
  const url = redisUrl(config);
  // A finding after start that the role cannot serve through (another cluster's Redis, a
  // mismatched __consumer_offsets) ends the process, so a supervisor restarts it cleanly.
  const onFatal = (err: Error) => {
    log.fatal({ err }, `runnel ${role} cannot continue`);
    process.exit(1);
  };
  const ready = (fields: Record<string, unknown>) =>
    log.info({ ...fields, startupMs: Math.round(performance.now() - began) }, `runnel ${role} is ready`);

  if (role === 'controller') {
    const store = ControllerStore.create({ url, controllerId: config.nodeId, leaseMs: config.get('runnel.controller.lease.ms'), logger: log.child({ component: 'metadata' }) });
    const controller = Controller.create({ config, store, logger: log, onFatal });
    await controller.start();
    let metrics: MetricsServer | undefined;
    try {
      metrics = await startMetrics(config, (registry) => controller.registerMetrics(registry), log);
    } catch (err) {
      await controller.stop().catch(() => {});
      throw err;
    }
    const rpc = controller.rpcAddress();
    ready({ rpc: `${rpc.host}:${rpc.port}` });
    return { stop: async () => { await metrics?.close(); await controller.stop(); log.info('runnel controller stopped'); } };
  }

  const { store: metadata, closeChannel } = nodeStore(config, url, log);
  await metadata.start();
  // A broker sends WriteTxnMarkers' (kafka-transactions abort) __consumer_offsets markers to the coordinator node owning the partition.
  const coordinators = role === 'broker' ? new BrokerClients({ metadata, logger: log.child({ component: 'rpc' }), tls: RpcTls.for(config, log.child({ component: 'rpc' })) }) : undefined;
  const node = role === 'broker'
    // Brokers coordinate no groups, but advertise and answer the group APIs (NOT_COORDINATOR):
    // kafkajs takes every node's API versions from its bootstrap broker.
    ? Broker.create({ config, metadata, logger: log, cluster: { rpcListener: config.get('runnel.rpc.listener') }, extraHandlers: notCoordinatorHandlers(), groupTxnMarker: (p, m) => coordinators!.offsetsMarker(p, m) })
    // A coordinator node is listed in Metadata, so it answers every API a broker does, as a node
    // that leads no partition (NOT_LEADER_OR_FOLLOWER, no log dirs, admin writes forwarded).
    : CoordinatorNode.create({ config, metadata, logger: log, onFatal, extraHandlers: nonLeaderHandlers({ config, metadata, logger: log.child({ component: 'broker-apis' }) }) });
  let metrics: MetricsServer | undefined;
  const stop = async () => {
    await metrics?.close();
    await node.stop();
    coordinators?.close();
    await metadata.stop();
    closeChannel();
  };
  try {
    await node.start();
    // Ready means listed in Metadata: a broker registers inside start(); a coordinator node keeps
    // retrying in the background (it serves as soon as it is assigned partitions), so wait for it.
    if (node instanceof CoordinatorNode) await node.registered();
    metrics = await startMetrics(config, (registry) => node.registerMetrics(registry), log);
  } catch (err) {
    // Release what did start (listeners, files) so the process can exit with the error.
    await stop().catch(() => {});
    throw err;
  }
  const { host, port } = node.advertisedAddress();
  // `listener` is the primary (inter-broker) listener; `listeners` is what each listener's clients are told.
  const listeners = node.advertisedEndpoints().map((e) => `${e.listener}://${e.host}:${e.port}`);
  ready({ listener: `${config.listenerSetup.interBrokerListener}://${host}:${port}`, listeners, clusterId: metadata.snapshot().clusterId, logDirs: role === 'broker' ? config.logDirs : undefined });
  return { stop: async () => { await stop(); log.info(`runnel ${role} stopped`); } };
}

function redisUrl(config: BrokerConfig): string {
  const url = config.get('runnel.redis.url');
  if (!url) throw new ConfigError('MISSING', 'runnel.redis.url', 'runnel.redis.url: the cluster roles keep metadata in Redis; set it (e.g. --set runnel.redis.url=redis://127.0.0.1:6379), or use `runnel start` for a single node');
  return url;
}

/** A node's metadata: Redis for reads, the controller (found through Redis) for writes. */
function nodeStore(config: BrokerConfig, url: string, log: Logger): { store: RedisStore; closeChannel: () => void } {
  let store: RedisStore | undefined;
  const writer = controllerChannel({
    locate: () => store?.snapshot().controllerRpc ?? null,
    sessionTimeoutMs: config.get('broker.session.timeout.ms'),
    refresh: () => void store?.refresh().catch(() => {}), // Redis away: the last snapshot stays; the poll tries again
    logger: log.child({ component: 'controller-channel' }),
    tls: RpcTls.for(config, log.child({ component: 'rpc' })),
  });
  store = RedisStore.create({
    url,
    nodeId: config.nodeId,
    writer,
    clusterId: config.get('cluster.id') ?? undefined,
    heartbeatIntervalMs: config.get('broker.heartbeat.interval.ms'),
    sessionTimeoutMs: config.get('broker.session.timeout.ms'),
    epochFile: join(resolve(config.logDirs[0]!), 'runnel-metadata-epoch.json'),
    logger: log.child({ component: 'metadata' }),
  });
  return { store, closeChannel: () => writer.close() };
}
