import { OFFSETS_TOPIC, silentLogger, type Logger } from '@runnel/common';
import type { TopicPartition, TxnMarkerRequest, TxnMarkerSink } from './txn-coordinator.ts';
import type { TxnMarker } from './offsets-log.ts';

/** A partition's answer: null once its marker is written (and committed), else a Kafka error name. */
export type MarkerResult = { topic: string; partition: number; error: string | null };

/**
 * Errors after which a marker is sent again (Kafka's TransactionMarkerRequestCompletionHandler
 * retries these; the partition's leader or group coordinator moved, or its ISR is short for now).
 */
const RETRIABLE = new Set([
  'NOT_LEADER_OR_FOLLOWER', 'UNKNOWN_TOPIC_OR_PARTITION', 'NOT_ENOUGH_REPLICAS', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  'REQUEST_TIMED_OUT', 'KAFKA_STORAGE_ERROR', 'COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS', 'NOT_COORDINATOR', 'LEADER_NOT_AVAILABLE',
]);

export interface MarkerSinkOptions {
  /**
   * Writes a marker on data partitions (their leaders: the broker function in-process, or
   * `broker.writeTxnMarkers` over RPC), one answer per partition. A throw counts as
   * NOT_LEADER_OR_FOLLOWER for all of them (retried).
   */
  writeData(m: TxnMarker, partitions: TopicPartition[]): Promise<MarkerResult[]>;
  /**
   * Writes a marker on a `__consumer_offsets` partition through the group coordinator owning it
   * (Coordinator.writeTxnMarker here, `coordinator.writeTxnMarkers` over RPC), which also commits
   * or drops the transaction's pending offsets. A throw counts as NOT_LEADER_OR_FOLLOWER (retried).
   */
  writeOffsets(partition: number, m: TxnMarker): Promise<string | null>;
  /**
   * Whether a topic still exists: a marker for a deleted topic's partition is dropped (answered
   * null), as Kafka's marker channel drops it. Default: every topic exists.
   */
  topicExists?: (topic: string) => boolean;
  /** Backoff between rounds of retries: doubles from initialMs to maxMs (default 100 → 2000). */
  retry?: { initialMs: number; maxMs: number };
  logger?: Logger;
}

/**
 * The transaction coordinator's TxnMarkerSink: sends one marker to every partition of a
 * transaction, data partitions to their leaders and `__consumer_offsets` partitions to their
 * group coordinator, and sends again, with backoff, what failed with a retriable error, until
 * every partition is done or `signal` aborts (the coordinator lost the transaction's partition:
 * the new owner completes it). Other errors are answered as they are (e.g. INVALID_PRODUCER_EPOCH:
 * a newer producer epoch already wrote there).
 */
export function markerSink(o: MarkerSinkOptions): TxnMarkerSink {
  const retry = o.retry ?? { initialMs: 100, maxMs: 2000 };
  const logger = o.logger ?? silentLogger();
  const exists = o.topicExists ?? (() => true);

  async function once(marker: TxnMarker, partitions: TopicPartition[]): Promise<MarkerResult[]> {
    const data = partitions.filter((p) => p.topic !== OFFSETS_TOPIC);
    const offsets = partitions.filter((p) => p.topic === OFFSETS_TOPIC);
    const [dataResults, offsetsResults] = await Promise.all([
      data.length === 0 ? [] : o.writeData(marker, data).catch((err: unknown) => {
        logger.debug({ err }, 'writing transaction markers to partition leaders failed');
        return data.map((p) => ({ ...p, error: 'NOT_LEADER_OR_FOLLOWER' }));
      }),
      Promise.all(offsets.map(async (p) => ({
        ...p,
        error: await o.writeOffsets(p.partition, marker).catch((err: unknown) => {
          logger.debug({ err, partition: p.partition }, 'writing a transaction marker to a group coordinator failed');
          return 'NOT_LEADER_OR_FOLLOWER';
        }),
      }))),
    ]);
    return [...dataResults, ...offsetsResults];
  }

  return {
    async write(m: TxnMarkerRequest, signal?: AbortSignal): Promise<MarkerResult[]> {
      const marker: TxnMarker = { producerId: m.producerId, producerEpoch: m.producerEpoch, commit: m.commit, coordinatorEpoch: m.coordinatorEpoch };
      const done = new Map<string, MarkerResult>();
      let todo = [...m.partitions];
      let delay = retry.initialMs;
      for (;;) {
        const results = await once(marker, todo);
        const again: TopicPartition[] = [];
        for (const r of results) {
          const key = `${r.topic}\0${r.partition}`;
          if (r.error !== null && RETRIABLE.has(r.error) && r.topic !== OFFSETS_TOPIC && !exists(r.topic)) {
            // A topic deleted meanwhile has nothing left to mark.
            done.set(key, { ...r, error: null });
            continue;
          }
          if (r.error !== null && RETRIABLE.has(r.error)) again.push({ topic: r.topic, partition: r.partition });
          done.set(key, r);
        }
        if (again.length === 0 || signal?.aborted) break;
        logger.debug({ producerId: m.producerId, partitions: again, retryInMs: delay }, 'transaction markers not written yet; retrying');
        await sleep(delay, signal);
        if (signal?.aborted) break;
        delay = Math.min(delay * 2, retry.maxMs);
        todo = again;
      }
      return m.partitions.map((p) => done.get(`${p.topic}\0${p.partition}`) ?? { ...p, error: 'NOT_LEADER_OR_FOLLOWER' });
    },
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
