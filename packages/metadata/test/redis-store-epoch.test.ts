// RedisStore's epoch file (docs/metadata.md, rules 1 and 6) against a real redis-server and a real
// ControllerStore as the writer: the node records the highest controller epoch it followed (with
// the version then and the cluster id), and after a restart refuses a Redis that lost or rolled
// back data: an older copy of Redis' directory (STALE_EPOCH), a wiped Redis (CLUSTER_ID_MISMATCH),
// a wiped Redis re-created by a fresh controller (STALE_EPOCH). An unreadable file is
// CORRUPT_STATE; a failed write is logged and written again on the next change.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '@runnel/common';
import { redisCli, startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { ControllerStore, MetadataError, RedisStore, type MetadataWriter } from '../src/index.ts';
import { captureLogger, controllerRpc, storeWriter, until } from './store-writer.ts';


const readRecord = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as { controllerEpoch: number; version: number; clusterId: string | null };

describe('RedisStore epoch file', () => {
  const cleanup: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup.length = 0;
  });

  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'runnel-epoch-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  };
  const redisServer = async (dir?: string) => {
    const r = await startRedis({ dir });
    cleanup.push(() => r.stop());
    return r;
  };
  /** A controller that takes the lease (the controller epoch rises) on `r`. */
  const controller = async (r: TestRedis, controllerId: number, clusterId = 'cluster-1') => {
    const c = ControllerStore.create({ url: r.url, controllerId, leaseMs: 1_000 });
    await c.start();
    cleanup.push(() => c.stop());
    const epoch = await c.campaign(controllerRpc);
    await c.commit({ clusterId });
    return { controller: c, epoch, writer: storeWriter(c) };
  };
  const node = (url: string, writer: MetadataWriter, extra: { epochFile?: string; logger?: Logger; pollIntervalMs?: number } = {}) => {
    const store = RedisStore.create({ url, nodeId: 1, writer, pollIntervalMs: 50, ...extra });
    cleanup.push(() => store.stop());
    return store;
  };

  it('records the controller epoch at the first load and when it rises, not on every version', async () => {
    const r = await redisServer();
    const first = await controller(r, 0);
    // The directory does not exist yet (the cli's log dir before the broker creates it).
    const epochFile = join(tempDir(), 'not-yet', 'runnel-metadata-epoch.json');
    const store = node(r.url, first.writer, { epochFile });
    await store.start();
    expect(readRecord(epochFile)).toEqual({ controllerEpoch: first.epoch, version: store.snapshot().epoch, clusterId: 'cluster-1' });

    // A new controller takes over: the epoch rises and is recorded with the version then.
    await first.controller.stop();
    const second = await controller(r, 2);
    expect(second.epoch).toBeGreaterThan(first.epoch);
    const version = (await second.controller.load()).version;
    await until(() => store.snapshot().epoch >= version, 'the node to follow the new controller');
    await store.stop(); // waits for the write in flight
    expect(readRecord(epochFile)).toEqual({ controllerEpoch: second.epoch, version, clusterId: 'cluster-1' });
  });

  it('leaves the file alone while the controller epoch stays', async () => {
    const r = await redisServer();
    const { writer, epoch } = await controller(r, 0);
    const epochFile = join(tempDir(), 'runnel-metadata-epoch.json');
    const store = node(r.url, writer, { epochFile });
    await store.start();
    const recorded = readFileSync(epochFile, 'utf8');
    await store.createTopic({ name: 'a', partitions: 1, replicationFactor: 1, assignments: [[1]] });
    await store.alterTopicConfigs('a', { 'retention.ms': '1000' });
    await store.stop();
    expect(readFileSync(epochFile, 'utf8')).toBe(recorded);
    expect(readRecord(epochFile).controllerEpoch).toBe(epoch);
  });

  it('refuses to start on a Redis restarted from an older copy of its directory (STALE_EPOCH)', async () => {
    const r = await redisServer();
    const first = await controller(r, 0);
    await first.writer.createTopic({ name: 'kept', partitions: 1, replicationFactor: 1, assignments: [[1]] });
    // The backup an operator might restore: Redis' directory at controller epoch 1.
    const backup = tempDir();
    cpSync(r.dir, backup, { recursive: true, filter: (src) => !src.endsWith('.sock') });

    const epochFile = join(tempDir(), 'runnel-metadata-epoch.json');
    const a = node(r.url, first.writer, { epochFile });
    await a.start();
    await first.controller.stop();
    const second = await controller(r, 2);
    const seen = await second.controller.load();
    await until(() => a.snapshot().epoch >= seen.version, 'the node to follow the new controller');
    await a.stop();
    expect(readRecord(epochFile)).toMatchObject({ controllerEpoch: second.epoch });
    await second.controller.stop();
    await r.stop();

    // Redis comes back on the old copy: the node that followed epoch 2 must not take epoch 1.
    const restored = await redisServer(backup);
    const old = await redisCli(restored.socketPath, 'get', 'runnel:controller:epoch');
    expect(Number(old)).toBe(first.epoch);
    const { logger } = captureLogger();
    const b = node(restored.url, first.writer, { epochFile, logger });
    const err = await b.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect(err).toMatchObject({ code: 'STALE_EPOCH' });
    expect((err as Error).message).toContain(`holds controller epoch ${first.epoch}`);
    expect((err as Error).message).toContain(`seen controller epoch ${second.epoch} and version ${seen.version}`);
    expect((err as Error).message).toContain(epochFile);
    expect((err as Error).message).toMatch(/Redis lost or rolled back data; an operator must act/);
    expect(() => b.snapshot()).toThrow();
    expect(readRecord(epochFile)).toMatchObject({ controllerEpoch: second.epoch, version: seen.version });

    // A node without the file has nothing to hold against it (the floor is per node, on its disk).
    const fresh = node(restored.url, first.writer, { epochFile: join(tempDir(), 'runnel-metadata-epoch.json') });
    await fresh.start();
    expect(fresh.snapshot().topics.has('kept')).toBe(true);
  });

  it('refuses a wiped Redis (no cluster id) and one re-created by a fresh controller (lower epoch)', async () => {
    const r = await redisServer();
    const first = await controller(r, 0);
    await first.controller.stop();
    const second = await controller(r, 2); // epoch 2
    const epochFile = join(tempDir(), 'runnel-metadata-epoch.json');
    const a = node(r.url, second.writer, { epochFile });
    await a.start();
    await a.stop();
    await second.controller.stop();
    expect(readRecord(epochFile)).toMatchObject({ controllerEpoch: second.epoch, clusterId: 'cluster-1' });

    await redisCli(r.socketPath, 'flushall');
    const wiped = node(r.url, second.writer, { epochFile });
    await expect(wiped.start()).rejects.toMatchObject({ code: 'CLUSTER_ID_MISMATCH', message: expect.stringMatching(/holds no cluster id, but this node has followed cluster cluster-1 .*an operator must act/) });

    // A fresh controller re-creates the same cluster id, and enough changes that the version
    // passes the recorded one: the controller epoch alone gives the rollback away.
    const fresh = await controller(r, 0);
    expect(fresh.epoch).toBeLessThan(second.epoch);
    for (let i = 0; i < 5; i++) await fresh.writer.createTopic({ name: `t${i}`, partitions: 1, replicationFactor: 1, assignments: [[1]] });
    expect((await fresh.controller.load()).version).toBeGreaterThan(readRecord(epochFile).version);
    const b = node(r.url, fresh.writer, { epochFile });
    await expect(b.start()).rejects.toMatchObject({ code: 'STALE_EPOCH' });

    // Another cluster's Redis is refused by the recorded cluster id.
    await fresh.controller.stop();
    await redisCli(r.socketPath, 'flushall');
    const other = await controller(r, 0, 'cluster-other');
    for (let i = 0; i < 5; i++) await other.controller.commit({ coordinators: new Map() });
    const c = node(r.url, other.writer, { epochFile });
    await expect(c.start()).rejects.toMatchObject({ code: 'CLUSTER_ID_MISMATCH', message: expect.stringContaining('holds cluster cluster-other, but this node belongs to cluster-1') });
  });

  it('refuses a version below the recorded one under the same controller epoch', async () => {
    const r = await redisServer();
    const { writer, epoch } = await controller(r, 0);
    const epochFile = join(tempDir(), 'runnel-metadata-epoch.json');
    writeFileSync(epochFile, JSON.stringify({ controllerEpoch: epoch, version: 1_000, clusterId: 'cluster-1' }));
    const store = node(r.url, writer, { epochFile });
    await expect(store.start()).rejects.toMatchObject({ code: 'STALE_EPOCH', message: expect.stringContaining('version 1000') });
  });

  it('refuses an unreadable epoch file (CORRUPT_STATE, naming the path) and one of another configured cluster', async () => {
    const r = await redisServer();
    const { writer } = await controller(r, 0);
    const dir = tempDir();
    const cases: [string, string][] = [
      ['not json', '{"controllerEpoch": 3,'],
      ['wrong shape', JSON.stringify({ controllerEpoch: 'three', version: 1 })],
      ['negative', JSON.stringify({ controllerEpoch: -1, version: 1, clusterId: 'cluster-1' })],
      ['null', 'null'],
    ];
    for (const [name, text] of cases) {
      const epochFile = join(dir, `${name}.json`);
      writeFileSync(epochFile, text);
      const store = node(r.url, writer, { epochFile });
      await expect(store.start(), name).rejects.toMatchObject({ code: 'CORRUPT_STATE', message: expect.stringContaining(epochFile) });
      expect(readFileSync(epochFile, 'utf8'), name).toBe(text); // never overwritten
    }
    const isDir = join(dir, 'a-directory');
    mkdirSync(isDir);
    await expect(node(r.url, writer, { epochFile: isDir }).start()).rejects.toMatchObject({ code: 'CORRUPT_STATE', message: expect.stringContaining(isDir) });

    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ controllerEpoch: 1, version: 1, clusterId: 'cluster-x' }));
    await expect(RedisStore.create({ url: r.url, nodeId: 1, writer, clusterId: 'cluster-1', epochFile: other }).start())
      .rejects.toMatchObject({ code: 'CLUSTER_ID_MISMATCH', message: expect.stringContaining(other) });
  });

  it('logs a failed write, keeps serving, and writes again on the next change', async () => {
    const r = await redisServer();
    const first = await controller(r, 0);
    const epochFile = join(tempDir(), 'runnel-metadata-epoch.json');
    // A directory where the temporary file goes: every write fails, reading finds no file.
    mkdirSync(`${epochFile}.tmp`);
    const { logger, lines } = captureLogger();
    const store = node(r.url, first.writer, { epochFile, logger });
    await store.start();
    const startVersion = store.snapshot().epoch;
    const failures = () => lines.filter((l) => l.level === 'error' && l.msg.includes('cannot write the metadata epoch file'));
    expect(failures()).toHaveLength(1);
    expect(store.snapshot().clusterId).toBe('cluster-1');
    await store.createTopic({ name: 'a', partitions: 1, replicationFactor: 1, assignments: [[1]] });
    await until(() => failures().length >= 2, 'the write to be tried again on the change');

    rmSync(`${epochFile}.tmp`, { recursive: true });
    await store.createTopic({ name: 'b', partitions: 1, replicationFactor: 1, assignments: [[1]] });
    await store.stop();
    // Written by the first change after the fix (or a reload of the one before it).
    expect(readRecord(epochFile)).toMatchObject({ controllerEpoch: first.epoch, clusterId: 'cluster-1' });
    expect(readRecord(epochFile).version).toBeGreaterThan(startVersion);
  });
});
