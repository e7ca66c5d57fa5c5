/**
 * A node's SASL settings from its configuration and metadata (SaslOptions for the KafkaServer),
 * and the SCRAM users seeded at start (`runnel.sasl.scram.bootstrap.users`).
 */
import { ConfigError, type BrokerConfig, type Logger } from '@runnel/common';
import type { MetadataStore, ScramMechanismName } from '@runnel/metadata';
import type { SaslOptions } from './authenticator.ts';
import { plainUserDigests } from './plain.ts';
import { parseJaasUsers } from './jaas.ts';
import { credentialFromPassword, isScramMechanism, SCRAM_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS } from './scram.ts';

/**
 * The SaslOptions of a node whose listeners include a SASL_* one (undefined otherwise). PLAIN on a
 * listener needs `listener.name.<listener>.plain.sasl.jaas.config` with its users, as Kafka's
 * broker needs a JAAS section: without one, or with one that does not parse, the start is refused
 * (a ConfigError naming the key). SCRAM credentials are read from the metadata snapshot per login.
 */
export function saslOptions(config: BrokerConfig, metadata?: MetadataStore): SaslOptions | undefined {
  const sasl = config.listenerSetup.client.filter((l) => l.securityProtocol === 'SASL_PLAINTEXT' || l.securityProtocol === 'SASL_SSL');
  if (sasl.length === 0) return undefined;
  const mechanisms = new Map<string, readonly string[]>();
  const plain = new Map<string, ReadonlyMap<string, Buffer>>();
  for (const l of sasl) {
    const enabled = config.forListener(l.name, 'sasl.enabled.mechanisms').map((m) => m.toUpperCase());
    mechanisms.set(l.name, enabled);
    if (!enabled.includes('PLAIN')) continue;
    const key = `listener.name.${l.name.toLowerCase()}.plain.sasl.jaas.config`;
    const text = config.listenerRaw(l.name, 'plain.sasl.jaas.config');
    if (text === null) {
      throw new ConfigError('INVALID_VALUE', key, `${key}: listener ${l.name} enables PLAIN (sasl.enabled.mechanisms) but has no JAAS config with its users (org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>="<password>";)`);
    }
    let users: Map<string, string>;
    try {
      users = parseJaasUsers(text);
    } catch (err) {
      throw new ConfigError('INVALID_VALUE', key, `${key}: ${(err as Error).message}`);
    }
    plain.set(l.name, plainUserDigests(users));
  }
  return {
    mechanisms: (listener) => mechanisms.get(listener) ?? [],
    plainUsers: (listener) => plain.get(listener) ?? new Map(),
    scramCredential: (mechanism, user) => {
      try {
        return metadata?.snapshot().scramCredentials?.get(user)?.get(mechanism);
      } catch {
        return undefined; // no snapshot yet: nobody can log in with SCRAM
      }
    },
    maxReceiveSize: config.get('sasl.server.max.receive.size'),
    failedAuthenticationDelayMs: config.get('connection.failed.authentication.delay.ms'),
    reauthMs: Number(config.get('connections.max.reauth.ms')),
  };
}

export interface BootstrapScramUser {
  mechanism: ScramMechanismName;
  name: string;
  password: string;
  iterations: number;
}

/**
 * Parses `runnel.sasl.scram.bootstrap.users`: `MECHANISM=[name=<user>,password=<password>(,iterations=<n>)]`
 * entries (kafka-storage format --add-scram's syntax) separated by spaces or semicolons. A password
 * may be quoted ("...") to hold a comma or a bracket. Throws a ConfigError naming the key.
 */
export function parseBootstrapScramUsers(text: string): BootstrapScramUser[] {
  const KEY = 'runnel.sasl.scram.bootstrap.users';
  const bad = (why: string) => new ConfigError('INVALID_VALUE', KEY, `${KEY}: ${why} (expected SCRAM-SHA-256=[name=<user>,password=<password>] entries separated by spaces or ";")`);
  const out: BootstrapScramUser[] = [];
  const re = /\s*([A-Za-z0-9-]+)=\[((?:"(?:[^"\\]|\\.)*"|[^\]"])*)\]\s*;?/gy;
  let pos = 0;
  while (pos < text.length) {
    if (/^[\s;]*$/.test(text.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(text);
    // Positions only, never the text: what fails to parse is usually a password (unclosed quote, a comma in it).
    if (!m) throw bad(`cannot parse at character ${pos + 1}`);
    pos = re.lastIndex;
    const mechanism = m[1]!.toUpperCase();
    if (!isScramMechanism(mechanism)) throw bad(`${m[1]} is not SCRAM-SHA-256 or SCRAM-SHA-512`);
    const fields = new Map<string, string>();
    for (const part of m[2]!.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw bad(`a ${mechanism} entry has a part that is not key=value (quote a password that holds a comma)`);
      let v = part.slice(eq + 1).trim();
      if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
      fields.set(part.slice(0, eq).trim(), v);
    }
    const name = fields.get('name');
    const password = fields.get('password');
    if (!name) throw bad(`a ${mechanism} entry has no name`);
    if (!password) throw bad(`the ${mechanism} entry of ${name} has no password`);
    const iterations = fields.has('iterations') ? Number(fields.get('iterations')) : SCRAM_MIN_ITERATIONS;
    if (!Number.isInteger(iterations) || iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS) {
      throw bad(`iterations of ${name} must be an integer from ${SCRAM_MIN_ITERATIONS} to ${SCRAM_MAX_ITERATIONS}`);
    }
    out.push({ mechanism, name, password, iterations });
  }
  return out;
}

/**
 * Creates the bootstrap SCRAM users that have no credential of that mechanism yet (a password
 * changed since with kafka-configs is kept). Only the salted keys reach the metadata.
 */
export async function seedScramUsers(config: BrokerConfig, metadata: MetadataStore, log: Logger): Promise<void> {
  const text = config.get('runnel.sasl.scram.bootstrap.users');
  if (text === null || text.trim() === '') return;
  const users = parseBootstrapScramUsers(text);
  const existing = metadata.snapshot().scramCredentials;
  const missing = users.filter((u) => !existing?.get(u.name)?.has(u.mechanism));
  if (missing.length === 0) return;
  if (!metadata.alterScramCredentials) {
    log.warn('runnel.sasl.scram.bootstrap.users: this metadata store cannot store SCRAM credentials; no user was created');
    return;
  }
  await metadata.alterScramCredentials(
    missing.map((u) => ({ user: u.name, mechanism: u.mechanism, credential: credentialFromPassword(u.mechanism, u.password, u.iterations) })),
    [],
  );
  log.info({ users: missing.map((u) => `${u.name} (${u.mechanism})`) }, 'created the bootstrap SCRAM users');
}
