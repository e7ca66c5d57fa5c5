import { OFFSETS_TOPIC } from '@runnel/common';
import { MetadataError } from './errors.ts';

/** Kafka's topic name rule (Topic.java): 1–249 chars of [a-zA-Z0-9._-], not "." or "..". */
export function validateTopicName(name: string): void {
  if (name.length === 0 || name.length > 249 || name === '.' || name === '..' || !/^[a-zA-Z0-9._-]+$/.test(name)) {
    throw new MetadataError('INVALID_TOPIC_NAME', `invalid topic name "${name}": 1–249 characters of [a-zA-Z0-9._-], not "." or ".."`);
  }
}

/**
 * Refuses to delete `__consumer_offsets`, as Kafka refuses to delete its internal topics (the
 * broker answers INVALID_TOPIC_EXCEPTION). Recreated, its partitions would start empty under a
 * new topic while coordinators still hold the old groups' state.
 */
export function checkDeletable(name: string): void {
  if (name === OFFSETS_TOPIC) {
    throw new MetadataError('INVALID_TOPIC_NAME', `Topic ${OFFSETS_TOPIC} is a Kafka internal topic and may not be deleted`);
  }
}

/**
 * Kafka's controller bound (ReplicationControlManager.MAX_PARTITIONS_PER_BATCH): one CreateTopics
 * or CreatePartitions request creates at most this many partitions. Checked before any placement
 * array is built, so a request for 2,147,483,647 partitions is refused at once instead of growing
 * the process until it dies.
 */
export const MAX_PARTITIONS_PER_REQUEST = 10_000;

/** Refuses `count` new partitions in one request beyond MAX_PARTITIONS_PER_REQUEST (Kafka's POLICY_VIOLATION and message). */
export function checkPartitionsPerRequest(count: number): void {
  if (count > MAX_PARTITIONS_PER_REQUEST) {
    throw new MetadataError('POLICY_VIOLATION', `Excessively large number of partitions per request (${count} requested, at most ${MAX_PARTITIONS_PER_REQUEST}).`);
  }
}

/** Round-robin replica placement starting at a per-topic offset, as Kafka's rack-unaware assignment. */
export function assignReplicas(brokerIds: number[], partitions: number, replicationFactor: number, firstPartition = 0, start = 0): number[][] {
  checkPartitionsPerRequest(partitions);
  if (replicationFactor < 1 || replicationFactor > brokerIds.length) {
    throw new MetadataError('INVALID_REPLICATION_FACTOR', replicationFactor < 1
      ? 'Replication factor must be larger than 0.'
      : `Replication factor: ${replicationFactor} larger than available brokers: ${brokerIds.length}.`);
  }
  const ids = [...brokerIds].sort((a, b) => a - b);
  const out: number[][] = [];
  for (let p = firstPartition; p < firstPartition + partitions; p++) {
    const replicas: number[] = [];
    for (let r = 0; r < replicationFactor; r++) replicas.push(ids[(start + p + r) % ids.length]!);
    out.push(replicas);
  }
  return out;
}
