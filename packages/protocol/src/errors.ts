import { RunnelError } from '@runnel/common';

export type ProtocolErrorCode =
  /** The frame ended before a field did. */
  | 'TRUNCATED'
  /** A length, count or value is impossible (negative non-null length, count beyond the frame, bad varint, ...). */
  | 'INVALID'
  /** The API key is known but this version is not. */
  | 'UNSUPPORTED_VERSION'
  /** The API key has no schema here. */
  | 'UNKNOWN_API'
  /** A value handed to the encoder does not fit its field. */
  | 'ENCODE';

/** Anything wrong with bytes on the wire (or a value that cannot be put there). Never retriable. */
export class ProtocolError extends RunnelError<ProtocolErrorCode> {}
