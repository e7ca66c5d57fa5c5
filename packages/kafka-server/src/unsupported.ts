import { ApiKey, apiName, apiSchema, ErrorCode, inVersions, type Field } from '@runnel/protocol';

/**
 * Kafka's answer to a request for an API this node does not serve, or for a version of it this
 * node does not serve: a response in that API's own schema with UNSUPPORTED_VERSION (35) where
 * the answer has an error code, and the reason where it has a message. Undefined when no answer
 * can be encoded (no schema for the key or the version, or no error code to carry): the
 * connection is then closed, as Kafka closes it for a request header it cannot parse.
 *
 * Most answers need no more than a top-level error code (every other field empty or zero). The
 * APIs whose errors are per item answer one error per item of the request, as Kafka's
 * getErrorResponse does.
 */
export function unsupportedAnswer(apiKey: number, apiVersion: number, request: unknown): object | undefined {
  return errorAnswer(apiKey, apiVersion, request, ErrorCode.UNSUPPORTED_VERSION, `Runnel does not serve ${apiName(apiKey)} v${apiVersion}`);
}

/**
 * The same shape of answer with any error code: a top-level error, or one per item for the APIs
 * whose errors are per item (the edge's authorization refusals use it: authorization.ts).
 */
export function errorAnswer(apiKey: number, apiVersion: number, request: unknown, code: number, message: string): object | undefined {
  const schema = apiSchema(apiKey);
  if (!schema) return undefined;
  const [min, max] = schema.response.validVersions;
  if (apiVersion < min || apiVersion > max) return undefined;
  const perItem = PER_ITEM[apiKey];
  if (perItem) return perItem(request as never, message, code);
  const fields = schema.response.fields;
  if (!fields.some((f) => f.name === 'errorCode' && f.kind === 'scalar' && inVersions(f.versions, apiVersion))) return undefined;
  return { ...empty(fields), errorCode: code, errorMessage: message };
}

type Topics = { name: string; partitions: number[] }[];
const byPartition = (topics: Topics, code: number) => topics.map((t) => ({
  name: t.name, resultsByPartition: t.partitions.map((p) => ({ partitionIndex: p, partitionErrorCode: code })),
}));

const PER_ITEM: Record<number, (request: never, message: string, code: number) => object> = {
  // v3 and below per topic and partition, v4+ (brokers' batches) at the top.
  [ApiKey.AddPartitionsToTxn]: (req: { v3AndBelowTopics: Topics }, _message, code) => ({
    throttleTimeMs: 0, errorCode: code, resultsByTransaction: [], resultsByTopicV3AndBelow: byPartition(req.v3AndBelowTopics, code),
  }),
  [ApiKey.TxnOffsetCommit]: (req: { topics: { name: string; partitions: { partitionIndex: number }[] }[] }, _message, code) => ({
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code })) })),
  }),
  [ApiKey.CreateAcls]: (req: { creations: unknown[] }, message, code) => ({
    throttleTimeMs: 0, results: req.creations.map(() => ({ errorCode: code, errorMessage: message })),
  }),
  [ApiKey.DeleteAcls]: (req: { filters: unknown[] }, message, code) => ({
    throttleTimeMs: 0, filterResults: req.filters.map(() => ({ errorCode: code, errorMessage: message, matchingAcls: [] })),
  }),
};

/** Every field at its empty value (the encoder ignores those not in the version). */
function empty(fields: readonly Field[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (f.kind === 'structArray' || f.kind === 'scalarArray') out[f.name] = [];
    else if (f.kind === 'struct') out[f.name] = empty(f.fields);
    else if (f.default !== undefined) out[f.name] = f.default;
    else out[f.name] = emptyScalar(f.type);
  }
  return out;
}

function emptyScalar(type: string): unknown {
  switch (type) {
    case 'int64': return 0n;
    case 'bool': return false;
    case 'string': return '';
    case 'bytes': case 'records': return Buffer.alloc(0);
    case 'uuid': return '00000000-0000-0000-0000-000000000000';
    default: return 0;
  }
}
