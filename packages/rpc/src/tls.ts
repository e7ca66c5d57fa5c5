/**
 * TLS for the RPC between roles: node:tls key material (PEM `key`, `cert` chain, `ca`, `passphrase`)
 * and handshake options (`minVersion`, `maxVersion`, `ciphers`). Both ends present a certificate:
 * the server requires the client's (mutual TLS: the RPC has no other authentication), and the
 * client checks the server's against the host it dialled unless `verifyHostname` is false.
 *
 * A node turns it on with `runnel.rpc.ssl.enabled=true`; the material comes from the unprefixed
 * Kafka ssl.* keys (common's tls.ts; `ssl.endpoint.identification.algorithm` empty = no host name
 * check). RpcTls.for(config) is that node's one instance: its RpcServer and every RpcClient take it,
 * and when the keystore or truststore file changes (checked every `runnel.ssl.reload.interval.ms`)
 * new connections use the new material; a bad new file logs one error and the old material stays.
 */
import type { SecureContextOptions } from 'node:tls';
import { ConfigError, secureContextOptions, silentLogger, tlsFiles, tlsFileStamp, tlsSettings, type BrokerConfig, type Logger, type TlsSettings } from '@runnel/common';

export type RpcTlsOptions = SecureContextOptions & { verifyHostname?: boolean };

const byConfig = new WeakMap<BrokerConfig, RpcTls | null>();

export class RpcTls {
  readonly #settings: TlsSettings;
  readonly #logger: Logger;
  #options: RpcTlsOptions;
  #stamp: string;
  #timer: NodeJS.Timeout | null = null;
  readonly #listeners = new Set<(options: RpcTlsOptions) => void>();

  /**
   * The RPC TLS of a node's configuration, undefined when `runnel.rpc.ssl.enabled` is false; one
   * instance per config object. Throws a ConfigError naming the key when the material is bad.
   */
  static for(config: BrokerConfig, logger?: Logger): RpcTls | undefined {
    let tls = byConfig.get(config);
    if (tls === undefined) {
      tls = config.get('runnel.rpc.ssl.enabled') ? new RpcTls(tlsSettings(config), logger ?? silentLogger()) : null;
      byConfig.set(config, tls);
    }
    return tls ?? undefined;
  }

  constructor(settings: TlsSettings, logger: Logger = silentLogger()) {
    this.#settings = { ...settings, scope: 'rpc' };
    this.#logger = logger;
    this.#options = this.#load();
    this.#stamp = tlsFileStamp(this.#settings);
  }

  /** The current material and options. */
  options(): RpcTlsOptions {
    return this.#options;
  }

  /** Calls `fn` with the new options after each successful reload; returns the unsubscribe. */
  onReload(fn: (options: RpcTlsOptions) => void): () => void {
    this.#listeners.add(fn);
    this.#arm();
    return () => {
      this.#listeners.delete(fn);
    };
  }

  #load(): RpcTlsOptions {
    const options = secureContextOptions(this.#settings);
    // The RPC has no authentication but the client certificate: with Node's bundled CAs as the
    // truststore, any certificate a public CA signed would be let in to every role's RPC.
    if (options.ca === undefined) {
      throw new ConfigError('INVALID_VALUE', 'ssl.truststore.location', 'runnel.rpc.ssl.enabled: set ssl.truststore.location (or ssl.truststore.certificates) to the CA that signs the roles\' certificates; the RPC trusts no public CA');
    }
    return { ...options, verifyHostname: this.#settings.endpointIdentification.toLowerCase() === 'https' };
  }

  /** Clients read options() per connect, so the check runs from the first subscription or call of watch(). */
  #arm(): void {
    if (this.#timer !== null || this.#settings.reloadIntervalMs <= 0 || tlsFiles(this.#settings).length === 0) return;
    this.#timer = setInterval(() => this.#check(), this.#settings.reloadIntervalMs);
    this.#timer.unref();
  }

  /** Start checking the files for a change (the server subscribing does it too). */
  watch(): void {
    this.#arm();
  }

  #check(): void {
    const stamp = tlsFileStamp(this.#settings);
    if (stamp === this.#stamp) return;
    this.#stamp = stamp;
    try {
      this.#options = this.#load();
    } catch (err) {
      this.#logger.error({ err: (err as Error).message }, `RPC TLS reload failed, keeping the previous key and certificates: ${(err as Error).message}`);
      return;
    }
    this.#logger.info({ files: tlsFiles(this.#settings) }, 'RPC TLS key material reloaded; new connections use it');
    for (const fn of this.#listeners) fn(this.#options);
  }
}
