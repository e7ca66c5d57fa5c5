import { defineHandler, type Handler, type TransactionalInitProducerId } from '@runnel/kafka-server';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import type { TransactionCoordinator, TxnError } from './txn-coordinator.ts';
import type { TopicLookup } from './consumer-group.ts';

/**
 * The Kafka API handlers of the transaction coordinator: wire request → state-machine call →
 * error name → Kafka code. Versions served: AddPartitionsToTxn 0–5 (v4+ is the brokers' batched
 * form, `verifyOnly` answered from the state), AddOffsetsToTxn 0–4, EndTxn 0–4 (v5 means an epoch
 * bump per transaction, KIP-890 part 2, not built), DescribeTransactions 0, ListTransactions 0–1.
 * InitProducerId with a transactional id reaches {@link initProducerIdTxn} through kafka-server's
 * `initProducerIdHandler` (which serves the idempotent case).
 *
 * PRODUCER_FENCED is new in AddPartitionsToTxn/AddOffsetsToTxn/EndTxn v2 and InitProducerId v4:
 * older versions get INVALID_PRODUCER_EPOCH, as Kafka's KafkaApis answers.
 */

export function txnErrorCode(error: TxnError, fencedSince: number, version: number): number {
  if (error === 'PRODUCER_FENCED' && version < fencedSince) return ErrorCode.INVALID_PRODUCER_EPOCH;
  return ErrorCode[error];
}

/** InitProducerId with a transactional id (the request's transactionalId is not null). */
export async function initProducerIdTxn(tc: TransactionCoordinator, req: Requests[typeof ApiKey.InitProducerId], version: number): Promise<Responses[typeof ApiKey.InitProducerId]> {
  const r = await tc.initProducerId({
    transactionalId: req.transactionalId ?? '',
    transactionTimeoutMs: req.transactionTimeoutMs,
    producerId: req.producerId,
    producerEpoch: req.producerEpoch,
  });
  return { throttleTimeMs: 0, errorCode: txnErrorCode(r.error, 4, version), producerId: r.producerId, producerEpoch: r.producerEpoch };
}

/** kafka-server's `initProducerIdHandler` delegate for transactional ids, when `tc` is given. */
export function txnInitProducerId(tc: TransactionCoordinator | undefined): TransactionalInitProducerId | undefined {
  return tc && ((req, version) => initProducerIdTxn(tc, req, version));
}

/**
 * `topics`: the cluster's topics (metadata). As Kafka's KafkaApis, an AddPartitionsToTxn naming a
 * partition that does not exist adds nothing: that partition is answered UNKNOWN_TOPIC_OR_PARTITION
 * and the others OPERATION_NOT_ATTEMPTED (without it every partition is taken to exist).
 */
