export type {
  BrokerRegistration, CoordinatorAssignment, Endpoint, CreateTopicSpec, MetadataEvent, MetadataSnapshot, MetadataStore, MetadataWriter,
  NodeRegistrationInput, NodeRole, PartitionState, RpcAddress, TopicMetadata, AlterPartitionInput, AlterPartitionResult, ElectionResult, ReassignmentInput, ReassignmentResult,
} from './types.ts';
export { MetadataError, type MetadataErrorCode } from './errors.ts';
export {
  AclOperation, AclPermissionType, PatternType, ResourceType, CLUSTER_RESOURCE_NAME, WILDCARD, WILDCARD_PRINCIPAL,
  aclFilterMatches, aclKey, normalizeAcl, validateAclBinding, withAcls, withoutAcls, type AclBinding, type AclBindingFilter,
} from './acls.ts';
export { LocalStore, newClusterId } from './local-store.ts';
export {
  SCRAM_MECHANISM_NAMES, decodeScramCredentials, withScramChanges,
  type ScramMechanismName, type ScramCredentialData, type ScramCredentials, type ScramCredentialUpsert, type ScramCredentialDeletion, type PersistedUserScram,
} from './scram.ts';
export {
  CLIENT_QUOTA_ENTITY_TYPES, CLIENT_QUOTA_KEYS, clientQuotaKey, parseClientQuotaKey, withClientQuotaChanges,
  type ClientQuotaAlteration, type ClientQuotaEntity, type ClientQuotaEntityType, type ClientQuotas,
} from './client-quotas.ts';
export { MAX_PARTITIONS_PER_REQUEST, assignReplicas, checkDeletable, checkPartitionsPerRequest, validateTopicName } from './validate.ts';
export { ControllerStore, type ControllerStoreOptions, type ClusterChange, type ClusterState, type StoredNode } from './controller-store.ts';
export { redactRedisUrl, redisOptionsFromUrl } from './redis-layout.ts';
export { RedisStore, type RedisStoreOptions } from './redis-store.ts';
