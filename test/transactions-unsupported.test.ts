// Until Runnel has a transaction coordinator, a transactional producer must fail at once with a
// clear, non-retriable error, never retry until its timeout (docs/protocol.md, "Transactions").
// Against a real `runnel start`: the wire answers (FindCoordinator key type 1 at v0, v3 and v4,
// InitProducerId with a transactional id), librdkafka through kcat (-X transactional.id), and a
// kafkajs transactional producer. The Java client's initTransactions is in test/interop-java.test.ts;
// franz-go and confluent-kafka-python in their own harness tests.
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { runKcat } from './helpers/kcat.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { suiteBroker } from './helpers/suite-broker.ts';

const MESSAGE = 'Runnel does not support transactions yet';
const broker = suiteBroker();

describe('a transactional producer fails at once', () => {
  it('FindCoordinator for a transactional id answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED (v1+ with the reason); InitProducerId with one too', async () => {
    const v0 = await kafkaRequest(broker().port, ApiKey.FindCoordinator, 0, { key: 'tx' } as never) as { errorCode: number; nodeId: number };
    // v0 has no key type: it is always a group, which this node coordinates.
    expect(v0).toMatchObject({ errorCode: ErrorCode.NONE, nodeId: 1 });
    const v3 = await kafkaRequest(broker().port, ApiKey.FindCoordinator, 3, { key: 'tx', keyType: 1 } as never) as { errorCode: number; errorMessage: string | null; nodeId: number };
    expect(v3.errorCode).toBe(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    expect(v3.errorMessage).toContain(MESSAGE);
    expect(v3.nodeId).toBe(-1);
    const v4 = await kafkaRequest(broker().port, ApiKey.FindCoordinator, 4, { keyType: 1, coordinatorKeys: ['a', 'b'] } as never) as { coordinators: { key: string; errorCode: number; errorMessage: string | null }[] };
    expect(v4.coordinators.map((c) => [c.key, c.errorCode])).toEqual([['a', ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED], ['b', ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED]]);
    expect(v4.coordinators[0]!.errorMessage).toContain(MESSAGE);
    // A group lookup on the same version still works.
    const group = await kafkaRequest(broker().port, ApiKey.FindCoordinator, 3, { key: 'g', keyType: 0 } as never) as { errorCode: number };
    expect(group.errorCode).toBe(ErrorCode.NONE);

    const init = await kafkaRequest(broker().port, ApiKey.InitProducerId, 1, { transactionalId: 'tx', transactionTimeoutMs: 60_000 } as never) as { errorCode: number; producerId: bigint };
    expect(init).toMatchObject({ errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producerId: -1n });
  });

  it('librdkafka (kcat -X transactional.id): init_transactions fails fatally with the reason, not after transaction.timeout', async () => {
    const started = Date.now();
    const r = await runKcat(['-b', broker().bootstrap, '-P', '-t', 'tx-kcat', '-X', 'transactional.id=kcat-tx', '-X', 'transaction.timeout.ms=60000'], { input: 'a\nb\n', timeoutMs: 60_000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Fatal transaction error');
    expect(r.stderr).toContain('TRANSACTIONAL_ID_AUTHORIZATION_FAILED');
    expect(r.stderr).toContain(MESSAGE);
    // A retrying client would wait for the 60 s transaction timeout (kcat's init_transactions timeout).
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 70_000);

  it('kafkajs: producer.transaction() rejects at once with a non-retriable error; a plain idempotent producer still works', async () => {
    const kafka = new Kafka({ clientId: 'tx-test', brokers: [broker().bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 500, maxRetryTime: 5_000 } });
    const producer = kafka.producer({ transactionalId: 'kafkajs-tx', idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      const started = Date.now();
      const err = await producer.transaction().then(() => null, (e: unknown) => e as { name: string; retriable: boolean });
      // kafkajs bails out of its FindCoordinator loop on a non-retriable code and, having asked
      // every broker, says it found no coordinator (it keeps no cause); on COORDINATOR_NOT_AVAILABLE
      // it would retry instead.
      expect(err?.name).toBe('KafkaJSGroupCoordinatorNotFound');
      expect(err?.retriable).toBe(false);
      // 8 retries from 500 ms would take well over 20 s.
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await producer.disconnect();
    }
    const plain = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
    await plain.connect();
    try {
      const [sent] = await plain.send({ topic: 'tx-kafkajs-plain', acks: -1, messages: [{ value: 'v' }] });
      expect(sent!.errorCode).toBe(0);
    } finally {
      await plain.disconnect();
    }
  }, 60_000);
});
