import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { KafkaServer, defineHandler, type Handler, type RequestContext } from '@runnel/kafka-server';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { Admin as PltAdmin, Consumer as PltConsumer } from '@platformatic/kafka';
import { AssignerProtocol, Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator, MemoryOffsetsLog } from '../src/index.ts';

/**
 * The coordinator's handlers on a real listener, driven by kafkajs (JoinGroup v5, OffsetCommit v5,
 * non-flexible) and @platformatic/kafka 2.12 (FindCoordinator v6, JoinGroup v9, SyncGroup v5,
 * OffsetCommit and OffsetFetch v9: flexible) over TCP. A real broker would
 * serve Metadata, ListOffsets and Fetch; here three tiny stand-ins do (one topic of 4 partitions,
 * always empty), so the group protocol is what is under test.
 */
const NODE_ID = 1;
const TOPIC = 'orders';
const PARTITIONS = 4;

let server: KafkaServer;
let coordinator: Coordinator;
let port = 0;
/** `clientId apiKey vVersion` of every request the coordinator handlers served. */
const seen = new Set<string>();
const recording = (handlers: Handler[]): Handler[] =>
  handlers.map((h) => ({ ...h, handle: (req: unknown, ctx: RequestContext) => (seen.add(`${ctx.header.clientId} ${ctx.header.apiKey} v${ctx.header.apiVersion}`), h.handle(req, ctx)) }));

function brokerStandIns(): Handler[] {
  const metadata = defineHandler({
    api: ApiKey.Metadata,
    versions: [0, 4],
    handle(req) {
      const wanted = req.topics === null || req.topics.some((t) => t.name === TOPIC);
      return {
        throttleTimeMs: 0,
        brokers: [{ nodeId: NODE_ID, host: '127.0.0.1', port, rack: null }],
        clusterId: 'coordinator-test',
        controllerId: NODE_ID,
        topics: wanted
          ? [{ errorCode: 0, name: TOPIC, isInternal: false, partitions: Array.from({ length: PARTITIONS }, (_, i) => ({ errorCode: 0, partitionIndex: i, leaderId: NODE_ID, replicaNodes: [NODE_ID], isrNodes: [NODE_ID], offlineReplicas: [] })) }]
          : [],
      };
    },
  });
  const listOffsets = defineHandler({
    api: ApiKey.ListOffsets,
    versions: [1, 2],
    handle(req) {
      return { throttleTimeMs: 0, topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: 0, timestamp: -1n, offset: 0n })) })) };
    },
  });
  const fetch = defineHandler({
    api: ApiKey.Fetch,
    versions: [4, 11],
    async handle(req) {
      // An empty topic: wait a little (a fetch long-poll) and return no records.
      await sleep(Math.min(req.maxWaitMs, 50));
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        sessionId: 0,
        responses: req.topics.map((t) => ({
          topic: t.topic,
          partitions: t.partitions.map((p) => ({ partitionIndex: p.partition, errorCode: 0, highWatermark: 0n, lastStableOffset: 0n, logStartOffset: 0n, abortedTransactions: [], records: null })),
        })),
      };
    },
  });
  return [metadata, listOffsets, fetch];
}

beforeAll(async () => {
  coordinator = Coordinator.create({
    offsetsLog: new MemoryOffsetsLog(8),
    self: () => ({ nodeId: NODE_ID, host: '127.0.0.1', port }),
    config: { 'group.initial.rebalance.delay.ms': 0 },
  });
  await coordinator.start();
  server = KafkaServer.create({ handlers: [...recording(coordinator.handlers()), ...brokerStandIns()], host: '127.0.0.1', port: 0 });
  await server.start();
  port = server.address().port;
});

afterAll(async () => {
  await server?.stop();
  await coordinator?.stop();
});

