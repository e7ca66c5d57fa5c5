/**
 * The Kafka listener: length-prefixed frames over TCP, decoded by @runnel/protocol and dispatched to
 * the handler registry.
 *
 * One server binds several named listeners (Kafka's `listeners`); a connection belongs to the one
 * it came in on and tells its handlers (`ctx.listener`), so discovery answers with that listener's
 * addresses. Limits (`maxConnections` included) are shared by all listeners.
 *
 * Per-connection invariants (docs/protocol.md, Connections):
 * - Responses leave in request order, even when handlers finish out of order (clients match each
 *   response to their oldest in-flight request).
 * - At most `maxInFlightPerConnection` handlers run at once; further frames stay buffered and the
 *   socket is paused until a slot frees (back-pressure to the client's TCP window).
 * - While the socket's write buffer is above its high-water mark, no new request is read.
 * - A frame size is checked against `socketRequestMaxBytes` as soon as its 4 bytes arrive, before
 *   the body is buffered; a bad size, a frame that does not decode, an unknown API or unsupported
 *   version (except ApiVersions, see docs/protocol.md), or a handler that throws closes that connection only.
 * - A frame's body is never allocated from its size prefix: it is kept as the chunks that arrive
 *   and joined once complete, so a client that announces 95 MB and stalls holds only what it sent.
 *
 * Server-wide memory bound (Kafka's `queued.max.request.bytes`, see RequestBudget): a frame's whole
 * size is reserved from one budget when its size prefix arrives and released when its handler has
 * answered (or its connection closes first). A connection whose next frame does not fit stops
 * reading (socket paused, so TCP pushes back on the client) until enough is released; it is never
 * refused for it. Reserving the whole frame up front is what keeps this deadlock-free: every frame
 * being received can complete, and frames in handling finish without reading anything more.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { onceEvery, silentLogger, type Logger } from '@runnel/common';
import {
  ApiKey, apiName, decodeRequest, encodeApiVersionsUnsupported, encodeResponse, encodeResponseParts, ErrorCode, peekRequestHeader,
  schemaVersions, warmUp,
} from '@runnel/protocol';
import type { Handler, RequestContext } from './handler.ts';
import { unsupportedAnswer } from './unsupported.ts';
import type { Authorizer } from './authorizer.ts';
import { edgeDenial } from './authorization.ts';
import { featureFields, nodeFeatures, type NodeFeatures } from './features.ts';
import { ServerMetrics } from './metrics.ts';
import type { ClientQuotaEnforcer } from './client-quotas.ts';
import { ConnectionQuotas, normalizeIp, UNLIMITED, type ConnectionLimits } from './connection-quotas.ts';
import { ANONYMOUS, isSasl, type KafkaPrincipal, type SecurityProtocol } from './security.ts';
import { Authenticator, type SaslOptions, type SaslStep } from './sasl/authenticator.ts';
import type { ServerTls } from './tls.ts';

/** api_key int16 + api_version int16 + correlation_id int32: no request is shorter. */
const MIN_REQUEST_BYTES = 8;
/** Responses smaller than this wait for the end of the tick to share one writev (see flush()). */
const COALESCE_BELOW_BYTES = 16 * 1024;

/** One listener to bind: its name (Kafka's listener name, upper case) and where. */
export interface ListenerBinding {
  name: string;
  host: string;
  port: number;
  /** The listener's security protocol (listener.security.protocol.map), default PLAINTEXT. */
  securityProtocol?: SecurityProtocol;
  /** TLS for an SSL or SASL_SSL listener (tls.ts): a connection is served once its handshake is done. */
  tls?: ServerTls;
}

/** Where a node is reached on one listener; null when it has no such listener. */
export type NodeAddressLookup = (nodeId: number, listener: string) => { host: string; port: number } | null;

export interface KafkaServerOptions {
  handlers: Handler[];
  /**
   * The listeners to bind, in order; each connection knows the one it came in on
   * (`ctx.listener`). Without it, `host` and `port` bind one listener named PLAINTEXT.
   */
  listeners?: ListenerBinding[];
  host?: string;
  port?: number;
  /**
   * A node's advertised address on a listener (from metadata), offered to handlers as
   * `ctx.addressOf` for the listener of their connection (FindCoordinator answers with it).
   */
  addressOf?: NodeAddressLookup;
  /** Largest accepted request frame (Kafka's `socket.request.max.bytes`), default 104857600. */
  socketRequestMaxBytes?: number;
  /**
   * Connections beyond this are closed on accept (Kafka's `max.connections`), default unlimited.
   * A function is read on every accept (a dynamic config): lowering it closes no open connection.
   */
  maxConnections?: number | (() => number);
  /** Produce and Fetch byte quotas (client-quotas.ts); absent = none. */
  clientQuotas?: ClientQuotaEnforcer;
  /**
   * `max.connections.per.ip` (with its overrides) and `max.connection.creation.rate`, read on every
   * accept (dynamic configs); default unlimited. See connection-quotas.ts.
   */
  connectionLimits?: () => ConnectionLimits;
  /** Idle connections are closed after this (Kafka's `connections.max.idle.ms`), default 600000. */
  connectionsMaxIdleMs?: number;
  /** Handlers running at once per connection, default 32. */
  maxInFlightPerConnection?: number;
  /**
   * Bytes of requests being received or handled, over all connections, past which no further
   * frame is read until some are answered (Kafka's `queued.max.request.bytes`); default 512 MiB,
   * -1 (or any value ≤ 0) for no bound. A frame larger than the budget is read when nothing else
   * is reserved, or when it has waited longest and less than this is reserved (see RequestBudget).
   */
  queuedMaxRequestBytes?: number;
  logger?: Logger;
  /**
   * How SASL_PLAINTEXT and SASL_SSL listeners authenticate (sasl/authenticator.ts); required when
   * a listener is SASL_*. SaslHandshake and SaslAuthenticate are then served (built in, as ApiVersions).
   */
  sasl?: SaslOptions;
  /** The ACL authorizer every request's `ctx.authorizer` carries (authorizer.ts); absent = everything allowed. */
  authorizer?: Authorizer;
}

