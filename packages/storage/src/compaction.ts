import type { Logger } from '@runnel/common';
import type { OffloadPool } from '@runnel/offload';
import type { PartitionLog } from './partition-log.ts';

export async function compactLog(_log: PartitionLog, _options: { pool?: OffloadPool; now: number; logger: Logger }): Promise<{ segmentsCleaned: number }> {
  return { segmentsCleaned: 0 };
}
