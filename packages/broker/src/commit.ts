import type { AppendResult, PartitionLog } from '@runnel/storage';

/**
 * Append and commit on a single node: once the log acknowledges the append, the high watermark
 * moves to its end, so consumers may read it. Not to the log end, which may already hold later
 * appends still waiting for their fsync (runnel.durable). A duplicate (an idempotent retry) carries
 * its original offsets and moves nothing. With replication, the leader will move the high
 * watermark as followers catch up instead.
 */
export async function commitAppend(log: PartitionLog, payload: Buffer, leaderEpoch: number): Promise<AppendResult> {
  const result = await log.append(payload, { leaderEpoch });
  const end = result.lastOffset + 1n;
  if (end > log.highWatermark) log.highWatermark = end;
  return result;
}
