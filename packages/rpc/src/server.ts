/**
 * The RPC listener. Each connection reads frames (frame.ts) and runs its calls concurrently, up
 * to MAX_IN_FLIGHT_PER_CONNECTION at once (the rest wait, and the connection is not read
 * meanwhile); answers leave in completion order.
 *
 * - A handler that throws an error with a string `code` (any RunnelError) answers a Failure with
 *   that code, message and `retriable`; any other throw answers code 'INTERNAL'.
 * - A method outside the schema, or one without a handler here, answers 'UNKNOWN_METHOD'.
 * - A request payload that does not decode answers 'BAD_FRAME' (that call only).
 * - An answer that would exceed maxFrameBytes is replaced by a 'FRAME_TOO_LARGE' failure.
 * - An oversized length prefix or an undecodable envelope closes that connection, with a warn
 *   line; nothing a peer sends can throw out of a socket callback.
 * - While a connection's answers wait in its write buffer (over the high-water mark), the server
 *   stops reading its calls.
 * - stop() stops accepting and closes every connection at once; answers of handlers still running
 *   are dropped (their callers see UNAVAILABLE and may retry).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { hostname } from 'node:os';
import { silentLogger, type Logger } from '@runnel/common';
import { formatAddress } from './address.ts';
import { RpcError } from './errors.ts';
import { DEFAULT_MAX_FRAME_BYTES, FrameReader, frameLength, writeFrame } from './frame.ts';
import type { Address, RpcContext, RpcHandlers } from './methods.ts';
import { RpcTls, type RpcTlsOptions } from './tls.ts';
import { encodeEnvelope, envelopeCodec, methodSchema, type EnvelopeMsg, type FailureMsg } from './schema.ts';

export interface RpcServerOptions {
  host: string;
  port: number;
  handlers: RpcHandlers;
  /** Largest frame body accepted or sent, default 64 MiB. */
  maxFrameBytes?: number;
  logger?: Logger;
  /**
   * TLS (tls.ts): every peer must complete a handshake and present a client certificate the
   * options' `ca` trusts (the RPC has no other authentication); a plaintext peer is closed.
   * An RpcTls also hands the server its reloads. Absent = plaintext.
   */
  tls?: RpcTlsOptions | RpcTls;
}

type AnyHandler = (req: unknown, ctx: RpcContext) => unknown;

export class RpcServer {
  private readonly host: string;
  private readonly port: number;
  private readonly handlers: ReadonlyMap<string, AnyHandler>;
  private readonly maxFrameBytes: number;
  private readonly logger: Logger;
  private readonly tls: RpcTlsOptions | undefined;
  private readonly reloads: RpcTls | undefined;
  private unsubscribe: (() => void) | null = null;
  private readonly sockets = new Set<Socket>();
  private server: Server | TlsServer | null = null;
  private bound: Address | null = null;

  static create(o: RpcServerOptions): RpcServer {
    return new RpcServer(o);
  }

  private constructor(o: RpcServerOptions) {
    this.host = o.host;
    this.port = o.port;
    this.handlers = new Map(Object.entries(o.handlers).filter(([, h]) => h !== undefined) as [string, AnyHandler][]);
    this.maxFrameBytes = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.logger = o.logger ?? silentLogger();
    this.reloads = o.tls instanceof RpcTls ? o.tls : undefined;
    this.tls = o.tls instanceof RpcTls ? o.tls.options() : o.tls;
    // Client certificates are checked against `ca` alone: without it Node would trust every public CA.
    if (this.tls !== undefined && this.tls.ca === undefined) throw new Error('RpcServer: TLS needs `ca`, the CA that signs the peers\' certificates');
  }

  /** New key material (a reload): connections made from now on use it, open ones keep theirs. */
  setTls(tls: RpcTlsOptions): void {
    if (this.server === null || this.tls === undefined) return;
    const { verifyHostname: _, ...options } = tls;
    (this.server as TlsServer).setSecureContext(options);
  }

