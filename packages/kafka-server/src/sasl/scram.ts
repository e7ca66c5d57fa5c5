/**
 * SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side, with node:crypto, as Kafka's
 * ScramSaslServer: two round trips, client-first → server-first, client-final → server-final.
 *
 * Credentials are kept as Kafka keeps them: salt, iterations, StoredKey = H(ClientKey) and
 * ServerKey = HMAC(SaltedPassword, "Server Key"); never the password nor SaltedPassword. The proof
 * check compares H(ClientProof XOR ClientSignature) with StoredKey with timingSafeEqual. An unknown
 * user gets a made-up credential (derived from a per-process secret) and fails at the proof like
 * a wrong password, so the exchange does not tell which user names exist.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { SCRAM_MECHANISM_NAMES, type ScramCredentialData, type ScramMechanismName } from '@runnel/metadata';

/** The mechanisms and the stored credential (Kafka's ScramCredential) are the metadata's. */
export const SCRAM_MECHANISMS = SCRAM_MECHANISM_NAMES;
export type ScramMechanism = ScramMechanismName;
export type ScramCredential = ScramCredentialData;

/** Kafka's ScramMechanism bounds on iterations. */
export const SCRAM_MIN_ITERATIONS = 4096;
export const SCRAM_MAX_ITERATIONS = 16384;

const HASH: Record<ScramMechanism, { alg: 'sha256' | 'sha512'; bytes: number }> = {
  'SCRAM-SHA-256': { alg: 'sha256', bytes: 32 },
  'SCRAM-SHA-512': { alg: 'sha512', bytes: 64 },
};

export function isScramMechanism(m: string): m is ScramMechanism {
  return (SCRAM_MECHANISMS as readonly string[]).includes(m);
}

const hmac = (alg: string, key: Buffer, data: string | Buffer) => createHmac(alg, key).update(data).digest();

/** The credential for a salted password (what AlterUserScramCredentials carries: the client salts). */
export function credentialFromSaltedPassword(mechanism: ScramMechanism, salt: Buffer, saltedPassword: Buffer, iterations: number): ScramCredential {
  const { alg } = HASH[mechanism];
  const clientKey = hmac(alg, saltedPassword, 'Client Key');
  return {
    salt: Buffer.from(salt),
    storedKey: createHash(alg).update(clientKey).digest(),
    serverKey: hmac(alg, saltedPassword, 'Server Key'),
    iterations,
  };
}

/** SaltedPassword = Hi(password, salt, i) (PBKDF2 with the mechanism's HMAC). */
export function saltPassword(mechanism: ScramMechanism, password: string, salt: Buffer, iterations: number): Buffer {
  const { alg, bytes } = HASH[mechanism];
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, bytes, alg);
}

/** A credential from a password with a fresh random salt (bootstrap users, tests). */
export function credentialFromPassword(mechanism: ScramMechanism, password: string, iterations = SCRAM_MIN_ITERATIONS): ScramCredential {
  const salt = randomBytes(HASH[mechanism].bytes);
  return credentialFromSaltedPassword(mechanism, salt, saltPassword(mechanism, password, salt, iterations), iterations);
}

/** Per-process secret behind the made-up credentials of unknown users. */
const FAKE_SECRET = randomBytes(32);

function fakeCredential(mechanism: ScramMechanism, user: string): ScramCredential {
  const { alg } = HASH[mechanism];
  const seed = hmac(alg, FAKE_SECRET, `${mechanism}\0${user}`);
  return { salt: hmac(alg, seed, 'salt'), storedKey: hmac(alg, seed, 'stored'), serverKey: hmac(alg, seed, 'server'), iterations: SCRAM_MIN_ITERATIONS };
}

/** Thrown for any malformed or failed exchange; `message` is safe to send to the client. */
export class SaslAuthenticationError extends Error {}

