/**
 * Plumbing shared by Runnel's Kafka-style admin and console tools (`runnel topics`, `configs`,
 * `console-producer`, `console-consumer`, `consumer-groups`): the I/O seam tests replace, the
 * usage error (exit 1, as Kafka's printUsageAndExit), Kafka's table padding, `k=v` parsing, the
 * client connection, and progress counts on a terminal.
 */
import { ClientError, KafkaClient } from '@runnel/client';

export interface ToolIo {
  /** Raw text to stdout (callers add their own newlines, as Kafka's printf does). */
  out(text: string): void;
  err(text: string): void;
  /** Wall clock in ms. */
  now(): number;
  /** Whether stderr is a terminal (progress counts are shown only then). */
  errIsTty?: boolean;
  /** Resolves once stdout has taken what was written (a slow reader holds a long output back). */
  drained?(): Promise<void>;
}

export const stdio: ToolIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  now: () => Date.now(),
  get errIsTty() { return process.stderr.isTTY === true; },
  drained: () => (process.stdout.writableNeedDrain ? new Promise<void>((resolve) => process.stdout.once('drain', () => resolve())) : Promise.resolve()),
};

/** Bad flags or arguments: one line plus the usage hint, exit code 1. */
export class UsageError extends Error {}

/** An operational failure a tool reports in its own words (printed as the tool's error line, exit 1). */
export class ToolError extends Error {}

/** commander's accumulator for repeatable options. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

export const pad = (s: string, width: number) => s.padEnd(width);
/** Kafka's column width: at least `min`, or the longest value. */
export const widest = (min: number, values: string[]) => Math.max(min, ...values.map((v) => v.length));

/** `--timeout`/`--timeout-ms` as a positive integer of milliseconds. */
export function positiveMs(flag: string, value: string | number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0) throw new UsageError(`${flag} must be a positive number of milliseconds, not "${value}"`);
  return ms;
}

/**
 * `k=v` pairs from repeatable flags, each possibly a comma list (`a=1,b=2`) as kafka-configs
 * `--add-config` takes them; `[a,b]` keeps its commas (a list value). Later keys win.
 */
export function parseKeyValues(flag: string, values: string[], options: { commaLists?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of values) {
    const items = options.commaLists ? splitOutsideBrackets(raw) : [raw];
    for (const item of items) {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new UsageError(`${flag} takes key=value, not "${item}"`);
      let value = item.slice(eq + 1);
      if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1);
      out.set(item.slice(0, eq).trim(), value);
    }
  }
  return out;
}

function splitOutsideBrackets(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '[') depth++;
    if (ch === ']') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) { out.push(cur); cur = ''; continue; }
    cur += ch;
  }
  if (cur !== '') out.push(cur);
  return out.filter((x) => x.trim() !== '');
}

/** A client for a tool, bounded by `timeoutMs` for connects and requests. */
export function connectTool(bootstrapServer: string | undefined, clientId: string, timeoutMs: number): Promise<KafkaClient> {
  if (!bootstrapServer) throw new UsageError('Missing required argument "[bootstrap-server]"');
  return KafkaClient.connect({ bootstrapServers: bootstrapServer, clientId, requestTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs });
}

/** The message of a failure that is the operator's to fix (a Kafka error, a refused connection); else the stack. */
export function failureMessage(err: unknown): string {
  const e = err as Error;
  return err instanceof ClientError || err instanceof UsageError || err instanceof ToolError ? e.message : (e.stack ?? String(err));
}

/**
 * Runs a tool's action and turns its outcome into an exit code: a UsageError is one line and the
 * hint on stderr, any other failure goes to `failed(message)` (each tool prints Kafka's own wording
 * on the stream Kafka uses), exit 1.
 */
export async function runTool(name: string, io: ToolIo, action: () => Promise<number>, failed: (message: string) => void): Promise<number> {
  try {
    return await action();
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`Error: ${err.message}\nRun "runnel ${name} --help" for the options.\n`);
      return 1;
    }
    failed(failureMessage(err));
    return 1;
  }
}

/**
 * A count of work done, redrawn in place on stderr once a second while stderr is a terminal and
 * the work has run for a second (short runs and pipes stay quiet). `done()` clears the line.
 */
export class Progress {
  private count = 0;
  private readonly timer: NodeJS.Timeout | null = null;
  private shown = false;
  private readonly io: ToolIo;
  private readonly label: string;
  private readonly total: number | null;

  constructor(io: ToolIo, label: string, total: number | null = null) {
    this.io = io;
    this.label = label;
    this.total = total;
    if (io.errIsTty) {
      this.timer = setInterval(() => this.draw(), 1000);
      this.timer.unref();
    }
  }

  add(n = 1): void {
    this.count += n;
  }

  private draw(): void {
    this.shown = true;
    this.io.err(`\r${this.label}: ${this.count}${this.total === null ? '' : ` of ${this.total}`}\x1b[K`);
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.shown) this.io.err('\r\x1b[K');
  }
}
