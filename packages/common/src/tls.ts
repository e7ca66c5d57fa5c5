/**
 * Kafka's ssl.* keys (PEM only) as node:tls options, shared by the TLS listeners
 * (@runnel/kafka-server's tls.ts) and the RPC between roles (@runnel/rpc's tls.ts).
 *
 * - Keystore: `ssl.keystore.location` (one PEM file: the private key and the certificate chain,
 *   leaf first) or inline `ssl.keystore.key` + `ssl.keystore.certificate.chain`; an encrypted key
 *   takes `ssl.key.password`. JKS and PKCS12 are refused (PEM only), and so are
 *   `ssl.keystore.password` / `ssl.truststore.password` with PEM, as in Kafka.
 * - Truststore: `ssl.truststore.location` or `ssl.truststore.certificates` (PEM CA certificates);
 *   unset = Node's bundled CAs.
 * - `ssl.enabled.protocols` / `ssl.protocol` give minVersion/maxVersion; `ssl.cipher.suites` takes
 *   IANA (Java) or OpenSSL names.
 */
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, getCiphers, type SecureContextOptions } from 'node:tls';
import { ConfigError, type BrokerConfig } from './config.ts';

export type ClientAuth = 'none' | 'requested' | 'required';

/** The ssl.* settings of one listener (or of the RPC), as configured. */
export interface TlsSettings {
  /** Where the settings come from, for error messages: `listener SSL` or `rpc`. */
  scope: string;
  keystoreType: string;
  keystoreLocation: string | null;
  keystorePassword: string | null;
  keystoreKey: string | null;
  keystoreCertificateChain: string | null;
  keyPassword: string | null;
  truststoreType: string;
  truststoreLocation: string | null;
  truststoreCertificates: string | null;
  truststorePassword: string | null;
  clientAuth: ClientAuth;
  enabledProtocols: string[];
  protocol: string;
  cipherSuites: string[];
  principalMappingRules: string;
  endpointIdentification: string;
  reloadIntervalMs: number;
}

/** The ssl.* keys as `listener` sees them (listener.name.<l>.ssl.* over ssl.*); no listener = the unprefixed keys (RPC). */
export function tlsSettings(config: BrokerConfig, listener?: string): TlsSettings {
  const get = <K extends Parameters<BrokerConfig['get']>[0]>(k: K) => (listener === undefined ? config.get(k) : config.forListener(listener, k));
  return {
    scope: listener === undefined ? 'rpc' : `listener ${listener}`,
    keystoreType: get('ssl.keystore.type').toUpperCase(),
    keystoreLocation: get('ssl.keystore.location'),
    keystorePassword: get('ssl.keystore.password'),
    keystoreKey: get('ssl.keystore.key'),
    keystoreCertificateChain: get('ssl.keystore.certificate.chain'),
    keyPassword: get('ssl.key.password'),
    truststoreType: get('ssl.truststore.type').toUpperCase(),
    truststoreLocation: get('ssl.truststore.location'),
    truststoreCertificates: get('ssl.truststore.certificates'),
    truststorePassword: get('ssl.truststore.password'),
    clientAuth: get('ssl.client.auth').toLowerCase() as ClientAuth,
    enabledProtocols: get('ssl.enabled.protocols'),
    protocol: get('ssl.protocol'),
    cipherSuites: get('ssl.cipher.suites'),
    principalMappingRules: get('ssl.principal.mapping.rules'),
    endpointIdentification: get('ssl.endpoint.identification.algorithm'),
    reloadIntervalMs: config.get('runnel.ssl.reload.interval.ms'),
  };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

function pemBlocks(text: string): Array<{ type: string; pem: string }> {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ type: m[1]!, pem: m[0] + '\n' }));
}

