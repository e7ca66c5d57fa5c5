/**
 * @runnel/kafka-server: the Kafka listeners (one server, several named listeners). Framing, limits, in-order responses per connection,
 * the handler registry and the built-in ApiVersions, plus the discovery handlers every node
 * answers (Metadata, FindCoordinator) over a metadata snapshot. The other handlers live in the
 * roles (broker, coordinator).
 */
export { defineHandler, type Handler, type RequestContext } from './handler.ts';
export { ANONYMOUS, principalString, isSasl, type KafkaPrincipal, type SecurityProtocol } from './security.ts';
export { Authenticator, SASL_MECHANISMS, type SaslOptions } from './sasl/authenticator.ts';
export { saslOptions, seedScramUsers, parseBootstrapScramUsers, type BootstrapScramUser } from './sasl/config.ts';
export { scramCredentialHandlers } from './sasl/scram-apis.ts';
export {
  ScramServer, credentialFromPassword, credentialFromSaltedPassword, saltPassword, SCRAM_MECHANISMS, SCRAM_MIN_ITERATIONS, SCRAM_MAX_ITERATIONS,
  type ScramCredential, type ScramMechanism,
} from './sasl/scram.ts';
export { parseJaasConfig, parseJaasUsers } from './sasl/jaas.ts';
export { KafkaServer, RequestBudget, DEFAULT_QUEUED_MAX_REQUEST_BYTES, type KafkaServerOptions, type ApiVersionRange, type ListenerBinding, type NodeAddressLookup } from './server.ts';
export { advertisedAddress, advertisedEndpoints, endpointOn, listenerOptions, nodeAddressLookup } from './listener.ts';
export { ServerTls, tlsSettings, secureContextOptions, parsePrincipalMappingRules, subjectRfc2253, type TlsSettings, type ClientAuth } from './tls.ts';
export { describeConfigsHandler, initProducerIdHandler, type DescribeConfigsOptions, type TransactionalInitProducerId } from './node-handlers.ts';
export { metadataErrorCode } from './metadata-errors.ts';
export {
  StandardAuthorizer, authorized, authorizedNames, authorizerFor, clusterAuthorized, parseSuperUsers, AclOperation, ResourceType,
  type Authorizer, type AuthorizationSubject, type StandardAuthorizerOptions,
} from './authorizer.ts';
export { API_AUTHORIZATION, edgeDenial, type ApiAuthorization } from './authorization.ts';
export { createAclsHandler, deleteAclsHandler, describeAclsHandler } from './acl-handlers.ts';
export { ServerMetrics, RequestTracker, countErrorCodes } from './metrics.ts';
export { unsupportedAnswer } from './unsupported.ts';
export { featureFields, nodeFeatures, METADATA_VERSION_LEVEL, type NodeFeatures } from './features.ts';
export { alterConfigsHandler, incrementalAlterConfigsHandler, DYNAMIC_BROKER_CONFIGS, type AlterConfigsOptions } from './alter-configs.ts';
export { electLeadersHandler } from './elect-leaders.ts';
export {
  alterClientQuotasHandler, describeClientQuotasHandler, resolveClientQuota, ClientQuotaEnforcer, type ClientQuotaOptions, type Throttle,
} from './client-quotas.ts';
export { ConnectionQuotas, parseIpOverrides, type ConnectionLimits } from './connection-quotas.ts';
export { describeTopicPartitionsHandler, MAX_RESPONSE_PARTITIONS, type DescribeTopicPartitionsSource } from './describe-topic-partitions.ts';
export { alterPartitionReassignmentsHandler, listPartitionReassignmentsHandler } from './reassignments.ts';
export {
  metadataHandler,
  describeTopic,
  brokersOn,
  kafkaControllerId,
  findCoordinatorHandler,
  CoordinatorKeyType,
  type MetadataHandlerOptions,
  type MetadataTopicResponse,
  type CoordinatorLocation,
  type CoordinatorLocator,
} from './discovery.ts';
