/**
 * SASL (issue 16): one `runnel start` with a PLAINTEXT and a SASL_PLAINTEXT listener, PLAIN users
 * from the listener's JAAS config and SCRAM users seeded by runnel.sasl.scram.bootstrap.users or
 * made with kafka-configs. Real clients (kcat/librdkafka, kafkajs, Kafka's kafka-configs) log in
 * with every mechanism; raw connections check the gate before authentication, the frame cap,
 * 1,000 wrong passwords, SaslHandshake v0's raw tokens and KIP-368 re-authentication.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
import { ApiKey, decodeResponse, encodeRequest } from '@runnel/protocol';
import { suiteBroker } from './helpers/suite-broker.ts';
import { RawKafka } from './helpers/raw-kafka.ts';
import { runKcat } from './helpers/kcat.ts';
import { kafkaTools } from './helpers/kafka-tools.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { issueCert, makeCa } from './helpers/tls.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REAUTH_MS = 3000;
const JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";';

describe('SASL_PLAINTEXT and SASL_SSL listeners', () => {
  // SASL_SSL: TLS first (the keystore made here, test/helpers/tls.ts), then the same SASL exchange.
  const certDir = mkdtempSync(join(tmpdir(), 'runnel-sasl-tls-'));
  const ca = makeCa(certDir);
  const serverCert = issueCert(ca, { cn: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  afterAll(() => rmSync(certDir, { recursive: true, force: true }));
  const broker = suiteBroker({
    set: [
      'listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0',
      `listener.name.sasl_ssl.ssl.keystore.location=${serverCert.keystorePath}`,
      'listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512',
      `listener.name.sasl_plaintext.plain.sasl.jaas.config=${JAAS}`,
      'runnel.sasl.scram.bootstrap.users=SCRAM-SHA-256=[name=bob,password=bob-secret];SCRAM-SHA-512=[name=bob,password=bob-secret,iterations=8192]',
      `connections.max.reauth.ms=${REAUTH_MS}`,
      'runnel.metrics.listener=127.0.0.1:0',
    ],
  });
  /** One sample of the broker's /metrics, 0 when absent. */
  const metric = async (name: string, listener: string) => {
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(broker().process.output())![1]!;
    const text = await (await fetch(url)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{listener="${listener}"}`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const saslPort = () => Number(/SASL_PLAINTEXT:\/\/127\.0\.0\.1:(\d+)/.exec(broker().process.output())![1]);
  const kcatSasl = (mechanism: string, user: string, password: string) => [
    '-b', `127.0.0.1:${saslPort()}`, '-X', 'security.protocol=SASL_PLAINTEXT', '-X', `sasl.mechanisms=${mechanism}`,
    '-X', `sasl.username=${user}`, '-X', `sasl.password=${password}`,
  ];

  /** One request on `conn`, its decoded answer (the frame after the `already` ones). */
  async function call<K extends ApiKey>(conn: RawKafka, apiKey: K, apiVersion: number, body: unknown, correlationId = conn.frames.length + 1) {
    const already = conn.frames.length;
    conn.send(encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'sasl-test' } as never, body as never));
    const frames = await conn.waitFrames(already + 1);
    return decodeResponse(apiKey as never, apiVersion, frames[already]!).body as Record<string, any>;
  }
  const plainToken = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`);
  async function plainLogin(conn: RawKafka, user: string, password: string) {
    const hs = await call(conn, ApiKey.SaslHandshake, 1, { mechanism: 'PLAIN' });
    expect(hs.errorCode).toBe(0);
    return call(conn, ApiKey.SaslAuthenticate, 2, { authBytes: plainToken(user, password) });
  }

  it('kcat produces and consumes with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512', async () => {
    const logins = [['PLAIN', 'alice', 'alice-secret'], ['SCRAM-SHA-256', 'bob', 'bob-secret'], ['SCRAM-SHA-512', 'bob', 'bob-secret']] as const;
    await Promise.all(logins.map(async ([mechanism, user, password], i) => {
      const topic = `sasl-kcat-${i}`;
      const p = await runKcat([...kcatSasl(mechanism, user, password), '-P', '-t', topic, '-K:'], { input: `k${i}:v-${mechanism}\n` });
      expect(p.code, p.stderr).toBe(0);
      const c = await runKcat([...kcatSasl(mechanism, user, password), '-C', '-t', topic, '-o', 'beginning', '-c', '1', '-e', '-f', '%k=%s']);
      expect(c.code, c.stderr).toBe(0);
      expect(c.stdout).toBe(`k${i}=v-${mechanism}`);
    }));
  }, 60_000);

  it('kcat over SASL_SSL: TLS, then SCRAM-SHA-512; the listener offers only its own mechanisms', async () => {
    const sslPort = Number(/SASL_SSL:\/\/127\.0\.0\.1:(\d+)/.exec(broker().process.output())![1]);
    const base = ['-b', `127.0.0.1:${sslPort}`, '-X', 'security.protocol=SASL_SSL', '-X', `ssl.ca.location=${ca.certPath}`];
    const ok = await runKcat([...base, '-X', 'sasl.mechanisms=SCRAM-SHA-512', '-X', 'sasl.username=bob', '-X', 'sasl.password=bob-secret', '-P', '-t', 'sasl-ssl'], { input: 'over-tls\n' });
    expect(ok.code, ok.stderr).toBe(0);
    const plain = await runKcat([...base, '-X', 'sasl.mechanisms=PLAIN', '-X', 'sasl.username=alice', '-X', 'sasl.password=alice-secret', '-L', '-m', '3'], { timeoutMs: 15_000 });
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/PLAIN.*not supported by broker|Unsupported SASL mechanism|UNSUPPORTED_SASL_MECHANISM/i);
  }, 30_000);

  it('kcat with a wrong password or an unknown user is refused', async () => {
    const results = await Promise.all([
      runKcat([...kcatSasl('PLAIN', 'alice', 'wrong'), '-L', '-m', '3'], { timeoutMs: 15_000 }),
      runKcat([...kcatSasl('SCRAM-SHA-512', 'bob', 'wrong'), '-L', '-m', '3'], { timeoutMs: 15_000 }),
      runKcat([...kcatSasl('SCRAM-SHA-256', 'nobody', 'bob-secret'), '-L', '-m', '3'], { timeoutMs: 15_000 }),
    ]);
    for (const r of results) {
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/SASL authentication error: Authentication failed/);
    }
  }, 30_000);

  it('kafkajs logs in with plain, scram-sha-256 and scram-sha-512 and re-authenticates (KIP-368) past connections.max.reauth.ms', async () => {
    const sasls: SASLOptions[] = [
      { mechanism: 'plain', username: 'alice', password: 'alice-secret' },
      { mechanism: 'scram-sha-256', username: 'bob', password: 'bob-secret' },
      { mechanism: 'scram-sha-512', username: 'bob', password: 'bob-secret' },
    ];
    await Promise.all(sasls.map(async (sasl) => {
      const admin = new Kafka({ brokers: [`127.0.0.1:${saslPort()}`], sasl, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        await admin.createTopics({ topics: [{ topic: `sasl-js-${sasl.mechanism}` }] });
        expect(await admin.listTopics()).toContain(`sasl-js-${sasl.mechanism}`);
        // Past the session lifetime the client must re-authenticate on its connection; the
        // broker would close it otherwise and the call below would have to reconnect.
        await new Promise((r) => setTimeout(r, REAUTH_MS + 500));
        expect(await admin.listTopics()).toContain(`sasl-js-${sasl.mechanism}`);
      } finally {
        await admin.disconnect();
      }
    }));
    // kafkajs re-authenticated in time (SaslAuthenticate v1+ told it sessionLifetimeMs): no
    // connection of its was closed for an expired session.
    expect(broker().process.output()).not.toContain('SASL session expired');
  }, 60_000);

  it('before authentication only ApiVersions and the SASL APIs are served: Metadata closes the connection', async () => {
    const conn = await RawKafka.open(saslPort());
    const versions = await call(conn, ApiKey.ApiVersions, 3, { clientSoftwareName: 't', clientSoftwareVersion: '1' });
    const keys = (versions.apiKeys as { apiKey: number }[]).map((k) => k.apiKey);
    expect(keys).toEqual(expect.arrayContaining([ApiKey.SaslHandshake, ApiKey.SaslAuthenticate]));
    conn.send(encodeRequest({ apiKey: ApiKey.Metadata, apiVersion: 12, correlationId: 9, clientId: 't' } as never, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false } as never));
    expect(await conn.closedWithin(5000)).toBe(true);
    expect(conn.frames).toHaveLength(1);
  });

  it('a frame over sasl.server.max.receive.size before authentication closes the connection before its body arrives', async () => {
    const conn = await RawKafka.open(saslPort());
    const size = Buffer.alloc(4);
    size.writeInt32BE(524288 + 1, 0);
    conn.send(size, Buffer.alloc(100));
    expect(await conn.closedWithin(5000)).toBe(true);
    // The same size is fine after authenticating (socket.request.max.bytes applies then).
    const ok = await RawKafka.open(saslPort());
    expect((await plainLogin(ok, 'alice', 'alice-secret')).errorCode).toBe(0);
    ok.close();
  });

  it('SaslHandshake v0: the PLAIN token goes as a raw frame, then requests are served', async () => {
    const conn = await RawKafka.open(saslPort());
    expect((await call(conn, ApiKey.SaslHandshake, 0, { mechanism: 'PLAIN' })).errorCode).toBe(0);
    const token = plainToken('alice', 'alice-secret');
    const size = Buffer.alloc(4);
    size.writeInt32BE(token.length, 0);
    conn.send(size, token);
    const frames = await conn.waitFrames(2);
    expect(frames[1]).toHaveLength(0); // PLAIN's empty server token
    const md = await call(conn, ApiKey.Metadata, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
    expect(md.brokers.length).toBe(1);
    conn.close();
    // An empty raw token is a bad frame size: closed as one, not as a reader error.
    const empty = await RawKafka.open(saslPort());
    expect((await call(empty, ApiKey.SaslHandshake, 0, { mechanism: 'PLAIN' })).errorCode).toBe(0);
    empty.send(Buffer.alloc(4));
    expect(await empty.closedWithin(5000)).toBe(true);
    expect(broker().process.output()).not.toContain('unexpected error while reading a request');
  });

  it('an unknown mechanism is refused with the enabled ones', async () => {
    const conn = await RawKafka.open(saslPort());
    const hs = await call(conn, ApiKey.SaslHandshake, 1, { mechanism: 'GSSAPI' });
    expect(hs.errorCode).toBe(33); // UNSUPPORTED_SASL_MECHANISM
    expect(hs.mechanisms).toEqual(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']);
    expect(await conn.closedWithin(5000)).toBe(true);
  });

  it('1,000 wrong passwords are all refused and closed, while an authenticated client keeps being served', async () => {
    const good = new Kafka({ brokers: [`127.0.0.1:${saslPort()}`], sasl: { mechanism: 'scram-sha-256', username: 'bob', password: 'bob-secret' }, logLevel: logLevel.NOTHING }).admin();
    await good.connect();
    let attacking = true;
    const goodLatencies: number[] = [];
    const goodLoop = (async () => {
      while (attacking) {
        const t = performance.now();
        await good.listTopics();
        goodLatencies.push(performance.now() - t);
      }
    })();
    const attempt = async () => {
      const conn = await RawKafka.open(saslPort());
      const res = await plainLogin(conn, 'alice', 'not-the-password');
      const closed = await conn.closedWithin(5000);
      conn.close();
      return { code: res.errorCode as number, closed };
    };
    const failedBefore = await metric('kafka_server_socket_server_metrics_failed_authentication_total', 'SASL_PLAINTEXT');
    const outcomes: { code: number; closed: boolean }[] = [];
    for (let batch = 0; batch < 10; batch++) outcomes.push(...await Promise.all(Array.from({ length: 100 }, attempt)));
    attacking = false;
    await goodLoop;
    await good.disconnect();
    expect(outcomes).toHaveLength(1000);
    expect(outcomes.every((o) => o.code === 58 && o.closed)).toBe(true); // SASL_AUTHENTICATION_FAILED
    expect(await metric('kafka_server_socket_server_metrics_failed_authentication_total', 'SASL_PLAINTEXT') - failedBefore).toBe(1000);
    expect(await metric('kafka_server_socket_server_metrics_successful_authentication_total', 'SASL_PLAINTEXT')).toBeGreaterThan(0);
    // The failed-authentication delay is per connection (a timer): the good client is not queued
    // behind it. A generous bound, far above the 100 ms delay times 1,000 failures / 100 at once.
    expect(goodLatencies.length).toBeGreaterThan(0);
    expect(Math.max(...goodLatencies)).toBeLessThan(5000);
    // One warn line per second per client IP at most, not one per failure.
    const lines = broker().process.output().split('\n').filter((l) => l.includes('failed authentication from'));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(100);
  }, 60_000);

  it('a session past connections.max.reauth.ms is closed on its next request; re-authentication as another user is refused', async () => {
    const expired = await RawKafka.open(saslPort());
    expect((await plainLogin(expired, 'alice', 'alice-secret')).sessionLifetimeMs).toBe(BigInt(REAUTH_MS));
    const other = await RawKafka.open(saslPort());
    expect((await plainLogin(other, 'alice', 'alice-secret')).errorCode).toBe(0);
    const switched = await plainLogin(other, 'admin', 'admin-secret');
    expect(switched.errorCode).toBe(58);
    expect(switched.errorMessage).toMatch(/Cannot change principals during re-authentication from User:alice: User:admin/);
    expect(await other.closedWithin(5000)).toBe(true);
    // A re-authentication begun (SaslHandshake) but never finished does not extend the session.
    const stalled = await RawKafka.open(saslPort());
    expect((await plainLogin(stalled, 'alice', 'alice-secret')).errorCode).toBe(0);
    await new Promise((r) => setTimeout(r, REAUTH_MS + 200));
    expired.send(encodeRequest({ apiKey: ApiKey.Metadata, apiVersion: 12, correlationId: 50, clientId: 't' } as never, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false } as never));
    expect(await expired.closedWithin(5000)).toBe(true);
    expect((await call(stalled, ApiKey.SaslHandshake, 1, { mechanism: 'PLAIN' })).errorCode).toBe(0);
    stalled.send(encodeRequest({ apiKey: ApiKey.Metadata, apiVersion: 12, correlationId: 51, clientId: 't' } as never, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false } as never));
    expect(await stalled.closedWithin(5000)).toBe(true);
    expect(stalled.frames).toHaveLength(3);
  }, 20_000);

  it('kafka-configs adds and describes SCRAM users (salted by the tool), and the new user logs in', async () => {
    const tools = await kafkaTools();
    const plaintext = broker().bootstrap;
    const alter = await tools.configs(['--bootstrap-server', plaintext, '--alter', '--entity-type', 'users', '--entity-name', 'carol',
      '--add-config', 'SCRAM-SHA-256=[iterations=8192,password=carol-secret],SCRAM-SHA-512=[password=carol-secret]']);
    expect(alter.code, alter.stderr).toBe(0);
    expect(alter.stdout).toContain("Completed updating config for user carol.");
    // The Java client over SASL_PLAINTEXT (SaslHandshake v1 + SaslAuthenticate) with SCRAM-SHA-512.
    const { writeFile } = await import('node:fs/promises');
    const commandConfig = `${broker().logDir}/sasl-client.properties`;
    await writeFile(commandConfig, [
      'security.protocol=SASL_PLAINTEXT', 'sasl.mechanism=SCRAM-SHA-512',
      'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="bob-secret";',
    ].join('\n'));
    const describeAll = await tools.configs(['--bootstrap-server', `127.0.0.1:${saslPort()}`, '--command-config', commandConfig, '--describe', '--entity-type', 'users']);
    expect(describeAll.code, describeAll.stderr).toBe(0);
    expect(describeAll.stdout).toContain("SCRAM credential configs for user-principal 'carol' are SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096");
    expect(describeAll.stdout).toContain("SCRAM credential configs for user-principal 'bob' are SCRAM-SHA-256=iterations=4096, SCRAM-SHA-512=iterations=8192");
    const login = await runKcat([...kcatSasl('SCRAM-SHA-512', 'carol', 'carol-secret'), '-L']);
    expect(login.code, login.stderr).toBe(0);
    // Deleting the credential ends the logins with it.
    const del = await tools.configs(['--bootstrap-server', plaintext, '--alter', '--entity-type', 'users', '--entity-name', 'carol', '--delete-config', 'SCRAM-SHA-512']);
    expect(del.code, del.stderr).toBe(0);
    const refused = await runKcat([...kcatSasl('SCRAM-SHA-512', 'carol', 'carol-secret'), '-L', '-m', '3'], { timeoutMs: 15_000 });
    expect(refused.code).not.toBe(0);
    // Only salted keys are stored: the password is nowhere in the metadata file.
    const { readFile } = await import('node:fs/promises');
    const state = await readFile(`${broker().logDir}/runnel-metadata.json`, 'utf8');
    expect(state).toContain('"scramCredentials"');
    expect(state).not.toContain('carol-secret');
    expect(state).not.toContain('bob-secret');
    // Nor in the broker's log (failed logins log the user, never the password).
    for (const secret of ['alice-secret', 'bob-secret', 'carol-secret', 'not-the-password']) expect(broker().process.output()).not.toContain(secret);
  }, 90_000);

  it('users named __proto__ and constructor are stored like any other (user names are keys of the stored JSON)', async () => {
    const tools = await kafkaTools();
    for (const user of ['__proto__', 'constructor']) {
      const alter = await tools.configs(['--bootstrap-server', broker().bootstrap, '--alter', '--entity-type', 'users', '--entity-name', user, '--add-config', 'SCRAM-SHA-256=[password=odd-secret]']);
      expect(alter.code, alter.stderr).toBe(0);
      const login = await runKcat([...kcatSasl('SCRAM-SHA-256', user, 'odd-secret'), '-L', '-m', '5'], { timeoutMs: 20_000 });
      expect(login.code, `${user}: ${login.stderr}`).toBe(0);
    }
  }, 60_000);
});

