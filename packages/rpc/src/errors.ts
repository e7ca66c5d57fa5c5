import { RunnelError } from '@runnel/common';

/**
 * - UNAVAILABLE: no connection could be made, or it broke while the call was in flight (retriable).
 * - TIMEOUT: no answer within the call's timeout (retriable; the call may still have run).
 * - REMOTE: the handler threw; `remoteCode` is its error's `code` ('INTERNAL' when it had none).
 * - FRAME_TOO_LARGE / BAD_FRAME: a frame over `maxFrameBytes`, or one that does not decode.
 * - UNKNOWN_METHOD: the method is not in the schema, or the server has no handler for it.
 * - BAD_ADDRESS: parseAddress was given something that is not `host:port`.
 * - CLOSED: the client was closed.
 */
export type RpcErrorCode =
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'REMOTE'
  | 'FRAME_TOO_LARGE'
  | 'BAD_FRAME'
  | 'UNKNOWN_METHOD'
  | 'BAD_ADDRESS'
  | 'CLOSED';

export class RpcError extends RunnelError<RpcErrorCode> {
  /** For REMOTE (and UNKNOWN_METHOD answered by the server): the code the remote side sent. */
  readonly remoteCode: string | undefined;
  /**
   * For a failed call: false when its request was never written to a connection (the server
   * surely did not run it, so even a non-idempotent call may be retried); true otherwise.
   */
  readonly sent: boolean;

  constructor(
    code: RpcErrorCode,
    message: string,
    options?: { cause?: unknown; retriable?: boolean; remoteCode?: string; sent?: boolean },
  ) {
    super(code, message, options);
    this.remoteCode = options?.remoteCode;
    this.sent = options?.sent ?? true;
  }

  /** The same failure, for a call whose request was never written. */
  unsent(): RpcError {
    return new RpcError(this.code, this.message, { cause: this.cause, retriable: this.retriable, remoteCode: this.remoteCode, sent: false });
  }
}
