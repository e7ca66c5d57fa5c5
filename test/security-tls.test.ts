/**
 * TLS listeners end to end (docs/security.md, TLS): one `runnel start` with a PLAINTEXT listener
 * and an SSL listener under ssl.client.auth=required, its keystore a PEM file made at test time
 * (test/helpers/tls.ts). Real clients over TLS: kcat (librdkafka), kafkajs, and Kafka's Java Admin
 * (kafka-topics with a PEM truststore and keystore); refusals (no client certificate, a client that
 * trusts another CA, plaintext on the TLS port with a huge size prefix), certificate reload, and a
 * bad keystore refusing the start.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { runKcat } from './helpers/kcat.ts';
import { kafkaTools, ok } from './helpers/kafka-tools.ts';
import { startProcess } from './helpers/process.ts';
import { issueCert, makeCa, type Ca, type IssuedCert } from './helpers/tls.ts';
import { until } from './helpers/until.ts';

const runnel = join(import.meta.dirname, '../packages/cli/bin/runnel.ts');

let dir: string;
let ca: Ca;
let other: Ca;
let server: IssuedCert;
let alice: IssuedCert;
let stranger: IssuedCert;
let bob: IssuedCert;
/** The keystore the broker reads; replaced by the reload test. */
let keystore: string;
let broker: TestBroker;
let sslPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'runnel-tls-'));
  ca = makeCa(dir);
  other = makeCa(mkdtempSync(join(dir, 'other-')), 'other-ca');
  server = issueCert(ca, { cn: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  alice = issueCert(ca, { cn: 'alice', client: true, subject: '/O=acme/OU=eng/CN=alice', passphrase: 'secret' });
  stranger = issueCert(other, { cn: 'mallory', client: true });
  // Unencrypted: Java 17 cannot read a PBES2-encrypted PKCS#8 key.
  bob = issueCert(ca, { cn: 'bob', client: true });
  keystore = join(dir, 'broker-keystore.pem');
  copyFileSync(server.keystorePath, keystore);
  broker = await startBroker({
    set: [
      'listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0',
      `ssl.keystore.location=${keystore}`,
      `listener.name.ssl.ssl.truststore.location=${ca.certPath}`,
      'listener.name.ssl.ssl.client.auth=required',
      'runnel.ssl.reload.interval.ms=100',
    ],
  });
  sslPort = Number(/"listeners":\[[^\]]*"SSL:\/\/127\.0\.0\.1:(\d+)"/.exec(broker.process.output())![1]);
}, 60_000);