/** RFC 5802 saslname: "=2C" is ",", "=3D" is "="; any other "=" is invalid. */
function decodeSaslName(s: string): string {
  if (/=(?!2C|3D)/.test(s)) throw new SaslAuthenticationError('Invalid SCRAM user name encoding');
  return s.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** Parses `k=v,k=v` attributes (a value may contain "="). */
function attributes(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new SaslAuthenticationError('Invalid SCRAM message');
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

/**
 * One SCRAM exchange. `step(token)` returns the server's next message; `complete` once the proof
 * checked. `lookup(user)` gives the stored credential (undefined: unknown user).
 */
export class ScramServer {
  readonly mechanism: ScramMechanism;
  readonly #lookup: (user: string) => ScramCredential | undefined;
  #state: 'first' | 'final' | 'done' | 'failed' = 'first';
  #user = '';
  #credential: ScramCredential | undefined;
  #known = false;
  #nonce = '';
  #gs2Header = '';
  #clientFirstBare = '';
  #serverFirst = '';

  constructor(mechanism: ScramMechanism, lookup: (user: string) => ScramCredential | undefined) {
    this.mechanism = mechanism;
    this.#lookup = lookup;
  }

  get complete(): boolean { return this.#state === 'done'; }
  /** The authenticated user (Kafka's authorization id), once complete. */
  get authorizationId(): string { return this.#user; }

  step(token: Buffer): Buffer {
    try {
      if (this.#state === 'first') return this.#first(token.toString('utf8'));
      if (this.#state === 'final') return this.#final(token.toString('utf8'));
      throw new SaslAuthenticationError('Unexpected SCRAM message');
    } catch (err) {
      this.#state = 'failed';
      throw err instanceof SaslAuthenticationError ? err : new SaslAuthenticationError('Invalid SCRAM message');
    }
  }

  #first(msg: string): Buffer {
    // gs2-header: "n,," / "y,," (no channel binding) with an optional "a=<authzid>"; "p=" (binding) is refused.
    const m = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(msg);
    if (!m) throw new SaslAuthenticationError('Invalid SCRAM client first message (channel binding is not supported)');
    this.#gs2Header = msg.slice(0, msg.length - m[3]!.length);
    this.#clientFirstBare = m[3]!;
    const bare = /^n=([^,]*),r=([^,]+)(,.*)?$/s.exec(this.#clientFirstBare);
    if (!bare) throw new SaslAuthenticationError('Invalid SCRAM client first message');
    const [, user, clientNonce, extensions] = bare as unknown as [string, string, string, string | undefined];
    // Kafka's only extension is tokenauth=true (delegation tokens), which Runnel does not have.
    if (extensions !== undefined && /,tokenauth=true(,|$)/i.test(extensions)) throw new SaslAuthenticationError('Delegation tokens are not supported');
    this.#user = decodeSaslName(user);
    const authzid = m[2] ? decodeSaslName(m[2].slice(2)) : '';
    if (authzid !== '' && authzid !== this.#user) throw new SaslAuthenticationError('Authentication failed: Client requested an authorization id that is different from username');
    const found = this.#lookup(this.#user);
    this.#known = found !== undefined;
    this.#credential = found ?? fakeCredential(this.mechanism, this.#user);
    this.#nonce = clientNonce + randomBytes(24).toString('base64url');
    this.#serverFirst = `r=${this.#nonce},s=${this.#credential.salt.toString('base64')},i=${this.#credential.iterations}`;
    this.#state = 'final';
    return Buffer.from(this.#serverFirst, 'utf8');
  }

  #final(msg: string): Buffer {
    const p = msg.lastIndexOf(',p=');
    if (p < 0) throw new SaslAuthenticationError('Invalid SCRAM client final message');
    const withoutProof = msg.slice(0, p);
    const attrs = attributes(withoutProof);
    const channel = attrs.get('c');
    if (channel === undefined || Buffer.from(channel, 'base64').toString('utf8') !== this.#gs2Header) {
      throw new SaslAuthenticationError('Invalid SCRAM client final message: channel binding does not match');
    }
    // endsWith, as Kafka's ScramSaslServer: librdkafka sends its own nonce again in front of the
    // server's combined one. The proof covers the message as sent, so this weakens nothing.
    if (!(attrs.get('r') ?? '').endsWith(this.#nonce)) throw new SaslAuthenticationError('Invalid SCRAM client final message: nonce does not match');
    const { alg, bytes } = HASH[this.mechanism];
    const proof = Buffer.from(msg.slice(p + 3), 'base64');
    const credential = this.#credential!;
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const signature = hmac(alg, credential.storedKey, authMessage);
    const clientKey = Buffer.alloc(bytes);
    for (let i = 0; i < bytes; i++) clientKey[i] = (proof[i] ?? 0) ^ signature[i]!;
    const computed = createHash(alg).update(clientKey).digest();
    const ok = timingSafeEqual(computed, credential.storedKey) && proof.length === bytes && this.#known;
    if (!ok) {
      throw new SaslAuthenticationError(`Authentication failed during authentication due to invalid credentials with SASL mechanism ${this.mechanism}`);
    }
    this.#state = 'done';
    return Buffer.from(`v=${hmac(alg, credential.serverKey, authMessage).toString('base64')}`, 'utf8');
  }
}
