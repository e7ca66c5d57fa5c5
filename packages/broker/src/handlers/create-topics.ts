import { CONFIG_SOURCE_ID, topicConfig, type TopicConfig } from '@runnel/common';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { AclOperation, authorized, clusterAuthorized, defineHandler, ResourceType } from '@runnel/kafka-server';
import { MAX_PARTITIONS_PER_REQUEST } from '@runnel/metadata';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';

type TopicResult = Responses[typeof ApiKey.CreateTopics]['topics'][number];

/** Whether `work` is still running after `ms` (it rejects as `work` does when it fails first). */
async function stillRunningAfter(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work.then(() => false), new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * CreateTopics v2–7. −1 partitions or replication factor (v4+) take the broker defaults
 * (`num.partitions`, `default.replication.factor`); explicit replica lists per partition take
 * their place. Configs are validated before anything is created; `validate_only` stops there.
 * A request that would create more than MAX_PARTITIONS_PER_REQUEST partitions in all is refused
 * whole before anything is placed (Kafka's controller: POLICY_VIOLATION for every topic).
 *
 * `timeout_ms` as a KRaft controller uses it (checked against Kafka 4.4.0): ≤ 0 answers every
 * topic but duplicates REQUEST_TIMED_OUT at once and creates nothing (not even validate_only
 * checks run); otherwise a topic whose creation (the controller's write and the local logs) has
 * not completed by the deadline is answered REQUEST_TIMED_OUT while its creation goes on, and a
 * topic not yet started at the deadline is not created.
 *
 * v5+ (KIP-525) answers each created (or validated) topic's partition count, replication factor
 * and every config with its value and source, as `kafka-topics --create` then prints; v7 its topic
 * id (KIP-516). A failed topic keeps the defaults (−1, −1, no configs, a zero id), as in Kafka.
 */
export const createTopics = (b: BrokerContext) => defineHandler({
  api: ApiKey.CreateTopics,
  versions: [2, 7],
  async handle(req: Requests[typeof ApiKey.CreateTopics], ctx) {
    const seen = new Map<string, number>();
    for (const t of req.topics) seen.set(t.name, (seen.get(t.name) ?? 0) + 1);
    const mayCreateAll = clusterAuthorized(ctx, AclOperation.CREATE);
    const topics: TopicResult[] = [];
    const deadline = ctx.receivedAt + req.timeoutMs;
    if (req.timeoutMs <= 0) {
      return {
        throttleTimeMs: 0,
        topics: req.topics.map((t) => seen.get(t.name)! > 1
          ? { name: t.name, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `topic "${t.name}" appears more than once in the request` }
          : { name: t.name, errorCode: ErrorCode.REQUEST_TIMED_OUT, errorMessage: `timeout_ms is ${req.timeoutMs}: nothing was created` }),
      };
    }
    // Kafka's validateTotalNumberOfPartitions: counted as the controller would place them (a
    // count of 0 or below adds nothing and fails on its own below).
    let total = 0;
    for (const t of req.topics) {
      total += t.assignments.length > 0 ? t.assignments.length : t.numPartitions === -1 ? b.config.get('num.partitions') : Math.max(0, t.numPartitions);
    }
    if (total > MAX_PARTITIONS_PER_REQUEST) {
      const message = `Excessively large number of partitions per request (${total} requested, at most ${MAX_PARTITIONS_PER_REQUEST}).`;
      return { throttleTimeMs: 0, topics: req.topics.map((t) => ({ name: t.name, errorCode: ErrorCode.POLICY_VIOLATION, errorMessage: message })) };
    }
    for (const t of req.topics) {
      const result = (errorCode: number, errorMessage: string | null = null): TopicResult => ({ name: t.name, errorCode, errorMessage });
      if (seen.get(t.name)! > 1) {
        topics.push(result(ErrorCode.INVALID_REQUEST, `topic "${t.name}" appears more than once in the request`));
        continue;
      }
      // ACLs: Create on the cluster, or on the topic (docs/security.md).
      if (!mayCreateAll && !authorized(ctx, AclOperation.CREATE, ResourceType.TOPIC, t.name)) {
        topics.push(result(ErrorCode.TOPIC_AUTHORIZATION_FAILED, 'Authorization failed.'));
        continue;
      }
      try {
        const configs: Record<string, string> = {};
        for (const c of t.configs) if (c.value !== null) configs[c.name] = c.value;
        topicConfig(b.config, configs); // throws a ConfigError naming the bad key
        const partitions = t.numPartitions === -1 ? b.config.get('num.partitions') : t.numPartitions;
        const rf = t.replicationFactor === -1 ? b.config.get('default.replication.factor') : t.replicationFactor;
        // Kafka's rules for explicit replica lists (kafka-topics.sh --replica-assignment): no count
        // or factor alongside them, partitions 0..n-1 each listed once; the controller checks the brokers.
        let assignments: number[][] | undefined;
        if (t.assignments.length > 0) {
          if (t.numPartitions !== -1 || t.replicationFactor !== -1) {
            topics.push(result(ErrorCode.INVALID_REQUEST, 'Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.'));
            continue;
          }
          const sorted = [...t.assignments].sort((a, b) => a.partitionIndex - b.partitionIndex);
          if (sorted.some((a, i) => a.partitionIndex !== i)) {
            topics.push(result(ErrorCode.INVALID_REPLICA_ASSIGNMENT, 'partitions should be a consecutive 0-based integer sequence'));
            continue;
          }
          assignments = sorted.map((a) => [...a.brokerIds]);
        }
        const described = (topicId?: string): TopicResult => ({
          ...result(ErrorCode.NONE),
          ...(topicId === undefined ? {} : { topicId }),
          numPartitions: assignments?.length ?? partitions,
          replicationFactor: assignments?.[0]?.length ?? rf,
          configs: configEntries(topicConfig(b.config, configs)),
        });
        if (req.validateOnly) {
          if (b.metadata.snapshot().topics.has(t.name)) topics.push(result(ErrorCode.TOPIC_ALREADY_EXISTS, `topic "${t.name}" already exists`));
          else if (partitions < 1) topics.push(result(ErrorCode.INVALID_PARTITIONS, `number of partitions must be at least 1, got ${partitions}`));
          else topics.push(described());
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          topics.push(result(ErrorCode.REQUEST_TIMED_OUT, `timeout_ms ${req.timeoutMs} passed before topic "${t.name}" could be created; it was not created`));
          continue;
        }
        const created = b.createTopic(t.name, partitions, rf, configs, assignments);
        if (await stillRunningAfter(created, left)) {
          // Its creation goes on (the controller has the write); the client may look for it later.
          created.catch(() => {});
          topics.push(result(ErrorCode.REQUEST_TIMED_OUT, `topic "${t.name}" was not created within timeout_ms ${req.timeoutMs}; its creation goes on`));
          continue;
        }
        const made = b.metadata.snapshot().topics.get(t.name);
        topics.push(made ? { ...described(made.topicId), numPartitions: made.partitions.length, replicationFactor: made.partitions[0]?.replicas.length ?? rf } : described());
      } catch (err) {
        const mapped = toKafkaError(err);
        topics.push(result(mapped.code, mapped.message));
      }
    }
    return { throttleTimeMs: 0, topics };
  },
});

/** A topic's configs as CreateTopics v5+ lists them (every config, sensitive values hidden). */
function configEntries(config: TopicConfig): NonNullable<TopicResult['configs']> {
  return config.describe().map((e) => ({
    name: e.name, value: e.sensitive ? null : e.value, readOnly: false, configSource: CONFIG_SOURCE_ID[e.source], isSensitive: e.sensitive,
  }));
}
