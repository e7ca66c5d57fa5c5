import { tpKey } from '@runnel/common';
import { ApiKey, ErrorCode, type Requests } from '@runnel/protocol';
import { AclOperation, authorizedNames, defineHandler, ResourceType } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';

/** DeleteRecords v0–2 (v2 flexible): move each partition's log start offset up to the given offset (−1 = high watermark). */
export const deleteRecords = (b: BrokerContext) => defineHandler({
  api: ApiKey.DeleteRecords,
  versions: [0, 2],
  async handle(req: Requests[typeof ApiKey.DeleteRecords], ctx) {
    // ACLs: Delete on each topic (docs/security.md).
    const deletable = authorizedNames(ctx, AclOperation.DELETE, ResourceType.TOPIC, req.topics.map((t) => t.name));
    const topics = await Promise.all(req.topics.map(async (t) => ({
      name: t.name,
      partitions: await Promise.all(t.partitions.map(async (p) => {
        if (!deletable.has(t.name)) return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED };
        const found = await b.partitions.leaderLog(t.name, p.partitionIndex);
        if (!found.ok) return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: ErrorCode[found.error] };
        const target = p.offset === -1n ? found.log.highWatermark : p.offset;
        if (target < 0n || target > found.log.highWatermark) return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
        try {
          const lowWatermark = await found.log.deleteRecordsBefore(target);
          b.purgatory.notify(tpKey(t.name, p.partitionIndex));
          return { partitionIndex: p.partitionIndex, lowWatermark, errorCode: ErrorCode.NONE };
        } catch (err) {
          return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR).code };
        }
      })),
    })));
    return { throttleTimeMs: 0, topics };
  },
});
