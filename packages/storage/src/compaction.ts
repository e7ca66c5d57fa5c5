import type { Logger } from '@runnel/common';
import type { OffloadPool } from '@runnel/offload';
import { unlinkIfExists } from './checkpoint.ts';
import { compact, type CompactionResult, type CompactionTask } from './compaction-worker.ts';
import type { PartitionLog } from './partition-log.ts';

const WORKER = new URL('./compaction-worker.ts', import.meta.url);

/**
 * One compaction pass of a `cleanup.policy=compact` log (see compaction-worker.ts for the rules).
 * Runs when the dirty ratio (bytes of non-active segments past the cleaner checkpoint / bytes of
 * all non-active segments) reaches min.cleanable.dirty.ratio, or when `force`.
 *
 * Atomicity: the worker writes and fsyncs `<base>.log.cleaned`; under the partition lock each
 * segment that is still the same (same base offset and size) has its `.index`/`.timeindex`
 * unlinked, then `.cleaned` renamed over `.log` (atomic), then indexes rebuilt from the new file.
 * A crash in between leaves the old or the new log file whole, and a missing index is rebuilt at
 * load; leftover `.cleaned` files are deleted at load. Readers holding the old file keep reading it
 * until its handle is closed after file.delete.delay.ms.
 */
export async function compactLog(log: PartitionLog, options: { pool?: OffloadPool; now: number; logger: Logger; force?: boolean }): Promise<{ segmentsCleaned: number; result: CompactionResult | null }> {
  const segs = log.segmentList();
  if (segs.length < 2) return { segmentsCleaned: 0, result: null };
  const cleanable = segs.slice(0, -1);
  const endOffset = segs[segs.length - 1].baseOffset;
  let total = 0;
  let dirty = 0;
  for (const s of cleanable) {
    total += s.size;
    if (s.nextOffset > log.cleanerCheckpoint) dirty += s.size;
  }
  if (total === 0 || (!options.force && dirty / total < log.config.minCleanableDirtyRatio) || dirty === 0) return { segmentsCleaned: 0, result: null };
  const task: CompactionTask = {
    segments: cleanable.map((s) => ({ baseOffset: String(s.baseOffset), path: s.logPath, size: s.size })),
    now: options.now,
    deleteRetentionMs: log.config.deleteRetentionMs,
    maxUncompressedBytes: Math.max(64 * 1024 * 1024, log.config.maxMessageBytes * 4),
  };
  const result = options.pool ? await options.pool.run<CompactionResult>({ filename: WORKER, name: 'compact', args: task }) : compact(task);
  let cleaned = 0;
  await log.withLock(async () => {
    const current = log.segmentList();
    for (const r of result.segments) {
      if (!r.cleanedPath) continue;
      const before = task.segments.find((s) => s.baseOffset === r.baseOffset)!;
      const seg = current.find((s) => String(s.baseOffset) === r.baseOffset);
      if (!seg || seg.deleted || seg.size !== before.size || seg === current[current.length - 1]) {
        await unlinkIfExists(r.cleanedPath);
        continue;
      }
      log.rewrites++;
      const old = await seg.replaceWith(r.cleanedPath);
      setTimeout(() => void old.close().catch(() => {}), log.config.fileDeleteDelayMs).unref();
      cleaned++;
    }
    if (endOffset > log.cleanerCheckpoint) log.cleanerCheckpoint = endOffset;
  });
  options.logger.info({ topic: log.topic, partition: log.partition, segmentsCleaned: cleaned, recordsBefore: result.recordsBefore, recordsAfter: result.recordsAfter }, 'compacted log');
  return { segmentsCleaned: cleaned, result };
}
