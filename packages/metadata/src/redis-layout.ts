/**
 * Cluster metadata in Redis: the key layout, its encoding, and the reads both sides share. The
 * controller (ControllerStore) is the only writer; every node (RedisStore) only reads.
 *
 * Keys (all strings are UTF-8; JSON is canonical: object keys sorted, so equal values are equal strings):
 *
 *   runnel:cluster-id          string   the cluster id, written once; never changed afterwards
 *   runnel:controller:epoch    integer  the controller epoch: INCR by each controller that takes the lease;
 *                                       every controller write checks it (docs/metadata.md, rules 1–2)
 *   runnel:controller:lease    string   `${controllerId}:${epoch}` with a PX TTL (`runnel.controller.lease.ms`):
 *                                       SET NX PX to take it, compare-and-renew / compare-and-delete
 *   runnel:controller          JSON     { controllerId, epoch, rpc: {host, port} } of the last controller to
 *                                       take the lease (how nodes find it; `controllerRpc` while a lease exists)
 *   runnel:version             integer  metadata version: INCR by every controller write (and every election);
 *                                       it is `MetadataSnapshot.epoch`
 *   runnel:nodes               hash     nodeId (decimal) → JSON StoredNode (BrokerRegistration + fenced, and
 *                                       shuttingDown: true while the broker is in controlled shutdown)
 *   runnel:topics              hash     topic name → JSON TopicMetadata
 *   runnel:coordinators        JSON     [{ partition, nodeId, epoch }] sorted by partition (replaced whole)
 *   runnel:broker-configs      hash     '' (cluster default) or nodeId (decimal) → JSON { name: value } of
 *                                       dynamic broker configs (fields with no configs left are deleted)
 *   runnel:acls                JSON     [AclBinding] in creation order (acls.ts; replaced whole by each ACL change)
 *   runnel:broker-epoch        integer  broker epochs: fenced INCR per registration
 *   runnel:producer-id         integer  the first producer id not yet handed out: fenced INCRBY count,
 *                                       the block allocated is [new - count, new)
 *   channel runnel:changes              PUBLISHed with the new version from inside every write script
 *
 * Redis runs with appendonly yes / appendfsync always (docs/metadata.md, rule 7), so counters (epochs,
 * version, producer ids) never go backwards across a Redis restart; a Redis that lost or rolled
 * back data anyway is caught by each node's epoch file (epoch-file.ts) at its next start.
 */
import type { RedisOptions } from 'ioredis';
import { MetadataError } from './errors.ts';
import { decodeUserScram, type PersistedUserScram, type ScramCredentialData, type ScramMechanismName } from './scram.ts';
import type { ClusterState } from './controller-store.ts';
import type { AclBinding } from './acls.ts';
import type { BrokerRegistration, CoordinatorAssignment, RpcAddress, TopicMetadata } from './types.ts';

export const KEYS = {
  clusterId: 'runnel:cluster-id',
  controllerEpoch: 'runnel:controller:epoch',
  lease: 'runnel:controller:lease',
  controller: 'runnel:controller',
  version: 'runnel:version',
  nodes: 'runnel:nodes',
  topics: 'runnel:topics',
  coordinators: 'runnel:coordinators',
  brokerConfigs: 'runnel:broker-configs',
  /** Hash: user → JSON of that user's SCRAM credentials (scram.ts), salted keys only. */
  scramCredentials: 'runnel:scram-credentials',
  /** Hash: canonical client quota entity key (client-quotas.ts) → JSON { quota key: number }. */
  clientQuotas: 'runnel:client-quotas',
  acls: 'runnel:acls',
  brokerEpoch: 'runnel:broker-epoch',
  producerId: 'runnel:producer-id',
} as const;

export const CHANGES_CHANNEL = 'runnel:changes';

/** A registered node as stored: fenced nodes stay registered (they come back with a new broker epoch). */
export interface StoredNode extends BrokerRegistration {
  fenced: boolean;
  /**
   * In controlled shutdown: never elected nor added to an ISR. Stored (not kept in the controller's
   * memory) so that a controller taking over keeps honouring it; absent when false. Cleared when the
   * node registers again (a new record) or is fenced.
   */
  shuttingDown?: boolean;
}

export interface ControllerRecord {
  controllerId: number;
  epoch: number;
  rpc: RpcAddress;
}

/** Everything in Redis at one instant (read in one MULTI): the controller's state plus the lease. */
export interface RawCluster extends ClusterState {
  controller: ControllerRecord | null;
  /** SCRAM credentials (read after the MULTI: they depend on nothing else; a write bumps the version). */
  scramCredentials: Map<string, Map<ScramMechanismName, ScramCredentialData>>;
  /** Client quotas (read after the MULTI, as the SCRAM credentials). */
  clientQuotas: Map<string, Record<string, number>>;
  /** The lease value, or null when no controller holds it. */
  lease: string | null;
}

