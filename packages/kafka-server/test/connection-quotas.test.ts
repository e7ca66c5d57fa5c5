// Kafka's connection quotas at accept time, on a real KafkaServer configured as the roles configure
// it (listenerOptions over resolveConfig and a LocalStore): max.connections.per.ip with an override
// for a second loopback address, live changes through the dynamic broker configs, and
// max.connection.creation.rate delaying (never refusing) a burst of well-behaved clients.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '@runnel/common';
import { LocalStore } from '@runnel/metadata';
import { ApiKey, encodeRequest } from '@runnel/protocol';
import { KafkaServer, listenerOptions, metadataHandler } from '../src/index.ts';

/** A raw connection from `localAddress` that sends ApiVersions and resolves true once answered, false if closed first. */
function apiVersionsFrom(port: number, localAddress: string): { socket: Socket; answered: Promise<boolean> } {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => {});
  const answered = new Promise<boolean>((resolve) => {
    socket.once('data', () => resolve(true));
    socket.once('close', () => resolve(false));
  });
  socket.on('connect', () => socket.write(encodeRequest({ apiKey: ApiKey.ApiVersions, apiVersion: 0, correlationId: 1, clientId: 't' }, {})));
  return { socket, answered };
}

let dir: string;
let store: LocalStore;
const servers: KafkaServer[] = [];

async function startServer(values: Record<string, string>): Promise<KafkaServer> {
  const config = resolveConfig({ overrides: new Map(Object.entries({ listeners: 'PLAINTEXT://127.0.0.1:0', ...values })) }).config;
  const server = KafkaServer.create({
    ...listenerOptions(config, store),
    handlers: [metadataHandler({ metadata: store, autoCreate: () => false, createTopic: async () => {}, errorCode: () => 0 })],
  });
  await server.start();
  servers.push(server);
  return server;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnel-connquota-'));
  store = LocalStore.create({ path: join(dir, 'meta.json'), nodeId: 1 });
  await store.start();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await store.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('max.connections.per.ip', () => {
  it('closes the connection over the limit, lets an overridden address open more, and frees a slot on close', async () => {
    const server = await startServer({ 'max.connections.per.ip': '2', 'max.connections.per.ip.overrides': '127.0.0.2:4' });
    const { port } = server.address();
    const first = [apiVersionsFrom(port, '127.0.0.1'), apiVersionsFrom(port, '127.0.0.1')];
    expect(await Promise.all(first.map((c) => c.answered))).toEqual([true, true]);
    const third = apiVersionsFrom(port, '127.0.0.1');
    expect(await third.answered).toBe(false);
    const other = [1, 2, 3, 4].map(() => apiVersionsFrom(port, '127.0.0.2'));
    expect(await Promise.all(other.map((c) => c.answered))).toEqual([true, true, true, true]);
    expect(await apiVersionsFrom(port, '127.0.0.2').answered).toBe(false);
    expect(server.connectionQuotas.refusedPerIp).toBe(2);

    // A closed connection gives its slot back.
    first[0]!.socket.destroy();
    while (server.connectionQuotas.count('127.0.0.1') > 1) await new Promise((r) => setTimeout(r, 10));
    expect(await apiVersionsFrom(port, '127.0.0.1').answered).toBe(true);
    for (const c of [...first, ...other]) c.socket.destroy();
  });

  it('follows the dynamic broker configs live (kafka-configs --entity-type brokers)', async () => {
    const server = await startServer({});
    const { port } = server.address();
    await store.alterBrokerConfigs!(null, { 'max.connections.per.ip': '1' });
    const a = apiVersionsFrom(port, '127.0.0.1');
    expect(await a.answered).toBe(true);
    expect(await apiVersionsFrom(port, '127.0.0.1').answered).toBe(false);
    await store.alterBrokerConfigs!(1, { 'max.connections.per.ip.overrides': '127.0.0.1:2' });
    const b = apiVersionsFrom(port, '127.0.0.1');
    expect(await b.answered).toBe(true);
    await store.alterBrokerConfigs!(null, { 'max.connections.per.ip': null });
    await store.alterBrokerConfigs!(1, { 'max.connections.per.ip.overrides': null });
    a.socket.destroy();
    b.socket.destroy();
  });
});

describe('max.connection.creation.rate', () => {
  it('delays a burst past the rate instead of refusing it, and kafkajs clients connect without errors', async () => {
    const server = await startServer({ 'max.connection.creation.rate': '5' });
    const { port } = server.address();
    // 5 per second with a burst of one second's worth: the 12th connection waits about 1.4 s.
    const began = Date.now();
    const burst = Array.from({ length: 12 }, () => apiVersionsFrom(port, '127.0.0.1'));
    expect(await Promise.all(burst.map((c) => c.answered))).toEqual(Array(12).fill(true));
    expect(Date.now() - began).toBeGreaterThanOrEqual(1000);
    expect(server.connectionQuotas.throttledAccepts).toBeGreaterThanOrEqual(6);
    for (const c of burst) c.socket.destroy();

    const admins = [1, 2, 3].map(() => new Kafka({ brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin());
    // connect() is ApiVersions and Metadata over a fresh connection each: it rejects on a refused one.
    await Promise.all(admins.map((a) => a.connect()));
    await Promise.all(admins.map((a) => a.disconnect()));
  });

  it('rejects a bad override list with a one-line config error', () => {
    expect(() => resolveConfig({ overrides: new Map([['max.connections.per.ip.overrides', '127.0.0.2=4']]) })).toThrow(/max\.connections\.per\.ip\.overrides.*127\.0\.0\.2=4/);
  });
});
