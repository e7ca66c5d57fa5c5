import { BROKER_CONFIGS, ConfigError, TOPIC_CONFIGS, isDynamicBrokerConfig, parseValue, topicConfig, type BrokerConfig, type BrokerConfigName, type ConfigDef, type TopicConfigName } from '@runnel/common';
import type { MetadataStore } from '@runnel/metadata';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { defineHandler, type Handler } from './handler.ts';
import { metadataErrorCode } from './metadata-errors.ts';
import { AclOperation, authorized, clusterAuthorized, ResourceType } from './authorizer.ts';
import type { RequestContext } from './handler.ts';

/**
 * AlterConfigs (33) and IncrementalAlterConfigs (44): `kafka-configs --alter`, kafkajs's
 * alterConfigs, `kafka-reassign-partitions --throttle`. Served by every node (the coordinator
 * too), like DescribeConfigs; the change goes through metadata (the controller in a cluster), so
 * every node applies it live.
 *
 * - Topics (resource type 2): the topic's overrides, validated as CreateTopics validates them.
 * - Brokers (4): name '' = the cluster-wide default (`<default>`), else a node id. Only the configs
 *   in DYNAMIC_BROKER_CONFIGS can change at runtime (every node applies them from metadata, see
 *   BrokerConfig.withDynamic); any other known broker config is refused with INVALID_REQUEST
 *   "Cannot update these configs dynamically", as Kafka refuses its read-only ones.
 * - Unknown names and bad values: INVALID_CONFIG with the reason; nothing of that resource changes.
 * - `validateOnly`: everything is checked, nothing is written.
 *
 * AlterConfigs replaces the resource's whole set of dynamic configs (the ones left out are removed);
 * IncrementalAlterConfigs applies SET, DELETE, and for list configs APPEND and SUBTRACT.
 */

/**
 * Broker configs that change at runtime without a restart (the rest are read at startup): the log
 * defaults, the replication throttle rates, Kafka's log-dir move throttle, `max.connections` (read
 * on each accept) and `unclean.leader.election.enable` (read by the controller at each election);
 * see isDynamicBrokerConfig.
 */
export const DYNAMIC_BROKER_CONFIGS: ReadonlySet<string> = new Set((Object.keys(BROKER_CONFIGS) as BrokerConfigName[]).filter(isDynamicBrokerConfig));

const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;
const OP_SET = 0;
const OP_DELETE = 1;
const OP_APPEND = 2;
const OP_SUBTRACT = 3;

export interface AlterConfigsOptions {
  config: BrokerConfig;
  metadata: MetadataStore;
}

interface Op {
  name: string;
  op: number;
  value: string | null;
}

interface ResourceResult {
  errorCode: number;
  errorMessage: string | null;
  resourceType: number;
  resourceName: string;
}

/** A refusal of one resource: its Kafka code and message. */
class Refusal extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export function incrementalAlterConfigsHandler(o: AlterConfigsOptions): Handler {
  return defineHandler({
    api: ApiKey.IncrementalAlterConfigs,
    versions: [0, 1],
    async handle(req, ctx) {
      const responses: ResourceResult[] = [];
      for (const r of req.resources) {
        const ops = r.configs.map((c) => ({ name: c.name, op: c.configOperation, value: c.value }));
        responses.push(await alterOne(o, r.resourceType, r.resourceName, ops, false, req.validateOnly, ctx));
      }
      return { throttleTimeMs: 0, responses };
    },
  });
}

export function alterConfigsHandler(o: AlterConfigsOptions): Handler {
  return defineHandler({
    api: ApiKey.AlterConfigs,
    versions: [0, 2],
    async handle(req, ctx) {
      const responses: ResourceResult[] = [];
      for (const r of req.resources) {
        // A null value in the legacy API means "no override" (Kafka drops it).
        const ops = r.configs.filter((c) => c.value !== null).map((c) => ({ name: c.name, op: OP_SET, value: c.value }));
        responses.push(await alterOne(o, r.resourceType, r.resourceName, ops, true, req.validateOnly, ctx));
      }
      return { throttleTimeMs: 0, responses };
    },
  });
}

async function alterOne(o: AlterConfigsOptions, resourceType: number, resourceName: string, ops: Op[], replace: boolean, validateOnly: boolean, ctx: RequestContext): Promise<ResourceResult> {
  const result = (errorCode: number, errorMessage: string | null): ResourceResult => ({ errorCode, errorMessage, resourceType, resourceName });
  // ACLs: AlterConfigs on the topic, or on the cluster for a broker (docs/security.md).
  if (resourceType === RESOURCE_TOPIC && !authorized(ctx, AclOperation.ALTER_CONFIGS, ResourceType.TOPIC, resourceName)) return result(ErrorCode.TOPIC_AUTHORIZATION_FAILED, 'Topic authorization failed.');
  if (resourceType === RESOURCE_BROKER && !clusterAuthorized(ctx, AclOperation.ALTER_CONFIGS)) return result(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, 'Cluster authorization failed.');
  try {
    const names = ops.map((c) => c.name);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate !== undefined) throw new Refusal(ErrorCode.INVALID_REQUEST, `Error due to duplicate config keys: ${duplicate}`);
    if (resourceType === RESOURCE_TOPIC) await alterTopic(o, resourceName, ops, replace, validateOnly);
    else if (resourceType === RESOURCE_BROKER) await alterBroker(o, resourceName, ops, replace, validateOnly);
    else throw new Refusal(ErrorCode.INVALID_REQUEST, `resource type ${resourceType} is not supported (topics are 2, brokers 4)`);
    return result(ErrorCode.NONE, null);
  } catch (err) {
    if (err instanceof Refusal) return result(err.code, err.message);
    if (err instanceof ConfigError) return result(ErrorCode.INVALID_CONFIG, err.message);
    return result(metadataErrorCode(err, ErrorCode.UNKNOWN_SERVER_ERROR), (err as Error).message);
  }
}

