import { api, f, message, structs } from '../schema.ts';

/**
 * OffsetForLeaderEpoch (key 23), v0–4 decoded (Kafka 4 serves v2–4; v0–1 were removed by KIP-896):
 * the end offset of a leader epoch in the leader's log (KIP-101 truncation, KIP-320 consumer
 * position validation). v1 adds the answered `leaderEpoch`, v2 `currentLeaderEpoch` (fencing) and
 * the throttle time, v3 `replicaId` (−1 a consumer, −2 a debug client, ≥ 0 a follower), v4 is flexible.
 */
export const OffsetForLeaderEpoch = api(23,
  message('OffsetForLeaderEpochRequest', [0, 4], 4, [
    f('replicaId', 'int32', '3+', { default: -2 }),
    structs('topics', '0+', [
      f('topic', 'string', '0+'),
      structs('partitions', '0+', [
        f('partition', 'int32', '0+'),
        f('currentLeaderEpoch', 'int32', '2+', { default: -1 }),
        f('leaderEpoch', 'int32', '0+'),
      ]),
    ]),
  ]),
  message('OffsetForLeaderEpochResponse', [0, 4], 4, [
    f('throttleTimeMs', 'int32', '2+'),
    structs('topics', '0+', [
      f('topic', 'string', '0+'),
      structs('partitions', '0+', [
        f('errorCode', 'int16', '0+'),
        f('partition', 'int32', '0+'),
        f('leaderEpoch', 'int32', '1+', { default: -1 }),
        f('endOffset', 'int64', '0+', { default: -1 }),
      ]),
    ]),
  ]),
);
