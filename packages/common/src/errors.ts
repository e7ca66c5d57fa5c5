/**
 * Base of every Runnel error. Each package defines `<Thing>Error` classes with a closed union of
 * `code`s; handlers map them to Kafka error codes at the edge (docs/architecture.md, the dependency rule).
 */
export class RunnelError<Code extends string = string> extends Error {
  readonly code: Code;
  /** True when a retry of the same request may succeed. */
  readonly retriable: boolean;

  constructor(code: Code, message: string, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options?.retriable ?? false;
  }
}
