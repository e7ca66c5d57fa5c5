import { onceEvery, type OnceEvery } from '@runnel/common';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { AclOperation, authorizedNames, authorized, defineHandler, ResourceType } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { appendCommitted } from '../commit.ts';
import { isClientFault, toKafkaError } from '../errors.ts';
import { leaderEndpoints } from './fetch.ts';

type PartitionResponse = Responses[typeof ApiKey.Produce]['responses'][number]['partitionResponses'][number];

/**
 * Produce v3–11 (advertised from v0: librdkafka turns compression off unless Produce v0 is in the
 * range, KAFKA-18659; v0–2 carry old message formats and are refused, as Kafka 4 does).
 * v8+: a batch refused for its contents says why in `error_message`, and names the bad record in
 * `record_errors` (KIP-467); v10+: NOT_LEADER_OR_FOLLOWER carries the current leader and its
 * address (KIP-951). v11 only allows TRANSACTION_ABORTABLE (a client may abort instead of failing).
 * Transactional batches (a `transactional_id` with batches whose transactional bit is set) are
 * appended as any other: storage opens the producer's transaction at the batch, and its records
 * stay above the last stable offset until the coordinator's marker (docs/transactions.md).
 * v12 is not served: a v12 produce adds its partition to the transaction itself (KIP-890 part 2,
 * transaction version 2: the leader asks the coordinator), which Runnel's coordinator does not do;
 * clients then add partitions with AddPartitionsToTxn first, as before KIP-890.
 * Each partition's records go to storage in one call that validates, assigns offsets and appends.
 * acks=0 gets no response at all; acks=1 is answered after the leader's append; acks=all (-1)
 * waits until the high watermark passes the append (the in-sync replicas have it), or answers
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND / NOT_LEADER_OR_FOLLOWER / REQUEST_TIMED_OUT (docs/replication.md).
 */