  async start(): Promise<void> {
    if (this.server !== null) throw new Error('RpcServer already started');
    let server: Server | TlsServer;
    if (this.tls === undefined) {
      server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    } else {
      const { verifyHostname: _, ...options } = this.tls;
      server = createTlsServer({ ...options, noDelay: true, requestCert: true, rejectUnauthorized: true }, (socket) => this.accept(socket));
      // A plaintext peer, an untrusted or missing client certificate: closed by the handshake.
      if (this.reloads !== undefined) this.unsubscribe = this.reloads.onReload((o) => this.setTls(o));
      server.on('tlsClientError', (err, socket) => {
        const code = (err as NodeJS.ErrnoException).code;
        // ECONNRESET: the peer closed before finishing a handshake, as a TCP health check (the
        // secured compose file's, every 5 s) or a port scan does: not worth a warning each time.
        this.logger[code === 'ECONNRESET' ? 'debug' : 'warn']({ peer: `${socket.remoteAddress}:${socket.remotePort}`, err: code ?? err.message }, 'rpc TLS handshake failed, closing');
      });
    }
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err }, 'rpc listener error'));
    const info = server.address() as AddressInfo;
    this.bound = { host: this.host, port: info.port };
    this.logger.info({ address: formatAddress(this.bound) }, 'rpc server listening');
  }

  /** The bound address (the real port when 0 was asked). */
  address(): Address {
    if (this.bound === null) throw new Error('RpcServer not started');
    return this.bound;
  }

  /**
   * Where peers reach this server, for registering it in metadata: the bound address, with a
   * wildcard host (all interfaces) replaced by this machine's host name, as Kafka advertises a
   * listener bound to 0.0.0.0. Peers cannot connect to 0.0.0.0.
   */
  advertisedAddress(): Address {
    const { host, port } = this.address();
    return { host: host === '' || host === '0.0.0.0' || host === '::' ? hostname() : host, port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  private accept(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const reader = new FrameReader(this.maxFrameBytes);
    // A connection is read only while its calls in flight are under the limit and its answers
    // are being taken; calls decoded past the limit wait in `queued` (at most one read's worth),
    // so memory per connection stays bounded whatever the peer sends.
    const flow = { inFlight: 0, awaitingDrain: false };
    const queued: EnvelopeMsg[] = [];
    const pump = () => {
      while (queued.length > 0 && flow.inFlight < MAX_IN_FLIGHT_PER_CONNECTION && !socket.destroyed) {
        const call = queued.shift()!;
        flow.inFlight++;
        void this.dispatch(socket, peer, call, flow, pump).finally(() => {
          flow.inFlight--;
          pump();
        });
      }
      const stop = queued.length > 0 || flow.inFlight >= MAX_IN_FLIGHT_PER_CONNECTION || flow.awaitingDrain;
      if (stop && !socket.isPaused()) socket.pause();
      else if (!stop && socket.isPaused()) socket.resume();
    };
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => this.logger.debug({ err, peer }, 'rpc connection error'));
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch (err) {
        this.logger.warn({ err, peer }, 'rpc connection closed: bad frame length');
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        let envelope: EnvelopeMsg;
        try {
          envelope = envelopeCodec.decode(frame);
        } catch (err) {
          this.logger.warn({ err, peer }, 'rpc connection closed: frame does not decode');
          socket.destroy();
          return;
        }
        if (envelope.response) {
          this.logger.warn({ peer, id: envelope.id }, 'rpc connection closed: a response sent to the server');
          socket.destroy();
          return;
        }
        queued.push(envelope);
      }
      pump();
    });
  }

  private async dispatch(socket: Socket, peer: string, call: EnvelopeMsg, flow: { awaitingDrain: boolean }, update: () => void): Promise<void> {
    const reply = (payload: Uint8Array, error: FailureMsg | null, attachments: Buffer[] = []): void => {
      if (socket.destroyed) return;
      const body = encodeEnvelope({ id: call.id, method: call.method, payload: payload as Buffer, response: true, error, attachments });
      const length = frameLength(body);
      if (length > this.maxFrameBytes && error === null) {
        reply(EMPTY, {
          code: 'FRAME_TOO_LARGE',
          message: `answer of ${length} bytes is over the limit of ${this.maxFrameBytes}`,
          retriable: false,
        });
        return;
      }
      writeFrame(socket, body);
      // A caller that does not read its answers stops being read (its TCP window fills up).
      if (socket.writableNeedDrain && !flow.awaitingDrain) {
        flow.awaitingDrain = true;
        update();
        socket.once('drain', () => {
          flow.awaitingDrain = false;
          update();
        });
      }
    };

    const schema = methodSchema(call.method);
    const handler = this.handlers.get(call.method);
    if (schema === undefined || handler === undefined) {
      reply(EMPTY, { code: 'UNKNOWN_METHOD', message: `no method '${call.method}' here`, retriable: false });
      return;
    }
    let request: unknown;
    try {
      request = schema.request.decode(call.payload, call.attachments);
    } catch (err) {
      this.logger.warn({ err, peer, method: call.method }, 'rpc request does not decode');
      reply(EMPTY, { code: 'BAD_FRAME', message: `request of '${call.method}' does not decode`, retriable: false });
      return;
    }
    let payload: Uint8Array;
    const attachments: Buffer[] = [];
    try {
      const response = await handler(request, { peer });
      payload = schema.response.encode(response, attachments);
    } catch (err) {
      reply(EMPTY, toFailure(err));
      return;
    }
    reply(payload, null, attachments);
  }
}

const EMPTY = new Uint8Array(0);

/** Calls one connection may have running at once before the server stops reading it. */
export const MAX_IN_FLIGHT_PER_CONNECTION = 256;

function toFailure(err: unknown): FailureMsg {
  const e = err as { code?: unknown; message?: unknown; retriable?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (e !== null && typeof e.code === 'string' && !(err instanceof RpcError && e.code === 'REMOTE')) {
    return { code: e.code, message, retriable: e.retriable === true };
  }
  if (err instanceof RpcError && err.remoteCode !== undefined) {
    // A handler that passes on a remote failure passes on its code.
    return { code: err.remoteCode, message, retriable: err.retriable };
  }
  return { code: 'INTERNAL', message, retriable: false };
}
