import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { AclOperation, authorizedNames, clusterAuthorized, defineHandler, ResourceType } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';
import { leaderEpochError } from './fetch.ts';

type EpochEndOffset = Responses[typeof ApiKey.OffsetForLeaderEpoch]['topics'][number]['partitions'][number];

/**
 * OffsetForLeaderEpoch v2–4 (Kafka 4's range; KIP-101, KIP-320): for each partition this broker
 * leads, where leader epoch `leaderEpoch` ends in its log, by the log's one rule
 * (LeaderEpochCache.endOffsetFor, shared with the fetch path's divergence check): the log end
 * offset for the current epoch, the start of the next higher epoch for an older one, and −1/−1
 * (UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET) for an epoch it cannot place. `currentLeaderEpoch`
 * is checked first (FENCED_LEADER_EPOCH below ours, UNKNOWN_LEADER_EPOCH above), then leadership
 * (NOT_LEADER_OR_FOLLOWER; UNKNOWN_TOPIC_OR_PARTITION for a partition metadata does not know).
 * `replicaId` (v3+: −1 a consumer, ≥ 0 a follower) changes nothing, as in Kafka 4: a follower is
 * answered from the leader's log too (Runnel's own followers ask over RPC, in the fetch itself).
 * ACLs as Kafka's: ClusterAction on the Cluster covers every topic, else Describe on each topic.
 */
export const offsetForLeaderEpoch = (b: BrokerContext) => defineHandler({
  api: ApiKey.OffsetForLeaderEpoch,
  versions: [2, 4],
  async handle(req: Requests[typeof ApiKey.OffsetForLeaderEpoch], ctx) {
    const names = req.topics.map((t) => t.topic);
    const allowed = clusterAuthorized(ctx, AclOperation.CLUSTER_ACTION)
      ? new Set(names)
      : authorizedNames(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, names);
    const topics = await Promise.all(req.topics.map(async (t) => ({
      topic: t.topic,
      partitions: await Promise.all(t.partitions.map((p) => allowed.has(t.topic)
        ? endOffsetOf(b, t.topic, p.partition, p.currentLeaderEpoch, p.leaderEpoch)
        : { partition: p.partition, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED, leaderEpoch: -1, endOffset: -1n })),
    })));
    return { throttleTimeMs: 0, topics };
  },
});

async function endOffsetOf(b: BrokerContext, topic: string, partition: number, currentLeaderEpoch: number, leaderEpoch: number): Promise<EpochEndOffset> {
  const answer = (errorCode: number, epoch = -1, endOffset = -1n): EpochEndOffset => ({ partition, errorCode, leaderEpoch: epoch, endOffset });
  const epochError = leaderEpochError(b, topic, partition, currentLeaderEpoch);
  if (epochError !== ErrorCode.NONE) return answer(epochError);
  const found = await b.partitions.leaderLog(topic, partition);
  if (!found.ok) return answer(found.error === 'LEADER_NOT_AVAILABLE' ? ErrorCode.NOT_LEADER_OR_FOLLOWER : ErrorCode[found.error]);
  try {
    const { log, state } = found;
    if (!b.replicas.leadership(found.topic, state, log)) return answer(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    // Taking the lead records the new epoch at the log end under the log's lock; wait for it, so the
    // current epoch is never answered as unknown (Kafka records it before the broker serves as leader).
    if (log.leaderEpochs.latestEpoch() < state.leaderEpoch) await log.withLock(async () => {});
    const end = log.leaderEpochs.endOffsetFor(leaderEpoch, log.logEndOffset);
    return answer(ErrorCode.NONE, end.epoch, end.endOffset);
  } catch (err) {
    return answer(toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR).code);
  }
}