const kafka = () => new Kafka({ clientId: 'kjs', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 50 } });

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(25);
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('kafkajs against the coordinator handlers', () => {
  it('two consumers form a group; admin lists, describes, fetches offsets and deletes it', async () => {
    const consumers: Consumer[] = [];
    for (let i = 0; i < 2; i++) {
      const c = kafka().consumer({ groupId: 'kjs-group', heartbeatInterval: 100, maxWaitTimeInMs: 100, sessionTimeout: 10_000, rebalanceTimeout: 10_000 });
      await c.connect();
      await c.subscribe({ topic: TOPIC, fromBeginning: true });
      await c.run({ eachMessage: async () => {} });
      consumers.push(c);
    }
    const admin = kafka().admin();
    await admin.connect();
    try {
      const group = await until('a stable group of two', async () => {
        const { groups } = await admin.describeGroups(['kjs-group']);
        const g = groups[0]!;
        const assigned = g.members.map((m) => AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[TOPIC] ?? []);
        return g.state === 'Stable' && g.members.length === 2 && assigned.every((a) => a.length > 0) ? { g, assigned } : undefined;
      });
      expect(group.g.protocolType).toBe('consumer');
      for (const [api, v] of [[ApiKey.FindCoordinator, 2], [ApiKey.JoinGroup, 5], [ApiKey.SyncGroup, 3], [ApiKey.Heartbeat, 3]]) expect(seen).toContain(`kjs ${api} v${v}`);
      expect(group.g.protocol).toBe('RoundRobinAssigner');
      expect(group.assigned.flat().sort()).toEqual([0, 1, 2, 3]);
      expect(group.g.members.every((m) => m.clientId === 'kjs' && m.clientHost === '/127.0.0.1')).toBe(true);

      const listed = await admin.listGroups();
      expect(listed.groups).toContainEqual({ groupId: 'kjs-group', protocolType: 'consumer' });

      // A member commits through the group (OffsetCommit v5 with its generation and member id).
      await consumers[0]!.commitOffsets([{ topic: TOPIC, partition: group.assigned[0]![0]!, offset: '42' }]);
      const offsets = await admin.fetchOffsets({ groupId: 'kjs-group', topics: [TOPIC] });
      const committed = offsets[0]!.partitions.find((p) => p.partition === group.assigned[0]![0]);
      expect(committed?.offset).toBe('42');

      for (const c of consumers) await c.disconnect();
      consumers.length = 0;
      await until('an empty group', async () => ((await admin.describeGroups(['kjs-group'])).groups[0]!.state === 'Empty' ? true : undefined));
      const deleted = await admin.deleteGroups(['kjs-group']);
      expect(deleted).toEqual([{ groupId: 'kjs-group', errorCode: ErrorCode.NONE }]);
      expect((await admin.describeGroups(['kjs-group'])).groups[0]!.state).toBe('Dead');
    } finally {
      for (const c of consumers) await c.disconnect();
      await admin.disconnect();
    }
  });
});

