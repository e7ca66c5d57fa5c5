import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '@runnel/common';
import {
  MetadataError, clientQuotaKey, type AlterPartitionResult, type BrokerRegistration, type ElectionResult, type ReassignmentResult, type MetadataErrorCode, type MetadataWriter, type TopicMetadata,
} from '@runnel/metadata';
import { RpcClient, RpcError, type Address, type RpcTls, type TopicMsg } from '@runnel/rpc';

/** Metadata error codes (the controller's refusals arrive as these remote codes); the Record keeps it complete. */
const METADATA_CODES = new Set(Object.keys({
  TOPIC_ALREADY_EXISTS: true, UNKNOWN_TOPIC: true, INVALID_PARTITIONS: true, INVALID_REPLICATION_FACTOR: true,
  INVALID_REPLICA_ASSIGNMENT: true, INVALID_TOPIC_NAME: true, POLICY_VIOLATION: true, CLUSTER_ID_MISMATCH: true, STALE_EPOCH: true,
  CONFLICT: true, STORE_UNAVAILABLE: true, CORRUPT_STATE: true, DUPLICATE_BROKER_REGISTRATION: true,
} satisfies Record<MetadataErrorCode, true>));

/** How long a write keeps retrying while there is no controller (an election, a restart). */
const DEFAULT_RETRY_MS = 15_000;
/** How often calls in flight look whether metadata names another controller (a snapshot read). */
const FOLLOW_MS = 50;

/**
 * A node's way to the controller: the MetadataWriter that RedisStore sends writes to, spoken over
 * `@runnel/rpc`. The controller is found through metadata (the lease holder's RPC address), so a
 * new controller is picked up on the next call.
 *
 * Retries, with backoff for `retryMs`: while there is no controller, a standby answers
 * NOT_CONTROLLER, or the connection fails before the call was sent. A call that timed out or lost
 * its connection mid-flight may have been applied, so only idempotent ones (registration,
 * heartbeats, config changes, producer ids, ISR proposals, elections, reassignments that set a
 * target) are retried then; a topic create or delete, a partition increase and a reassignment
 * cancel fail with a retriable error and the client retries them (seeing TOPIC_ALREADY_EXISTS or
 * NO_REASSIGNMENT_IN_PROGRESS if the first one landed, as a Kafka client can). A refusal from the
 * controller comes back as the MetadataError it was, so handlers map it to the same Kafka error as
 * under `runnel start`; any other failure is a retriable STORE_UNAVAILABLE (REQUEST_TIMED_OUT to
 * clients), never an unknown server error.
 *
 * A frozen or partitioned controller must not cost a node its session (Kafka's brokers re-point
 * heartbeats at a new KRaft controller at once): every attempt is bounded by the session timeout
 * (heartbeats by a third of it, so two more fit before the controller would fence the node), a
 * failed attempt reloads metadata (`refresh`), and while calls are in flight the channel watches
 * `locate()`: when another controller takes the lease, the connection to the old one is closed,
 * its calls fail at once and are retried against the new one without backoff.
 */
