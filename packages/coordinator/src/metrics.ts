import { Counter, Gauge, type Registry } from '@runnel/common';
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
  /** Members per group: classic groups through DescribeGroups' view, consumer (KIP-848) groups through their own. */
  const groupsWithMembers = () => coordinator.machine.listGroups().groups.map((g) => ({
    groupId: g.groupId,
    members: g.groupType === 'consumer'
      ? coordinator.machine.consumer.get(g.groupId)?.members.size ?? 0
      : coordinator.machine.describeGroups([g.groupId])[0]?.members.length ?? 0,
  }));

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
  // kafka_exporter's names and labels (consumergroup, topic, partition), what Kafka dashboards query.
  new Gauge({
    name: 'kafka_consumergroup_current_offset', help: 'Committed offset, per group and partition (kafka_exporter).', labelNames: ['consumergroup', 'topic', 'partition'], registers: [registry],
    collect() {
      this.reset();
      for (const r of rows()) this.set({ consumergroup: r.group, topic: r.topic, partition: String(r.partition) }, Number(r.committedOffset));
    },
  });
  new Gauge({
    name: 'kafka_consumergroup_lag', help: 'Records between the committed offset and the high watermark, per group and partition (kafka_exporter).',
    labelNames: ['consumergroup', 'topic', 'partition'], registers: [registry],
    collect() {
      this.reset();
      for (const r of rows()) if (r.logEndOffset >= 0n) this.set({ consumergroup: r.group, topic: r.topic, partition: String(r.partition) }, Number(r.lag > 0n ? r.lag : 0n));
    },
  });
  new Gauge({
    name: 'kafka_consumergroup_lag_sum', help: 'Lag summed over a topic\'s partitions, per group and topic (kafka_exporter).', labelNames: ['consumergroup', 'topic'], registers: [registry],
    collect() {
      this.reset();
      const sums = new Map<string, { consumergroup: string; topic: string; lag: number }>();
      for (const r of rows()) {
        if (r.logEndOffset < 0n) continue;
        const key = JSON.stringify([r.group, r.topic]);
        const s = sums.get(key) ?? { consumergroup: r.group, topic: r.topic, lag: 0 };
        s.lag += Number(r.lag > 0n ? r.lag : 0n);
        sums.set(key, s);
      }
      for (const s of sums.values()) this.set({ consumergroup: s.consumergroup, topic: s.topic }, s.lag);
    },
  });
  new Gauge({
    name: 'kafka_consumergroup_members', help: 'Members of each group (kafka_exporter).', labelNames: ['consumergroup'], registers: [registry],
    collect() {
      this.reset();
      for (const g of groupsWithMembers()) this.set({ consumergroup: g.groupId }, g.members);
    },
  });
  // Kafka 4's group coordinator metrics: kafka.server:type=GroupMetadataManager,name=NumGroupsStable
  // → kafka_server_groupmetadatamanager_numgroupsstable (classic groups, as Kafka counts them), and
  // the group-coordinator-metrics group (group-count{protocol}, consumer-group-count{state}, ...).
  const listed = () => coordinator.machine.listGroups().groups;
  const classicStates = (): Map<string, number> => {
    const n = new Map<string, number>();
    for (const g of listed()) if (g.groupType === 'classic') n.set(g.groupState, (n.get(g.groupState) ?? 0) + 1);
    return n;
  };
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(value()); } });
  gauge('kafka_server_groupmetadatamanager_numgroups', 'Classic groups this coordinator owns (GroupMetadataManager NumGroups).', () => listed().filter((g) => g.groupType === 'classic').length);
  for (const state of ['Stable', 'PreparingRebalance', 'CompletingRebalance', 'Empty', 'Dead'] as const) {
    gauge(`kafka_server_groupmetadatamanager_numgroups${state.toLowerCase()}`, `Classic groups in state ${state} (GroupMetadataManager NumGroups${state}).`, () => classicStates().get(state) ?? 0);
  }
  gauge('kafka_server_groupmetadatamanager_numoffsets', 'Committed offsets (group and partition pairs) held, classic and consumer groups (GroupMetadataManager NumOffsets).', () => rows().length);
  new Gauge({
    name: 'kafka_server_group_coordinator_metrics_group_count', help: 'Groups per protocol, classic or consumer (group-coordinator-metrics group-count).', labelNames: ['protocol'], registers: [registry],
    collect() {
      const groups = listed();
      for (const protocol of ['classic', 'consumer']) this.set({ protocol }, groups.filter((g) => g.groupType === protocol).length);
    },
  });
  new Gauge({
    name: 'kafka_server_group_coordinator_metrics_consumer_group_count', help: 'Consumer (KIP-848) groups per state (group-coordinator-metrics consumer-group-count).', labelNames: ['state'], registers: [registry],
    collect() {
      const groups = listed().filter((g) => g.groupType === 'consumer');
      for (const state of ['empty', 'assigning', 'reconciling', 'stable', 'dead']) this.set({ state }, groups.filter((g) => g.groupState.toLowerCase() === state).length);
    },
  });
  const counter = (name: string, help: string, value: () => number) =>
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(value()); } });
  counter('kafka_server_group_coordinator_metrics_group_completed_rebalance_count', 'Classic group rebalances completed: a new generation with members (group-completed-rebalance-count).', () => coordinator.machine.stats.classicRebalances);
  counter('kafka_server_group_coordinator_metrics_consumer_group_rebalance_count', 'Consumer group epoch bumps: a new target assignment (consumer-group-rebalance-count).', () => coordinator.machine.consumer.rebalances);
  counter('kafka_server_group_coordinator_metrics_offset_commit_count', 'Offsets committed, one per partition of a written commit (offset-commit-count).', () => coordinator.machine.stats.offsetCommits);
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
