import { onceEvery, type OnceEvery } from '@runnel/common';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { appendCommitted } from '../commit.ts';
import { isClientFault, toKafkaError } from '../errors.ts';

type PartitionResponse = Responses[typeof ApiKey.Produce]['responses'][number]['partitionResponses'][number];

/**
 * Produce v3–7 (advertised from v0: librdkafka turns compression off unless Produce v0 is in the
 * range, KAFKA-18659; v0–2 carry old message formats and are refused, as Kafka 4 does).
 * Each partition's records go to storage in one call that validates, assigns offsets and appends.
 * acks=0 gets no response at all; acks=1 is answered after the leader's append; acks=all (-1)
 * waits until the high watermark passes the append (the in-sync replicas have it), or answers
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND / NOT_LEADER_OR_FOLLOWER / REQUEST_TIMED_OUT (docs/replication.md).
 */
export const produce = (b: BrokerContext) => defineHandler({
  api: ApiKey.Produce,
  versions: [0, 7],
  async handle(req: Requests[typeof ApiKey.Produce], ctx) {
    const version = ctx.header.apiVersion;
    const refuse = (code: number) => (index: number): PartitionResponse => ({ index, errorCode: code, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n });
    let reject: ((index: number) => PartitionResponse) | undefined;
    if (version < 3) reject = refuse(ErrorCode.UNSUPPORTED_VERSION);
    else if (req.acks !== 0 && req.acks !== 1 && req.acks !== -1) reject = refuse(ErrorCode.INVALID_REQUIRED_ACKS);
    else if (req.transactionalId !== null) reject = refuse(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);

    const responses = await Promise.all(req.topicData.map(async (topic) => ({
      name: topic.name,
      partitionResponses: await Promise.all(topic.partitionData.map((p) =>
        reject ? reject(p.index) : appendPartition(b, topic.name, p.index, p.records, req.acks, req.timeoutMs))),
    })));
    return req.acks === 0 ? undefined : { responses, throttleTimeMs: 0 };
  },
});

async function appendPartition(b: BrokerContext, topic: string, index: number, records: Buffer | null, acks: number, timeoutMs: number): Promise<PartitionResponse> {
  const fail = (errorCode: number): PartitionResponse => ({ index, errorCode, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n });
  const found = await b.partitions.leaderLog(topic, index);
  if (!found.ok) return fail(ErrorCode[found.error]);
  if (records === null || records.length === 0) return fail(ErrorCode.CORRUPT_MESSAGE);
  // Checked before the append: nothing is written that could not be acknowledged.
  if (acks === -1 && found.state.isr.length < found.config.get('min.insync.replicas')) return fail(ErrorCode.NOT_ENOUGH_REPLICAS);
  try {
    if (acks === -1) {
      const { result, code } = await appendCommitted(b.replicas, found, records, timeoutMs);
      if (code !== ErrorCode.NONE) return fail(code);
      return { index, errorCode: ErrorCode.NONE, baseOffset: result.baseOffset, logAppendTimeMs: result.logAppendTime, logStartOffset: found.log.logStartOffset };
    }
    const result = await b.replicas.appendAsLeader(found.topic, found.state, found.log, records);
    return { index, errorCode: ErrorCode.NONE, baseOffset: result.baseOffset, logAppendTimeMs: result.logAppendTime, logStartOffset: found.log.logStartOffset };
  } catch (err) {
    const mapped = toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR);
    if (isClientFault(err)) b.logger.debug({ topic, partition: index, err: mapped.message }, 'produce refused');
    else if ((err as { code?: unknown }).code === 'NO_SPACE') logNoSpace(b, topic, index, mapped.message);
    else b.logger.error({ err, topic, partition: index }, 'produce failed');
    return fail(mapped.code);
  }
}

/** Per broker: the full-disk warnings' limiter (producers retry them many times a second). */
const noSpaceWarnings = new WeakMap<BrokerContext, OnceEvery>();

/** A full disk is retriable (KAFKA_STORAGE_ERROR): one warning per partition per minute. */
function logNoSpace(b: BrokerContext, topic: string, partition: number, message: string): void {
  let limit = noSpaceWarnings.get(b);
  if (!limit) noSpaceWarnings.set(b, (limit = onceEvery(60_000)));
  if (!limit.allow(`${topic}-${partition}`)) return;
  b.logger.warn({ topic, partition, err: message }, 'produce refused: log dir is full (retriable)');
}
