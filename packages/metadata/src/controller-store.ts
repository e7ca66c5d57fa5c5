import type { Redis } from 'ioredis';
import { silentLogger, type Logger } from '@runnel/common';
import { MetadataError } from './errors.ts';
import { clientQuotaKey, withClientQuotaChanges, type ClientQuotaAlteration } from './client-quotas.ts';
import { withScramChanges, type PersistedUserScram, type ScramCredentialDeletion, type ScramCredentialUpsert } from './scram.ts';
import { connectRedis, mapRedisError, waitReady } from './redis-connection.ts';
import { CHANGES_CHANNEL, KEYS, canonicalJson, encodeCoordinators, readCluster, type StoredNode } from './redis-layout.ts';
import type { CoordinatorAssignment, RpcAddress, TopicMetadata } from './types.ts';
import type { AclBinding } from './acls.ts';

export type { StoredNode } from './redis-layout.ts';

export interface ControllerStoreOptions {
  /** `runnel.redis.url`: redis://host:port[/db] or redis+unix:///path.sock */
  url: string;
  controllerId: number;
  /** `runnel.controller.lease.ms`: the lease TTL; renewed every leaseMs/3. */
  leaseMs: number;
  logger?: Logger;
  /** How long start() waits for Redis before STORE_UNAVAILABLE (default 5000). */
  startTimeoutMs?: number;
}

/** The cluster as the controller loads it (key layout: redis-layout.ts). */
export interface ClusterState {
  clusterId: string | null;
  version: number;
  controllerEpoch: number;
  nodes: Map<number, StoredNode>;
  topics: Map<string, TopicMetadata>;
  coordinators: Map<number, CoordinatorAssignment>;
  /** Dynamic broker configs: '' = cluster default, else a node id (decimal). Absent = none. */
  brokerConfigs?: Map<string, Record<string, string>>;
  /** The ACLs (acls.ts), in creation order. Absent = none. */
  acls?: AclBinding[];
}

/**
 * One atomic controller write. Topics are compare-and-set: `previous` must equal what Redis holds
 * (null: the topic must not exist), else the whole change is refused with CONFLICT.
 */
export interface ClusterChange {
  /** Written once; a different stored id refuses the change with CLUSTER_ID_MISMATCH. */
  clusterId?: string;
  /** Upserted whole. */
  nodes?: StoredNode[];
  topics?: { topic: TopicMetadata; previous: TopicMetadata | null }[];
  deleteTopics?: { name: string; previous: TopicMetadata }[];
  /** Replaces the whole map. */
  coordinators?: Map<number, CoordinatorAssignment>;
  /** Dynamic broker configs, each entry replaced whole ('' = cluster default); empty configs delete it. */
  brokerConfigs?: { key: string; configs: Record<string, string> }[];
  /** The whole ACL list after the change (replaces the stored one). */
  acls?: AclBinding[];
}

// Every fenced script starts with the same check (docs/metadata.md, rule 2): KEYS[1] = controller epoch,
// KEYS[2] = lease, ARGV[1] = our epoch, ARGV[2] = our lease value. The lease check means a
// controller whose lease ran out stops writing even before anyone else takes over.
const FENCE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('STALE_EPOCH controller epoch ' .. ARGV[1] .. ' is not the current one (' .. tostring(redis.call('GET', KEYS[1])) .. ')')
end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return redis.error_reply('STALE_EPOCH controller lease ' .. ARGV[2] .. ' is no longer held')
end
`;

/** KEYS: lease, epoch, controller record, version. ARGV: controllerId, ttl ms, rpc JSON, channel. Returns {epoch, 0} or {0, pttl}. */
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('PTTL', KEYS[1])} end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
redis.call('SET', KEYS[3], '{"controllerId":' .. ARGV[1] .. ',"epoch":' .. epoch .. ',"rpc":' .. ARGV[3] .. '}')
local v = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', ARGV[4], v)
return {epoch, 0}
`;

/** KEYS: lease. ARGV: value, ttl ms. Compare-and-renew. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** KEYS: lease. ARGV: value. Compare-and-delete. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS: epoch, lease, scram-credentials, version. ARGV: epoch, lease value, JSON [[user, json | '']]
 * ('' deletes the user), channel. SCRAM credentials are a hash of their own, written apart from
 * COMMIT (they depend on no other metadata), fenced and published the same way.
 */
