import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { hostname } from 'node:os';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { RunnelError } from '@runnel/common';
import { MAX_IN_FLIGHT_PER_CONNECTION } from '../src/server.ts';
import { parseAddress, RpcClient, RpcError, RpcServer, type ReadRequest, type ReadResponse, type RpcHandlers } from '../src/index.ts';
import { envelopeCodec, methodSchema } from '../src/schema.ts';
import { frameHeader, FrameReader } from '../src/frame.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(handlers: RpcHandlers, o: { port?: number; maxFrameBytes?: number } = {}): Promise<RpcServer> {
  const server = RpcServer.create({ host: '127.0.0.1', port: o.port ?? 0, handlers, maxFrameBytes: o.maxFrameBytes });
  await server.start();
  cleanups.push(() => server.stop());
  return server;
}

function clientFor(server: RpcServer, o: { requestTimeoutMs?: number; maxFrameBytes?: number } = {}): RpcClient {
  const client = RpcClient.create({ ...server.address(), ...o });
  cleanups.push(() => client.close());
  return client;
}

const read = (offset: bigint): ReadRequest => ({ topic: 't', partition: 0, offset, maxBytes: 100, coordinatorEpoch: -1 });
const echoRead: RpcHandlers = {
  'broker.read': (req) => ({ records: Buffer.from(req.topic), highWatermark: req.offset, logStartOffset: 0n }),
};

