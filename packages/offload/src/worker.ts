/**
 * The pool's built-in worker module: runs the native codecs and deep record validation off the
 * event loop. Results and errors cross back as plain data: errors are flattened to
 * `{ error: { kind, code, message, batchIndex?, position? } }` because structured clone keeps
 * only an Error's name and message, and the pool rebuilds the typed error on the main thread.
 *
 * Outputs are transferred, not cloned. The native module returns Buffers that own their whole
 * ArrayBuffer, which move as they are; anything else (a view into a larger buffer) is first copied
 * into a fresh ArrayBuffer.
 */
import { Piscina } from 'piscina';
import { BatchError, compress as nativeCompress, decompress as nativeDecompress, validateRecords as nativeValidateRecords, type Codec } from '@runnel/native';
import { RunnelError } from '@runnel/common';

export interface FlatError {
  kind: 'BatchError' | 'NativeError' | 'Error';
  code: string;
  message: string;
  batchIndex?: number;
  position?: number;
}

/** Byte results arrive as the transferred Uint8Array itself (piscina only moves a top-level value). */
export type BytesResult = Uint8Array | { error: FlatError };
export type WorkerResult<T> = { ok: T } | { error: FlatError };

function flatten(e: unknown): { error: FlatError } {
  if (e instanceof BatchError) return { error: { kind: 'BatchError', code: e.code, message: e.message, batchIndex: e.batchIndex, position: e.position } };
  if (e instanceof RunnelError) return { error: { kind: 'NativeError', code: e.code, message: e.message } };
  return { error: { kind: 'Error', code: 'TASK_FAILED', message: e instanceof Error ? e.message : String(e) } };
}

function transferable(out: Uint8Array) {
  const owns = out.buffer instanceof ArrayBuffer && out.byteOffset === 0 && out.byteLength === out.buffer.byteLength && out.byteLength > 0;
  if (owns) return Piscina.move(out);
  const copy = new Uint8Array(new ArrayBuffer(out.length));
  copy.set(out);
  return Piscina.move(copy);
}

export function compress(a: { codec: Codec; src: Uint8Array; level?: number }) {
  try {
    return transferable(nativeCompress(a.codec, a.src, a.level));
  } catch (e) {
    return flatten(e);
  }
}

export function decompress(a: { codec: Codec; src: Uint8Array; maxOutput: number }) {
  try {
    return transferable(nativeDecompress(a.codec, a.src, a.maxOutput));
  } catch (e) {
    return flatten(e);
  }
}

export function validateRecords(a: { batch: Uint8Array; maxUncompressed: number }) {
  try {
    return { ok: nativeValidateRecords(a.batch, a.maxUncompressed) };
  } catch (e) {
    return flatten(e);
  }
}
