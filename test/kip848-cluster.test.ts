// KIP-848 in a cluster: a consumer-protocol group lives on a coordinator node (its records in the
// brokers' __consumer_offsets over RPC); when that node is killed with -9 the controller moves its
// __consumer_offsets partitions to the other coordinator node, which replays the group's records:
// the same group epoch, assignment epoch, members, member epochs and assignments, and a member's
// next heartbeat at its epoch is accepted there (raw ConsumerGroupHeartbeat v1 requests).
import { ApiKey } from '@runnel/protocol';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

let cluster: TestCluster;
const GROUP = 'kc';
const TOPIC = 'kip848-cluster';

beforeAll(async () => {
  cluster = await startCluster({ brokers: 1, coordinators: 2 });
  const admin = new Kafka({ brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 4 }], waitForLeaders: true });
  await admin.disconnect();
}, 120_000);

afterAll(async () => {
  await cluster?.cleanup();
});

/** The coordinator node of the group, as the broker's FindCoordinator names it (null while none). */
async function coordinatorPort(): Promise<number | null> {
  const r = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.FindCoordinator, 4, { keyType: 0, coordinatorKeys: [GROUP] });
  const c = r.coordinators[0]!;
  return c.errorCode === 0 ? c.port : null;
}

const heartbeat = (port: number, memberId: string, memberEpoch: number, owned: { topicId: string; partitions: number[] }[] | null) =>
  kafkaRequest(port, ApiKey.ConsumerGroupHeartbeat, 1, {
    groupId: GROUP, memberId, memberEpoch,
    rebalanceTimeoutMs: memberEpoch === 0 ? 30_000 : -1,
    subscribedTopicNames: memberEpoch === 0 ? [TOPIC] : null,
    topicPartitions: memberEpoch === 0 ? [] : owned,
  });

const describeGroup = async (port: number) => (await kafkaRequest(port, ApiKey.ConsumerGroupDescribe, 1, { groupIds: [GROUP], includeAuthorizedOperations: false })).groups[0]!;

describe('KIP-848 group across a coordinator node failover', () => {
  it('the other coordinator node replays the group: epochs, members and assignments; heartbeats go on', async () => {
    const port = (await until('a coordinator for the group', coordinatorPort, 30_000))!;
    const a = await heartbeat(port, 'member-a', 0, null);
    expect(a).toMatchObject({ errorCode: 0, memberEpoch: 1 });
    const b = await heartbeat(port, 'member-b', 0, null);
    expect(b).toMatchObject({ errorCode: 0, memberEpoch: 2 });
    // a revokes two partitions, then b gets them: the group is Stable at epoch 2.
    const a2 = await heartbeat(port, 'member-a', 1, a.assignment!.topicPartitions);
    const a3 = await heartbeat(port, 'member-a', 1, a2.assignment!.topicPartitions);
    expect(a3.memberEpoch).toBe(2);
    const b2 = await heartbeat(port, 'member-b', 2, []);
    await heartbeat(port, 'member-b', 2, b2.assignment!.topicPartitions);
    const before = await describeGroup(port);
    expect(before).toMatchObject({ groupState: 'Stable', groupEpoch: 2, assignmentEpoch: 2 });

    const owner = cluster.coordinators.find((c) => c.port === port)!;
    owner.process.child.kill('SIGKILL');
    await owner.process.exited();
    const next = (await until('the other coordinator node to take the group over', async () => {
      const p = await coordinatorPort().catch(() => null);
      return p !== null && p !== port ? p : null;
    }, 60_000))!;
    const after = (await until('the group loaded on the new coordinator', async () => {
      const d = await describeGroup(next);
      return d.errorCode === 0 ? d : null;
    }, 30_000))!;
    const norm = (d: typeof before) => ({ ...d, members: [...d.members].sort((x, y) => (x.memberId < y.memberId ? -1 : 1)).map((m) => ({ ...m, clientHost: '' })) });
    expect(norm(after)).toEqual(norm(before));
    // The members go on at their epochs on the new node.
    const a4 = await heartbeat(next, 'member-a', 2, a3.assignment?.topicPartitions ?? a2.assignment!.topicPartitions);
    expect(a4).toMatchObject({ errorCode: 0, memberEpoch: 2 });
  }, 180_000);
});
