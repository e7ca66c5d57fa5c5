import { describe, expect, it } from 'vitest';
import { Authenticator, type SaslOptions } from '../src/index.ts';
import { plainUserDigests } from '../src/sasl/plain.ts';

const options: SaslOptions = {
  mechanisms: () => ['PLAIN'], plainUsers: () => plainUserDigests(new Map([['alice', 'alice-secret']])), scramCredential: () => undefined,
  maxReceiveSize: 524288, failedAuthenticationDelayMs: 0, reauthMs: 0,
};

describe('Authenticator: the user a failed login names (logged)', () => {
  const fail = (token: string) => {
    const a = new Authenticator('SASL', options);
    expect(a.handshake('PLAIN', 1).outcome).toBe('continue');
    const step = a.authenticate(Buffer.from(token), 0);
    expect(step.outcome).toBe('failed');
    return step.attempted;
  };

  it('is the PLAIN authcid of a well-formed message with a wrong password', () => {
    expect(fail('\0alice\0wrong')).toBe('alice');
  });

  it('is never the password of a malformed PLAIN message (user NUL password, no authzid)', () => {
    expect(fail('alice\0s3cret')).toBeUndefined();
    expect(fail('\0\0alice\0s3cret')).toBeUndefined();
  });
});
