/**
 * Consumer-group administration over the Kafka protocol, as Kafka's Admin client does it for
 * kafka-consumer-groups.sh: FindCoordinator, ListGroups (every broker), DescribeGroups, OffsetFetch,
 * OffsetCommit (generation -1, for inactive groups), DeleteGroups, OffsetDelete; plus the
 * assignment decoder and a one-batch Fetch for record timestamps (time lag).
 *
 * ConsumerProtocolAssignment (the `memberAssignment` bytes of a classic consumer group, versions
 * 0–3, not flexible): int16 version, [topic string, [int32 partition]], nullable bytes userData.
 * Empty bytes mean "no assignment yet" (a member in the middle of a rebalance).
 */
import { Buffer } from 'node:buffer';
import { ApiKey, ErrorCode, decodeRecordBatches } from '@runnel/protocol';
import { Connection } from './connection.ts';
import { MAX_BY_NAME_FETCH_VERSION } from './consumer.ts';
import type { KafkaClient } from './client.ts';
import { ClientError, checkKafka } from './errors.ts';

export interface TopicPartitions { topic: string; partitions: number[] }

export interface ConsumerAssignment {
  version: number;
  topics: TopicPartitions[];
  userData: Buffer | null;
}

export interface GroupCoordinator { nodeId: number; host: string; port: number }

export interface GroupListing {
  groupId: string;
  /** `consumer` for consumer groups; empty for groups that only hold committed offsets. */
  protocolType: string;
  /** Empty when the broker answered ListGroups below v4. */
  state: string;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** Decoded from `memberAssignment` when the group's protocol type is `consumer`; empty otherwise. */
  assignment: TopicPartitions[];
}

export interface GroupDescription {
  groupId: string;
  errorCode: number;
  /** Stable | Empty | PreparingRebalance | CompletingRebalance | Dead. */
  state: string;
  protocolType: string;
  /** The assignor of a consumer group (e.g. `range`, `RoundRobinAssigner`). */
  protocol: string;
  members: GroupMemberDescription[];
  coordinator: GroupCoordinator;
}

export interface CommittedOffset {
  topic: string;
  partition: number;
  offset: bigint;
  leaderEpoch: number;
  metadata: string | null;
}

export interface OffsetToCommit { topic: string; partition: number; offset: bigint; metadata?: string | null }

export interface PartitionResult { topic: string; partition: number; errorCode: number }

export interface GroupAdminOptions {
  /** Give up retrying coordinator errors after this long (default 30 000 ms). */
  timeoutMs?: number;
}

/** Errors that mean "ask again, maybe somewhere else". */
const COORDINATOR_RETRY = new Set<number>([ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR]);

/** Decodes ConsumerProtocolAssignment bytes (see the file comment). Throws PROTOCOL on garbage. */
export function decodeConsumerAssignment(bytes: Buffer | Uint8Array | null): ConsumerAssignment {
  const buf = bytes === null ? Buffer.alloc(0) : Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (buf.length === 0) return { version: -1, topics: [], userData: null };
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > buf.length) throw new ClientError('PROTOCOL', `consumer assignment is truncated at byte ${pos} of ${buf.length}`);
  };
  const int16 = () => { need(2); const v = buf.readInt16BE(pos); pos += 2; return v; };
  const int32 = () => { need(4); const v = buf.readInt32BE(pos); pos += 4; return v; };
  const version = int16();
  const topics: TopicPartitions[] = [];
  const topicCount = int32();
  for (let i = 0; i < topicCount; i++) {
    const len = int16();
    need(len);
    const topic = buf.toString('utf8', pos, pos + len);
    pos += len;
    const n = int32();
    const partitions: number[] = [];
    for (let j = 0; j < n; j++) partitions.push(int32());
    topics.push({ topic, partitions });
  }
  let userData: Buffer | null = null;
  // Some clients stop after the partitions; userData is then absent (null).
  if (pos + 4 <= buf.length) {
    const len = int32();
    if (len >= 0) {
      need(len);
      userData = buf.subarray(pos, pos + len);
      pos += len;
    }
  }
  return { version, topics, userData };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Group administration on top of a KafkaClient (which it does not own). */
