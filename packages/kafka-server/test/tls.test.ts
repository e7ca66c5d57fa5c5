/**
 * tls.ts: Kafka's ssl.principal.mapping.rules, and the principal a KafkaServer gives a connection
 * on an SSL listener (the client certificate's RFC 2253 subject after the rules; ANONYMOUS without
 * one), with certificates made at test time (test/helpers/tls.ts) and a real node:tls client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '@runnel/common';
import { ApiKey, encodeRequest } from '@runnel/protocol';
import { issueCert, makeCa, type Ca, type IssuedCert } from '../../../test/helpers/tls.ts';
import { defineHandler, KafkaServer, parsePrincipalMappingRules, principalString, ServerTls, tlsSettings, type RequestContext } from '../src/index.ts';

describe('ssl.principal.mapping.rules', () => {
  it('DEFAULT keeps the DN; the first matching RULE wins, with L and U', () => {
    const map = parsePrincipalMappingRules('RULE:^CN=([^,]+),OU=eng,.*$/$1/L, RULE:^CN=([^,]+),OU=ops,.*$/$1@ops/U,DEFAULT');
    expect(map('CN=Alice,OU=eng,O=acme')).toBe('alice');
    expect(map('CN=bob,OU=ops,O=acme')).toBe('BOB@OPS');
    expect(map('CN=carol,O=acme')).toBe('CN=carol,O=acme');
    expect(parsePrincipalMappingRules('DEFAULT')('CN=x')).toBe('CN=x');
    expect(parsePrincipalMappingRules('')('CN=x')).toBe('CN=x');
  });

  it('no rule applying gives null (the connection is refused), and a bad rule is a config error', () => {
    expect(parsePrincipalMappingRules('RULE:^CN=([^,]+),OU=eng$/$1/')('CN=a,OU=ops')).toBeNull();
    expect(() => parsePrincipalMappingRules('RULE:^CN=(/x/')).toThrow(/ssl\.principal\.mapping\.rules/);
    expect(() => parsePrincipalMappingRules('NOT_A_RULE')).toThrow(/invalid rule/);
  });
});

describe('the principal of an SSL connection', () => {
  let dir: string;
  let ca: Ca;
  let alice: IssuedCert;
  let server: KafkaServer;
  const seen: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'runnel-ks-tls-'));
    ca = makeCa(dir);
    const node = issueCert(ca, { cn: 'localhost', ipAddresses: ['127.0.0.1'] });
    alice = issueCert(ca, { cn: 'alice', client: true, subject: '/O=acme/OU=eng/CN=alice' });
    const { config } = resolveConfig({ overrides: new Map([
      ['listeners', 'SSL://127.0.0.1:0'], ['inter.broker.listener.name', 'SSL'],
      ['ssl.keystore.location', node.keystorePath], ['ssl.truststore.location', ca.certPath],
      ['ssl.client.auth', 'requested'], ['ssl.principal.mapping.rules', 'RULE:^CN=([^,]+),OU=eng,.*$/$1/,DEFAULT'],
    ]) });
    server = KafkaServer.create({
      listeners: [{ name: 'SSL', host: '127.0.0.1', port: 0, securityProtocol: 'SSL', tls: new ServerTls(tlsSettings(config, 'SSL')) }],
      handlers: [defineHandler({
        api: ApiKey.Metadata, versions: [0, 12],
        handle: (_req, ctx: RequestContext) => {
          seen.push(principalString(ctx.principal));
          return { throttleTimeMs: 0, brokers: [], clusterId: null, controllerId: -1, topics: [] };
        },
      })],
    });
    await server.start();
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One Metadata v1 request over TLS; resolves once its response arrived. */
  const metadataOver = (o: { cert?: string; key?: string }) => new Promise<void>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.address().port, ca: [ca.cert], ...o }, () => {
      s.write(encodeRequest({ apiKey: ApiKey.Metadata, apiVersion: 1, correlationId: 1, clientId: 't' } as never, { topics: [] } as never));
    });
    s.once('data', () => { s.end(); resolve(); });
    s.on('error', reject);
  });

  it('is User:<mapped DN> with a client certificate and ANONYMOUS without one', async () => {
    await metadataOver({ cert: alice.cert, key: alice.key });
    await metadataOver({});
    expect(seen).toEqual(['User:alice', 'User:ANONYMOUS']);
  });
});

describe('max.connections on a TLS listener', () => {
  it('counts sockets still in their TLS handshake, so silent ones cannot pile up past it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runnel-ks-tls-max-'));
    const node = issueCert(makeCa(dir), { cn: 'localhost', ipAddresses: ['127.0.0.1'] });
    const { config } = resolveConfig({ overrides: new Map([['listeners', 'SSL://127.0.0.1:0'], ['inter.broker.listener.name', 'SSL'], ['ssl.keystore.location', node.keystorePath]]) });
    const server = KafkaServer.create({
      listeners: [{ name: 'SSL', host: '127.0.0.1', port: 0, securityProtocol: 'SSL', tls: new ServerTls(tlsSettings(config, 'SSL')) }],
      handlers: [],
      maxConnections: 1,
    });
    await server.start();
    const open = (): Promise<Socket> => new Promise((resolve) => {
      const s = tcpConnect(server.address().port, '127.0.0.1', () => resolve(s));
      s.on('error', () => {});
    });
    const closed = (s: Socket, ms: number) => new Promise<boolean>((resolve) => {
      if (s.destroyed) return resolve(true);
      const t = setTimeout(() => resolve(false), ms);
      s.once('close', () => { clearTimeout(t); resolve(true); });
    });
    try {
      // TCP connections that never start a handshake: the first is held, the second is over the limit.
      const first = await open();
      await new Promise((r) => setTimeout(r, 100));
      const second = await open();
      expect(await closed(second, 5000)).toBe(true);
      expect(first.destroyed).toBe(false);
      first.destroy();
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
