// Prometheus /metrics on every role of a real cluster (controller, two brokers, a coordinator; each
// its own process with runnel.metrics.listener): records of known size produced through kafkajs
// and consumed by a group must show up under Kafka's metric names (docs/metrics.md) with the
// values sent, and killing a broker must show as under-replicated and offline partitions.
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type ClusterNode, type TestCluster } from './helpers/cluster.ts';
import { until } from './helpers/until.ts';

let cluster: TestCluster;
const urls = new Map<ClusterNode, string>();

const urlOf = async (node: ClusterNode) => (await node.process.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/))[1]!;
const scrape = async (node: ClusterNode) => (await fetch(urls.get(node)!)).text();

/** The value of the sample `name` whose labels include `labels` (exactly those when `exact`), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
/** The sum of `name` over every sample with `labels` (0 when none). */
function total(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let n = 0;
  for (const line of text.split('\n')) {
    if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && want.every((w) => line.includes(w))) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}
const sumOver = async (nodes: ClusterNode[], name: string, labels: Record<string, string> = {}) =>
  (await Promise.all(nodes.map(scrape))).reduce((n, text) => n + total(text, name, labels), 0);

beforeAll(async () => {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  cluster = await startCluster({ brokers: 2, coordinators: 1, set: ['runnel.metrics.listener=127.0.0.1:0'] });
  for (const node of [cluster.controller, ...cluster.brokers, ...cluster.coordinators]) urls.set(node, await urlOf(node));
}, 90_000);
afterAll(async () => {
  await cluster?.cleanup();
});

const N = 300;
const VALUE_BYTES = 200;