describe('@platformatic/kafka against the coordinator handlers', () => {
  it('two consumers form a group over the flexible versions; admin describes and deletes it', async () => {
    const opts = { clientId: 'plt', bootstrapBrokers: [`127.0.0.1:${port}`], groupId: 'plt-group', sessionTimeout: 10_000, rebalanceTimeout: 10_000, heartbeatInterval: 100, retries: 5, retryDelay: 50 };
    const consumers = [new PltConsumer(opts), new PltConsumer(opts)];
    const admin = new PltAdmin({ clientId: 'plt-admin', bootstrapBrokers: [`127.0.0.1:${port}`], retries: 5, retryDelay: 50 });
    try {
      const streams = [];
      for (const c of consumers) streams.push(await c.consume({ topics: [TOPIC], mode: 'earliest', maxWaitTime: 100, autocommit: false }));
      const stable = await until('a stable platformatic group', async () => {
        const groups = await admin.describeGroups({ groups: ['plt-group'] });
        const g = groups.get('plt-group');
        if (!g || g.state !== 'Stable' || g.members.size !== 2) return undefined;
        const gens = new Set(consumers.map((c) => c.generationId));
        const owned = consumers.flatMap((c) => (c.assignments ?? []).flatMap((a) => a.partitions));
        return gens.size === 1 && owned.length === PARTITIONS ? { g, owned } : undefined;
      });
      expect(stable.owned.sort()).toEqual([0, 1, 2, 3]);
      // The flexible versions were the ones on the wire.
      for (const [api, v] of [[ApiKey.FindCoordinator, 6], [ApiKey.JoinGroup, 9], [ApiKey.SyncGroup, 5], [ApiKey.Heartbeat, 4]]) expect(seen).toContain(`plt ${api} v${v}`);
      expect(stable.g.protocolType).toBe('consumer');
      expect([...stable.g.members.values()].every((m) => m.clientHost === '/127.0.0.1')).toBe(true);

      // OffsetCommit v9 and OffsetFetch v9 (the multi-group form, with member id and epoch), both flexible.
      const c0 = consumers[0]!;
      const mine = c0.assignments![0]!.partitions[0]!;
      await c0.commit({ offsets: [{ topic: TOPIC, partition: mine, offset: 7n, leaderEpoch: 0 }] });
      const committed = await c0.listCommittedOffsets({ topics: [{ topic: TOPIC, partitions: [mine] }] });
      expect(committed.get(TOPIC)![mine]).toBe(7n);
      expect(seen).toContain(`plt ${ApiKey.OffsetCommit} v9`);
      expect(seen).toContain(`plt ${ApiKey.OffsetFetch} v9`);

      for (const st of streams) await st.close();
      // One at a time: platformatic's close() can hang if it races the rebalance its peer's
      // LeaveGroup started (it leaves, then still sends SyncGroup, and waits on that answer).
      await consumers[0]!.close();
      await until('the survivor alone in a stable group', async () => {
        const g = (await admin.describeGroups({ groups: ['plt-group'] })).get('plt-group');
        return g?.state === 'Stable' && g.members.size === 1 && consumers[1]!.generationId === coordinator.machine.group('plt-group')?.generationId ? true : undefined;
      });
      await consumers[1]!.close();
      consumers.length = 0;
      await until('an empty platformatic group', async () => ((await admin.describeGroups({ groups: ['plt-group'] })).get('plt-group')?.state === 'Empty' ? true : undefined));
      await admin.deleteGroups({ groups: ['plt-group'] });
      expect(coordinator.machine.groupState('plt-group')).toBeUndefined();
    } finally {
      for (const c of consumers) await c.close(true);
      await admin.close();
    }
  });
});

describe('librdkafka (kcat -G) against the coordinator handlers', () => {
  it.skipIf(!existsSync('/usr/bin/kcat'))('a balanced kcat consumer joins with range/roundrobin, gets all partitions, and leaves on SIGTERM', async () => {
    const kcat = spawn('kcat', ['-b', `127.0.0.1:${port}`, '-G', 'kcat-group', TOPIC, '-q', '-X', 'client.id=kcat-test'], { stdio: 'ignore' });
    const exited = once(kcat, 'exit');
    try {
      const g = await until('kcat in a stable group', async () => {
        const [d] = coordinator.machine.describeGroups(['kcat-group']);
        // Stable, and the member went on to fetch its committed offsets.
        return d!.groupState === 'Stable' && d!.members.length === 1 && seen.has(`kcat-test ${ApiKey.OffsetFetch} v7`) ? d : undefined;
      });
      expect(g.protocolData).toBe('range'); // librdkafka's first preference, both offered
      expect(g.members[0]!.clientId).toBe('kcat-test');
      // JoinGroup v5 (MEMBER_ID_REQUIRED first), SyncGroup v3, OffsetFetch v7 (flexible).
      for (const [api, v] of [[ApiKey.FindCoordinator, 2], [ApiKey.JoinGroup, 5], [ApiKey.SyncGroup, 3], [ApiKey.OffsetFetch, 7]]) expect(seen).toContain(`kcat-test ${api} v${v}`);
    } finally {
      kcat.kill('SIGTERM');
      await exited;
    }
    expect(seen).toContain(`kcat-test ${ApiKey.LeaveGroup} v1`);
    expect(coordinator.machine.groupState('kcat-group')).toBe('Empty');
  });
});
