import { describe, expect, it } from 'vitest';
import { createLogger, prettyLogLine, suggestConfigKey, unknownKeyWarning } from '../src/index.ts';

describe('prettyLogLine', () => {
  const time = new Date(2026, 11, 7, 13, 4, 5, 123).getTime(); // local time, as the line shows it

  it('renders a pino record as time, level, name, message and key=value fields', () => {
    const line = JSON.stringify({ level: 30, time, name: 'runnel', listener: 'PLAINTEXT://127.0.0.1:9092', logDirs: ['/tmp/a b'], startupMs: 529, msg: 'runnel is ready' });
    expect(prettyLogLine(line)).toBe('13:04:05.123 INFO  runnel: runnel is ready listener=PLAINTEXT://127.0.0.1:9092 logDirs=["/tmp/a b"] startupMs=529');
  });

  it('shows an error message, and its stack from level error up', () => {
    const err = { type: 'Error', message: 'disk full', stack: 'Error: disk full\n    at write (file.ts:1:1)' };
    expect(prettyLogLine(JSON.stringify({ level: 40, time, name: 'n', err, msg: 'retrying' }))).toBe('13:04:05.123 WARN  n: retrying err="disk full"');
    expect(prettyLogLine(JSON.stringify({ level: 50, time, name: 'n', err, msg: 'failed' }))).toBe('13:04:05.123 ERROR n: failed err="disk full"\n    at write (file.ts:1:1)');
  });

  it('returns anything that is not a pino record unchanged (Redis lines, plain errors)', () => {
    for (const line of ['12:M 07 Dec 2026 13:03:21.717 * Server initialized', 'runnel: cannot start: port in use', '{"no":"level"}', 'null', '']) {
      expect(prettyLogLine(line)).toBe(line);
    }
  });

  it('refuses an unknown level by name', () => {
    expect(() => createLogger({ name: 'x', level: 'verbose' })).toThrow(/unknown log level "verbose" \(expected one of fatal, error, warn, info, debug, trace, silent\)/);
  });
});

describe('unknown configuration keys', () => {
  it('suggest the key a typo resembles, and nothing for keys that resemble none', () => {
    expect(suggestConfigKey('num.partiton')).toBe('num.partitions');
    expect(suggestConfigKey('NUM_PARTITIONS')).toBe('num.partitions');
    expect(suggestConfigKey('auto.create.topic.enable')).toBe('auto.create.topics.enable');
    expect(suggestConfigKey('retention.ms')).toBe('log.retention.ms'); // the topic-level name
    expect(suggestConfigKey('zookeeper.connect')).toBeUndefined();
    expect(suggestConfigKey('foo')).toBeUndefined();
    expect(unknownKeyWarning('listners')).toBe('unknown configuration key listners ignored (did you mean listeners?)');
    // A Kafka key Runnel does not implement and that resembles none of its own (ssl.keystore.location
    // was one until the TLS listeners made it a known key).
    expect(unknownKeyWarning('zookeeper.connect')).toBe('unknown configuration key zookeeper.connect ignored');
  });
});
