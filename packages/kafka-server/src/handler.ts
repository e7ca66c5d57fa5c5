import type { RequestHeader, Requests, Responses, SupportedApiKey } from '@runnel/protocol';
import type { KafkaPrincipal, SecurityProtocol } from './security.ts';
import type { Authorizer } from './authorizer.ts';

/** What a handler knows about the request besides its body. */
export interface RequestContext {
  header: RequestHeader;
  /** Unique per server, increasing. */
  connectionId: number;
  /** `host:port` of the peer. */
  clientAddress: string;
  /** `Date.now()` when the whole frame had arrived. */
  receivedAt: number;
  /** Aborted when the connection closes or the server stops (a long-polling Fetch should give up). */
  signal?: AbortSignal;
  /**
   * The name of the listener the request came in on (upper case, e.g. EXTERNAL): clients are told
   * the addresses of that listener. Absent outside a KafkaServer (handlers called directly).
   */
  listener?: string;
  /**
   * A node's advertised address on this request's listener, null when the node has no such
   * listener; absent when the server was given no `addressOf`.
   */
  addressOf?: (nodeId: number) => { host: string; port: number } | null;
  /**
   * Who sent it (security.ts): ANONYMOUS on PLAINTEXT (and SSL without a client certificate),
   * `User:<certificate DN>` on SSL with a client certificate, `User:<authorized id>` after SASL.
   */
  principal: KafkaPrincipal;
  /** The security protocol of the listener the request came in on. */
  securityProtocol: SecurityProtocol;
  /** The peer's IP address without the port (`::ffff:` dropped from IPv4-mapped ones): ACL host matching, quotas. */
  clientHost: string;
  /**
   * The ACL authorizer (authorizer.ts), absent when `authorizer.class.name` is unset (everything is
   * allowed). Handlers check per resource through `authorized(ctx, ...)`; the whole-API checks are
   * made by the server before the handler runs (authorization.ts).
   */
  authorizer?: Authorizer;
}

/**
 * A handler is a declaration: the API key, the version range it serves, and the
 * function. The registry of handlers is the ApiVersions table. `handle` returns the response body,
 * or `undefined` to send no response at all (Produce with acks=0); it maps its own errors to Kafka
 * error codes. A throw is treated as a bug: the connection is closed.
 */
export interface Handler<Req = any, Res = any> {
  api: number;
  versions: readonly [min: number, max: number];
  handle(request: Req, ctx: RequestContext): Res | undefined | Promise<Res | undefined>;
}

/** Declares a handler whose request and response types follow from its API key. */
export function defineHandler<K extends SupportedApiKey>(h: {
  api: K;
  versions: readonly [min: number, max: number];
  handle(request: Requests[K], ctx: RequestContext): Responses[K] | undefined | Promise<Responses[K] | undefined>;
}): Handler<Requests[K], Responses[K]> {
  return h;
}