afterAll(async () => {
  await broker?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const kcatSsl = (extra: string[]) => ['-b', `127.0.0.1:${sslPort}`, '-X', 'security.protocol=ssl', '-X', `ssl.ca.location=${ca.certPath}`, ...extra];
const withAlice = () => ['-X', `ssl.certificate.location=${alice.certPath}`, '-X', `ssl.key.location=${alice.keyPath}`, '-X', 'ssl.key.password=secret'];

describe('SSL listener with ssl.client.auth=required', () => {
  it('kcat with a client certificate produces and consumes over TLS', async () => {
    const p = await runKcat([...kcatSsl(withAlice()), '-P', '-t', 'tls-kcat'], { input: 'one\ntwo\n' });
    expect(p.code, p.stderr).toBe(0);
    const c = await runKcat([...kcatSsl(withAlice()), '-C', '-t', 'tls-kcat', '-o', 'beginning', '-c', '2', '-e']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout.trim().split('\n')).toEqual(['one', 'two']);
  });

  it('refuses kcat without a client certificate, and kcat that trusts another CA', async () => {
    const [noCert, wrongCa] = await Promise.all([
      runKcat([...kcatSsl(['-m', '3']), '-L']),
      runKcat(['-b', `127.0.0.1:${sslPort}`, '-X', 'security.protocol=ssl', '-X', `ssl.ca.location=${other.certPath}`, '-m', '3', ...withAlice(), '-L']),
    ]);
    expect(noCert.code).not.toBe(0);
    expect(wrongCa.code).not.toBe(0);
    expect(wrongCa.stderr).toMatch(/certificate verify failed|SSL handshake failed/);
    // A client certificate signed by a CA the listener does not trust fails the handshake too.
    const untrusted = await runKcat([...kcatSsl(['-m', '3', '-X', `ssl.certificate.location=${stranger.certPath}`, '-X', `ssl.key.location=${stranger.keyPath}`]), '-L']);
    expect(untrusted.code).not.toBe(0);
    expect(broker.process.output()).toMatch(/TLS handshake failed/);
  });

  it('kafkajs with ssl { ca, cert, key } produces and consumes', async () => {
    const kafka = new Kafka({
      clientId: 'tls-kafkajs', brokers: [`127.0.0.1:${sslPort}`], logLevel: logLevel.NOTHING,
      ssl: { ca: [ca.cert], cert: alice.cert, key: alice.key, passphrase: 'secret' },
    });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'tls-kafkajs', messages: [{ value: 'over tls' }] });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: 'tls-kafkajs-group' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'tls-kafkajs', fromBeginning: true });
    const got = new Promise<string>((resolve) => {
      void consumer.run({ eachMessage: async ({ message }) => resolve(message.value!.toString()) });
    });
    expect(await got).toBe('over tls');
    await consumer.disconnect();
  }, 60_000);

  it('the Java Admin client (kafka-topics) over SSL with a PEM truststore and keystore', async () => {
    const tools = await kafkaTools();
    const props = join(dir, 'java-ssl.properties');
    writeFileSync(props, [
      'security.protocol=SSL',
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${ca.certPath}`,
      'ssl.keystore.type=PEM',
      `ssl.keystore.location=${bob.keystorePath}`,
    ].join('\n') + '\n');
    const bootstrap = ['--bootstrap-server', `127.0.0.1:${sslPort}`, '--command-config', props];
    ok(await tools.topics([...bootstrap, '--create', '--topic', 'tls-java', '--partitions', '2']));
    expect(ok(await tools.topics([...bootstrap, '--describe', '--topic', 'tls-java']))).toMatch(/PartitionCount: 2/);
  }, 120_000);

  it('closes a plaintext client on the TLS port without allocating what its size prefix announces', async () => {
    const before = await broker.memory();
    // A Kafka request frame claiming 2 GB, then a little body: TLS sees a bad record and hangs up.
    const closed = await new Promise<boolean>((resolve) => {
      const s = netConnect(sslPort, '127.0.0.1', () => {
        const frame = Buffer.alloc(64);
        frame.writeInt32BE(0x7fffffff, 0);
        s.write(frame);
      });
      s.on('error', () => {});
      s.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 10_000).unref();
    });
    expect(closed).toBe(true);
    const after = await broker.memory();
    expect(after.peak - before.peak).toBeLessThan(64 * 1024 * 1024);
    // Still serving.
    const p = await runKcat([...kcatSsl(withAlice()), '-L']);
    expect(p.code, p.stderr).toBe(0);
  });

  it('a new keystore file is picked up by new connections, a bad one keeps the old', async () => {
    const serialOf = () => new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: sslPort, ca: [ca.cert], cert: alice.cert, key: alice.key, passphrase: 'secret', servername: 'localhost' }, () => {
        const serial = s.getPeerCertificate().serialNumber;
        s.end();
        resolve(serial);
      });
      s.on('error', reject);
    });
    const first = await serialOf();
    // A broken file: one error in the log, the old certificate still served.
    writeFileSync(keystore, 'not a pem file\n');
    await until('the reload error', () => /TLS reload failed/.test(broker.process.output()), 10_000);
    expect(await serialOf()).toBe(first);
    const renewed = issueCert(ca, { cn: 'localhost', name: 'renewed', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    writeFileSync(keystore, renewed.key + renewed.chain);
    const second = await until('the renewed certificate', async () => {
      const serial = await serialOf();
      return serial !== first ? serial : false;
    }, 10_000);
    expect(second).not.toBe(first);
  });
});

describe('TLS settings at startup', () => {
  it('a JKS keystore, or a keystore without a key, refuses the start with one clear line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['ssl.keystore.type=JKS', `ssl.keystore.location=${server.keystorePath}`], /ssl\.keystore\.type: JKS is not supported; Runnel reads PEM only/],
      [[`ssl.keystore.location=${server.certPath}`], /ssl\.keystore\.location: no PEM private key/],
    ];
    await Promise.all(cases.map(async ([set, message]) => {
      const logDir = mkdtempSync(join(dir, 'bad-'));
      const proc = await startProcess(process.execPath, [runnel, 'start', '--set', 'listeners=SSL://127.0.0.1:0', '--set', 'inter.broker.listener.name=SSL',
        '--set', `log.dirs=${logDir}`, ...set.flatMap((s) => ['--set', s])]);
      const code = await proc.exited();
      expect(code).not.toBe(0);
      expect(proc.output()).toMatch(message);
    }));
  }, 60_000);
});
