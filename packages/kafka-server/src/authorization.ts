/**
 * Which ACL every served Kafka API needs, after Kafka's KafkaApis/AuthHelper (docs/security.md,
 * "Authorization per API", is this table in prose). Two kinds of rule:
 *
 * - `edge`: one check on the Cluster resource for the whole request, made by the server before the
 *   handler runs (`edgeDenial`); a refusal answers the API's own error shape with
 *   CLUSTER_AUTHORIZATION_FAILED (per item where the API's errors are per item).
 * - `handler`: checks per resource (topic, group, transactional id) in the handler itself, next to
 *   the code that serves it; `rule` says what they are.
 *
 * Every API a node serves must have an entry (test/acl-rules.test.ts walks each role's registry),
 * so a new handler cannot slip in unchecked. ApiVersions, SaslHandshake and SaslAuthenticate need
 * no ACL (they come before authentication), as in Kafka.
 */
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { AclOperation, clusterAuthorized } from './authorizer.ts';
import type { RequestContext } from './handler.ts';
import { errorAnswer } from './unsupported.ts';

export interface ApiAuthorization {
  /** A check on the Cluster resource for the whole request, made before the handler. */
  edge?: AclOperation;
  /** What the handler checks per resource ('' when the edge check is all). */
  rule: string;
}

const A = AclOperation;

