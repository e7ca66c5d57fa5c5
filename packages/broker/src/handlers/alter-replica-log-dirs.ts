import { ApiKey, ErrorCode, type Requests } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';

/**
 * AlterReplicaLogDirs v1–2 (v0 removed by KIP-896): move replicas this broker holds to another of
 * its log dirs while they keep serving (LogManager.alterLogDir). Answers once the move is started,
 * as Kafka does; DescribeLogDirs shows the future replica until it takes over. Per partition:
 * LOG_DIR_NOT_FOUND (not one of this broker's log.dirs), KAFKA_STORAGE_ERROR (that dir is offline),
 * UNKNOWN_TOPIC_OR_PARTITION (no such partition), REPLICA_NOT_AVAILABLE (no replica here yet; the
 * reassignment tool retries).
 */
export const alterReplicaLogDirs = (b: BrokerContext) => defineHandler({
  api: ApiKey.AlterReplicaLogDirs,
  versions: [1, 2],
  handle(req: Requests[typeof ApiKey.AlterReplicaLogDirs]) {
    const topics = b.metadata.snapshot().topics;
    const results = new Map<string, { partitionIndex: number; errorCode: number }[]>();
    for (const dir of req.dirs) {
      for (const t of dir.topics) {
        const list = results.get(t.name) ?? [];
        results.set(t.name, list);
        for (const p of t.partitions) {
          let errorCode: number = ErrorCode.NONE;
          if (!topics.get(t.name)?.partitions[p]) errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
          else {
            const outcome = b.logs.alterLogDir(t.name, p, dir.path);
            if (outcome === 'not-found') errorCode = ErrorCode.LOG_DIR_NOT_FOUND;
            else if (outcome === 'offline') errorCode = ErrorCode.KAFKA_STORAGE_ERROR;
            else if (outcome === 'no-replica') errorCode = ErrorCode.REPLICA_NOT_AVAILABLE;
          }
          list.push({ partitionIndex: p, errorCode });
        }
      }
    }
    return { throttleTimeMs: 0, results: [...results].map(([topicName, partitions]) => ({ topicName, partitions })) };
  },
});
