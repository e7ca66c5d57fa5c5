import { ApiKey, ErrorCode, type Requests } from '@runnel/protocol';
import { AclOperation, authorized, defineHandler, ResourceType } from '@runnel/kafka-server';
import { MAX_PARTITIONS_PER_REQUEST } from '@runnel/metadata';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';

/**
 * CreatePartitions v0–3 (v2 flexible; v3 as v2): grow a topic; partitions are never removed. A request adding more than
 * MAX_PARTITIONS_PER_REQUEST partitions in all is refused whole (POLICY_VIOLATION, as Kafka's
 * controller) before anything is placed.
 */
export const createPartitions = (b: BrokerContext) => defineHandler({
  api: ApiKey.CreatePartitions,
  versions: [0, 3],
  async handle(req: Requests[typeof ApiKey.CreatePartitions], ctx) {
    const results = [];
    let added = 0;
    for (const t of req.topics) added += Math.max(0, t.count - (b.metadata.snapshot().topics.get(t.name)?.partitions.length ?? t.count));
    if (added > MAX_PARTITIONS_PER_REQUEST) {
      const message = `Excessively large number of partitions per request (${added} requested, at most ${MAX_PARTITIONS_PER_REQUEST}).`;
      return { throttleTimeMs: 0, results: req.topics.map((t) => ({ name: t.name, errorCode: ErrorCode.POLICY_VIOLATION, errorMessage: message })) };
    }
    for (const t of req.topics) {
      const result = (errorCode: number, errorMessage: string | null = null) => ({ name: t.name, errorCode, errorMessage });
      const topic = b.metadata.snapshot().topics.get(t.name);
      if (!authorized(ctx, AclOperation.ALTER, ResourceType.TOPIC, t.name)) {
        // ACLs: Alter on the topic (docs/security.md).
        results.push(result(ErrorCode.TOPIC_AUTHORIZATION_FAILED, 'Authorization failed.'));
      } else if (!topic) {
        results.push(result(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${t.name}" does not exist`));
      } else if (t.count <= topic.partitions.length) {
        results.push(result(ErrorCode.INVALID_PARTITIONS, `topic has ${topic.partitions.length} partitions; the new count must be larger, got ${t.count}`));
      } else if (req.validateOnly) {
        results.push(result(ErrorCode.NONE));
      } else {
        try {
          await b.metadata.createPartitions(t.name, t.count, t.assignments?.map((a) => a.brokerIds));
          results.push(result(ErrorCode.NONE));
        } catch (err) {
          const mapped = toKafkaError(err);
          results.push(result(mapped.code, mapped.message));
        }
      }
    }
    return { throttleTimeMs: 0, results };
  },
});
