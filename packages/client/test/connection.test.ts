/**
 * Connection framing, pipelining, errors and back-pressure against a tiny in-test server that
 * speaks just enough Kafka (ApiVersions and Metadata); the real broker is in client.test.ts.
 */
import { Buffer } from 'node:buffer';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, encodeApiVersionsUnsupported, encodeResponse, peekRequestHeader } from '@runnel/protocol';
import { ClientError, Connection } from '../src/index.ts';

type Handler = (frame: Buffer, socket: Socket) => void;

/** Reads request frames and hands each to `handler`. */
async function fakeServer(handler: Handler): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
        const size = buf.readInt32BE(0);
        handler(buf.subarray(4, 4 + size), socket);
        buf = buf.subarray(4 + size);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, sockets };
}

/** A Metadata v0 response whose only topic is named after the correlation id (so answers are checkable). */
function metadataAnswer(correlationId: number): Buffer {
  return encodeResponse(ApiKey.Metadata, 0, correlationId, { brokers: [], topics: [{ errorCode: 0, name: `t${correlationId}`, partitions: [] }] });
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function setup(handler: Handler, options: Partial<Parameters<typeof Connection.connect>[0]> = {}) {
  const fake = await fakeServer(handler);
  servers.push(fake.server);
  const conn = await Connection.connect({ host: '127.0.0.1', port: fake.port, negotiate: false, ...options });
  return { conn, fake };
}

describe('Connection', () => {
  it('pipelines many requests and matches responses that arrive in arbitrary pieces', async () => {
    const pending: Buffer[] = [];
    let flushing = false;
    const { conn } = await setup((frame, socket) => {
      pending.push(metadataAnswer(peekRequestHeader(frame).correlationId));
      if (flushing) return;
      flushing = true;
      setImmediate(() => {
        // Concatenate every queued response and write it back in chunks of 1..97 bytes.
        const all = Buffer.concat(pending.splice(0));
        flushing = false;
        for (let i = 0, step = 1; i < all.length; i += step, step = (step * 7) % 97 + 1) socket.write(all.subarray(i, i + step));
      });
    });
    const answers = await Promise.all(Array.from({ length: 500 }, () => conn.request(ApiKey.Metadata, 0, { topics: [] })));
    const names = answers.map((a) => Number(a.topics[0]!.name!.slice(1)));
    expect(names).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(conn.inFlightCount).toBe(0);
    conn.close();
  });

  it('fails every in-flight request with PROTOCOL when a correlation id is out of order', async () => {
    const { conn } = await setup((frame, socket) => {
      const { correlationId } = peekRequestHeader(frame);
      if (correlationId === 2) socket.write(metadataAnswer(99));
    });
    const a = conn.request(ApiKey.Metadata, 0, { topics: [] });
    const b = conn.request(ApiKey.Metadata, 0, { topics: [] });
    await expect(a).rejects.toMatchObject({ code: 'PROTOCOL' });
    await expect(b).rejects.toMatchObject({ code: 'PROTOCOL' });
    expect(conn.closed).toBe(true);
    await expect(conn.request(ApiKey.Metadata, 0, { topics: [] })).rejects.toBeInstanceOf(ClientError);
  });

  it('times out a request and closes the connection', async () => {
    const { conn } = await setup(() => {});
    const err = await conn.request(ApiKey.Metadata, 0, { topics: [] }, 150).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('TIMEOUT');
    expect(conn.closed).toBe(true);
  });

  it('fails in-flight requests with CONNECTION_CLOSED when the server hangs up', async () => {
    const { conn } = await setup((_frame, socket) => socket.destroy());
    await expect(conn.request(ApiKey.Metadata, 0, { topics: [] })).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', retriable: true });
  });

  it('rejects a response frame larger than maxResponseBytes', async () => {
    const { conn } = await setup((_frame, socket) => {
      const b = Buffer.alloc(8);
      b.writeInt32BE(10_000_000, 0);
      socket.write(b);
    }, { maxResponseBytes: 1024 });
    await expect(conn.request(ApiKey.Metadata, 0, { topics: [] })).rejects.toMatchObject({ code: 'PROTOCOL' });
  });

  it('sends requests without responses (acks=0) and keeps the next request matched', async () => {
    const seen: number[] = [];
    const { conn } = await setup((frame, socket) => {
      const h = peekRequestHeader(frame);
      seen.push(h.apiKey);
      if (h.apiKey === ApiKey.Metadata) socket.write(metadataAnswer(h.correlationId));
    });
    conn.send(ApiKey.Produce, 3, { acks: 0, timeoutMs: 1000, topicData: [] });
    const md = await conn.request(ApiKey.Metadata, 0, { topics: [] });
    expect(md.topics[0]!.name).toBe('t2');
    expect(seen).toEqual([ApiKey.Produce, ApiKey.Metadata]);
    conn.close();
  });

  it('negotiates versions, retrying ApiVersions at the version the broker names (KIP-511)', async () => {
    const versionsAsked: number[] = [];
    const fake = await fakeServer((frame, socket) => {
      const h = peekRequestHeader(frame);
      versionsAsked.push(h.apiVersion);
      if (h.apiVersion > 2) { socket.write(encodeApiVersionsUnsupported(h.correlationId, [0, 2])); return; }
      socket.write(encodeResponse(ApiKey.ApiVersions, h.apiVersion, h.correlationId, {
        errorCode: ErrorCode.NONE,
        apiKeys: [
          { apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 2 },
          { apiKey: ApiKey.Metadata, minVersion: 0, maxVersion: 5 },
          // Below our Fetch schema's lowest version (4): nothing in common.
          { apiKey: ApiKey.Fetch, minVersion: 0, maxVersion: 3 },
        ],
        throttleTimeMs: 0,
      }));
    });
    servers.push(fake.server);
    const conn = await Connection.connect({ host: '127.0.0.1', port: fake.port });
    // Our highest ApiVersions (4) first, then the broker's.
    expect(versionsAsked).toEqual([4, 2]);
    expect(conn.version(ApiKey.Metadata)).toBe(5);
    expect(() => conn.version(ApiKey.Fetch)).toThrow(/no common version/);
    expect(() => conn.version(ApiKey.Produce)).toThrow(/does not support/);
    conn.close();
  });

  it('reports back-pressure while the peer does not read, and drains once it does', async () => {
    const { conn, fake } = await setup(() => {});
    await new Promise((r) => setTimeout(r, 20));
    fake.sockets[0]!.pause();
    const big = Buffer.alloc(4 * 1024 * 1024);
    big.writeInt32BE(big.length - 4, 0);
    let writes = 0;
    while (conn.writable && writes < 64) {
      await conn.requestParts([Buffer.from(big)], ApiKey.Produce, 3, false);
      writes++;
    }
    expect(conn.writable).toBe(false);
    const drained = conn.drained();
    fake.sockets[0]!.resume();
    await drained;
    expect(conn.writable).toBe(true);
    conn.close();
  });

  it('fails to connect with CONNECT_FAILED', async () => {
    const fake = await fakeServer(() => {});
    const port = (fake.server.address() as { port: number }).port;
    await new Promise((r) => fake.server.close(r));
    await expect(Connection.connect({ host: '127.0.0.1', port, negotiate: false })).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
  });
});
