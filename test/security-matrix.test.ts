/**
 * The cross-client security matrix (issue 16): one `runnel start` with a listener per kind — SSL,
 * SSL with ssl.client.auth=required (mTLS), SASL_PLAINTEXT with PLAIN (JAAS users), SASL_SSL with
 * SCRAM-SHA-256 and SCRAM-SHA-512 (bootstrap users) — and four real clients: kcat (librdkafka),
 * kafkajs, @platformatic/kafka and the Java client (test/java/RunnelSecurity.java). Each client
 * produces to its own topic on every listener kind and reads the records back as a group member.
 * ACLs are on, so each listener must hand its clients the right principal (SASL user, certificate
 * DN, ANONYMOUS). The clients run at once (one topic of one partition and one group per client and
 * kind), so the file takes one client's slowest case. Certificates are made at test time (test/helpers/tls.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Consumer, MessagesStreamModes, Producer, stringDeserializers, stringSerializers, type ConsumerOptions } from '@platformatic/kafka';
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, logLevel, ResourcePatternTypes, type KafkaConfig } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, decodeResponse, encodeRecordBatch, encodeRequest } from '@runnel/protocol';
import { kafkaTools, ok } from './helpers/kafka-tools.ts';
import { RawKafka } from './helpers/raw-kafka.ts';
import { runKcat } from './helpers/kcat.ts';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { issueCert, makeCa, type Ca, type IssuedCert } from './helpers/tls.ts';

const KINDS = ['ssl', 'mtls', 'plain', 'scram256', 'scram512'] as const;
type Kind = (typeof KINDS)[number];
const COUNT = 20;
const PLAIN_JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";';
const SCRAM_USERS = 'SCRAM-SHA-256=[name=carol,password=carol-secret];SCRAM-SHA-512=[name=dave,password=dave-secret]';
/** The SASL identity each kind logs in with (mechanism, user, password); undefined for the TLS-only kinds. */
const SASL: Record<Kind, [mechanism: string, user: string, password: string] | undefined> = {
  ssl: undefined,
  mtls: undefined,
  plain: ['PLAIN', 'alice', 'alice-secret'],
  scram256: ['SCRAM-SHA-256', 'carol', 'carol-secret'],
  scram512: ['SCRAM-SHA-512', 'dave', 'dave-secret'],
};
const TLS: Record<Kind, boolean> = { ssl: true, mtls: true, plain: false, scram256: true, scram512: true };
/** Topic and group name stems per client: `<client>-<kind>` and `<client>-<kind>-group`. */
const CLIENTS = ['kcat', 'kafkajs', 'plt', 'java'] as const;

let dir: string;
let ca: Ca;
let client: IssuedCert;
let broker: TestBroker;
const ports = {} as Record<Kind, number>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'runnel-security-matrix-'));
  ca = makeCa(dir);
  const server = issueCert(ca, { cn: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  client = issueCert(ca, { cn: 'matrix-client', client: true, subject: '/O=acme/OU=qa/CN=matrix-client' });
  broker = await startBroker({
    set: [
      'listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,MTLS://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL',
      `ssl.keystore.location=${server.keystorePath}`,
      `listener.name.mtls.ssl.truststore.location=${ca.certPath}`,
      'listener.name.mtls.ssl.client.auth=required',
      'listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN',
      `listener.name.sasl_plaintext.plain.sasl.jaas.config=${PLAIN_JAAS}`,
      'listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512',
      `runnel.sasl.scram.bootstrap.users=${SCRAM_USERS}`,
      // One partition: every client's records come back in the order it sent them.
      'num.partitions=1',
      // ACLs on, so each listener must give its clients the principal expected of it: the SASL
      // users and the client certificate's DN are super users; the SSL listener's clients, without
      // a certificate, are User:ANONYMOUS, allowed only their own topics and groups (below).
      'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      `super.users=User:alice;User:carol;User:dave;User:${client.subjectRfc2253}`,
    ],
  });
  const out = broker.process.output();
  const port = (listener: string) => Number(new RegExp(`"${listener}://127\\.0\\.0\\.1:(\\d+)"`).exec(out)![1]);
  Object.assign(ports, { ssl: port('SSL'), mtls: port('MTLS'), plain: port('SASL_PLAINTEXT'), scram256: port('SASL_SSL'), scram512: port('SASL_SSL') });
  // A principal mixed up between listeners (a certificate ignored, a SASL user lost) lands on
  // ANONYMOUS and is refused everything but these.
  const admin = new Kafka({ brokers: [`127.0.0.1:${ports.plain}`], logLevel: logLevel.NOTHING, sasl: { mechanism: 'plain', username: 'alice', password: 'alice-secret' } }).admin();
  await admin.connect();
  try {
    await admin.createAcls({ acl: CLIENTS.flatMap((name) => [[AclResourceTypes.TOPIC, `${name}-ssl`], [AclResourceTypes.GROUP, `${name}-ssl-group`]] as const).map(([resourceType, resourceName]) => ({
      resourceType, resourceName, resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: 'User:ANONYMOUS', host: '*', operation: AclOperationTypes.ALL, permissionType: AclPermissionTypes.ALLOW,
    })) });
  } finally {
    await admin.disconnect();
  }
}, 60_000);

