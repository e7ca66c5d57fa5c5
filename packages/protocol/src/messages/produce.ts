import { api, f, message, struct, structs } from '../schema.ts';

/**
 * Produce (key 0), v0–11. v0–2 decode only for the reject path; v3+ carry one magic-2 batch per
 * partition. v8 answers record errors and an error message (KIP-467), v9 is the first flexible
 * version, v10 adds the tagged `currentLeader` per partition and `nodeEndpoints` (KIP-951), v11
 * only allows the error TRANSACTION_ABORTABLE (KIP-890). v12 (a transactional produce that adds its
 * partitions to the transaction itself) and v13 (topic ids) are not in the table.
 */
export const Produce = api(0,
  message('ProduceRequest', [0, 11], 9, [
    f('transactionalId', 'string', '3+', { nullable: '0+', default: null }),
    f('acks', 'int16', '0+'),
    f('timeoutMs', 'int32', '0+'),
    structs('topicData', '0+', [
      f('name', 'string', '0+'),
      structs('partitionData', '0+', [
        f('index', 'int32', '0+'),
        f('records', 'records', '0+', { nullable: '0+' }),
      ]),
    ]),
  ]),
  message('ProduceResponse', [0, 11], 9, [
    structs('responses', '0+', [
      f('name', 'string', '0+'),
      structs('partitionResponses', '0+', [
        f('index', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
        f('baseOffset', 'int64', '0+'),
        f('logAppendTimeMs', 'int64', '2+', { default: -1 }),
        f('logStartOffset', 'int64', '5+', { default: -1 }),
        structs('recordErrors', '8+', [
          f('batchIndex', 'int32', '8+'),
          f('batchIndexErrorMessage', 'string', '8+', { nullable: '8+', default: null }),
        ]),
        f('errorMessage', 'string', '8+', { nullable: '8+', default: null }),
        struct('currentLeader', '10+', [
          f('leaderId', 'int32', '10+', { default: -1 }),
          f('leaderEpoch', 'int32', '10+', { default: -1 }),
        ], { tag: 0, taggedVersions: '10+' }),
      ]),
    ]),
    f('throttleTimeMs', 'int32', '1+'),
    structs('nodeEndpoints', '10+', [
      f('nodeId', 'int32', '10+'),
      f('host', 'string', '10+'),
      f('port', 'int32', '10+'),
      f('rack', 'string', '10+', { nullable: '10+', default: null }),
    ], { tag: 0, taggedVersions: '10+' }),
  ]),
);