export interface ApiVersionRange { apiKey: number; minVersion: number; maxVersion: number }

/** The ApiVersions versions this server answers itself (v3 is the first flexible one; v4: features.ts). */
const API_VERSIONS_RANGE: [number, number] = [0, 4];
/** SaslHandshake and SaslAuthenticate, built in when the server has SASL options (Kafka's ranges). */
const SASL_HANDSHAKE_RANGE: [number, number] = [0, 1];
const SASL_AUTHENTICATE_RANGE: [number, number] = [0, 2];

/** One response slot per request, filled when its handler completes; flushed strictly in order. */
/** `charge`: the client-quota step still to run on the response, in request order (chargeInOrder). */
interface Slot { done: boolean; out: Buffer[] | null; charge?: () => void }

/** Kafka's queued.max.request.bytes default is -1 (unbounded); Runnel bounds it by default. */
export const DEFAULT_QUEUED_MAX_REQUEST_BYTES = 512 * 1024 * 1024;

/**
 * The server-wide budget of request bytes being received or handled (queued.max.request.bytes).
 * A reservation fits when it stays within the budget, or when nothing is reserved at all (so a
 * frame larger than the budget still gets its turn). Connections that did not fit wait in FIFO
 * order and are retried, oldest first, each time bytes are released. A later small frame may fit
 * where an older large one does not; once that happened, the oldest waiter is let in as soon as
 * the reserved bytes are below the limit (as Kafka's non-strict memory pool lets any frame in),
 * else smaller frames that keep overlapping would starve it. At most limit + one frame is reserved.
 */
export class RequestBudget {
  readonly limit: number;
  #used = 0;
  #waiting = new Set<{ retry(): void }>();
  /** A reservation got in ahead of the oldest waiter since it became the oldest. */
  #headOvertaken = false;

  constructor(limit: number) {
    this.limit = limit > 0 ? limit : Number.POSITIVE_INFINITY;
  }

  /** Bytes reserved right now. */
  get used(): number {
    return this.#used;
  }