describe('metrics of a loaded cluster', () => {
  it('counts what was produced and consumed, per topic and API, under Kafka\'s names; lag; then under-replicated and offline partitions after a kill', async () => {
    const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, clientId: 'metrics-cluster' });
    const admin = kafka.admin();
    await admin.connect();
    // `m` is led by broker 1 and followed by 2; `e` the other way round; `solo` has one partition on each.
    await admin.createTopics({ waitForLeaders: true, topics: [
      { topic: 'm', replicaAssignment: [{ partition: 0, replicas: [1, 2] }] },
      { topic: 'e', replicaAssignment: [{ partition: 0, replicas: [2, 1] }] },
      { topic: 'solo', replicaAssignment: [{ partition: 0, replicas: [1] }, { partition: 1, replicas: [2] }] },
    ] });

    // Every role serves, the controller included: one active controller over all controllers.
    const controllerText = await scrape(cluster.controller);
    expect(sample(controllerText, 'kafka_controller_kafkacontroller_activecontrollercount')).toBe(1);
    expect(sample(controllerText, 'kafka_controller_kafkacontroller_globaltopiccount')).toBeGreaterThanOrEqual(3);
    expect(sample(controllerText, 'kafka_controller_kafkacontroller_globalpartitioncount')).toBeGreaterThanOrEqual(4);
    expect(sample(controllerText, 'kafka_controller_kafkacontroller_preferredreplicaimbalancecount')).toBe(0);
    const electionsBefore = sample(controllerText, 'kafka_controller_controllerstats_leaderelectionrateandtimems_count')!;
    expect(sample(controllerText, 'kafka_controller_kafkacontroller_offlinepartitionscount')).toBe(0);
    expect(sample(controllerText, 'kafka_controller_kafkacontroller_activebrokercount')).toBe(2);

    // N records of VALUE_BYTES each, no key, in sends of 50 (acks=all).
    const producer = kafka.producer();
    await producer.connect();
    const sends = N / 50;
    for (let s = 0; s < sends; s++) {
      await producer.send({ topic: 'm', acks: -1, messages: Array.from({ length: 50 }, () => ({ value: Buffer.alloc(VALUE_BYTES, 0x61) })) });
    }

    const brokers = cluster.brokers;
    expect(await sumOver(brokers, 'kafka_server_brokertopicmetrics_messagesin_total', { topic: 'm' })).toBe(N);
    const bytesIn = await sumOver(brokers, 'kafka_server_brokertopicmetrics_bytesin_total', { topic: 'm' });
    // The record-batch bytes: the values plus each record's framing (a few bytes) and a 61-byte header per batch.
    expect(bytesIn).toBeGreaterThanOrEqual(N * VALUE_BYTES);
    expect(bytesIn).toBeLessThanOrEqual(N * (VALUE_BYTES + 16) + sends * 61);
    expect(await sumOver(brokers, 'kafka_server_brokertopicmetrics_totalproducerequests_total', { topic: 'm' })).toBeGreaterThanOrEqual(sends);
    expect(await sumOver(brokers, 'kafka_server_brokertopicmetrics_failedproducerequests_total', { topic: 'm' })).toBe(0);
    expect(await sumOver(brokers, 'kafka_network_requestmetrics_requests_total', { request: 'Produce' })).toBeGreaterThanOrEqual(sends);
    expect(await sumOver(brokers, 'kafka_network_requestmetrics_totaltimems_count', { request: 'Produce' })).toBeGreaterThanOrEqual(sends);
    expect(await sumOver(brokers, 'kafka_network_requestmetrics_errors_total', { request: 'Produce', error: 'NONE' })).toBeGreaterThanOrEqual(sends);
    // The follower replicated every byte the leader took.
    await until('replication bytes', async () => (await sumOver(brokers, 'kafka_server_brokertopicmetrics_replicationbytesin_total')) >= bytesIn, 10_000);
    expect(await sumOver(brokers, 'kafka_server_brokertopicmetrics_replicationbytesout_total')).toBeGreaterThanOrEqual(bytesIn);
    // Every partition (__consumer_offsets' too) has one leader; `m` and `e` have two replicas.
    const partitions = sample(await scrape(cluster.controller), 'kafka_controller_kafkacontroller_globalpartitioncount')!;
    expect(await sumOver(brokers, 'kafka_server_replicamanager_leadercount')).toBe(partitions);
    expect(await sumOver(brokers, 'kafka_server_replicamanager_partitioncount')).toBeGreaterThanOrEqual(partitions + 2);
    expect(await sumOver(brokers, 'kafka_server_replicamanager_underreplicatedpartitions')).toBe(0);
    expect(await sumOver(brokers, 'kafka_server_socket_server_metrics_connection_count', { listener: 'PLAINTEXT' })).toBeGreaterThan(0);

    // A group consumes all N and commits.
    const consumer = kafka.consumer({ groupId: 'g', sessionTimeout: 10_000 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'm', fromBeginning: true });
    let seen = 0;
    await consumer.run({ autoCommitThreshold: 1, eachMessage: async () => { seen++; } });
    await until('all records consumed', () => seen >= N, 30_000);
    await consumer.disconnect(); // commits what it consumed
    expect(seen).toBe(N);
    const bytesOut = await sumOver(brokers, 'kafka_server_brokertopicmetrics_bytesout_total', { topic: 'm' });
    expect(bytesOut).toBeGreaterThanOrEqual(N * VALUE_BYTES);
    expect(await sumOver(brokers, 'kafka_network_requestmetrics_requests_total', { request: 'Fetch' })).toBeGreaterThan(0);
    expect(await sumOver(brokers, 'kafka_network_requestmetrics_totaltimems_count', { request: 'FetchConsumer' })).toBeGreaterThan(0);

    // Lag on the coordinator: 0 once committed, then what is produced after.
    const coordinator = cluster.coordinators[0]!;
    const lag = async () => sample(await scrape(coordinator), 'kafka_consumergroup_lag', { consumergroup: 'g', topic: 'm', partition: '0' });
    await until('lag 0 after consuming', async () => (await lag()) === 0, 15_000);
    expect(sample(await scrape(coordinator), 'kafka_consumergroup_current_offset', { consumergroup: 'g', topic: 'm', partition: '0' })).toBe(N);
    expect(await sumOver([coordinator], 'kafka_network_requestmetrics_requests_total', { request: 'OffsetCommit' })).toBeGreaterThan(0);
    const groups = await scrape(coordinator);
    expect(sample(groups, 'kafka_server_groupmetadatamanager_numgroups')).toBeGreaterThanOrEqual(1);
    expect(sample(groups, 'kafka_server_group_coordinator_metrics_group_count', { protocol: 'classic' })).toBeGreaterThanOrEqual(1);
    expect(sample(groups, 'kafka_server_group_coordinator_metrics_group_completed_rebalance_count')).toBeGreaterThanOrEqual(1);
    expect(sample(groups, 'kafka_server_group_coordinator_metrics_offset_commit_count')).toBeGreaterThanOrEqual(1);
    expect(sample(groups, 'kafka_server_groupmetadatamanager_numoffsets')).toBeGreaterThanOrEqual(1);
    await producer.send({ topic: 'm', acks: -1, messages: Array.from({ length: 7 }, () => ({ value: 'more' })) });
    await until('lag 7 after more produce', async () => (await lag()) === 7, 15_000);
    expect(sample(await scrape(coordinator), 'kafka_consumergroup_lag_sum', { consumergroup: 'g', topic: 'm' })).toBe(7);

    // Kill broker 2, which follows `m`: its leader reports it under-replicated (an ISR shrink); `e`
    // is elected on broker 1 (not its preferred replica); `solo`'s partition on broker 2 goes offline.
    const victim = brokers.find((b) => b.nodeId === 2)!;
    const survivor = brokers.find((b) => b.nodeId === 1)!;
    // Offline: every partition whose only replica is broker 2 (solo's, and __consumer_offsets' if it
    // was created while broker 2 was the only one registered).
    const before = await admin.fetchTopicMetadata({ topics: ['m', 'e', 'solo', '__consumer_offsets'] });
    const onlyOnVictim = before.topics.flatMap((t) => t.partitions).filter((p) => p.replicas.length === 1 && p.replicas[0] === 2).length;
    expect(onlyOnVictim).toBeGreaterThanOrEqual(1);
    await producer.disconnect();
    await admin.disconnect();
    const exited = victim.process.exited();
    victim.process.child.kill('SIGKILL');
    await exited;
    // Within the session timeout (3 s in the test cluster) and a few liveness rounds.
    await until('under-replicated on the surviving leader', async () => sample(await scrape(survivor), 'kafka_server_replicamanager_underreplicatedpartitions')! >= 1, 15_000);
    expect(sample(await scrape(survivor), 'kafka_server_replicamanager_isrshrinks_total')).toBeGreaterThanOrEqual(1);
    await until('offline partitions at the controller', async () =>
      sample(await scrape(cluster.controller), 'kafka_controller_kafkacontroller_offlinepartitionscount') === onlyOnVictim, 15_000);
    const after = await scrape(cluster.controller);
    expect(sample(after, 'kafka_controller_controllerstats_leaderelectionrateandtimems_count')).toBeGreaterThanOrEqual(electionsBefore + 1);
    expect(sample(after, 'kafka_controller_controllerstats_uncleanleaderelections_total')).toBe(0);
    expect(sample(after, 'kafka_controller_kafkacontroller_preferredreplicaimbalancecount')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'kafka_controller_kafkacontroller_fencedbrokercount')).toBe(1);
    expect(sample(after, 'kafka_controller_kafkacontroller_activecontrollercount')).toBe(1);
  }, 120_000);
});
