export type {
  BrokerRegistration, CreateTopicSpec, MetadataEvent, MetadataSnapshot, MetadataStore, PartitionState, TopicMetadata,
} from './types.ts';
export { MetadataError, type MetadataErrorCode } from './errors.ts';
export { LocalStore, newClusterId } from './local-store.ts';
export { assignReplicas, validateTopicName } from './validate.ts';
