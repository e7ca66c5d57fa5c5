import { readFileSync } from 'node:fs';
import { ConfigError, envToConfig, parseProperties, resolveConfig, type ResolvedConfig } from '@runnel/common';

export interface ConfigArgs {
  /** `--config FILE`: a server.properties-style file. */
  config?: string;
  /** `--set key=value`, repeatable. */
  set?: string[];
}

/**
 * Resolves the broker configuration from the three places a user can put it:
 * `--set` beats `KAFKA_*` environment variables, which beat the properties file, which beats
 * Kafka's defaults. Throws a ConfigError naming the key when a value is bad.
 */
export function loadConfig(args: ConfigArgs, env: NodeJS.ProcessEnv): ResolvedConfig {
  let file: Map<string, string> | undefined;
  if (args.config !== undefined) {
    let text: string;
    try {
      text = readFileSync(args.config, 'utf8');
    } catch (err) {
      throw new ConfigError('MISSING', '--config', `--config: cannot read ${args.config}: ${(err as Error).message}`);
    }
    file = parseProperties(text);
  }
  const overrides = new Map<string, string>();
  for (const pair of args.set ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError('INVALID_VALUE', '--set', `--set ${pair}: expected key=value`);
    overrides.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
  }
  return resolveConfig({ file, env: envToConfig(env), overrides });
}
