/**
 * The frame format, the same in both directions:
 *
 * ```
 * +----------------------+--------------------------------------------+
 * | length: uint32 BE    | Envelope (protobuf, proto/rpc.proto)        |
 * | (bytes that follow)  | { id, method, payload, response, error,    |
 * |                      |   attachments } (schema.ts: encodeEnvelope) |
 * +----------------------+--------------------------------------------+
 * ```
 *
 * Example: a call with id 1 to 'broker.read' whose request encodes to 12 bytes is
 * `00 00 00 1d | 08 01 12 0b "broker.read" 1a 0c <12 payload bytes>` (29 = 0x1d envelope bytes;
 * `response = false` and the absent `error` take no bytes).
 *
 * - A call has `response = false`; its answer carries the same `id` and `response = true`, with
 *   either `payload` (the method's response message) or `error` (a Failure). Answers may come
 *   in any order; the caller matches them by id. Ids are per connection, chosen by the caller.
 * - The length is checked as soon as its 4 bytes arrive, before any of the body is buffered: a
 *   length above `maxFrameBytes` is a protocol error and the reader closes the connection, so a
 *   peer can never make the other side buffer more than maxFrameBytes + one socket chunk.
 * - A body that does not decode as an Envelope closes the connection too (the stream can no
 *   longer be trusted); a payload that does not decode fails only that call.
 */
import type { Socket } from 'node:net';
import { RpcError } from './errors.ts';

export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
const LENGTH_BYTES = 4;
const EMPTY = Buffer.alloc(0);

/** The 4-byte length prefix for a body of `length` bytes (sent before it, in one writev). */
export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(LENGTH_BYTES);
  header.writeUInt32BE(length, 0);
  return header;
}

/**
 * Splits a byte stream into frame bodies. A body that lies within one socket chunk is returned
 * as a view of it (no copy); one spread over chunks is joined once.
 */
export class FrameReader {
  private readonly maxFrameBytes: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame being accumulated, or -1 while waiting for a length prefix. */
  private expected = -1;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Feeds one chunk; returns the complete bodies. Throws RpcError('FRAME_TOO_LARGE'). */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < LENGTH_BYTES) break;
        const length = this.take(LENGTH_BYTES).readUInt32BE(0);
        if (length > this.maxFrameBytes) {
          throw new RpcError('FRAME_TOO_LARGE', `frame of ${length} bytes is over the limit of ${this.maxFrameBytes}`);
        }
        this.expected = length;
      }
      if (this.buffered < this.expected) break;
      frames.push(this.take(this.expected));
      this.expected = -1;
    }
    return frames;
  }

  /** Removes and returns the first n buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.chunks[0];
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0];
      const count = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, count);
      filled += count;
      if (count === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(count);
    }
    this.buffered -= n;
    return out;
  }
}

/** Writes one frame, its body given whole or in pieces, as a single writev (no copy). */
export function writeFrame(socket: Socket, body: Uint8Array | readonly Uint8Array[]): void {
  const pieces = body instanceof Uint8Array ? [body] : body;
  socket.cork();
  socket.write(frameHeader(frameLength(pieces)));
  for (const piece of pieces) socket.write(piece);
  socket.uncork();
}

/** The body length of a frame given in pieces. */
export function frameLength(pieces: readonly Uint8Array[]): number {
  let length = 0;
  for (const piece of pieces) length += piece.length;
  return length;
}
