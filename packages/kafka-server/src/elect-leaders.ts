import type { MetadataStore } from '@runnel/metadata';
import { ApiKey, ErrorCode, type Responses } from '@runnel/protocol';
import { defineHandler, type Handler } from './handler.ts';
import { metadataErrorCode } from './metadata-errors.ts';

type Response = Responses[typeof ApiKey.ElectLeaders];
type TopicResult = Response['replicaElectionResults'][number];

const PREFERRED = 0;
const UNCLEAN = 1;

/**
 * ElectLeaders v0–2 (Kafka's Admin.electLeaders, `kafka-leader-election.sh`): the controller
 * elects the preferred replica (electionType 0) or, for partitions without a leader, any live
 * replica (1, unclean: may lose acknowledged records). Null topicPartitions means every
 * partition, and then partitions that need no election are left out, as Kafka answers. Any
 * node may be asked; the election itself runs on the controller (`MetadataStore.electLeaders`).
 */
export function electLeadersHandler(metadata: MetadataStore): Handler {
  return defineHandler({
    api: ApiKey.ElectLeaders,
    versions: [0, 2],
    async handle(req): Promise<Response> {
      const electionType = req.electionType ?? PREFERRED;
      if (electionType !== PREFERRED && electionType !== UNCLEAN) {
        return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, replicaElectionResults: [] };
      }
      // Kafka takes the partitions as a set.
      const wanted = req.topicPartitions === null ? null : dedupe(req.topicPartitions.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition }))));
      if (wanted?.length === 0) return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, replicaElectionResults: [] };
      let results: { topic: string; partition: number; errorCode: number; errorMessage: string | null }[];
      try {
        results = (await metadata.electLeaders(wanted, electionType === UNCLEAN)).map((r) => ({
          topic: r.topic, partition: r.partition, errorCode: r.error === null ? ErrorCode.NONE : ErrorCode[r.error], errorMessage: r.error === null ? null : r.message,
        }));
      } catch (err) {
        const errorCode = metadataErrorCode(err, ErrorCode.UNKNOWN_SERVER_ERROR);
        if (wanted === null) return { throttleTimeMs: 0, errorCode, replicaElectionResults: [] };
        results = wanted.map(({ topic, partition }) => ({ topic, partition, errorCode, errorMessage: (err as Error).message }));
      }
      const byTopic = new Map<string, TopicResult['partitionResult'][number][]>();
      for (const r of results) {
        const list = byTopic.get(r.topic) ?? [];
        list.push({ partitionId: r.partition, errorCode: r.errorCode, errorMessage: r.errorMessage });
        byTopic.set(r.topic, list);
      }
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, replicaElectionResults: [...byTopic].map(([topic, partitionResult]) => ({ topic, partitionResult })) };
    },
  });
}

function dedupe(partitions: { topic: string; partition: number }[]): { topic: string; partition: number }[] {
  const seen = new Set<string>();
  return partitions.filter((p) => {
    const key = `${p.partition}:${p.topic}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