/** The overrides after `ops` over `current`; `current` is dropped first when `replace`. */
function applyOps(current: Record<string, string>, ops: Op[], replace: boolean, defOf: (name: string) => ConfigDef, effective: (name: string) => string | null): Record<string, string> {
  const next: Record<string, string> = replace ? {} : { ...current };
  for (const c of ops) {
    const d = defOf(c.name);
    switch (c.op) {
      case OP_SET:
        if (c.value === null) throw new Refusal(ErrorCode.INVALID_REQUEST, `Null value not supported for: ${c.name}`);
        next[c.name] = c.value;
        break;
      case OP_DELETE:
        delete next[c.name];
        break;
      case OP_APPEND:
      case OP_SUBTRACT: {
        if (d.type !== 'list') throw new Refusal(ErrorCode.INVALID_CONFIG, `Config value ${c.op === OP_APPEND ? 'append' : 'subtract'} is not allowed for config key: ${c.name}`);
        const items = splitList(next[c.name] ?? effective(c.name) ?? '');
        const given = splitList(c.value ?? '');
        const out = c.op === OP_APPEND ? [...items, ...given.filter((x) => !items.includes(x))] : items.filter((x) => !given.includes(x));
        next[c.name] = out.join(',');
        break;
      }
      default:
        throw new Refusal(ErrorCode.INVALID_REQUEST, `unknown config operation ${c.op} for ${c.name} (SET 0, DELETE 1, APPEND 2, SUBTRACT 3)`);
    }
  }
  return next;
}

function splitList(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

/** Each key of `before` and `after` that differs: its new value, null when removed. */
function diff(before: Record<string, string>, after: Record<string, string>): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const k of Object.keys(before)) if (!(k in after)) out[k] = null;
  for (const [k, v] of Object.entries(after)) if (before[k] !== v) out[k] = v;
  return out;
}

async function alterTopic(o: AlterConfigsOptions, name: string, ops: Op[], replace: boolean, validateOnly: boolean): Promise<void> {
  const topic = o.metadata.snapshot().topics.get(name);
  if (!topic) throw new Refusal(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${name}" does not exist`);
  const unknown = ops.find((c) => !TOPIC_CONFIGS.has(c.name as TopicConfigName));
  if (unknown) throw new Refusal(ErrorCode.INVALID_CONFIG, `Unknown topic config name: ${unknown.name}`);
  const current = topicConfig(o.config, topic.configs);
  const effective = (n: string) => current.describe().find((e) => e.name === n)?.value ?? null;
  const next = applyOps(topic.configs, ops, replace, (n) => TOPIC_CONFIGS.get(n as TopicConfigName)!.def, effective);
  topicConfig(o.config, next); // validates every value (ConfigError → INVALID_CONFIG)
  const change = diff(topic.configs, next);
  if (validateOnly || Object.keys(change).length === 0) return;
  await o.metadata.alterTopicConfigs(name, change);
}

async function alterBroker(o: AlterConfigsOptions, name: string, ops: Op[], replace: boolean, validateOnly: boolean): Promise<void> {
  // Kafka parses the name as an int, so "01" is node 1: the stored key is the normalised id, read
  // and written alike ('' = the cluster default).
  let nodeId: number | null = null;
  if (name !== '') {
    if (!/^\d+$/.test(name) || !Number.isSafeInteger(Number(name))) throw new Refusal(ErrorCode.INVALID_REQUEST, `broker resource name must be a node id or empty (the cluster default), got "${name}"`);
    nodeId = Number(name);
  }
  const key = nodeId === null ? '' : String(nodeId);
  const isKnown = (n: string): n is BrokerConfigName => Object.hasOwn(BROKER_CONFIGS, n);
  const unknown = ops.find((c) => !isKnown(c.name));
  if (unknown) throw new Refusal(ErrorCode.INVALID_CONFIG, `Unknown broker config name: ${unknown.name}`);
  const fixed = ops.filter((c) => !DYNAMIC_BROKER_CONFIGS.has(c.name)).map((c) => c.name);
  if (fixed.length > 0) {
    throw new Refusal(ErrorCode.INVALID_REQUEST, `Cannot update these configs dynamically: Set(${fixed.join(', ')})`);
  }
  const current = { ...o.metadata.snapshot().brokerConfigs?.get(key) };
  const defOf = (n: string) => BROKER_CONFIGS[n as BrokerConfigName] as ConfigDef;
  const next = applyOps(current, ops, replace, defOf, (n) => o.config.raw(n as BrokerConfigName));
  for (const [k, v] of Object.entries(next)) parseValue(k, defOf(k), v);
  const change = diff(current, next);
  if (validateOnly || Object.keys(change).length === 0) return;
  if (!o.metadata.alterBrokerConfigs) throw new Refusal(ErrorCode.INVALID_REQUEST, 'this node cannot change broker configs');
  await o.metadata.alterBrokerConfigs(nodeId, change);
}