/** The node:tls material (key, cert chain, CAs) and handshake options the settings give. Throws a ConfigError naming the key. */
export function secureContextOptions(s: TlsSettings, needKey = true): SecureContextOptions {
  const fail = (key: string, why: string): never => {
    throw new ConfigError('INVALID_VALUE', key, `${s.scope}: ${key}: ${why}`);
  };
  if (s.keystoreType !== 'PEM') fail('ssl.keystore.type', `${s.keystoreType} is not supported; Runnel reads PEM only (ssl.keystore.type=PEM; convert a JKS or PKCS12 keystore with keytool/openssl)`);
  if (s.truststoreType !== 'PEM') fail('ssl.truststore.type', `${s.truststoreType} is not supported; Runnel reads PEM only (ssl.truststore.type=PEM)`);
  if (s.keystorePassword !== null) fail('ssl.keystore.password', 'a PEM keystore has no password (set ssl.key.password for an encrypted key)');
  if (s.truststorePassword !== null) fail('ssl.truststore.password', 'a PEM truststore has no password');
  const options: SecureContextOptions = {};
  let keyText: string | null = null;
  let chainText: string | null = null;
  if (s.keystoreLocation !== null) {
    if (s.keystoreKey !== null || s.keystoreCertificateChain !== null) fail('ssl.keystore.location', 'set either ssl.keystore.location or ssl.keystore.key with ssl.keystore.certificate.chain, not both');
    const text = readPem('ssl.keystore.location', s.keystoreLocation, fail);
    keyText = text;
    chainText = text;
  } else if (s.keystoreKey !== null || s.keystoreCertificateChain !== null) {
    if (s.keystoreKey === null) fail('ssl.keystore.key', 'missing (ssl.keystore.certificate.chain is set)');
    if (s.keystoreCertificateChain === null) fail('ssl.keystore.certificate.chain', 'missing (ssl.keystore.key is set)');
    keyText = s.keystoreKey;
    chainText = s.keystoreCertificateChain;
  } else if (needKey) {
    fail('ssl.keystore.location', 'not set: a TLS listener needs its key and certificate (ssl.keystore.location, or ssl.keystore.key and ssl.keystore.certificate.chain)');
  }
  const keyKey = s.keystoreLocation !== null ? 'ssl.keystore.location' : 'ssl.keystore.key';
  const chainKey = s.keystoreLocation !== null ? 'ssl.keystore.location' : 'ssl.keystore.certificate.chain';
  if (keyText !== null && chainText !== null) {
    const keys = pemBlocks(keyText).filter((b) => b.type.endsWith('PRIVATE KEY'));
    const certs = pemBlocks(chainText).filter((b) => b.type === 'CERTIFICATE');
    if (keys.length !== 1) fail(keyKey, keys.length === 0 ? 'no PEM private key (BEGIN PRIVATE KEY) found' : 'more than one private key');
    if (certs.length === 0) fail(chainKey, 'no PEM certificate (BEGIN CERTIFICATE) found');
    options.key = keys[0]!.pem;
    options.cert = certs.map((c) => c.pem).join('');
    if (s.keyPassword !== null) options.passphrase = s.keyPassword;
  }
  let caText: string | null = null;
  if (s.truststoreLocation !== null) {
    if (s.truststoreCertificates !== null) fail('ssl.truststore.location', 'set either ssl.truststore.location or ssl.truststore.certificates, not both');
    caText = readPem('ssl.truststore.location', s.truststoreLocation, fail);
  } else if (s.truststoreCertificates !== null) {
    caText = s.truststoreCertificates;
  }
  if (caText !== null) {
    const cas = pemBlocks(caText).filter((b) => b.type === 'CERTIFICATE');
    if (cas.length === 0) fail(s.truststoreLocation !== null ? 'ssl.truststore.location' : 'ssl.truststore.certificates', 'no PEM certificate (BEGIN CERTIFICATE) found');
    options.ca = cas.map((c) => c.pem);
  }
  Object.assign(options, protocolRange(s, fail));
  const ciphers = opensslCiphers(s.cipherSuites, fail);
  if (ciphers !== undefined) options.ciphers = ciphers;
  // Parse now, so a wrong password, a key that does not match its certificate or a bad PEM is a
  // startup (or reload) error rather than a failure of every handshake.
  try {
    createSecureContext(options);
  } catch (err) {
    fail(keyText !== null ? keyKey : 'ssl.truststore.location', `${(err as Error).message}${/bad decrypt|decrypt/i.test((err as Error).message) ? ' (wrong ssl.key.password?)' : ''}`);
  }
  return options;
}

