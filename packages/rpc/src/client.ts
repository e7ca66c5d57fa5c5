/**
 * A client for one RpcServer address, over one TCP connection shared by every call.
 *
 * Lifecycle:
 * - The connection is made by the first call (lazy) and shared by the calls that follow; each
 *   call gets the next id (uint32, wrapping) and waits for the answer with that id, so any number
 *   of calls are in flight at once and answers may arrive in any order.
 * - If the connection breaks (the server stopped, a network error, a bad frame from the server),
 *   the calls in flight on it fail with UNAVAILABLE (retriable) and the next call connects again.
 *   There is no automatic retry: callers know which of their methods are safe to repeat.
 * - A connect that does not finish within connectTimeoutMs fails the calls waiting for it with
 *   UNAVAILABLE. A call without an answer within its timeout (requestTimeoutMs by default,
 *   counted from the call, connect included) fails with TIMEOUT; a late answer is dropped.
 * - close() fails everything in flight with CLOSED; later calls fail with CLOSED too.
 * - The socket holds the event loop open only while calls are in flight.
 */
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { silentLogger, type Logger } from '@runnel/common';
import { formatAddress } from './address.ts';
import { RpcError } from './errors.ts';
import { DEFAULT_MAX_FRAME_BYTES, FrameReader, frameLength, writeFrame } from './frame.ts';
import type { Address, RpcMethods } from './methods.ts';
import { RpcTls, type RpcTlsOptions } from './tls.ts';
import { encodeEnvelope, envelopeCodec, methodSchema, type EnvelopeMsg, type MethodSchema } from './schema.ts';

export interface RpcClientOptions extends Address {
  /** Default 5000. */
  connectTimeoutMs?: number;
  /** Default timeout of a call, default 30000. */
  requestTimeoutMs?: number;
  /** Largest frame body sent or accepted, default 64 MiB. */
  maxFrameBytes?: number;
  logger?: Logger;
  /**
   * TLS to the server (tls.ts): the options, or a function read at each connect so a reloaded
   * certificate is used by the next connection. Absent = plaintext.
   */
  tls?: RpcTlsOptions | (() => RpcTlsOptions) | RpcTls;
}

interface PendingCall {
  schema: MethodSchema;
  resolve(value: unknown): void;
  reject(err: RpcError): void;
}

/** One TCP connection and the calls waiting on it. */
class Connection {
  readonly socket: Socket;
  readonly pending = new Map<number, PendingCall>();
  /** Resolves once connected; rejects with UNAVAILABLE if the connect fails or times out. */
  readonly ready: Promise<void>;
  /** Set once the connection is broken: the error its calls fail with. */
  failure: RpcError | null = null;

  constructor(socket: Socket, ready: Promise<void>) {
    this.socket = socket;
    this.ready = ready;
  }
}

export class RpcClient {
  private readonly address: Address;
  private readonly target: string;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxFrameBytes: number;
  private readonly logger: Logger;
  private readonly tls: (() => RpcTlsOptions) | undefined;
  private connection: Connection | null = null;
  private nextId = 0;
  private closed = false;

  static create(o: RpcClientOptions): RpcClient {
    return new RpcClient(o);
  }

  private constructor(o: RpcClientOptions) {
    this.address = { host: o.host, port: o.port };
    this.target = formatAddress(this.address);
    this.connectTimeoutMs = o.connectTimeoutMs ?? 5000;
    this.requestTimeoutMs = o.requestTimeoutMs ?? 30_000;
    this.maxFrameBytes = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.logger = o.logger ?? silentLogger();
    const tls = o.tls;
    this.tls = tls === undefined ? undefined : typeof tls === 'function' ? tls : tls instanceof RpcTls ? () => tls.options() : () => tls;
  }

  call<M extends keyof RpcMethods>(method: M, req: RpcMethods[M][0], o?: { timeoutMs?: number }): Promise<RpcMethods[M][1]> {
    return this.send(method, req, o?.timeoutMs ?? this.requestTimeoutMs) as Promise<RpcMethods[M][1]>;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const connection = this.connection;
    this.connection = null;
    if (connection !== null) this.fail(connection, new RpcError('CLOSED', `rpc client to ${this.target} closed`));
  }

  private async send(method: string, req: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) throw new RpcError('CLOSED', `rpc client to ${this.target} is closed`, { sent: false });
    const schema = methodSchema(method);
    if (schema === undefined) throw new RpcError('UNKNOWN_METHOD', `no method '${method}' in the schema`, { sent: false });
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0;
    let body: Uint8Array[];
    try {
      const attachments: Buffer[] = [];
      const payload = schema.request.encode(req, attachments) as Buffer;
      body = encodeEnvelope({ id, method, payload, response: false, error: null, attachments });
    } catch (err) {
      throw new RpcError('BAD_FRAME', `${method} request does not encode: ${(err as Error).message}`, { cause: err, sent: false });
    }
    const length = frameLength(body);
    if (length > this.maxFrameBytes) {
      throw new RpcError('FRAME_TOO_LARGE', `${method} request of ${length} bytes is over the limit of ${this.maxFrameBytes}`, { sent: false });
    }

