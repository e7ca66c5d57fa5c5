// The listener over real sockets: a real client (kafkajs), pipelining, back-pressure, limits and
// every way a connection gets closed.
import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { Admin } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiKey, decodeResponse, encodeRequest, type Responses } from '@runnel/protocol';
import { defineHandler, KafkaServer, type Handler } from '../src/index.ts';
import { plainUserDigests } from '../src/sasl/plain.ts';

/** A raw Kafka connection that splits the byte stream into response frames. */
class RawClient {
  readonly socket: Socket;
  readonly frames: Buffer[] = [];
  readonly closed: Promise<void>;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readInt32BE(0)) {
        const n = this.buf.readInt32BE(0);
        this.frames.push(this.buf.subarray(4, 4 + n));
        this.buf = this.buf.subarray(4 + n);
      }
      this.wake();
    });
    this.closed = new Promise((resolve) => this.socket.on('close', () => { this.wake(); resolve(); }));
  }

  private wake(): void { for (const w of this.waiters.splice(0)) w(); }

  async ready(): Promise<void> {
    if (!this.socket.connecting) return;
    await new Promise((r) => this.socket.once('connect', r));
  }

  send(...frames: Buffer[]): void { this.socket.write(Buffer.concat(frames)); }

  /** Waits until `n` frames arrived (or the socket closed). */
  async waitFrames(n: number): Promise<Buffer[]> {
    while (this.frames.length < n && !this.socket.destroyed) await new Promise<void>((r) => this.waiters.push(r));
    return this.frames.slice(0, n);
  }

  end(): void { this.socket.destroy(); }
}

const metadata = (port: () => number): Handler => defineHandler({
  api: ApiKey.Metadata,
  versions: [0, 9],
  handle: () => ({ brokers: [{ nodeId: 0, host: '127.0.0.1', port: port() }], clusterId: 'test', controllerId: 0, topics: [] }),
});

let servers: KafkaServer[] = [];
let clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients) c.end();
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
  clients = [];
});

async function start(handlers: (port: () => number) => Handler[], opts: Partial<Parameters<typeof KafkaServer.create>[0]> = {}): Promise<KafkaServer> {
  let server: KafkaServer | undefined;
  const port = () => server!.address().port;
  server = KafkaServer.create({ host: '127.0.0.1', port: 0, handlers: handlers(port), ...opts });
  await server.start();
  servers.push(server);
  return server;
}

async function client(server: KafkaServer): Promise<RawClient> {
  const c = new RawClient(server.address().port);
  clients.push(c);
  await c.ready();
  return c;
}

const metadataReq = (correlationId: number, topic: string, apiVersion = 4) =>
  encodeRequest({ apiKey: ApiKey.Metadata, apiVersion, correlationId, clientId: 't' }, { topics: [{ name: topic }], allowAutoTopicCreation: false });
const apiVersionsReq = (correlationId: number, apiVersion: number) => {
  if (apiVersion <= 4) return encodeRequest({ apiKey: ApiKey.ApiVersions, apiVersion, correlationId, clientId: 't' }, { clientSoftwareName: 'raw', clientSoftwareVersion: '1' });
  const b = Buffer.alloc(4 + 10 + 1);
  b.writeInt32BE(11, 0); b.writeInt16BE(18, 4); b.writeInt16BE(apiVersion, 6); b.writeInt32BE(correlationId, 8); b.writeInt16BE(-1, 12);
  return b;
};

/** Resolvable promises, so tests control completion order without timers. */
function gate<T = void>() {
  let open!: (v: T) => void;
  const p = new Promise<T>((r) => { open = r; });
  return { p, open };
}

