import { ApiKey, ErrorCode, type Requests, type Responses } from '@runnel/protocol';
import { AclOperation, authorized, defineHandler, ResourceType } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';

type Result = Responses[typeof ApiKey.DeleteTopics]['responses'][number];

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

const hex = (uuid: string): string => uuid.replace(/-/g, '').toLowerCase();

/**
 * DeleteTopics v1–6. v1–5 name topics; v6 names each by name or by topic id (KIP-516), and
 * answers both the name and the id of each. The request is checked as Kafka's controller does:
 * neither or both of name and id, a name or id given twice, or a name whose id is also given are
 * INVALID_REQUEST; an unknown id is UNKNOWN_TOPIC_ID. The topic's logs are removed when the
 * metadata change arrives.
 */
export const deleteTopics = (b: Pick<BrokerContext, 'config' | 'metadata'>) => defineHandler({
  api: ApiKey.DeleteTopics,
  versions: [1, 6],
  async handle(req: Requests[typeof ApiKey.DeleteTopics], ctx) {
    const responses: Result[] = [];
    const invalid = (name: string | null, topicId: string, errorMessage: string) =>
      responses.push({ name, topicId, errorCode: ErrorCode.INVALID_REQUEST, errorMessage });
    const asked = [...req.topicNames.map((name) => ({ name, topicId: ZERO_UUID })), ...req.topics];
    // How often each name (given alone) and each id (given alone) is asked for, in request order.
    const names = new Map<string, number>();
    const ids = new Map<string, { topicId: string; times: number }>();
    for (const t of asked) {
      const byId = hex(t.topicId) !== hex(ZERO_UUID);
      if (t.name === null && !byId) invalid(null, ZERO_UUID, 'Neither topic name nor id were specified.');
      else if (t.name !== null && byId) invalid(t.name, t.topicId, 'You may not specify both topic name and topic id.');
      else if (t.name !== null) names.set(t.name, (names.get(t.name) ?? 0) + 1);
      else ids.set(hex(t.topicId), { topicId: t.topicId, times: (ids.get(hex(t.topicId))?.times ?? 0) + 1 });
    }
    const snapshot = b.metadata.snapshot();
    const nameOfId = new Map([...snapshot.topics.values()].map((t) => [hex(t.topicId), t.name]));
    const targets: { name: string; topicId: string }[] = [];
    for (const [id, { topicId, times }] of ids) {
      const name = nameOfId.get(id);
      if (times > 1) invalid(null, topicId, 'Duplicate topic id.');
      else if (name === undefined) responses.push({ name: null, topicId, errorCode: ErrorCode.UNKNOWN_TOPIC_ID, errorMessage: 'This server does not host this topic ID.' });
      else targets.push({ name, topicId: id });
    }
    for (const [name, times] of names) {
      const topicId = snapshot.topics.get(name)?.topicId ?? ZERO_UUID;
      if (times > 1) invalid(name, ZERO_UUID, 'Duplicate topic name.');
      else if (targets.some((t) => t.name === name)) invalid(name, topicId, 'The provided topic name maps to an ID that was already supplied.');
      else targets.push({ name, topicId });
    }
    for (const { name, topicId } of targets) {
      // ACLs (Kafka's order): a topic named by id that the principal may not Describe is unknown;
      // else Delete on the topic is needed.
      if (topicId !== ZERO_UUID && !authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name) && ids.has(topicId)) {
        responses.push({ name: null, topicId, errorCode: ErrorCode.UNKNOWN_TOPIC_ID, errorMessage: 'This server does not host this topic ID.' });
        continue;
      }
      if (!authorized(ctx, AclOperation.DELETE, ResourceType.TOPIC, name)) {
        responses.push({ name, topicId, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED, errorMessage: 'Authorization failed.' });
        continue;
      }
      if (!b.config.get('delete.topic.enable')) {
        responses.push({ name, topicId, errorCode: ErrorCode.TOPIC_DELETION_DISABLED, errorMessage: 'Topic deletion is disabled.' });
        continue;
      }
      try {
        await b.metadata.deleteTopic(name);
        responses.push({ name, topicId, errorCode: ErrorCode.NONE, errorMessage: null });
      } catch (err) {
        const mapped = toKafkaError(err);
        responses.push({ name, topicId, errorCode: mapped.code, errorMessage: mapped.message });
      }
    }
    return { throttleTimeMs: 0, responses };
  },
});
