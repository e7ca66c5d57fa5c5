import { api, f, message, structs } from '../schema.ts';

/**
 * SCRAM credential management (KIP-554), as Kafka's message schemas. Mechanism codes: 0 UNKNOWN,
 * 1 SCRAM-SHA-256, 2 SCRAM-SHA-512. The client salts the password: an upsertion carries the salt
 * and SaltedPassword, never the password.
 */

/** DescribeUserScramCredentials (key 50; v0 flexible). `users` null = every user. */
export const DescribeUserScramCredentials = api(50,
  message('DescribeUserScramCredentialsRequest', [0, 0], 0, [
    structs('users', '0+', [
      f('name', 'string', '0+'),
    ], { nullable: '0+' }),
  ]),
  message('DescribeUserScramCredentialsResponse', [0, 0], 0, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    f('errorCode', 'int16', '0+'),
    f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    structs('results', '0+', [
      f('user', 'string', '0+'),
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
      structs('credentialInfos', '0+', [
        f('mechanism', 'int8', '0+'),
        f('iterations', 'int32', '0+'),
      ]),
    ]),
  ]),
);

/** AlterUserScramCredentials (key 51; v0 flexible): one result per user named. */
export const AlterUserScramCredentials = api(51,
  message('AlterUserScramCredentialsRequest', [0, 0], 0, [
    structs('deletions', '0+', [
      f('name', 'string', '0+'),
      f('mechanism', 'int8', '0+'),
    ]),
    structs('upsertions', '0+', [
      f('name', 'string', '0+'),
      f('mechanism', 'int8', '0+'),
      f('iterations', 'int32', '0+'),
      f('salt', 'bytes', '0+'),
      f('saltedPassword', 'bytes', '0+'),
    ]),
  ]),
  message('AlterUserScramCredentialsResponse', [0, 0], 0, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('results', '0+', [
      f('user', 'string', '0+'),
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    ]),
  ]),
);
