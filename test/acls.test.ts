/**
 * ACLs end to end (docs/security.md, ACLs): one `runnel start` with the authorizer on, a PLAINTEXT
 * listener (User:ANONYMOUS) and a SASL_PLAINTEXT one with PLAIN users (admin is a super user,
 * alice, bob and carol are not). Kafka's own kafka-acls manages the ACLs; kcat, kafkajs and
 * hand-built requests are allowed and refused by them: Produce (Write, DENY over ALLOW, prefixed
 * and wildcard ACLs), Metadata (topics without Describe are hidden), Fetch and consumer groups
 * (Read), the CVE-2018-1288 replica fetch and the CVE-2018-17196 transactional produce, the
 * idempotent InitProducerId, and the ACLs surviving a restart. Every API the node serves has an
 * authorization rule (API_AUTHORIZATION), read from the node's own ApiVersions.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, logLevel, ResourcePatternTypes } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_AUTHORIZATION } from '@runnel/kafka-server';
import { apiName, ApiKey, encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { runKcat } from './helpers/kcat.ts';
import { kafkaTools, ok, type KafkaTools } from './helpers/kafka-tools.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';

const ACL_COMMAND = 'org.apache.kafka.tools.AclCommand';
const USERS = { admin: 'admin-secret', alice: 'alice-secret', bob: 'bob-secret', carol: 'carol-secret' } as const;
type User = keyof typeof USERS;

let dir: string;
let broker: TestBroker;
let saslPort: number;
let tools: KafkaTools;
let adminConfig: string;

const settings = (logDir: string) => ({
  logDir,
  set: [
    'listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0',
    'sasl.enabled.mechanisms=PLAIN',
    `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${Object.entries(USERS).map(([u, p]) => `user_${u}="${p}"`).join(' ')};`,
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'super.users=User:admin',
    'auto.create.topics.enable=false',
  ],
});

async function start(logDir?: string): Promise<void> {
  broker = await startBroker(settings(logDir ?? mkdtempSync(join(tmpdir(), 'runnel-acls-'))));
  saslPort = Number((await broker.process.waitFor(/SASL_PLAINTEXT:\/\/127\.0\.0\.1:(\d+)/))[1]);
}

const saslBootstrap = () => `127.0.0.1:${saslPort}`;
const kcatAs = (user: User, args: string[], input?: string) => runKcat([
  '-b', saslBootstrap(), '-X', 'security.protocol=SASL_PLAINTEXT', '-X', 'sasl.mechanisms=PLAIN',
  '-X', `sasl.username=${user}`, '-X', `sasl.password=${USERS[user]}`, ...args,
], { input });
const kafkaAs = (user: User) => new Kafka({
  brokers: [saslBootstrap()], clientId: `acl-test-${user}`, logLevel: logLevel.NOTHING,
  sasl: { mechanism: 'plain', username: user, password: USERS[user] }, retry: { retries: 1 },
});
/** kafka-acls as admin (over SASL) or, with `anonymous`, over PLAINTEXT. */
const acls = (args: string[], anonymous = false) => tools.run(ACL_COMMAND, anonymous
  ? ['--bootstrap-server', broker.bootstrap, ...args]
  : ['--bootstrap-server', saslBootstrap(), '--command-config', adminConfig, ...args]);

/** One ACL added through kafkajs's admin as the super user (quicker than a kafka-acls JVM per call). */
async function addAcl(principal: string, operation: keyof typeof AclOperationTypes, resourceType: 'TOPIC' | 'GROUP', resourceName: string, permission: 'ALLOW' | 'DENY' = 'ALLOW'): Promise<void> {
  const admin = kafkaAs('admin').admin();
  await admin.connect();
  try {
    await admin.createAcls({ acl: [{
      resourceType: AclResourceTypes[resourceType], resourceName, resourcePatternType: ResourcePatternTypes.LITERAL,
      principal, host: '*', operation: AclOperationTypes[operation], permissionType: AclPermissionTypes[permission],
    }] });
  } finally {
    await admin.disconnect();
  }
}