/**
 * KEYS: epoch, lease, client-quotas, version. ARGV: epoch, lease value, JSON [[entity key, json | '']]
 * ('' deletes the entity), channel. Client quotas are a hash of their own, as the SCRAM credentials.
 */
const CLIENT_QUOTAS_COMMIT = FENCE + `
for _, e in ipairs(cjson.decode(ARGV[3])) do
  if e[2] == '' then redis.call('HDEL', KEYS[3], e[1]) else redis.call('HSET', KEYS[3], e[1], e[2]) end
end
local v = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', ARGV[4], v)
return v
`;

const SCRAM_COMMIT = FENCE + `
for _, u in ipairs(cjson.decode(ARGV[3])) do
  if u[2] == '' then redis.call('HDEL', KEYS[3], u[1]) else redis.call('HSET', KEYS[3], u[1], u[2]) end
end
local v = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', ARGV[4], v)
return v
`;

/** KEYS: epoch, lease, counter. ARGV: epoch, lease value, increment. */
const FENCED_INCRBY = FENCE + `
return redis.call('INCRBY', KEYS[3], ARGV[3])
`;

/**
 * KEYS: epoch, lease, cluster-id, nodes, topics, coordinators, version, broker-configs, acls.
 * ARGV: epoch, lease value, change JSON, channel. The change JSON holds the stored strings:
 *   { clusterId?, nodes: [[id, json]], topics: [[name, json, previousJson | '']], deletes: [[name, previousJson]], coordinators?: json,
 *     brokerConfigs?: [[key, json | '']] ('' deletes the key), acls?: json }
 * All checks come before any write, so a refused change writes nothing.
 */
const COMMIT = FENCE + `
local c = cjson.decode(ARGV[3])
if c.clusterId then
  local cur = redis.call('GET', KEYS[3])
  if cur and cur ~= c.clusterId then
    return redis.error_reply('CLUSTER_ID_MISMATCH Redis holds cluster ' .. cur .. ', not ' .. c.clusterId)
  end
end
for _, t in ipairs(c.topics) do
  local cur = redis.call('HGET', KEYS[5], t[1])
  if (t[3] == '' and cur) or (t[3] ~= '' and cur ~= t[3]) then
    return redis.error_reply('CONFLICT topic ' .. t[1] .. ' is not in the state this change was computed from')
  end
end
for _, d in ipairs(c.deletes) do
  if redis.call('HGET', KEYS[5], d[1]) ~= d[2] then
    return redis.error_reply('CONFLICT topic ' .. d[1] .. ' is not in the state this deletion was computed from')
  end
end
if c.clusterId then redis.call('SET', KEYS[3], c.clusterId) end
for _, n in ipairs(c.nodes) do redis.call('HSET', KEYS[4], n[1], n[2]) end
for _, t in ipairs(c.topics) do redis.call('HSET', KEYS[5], t[1], t[2]) end
for _, d in ipairs(c.deletes) do redis.call('HDEL', KEYS[5], d[1]) end
if c.coordinators then redis.call('SET', KEYS[6], c.coordinators) end
if c.brokerConfigs then
  for _, b in ipairs(c.brokerConfigs) do
    if b[2] == '' then redis.call('HDEL', KEYS[8], b[1]) else redis.call('HSET', KEYS[8], b[1], b[2]) end
  end
end
if c.acls then redis.call('SET', KEYS[9], c.acls) end
local v = redis.call('INCR', KEYS[7])
redis.call('PUBLISH', ARGV[4], v)
return v
`;

/**
 * The controller's fenced writer: the only code that writes cluster metadata to Redis (key layout
 * in redis-layout.ts). It holds the controller lease (docs/metadata.md, rule 3) on a connection of its own
 * that never queues or retries and times out below a third of the lease, so a slow or lost Redis
 * shows up as a lost lease, not as a controller that believes it still leads. Every write is one
 * Lua script that checks the controller epoch and the lease first (docs/metadata.md, rules 1–2).
 *
 * A write that fails with STORE_UNAVAILABLE may or may not have been applied (the reply was lost):
 * load() again and recompute; the compare-and-set makes a duplicate visible as CONFLICT.
 */
