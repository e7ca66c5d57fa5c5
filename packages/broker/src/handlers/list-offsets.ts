import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { AclOperation, authorizedNames, defineHandler, ResourceType } from '@runnel/kafka-server';
import type { PartitionLog } from '@runnel/storage';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';
import { leaderEpochError } from './fetch.ts';
import { lastStableOffset } from '../replication/replica-manager.ts';

type PartitionResponse = Responses[typeof ApiKey.ListOffsets]['topics'][number]['partitions'][number];

const LATEST = -1n;
const EARLIEST = -2n;
const MAX_TIMESTAMP = -3n;
const EARLIEST_LOCAL = -4n;
const LATEST_TIERED = -5n;

/** The first version that defines each special timestamp (−1 and −2 are in every version). */
const SPECIAL_SINCE = new Map<bigint, number>([[LATEST, 0], [EARLIEST, 0], [MAX_TIMESTAMP, 7], [EARLIEST_LOCAL, 8], [LATEST_TIERED, 9]]);

/**
 * ListOffsets v1–10: −1 latest (the high watermark; with `isolation_level` 1, read_committed, the
 * last stable offset: what such a consumer reads up to, and its lag's end), −2 earliest (the log
 * start offset, with the epoch of the first batch), −3 (v7+, KIP-734) the record with the largest
 * timestamp, −4 (v8+, KIP-405) the earliest
 * offset in local storage: with no tiered storage the log start offset again, −5 (v9+, KIP-1005)
 * the latest offset in tiered storage: with none, offset −1 and epoch −1 (Kafka's answer when
 * remote storage is disabled); otherwise the first record whose timestamp is at or after the one
 * asked for (exact inside compressed batches too), answered with that record's timestamp and its
 * batch's leader epoch. Any other negative timestamp, and a special one before the version that
 * defines it (−3 before v7, −4 before v8, −5 before v9), is answered UNSUPPORTED_VERSION for that
 * partition, as Kafka does (its clients ask the defining version for them). v10's `timeout_ms`
 * bounds reads from remote storage, which Runnel never does: every answer is immediate.
 * A timestamp lookup answers only offsets the isolation level may read (Kafka's lastFetchableOffset).
 */
export const listOffsets = (b: BrokerContext) => defineHandler({
  api: ApiKey.ListOffsets,
  versions: [1, 10],
  async handle(req: Requests[typeof ApiKey.ListOffsets], ctx) {
    const version = ctx.header.apiVersion;
    // ACLs: Describe on each topic (docs/security.md).
    const describable = authorizedNames(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, req.topics.map((t) => t.name));
    const topics = await Promise.all(req.topics.map(async (t) => ({
      name: t.name,
      partitions: await Promise.all(t.partitions.map((p) => !describable.has(t.name)
        ? { partitionIndex: p.partitionIndex, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED, oldStyleOffsets: [], timestamp: -1n, offset: -1n, leaderEpoch: -1 }
        : listOne(b, version, t.name, p.partitionIndex, p.currentLeaderEpoch, p.timestamp, version >= 2 && req.isolationLevel === 1))),
    })));
    return { throttleTimeMs: 0, topics };
  },
});

async function listOne(b: BrokerContext, version: number, topic: string, partition: number, currentLeaderEpoch: number, timestamp: bigint, committed: boolean): Promise<PartitionResponse> {
  const answer = (errorCode: number, offset = -1n, ts = -1n, leaderEpoch = -1): PartitionResponse =>
    ({ partitionIndex: partition, errorCode, oldStyleOffsets: [], timestamp: ts, offset, leaderEpoch });
  if (timestamp < 0n && !(version >= (SPECIAL_SINCE.get(timestamp) ?? Infinity))) return answer(ErrorCode.UNSUPPORTED_VERSION);
  const epochError = leaderEpochError(b, topic, partition, currentLeaderEpoch);
  if (epochError !== ErrorCode.NONE) return answer(epochError);
  const found = await b.partitions.leaderLog(topic, partition);
  if (!found.ok) return answer(ErrorCode[found.error]);
  const { log, state } = found;
  try {
    const fetchable = committed ? lastStableOffset(log) : log.highWatermark;
    if (timestamp === LATEST) return answer(ErrorCode.NONE, fetchable, -1n, state.leaderEpoch);
    // Kafka answers −2 and −4 with the epoch of the batch at the log start (−1 for an empty log).
    if (timestamp === EARLIEST || timestamp === EARLIEST_LOCAL) return answer(ErrorCode.NONE, log.logStartOffset, -1n, epochAt(log, log.logStartOffset));
    if (timestamp === LATEST_TIERED) return answer(ErrorCode.NONE, -1n, -1n, -1);
    const hit = timestamp === MAX_TIMESTAMP ? await log.offsetOfMaxTimestamp() : await log.offsetForTimestamp(timestamp);
    // Only what consumers may read (below the high watermark, or the LSO for read_committed) is an answer.
    if (!hit || hit.offset >= fetchable) return answer(ErrorCode.NONE, -1n, -1n);
    return answer(ErrorCode.NONE, hit.offset, hit.timestamp, hit.leaderEpoch);
  } catch (err) {
    return answer(toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR).code);
  }
}

/** Kafka's LeaderEpochFileCache.epochForOffset: the epoch whose range holds `offset`, −1 when none. */
function epochAt(log: PartitionLog, offset: bigint): number {
  let epoch = -1;
  for (const e of log.leaderEpochs.entries) {
    if (e.startOffset > offset) break;
    epoch = e.epoch;
  }
  return epoch;
}
