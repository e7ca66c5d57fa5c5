// The cases confluent-kafka-python (librdkafka) and franz-go share, one describe.each over both
// (test/helpers/ecosystems.ts), each against its own real `runnel start`: an idempotent acks=all
// producer with every codec read back by a group, and a classic group of two splitting a topic.
// Each client checks that what it sent is what the broker's ApiVersions answer let it send. The
// cases only one client has are in test/interop-confluent-python.test.ts and test/interop-franz.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import {
  CODECS, CONFLUENT_KAFKA_VERSION, confluentPython, FRANZ_GO_VERSION, franzGo, values,
  type CkAdmin, type Codec, type EcosystemClient, type FranzAdmin, type Produced, type RunningConsumer, type SentRequests,
} from './helpers/ecosystems.ts';
import { advertised, byValue, expectFranzNegotiated, expectLibrdkafkaNegotiated } from './helpers/negotiation.ts';

/** What differs between the two clients in the shared cases. */
interface Client<Admin> {
  title: string;
  prefix: string;
  start(): Promise<EcosystemClient<Admin>>;
  /** Once per broker: the check that every request the client sent used the negotiated version. */
  negotiation(client: EcosystemClient<Admin>, broker: TestBroker): Promise<(requests: SentRequests) => void>;
  expectProduced(produced: Produced): void;
  /** franz-go reports each record's batch codec; librdkafka does not. */
  recordCodec: boolean;
  pairCodec: Codec;
  /** The group of two, as the client's admin describes it while both members are in. */
  expectPairDescribed(admin: Admin, group: string, topic: string): void;
}

const confluent: Client<CkAdmin> = {
  title: `confluent-kafka ${CONFLUENT_KAFKA_VERSION} (librdkafka)`,
  prefix: 'ck',
  start: confluentPython,
  async negotiation(_client, broker) {
    const brokerMax = await advertised(broker.port);
    return (requests) => expectLibrdkafkaNegotiated(requests, brokerMax);
  },
  expectProduced(produced) {
    expect(produced.requests.InitProducerId).toBeDefined();
  },
  recordCodec: false,
  pairCodec: 'zstd',
  expectPairDescribed(admin, group, topic) {
    const described = (admin.groups as Array<{ group: string; state?: string; members?: Array<{ assigned: Record<string, number[]> }> }>).find((g) => g.group === group)!;
    expect(described.state).toBe('ConsumerGroupState.STABLE');
    expect(described.members).toHaveLength(2);
    expect(described.members!.flatMap((m) => m.assigned[topic] ?? []).sort()).toEqual([0, 1, 2, 3]);
  },
};

const franz: Client<FranzAdmin> = {
  title: `franz-go ${FRANZ_GO_VERSION}`,
  prefix: 'franz',
  start: franzGo,
  async negotiation(client, broker) {
    const admin0 = await client.admin({ bootstrap: broker.bootstrap });
    return (requests) => expectFranzNegotiated(requests, admin0);
  },
  expectProduced(produced) {
    expect(produced.producerId).toBeGreaterThanOrEqual(0);
    expect(Object.keys(produced.partitions).length).toBeGreaterThan(0);
  },
  recordCodec: true,
  pairCodec: 'lz4',
  expectPairDescribed(admin, group, topic) {
    const described = admin.groups!.find((g) => g.group === group)!;
    expect(described).toMatchObject({ state: 'Stable', protocolType: 'consumer', error: null });
    expect(described.members).toHaveLength(2);
    const assigned = described.members!.flatMap((m) => m.assigned[topic] ?? []).sort();
    expect(assigned).toEqual([0, 1, 2, 3]);
    expect(described.members!.every((m) => (m.assigned[topic] ?? []).length > 0)).toBe(true);
  },
};

describe.each(([confluent, franz] as Client<unknown>[]).map((c) => [c.title, c] as const))('%s against runnel start', (_title, c) => {
  let client: EcosystemClient<unknown>;
  let broker: TestBroker;
  let expectNegotiated: (requests: SentRequests) => void;

  beforeAll(async () => {
    client = await c.start();
    broker = await startBroker({ set: ['num.partitions=4'] });
    expectNegotiated = await c.negotiation(client, broker);
  }, 900_000);

  afterAll(async () => {
    await broker?.cleanup();
  });

  // The codecs run at once (own topic and group each): each case ends waiting 3 s for a second
  // run of its group to read nothing, and those waits overlap instead of adding up.
  it.concurrent.for(CODECS)('idempotent acks=all producer with %s: a group reads every record once, in order per partition, and commits', { timeout: 90_000 }, async (codec, { expect }) => {
    const topic = `${c.prefix}-${codec}`;
    const produced = await client.produce({ bootstrap: broker.bootstrap, topic, count: 300, compression: codec, prefix: codec });
    expect(produced).toMatchObject({ acked: 300, failed: 0, error: null });
    c.expectProduced(produced);
    expectNegotiated(produced.requests);

    const consumed = await client.consume({ bootstrap: broker.bootstrap, topic, group: `g-${codec}`, count: 300 });
    expect(consumed.errors).toEqual([]);
    expect(consumed.done).toMatchObject({ count: 300, commitError: null, leaveError: null });
    expect(byValue(consumed.records)).toEqual(values(codec, 300).sort());
    for (const r of consumed.records) {
      const i = r.value.split('-')[1];
      expect({ key: r.key, headers: r.headers }).toEqual({ key: `k-${i}`, headers: { i } });
      if (c.recordCodec) expect(r.codec).toBe(codec);
    }
    for (const p of new Set(consumed.records.map((r) => r.partition))) {
      const offsets = consumed.records.filter((r) => r.partition === p).map((r) => r.offset);
      expect(offsets).toEqual(offsets.map((_, j) => j));
    }
    expectNegotiated(consumed.done.requests);

    // The group committed: a second run of the group has nothing left to read.
    const again = await client.consume({ bootstrap: broker.bootstrap, topic, group: `g-${codec}`, maxMs: 3_000 });
    expect(again.records).toEqual([]);
  });

  it('a classic group of two splits the partitions, reads every record exactly once between them, and describes as Stable with both members', async () => {
    const topic = `${c.prefix}-pair`;
    const group = `${c.prefix}-pair`;
    // The topic first (auto-created with num.partitions=4), so the group's first assignment has all four.
    await client.produce({ bootstrap: broker.bootstrap, topic, count: 1, prefix: 'seed' });
    const members: RunningConsumer[] = [];
    try {
      members.push(client.startConsumer({ bootstrap: broker.bootstrap, topic, group }));
      await members[0]!.assigned();
      members.push(client.startConsumer({ bootstrap: broker.bootstrap, topic, group }));
      await members[1]!.assigned();
      const produced = await client.produce({ bootstrap: broker.bootstrap, topic, count: 400, compression: c.pairCodec, prefix: 'pair' });
      expect(produced.acked).toBe(400);
      const all = () => [...members[0]!.records(), ...members[1]!.records()];
      await Promise.all(members.map((m) => m.waitFor(() => all().length >= 401, 60_000)));

      c.expectPairDescribed(await client.admin({ bootstrap: broker.bootstrap, groups: [group] }), group, topic);
    } finally {
      const done = await Promise.all(members.map((m) => m.stop()));
      if (done.length === 2) {
        for (const d of done) {
          expect(d.records.length).toBeGreaterThan(0);
          expect(d.done.commitError).toBeNull();
        }
        expect(byValue(done.flatMap((d) => d.records))).toEqual([...values('pair', 400), ...values('seed', 1)].sort());
      }
    }
  }, 120_000);
});
