import { tpKey } from '@runnel/common';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { AclOperation, authorizedNames, clusterAuthorized, defineHandler, endpointOn, ResourceType, type RequestContext } from '@runnel/kafka-server';
import type { TopicMetadata } from '@runnel/metadata';
import type { PartitionLog } from '@runnel/storage';
import type { BrokerContext } from '../context.ts';
import { StorageError } from '@runnel/storage';
import { toKafkaError } from '../errors.ts';
import { divergence, lastStableOffset } from '../replication/replica-manager.ts';

type FetchRequest = Requests[typeof ApiKey.Fetch];
type FetchResponse = Responses[typeof ApiKey.Fetch];
type PartitionData = FetchResponse['responses'][number]['partitions'][number];
type RequestPartition = FetchRequest['topics'][number]['partitions'][number];
type NodeEndpoint = NonNullable<FetchResponse['nodeEndpoints']>[number];

const EMPTY = Buffer.alloc(0);
const NULL_TOPIC_ID = '0'.repeat(32);

/** One requested topic, resolved: by name (v4–12) or by id (v13+; `name` null when no topic has that id). */
interface Wanted {
  name: string | null;
  /** v13+: the id asked for, as the client sent it; the topic read must still have it (32 hex digits). */
  topicId: string | null;
  partitions: RequestPartition[];
  /** The ACLs refuse this topic to the request's principal (TOPIC_AUTHORIZATION_FAILED, nothing read). */
  denied?: boolean;
}

/**
 * Fetch v4–17: whole batches from the high watermark down, within the partition and response
 * byte limits (the first batch always, KIP-74). A fetch that finds fewer than `min_bytes` waits in
 * the purgatory until an append wakes it or `max_wait_ms` passes, then reads once more.
 * No fetch sessions: session id 0 tells clients to keep sending full fetches.
 * v12+: a `last_fetched_epoch` the leader's epoch history contradicts is answered with the
 * diverging epoch and its end offset and no records (KIP-595, as Kafka's Partition.fetchRecords),
 * so a fetcher that sends it learns where to truncate (Kafka's followers do; the Java consumer and
 * platformatic send −1); NOT_LEADER_OR_FOLLOWER and
 * FENCED_LEADER_EPOCH carry the current leader, and from v16 the top-level `node_endpoints` carry
 * those leaders' addresses on the request's listener (KIP-951). v13+: topics by id (KIP-516); an id
 * no topic has (a deleted or recreated topic's old id included) is UNKNOWN_TOPIC_ID.
 * Every answer carries the last stable offset (KIP-98); `isolation_level` 1 (read_committed) reads
 * only below it and lists the aborted transactions that intersect the records returned, so the
 * client drops their batches. A read_committed fetch parked at the LSO wakes when a marker moves it.
 */
export const fetch = (b: BrokerContext) => defineHandler({
  api: ApiKey.Fetch,
  versions: [4, 17],
  async handle(req: FetchRequest, ctx) {
    const version = ctx.header.apiVersion;
    const deadline = Date.now() + Math.max(0, req.maxWaitMs);
    const wanted: Wanted[] = req.topics.map((t) => version >= 13
      ? { name: topicNameById(b, t.topicId), topicId: hexId(t.topicId), partitions: t.partitions }
      : { name: t.topic, topicId: null, partitions: t.partitions });
    // ACLs (docs/security.md): a fetch naming a replica id is a follower's, which needs ClusterAction
    // on the cluster (CVE-2018-1288: a client must not read as a replica); a consumer needs Read on each topic.
    if (ctx.authorizer) {
      const replicaId = version >= 15 ? req.replicaState.replicaId : req.replicaId;
      const follower = replicaId >= 0;
      const mayFollow = follower && clusterAuthorized(ctx, AclOperation.CLUSTER_ACTION);
      const readable = follower ? new Set<string>() : authorizedNames(ctx, AclOperation.READ, ResourceType.TOPIC, wanted.flatMap((t) => (t.name === null ? [] : [t.name])));
      for (const t of wanted) if (t.name !== null && (follower ? !mayFollow : !readable.has(t.name))) t.denied = true;
    }
    const keys = wanted.flatMap((t) => (t.name === null || t.denied ? [] : t.partitions.map((p) => tpKey(t.name!, p.partition))));
    for (;;) {
      const { partitions, bytes, errors } = await readAll(b, wanted, req.maxBytes, req.isolationLevel === 1);
      const remaining = deadline - Date.now();
      if (bytes >= Math.max(1, req.minBytes) || errors || remaining <= 0 || keys.length === 0) {
        const responses = req.topics.map((t, i) => ({ topic: t.topic, topicId: t.topicId, partitions: partitions[i]! }));
        countFetch(b, wanted, partitions);
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses, nodeEndpoints: version >= 16 ? leaderEndpoints(b, partitions, ctx) : [] };
      }
      const woken = await b.purgatory.wait(keys, remaining, ctx.signal);
      if (!woken && ctx.signal?.aborted) return undefined;
    }
  },
});

