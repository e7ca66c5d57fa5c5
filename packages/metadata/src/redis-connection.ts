import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '@runnel/common';
import { MetadataError } from './errors.ts';
import { redactRedisUrl, redisOptionsFromUrl } from './redis-layout.ts';

/** Redis refusing the login (requirepass / ACL user): retrying with the same password cannot help. */
const AUTH_ERROR = /\b(WRONGPASS|NOAUTH)\b|invalid (username-)?password/i;

/**
 * One ioredis connection as this package uses them: it reconnects forever in the background
 * (every 100–1000 ms), but never queues or retries a command, so a caller learns at once that
 * Redis is away instead of a write being sent twice. Errors are logged, at most once per outage.
 */
export function connectRedis(url: string, logger: Logger, what: string, extra: RedisOptions = {}): Redis {
  const redis = new Redis({
    ...redisOptionsFromUrl(url),
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(100 * times, 1_000),
    ...extra,
  });
  let down = false;
  redis.on('error', (err: Error) => {
    if (!down) logger.warn({ err: err.message, connection: what }, 'Redis connection error; reconnecting');
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.info({ connection: what }, 'Redis connection restored');
    down = false;
  });
  return redis;
}

/**
 * Connects and waits until the connection is ready; STORE_UNAVAILABLE (retriable) after `timeoutMs`,
 * or at once (not retriable) when Redis refuses the password. Errors show the URL without its password.
 */
export async function waitReady(redis: Redis, url: string, timeoutMs: number): Promise<void> {
  if (redis.status === 'wait') redis.connect().catch(() => {});
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
    };
    const onReady = () => {
      done();
      resolve();
    };
    const onError = (err: Error) => {
      if (!AUTH_ERROR.test(err.message)) return;
      done();
      reject(new MetadataError('STORE_UNAVAILABLE', `Redis at ${redactRedisUrl(url)} refused the login (${err.message.replace(/\s+/g, ' ').trim()}): check the password in runnel.redis.url`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new MetadataError('STORE_UNAVAILABLE', `Redis at ${redactRedisUrl(url)} did not answer within ${timeoutMs} ms`, { retriable: true }));
    }, timeoutMs);
    redis.once('ready', onReady);
    redis.on('error', onError);
  });
}

/** A Redis failure as a MetadataError: script refusals keep their code, everything else is STORE_UNAVAILABLE. */
export function mapRedisError(err: unknown): MetadataError {
  if (err instanceof MetadataError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const m = /^(STALE_EPOCH|CONFLICT|CLUSTER_ID_MISMATCH|CORRUPT_STATE) (.*)$/s.exec(message);
  if (m) return new MetadataError(m[1] as 'STALE_EPOCH' | 'CONFLICT' | 'CLUSTER_ID_MISMATCH' | 'CORRUPT_STATE', m[2]!.replace(/ script: .*$/s, ''), { retriable: m[1] === 'CONFLICT' });
  return new MetadataError('STORE_UNAVAILABLE', `Redis: ${message}`, { cause: err, retriable: true });
}
