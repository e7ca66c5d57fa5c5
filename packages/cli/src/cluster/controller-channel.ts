import { silentLogger, type Logger } from '@runnel/common';
import { MetadataError, type BrokerRegistration, type MetadataErrorCode, type MetadataWriter, type TopicMetadata } from '@runnel/metadata';
import { RpcClient, RpcError, type Address, type TopicMsg } from '@runnel/rpc';

/** Metadata error codes the controller throws; any other remote code stays an RpcError. */
const METADATA_CODES = new Set<string>([
  'TOPIC_ALREADY_EXISTS', 'UNKNOWN_TOPIC', 'INVALID_PARTITIONS', 'INVALID_REPLICATION_FACTOR', 'INVALID_REPLICA_ASSIGNMENT',
  'INVALID_TOPIC_NAME', 'CLUSTER_ID_MISMATCH', 'STALE_EPOCH', 'STORE_UNAVAILABLE', 'CORRUPT_STATE',
] satisfies MetadataErrorCode[]);

/** How long a write keeps retrying while there is no controller (an election, a restart). */
const DEFAULT_RETRY_MS = 15_000;

/**
 * A node's way to the controller: the MetadataWriter that RedisStore sends writes to, spoken over
 * `@runnel/rpc`. The controller is found through metadata (the lease holder's RPC address), so a
 * new controller is picked up on the next call. Calls that find no controller, a standby
 * (NOT_CONTROLLER) or a dropped connection are retried with backoff for `retryMs`; a refusal
 * from the controller (a metadata error) comes back as the MetadataError it was, so handlers map
 * it to the same Kafka error as under `runnel start`.
 */
export function controllerChannel(options: { locate: () => Address | null; retryMs?: number; logger?: Logger }): MetadataWriter & { close(): void } {
  const logger = options.logger ?? silentLogger();
  const retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
  let client: { address: string; rpc: RpcClient } | undefined;

  const connect = (): RpcClient => {
    const address = options.locate();
    if (!address) throw new MetadataError('STORE_UNAVAILABLE', 'no controller holds the lease', { retriable: true });
    const key = `${address.host}:${address.port}`;
    if (client?.address !== key) {
      client?.rpc.close();
      client = { address: key, rpc: RpcClient.create({ ...address, requestTimeoutMs: 10_000 }) };
    }
    return client.rpc;
  };

  async function call<R>(what: string, fn: (rpc: RpcClient) => Promise<R>): Promise<R> {
    const deadline = Date.now() + retryMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(connect());
      } catch (err) {
        const mapped = mapError(err);
        if (!mapped.retriable || Date.now() >= deadline) throw mapped;
        if (attempt === 0) logger.info({ err: mapped.message, what }, 'controller not reachable yet; retrying');
        await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** attempt)));
      }
    }
  }

  return {
    registerNode: (input) => call('registerNode', async (rpc) => {
      const res = await rpc.call('controller.registerNode', { ...input });
      return { registration: res.registration as BrokerRegistration, version: res.version };
    }),
    heartbeat: (nodeId, brokerEpoch) => call('heartbeat', (rpc) => rpc.call('controller.heartbeat', { nodeId, brokerEpoch })),
    createTopic: (spec) => call('createTopic', async (rpc) => {
      const res = await rpc.call('controller.createTopic', {
        name: spec.name, partitions: spec.partitions, replicationFactor: spec.replicationFactor,
        configs: spec.configs ?? {}, internal: spec.internal ?? spec.name.startsWith('__'), assignments: spec.assignments ?? [],
      });
      return { topic: topicOf(res.topic), version: res.version };
    }),
    deleteTopic: (name) => call('deleteTopic', (rpc) => rpc.call('controller.deleteTopic', { name })),
    createPartitions: (name, totalCount, assignments) => call('createPartitions', async (rpc) => {
      const res = await rpc.call('controller.createPartitions', { name, totalCount, assignments: assignments ?? [] });
      return { topic: topicOf(res.topic), version: res.version };
    }),
    alterTopicConfigs: (name, configs) => call('alterTopicConfigs', async (rpc) => {
      const set: Record<string, string> = {};
      const remove: string[] = [];
      for (const [k, v] of Object.entries(configs)) if (v === null) remove.push(k); else set[k] = v;
      const res = await rpc.call('controller.alterTopicConfigs', { name, set, remove });
      return { topic: topicOf(res.topic), version: res.version };
    }),
    allocateProducerId: () => call('allocateProducerId', async (rpc) => (await rpc.call('controller.allocateProducerId', {})).producerId),
    close: () => client?.rpc.close(),
  };
}

const topicOf = (t: TopicMsg): TopicMetadata => ({ ...t, configs: { ...t.configs } });

/** A remote metadata refusal becomes the MetadataError it was; transport trouble and a standby stay retriable. */
function mapError(err: unknown): RunnelLike {
  if (err instanceof RpcError) {
    if (err.code === 'REMOTE' && err.remoteCode !== undefined && METADATA_CODES.has(err.remoteCode)) {
      return new MetadataError(err.remoteCode as MetadataErrorCode, err.message, { retriable: err.retriable });
    }
    if (err.code === 'REMOTE' && err.remoteCode === 'NOT_CONTROLLER') return retriable(err);
    if (err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT' || err.code === 'CLOSED') return retriable(err);
    return err;
  }
  if (err instanceof MetadataError) return err;
  return Object.assign(err instanceof Error ? err : new Error(String(err)), { retriable: false });
}

type RunnelLike = Error & { retriable: boolean };

function retriable(err: RpcError): RunnelLike {
  return new MetadataError('STORE_UNAVAILABLE', `controller unavailable: ${err.message}`, { cause: err, retriable: true });
}
