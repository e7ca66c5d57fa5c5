import { Counter, Gauge, type Registry } from '@runnel/common';
import type { ClusterState } from '@runnel/metadata';

/** What the controller's metrics read when scraped. */
export interface ControllerMetricSources {
  isActive(): boolean;
  /** The committed cluster state while active (undefined on a standby). */
  state(): ClusterState | undefined;
  /** Leader changes to a live leader, and those to a replica outside the ISR, that this process committed. */
  elections(): { leader: number; unclean: number };
}

/**
 * Kafka's controller metrics (kafka.controller:type=KafkaController,name=X →
 * `kafka_controller_kafkacontroller_x`, docs/metrics.md), computed from the committed state when
 * scraped. As in Kafka, only the active controller reports the cluster-wide counts; a standby
 * reports 0, so `sum()` over every controller is the cluster's figure.
 */
export function registerControllerMetrics(registry: Registry, c: ControllerMetricSources): void {
  const gauge = (name: string, help: string, value: (s: ClusterState) => number) =>
    new Gauge({
      name: `kafka_controller_kafkacontroller_${name}`, help, registers: [registry],
      collect() {
        const s = c.isActive() ? c.state() : undefined;
        this.set(s ? value(s) : 0);
      },
    });
  const partitions = function* (s: ClusterState) {
    for (const t of s.topics.values()) yield* t.partitions;
  };
  const count = <T>(items: Iterable<T>, pred: (x: T) => boolean) => {
    let n = 0;
    for (const x of items) if (pred(x)) n++;
    return n;
  };
  new Gauge({
    name: 'kafka_controller_kafkacontroller_activecontrollercount', help: '1 on the active controller, 0 on a standby (ActiveControllerCount).', registers: [registry],
    collect() { this.set(c.isActive() ? 1 : 0); },
  });
  gauge('globaltopiccount', 'Topics in the cluster (GlobalTopicCount).', (s) => s.topics.size);
  gauge('globalpartitioncount', 'Partitions in the cluster (GlobalPartitionCount).', (s) => count(partitions(s), () => true));
  gauge('offlinepartitionscount', 'Partitions without a leader (OfflinePartitionsCount).', (s) => count(partitions(s), (p) => p.leader < 0));
  gauge('preferredreplicaimbalancecount', 'Partitions whose leader is not their first replica (PreferredReplicaImbalanceCount).', (s) => count(partitions(s), (p) => p.leader !== p.replicas[0]));
  const brokers = (s: ClusterState) => [...s.nodes.values()].filter((n) => n.roles.includes('broker'));
  gauge('activebrokercount', 'Registered brokers not fenced (ActiveBrokerCount).', (s) => count(brokers(s), (n) => !n.fenced));
  gauge('fencedbrokercount', 'Registered brokers fenced (FencedBrokerCount).', (s) => count(brokers(s), (n) => n.fenced));
  const counter = (name: string, help: string, value: () => number) =>
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(value()); } });
  counter('kafka_controller_controllerstats_leaderelectionrateandtimems_count', 'Leader elections this controller committed (ControllerStats LeaderElectionRateAndTimeMs, its count).', () => c.elections().leader);
  counter('kafka_controller_controllerstats_uncleanleaderelections_total', 'Elections of a leader from outside the ISR (ControllerStats UncleanLeaderElectionsPerSec).', () => c.elections().unclean);
}

/** Leader changes in one committed change: to a live leader, and of those, to one outside the previous ISR. */
export function countElections(change: { topics?: { topic: { partitions: Array<{ leader: number }> }; previous: { partitions: Array<{ leader: number; isr: number[] }> } | null }[] }): { leader: number; unclean: number } {
  let leader = 0;
  let unclean = 0;
  for (const { topic, previous } of change.topics ?? []) {
    if (!previous) continue;
    topic.partitions.forEach((p, i) => {
      const before = previous.partitions[i];
      if (!before || p.leader < 0 || p.leader === before.leader) return;
      leader++;
      if (!before.isr.includes(p.leader)) unclean++;
    });
  }
  return { leader, unclean };
}