export function controllerChannel(options: {
  locate: () => Address | null;
  retryMs?: number;
  /** `broker.session.timeout.ms`: bounds each attempt (a heartbeat's by a third of it). */
  sessionTimeoutMs?: number;
  /** The bound of one attempt at most (default 10 s); the session timeout lowers it. */
  requestTimeoutMs?: number;
  /**
   * Reloads what `locate()` reads (RedisStore.refresh): called when an attempt fails, so a new
   * controller is found even if its announcement (pub/sub) was missed, without waiting for the poll.
   */
  refresh?: () => void;
  logger?: Logger;
  /** TLS to the controller's RPC (runnel.rpc.ssl.enabled); none = plaintext. */
  tls?: RpcTls;
}): MetadataWriter & { close(): void } {
  const logger = options.logger ?? silentLogger();
  const retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
  const callTimeoutMs = Math.max(1, Math.min(options.requestTimeoutMs ?? 10_000, options.sessionTimeoutMs ?? Infinity));
  const heartbeatTimeoutMs = Math.max(1, Math.min(callTimeoutMs, Math.floor((options.sessionTimeoutMs ?? Infinity) / 3)));
  let client: { address: string; rpc: RpcClient } | undefined;
  let closed = false;
  const stopped = new AbortController();
  let inflight = 0;
  let watch: NodeJS.Timeout | undefined;

  const keyOf = (address: Address | null): string | undefined => (address ? `${address.host}:${address.port}` : undefined);

  const connect = (): { rpc: RpcClient; address: string } => {
    if (closed) throw new MetadataError('STORE_UNAVAILABLE', 'the controller channel is closed (the node is stopping)');
    const address = options.locate();
    if (!address) throw new MetadataError('STORE_UNAVAILABLE', 'no controller holds the lease', { retriable: true });
    const key = keyOf(address)!;
    if (client?.address !== key) {
      client?.rpc.close();
      client = { address: key, rpc: RpcClient.create({ ...address, requestTimeoutMs: callTimeoutMs, connectTimeoutMs: callTimeoutMs, tls: options.tls }) };
    }
    return client;
  };

  /**
   * While calls are in flight: once metadata names another controller, close the connection to
   * the old one (its calls fail with CLOSED and are retried against the new one at once) rather
   * than wait out their timeouts on a controller that may be frozen.
   */
  const follow = (): void => {
    const key = keyOf(options.locate());
    if (client && key !== undefined && client.address !== key) {
      logger.info({ from: client.address, to: key }, 'the controller moved; re-sending calls in flight to the new one');
      client.rpc.close();
      client = undefined;
    }
  };

  async function call<R>(what: string, fn: (rpc: RpcClient) => Promise<R>, idempotent = true): Promise<R> {
    const deadline = Date.now() + retryMs;
    if (inflight++ === 0) {
      watch = setInterval(follow, FOLLOW_MS);
      watch.unref();
    }
    try {
      for (let attempt = 0; ; attempt++) {
        let to: string | undefined;
        try {
          const { rpc, address } = connect();
          to = address;
          return await fn(rpc);
        } catch (err) {
          const mapped = mapError(err);
          // A node id held by another process is the caller's to wait out (RedisStore logs it and retries).
          const again = mapped.retriable && mapped.code !== 'DUPLICATE_BROKER_REGISTRATION' && (idempotent || !mayHaveLanded(err)) && !closed;
          if (!again || Date.now() >= deadline) throw mapped;
          if (attempt === 0) logger.info({ err: mapped.message, what }, 'controller not reachable yet; retrying');
          options.refresh?.();
          // Back off, but try a new controller (or the first one to appear) at once, with the backoff started over.
          const moved = (): boolean => keyOf(options.locate()) !== to;
          const until = Date.now() + Math.min(1_000, 50 * 2 ** attempt);
          while (!moved() && !closed && Date.now() < until) {
            await sleep(Math.min(FOLLOW_MS, until - Date.now()), undefined, { signal: stopped.signal }).catch(() => {});
          }
          if (moved()) attempt = -1;
        }
      }
    } finally {
      if (--inflight === 0) clearInterval(watch);
    }
  }

  return {
    registerNode: (input) => call('registerNode', async (rpc) => {
      const res = await rpc.call('controller.registerNode', { ...input });
      return { registration: res.registration as BrokerRegistration, version: res.version };
    }),
    heartbeat: (nodeId, brokerEpoch) => call('heartbeat', (rpc) => rpc.call('controller.heartbeat', { nodeId, brokerEpoch }, { timeoutMs: heartbeatTimeoutMs })),
    createTopic: (spec) => call('createTopic', async (rpc) => {
      const res = await rpc.call('controller.createTopic', {
        name: spec.name, partitions: spec.partitions, replicationFactor: spec.replicationFactor,
        configs: spec.configs ?? {}, internal: spec.internal ?? spec.name.startsWith('__'), assignments: spec.assignments ?? [],
      });
      return { topic: topicOf(res.topic), version: res.version };
    }, false),
    deleteTopic: (name) => call('deleteTopic', (rpc) => rpc.call('controller.deleteTopic', { name }), false),
    createPartitions: (name, totalCount, assignments) => call('createPartitions', async (rpc) => {
      const res = await rpc.call('controller.createPartitions', { name, totalCount, assignments: assignments ?? [] });
      return { topic: topicOf(res.topic), version: res.version };
    }, false),
    alterTopicConfigs: (name, configs) => call('alterTopicConfigs', async (rpc) => {
      const set: Record<string, string> = {};
      const remove: string[] = [];
      for (const [k, v] of Object.entries(configs)) if (v === null) remove.push(k); else set[k] = v;
      const res = await rpc.call('controller.alterTopicConfigs', { name, set, remove });
      return { topic: topicOf(res.topic), version: res.version };
    }),
    // The same credentials written again change nothing, so a retry is safe.
    alterClientQuotas: (entries) => call('alterClientQuotas', (rpc) => rpc.call('controller.alterClientQuotas', {
      entries: entries.map((e) => ({
        entity: clientQuotaKey(e.entity),
        set: Object.entries(e.ops).flatMap(([key, value]) => (value === null ? [] : [{ key, value }])),
        remove: Object.entries(e.ops).flatMap(([key, value]) => (value === null ? [key] : [])),
      })),
    })),
    alterScramCredentials: (upserts, deletions) => call('alterScramCredentials', (rpc) => rpc.call('controller.alterScramCredentials', {
      upserts: upserts.map((u) => ({ user: u.user, mechanism: u.mechanism, ...u.credential })),
      deletions: deletions.map((d) => ({ user: d.user, mechanism: d.mechanism })),
    })),
    alterBrokerConfigs: (nodeId, configs) => call('alterBrokerConfigs', async (rpc) => {
      const set: Record<string, string> = {};
      const remove: string[] = [];
      for (const [k, v] of Object.entries(configs)) if (v === null) remove.push(k); else set[k] = v;
      return rpc.call('controller.alterBrokerConfigs', { nodeId: nodeId ?? -1, set, remove });
    }),
    // Creating a binding again is a no-op, so a retry is safe; a deletion retried after it landed
    // would report nothing deleted, so it is not re-sent once it may have landed.
    createAcls: (acls) => call('createAcls', (rpc) => rpc.call('controller.createAcls', { acls })),
    deleteAcls: (filters) => call('deleteAcls', async (rpc) => {
      const res = await rpc.call('controller.deleteAcls', { filters });
      return { deleted: res.deleted.map((d) => d.acls), version: res.version };
    }, false),
    allocateProducerId: () => call('allocateProducerId', async (rpc) => (await rpc.call('controller.allocateProducerId', {})).producerId),
    // ISR proposals are compare-and-set on the partition's version: a repeat of one that landed is refused, never applied twice.
    alterPartition: (request) => call('alterPartition', async (rpc) => {
      const res = await rpc.call('controller.alterPartition', request);
      return { result: { error: (res.error || null) as AlterPartitionResult['error'], partition: res.partition }, version: res.version };
    }),
    // Setting a target again is a no-op, but a cancel repeated after it landed would answer
    // NO_REASSIGNMENT_IN_PROGRESS for a cancel that succeeded: a batch with a cancel is not re-sent
    // once it may have landed (retriable to the client, like a topic create).
    alterReassignments: (items) => call('alterReassignments', async (rpc) => {
      const res = await rpc.call('controller.alterReassignments', {
        reassignments: items.map((r) => ({ topic: r.topic, partition: r.partition, replicas: r.replicas ?? [], cancel: r.replicas === null })),
      });
      return { results: res.results.map((r) => ({ ...r, error: (r.error || null) as ReassignmentResult['error'] })), version: res.version };
    }, !items.some((r) => r.replicas === null)),
    shutdownNode: (nodeId, brokerEpoch) => call('shutdownNode', (rpc) => rpc.call('controller.shutdownNode', { nodeId, brokerEpoch })),
    electLeaders: (partitions, unclean) => call('electLeaders', async (rpc) => {
      const res = await rpc.call('controller.electLeaders', { partitions: partitions ?? [], unclean });
      return { results: res.results.map((r) => ({ ...r, error: (r.error || null) as ElectionResult['error'] })), version: res.version };
    }),
    close: () => {
      closed = true;
      stopped.abort();
      clearInterval(watch);
      client?.rpc.close();
    },
  };
}

