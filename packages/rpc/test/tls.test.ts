/**
 * The RPC over TLS (tls.ts): mutual TLS with certificates made at test time (test/helpers/tls.ts).
 * A call works when both ends hold certificates of the CA the other trusts; a plaintext client, a
 * client without a certificate, one with a certificate of another CA, and a client that dials a
 * server whose certificate does not name the host dialled are all refused (UNAVAILABLE).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCert, makeCa, type Ca, type IssuedCert } from '../../../test/helpers/tls.ts';
import { resolveConfig } from '@runnel/common';
import { RpcClient, RpcError, RpcServer, RpcTls, type RpcHandlers, type RpcTlsOptions } from '../src/index.ts';

let dir: string;
let ca: Ca;
let node: IssuedCert;
let foreign: IssuedCert;
let server: RpcServer;
const clients: RpcClient[] = [];

const echoRead: RpcHandlers = {
  'broker.read': (req) => ({ records: Buffer.from(req.topic), highWatermark: req.offset, logStartOffset: 0n }),
};
const read = { topic: 'tls', partition: 0, offset: 7n, maxBytes: 100, coordinatorEpoch: -1 };

function client(host: string, tls?: RpcTlsOptions): RpcClient {
  const c = RpcClient.create({ host, port: server.address().port, tls, connectTimeoutMs: 5000, requestTimeoutMs: 5000 });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError);
    return err as RpcError;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'runnel-rpc-tls-'));
  ca = makeCa(dir);
  node = issueCert(ca, { cn: 'node', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const other = makeCa(mkdtempSync(join(dir, 'other-')), 'other-ca');
  foreign = issueCert(other, { cn: 'node', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  server = RpcServer.create({ host: '127.0.0.1', port: 0, handlers: echoRead, tls: { key: node.key, cert: node.chain, ca: [ca.cert] } });
  await server.start();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('RPC over mutual TLS', () => {
  it('a client with a certificate of the trusted CA calls the server, by IP and by host name', async () => {
    const tls = { key: node.key, cert: node.chain, ca: [ca.cert] };
    const [byIp, byName] = await Promise.all([client('127.0.0.1', tls).call('broker.read', read), client('localhost', tls).call('broker.read', read)]);
    expect(byIp.records.toString()).toBe('tls');
    expect(byName.highWatermark).toBe(7n);
  });

  it('refuses a plaintext client, a client without a certificate and one of another CA', async () => {
    const errors = await Promise.all([
      failure(client('127.0.0.1').call('broker.read', read)),
      failure(client('127.0.0.1', { ca: [ca.cert] }).call('broker.read', read)),
      failure(client('127.0.0.1', { key: foreign.key, cert: foreign.chain, ca: [ca.cert] }).call('broker.read', read)),
    ]);
    for (const e of errors) expect(e.code).toBe('UNAVAILABLE');
  });

  it('logs a TCP connection closed before any handshake (a health check) at debug, a failed handshake as a warning', async () => {
    const lines: string[] = [];
    const log = (level: string) => (_o: object, msg: string) => { lines.push(`${level} ${msg}`); };
    const logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), child: () => logger } as never;
    const probed = RpcServer.create({ host: '127.0.0.1', port: 0, handlers: echoRead, logger, tls: { key: node.key, cert: node.chain, ca: [ca.cert] } });
    await probed.start();
    try {
      await new Promise<void>((resolve) => {
        const s = tcpConnect(probed.address().port, '127.0.0.1', () => s.destroy());
        s.on('close', () => resolve());
      });
      const c = RpcClient.create({ ...probed.address(), tls: { ca: [ca.cert] }, connectTimeoutMs: 5000, requestTimeoutMs: 5000 });
      clients.push(c);
      await failure(c.call('broker.read', read));
      await new Promise((r) => setTimeout(r, 200));
      expect(lines.filter((l) => l.includes('handshake failed'))).toEqual(['debug rpc TLS handshake failed, closing', 'warn rpc TLS handshake failed, closing']);
    } finally {
      await probed.stop();
    }
  });

  it('refuses to serve TLS without its own truststore (Node\'s public CAs would let any certificate in)', () => {
    expect(() => RpcServer.create({ host: '127.0.0.1', port: 0, handlers: echoRead, tls: { key: node.key, cert: node.chain } })).toThrow(/needs `ca`/);
    const config = resolveConfig({ overrides: new Map([['runnel.rpc.ssl.enabled', 'true'], ['ssl.keystore.location', node.keystorePath]]) }).config;
    expect(() => RpcTls.for(config)).toThrow(/ssl\.truststore\.location.*trusts no public CA/);
  });

  it('a client checks that the server certificate names the host it dialled (verifyHostname)', async () => {
    const elsewhere = issueCert(ca, { cn: 'elsewhere', dnsNames: ['elsewhere.invalid'] });
    const misnamed = RpcServer.create({ host: '127.0.0.1', port: 0, handlers: echoRead, tls: { key: elsewhere.key, cert: elsewhere.chain, ca: [ca.cert] } });
    await misnamed.start();
    try {
      const tls = { key: node.key, cert: node.chain, ca: [ca.cert] };
      const dial = (o: RpcTlsOptions) => {
        const c = RpcClient.create({ ...misnamed.address(), tls: o, connectTimeoutMs: 5000, requestTimeoutMs: 5000 });
        clients.push(c);
        return c.call('broker.read', read);
      };
      const e = await failure(dial(tls));
      expect(e.message).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list/);
      expect((await dial({ ...tls, verifyHostname: false })).records.toString()).toBe('tls');
    } finally {
      await misnamed.stop();
    }
  });
});
