/**
 * @runnel/kafka-server: the Kafka listener. Framing, limits, in-order responses per connection,
 * the handler registry and the built-in ApiVersions. Handlers live in the roles (broker,
 * coordinator); this package only moves frames.
 */
export { defineHandler, type Handler, type RequestContext } from './handler.ts';
export { KafkaServer, type KafkaServerOptions, type ApiVersionRange } from './server.ts';