const topicOf = (t: TopicMsg): TopicMetadata => ({ ...t, configs: { ...t.configs } });

/** A remote metadata refusal becomes the MetadataError it was; anything else is retriable STORE_UNAVAILABLE. */
function mapError(err: unknown): MetadataError {
  if (err instanceof MetadataError) return err;
  if (err instanceof RpcError && err.code === 'REMOTE' && err.remoteCode !== undefined && METADATA_CODES.has(err.remoteCode)) {
    return new MetadataError(err.remoteCode as MetadataErrorCode, err.message, { retriable: err.retriable });
  }
  // No controller, a standby (NOT_CONTROLLER), a lost connection, a timeout, or a failure nobody
  // anticipated (INTERNAL, BAD_FRAME): the write did not (visibly) happen; the client may retry.
  return new MetadataError('STORE_UNAVAILABLE', `controller unavailable: ${(err as Error).message ?? String(err)}`, { cause: err, retriable: true });
}

/**
 * Whether a failed call may have been applied by the controller: it was written and no answer
 * came, or the controller failed after running it (INTERNAL). A refused connect was never sent.
 */
function mayHaveLanded(err: unknown): boolean {
  if (!(err instanceof RpcError) || !err.sent) return false;
  return err.code === 'TIMEOUT' || err.code === 'UNAVAILABLE' || err.code === 'CLOSED' || (err.code === 'REMOTE' && err.remoteCode === 'INTERNAL');
}