export function transactionHandlers(tc: TransactionCoordinator, topics?: TopicLookup): Handler[] {
  const exists = (topic: string, partition: number) => {
    if (!topics) return true;
    const t = topics.byName(topic);
    return t !== undefined && partition >= 0 && partition < t.partitions;
  };
  /** The answer when a partition is unknown, else null (the request goes on). */
  const unknownCode = (tps: readonly { topic: string; partition: number }[]) =>
    tps.every((tp) => exists(tp.topic, tp.partition)) ? null : (topic: string, partition: number) => (exists(topic, partition) ? ErrorCode.OPERATION_NOT_ATTEMPTED : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);

  const addPartitionsToTxn = defineHandler({
    api: ApiKey.AddPartitionsToTxn,
    versions: [0, 5],
    async handle(req, ctx) {
      const version = ctx.header.apiVersion;
      const flatten = (topics: readonly { name: string; partitions: readonly number[] }[]) =>
        topics.flatMap((t) => t.partitions.map((partition) => ({ topic: t.name, partition })));
      const byTopic = (topics: readonly { name: string; partitions: readonly number[] }[], code: (topic: string, partition: number) => number) =>
        topics.map((t) => ({ name: t.name, resultsByPartition: t.partitions.map((p) => ({ partitionIndex: p, partitionErrorCode: code(t.name, p) })) }));
      if (version <= 3) {
        const base = { transactionalId: req.v3AndBelowTransactionalId, producerId: req.v3AndBelowProducerId, producerEpoch: req.v3AndBelowProducerEpoch };
        const unknown = unknownCode(flatten(req.v3AndBelowTopics));
        if (unknown) return { throttleTimeMs: 0, resultsByTopicV3AndBelow: byTopic(req.v3AndBelowTopics, unknown) };
        const error = await tc.addPartitions({ ...base, partitions: flatten(req.v3AndBelowTopics) });
        const code = txnErrorCode(error, 2, version);
        return { throttleTimeMs: 0, resultsByTopicV3AndBelow: byTopic(req.v3AndBelowTopics, () => code) };
      }
      const resultsByTransaction = await Promise.all(req.transactions.map(async (t) => {
        const base = { transactionalId: t.transactionalId, producerId: t.producerId, producerEpoch: t.producerEpoch };
        const partitions = flatten(t.topics);
        if (t.verifyOnly) {
          const v = tc.verifyPartitions({ ...base, partitions });
          const codes = new Map(v.partitions.map((p) => [`${p.topic}\0${p.partition}`, txnErrorCode(p.error, 2, version)]));
          return { transactionalId: t.transactionalId, topicResults: byTopic(t.topics, (topic, p) => codes.get(`${topic}\0${p}`) ?? ErrorCode.NONE) };
        }
        const unknown = unknownCode(partitions);
        if (unknown) return { transactionalId: t.transactionalId, topicResults: byTopic(t.topics, unknown) };
        const code = txnErrorCode(await tc.addPartitions({ ...base, partitions }), 2, version);
        return { transactionalId: t.transactionalId, topicResults: byTopic(t.topics, () => code) };
      }));
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, resultsByTransaction };
    },
  });

  const addOffsetsToTxn = defineHandler({
    api: ApiKey.AddOffsetsToTxn,
    versions: [0, 4],
    async handle(req, ctx) {
      const error = await tc.addOffsets({ transactionalId: req.transactionalId, producerId: req.producerId, producerEpoch: req.producerEpoch, groupId: req.groupId });
      return { throttleTimeMs: 0, errorCode: txnErrorCode(error, 2, ctx.header.apiVersion) };
    },
  });

  const endTxn = defineHandler({
    api: ApiKey.EndTxn,
    versions: [0, 4],
    async handle(req, ctx) {
      const error = await tc.endTxn({ transactionalId: req.transactionalId, producerId: req.producerId, producerEpoch: req.producerEpoch, commit: req.committed });
      return { throttleTimeMs: 0, errorCode: txnErrorCode(error, 2, ctx.header.apiVersion) };
    },
  });

  const describeTransactions = defineHandler({
    api: ApiKey.DescribeTransactions,
    versions: [0, 0],
    handle(req) {
      return {
        throttleTimeMs: 0,
        transactionStates: tc.describe(req.transactionalIds).map((d) => ({
          errorCode: ErrorCode[d.error],
          transactionalId: d.transactionalId,
          transactionState: d.state,
          transactionTimeoutMs: d.timeoutMs,
          transactionStartTimeMs: BigInt(d.startMs),
          producerId: d.producerId,
          producerEpoch: d.producerEpoch,
          topics: d.partitions.map((p) => ({ topic: p.topic, partitions: p.partitions })),
        })),
      };
    },
  });

  const listTransactions = defineHandler({
    api: ApiKey.ListTransactions,
    versions: [0, 1],
    handle(req) {
      const r = tc.list({ states: req.stateFilters, producerIds: req.producerIdFilters, durationMs: req.durationFilter });
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode[r.error],
        unknownStateFilters: r.unknownStates,
        transactionStates: r.transactions.map((t) => ({ transactionalId: t.transactionalId, producerId: t.producerId, transactionState: t.state })),
      };
    },
  });

  return [addPartitionsToTxn, addOffsetsToTxn, endTxn, describeTransactions, listTransactions];
}