export const produce = (b: BrokerContext) => defineHandler({
  api: ApiKey.Produce,
  versions: [0, 11],
  async handle(req: Requests[typeof ApiKey.Produce], ctx) {
    const version = ctx.header.apiVersion;
    const refuse = (code: number) => (index: number): PartitionResponse => ({ index, errorCode: code, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n });
    let reject: ((index: number) => PartitionResponse) | undefined;
    if (version < 3) reject = refuse(ErrorCode.UNSUPPORTED_VERSION);
    else if (req.acks !== 0 && req.acks !== 1 && req.acks !== -1) reject = refuse(ErrorCode.INVALID_REQUIRED_ACKS);
    // ACLs (docs/security.md): transactional batches need Write on their transactional id, for the
    // whole request (CVE-2018-17196: a crafted request must not slip them in); every topic needs Write.
    else if (ctx.authorizer && hasTransactionalBatches(req) && (req.transactionalId === null || !authorized(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, req.transactionalId))) {
      reject = refuse(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    }
    const writable = authorizedNames(ctx, AclOperation.WRITE, ResourceType.TOPIC, req.topicData.map((t) => t.name));

    const responses = await Promise.all(req.topicData.map(async (topic) => ({
      name: topic.name,
      partitionResponses: await Promise.all(topic.partitionData.map(async (p) =>
        reject ? reject(p.index) : !writable.has(topic.name) ? refuse(ErrorCode.TOPIC_AUTHORIZATION_FAILED)(p.index) : withLeader(b, topic.name, await appendPartition(b, topic.name, p.index, p.records, req.acks, req.timeoutMs)))),
    })));
    countRequests(b, responses);
    if (req.acks === 0) return undefined;
    const nodeEndpoints = version >= 10 ? leaderEndpoints(b, responses.map((t) => t.partitionResponses), ctx) : [];
    return { responses, throttleTimeMs: 0, nodeEndpoints };
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
      countAppend(b, topic, records.length, result);
      return { index, errorCode: ErrorCode.NONE, baseOffset: result.baseOffset, logAppendTimeMs: result.logAppendTime, logStartOffset: found.log.logStartOffset };
    }
    const result = await b.replicas.appendAsLeader(found.topic, found.state, found.log, records);
    countAppend(b, topic, records.length, result);
    return { index, errorCode: ErrorCode.NONE, baseOffset: result.baseOffset, logAppendTimeMs: result.logAppendTime, logStartOffset: found.log.logStartOffset };
  } catch (err) {
    const mapped = toKafkaError(err, ErrorCode.KAFKA_STORAGE_ERROR);
    if (isClientFault(err)) b.logger.debug({ topic, partition: index, err: mapped.message }, 'produce refused');
    else if ((err as { code?: unknown }).code === 'NO_SPACE') logNoSpace(b, topic, index, mapped.message);
    else b.logger.error({ err, topic, partition: index }, 'produce failed');
    if (mapped.code !== ErrorCode.CORRUPT_MESSAGE && mapped.code !== ErrorCode.INVALID_RECORD) return fail(mapped.code);
    return { ...fail(mapped.code), errorMessage: mapped.message, recordErrors: recordErrors(mapped.message) };
  }
}

/** Whether a batch of the request has the transactional bit (attributes bit 4; v2 batches: attributes at byte 21). */
function hasTransactionalBatches(req: Requests[typeof ApiKey.Produce]): boolean {
  for (const t of req.topicData) {
    for (const p of t.partitionData) {
      const r = p.records;
      if (r === null) continue;
      for (let at = 0; at + 23 <= r.length; at += 12 + r.readInt32BE(at + 8)) {
        if (r[at + 16] === 2 && (r.readInt16BE(at + 21) & 0x10) !== 0) return true;
        if (r.readInt32BE(at + 8) < 0) break;
      }
    }
  }
  return false;
}

/** BytesIn and MessagesIn of an append (a retried batch already in the log counts nothing). */
function countAppend(b: BrokerContext, topic: string, bytes: number, r: { baseOffset: bigint; lastOffset: bigint; duplicate?: boolean }): void {
  if (!b.topicMetrics || r.duplicate) return;
  const m = b.topicMetrics.topic(topic);
  m.bytesIn += bytes;
  m.messagesIn += Number(r.lastOffset - r.baseOffset + 1n);
}

/** TotalProduceRequests and FailedProduceRequests, once per partition of existing topics (a made-up topic name adds no series). */
function countRequests(b: BrokerContext, responses: Array<{ name: string; partitionResponses: PartitionResponse[] }>): void {
  if (!b.topicMetrics) return;
  const topics = b.metadata.snapshot().topics;
  for (const t of responses) {
    if (!topics.has(t.name)) continue;
    const m = b.topicMetrics.topic(t.name);
    for (const p of t.partitionResponses) {
      m.produceRequests++;
      if (p.errorCode !== ErrorCode.NONE) m.failedProduce++;
    }
  }
}

/**
 * KIP-467: which record of the batch made it refused. The record check (native, docs/protocol.md)
 * names the record by its index in the batch ("record 3 at byte 57 of the records"); a fault in
 * the batch envelope names none.
 */
function recordErrors(message: string): PartitionResponse['recordErrors'] {
  const m = /\brecord (\d+) at byte \d+ of the records\b/.exec(message);
  return m ? [{ batchIndex: Number(m[1]), batchIndexErrorMessage: message }] : [];
}

/** KIP-951 (v10+): NOT_LEADER_OR_FOLLOWER names the leader metadata knows (−1 when none). */
function withLeader(b: BrokerContext, topic: string, r: PartitionResponse): PartitionResponse {
  if (r.errorCode !== ErrorCode.NOT_LEADER_OR_FOLLOWER) return r;
  const state = b.metadata.snapshot().topics.get(topic)?.partitions[r.index];
  return { ...r, currentLeader: { leaderId: state?.leader ?? -1, leaderEpoch: state?.leaderEpoch ?? -1 } };
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
