import { CONFIG_SOURCE_ID, CONFIG_TYPE_ID, type ConfigEntry } from '@runnel/common';
import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';

type Result = Responses[typeof ApiKey.DescribeConfigs]['results'][number];

const TOPIC = 2;
const BROKER = 4;

/**
 * DescribeConfigs v1–2 for topics (their overrides over the broker's values, with synonyms) and
 * for this broker (every known config with its source).
 */
export const describeConfigs = (b: BrokerContext) => defineHandler({
  api: ApiKey.DescribeConfigs,
  versions: [1, 2],
  handle(req: Requests[typeof ApiKey.DescribeConfigs]) {
    const results: Result[] = req.resources.map((r) => {
      const result = (errorCode: number, errorMessage: string | null, entries: ConfigEntry[] = []): Result => ({
        errorCode, errorMessage, resourceType: r.resourceType, resourceName: r.resourceName,
        configs: entries
          .filter((e) => r.configurationKeys === null || r.configurationKeys.includes(e.name))
          .map((e) => ({
            name: e.name,
            value: e.value,
            readOnly: r.resourceType === BROKER,
            configSource: CONFIG_SOURCE_ID[e.source],
            isSensitive: e.sensitive,
            synonyms: req.includeSynonyms ? (e.synonyms ?? []).map((s) => ({ name: s.name, value: s.value, source: CONFIG_SOURCE_ID[s.source] })) : [],
            configType: CONFIG_TYPE_ID[e.type],
            documentation: req.includeDocumentation ? e.doc : null,
          })),
      });
      if (r.resourceType === TOPIC) {
        const topic = b.metadata.snapshot().topics.get(r.resourceName);
        if (!topic) return result(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${r.resourceName}" does not exist`);
        return result(ErrorCode.NONE, null, b.partitions.topicConfig(topic).describe());
      }
      if (r.resourceType === BROKER) {
        if (r.resourceName !== '' && r.resourceName !== String(b.nodeId)) {
          return result(ErrorCode.INVALID_REQUEST, `this is broker ${b.nodeId}, not ${r.resourceName}`);
        }
        return result(ErrorCode.NONE, null, b.config.describe());
      }
      return result(ErrorCode.INVALID_REQUEST, `resource type ${r.resourceType} is not supported`);
    });
    return { throttleTimeMs: 0, results };
  },
});
