import { Gauge, type Registry } from '@runnel/common';
import type { Coordinator } from './coordinator.ts';

export interface LagSources {
  /** How far consumers can read a partition (its high watermark); -1 when unknown. */
  logEndOffset(topic: string, partition: number): bigint;
  /** The timestamp of the record at an offset, or null when it cannot be read. */
  recordTimestamp(topic: string, partition: number, offset: bigint): Promise<bigint | null>;
}

/**
 * Consumer-group gauges, computed when scraped, per group and partition: the committed offset, the
 * lag in records (log end − committed), the lag in seconds (the age of the last committed record:
 * now − the timestamp of the record at committed − 1; 0 when caught up), and how long ago the
 * offset was committed. Plus members per group. Names follow the `kafka_consumergroup_*` family
 * that exporters made familiar, under Runnel's prefix.
 */
export function registerCoordinatorMetrics(registry: Registry, coordinator: Coordinator, sources: LagSources): void {
  const labels = ['group', 'topic', 'partition'];
  const rows = () => coordinator.machine.listGroups().groups.flatMap((g) =>
    coordinator.lag(g.groupId, (t, p) => sources.logEndOffset(t, p)).map((row) => ({ group: g.groupId, ...row })));
  const label = (r: { group: string; topic: string; partition: number }) => ({ group: r.group, topic: r.topic, partition: String(r.partition) });

  new Gauge({
    name: 'runnel_consumergroup_committed_offset', help: 'Committed offset (the next record the group will read).', labelNames: labels, registers: [registry],
    collect() {
      this.reset();
      for (const r of rows()) this.set(label(r), Number(r.committedOffset));
    },
  });
  new Gauge({
    name: 'runnel_consumergroup_lag', help: 'Records between the committed offset and the log end.', labelNames: labels, registers: [registry],
    collect() {
      this.reset();
      for (const r of rows()) if (r.logEndOffset >= 0n) this.set(label(r), Number(r.lag > 0n ? r.lag : 0n));
    },
  });
  new Gauge({
    name: 'runnel_consumergroup_lag_seconds', help: 'Age of the last committed record (now - its timestamp); 0 when caught up.', labelNames: labels, registers: [registry],
    async collect() {
      this.reset();
      const now = BigInt(Date.now());
      await Promise.all(rows().map(async (r) => {
        if (r.logEndOffset < 0n) return;
        if (r.lag <= 0n) return this.set(label(r), 0);
        if (r.committedOffset <= 0n) return;
        const ts = await sources.recordTimestamp(r.topic, r.partition, r.committedOffset - 1n).catch(() => null);
        if (ts !== null && ts >= 0n) this.set(label(r), Math.max(0, Number(now - ts) / 1000));
      }));
    },
  });
  new Gauge({
    name: 'runnel_consumergroup_commit_age_seconds', help: 'Seconds since the offset was last committed.', labelNames: labels, registers: [registry],
    collect() {
      this.reset();
      for (const r of rows()) this.set(label(r), r.secondsSinceCommit);
    },
  });
  new Gauge({
    name: 'runnel_consumergroup_members', help: 'Members of each group.', labelNames: ['group', 'state'], registers: [registry],
    collect() {
      this.reset();
      for (const g of coordinator.machine.describeGroups(coordinator.machine.listGroups().groups.map((x) => x.groupId))) {
        this.set({ group: g.groupId, state: g.groupState }, g.members.length);
      }
    },
  });
}