/** The authorization rule of every Kafka API a Runnel node may serve. */
export const API_AUTHORIZATION: Readonly<Record<number, ApiAuthorization>> = {
  [ApiKey.Produce]: { rule: 'Write on each topic (TOPIC_AUTHORIZATION_FAILED); transactional batches: Write on the TransactionalId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED for the whole request); idempotent batches: IdempotentWrite on Cluster or Write on the topic' },
  [ApiKey.Fetch]: { rule: 'consumers: Read on each topic (TOPIC_AUTHORIZATION_FAILED); replicaId >= 0 (a follower): ClusterAction on Cluster, else TOPIC_AUTHORIZATION_FAILED for every partition (CVE-2018-1288)' },
  [ApiKey.ListOffsets]: { rule: 'Describe on each topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.Metadata]: { rule: 'Describe on each topic: all topics lists only those; a named one answers TOPIC_AUTHORIZATION_FAILED; auto-creation needs Create on Cluster or on the topic' },
  [ApiKey.OffsetCommit]: { rule: 'Read on the Group (GROUP_AUTHORIZATION_FAILED for all), Read on each topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.OffsetFetch]: { rule: 'Describe on the Group (GROUP_AUTHORIZATION_FAILED); Describe on each topic: named ones TOPIC_AUTHORIZATION_FAILED, all topics lists only those' },
  [ApiKey.FindCoordinator]: { rule: 'Describe on the Group (GROUP_AUTHORIZATION_FAILED) or the TransactionalId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED)' },
  [ApiKey.JoinGroup]: { rule: 'Read on the Group (GROUP_AUTHORIZATION_FAILED)' },
  [ApiKey.Heartbeat]: { rule: 'Read on the Group (GROUP_AUTHORIZATION_FAILED)' },
  [ApiKey.LeaveGroup]: { rule: 'Read on the Group (GROUP_AUTHORIZATION_FAILED)' },
  [ApiKey.SyncGroup]: { rule: 'Read on the Group (GROUP_AUTHORIZATION_FAILED)' },
  [ApiKey.DescribeGroups]: { rule: 'Describe on each Group (GROUP_AUTHORIZATION_FAILED)' },
  [ApiKey.ListGroups]: { rule: 'Describe on Cluster lists every group, else only the groups with Describe' },
  [ApiKey.SaslHandshake]: { rule: 'none (before authentication)' },
  [ApiKey.SaslAuthenticate]: { rule: 'none (before authentication)' },
  [ApiKey.CreateTopics]: { rule: 'Create on Cluster or on each topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.DeleteTopics]: { rule: 'Delete on each topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.DeleteRecords]: { rule: 'Delete on each topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.OffsetForLeaderEpoch]: { rule: 'ClusterAction on Cluster covers every topic, else Describe on each topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.InitProducerId]: { rule: 'transactional: Write on the TransactionalId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); idempotent: IdempotentWrite on Cluster or Write on some topic (CLUSTER_AUTHORIZATION_FAILED)' },
  [ApiKey.AddPartitionsToTxn]: { rule: 'v0–3: Write on the TransactionalId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), Write on each topic (TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED); v4+ (brokers): ClusterAction on Cluster' },
  [ApiKey.AddOffsetsToTxn]: { rule: 'Write on the TransactionalId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), Read on the Group (GROUP_AUTHORIZATION_FAILED)' },
  [ApiKey.EndTxn]: { rule: 'Write on the TransactionalId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED)' },
  [ApiKey.TxnOffsetCommit]: { rule: 'Write on the TransactionalId, Read on the Group, Read on each topic' },
  [ApiKey.WriteTxnMarkers]: { edge: A.CLUSTER_ACTION, rule: '' },
  [ApiKey.DescribeAcls]: { edge: A.DESCRIBE, rule: '' },
  [ApiKey.CreateAcls]: { edge: A.ALTER, rule: '' },
  [ApiKey.DeleteAcls]: { edge: A.ALTER, rule: '' },
  [ApiKey.DescribeConfigs]: { rule: 'DescribeConfigs on each topic (TOPIC_AUTHORIZATION_FAILED) or on Cluster for a broker (CLUSTER_AUTHORIZATION_FAILED)' },
  [ApiKey.AlterConfigs]: { rule: 'AlterConfigs on each topic (TOPIC_AUTHORIZATION_FAILED) or on Cluster for a broker (CLUSTER_AUTHORIZATION_FAILED)' },
  [ApiKey.IncrementalAlterConfigs]: { rule: 'AlterConfigs on each topic (TOPIC_AUTHORIZATION_FAILED) or on Cluster for a broker (CLUSTER_AUTHORIZATION_FAILED)' },
  [ApiKey.AlterReplicaLogDirs]: { edge: A.ALTER, rule: '' },
  [ApiKey.DescribeLogDirs]: { edge: A.DESCRIBE, rule: '' },
  [ApiKey.CreatePartitions]: { rule: 'Alter on each topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.DeleteGroups]: { rule: 'Delete on each Group (GROUP_AUTHORIZATION_FAILED)' },
  [ApiKey.ElectLeaders]: { edge: A.ALTER, rule: '' },
  [ApiKey.AlterPartitionReassignments]: { edge: A.ALTER, rule: '' },
  [ApiKey.ListPartitionReassignments]: { edge: A.DESCRIBE, rule: '' },
  [ApiKey.OffsetDelete]: { rule: 'Delete on the Group (GROUP_AUTHORIZATION_FAILED), Read on each topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.DescribeClientQuotas]: { edge: A.DESCRIBE_CONFIGS, rule: '' },
  [ApiKey.AlterClientQuotas]: { edge: A.ALTER_CONFIGS, rule: '' },
  [ApiKey.DescribeUserScramCredentials]: { edge: A.DESCRIBE, rule: '' },
  [ApiKey.AlterUserScramCredentials]: { edge: A.ALTER, rule: '' },
  [ApiKey.DescribeCluster]: { rule: 'none (as Kafka: any principal may describe the cluster)' },
  [ApiKey.DescribeProducers]: { rule: 'Read on each topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.DescribeTransactions]: { rule: 'Describe on each TransactionalId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED)' },
  [ApiKey.ListTransactions]: { rule: 'lists only the TransactionalIds with Describe' },
  [ApiKey.ConsumerGroupHeartbeat]: { rule: 'Read on the Group (GROUP_AUTHORIZATION_FAILED); Describe on each subscribed topic (TOPIC_AUTHORIZATION_FAILED)' },
  [ApiKey.ConsumerGroupDescribe]: { rule: 'Describe on each Group (GROUP_AUTHORIZATION_FAILED)' },
  [ApiKey.DescribeTopicPartitions]: { rule: 'Describe on each topic: all topics lists only those; a named one answers TOPIC_AUTHORIZATION_FAILED' },
};

type TopicPartitions = { name: string; partitions: number[] }[];

/** Per-item refusals for the edge-checked APIs whose errors are per partition. */
const PER_ITEM: Record<number, (request: never, code: number, message: string) => object> = {
  [ApiKey.AlterReplicaLogDirs]: (req: { dirs: { topics: TopicPartitions }[] }, code) => ({
    throttleTimeMs: 0,
    results: req.dirs.flatMap((d) => d.topics).map((t) => ({ topicName: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p, errorCode: code })) })),
  }),
  [ApiKey.ElectLeaders]: (req: { topicPartitions: { topic: string; partitions: number[] }[] | null }, code, message) => ({
    throttleTimeMs: 0, errorCode: code,
    replicaElectionResults: (req.topicPartitions ?? []).map((t) => ({
      topic: t.topic, partitionResult: t.partitions.map((p) => ({ partitionId: p, errorCode: code, errorMessage: message })),
    })),
  }),
  // No top-level error code (or none before v3): each entry says it, as Kafka answers; a refusal
  // the schema cannot carry would close the connection, and the client would retry until its timeout.
  [ApiKey.DescribeLogDirs]: (_req, code) => ({ throttleTimeMs: 0, errorCode: code, results: [] }),
  [ApiKey.AlterClientQuotas]: (req: { entries: { entity: { entityType: string; entityName: string | null }[] }[] }, code, message) => ({
    throttleTimeMs: 0, entries: req.entries.map((e) => ({ errorCode: code, errorMessage: message, entity: e.entity })),
  }),
  [ApiKey.AlterUserScramCredentials]: (req: { deletions: { name: string }[]; upsertions: { name: string }[] }, code, message) => ({
    throttleTimeMs: 0,
    results: [...new Set([...req.deletions, ...req.upsertions].map((u) => u.name))].map((user) => ({ user, errorCode: code, errorMessage: message })),
  }),
  [ApiKey.WriteTxnMarkers]: (req: { markers: { producerId: bigint; topics: { name: string; partitionIndexes: number[] }[] }[] }, code) => ({
    markers: req.markers.map((m) => ({
      producerId: m.producerId,
      topics: m.topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((p) => ({ partitionIndex: p, errorCode: code })) })),
    })),
  }),
};

/**
 * The whole-request check (the `edge` rules): undefined when the request may go on to its handler
 * (no authorizer, no edge rule, or allowed), else the answer to send instead. Throws when the
 * refusal has no shape in the API's schema at that version (the connection is then closed).
 */
export function edgeDenial(apiKey: number, apiVersion: number, body: unknown, ctx: RequestContext): object | undefined {
  if (ctx.authorizer === undefined) return undefined;
  const op = API_AUTHORIZATION[apiKey]?.edge;
  if (op === undefined || clusterAuthorized(ctx, op)) return undefined;
  const code = ErrorCode.CLUSTER_AUTHORIZATION_FAILED;
  const message = 'Cluster authorization failed.';
  const perItem = PER_ITEM[apiKey];
  const answer = perItem ? perItem(body as never, code, message) : errorAnswer(apiKey, apiVersion, body, code, message);
  if (answer === undefined) throw new Error(`cluster authorization failed for API ${apiKey} v${apiVersion}, which has no error field to say so`);
  return answer;
}
