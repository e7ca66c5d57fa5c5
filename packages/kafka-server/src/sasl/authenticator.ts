/**
 * The SASL state of one connection on a SASL_PLAINTEXT or SASL_SSL listener (Kafka's
 * SaslServerAuthenticator), driven by the Connection in server.ts:
 *
 *   handshake ──SaslHandshake(mechanism)──▶ authenticate ──SaslAuthenticate…──▶ authenticated
 *        ▲                                                                        │
 *        └─────────── SaslHandshake again (KIP-368 re-authentication) ◀───────────┘
 *
 * - Before `authenticated`, only ApiVersions, SaslHandshake and SaslAuthenticate are served; the
 *   Connection closes on any other request, and caps frames at `sasl.server.max.receive.size`.
 * - SaslHandshake v0 means the SASL tokens follow as raw size-prefixed frames without a Kafka
 *   header (`rawTokens`); v1 means they come in SaslAuthenticate requests.
 * - A failed exchange answers SASL_AUTHENTICATION_FAILED (or ILLEGAL_SASL_STATE /
 *   UNSUPPORTED_SASL_MECHANISM) and the Connection closes after the failed-authentication delay.
 * - With `connections.max.reauth.ms` > 0, the session lasts that long (SaslAuthenticate v1+ tells
 *   the client `sessionLifetimeMs`); a request after it ends, other than a re-authentication,
 *   closes the connection, as Kafka does. Re-authentication must keep the mechanism and the
 *   principal.
 */
import { ErrorCode } from '@runnel/protocol';
import { PlainServer } from './plain.ts';
import { isScramMechanism, SaslAuthenticationError, ScramServer, type ScramCredential, type ScramMechanism } from './scram.ts';

/** The SASL mechanisms Runnel serves (sasl.enabled.mechanisms may list only these). */
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

/** What a server needs to authenticate SASL connections (built from the node's config: sasl/config.ts). */
export interface SaslOptions {
  /** The enabled mechanisms of a listener (sasl.enabled.mechanisms, listener-scoped). */
  mechanisms(listener: string): readonly string[];
  /** The PLAIN users of a listener (its plain JAAS config): user → SHA-256 of the password. */
  plainUsers(listener: string): ReadonlyMap<string, Buffer>;
  /** A user's SCRAM credential (metadata); undefined when none. */
  scramCredential(mechanism: ScramMechanism, user: string): ScramCredential | undefined;
  /** `sasl.server.max.receive.size`: the largest frame read before authentication (524288). */
  maxReceiveSize: number;
  /** `connection.failed.authentication.delay.ms` (100). */
  failedAuthenticationDelayMs: number;
  /** `connections.max.reauth.ms` (0: sessions do not expire). */
  reauthMs: number;
}

interface Mechanism {
  readonly mechanism: string;
  readonly complete: boolean;
  readonly authorizationId: string;
  step(token: Buffer): Buffer;
}

/** One step's outcome: the response body, and what the connection does next. */
export interface SaslStep {
  body: Record<string, unknown>;
  /** 'failed': answer after the failed-authentication delay, then close. */
  outcome: 'continue' | 'authenticated' | 'failed';
  /** A user name the client tried (for the failure log line); never a password. */
  attempted?: string;
}

export class Authenticator {
  readonly listener: string;
  readonly #options: SaslOptions;
  #state: 'handshake' | 'authenticate' | 'authenticated' = 'handshake';
  #mechanism: Mechanism | null = null;
  /** The mechanism and user of the first authentication (re-authentication must keep both). */
  #sessionMechanism: string | null = null;
  #user: string | null = null;
  #expiresAt = Number.POSITIVE_INFINITY;
  /** True after a SaslHandshake v0: the next frames are raw SASL tokens. */
  rawTokens = false;

  constructor(listener: string, options: SaslOptions) {
    this.listener = listener;
    this.#options = options;
  }

  /** Whether requests other than the SASL ones are served (authenticated at least once, and not re-authenticating). */
  get authenticated(): boolean {
    return this.#user !== null;
  }

  /** True while the first authentication has not completed (the frame cap applies). */
  get beforeFirstAuthentication(): boolean {
    return this.#user === null;
  }

  /** The authenticated user. */
  get user(): string | null {
    return this.#user;
  }

