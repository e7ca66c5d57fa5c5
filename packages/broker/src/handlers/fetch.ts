import { tpKey } from '@runnel/common';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
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
      const data = await readPartition(b, topic.topic, p.partition, p.fetchOffset, Math.min(p.partitionMaxBytes, maxBytes - bytes), bytes === 0);
      if (data.errorCode !== ErrorCode.NONE) errors = true;
      bytes += (data.records as Buffer).length;
      partitions.push(data);
    }
    responses.push({ topic: topic.topic, partitions });
  }
  return { responses, bytes, errors };
}

async function readPartition(b: BrokerContext, topic: string, partition: number, offset: bigint, limit: number, first: boolean): Promise<PartitionData> {
  const empty = (errorCode: number, hw = -1n, start = -1n): PartitionData => ({
    partitionIndex: partition, errorCode, highWatermark: hw, lastStableOffset: hw, logStartOffset: start,
    abortedTransactions: null, preferredReadReplica: -1, records: EMPTY,
  });
  const found = await b.partitions.leaderLog(topic, partition);
  if (!found.ok) return empty(ErrorCode[found.error]);
  const log = found.log;
  const hw = log.highWatermark;
  if (offset < log.logStartOffset || offset > log.logEndOffset) return empty(ErrorCode.OFFSET_OUT_OF_RANGE, hw, log.logStartOffset);
  if (offset >= hw || (limit <= 0 && !first)) return empty(ErrorCode.NONE, hw, log.logStartOffset);
  try {
    const read = await log.read(offset, Math.max(0, limit), { minOneBatch: first, maxOffset: hw });
    return { ...empty(ErrorCode.NONE, read.highWatermark, read.logStartOffset), records: read.records };
  } catch (err) {
    return empty(toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR).code, hw, log.logStartOffset);
  }
}