/** BytesOut, TotalFetchRequests and FailedFetchRequests per topic, once per partition answered (existing topics only). */
function countFetch(b: BrokerContext, wanted: Wanted[], partitions: PartitionData[][]): void {
  if (!b.topicMetrics) return;
  const topics = b.metadata.snapshot().topics;
  for (let i = 0; i < wanted.length; i++) {
    const name = wanted[i]!.name;
    if (name === null || !topics.has(name)) continue;
    const m = b.topicMetrics.topic(name);
    let bytes = 0;
    for (const p of partitions[i]!) {
      m.fetchRequests++;
      if (p.errorCode !== ErrorCode.NONE) m.failedFetch++;
      bytes += (p.records as Buffer).length;
    }
    m.bytesOut += bytes;
  }
}

async function readAll(b: BrokerContext, wanted: Wanted[], requestMaxBytes: number, committed: boolean): Promise<{ partitions: PartitionData[][]; bytes: number; errors: boolean }> {
  let bytes = 0;
  let errors = false;
  const maxBytes = requestMaxBytes > 0 ? requestMaxBytes : 0x7fffffff;
  const out: PartitionData[][] = [];
  // Partitions are read in request order so the response byte budget is spent as Kafka spends it.
  for (const topic of wanted) {
    const partitions: PartitionData[] = [];
    for (const p of topic.partitions) {
      const data = await readPartition(b, topic, p, Math.min(p.partitionMaxBytes, maxBytes - bytes), bytes === 0, committed);
      if (data.errorCode !== ErrorCode.NONE || data.divergingEpoch) errors = true;
      bytes += (data.records as Buffer).length;
      partitions.push(data);
    }
    out.push(partitions);
  }
  return { partitions: out, bytes, errors };
}

/**
 * One partition's records from `fetchOffset`: below the high watermark, or with `committed`
 * (read_committed) below the last stable offset, with the aborted transactions in that range.
 */
async function readPartition(b: BrokerContext, topic: Wanted, p: RequestPartition, limit: number, first: boolean, committed: boolean): Promise<PartitionData> {
  const partition = p.partition;
  let lso = -1n;
  const empty = (errorCode: number, hw = -1n, start = -1n): PartitionData => ({
    partitionIndex: partition, errorCode, highWatermark: hw, lastStableOffset: lso < 0n ? hw : lso, logStartOffset: start,
    abortedTransactions: committed && errorCode === ErrorCode.NONE ? [] : null, preferredReadReplica: -1, records: EMPTY,
  });
  if (topic.name === null) return empty(ErrorCode.UNKNOWN_TOPIC_ID);
  if (topic.denied) return empty(ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  const name = topic.name;
  // v9+: a consumer's view of the leader epoch is checked before leadership (Kafka's order), so
  // a stale client refreshes its metadata and a client ahead of us retries.
  const epochError = leaderEpochError(b, name, partition, p.currentLeaderEpoch);
  if (epochError !== ErrorCode.NONE) return withLeader(b, name, partition, empty(epochError));
  const found = await b.partitions.leaderLog(name, partition);
  // Asked by id: a topic deleted (and perhaps recreated under the same name) since is not the one asked for.
  if (topic.topicId !== null && (found.ok ? found.topic.topicId : b.metadata.snapshot().topics.get(name)?.topicId) !== topic.topicId) {
    return empty(ErrorCode.UNKNOWN_TOPIC_ID);
  }
  if (!found.ok) return withLeader(b, name, partition, empty(ErrorCode[found.error]));
  const log = found.log;
  const hw = log.highWatermark;
  lso = lastStableOffset(log);
  const bound = committed ? lso : hw;
  if (p.lastFetchedEpoch >= 0) {
    const diverged = divergence(log, p.lastFetchedEpoch, p.fetchOffset);
    if (diverged === 'out-of-range') return empty(ErrorCode.OFFSET_OUT_OF_RANGE, hw, log.logStartOffset);
    if (diverged) return { ...empty(ErrorCode.NONE, hw, log.logStartOffset), divergingEpoch: diverged };
  }
  const offset = p.fetchOffset;
  if (offset < log.logStartOffset || offset > log.logEndOffset) return empty(ErrorCode.OFFSET_OUT_OF_RANGE, hw, log.logStartOffset);
  if (offset >= bound || (limit <= 0 && !first)) return empty(ErrorCode.NONE, hw, log.logStartOffset);
  try {
    const read = await log.read(offset, Math.max(0, limit), { minOneBatch: first, maxOffset: bound, verify: b.replicas.verifiesReads(found.state) });
    const data = { ...empty(ErrorCode.NONE, read.highWatermark, read.logStartOffset), records: read.records };
    if (!committed || read.records.length === 0) return data;
    return { ...data, abortedTransactions: log.abortedTransactions(offset, endOffset(read.records)) };
  } catch (err) {
    // Bit rot in a stored batch: never served; another replica takes over and this one repairs it.
    if (err instanceof StorageError && err.code === 'CORRUPT_MESSAGE') {
      b.replicas.corruptBatch(name, partition, log, offset);
      return empty(ErrorCode.KAFKA_STORAGE_ERROR, hw, log.logStartOffset);
    }
    return empty(toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR).code, hw, log.logStartOffset);
  }
}

