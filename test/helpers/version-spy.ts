/**
 * A TCP proxy in front of a broker that reads the header of every request a client sends (size,
 * api key, api version) and keeps the highest version of each key, so a test can assert which
 * versions a real client negotiated. Start the broker on a free port with the proxy as its
 * advertised listener, and clients come back through the proxy for every request:
 *
 *   const spy = await versionSpy();
 *   spy.target = await freePort();
 *   const broker = await startBroker({ set: [`listeners=PLAINTEXT://127.0.0.1:${spy.target}`, `advertised.listeners=PLAINTEXT://127.0.0.1:${spy.port}`] });
 *   ... clients on 127.0.0.1:${spy.port} ...
 *   expect(spy.seen.get(ApiKey.JoinGroup)).toBe(9);
 */
import { Buffer } from 'node:buffer';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface VersionSpy {
  readonly port: number;
  /** The broker's port; set it before the first client connects. */
  target: number;
  /** The highest version seen per API key since the last `seen.clear()`. */
  readonly seen: Map<number, number>;
  close(): Promise<void>;
}

export async function versionSpy(): Promise<VersionSpy> {
  const sockets = new Set<Socket>();
  const spy = { port: 0, target: 0, seen: new Map<number, number>(), close: async () => {} };
  const server: Server = createServer((client) => {
    const upstream = connect(spy.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    let pending = Buffer.alloc(0);
    client.on('data', (b: Buffer) => {
      upstream.write(b);
      pending = Buffer.concat([pending, b]);
      while (pending.length >= 8 && pending.length >= 4 + pending.readInt32BE(0)) {
        const key = pending.readInt16BE(4);
        const version = pending.readInt16BE(6);
        spy.seen.set(key, Math.max(version, spy.seen.get(key) ?? -1));
        pending = pending.subarray(4 + pending.readInt32BE(0));
      }
    });
    upstream.on('data', (b: Buffer) => client.write(b));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  spy.port = (server.address() as { port: number }).port;
  spy.close = () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  return spy;
}
