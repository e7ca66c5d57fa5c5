import { ConfigError, createLogger, type BrokerConfig, type Logger } from '@runnel/common';
import { Broker } from '@runnel/broker';
import { Controller } from '@runnel/controller';
import { CoordinatorNode, notCoordinatorHandlers } from '@runnel/coordinator';
import { ControllerStore, RedisStore } from '@runnel/metadata';
import { loadConfig, type ConfigArgs } from '../config.ts';
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
  const log = createLogger({ name: `runnel-${role}`, level: env.RUNNEL_LOG_LEVEL }).child({ role, nodeId: config.nodeId });
  if (unknown.length > 0) log.warn({ keys: unknown }, 'ignoring configuration keys Runnel does not know');
  const url = redisUrl(config);
  const ready = (fields: Record<string, unknown>) =>
    log.info({ ...fields, startupMs: Math.round(performance.now() - began) }, `runnel ${role} is ready`);

  if (role === 'controller') {
    const store = ControllerStore.create({ url, controllerId: config.nodeId, leaseMs: config.get('runnel.controller.lease.ms'), logger: log.child({ component: 'metadata' }) });
    // A fatal finding after start (another cluster's Redis) must end the process, not leave a standby.
    const controller = Controller.create({ config, store, logger: log, onFatal: (err) => { log.fatal({ err }, 'controller cannot continue'); process.exit(1); } });
    await controller.start();
    const rpc = controller.rpcAddress();
    ready({ rpc: `${rpc.host}:${rpc.port}` });
    return { stop: async () => { await controller.stop(); log.info('runnel controller stopped'); } };
  }

  const metadata = nodeStore(config, url, log);
  await metadata.start();
  if (role === 'broker') {
    // Brokers coordinate no groups, but advertise and answer the group APIs (NOT_COORDINATOR):
    // kafkajs takes every node's API versions from its bootstrap broker.
    const broker = Broker.create({ config, metadata, logger: log, cluster: { rpcListener: config.get('runnel.rpc.listener') }, extraHandlers: notCoordinatorHandlers() });
    await startOrRelease(broker, metadata);
    const { host, port } = broker.advertisedAddress();
    ready({ listener: `PLAINTEXT://${host}:${port}`, clusterId: metadata.snapshot().clusterId, logDirs: config.logDirs });
    return { stop: async () => { await broker.stop(); await metadata.stop(); log.info('runnel broker stopped'); } };
  }
  const coordinator = CoordinatorNode.create({ config, metadata, logger: log });
  await startOrRelease(coordinator, metadata);
  const { host, port } = coordinator.advertisedAddress();
  ready({ listener: `PLAINTEXT://${host}:${port}`, clusterId: metadata.snapshot().clusterId });
  return { stop: async () => { await coordinator.stop(); await metadata.stop(); log.info('runnel coordinator stopped'); } };
}

function redisUrl(config: BrokerConfig): string {
  const url = config.get('runnel.redis.url');
  if (!url) throw new ConfigError('MISSING', 'runnel.redis.url', 'runnel.redis.url: the cluster roles keep metadata in Redis; set it (e.g. --set runnel.redis.url=redis://127.0.0.1:6379), or use `runnel start` for a single node');
  return url;
}

/** A node's metadata: Redis for reads, the controller (found through Redis) for writes. */
function nodeStore(config: BrokerConfig, url: string, log: Logger): RedisStore {
  let store: RedisStore | undefined;
  const writer = controllerChannel({ locate: () => store?.snapshot().controllerRpc ?? null, logger: log.child({ component: 'controller-channel' }) });
  store = RedisStore.create({
    url,
    nodeId: config.nodeId,
    writer,
    clusterId: config.get('cluster.id') ?? undefined,
    heartbeatIntervalMs: config.get('broker.heartbeat.interval.ms'),
    logger: log.child({ component: 'metadata' }),
  });
  return store;
}

/** Starts a role; when the start fails, releases what did start so the process can exit with the error. */
async function startOrRelease(role: { start(): Promise<void>; stop(): Promise<void> }, metadata: RedisStore): Promise<void> {
  try {
    await role.start();
  } catch (err) {
    await role.stop().catch(() => {});
    await metadata.stop().catch(() => {});
    throw err;
  }
}
