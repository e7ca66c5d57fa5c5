import { ApiKey, ErrorCode, type Requests } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';

/**
 * DescribeLogDirs v1–5: per log dir its health and the size of each partition it holds; v3+ a
 * top-level error code, v4+ each dir's total and usable bytes (statfs of the dir, −1 for an
 * offline dir, as Kafka), v5 whether the dir is cordoned (KIP-1066; Runnel never cordons: false).
 */
export const describeLogDirs = (b: BrokerContext) => defineHandler({
  api: ApiKey.DescribeLogDirs,
  versions: [1, 5],
  handle(req: Requests[typeof ApiKey.DescribeLogDirs]) {
    const wanted = req.topics === null ? null : new Map(req.topics.map((t) => [t.topic, new Set(t.partitions)]));
    const logs = b.logs.logs().filter((l) => wanted === null || wanted.get(l.topic)?.has(l.partition));
    const results = b.logs.dirs().map((dir) => {
      const byTopic = new Map<string, { partitionIndex: number; partitionSize: bigint; offsetLag: bigint; isFutureKey: boolean }[]>();
      for (const log of logs.filter((l) => l.logDir === dir.path)) {
        const list = byTopic.get(log.topic) ?? [];
        list.push({ partitionIndex: log.partition, partitionSize: BigInt(log.sizeBytes), offsetLag: 0n, isFutureKey: false });
        byTopic.set(log.topic, list);
      }
      // A replica being moved here (AlterReplicaLogDirs) shows as a future replica (Kafka).
      for (const f of b.logs.futureLogs()) {
        if (f.logDir !== dir.path || (wanted !== null && !wanted.get(f.topic)?.has(f.partition))) continue;
        const list = byTopic.get(f.topic) ?? [];
        list.push({ partitionIndex: f.partition, partitionSize: BigInt(f.sizeBytes), offsetLag: f.offsetLag, isFutureKey: true });
        byTopic.set(f.topic, list);
      }
      return {
        errorCode: dir.online ? ErrorCode.NONE : ErrorCode.KAFKA_STORAGE_ERROR,
        logDir: dir.path,
        topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
        totalBytes: dir.online ? BigInt(dir.totalBytes) : -1n,
        usableBytes: dir.online ? BigInt(dir.freeBytes) : -1n,
        isCordoned: false,
      };
    });
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, results };
  },
});
