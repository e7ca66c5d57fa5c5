/**
 * TLS for the RPC between roles: node:tls key material (PEM `key`, `cert` chain, `ca`, `passphrase`)
 * and handshake options (`minVersion`, `maxVersion`, `ciphers`) as @runnel/kafka-server's tls.ts
 * makes them from Kafka's ssl.* keys. Both ends present a certificate: the server requires the
 * client's (mutual TLS), and the client checks the server's against the host it dialled unless
 * `verifyHostname` is false (`ssl.endpoint.identification.algorithm=` empty).
 */
import type { SecureContextOptions } from 'node:tls';

export type RpcTlsOptions = SecureContextOptions & { verifyHostname?: boolean };
