/**
 * Who a request comes from, as Kafka's KafkaPrincipal: the authenticated identity of a connection.
 * PLAINTEXT and SSL without a client certificate are ANONYMOUS; SSL with one is `User:` + the
 * certificate's mapped subject DN; SASL_* is `User:` + the authorized id of the SASL exchange.
 */
export interface KafkaPrincipal {
  type: 'User';
  name: string;
}

/** Kafka's KafkaPrincipal.ANONYMOUS (`User:ANONYMOUS`). */
export const ANONYMOUS: KafkaPrincipal = Object.freeze({ type: 'User', name: 'ANONYMOUS' }) as KafkaPrincipal;

/** Kafka's security protocols (a listener's, via listener.security.protocol.map). */
export type SecurityProtocol = 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';

/** `User:alice`, Kafka's string form of a principal (ACLs, super.users, logs). */
export function principalString(p: KafkaPrincipal): string {
  return `${p.type}:${p.name}`;
}

/** Whether a listener of this protocol authenticates with SASL before serving requests. */
export function isSasl(protocol: SecurityProtocol): boolean {
  return protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL';
}
