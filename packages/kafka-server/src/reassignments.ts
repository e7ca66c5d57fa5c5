import type { MetadataStore } from '@runnel/metadata';
import { ApiKey, ErrorCode, type Responses } from '@runnel/protocol';
import { defineHandler, type Handler } from './handler.ts';
import { metadataErrorCode } from './metadata-errors.ts';

type AlterResponse = Responses[typeof ApiKey.AlterPartitionReassignments];
type ListResponse = Responses[typeof ApiKey.ListPartitionReassignments];

/**
 * AlterPartitionReassignments v0–1 (Admin.alterPartitionReassignments, `kafka-reassign-partitions.sh
 * --execute`): the controller starts moving each partition to its target replicas (or, for null
 * replicas, cancels the move in progress) and answers at once; the move completes once the
 * target replicas are in sync. A store that cannot reassign (none here) answers
 * UNSUPPORTED_VERSION for every partition.
 *
 * v1 (KIP-860): with allowReplicationFactorChange false, a target whose length differs from the
 * replica count the partition has (or is headed for, during a move) is INVALID_REPLICATION_FACTOR
 * and not started, as Kafka's controller checks; the response echoes the flag.
 */
export function alterPartitionReassignmentsHandler(metadata: MetadataStore): Handler {
  return defineHandler({
    api: ApiKey.AlterPartitionReassignments,
    versions: [0, 1],
    async handle(req): Promise<AlterResponse> {
      const all = req.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, replicas: p.replicas === null ? null : [...p.replicas] })));
      type Result = { topic: string; partition: number; errorCode: number; errorMessage: string | null };
      const refused: Result[] = [];
      const items = req.allowReplicationFactorChange ? all : all.filter((i) => {
        const message = replicationFactorChange(metadata, i.topic, i.partition, i.replicas);
        if (message !== null) refused.push({ topic: i.topic, partition: i.partition, errorCode: ErrorCode.INVALID_REPLICATION_FACTOR, errorMessage: message });
        return message === null;
      });
      let results: Result[];
      try {
        if (!metadata.alterPartitionReassignments) throw new Error('partition reassignment is not available on this node');
        results = items.length === 0 ? [] : (await metadata.alterPartitionReassignments(items)).map((r) => ({
          topic: r.topic, partition: r.partition, errorCode: r.error === null ? ErrorCode.NONE : ErrorCode[r.error], errorMessage: r.error === null ? null : r.message,
        }));
      } catch (err) {
        const errorCode = metadataErrorCode(err, ErrorCode.UNSUPPORTED_VERSION);
        results = items.map((i) => ({ topic: i.topic, partition: i.partition, errorCode, errorMessage: (err as Error).message }));
      }
      const byTopic = new Map<string, AlterResponse['responses'][number]['partitions'][number][]>();
      for (const r of [...refused, ...results]) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), { partitionIndex: r.partition, errorCode: r.errorCode, errorMessage: r.errorMessage }]);
      return {
        throttleTimeMs: 0, allowReplicationFactorChange: req.allowReplicationFactorChange, errorCode: ErrorCode.NONE, errorMessage: null,
        responses: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
      };
    },
  });
}

/**
 * Kafka's validatePartitionReplicationFactorUnchanged: why moving the partition to `target` would
 * change its replication factor, or null when it would not (or there is nothing to compare: a
 * cancellation, an unknown partition, which the store then answers).
 */
function replicationFactorChange(metadata: MetadataStore, topic: string, partition: number, target: number[] | null): string | null {
  const p = metadata.snapshot().topics.get(topic)?.partitions.find((q) => q.partition === partition);
  if (target === null || !p) return null;
  const removing = new Set(p.removingReplicas ?? []);
  const current = new Set([...p.replicas, ...(p.addingReplicas ?? [])].filter((id) => !removing.has(id))).size;
  return current === target.length ? null : `The replication factor is changed from ${current} to ${target.length}`;
}

/**
 * ListPartitionReassignments v0 (Admin.listPartitionReassignments, `kafka-reassign-partitions.sh
 * --verify`): the moves in progress, from this node's metadata snapshot; topics null = all.
 * Partitions asked for without a move in progress are left out, as Kafka does.
 */
export function listPartitionReassignmentsHandler(metadata: MetadataStore): Handler {
  return defineHandler({
    api: ApiKey.ListPartitionReassignments,
    versions: [0, 0],
    handle(req): ListResponse {
      const snapshot = metadata.snapshot();
      const wanted = req.topics === null ? null : new Map(req.topics.map((t) => [t.name, new Set(t.partitionIndexes)]));
      const topics: ListResponse['topics'][number][] = [];
      for (const topic of snapshot.topics.values()) {
        const only = wanted?.get(topic.name);
        if (wanted && !only) continue;
        const partitions = topic.partitions
          .filter((p) => (only === undefined || only.has(p.partition)) && ((p.addingReplicas ?? []).length > 0 || (p.removingReplicas ?? []).length > 0))
          .map((p) => ({ partitionIndex: p.partition, replicas: p.replicas, addingReplicas: p.addingReplicas ?? [], removingReplicas: p.removingReplicas ?? [] }));
        if (partitions.length > 0) topics.push({ name: topic.name, partitions });
      }
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, topics };
    },
  });
}