/** The partition's high watermark, asked by the super user. */
async function endOffset(topic: string): Promise<string> {
  const admin = kafkaAs('admin').admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic))[0]!.high;
  } finally {
    await admin.disconnect();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'runnel-acls-cfg-'));
  adminConfig = join(dir, 'admin.properties');
  writeFileSync(adminConfig, [
    'security.protocol=SASL_PLAINTEXT', 'sasl.mechanism=PLAIN',
    `sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${USERS.admin}";`, '',
  ].join('\n'));
  [tools] = await Promise.all([kafkaTools(), start()]);
  const admin = kafkaAs('admin').admin();
  await admin.connect();
  await admin.createTopics({ topics: ['orders', 'secret', 'mixed'].map((topic) => ({ topic, numPartitions: 1 })) });
  await admin.disconnect();
}, 120_000);

afterAll(async () => {
  await broker?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('ACLs on runnel start', () => {
  it('every API the node serves has an authorization rule', async () => {
    const served = (await kafkaRequest(broker.port, ApiKey.ApiVersions, 3, { clientSoftwareName: 't', clientSoftwareVersion: '1' })).apiKeys.map((k) => k.apiKey);
    expect(served).toContain(ApiKey.CreateAcls);
    const missing = served.filter((k) => k !== ApiKey.ApiVersions && API_AUTHORIZATION[k] === undefined).map(apiName);
    expect(missing).toEqual([]);
  });

  it('kafka-acls adds, lists and removes ACLs (operation lists, prefixed patterns); only a principal allowed on the cluster may', async () => {
    // ANONYMOUS has no ACL on the cluster: listing needs Describe on it, adding needs Alter.
    const denied = await acls(['--list'], true);
    expect(denied.code).not.toBe(0);
    expect(denied.stdout + denied.stderr).toMatch(/ClusterAuthorizationException|Cluster authorization failed/);

    ok(await acls(['--add', '--allow-principal', 'User:alice', '--operation', 'Write', '--operation', 'Describe', '--topic', 'orders']));
    ok(await acls(['--add', '--allow-principal', 'User:bob', '--operation', 'Describe', '--resource-pattern-type', 'prefixed', '--topic', 'ord']));
    await addAcl('User:bob', 'READ', 'TOPIC', 'gone');
    const listed = ok(await acls(['--list']));
    expect(listed).toMatch(/name=orders, patternType=LITERAL\)`:\s*\n(\s*\(principal=User:alice, host=\*, operation=(WRITE|DESCRIBE), permissionType=ALLOW\)\s*\n){2}/);
    expect(listed).toContain('name=ord, patternType=PREFIXED');
    expect(listed).toContain('(principal=User:bob, host=*, operation=READ, permissionType=ALLOW)');
    // --list --topic orders with the MATCH pattern type: the literal and the prefixed ACLs that apply to it.
    const matching = ok(await acls(['--list', '--topic', 'orders', '--resource-pattern-type', 'match']));
    expect(matching).toContain('name=orders, patternType=LITERAL');
    expect(matching).toContain('name=ord, patternType=PREFIXED');
    expect(matching).not.toContain('name=gone');

    // Removed here; the listing after the restart (last test) shows it gone.
    ok(await acls(['--remove', '--force', '--allow-principal', 'User:bob', '--operation', 'Read', '--topic', 'gone']));
  });

  it('the cluster admin APIs without a top-level error code refuse ANONYMOUS per entry (CLUSTER_AUTHORIZATION_FAILED), not by closing', async () => {
    const CLUSTER_AUTHORIZATION_FAILED = 31;
    const quotas = await kafkaRequest(broker.port, ApiKey.AlterClientQuotas, 1, {
      entries: [{ entity: [{ entityType: 'client-id', entityName: 'x' }], ops: [{ key: 'producer_byte_rate', value: 100, remove: false }] }], validateOnly: false,
    });
    expect(quotas.entries.map((e) => e.errorCode)).toEqual([CLUSTER_AUTHORIZATION_FAILED]);
    const scram = await kafkaRequest(broker.port, ApiKey.AlterUserScramCredentials, 0, {
      deletions: [{ name: 'eve', mechanism: 1 }], upsertions: [{ name: 'eve', mechanism: 2, iterations: 4096, salt: Buffer.from('salt'), saltedPassword: Buffer.alloc(64, 1) }],
    });
    expect(scram.results.map((r) => [r.user, r.errorCode])).toEqual([['eve', CLUSTER_AUTHORIZATION_FAILED]]);
    const dirsV1 = await kafkaRequest(broker.port, ApiKey.DescribeLogDirs, 1, { topics: null });
    expect(dirsV1.results).toEqual([]);
    const dirsV4 = await kafkaRequest(broker.port, ApiKey.DescribeLogDirs, 4, { topics: null });
    expect([dirsV4.errorCode, dirsV4.results]).toEqual([CLUSTER_AUTHORIZATION_FAILED, []]);
  });

  it('Produce needs Write on the topic; DENY beats ALLOW; a refused batch appends nothing', async () => {
    const before = await endOffset('orders');
    const alice = await kcatAs('alice', ['-P', '-t', 'orders'], 'from-alice\n');
    expect(alice.code, alice.stderr).toBe(0);
    const bob = await kcatAs('bob', ['-P', '-t', 'orders'], 'from-bob\n');
    expect(bob.stderr).toMatch(/Topic authorization failed/);
    // Everyone may write 'mixed', but a DENY for carol wins over the wildcard ALLOW.
    await addAcl('User:*', 'WRITE', 'TOPIC', 'mixed');
    await addAcl('User:carol', 'WRITE', 'TOPIC', 'mixed', 'DENY');
    const [bobMixed, carolMixed] = await Promise.all([
      kcatAs('bob', ['-P', '-t', 'mixed'], 'from-bob\n'),
      kcatAs('carol', ['-P', '-t', 'mixed'], 'from-carol\n'),
    ]);
    expect(bobMixed.code, bobMixed.stderr).toBe(0);
    expect(carolMixed.stderr).toMatch(/Topic authorization failed/);
    expect(BigInt(await endOffset('orders')) - BigInt(before)).toBe(1n);
    expect(await endOffset('mixed')).toBe('1');
  });

  it('Metadata lists only the topics a principal may Describe; a super user sees every one', async () => {
    const topicsOf = async (user: User) => {
      const r = await kcatAs(user, ['-L', '-J']);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { topics: { topic: string }[] }).topics.map((t) => t.topic).sort();
    };
    // alice: Write on orders implies Describe; bob: Describe on the prefix ord; carol: nothing but the wildcard Write on mixed.
    expect(await topicsOf('alice')).toEqual(['mixed', 'orders']);
    expect(await topicsOf('bob')).toEqual(['mixed', 'orders']);
    expect(await topicsOf('carol')).toEqual(['mixed']);
    expect(await topicsOf('admin')).toEqual(['__consumer_offsets', 'mixed', 'orders', 'secret']);
    // Asked by name, a topic without Describe answers TOPIC_AUTHORIZATION_FAILED (not "unknown").
    const r = await kafkaRequest(broker.port, ApiKey.Metadata, 9, { topics: [{ name: 'secret' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    expect(r.topics.map((t) => [t.name, t.errorCode])).toEqual([['secret', ErrorCode.TOPIC_AUTHORIZATION_FAILED]]);
    // DescribeTopicPartitions pages through the visible topics only: no cursor names a hidden one
    // (ANONYMOUS sees only mixed; orders would follow it).
    const paged = await kafkaRequest(broker.port, ApiKey.DescribeTopicPartitions, 0, { topics: [], responsePartitionLimit: 1, cursor: null });
    expect(paged.topics.map((t) => t.name)).toEqual(['mixed']);
    expect(paged.nextCursor).toBeNull();
  });

  it('consuming needs Read on the topic and on the group', async () => {
    await addAcl('User:carol', 'READ', 'TOPIC', 'orders');
    await addAcl('User:carol', 'READ', 'GROUP', 'carols');
    const [carol, bob] = await Promise.all([
      kcatAs('carol', ['-C', '-t', 'orders', '-o', 'beginning', '-e', '-q']),
      kcatAs('bob', ['-C', '-t', 'orders', '-o', 'beginning', '-e']),
    ]);
    expect(carol.code, carol.stderr).toBe(0);
    expect(carol.stdout).toContain('from-alice');
    expect(bob.stdout).not.toContain('from-alice');
    expect(bob.stderr).toMatch(/Topic authorization failed/);

    const consume = async (groupId: string) => {
      const consumer = kafkaAs('carol').consumer({ groupId, retry: { retries: 0 } });
      await consumer.connect();
      try {
        await consumer.subscribe({ topics: ['orders'], fromBeginning: true });
        const got = new Promise<string>((resolve, reject) => {
          consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
          void consumer.run({ eachMessage: async ({ message }) => resolve(String(message.value)) }).catch(reject);
        });
        return await got;
      } finally {
        await consumer.disconnect();
      }
    };
    expect(await consume('carols')).toBe('from-alice');
    // No ACL on the group: FindCoordinator (Describe on it) is refused, so kafkajs finds no coordinator.
    await expect(consume('not-carols')).rejects.toThrow(/Failed to find group coordinator/);
    expect((await kafkaRequest(broker.port, ApiKey.FindCoordinator, 3, { key: 'not-carols', keyType: 0 })).errorCode).toBe(ErrorCode.GROUP_AUTHORIZATION_FAILED);
    // Describe alone finds the coordinator, but joining needs Read.
    await addAcl('User:carol', 'DESCRIBE', 'GROUP', 'peek');
    await expect(consume('peek')).rejects.toThrow(/Not authorized to access group/);
  });

  it('a Fetch naming a replica id needs ClusterAction (CVE-2018-1288); an idempotent producer needs Write somewhere', async () => {
    // The wildcard ALLOW on mixed would let ANONYMOUS write there; with a DENY over it, it may write
    // nowhere, and InitProducerId for an idempotent producer is refused.
    await addAcl('User:ANONYMOUS', 'WRITE', 'TOPIC', 'mixed', 'DENY');
    const init = await kafkaRequest(broker.port, ApiKey.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 });
    expect(init.errorCode).toBe(ErrorCode.CLUSTER_AUTHORIZATION_FAILED);

    await addAcl('User:ANONYMOUS', 'READ', 'TOPIC', 'orders');
    await addAcl('User:ANONYMOUS', 'WRITE', 'TOPIC', 'orders');
    const fetch = (replicaId: number) => kafkaRequest(broker.port, ApiKey.Fetch, 11, {
      replicaId, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, rackId: '', forgottenTopicsData: [],
      topics: [{ topic: 'orders', partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1 << 20 }] }],
    });
    const consumer = (await fetch(-1)).responses[0]!.partitions[0]!;
    expect(consumer.errorCode).toBe(ErrorCode.NONE);
    expect((consumer.records as Buffer).length).toBeGreaterThan(0);
    const replica = (await fetch(1)).responses[0]!.partitions[0]!;
    expect(replica.errorCode).toBe(ErrorCode.TOPIC_AUTHORIZATION_FAILED);
    expect((replica.records as Buffer | null)?.length ?? 0).toBe(0);
    // OffsetForLeaderEpoch (the consumer's position check, KIP-320): Describe on the topic (Read implies it).
    const epochs = await kafkaRequest(broker.port, ApiKey.OffsetForLeaderEpoch, 4, {
      replicaId: -1, topics: ['orders', 'secret'].map((topic) => ({ topic, partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] })),
    });
    expect(epochs.topics.map((t) => [t.topic, t.partitions[0]!.errorCode])).toEqual([['orders', ErrorCode.NONE], ['secret', ErrorCode.TOPIC_AUTHORIZATION_FAILED]]);

    expect((await kafkaRequest(broker.port, ApiKey.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })).errorCode).toBe(ErrorCode.NONE);
  });

  it('a transactional batch needs Write on its transactional id (CVE-2018-17196): refused whole, nothing appended', async () => {
    const produce = (transactional: boolean) => kafkaRequest(broker.port, ApiKey.Produce, 9, {
      transactionalId: transactional ? 'tx-1' : null, acks: -1, timeoutMs: 5_000,
      topicData: [{ name: 'orders', partitionData: [{ index: 0, records: encodeRecordBatch({ records: [{ value: 'crafted' }], producerId: 7n, producerEpoch: 0, baseSequence: 0, transactional }) }] }],
    });
    const before = await endOffset('orders');
    const refused = await produce(true);
    expect(refused.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    expect(await endOffset('orders')).toBe(before);
    // FindCoordinator for the transactional id is refused too.
    const coordinator = await kafkaRequest(broker.port, ApiKey.FindCoordinator, 3, { key: 'tx-1', keyType: 1 });
    expect(coordinator.errorCode).toBe(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  });

  it('the ACLs survive a restart (LocalStore)', async () => {
    const logDir = broker.logDir;
    await broker.stop();
    await start(logDir);
    const listed = ok(await acls(['--list']));
    expect(listed).toContain('(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)');
    expect(listed).toContain('(principal=User:carol, host=*, operation=WRITE, permissionType=DENY)');
    expect(listed).not.toContain('name=gone');
    const [alice, bob] = await Promise.all([
      kcatAs('alice', ['-P', '-t', 'orders'], 'again\n'),
      kcatAs('bob', ['-P', '-t', 'orders'], 'again\n'),
    ]);
    expect(alice.code, alice.stderr).toBe(0);
    expect(bob.stderr).toMatch(/Topic authorization failed/);
  });
});
