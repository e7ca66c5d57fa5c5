/**
 * Server-side assignors of the KIP-848 consumer protocol (Kafka's `uniform` and `range`). An
 * assignor maps the group's members (each with its subscribed topics) and the subscribed topics'
 * partition counts to a target assignment. Both are deterministic: the same input gives the same
 * output, so a coordinator that reloads the group computes what its predecessor computed.
 */

/** topicId → partitions. */
export type TopicAssignment = Map<string, Set<number>>;

export interface AssignorMember {
  readonly memberId: string;
  /** Topic ids the member subscribes to (resolved from names; unknown topics are left out). */
  readonly topics: ReadonlySet<string>;
  /** What the member is assigned now (the target of the previous assignment): kept where possible. */
  readonly current: TopicAssignment;
}

export interface Assignor {
  readonly name: string;
  assign(members: readonly AssignorMember[], partitionsOf: (topicId: string) => number): Map<string, TopicAssignment>;
}

const key = (topicId: string, p: number) => `${topicId}:${p}`;

function add(a: TopicAssignment, topicId: string, p: number): void {
  let s = a.get(topicId);
  if (!s) a.set(topicId, (s = new Set()));
  s.add(p);
}

/**
 * `uniform` (Kafka's default): every member gets as many partitions as any other, ±1, and keeps as
 * many of its current partitions as that allows (sticky). With identical subscriptions the counts
 * are exact quotas (⌊N/M⌋, and N mod M members one more); with different subscriptions each
 * partition goes to the least-loaded member subscribing to it, its current owner on a tie.
 */
export const uniformAssignor: Assignor = {
  name: 'uniform',
  assign(members, partitionsOf) {
    const out = new Map<string, TopicAssignment>();
    const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
    for (const m of sorted) out.set(m.memberId, new Map());
    if (sorted.length === 0) return out;
    const counts = new Map(sorted.map((m) => [m.memberId, 0]));
    const owner = new Map<string, string>();
    for (const m of sorted) for (const [t, ps] of m.current) for (const p of ps) owner.set(key(t, p), m.memberId);
    const topics = [...new Set(sorted.flatMap((m) => [...m.topics]))].sort();
    const all: [string, number][] = [];
    for (const t of topics) for (let p = 0; p < partitionsOf(t); p++) all.push([t, p]);
    const first = sorted[0]!.topics;
    const homogeneous = sorted.every((m) => m.topics.size === first.size && [...m.topics].every((t) => first.has(t)));
    const give = (m: string, t: string, p: number) => {
      add(out.get(m)!, t, p);
      counts.set(m, counts.get(m)! + 1);
    };
    if (homogeneous) {
      const minQuota = Math.floor(all.length / sorted.length);
      let extras = all.length % sorted.length;
      const taken = new Set<string>();
      // Keep current partitions up to the minimum quota, then one more for as many as may have one.
      const kept = new Map<string, [string, number][]>();
      for (const m of sorted) {
        const mine = all.filter(([t, p]) => owner.get(key(t, p)) === m.memberId);
        kept.set(m.memberId, mine);
        for (const [t, p] of mine.slice(0, minQuota)) {
          give(m.memberId, t, p);
          taken.add(key(t, p));
        }
      }
      for (const m of sorted) {
        if (extras === 0) break;
        const next = kept.get(m.memberId)![minQuota];
        if (next === undefined) continue;
        give(m.memberId, next[0], next[1]);
        taken.add(key(next[0], next[1]));
        extras--;
      }
      const free = all.filter(([t, p]) => !taken.has(key(t, p)));
      for (const [t, p] of free) {
        // Fill everyone to the minimum quota first, then hand out the remaining extras.
        let target = sorted.find((m) => counts.get(m.memberId)! < minQuota);
        if (target === undefined) {
          target = sorted.find((m) => counts.get(m.memberId)! === minQuota);
          extras--;
        }
        give(target!.memberId, t, p);
      }
      return out;
    }
    for (const [t, p] of all) {
      const candidates = sorted.filter((m) => m.topics.has(t));
      if (candidates.length === 0) continue;
      const prev = owner.get(key(t, p));
      let best = candidates[0]!;
      for (const c of candidates) {
        const diff = counts.get(c.memberId)! - counts.get(best.memberId)!;
        if (diff < 0 || (diff === 0 && c.memberId === prev)) best = c;
      }
      // Stickiness within balance: the current owner keeps it unless it would be 2+ above the least loaded.
      if (prev !== undefined && prev !== best.memberId && candidates.some((c) => c.memberId === prev) && counts.get(prev)! <= counts.get(best.memberId)!) best = candidates.find((c) => c.memberId === prev)!;
      give(best.memberId, t, p);
    }
    return out;
  },
};

/**
 * `range`: per topic, its subscribers in member-id order get contiguous ranges of partitions
 * (⌊N/M⌋ each, the first N mod M one more), as Kafka's RangeAssignor, so co-partitioned topics
 * are assigned alike.
 */
export const rangeAssignor: Assignor = {
  name: 'range',
  assign(members, partitionsOf) {
    const out = new Map<string, TopicAssignment>();
    const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
    for (const m of sorted) out.set(m.memberId, new Map());
    const topics = [...new Set(sorted.flatMap((m) => [...m.topics]))].sort();
    for (const t of topics) {
      const subs = sorted.filter((m) => m.topics.has(t));
      const n = partitionsOf(t);
      const per = Math.floor(n / subs.length);
      const extra = n % subs.length;
      let p = 0;
      subs.forEach((m, i) => {
        const count = per + (i < extra ? 1 : 0);
        for (let k = 0; k < count; k++) add(out.get(m.memberId)!, t, p++);
      });
    }
    return out;
  },
};

export const ASSIGNORS: readonly Assignor[] = [uniformAssignor, rangeAssignor];