export class ControllerStore {
  readonly #url: string;
  readonly #controllerId: number;
  readonly #leaseMs: number;
  readonly #logger: Logger;
  readonly #startTimeoutMs: number;
  #redis: Redis | undefined;
  #lease: Redis | undefined;
  #held: { epoch: number; value: string } | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #lostListeners = new Set<() => void>();
  #stopped = false;
  /** The highest controller epoch this process has held or loaded. */
  #highestEpoch = 0;

  private constructor(o: ControllerStoreOptions) {
    this.#url = o.url;
    this.#controllerId = o.controllerId;
    this.#leaseMs = o.leaseMs;
    this.#logger = o.logger ?? silentLogger();
    this.#startTimeoutMs = o.startTimeoutMs ?? 5_000;
  }

  static create(o: ControllerStoreOptions): ControllerStore {
    if (!Number.isInteger(o.controllerId) || o.controllerId < 0) throw new MetadataError('STORE_UNAVAILABLE', `invalid controller id ${o.controllerId}`);
    if (!(o.leaseMs >= 30)) throw new MetadataError('STORE_UNAVAILABLE', `controller lease must be at least 30 ms, got ${o.leaseMs}`);
    return new ControllerStore(o);
  }

  /** Connects both connections; STORE_UNAVAILABLE if Redis does not answer within a few seconds. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#redis = connectRedis(this.#url, this.#logger, 'controller', { commandTimeout: Math.max(5_000, this.#leaseMs) });
    this.#lease = connectRedis(this.#url, this.#logger, 'controller-lease', {
      commandTimeout: Math.max(10, Math.floor(this.#leaseMs / 4)),
      connectTimeout: Math.max(10, Math.floor(this.#leaseMs / 4)),
    });
    // docs/metadata.md rule 3: any error on the lease connection means the lease is lost, at once: a closed connection
    // cannot renew, and waiting for the next renewal would let this controller write on borrowed time.
    this.#lease.on('close', () => {
      if (this.#held) this.#lose(this.#held, 'the lease connection closed');
    });
    try {
      await Promise.all([waitReady(this.#redis, this.#url, this.#startTimeoutMs), waitReady(this.#lease, this.#url, this.#startTimeoutMs)]);
    } catch (err) {
      this.#redis.disconnect();
      this.#lease.disconnect();
      throw err;
    }
  }

  /**
   * Waits until this controller holds the lease, then returns its controller epoch (a new INCR,
   * higher than every epoch before it) and keeps renewing every leaseMs/3. Taking the lease also
   * records `rpc` for nodes (snapshot().controllerRpc) and bumps the metadata version so they see it.
   * Rejects with the signal's reason when aborted.
   */
  async campaign(rpc: RpcAddress, signal?: AbortSignal): Promise<number> {
    const lease = this.#require().lease;
    if (this.#held) return this.#held.epoch;
    for (;;) {
      signal?.throwIfAborted();
      if (this.#stopped) throw new MetadataError('STORE_UNAVAILABLE', 'controller store stopped');
      if (this.#held) return this.#held.epoch; // a concurrent campaign() won
      let waitMs = Math.floor(this.#leaseMs / 3);
      try {
        const [epoch, pttl] = (await lease.eval(
          ACQUIRE, 4, KEYS.lease, KEYS.controllerEpoch, KEYS.controller, KEYS.version,
          String(this.#controllerId), String(this.#leaseMs), canonicalJson({ host: rpc.host, port: rpc.port }), CHANGES_CHANNEL,
        )) as [number, number];
        if (epoch > 0) {
          const value = `${this.#controllerId}:${epoch}`;
          if (epoch <= this.#highestEpoch) {
            // Redis lost data (a wipe, a restart without its append-only file): epochs must never go back (docs/metadata.md, rule 1).
            await lease.eval(RELEASE, 1, KEYS.lease, value).catch(() => {});
            throw new MetadataError('CORRUPT_STATE', `controller epoch went backwards (${epoch} after ${this.#highestEpoch}): Redis lost its data`);
          }
          this.#highestEpoch = epoch;
          this.#held = { epoch, value };
          this.#logger.info({ controllerId: this.#controllerId, epoch }, 'took the controller lease');
          this.#scheduleRenew(this.#held);
          return epoch;
        }
        // Someone holds it: look again when it would expire (or sooner, it may be released).
        if (pttl > 0) waitMs = Math.min(waitMs, pttl + 1);
      } catch (err) {
        if (err instanceof MetadataError) throw err;
        this.#logger.warn({ err: (err as Error).message }, 'controller lease attempt failed; retrying');
      }
      await sleep(Math.max(10, waitMs), signal);
    }
  }

  /** `listener` runs when a held lease is lost (a renewal failed or found another holder, or the lease connection closed); once per loss. */
  onLost(listener: () => void): void {
    this.#lostListeners.add(listener);
  }

  /** The epoch this store holds the lease with, or null. */
  heldEpoch(): number | null {
    return this.#held?.epoch ?? null;
  }

  /** The whole cluster state, read atomically. */
  async load(): Promise<ClusterState> {
    try {
      const raw = await readCluster(this.#require().redis);
      this.#highestEpoch = Math.max(this.#highestEpoch, raw.controllerEpoch);
      return {
        clusterId: raw.clusterId, version: raw.version, controllerEpoch: raw.controllerEpoch, nodes: raw.nodes, topics: raw.topics, coordinators: raw.coordinators,
        brokerConfigs: raw.brokerConfigs, acls: raw.acls,
      };
    } catch (err) {
      throw mapRedisError(err);
    }
  }

  /** Applies `change` atomically (see COMMIT); returns the new metadata version. */
  async commit(change: ClusterChange): Promise<number> {
    const { redis } = this.#require();
    const held = this.#fence();
    const encoded = {
      ...(change.clusterId !== undefined ? { clusterId: change.clusterId } : {}),
      nodes: (change.nodes ?? []).map((n) => [String(n.nodeId), canonicalJson(n)]),
      topics: (change.topics ?? []).map((t) => [t.topic.name, canonicalJson(t.topic), t.previous ? canonicalJson(t.previous) : '']),
      deletes: (change.deleteTopics ?? []).map((d) => [d.name, canonicalJson(d.previous)]),
      ...(change.coordinators ? { coordinators: encodeCoordinators(change.coordinators) } : {}),
      ...(change.brokerConfigs?.length
        ? { brokerConfigs: change.brokerConfigs.map((b) => [b.key, Object.keys(b.configs).length > 0 ? canonicalJson(b.configs) : '']) }
        : {}),
      ...(change.acls ? { acls: canonicalJson(change.acls) } : {}),
    };
    for (const t of change.topics ?? []) {
      if (t.previous && t.previous.name !== t.topic.name) throw new MetadataError('CONFLICT', `topic change renames ${t.previous.name} to ${t.topic.name}`);
    }
    try {
      return Number(await redis.eval(
        COMMIT, 9, KEYS.controllerEpoch, KEYS.lease, KEYS.clusterId, KEYS.nodes, KEYS.topics, KEYS.coordinators, KEYS.version, KEYS.brokerConfigs, KEYS.acls,
        String(held.epoch), held.value, jsonForLua(encoded), CHANGES_CHANNEL,
      ));
    } catch (err) {
      throw mapRedisError(err);
    }
  }

  /**
   * Applies SCRAM credential changes (deletions first, then upserts) to the users' stored JSON,
   * fenced like every write (SCRAM_COMMIT); returns the new metadata version.
   */
  async alterClientQuotas(entries: readonly ClientQuotaAlteration[]): Promise<number> {
    const { redis } = this.#require();
    const held = this.#fence();
    try {
      const keys = [...new Set(entries.map((e) => clientQuotaKey(e.entity)))];
      const current: Record<string, Record<string, number>> = {};
      for (const k of keys) {
        const json = await redis.hget(KEYS.clientQuotas, k);
        if (json) current[k] = JSON.parse(json) as Record<string, number>;
      }
      const next = withClientQuotaChanges(current, entries);
      const writes = keys.map((k) => [k, next[k] ? canonicalJson(next[k]) : '']);
      return Number(await redis.eval(
        CLIENT_QUOTAS_COMMIT, 4, KEYS.controllerEpoch, KEYS.lease, KEYS.clientQuotas, KEYS.version,
        String(held.epoch), held.value, JSON.stringify(writes), CHANGES_CHANNEL,
      ));
    } catch (err) {
      throw mapRedisError(err);
    }
  }

  async alterScramCredentials(upserts: readonly ScramCredentialUpsert[], deletions: readonly ScramCredentialDeletion[]): Promise<number> {
    const { redis } = this.#require();
    const held = this.#fence();
    try {
      const users = [...new Set([...upserts, ...deletions].map((x) => x.user))];
      const current: Record<string, PersistedUserScram> = Object.create(null) as Record<string, PersistedUserScram>; // user names as keys: see withScramChanges
      for (const u of users) {
        const json = await redis.hget(KEYS.scramCredentials, u);
        if (json) current[u] = JSON.parse(json) as PersistedUserScram;
      }
      const next = withScramChanges(current, upserts, deletions);
      const writes = users.map((u) => [u, next[u] ? canonicalJson(next[u]) : '']);
      return Number(await redis.eval(
        SCRAM_COMMIT, 4, KEYS.controllerEpoch, KEYS.lease, KEYS.scramCredentials, KEYS.version,
        String(held.epoch), held.value, JSON.stringify(writes), CHANGES_CHANNEL,
      ));
    } catch (err) {
      throw mapRedisError(err);
    }
  }

  /** A new broker epoch (fenced INCR of runnel:broker-epoch). */
  async nextBrokerEpoch(): Promise<number> {
    return Number(await this.#fencedIncrBy(KEYS.brokerEpoch, 1));
  }

  /** Allocates `count` producer ids (fenced INCRBY); returns the first of the block. */
  async allocateProducerIds(count: number): Promise<bigint> {
    if (!Number.isInteger(count) || count < 1) throw new MetadataError('STORE_UNAVAILABLE', `producer id block size must be a positive integer, got ${count}`);
    const end = await this.#fencedIncrBy(KEYS.producerId, count);
    return BigInt(end) - BigInt(count);
  }

  /** Stops renewing, releases the lease if held (compare-and-delete), closes the connections. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#renewTimer);
    const held = this.#held;
    this.#held = undefined;
    if (held && this.#lease?.status === 'ready') {
      await this.#lease.eval(RELEASE, 1, KEYS.lease, held.value).catch((err: Error) => {
        this.#logger.warn({ err: err.message }, 'could not release the controller lease; it expires on its own');
      });
    }
    for (const r of [this.#redis, this.#lease]) {
      if (!r) continue;
      if (r.status === 'ready') await r.quit().catch(() => r.disconnect());
      else r.disconnect();
    }
    this.#redis = undefined;
    this.#lease = undefined;
  }

  async #fencedIncrBy(key: string, by: number): Promise<string> {
    const { redis } = this.#require();
    const held = this.#fence();
    try {
      return String(await redis.eval(FENCED_INCRBY, 3, KEYS.controllerEpoch, KEYS.lease, key, String(held.epoch), held.value, String(by)));
    } catch (err) {
      throw mapRedisError(err);
    }
  }

  #fence(): { epoch: number; value: string } {
    if (!this.#held) throw new MetadataError('STALE_EPOCH', `controller ${this.#controllerId} does not hold the lease`);
    return this.#held;
  }

  #require(): { redis: Redis; lease: Redis } {
    if (!this.#redis || !this.#lease) throw new MetadataError('STORE_UNAVAILABLE', 'controller store used before start()');
    return { redis: this.#redis, lease: this.#lease };
  }

  #scheduleRenew(held: { epoch: number; value: string }): void {
    this.#renewTimer = setTimeout(async () => {
      let renewed = false;
      let reason = 'another controller holds the lease';
      try {
        renewed = Number(await this.#lease!.eval(RENEW, 1, KEYS.lease, held.value, String(this.#leaseMs))) === 1;
      } catch (err) {
        reason = (err as Error).message;
      }
      if (this.#held !== held) return; // stopped or lost meanwhile
      if (renewed) return this.#scheduleRenew(held);
      this.#lose(held, reason);
    }, Math.max(10, Math.floor(this.#leaseMs / 3)));
  }

  #lose(held: { epoch: number; value: string }, reason: string): void {
    if (this.#held !== held) return;
    this.#held = undefined;
    clearTimeout(this.#renewTimer);
    this.#logger.warn({ controllerId: this.#controllerId, epoch: held.epoch, reason }, 'lost the controller lease');
    for (const listener of this.#lostListeners) {
      try {
        listener();
      } catch (err) {
        this.#logger.error({ err }, 'controller lease listener threw');
      }
    }
  }
}

/** JSON for Lua's cjson: plain JSON.stringify (strings inside are the canonical stored forms). */
function jsonForLua(value: unknown): string {
  return JSON.stringify(value);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
