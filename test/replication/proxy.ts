/**
 * A userspace TCP proxy to cut one network link in a test (there is no `tc`/iptables to rely on):
 * it listens on 127.0.0.1 (an ephemeral port) and forwards each connection to `target`. `cut()`
 * turns it into a black hole, as a network partition does: bytes on open connections are no longer
 * forwarded (both sides stall until their own timeouts) and new connections are accepted and never
 * answered. `cut('replies')` drops only what the target sends back: requests still arrive and are
 * acted on, their answers are lost (the case of a retried request that was already applied).
 * `heal()` closes every stalled connection (their owners reconnect) and forwards again.
 * `tap` sees every chunk forwarded, per connection (numbered from 1 in accept order); `requestFrames`
 * turns it into whole request frames. The request recorder (test/fixtures/record-requests.ts) and the
 * version spy (test/helpers/version-spy.ts) use it to see what real clients send.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  cut(direction?: 'both' | 'replies'): void;
  heal(): void;
  readonly isCut: boolean;
  close(): Promise<void>;
}

export interface ProxyOptions {
  tap?: (connection: number, from: 'client' | 'target', bytes: Buffer) => void;
}

/**
 * A `tap` that hands on each whole request a client sends (its 4-byte size included), however the
 * bytes were split into chunks; `frame` is a view valid only during the call.
 */
export function requestFrames(onRequest: (connection: number, frame: Buffer) => void): NonNullable<ProxyOptions['tap']> {
  const pending = new Map<number, Buffer>();
  // A negative size is not a Kafka frame (a hostile-input test's bytes): nothing more is read on that connection.
  const unframed = new Set<number>();
  return (connection, from, bytes) => {
    if (from !== 'client' || unframed.has(connection)) return;
    let buf = Buffer.concat([pending.get(connection) ?? Buffer.alloc(0), bytes]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
      if (buf.readInt32BE(0) < 0) {
        unframed.add(connection);
        pending.delete(connection);
        return;
      }
      const frame = buf.subarray(0, 4 + buf.readInt32BE(0));
      buf = buf.subarray(frame.length);
      onRequest(connection, frame);
    }
    if (buf.length > 0) pending.set(connection, buf);
    else pending.delete(connection);
  };
}

/** `target` is read at each new connection, so a caller may set its port after the proxy is up. */
export async function startProxy(target: { host: string; port: number }, options: ProxyOptions = {}): Promise<TcpProxy> {
  let connections = 0;
  let cut = false;
  let cutReplies = false;
  const pairs = new Set<{ client: Socket; upstream: Socket | null }>();
  const held = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.on('error', () => {});
    if (cut && !cutReplies) {
      held.add(client);
      client.on('close', () => held.delete(client));
      return;
    }
    const upstream = connect(target.port, target.host);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    const pair = { client, upstream };
    const id = ++connections;
    const tap = options.tap;
    pairs.add(pair);
    client.on('data', (b: Buffer) => { if (!cut || cutReplies) { tap?.(id, 'client', b); upstream.write(b); } });
    upstream.on('data', (b: Buffer) => { if (!cut) { tap?.(id, 'target', b); client.write(b); } });
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  return {
    port: address.port,
    get isCut() { return cut; },
    cut(direction = 'both') {
      cut = true;
      cutReplies = direction === 'replies';
    },
    heal() {
      // Whatever was sent into the black hole is gone: close those connections so both ends start over.
      for (const p of [...pairs]) { p.client.destroy(); p.upstream?.destroy(); }
      for (const s of [...held]) s.destroy();
      pairs.clear();
      held.clear();
      cut = false;
      cutReplies = false;
    },
    async close() {
      for (const p of [...pairs]) { p.client.destroy(); p.upstream?.destroy(); }
      for (const s of [...held]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
