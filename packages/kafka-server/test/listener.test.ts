// Listeners as Kafka users write them: the listener keys read together (common's listenerSetup,
// through resolveConfig as the cli resolves them), their refusals, and a real KafkaServer bound to
// several named listeners that answers Metadata (kcat) and FindCoordinator with the addresses of
// the listener each request came in on.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig, type BrokerConfig } from '@runnel/common';
import { LocalStore } from '@runnel/metadata';
import { ApiKey, decodeResponse, encodeRequest, ErrorCode, type RequestInputs, type SupportedApiKey } from '@runnel/protocol';
import {
  advertisedAddress, advertisedEndpoints, CoordinatorKeyType, findCoordinatorHandler, KafkaServer, listenerOptions, metadataHandler,
  nodeAddressLookup,
} from '../src/index.ts';

const run = promisify(execFile);

function config(values: Record<string, string>): BrokerConfig {
  return resolveConfig({ overrides: new Map(Object.entries(values)) }).config;
}

/** The ConfigError a configuration is refused with (fails the test when it is accepted). */
function refusal(values: Record<string, string>): ConfigError {
  try {
    resolveConfig({ overrides: new Map(Object.entries(values)) });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`accepted: ${JSON.stringify(values)}`);
}

/** The internal/external pattern users copy from Kafka's Docker examples. */
const DOCKER = {
  'listeners': 'INTERNAL://0.0.0.0:19092,EXTERNAL://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093',
  'advertised.listeners': 'INTERNAL://broker-1:19092,EXTERNAL://localhost:9092',
  'listener.security.protocol.map': 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
  'inter.broker.listener.name': 'INTERNAL',
  'controller.listener.names': 'CONTROLLER',
};

