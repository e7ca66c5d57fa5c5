/**
 * A cluster whose RPC between roles is TLS (runnel.rpc.ssl.enabled, docs/security.md): a
 * controller, two brokers and a coordinator, each its own process with a certificate of one
 * throwaway CA (test/helpers/tls.ts). Replication (follower fetches), metadata writes (brokers to
 * the controller) and group offsets (coordinator to brokers) all cross the RPC: a topic with two
 * replicas is produced to and consumed by a group. A plaintext RPC client, and one with a
 * certificate of another CA, are refused by the controller.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAddress, RpcClient, RpcError } from '@runnel/rpc';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { issueCert, makeCa, type Ca } from './helpers/tls.ts';

let dir: string;
let ca: Ca;
let cluster: TestCluster;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'runnel-rpc-tls-'));
  ca = makeCa(dir);
  const node = issueCert(ca, { cn: 'runnel-node', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  cluster = await startCluster({
    brokers: 2,
    set: ['runnel.rpc.ssl.enabled=true', `ssl.keystore.location=${node.keystorePath}`, `ssl.truststore.location=${ca.certPath}`],
  });
}, 90_000);

afterAll(async () => {
  await cluster?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('RPC over TLS between roles', () => {
  it('replicates, writes metadata and commits group offsets across TLS RPC', async () => {
    const kafka = new Kafka({ clientId: 'rpc-tls', brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'rpc-tls', numPartitions: 2, replicationFactor: 2 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    // acks=all: each write waits for the follower, which fetches from the leader over TLS RPC.
    await producer.send({ topic: 'rpc-tls', acks: -1, messages: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '3' }] });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: 'rpc-tls-group' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'rpc-tls', fromBeginning: true });
    const seen: string[] = [];
    const next = new Map<number, string>();
    await new Promise<void>((resolve) => {
      void consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          seen.push(message.value!.toString());
          next.set(partition, String(Number(message.offset) + 1));
          if (seen.length === 3) resolve();
        },
      });
    });
    // The commit goes to the coordinator, which appends it to __consumer_offsets on a broker over TLS RPC.
    await consumer.commitOffsets([...next].map(([partition, offset]) => ({ topic: 'rpc-tls', partition, offset })));
    await consumer.disconnect();
    expect(seen.sort()).toEqual(['1', '2', '3']);
    const admin2 = kafka.admin();
    await admin2.connect();
    const offsets = await admin2.fetchOffsets({ groupId: 'rpc-tls-group', topics: ['rpc-tls'] });
    await admin2.disconnect();
    expect(offsets[0]!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0)).toBe(3);
  }, 60_000);

  it('the controller refuses a plaintext RPC client and one with a certificate of another CA', async () => {
    const m = /"address":"([^"]+)","msg":"rpc server listening"/.exec(cluster.controller.process.output());
    expect(m).not.toBeNull();
    const at = parseAddress(m![1]!);
    const other = makeCa(mkdtempSync(join(dir, 'other-')), 'other-ca');
    const stranger = issueCert(other, { cn: 'mallory', ipAddresses: ['127.0.0.1'] });
    const attempts = [
      RpcClient.create({ ...at, connectTimeoutMs: 5000, requestTimeoutMs: 5000 }),
      RpcClient.create({ ...at, connectTimeoutMs: 5000, requestTimeoutMs: 5000, tls: { key: stranger.key, cert: stranger.chain, ca: [ca.cert] } }),
    ];
    const errors = await Promise.all(attempts.map((c) => c.call('controller.heartbeat', { nodeId: 99, brokerEpoch: 0 }).then(() => null, (e: unknown) => e)));
    for (const c of attempts) c.close();
    for (const e of errors) {
      expect(e).toBeInstanceOf(RpcError);
      expect((e as RpcError).code).toBe('UNAVAILABLE');
    }
  });
});
