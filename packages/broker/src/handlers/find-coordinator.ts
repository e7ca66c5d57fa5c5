import { OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC } from '@runnel/common';
import { CoordinatorKeyType, findCoordinatorHandler, type CoordinatorLocation, type Handler } from '@runnel/kafka-server';
import type { MetadataSnapshot } from '@runnel/metadata';
import { ErrorCode, partitionForGroup } from '@runnel/protocol';
import type { BrokerContext } from '../context.ts';


/**
 * Where a group's or a transactional id's coordinator is, from metadata alone. A group hashes to a
 * `__consumer_offsets` partition (over the topic's partition count) and the controller assigned
 * that partition to a coordinator node. A transactional id hashes the same way (Kafka's
 * `Utils.abs(hashCode) % n`) to a `__transaction_state` partition q, owned by whoever owns
 * `__consumer_offsets` partition q % its partition count. The node's Kafka address is in the live
 * node list. Any missing link is COORDINATOR_NOT_AVAILABLE, which clients retry; a missing
 * `__transaction_state` calls `txnTopicMissing` (its lazy creation, as Kafka's first
 * FindCoordinator for a transaction does).
 */
export function locateCoordinator(snap: MetadataSnapshot, key: string, keyType: number, txnTopicMissing?: () => void): CoordinatorLocation {
  const unavailable = (errorMessage: string) => ({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage });
  if (keyType !== CoordinatorKeyType.GROUP && keyType !== CoordinatorKeyType.TRANSACTION) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `unknown key type ${keyType}` };
  const offsets = snap.topics.get(OFFSETS_TOPIC);
  if (!offsets || offsets.partitions.length === 0) return unavailable(`${OFFSETS_TOPIC} does not exist yet`);
  let partition: number;
  if (keyType === CoordinatorKeyType.TRANSACTION) {
    const txnTopic = snap.topics.get(TRANSACTION_STATE_TOPIC);
    if (!txnTopic || txnTopic.partitions.length === 0) {
      txnTopicMissing?.();
      return unavailable(`${TRANSACTION_STATE_TOPIC} does not exist yet (it is being created)`);
    }
    partition = partitionForGroup(key, txnTopic.partitions.length) % offsets.partitions.length;
  } else {
    partition = partitionForGroup(key, offsets.partitions.length);
  }
  const owner = snap.coordinators.get(partition);
  if (!owner) return unavailable(`no coordinator owns ${OFFSETS_TOPIC}-${partition}`);
  const node = snap.brokers.get(owner.nodeId);
  if (!node) return unavailable(`the coordinator of ${OFFSETS_TOPIC}-${partition} (node ${owner.nodeId}) is not live`);
  return { nodeId: node.nodeId, host: node.host, port: node.port };
}

/**
 * FindCoordinator v0–6 for a cluster broker: answered from metadata (the broker does not proxy
 * group or transaction APIs). The first lookup of a transactional id creates `__transaction_state`
 * with Kafka's settings (`transaction.state.log.*`: compacted, replication factor capped at the live
 * brokers); one creation at a time, a failure only logged (the client's retry tries again).
 */
export const findCoordinator = (b: BrokerContext): Handler => {
  let creating: Promise<void> | null = null;
  const createTxnTopic = () => {
    if (creating) return;
    const liveBrokers = [...b.metadata.snapshot().brokers.values()].filter((n) => n.roles.includes('broker')).length;
    const replicationFactor = Math.max(1, Math.min(b.config.get('transaction.state.log.replication.factor'), liveBrokers));
    creating = b.metadata.createTopic({
      name: TRANSACTION_STATE_TOPIC,
      partitions: b.config.get('transaction.state.log.num.partitions'),
      replicationFactor,
      internal: true,
      configs: {
        'cleanup.policy': 'compact',
        'segment.bytes': String(b.config.get('transaction.state.log.segment.bytes')),
        'min.insync.replicas': String(Math.min(b.config.get('transaction.state.log.min.isr'), replicationFactor)),
      },
    }).then(
      () => b.logger.info({ replicationFactor }, `created ${TRANSACTION_STATE_TOPIC}`),
      (err: unknown) => b.logger.debug({ err: (err as Error).message }, `creating ${TRANSACTION_STATE_TOPIC} failed (it may exist already)`),
    ).finally(() => {
      creating = null;
    });
  };
  return findCoordinatorHandler((key, keyType) => locateCoordinator(b.metadata.snapshot(), key, keyType, createTxnTopic));
};
