// The admin APIs at Kafka 4's versions against a real `runnel start`, with the clients that send
// them: Kafka 4.x's tools (kafka-broker-api-versions, kafka-topics --create/--describe/--delete,
// kafka-configs, kafka-log-dirs, kafka-delete-records, kafka-leader-election,
// kafka-reassign-partitions, kafka-cluster cluster-id), the Java Admin 4.x (test/java/RunnelAdmin.java:
// CreateTopics 7, DescribeTopicPartitions paged, describeTopics and deleteTopics by id,
// DescribeConfigs 4 with documentation, DescribeLogDirs bytes, DescribeCluster 2,
// AlterPartitionReassignments 1), and raw requests for the rules a client does not exercise
// (DescribeTopicPartitions' cursor, DescribeCluster's endpoint types, DeleteTopics v6's checks,
// Metadata 13).
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { kafkaTools, ok, type KafkaTools } from './helpers/kafka-tools.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';

const version = process.env.RUNNEL_JAVA_CLIENT_VERSION ?? '4.3.1';
const ZERO = '00000000-0000-0000-0000-000000000000';

let broker: TestBroker;
let tools: KafkaTools;
let classpath: string;
let dir: string;

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  const missing = ['java', 'javac', 'mvn'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) throw new Error(`this test needs ${missing.join(', ')}: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)`);
  dir = await mkdtemp(join(tmpdir(), 'runnel-admin-versions-'));
  const clients = (async () => {
    const fetched = await run(join(import.meta.dirname, 'java/fetch-clients.sh'), [version], 600_000);
    if (fetched.code !== 0) throw new Error(`fetch-clients.sh ${version} failed (${fetched.code}):\n${fetched.stderr}`);
    classpath = fetched.stdout.trim().split('\n').at(-1)!;
    const javac = await run('javac', ['-nowarn', '-d', dir, '-cp', classpath, join(import.meta.dirname, 'java/RunnelAdmin.java')], 120_000);
    if (javac.code !== 0) throw new Error(`javac RunnelAdmin.java failed:\n${javac.stderr}`);
  })();
  [broker, tools] = await Promise.all([startBroker(), kafkaTools(), clients]);
}, 720_000);