describe('KafkaServer', () => {
  it('serves kafkajs: admin.connect(), ApiVersions and Metadata round trips', async () => {
    const server = await start((port) => [metadata(port)]);
    expect(server.apiVersions).toEqual([{ apiKey: 3, minVersion: 0, maxVersion: 9 }, { apiKey: 18, minVersion: 0, maxVersion: 4 }]);
    const kafka = new Kafka({ clientId: 'kjs-test', brokers: [`127.0.0.1:${server.address().port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      expect(cluster).toMatchObject({ clusterId: 'test', controller: 0, brokers: [{ nodeId: 0, host: '127.0.0.1', port: server.address().port }] });
      expect(await admin.listTopics()).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });

  it('serves @platformatic/kafka: ApiVersions v3 (flexible body, v0 header) and flexible Metadata v9', async () => {
    const seen: number[] = [];
    const server = await start((port) => [defineHandler({
      api: ApiKey.Metadata, versions: [0, 9],
      handle: (_req, ctx) => {
        seen.push(ctx.header.apiVersion);
        return { brokers: [{ nodeId: 0, host: '127.0.0.1', port: port() }], clusterId: 'test', controllerId: 0, topics: [] };
      },
    })]);
    const admin = new Admin({ clientId: 'plt-test', bootstrapBrokers: [`127.0.0.1:${server.address().port}`], retries: 0 });
    try {
      const apis = await admin.listApis();
      expect(apis).toEqual(expect.arrayContaining([expect.objectContaining({ apiKey: 3, minVersion: 0, maxVersion: 9 })]));
      const md = await admin.metadata({ topics: [] });
      expect(md.id).toBe('test');
      expect(seen).toContain(9);
    } finally {
      await admin.close();
    }
  });

  it('answers every ApiVersions version 0-4 from the registry', async () => {
    const server = await start((port) => [metadata(port)]);
    const c = await client(server);
    c.send(apiVersionsReq(10, 0), apiVersionsReq(11, 1), apiVersionsReq(12, 2), apiVersionsReq(13, 3), apiVersionsReq(14, 4));
    const frames = await c.waitFrames(5);
    frames.forEach((f, v) => {
      const d = decodeResponse(ApiKey.ApiVersions, v, f);
      expect(d.correlationId).toBe(10 + v);
      expect(d.body.errorCode).toBe(0);
      expect(d.body.apiKeys).toEqual(server.apiVersions);
    });
    // v3 has a flexible body but a v0 response header: the body starts right after the correlation id.
    expect(frames[3]!.readInt16BE(4)).toBe(0);
    expect(frames[4]!.readInt16BE(4)).toBe(0);
  });

  it('answers an unsupported ApiVersions version with the v0-format error and keeps the connection', async () => {
    const server = await start((port) => [metadata(port)]);
    const c = await client(server);
    c.send(apiVersionsReq(7, 9));
    const [f] = await c.waitFrames(1);
    expect(Buffer.from(f!).toString('hex')).toBe('00000007' + '0023' + '00000001' + '0012' + '0000' + '0004');
    c.send(apiVersionsReq(8, 3));
    const frames = await c.waitFrames(2);
    expect(decodeResponse(ApiKey.ApiVersions, 3, frames[1]!).correlationId).toBe(8);
  });

  it('keeps responses in request order when handlers finish out of order', async () => {
    const gates = { a: gate(), b: gate(), c: gate() };
    const started: string[] = [];
    const server = await start((port) => [defineHandler({
      api: ApiKey.Metadata, versions: [0, 9],
      handle: async (req) => {
        const name = req.topics![0]!.name as 'a' | 'b' | 'c';
        started.push(name);
        if (started.length === 3) gates.c.open(); // all three run concurrently
        await gates[name].p;
        if (name === 'c') gates.b.open();
        if (name === 'b') gates.a.open();
        return { brokers: [{ nodeId: 0, host: 'h', port: port() }], topics: [{ errorCode: 0, name, partitions: [] }] };
      },
    })]);
    const c = await client(server);
    c.send(metadataReq(1, 'a'), metadataReq(2, 'b'), metadataReq(3, 'c'));
    const frames = await c.waitFrames(3);
    expect(started).toEqual(['a', 'b', 'c']);
    expect(frames.map((f) => decodeResponse(ApiKey.Metadata, 4, f)).map((d) => [d.correlationId, d.body.topics[0]!.name])).toEqual([[1, 'a'], [2, 'b'], [3, 'c']]);
  });

  it('sends nothing for a handler that returns undefined (acks=0), and the next response still arrives in order', async () => {
    const server = await start((port) => [
      metadata(port),
      defineHandler({
        api: ApiKey.Produce, versions: [3, 7],
        handle: (req): Responses[typeof ApiKey.Produce] | undefined => (req.acks === 0 ? undefined : {
          responses: req.topicData.map((t) => ({ name: t.name, partitionResponses: t.partitionData.map((p) => ({ index: p.index, errorCode: 0, baseOffset: 0n })) })),
        }),
      }),
    ]);
    const c = await client(server);
    const produce = (correlationId: number, acks: number) => encodeRequest({ apiKey: ApiKey.Produce, apiVersion: 7, correlationId, clientId: 't' },
      { acks, timeoutMs: 100, topicData: [{ name: 't', partitionData: [{ index: 0, records: null }] }] });
    c.send(produce(1, 0), metadataReq(2, 'x'), produce(3, 1), produce(4, 0), metadataReq(5, 'y'));
    const frames = await c.waitFrames(3);
    expect(frames.map((f) => f.readInt32BE(0))).toEqual([2, 3, 5]);
    expect(decodeResponse(ApiKey.Produce, 7, frames[1]!).body.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
  });

  it('answers thousands of pipelined requests with a synchronous handler in order', async () => {
    const server = await start((port) => [metadata(port)], { maxInFlightPerConnection: 1000000 });
    const c = await client(server);
    const n = 5000;
    c.send(...Array.from({ length: n }, (_, i) => metadataReq(i, 't')));
    const frames = await c.waitFrames(n);
    expect(frames.map((f) => f.readInt32BE(0))).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('runs at most maxInFlightPerConnection handlers at once and still answers everything in order', async () => {
    let running = 0;
    let maxRunning = 0;
    const waiting: (() => void)[] = [];
    const server = await start((port) => [defineHandler({
      api: ApiKey.Metadata, versions: [0, 9],
      handle: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        if (running === 2) for (const w of waiting.splice(0)) w();
        else await new Promise<void>((r) => waiting.push(r));
        running--;
        return { brokers: [{ nodeId: 0, host: 'h', port: port() }], topics: [] };
      },
    })], { maxInFlightPerConnection: 2 });
    const c = await client(server);
    c.send(...Array.from({ length: 8 }, (_, i) => metadataReq(i, 't')));
    const frames = await c.waitFrames(8);
    expect(frames.map((f) => f.readInt32BE(0))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(maxRunning).toBe(2);
  });

  it('stops reading requests while the client does not read its responses, and resumes on drain', async () => {
    let handled = 0;
    const big = Buffer.alloc(1 << 20, 1);
    const server = await start(() => [defineHandler({
      api: ApiKey.SyncGroup, versions: [0, 4],
      handle: () => { handled++; return { errorCode: 0, assignment: big }; },
    })]);
    const c = await client(server);
    c.socket.pause();
    const n = 64;
    c.send(...Array.from({ length: n }, (_, i) => encodeRequest({ apiKey: ApiKey.SyncGroup, apiVersion: 3, correlationId: i, clientId: 't' }, { groupId: 'g', generationId: 1, memberId: 'm', assignments: [] })));
    // Wait until the server stops making progress, then check it stopped well before the end.
    let last = -1;
    while (handled !== last) { last = handled; await new Promise((r) => setTimeout(r, 100)); }
    expect(handled).toBeLessThan(n);
    c.socket.resume();
    const frames = await c.waitFrames(n);
    expect(frames.map((f) => f.readInt32BE(0))).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(handled).toBe(n);
  });

  it('queuedMaxRequestBytes: a frame is reserved whole, held until answered or closed, and others wait (paused, not refused)', async () => {
    let blocker = gate();
    const server = await start((port) => [defineHandler({
      api: ApiKey.Metadata, versions: [0, 9],
      handle: async (req: { topics: Array<{ name: string | null }> | null }) => {
        if (req.topics?.[0]?.name?.startsWith('long')) await blocker.p;
        return { brokers: [{ nodeId: 0, host: 'h', port: port() }], topics: [] };
      },
    })], { queuedMaxRequestBytes: 100 });
    // Only before asserting that something did not happen (a slow machine cannot make it pass wrongly).
    const settle = () => new Promise((r) => setTimeout(r, 100));
    // Larger than the whole budget: read anyway, because nothing else is reserved.
    const a = await client(server);
    const big = metadataReq(1, `long${'x'.repeat(200)}`);
    a.send(big);
    await vi.waitFor(() => expect(server.budget.used).toBe(big.length - 4));
    // A small request does not fit beside it: its connection waits, unanswered and open.
    const b = await client(server);
    b.send(metadataReq(2, 't'));
    await vi.waitFor(() => expect(server.budget.waiting).toBe(1));
    await settle();
    expect([b.frames.length, server.budget.waiting, b.socket.destroyed]).toEqual([0, 1, false]);
    blocker.open();
    expect((await a.waitFrames(1)).length).toBe(1);
    expect(decodeResponse(ApiKey.Metadata, 4, (await b.waitFrames(1))[0]!).correlationId).toBe(2);
    expect(server.budget.used).toBe(0);

    // A stalled partial frame holds its announced size until its connection closes, not longer.
    blocker = gate();
    const stalled = await client(server);
    const prefix = Buffer.alloc(4);
    prefix.writeInt32BE(1000, 0);
    stalled.send(prefix, Buffer.alloc(10));
    await vi.waitFor(() => expect(server.budget.used).toBe(1000));
    const c = await client(server);
    c.send(metadataReq(3, 't'));
    await vi.waitFor(() => expect(server.budget.waiting).toBe(1));
    await settle();
    expect(c.frames.length).toBe(0);
    stalled.end();
    expect(decodeResponse(ApiKey.Metadata, 4, (await c.waitFrames(1))[0]!).correlationId).toBe(3);
    expect([server.budget.used, server.budget.waiting]).toEqual([0, 0]);
  });

  it('queuedMaxRequestBytes: a large frame overtaken by small ones is read once less than the budget is reserved, never starved', async () => {
    // The connection waiting longest, once a later frame got in ahead of it, is read as soon as less
    // than the limit is reserved (as Kafka's non-strict memory pool), not only once it fits beside
    // what is reserved, which overlapping small frames can put off forever.
    const holds = new Map<string, ReturnType<typeof gate<void>>>();
    const server = await start((port) => [defineHandler({
      api: ApiKey.Metadata, versions: [0, 9],
      handle: async (req: { topics: Array<{ name: string | null }> | null }) => {
        const name = req.topics?.[0]?.name ?? '';
        if (holds.has(name)) await holds.get(name)!.p;
        return { brokers: [{ nodeId: 0, host: 'h', port: port() }], topics: [] };
      },
    })], { queuedMaxRequestBytes: 4 * (metadataReq(1, 'hold-0').length - 4) });
    const small = metadataReq(1, 'hold-0').length - 4;
    const limit = server.budget.limit;
    // Its own size is the whole budget: it fits only beside nothing under a strict rule.
    const bigName = `big-${'x'.repeat(limit)}`.slice(0, limit - (metadataReq(1, '').length - 4));
    expect(metadataReq(1, bigName).length - 4).toBe(limit);
    const hold = async (i: number) => {
      holds.set(`hold-${i}`, gate());
      const c = await client(server);
      c.send(metadataReq(i, `hold-${i}`));
      return c;
    };
    let held = await hold(0);
    await vi.waitFor(() => expect(server.budget.used).toBe(small));
    const b = await client(server);
    b.send(metadataReq(100, bigName));
    // Small requests keep overlapping: one is always in handling while the big one waits.
    for (let i = 1; i <= 5 && b.frames.length === 0; i++) {
      const next = await hold(i);
      await vi.waitFor(() => expect(server.budget.used).toBeGreaterThanOrEqual(2 * small));
      holds.get(`hold-${i - 1}`)!.open();
      expect((await held.waitFrames(1)).length).toBe(1);
      held = next;
    }
    await vi.waitFor(() => expect(b.frames.length).toBe(1), { timeout: 10_000 });
    expect(decodeResponse(ApiKey.Metadata, 4, b.frames[0]!).correlationId).toBe(100);
    for (const g of holds.values()) g.open();
  });

  it('closes a connection announcing an oversize frame without allocating it, other connections keep working', async () => {
    const server = await start((port) => [metadata(port)], { socketRequestMaxBytes: 1 << 20 });
    const good = await client(server);
    const rssBefore = process.memoryUsage().rss;
    for (const size of [0x7fffffff, (1 << 20) + 1, -1]) {
      const bad = await client(server);
      const prefix = Buffer.alloc(4);
      prefix.writeInt32BE(size, 0);
      bad.send(prefix, Buffer.alloc(64 * 1024, 1));
      await bad.closed;
    }
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
    good.send(metadataReq(1, 't'));
    const [f] = await good.waitFrames(1);
    expect(decodeResponse(ApiKey.Metadata, 4, f!).correlationId).toBe(1);
  });

  it('closes the connection on a garbage frame, an unknown API, an unsupported version without an error code to answer or a truncated body', async () => {
    const server = await start((port) => [metadata(port)]);
    const truncated = metadataReq(1, 'topic');
    const cases: Buffer[] = [
      Buffer.from([0, 0, 0, 5, 1, 2, 3, 4, 5]),
      // Fetch v6 has no top-level error code (v7+ has: that answers UNSUPPORTED_VERSION, test/unsupported-apis.test.ts).
      encodeRequest({ apiKey: ApiKey.Fetch, apiVersion: 6, correlationId: 1, clientId: null }, { maxWaitMs: 0, minBytes: 0, isolationLevel: 0, topics: [] }),
      (() => { const b = apiVersionsReq(1, 9); b.writeInt16BE(999, 4); return b; })(),
      (() => { const b = metadataReq(1, 't', 4); b.writeInt16BE(12, 6); return b; })(),
      Buffer.concat([(() => { const p = Buffer.alloc(4); p.writeInt32BE(truncated.length - 7, 0); return p; })(), truncated.subarray(4, truncated.length - 3)]),
    ];
    for (const frame of cases) {
      const c = await client(server);
      c.send(frame);
      await c.closed;
      expect(c.frames).toEqual([]);
    }
    const ok = await client(server);
    ok.send(metadataReq(2, 't'));
    expect((await ok.waitFrames(1)).length).toBe(1);
  });

  it('closes the connection when a handler throws, without stopping the server', async () => {
    const server = await start((port) => [defineHandler({
      api: ApiKey.Metadata, versions: [0, 9],
      handle: async (req) => {
        if (req.topics![0]!.name === 'boom') throw new Error('bug');
        return { brokers: [{ nodeId: 0, host: 'h', port: port() }], topics: [] };
      },
    })]);
    const c = await client(server);
    c.send(metadataReq(1, 'boom'));
    await c.closed;
    const ok = await client(server);
    ok.send(metadataReq(2, 'fine'));
    expect((await ok.waitFrames(1)).length).toBe(1);
  });

  it('refuses connections beyond maxConnections and closes idle ones', async () => {
    const server = await start((port) => [metadata(port)], { maxConnections: 1, connectionsMaxIdleMs: 300 });
    const first = await client(server);
    first.send(metadataReq(1, 't'));
    await first.waitFrames(1);
    const second = await client(server);
    await second.closed;
    expect(second.frames).toEqual([]);
    await first.closed; // idle for connectionsMaxIdleMs
    const third = await client(server);
    third.send(metadataReq(2, 't'));
    expect((await third.waitFrames(1)).length).toBe(1);
  });

  it('does not close a connection as idle while its handler is still running (long poll)', async () => {
    const server = await start((port) => [defineHandler({
      api: ApiKey.Metadata, versions: [0, 9],
      handle: async () => {
        await new Promise((r) => setTimeout(r, 400)); // longer than connectionsMaxIdleMs
        return { brokers: [{ nodeId: 0, host: 'h', port: port() }], topics: [] };
      },
    })], { connectionsMaxIdleMs: 100 });
    const c = await client(server);
    c.send(metadataReq(1, 't'));
    const frames = await c.waitFrames(1);
    expect(frames.map((f) => f.readInt32BE(0))).toEqual([1]);
    await c.closed; // and once nothing runs, idleness closes it
  });

  it('reassembles frames split across many small writes', async () => {
    const server = await start((port) => [metadata(port)]);
    const c = await client(server);
    const bytes = Buffer.concat([metadataReq(1, 'a'), metadataReq(2, 'b')]);
    for (let i = 0; i < bytes.length; i += 3) {
      c.socket.write(bytes.subarray(i, i + 3));
      await new Promise((r) => setImmediate(r));
    }
    const frames = await c.waitFrames(2);
    expect(frames.map((f) => f.readInt32BE(0))).toEqual([1, 2]);
  });

  it('reads nothing more from a connection whose authentication failed while its close is delayed', async () => {
    const server = await start(() => [], {
      listeners: [{ name: 'SASL', host: '127.0.0.1', port: 0, securityProtocol: 'SASL_PLAINTEXT' }],
      sasl: {
        mechanisms: () => ['PLAIN'], plainUsers: () => plainUserDigests(new Map([['alice', 'alice-secret']])), scramCredential: () => undefined,
        maxReceiveSize: 524288, failedAuthenticationDelayMs: 5000, reauthMs: 0,
      },
    });
    const c = await client(server);
    c.send(encodeRequest({ apiKey: ApiKey.SaslHandshake, apiVersion: 1, correlationId: 1, clientId: 't' }, { mechanism: 'PLAIN' }));
    await c.waitFrames(1);
    c.send(encodeRequest({ apiKey: ApiKey.SaslAuthenticate, apiVersion: 2, correlationId: 2, clientId: 't' }, { authBytes: Buffer.from('\0alice\0wrong') }));
    await new Promise((r) => setTimeout(r, 200));
    // 64 MiB more during the delay: the server must leave them in the socket (paused), not buffer
    // them; what the kernel holds on both sides is a few MiB, the rest stays in the client.
    const chunk = Buffer.alloc(1 << 20, 0x41);
    for (let i = 0; i < 64; i++) c.socket.write(chunk);
    await new Promise((r) => setTimeout(r, 1500));
    expect(c.socket.destroyed).toBe(false);
    expect(c.socket.writableLength).toBeGreaterThan(32 << 20);
  });

  it('rejects handler declarations the schemas cannot serve', () => {
    const h = (api: number, versions: [number, number]) => ({ api, versions, handle: () => undefined });
    expect(() => KafkaServer.create({ host: '127.0.0.1', port: 0, handlers: [h(ApiKey.ApiVersions, [0, 3])] })).toThrow(/built into/);
    expect(() => KafkaServer.create({ host: '127.0.0.1', port: 0, handlers: [h(ApiKey.Produce, [0, 13])] })).toThrow(/outside/);
    expect(() => KafkaServer.create({ host: '127.0.0.1', port: 0, handlers: [h(ApiKey.Produce, [3, 7]), h(ApiKey.Produce, [3, 7])] })).toThrow(/two handlers/);
    expect(() => KafkaServer.create({ host: '127.0.0.1', port: 0, handlers: [h(ApiKey.LeaderAndIsr, [0, 1])] })).toThrow(/no schema/);
  });
});
