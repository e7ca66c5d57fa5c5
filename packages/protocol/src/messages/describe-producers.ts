import { api, arr, f, message, structs } from '../schema.ts';

/**
 * DescribeProducers (key 61), v0 (flexible): the producers a partition leader tracks (KIP-664),
 * with the start offset of each one's open transaction (−1 when none). `kafka-transactions.sh
 * describe-producers` and `find-hanging` use it.
 */
export const DescribeProducers = api(61,
  message('DescribeProducersRequest', [0, 0], 0, [
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      arr('partitionIndexes', 'int32', '0+'),
    ]),
  ]),
  message('DescribeProducersResponse', [0, 0], 0, [
    f('throttleTimeMs', 'int32', '0+'),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
        f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
        structs('activeProducers', '0+', [
          f('producerId', 'int64', '0+'),
          f('producerEpoch', 'int32', '0+'),
          f('lastSequence', 'int32', '0+', { default: -1 }),
          f('lastTimestamp', 'int64', '0+', { default: -1 }),
          f('coordinatorEpoch', 'int32', '0+'),
          f('currentTxnStartOffset', 'int64', '0+', { default: -1 }),
        ]),
      ]),
    ]),
  ]),
);