  /**
   * Whether the session ended (connections.max.reauth.ms) and no re-authentication has completed
   * since. A re-authentication merely begun (SaslHandshake sent, never finished) does not extend
   * the session: else a client could keep a revoked or expired login alive forever that way.
   */
  expired(now: number): boolean {
    return this.#user !== null && now >= this.#expiresAt;
  }

  handshake(mechanism: string, version: number): SaslStep {
    const enabled = this.#options.mechanisms(this.listener);
    if (this.#state === 'authenticate') {
      return { body: { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms: enabled }, outcome: 'failed' };
    }
    if (!enabled.includes(mechanism)) {
      return { body: { errorCode: ErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms: enabled }, outcome: 'failed' };
    }
    if (this.#sessionMechanism !== null && mechanism !== this.#sessionMechanism) {
      // Kafka: a re-authentication cannot change mechanisms.
      return { body: { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms: enabled }, outcome: 'failed' };
    }
    this.#mechanism = mechanism === 'PLAIN'
      ? new PlainServer(this.#options.plainUsers(this.listener))
      : isScramMechanism(mechanism)
        ? new ScramServer(mechanism, (user) => this.#options.scramCredential(mechanism, user))
        : null;
    if (this.#mechanism === null) return { body: { errorCode: ErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms: enabled }, outcome: 'failed' };
    this.#state = 'authenticate';
    this.rawTokens = version === 0;
    return { body: { errorCode: ErrorCode.NONE, mechanisms: enabled }, outcome: 'continue' };
  }

  /** One SASL token (a SaslAuthenticate's authBytes, or a raw v0 frame). */
  authenticate(token: Buffer, now: number): SaslStep {
    const failed = (errorCode: number, errorMessage: string, attempted?: string): SaslStep => ({
      body: { errorCode, errorMessage, authBytes: Buffer.alloc(0), sessionLifetimeMs: 0n }, outcome: 'failed', attempted,
    });
    const mech = this.#mechanism;
    if (this.#state !== 'authenticate' || mech === null) {
      return failed(ErrorCode.ILLEGAL_SASL_STATE, 'Unexpected SaslAuthenticate request: no SaslHandshake before it');
    }
    let out: Buffer;
    try {
      out = mech.step(token);
    } catch (err) {
      this.#state = 'handshake';
      const message = err instanceof SaslAuthenticationError ? err.message : 'Authentication failed';
      return failed(ErrorCode.SASL_AUTHENTICATION_FAILED, message, attemptedUser(mech, token));
    }
    if (!mech.complete) {
      return { body: { errorCode: ErrorCode.NONE, errorMessage: null, authBytes: out, sessionLifetimeMs: 0n }, outcome: 'continue' };
    }
    const user = mech.authorizationId;
    if (this.#user !== null && user !== this.#user) {
      this.#state = 'handshake';
      return failed(ErrorCode.SASL_AUTHENTICATION_FAILED, `Cannot change principals during re-authentication from User:${this.#user}: User:${user}`, user);
    }
    this.#user = user;
    this.#sessionMechanism = mech.mechanism;
    this.#state = 'authenticated';
    this.#mechanism = null;
    this.rawTokens = false;
    const lifetime = this.#options.reauthMs;
    this.#expiresAt = lifetime > 0 ? now + lifetime : Number.POSITIVE_INFINITY;
    return {
      body: { errorCode: ErrorCode.NONE, errorMessage: null, authBytes: out, sessionLifetimeMs: BigInt(lifetime > 0 ? lifetime : 0) },
      outcome: 'authenticated',
    };
  }
}

/** The user name a failed token named, for the log line (PLAIN's authcid, SCRAM's n=). */
function attemptedUser(mech: Mechanism, token: Buffer): string | undefined {
  if (mech.authorizationId !== '') return mech.authorizationId;
  const text = token.subarray(0, 1024).toString('utf8');
  if (mech.mechanism === 'PLAIN') {
    // Only a well-formed message names its user second: in a malformed one ("user NUL password")
    // the second part is the password, which must never reach the log.
    const parts = text.split('\0');
    return parts.length === 3 ? parts[1] : undefined;
  }
  return /(?:^|,)n=([^,]*)/.exec(text)?.[1];
}