    const connection = this.connectionFor();
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        connection.pending.delete(id);
        this.updateRef(connection);
        return true;
      };
      let sent = false;
      const timer = setTimeout(() => {
        if (settle()) {
          reject(new RpcError('TIMEOUT', `${method} to ${this.target}: no answer within ${timeoutMs} ms`, { retriable: true, sent }));
        }
      }, timeoutMs);
      const pending: PendingCall = {
        schema,
        resolve: (value) => settle() && resolve(value),
        reject: (err) => settle() && reject(err),
      };
      connection.ready.then(
        () => {
          if (settled) return; // timed out while connecting
          if (connection.failure !== null) {
            pending.reject(connection.failure.unsent());
            return;
          }
          connection.pending.set(id, pending);
          this.updateRef(connection);
          writeFrame(connection.socket, body);
          sent = true;
        },
        (err: RpcError) => pending.reject((connection.failure ?? err).unsent()),
      );
    });
  }

  private connectionFor(): Connection {
    if (this.connection !== null && this.connection.failure === null) return this.connection;
    const socket = this.tls === undefined ? connect({ host: this.address.host, port: this.address.port, noDelay: true }) : this.tlsSocket(this.tls());
    const reader = new FrameReader(this.maxFrameBytes);
    let connection!: Connection;
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new RpcError('UNAVAILABLE', `connect to ${this.target} timed out after ${this.connectTimeoutMs} ms`, {
          retriable: true,
        });
        reject(err);
        this.fail(connection, err);
      }, this.connectTimeoutMs);
      socket.once(this.tls === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('error', (err) => {
        clearTimeout(timer);
        const failure = new RpcError('UNAVAILABLE', `rpc connection to ${this.target}: ${err.message}`, {
          retriable: true,
          cause: err,
        });
        reject(failure);
        this.fail(connection, failure);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        const failure = new RpcError('UNAVAILABLE', `rpc connection to ${this.target} closed`, { retriable: true });
        reject(failure);
        this.fail(connection, failure);
      });
    });
    ready.catch(() => {}); // each call observes it; this keeps an unobserved failure quiet
    connection = new Connection(socket, ready);
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch (err) {
        this.logger.warn({ err, server: this.target }, 'rpc connection closed: bad frame length');
        this.fail(connection, new RpcError('UNAVAILABLE', `rpc connection to ${this.target} closed: ${(err as Error).message}`, {
          retriable: true,
          cause: err,
        }));
        return;
      }
      for (const frame of frames) {
        if (connection.failure !== null) return;
        this.receive(connection, frame);
      }
    });
    this.connection = connection;
    return connection;
  }

  /** A TLS connection to the server; its certificate must name the host dialled unless verifyHostname is false. */
  private tlsSocket(tls: RpcTlsOptions): Socket {
    const { verifyHostname, ...options } = tls;
    const host = this.address.host;
    const socket = tlsConnect({
      ...options, host, port: this.address.port,
      // SNI takes a host name only; an IP address is checked against the certificate's IP entries.
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(verifyHostname === false ? { checkServerIdentity: () => undefined } : {}),
    });
    socket.setNoDelay(true);
    return socket;
  }

  private receive(connection: Connection, frame: Buffer): void {
    let envelope: EnvelopeMsg;
    try {
      envelope = envelopeCodec.decode(frame);
    } catch (err) {
      this.logger.warn({ err, server: this.target }, 'rpc connection closed: frame does not decode');
      this.fail(connection, new RpcError('UNAVAILABLE', `rpc connection to ${this.target} closed: a frame did not decode`, {
        retriable: true,
        cause: err,
      }));
      return;
    }
    const call = connection.pending.get(envelope.id);
    if (call === undefined || !envelope.response) {
      this.logger.debug({ id: envelope.id, method: envelope.method, server: this.target }, 'rpc answer for no waiting call');
      return;
    }
    connection.pending.delete(envelope.id);
    this.updateRef(connection);
    const failure = envelope.error;
    if (failure !== null) {
      const code = failure.code === 'UNKNOWN_METHOD' ? 'UNKNOWN_METHOD' : 'REMOTE';
      call.reject(new RpcError(code, failure.message, { retriable: failure.retriable, remoteCode: failure.code }));
      return;
    }
    try {
      call.resolve(call.schema.response.decode(envelope.payload, envelope.attachments));
    } catch (err) {
      call.reject(new RpcError('BAD_FRAME', `${envelope.method} answer from ${this.target} does not decode`, { cause: err }));
    }
  }

  /** Marks the connection broken, closes it and fails every call waiting on it with `err`. */
  private fail(connection: Connection | undefined, err: RpcError): void {
    if (connection === undefined || connection.failure !== null) return;
    connection.failure = err;
    if (this.connection === connection) this.connection = null;
    connection.socket.destroy();
    const calls = [...connection.pending.values()];
    connection.pending.clear();
    for (const call of calls) call.reject(err);
  }

  private updateRef(connection: Connection): void {
    // ref/unref on a socket still connecting queues a 'connect' listener per call; a dead one needs neither.
    const socket = connection.socket;
    if (socket.destroyed || socket.connecting || connection.failure !== null) return;
    if (connection.pending.size > 0) connection.socket.ref();
    else connection.socket.unref();
  }
}
