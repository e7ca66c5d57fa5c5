import { RunnelError } from '@runnel/common';
import { errorName } from '@runnel/protocol';

export type ClientErrorCode =
  /** The socket closed (or failed) while requests were in flight, or a request was made after close. */
  | 'CONNECTION_CLOSED'
  /** Connecting failed (refused, unreachable, DNS). */
  | 'CONNECT_FAILED'
  /** A request got no response within its timeout; the connection is closed with it (responses are ordered). */
  | 'TIMEOUT'
  /** The broker answered with a Kafka error code (`kafkaCode`, `kafkaName`). */
  | 'KAFKA_ERROR'
  /** The broker does not support any version of an API that this client can speak. */
  | 'UNSUPPORTED_API'
  /** The broker sent bytes that do not match what was asked (correlation id, frame). */
  | 'PROTOCOL'
  /** Bad arguments from the caller (unknown topic in metadata, bad bootstrap address, ...). */
  | 'INVALID_ARGUMENT';

/** Retriable Kafka errors (Kafka's RetriableException subclasses we meet in practice). */
const RETRIABLE = new Set([5, 6, 7, 13, 14, 15, 16, 19, 20, 56, 74, 75]);

/** Every failure of @runnel/client. `kafkaCode`/`kafkaName` are set for `KAFKA_ERROR`. */
export class ClientError extends RunnelError<ClientErrorCode> {
  readonly kafkaCode: number | undefined;
  readonly kafkaName: string | undefined;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown; retriable?: boolean; kafkaCode?: number }) {
    super(code, message, options);
    this.kafkaCode = options?.kafkaCode;
    this.kafkaName = options?.kafkaCode === undefined ? undefined : errorName(options.kafkaCode);
  }

  /** A `KAFKA_ERROR` for a non-zero Kafka error code; `what` says where it came from. */
  static kafka(kafkaCode: number, what: string, message?: string | null): ClientError {
    const name = errorName(kafkaCode);
    return new ClientError('KAFKA_ERROR', `${what}: ${name} (${kafkaCode})${message ? `: ${message}` : ''}`, {
      kafkaCode,
      retriable: RETRIABLE.has(kafkaCode),
    });
  }
}

/** Throws `ClientError.kafka` when `code` is not NONE. */
export function checkKafka(code: number, what: string, message?: string | null): void {
  if (code !== 0) throw ClientError.kafka(code, what, message);
}
