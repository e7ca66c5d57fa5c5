import { api, f, message, structs } from '../schema.ts';

/** Produce (key 0). v0–2 decode only for the reject path; v3+ carry one magic-2 batch per partition. */
export const Produce = api(0,
  message('ProduceRequest', [0, 9], 9, [
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
  message('ProduceResponse', [0, 9], 9, [
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
      ]),
    ]),
    f('throttleTimeMs', 'int32', '1+'),
  ]),
);