/** The offset after the last of whole v2 batches (baseOffset int64 at 0, batchLength int32 at 8, lastOffsetDelta int32 at 23). */
function endOffset(records: Buffer): bigint {
  let pos = 0;
  let end = -1n;
  while (pos + 27 <= records.length) {
    end = records.readBigInt64BE(pos) + BigInt(records.readInt32BE(pos + 23)) + 1n;
    pos += 12 + records.readInt32BE(pos + 8);
  }
  return end;
}

/** KIP-951: NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH name the leader metadata knows (−1 when none). */
function withLeader(b: BrokerContext, topic: string, partition: number, data: PartitionData): PartitionData {
  if (data.errorCode !== ErrorCode.NOT_LEADER_OR_FOLLOWER && data.errorCode !== ErrorCode.FENCED_LEADER_EPOCH) return data;
  const state = b.metadata.snapshot().topics.get(topic)?.partitions[partition];
  return { ...data, currentLeader: { leaderId: state?.leader ?? -1, leaderEpoch: state?.leaderEpoch ?? -1 } };
}

/**
 * The addresses, on the request's listener, of the leaders named in `current_leader` (Fetch v16+,
 * Produce v10+): the client re-routes without a Metadata round trip. A leader without that
 * listener, or not live, is left out (as Kafka's metadata cache does).
 */
export function leaderEndpoints(b: BrokerContext, partitions: Iterable<Iterable<{ currentLeader?: { leaderId?: number } }>>, ctx: RequestContext): NodeEndpoint[] {
  const ids = new Set<number>();
  for (const topic of partitions) for (const p of topic) if ((p.currentLeader?.leaderId ?? -1) >= 0) ids.add(p.currentLeader!.leaderId!);
  if (ids.size === 0) return [];
  const brokers = b.metadata.snapshot().brokers;
  const out: NodeEndpoint[] = [];
  for (const id of [...ids].sort((x, y) => x - y)) {
    const node = brokers.get(id);
    const at = node ? endpointOn(node, ctx.listener) : null;
    if (node && at) out.push({ nodeId: id, host: at.host, port: at.port, rack: node.rack });
  }
  return out;
}

/** A wire uuid (`xxxxxxxx-xxxx-...`) as metadata stores topic ids: 32 lower-case hex digits. */
function hexId(uuid: string): string {
  return uuid.replace(/-/g, '').toLowerCase();
}

/** Per metadata snapshot (its topics map is replaced on every change): topic id → name. */
const namesById = new WeakMap<ReadonlyMap<string, TopicMetadata>, Map<string, string>>();

function topicNameById(b: BrokerContext, topicId: string): string | null {
  const hex = hexId(topicId);
  if (hex === NULL_TOPIC_ID) return null;
  const topics = b.metadata.snapshot().topics;
  let index = namesById.get(topics);
  if (!index) {
    index = new Map();
    for (const t of topics.values()) index.set(t.topicId, t.name);
    namesById.set(topics, index);
  }
  return index.get(hex) ?? null;
}

/**
 * A client's `current_leader_epoch` (Fetch v9+, ListOffsets v4+; -1 = not given) against the
 * partition's: older → FENCED_LEADER_EPOCH, newer → UNKNOWN_LEADER_EPOCH.
 */
export function leaderEpochError(b: BrokerContext, topic: string, partition: number, currentLeaderEpoch: number): number {
  if (currentLeaderEpoch < 0) return ErrorCode.NONE;
  const state = b.metadata.snapshot().topics.get(topic)?.partitions[partition];
  if (!state) return ErrorCode.NONE;
  if (currentLeaderEpoch < state.leaderEpoch) return ErrorCode.FENCED_LEADER_EPOCH;
  if (currentLeaderEpoch > state.leaderEpoch) return ErrorCode.UNKNOWN_LEADER_EPOCH;
  return ErrorCode.NONE;
}
