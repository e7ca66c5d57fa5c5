import { api, arr, f, message, structs } from '../schema.ts';

/**
 * FindCoordinator (key 10). keyType 0 = group, 1 = transaction, 2 = share group (v6+, KIP-932).
 * v4 batches keys (KIP-699); v5 (KIP-890: TRANSACTION_ABORTABLE may be answered) and v6 have v4's body.
 */
export const FindCoordinator = api(10,
  message('FindCoordinatorRequest', [0, 6], 3, [
    f('key', 'string', '0-3'),
    f('keyType', 'int8', '1+', { default: 0 }),
    arr('coordinatorKeys', 'string', '4+'),
  ]),
  message('FindCoordinatorResponse', [0, 6], 3, [
    f('throttleTimeMs', 'int32', '1+'),
    f('errorCode', 'int16', '0-3'),
    f('errorMessage', 'string', '1-3', { nullable: '1-3', default: null }),
    f('nodeId', 'int32', '0-3'),
    f('host', 'string', '0-3'),
    f('port', 'int32', '0-3'),
    structs('coordinators', '4+', [
      f('key', 'string', '4+'),
      f('nodeId', 'int32', '4+'),
      f('host', 'string', '4+'),
      f('port', 'int32', '4+'),
      f('errorCode', 'int16', '4+'),
      f('errorMessage', 'string', '4+', { nullable: '4+', default: null }),
    ]),
  ]),
);