  /** Connections waiting for room right now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** `w`: the connection asking again after waiting (the oldest waiter, once overtaken, may exceed the budget: see above). */
  tryReserve(bytes: number, w?: { retry(): void }): boolean {
    const head = this.#waiting.values().next().value;
    const fits = this.#used === 0 || this.#used + bytes <= this.limit;
    if (!fits && !(w !== undefined && w === head && this.#headOvertaken && this.#used < this.limit)) return false;
    if (head !== undefined && w !== head) this.#headOvertaken = true;
    this.#used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#used -= bytes;
    for (const w of [...this.#waiting]) {
      if (this.#used >= this.limit) break;
      w.retry();
    }
  }

  wait(w: { retry(): void }): void {
    this.#waiting.add(w);
  }

  cancel(w: { retry(): void }): void {
    if (this.#waiting.values().next().value === w) this.#headOvertaken = false;
    this.#waiting.delete(w);
  }
}

class Connection {
  readonly id: number;
  readonly socket: Socket;
  readonly address: string;
  /** The name of the listener this connection came in on. */
  readonly listener: string;
  /** The security protocol of that listener. */
  readonly securityProtocol: SecurityProtocol;
  /** The peer's IP (no port; IPv4-mapped IPv6 as plain IPv4). */
  readonly clientHost: string;
  /** Who this connection is: ANONYMOUS until authenticated (security.ts). */
  principal: KafkaPrincipal = ANONYMOUS;
  /** The SASL state on a SASL_* listener (sasl/authenticator.ts), else null. */
  private readonly auth: Authenticator | null;
  /** The timer closing this connection after a failed authentication. */
  private failedAuthTimer: NodeJS.Timeout | null = null;
  /** A failed authentication is being answered: no further frame is read. */
  private pumpBlockedByAuthFailure = false;
  private readonly addressOf: ((nodeId: number) => { host: string; port: number } | null) | undefined;
  private readonly server: KafkaServer;
  private readonly abort = new AbortController();
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Size of the frame being accumulated, or −1 while waiting for a size prefix. */
  private expected = -1;
  /** Whether `expected` bytes are reserved from the server's RequestBudget (else waiting for room). */
  private reserved = false;
  private readonly slots: Slot[] = [];
  private inFlight = 0;
  private writeBlocked = false;
  /** A flush is queued for the end of this tick (see flush()). */
  private flushScheduled = false;
  private pumping = false;
  private closed = false;

  constructor(server: KafkaServer, id: number, socket: Socket, listener: string, securityProtocol: SecurityProtocol = 'PLAINTEXT') {
    this.server = server;
    this.id = id;
    this.socket = socket;
    this.listener = listener;
    this.securityProtocol = securityProtocol;
    const ip = socket.remoteAddress ?? '';
    this.clientHost = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    this.auth = isSasl(securityProtocol) && server.sasl ? new Authenticator(listener, server.sasl) : null;
    const lookup = server.addressOf;
    this.addressOf = lookup ? (nodeId) => lookup(nodeId, listener) : undefined;
    this.address = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    // 'timeout' fires after connectionsMaxIdleMs without socket activity and re-arms on the next
    // activity; a connection waiting on its own handlers (a long-polling Fetch) is not idle.
    socket.setTimeout(server.connectionsMaxIdleMs);
    socket.on('timeout', () => {
      if (this.inFlight > 0) socket.setTimeout(server.connectionsMaxIdleMs);
      else this.close('idle');
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => { this.writeBlocked = false; this.pump(); });
    socket.on('error', (err) => this.server.log.debug({ conn: this.id, err }, 'socket error'));
    socket.on('close', () => this.onClose());
  }

  get signal(): AbortSignal { return this.abort.signal; }

  /** Handlers of this connection running now (metrics). */
  get inFlightCount(): number { return this.inFlight; }

  close(reason: string, detail?: object): void {
    if (this.closed) return;
    this.closed = true;
    this.server.log.info({ conn: this.id, client: this.address, reason, ...detail }, 'closing connection');
    this.socket.destroy();
  }

  private onClose(): void {
    this.closed = true;
    this.abort.abort();
    if (this.failedAuthTimer) clearTimeout(this.failedAuthTimer);
    this.chunks = [];
    this.buffered = 0;
    this.server.budget.cancel(this);
    // The partial frame's reservation goes now; those of requests still in handling go as each
    // handler settles (their bytes stay referenced until then).
    if (this.reserved) this.server.budget.release(this.expected);
    this.reserved = false;
    this.expected = -1;
    this.server.metrics.connectionClosed(this.listener);
    this.server.forget(this);
  }

  /** Called by the budget when bytes were released: try again to reserve the frame we wait on. */
  retry(): void {
    if (this.closed || this.reserved || this.expected < 0) {
      this.server.budget.cancel(this);
      return;
    }
    if (!this.server.budget.tryReserve(this.expected, this)) return;
    this.server.budget.cancel(this);
    this.reserved = true;
    try {
      this.pump();
    } catch (err) {
      this.server.log.error({ conn: this.id, err }, 'unexpected error while reading a request');
      this.close('internal error');
    }
  }

  private onData(chunk: Buffer): void {
    // A chunk already in flight when reading stopped after a failed authentication is dropped.
    if (this.closed || this.pumpBlockedByAuthFailure) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      this.pump();
    } catch (err) {
      // A bug in parsing must cost one connection, never the process.
      this.server.log.error({ conn: this.id, err }, 'unexpected error while reading a request');
      this.close('internal error');
    }
  }

  /** Removes and returns the first `n` buffered bytes; copies only when they span chunks. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const use = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, use);
        filled += use;
        if (use === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(use);
      }
    }
    this.buffered -= n;
    return out;
  }

  /**
   * Parses and dispatches buffered frames while concurrency and the write buffer allow. Not
   * re-entrant: a handler that completes synchronously calls back into `pump`, and the outer loop
   * simply carries on (thousands of pipelined frames must not deepen the stack).
   */
  /** Throttled by a client quota (KIP-219): no request is read until this time. */
  private mutedUntil = 0;

  private get muted(): boolean {
    return this.mutedUntil > Date.now();
  }

  /** Reads nothing more for `ms` (answers to requests already read still go out). */
  private muteFor(ms: number): void {
    const until = Date.now() + ms;
    if (until <= this.mutedUntil) return;
    this.mutedUntil = until;
    setTimeout(() => this.pump(), ms + 1).unref();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpFrames();
    } finally {
      this.pumping = false;
    }
    if (this.closed) return;
    const waitingForBudget = this.expected >= 0 && !this.reserved;
    // After a failed authentication nothing more is read (the socket stays paused until it closes).
    const blocked = this.inFlight >= this.server.maxInFlightPerConnection || this.writeBlocked || waitingForBudget || this.muted || this.pumpBlockedByAuthFailure;
    if (blocked && !this.socket.isPaused()) this.socket.pause();
    else if (!blocked && this.socket.isPaused()) this.socket.resume();
  }

  private pumpFrames(): void {
    while (!this.closed && !this.pumpBlockedByAuthFailure) {
      if (this.inFlight >= this.server.maxInFlightPerConnection || this.writeBlocked || this.muted) break;
      if (this.expected < 0) {
        if (this.buffered < 4) break;
        const size = this.take(4).readInt32BE(0);
        // Before the first authentication a SASL listener reads at most sasl.server.max.receive.size
        // (Kafka's 512 KiB): an unauthenticated peer cannot make the server hold a large frame.
        const max = this.auth?.beforeFirstAuthentication ? Math.min(this.server.sasl!.maxReceiveSize, this.server.socketRequestMaxBytes) : this.server.socketRequestMaxBytes;
        // Smaller than a request header (api key, version, correlation id) is as bad as too large;
        // a raw SASL token (after SaslHandshake v0) has no header, but is never empty.
        if (size < (this.auth?.rawTokens ? 1 : MIN_REQUEST_BYTES) || size > max) {
          this.close('invalid frame size', { size, max });
          return;
        }
        this.expected = size;
        this.reserved = false;
      }
      if (!this.reserved) {
        if (!this.server.budget.tryReserve(this.expected)) {
          // Stop reading (pump pauses the socket) until the budget calls retry().
          this.server.budget.wait(this);
          break;
        }
        this.reserved = true;
      }
      if (this.buffered < this.expected) break;
      const frame = this.take(this.expected);
      this.expected = -1;
      this.reserved = false;
      this.dispatch(frame);
    }
  }

  private dispatch(frame: Buffer): void {
    let released = false;
    // Exactly once per frame: when it is answered, refused, or its handler settles after a close.
    const release = () => {
      if (released) return;
      released = true;
      this.server.budget.release(frame.length);
    };
    const receivedAt = Date.now();
    if (this.auth?.rawTokens) {
      release();
      this.answerRawToken(frame, receivedAt);
      return;
    }
    let peek: ReturnType<typeof peekRequestHeader>;
    try {
      peek = peekRequestHeader(frame);
    } catch (err) {
      release();
      this.close('undecodable request', { err });
      return;
    }
    const { apiKey, apiVersion, correlationId } = peek;
    if (this.server.sasl && (apiKey === ApiKey.SaslHandshake || apiKey === ApiKey.SaslAuthenticate)) {
      release();
      this.answerSasl(frame, apiKey, apiVersion, correlationId, receivedAt);
      return;
    }
    if (this.auth && apiKey !== ApiKey.ApiVersions) {
      // Kafka closes a connection that sends anything else before authenticating, and one whose
      // session (connections.max.reauth.ms) ended without re-authenticating on its next request.
      if (!this.auth.authenticated) {
        release();
        this.close('request before SASL authentication', { api: apiName(apiKey) });
        return;
      }
      if (this.auth.expired(receivedAt)) {
        release();
        this.close('SASL session expired (connections.max.reauth.ms) without re-authentication', { api: apiName(apiKey) });
        return;
      }
    }
    if (apiKey === ApiKey.ApiVersions) {
      release();
      this.answerApiVersions(frame, apiVersion, correlationId);
      return;
    }
    const handler = this.server.handlerFor(apiKey);
    if (!handler || apiVersion < handler.versions[0] || apiVersion > handler.versions[1]) {
      release();
      this.refuseUnsupported(frame, apiKey, apiVersion, correlationId);
      return;
    }
    let req: ReturnType<typeof decodeRequest>;
    try {
      req = decodeRequest(frame);
    } catch (err) {
      release();
      this.close('undecodable request', { api: apiName(apiKey), apiVersion, err });
      return;
    }
    const tracker = this.server.metrics.tracker(apiKey, apiVersion);
    tracker.received(frame.length);
    const began = performance.now();
    const slot: Slot = { done: false, out: null };
    this.slots.push(slot);
    this.inFlight++;
    const ctx: RequestContext = {
      header: req.header, connectionId: this.id, clientAddress: this.address, receivedAt, signal: this.abort.signal,
      listener: this.listener, addressOf: this.addressOf,
      principal: this.principal, securityProtocol: this.securityProtocol, clientHost: this.clientHost,
      authorizer: this.server.authorizer,
    };
    if (apiKey === ApiKey.Fetch) this.server.clientQuotas?.beforeFetch(ctx, req.body as { maxBytes: number });
    const fail = (err: unknown) => {
      release();
      tracker.failed(performance.now() - began);
      if (this.closed) return; // e.g. a handler giving up on ctx.signal after the connection went away
      this.server.log.error({ conn: this.id, api: apiName(apiKey), apiVersion, err }, 'handler failed');
      this.close('handler failed');
    };
    const complete = (res: unknown) => {
      release();
      if (this.closed) return;
      try {
        slot.out = res === undefined ? null : encodeResponseParts(apiKey, apiVersion, correlationId, res as object);
      } catch (err) {
        fail(err);
        return;
      }
      const elapsed = performance.now() - began;
      // Client quotas (client-quotas.ts): over quota, the answer carries the throttle (a Fetch's
      // is empty) and the connection reads nothing more for that long (KIP-219). Charged in request
      // order, not completion order: pipelined requests run at once here (Kafka serves one per
      // connection at a time), and a long-polling Fetch finishing after a later one must still be
      // the one a fresh window serves, not the one emptied.
      const quotas = this.server.clientQuotas;
      if (quotas && (apiKey === ApiKey.Produce || apiKey === ApiKey.Fetch)) {
        slot.charge = () => {
          let bytes = 0;
          for (const part of slot.out ?? []) bytes += part.length;
          const t = quotas.afterResponse(apiKey, ctx, frame.length, bytes, res);
          if (t) {
            res = t.response;
            slot.out = res === undefined ? null : encodeResponseParts(apiKey, apiVersion, correlationId, res as object);
            this.muteFor(t.throttleMs);
          }
          tracker.answered(elapsed, res, slot.out);
        };
      } else {
        tracker.answered(elapsed, res, slot.out);
      }
      slot.done = true;
      this.inFlight--;
      this.chargeInOrder();
      this.flush();
      this.pump();
    };
    let result: unknown;
    try {
      // Whole-API ACL checks (authorization.ts) come first; per-resource ones are the handler's.
      result = edgeDenial(apiKey, apiVersion, req.body, ctx) ?? handler.handle(req.body, ctx);
    } catch (err) {
      fail(err);
      return;
    }
    if (result instanceof Promise) result.then(complete, fail);
    else complete(result);
  }

  /**
   * A key or version this node does not serve: UNSUPPORTED_VERSION in the API's own schema where
   * one can be encoded (unsupported.ts), else the connection is closed, as Kafka closes it for a
   * request it cannot parse. Logged once per API key.
   */
  private refuseUnsupported(frame: Buffer, apiKey: number, apiVersion: number, correlationId: number): void {
    this.server.noteUnsupported(apiKey, apiVersion, clientIdOf(frame));
    let out: Buffer[] | undefined;
    try {
      const body = unsupportedAnswer(apiKey, apiVersion, decodeRequest(frame).body);
      if (body !== undefined) out = encodeResponseParts(apiKey, apiVersion, correlationId, body);
    } catch {
      // a body that does not decode: no answer
    }
    if (out === undefined) {
      this.close('unsupported api or version', { api: apiName(apiKey), apiVersion });
      return;
    }
    this.slots.push({ done: true, out });
    this.flush();
  }

  /**
   * SaslHandshake and SaslAuthenticate (sasl/authenticator.ts). On a listener that is not SASL_*
   * both answer ILLEGAL_SASL_STATE, as Kafka's KafkaApis does. Answered in order with the others.
   */
  private answerSasl(frame: Buffer, apiKey: number, apiVersion: number, correlationId: number, now: number): void {
    const versions = apiKey === ApiKey.SaslHandshake ? SASL_HANDSHAKE_RANGE : SASL_AUTHENTICATE_RANGE;
    if (apiVersion < versions[0] || apiVersion > versions[1]) {
      this.refuseUnsupported(frame, apiKey, apiVersion, correlationId);
      return;
    }
    let body: { mechanism?: string; authBytes?: Buffer };
    try {
      body = decodeRequest(frame).body as typeof body;
    } catch (err) {
      this.close('undecodable request', { api: apiName(apiKey), apiVersion, err });
      return;
    }
    let step: SaslStep;
    if (!this.auth) {
      step = apiKey === ApiKey.SaslHandshake
        ? { body: { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms: [] }, outcome: 'continue' }
        : { body: { errorCode: ErrorCode.ILLEGAL_SASL_STATE, errorMessage: 'SaslAuthenticate on a listener without SASL', authBytes: Buffer.alloc(0), sessionLifetimeMs: 0n }, outcome: 'continue' };
    } else if (apiKey === ApiKey.SaslHandshake) {
      step = this.auth.handshake(body.mechanism ?? '', apiVersion);
    } else {
      step = this.auth.authenticate(body.authBytes ?? Buffer.alloc(0), now);
    }
    this.afterSaslStep(step, encodeResponseParts(apiKey, apiVersion, correlationId, step.body));
  }

  /** A raw SASL token after SaslHandshake v0: the answer is the server's token, size-prefixed. */
  private answerRawToken(frame: Buffer, now: number): void {
    const step = this.auth!.authenticate(frame, now);
    const token = (step.body.authBytes as Buffer | undefined) ?? Buffer.alloc(0);
    const size = Buffer.allocUnsafe(4);
    size.writeInt32BE(token.length, 0);
    // v0 has no error frame: a failure is the connection closing after the delay (Kafka does the same).
    this.afterSaslStep(step, step.outcome === 'failed' ? [] : [size, token]);
  }

  private afterSaslStep(step: SaslStep, out: Buffer[]): void {
    if (step.outcome === 'authenticated') {
      this.principal = { type: 'User', name: this.auth!.user! };
      this.server.metrics.authentication(this.listener, true);
    }
    if (step.outcome !== 'failed') {
      this.slots.push({ done: true, out });
      this.flush();
      return;
    }
    this.server.metrics.authentication(this.listener, false);
    this.server.noteFailedAuthentication(this.clientHost, this.address, this.listener, step.attempted);
    // Kafka (KIP-306) holds the failure back for connection.failed.authentication.delay.ms, then
    // answers and closes; reading stops meanwhile. Only this connection waits (a timer).
    this.socket.pause();
    this.chunks = [];
    this.buffered = 0;
    const answerAndClose = () => {
      this.failedAuthTimer = null;
      if (this.closed) return;
      this.slots.push({ done: true, out });
      this.flushNow();
      this.closed = true;
      this.server.log.debug({ conn: this.id, client: this.address }, 'closing connection after failed authentication');
      this.socket.destroySoon();
    };
    const delay = this.server.sasl!.failedAuthenticationDelayMs;
    // Nothing else is read from this connection: stop pumping frames at once.
    this.pumpBlockedByAuthFailure = true;
    if (delay > 0) this.failedAuthTimer = setTimeout(answerAndClose, delay);
    else answerAndClose();
  }

  private answerApiVersions(frame: Buffer, apiVersion: number, correlationId: number): void {
    let out: Buffer;
    if (apiVersion < API_VERSIONS_RANGE[0] || apiVersion > API_VERSIONS_RANGE[1]) {
      // docs/protocol.md, ApiVersions: do not parse the body; answer in the v0 format with our range.
      out = encodeApiVersionsUnsupported(correlationId, API_VERSIONS_RANGE);
    } else {
      try {
        decodeRequest(frame);
      } catch (err) {
        this.close('undecodable request', { api: 'ApiVersions', apiVersion, err });
        return;
      }
      out = encodeResponse(ApiKey.ApiVersions, apiVersion, correlationId, {
        errorCode: 0, apiKeys: this.server.apiVersions, throttleTimeMs: 0, ...featureFields(this.server.features, apiVersion),
      });
    }
    this.slots.push({ done: true, out: [out] });
    this.flush();
  }

  /**
   * Schedules a write of the completed responses. Deferred to the end of the current tick, so the
   * responses that complete together (a group of appends written by one writev resolves all its
   * produce requests in one microtask drain) leave in one syscall instead of one each.
   */
  private flush(): void {
    if (this.flushScheduled) return;
    // Large responses gain nothing from waiting, and writing them now keeps write back-pressure
    // (writeBlocked) in step with the requests being read.
    if (this.readyBytes() >= COALESCE_BELOW_BYTES) {
      this.flushNow();
      return;
    }
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      this.flushNow();
    });
  }

  /**
   * Runs the quota charge of each completed response at the head of the queue, oldest first; one
   * behind a request still running waits for it (flushNow stops there too, so none is sent uncharged).
   */
  private chargeInOrder(): void {
    for (const slot of this.slots) {
      if (!slot.done) return;
      const charge = slot.charge;
      if (!charge) continue;
      slot.charge = undefined;
      try {
        charge();
      } catch (err) {
        this.server.log.error({ conn: this.id, err }, 'client quota charge failed');
        this.close('handler failed');
        return;
      }
    }
  }

  /** Bytes of the completed responses at the head of the queue (what flushNow would write). */
  private readyBytes(): number {
    let bytes = 0;
    for (const slot of this.slots) {
      if (!slot.done) break;
      for (const part of slot.out ?? []) bytes += part.length;
      if (bytes >= COALESCE_BELOW_BYTES) break;
    }
    return bytes;
  }

  /** Writes every completed response at the head of the queue, in request order. */
  private flushNow(): void {
    if (this.closed || this.slots.length === 0 || !this.slots[0]!.done) return;
    // Record sets stay referenced (no copy into the frame); corking turns the pieces into one writev.
    this.socket.cork();
    while (this.slots.length > 0 && this.slots[0]!.done) {
      const slot = this.slots.shift()!;
      if (!slot.out) continue;
      for (const part of slot.out) if (!this.socket.write(part)) this.writeBlocked = true;
    }
    this.socket.uncork();
  }
}

export class KafkaServer {
  readonly apiVersions: ApiVersionRange[];
  /** The KIP-584 features ApiVersions v3+ advertises, derived from the handlers (features.ts). */
  readonly features: NodeFeatures;
  readonly socketRequestMaxBytes: number;
  readonly #maxConnections: () => number;
  readonly connectionsMaxIdleMs: number;
  readonly maxInFlightPerConnection: number;
  /** Bytes of requests being received or handled, over all connections (queued.max.request.bytes). */
  readonly budget: RequestBudget;
  readonly log: Logger;
  readonly addressOf: NodeAddressLookup | undefined;
  /** SASL settings (sasl/authenticator.ts); undefined when no listener is SASL_*. */
  readonly sasl: SaslOptions | undefined;
  /** Failed-authentication log lines, at most one per client IP per second. */
  readonly #authFailureLog = onceEvery(1000);
  readonly authorizer: Authorizer | undefined;
  /** Request and connection metrics (metrics.ts); added to a registry by the node serving /metrics. */
  readonly metrics: ServerMetrics;
  private readonly handlers = new Map<number, Handler>();
  private readonly bindings: ListenerBinding[];
  private readonly connections = new Set<Connection>();
  /** One net.Server per binding, in binding order; empty while stopped. */
  private servers: Array<{ name: string; server: Server }> = [];
  private nextConnectionId = 1;
  /** Produce and Fetch byte quotas (client-quotas.ts), if any. */
  readonly clientQuotas: ClientQuotaEnforcer | undefined;
  /** Per-IP counts and the creation rate (connection-quotas.ts). */
  readonly connectionQuotas: ConnectionQuotas;
  /** Sockets accepted but held back by max.connection.creation.rate, with the timer that serves each. */
  readonly #held = new Map<Socket, NodeJS.Timeout>();
  readonly #quotaLog = onceEvery(60_000);
  /** The node:tls server of each TLS listener, by listener name (#tlsServer). */
  readonly #tlsServers = new Map<string, TlsServer>();
  /** TCP sockets of TLS listeners whose handshake is not done yet. */
  readonly #handshaking = new Set<Socket>();
  /** API keys already logged as unsupported (noteUnsupported). */
  private readonly unsupportedSeen = new Set<number>();

  private constructor(options: KafkaServerOptions) {
    if (options.listeners !== undefined) {
      if (options.listeners.length === 0) throw new Error('KafkaServer needs at least one listener');
      const names = new Set(options.listeners.map((l) => l.name));
      if (names.size !== options.listeners.length) throw new Error('KafkaServer listener names must be unique');
      this.bindings = options.listeners.map((l) => ({ ...l }));
    } else {
      if (options.host === undefined || options.port === undefined) throw new Error('KafkaServer needs listeners, or host and port');
      this.bindings = [{ name: 'PLAINTEXT', host: options.host, port: options.port }];
    }
    this.addressOf = options.addressOf;
    this.authorizer = options.authorizer;
    this.socketRequestMaxBytes = options.socketRequestMaxBytes ?? 104857600;
    const max = options.maxConnections ?? Number.MAX_SAFE_INTEGER;
    this.#maxConnections = typeof max === 'function' ? max : () => max;
    this.connectionsMaxIdleMs = options.connectionsMaxIdleMs ?? 600000;
    this.clientQuotas = options.clientQuotas;
    this.connectionQuotas = new ConnectionQuotas(options.connectionLimits ?? (() => UNLIMITED));
    this.maxInFlightPerConnection = Math.max(1, options.maxInFlightPerConnection ?? 32);
    this.budget = new RequestBudget(options.queuedMaxRequestBytes ?? DEFAULT_QUEUED_MAX_REQUEST_BYTES);
    this.log = options.logger ?? silentLogger();
    if (this.bindings.some((b) => b.securityProtocol !== undefined && isSasl(b.securityProtocol)) && !options.sasl) {
      throw new Error('a SASL_PLAINTEXT or SASL_SSL listener needs the sasl options');
    }
    this.sasl = options.sasl;
    this.metrics = new ServerMetrics(() => ({
      connections: [...this.connections].map((c) => ({ listener: c.listener, inFlight: c.inFlightCount })),
      listeners: this.bindings.map((b) => b.name),
      queuedBytes: this.budget.used,
      connectionQuotas: this.connectionQuotas,
    }));
    for (const h of options.handlers) {
      if (h.api === ApiKey.ApiVersions) throw new Error('ApiVersions is built into KafkaServer; do not register a handler for it');
      if (this.handlers.has(h.api)) throw new Error(`two handlers for ${apiName(h.api)}`);
      const supported = schemaVersions(h.api);
      if (!supported) throw new Error(`no schema for ${apiName(h.api)} (key ${h.api})`);
      const [min, max] = h.versions;
      if (min > max || min < supported[0] || max > supported[1]) {
        throw new Error(`${apiName(h.api)} handler versions ${min}-${max} are outside the schema's ${supported[0]}-${supported[1]}`);
      }
      this.handlers.set(h.api, h);
    }
    const ranges: ApiVersionRange[] = [...this.handlers.values()].map((h) => ({ apiKey: h.api, minVersion: h.versions[0], maxVersion: h.versions[1] }));
    ranges.push({ apiKey: ApiKey.ApiVersions, minVersion: API_VERSIONS_RANGE[0], maxVersion: API_VERSIONS_RANGE[1] });
    if (this.sasl) {
      if (this.handlers.has(ApiKey.SaslHandshake) || this.handlers.has(ApiKey.SaslAuthenticate)) throw new Error('SASL is built into KafkaServer; do not register SASL handlers');
      ranges.push({ apiKey: ApiKey.SaslHandshake, minVersion: SASL_HANDSHAKE_RANGE[0], maxVersion: SASL_HANDSHAKE_RANGE[1] });
      ranges.push({ apiKey: ApiKey.SaslAuthenticate, minVersion: SASL_AUTHENTICATE_RANGE[0], maxVersion: SASL_AUTHENTICATE_RANGE[1] });
    }
    this.apiVersions = ranges.sort((a, b) => a.apiKey - b.apiKey);
    this.features = nodeFeatures(this.handlers.keys());
  }

  static create(options: KafkaServerOptions): KafkaServer {
    return new KafkaServer(options);
  }

  handlerFor(apiKey: number): Handler | undefined {
    return this.handlers.get(apiKey);
  }

  /**
   * One warn line per failed authentication (the user tried, never a password, and the client's
   * address), at most one a second per client IP so a password-guessing loop cannot flood the log.
   */
  noteFailedAuthentication(clientHost: string, client: string, listener: string, attempted: string | undefined): void {
    if (!this.#authFailureLog.allow(clientHost)) return;
    this.log.warn({ client, listener, user: attempted?.slice(0, 256) ?? null }, `failed authentication from ${client} on ${listener}${attempted !== undefined ? ` (user ${JSON.stringify(attempted.slice(0, 256))})` : ''} (at most one line per second per client IP)`);
  }

  /** Logs a request for an API (or version) this node does not serve, once per API key. */
  noteUnsupported(apiKey: number, apiVersion: number, clientId: string | null): void {
    if (this.unsupportedSeen.has(apiKey)) return;
    this.unsupportedSeen.add(apiKey);
    this.log.warn({ apiKey, apiVersion, clientId }, `unsupported API ${apiName(apiKey)} (key ${apiKey}) v${apiVersion} from ${clientId ?? '(no client id)'}`);
  }

  /**
   * Binds every listener, in order. If one cannot be bound (a port in use), the ones already
   * bound are closed again and the error, prefixed with the listener's name, is thrown.
   */
  async start(): Promise<void> {
    if (this.servers.length > 0) return;
    warmUp();
    const started: Array<{ name: string; server: Server }> = [];
    for (const b of this.bindings) {
      if (b.tls !== undefined) this.#tlsServers.set(b.name, this.#tlsServer(b as ListenerBinding & { tls: ServerTls }));
      const server = createServer({ noDelay: true }, (socket) => this.accept(socket, b.name, b.securityProtocol));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(b.port, b.host, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        await Promise.all(started.map(({ server: s }) => new Promise<void>((resolve) => s.close(() => resolve()))));
        // Keep the system error (its code and syscall) so the cli reports it as the operator's to fix.
        if (err instanceof Error) err.message = `listener ${b.name} (${b.host}:${b.port}): ${err.message}`;
        throw err;
      }
      server.on('error', (err) => this.log.error({ err, listener: b.name }, 'listener error'));
      started.push({ name: b.name, server });
    }
    this.servers = started;
    for (const [name, address] of this.listenerAddresses()) this.log.info({ listener: name, address }, 'kafka listener started');
  }

  async stop(): Promise<void> {
    const servers = this.servers;
    if (servers.length === 0) return;
    this.servers = [];
    for (const [socket, timer] of this.#held) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.#held.clear();
    for (const socket of this.#handshaking) socket.destroy();
    for (const b of this.bindings) b.tls?.stop();
    this.#tlsServers.clear();
    const closed = Promise.all(servers.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve()))));
    for (const c of this.connections) c.close('server stopping');
    await closed;
  }

  /** Where the first listener is bound. */
  address(): { host: string; port: number } {
    const first = this.servers[0];
    if (!first) throw new Error('KafkaServer is not listening');
    return boundAddress(first.server);
  }

  /** Where each listener is bound, by name, in binding order. */
  listenerAddresses(): Map<string, { host: string; port: number }> {
    if (this.servers.length === 0) throw new Error('KafkaServer is not listening');
    return new Map(this.servers.map(({ name, server }) => [name, boundAddress(server)]));
  }

  /** `max.connections` now (it may be dynamic). */
  get maxConnections(): number {
    return this.#maxConnections();
  }

  /** Number of open connections (for tests and metrics). */
  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(socket: Socket, listener: string, securityProtocol?: SecurityProtocol, admitted = false): void {
    const max = this.#maxConnections();
    // TLS sockets still in their handshake count too (each holds a descriptor for up to the handshake timeout).
    if (this.connections.size + this.#handshaking.size >= max) {
      this.log.warn({ client: `${socket.remoteAddress}:${socket.remotePort}`, max }, 'max.connections reached, refusing');
      socket.destroy();
      return;
    }
    if (!admitted && !this.#admit(socket, max, () => this.accept(socket, listener, securityProtocol, true))) return;
    const tls = this.#tlsServers.get(listener);
    if (tls !== undefined) {
      // Limits apply to the TCP connection; the Connection starts once the TLS handshake is done (#secured).
      this.#handshaking.add(socket);
      socket.once('close', () => this.#handshaking.delete(socket));
      socket.resume();
      tls.emit('connection', socket);
      return;
    }
    this.connections.add(new Connection(this, this.nextConnectionId++, socket, listener, securityProtocol));
    this.metrics.connectionOpened(listener);
  }

  /**
   * A TLS listener's node:tls server: it binds nothing (accept hands it each admitted TCP socket)
   * and does the handshake; its secure context is replaced when the key material is reloaded.
   */
  #tlsServer(b: ListenerBinding & { tls: ServerTls }): TlsServer {
    const server = createTlsServer({ ...b.tls.serverOptions(), handshakeTimeout: Math.min(this.connectionsMaxIdleMs, 120_000) });
    server.on('secureConnection', (socket: TLSSocket) => this.#secured(socket, b));
    // A plaintext client, a wrong CA, a missing client certificate under ssl.client.auth=required:
    // the handshake fails and the socket is closed; nothing was buffered for it beyond TLS records.
    server.on('tlsClientError', (err, socket) => {
      const code = (err as NodeJS.ErrnoException).code;
      // ECONNRESET: closed before finishing a handshake (a TCP health check, a port scan): debug only.
      this.log[code === 'ECONNRESET' ? 'debug' : 'info']({ listener: b.name, client: `${socket.remoteAddress}:${socket.remotePort}`, err: code ?? err.message }, 'TLS handshake failed, closing');
    });
    b.tls.watch(this.log, (options) => server.setSecureContext(options));
    return server;
  }

  #secured(socket: TLSSocket, b: ListenerBinding & { tls: ServerTls }): void {
    if (this.servers.length === 0 || socket.destroyed) {
      socket.destroy();
      return;
    }
    const who = b.tls.principalOf(socket);
    if ('refused' in who) {
      this.log.info({ listener: b.name, client: `${socket.remoteAddress}:${socket.remotePort}`, reason: who.refused }, 'TLS client refused');
      socket.destroy();
      return;
    }
    const c = new Connection(this, this.nextConnectionId++, socket, b.name, b.securityProtocol);
    c.principal = who;
    this.connections.add(c);
    this.metrics.connectionOpened(b.name);
  }

  /**
   * The per-IP limit and the creation rate (connection-quotas.ts): false when the socket was
   * refused (closed); else true to serve it now, or it is held paused and `serve` is called on its turn.
   */
  #admit(socket: Socket, max: number, serve: () => void): boolean {
    const ip = normalizeIp(socket.remoteAddress ?? '');
    const client = `${socket.remoteAddress}:${socket.remotePort}`;
    const verdict = this.connectionQuotas.admit(ip);
    if ('refused' in verdict) {
      if (this.#quotaLog.allow('per-ip')) this.log.warn({ client, limit: verdict.refused }, 'max.connections.per.ip reached, refusing (logged once a minute)');
      socket.destroy();
      return false;
    }
    socket.once('close', () => this.connectionQuotas.release(ip));
    if (verdict.delayMs <= 0) return true;
    // Held sockets cost a descriptor each: with the open ones they stay within max.connections.
    if (this.connections.size + this.#handshaking.size + this.#held.size >= max) {
      socket.destroy();
      return false;
    }
    if (this.#quotaLog.allow('rate')) this.log.warn({ client, delayMs: verdict.delayMs }, 'max.connection.creation.rate reached, delaying accepts (logged once a minute)');
    socket.pause();
    this.#held.set(socket, setTimeout(() => {
      this.#held.delete(socket);
      if (socket.destroyed) return;
      socket.resume();
      serve();
    }, verdict.delayMs));
    return false;
  }

  /** @internal called by a connection when its socket closes. */
  forget(c: Connection): void {
    this.connections.delete(c);
  }
}

function boundAddress(server: Server): { host: string; port: number } {
  const a = server.address() as AddressInfo;
  return { host: a.address, port: a.port };
}

/**
 * The client id of a request header v1/v2 (an int16-length string right after api key, version
 * and correlation id), or null when absent or unreadable. Read by hand because the request of an
 * unknown API cannot be decoded.
 */
function clientIdOf(frame: Buffer): string | null {
  if (frame.length < 10) return null;
  const n = frame.readInt16BE(8);
  if (n < 0 || 10 + n > frame.length) return null;
  return frame.toString('utf8', 10, 10 + n);
}
