/**
 * TLS for SSL and SASL_SSL listeners (and, through @runnel/rpc's options, the RPC between roles):
 * Kafka's `ssl.*` keys, PEM only, turned into node:tls options; the client certificate's principal
 * (`ssl.principal.mapping.rules`); and reload of the key material without a restart.
 *
 * - The ssl.* keys become node:tls options in @runnel/common's tls.ts (PEM only; shared with the RPC).
 * - `ssl.client.auth`: none (no certificate asked), requested (asked; an invalid one closes the
 *   connection, none is ANONYMOUS), required (mutual TLS: no or an invalid certificate fails the
 *   handshake).
 * - Reload (ServerTls.poll): the files are stat'ed every `runnel.ssl.reload.interval.ms`; when one
 *   changed, the material is loaded again and, if it is good, handed to the listener
 *   (tls.Server.setSecureContext): new connections get it, open ones keep theirs. A bad new file
 *   logs one error (per change) and the old material stays.
 */
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { ConfigError, secureContextOptions, tlsFiles, tlsFileStamp, type ClientAuth, type Logger, type TlsSettings } from '@runnel/common';
import { ANONYMOUS, type KafkaPrincipal } from './security.ts';

export { secureContextOptions, tlsSettings, type ClientAuth, type TlsSettings } from '@runnel/common';

// ------------------------------------------------------------------------------------ principals

interface MappingRule { isDefault: boolean; pattern?: RegExp; whole?: RegExp; replacement?: string; lower?: boolean; upper?: boolean }

/**
 * Kafka's SslPrincipalMapper: `ssl.principal.mapping.rules` is a comma-separated list of
 * `RULE:pattern/replacement/[L|U]` and `DEFAULT` (the DN unchanged). The first rule whose pattern
 * matches the whole DN gives the name (the pattern's matches replaced, then lower/upper cased);
 * when none applies, the connection is refused (Kafka fails the authentication).
 */
export function parsePrincipalMappingRules(text: string): (dn: string) => string | null {
  const rules: MappingRule[] = [];
  const splitter = /\s*(?:(DEFAULT)|RULE:((?:\\.|[^\\/])*)\/((?:\\.|[^\\/])*)\/([LU]?)(?:[^,]*?)|(.*?))\s*(?:,\s*|$)/gy;
  const input = text.trim();
  if (input !== '') {
    let m: RegExpExecArray | null;
    while (splitter.lastIndex < input.length && (m = splitter.exec(input)) !== null) {
      if (m[0] === '') break;
      if (m[1] !== undefined) rules.push({ isDefault: true });
      else if (m[2] !== undefined) {
        let source: string;
        try {
          source = m[2];
          new RegExp(source);
        } catch (err) {
          throw new ConfigError('INVALID_VALUE', 'ssl.principal.mapping.rules', `ssl.principal.mapping.rules: ${JSON.stringify(m[0].trim())}: ${(err as Error).message}`);
        }
        rules.push({
          isDefault: false, pattern: new RegExp(source, 'g'), whole: new RegExp(`^(?:${source})$`),
          replacement: m[3]!.replace(/\\\//g, '/'), lower: m[4] === 'L', upper: m[4] === 'U',
        });
      } else {
        throw new ConfigError('INVALID_VALUE', 'ssl.principal.mapping.rules', `ssl.principal.mapping.rules: invalid rule ${JSON.stringify((m[5] ?? m[0]).trim())} (expected RULE:pattern/replacement/[LU] or DEFAULT)`);
      }
    }
  }
  if (rules.length === 0) rules.push({ isDefault: true });
  return (dn) => {
    for (const r of rules) {
      if (r.isDefault) return dn;
      if (!r.whole!.test(dn)) continue;
      let out = dn.replace(r.pattern!, r.replacement!);
      if (r.lower) out = out.toLowerCase();
      else if (r.upper) out = out.toUpperCase();
      return out;
    }
    return null;
  };
}

/**
 * The subject DN of a peer certificate in RFC 2253 form (most significant RDN last, as Java's
 * X500Principal.getName() gives Kafka): node's X509Certificate.subject lists RDNs most significant
 * first, one per line, values already escaped per RFC 2253.
 */
export function subjectRfc2253(socket: TLSSocket): string | null {
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return null;
  return cert.subject.split('\n').filter((l) => l !== '').reverse().join(',');
}

// ------------------------------------------------------------------------------------ a listener's TLS

/** The TLS side of one listener: its node:tls server options, the principal of a connection, reload. */
export class ServerTls {
  readonly settings: TlsSettings;
  readonly clientAuth: ClientAuth;
  #options: SecureContextOptions;
  readonly #mapPrincipal: (dn: string) => string | null;
  #timer: NodeJS.Timeout | null = null;
  /** mtime:size of each watched file when last loaded (or last failed to load). */
  #stamp: string;

  constructor(settings: TlsSettings) {
    this.settings = settings;
    this.clientAuth = settings.clientAuth;
    this.#options = secureContextOptions(settings);
    this.#mapPrincipal = parsePrincipalMappingRules(settings.principalMappingRules);
    this.#stamp = tlsFileStamp(this.settings);
  }

  /** The options for tls.createServer (and setSecureContext on reload). */
  serverOptions(): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
    return { ...this.#options, requestCert: this.clientAuth !== 'none', rejectUnauthorized: this.clientAuth === 'required' };
  }

  /**
   * Who a TLS connection is, or an error string when it must be refused: an invalid certificate
   * under `requested`, or a DN no mapping rule applies to. No certificate = ANONYMOUS.
   */
  principalOf(socket: TLSSocket): KafkaPrincipal | { refused: string } {
    if (this.clientAuth === 'none') return ANONYMOUS;
    const dn = subjectRfc2253(socket);
    if (dn === null) return ANONYMOUS;
    if (!socket.authorized) return { refused: `client certificate ${dn} not trusted: ${String(socket.authorizationError)}` };
    const name = this.#mapPrincipal(dn);
    if (name === null) return { refused: `no ssl.principal.mapping.rules rule applies to ${dn}` };
    return { type: 'User', name };
  }

  /**
   * Checks the files every reloadIntervalMs; on a change loads them and calls `apply` with the new
   * server options (a bad file: one error logged per change, the old material stays).
   */
  watch(log: Logger, apply: (options: SecureContextOptions) => void): void {
    if (this.#timer !== null || this.settings.reloadIntervalMs <= 0 || tlsFiles(this.settings).length === 0) return;
    this.#timer = setInterval(() => this.#check(log, apply), this.settings.reloadIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #check(log: Logger, apply: (options: SecureContextOptions) => void): void {
    const stamp = tlsFileStamp(this.settings);
    if (stamp === this.#stamp) return;
    this.#stamp = stamp;
    let options: SecureContextOptions;
    try {
      options = secureContextOptions(this.settings);
    } catch (err) {
      log.error({ scope: this.settings.scope, err: (err as Error).message }, `TLS reload failed, keeping the previous key and certificates: ${(err as Error).message}`);
      return;
    }
    this.#options = options;
    apply(this.serverOptions());
    log.info({ scope: this.settings.scope, files: tlsFiles(this.settings) }, 'TLS key material reloaded; new connections use it');
  }
}
