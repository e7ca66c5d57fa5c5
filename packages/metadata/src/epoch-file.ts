/**
 * A cluster node's record of the highest metadata it has followed (docs/metadata.md, rules 1 and 6), kept on
 * its own disk so that a restart does not forget it. One small JSON document:
 *
 *   { "controllerEpoch": 4, "version": 17, "clusterId": "q0L3..." }
 *
 * controllerEpoch  the highest controller epoch this node applied
 * version          the metadata version it served when it applied that epoch (a floor, not the latest:
 *                  the file is rewritten when the controller epoch rises, not on every change)
 * clusterId        the cluster id Redis showed it, or null if Redis had none yet
 *
 * Replaced atomically: written to `<file>.tmp`, fsynced, renamed over the file, and the directory
 * fsynced, so a crash leaves the old record or the new one. A missing file means nothing seen yet.
 */
import { readFile } from 'node:fs/promises';
import { replaceFileDurably } from '@runnel/common';
import { MetadataError } from './errors.ts';

export interface EpochRecord {
  controllerEpoch: number;
  version: number;
  clusterId: string | null;
}

/** The record at `path`; undefined if there is none; CORRUPT_STATE if it cannot be read or is not a record. */
export async function readEpochFile(path: string): Promise<EpochRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MetadataError('CORRUPT_STATE', `metadata epoch file ${path} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new MetadataError('CORRUPT_STATE', `metadata epoch file ${path} is not valid JSON`, { cause: err });
  }
  const r = parsed as Partial<EpochRecord> | null;
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (typeof r !== 'object' || r === null || !count(r.controllerEpoch) || !count(r.version)
    || !(r.clusterId === undefined || r.clusterId === null || (typeof r.clusterId === 'string' && r.clusterId !== ''))) {
    throw new MetadataError('CORRUPT_STATE', `metadata epoch file ${path} is not {"controllerEpoch": n, "version": n, "clusterId": "..."}`);
  }
  return { controllerEpoch: r.controllerEpoch!, version: r.version!, clusterId: r.clusterId ?? null };
}

/** Replaces the record at `path` atomically (tmp, fsync, rename, fsync of the directory). */
export async function writeEpochFile(path: string, record: EpochRecord): Promise<void> {
  await replaceFileDurably(path, JSON.stringify(record) + '\n');
}
