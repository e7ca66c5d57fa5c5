/**
 * KafkaClient: a bootstrap connection, a metadata cache (brokers and partition leaders), one
 * connection per broker, and the admin requests the CLI, benchmarks and tests need.
 */
import { ApiKey, ErrorCode, type DecodedResponses } from '@runnel/protocol';
import { Connection } from './connection.ts';
import { ClientError, checkKafka } from './errors.ts';

export interface KafkaClientOptions {
  /** `host:port`, a comma list, or an array of them; the first reachable one is used. */
  bootstrapServers: string | string[];
  clientId?: string;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export type MetadataResponse = DecodedResponses[typeof ApiKey.Metadata];

export interface NewTopic {
  name: string;
  /** Default -1 (the broker's num.partitions). */
  partitions?: number;
  /** Default -1 (the broker's default.replication.factor). */
  replicationFactor?: number;
  configs?: Record<string, string>;
}

export interface TopicResult { name: string; errorCode: number; errorMessage: string | null }

/** `earliest` = -2, `latest` = -1 in ListOffsets; a bigint is a timestamp in ms. */
export type OffsetSpec = 'earliest' | 'latest' | bigint;

export function parseBootstrap(servers: string | string[]): Array<{ host: string; port: number }> {
  const list = (Array.isArray(servers) ? servers : servers.split(',')).map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new ClientError('INVALID_ARGUMENT', 'no bootstrap servers given');
  return list.map((s) => {
    const noScheme = s.replace(/^[A-Za-z_]+:\/\//, '');
    const i = noScheme.lastIndexOf(':');
    const port = Number(noScheme.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new ClientError('INVALID_ARGUMENT', `bad bootstrap server "${s}" (want host:port)`);
    return { host: noScheme.slice(0, i).replace(/^\[|\]$/g, ''), port };
  });
}

export class KafkaClient {
  readonly clientId: string;
  private readonly options: KafkaClientOptions;
  private bootstrapConn: Connection;
  private readonly brokers = new Map<number, { host: string; port: number }>();
  private readonly connections = new Map<number, Promise<Connection>>();
  /** `topic\0partition` → leader node id. */
  private readonly leaders = new Map<string, number>();
  private closed = false;

  private constructor(options: KafkaClientOptions, bootstrap: Connection) {
    this.options = options;
    this.clientId = options.clientId ?? 'runnel-client';
    this.bootstrapConn = bootstrap;
  }

  static async connect(options: KafkaClientOptions): Promise<KafkaClient> {
    let lastError: unknown;
    for (const { host, port } of parseBootstrap(options.bootstrapServers)) {
      try {
        const conn = await Connection.connect({ host, port, clientId: options.clientId, requestTimeoutMs: options.requestTimeoutMs, connectTimeoutMs: options.connectTimeoutMs });
        return new KafkaClient(options, conn);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  /** The bootstrap connection (reconnected if it closed). */
  async any(): Promise<Connection> {
    if (this.closed) throw new ClientError('CONNECTION_CLOSED', 'client is closed');
    if (this.bootstrapConn.closed) {
      this.bootstrapConn = await Connection.connect({
        host: this.bootstrapConn.host, port: this.bootstrapConn.port, clientId: this.clientId,
        requestTimeoutMs: this.options.requestTimeoutMs, connectTimeoutMs: this.options.connectTimeoutMs,
      });
    }
    return this.bootstrapConn;
  }

  /**
   * Metadata for `topics` (all topics when omitted or null) and refreshes the broker and leader
   * caches. `allowAutoTopicCreation` defaults to false: our tools create topics explicitly.
   */
  async metadata(topics?: string[] | null, options: { allowAutoTopicCreation?: boolean } = {}): Promise<MetadataResponse> {
    const conn = await this.any();
    const v = conn.version(ApiKey.Metadata);
    const body = await conn.request(ApiKey.Metadata, v, {
      topics: topics ? topics.map((name) => ({ name })) : (v === 0 ? [] : null),
      allowAutoTopicCreation: options.allowAutoTopicCreation ?? false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
    for (const b of body.brokers) this.brokers.set(b.nodeId, { host: b.host, port: b.port });
    for (const t of body.topics) {
      for (const p of t.partitions) if (p.errorCode === ErrorCode.NONE && p.leaderId >= 0) this.leaders.set(`${t.name}\0${p.partitionIndex}`, p.leaderId);
    }
    return body;
  }

  /** Creates topics; throws on the first error except TOPIC_ALREADY_EXISTS when `ignoreExisting`. */
  async createTopics(topics: NewTopic[], options: { timeoutMs?: number; validateOnly?: boolean; ignoreExisting?: boolean } = {}): Promise<TopicResult[]> {
    const conn = await this.any();
    const body = await conn.request(ApiKey.CreateTopics, conn.version(ApiKey.CreateTopics), {
      topics: topics.map((t) => ({
        name: t.name,
        numPartitions: t.partitions ?? -1,
        replicationFactor: t.replicationFactor ?? -1,
        assignments: [],
        configs: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
      })),
      timeoutMs: options.timeoutMs ?? 30_000,
      validateOnly: options.validateOnly ?? false,
    });
    const results = body.topics.map((t) => ({ name: t.name, errorCode: t.errorCode, errorMessage: t.errorMessage }));
    for (const r of results) {
      if (r.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS && options.ignoreExisting) continue;
      checkKafka(r.errorCode, `CreateTopics ${r.name}`, r.errorMessage);
    }
    return results;
  }

  /** Deletes topics by name; throws on the first error except UNKNOWN_TOPIC_OR_PARTITION when `ignoreMissing`. */
  async deleteTopics(names: string[], options: { timeoutMs?: number; ignoreMissing?: boolean } = {}): Promise<TopicResult[]> {
    const conn = await this.any();
    const v = conn.version(ApiKey.DeleteTopics);
    const body = await conn.request(ApiKey.DeleteTopics, v, {
      topicNames: names,
      topics: names.map((name) => ({ name, topicId: '00000000-0000-0000-0000-000000000000' })),
      timeoutMs: options.timeoutMs ?? 30_000,
    });
    const results = body.responses.map((t) => ({ name: t.name ?? '', errorCode: t.errorCode, errorMessage: t.errorMessage }));
    for (const r of results) {
      if (r.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION && options.ignoreMissing) continue;
      checkKafka(r.errorCode, `DeleteTopics ${r.name}`, r.errorMessage);
    }
    for (const key of [...this.leaders.keys()]) if (names.includes(key.slice(0, key.indexOf('\0')))) this.leaders.delete(key);
    return results;
  }

  /** The offset for `spec` on one partition (asked of its leader). */
  async listOffsets(topic: string, partition: number, spec: OffsetSpec = 'latest', isolationLevel: 0 | 1 = 0): Promise<bigint> {
    const conn = await this.leader(topic, partition);
    const timestamp = spec === 'earliest' ? -2n : spec === 'latest' ? -1n : spec;
    const body = await conn.request(ApiKey.ListOffsets, conn.version(ApiKey.ListOffsets), {
      replicaId: -1,
      isolationLevel,
      topics: [{ name: topic, partitions: [{ partitionIndex: partition, timestamp, currentLeaderEpoch: -1 }] }],
    });
    const p = body.topics[0]?.partitions[0];
    if (!p) throw new ClientError('PROTOCOL', `ListOffsets for ${topic}-${partition} returned no partition`);
    checkKafka(p.errorCode, `ListOffsets ${topic}-${partition}`);
    return p.offset;
  }

  /** A new producer id and epoch (idempotent, non-transactional). */
  async initProducerId(): Promise<{ producerId: bigint; producerEpoch: number }> {
    const conn = await this.any();
    const body = await conn.request(ApiKey.InitProducerId, conn.version(ApiKey.InitProducerId), { transactionalId: null, transactionTimeoutMs: 60_000 });
    checkKafka(body.errorCode, 'InitProducerId');
    return { producerId: body.producerId, producerEpoch: body.producerEpoch };
  }

  /** Cached leader node of a partition, or undefined before the first metadata that names it. */
  cachedLeader(topic: string, partition: number): number | undefined {
    return this.leaders.get(`${topic}\0${partition}`);
  }

  /** The connection to a partition's leader (fetching metadata when the leader is not cached). */
  async leader(topic: string, partition: number): Promise<Connection> {
    let node = this.cachedLeader(topic, partition);
    if (node === undefined) {
      const md = await this.metadata([topic]);
      const t = md.topics.find((x) => x.name === topic);
      if (!t) throw new ClientError('KAFKA_ERROR', `no metadata for topic ${topic}`);
      checkKafka(t.errorCode, `Metadata ${topic}`);
      const p = t.partitions.find((x) => x.partitionIndex === partition);
      if (!p) throw ClientError.kafka(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Metadata ${topic}-${partition}`);
      checkKafka(p.errorCode, `Metadata ${topic}-${partition}`);
      node = p.leaderId;
    }
    return this.broker(node);
  }

  /** Forgets the cached leader (after NOT_LEADER_OR_FOLLOWER and friends). */
  invalidateLeader(topic: string, partition: number): void {
    this.leaders.delete(`${topic}\0${partition}`);
  }

  /** The (shared) connection to broker `nodeId`; the bootstrap connection when it is the same address. */
  async broker(nodeId: number): Promise<Connection> {
    const cached = this.connections.get(nodeId);
    if (cached) {
      const c = await cached;
      if (!c.closed) return c;
      this.connections.delete(nodeId);
    }
    const addr = this.brokers.get(nodeId);
    if (!addr) throw new ClientError('INVALID_ARGUMENT', `unknown broker ${nodeId}`);
    const p = (async () => {
      if (this.closed) throw new ClientError('CONNECTION_CLOSED', 'client is closed');
      const boot = this.bootstrapConn;
      if (!boot.closed && boot.host === addr.host && boot.port === addr.port) return boot;
      return Connection.connect({ host: addr.host, port: addr.port, clientId: this.clientId, requestTimeoutMs: this.options.requestTimeoutMs, connectTimeoutMs: this.options.connectTimeoutMs });
    })();
    this.connections.set(nodeId, p);
    p.catch(() => this.connections.delete(nodeId));
    return p;
  }

  /** Closes every connection; in-flight requests fail with CONNECTION_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    const conns = await Promise.allSettled([...this.connections.values()]);
    for (const c of conns) if (c.status === 'fulfilled') c.value.close();
    this.bootstrapConn.close();
    this.connections.clear();
  }
}
