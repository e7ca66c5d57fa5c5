import { ApiKey, ErrorCode, type Requests } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';

/** DeleteTopics v1–4 (by name). The topic's logs are removed when the metadata change arrives. */
export const deleteTopics = (b: BrokerContext) => defineHandler({
  api: ApiKey.DeleteTopics,
  versions: [1, 4],
  async handle(req: Requests[typeof ApiKey.DeleteTopics]) {
    const responses = [];
    for (const name of req.topicNames) {
      if (!b.config.get('delete.topic.enable')) {
        responses.push({ name, errorCode: ErrorCode.TOPIC_DELETION_DISABLED });
        continue;
      }
      try {
        await b.metadata.deleteTopic(name);
        responses.push({ name, errorCode: ErrorCode.NONE });
      } catch (err) {
        responses.push({ name, errorCode: toKafkaError(err).code });
      }
    }
    return { throttleTimeMs: 0, responses };
  },
});
