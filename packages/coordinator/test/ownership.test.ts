import { describe, expect, it } from 'vitest';
import { Coordinator, ManualClock, MemoryOffsetsLog, partitionForGroup } from '../src/index.ts';
import { flush, joinRequest, track } from './harness.ts';

/**
 * Ownership that changes under a running coordinator (a cluster's metadata moving
 * `__consumer_offsets` partitions between coordinator nodes): setOwned loads what it gains and
 * unloads what it loses; FindCoordinator's answer follows.
 */

const PARTITIONS = 4;
const SELF = { nodeId: 7, host: '127.0.0.1', port: 9097 };
const OTHER = { nodeId: 8, host: '127.0.0.1', port: 9098 };

/** A group id whose partition is `p`. */
function groupOn(p: number): string {
  for (let i = 0; ; i++) if (partitionForGroup(`g-${i}`, PARTITIONS) === p) return `g-${i}`;
}

const commit = (groupId: string, offset: bigint) => ({
  groupId,
  generationId: -1,
  memberId: '',
  groupInstanceId: null,
  retentionTimeMs: -1,
  topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: 'm' }] }],
});

const fetchOne = (c: Coordinator, groupId: string) => c.machine.fetchOffsets({ groupId, topics: [{ name: 'orders', partitionIndexes: [0] }] });

/** A MemoryOffsetsLog whose next `failLoads` loads fail, like a broker that is not reachable yet. */
class FlakyLog extends MemoryOffsetsLog {
  failLoads = 0;
  loads = 0;
  override async load(partition: number, apply: (key: Buffer, value: Buffer | null, producerId: bigint) => void, onMarker?: (producerId: bigint, commit: boolean) => void): Promise<void> {
    this.loads++;
    if (this.failLoads > 0) {
      this.failLoads--;
      throw new Error('leader not reachable');
    }
    return super.load(partition, apply, onMarker);
  }
}

function create(log: MemoryOffsetsLog, o: { clock?: ManualClock; owned?: number[]; locate?: (p: number) => typeof OTHER | null } = {}) {
  return Coordinator.create({
    offsetsLog: log,
    clock: o.clock ?? new ManualClock(),
    self: () => SELF,
    ownedPartitions: o.owned ?? [],
    locate: o.locate,
    loadRetry: { initialMs: 100, maxMs: 400 },
    config: { 'group.initial.rebalance.delay.ms': 3000 },
  });
}

describe('Coordinator.setOwned', () => {
  it('a newly owned partition replays the offsets committed by its previous owner', async () => {
    const log = new MemoryOffsetsLog(PARTITIONS);
    const g = groupOn(2);
    const before = create(log, { owned: [2] });
    await before.start();
    const r = await before.execute(before.machine.commitOffsets(commit(g, 42n)));
    expect(r.topics[0]!.partitions[0]!.error).toBe('NONE');
    await before.stop();

    const after = create(log);
    await after.start();
    expect(fetchOne(after, g).error).toBe('NOT_COORDINATOR');
    await after.setOwned([2]);
    expect(after.owned()).toEqual([2]);
    const fetched = fetchOne(after, g);
    expect(fetched.error).toBe('NONE');
    expect(fetched.topics[0]!.partitions[0]!.committedOffset).toBe(42n);
    expect(fetched.topics[0]!.partitions[0]!.metadata).toBe('m');
    await after.stop();
  });

  it('losing a partition answers members waiting in a rebalance NOT_COORDINATOR and drops its groups', async () => {
    const log = new MemoryOffsetsLog(PARTITIONS);
    const g = groupOn(1);
    const kept = groupOn(3);
    const c = create(log, { owned: [1, 3] });
    await c.start();
    await c.execute(c.machine.commitOffsets(commit(kept, 5n)));
    // The initial rebalance delay (3 s on a manual clock that never moves) keeps the member waiting.
    const join = track(c.execute(c.machine.joinGroup(joinRequest(g))));
    await flush();
    expect(join.done).toBe(false);

    await c.setOwned([3]);
    await flush();
    expect(join.done).toBe(true);
    expect(join.value.error).toBe('NOT_COORDINATOR');
    expect(c.machine.groupState(g)).toBeUndefined();
    expect(fetchOne(c, g).error).toBe('NOT_COORDINATOR');
    // The partition still owned is untouched.
    expect(fetchOne(c, kept).topics[0]!.partitions[0]!.committedOffset).toBe(5n);
    expect(c.owned()).toEqual([3]);
    await c.stop();
  });

  it('a failing load is retried with backoff while owned; its groups answer COORDINATOR_LOAD_IN_PROGRESS meanwhile', async () => {
    const clock = new ManualClock();
    const log = new FlakyLog(PARTITIONS);
    const g = groupOn(0);
    const writer = create(log, { owned: [0] });
    await writer.start();
    await writer.execute(writer.machine.commitOffsets(commit(g, 9n)));
    await writer.stop();

    const c = create(log, { clock });
    await c.start();
    log.failLoads = 2;
    log.loads = 0;
    const loaded = track(c.setOwned([0]));
    await flush();
    expect(log.loads).toBe(1);
    expect(fetchOne(c, g).error).toBe('COORDINATOR_LOAD_IN_PROGRESS');
    clock.advance(100); // first backoff
    await flush();
    expect(log.loads).toBe(2);
    expect(fetchOne(c, g).error).toBe('COORDINATOR_LOAD_IN_PROGRESS');
    clock.advance(100); // the backoff doubled: not yet
    await flush();
    expect(log.loads).toBe(2);
    clock.advance(100);
    await flush();
    expect(log.loads).toBe(3);
    expect(loaded.done).toBe(true);
    expect(fetchOne(c, g).topics[0]!.partitions[0]!.committedOffset).toBe(9n);
    await c.stop();
  });

  it('a partition given up while its load waits to retry is not loaded any more', async () => {
    const clock = new ManualClock();
    const log = new FlakyLog(PARTITIONS);
    const c = create(log, { clock });
    await c.start();
    log.failLoads = 1;
    const loaded = track(c.setOwned([0]));
    await flush();
    expect(log.loads).toBe(1);
    await c.setOwned([]);
    clock.advance(1000);
    await flush();
    expect(loaded.done).toBe(true);
    expect(log.loads).toBe(1);
    expect(c.machine.ownedPartitions().has(0)).toBe(false);
    await c.stop();
  });

  it('FindCoordinator: this node for owned (and loading) partitions, the owner from locate for the others', async () => {
    const log = new FlakyLog(PARTITIONS);
    const owners = new Map<number, typeof OTHER>([[1, OTHER]]);
    const c = create(log, { owned: [0], locate: (p) => owners.get(p) ?? null });
    expect(c.locate(groupOn(0))).toMatchObject({ error: 'COORDINATOR_NOT_AVAILABLE' }); // not started
    await c.start();
    expect(c.locate(groupOn(0))).toEqual(SELF);
    expect(c.locate(groupOn(1))).toEqual(OTHER);
    expect(c.locate(groupOn(2))).toMatchObject({ error: 'COORDINATOR_NOT_AVAILABLE' });
    log.failLoads = 1;
    void c.setOwned([0, 2]);
    await flush();
    expect(c.machine.ownedPartitions().get(2)).toBe('loading');
    expect(c.locate(groupOn(2))).toEqual(SELF);
    await c.stop();
  });
});