describe('the listener keys', () => {
  it('read the internal/external pattern as Kafka does: controller listeners neither bound nor advertised', () => {
    const c = config(DOCKER);
    const setup = c.listenerSetup;
    expect(setup.client.map((l) => `${l.name}://${l.host}:${l.port}`)).toEqual(['INTERNAL://0.0.0.0:19092', 'EXTERNAL://0.0.0.0:9092']);
    expect(setup.advertised.map((l) => `${l.name}://${l.host}:${l.port} ${l.securityProtocol}`)).toEqual(['INTERNAL://broker-1:19092 PLAINTEXT', 'EXTERNAL://localhost:9092 PLAINTEXT']);
    expect(setup.interBrokerListener).toBe('INTERNAL');
    expect(setup.controllerListeners).toEqual(['CONTROLLER']);
    expect(listenerOptions(c).listeners).toEqual([
      { name: 'INTERNAL', host: '0.0.0.0', port: 19092, securityProtocol: 'PLAINTEXT' },
      { name: 'EXTERNAL', host: '0.0.0.0', port: 9092, securityProtocol: 'PLAINTEXT' },
    ]);
  });

  it('keep the defaults: one PLAINTEXT listener, advertised as bound', () => {
    const c = config({});
    expect(c.listenerSetup.client).toEqual([{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9092, securityProtocol: 'PLAINTEXT' }]);
    expect(c.listenerSetup.advertised).toEqual(c.listenerSetup.client);
    expect(c.listenerSetup.interBrokerListener).toBe('PLAINTEXT');
  });

  it('map controller listeners to PLAINTEXT when the map is left at its default (Kafka KRaft), names in any case', () => {
    const c = config({ 'listeners': 'PLAINTEXT://:9092,CONTROLLER://:9093', 'controller.listener.names': 'controller' });
    expect(c.listenerSetup.securityProtocols.get('CONTROLLER')).toBe('PLAINTEXT');
    expect(c.listenerSetup.client.map((l) => l.name)).toEqual(['PLAINTEXT']);
    const lower = config({ 'listeners': 'internal://:1,external://:2', 'listener.security.protocol.map': 'internal:plaintext,External:PLAINTEXT', 'inter.broker.listener.name': 'internal' });
    expect(lower.listenerSetup.advertised.map((l) => l.name)).toEqual(['INTERNAL', 'EXTERNAL']);
    expect(lower.listenerSetup.interBrokerListener).toBe('INTERNAL');
  });

  it('advertise only advertised.listeners when it is set, as Kafka does', () => {
    const c = config({ ...DOCKER, 'advertised.listeners': 'INTERNAL://broker-1:19092' });
    expect(c.listenerSetup.client.map((l) => l.name)).toEqual(['INTERNAL', 'EXTERNAL']);
    expect(c.listenerSetup.advertised.map((l) => l.name)).toEqual(['INTERNAL']);
  });

  it('let port 0 ("any free port") repeat', () => {
    const c = config({ 'listeners': 'A://127.0.0.1:0,B://127.0.0.1:0', 'listener.security.protocol.map': 'A:PLAINTEXT,B:PLAINTEXT', 'inter.broker.listener.name': 'A' });
    expect(c.listenerSetup.client.map((l) => l.port)).toEqual([0, 0]);
  });

  it('accept SSL listeners (served with TLS) and a controller listener mapped to SSL', () => {
    const c = config({ ...DOCKER, 'listener.security.protocol.map': 'INTERNAL:SSL,EXTERNAL:PLAINTEXT,CONTROLLER:SSL' });
    expect(c.listenerSetup.client.map((l) => [l.name, l.securityProtocol])).toEqual([['INTERNAL', 'SSL'], ['EXTERNAL', 'PLAINTEXT']]);
  });

  it('accept a controller-only configuration when process.roles says so', () => {
    const c = config({ 'process.roles': 'controller', 'listeners': 'CONTROLLER://:9093', 'controller.listener.names': 'CONTROLLER' });
    expect(c.listenerSetup.client).toEqual([]);
  });

  const refusals: Array<[string, Record<string, string>, string, RegExp]> = [
    ['a listener name without a protocol', { 'listeners': 'INTERNAL://127.0.0.1:9092', 'inter.broker.listener.name': 'INTERNAL' }, 'listener.security.protocol.map',
      /^listener\.security\.protocol\.map: no security protocol for listener INTERNAL \(add INTERNAL:PLAINTEXT to /],
    ['a map entry that is not NAME:PROTOCOL', { 'listener.security.protocol.map': 'PLAINTEXT' }, 'listener.security.protocol.map', /^listener\.security\.protocol\.map: "PLAINTEXT" has "PLAINTEXT", which is not NAME:PROTOCOL/],
    ['an unknown protocol', { 'listener.security.protocol.map': 'PLAINTEXT:TLS' }, 'listener.security.protocol.map', /maps PLAINTEXT to TLS, which is not a security protocol/],
    ['a name mapped twice', { 'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,plaintext:SSL' }, 'listener.security.protocol.map', /maps PLAINTEXT twice/],
    ['two listeners on one port', { ...DOCKER, 'listeners': 'INTERNAL://0.0.0.0:9092,EXTERNAL://127.0.0.1:9092,CONTROLLER://0.0.0.0:9093' }, 'listeners',
      /^listeners: INTERNAL and EXTERNAL both use port 9092 \(each listener needs its own port\)$/],
    ['a listener name twice', { 'listeners': 'PLAINTEXT://:1,plaintext://:2' }, 'listeners', /listener name PLAINTEXT appears twice/],
    ['an inter-broker listener that is not a listener', { ...DOCKER, 'inter.broker.listener.name': 'REPLICATION' }, 'inter.broker.listener.name',
      /^inter\.broker\.listener\.name: REPLICATION is not an advertised listener \(advertised: INTERNAL, EXTERNAL\); set it to one of them$/],
    ['named listeners without an inter-broker listener', { ...DOCKER, 'inter.broker.listener.name': '' }, 'inter.broker.listener.name', /is not an advertised listener/],
    ['named listeners and no inter.broker.listener.name', (() => { const { 'inter.broker.listener.name': _, ...rest } = DOCKER; return rest; })(), 'inter.broker.listener.name',
      /^inter\.broker\.listener\.name: unset, so the inter-broker listener is PLAINTEXT \(security\.inter\.broker\.protocol\), which is not an advertised listener \(advertised: INTERNAL, EXTERNAL\)/],
    ['an inter-broker listener that is not advertised', { ...DOCKER, 'advertised.listeners': 'EXTERNAL://localhost:9092' }, 'inter.broker.listener.name', /INTERNAL is not an advertised listener \(advertised: EXTERNAL\)/],
    ['both inter-broker keys', { ...DOCKER, 'security.inter.broker.protocol': 'PLAINTEXT' }, 'inter.broker.listener.name', /^inter\.broker\.listener\.name: set only one of inter\.broker\.listener\.name and security\.inter\.broker\.protocol$/],
    ['the controller listener advertised', { ...DOCKER, 'advertised.listeners': 'INTERNAL://broker-1:19092,EXTERNAL://localhost:9092,CONTROLLER://broker-1:9093' }, 'advertised.listeners',
      /^advertised\.listeners: CONTROLLER is a controller listener \(controller\.listener\.names\); clients never reach controllers$/],
    ['only controller listeners on a node that serves clients', { 'listeners': 'CONTROLLER://:9093', 'controller.listener.names': 'CONTROLLER' }, 'listeners', /^listeners: every listener is a controller listener/],
    ['an advertised name that is not a listener', { ...DOCKER, 'advertised.listeners': 'OUTSIDE://h:1' }, 'advertised.listeners', /^advertised\.listeners: listener OUTSIDE is not in listeners/],
    ['a wildcard advertised host', { 'advertised.listeners': 'PLAINTEXT://0.0.0.0:9092' }, 'advertised.listeners', /advertises 0\.0\.0\.0, which clients cannot connect to/],
  ];
  for (const [what, values, key, message] of refusals) {
    it(`refuse ${what} with one line naming ${key}`, () => {
      const e = refusal(values);
      expect(e.key).toBe(key);
      expect(e.message).toMatch(message);
      expect(e.message).not.toContain('\n');
    });
  }
});

// ------------------------------------------------------------------------------ a real server

/** One request on a fresh connection to `port`, decoded. */
async function call<K extends SupportedApiKey>(port: number, apiKey: K, apiVersion: number, body: RequestInputs[K]) {
  const socket = connect(port, '127.0.0.1');
  try {
    const frame = await new Promise<Buffer>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      socket.on('error', reject);
      socket.on('close', () => reject(new Error('connection closed before the response')));
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) resolve(buf.subarray(4, 4 + buf.readInt32BE(0)));
      });
      socket.write(encodeRequest({ apiKey, apiVersion, correlationId: 7, clientId: 'listener-test' } as never, body as never));
    });
    return decodeResponse(apiKey, apiVersion, frame).body;
  } finally {
    socket.destroy();
  }
}