function readPem(key: string, path: string, fail: (key: string, why: string) => never): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    return fail(key, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

const VERSION_ORDER = ['TLSv1.2', 'TLSv1.3'] as const;
type TlsVersion = (typeof VERSION_ORDER)[number];

/** ssl.enabled.protocols (and ssl.protocol as a cap) as node:tls minVersion/maxVersion. */
function protocolRange(s: TlsSettings, fail: (key: string, why: string) => never): { minVersion: TlsVersion; maxVersion: TlsVersion } {
  const enabled = VERSION_ORDER.filter((v) => s.enabledProtocols.includes(v));
  if (enabled.length === 0) fail('ssl.enabled.protocols', `${s.enabledProtocols.join(',')} has no version Runnel serves (TLSv1.2, TLSv1.3)`);
  let max = enabled[enabled.length - 1]!;
  if (s.protocol === 'TLSv1.2') max = 'TLSv1.2';
  if (!enabled.includes(max)) fail('ssl.protocol', `${s.protocol} is below every version in ssl.enabled.protocols (${s.enabledProtocols.join(',')})`);
  return { minVersion: enabled[0]!, maxVersion: max };
}

/**
 * ssl.cipher.suites as an OpenSSL cipher string. Kafka configs name suites the IANA (Java) way
 * (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); OpenSSL names them differently below TLS 1.3
 * (`ECDHE-RSA-AES128-GCM-SHA256`), so IANA names are translated; TLS 1.3 suites share one name.
 */
function opensslCiphers(suites: string[], fail: (key: string, why: string) => never): string | undefined {
  if (suites.length === 0) return undefined;
  const known = new Set(getCiphers().map((c) => c.toUpperCase()));
  return suites.map((suite) => {
    const name = ianaToOpenssl(suite.trim());
    if (!known.has(name.toUpperCase())) fail('ssl.cipher.suites', `${suite} is not a cipher suite this build of OpenSSL knows`);
    return name;
  }).join(':');
}

function ianaToOpenssl(suite: string): string {
  const m = /^TLS_(.+)_WITH_(.+)$/.exec(suite);
  if (!m) return suite; // a TLS 1.3 suite, or already an OpenSSL name
  const kx = m[1] === 'RSA' ? '' : `${m[1]!.replace(/_/g, '-')}-`;
  let cipher = m[2]!
    .replace(/^AES_(128|256)_/, 'AES$1-')
    .replace(/^CHACHA20_POLY1305_SHA256$/, 'CHACHA20-POLY1305')
    .replace(/-CBC_SHA$/, '-SHA').replace(/-CBC_/, '-')
    .replace(/_/g, '-');
  if (cipher.startsWith('AES') && cipher.includes('-CBC-')) cipher = cipher.replace('-CBC-', '-');
  return kx + cipher;
}

/** A fingerprint of the files the settings read (mtime, size, inode), to notice a change for reload. */
export function tlsFileStamp(s: TlsSettings): string {
  return tlsFiles(s).map((f) => {
    try {
      const st = statSync(f);
      return `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      return 'missing';
    }
  }).join('|');
}

/** The keystore and truststore files the settings read (none when inline PEM is used). */
export function tlsFiles(s: TlsSettings): string[] {
  return [s.keystoreLocation, s.truststoreLocation].filter((f): f is string => f !== null);
}
