import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordBatch, type RecordInput } from '@runnel/protocol';
import { defaultLogConfig, type LogConfig } from '../src/index.ts';

export function tempDir(prefix = 'runnel-storage-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** A small config for tests: tiny segments and index interval so rolls and index entries happen. */
export function testConfig(over: Partial<LogConfig> = {}): LogConfig {
  return { ...defaultLogConfig, fileDeleteDelayMs: 0, ...over };
}

/** One v2 batch with `count` records `prefix-i`. */
export function batch(count: number, options: { prefix?: string; size?: number; timestamp?: number; producerId?: bigint; producerEpoch?: number; baseSequence?: number; keys?: (string | null)[]; values?: (string | null)[] } = {}): Buffer {
  const records: RecordInput[] = [];
  for (let i = 0; i < count; i++) {
    const value = options.values ? options.values[i] : `${options.prefix ?? 'v'}-${i}${options.size ? '-'.repeat(options.size) : ''}`;
    records.push({ key: options.keys ? options.keys[i] : null, value, timestamp: options.timestamp !== undefined ? options.timestamp + i : undefined });
  }
  return encodeRecordBatch({
    records,
    timestamp: options.timestamp ?? Date.now(),
    producerId: options.producerId ?? -1n,
    producerEpoch: options.producerEpoch ?? -1,
    baseSequence: options.baseSequence ?? -1,
  });
}

/** Split a read result into [baseOffset, lastOffset, size] per batch. */
export function batchesIn(buf: Buffer): { baseOffset: bigint; lastOffset: bigint; size: number }[] {
  const out = [];
  let p = 0;
  while (p + 61 <= buf.length) {
    const size = 12 + buf.readInt32BE(p + 8);
    const baseOffset = buf.readBigInt64BE(p);
    out.push({ baseOffset, lastOffset: baseOffset + BigInt(buf.readInt32BE(p + 23)), size });
    p += size;
  }
  if (p !== buf.length) throw new Error(`read result ends inside a batch (${p} of ${buf.length})`);
  return out;
}
