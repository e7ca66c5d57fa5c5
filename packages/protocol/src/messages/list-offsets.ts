import { api, arr, f, message, structs } from '../schema.ts';

/**
 * ListOffsets (key 2), v0–10. Timestamp −1 = latest (LSO for read_committed), −2 = earliest,
 * −3 = the record with the largest timestamp (v7+, KIP-734), −4 = the earliest offset in local
 * storage (v8+, KIP-405), −5 = the latest offset in tiered storage (v9+, KIP-1005). v6 is the
 * first flexible version; v10 adds `timeoutMs` for reads from remote storage (KIP-1075).
 */
export const ListOffsets = api(2,
  message('ListOffsetsRequest', [0, 10], 6, [
    f('replicaId', 'int32', '0+', { default: -1 }),
    f('isolationLevel', 'int8', '2+'),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('currentLeaderEpoch', 'int32', '4+', { default: -1 }),
        f('timestamp', 'int64', '0+'),
        f('maxNumOffsets', 'int32', '0', { default: 1 }),
      ]),
    ]),
    f('timeoutMs', 'int32', '10+', { default: 0 }),
  ]),
  message('ListOffsetsResponse', [0, 10], 6, [
    f('throttleTimeMs', 'int32', '2+'),
    structs('topics', '0+', [
      f('name', 'string', '0+'),
      structs('partitions', '0+', [
        f('partitionIndex', 'int32', '0+'),
        f('errorCode', 'int16', '0+'),
        arr('oldStyleOffsets', 'int64', '0'),
        f('timestamp', 'int64', '1+', { default: -1 }),
        f('offset', 'int64', '1+', { default: -1 }),
        f('leaderEpoch', 'int32', '4+', { default: -1 }),
      ]),
    ]),
  ]),
);