describe('SCRAM in a cluster: credentials in Redis, written by the controller', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({
      brokers: 1,
      coordinators: 1,
      set: [
        'listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0',
        'sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512',
        'runnel.sasl.scram.bootstrap.users=SCRAM-SHA-512=[name=admin,password=admin-secret]',
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await cluster?.cleanup();
  });
  const saslPortOf = (output: string) => Number(/SASL_PLAINTEXT:\/\/127\.0\.0\.1:(\d+)/.exec(output)![1]);
  const login = (port: number, mechanism: string, user: string, password: string) => runKcat([
    '-b', `127.0.0.1:${port}`, '-X', 'security.protocol=SASL_PLAINTEXT', '-X', `sasl.mechanisms=${mechanism}`,
    '-X', `sasl.username=${user}`, '-X', `sasl.password=${password}`, '-L', '-m', '5',
  ], { timeoutMs: 20_000 });

  it('the bootstrap user logs in on the broker, and a user kafka-configs adds through the broker logs in on the coordinator', async () => {
    const brokerSasl = saslPortOf(cluster.brokers[0]!.process.output());
    const coordinatorSasl = saslPortOf(cluster.coordinators[0]!.process.output());
    const admin = await login(brokerSasl, 'SCRAM-SHA-512', 'admin', 'admin-secret');
    expect(admin.code, admin.stderr).toBe(0);
    const tools = await kafkaTools();
    const alter = await tools.configs(['--bootstrap-server', cluster.brokers[0]!.address, '--alter', '--entity-type', 'users', '--entity-name', 'dave',
      '--add-config', 'SCRAM-SHA-256=[password=dave-secret]']);
    expect(alter.code, alter.stderr).toBe(0);
    // Written by the controller into Redis, read by every node from its metadata snapshot.
    const dave = await login(coordinatorSasl, 'SCRAM-SHA-256', 'dave', 'dave-secret');
    expect(dave.code, dave.stderr).toBe(0);
    const wrong = await login(coordinatorSasl, 'SCRAM-SHA-256', 'dave', 'not-dave');
    expect(wrong.code).not.toBe(0);
    expect(cluster.controller.process.output()).toMatch(/SCRAM credentials altered/);
    // Names that are Object.prototype's own keys go through the controller's Redis write and every node's read.
    for (const user of ['__proto__', 'constructor']) {
      const odd = await tools.configs(['--bootstrap-server', cluster.brokers[0]!.address, '--alter', '--entity-type', 'users', '--entity-name', user, '--add-config', 'SCRAM-SHA-256=[password=odd-secret]']);
      expect(odd.code, odd.stderr).toBe(0);
      // A second mechanism for the now stored user: the controller reads it back, merges and rewrites.
      const more = await tools.configs(['--bootstrap-server', cluster.brokers[0]!.address, '--alter', '--entity-type', 'users', '--entity-name', user, '--add-config', 'SCRAM-SHA-512=[password=odd-secret]']);
      expect(more.code, more.stderr).toBe(0);
      for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512']) {
        const loggedIn = await login(coordinatorSasl, mechanism, user, 'odd-secret');
        expect(loggedIn.code, `${user} ${mechanism}: ${loggedIn.stderr}`).toBe(0);
      }
    }
  }, 90_000);
});
