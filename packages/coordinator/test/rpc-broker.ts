import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OFFSETS_TOPIC, RunnelError } from '@runnel/common';
import type { AlterPartitionResult, BrokerRegistration, ElectionResult, CoordinatorAssignment, MetadataEvent, MetadataSnapshot, MetadataStore, NodeRegistrationInput, TopicMetadata } from '@runnel/metadata';
import { RpcServer, type Address, type RpcHandlers } from '@runnel/rpc';
import { defaultLogConfig, LogManager, type PartitionLog } from '@runnel/storage';
import { offsetsTopicLogConfig } from '../src/index.ts';

/**
 * Test scaffolding for the coordinator's cluster side without Redis or a controller:
 * - {@link SnapshotStore}: a MetadataStore whose snapshot the test sets (who leads each partition,
 *   who coordinates it); registrations are recorded and added to the live nodes.
 * - {@link startRpcBroker}: a real RpcServer serving 'broker.*' over real @runnel/storage partition
 *   logs of `__consumer_offsets`, refusing a coordinator append older than the epoch in its own
 *   view (the rule cluster.md gives the broker).
 */

export class SnapshotStore implements MetadataStore {
  snap: MetadataSnapshot;
  readonly registrations: BrokerRegistration[] = [];
  readonly #listeners = new Set<(e: MetadataEvent) => void>();
  constructor(snap: MetadataSnapshot) {
    this.snap = snap;
  }
  update(change: Partial<MetadataSnapshot>, event: MetadataEvent): void {
    this.snap = { ...this.snap, ...change, epoch: this.snap.epoch + 1 };
    for (const l of this.#listeners) l(event);
  }
  async start() {}
  async stop() {}
  snapshot() {
    return this.snap;
  }
  subscribe(listener: (e: MetadataEvent) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  async registerBroker(input: NodeRegistrationInput): Promise<BrokerRegistration> {
    const registration = { ...input, roles: input.roles ?? ['broker'], rpc: input.rpc ?? null, brokerEpoch: this.registrations.length + 1 };
    this.registrations.push(registration);
    this.update({ brokers: new Map([...this.snap.brokers, [registration.nodeId, registration]]) }, { type: 'broker-registered', broker: registration });
    return registration;
  }
  registration(): BrokerRegistration | undefined {
    return this.registrations.at(-1);
  }
  createTopic(): Promise<TopicMetadata> {
    throw new Error('read-only');
  }
  deleteTopic(): Promise<void> {
    throw new Error('read-only');
  }
  createPartitions(): Promise<TopicMetadata> {
    throw new Error('read-only');
  }
  alterTopicConfigs(): Promise<TopicMetadata> {
    throw new Error('read-only');
  }
  allocateProducerId(): Promise<bigint> {
    throw new Error('read-only');
  }
  alterPartition(): Promise<AlterPartitionResult> {
    throw new Error('read-only');
  }
  controlledShutdown(): Promise<{ remaining: number }> {
    throw new Error('read-only');
  }
  electLeaders(): Promise<ElectionResult[]> {
    throw new Error('read-only');
  }
}

class RefusedError extends RunnelError<'NOT_COORDINATOR' | 'NOT_LEADER'> {}

export const BROKER = 1;

export interface RpcBroker {
  rpc: Address;
  server: RpcServer;
  /** The broker's own view of who coordinates each partition (what it fences appends with). */
  view: Map<number, CoordinatorAssignment>;
  /** Partitions the broker refuses as not led here. */
  notLeading: Set<number>;
  /** Partitions whose appends are never answered (a leader that froze). */
  stalled: Set<number>;
  /** A SnapshotStore where this broker (node 1) leads every partition and `owner(p)` coordinates p at epoch 3. */
  store(owner: (p: number) => number): SnapshotStore;
  stop(): Promise<void>;
}

export async function startRpcBroker(partitions: number): Promise<RpcBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-rpc-broker-'));
  const logs = LogManager.create({ logDirs: [dir], defaults: defaultLogConfig });
  await logs.start();
  const partitionLogs: PartitionLog[] = [];
  for (let p = 0; p < partitions; p++) partitionLogs.push(await logs.createLog(OFFSETS_TOPIC, p, offsetsTopicLogConfig));
  const view = new Map<number, CoordinatorAssignment>();
  const notLeading = new Set<number>();
  const stalled = new Set<number>();
  const led = (p: number) => {
    if (notLeading.has(p)) throw new RefusedError('NOT_LEADER', `${OFFSETS_TOPIC}-${p} is not led here`, { retriable: true });
    return partitionLogs[p]!;
  };
  const handlers: RpcHandlers = {
    'broker.append': async (req) => {
      if (stalled.has(req.partition)) return new Promise<never>(() => {});
      const owner = view.get(req.partition);
      if (req.coordinatorEpoch >= 0 && owner && req.coordinatorEpoch < owner.epoch) {
        throw new RefusedError('NOT_COORDINATOR', `epoch ${req.coordinatorEpoch} < ${owner.epoch}`);
      }
      const log = led(req.partition);
      const r = await log.append(req.records);
      if (r.lastOffset + 1n > log.highWatermark) log.highWatermark = r.lastOffset + 1n;
      return { baseOffset: r.baseOffset, lastOffset: r.lastOffset };
    },
    'broker.read': async (req) => {
      const log = led(req.partition);
      const r = await log.read(req.offset, req.maxBytes, { minOneBatch: true, maxOffset: log.highWatermark });
      return { records: r.records, highWatermark: r.highWatermark, logStartOffset: r.logStartOffset };
    },
    // Markers as the broker writes them (a control batch as leader, then the high watermark).
    'broker.writeTxnMarkers': async (req) => ({
      markers: await Promise.all(req.markers.map(async (m) => ({
        partitions: await Promise.all(m.partitions.map(async ({ topic, partition }) => {
          if (topic !== OFFSETS_TOPIC || notLeading.has(partition)) return { topic, partition, error: 'NOT_LEADER_OR_FOLLOWER' };
          const log = partitionLogs[partition]!;
          const r = await log.appendControl({ producerId: m.producerId, producerEpoch: m.producerEpoch, commit: m.commit, coordinatorEpoch: m.coordinatorEpoch });
          if (r.lastOffset + 1n > log.highWatermark) log.highWatermark = r.lastOffset + 1n;
          return { topic, partition, error: '' };
        })),
      }))),
    }),
    'broker.offsets': async (req) => ({
      partitions: req.partitions.map(({ topic, partition }) => {
        if (topic !== OFFSETS_TOPIC || notLeading.has(partition)) return { topic, partition, error: 'NOT_LEADER', highWatermark: -1n, logStartOffset: -1n };
        const log = partitionLogs[partition]!;
        return { topic, partition, error: '', highWatermark: log.highWatermark, logStartOffset: log.logStartOffset };
      }),
    }),
  };
  const server = RpcServer.create({ host: '127.0.0.1', port: 0, handlers });
  await server.start();
  const rpc = server.address();
  let stopped = false;
  return {
    rpc,
    server,
    view,
    notLeading,
    stalled,
    store(owner) {
      const coordinators = new Map<number, CoordinatorAssignment>();
      for (let p = 0; p < partitions; p++) {
        coordinators.set(p, { nodeId: owner(p), epoch: 3 });
        view.set(p, { nodeId: owner(p), epoch: 3 });
      }
      return new SnapshotStore({
        clusterId: 'test',
        controllerId: -1,
        controllerRpc: null,
        epoch: 1,
        brokers: new Map([[BROKER, { nodeId: BROKER, host: '127.0.0.1', port: 1, rack: null, brokerEpoch: 1, roles: ['broker'], rpc }]]),
        topics: new Map([[OFFSETS_TOPIC, {
          name: OFFSETS_TOPIC,
          topicId: '0'.repeat(32),
          internal: true,
          configs: {},
          partitions: Array.from({ length: partitions }, (_, p) => ({ partition: p, leader: BROKER, leaderEpoch: 0, replicas: [BROKER], isr: [BROKER], version: 0 })),
        }]]),
        coordinators,
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await logs.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