afterAll(async () => {
  await broker?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const bootstrap = () => ['--bootstrap-server', broker.bootstrap];
const lines = (out: string) => out.split('\n').filter((l) => l.trim() !== '');

describe('Kafka 4.x tools', () => {
  it('kafka-broker-api-versions: every admin API at Kafka 4\'s range, all usable by the 4.x client', async () => {
    const out = ok(await tools.run('org.apache.kafka.tools.BrokerApiVersionsCommand', bootstrap()));
    for (const line of [
      'Metadata(3): 0 to 13 [usable: 13]', 'CreateTopics(19): 2 to 7 [usable: 7]', 'DeleteTopics(20): 1 to 6 [usable: 6]',
      'DeleteRecords(21): 0 to 2 [usable: 2]', 'DescribeConfigs(32): 1 to 4 [usable: 4]', 'AlterConfigs(33): 0 to 2 [usable: 2]',
      'DescribeLogDirs(35): 1 to 5 [usable: 5]', 'CreatePartitions(37): 0 to 3 [usable: 3]', 'ElectLeaders(43): 0 to 2 [usable: 2]',
      'IncrementalAlterConfigs(44): 0 to 1 [usable: 1]', 'AlterPartitionReassignments(45): 0 to 1 [usable: 1]',
      'ListPartitionReassignments(46): 0 [usable: 0]', 'DescribeCluster(60): 0 to 2 [usable: 2]', 'DescribeTopicPartitions(75): 0 [usable: 0]',
    ]) expect(out).toContain(`\t${line}`);
    // Every advertised range overlaps the client's (else it would print "unusable").
    expect(out).not.toMatch(/unusable/i);
  }, 90_000);

  it('kafka-topics --create, --describe (by DescribeTopicPartitions: empty Elr lists, not N/A) and --delete', async () => {
    expect(ok(await tools.topics([...bootstrap(), '--create', '--topic', 'tools-t', '--partitions', '3', '--config', 'retention.ms=3600000']))).toContain('Created topic tools-t.');
    const described = lines(ok(await tools.topics([...bootstrap(), '--describe', '--topic', 'tools-t'])));
    expect(described[0]).toMatch(/^Topic: tools-t\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=3600000$/);
    // With Metadata (the fallback when DescribeTopicPartitions is missing) the tool prints "Elr: N/A".
    expect(described.slice(1)).toEqual([0, 1, 2].map((p) => `\tTopic: tools-t\tPartition: ${p}\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: `));
    expect(ok(await tools.topics([...bootstrap(), '--delete', '--topic', 'tools-t']))).toBe('');
    const gone = await tools.topics([...bootstrap(), '--describe', '--topic', 'tools-t']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr + gone.stdout).toContain("Topic 'tools-t' does not exist");
  }, 120_000);

  it('kafka-configs --describe --all, kafka-log-dirs, kafka-delete-records, kafka-leader-election, kafka-reassign-partitions, cluster-id', async () => {
    ok(await tools.topics([...bootstrap(), '--create', '--topic', 'tools-u', '--partitions', '2']));
    const configs = lines(ok(await tools.configs([...bootstrap(), '--describe', '--all', '--entity-type', 'topics', '--entity-name', 'tools-u'])));
    expect(configs[0]).toBe('All configs for topic tools-u are:');
    // As Kafka prints it: the hours default is not a synonym of log.retention.ms.
    expect(configs).toContain('  retention.ms=604800000 sensitive=false synonyms={}');
    expect(configs).toContain('  segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}');

    const logDirs = JSON.parse(lines(ok(await tools.run('org.apache.kafka.tools.LogDirsCommand', [...bootstrap(), '--describe', '--topic-list', 'tools-u']))).at(-1)!) as
      { brokers: { broker: number; logDirs: { logDir: string; error: string | null; partitions: { partition: string; size: number }[] }[] }[] };
    expect(logDirs.brokers).toEqual([{ broker: 1, logDirs: [{ logDir: broker.logDir, error: null, partitions: expect.arrayContaining([expect.objectContaining({ partition: 'tools-u-0', size: 0 }), expect.objectContaining({ partition: 'tools-u-1' })]) }] }]);

    const offsets = join(dir, 'delete-records.json');
    await writeFile(offsets, JSON.stringify({ version: 1, partitions: [{ topic: 'tools-u', partition: 0, offset: 0 }] }));
    expect(ok(await tools.run('org.apache.kafka.tools.DeleteRecordsCommand', [...bootstrap(), '--offset-json-file', offsets]))).toContain('partition: tools-u-0\tlow_watermark: 0');

    // One broker: every partition already has its preferred leader.
    expect(ok(await tools.leaderElection([...bootstrap(), '--election-type', 'preferred', '--all-topic-partitions']))).toBe('');

    const plan = join(dir, 'reassign.json');
    await writeFile(plan, JSON.stringify({ version: 1, partitions: [{ topic: 'tools-u', partition: 0, replicas: [1], log_dirs: ['any'] }] }));
    expect(ok(await tools.reassign([...bootstrap(), '--execute', '--reassignment-json-file', plan]))).toContain('Successfully started partition reassignment for tools-u-0');
    expect(ok(await tools.reassign([...bootstrap(), '--list']))).toContain('No partition reassignments found.');

    const clusterId = ok(await tools.run('org.apache.kafka.tools.ClusterTool', ['cluster-id', ...bootstrap()]));
    const described = await kafkaRequest(broker.port, ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType: 1 });
    expect(clusterId.trim()).toBe(`Cluster ID: ${described.clusterId}`);
  }, 180_000);
});

describe('the Java Admin 4.x', () => {
  it('creates (CreateTopics 7), describes by name (paged) and by id, reads documented configs and log dir bytes, refuses an RF change, deletes by id', async () => {
    // C1 only and the serial collector: a short-lived client JVM then starts on about half the CPU.
    const r = await run('java', ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', `${dir}:${classpath}`, 'RunnelAdmin', broker.bootstrap, 'java-admin'], 90_000);
    if (r.code !== 0) throw new Error(`RunnelAdmin exited ${r.code}:\n${r.stdout}\n--- stderr (tail) ---\n${r.stderr.slice(-3000)}`);
    const out = lines(r.stdout);
    const id = /^OK create java-admin id=(\S+) /.exec(out[0]!)?.[1];
    expect(out).toEqual([
      `OK create java-admin id=${id} partitions=5 rf=1 retention.ms=123456 DYNAMIC_TOPIC_CONFIG configs=true`,
      `OK describe java-admin id=${id} partitions=0,1,2,3,4 elr=[]`,
      'OK describe-by-id java-admin partitions=5',
      'OK configs retention.ms=123456 type=LONG documented=true',
      'OK cluster nodes=1 fenced=false',
      'OK logdir total>0=true usable<=total=true java-admin=5',
      'OK reassign fixed-rf InvalidReplicationFactorException',
      'OK reassign any-rf InvalidReplicaAssignmentException',
      'OK delete-by-id',
      'OK delete-again UnknownTopicIdException',
      'OK describe-deleted UnknownTopicIdException',
      'DONE',
    ]);
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(id).not.toBe('AAAAAAAAAAAAAAAAAAAAAA');
  }, 120_000);
});

describe('raw requests', () => {
  const create = async (name: string, numPartitions: number) => {
    const r = await kafkaRequest(broker.port, ApiKey.CreateTopics, 7, { topics: [{ name, numPartitions, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 10_000 });
    expect(r.topics[0]).toMatchObject({ name, errorCode: 0, numPartitions, replicationFactor: 1 });
    return r.topics[0]!.topicId;
  };
  const dtp = (body: { topics: { name: string }[]; responsePartitionLimit?: number; cursor?: { topicName: string; partitionIndex: number } | null }) =>
    kafkaRequest(broker.port, ApiKey.DescribeTopicPartitions, 0, body);
  const page = (r: Awaited<ReturnType<typeof dtp>>) => r.topics.map((t) => `${t.name}:${t.errorCode}:${t.partitions.map((p) => p.partitionIndex).join(',')}`);

  it('DescribeTopicPartitions pages by responsePartitionLimit and follows the cursor as Kafka does', async () => {
    const idA = await create('dtp-a', 5);
    await create('dtp-b', 2);
    const first = await dtp({ topics: [{ name: 'dtp-b' }, { name: 'dtp-a' }, { name: 'dtp-missing' }], responsePartitionLimit: 3 });
    expect(page(first)).toEqual(['dtp-a:0:0,1,2']);
    expect(first.nextCursor).toEqual({ topicName: 'dtp-a', partitionIndex: 3 });
    const t = first.topics[0]!;
    expect(t).toMatchObject({ topicId: idA, isInternal: false, topicAuthorizedOperations: -2147483648 });
    expect(t.partitions[0]).toEqual({ errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: 0, replicaNodes: [1], isrNodes: [1], eligibleLeaderReplicas: [], lastKnownElr: [], offlineReplicas: [] });
    // The limit ends exactly at a topic's end: the cursor names the next topic at partition 0.
    const second = await dtp({ topics: [{ name: 'dtp-b' }, { name: 'dtp-a' }, { name: 'dtp-missing' }], responsePartitionLimit: 2, cursor: first.nextCursor });
    expect(page(second)).toEqual(['dtp-a:0:3,4']);
    expect(second.nextCursor).toEqual({ topicName: 'dtp-b', partitionIndex: 0 });
    const last = await dtp({ topics: [{ name: 'dtp-b' }, { name: 'dtp-a' }, { name: 'dtp-missing' }], responsePartitionLimit: 10, cursor: second.nextCursor });
    expect(page(last)).toEqual(['dtp-b:0:0,1', `dtp-missing:${ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}:`]);
    expect(last.topics[1]!.topicId).toBe(ZERO);
    expect(last.nextCursor).toBeNull();

    // An empty list is every topic, in name order, from the cursor on; only existing topics.
    const all = await dtp({ topics: [], cursor: { topicName: 'dtp-a', partitionIndex: 4 } });
    expect(page(all).filter((p) => p.startsWith('dtp-'))).toEqual(['dtp-a:0:4', 'dtp-b:0:0,1']);
    // The default limit is 2000: __consumer_offsets' 50 and the rest fit in one response.
    expect((await dtp({ topics: [] })).nextCursor).toBeNull();
    // A limit of 0 answers no partition and a cursor at the first topic; a negative one nothing at all (Kafka's loop).
    expect(await dtp({ topics: [{ name: 'dtp-b' }], responsePartitionLimit: 0 })).toMatchObject({ topics: [], nextCursor: { topicName: 'dtp-b', partitionIndex: 0 } });
    expect(await dtp({ topics: [{ name: 'dtp-b' }], responsePartitionLimit: -1 })).toMatchObject({ topics: [], nextCursor: null });
    // A cursor topic must be one of the topics asked for; an invalid name is INVALID_TOPIC_EXCEPTION.
    const bad = await dtp({ topics: [{ name: 'dtp-a' }], cursor: { topicName: 'dtp-b', partitionIndex: 0 } });
    expect(bad.topics).toEqual([expect.objectContaining({ name: 'dtp-a', errorCode: ErrorCode.INVALID_REQUEST, partitions: [] })]);
    expect(page(await dtp({ topics: [{ name: 'bad/name' }] }))).toEqual([`bad/name:${ErrorCode.INVALID_TOPIC_EXCEPTION}:`]);
  });

  it('DescribeCluster: v1 answers brokers, MISMATCHED_ENDPOINT_TYPE for controllers, UNSUPPORTED_ENDPOINT_TYPE otherwise; v2 marks brokers unfenced', async () => {
    const v2 = await kafkaRequest(broker.port, ApiKey.DescribeCluster, 2, { includeClusterAuthorizedOperations: false, endpointType: 1, includeFencedBrokers: true });
    expect(v2).toMatchObject({ errorCode: 0, endpointType: 1, controllerId: 1, brokers: [{ brokerId: 1, host: '127.0.0.1', port: broker.port, rack: null, isFenced: false }] });
    const controllers = await kafkaRequest(broker.port, ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType: 2 });
    expect(controllers).toMatchObject({ errorCode: ErrorCode.MISMATCHED_ENDPOINT_TYPE, errorMessage: 'The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER', clusterId: '', brokers: [] });
    const odd = await kafkaRequest(broker.port, ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType: 3 });
    expect(odd).toMatchObject({ errorCode: ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, errorMessage: 'Unsupported endpoint type 3', brokers: [] });
  });

  it('DeleteTopics v6: by id (the answer names the topic), by name (the answer carries its id), and Kafka\'s INVALID_REQUEST rules', async () => {
    const idX = await create('del-x', 1);
    const idY = await create('del-y', 1);
    const unknown = '11111111-2222-3333-4444-555555555555';
    const r = await kafkaRequest(broker.port, ApiKey.DeleteTopics, 6, {
      topics: [{ name: null, topicId: idX }, { name: 'del-y', topicId: ZERO }, { name: null, topicId: unknown }, { name: null, topicId: ZERO }, { name: 'del-z', topicId: idX }, { name: 'dup', topicId: ZERO }, { name: 'dup', topicId: ZERO }],
      timeoutMs: 10_000,
    });
    const byKey = (name: string | null, topicId: string) => r.responses.find((x) => x.name === name && x.topicId === topicId);
    expect(r.responses).toHaveLength(6);
    expect(byKey('del-x', idX)).toMatchObject({ errorCode: 0 });
    expect(byKey('del-y', idY)).toMatchObject({ errorCode: 0 });
    expect(byKey(null, unknown)).toMatchObject({ errorCode: ErrorCode.UNKNOWN_TOPIC_ID });
    expect(byKey(null, ZERO)).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Neither topic name nor id were specified.' });
    expect(byKey('del-z', idX)).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'You may not specify both topic name and topic id.' });
    expect(byKey('dup', ZERO)).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Duplicate topic name.' });
    // Both are gone: Metadata v13 by id answers UNKNOWN_TOPIC_ID, with a top-level error code 0.
    const md = await kafkaRequest(broker.port, ApiKey.Metadata, 13, { topics: [{ topicId: idX, name: '' }, { topicId: ZERO, name: 'del-y' }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
    expect(md.errorCode).toBe(0);
    expect(md.topics.map((t) => [t.name, t.errorCode])).toEqual([[null, ErrorCode.UNKNOWN_TOPIC_ID], ['del-y', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]);
    // An older client names topics only: v5 still deletes by name.
    await create('del-old', 1);
    expect((await kafkaRequest(broker.port, ApiKey.DeleteTopics, 5, { topicNames: ['del-old'], timeoutMs: 10_000 })).responses).toEqual([{ name: 'del-old', topicId: ZERO, errorCode: 0, errorMessage: null }]);
  });
});
