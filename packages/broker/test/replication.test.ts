/**
 * Replication in a real cluster: a redis-server, a `runnel controller` and three `runnel broker`
 * processes (test/helpers/cluster.ts), driven over the Kafka wire (raw requests, kcat). Each
 * broker registers its RPC address as a TCP relay in this test process (`runnel.rpc.advertised.listener`),
 * so a test can cut a leader off from its followers alone: its Kafka listener and its heartbeats
 * to the controller keep working. Logs are compared byte for byte on disk. Waits poll for a
 * state with a deadline; nothing asserts on time.
 */
import { open, readdir, readFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { startCluster, type ClusterNode, type TestCluster } from '../../../test/helpers/cluster.ts';
import { runKcat } from '../../../test/helpers/kcat.ts';
import { freePort } from '../../../test/helpers/ports.ts';
import { kafkaRequest } from '../../../test/helpers/raw-kafka.ts';
import { until } from '../../../test/helpers/until.ts';

/** A TCP relay to one broker's RPC listener that the test can cut (connections dropped, new ones refused) and heal. */
class Relay {
  readonly server: Server;
  readonly target: number;
  readonly sockets = new Set<Socket>();
  open = true;

  private constructor(server: Server, target: number) {
    this.server = server;
    this.target = target;
  }

  static async start(target: number): Promise<Relay> {
    const server = createServer();
    const relay = new Relay(server, target);
    server.on('connection', (client) => relay.#accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  #accept(client: Socket): void {
    if (!this.open) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  cut(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
  }

  heal(): void {
    this.open = true;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let cluster: TestCluster;
const relays = new Map<number, Relay>();

beforeAll(async () => {
  for (const id of [1, 2, 3]) relays.set(id, await Relay.start(await freePort()));
  cluster = await startCluster({
    brokers: 3,
    coordinators: 0,
    set: ['replica.lag.time.max.ms=8000', 'replica.fetch.backoff.ms=200', 'replica.fetch.wait.max.ms=200'],
    nodeSet: (role, id) => {
      const relay = relays.get(id);
      return role === 'broker' && relay ? [`runnel.rpc.listener=127.0.0.1:${relay.target}`, `runnel.rpc.advertised.listener=127.0.0.1:${relay.port}`, `broker.rack=rack-${id}`] : [];
    },
  });
}, 90_000);

afterAll(async () => {
  await cluster?.cleanup();
  for (const r of relays.values()) await r.close();
});

const broker = (id: number): ClusterNode => cluster.brokers.find((b) => b.nodeId === id)!;
/** A broker other than `except` whose process is running. */
const anyLive = (...except: number[]): ClusterNode => cluster.brokers.find((b) => !except.includes(b.nodeId) && b.process.child.exitCode === null && b.process.child.signalCode === null)!;

type PartitionMd = { leaderId: number; leaderEpoch: number; replicaNodes: number[]; isrNodes: number[]; offlineReplicas: number[] };

async function partitionMd(topic: string, via: ClusterNode): Promise<PartitionMd> {
  const md = await kafkaRequest(via.port, ApiKey.Metadata, 7, { topics: [{ name: topic }], allowAutoTopicCreation: false });
  const p = md.topics[0]!.partitions[0]!;
  return { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, replicaNodes: [...p.replicaNodes].sort(), isrNodes: [...p.isrNodes].sort(), offlineReplicas: [...p.offlineReplicas].sort() };
}

async function createTopic(topic: string, minIsr: number): Promise<PartitionMd> {
  const res = await kafkaRequest(anyLive().port, ApiKey.CreateTopics, 4, {
    topics: [{ name: topic, numPartitions: 1, replicationFactor: 3, assignments: [], configs: [{ name: 'min.insync.replicas', value: String(minIsr) }] }],
    timeoutMs: 10_000, validateOnly: false,
  });
  expect(res.topics[0]!.errorCode).toBe(ErrorCode.NONE);
  // Every broker's metadata has it (the first produce goes to the leader, whose snapshot may lag).
  return until(`${topic} with three in-sync replicas on every broker`, async () => {
    const seen = await Promise.all(cluster.brokers.map((n) => partitionMd(topic, n).catch(() => undefined)));
    const md = seen[0];
    return md && md.leaderId > 0 && seen.every((m) => m && m.leaderId === md.leaderId && m.isrNodes.length === 3) ? md : undefined;
  }, 20_000);
}

async function produce(port: number, topic: string, records: Buffer, acks: number, timeoutMs = 15_000) {
  const res = await kafkaRequest(port, ApiKey.Produce, 7, { transactionalId: null, acks, timeoutMs, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  return res.responses[0]!.partitionResponses[0]!;
}

const batch = (...values: string[]) => encodeRecordBatch({ records: values.map((value) => ({ value })) });

/** ListOffsets latest at the leader: its high watermark. */
async function highWatermark(topic: string, via: ClusterNode): Promise<bigint> {
  const res = await kafkaRequest(via.port, ApiKey.ListOffsets, 4, { replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }] });
  const p = res.topics[0]!.partitions[0]!;
  expect(p.errorCode).toBe(ErrorCode.NONE);
  return p.offset;
}

/** A replica's whole log as on disk: its segments concatenated in offset order. */
async function logBytes(node: ClusterNode, topic: string): Promise<Buffer> {
  const dir = join(node.logDir, `${topic}-0`);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.log')).sort();
  return Buffer.concat(await Promise.all(names.map((n) => readFile(join(dir, n)))));
}

async function logsEqual(topic: string, ids: number[]): Promise<Buffer | undefined> {
  const logs = await Promise.all(ids.map((id) => logBytes(broker(id), topic)));
  return logs[0]!.length > 0 && logs.every((l) => l.equals(logs[0]!)) ? logs[0] : undefined;
}

async function kill(node: ClusterNode): Promise<void> {
  node.process.child.kill('SIGKILL');
  await node.process.exited();
}

/** A consumer's Fetch v11 of partition 0 at `offset`, with the leader epoch it believes current. */
async function fetchAt(via: ClusterNode, topic: string, offset: bigint, currentLeaderEpoch: number) {
  const res = await kafkaRequest(via.port, ApiKey.Fetch, 11, {
    replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
    topics: [{ topic, partitions: [{ partition: 0, currentLeaderEpoch, fetchOffset: offset, logStartOffset: -1n, partitionMaxBytes: 1 << 20 }] }],
    forgottenTopicsData: [], rackId: '',
  });
  return res.responses[0]!.partitions[0]!;
}

describe('replication across three brokers', () => {
  it('registers each broker with its broker.rack', async () => {
    const md = await kafkaRequest(anyLive().port, ApiKey.Metadata, 7, { topics: [], allowAutoTopicCreation: false });
    const racks = md.brokers.filter((b) => [1, 2, 3].includes(b.nodeId)).map((b) => [b.nodeId, b.rack]).sort();
    expect(racks).toEqual([[1, 'rack-1'], [2, 'rack-2'], [3, 'rack-3']]);
  });

  it('replicates an RF 3 topic byte for byte; acks=all answers once a follower has the batch; the high watermark is the smallest end over the ISR', async () => {
    const md = await createTopic('rep-basic', 2);
    const leader = broker(md.leaderId);
    const followers = [1, 2, 3].filter((id) => id !== md.leaderId);

    for (let i = 0; i < 10; i++) {
      const marker = `basic-${i}`;
      const r = await produce(leader.port, 'rep-basic', batch(marker, `${marker}-b`), -1);
      expect(r).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: BigInt(2 * i) });
      // Acknowledged with min.insync.replicas=2: a follower already has it on disk.
      const onFollowers = await Promise.all(followers.map(async (id) => (await logBytes(broker(id), 'rep-basic')).includes(marker)));
      expect(onFollowers.some(Boolean)).toBe(true);
    }
    const kcat = await runKcat(['-P', '-b', cluster.bootstrap, '-t', 'rep-basic', '-X', 'acks=all'], { input: Array.from({ length: 50 }, (_, i) => `kcat-${i}`).join('\n') + '\n' });
    expect(kcat.code).toBe(0);
    const same = await until('three identical logs', () => logsEqual('rep-basic', [1, 2, 3]), 20_000);
    expect(same.includes('kcat-49')).toBe(true);
    expect(await highWatermark('rep-basic', leader)).toBe(70n);
    const consumed = await runKcat(['-C', '-b', cluster.bootstrap, '-t', 'rep-basic', '-e', '-f', '%s\n']);
    expect(consumed.stdout.trim().split('\n')).toHaveLength(70);

    // Followers cut off from the leader are still in the ISR: an acks=1 append stays above the high watermark.
    const relay = relays.get(md.leaderId)!;
    relay.cut();
    try {
      expect((await produce(leader.port, 'rep-basic', batch('above-hw'), 1)).baseOffset).toBe(70n);
      expect(await highWatermark('rep-basic', leader)).toBe(70n);
      const fetched = await fetchAt(leader, 'rep-basic', 70n, md.leaderEpoch);
      expect(fetched).toMatchObject({ errorCode: ErrorCode.NONE, highWatermark: 70n });
      expect(fetched.records!.length).toBe(0);
      // acks=all waits while the ISR has not got it, and times out (the record stays in the leader's log).
      expect((await produce(leader.port, 'rep-basic', batch('timed-out'), -1, 300)).errorCode).toBe(ErrorCode.REQUEST_TIMED_OUT);
      expect((await partitionMd('rep-basic', leader)).isrNodes).toEqual([1, 2, 3]);
      // One more acks=all, left waiting: the leader has it, the produce is not answered yet.
      let answered = false;
      const waiting = produce(leader.port, 'rep-basic', batch('released'), -1, 30_000).finally(() => { answered = true; });
      await until('the waiting batch in the leader log', async () => (await logBytes(leader, 'rep-basic')).includes('released'), 10_000);
      expect(answered).toBe(false);
      relay.heal();
      expect(await waiting).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 72n });
      const onFollowers = await Promise.all(followers.map(async (id) => (await logBytes(broker(id), 'rep-basic')).includes('released')));
      expect(onFollowers.some(Boolean)).toBe(true);
    } finally {
      relay.heal();
    }
    await until('the followers caught up again', () => logsEqual('rep-basic', [1, 2, 3]), 20_000);
    expect(await highWatermark('rep-basic', leader)).toBe(73n);
  });

  it('a leader cut off from its followers shrinks the ISR once committed (then the high watermark moves) and takes them back when they catch up', async () => {
    const md = await createTopic('rep-isr', 1);
    const leader = broker(md.leaderId);
    expect((await produce(leader.port, 'rep-isr', batch('a'), -1)).errorCode).toBe(ErrorCode.NONE);
    const relay = relays.get(md.leaderId)!;
    relay.cut();
    try {
      expect((await produce(leader.port, 'rep-isr', batch('b'), 1)).baseOffset).toBe(1n);
      // After replica.lag.time.max.ms the leader proposes itself alone; the controller commits it.
      await until('the ISR shrunk to the leader', async () => (await partitionMd('rep-isr', leader)).isrNodes.length === 1, 30_000);
      expect((await partitionMd('rep-isr', leader)).isrNodes).toEqual([md.leaderId]);
      await until('the high watermark over the shrunk ISR', async () => (await highWatermark('rep-isr', leader)) === 2n, 10_000);
    } finally {
      relay.heal();
    }
    await until('the ISR expanded again', async () => (await partitionMd('rep-isr', leader)).isrNodes.length === 3, 30_000);
    await until('identical logs', () => logsEqual('rep-isr', [1, 2, 3]), 20_000);
  });

  it('acks=all with min.insync.replicas=2 is refused with NOT_ENOUGH_REPLICAS when only the leader is live; dead replicas are offline in Metadata', async () => {
    const md = await createTopic('rep-min-isr', 2);
    const leader = broker(md.leaderId);
    const followers = [1, 2, 3].filter((id) => id !== md.leaderId);
    expect((await produce(leader.port, 'rep-min-isr', batch('ok'), -1)).errorCode).toBe(ErrorCode.NONE);
    for (const id of followers) await kill(broker(id));
    const shrunk = await until('the followers fenced out of the ISR', async () => {
      const now = await partitionMd('rep-min-isr', leader);
      return now.isrNodes.length === 1 ? now : undefined;
    }, 20_000);
    expect(shrunk.offlineReplicas).toEqual(followers);
    const before = await logBytes(leader, 'rep-min-isr');
    expect((await produce(leader.port, 'rep-min-isr', batch('refused'), -1)).errorCode).toBe(ErrorCode.NOT_ENOUGH_REPLICAS);
    expect((await logBytes(leader, 'rep-min-isr')).equals(before)).toBe(true);
    expect((await produce(leader.port, 'rep-min-isr', batch('acks-1'), 1))).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 1n });

    for (const id of followers) await cluster.restart(broker(id));
    await until('the ISR whole again', async () => (await partitionMd('rep-min-isr', leader)).isrNodes.length === 3, 30_000);
    expect((await produce(leader.port, 'rep-min-isr', batch('after'), -1))).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 2n });
    await until('identical logs', () => logsEqual('rep-min-isr', [1, 2, 3]), 20_000);
  });

  it('a leader that lost its leadership truncates its diverging suffix by leader epoch and catches up', async () => {
    const md = await createTopic('rep-diverge', 1);
    const old = broker(md.leaderId);
    expect((await produce(old.port, 'rep-diverge', batch('base-1', 'base-2'), -1)).errorCode).toBe(ErrorCode.NONE);
    await until('identical logs', () => logsEqual('rep-diverge', [1, 2, 3]), 20_000);

    // X reaches only the old leader's log, then it dies.
    const relay = relays.get(old.nodeId)!;
    relay.cut();
    expect((await produce(old.port, 'rep-diverge', batch('diverging-x1', 'diverging-x2', 'diverging-x3'), 1)).baseOffset).toBe(2n);
    await kill(old);
    relay.heal();
    const others = [1, 2, 3].filter((id) => id !== old.nodeId);
    const moved = await until('a new leader', async () => {
      const now = await partitionMd('rep-diverge', broker(others[0]!));
      return now.leaderId > 0 && now.leaderId !== old.nodeId ? now : undefined;
    }, 20_000);
    expect(moved.leaderEpoch).toBeGreaterThan(md.leaderEpoch);
    // Y takes the offsets X had on the old leader.
    expect(await produce(broker(moved.leaderId).port, 'rep-diverge', batch('new-y1'), -1)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 2n });

    const back = await cluster.restart(old);
    const same = await until('the old leader caught up', () => logsEqual('rep-diverge', [1, 2, 3]), 30_000);
    expect(same.includes('diverging-x1')).toBe(false);
    expect(same.includes('new-y1')).toBe(true);
    expect(back.process.output()).toMatch(/truncated a diverging suffix by leader epoch/);
    await until('the old leader back in the ISR', async () => (await partitionMd('rep-diverge', back)).isrNodes.length === 3, 30_000);
  });

  it('a batch rotten on the leader\'s disk is never served: the leader steps down, a replica with a good copy leads, the rotten copy is repaired', async () => {
    const md = await createTopic('rep-corrupt', 1);
    const leader = broker(md.leaderId);
    const [victim, other] = [1, 2, 3].filter((id) => id !== md.leaderId).map(broker) as [ClusterNode, ClusterNode];
    expect((await produce(leader.port, 'rep-corrupt', batch('good'), -1)).errorCode).toBe(ErrorCode.NONE);
    const good = await until('identical logs', () => logsEqual('rep-corrupt', [1, 2, 3]), 20_000);

    await kill(victim);
    expect((await produce(leader.port, 'rep-corrupt', batch('corrupt-me-please'), 1)).baseOffset).toBe(1n);
    await until('the other follower has the batch', async () => (await logBytes(other, 'rep-corrupt')).includes('corrupt-me-please'), 20_000);
    // Flip a byte of the record value in the leader's segment: its CRC no longer matches.
    const segment = join(leader.logDir, 'rep-corrupt-0', '00000000000000000000.log');
    const at = (await readFile(segment)).indexOf('corrupt-me-please');
    expect(at).toBeGreaterThan(good.length);
    const fh = await open(segment, 'r+');
    await fh.write(Buffer.from('C'), 0, 1, at);
    await fh.close();

    // The restarted follower asks for it; the leader's check refuses to serve it and it steps down.
    await cluster.restart(victim);
    await leader.process.waitFor(/a stored batch fails its check/, 20_000);
    await until('the replica with the good copy leading', async () => (await partitionMd('rep-corrupt', other)).leaderId === other.nodeId, 20_000);
    // Every replica ends with the good copy: the follower never got the rotten one, the old leader
    // truncated it and fetched it again.
    const healed = await until('identical logs', () => logsEqual('rep-corrupt', [1, 2, 3]), 30_000);
    expect(healed.includes('corrupt-me-please')).toBe(true);
    expect(healed.includes('Corrupt-me-please')).toBe(false);
    expect(leader.process.output()).toMatch(/truncated at a corrupt batch/);
    const consumed = await runKcat(['-C', '-b', cluster.bootstrap, '-t', 'rep-corrupt', '-e', '-f', '%s\n']);
    expect(consumed.stdout.trim().split('\n')).toEqual(['good', 'corrupt-me-please']);
  });

  it('an idempotent retry sent to the new leader after a controlled shutdown gets its original offset', async () => {
    const md = await createTopic('rep-idem', 2);
    const leader = broker(md.leaderId);
    const init = await kafkaRequest(leader.port, ApiKey.InitProducerId, 1, { transactionalId: null, transactionTimeoutMs: 60_000 });
    expect(init.errorCode).toBe(ErrorCode.NONE);
    const idem = (seq: number, value: string) => encodeRecordBatch({ records: [{ value }, { value: `${value}-2` }], producerId: init.producerId, producerEpoch: init.producerEpoch, baseSequence: seq });
    expect(await produce(leader.port, 'rep-idem', batch('plain'), -1)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    expect(await produce(leader.port, 'rep-idem', idem(0, 'idem-0'), -1)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 1n });
    expect(await produce(leader.port, 'rep-idem', idem(2, 'idem-2'), -1)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 3n });

    // SIGTERM: the broker asks the controller to move its leaderships before it stops serving.
    expect(await leader.process.stop(10_000)).toBe(0);
    const others = [1, 2, 3].filter((id) => id !== leader.nodeId);
    const moved = await until('a new leader', async () => {
      const now = await partitionMd('rep-idem', broker(others[0]!));
      return now.leaderId > 0 && now.leaderId !== leader.nodeId ? now : undefined;
    }, 20_000);
    expect(leader.process.output()).not.toMatch(/controlled shutdown incomplete/);
    const next = broker(moved.leaderId);
    expect(await produce(next.port, 'rep-idem', idem(2, 'idem-2'), -1)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 3n });
    expect(await produce(next.port, 'rep-idem', idem(0, 'idem-0'), -1)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 1n });
    expect(await produce(next.port, 'rep-idem', idem(4, 'idem-4'), -1)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 5n });
    expect(await highWatermark('rep-idem', next)).toBe(7n);

    // Consumers' leader epochs (Fetch v9+, ListOffsets v4+): older is fenced, newer unknown; a follower is not the leader.
    expect(moved.leaderEpoch).toBeGreaterThan(md.leaderEpoch);
    expect((await fetchAt(next, 'rep-idem', 0n, md.leaderEpoch)).errorCode).toBe(ErrorCode.FENCED_LEADER_EPOCH);
    expect((await fetchAt(next, 'rep-idem', 0n, moved.leaderEpoch + 1)).errorCode).toBe(ErrorCode.UNKNOWN_LEADER_EPOCH);
    expect(await fetchAt(next, 'rep-idem', 0n, moved.leaderEpoch)).toMatchObject({ errorCode: ErrorCode.NONE, highWatermark: 7n });
    const listed = await kafkaRequest(next.port, ApiKey.ListOffsets, 4, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'rep-idem', partitions: [{ partitionIndex: 0, currentLeaderEpoch: md.leaderEpoch, timestamp: -1n }] }] });
    expect(listed.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.FENCED_LEADER_EPOCH);
    const follower = broker(others.find((id) => id !== moved.leaderId)!);
    expect((await fetchAt(follower, 'rep-idem', 0n, -1)).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    expect((await produce(follower.port, 'rep-idem', batch('to-a-follower'), 1)).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    await cluster.restart(leader);
  });
});
