import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';
import { leaderEpochError } from './fetch.ts';

type PartitionResponse = Responses[typeof ApiKey.ListOffsets]['topics'][number]['partitions'][number];

const LATEST = -1n;
const EARLIEST = -2n;
const MAX_TIMESTAMP = -3n;

/**
 * ListOffsets v1–7: −1 latest (the high watermark, which is also the last stable offset while
 * there are no transactions), −2 earliest (the log start offset), −3 (v7+, KIP-734) the record
 * with the largest timestamp, otherwise the first record whose timestamp is at or after the one
 * asked for (exact inside compressed batches too), answered with that record's timestamp and its
 * batch's leader epoch. Any other negative timestamp, −3 before v7 included, is answered
 * UNSUPPORTED_VERSION for that partition, as Kafka does (its clients ask v7 for −3).
 */
export const listOffsets = (b: BrokerContext) => defineHandler({
  api: ApiKey.ListOffsets,
  versions: [1, 7],
  async handle(req: Requests[typeof ApiKey.ListOffsets], ctx) {
    const version = ctx.header.apiVersion;
    const topics = await Promise.all(req.topics.map(async (t) => ({
      name: t.name,
      partitions: await Promise.all(t.partitions.map((p) => listOne(b, version, t.name, p.partitionIndex, p.currentLeaderEpoch, p.timestamp))),
    })));
    return { throttleTimeMs: 0, topics };
  },
});

async function listOne(b: BrokerContext, version: number, topic: string, partition: number, currentLeaderEpoch: number, timestamp: bigint): Promise<PartitionResponse> {
  const answer = (errorCode: number, offset = -1n, ts = -1n, leaderEpoch = -1): PartitionResponse =>
    ({ partitionIndex: partition, errorCode, oldStyleOffsets: [], timestamp: ts, offset, leaderEpoch });
  if (timestamp < 0n && timestamp !== LATEST && timestamp !== EARLIEST && !(timestamp === MAX_TIMESTAMP && version >= 7)) {
    return answer(ErrorCode.UNSUPPORTED_VERSION);
  }
  const epochError = leaderEpochError(b, topic, partition, currentLeaderEpoch);
  if (epochError !== ErrorCode.NONE) return answer(epochError);
  const found = await b.partitions.leaderLog(topic, partition);
  if (!found.ok) return answer(ErrorCode[found.error]);
  const { log, state } = found;
  try {
    if (timestamp === LATEST) return answer(ErrorCode.NONE, log.highWatermark, -1n, state.leaderEpoch);
    if (timestamp === EARLIEST) return answer(ErrorCode.NONE, log.logStartOffset, -1n, state.leaderEpoch);
    const hit = timestamp === MAX_TIMESTAMP ? await log.offsetOfMaxTimestamp() : await log.offsetForTimestamp(timestamp);
    // Only what consumers may read (below the high watermark) is an answer.
    if (!hit || hit.offset >= log.highWatermark) return answer(ErrorCode.NONE, -1n, -1n);
    return answer(ErrorCode.NONE, hit.offset, hit.timestamp, hit.leaderEpoch);
  } catch (err) {
    return answer(toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR).code);
  }
}
