import { validateTopicName, type MetadataSnapshot } from '@runnel/metadata';
import { ApiKey, ErrorCode, type Responses } from '@runnel/protocol';
import { describeTopic } from './discovery.ts';
import { defineHandler, type Handler } from './handler.ts';
import { AclOperation, authorized, ResourceType } from './authorizer.ts';

type Response = Responses[typeof ApiKey.DescribeTopicPartitions];
type TopicResult = Response['topics'][number];

/**
 * Kafka's `max.request.partition.size.limit` default: the most partitions one response holds,
 * whatever the request's `responsePartitionLimit` asks for.
 */
export const MAX_RESPONSE_PARTITIONS = 2000;

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** What DescribeTopicPartitions reads: the node's metadata snapshot (any node can answer). */
export interface DescribeTopicPartitionsSource {
  snapshot(): MetadataSnapshot;
}

/**
 * DescribeTopicPartitions v0 (key 75), as Kafka's broker answers it from its metadata cache:
 * the requested topics (or, for an empty list, every topic) in name order, starting at the
 * request's cursor (its topic from the cursor's partition, later topics from partition 0), with at
 * most min(responsePartitionLimit, 2000) partitions. When the limit cuts a topic short,
 * `nextCursor` names the first partition left out; when it is used up exactly at a topic
 * boundary, the next topic at partition 0 (which may not exist, as in Kafka). A requested topic
 * that does not exist answers UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an invalid
 * name); with an empty list only existing topics are listed. A cursor whose topic is not in the
 * requested list is INVALID_REQUEST for every topic.
 *
 * Runnel has no eligible leader replicas (KIP-966's election rules are not built): both ELR lists
 * are empty, as a Kafka broker answers with `eligible.leader.replicas.version` off.
 * topicAuthorizedOperations stays −2147483648 (not computed).
 */
export function describeTopicPartitionsHandler(metadata: DescribeTopicPartitionsSource): Handler {
  return defineHandler({
    api: ApiKey.DescribeTopicPartitions,
    versions: [0, 0],
    handle(req, ctx): Response {
      const snap = metadata.snapshot();
      const fetchAll = req.topics.length === 0;
      const cursorTopic = req.cursor?.topicName ?? '';
      const names = new Set<string>();
      for (const name of fetchAll ? snap.topics.keys() : req.topics.map((t) => t.name)) {
        // ACLs: listing all pages through the topics the principal may Describe only, so that
        // no cursor names one of the others (Kafka filters them before paging too).
        if (name >= cursorTopic && (!fetchAll || authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name))) names.add(name);
      }
      if (!fetchAll && req.cursor !== null && !names.has(req.cursor.topicName)) {
        // Kafka throws InvalidRequestException here; its error response carries the code per topic.
        return { throttleTimeMs: 0, topics: req.topics.map((t) => failed(t.name, ErrorCode.INVALID_REQUEST)), nextCursor: null };
      }
      let remaining = Math.min(MAX_RESPONSE_PARTITIONS, req.responsePartitionLimit);
      const topics: TopicResult[] = [];
      for (const name of [...names].sort()) {
        // A negative limit answers nothing and no cursor, as Kafka's loop does.
        if (remaining < 0) break;
        if (remaining === 0) return { throttleTimeMs: 0, topics, nextCursor: { topicName: name, partitionIndex: 0 } };
        // ACLs: Describe on a named topic (docs/security.md); listing all has only those already.
        if (!fetchAll && !authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name)) {
          topics.push(failed(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED));
          continue;
        }
        const topic = snap.topics.get(name);
        if (!topic) {
          if (!fetchAll) topics.push(failed(name, invalidName(name) ? ErrorCode.INVALID_TOPIC_EXCEPTION : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
          continue;
        }
        const described = describeTopic(topic, snap.brokers);
        const first = req.cursor !== null && name === req.cursor.topicName ? Math.max(0, req.cursor.partitionIndex) : 0;
        const partitions = described.partitions.slice(first, first + remaining).map((p) => ({ ...p, offlineReplicas: p.offlineReplicas ?? [], eligibleLeaderReplicas: [], lastKnownElr: [] }));
        topics.push({ errorCode: ErrorCode.NONE, name, topicId: topic.topicId, isInternal: topic.internal, partitions });
        const next = first + partitions.length;
        if (next < described.partitions.length) return { throttleTimeMs: 0, topics, nextCursor: { topicName: name, partitionIndex: next } };
        remaining -= partitions.length;
      }
      return { throttleTimeMs: 0, topics, nextCursor: null };
    },
  });
}

function failed(name: string, errorCode: number): TopicResult {
  return { errorCode, name, topicId: ZERO_UUID, isInternal: false, partitions: [] };
}

function invalidName(name: string): boolean {
  try {
    validateTopicName(name);
    return false;
  } catch {
    return true;
  }
}
