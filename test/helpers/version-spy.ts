/**
 * A TCP proxy in front of a broker that reads the header of every request a client sends (api key,
 * api version) and keeps the highest version of each key, so a test can assert which versions a
 * real client negotiated. Start the broker on a free port with the proxy as its advertised
 * listener, and clients come back through the proxy for every request:
 *
 *   const spy = await versionSpy();
 *   spy.target = await freePort();
 *   const broker = await startBroker({ set: [`listeners=PLAINTEXT://127.0.0.1:${spy.target}`, `advertised.listeners=PLAINTEXT://127.0.0.1:${spy.port}`] });
 *   ... clients on 127.0.0.1:${spy.port} ...
 *   expect(spy.seen.get(ApiKey.JoinGroup)).toBe(9);
 */
import { requestFrames, startProxy } from '../replication/proxy.ts';

export interface VersionSpy {
  readonly port: number;
  /** The broker's port; set it before the first client connects. */
  target: number;
  /** The highest version seen per API key since the last `seen.clear()`. */
  readonly seen: Map<number, number>;
  close(): Promise<void>;
}

export async function versionSpy(): Promise<VersionSpy> {
  const target = { host: '127.0.0.1', port: 0 };
  const seen = new Map<number, number>();
  const proxy = await startProxy(target, {
    tap: requestFrames((_connection, frame) => {
      if (frame.length < 8) return;
      const key = frame.readInt16BE(4);
      seen.set(key, Math.max(frame.readInt16BE(6), seen.get(key) ?? -1));
    }),
  });
  return {
    port: proxy.port,
    get target() { return target.port; },
    set target(port: number) { target.port = port; },
    seen,
    close: () => proxy.close(),
  };
}
