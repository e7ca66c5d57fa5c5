import {
  GroupCoordinator,
  type GroupCoordinatorConfig,
  type JoinGroupRequest,
  type JoinGroupResult,
  ManualClock,
  type OffsetsRecord,
  type Outcome,
  encodeSubscription,
} from '../src/index.ts';

/** A promise whose settlement the test can look at synchronously (after `flush`). */
export interface Tracked<T> {
  readonly done: boolean;
  readonly value: T;
}

export function track<T>(p: Promise<T>): Tracked<T> {
  const t = { done: false, value: undefined as unknown as T };
  void p.then((v) => {
    t.done = true;
    t.value = v;
  });
  return t;
}

/** Lets resolved promises run their continuations. */
export const flush = () => new Promise<void>((r) => setImmediate(r));

/**
 * A coordinator over a manual clock that owns every offsets partition, with an in-memory
 * `__consumer_offsets`: `log` holds every record in append order, exactly what a real runtime
 * would have appended (operation records on settle, background records as they come).
 */
export class Harness {
  readonly clock = new ManualClock();
  readonly log: OffsetsRecord[] = [];
  readonly gc: GroupCoordinator;
  private uuid = 0;

  constructor(config: Partial<GroupCoordinatorConfig> = {}) {
    this.gc = new GroupCoordinator({
      clock: this.clock,
      config: { 'offsets.topic.num.partitions': 4, ...config },
      onRecords: (records) => this.log.push(...records),
      newUuid: () => `uuid-${++this.uuid}`,
    });
    for (let p = 0; p < 4; p++) {
      this.gc.beginLoad(p);
      this.gc.completeLoad(p);
    }
  }

  /** Appends the outcome's records (always succeeding) and settles it, like the runtime. */
  run<R>(o: Outcome<R>, fail?: Error): Tracked<R> {
    if (!fail) this.log.push(...o.records);
    o.settle(fail);
    return track(o.response);
  }

  async result<R>(o: Outcome<R>): Promise<R> {
    const t = this.run(o);
    await flush();
    if (!t.done) throw new Error('response still pending');
    return t.value;
  }

  join(groupId: string, over: Partial<JoinGroupRequest> = {}): Tracked<JoinGroupResult> {
    return this.run(this.gc.joinGroup(joinRequest(groupId, over)));
  }
}

export function joinRequest(groupId: string, over: Partial<JoinGroupRequest> = {}): JoinGroupRequest {
  return {
    groupId,
    memberId: '',
    groupInstanceId: null,
    clientId: 'client',
    clientHost: '/127.0.0.1',
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: encodeSubscription(['orders']) }],
    requireKnownMemberId: false,
    ...over,
  };
}

export const assignmentOf = (s: string) => Buffer.from(s);
