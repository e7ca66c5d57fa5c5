import { hostname } from 'node:os';
import type { BrokerConfig } from '@runnel/common';
import type { BrokerRegistration, Endpoint, MetadataStore } from '@runnel/metadata';
import type { KafkaServerOptions, NodeAddressLookup } from './server.ts';
import { authorizerFor } from './authorizer.ts';
import { parseIpOverrides } from './connection-quotas.ts';
import { ClientQuotaEnforcer } from './client-quotas.ts';
import { ServerTls, tlsSettings } from './tls.ts';

type ListenerOptions = Required<Pick<KafkaServerOptions, 'listeners' | 'socketRequestMaxBytes' | 'maxConnections' | 'connectionsMaxIdleMs' | 'queuedMaxRequestBytes' | 'connectionLimits'>> & Pick<KafkaServerOptions, 'clientQuotas'>;

/** Hosts that bind every interface; clients cannot connect to them. */
const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::']);

/**
 * The KafkaServer options a node's configuration gives, the same for every role that has a Kafka
 * listener: every client listener of `listeners` (controller listeners are not bound: Runnel's
 * controller speaks RPC; an empty host binds all interfaces) and Kafka's connection limits. The
 * configuration was validated when it was resolved (common's listenerSetup). Given the node's
 * metadata, `max.connections` follows its dynamic broker configs (AlterConfigs) live.
 */
export function listenerOptions(config: BrokerConfig, metadata?: MetadataStore): ListenerOptions & Pick<KafkaServerOptions, 'authorizer'> {
  return {
    // SSL and SASL_SSL listeners load their key material now: a bad file or setting fails the start.
    listeners: config.listenerSetup.client.map((l) => ({
      name: l.name, host: l.host === '' ? '0.0.0.0' : l.host, port: l.port, securityProtocol: l.securityProtocol,
      ...(l.securityProtocol === 'SSL' || l.securityProtocol === 'SASL_SSL' ? { tls: new ServerTls(tlsSettings(config, l.name)) } : {}),
    })),
    socketRequestMaxBytes: config.get('socket.request.max.bytes'),
    // With metadata, `max.connections` is dynamic: read on each accept, this node's dynamic
    // configs over the cluster default over the static value (withDynamic caches per snapshot).
    // A store not started yet has no snapshot: the static value holds until it has one.
    maxConnections: metadata
      ? () => {
        let configs;
        try {
          configs = metadata.snapshot().brokerConfigs;
        } catch {
          return config.get('max.connections');
        }
        return config.withDynamic(configs, config.nodeId).get('max.connections');
      }
      : config.get('max.connections'),
    connectionsMaxIdleMs: config.get('connections.max.idle.ms'),
    // Produce/Fetch byte quotas follow the metadata's client quotas (kafka-configs --entity-type users|clients).
    clientQuotas: metadata
      ? new ClientQuotaEnforcer({
        quotas: () => {
          try {
            return metadata.snapshot().clientQuotas;
          } catch {
            return undefined;
          }
        },
        windowNum: config.get('quota.window.num'),
        windowSizeMs: config.get('quota.window.size.seconds') * 1000,
      })
      : undefined,
    // The per-IP limits and the creation rate are dynamic too, read the same way on each accept.
    connectionLimits: () => {
      let effective: BrokerConfig = config;
      try {
        if (metadata) effective = config.withDynamic(metadata.snapshot().brokerConfigs, config.nodeId);
      } catch {
        // no snapshot yet: the static values hold
      }
      return {
        maxPerIp: effective.get('max.connections.per.ip'),
        overrides: parseIpOverrides(effective.get('max.connections.per.ip.overrides')),
        creationRate: effective.get('max.connection.creation.rate'),
      };
    },
    queuedMaxRequestBytes: config.get('queued.max.request.bytes'),
    // authorizer.class.name: ACLs from this node's metadata (authorizer.ts); unset = none.
    authorizer: authorizerFor(config, metadata),
  };
}

/**
 * What clients are told per listener once the listeners are bound (`bound`: the bound address
 * by listener name, KafkaServer.listenerAddresses()): each advertised listener with the bound port
 * when it asked for port 0, and this machine's host name for a wildcard host (advertised.listeners
 * unset and a listener on 0.0.0.0 or an empty host). Kafka refuses a 0.0.0.0 advertised listener;
 * Runnel resolves it, as it always has, so `listeners=PLAINTEXT://0.0.0.0:9092` alone works.
 */
export function advertisedEndpoints(config: BrokerConfig, bound: ReadonlyMap<string, { host: string; port: number }>): Endpoint[] {
  return config.listenerSetup.advertised.map((l) => ({
    listener: l.name,
    host: WILDCARD_HOSTS.has(l.host) ? hostname() : l.host,
    port: l.port === 0 ? (bound.get(l.name)?.port ?? 0) : l.port,
    securityProtocol: l.securityProtocol,
  }));
}

/**
 * A node's primary address, the one it registers as `host`/`port` and prints when ready: its
 * inter-broker listener's advertised endpoint (the first advertised one when that is not
 * advertised, which only a controller-only configuration allows).
 */
export function advertisedAddress(config: BrokerConfig, bound: ReadonlyMap<string, { host: string; port: number }>): { host: string; port: number } {
  const endpoints = advertisedEndpoints(config, bound);
  const primary = endpoints.find((e) => e.listener === config.listenerSetup.interBrokerListener) ?? endpoints[0];
  if (!primary) throw new Error('no advertised listener');
  return { host: primary.host, port: primary.port };
}

/**
 * Where clients that came in on `listener` reach a node: its endpoint of that name, null when it
 * has none (Kafka leaves such a node out of the answer). A registration without endpoints (made
 * before listeners had names, or by a tool that registers one address) serves every listener at
 * its host/port. Without a listener (a handler called outside a KafkaServer) it is host/port.
 */
export function endpointOn(node: BrokerRegistration, listener: string | undefined): { host: string; port: number } | null {
  if (listener === undefined || !node.endpoints || node.endpoints.length === 0) return { host: node.host, port: node.port };
  const e = node.endpoints.find((x) => x.listener === listener);
  return e ? { host: e.host, port: e.port } : null;
}

/** The `addressOf` a role gives its KafkaServer: a live node's endpoint on a listener, from the metadata snapshot. */
export function nodeAddressLookup(metadata: MetadataStore): NodeAddressLookup {
  return (nodeId, listener) => {
    const node = metadata.snapshot().brokers.get(nodeId);
    return node ? endpointOn(node, listener) : null;
  };
}
