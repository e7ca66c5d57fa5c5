import { validateTopicName, type TopicMetadata } from '@runnel/metadata';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';

type MetadataResponse = Responses[typeof ApiKey.Metadata];
type TopicResponse = MetadataResponse['topics'][number];

/**
 * Metadata v0–9. All topics for v0's empty list or v1+'s null; unknown requested topics are
 * created when both the client (v4+ `allow_auto_topic_creation`; always for older versions) and
 * `auto.create.topics.enable` allow it. Creation completes before the reply, so the client sees a
 * led partition at once instead of LEADER_NOT_AVAILABLE and a retry.
 */
export const metadata = (b: BrokerContext) => defineHandler({
  api: ApiKey.Metadata,
  versions: [0, 9],
  async handle(req: Requests[typeof ApiKey.Metadata], ctx) {
    const version = ctx.header.apiVersion;
    const all = req.topics === null || (version === 0 && req.topics.length === 0);
    const mayCreate = b.config.get('auto.create.topics.enable') && (version < 4 || req.allowAutoTopicCreation);
    let topics: TopicResponse[];
    if (all) {
      topics = [...b.metadata.snapshot().topics.values()].map(describeTopic);
    } else {
      topics = [];
      for (const { name } of req.topics!) topics.push(await lookup(b, name, mayCreate));
    }
    const snap = b.metadata.snapshot();
    return {
      throttleTimeMs: 0,
      brokers: [...snap.brokers.values()].map((n) => ({ nodeId: n.nodeId, host: n.host, port: n.port, rack: n.rack })),
      clusterId: snap.clusterId,
      controllerId: snap.controllerId,
      topics,
    };
  },
});

async function lookup(b: BrokerContext, name: string, mayCreate: boolean): Promise<TopicResponse> {
  const existing = b.metadata.snapshot().topics.get(name);
  if (existing) return describeTopic(existing);
  const error = (errorCode: number): TopicResponse => ({ errorCode, name, isInternal: false, partitions: [] });
  try {
    validateTopicName(name);
  } catch {
    return error(ErrorCode.INVALID_TOPIC_EXCEPTION);
  }
  if (!mayCreate) return error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  try {
    await b.createTopic(name);
  } catch (err) {
    const mapped = toKafkaError(err);
    // Another request created it meanwhile: answer with it.
    if (mapped.code !== ErrorCode.TOPIC_ALREADY_EXISTS) return error(mapped.code);
  }
  const created = b.metadata.snapshot().topics.get(name);
  return created ? describeTopic(created) : error(ErrorCode.LEADER_NOT_AVAILABLE);
}

export function describeTopic(topic: TopicMetadata): TopicResponse {
  return {
    errorCode: ErrorCode.NONE,
    name: topic.name,
    isInternal: topic.internal,
    partitions: topic.partitions.map((p) => ({
      errorCode: p.leader < 0 ? ErrorCode.LEADER_NOT_AVAILABLE : ErrorCode.NONE,
      partitionIndex: p.partition,
      leaderId: p.leader,
      leaderEpoch: p.leaderEpoch,
      replicaNodes: p.replicas,
      isrNodes: p.isr,
      offlineReplicas: [],
    })),
  };
}
