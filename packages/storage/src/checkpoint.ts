import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { fsyncDirectory, replaceFileDurably } from '@runnel/common';
import { briefFiles } from './file-cache.ts';

/**
 * Kafka's text checkpoint files (`CheckpointFile`):
 *
 * ```
 * 0                      <- version
 * 2                      <- number of entry lines
 * orders 0 1234          <- one entry per line, fields separated by one space
 * orders 1 977
 * ```
 *
 * Used for `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` (entries
 * `topic partition offset`, one file per log dir) and `leader-epoch-checkpoint` (entries
 * `epoch startOffset`, one file per partition). Written atomically: `<file>.tmp`, fsync, rename,
 * fsync of the directory, so a crash leaves either the old or the new file, never a torn one.
 */
export async function writeCheckpoint(path: string, lines: string[], version = 0, sync = true): Promise<void> {
  const text = `${version}\n${lines.length}\n${lines.map((l) => `${l}\n`).join('')}`;
  // Descriptors held only while writing, a bounded number at once across the process (file-cache.ts);
  // replaceFileDurably opens one at a time. The partition dir is never created here (it may have
  // been renamed away for deletion).
  if (sync) return briefFiles.run(() => replaceFileDurably(path, text, { createDir: false }));
  // Not durable (the producer snapshot on roll, an optimization): written and renamed, no fsync.
  const tmp = `${path}.tmp`;
  try {
    await briefFiles.run(() => writeFile(tmp, text));
    await rename(tmp, path);
  } catch (err) {
    // A failed write (typically a full disk) leaves the old file whole; drop the partial `.tmp` so
    // it holds no space the next attempt needs.
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Returns the entry lines split into fields, or null when the file does not exist. Throws on a malformed file. */
export async function readCheckpoint(path: string, expectedVersion = 0): Promise<string[][] | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const version = Number(lines[0]);
  const count = Number(lines[1]);
  if (version !== expectedVersion) throw new Error(`${path}: unsupported checkpoint version ${lines[0]}`);
  if (!Number.isInteger(count) || count < 0 || lines.length !== count + 2) throw new Error(`${path}: malformed checkpoint (count ${lines[1]}, ${lines.length - 2} entries)`);
  return lines.slice(2).map((l) => l.split(' '));
}

/** `topic partition offset` entries keyed by the partition dir name (`topic-partition`). */
export async function readOffsetCheckpoint(path: string): Promise<Map<string, bigint>> {
  const entries = (await readCheckpoint(path)) ?? [];
  const out = new Map<string, bigint>();
  for (const e of entries) {
    if (e.length !== 3) throw new Error(`${path}: malformed entry ${e.join(' ')}`);
    out.set(`${e[0]}-${e[1]}`, BigInt(e[2]));
  }
  return out;
}

export async function writeOffsetCheckpoint(path: string, entries: { topic: string; partition: number; offset: bigint }[]): Promise<void> {
  await writeCheckpoint(path, entries.map((e) => `${e.topic} ${e.partition} ${e.offset}`));
}

/** @runnel/common's directory fsync, within the process's bound on briefly open files. */
export function fsyncDir(path: string): Promise<void> {
  return briefFiles.run(() => fsyncDirectory(path));
}

export async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
