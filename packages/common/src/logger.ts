import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The one logger factory. Roles log JSON lines to stderr so that stdout stays free for CLI output;
 * `RUNNEL_LOG_LEVEL` is read by the cli and passed in, never here.
 */
export function createLogger(options: { name: string; level?: string }): Logger {
  return pino({ name: options.name, level: options.level ?? 'info', base: undefined }, pino.destination(2));
}

/** A logger that discards everything, for tests and embedded use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