/** `url` with its password masked (`redis://:***@host:6379`): the only form errors and logs may show. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.toString();
  } catch {
    // Unparseable: mask whatever sits between the scheme's user part and an `@`.
    return url.replace(/^([^:/]+:\/\/[^:@/]*:)[^@]*@/, '$1***@');
  }
}

/**
 * ioredis options from `runnel.redis.url`: `redis://[user:password@]host[:port][/db]` or
 * `redis+unix:///path/to/redis.sock[?db=N]` (also `unix:///path`).
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new MetadataError('STORE_UNAVAILABLE', `invalid Redis URL "${redactRedisUrl(url)}"`, { cause: err });
  }
  const auth = {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
  if (u.protocol === 'redis+unix:' || u.protocol === 'unix:') {
    const path = decodeURIComponent(u.pathname);
    if (!path) throw new MetadataError('STORE_UNAVAILABLE', `Redis URL "${redactRedisUrl(url)}" has no socket path`);
    const db = u.searchParams.get('db');
    return { path, db: db ? Number(db) : 0, ...auth };
  }
  if (u.protocol === 'redis:') {
    const db = u.pathname.replace(/^\//, '');
    return { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379, db: db ? Number(db) : 0, ...auth };
  }
  throw new MetadataError('STORE_UNAVAILABLE', `unsupported Redis URL "${redactRedisUrl(url)}": use redis://host:port or redis+unix:///path.sock`);
}

/** JSON with object keys sorted at every level: the stored form, so CAS can compare strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}

export function encodeCoordinators(map: ReadonlyMap<number, CoordinatorAssignment>): string {
  return canonicalJson([...map].sort((a, b) => a[0] - b[0]).map(([partition, a]) => ({ partition, nodeId: a.nodeId, epoch: a.epoch })));
}

function decodeJson<T>(what: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new MetadataError('CORRUPT_STATE', `Redis holds invalid JSON at ${what}`, { cause: err });
  }
}

type Exec = [Error | null, unknown][] | null;

/** Reads the whole cluster state atomically (MULTI/EXEC). */
export async function readCluster(redis: import('ioredis').Redis): Promise<RawCluster> {
  const replies: Exec = await redis.multi()
    .get(KEYS.clusterId)
    .get(KEYS.version)
    .get(KEYS.controllerEpoch)
    .hgetall(KEYS.nodes)
    .hgetall(KEYS.topics)
    .get(KEYS.coordinators)
    .get(KEYS.controller)
    .get(KEYS.lease)
    .hgetall(KEYS.brokerConfigs)
    .get(KEYS.acls)
    .exec();
  if (!replies) throw new MetadataError('STORE_UNAVAILABLE', 'Redis transaction was aborted', { retriable: true });
  const scram = await redis.hgetall(KEYS.scramCredentials);
  const quotas = await redis.hgetall(KEYS.clientQuotas);
  const values = replies.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
  const [clusterId, version, epoch, nodes, topics, coordinators, controller, lease, brokerConfigs, acls] = values as [
    string | null, string | null, string | null, Record<string, string>, Record<string, string>, string | null, string | null, string | null,
    Record<string, string>, string | null,
  ];
  const coord = new Map<number, CoordinatorAssignment>();
  if (coordinators) {
    for (const c of decodeJson<{ partition: number; nodeId: number; epoch: number }[]>(KEYS.coordinators, coordinators)) {
      coord.set(c.partition, { nodeId: c.nodeId, epoch: c.epoch });
    }
  }
  return {
    clusterId,
    version: Number(version ?? 0),
    controllerEpoch: Number(epoch ?? 0),
    nodes: new Map(Object.entries(nodes).map(([id, json]) => [Number(id), decodeJson<StoredNode>(`${KEYS.nodes}/${id}`, json)])),
    topics: new Map(Object.entries(topics).map(([name, json]) => [name, decodeJson<TopicMetadata>(`${KEYS.topics}/${name}`, json)])),
    coordinators: coord,
    brokerConfigs: new Map(Object.entries(brokerConfigs).map(([key, json]) => [key, decodeJson<Record<string, string>>(`${KEYS.brokerConfigs}/${key}`, json)])),
    acls: acls ? decodeJson<AclBinding[]>(KEYS.acls, acls) : [],
    controller: controller ? decodeJson<ControllerRecord>(KEYS.controller, controller) : null,
    scramCredentials: new Map(Object.entries(scram).map(([user, json]) => [user, decodeUserScram(decodeJson<PersistedUserScram>(`${KEYS.scramCredentials}/${user}`, json))])),
    clientQuotas: new Map(Object.entries(quotas).map(([key, json]) => [key, decodeJson<Record<string, number>>(`${KEYS.clientQuotas}/${key}`, json)])),
    lease,
  };
}