export class GroupAdmin {
  private readonly client: KafkaClient;
  private readonly timeoutMs: number;
  /** Connections this admin opened itself (coordinators that are not the bootstrap address). */
  private readonly owned = new Map<string, Promise<Connection>>();
  private readonly coordinators = new Map<string, GroupCoordinator>();

  constructor(client: KafkaClient, options: GroupAdminOptions = {}) {
    this.client = client;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** FindCoordinator for a group (retrying while the coordinator loads). */
  async findCoordinator(groupId: string): Promise<GroupCoordinator> {
    const cached = this.coordinators.get(groupId);
    if (cached) return cached;
    const found = await this.retrying(`FindCoordinator ${groupId}`, async () => {
      const conn = await this.client.any();
      const v = conn.version(ApiKey.FindCoordinator);
      const body = await conn.request(ApiKey.FindCoordinator, v, { key: groupId, keyType: 0, coordinatorKeys: [groupId] });
      if (v >= 4) {
        const c = body.coordinators[0];
        if (!c) throw new ClientError('PROTOCOL', `FindCoordinator ${groupId} returned no coordinator`);
        return { errorCode: c.errorCode, value: { nodeId: c.nodeId, host: c.host, port: c.port } };
      }
      return { errorCode: body.errorCode, value: { nodeId: body.nodeId, host: body.host, port: body.port } };
    });
    this.coordinators.set(groupId, found);
    return found;
  }

  /** ListGroups on every broker in the metadata; `states` filters server-side (v4). Sorted by id. */
  async listGroups(options: { states?: string[] } = {}): Promise<GroupListing[]> {
    const md = await this.client.metadata([]);
    const seen = new Map<string, GroupListing>();
    await Promise.all(md.brokers.map(async (b) => {
      const conn = await this.client.broker(b.nodeId);
      const v = conn.version(ApiKey.ListGroups);
      const states = options.states ?? [];
      if (states.length > 0 && v < 4) throw new ClientError('UNSUPPORTED_API', `broker ${conn.address} cannot filter groups by state (ListGroups v${v})`);
      const body = await conn.request(ApiKey.ListGroups, v, { statesFilter: states });
      checkKafka(body.errorCode, `ListGroups on ${conn.address}`);
      for (const g of body.groups) seen.set(g.groupId, { groupId: g.groupId, protocolType: g.protocolType, state: g.groupState });
    }));
    return [...seen.values()].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  /** DescribeGroups, one request per group at its coordinator; assignments decoded for consumer groups. */
  async describeGroups(groupIds: string[]): Promise<GroupDescription[]> {
    return Promise.all(groupIds.map((groupId) => this.retrying(`DescribeGroups ${groupId}`, async () => {
      const { conn, coordinator } = await this.coordinatorConnection(groupId);
      const body = await conn.request(ApiKey.DescribeGroups, conn.version(ApiKey.DescribeGroups), { groups: [groupId], includeAuthorizedOperations: false });
      const g = body.groups.find((x) => x.groupId === groupId) ?? body.groups[0];
      if (!g) throw new ClientError('PROTOCOL', `DescribeGroups ${groupId} returned no group`);
      const value: GroupDescription = {
        groupId,
        errorCode: g.errorCode,
        state: g.errorCode === ErrorCode.GROUP_ID_NOT_FOUND ? 'Dead' : g.groupState,
        protocolType: g.protocolType,
        protocol: g.protocolData,
        coordinator,
        members: g.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          assignment: g.protocolType === 'consumer' ? decodeConsumerAssignment(m.memberAssignment).topics : [],
        })),
      };
      // GROUP_ID_NOT_FOUND is an answer ("Dead"), not a failure.
      return { errorCode: g.errorCode === ErrorCode.GROUP_ID_NOT_FOUND ? 0 : g.errorCode, value };
    })));
  }

  /** Committed offsets of a group (all partitions when `topics` is omitted), sorted by topic and partition. */
  async fetchOffsets(groupId: string, topics: TopicPartitions[] | null = null): Promise<CommittedOffset[]> {
    return this.retrying(`OffsetFetch ${groupId}`, async () => {
      const { conn } = await this.coordinatorConnection(groupId);
      const v = conn.version(ApiKey.OffsetFetch);
      const wire = topics ? topics.map((t) => ({ name: t.topic, partitionIndexes: t.partitions })) : null;
      if (v < 2 && wire === null) throw new ClientError('UNSUPPORTED_API', `broker ${conn.address} cannot fetch all offsets of a group (OffsetFetch v${v})`);
      const body = await conn.request(ApiKey.OffsetFetch, v, {
        groupId, topics: wire as never, groups: [{ groupId, topics: wire as never }], requireStable: false,
      });
      let errorCode = body.errorCode;
      let list = body.topics;
      if (v >= 8) {
        const g = body.groups[0];
        if (!g) throw new ClientError('PROTOCOL', `OffsetFetch ${groupId} returned no group`);
        errorCode = g.errorCode;
        list = g.topics;
      }
      const out: CommittedOffset[] = [];
      for (const t of list) {
        for (const p of t.partitions) {
          checkKafka(p.errorCode, `OffsetFetch ${groupId} ${t.name}-${p.partitionIndex}`);
          // -1 = nothing committed for a partition we asked about.
          if (p.committedOffset < 0n) continue;
          out.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.metadata });
        }
      }
      out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
      return { errorCode, value: out };
    });
  }

  /**
   * Commits offsets as an admin (generation -1, no member id): the coordinator accepts this only
   * while the group is Empty (or does not exist). Throws on the first partition error.
   */
  async commitOffsets(groupId: string, offsets: OffsetToCommit[]): Promise<PartitionResult[]> {
    const byTopic = new Map<string, OffsetToCommit[]>();
    for (const o of offsets) {
      let l = byTopic.get(o.topic);
      if (!l) byTopic.set(o.topic, (l = []));
      l.push(o);
    }
    const results = await this.retrying(`OffsetCommit ${groupId}`, async () => {
      const { conn } = await this.coordinatorConnection(groupId);
      const body = await conn.request(ApiKey.OffsetCommit, conn.version(ApiKey.OffsetCommit), {
        groupId, generationIdOrMemberEpoch: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1n,
        topics: [...byTopic].map(([name, ps]) => ({
          name,
          partitions: ps.map((p) => ({ partitionIndex: p.partition, committedOffset: p.offset, committedLeaderEpoch: -1, commitTimestamp: -1n, committedMetadata: p.metadata ?? '' })),
        })),
      });
      const value = body.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, errorCode: p.errorCode })));
      // A coordinator error is the same for every partition: retry the whole request on it.
      const retry = value.find((r) => COORDINATOR_RETRY.has(r.errorCode));
      return { errorCode: retry?.errorCode ?? 0, value };
    });
    for (const r of results) checkKafka(r.errorCode, `OffsetCommit ${groupId} ${r.topic}-${r.partition}`);
    return results;
  }

  /** DeleteGroups, one request per group at its coordinator; per-group error codes (0 = deleted). */
  async deleteGroups(groupIds: string[]): Promise<Array<{ groupId: string; errorCode: number }>> {
    return Promise.all(groupIds.map(async (groupId) => {
      try {
        return await this.retrying(`DeleteGroups ${groupId}`, async () => {
          const { conn } = await this.coordinatorConnection(groupId);
          const body = await conn.request(ApiKey.DeleteGroups, conn.version(ApiKey.DeleteGroups), { groupsNames: [groupId] });
          const r = body.results.find((x) => x.groupId === groupId);
          if (!r) throw new ClientError('PROTOCOL', `DeleteGroups ${groupId} returned no result`);
          return { errorCode: COORDINATOR_RETRY.has(r.errorCode) ? r.errorCode : 0, value: { groupId, errorCode: r.errorCode } };
        });
      } catch (err) {
        if (err instanceof ClientError && err.kafkaCode !== undefined) return { groupId, errorCode: err.kafkaCode };
        throw err;
      }
    }));
  }

  /**
   * OffsetDelete: removes a group's committed offsets for some partitions. The top-level error
   * (e.g. GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP) and per-partition errors (e.g.
   * GROUP_SUBSCRIBED_TO_TOPIC) are returned, not thrown.
   */
  async deleteOffsets(groupId: string, partitions: TopicPartitions[]): Promise<{ errorCode: number; partitions: PartitionResult[] }> {
    try {
      return await this.retrying(`OffsetDelete ${groupId}`, async () => {
        const { conn } = await this.coordinatorConnection(groupId);
        const body = await conn.request(ApiKey.OffsetDelete, conn.version(ApiKey.OffsetDelete), {
          groupId, topics: partitions.map((t) => ({ name: t.topic, partitions: t.partitions.map((partitionIndex) => ({ partitionIndex })) })),
        });
        const results = body.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, errorCode: p.errorCode })));
        return { errorCode: COORDINATOR_RETRY.has(body.errorCode) ? body.errorCode : 0, value: { errorCode: body.errorCode, partitions: results } };
      });
    } catch (err) {
      if (err instanceof ClientError && err.kafkaCode !== undefined) return { errorCode: err.kafkaCode, partitions: [] };
      throw err;
    }
  }

  /** Closes the connections this admin opened (not the client's). */
  async close(): Promise<void> {
    const conns = await Promise.allSettled([...this.owned.values()]);
    for (const c of conns) if (c.status === 'fulfilled') c.value.close();
    this.owned.clear();
  }

  private async coordinatorConnection(groupId: string): Promise<{ conn: Connection; coordinator: GroupCoordinator }> {
    const coordinator = await this.findCoordinator(groupId);
    const boot = await this.client.any();
    if (boot.host === coordinator.host && boot.port === coordinator.port) return { conn: boot, coordinator };
    const key = `${coordinator.host}:${coordinator.port}`;
    let p = this.owned.get(key);
    if (p) {
      const c = await p.catch(() => null);
      if (c && !c.closed) return { conn: c, coordinator };
    }
    p = Connection.connect({ host: coordinator.host, port: coordinator.port, clientId: this.client.clientId, requestTimeoutMs: this.timeoutMs });
    this.owned.set(key, p);
    p.catch(() => this.owned.delete(key));
    return { conn: await p, coordinator };
  }

  /**
   * Runs `attempt` until it reports no coordinator error or the timeout passes. A NOT_COORDINATOR
   * or COORDINATOR_NOT_AVAILABLE forgets the cached coordinator of every group (they move together).
   */
  private async retrying<T>(what: string, attempt: () => Promise<{ errorCode: number; value: T }>): Promise<T> {
    const deadline = Date.now() + this.timeoutMs;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      const { errorCode, value } = await attempt();
      if (errorCode === 0) return value;
      if (!COORDINATOR_RETRY.has(errorCode) || Date.now() + delay > deadline) throw ClientError.kafka(errorCode, what);
      if (errorCode !== ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) this.coordinators.clear();
      await sleep(delay);
    }
  }
}

