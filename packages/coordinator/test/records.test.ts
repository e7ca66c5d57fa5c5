import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeGroupMetadataValue,
  decodeKey,
  decodeOffsetCommitValue,
  encodeGroupMetadataKey,
  encodeGroupMetadataValue,
  encodeOffsetCommitKey,
  encodeOffsetCommitValue,
  encodeSubscription,
  javaStringHashCode,
  partitionForGroup,
  subscribedTopics,
} from '../src/index.ts';

describe('__consumer_offsets records (Kafka encoding)', () => {
  it('encodes keys byte for byte like Kafka', () => {
    // version 1, "g", "t", partition 7
    expect(encodeOffsetCommitKey('g', 't', 7).toString('hex')).toBe('0001' + '000167' + '000174' + '00000007');
    expect(encodeGroupMetadataKey('g').toString('hex')).toBe('0002' + '000167');
    expect(decodeKey(Buffer.from('000000016700017400000007', 'hex'))).toEqual({ type: 'offset', group: 'g', topic: 't', partition: 7 });
    expect(decodeKey(Buffer.from('0003000167', 'hex'))).toBeNull();
  });

  it('writes OffsetCommitValue v3, or v1 with an explicit expire timestamp, and reads both', () => {
    const v3 = encodeOffsetCommitValue({ offset: 5n, leaderEpoch: 2, metadata: 'm', commitTimestamp: 9n, expireTimestamp: -1n });
    expect(v3.toString('hex')).toBe('0003' + '0000000000000005' + '00000002' + '00016d' + '0000000000000009');
    expect(decodeOffsetCommitValue(v3)).toEqual({ offset: 5n, leaderEpoch: 2, metadata: 'm', commitTimestamp: 9n, expireTimestamp: -1n });
    const v1 = encodeOffsetCommitValue({ offset: 5n, leaderEpoch: -1, metadata: '', commitTimestamp: 9n, expireTimestamp: 99n });
    expect(v1.readInt16BE(0)).toBe(1);
    expect(decodeOffsetCommitValue(v1)).toEqual({ offset: 5n, leaderEpoch: -1, metadata: '', commitTimestamp: 9n, expireTimestamp: 99n });
  });

  it('round-trips GroupMetadataValue', () => {
    const member = fc.record({
      memberId: fc.string(),
      groupInstanceId: fc.option(fc.string(), { nil: null }),
      clientId: fc.string(),
      clientHost: fc.string(),
      rebalanceTimeout: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      sessionTimeout: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      subscription: fc.uint8Array().map((a) => Buffer.from(a)),
      assignment: fc.uint8Array().map((a) => Buffer.from(a)),
    });
    const value = fc.record({
      protocolType: fc.string(),
      generation: fc.integer({ min: -1, max: 2 ** 31 - 1 }),
      protocol: fc.option(fc.string(), { nil: null }),
      leader: fc.option(fc.string(), { nil: null }),
      currentStateTimestamp: fc.bigInt({ min: -1n, max: 2n ** 62n }),
      members: fc.array(member, { maxLength: 4 }),
    });
    fc.assert(
      fc.property(value, (v) => {
        expect(decodeGroupMetadataValue(encodeGroupMetadataValue(v))).toEqual(v);
      }),
    );
  });

  it('maps groups to partitions like Kafka (Utils.abs(String.hashCode) % n)', () => {
    expect(javaStringHashCode('')).toBe(0);
    expect(javaStringHashCode('abc')).toBe(96354);
    expect(javaStringHashCode('hello world')).toBe(1794106052);
    expect(javaStringHashCode('console-consumer-1')).toBeLessThan(2 ** 31);
    // "polygenelubricants".hashCode() == Integer.MIN_VALUE, which Utils.abs maps to 0.
    expect(javaStringHashCode('polygenelubricants')).toBe(-2147483648);
    expect(partitionForGroup('polygenelubricants', 50)).toBe(0);
    expect(partitionForGroup('abc', 50)).toBe(96354 % 50);
    expect(partitionForGroup('Aa', 7)).toBe(partitionForGroup('BB', 7)); // a classic hashCode collision
  });

  it('reads the topics of a subscription and rejects garbage', () => {
    expect(subscribedTopics(encodeSubscription(['a', 'bb']))).toEqual(['a', 'bb']);
    expect(subscribedTopics(Buffer.from([0, 1, 0, 0, 0, 9, 0]))).toBeNull();
  });
});
