// The single-node metadata file (and the controller's epoch file) are durable after their rename:
// the directory is fsynced after the rename, else a power loss can bring back the state before an
// acknowledged change. Checked on the real system calls of a real process with strace.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/**
 * Runs `script` (an ES module) under strace and tells, for `file` in `dir`, whether `file.tmp` was
 * renamed over it and the directory fsynced after that. One trace file per thread (`-ff`, so no
 * call is split by another thread's), merged in time order (`-ttt`): libuv's pool threads do the
 * calls.
 */
async function dirSyncedAfterRename(script: string, dir: string, file: string): Promise<{ renamed: boolean; dirSynced: boolean; trace: string }> {
  const prefix = join(dir, 'strace');
  const r = spawnSync('strace', ['-ff', '-ttt', '-qq', '-o', prefix, '-e', 'trace=openat,rename,renameat,renameat2,fsync,fdatasync',
    process.execPath, '--input-type=module', '-e', script], { cwd: join(import.meta.dirname, '..'), encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  const lines: string[] = [];
  for (const f of await readdir(dir)) if (f.startsWith('strace.')) lines.push(...(await readFile(join(dir, f), 'utf8')).split('\n').filter(Boolean));
  lines.sort((a, b) => parseFloat(a) - parseFloat(b));
  const trace = lines.filter((l) => l.includes(dir) || /fsync/.test(l)).join('\n');
  const path = join(dir, file);
  const at = lines.findIndex((l) => /\brename(at2?)?\(/.test(l) && l.includes(`"${path}.tmp"`) && l.includes(`"${path}"`) && /= 0$/.test(l));
  if (at < 0) return { renamed: false, dirSynced: false, trace };
  // After the rename: the directory opened (an fd) and that fd fsynced.
  const fds = new Set<string>();
  let dirSynced = false;
  for (const l of lines.slice(at + 1)) {
    const opened = /openat\(AT_FDCWD, "([^"]*)", [^)]*\) = (\d+)$/.exec(l);
    if (opened) {
      if (opened[1]!.replace(/\/$/, '') === dir) fds.add(opened[2]!);
      else fds.delete(opened[2]!);
    }
    const sync = /\bfsync\((\d+)\)\s*= 0$/.exec(l);
    if (sync && fds.has(sync[1]!)) dirSynced = true;
  }
  return { renamed: true, dirSynced, trace };
}

it('LocalStore fsyncs the directory after renaming runnel-metadata.json into place', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-durable-'));
  dirs.push(dir);
  const script = `
    import { LocalStore } from '@runnel/metadata';
    const store = LocalStore.create({ path: ${JSON.stringify(join(dir, 'runnel-metadata.json'))}, nodeId: 1 });
    await store.start();
    await store.createTopic({ name: 'durable', partitions: 1, replicationFactor: 1, configs: {} });
    await store.stop();`;
  const r = await dirSyncedAfterRename(script, dir, 'runnel-metadata.json');
  expect(r.renamed, r.trace).toBe(true);
  expect(r.dirSynced, r.trace).toBe(true);
});

it('writeEpochFile fsyncs the directory after the rename too', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-durable-'));
  dirs.push(dir);
  const script = `
    import { writeEpochFile } from ${JSON.stringify(join(import.meta.dirname, '../src/epoch-file.ts'))};
    await writeEpochFile(${JSON.stringify(join(dir, 'controller-epoch'))}, { controllerEpoch: 3, version: 9, clusterId: 'c' });`;
  const r = await dirSyncedAfterRename(script, dir, 'controller-epoch');
  expect(r.renamed, r.trace).toBe(true);
  expect(r.dirSynced, r.trace).toBe(true);
});
