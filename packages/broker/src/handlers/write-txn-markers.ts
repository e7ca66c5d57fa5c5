import { ApiKey, ErrorCode, errorName, type Requests, type Responses } from '@runnel/protocol';
import { OFFSETS_TOPIC } from '@runnel/common';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';

/** One marker for many partitions (the transaction coordinator's TxnMarkerSink shape). */
export interface TxnMarkerRequest {
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
  commit: boolean;
  partitions: { topic: string; partition: number }[];
}

/** One partition's answer: `error` null when the marker is written and committed, else a Kafka error name. */
export interface TxnMarkerPartitionResult {
  topic: string;
  partition: number;
  error: string | null;
}

/**
 * How long a marker waits for the in-sync replicas (Kafka appends markers with acks=all under
 * request.timeout.ms, 30 s by default); past it the partition answers REQUEST_TIMED_OUT and the
 * coordinator retries (a marker written twice is harmless: the second finds no open transaction).
 */
const MARKER_COMMIT_TIMEOUT_MS = 30_000;

/**
 * Writes transaction markers on the partitions this broker leads (Kafka's
 * ReplicaManager.appendRecords for WriteTxnMarkers): per partition one COMMIT or ABORT control
 * batch through storage's `appendControl`, answered once the high watermark passed it (acks=all).
 * Each partition answers on its own, in the request's order: NOT_LEADER_OR_FOLLOWER when this
 * broker does not lead it (or lost it meanwhile), UNKNOWN_TOPIC_OR_PARTITION for an unknown one,
 * NOT_ENOUGH_REPLICAS when the ISR is below min.insync.replicas (nothing written),
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND / REQUEST_TIMED_OUT when the ISR did not confirm it,
 * INVALID_PRODUCER_EPOCH for a marker older than the producer's epoch,
 * TRANSACTION_COORDINATOR_FENCED for a coordinator epoch older than its last marker's,
 * KAFKA_STORAGE_ERROR for an offline or full log dir. Every error but those two (and the unknown
 * partition) is retriable for the coordinator. Internal topics are written like any other: the group
 * coordinator's `__consumer_offsets` markers come through here too.
 */
export async function writeTxnMarkers(b: BrokerContext, markers: TxnMarkerRequest[], timeoutMs = MARKER_COMMIT_TIMEOUT_MS): Promise<TxnMarkerPartitionResult[][]> {
  return Promise.all(markers.map((m) => Promise.all(m.partitions.map(async ({ topic, partition }) =>
    ({ topic, partition, error: await writeOne(b, m, topic, partition, timeoutMs) })))));
}

async function writeOne(b: BrokerContext, m: TxnMarkerRequest, topic: string, partition: number, timeoutMs: number): Promise<string | null> {
  const found = await b.partitions.leaderLog(topic, partition);
  if (!found.ok) return found.error === 'LEADER_NOT_AVAILABLE' ? 'NOT_LEADER_OR_FOLLOWER' : found.error;
  const minIsr = found.config.get('min.insync.replicas');
  if (found.state.isr.length < minIsr) return 'NOT_ENOUGH_REPLICAS';
  try {
    const marker = { producerId: m.producerId, producerEpoch: m.producerEpoch, commit: m.commit, coordinatorEpoch: m.coordinatorEpoch };
    const result = await b.replicas.appendControlAsLeader(found.topic, found.state, found.log, marker);
    const code = await b.replicas.waitForCommit(topic, partition, result.lastOffset + 1n, timeoutMs);
    return code === ErrorCode.NONE ? null : errorName(code);
  } catch (err) {
    const mapped = toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR);
    if (mapped.code === ErrorCode.KAFKA_STORAGE_ERROR) b.logger.error({ err, topic, partition }, 'writing a transaction marker failed');
    else b.logger.debug({ topic, partition, err: mapped.message }, 'transaction marker refused');
    return errorName(mapped.code);
  }
}

const toGroupCoordinator = (b: BrokerContext, topic: string) => topic === OFFSETS_TOPIC && b.groupTxnMarker !== undefined;

type WriteTxnMarkersResponse = Responses[typeof ApiKey.WriteTxnMarkers];

/**
 * WriteTxnMarkers (key 27) v1–2: the Kafka API over {@link writeTxnMarkers}. Runnel's own
 * coordinators use the `broker.writeTxnMarkers` RPC (or the function in-process); this is what
 * `kafka-transactions.sh abort` sends to a hanging transaction's partition leader. Topics are
 * answered in the order asked, each partition with its own error code. A `__consumer_offsets`
 * partition's marker goes to its group coordinator (BrokerContext.groupTxnMarker), which writes it
 * and resolves the group's pending transactional offsets (Kafka's onTransactionCompleted); an
 * unreachable one answers NOT_LEADER_OR_FOLLOWER.
 */
export const writeTxnMarkersHandler = (b: BrokerContext) => defineHandler({
  api: ApiKey.WriteTxnMarkers,
  versions: [1, 2],
  async handle(req: Requests[typeof ApiKey.WriteTxnMarkers]): Promise<WriteTxnMarkersResponse> {
    const markers = req.markers.map((m) => ({
      producerId: m.producerId,
      producerEpoch: m.producerEpoch,
      coordinatorEpoch: m.coordinatorEpoch,
      commit: m.transactionResult,
      partitions: m.topics.flatMap((t) => t.partitionIndexes.map((partition) => ({ topic: t.name, partition }))),
    }));
    const results = await writeTxnMarkers(b, markers.map((m) => ({ ...m, partitions: m.partitions.filter((tp) => !toGroupCoordinator(b, tp.topic)) })));
    // __consumer_offsets partitions go to their group coordinator (see BrokerContext.groupTxnMarker).
    const forwarded = await Promise.all(markers.map((m) => Promise.all(m.partitions.filter((tp) => toGroupCoordinator(b, tp.topic)).map(async (tp) => {
      try {
        return { ...tp, error: await b.groupTxnMarker!(tp.partition, m) };
      } catch (err) {
        b.logger.debug({ ...tp, err }, 'forwarding a transaction marker to the group coordinator failed');
        return { ...tp, error: 'NOT_LEADER_OR_FOLLOWER' };
      }
    }))));
    return {
      markers: req.markers.map((m, i) => {
        let k = 0;
        let g = 0;
        return {
          producerId: m.producerId,
          topics: m.topics.map((t) => ({
            name: t.name,
            partitions: t.partitionIndexes.map((partitionIndex) => {
              const error = (toGroupCoordinator(b, t.name) ? forwarded[i]![g++]! : results[i]![k++]!).error;
              return { partitionIndex, errorCode: error === null ? ErrorCode.NONE : (ErrorCode as Record<string, number>)[error] ?? ErrorCode.UNKNOWN_SERVER_ERROR };
            }),
          })),
        };
      }),
    };
  },
});
