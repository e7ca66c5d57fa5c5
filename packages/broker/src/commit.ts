import { ErrorCode } from '@runnel/protocol';
import type { AppendResult } from '@runnel/storage';
import type { Lookup } from './partitions.ts';
import type { ReplicaManager } from './replication/replica-manager.ts';

/**
 * Append as leader and wait until the append is committed (acks=all): the high watermark passed
 * its last offset. `code` is NONE, or why it is not known to be committed (NOT_ENOUGH_REPLICAS_AFTER_APPEND,
 * NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT); the records are in the leader's log either way.
 * A duplicate (an idempotent retry) carries its original offsets and waits for those.
 * With ISR = [this broker] the high watermark moves at the append: no wait.
 */
export async function appendCommitted(replicas: ReplicaManager, found: Extract<Lookup, { ok: true }>, payload: Buffer, timeoutMs: number): Promise<{ result: AppendResult; code: number }> {
  const result = await replicas.appendAsLeader(found.topic, found.state, found.log, payload);
  if (result.lastOffset < result.baseOffset) return { result, code: ErrorCode.NONE };
  const code = await replicas.waitForCommit(found.topic.name, found.state.partition, result.lastOffset + 1n, timeoutMs);
  return { result, code };
}
