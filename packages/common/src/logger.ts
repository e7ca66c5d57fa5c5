import { pino, type Logger } from 'pino';

export type { Logger };

/** pino's levels, most severe first; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `json`: one JSON object per line (pino's format, for machines); `pretty`: one readable line per record, for a terminal. */
export type LogFormat = 'json' | 'pretty';

export const isLogLevel = (level: string): level is LogLevel => (LOG_LEVELS as readonly string[]).includes(level);

/**
 * The one logger factory. Roles log to stderr so that stdout stays free for CLI output. The cli
 * picks the level and format (from `RUNNEL_LOG_LEVEL`, `RUNNEL_LOG_FORMAT` and whether stderr is
 * a terminal) and passes them in; nothing here reads the environment.
 */
export function createLogger(options: { name: string; level?: string; format?: LogFormat }): Logger {
  const level = options.level ?? 'info';
  if (!isLogLevel(level)) throw new Error(`unknown log level ${JSON.stringify(level)} (expected one of ${LOG_LEVELS.join(', ')})`);
  const out = pino.destination(2);
  const destination = options.format === 'pretty'
    ? { write: (line: string) => out.write(`${prettyLogLine(line.replace(/\n$/, ''))}\n`) }
    : out;
  return pino({ name: options.name, level, base: undefined }, destination);
}

/** A logger that discards everything, for tests and embedded use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * One pino JSON line as a human reads it:
 * `13:04:05.123 INFO  runnel: runnel is ready listener=PLAINTEXT://127.0.0.1:9092 startupMs=529`
 * (local time, level, logger name, message, then the other fields as key=value; an error's stack
 * follows on indented lines). A line that is not a pino record is returned unchanged, so this can
 * also render a child process's mixed output.
 */
export function prettyLogLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (record === null || typeof record !== 'object' || typeof record.level !== 'number') return line;
  const { time, level, name, msg, err, ...fields } = record;
  const t = new Date(typeof time === 'number' ? time : Date.now());
  const hms = `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${String(t.getMilliseconds()).padStart(3, '0')}`;
  const parts = [hms, (LEVEL_NAMES[level] ?? String(level)).padEnd(5), `${typeof name === 'string' ? name : '-'}:`, typeof msg === 'string' ? msg : ''];
  for (const [k, v] of Object.entries(fields)) parts.push(`${k}=${show(v)}`);
  let stack = '';
  if (err !== undefined) {
    const e = err as { message?: unknown; stack?: unknown };
    parts.push(`err=${show(typeof e.message === 'string' ? e.message : err)}`);
    if (typeof e.stack === 'string' && (level as number) >= 50) stack = `\n    ${e.stack.split('\n').slice(1).map((l) => l.trim()).join('\n    ')}`;
  }
  return parts.filter((p) => p !== '').join(' ') + stack;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** A field value on one line: bare when it has no spaces or quotes, else JSON. */
function show(v: unknown): string {
  if (typeof v === 'string' && v !== '' && !/[\s"=]/.test(v)) return v;
  return JSON.stringify(v) ?? String(v);
}
