import { join, resolve } from 'node:path';
import { createLogger, type Logger } from '@runnel/common';
import { Broker } from '@runnel/broker';
import { LocalStore } from '@runnel/metadata';
import { loadConfig, type ConfigArgs } from './config.ts';

/**
 * `runnel start`: every role in this one process with the embedded metadata store, the
 * single-node default that needs nothing installed. Resolves once the listener is up; the returned
 * `stop` shuts down cleanly (listener first, then checkpoints).
 */
export async function startSingleNode(args: ConfigArgs, env: NodeJS.ProcessEnv, logger?: Logger): Promise<{ stop: () => Promise<void>; port: number }> {
  const began = performance.now();
  const { config, unknown } = loadConfig(args, env);
  const log = logger ?? createLogger({ name: 'runnel', level: env.RUNNEL_LOG_LEVEL });
  if (unknown.length > 0) log.warn({ keys: unknown }, 'ignoring configuration keys Runnel does not know');
  for (const line of config.summary()) log.debug(line);

  const metadata = LocalStore.create({ path: join(resolve(config.logDirs[0]!), 'runnel-metadata.json'), nodeId: config.nodeId, clusterId: config.get('cluster.id') ?? undefined });
  await metadata.start();
  const broker = Broker.create({ config, metadata, logger: log });
  await broker.start();

  const advertised = config.advertisedListeners[0]!;
  const { port } = broker.address();
  log.info({ listener: `PLAINTEXT://${advertised.host || '127.0.0.1'}:${advertised.port || port}`, clusterId: metadata.snapshot().clusterId, logDirs: config.logDirs, startupMs: Math.round(performance.now() - began) }, 'runnel is ready');
  return {
    port,
    stop: async () => {
      await broker.stop();
      await metadata.stop();
      log.info('runnel stopped');
    },
  };
}
