/**
 * SASL/PLAIN (RFC 4616), server side, as Kafka's PlainSaslServer with PlainServerCallbackHandler:
 * one message `authzid NUL authcid NUL passwd`, checked against the users of the listener's JAAS
 * config (`user_<name>="<password>"`). Passwords are compared as SHA-256 digests with
 * timingSafeEqual (equal lengths whatever the input), and an unknown user is compared against a
 * random digest, so neither the time nor the answer tells a wrong password from an unknown user.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SaslAuthenticationError } from './scram.ts';

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();
const NOBODY = randomBytes(32);

export class PlainServer {
  readonly mechanism = 'PLAIN';
  readonly #users: ReadonlyMap<string, Buffer>;
  #user = '';
  #done = false;

  /** `users`: user name → SHA-256 of the password (plainUserDigests). */
  constructor(users: ReadonlyMap<string, Buffer>) {
    this.#users = users;
  }

  get complete(): boolean { return this.#done; }
  get authorizationId(): string { return this.#user; }

  step(token: Buffer): Buffer {
    if (this.#done) throw new SaslAuthenticationError('Unexpected PLAIN message');
    const parts = token.toString('utf8').split('\0');
    if (parts.length !== 3) throw new SaslAuthenticationError('Invalid SASL/PLAIN response: expected 3 tokens');
    const [authzid, user, password] = parts as [string, string, string];
    if (user === '') throw new SaslAuthenticationError('Authentication failed: username not specified');
    if (password === '') throw new SaslAuthenticationError('Authentication failed: password not specified');
    const expected = this.#users.get(user);
    const match = timingSafeEqual(digest(password), expected ?? NOBODY) && expected !== undefined;
    if (!match) throw new SaslAuthenticationError('Authentication failed: Invalid username or password');
    if (authzid !== '' && authzid !== user) throw new SaslAuthenticationError('Authentication failed: Client requested an authorization id that is different from username');
    this.#user = user;
    this.#done = true;
    return Buffer.alloc(0);
  }
}

/** The SHA-256 digests of a JAAS config's PLAIN users (parseJaasUsers), for PlainServer. */
export function plainUserDigests(users: ReadonlyMap<string, string>): Map<string, Buffer> {
  return new Map([...users].map(([name, password]) => [name, digest(password)]));
}