/**
 * The timestamp (ms) of the record at `offset` of a partition, read with a one-partition Fetch from
 * its leader; null when there is no such record (deleted by retention or compaction, a control
 * record, or past the end, or a broker that does not return oversized first batches). With
 * LogAppendTime batches this is the broker's append time.
 */
export async function fetchRecordTimestamp(client: KafkaClient, topic: string, partition: number, offset: bigint, options: { maxBytes?: number } = {}): Promise<bigint | null> {
  if (offset < 0n) return null;
  const conn = await client.leader(topic, partition);
  // One byte: brokers still return the whole first batch (the one holding `offset`, KIP-74), and
  // nothing more, so describing many partitions does not pull megabytes per partition.
  const maxBytes = options.maxBytes ?? 1;
  const body = await conn.request(ApiKey.Fetch, Math.min(conn.version(ApiKey.Fetch), MAX_BY_NAME_FETCH_VERSION), {
    replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
    topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: maxBytes, currentLeaderEpoch: -1, logStartOffset: -1n }] }],
    forgottenTopicsData: [], rackId: '',
  });
  checkKafka(body.errorCode, `Fetch ${topic}-${partition}`);
  const p = body.responses[0]?.partitions[0];
  if (!p) return null;
  if (p.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) return null;
  if (p.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER || p.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) client.invalidateLeader(topic, partition);
  checkKafka(p.errorCode, `Fetch ${topic}-${partition} at ${offset}`);
  if (!p.records || p.records.length === 0) return null;
  for (const b of decodeRecordBatches(p.records)) {
    if (b.control) continue;
    const last = b.baseOffset + BigInt(b.lastOffsetDelta);
    if (offset < b.baseOffset || offset > last) continue;
    const r = b.records.find((x) => x.offset === offset);
    return r ? r.timestamp : null;
  }
  return null;
}
