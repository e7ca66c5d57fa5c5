/**
 * @runnel/kafka-server: the Kafka listener. Framing, limits, in-order responses per connection,
 * the handler registry and the built-in ApiVersions, plus the discovery handlers every node
 * answers (Metadata, FindCoordinator) over a metadata snapshot. The other handlers live in the
 * roles (broker, coordinator).
 */
export { defineHandler, type Handler, type RequestContext } from './handler.ts';
export { KafkaServer, type KafkaServerOptions, type ApiVersionRange } from './server.ts';
export { advertisedAddress, listenerOptions } from './listener.ts';
export { describeConfigsHandler, initProducerIdHandler, type DescribeConfigsOptions } from './node-handlers.ts';
export { metadataErrorCode } from './metadata-errors.ts';
export {
  metadataHandler,
  describeTopic,
  kafkaControllerId,
  findCoordinatorHandler,
  CoordinatorKeyType,
  type MetadataHandlerOptions,
  type MetadataTopicResponse,
  type CoordinatorLocation,
  type CoordinatorLocator,
} from './discovery.ts';
