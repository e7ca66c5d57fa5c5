/**
 * Branded identifiers: a topic name and a broker id are both primitives on the wire, but mixing
 * them up is a bug the compiler can catch. Offsets are bigint because Kafka's are int64.
 */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type BrokerId = Brand<number, 'BrokerId'>;
export type TopicName = Brand<string, 'TopicName'>;
export type PartitionIndex = Brand<number, 'PartitionIndex'>;
export type Offset = bigint;

export const brokerId = (n: number) => n as BrokerId;
export const topicName = (s: string) => s as TopicName;
export const partitionIndex = (n: number) => n as PartitionIndex;

/** A topic-partition key usable in Maps: `orders-3`, the same spelling as the partition's log dir. */
export const tpKey = (topic: string, partition: number) => `${topic}-${partition}`;

/**
 * Kafka's internal, compacted topic of group metadata and committed offsets. Its name is shared by
 * the controller (which creates it), brokers (which store it) and coordinators (which own it).
 */
export const OFFSETS_TOPIC = '__consumer_offsets';

/** Its topic configs, as Kafka creates it: compacted (the latest value per key wins), 100 MiB segments. */
export const OFFSETS_TOPIC_CONFIGS: Readonly<Record<string, string>> = { 'cleanup.policy': 'compact', 'segment.bytes': '104857600' };

/**
 * Kafka's internal, compacted topic of transaction state (one record per transactional id). Created
 * lazily, on the first FindCoordinator for a transaction or transactional InitProducerId, as Kafka does.
 */
export const TRANSACTION_STATE_TOPIC = '__transaction_state';
