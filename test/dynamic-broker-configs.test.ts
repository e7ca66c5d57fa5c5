// The two dynamic broker configs that need more than a re-read of the log defaults, set live with
// raw IncrementalAlterConfigs (key 44) frames as kafka-configs --alter sends them:
// - `unclean.leader.election.enable` as the cluster-wide default (`--entity-default`), on a
//   2-broker cluster whose only ISR member is dead: the out-of-sync replica is not elected until
//   the config is set, then is at once, with no restart (the controller reads it at every election).
// - `max.connections` on `runnel start`: the connection over the limit is refused, lowering it
//   closes no open connection, and deleting the config lifts the limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { ApiKey, decodeResponse, encodeRequest } from '@runnel/protocol';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { RawKafka, kafkaRequest } from './helpers/raw-kafka.ts';
import { redisCli } from './helpers/redis.ts';
import { suiteBroker } from './helpers/suite-broker.ts';
import { until } from './helpers/until.ts';

const BROKER = 4;
const SET = 0;
const DELETE = 1;

type Alter = { name: string; configOperation: number; value: string | null };
const body = (configs: Alter[]) => ({ resources: [{ resourceType: BROKER, resourceName: '', configs }], validateOnly: false });

describe('unclean.leader.election.enable, set live as the cluster default', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    // A follower leaves the ISR 3 s after it stops fetching; no automatic rebalance.
    cluster = await startCluster({ brokers: 2, coordinators: 0, set: ['auto.leader.rebalance.enable=false', 'replica.lag.time.max.ms=3000'] });
  }, 60_000);
  afterAll(async () => {
    await cluster?.cleanup();
  });

  const partition = async (topic: string) => {
    const json = await redisCli(cluster.redis.socketPath, 'HGET', 'runnel:topics', topic);
    return (JSON.parse(json) as { partitions: { leader: number; isr: number[]; leaderEpoch: number }[] }).partitions[0]!;
  };
  const live = async (nodeId: number) => {
    const json = await redisCli(cluster.redis.socketPath, 'HGET', 'runnel:nodes', String(nodeId));
    return json !== '' && (JSON.parse(json) as { fenced: boolean }).fenced === false;
  };

  it('elects the out-of-sync replica of a partition whose only ISR member is dead, without a restart', async () => {
    const admin = new Kafka({ clientId: 'unclean-test', brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'unclean', replicaAssignment: [{ partition: 0, replicas: [1, 2] }] }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    const [one, two] = [cluster.brokers.find((b) => b.nodeId === 1)!, cluster.brokers.find((b) => b.nodeId === 2)!];
    await until('broker 1 leads with both in the ISR', async () => {
      const p = await partition('unclean');
      return p.leader === 1 && p.isr.length === 2;
    }, 30_000);
    // Broker 2 stops and drops out of the ISR; then broker 1, the only ISR member, dies.
    await two.process.stop();
    await until('broker 2 out of the ISR', async () => (await partition('unclean')).isr.join(',') === '1', 30_000);
    one.process.child.kill('SIGKILL');
    await one.process.exited();
    await until('the partition offline', async () => (await partition('unclean')).leader === -1, 30_000);
    const restarted = await cluster.restart(two, { samePort: true });
    // Registration settles offline partitions in the same commit: once broker 2 is live, an
    // election without unclean has been decided, and it found nobody.
    await until('broker 2 registered again', () => live(2), 30_000);
    expect(await partition('unclean')).toMatchObject({ leader: -1, isr: [1] });

    const res = await kafkaRequest(restarted.port, ApiKey.IncrementalAlterConfigs, 1, body([{ name: 'unclean.leader.election.enable', configOperation: SET, value: 'true' }]));
    expect(res.responses.map((r) => [r.errorCode, r.errorMessage])).toEqual([[0, null]]);
    await until('broker 2 elected unclean', async () => (await partition('unclean')).leader === 2, 15_000);
    expect(await partition('unclean')).toMatchObject({ leader: 2, isr: [2] });
  }, 120_000);
});

describe('max.connections, set live on runnel start', () => {
  const broker = suiteBroker();

  let correlationId = 0;
  /** One request on an open connection, and its decoded answer. */
  async function call(conn: RawKafka, apiKey: typeof ApiKey.IncrementalAlterConfigs | typeof ApiKey.ApiVersions, apiVersion: number, req: object) {
    const before = conn.frames.length;
    conn.send(encodeRequest({ apiKey, apiVersion, correlationId: ++correlationId, clientId: 'max-connections-test' } as never, req as never));
    const frames = await conn.waitFrames(before + 1);
    return decodeResponse(apiKey, apiVersion, frames[before]!).body as { errorCode?: number; responses?: { errorCode: number; errorMessage: string | null }[] };
  }
  const alter = async (conn: RawKafka, configs: Alter[]) => (await call(conn, ApiKey.IncrementalAlterConfigs, 1, body(configs))).responses!.map((r) => [r.errorCode, r.errorMessage]);
  const answers = async (conn: RawKafka) => (await call(conn, ApiKey.ApiVersions, 0, {})).errorCode === 0;

  it('refuses the connection over the limit, closes none when lowered, and lifts the limit when deleted', async () => {
    const opened: RawKafka[] = [];
    const open = async () => {
      const c = await RawKafka.open(broker().port);
      opened.push(c);
      return c;
    };
    try {
      const adminConn = await open();
      expect(await alter(adminConn, [{ name: 'max.connections', configOperation: SET, value: '2' }])).toEqual([[0, null]]);
      const second = await open();
      expect(await answers(second)).toBe(true);
      const third = await open();
      expect(await third.closedWithin(10_000)).toBe(true);

      // Lowered below what is open: both connections stay and are answered (Kafka's behaviour).
      expect(await alter(adminConn, [{ name: 'max.connections', configOperation: SET, value: '1' }])).toEqual([[0, null]]);
      expect(await answers(second)).toBe(true);
      expect(await answers(adminConn)).toBe(true);

      expect(await alter(adminConn, [{ name: 'max.connections', configOperation: DELETE, value: null }])).toEqual([[0, null]]);
      const more = [await open(), await open()];
      for (const c of more) expect(await answers(c)).toBe(true);
    } finally {
      for (const c of opened) c.close();
    }
  }, 60_000);
});
