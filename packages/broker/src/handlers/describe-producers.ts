import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { AclOperation, authorizedNames, defineHandler, ResourceType } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';

type PartitionResponse = Responses[typeof ApiKey.DescribeProducers]['topics'][number]['partitions'][number];

/**
 * DescribeProducers (key 61) v0 (KIP-664): the producers a partition's leader tracks, from
 * storage's producer state: id, epoch, last sequence and timestamp, the coordinator epoch of its
 * last marker, and the first offset of its open transaction (−1 when none), which is what
 * `kafka-transactions.sh find-hanging` looks for. Only the leader answers (Kafka's rule): a
 * follower or non-hosting node says NOT_LEADER_OR_FOLLOWER, an unknown partition
 * UNKNOWN_TOPIC_OR_PARTITION.
 */
export const describeProducers = (b: BrokerContext) => defineHandler({
  api: ApiKey.DescribeProducers,
  versions: [0, 0],
  async handle(req: Requests[typeof ApiKey.DescribeProducers], ctx) {
    // ACLs: Read on each topic (docs/security.md).
    const readable = authorizedNames(ctx, AclOperation.READ, ResourceType.TOPIC, req.topics.map((t) => t.name));
    const topics = await Promise.all(req.topics.map(async (t) => ({
      name: t.name,
      partitions: await Promise.all(t.partitionIndexes.map((p) => (readable.has(t.name) ? describeOne(b, t.name, p)
        : { partitionIndex: p, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED, errorMessage: null, activeProducers: [] }))),
    })));
    return { throttleTimeMs: 0, topics };
  },
});

async function describeOne(b: BrokerContext, topic: string, partitionIndex: number): Promise<PartitionResponse> {
  const found = await b.partitions.leaderLog(topic, partitionIndex);
  if (!found.ok) {
    const error = found.error === 'LEADER_NOT_AVAILABLE' ? 'NOT_LEADER_OR_FOLLOWER' : found.error;
    return { partitionIndex, errorCode: ErrorCode[error], errorMessage: `${topic}-${partitionIndex}: ${error} on node ${b.nodeId}`, activeProducers: [] };
  }
  const activeProducers = found.log.producerSnapshot().map((p) => ({
    producerId: p.producerId,
    producerEpoch: p.producerEpoch,
    lastSequence: p.lastSequence,
    lastTimestamp: p.lastTimestamp,
    coordinatorEpoch: p.coordinatorEpoch,
    currentTxnStartOffset: p.currentTxnStartOffset,
  }));
  return { partitionIndex, errorCode: ErrorCode.NONE, errorMessage: null, activeProducers };
}
