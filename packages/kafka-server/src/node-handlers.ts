import { CONFIG_SOURCE_ID, CONFIG_TYPE_ID, topicConfig, type BrokerConfig, type ConfigEntry, type TopicConfig } from '@runnel/common';
import type { MetadataStore, TopicMetadata } from '@runnel/metadata';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { defineHandler, type Handler } from './handler.ts';
import { DYNAMIC_BROKER_CONFIGS } from './alter-configs.ts';
import { metadataErrorCode } from './metadata-errors.ts';
import { AclOperation, authorized, clusterAuthorized, ResourceType } from './authorizer.ts';

/**
 * Requests a client may send to whichever node it likes (the Java client picks its least loaded
 * node), so every node listed in Metadata answers them, the coordinator node too: a fresh
 * producer id, and the configs of topics or of the node itself.
 */

/**
 * InitProducerId v0–5 for idempotent producers: a fresh cluster-unique producer id at epoch 0.
 * v2 is flexible; v3 (KIP-360) lets a producer send the id and epoch it has, both or neither
 * (one without the other is INVALID_REQUEST, as in Kafka's KafkaApis). As Kafka does for a null
 * transactional id, a known id is not bumped: the answer is a new id at epoch 0 (an idempotent
 * producer bumps its epoch itself; only a transactional id's epoch is the coordinator's, and
 * PRODUCER_FENCED/INVALID_PRODUCER_EPOCH come from there). v4 and v5 only allow newer error codes
 * (PRODUCER_FENCED, TRANSACTION_ABORTABLE) that the idempotent path never answers.
 * A transactional id goes to `transactional` (the transaction coordinator of this node, which
 * answers NOT_COORDINATOR for ids it does not own); a node without one answers NOT_COORDINATOR,
 * so the producer looks its coordinator up again (FindCoordinator key type 1).
 */
export type TransactionalInitProducerId = (req: Requests[typeof ApiKey.InitProducerId], apiVersion: number) => Promise<Responses[typeof ApiKey.InitProducerId]>;

export function initProducerIdHandler(metadata: Pick<MetadataStore, 'allocateProducerId'>, transactional?: TransactionalInitProducerId): Handler {
  return defineHandler({
    api: ApiKey.InitProducerId,
    versions: [0, 5],
    async handle(req, ctx) {
      if ((req.producerId === -1n) !== (req.producerEpoch === -1)) {
        return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, producerId: -1n, producerEpoch: -1 };
      }
      // ACLs (Kafka's KafkaApis): a transactional id needs Write on it; an idempotent producer needs
      // IdempotentWrite on the cluster or Write on some topic (KIP-679).
      if (req.transactionalId !== null && !authorized(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, req.transactionalId)) {
        return { throttleTimeMs: 0, errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producerId: -1n, producerEpoch: -1 };
      }
      if (req.transactionalId === null && ctx.authorizer && !clusterAuthorized(ctx, AclOperation.IDEMPOTENT_WRITE)
        && !ctx.authorizer.authorizeAny(ctx, AclOperation.WRITE, ResourceType.TOPIC)) {
        return { throttleTimeMs: 0, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, producerId: -1n, producerEpoch: -1 };
      }
      if (req.transactionalId !== null) {
        if (transactional) return transactional(req, ctx.header.apiVersion);
        return { throttleTimeMs: 0, errorCode: ErrorCode.NOT_COORDINATOR, producerId: -1n, producerEpoch: -1 };
      }
      try {
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: await metadata.allocateProducerId(), producerEpoch: 0 };
      } catch (err) {
        return { throttleTimeMs: 0, errorCode: metadataErrorCode(err, ErrorCode.COORDINATOR_NOT_AVAILABLE), producerId: -1n, producerEpoch: -1 };
      }
    },
  });
}

type ConfigResult = Responses[typeof ApiKey.DescribeConfigs]['results'][number];

const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;

export interface DescribeConfigsOptions {
  nodeId: number;
  config: BrokerConfig;
  metadata: MetadataStore;
  /** A topic's effective config (the broker caches them); defaults to computing it. */
  topicConfig?: (topic: TopicMetadata) => TopicConfig;
}

/**
 * DescribeConfigs v1–4 for topics (their overrides over this node's values, with synonyms) and
 * for this node (every known config with its source). v3+ adds each config's type and, when asked
 * (includeDocumentation), its documentation from the config registry; v4 is flexible.
 */
export function describeConfigsHandler(o: DescribeConfigsOptions): Handler {
  const brokerConfig = (nodeId: number | null) => o.config.withDynamic(o.metadata.snapshot().brokerConfigs, nodeId);
  const configOf = o.topicConfig ?? ((topic: TopicMetadata) => topicConfig(brokerConfig(o.nodeId), topic.configs));
  return defineHandler({
    api: ApiKey.DescribeConfigs,
    versions: [1, 4],
    handle(req, ctx) {
      const results: ConfigResult[] = req.resources.map((r) => {
        const result = (errorCode: number, errorMessage: string | null, entries: ConfigEntry[] = []): ConfigResult => ({
          errorCode, errorMessage, resourceType: r.resourceType, resourceName: r.resourceName,
          configs: entries
            .filter((e) => r.configurationKeys === null || r.configurationKeys.includes(e.name))
            .map((e) => ({
              name: e.name,
              value: e.value,
              readOnly: r.resourceType === RESOURCE_BROKER && !DYNAMIC_BROKER_CONFIGS.has(e.name),
              configSource: CONFIG_SOURCE_ID[e.source],
              isSensitive: e.sensitive,
              synonyms: req.includeSynonyms ? (e.synonyms ?? []).map((s) => ({ name: s.name, value: s.value, source: CONFIG_SOURCE_ID[s.source] })) : [],
              configType: CONFIG_TYPE_ID[e.type],
              documentation: req.includeDocumentation ? e.doc : null,
            })),
        });
        // ACLs: DescribeConfigs on the topic, or on the cluster for a broker (docs/security.md).
        if (r.resourceType === RESOURCE_TOPIC && !authorized(ctx, AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, r.resourceName)) {
          return result(ErrorCode.TOPIC_AUTHORIZATION_FAILED, 'Topic authorization failed.');
        }
        if (r.resourceType === RESOURCE_BROKER && !clusterAuthorized(ctx, AclOperation.DESCRIBE_CONFIGS)) {
          return result(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, 'Cluster authorization failed.');
        }
        if (r.resourceType === RESOURCE_TOPIC) {
          const topic = o.metadata.snapshot().topics.get(r.resourceName);
          if (!topic) return result(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${r.resourceName}" does not exist`);
          return result(ErrorCode.NONE, null, configOf(topic).describe());
        }
        if (r.resourceType === RESOURCE_BROKER) {
          if (r.resourceName !== '' && r.resourceName !== String(o.nodeId)) {
            return result(ErrorCode.INVALID_REQUEST, `this is node ${o.nodeId}, not ${r.resourceName}`);
          }
          // The cluster default resource lists only what is set there, as Kafka does.
          if (r.resourceName === '') return result(ErrorCode.NONE, null, brokerConfig(null).describe().filter((e) => e.source === 'DYNAMIC_DEFAULT_BROKER_CONFIG'));
          return result(ErrorCode.NONE, null, brokerConfig(o.nodeId).describe());
        }
        return result(ErrorCode.INVALID_REQUEST, `resource type ${r.resourceType} is not supported`);
      });
      return { throttleTimeMs: 0, results };
    },
  });
}

