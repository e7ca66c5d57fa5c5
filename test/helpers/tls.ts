/**
 * Throwaway certificates for TLS tests, made at test time with the `openssl` binary (.ci/run
 * installs it when missing): a self-signed CA and leaf certificates it signs, as PEM files in a
 * directory the caller owns (and removes). Keys are unencrypted EC P-256 unless a passphrase is
 * asked for, so a test makes a handful in well under a second.
 *
 * const ca = makeCa(dir);
 * const server = issueCert(ca, { cn: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
 * const alice = issueCert(ca, { cn: 'alice', client: true, subject: '/O=acme/OU=eng/CN=alice' });
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Ca {
  readonly dir: string;
  readonly name: string;
  /** The CA certificate (PEM file), what a truststore / `ssl.ca.location` points at. */
  readonly certPath: string;
  readonly keyPath: string;
  /** The CA certificate's PEM text. */
  readonly cert: string;
}

export interface IssuedCert {
  readonly name: string;
  /** The leaf certificate alone (PEM file). */
  readonly certPath: string;
  /** Its private key (PEM file; PKCS#8, encrypted when `passphrase` was given). */
  readonly keyPath: string;
  /** Key then certificate then CA certificate in one PEM file: Kafka's `ssl.keystore.location` for `ssl.keystore.type=PEM`. */
  readonly keystorePath: string;
  /** The leaf certificate then the CA certificate (PEM file): a chain a server or client presents. */
  readonly chainPath: string;
  readonly cert: string;
  readonly key: string;
  readonly chain: string;
  /** The subject DN in RFC 2253 form (most significant last: `CN=alice,OU=eng,O=acme`), what Kafka's principal builder sees. */
  readonly subjectRfc2253: string;
}

export interface IssueOptions {
  /** Common name; also the file name stem unless `name` is given. */
  cn: string;
  /** File name stem (default: the cn with anything unsafe replaced). */
  name?: string;
  /** The full subject in openssl's `/K=V/K=V` form, most significant first (default `/CN=<cn>`). */
  subject?: string;
  /** subjectAltName DNS entries. */
  dnsNames?: string[];
  /** subjectAltName IP entries. */
  ipAddresses?: string[];
  /** A client certificate (extendedKeyUsage clientAuth) rather than a server one (serverAuth). Default false. */
  client?: boolean;
  /** Encrypt the key with this passphrase (`ssl.key.password`). */
  passphrase?: string;
  /** Validity in days (default 2). */
  days?: number;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA (`CN=<name>`) in `dir`: `<name>.crt` and `<name>.key`. */
export function makeCa(dir: string, name = 'test-ca'): Ca {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', keyPath, '-out', certPath,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { dir, name, certPath, keyPath, cert: readFileSync(certPath, 'utf8') };
}

/** A leaf certificate signed by `ca`, written next to it as `<name>.crt`, `<name>.key`, `<name>.pem` (keystore) and `<name>.chain.pem`. */
export function issueCert(ca: Ca, options: IssueOptions): IssuedCert {
  const name = options.name ?? options.cn.replace(/[^A-Za-z0-9_.-]/g, '_');
  const dir = ca.dir;
  const keyPath = join(dir, `${name}.key`);
  const csrPath = join(dir, `${name}.csr`);
  const certPath = join(dir, `${name}.crt`);
  const extPath = join(dir, `${name}.ext`);
  const subject = options.subject ?? `/CN=${options.cn}`;
  const alt = [...(options.dnsNames ?? []).map((d) => `DNS:${d}`), ...(options.ipAddresses ?? []).map((ip) => `IP:${ip}`)];
  writeFileSync(extPath, [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${options.client ? 'clientAuth' : 'serverAuth,clientAuth'}`,
    ...(alt.length > 0 ? [`subjectAltName=${alt.join(',')}`] : []),
  ].join('\n') + '\n');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath], dir);
  openssl(['req', '-new', '-key', keyPath, '-subj', subject, '-out', csrPath], dir);
  openssl(['x509', '-req', '-in', csrPath, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial', '-sha256',
    '-days', String(options.days ?? 2), '-extfile', extPath, '-out', certPath], dir);
  if (options.passphrase !== undefined) {
    openssl(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', keyPath, '-out', keyPath + '.enc', '-passout', `pass:${options.passphrase}`], dir);
    writeFileSync(keyPath, readFileSync(keyPath + '.enc'));
  } else {
    // PKCS#8 ("BEGIN PRIVATE KEY"): the form Kafka's PEM keystore and every client library read.
    openssl(['pkcs8', '-topk8', '-nocrypt', '-in', keyPath, '-out', keyPath + '.p8'], dir);
    writeFileSync(keyPath, readFileSync(keyPath + '.p8'));
  }
  const cert = readFileSync(certPath, 'utf8');
  const key = readFileSync(keyPath, 'utf8');
  const chain = cert + ca.cert;
  const chainPath = join(dir, `${name}.chain.pem`);
  const keystorePath = join(dir, `${name}.pem`);
  writeFileSync(chainPath, chain);
  writeFileSync(keystorePath, key + chain);
  const subjectRfc2253 = subject.split('/').filter((p) => p !== '').reverse().join(',');
  return { name, certPath, keyPath, keystorePath, chainPath, cert, key, chain, subjectRfc2253 };
}