afterAll(async () => {
  await broker?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const values = (client: string, kind: Kind) => Array.from({ length: COUNT }, (_, i) => `${client}-${kind}-${i}`);

async function kcatCase(kind: Kind): Promise<string[]> {
  const sasl = SASL[kind];
  const args = [
    '-b', `127.0.0.1:${ports[kind]}`,
    '-X', `security.protocol=${sasl ? (TLS[kind] ? 'SASL_SSL' : 'SASL_PLAINTEXT') : 'SSL'}`,
    ...(TLS[kind] ? ['-X', `ssl.ca.location=${ca.certPath}`] : []),
    ...(kind === 'mtls' ? ['-X', `ssl.certificate.location=${client.certPath}`, '-X', `ssl.key.location=${client.keyPath}`] : []),
    ...(sasl ? ['-X', `sasl.mechanisms=${sasl[0]}`, '-X', `sasl.username=${sasl[1]}`, '-X', `sasl.password=${sasl[2]}`] : []),
  ];
  const topic = `kcat-${kind}`;
  const p = await runKcat([...args, '-P', '-t', topic], { input: values('kcat', kind).join('\n') + '\n' });
  if (p.code !== 0) throw new Error(`kcat ${kind} produce: ${p.stderr}`);
  const c = await runKcat([...args, '-G', `${topic}-group`, '-X', 'auto.offset.reset=earliest', '-c', String(COUNT), '-e', topic], { timeoutMs: 60_000 });
  if (c.code !== 0) throw new Error(`kcat ${kind} consume: ${c.stderr}`);
  return c.stdout.trim().split('\n');
}

async function kafkajsCase(kind: Kind): Promise<string[]> {
  const sasl = SASL[kind];
  const config: KafkaConfig = {
    clientId: `kafkajs-${kind}`, brokers: [`127.0.0.1:${ports[kind]}`], logLevel: logLevel.NOTHING,
    ...(TLS[kind] ? { ssl: { ca: [ca.cert], ...(kind === 'mtls' ? { cert: client.cert, key: client.key } : {}) } } : {}),
    ...(sasl ? { sasl: { mechanism: sasl[0].toLowerCase(), username: sasl[1], password: sasl[2] } as KafkaConfig['sasl'] } : {}),
  };
  const kafka = new Kafka(config);
  const topic = `kafkajs-${kind}`;
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: values('kafkajs', kind).map((value) => ({ value })) });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `${topic}-group` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kafkajs ${kind}: read ${got.length} of ${COUNT}`)), 60_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push(message.value!.toString());
          if (got.length === COUNT) { clearTimeout(timer); resolve(); }
        },
      });
    });
    return got;
  } finally {
    await consumer.disconnect();
  }
}

async function platformaticCase(kind: Kind): Promise<string[]> {
  const sasl = SASL[kind];
  const common = {
    clientId: `plt-${kind}`, bootstrapBrokers: [`127.0.0.1:${ports[kind]}`],
    ...(TLS[kind] ? { tls: { ca: [ca.cert], ...(kind === 'mtls' ? { cert: client.cert, key: client.key } : {}) } } : {}),
    ...(sasl ? { sasl: { mechanism: sasl[0] as 'PLAIN', username: sasl[1], password: sasl[2] } } : {}),
  };
  const topic = `plt-${kind}`;
  const producer = new Producer({ ...common, serializers: stringSerializers, autocreateTopics: true });
  try {
    await producer.send({ messages: values('plt', kind).map((value) => ({ topic, value })) });
  } finally {
    await producer.close();
  }
  const consumer = new Consumer({ ...common, groupId: `${topic}-group`, deserializers: stringDeserializers, maxWaitTime: 100 } as ConsumerOptions<string, string, string, string>);
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST });
  const got: string[] = [];
  const timer = setTimeout(() => stream.destroy(new Error(`platformatic ${kind}: read ${got.length} of ${COUNT}`)), 60_000);
  try {
    for await (const m of stream) {
      got.push(m.value);
      if (got.length >= COUNT) break;
    }
  } finally {
    clearTimeout(timer);
    await stream.close();
    await consumer.close();
  }
  return got;
}

/** The Java client: one JVM runs the five kinds in parallel threads; each property file is what a Java application would set. */
async function javaCases(): Promise<string[]> {
  const tools = await kafkaTools();
  const props: Record<Kind, string[]> = {
    ssl: ['security.protocol=SSL'],
    mtls: ['security.protocol=SSL', 'ssl.keystore.type=PEM', `ssl.keystore.location=${client.keystorePath}`],
    plain: ['security.protocol=SASL_PLAINTEXT'],
    scram256: ['security.protocol=SASL_SSL'],
    scram512: ['security.protocol=SASL_SSL'],
  };
  const args = KINDS.map((kind) => {
    const sasl = SASL[kind];
    const lines = [...props[kind]];
    if (TLS[kind]) lines.push('ssl.truststore.type=PEM', `ssl.truststore.location=${ca.certPath}`);
    if (sasl) {
      const module = sasl[0] === 'PLAIN' ? 'org.apache.kafka.common.security.plain.PlainLoginModule' : 'org.apache.kafka.common.security.scram.ScramLoginModule';
      lines.push(`sasl.mechanism=${sasl[0]}`, `sasl.jaas.config=${module} required username="${sasl[1]}" password="${sasl[2]}";`);
    }
    const file = join(dir, `java-${kind}.properties`);
    writeFileSync(file, lines.join('\n') + '\n');
    return `${kind}=${file}`;
  });
  const bootstrap = KINDS.map((kind) => `${kind}@127.0.0.1:${ports[kind]}`).join(',');
  const r = await tools.run(join(import.meta.dirname, 'java/RunnelSecurity.java'), [bootstrap, 'java', ...args], { timeoutMs: 85_000 });
  return ok(r).trim().split('\n');
}

describe('every client over every listener kind', () => {
  it('kcat, kafkajs, @platformatic/kafka and the Java client produce and consume over SSL, mTLS, SASL_PLAINTEXT PLAIN and SASL_SSL SCRAM-SHA-256/512', async () => {
    const jobs = KINDS.flatMap((kind) => [
      kcatCase(kind).then((got) => ['kcat', kind, got] as const),
      kafkajsCase(kind).then((got) => ['kafkajs', kind, got] as const),
      platformaticCase(kind).then((got) => ['plt', kind, got] as const),
    ]);
    const [java, ...rest] = await Promise.allSettled([javaCases(), ...jobs]);
    const failures = [java, ...rest].flatMap((r) => (r.status === 'rejected' ? [String(r.reason?.stack ?? r.reason)] : []));
    expect(failures, broker.process.output().slice(-4000)).toEqual([]);
    for (const r of rest) {
      const [name, kind, got] = (r as PromiseFulfilledResult<readonly [string, Kind, string[]]>).value;
      // kcat (one partition here) and the group consumers read back exactly what was produced, in order.
      expect(got, `${name} ${kind}`).toEqual(values(name, kind));
    }
    expect((java as PromiseFulfilledResult<string[]>).value).toEqual([...KINDS.map((kind) => `OK ${kind} ${COUNT}`), 'DONE']);
  }, 90_000);
});

describe('a storm of wrong passwords', () => {
  it('1,000 logins with a wrong password, each with a Produce pipelined behind it: all refused and closed, nothing appended, and a good producer keeps appending meanwhile', async () => {
    const topic = 'storm';
    const good = new Kafka({ clientId: 'storm-good', brokers: [`127.0.0.1:${ports.plain}`], logLevel: logLevel.NOTHING, sasl: { mechanism: 'plain', username: 'alice', password: 'alice-secret' } }).producer();
    await good.connect();
    await good.send({ topic, messages: [{ value: 'good-0' }] });
    let sent = 1;
    let storming = true;
    const goodLoop = (async () => {
      while (storming) {
        await good.send({ topic, messages: [{ value: `good-${sent}` }] });
        sent++;
      }
    })();
    // Handshake, authenticate with a wrong password, and a Produce, in one write: the broker must
    // answer the first two, never the third, append nothing, and close.
    const produce = encodeRequest({ apiKey: ApiKey.Produce, apiVersion: 9, correlationId: 3, clientId: 'intruder' } as never, {
      transactionalId: null, acks: -1, timeoutMs: 5_000,
      topicData: [{ name: topic, partitionData: [{ index: 0, records: encodeRecordBatch({ records: [{ value: 'intruder' }] }) }] }],
    } as never);
    const attempt = async () => {
      const conn = await RawKafka.open(ports.plain);
      conn.send(
        encodeRequest({ apiKey: ApiKey.SaslHandshake, apiVersion: 1, correlationId: 1, clientId: 'intruder' } as never, { mechanism: 'PLAIN' } as never),
        encodeRequest({ apiKey: ApiKey.SaslAuthenticate, apiVersion: 2, correlationId: 2, clientId: 'intruder' } as never, { authBytes: Buffer.from('\0alice\0not-her-password') } as never),
        produce,
      );
      const closed = await conn.closedWithin(5_000);
      conn.close();
      const auth = conn.frames[1] ? (decodeResponse(ApiKey.SaslAuthenticate, 2, conn.frames[1]).body as { errorCode: number }).errorCode : -1;
      return { auth, frames: conn.frames.length, closed };
    };
    const outcomes: Awaited<ReturnType<typeof attempt>>[] = [];
    try {
      for (let batch = 0; batch < 10; batch++) outcomes.push(...await Promise.all(Array.from({ length: 100 }, attempt)));
    } finally {
      storming = false;
      await goodLoop;
      await good.disconnect();
    }
    expect(outcomes).toHaveLength(1000);
    // SASL_AUTHENTICATION_FAILED (58), two answers only (no Produce response), closed.
    expect(outcomes.filter((o) => o.auth !== 58 || o.frames !== 2 || !o.closed)).toEqual([]);
    // The log holds exactly what the good producer sent, in order: no intruder record.
    const read = await runKcat(['-b', `127.0.0.1:${ports.plain}`, '-X', 'security.protocol=SASL_PLAINTEXT', '-X', 'sasl.mechanisms=PLAIN',
      '-X', 'sasl.username=alice', '-X', 'sasl.password=alice-secret', '-C', '-t', topic, '-o', 'beginning', '-e'], { timeoutMs: 30_000 });
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.trim().split('\n')).toEqual(Array.from({ length: sent }, (_, i) => `good-${i}`));
    expect(sent).toBeGreaterThan(1);
  }, 90_000);
});
