import { api, arr, f, message } from '../schema.ts';

/** SaslHandshake (key 17). v1 means the SASL bytes follow in SaslAuthenticate requests. */
export const SaslHandshake = api(17,
  message('SaslHandshakeRequest', [0, 1], null, [
    f('mechanism', 'string', '0+'),
  ]),
  message('SaslHandshakeResponse', [0, 1], null, [
    f('errorCode', 'int16', '0+'),
    arr('mechanisms', 'string', '0+'),
  ]),
);

/** SaslAuthenticate (key 36). */
export const SaslAuthenticate = api(36,
  message('SaslAuthenticateRequest', [0, 2], 2, [
    f('authBytes', 'bytes', '0+'),
  ]),
  message('SaslAuthenticateResponse', [0, 2], 2, [
    f('errorCode', 'int16', '0+'),
    f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    f('authBytes', 'bytes', '0+'),
    f('sessionLifetimeMs', 'int64', '1+', { default: 0 }),
  ]),
);
