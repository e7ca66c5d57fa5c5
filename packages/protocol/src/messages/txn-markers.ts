import { api, arr, f, message, structs } from '../schema.ts';

/**
 * WriteTxnMarkers (key 27), v1–2: a transaction coordinator asks partition leaders to write a
 * COMMIT (`transactionResult` true) or ABORT control batch for a producer (KIP-98). v0 was removed
 * in Kafka 4.0; v1 is the flexible baseline; v2 adds `transactionVersion` (KIP-890's transaction
 * version 2; Runnel writes the same marker for both). `kafka-transactions.sh abort` sends it too.
 */
export const WriteTxnMarkers = api(27,
  message('WriteTxnMarkersRequest', [1, 2], 1, [
    structs('markers', '0+', [
      f('producerId', 'int64', '0+'),
      f('producerEpoch', 'int16', '0+'),
      f('transactionResult', 'bool', '0+'),
      structs('topics', '0+', [
        f('name', 'string', '0+'),
        arr('partitionIndexes', 'int32', '0+'),
      ]),
      f('coordinatorEpoch', 'int32', '0+'),
      f('transactionVersion', 'int8', '2+', { default: 0 }),
    ]),
  ]),
  message('WriteTxnMarkersResponse', [1, 2], 1, [
    structs('markers', '0+', [
      f('producerId', 'int64', '0+'),
      structs('topics', '0+', [
        f('name', 'string', '0+'),
        structs('partitions', '0+', [
          f('partitionIndex', 'int32', '0+'),
          f('errorCode', 'int16', '0+'),
        ]),
      ]),
    ]),
  ]),
);
