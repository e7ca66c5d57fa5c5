import { TRANSACTION_STATE_TOPIC, type BrokerConfig } from '@runnel/common';
import type { MetadataStore } from '@runnel/metadata';

/**
 * Creates `__transaction_state` as Kafka does, lazily (on the first FindCoordinator for a
 * transaction or transactional InitProducerId): compacted, `transaction.state.log.segment.bytes`
 * segments, `transaction.state.log.num.partitions` partitions, the replication factor
 * (`transaction.state.log.replication.factor`, Kafka's default 3) capped at the live brokers and
 * `min.insync.replicas` (`transaction.state.log.min.isr`) capped at that, so a small cluster or
 * `runnel start` can create it. Resolves at once when it exists; a creation raced by another
 * node's is no error.
 */
export async function createTransactionStateTopic(metadata: MetadataStore, config: BrokerConfig, liveBrokers: number): Promise<void> {
  if (metadata.snapshot().topics.has(TRANSACTION_STATE_TOPIC)) return;
  const replicationFactor = Math.max(1, Math.min(config.get('transaction.state.log.replication.factor'), liveBrokers));
  try {
    await metadata.createTopic({
      name: TRANSACTION_STATE_TOPIC,
      partitions: config.get('transaction.state.log.num.partitions'),
      replicationFactor,
      internal: true,
      configs: {
        'cleanup.policy': 'compact',
        'segment.bytes': String(config.get('transaction.state.log.segment.bytes')),
        'min.insync.replicas': String(Math.min(config.get('transaction.state.log.min.isr'), replicationFactor)),
      },
    });
  } catch (err) {
    if (metadata.snapshot().topics.has(TRANSACTION_STATE_TOPIC)) return;
    throw err;
  }
}
