import { describe, expect, it } from 'vitest';
import { decodeTxnKey, decodeTxnValue, encodeTxnKey, encodeTxnValue, type TxnLogValue } from '../src/txn-records.ts';

// Golden bytes written by Kafka 4.4.0's own generated classes (TransactionLogKey/TransactionLogValue
// in kafka-transaction-coordinator, MessageUtil.toVersionPrefixedBytes), so our topic reads like Kafka's.
const KEY = '0000000474782d31';
const V0 = '0000000000000000109200030000ea60010000000200066f726465727300000002000000000000000200125f5f636f6e73756d65725f6f66667365747300000001000000110000018bcfe56be80000018bcfe56800';
// The same value at v1 (flexible) with the tagged PreviousProducerId = 7 and ClientTransactionVersion = 2.
const V1 = '0001000000000000109200030000ea600103076f726465727303000000000000000200135f5f636f6e73756d65725f6f6666736574730200000011000000018bcfe56be80000018bcfe56800020008000000000000000702020002';
const V0_COMPLETE = '0000000000000000109200040000ea6004000000000000018bcfe56fd00000018bcfe56800';

const ongoing: TxnLogValue = {
  producerId: 4242n, producerEpoch: 3, transactionTimeoutMs: 60000, state: 'Ongoing',
  partitions: [{ topic: '__consumer_offsets', partitions: [17] }, { topic: 'orders', partitions: [0, 2] }],
  lastUpdateTimestampMs: 1700000001000n, startTimestampMs: 1700000000000n,
};

describe('__transaction_state records', () => {
  it('key version 0 is Kafka\'s bytes', () => {
    expect(encodeTxnKey('tx-1').toString('hex')).toBe(KEY);
    expect(decodeTxnKey(Buffer.from(KEY, 'hex'))).toBe('tx-1');
    expect(decodeTxnKey(Buffer.from('0001000474782d31', 'hex'))).toBeNull();
  });

  it('value v0 encodes to Kafka\'s bytes and v0/v1 decode', () => {
    // Kafka's bytes list orders first (insertion order); we sort topics, so compare decoded and re-encode ours.
    const decoded = decodeTxnValue(Buffer.from(V0, 'hex'));
    expect({ ...decoded, partitions: [...decoded.partitions].sort((a, b) => a.topic.localeCompare(b.topic)) }).toEqual(ongoing);
    expect(decodeTxnValue(Buffer.from(V1, 'hex'))).toEqual(decoded);
    const kafkaOrder = { ...ongoing, partitions: [ongoing.partitions[1]!, ongoing.partitions[0]!] };
    expect(encodeTxnValue(kafkaOrder).toString('hex')).toBe(V0);
    const complete: TxnLogValue = { ...ongoing, producerEpoch: 4, state: 'CompleteCommit', partitions: [], lastUpdateTimestampMs: 1700000002000n };
    expect(encodeTxnValue(complete).toString('hex')).toBe(V0_COMPLETE);
  });

  it('corrupt values fail with a clear error, never a huge allocation', () => {
    expect(() => decodeTxnValue(Buffer.from(V0.slice(0, 30), 'hex'))).toThrow(/truncated/);
    expect(() => decodeTxnValue(Buffer.from('0005', 'hex'))).toThrow(/version 5/);
    const bad = Buffer.from(V0, 'hex');
    bad.writeInt32BE(0x7fffffff, 19); // the partitions count
    expect(() => decodeTxnValue(bad)).toThrow(/array of/);
  });
});
