// The cluster id on disk (docs/metadata.md, rule 6): a broker writes its cluster's id into every log dir's
// meta.properties and refuses to start on a disk of another cluster, so metadata that lost its
// state (a wiped Redis hands out a new cluster id) cannot adopt old partition data.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { resolveConfig } from '@runnel/common';
import { LocalStore } from '@runnel/metadata';
import { StorageError } from '@runnel/storage';
import { Broker } from '../src/index.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function brokerOn(logDir: string, metadataFile: string): Promise<{ broker: Broker; clusterId: string }> {
  const { config } = resolveConfig({ overrides: new Map([['listeners', 'PLAINTEXT://127.0.0.1:0'], ['log.dirs', logDir], ['node.id', '1']]) });
  const store = LocalStore.create({ path: metadataFile, nodeId: 1 });
  await store.start();
  cleanups.push(() => store.stop());
  return { broker: Broker.create({ config, metadata: store }), clusterId: store.snapshot().clusterId };
}

it('writes the cluster id into meta.properties and refuses a log dir of another cluster', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-cluster-id-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const logDir = join(dir, 'logs');

  const first = await brokerOn(logDir, join(dir, 'a.json'));
  await first.broker.start();
  await first.broker.stop();
  expect(await readFile(join(logDir, 'meta.properties'), 'utf8')).toContain(`cluster.id=${first.clusterId}`);

  // Fresh metadata (another file = another cluster id) over the same disk.
  const second = await brokerOn(logDir, join(dir, 'b.json'));
  expect(second.clusterId).not.toBe(first.clusterId);
  const refused = await second.broker.start().then(() => null, (err: unknown) => err);
  await second.broker.stop().catch(() => {});
  expect(refused).toBeInstanceOf(StorageError);
  expect((refused as StorageError).message).toContain(`cluster.id ${first.clusterId} does not match`);
});