/** Resolves with the RpcError a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError);
    return err as RpcError;
  }
  throw new Error('expected the call to fail');
}

/** A raw TCP connection to the server, for sending bytes no RpcClient would. */
async function rawSocket(server: RpcServer): Promise<Socket> {
  const socket = connect(server.address());
  cleanups.push(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

describe('parseAddress', () => {
  it('parses host:port, bracketed IPv6 and port 0', () => {
    expect(parseAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseAddress('broker-1.local:9093')).toEqual({ host: 'broker-1.local', port: 9093 });
    expect(parseAddress('[::1]:7000')).toEqual({ host: '::1', port: 7000 });
  });

  it('refuses anything else with BAD_ADDRESS', () => {
    for (const bad of ['', 'host', ':9000', 'host:', 'host:65536', 'host:-1', 'host:12a', '::1:9000', 'a b:1']) {
      expect(() => parseAddress(bad), bad).toThrow(expect.objectContaining({ code: 'BAD_ADDRESS' }));
    }
  });
});

describe('calls in flight per connection', () => {
  it('stops reading a connection at the limit and resumes as calls finish', async () => {
    let started = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => { open = resolve; });
    const server = await startServer({
      'broker.read': async (req) => {
        started++;
        await gate;
        return { records: Buffer.alloc(0), highWatermark: req.offset, logStartOffset: 0n };
      },
    });
    const client = clientFor(server);
    const total = MAX_IN_FLIGHT_PER_CONNECTION + 44;
    const calls = Array.from({ length: total }, (_, i) => client.call('broker.read', read(BigInt(i))));
    for (let i = 0; i < 200 && started < MAX_IN_FLIGHT_PER_CONNECTION; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // room for any call past the limit to start (none may)
    expect(started).toBe(MAX_IN_FLIGHT_PER_CONNECTION);
    open();
    const answers = await Promise.all(calls);
    expect(answers.map((a) => a.highWatermark)).toEqual(Array.from({ length: total }, (_, i) => BigInt(i)));
    expect(started).toBe(total);
  });
});

describe('advertisedAddress', () => {
  it('is the bound address, with the host name in place of a wildcard host', async () => {
    const local = await startServer(echoRead);
    expect(local.advertisedAddress()).toEqual(local.address());
    const wildcard = RpcServer.create({ host: '0.0.0.0', port: 0, handlers: echoRead });
    await wildcard.start();
    cleanups.push(() => wildcard.stop());
    expect(wildcard.advertisedAddress()).toEqual({ host: hostname(), port: wildcard.address().port });
  });
});

describe('calls', () => {
  it('matches answers to calls by id when the server answers the later calls first', async () => {
    const n = 20;
    const waiting: { req: ReadRequest; answer: (r: ReadResponse) => void }[] = [];
    let allArrived!: () => void;
    const arrived = new Promise<void>((resolve) => (allArrived = resolve));
    const server = await startServer({
      'broker.read': (req) =>
        new Promise<ReadResponse>((answer) => {
          waiting.push({ req, answer });
          if (waiting.length === n) allArrived();
        }),
    });
    const client = clientFor(server);
    const order: number[] = [];
    const calls = Array.from({ length: n }, (_, i) =>
      client.call('broker.read', read(BigInt(i))).then((res) => {
        order.push(i);
        return res;
      }),
    );
    await arrived;
    // Answer in reverse order, one per macrotask, so each answer reaches the client on its own.
    for (const { req, answer } of [...waiting].reverse()) {
      answer({ records: Buffer.from(`answer ${req.offset}`), highWatermark: req.offset * 10n, logStartOffset: req.offset });
      await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.all(calls);
    results.forEach((res, i) => {
      expect(res.highWatermark).toBe(BigInt(i) * 10n);
      expect(res.records.toString()).toBe(`answer ${i}`);
    });
    expect(order).toEqual(Array.from({ length: n }, (_, i) => n - 1 - i));
  });

  it('carries a thrown error code, message and retriable back as REMOTE', async () => {
    const server = await startServer({
      'controller.createTopic': (req) => {
        throw new RunnelError('TOPIC_ALREADY_EXISTS', `topic '${req.name}' already exists`);
      },
      'controller.heartbeat': async () => {
        throw new RunnelError('NOT_CONTROLLER', 'standby', { retriable: true });
      },
      'controller.deleteTopic': () => {
        throw new TypeError('boom');
      },
    });
    const client = clientFor(server);
    const exists = await rejection(client.call('controller.createTopic', {
      name: 'dup', partitions: 1, replicationFactor: 1, configs: {}, internal: false, assignments: [],
    }));
    expect(exists).toMatchObject({ code: 'REMOTE', remoteCode: 'TOPIC_ALREADY_EXISTS', message: "topic 'dup' already exists", retriable: false });
    const standby = await rejection(client.call('controller.heartbeat', { nodeId: 1, brokerEpoch: 1 }));
    expect(standby).toMatchObject({ code: 'REMOTE', remoteCode: 'NOT_CONTROLLER', message: 'standby', retriable: true });
    const internal = await rejection(client.call('controller.deleteTopic', { name: 'x' }));
    expect(internal).toMatchObject({ code: 'REMOTE', remoteCode: 'INTERNAL', message: 'boom', retriable: false });
  });

  it('answers UNKNOWN_METHOD for a method without a handler, and refuses one outside the schema', async () => {
    const server = await startServer(echoRead);
    const client = clientFor(server);
    const missing = await rejection(client.call('broker.append', { topic: 't', partition: 0, records: Buffer.alloc(1), coordinatorEpoch: -1 }));
    expect(missing).toMatchObject({ code: 'UNKNOWN_METHOD', remoteCode: 'UNKNOWN_METHOD' });
    const outside = await rejection(client.call('broker.nope' as 'broker.read', read(0n)));
    expect(outside).toMatchObject({ code: 'UNKNOWN_METHOD', remoteCode: undefined });
    // The connection is still good.
    expect((await client.call('broker.read', read(5n))).highWatermark).toBe(5n);
  });

  it('times out a call without an answer, drops the late answer, and keeps the connection', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const server = await startServer({
      'broker.read': async (req) => {
        if (req.offset === 1n) await released;
        return { records: Buffer.alloc(0), highWatermark: req.offset, logStartOffset: 0n };
      },
    });
    const client = clientFor(server);
    const timedOut = await rejection(client.call('broker.read', read(1n), { timeoutMs: 50 }));
    expect(timedOut).toMatchObject({ code: 'TIMEOUT', retriable: true });
    release();
    // The late answer (id of the first call) arrives now; the next call must get its own.
    for (let i = 2n; i < 5n; i++) expect((await client.call('broker.read', read(i))).highWatermark).toBe(i);
  });

  it('refuses a request that does not encode, without touching the connection', async () => {
    const server = await startServer(echoRead);
    const client = clientFor(server);
    for (const bad of [{ ...read(0n), offset: 2n ** 64n }, { ...read(0n), offset: 1.5 }, null]) {
      expect(await rejection(client.call('broker.read', bad as ReadRequest))).toMatchObject({ code: 'BAD_FRAME' });
    }
    expect((await client.call('broker.read', read(4n))).highWatermark).toBe(4n);
  });

  it('refuses a request over its maxFrameBytes before sending it', async () => {
    const server = await startServer({ 'broker.append': () => ({ baseOffset: 0n, lastOffset: 0n }) });
    const client = clientFor(server, { maxFrameBytes: 1024 });
    const big = { topic: 't', partition: 0, records: Buffer.alloc(2000), coordinatorEpoch: -1 };
    expect(await rejection(client.call('broker.append', big))).toMatchObject({ code: 'FRAME_TOO_LARGE' });
    expect(await client.call('broker.append', { ...big, records: Buffer.alloc(10) })).toEqual({ baseOffset: 0n, lastOffset: 0n });
  });

  it('answers FRAME_TOO_LARGE when the answer would be over the server limit', async () => {
    const server = await startServer({
      'broker.read': () => ({ records: Buffer.alloc(5000), highWatermark: 0n, logStartOffset: 0n }),
    }, { maxFrameBytes: 1024 });
    const client = clientFor(server);
    expect(await rejection(client.call('broker.read', read(0n)))).toMatchObject({ code: 'REMOTE', remoteCode: 'FRAME_TOO_LARGE' });
  });
});

describe('connections', () => {
  it('fails calls with UNAVAILABLE when nothing listens', async () => {
    const server = await startServer({});
    const { port } = server.address();
    await server.stop();
    const client = RpcClient.create({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    expect(await rejection(client.call('broker.read', read(0n)))).toMatchObject({ code: 'UNAVAILABLE', retriable: true });
  });

  it('fails calls in flight with UNAVAILABLE when the server stops, and reconnects to its restart', async () => {
    const first = await startServer({ ...echoRead, 'broker.offsets': () => new Promise(() => {}) });
    const { port } = first.address();
    const client = clientFor(first);
    expect((await client.call('broker.read', read(1n))).highWatermark).toBe(1n);

    const inFlight = client.call('broker.offsets', { partitions: [] });
    await new Promise((r) => setTimeout(r, 20)); // let the call reach the server
    await first.stop();
    expect(await rejection(inFlight)).toMatchObject({ code: 'UNAVAILABLE', retriable: true });
    expect(await rejection(client.call('broker.read', read(2n)))).toMatchObject({ code: 'UNAVAILABLE', retriable: true });

    await startServer(echoRead, { port });
    expect((await client.call('broker.read', read(3n))).highWatermark).toBe(3n);
  });

  it('fails calls with CLOSED after close()', async () => {
    const server = await startServer({ 'broker.offsets': () => new Promise(() => {}) });
    const client = clientFor(server);
    const inFlight = client.call('broker.offsets', { partitions: [] });
    await new Promise((r) => setTimeout(r, 20));
    client.close();
    expect(await rejection(inFlight)).toMatchObject({ code: 'CLOSED' });
    expect(await rejection(client.call('broker.offsets', { partitions: [] }))).toMatchObject({ code: 'CLOSED' });
  });

  it('closes a connection whose length prefix is over the limit, before reading its body, and keeps serving', async () => {
    const server = await startServer(echoRead, { maxFrameBytes: 1024 });
    const client = clientFor(server);
    expect((await client.call('broker.read', read(1n))).highWatermark).toBe(1n);

    const raw = await rawSocket(server);
    raw.write(frameHeader(1025)); // only the prefix: the server must not wait for the body
    await once(raw, 'close');

    const huge = await rawSocket(server);
    huge.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await once(huge, 'close');

    expect((await client.call('broker.read', read(2n))).highWatermark).toBe(2n);
    const other = clientFor(server);
    expect((await other.call('broker.read', read(3n))).highWatermark).toBe(3n);
  });

  it('closes a connection that sends garbage or a response, and keeps serving', async () => {
    const server = await startServer(echoRead);
    const client = clientFor(server);
    expect((await client.call('broker.read', read(1n))).highWatermark).toBe(1n);

    // Field 0x1fffffff with wire type 7: not a protobuf message.
    const garbage = await rawSocket(server);
    garbage.write(Buffer.concat([frameHeader(8), Buffer.alloc(8, 0xff)]));
    await once(garbage, 'close');

    const response = await rawSocket(server);
    const body = envelopeCodec.encode({ id: 1, method: 'broker.read', payload: Buffer.alloc(0), response: true, error: null, attachments: [] });
    response.write(Buffer.concat([frameHeader(body.length), body]));
    await once(response, 'close');

    expect((await client.call('broker.read', read(2n))).highWatermark).toBe(2n);
  });

  it('answers BAD_FRAME to a call whose payload does not decode, on a connection that stays open', async () => {
    const server = await startServer(echoRead);
    const raw = await rawSocket(server);
    const reader = new FrameReader(1 << 20);
    const frames: Buffer[] = [];
    raw.on('data', (chunk: Buffer) => frames.push(...reader.push(chunk)));
    const send = (id: number, payload: Uint8Array): void => {
      const body = envelopeCodec.encode({ id, method: 'broker.read', payload: payload as Buffer, response: false, error: null, attachments: [] });
      raw.write(Buffer.concat([frameHeader(body.length), body]));
    };
    send(7, Buffer.alloc(4, 0xff));
    send(8, methodSchema('broker.read')!.request.encode(read(42n)));
    while (frames.length < 2) await once(raw, 'data');
    const [bad, good] = frames.map((f) => envelopeCodec.decode(f));
    expect(bad).toMatchObject({ id: 7, response: true, error: { code: 'BAD_FRAME' } });
    expect(good).toMatchObject({ id: 8, response: true, error: null, attachments: [] });
    expect((methodSchema('broker.read')!.response.decode(good.payload) as ReadResponse).highWatermark).toBe(42n);
  });

  it('fails the call and reconnects when the server sends a frame that does not decode', async () => {
    let connections = 0;
    const fake: Server = createServer((socket) => {
      connections++;
      const reader = new FrameReader(1 << 20);
      socket.on('data', (chunk: Buffer) => {
        for (const frame of reader.push(chunk)) {
          const call = envelopeCodec.decode(frame);
          const body = connections === 1
            ? Buffer.alloc(8, 0xff)
            : envelopeCodec.encode({
                id: call.id, method: call.method, response: true, error: null, attachments: [],
                payload: methodSchema('broker.read')!.response.encode({ records: Buffer.alloc(0), highWatermark: 9n, logStartOffset: 0n }) as Buffer,
              });
          socket.write(Buffer.concat([frameHeader(body.length), body]));
        }
      });
    });
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    cleanups.push(() => new Promise((resolve) => fake.close(resolve)));
    const client = RpcClient.create({ host: '127.0.0.1', port: (fake.address() as AddressInfo).port });
    cleanups.push(() => client.close());
    expect(await rejection(client.call('broker.read', read(0n)))).toMatchObject({ code: 'UNAVAILABLE', retriable: true });
    expect((await client.call('broker.read', read(0n))).highWatermark).toBe(9n);
    expect(connections).toBe(2);
  });

  it('survives random bytes from many connections and keeps answering', async () => {
    const server = await startServer(echoRead, { maxFrameBytes: 4096 });
    const client = clientFor(server);
    const frame = (body: Uint8Array): Buffer => Buffer.concat([frameHeader(body.length), body]);
    const stream = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), // anything at all
      fc.uint8Array({ maxLength: 64 }).map(frame), // a well-framed body that is probably not an Envelope
      fc.record({ id: fc.nat(), method: fc.constantFrom('broker.read', 'broker.append', 'x'), payload: fc.uint8Array({ maxLength: 32 }) })
        .map(({ id, method, payload }) => frame(envelopeCodec.encode({ id, method, payload: Buffer.from(payload), response: false, error: null, attachments: [] }))),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(stream, { minLength: 1, maxLength: 4 }), async (chunks) => {
        const raw = await rawSocket(server);
        raw.on('error', () => {});
        raw.resume();
        for (const chunk of chunks) raw.write(chunk);
        raw.end();
        await once(raw, 'close');
        expect((await client.call('broker.read', read(1n))).highWatermark).toBe(1n);
      }),
      { numRuns: 100 },
    );
  });
});
