import { tpKey } from '@runnel/common';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { StorageError } from '@runnel/storage';
import { toKafkaError } from '../errors.ts';

type FetchRequest = Requests[typeof ApiKey.Fetch];
type FetchResponse = Responses[typeof ApiKey.Fetch];
type PartitionData = FetchResponse['responses'][number]['partitions'][number];

const EMPTY = Buffer.alloc(0);

/**
 * Fetch v4–11: whole batches from the high watermark down, within the partition and response
 * byte limits (the first batch always, KIP-74). A fetch that finds fewer than `min_bytes` waits in
 * the purgatory until an append wakes it or `max_wait_ms` passes, then reads once more.
 * No fetch sessions: session id 0 tells clients to keep sending full fetches.
 */
export const fetch = (b: BrokerContext) => defineHandler({
  api: ApiKey.Fetch,
  versions: [4, 11],
  async handle(req: FetchRequest, ctx) {
    const deadline = Date.now() + Math.max(0, req.maxWaitMs);
    const keys = req.topics.flatMap((t) => t.partitions.map((p) => tpKey(t.topic, p.partition)));
    for (;;) {
      const { responses, bytes, errors } = await readAll(b, req);
      const remaining = deadline - Date.now();
      if (bytes >= Math.max(1, req.minBytes) || errors || remaining <= 0 || keys.length === 0) {
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses };
      }
      const woken = await b.purgatory.wait(keys, remaining, ctx.signal);
      if (!woken && ctx.signal?.aborted) return undefined;
    }
  },
});

type TopicData = { topic: string; partitions: PartitionData[] };

async function readAll(b: BrokerContext, req: FetchRequest): Promise<{ responses: TopicData[]; bytes: number; errors: boolean }> {
  let bytes = 0;
  let errors = false;
  const maxBytes = req.maxBytes > 0 ? req.maxBytes : 0x7fffffff;
  const responses: TopicData[] = [];
  // Partitions are read in request order so the response byte budget is spent as Kafka spends it.
  for (const topic of req.topics) {
    const partitions: PartitionData[] = [];
    for (const p of topic.partitions) {
      const data = await readPartition(b, topic.topic, p.partition, p.currentLeaderEpoch, p.fetchOffset, Math.min(p.partitionMaxBytes, maxBytes - bytes), bytes === 0);
      if (data.errorCode !== ErrorCode.NONE) errors = true;
      bytes += (data.records as Buffer).length;
      partitions.push(data);
    }
    responses.push({ topic: topic.topic, partitions });
  }
  return { responses, bytes, errors };
}

async function readPartition(b: BrokerContext, topic: string, partition: number, currentLeaderEpoch: number, offset: bigint, limit: number, first: boolean): Promise<PartitionData> {
  const empty = (errorCode: number, hw = -1n, start = -1n): PartitionData => ({
    partitionIndex: partition, errorCode, highWatermark: hw, lastStableOffset: hw, logStartOffset: start,
    abortedTransactions: null, preferredReadReplica: -1, records: EMPTY,
  });
  // v9+: a consumer's view of the leader epoch is checked before leadership (Kafka's order), so
  // a stale client refreshes its metadata and a client ahead of us retries.
  const epochError = leaderEpochError(b, topic, partition, currentLeaderEpoch);
  if (epochError !== ErrorCode.NONE) return empty(epochError);
  const found = await b.partitions.leaderLog(topic, partition);
  if (!found.ok) return empty(ErrorCode[found.error]);
  const log = found.log;
  const hw = log.highWatermark;
  if (offset < log.logStartOffset || offset > log.logEndOffset) return empty(ErrorCode.OFFSET_OUT_OF_RANGE, hw, log.logStartOffset);
  if (offset >= hw || (limit <= 0 && !first)) return empty(ErrorCode.NONE, hw, log.logStartOffset);
  try {
    const read = await log.read(offset, Math.max(0, limit), { minOneBatch: first, maxOffset: hw, verify: b.replicas.verifiesReads(found.state) });
    return { ...empty(ErrorCode.NONE, read.highWatermark, read.logStartOffset), records: read.records };
  } catch (err) {
    // Bit rot in a stored batch: never served; another replica takes over and this one repairs it.
    if (err instanceof StorageError && err.code === 'CORRUPT_MESSAGE') {
      b.replicas.corruptBatch(topic, partition, log, offset);
      return empty(ErrorCode.KAFKA_STORAGE_ERROR, hw, log.logStartOffset);
    }
    return empty(toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR).code, hw, log.logStartOffset);
  }
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
