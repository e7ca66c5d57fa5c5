import { ConfigError, LOG_LEVELS, createLogger, isLogLevel, unknownKeyWarning, type LogFormat, type Logger } from '@runnel/common';

/**
 * How the node commands log, from the environment:
 * - `RUNNEL_LOG_LEVEL`: fatal, error, warn, info (default), debug, trace or silent.
 * - `RUNNEL_LOG_FORMAT`: `json` (one JSON object per line) or `pretty` (one readable line per
 *   record); unset, it is `pretty` when stderr (where logs go) is a terminal and `json` otherwise,
 *   so a person at a terminal reads lines and a supervisor or a pipe gets JSON.
 * A bad value is a ConfigError naming the variable (one line, exit 2).
 */
export function logSettings(env: NodeJS.ProcessEnv): { level: string; format: LogFormat } {
  const level = env.RUNNEL_LOG_LEVEL?.trim().toLowerCase() || 'info';
  if (!isLogLevel(level)) {
    throw new ConfigError('INVALID_VALUE', 'RUNNEL_LOG_LEVEL', `RUNNEL_LOG_LEVEL=${env.RUNNEL_LOG_LEVEL}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const format = env.RUNNEL_LOG_FORMAT?.trim().toLowerCase() || (process.stderr.isTTY ? 'pretty' : 'json');
  if (format !== 'json' && format !== 'pretty') {
    throw new ConfigError('INVALID_VALUE', 'RUNNEL_LOG_FORMAT', `RUNNEL_LOG_FORMAT=${env.RUNNEL_LOG_FORMAT}: expected json or pretty`);
  }
  return { level, format };
}

/** The logger of a node command (`start`, `controller`, `broker`, `coordinator`). */
export function cliLogger(name: string, env: NodeJS.ProcessEnv): Logger {
  return createLogger({ name, ...logSettings(env) });
}

/** One warning line per configuration key Runnel does not know (ignored, as Kafka does), with the known key it resembles. */
export function warnUnknownKeys(log: Logger, unknown: string[]): void {
  for (const key of unknown) log.warn(unknownKeyWarning(key));
}
