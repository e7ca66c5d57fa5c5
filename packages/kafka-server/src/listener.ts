import { hostname } from 'node:os';
import type { BrokerConfig } from '@runnel/common';
import type { KafkaServerOptions } from './server.ts';

type ListenerOptions = Pick<KafkaServerOptions, 'host' | 'port' | 'socketRequestMaxBytes' | 'maxConnections' | 'connectionsMaxIdleMs'>;

/**
 * The KafkaServer options a node's configuration gives, the same for every role that has a Kafka
 * listener: the first of `listeners` (an empty host binds all interfaces) and Kafka's connection
 * limits.
 */
export function listenerOptions(config: BrokerConfig): ListenerOptions {
  const listener = config.listeners[0]!;
  return {
    host: listener.host === '' ? '0.0.0.0' : listener.host,
    port: listener.port,
    socketRequestMaxBytes: config.get('socket.request.max.bytes'),
    maxConnections: config.get('max.connections'),
    connectionsMaxIdleMs: config.get('connections.max.idle.ms'),
  };
}

/**
 * Where clients reach a node: its advertised listener, with the bound port when it asked for port
 * 0. A listener bound to all interfaces (empty host or 0.0.0.0) is advertised under this machine's
 * host name, as Kafka does; clients cannot connect to 0.0.0.0.
 */
export function advertisedAddress(config: BrokerConfig, bound: { host: string; port: number }): { host: string; port: number } {
  const advertised = config.advertisedListeners[0]!;
  return {
    host: advertised.host === '' || advertised.host === '0.0.0.0' ? hostname() : advertised.host,
    port: advertised.port === 0 ? bound.port : advertised.port,
  };
}
