/**
 * Record batch v2 header layout (Kafka `DefaultRecordBatch`), big-endian:
 *
 * ```
 *  0 int64 baseOffset        not covered by the CRC
 *  8 int32 batchLength       bytes after this field (batch size = 12 + batchLength)
 * 12 int32 partitionLeaderEpoch   not covered by the CRC
 * 16 int8  magic (2)
 * 17 uint32 crc              CRC-32C of bytes 21..end
 * 21 int16 attributes        bits 0-2 codec, 3 timestampType, 4 transactional, 5 control
 * 23 int32 lastOffsetDelta
 * 27 int64 firstTimestamp
 * 35 int64 maxTimestamp
 * 43 int64 producerId
 * 51 int16 producerEpoch
 * 53 int32 baseSequence
 * 57 int32 recordCount
 * 61 records...
 * ```
 * The storage layer only reads these header fields in TS (to walk batches while reading); full
 * validation is the native `scanLog` / `validateAndAssign`.
 */
export const BATCH_HEADER_SIZE = 61;
export const LOG_OVERHEAD = 12;
export const OFF_LENGTH = 8;
export const OFF_LEADER_EPOCH = 12;
export const OFF_MAGIC = 16;
export const OFF_CRC = 17;
export const OFF_ATTRIBUTES = 21;
export const OFF_LAST_OFFSET_DELTA = 23;
export const OFF_FIRST_TIMESTAMP = 27;
export const OFF_MAX_TIMESTAMP = 35;
export const OFF_PRODUCER_ID = 43;
export const OFF_RECORD_COUNT = 57;
export const ATTR_TIMESTAMP_TYPE = 0x08;

export const batchBaseOffset = (b: Uint8Array | Buffer, at: number) => (b as Buffer).readBigInt64BE(at);
export const batchSize = (b: Buffer, at: number) => LOG_OVERHEAD + b.readInt32BE(at + OFF_LENGTH);
export const batchLastOffset = (b: Buffer, at: number) => b.readBigInt64BE(at) + BigInt(b.readInt32BE(at + OFF_LAST_OFFSET_DELTA));

export function fileName(baseOffset: bigint): string {
  return baseOffset.toString().padStart(20, '0');
}

export const OFF_PRODUCER_EPOCH = 51;
export const OFF_BASE_SEQUENCE = 53;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;

/** Control record types (Kafka `ControlRecordType`): the key is int16 version 0 + int16 type. */
export const CONTROL_ABORT = 0;
export const CONTROL_COMMIT = 1;

/**
 * The control record of the (uncompressed) control batch at `buf[at]`: its type (CONTROL_ABORT,
 * CONTROL_COMMIT or another; Kafka ignores unknown types) and, for a transaction marker, the
 * coordinator epoch from its value (int16 version + int32 coordinatorEpoch; -1 when absent).
 * Null when the record cannot be read. Record layout: varint length, int8 attributes, varlong
 * timestampDelta, varint offsetDelta, varint keyLength, key, varint valueLength, value.
 */
export function readControlRecord(buf: Buffer, at: number): { type: number; coordinatorEpoch: number } | null {
  const end = at + LOG_OVERHEAD + buf.readInt32BE(at + OFF_LENGTH);
  if (end > buf.length || (buf.readInt16BE(at + OFF_ATTRIBUTES) & 0x07) !== 0) return null; // control batches are never compressed
  let p = at + BATCH_HEADER_SIZE;
  const varint = (): number => {
    let v = 0;
    for (let i = 0, shift = 0; i < 10 && p < end; i++, shift += 7) {
      const byte = buf[p++];
      v += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
    }
    return Number.NaN;
  };
  varint(); // record length
  p++; // attributes
  varint(); // timestamp delta
  varint(); // offset delta
  const keyLen = varint();
  // A newer key version still starts with the type (Kafka reads it and warns).
  if (!(keyLen >= 4) || p + keyLen > end || buf.readInt16BE(p) < 0) return null;
  const type = buf.readInt16BE(p + 2);
  p += keyLen;
  const valueLen = varint();
  const coordinatorEpoch = valueLen >= 6 && p + 6 <= end ? buf.readInt32BE(p + 2) : -1;
  return { type, coordinatorEpoch };
}
