/**
 * Topic and config administration for Runnel's CLI tools (`runnel topics`, `runnel configs`), as
 * Kafka's Admin client does it for kafka-topics.sh and kafka-configs.sh: CreatePartitions,
 * DescribeConfigs and IncrementalAlterConfigs. Each works on a KafkaClient it does not own.
 *
 * Broker resources (resource type 4) are asked of that broker itself, as Kafka's Admin does (a
 * broker's dynamic configs live on it); the cluster-wide default (empty name) and topics go to any
 * broker.
 */
import { ApiKey } from '@runnel/protocol';
import type { KafkaClient } from './client.ts';
import { ClientError, checkKafka } from './errors.ts';

/** Kafka's ConfigResource.Type ids. */
export const ConfigResourceType = { Topic: 2, Broker: 4 } as const;
export type ConfigResourceTypeId = (typeof ConfigResourceType)[keyof typeof ConfigResourceType];

/** Kafka's ConfigEntry.ConfigSource, by the id DescribeConfigs v1+ sends. */
export const CONFIG_SOURCES = ['UNKNOWN', 'DYNAMIC_TOPIC_CONFIG', 'DYNAMIC_BROKER_CONFIG', 'DYNAMIC_DEFAULT_BROKER_CONFIG', 'STATIC_BROKER_CONFIG', 'DEFAULT_CONFIG', 'DYNAMIC_BROKER_LOGGER_CONFIG', 'CLIENT_METRICS_CONFIG', 'GROUP_CONFIG'] as const;

export interface ConfigSynonym { name: string; value: string | null; source: string }

export interface ConfigEntry {
  name: string;
  value: string | null;
  readOnly: boolean;
  sensitive: boolean;
  /** One of CONFIG_SOURCES (UNKNOWN when the broker sent an id this client does not know). */
  source: string;
  synonyms: ConfigSynonym[];
}

export interface ConfigResource { type: ConfigResourceTypeId; name: string }

/** IncrementalAlterConfigs operations: SET 0, DELETE 1, APPEND 2, SUBTRACT 3. */
export interface AlterConfigOp { name: string; op: 'set' | 'delete' | 'append' | 'subtract'; value?: string | null }

const OPS = { set: 0, delete: 1, append: 2, subtract: 3 } as const;

const sourceName = (id: number) => CONFIG_SOURCES[id] ?? 'UNKNOWN';

/** The connection a config request about `resource` goes to (see the file comment). */
async function connectionFor(client: KafkaClient, resource: ConfigResource) {
  if (resource.type !== ConfigResourceType.Broker || resource.name === '') return client.any();
  const id = Number(resource.name);
  if (!Number.isInteger(id) || id < 0) throw new ClientError('INVALID_ARGUMENT', `broker id must be a non-negative integer, not "${resource.name}"`);
  const md = await client.metadata([]);
  if (!md.brokers.some((b) => b.nodeId === id)) throw new ClientError('INVALID_ARGUMENT', `broker ${id} is not in the cluster (brokers: ${md.brokers.map((b) => b.nodeId).join(', ')})`);
  return client.broker(id);
}

/** DescribeConfigs of one resource, with synonyms; `names` limits the entries (all when omitted). */
export async function describeConfigs(client: KafkaClient, resource: ConfigResource, names?: string[]): Promise<ConfigEntry[]> {
  const conn = await connectionFor(client, resource);
  const v = conn.version(ApiKey.DescribeConfigs);
  const body = await conn.request(ApiKey.DescribeConfigs, v, {
    resources: [{ resourceType: resource.type, resourceName: resource.name, configurationKeys: names ?? null }],
    includeSynonyms: true,
    includeDocumentation: false,
  });
  const r = body.results[0];
  if (!r) throw new ClientError('PROTOCOL', `DescribeConfigs ${resource.name} returned no result`);
  checkKafka(r.errorCode, `DescribeConfigs ${resource.name || '<default>'}`, r.errorMessage);
  return r.configs.map((c) => ({
    name: c.name,
    value: c.value,
    readOnly: c.readOnly,
    sensitive: c.isSensitive,
    // v0 has no source, only isDefault.
    source: v === 0 ? (c.isDefault ? 'DEFAULT_CONFIG' : 'UNKNOWN') : sourceName(c.configSource),
    synonyms: (c.synonyms ?? []).map((s) => ({ name: s.name, value: s.value, source: sourceName(s.source) })),
  }));
}

/** IncrementalAlterConfigs of one resource; throws the broker's error (with its message). */
export async function incrementalAlterConfigs(client: KafkaClient, resource: ConfigResource, ops: AlterConfigOp[], options: { validateOnly?: boolean } = {}): Promise<void> {
  const conn = await connectionFor(client, resource);
  const body = await conn.request(ApiKey.IncrementalAlterConfigs, conn.version(ApiKey.IncrementalAlterConfigs), {
    resources: [{
      resourceType: resource.type,
      resourceName: resource.name,
      configs: ops.map((o) => ({ name: o.name, configOperation: OPS[o.op], value: o.op === 'delete' ? null : (o.value ?? null) })),
    }],
    validateOnly: options.validateOnly ?? false,
  });
  const r = body.responses[0];
  if (!r) throw new ClientError('PROTOCOL', `IncrementalAlterConfigs ${resource.name} returned no result`);
  checkKafka(r.errorCode, `IncrementalAlterConfigs ${resource.name || '<default>'}`, r.errorMessage);
}

/** CreatePartitions: grows `topic` to `count` partitions (the broker places them). */
export async function createPartitions(client: KafkaClient, topic: string, count: number, options: { timeoutMs?: number; validateOnly?: boolean } = {}): Promise<void> {
  const conn = await client.any();
  const body = await conn.request(ApiKey.CreatePartitions, conn.version(ApiKey.CreatePartitions), {
    topics: [{ name: topic, count, assignments: null }],
    timeoutMs: options.timeoutMs ?? 30_000,
    validateOnly: options.validateOnly ?? false,
  });
  const r = body.results.find((x) => x.name === topic) ?? body.results[0];
  if (!r) throw new ClientError('PROTOCOL', `CreatePartitions ${topic} returned no result`);
  checkKafka(r.errorCode, `CreatePartitions ${topic}`, r.errorMessage);
  // Leaders of the new partitions are learnt from the next metadata.
  for (let p = 0; p < count; p++) client.invalidateLeader(topic, p);
}
