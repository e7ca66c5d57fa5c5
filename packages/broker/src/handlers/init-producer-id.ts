import { ApiKey, ErrorCode, type Requests } from '@runnel/protocol';
import { defineHandler } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';

/**
 * InitProducerId v0–1 for idempotent producers: a fresh cluster-unique producer id at epoch 0.
 * Transactional ids need a transaction coordinator, which Runnel does not have yet.
 */
export const initProducerId = (b: BrokerContext) => defineHandler({
  api: ApiKey.InitProducerId,
  versions: [0, 1],
  async handle(req: Requests[typeof ApiKey.InitProducerId]) {
    if (req.transactionalId !== null) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producerId: -1n, producerEpoch: -1 };
    }
    try {
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: await b.metadata.allocateProducerId(), producerEpoch: 0 };
    } catch (err) {
      return { throttleTimeMs: 0, errorCode: toKafkaError(err, ErrorCode.COORDINATOR_NOT_AVAILABLE).code, producerId: -1n, producerEpoch: -1 };
    }
  },
});