/** `kcat -L -J` against one address: the broker list a librdkafka client gets there. */
async function kcatBrokers(port: number): Promise<string[]> {
  const { stdout } = await run('kcat', ['-b', `127.0.0.1:${port}`, '-L', '-J', '-m', '10'], { timeout: 20_000 });
  const meta = JSON.parse(stdout) as { brokers: Array<{ id: number; name: string }> };
  return meta.brokers.map((b) => `${b.id} ${b.name}`).sort();
}

describe('a KafkaServer with named listeners', () => {
  let dir: string;
  let store: LocalStore;
  let server: KafkaServer | undefined;
  let blocker: Server | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runnel-listeners-'));
    store = LocalStore.create({ path: join(dir, 'meta.json'), nodeId: 1, clusterId: 'listener-cluster' });
    await store.start();
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
    await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
    blocker = undefined;
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Node 1 serves INTERNAL and EXTERNAL on any free ports; EXTERNAL is advertised as `outside.example`. */
  async function startNode(): Promise<{ internal: number; external: number; c: BrokerConfig }> {
    const c = config({
      'listeners': 'INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0',
      'advertised.listeners': 'INTERNAL://127.0.0.1:0,EXTERNAL://outside.example:29092',
      'listener.security.protocol.map': 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT',
      'inter.broker.listener.name': 'INTERNAL',
    });
    server = KafkaServer.create({
      ...listenerOptions(c),
      addressOf: nodeAddressLookup(store),
      handlers: [
        metadataHandler({ metadata: store, autoCreate: () => false, createTopic: async () => {}, errorCode: () => ErrorCode.UNKNOWN_SERVER_ERROR }),
        findCoordinatorHandler((key) => (key === 'on-2' ? { nodeId: 2, host: 'unused', port: 1 } : { nodeId: 1, host: 'unused', port: 1 })),
      ],
    });
    await server.start();
    const bound = server.listenerAddresses();
    await store.registerBroker({ nodeId: 1, ...advertisedAddress(c, bound), rack: null, endpoints: advertisedEndpoints(c, bound) });
    return { internal: bound.get('INTERNAL')!.port, external: bound.get('EXTERNAL')!.port, c };
  }

  it('binds every listener and advertises each with its own address (port 0 → the bound port)', async () => {
    const { internal, external, c } = await startNode();
    expect([...server!.listenerAddresses().keys()]).toEqual(['INTERNAL', 'EXTERNAL']);
    expect(internal).not.toBe(external);
    expect(advertisedEndpoints(c, server!.listenerAddresses())).toEqual([
      { listener: 'INTERNAL', host: '127.0.0.1', port: internal, securityProtocol: 'PLAINTEXT' },
      { listener: 'EXTERNAL', host: 'outside.example', port: 29092, securityProtocol: 'PLAINTEXT' },
    ]);
    expect(advertisedAddress(c, server!.listenerAddresses())).toEqual({ host: '127.0.0.1', port: internal });
  });

  it('answers kcat with the brokers of the listener it came in on, leaving out nodes without it', async () => {
    const { internal, external } = await startNode();
    // Node 2 has only INTERNAL; node 3 registered one address (no endpoints): it serves every listener there.
    await store.registerBroker({ nodeId: 2, host: 'b2', port: 19093, rack: null, endpoints: [{ listener: 'INTERNAL', host: 'b2', port: 19093, securityProtocol: 'PLAINTEXT' }] });
    await store.registerBroker({ nodeId: 3, host: 'legacy', port: 9999, rack: null });
    expect(await kcatBrokers(internal)).toEqual([`1 127.0.0.1:${internal}`, '2 b2:19093', '3 legacy:9999']);
    expect(await kcatBrokers(external)).toEqual(['1 outside.example:29092', '3 legacy:9999']);
  });

  it('answers FindCoordinator with the coordinator on the request\'s listener, or COORDINATOR_NOT_AVAILABLE when it lacks it', async () => {
    const { internal, external } = await startNode();
    await store.registerBroker({ nodeId: 2, host: 'b2', port: 19093, rack: null, endpoints: [{ listener: 'INTERNAL', host: 'b2', port: 19093, securityProtocol: 'PLAINTEXT' }] });
    const viaInternal = await call(internal, ApiKey.FindCoordinator, 3, { key: 'g', keyType: CoordinatorKeyType.GROUP });
    expect(viaInternal).toMatchObject({ errorCode: ErrorCode.NONE, nodeId: 1, host: '127.0.0.1', port: internal });
    const viaExternal = await call(external, ApiKey.FindCoordinator, 3, { key: 'g', keyType: CoordinatorKeyType.GROUP });
    expect(viaExternal).toMatchObject({ errorCode: ErrorCode.NONE, nodeId: 1, host: 'outside.example', port: 29092 });
    const batch = await call(external, ApiKey.FindCoordinator, 4, { keyType: CoordinatorKeyType.GROUP, coordinatorKeys: ['g', 'on-2'] });
    expect(batch.coordinators).toEqual([
      expect.objectContaining({ key: 'g', nodeId: 1, host: 'outside.example', port: 29092, errorCode: ErrorCode.NONE }),
      expect.objectContaining({ key: 'on-2', nodeId: -1, host: '', port: -1, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: 'the coordinator (node 2) has no listener EXTERNAL' }),
    ]);
    expect(await call(internal, ApiKey.FindCoordinator, 3, { key: 'on-2', keyType: CoordinatorKeyType.GROUP })).toMatchObject({ nodeId: 2, host: 'b2', port: 19093 });
  });

  it('advertises a wildcard listener under this machine\'s host name', async () => {
    const c = config({ 'listeners': 'PLAINTEXT://0.0.0.0:0' });
    server = KafkaServer.create({ ...listenerOptions(c), handlers: [] });
    await server.start();
    const port = server.address().port;
    expect(advertisedEndpoints(c, server.listenerAddresses())).toEqual([{ listener: 'PLAINTEXT', host: hostname(), port, securityProtocol: 'PLAINTEXT' }]);
  });

  it('refuses to start when one listener cannot bind, naming it, and releases the ones it bound', async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', () => resolve()));
    const taken = (blocker.address() as { port: number }).port;
    server = KafkaServer.create({ listeners: [{ name: 'FIRST', host: '127.0.0.1', port: 0 }, { name: 'SECOND', host: '127.0.0.1', port: taken }], handlers: [] });
    const err = await server.start().then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(err?.code).toBe('EADDRINUSE');
    expect(err?.message).toMatch(new RegExp(`^listener SECOND \\(127\\.0\\.0\\.1:${taken}\\): listen EADDRINUSE`));
    expect(() => server!.address()).toThrow(/not listening/);
    server = undefined;
  });
});
