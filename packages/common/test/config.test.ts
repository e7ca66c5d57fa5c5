import { describe, expect, it } from 'vitest';
import {
  BROKER_CONFIGS, ConfigError, RunnelError, TOPIC_CONFIGS, configToEnvName, envNameToConfig, envToConfig, parseListeners,
  isDynamicBrokerConfig, parseProperties, resolveConfig, topicConfig,
} from '../src/index.ts';

const map = (o: Record<string, string>) => new Map(Object.entries(o));

/** Runs fn, expects a ConfigError, returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect(e).toBeInstanceOf(RunnelError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('resolves every default in the table to its typed value', () => {
    const { config, sources, unknown } = resolveConfig();
    expect(unknown).toEqual([]);
    expect(config.get('num.partitions')).toBe(1);
    expect(config.get('default.replication.factor')).toBe(1);
    expect(config.get('auto.create.topics.enable')).toBe(true);
    expect(config.get('delete.topic.enable')).toBe(true);
    expect(config.get('socket.request.max.bytes')).toBe(104857600);
    expect(config.get('connections.max.idle.ms')).toBe(600000);
    expect(config.get('log.retention.check.interval.ms')).toBe(300000);
    expect(config.get('offsets.topic.num.partitions')).toBe(50);
    expect(config.get('offsets.retention.minutes')).toBe(10080);
    expect(config.get('group.initial.rebalance.delay.ms')).toBe(3000);
    expect(config.get('group.min.session.timeout.ms')).toBe(6000);
    expect(config.get('group.max.session.timeout.ms')).toBe(1800000);
    expect(config.get('log.segment.bytes')).toBe(1073741824);
    expect(config.get('message.max.bytes')).toBe(1048588);
    expect(config.get('compression.type')).toBe('producer');
    expect(config.get('log.cleanup.policy')).toEqual(['delete']);
    expect(config.get('log.retention.ms')).toBeNull();
    expect(config.get('runnel.durable')).toBe(false);
    expect(config.get('runnel.group.commit.ms')).toBe(0);
    expect(config.get('log.cleaner.min.cleanable.ratio')).toBe(0.5);
    // Runnel's single-node defaults differ from Kafka's on purpose (see config.ts).
    expect(config.listeners).toEqual([{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9092 }]);
    expect(config.advertisedListeners).toEqual(config.listeners);
    expect(config.logDirs).toEqual(['./data']);
    expect(config.nodeId).toBe(1);
    expect(config.retentionMs).toBe(168 * 3_600_000);
    expect(config.segmentMs).toBe(168 * 3_600_000);
    expect(sources.get('num.partitions')).toBe('DEFAULT_CONFIG');
    expect(sources.size).toBe(Object.keys(BROKER_CONFIGS).length);
  });

  it('has a documentation line and a parseable default for every key', () => {
    for (const [name, d] of Object.entries(BROKER_CONFIGS)) {
      expect(d.doc.length, name).toBeGreaterThan(10);
      expect(name).toMatch(/^[a-z0-9.-]+$/);
    }
  });

  it('maps broker keys to Kafka topic names', () => {
    expect([...TOPIC_CONFIGS.keys()].sort()).toEqual(expect.arrayContaining(['cleanup.policy', 'compression.type', 'delete.retention.ms',
      'flush.messages', 'flush.ms', 'index.interval.bytes', 'max.message.bytes', 'message.timestamp.type', 'min.insync.replicas',
      'retention.bytes', 'retention.ms', 'segment.bytes', 'segment.index.bytes', 'segment.ms', 'unclean.leader.election.enable']));
    expect(TOPIC_CONFIGS.get('retention.ms')!.brokerKeys.map((b) => b.key)).toEqual(['log.retention.ms', 'log.retention.minutes', 'log.retention.hours']);
    expect(TOPIC_CONFIGS.get('segment.index.bytes')!.brokerKeys.map((b) => b.key)).toEqual(['log.index.size.max.bytes']);
  });
});

describe('precedence', () => {
  it('overrides > env > file > default, with sources and origins', () => {
    const { config, sources } = resolveConfig({
      file: map({ 'num.partitions': '2', 'log.dirs': '/f', 'log.segment.bytes': '1000' }),
      env: map({ 'num.partitions': '3', 'log.dirs': '/e' }),
      overrides: map({ 'num.partitions': '4' }),
    });
    expect(config.get('num.partitions')).toBe(4);
    expect(config.origin('num.partitions')).toBe('override');
    expect(config.get('log.dirs')).toEqual(['/e']);
    expect(config.origin('log.dirs')).toBe('env');
    expect(config.get('log.segment.bytes')).toBe(1000);
    expect(config.origin('log.segment.bytes')).toBe('file');
    expect(config.origin('min.insync.replicas')).toBe('default');
    expect(sources.get('num.partitions')).toBe('STATIC_BROKER_CONFIG');
    expect(sources.get('log.segment.bytes')).toBe('STATIC_BROKER_CONFIG');
    expect(sources.get('min.insync.replicas')).toBe('DEFAULT_CONFIG');
    expect(config.summary()).toEqual(['log.dirs=/e (env)', 'log.segment.bytes=1000 (file)', 'num.partitions=4 (override)']);
  });

  it('retention: ms beats minutes beats hours, and -1 stays forever', () => {
    expect(resolveConfig({ file: map({ 'log.retention.hours': '1' }) }).config.retentionMs).toBe(3_600_000);
    expect(resolveConfig({ file: map({ 'log.retention.hours': '1', 'log.retention.minutes': '2' }) }).config.retentionMs).toBe(120_000);
    expect(resolveConfig({ file: map({ 'log.retention.hours': '1', 'log.retention.minutes': '2', 'log.retention.ms': '5' }) }).config.retentionMs).toBe(5);
    expect(resolveConfig({ file: map({ 'log.retention.minutes': '-1' }) }).config.retentionMs).toBe(-1);
    expect(resolveConfig({ file: map({ 'log.roll.ms': '1234' }) }).config.segmentMs).toBe(1234);
  });

  it('log.dirs wins over log.dir, and broker.id stands in for node.id', () => {
    expect(resolveConfig({ file: map({ 'log.dir': '/one' }) }).config.logDirs).toEqual(['/one']);
    expect(resolveConfig({ file: map({ 'log.dir': '/one', 'log.dirs': '/a,/b' }) }).config.logDirs).toEqual(['/a', '/b']);
    expect(resolveConfig({ file: map({ 'broker.id': '7' }) }).config.nodeId).toBe(7);
    expect(resolveConfig({ file: map({ 'broker.id': '7', 'node.id': '7' }) }).config.nodeId).toBe(7);
    const e = configError(() => resolveConfig({ file: map({ 'broker.id': '7', 'node.id': '8' }) }));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toContain('broker.id');
  });

  it('returns unknown keys instead of failing', () => {
    const { config, unknown } = resolveConfig({ file: map({ 'no.such.key': 'x', 'num.io.threads': '16' }), env: map({ 'another.one': '1' }) });
    expect(unknown).toEqual(['another.one', 'no.such.key']);
    // Kafka keys Runnel accepts without acting on are known, not unknown.
    expect(config.get('num.io.threads')).toBe(16);
  });

  it('require() names the key and how to set it when a value is missing', () => {
    const { config } = resolveConfig();
    const e = configError(() => config.require('cluster.id'));
    expect(e.code).toBe('MISSING');
    expect(e.message).toContain('cluster.id');
    expect(e.message).toContain('KAFKA_CLUSTER_ID');
    expect(resolveConfig({ env: envToConfig({ CLUSTER_ID: 'abc' }) }).config.require('cluster.id')).toBe('abc');
  });

  it('describe() lists every key with its source and hides passwords', () => {
    const { config } = resolveConfig({ file: map({ 'ssl.keystore.password': 'secret', 'num.partitions': '3', 'runnel.redis.url': 'redis://:secret@redis:6379' }) });
    const entries = config.describe();
    expect(entries.find((e) => e.name === 'ssl.keystore.password')).toMatchObject({ value: null, sensitive: true, source: 'STATIC_BROKER_CONFIG' });
    // The Redis URL may carry Redis' password.
    expect(entries.find((e) => e.name === 'runnel.redis.url')).toMatchObject({ value: null, sensitive: true });
    expect(config.get('runnel.redis.url')).toBe('redis://:secret@redis:6379');
    expect(entries.find((e) => e.name === 'num.partitions')).toMatchObject({ value: '3', type: 'int', source: 'STATIC_BROKER_CONFIG' });
    expect(config.summary().join('\n')).not.toContain('secret');
  });
});

describe('environment (apache/kafka image convention)', () => {
  it('decodes the documented examples', () => {
    const m = envToConfig({
      KAFKA_LOG_DIRS: '/var/lib/kafka',
      KAFKA_NUM_PARTITIONS: '3',
      KAFKA_LOG_RETENTION_MS: '1000',
      KAFKA_ADVERTISED_LISTENERS: 'PLAINTEXT://broker:9092',
      KAFKA_HEAP_OPTS: '-Xmx1G',
      KAFKA_OPTS: '-Dx',
      PATH: '/usr/bin',
      KAFKA_UNSET: undefined,
      CLUSTER_ID: 'MkU3OEVBNTcwNTJENDM2Qk',
    });
    expect(Object.fromEntries(m)).toEqual({
      'log.dirs': '/var/lib/kafka',
      'num.partitions': '3',
      'log.retention.ms': '1000',
      'advertised.listeners': 'PLAINTEXT://broker:9092',
      'cluster.id': 'MkU3OEVBNTcwNTJENDM2Qk',
    });
  });

  it('decodes ___ to -, __ to _ and _ to . in one pass', () => {
    expect(envNameToConfig('LISTENER_NAME_INTERNAL_SSL_KEYSTORE__TYPE')).toBe('listener.name.internal.ssl.keystore_type');
    expect(envNameToConfig('MY___DASHED_KEY')).toBe('my-dashed.key');
    expect(envNameToConfig('A__B___C_D')).toBe('a_b-c.d');
    // The trap of sequential replaceAll calls: `__` must not become `.` afterwards.
    expect(envNameToConfig('FOO__BAR')).toBe('foo_bar');
    for (const key of ['log.dirs', 'a_b-c.d', 'runnel.group.commit.ms', 'x-y_z']) {
      expect(envNameToConfig(configToEnvName(key).slice('KAFKA_'.length))).toBe(key);
    }
  });

  it('feeds resolveConfig', () => {
    const { config } = resolveConfig({ env: envToConfig({ KAFKA_NUM_PARTITIONS: '6', KAFKA_RUNNEL_DURABLE: 'true' }) });
    expect(config.get('num.partitions')).toBe(6);
    expect(config.get('runnel.durable')).toBe(true);
    expect(config.origin('num.partitions')).toBe('env');
  });
});

describe('parseProperties', () => {
  it('handles comments, separators, whitespace and later-wins', () => {
    const p = parseProperties([
      '# a comment',
      '! another comment',
      '',
      '   num.partitions = 3   ',
      'log.dirs:/data/a,/data/b',
      'key\tvalue with spaces  ',
      'empty=',
      'justkey',
      'num.partitions=4',
    ].join('\n'));
    expect(Object.fromEntries(p)).toEqual({
      'num.partitions': '4',
      'log.dirs': '/data/a,/data/b',
      key: 'value with spaces',
      empty: '',
      justkey: '',
    });
  });

  it('joins continued lines and decodes escapes', () => {
    const p = parseProperties([
      'listeners=PLAINTEXT://a:1,\\',
      '          PLAINTEXT2://b:2',
      'with\\=equals=v',
      'with\\:colon:v2',
      'tabbed=a\\tb',
      'unicode=caf\\u00e9',
      'backslash=c:\\\\dir',
      'odd=x\\\\\\',
      '  y',
      'even=x\\\\',
      'next=1',
    ].join('\r\n'));
    expect(p.get('listeners')).toBe('PLAINTEXT://a:1,PLAINTEXT2://b:2');
    expect(p.get('with=equals')).toBe('v');
    expect(p.get('with:colon')).toBe('v2');
    expect(p.get('tabbed')).toBe('a\tb');
    expect(p.get('unicode')).toBe('café');
    expect(p.get('backslash')).toBe('c:\\dir');
    expect(p.get('odd')).toBe('x\\y');
    expect(p.get('even')).toBe('x\\');
    expect(p.get('next')).toBe('1');
  });

  it('does not continue a comment line', () => {
    expect(Object.fromEntries(parseProperties('# comment \\\na=1'))).toEqual({ a: '1' });
  });
});

describe('bad values name the key, the value and what is allowed', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['num.partitions', 'abc', /^num\.partitions: "abc" is not an integer \(expected an int >= 1\)$/],
    ['num.partitions', '0', /^num\.partitions: "0" is out of range \(expected an int >= 1\)$/],
    ['num.partitions', '3000000000', /^num\.partitions: "3000000000" does not fit in an int/],
    ['log.retention.ms', '1.5', /^log\.retention\.ms: "1\.5" is not an integer \(expected a long >= -1\)$/],
    ['log.retention.bytes', '99999999999999999999', /^log\.retention\.bytes: .* does not fit in a long/],
    ['log.cleaner.min.cleanable.ratio', '2', /^log\.cleaner\.min\.cleanable\.ratio: "2" is out of range \(expected a double in \[0, 1\]\)$/],
    ['log.cleaner.min.cleanable.ratio', 'half', /is not a number/],
    ['auto.create.topics.enable', 'yes', /^auto\.create\.topics\.enable: "yes" is not a boolean \(expected true or false\)$/],
    ['compression.type', 'brotli', /^compression\.type: "brotli" is not allowed \(expected one of uncompressed, gzip, snappy, lz4, zstd, producer\)$/],
    ['log.cleanup.policy', 'compact,shred', /^log\.cleanup\.policy: "compact,shred" has "shred" \(expected a comma-separated list of delete, compact\)$/],
    ['log.cleanup.policy', '', /is empty/],
    ['log.message.timestamp.type', 'Whenever', /expected one of CreateTime, LogAppendTime/],
    ['listeners', '9092', /^listeners: "9092" is not a listener list/],
    ['listeners', 'PLAINTEXT://h:99999', /port 99999/],
    ['advertised.listeners', 'PLAINTEXT://0.0.0.0:9092', /^advertised\.listeners: .* advertises 0\.0\.0\.0/],
    ['log.dir', '  ', /^log\.dir: .* is empty/],
    ['runnel.group.commit.ms', '5000', /expected an int in \[0, 1000\]/],
  ];
  for (const [key, value, message] of cases) {
    it(`${key}=${JSON.stringify(value)}`, () => {
      const e = configError(() => resolveConfig({ overrides: map({ [key]: value }) }));
      expect(e.code).toBe('INVALID_VALUE');
      expect(e.key).toBe(key);
      expect(e.value).toBe(value);
      expect(e.message).toMatch(message);
    });
  }

  it('accepts the good spellings', () => {
    const { config } = resolveConfig({ overrides: map({
      'compression.type': 'ZSTD', 'log.cleanup.policy': 'compact, delete', 'auto.create.topics.enable': 'FALSE', 'num.partitions': '+3',
      'listeners': 'PLAINTEXT://:9092,INTERNAL://[::1]:9093', 'advertised.listeners': 'PLAINTEXT://localhost:9092',
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT',
    }) });
    expect(config.get('compression.type')).toBe('zstd');
    expect(config.get('log.cleanup.policy')).toEqual(['compact', 'delete']);
    expect(config.get('auto.create.topics.enable')).toBe(false);
    expect(config.get('num.partitions')).toBe(3);
    expect(config.listeners).toEqual([{ name: 'PLAINTEXT', host: '', port: 9092 }, { name: 'INTERNAL', host: '::1', port: 9093 }]);
  });

  it('cross-key rules are CONFLICT errors', () => {
    const e = configError(() => resolveConfig({ overrides: map({ 'advertised.listeners': 'EXTERNAL://h:1' }) }));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toMatch(/^advertised\.listeners: listener EXTERNAL is not in listeners/);
    const g = configError(() => resolveConfig({ overrides: map({ 'group.min.session.timeout.ms': '9', 'group.max.session.timeout.ms': '8' }) }));
    expect(g.code).toBe('CONFLICT');
  });
});

describe('parseListeners', () => {
  it('parses names, hosts, IPv6 and ports', () => {
    expect(parseListeners('PLAINTEXT://127.0.0.1:9092, internal://broker-1:19092')).toEqual([
      { name: 'PLAINTEXT', host: '127.0.0.1', port: 9092 },
      { name: 'INTERNAL', host: 'broker-1', port: 19092 },
    ]);
    expect(parseListeners('PLAINTEXT://[fe80::1]:0')).toEqual([{ name: 'PLAINTEXT', host: 'fe80::1', port: 0 }]);
  });
  it('rejects malformed lists', () => {
    for (const bad of ['', 'PLAINTEXT://h', 'h:9092', 'PLAINTEXT://h:1,PLAINTEXT://g:2', 'PLAIN TEXT://h:1']) {
      expect(() => parseListeners(bad), bad).toThrow(ConfigError);
    }
  });
});

describe('topicConfig', () => {
  it('inherits broker values with their sources, and overrides win as DYNAMIC_TOPIC_CONFIG', () => {
    const { config } = resolveConfig({ file: map({ 'log.retention.hours': '24', 'log.segment.bytes': '1048576' }) });
    const t = topicConfig(config, { 'cleanup.policy': 'compact', 'max.message.bytes': '2000000' });
    expect(t.get('retention.ms')).toBe(86_400_000);
    expect(t.source('retention.ms')).toBe('STATIC_BROKER_CONFIG');
    expect(t.get('segment.bytes')).toBe(1048576);
    expect(t.get('min.insync.replicas')).toBe(1);
    expect(t.source('min.insync.replicas')).toBe('DEFAULT_CONFIG');
    expect(t.get('cleanup.policy')).toEqual(['compact']);
    expect(t.source('cleanup.policy')).toBe('DYNAMIC_TOPIC_CONFIG');
    expect(t.get('max.message.bytes')).toBe(2000000);
    expect(t.get('segment.ms')).toBe(604_800_000);
    expect(t.get('segment.index.bytes')).toBe(10485760);
    expect(t.get('flush.ms')).toBe(Number('9223372036854775807'));
    expect(t.source('flush.ms')).toBe('DEFAULT_CONFIG');
    expect(t.overrides()).toEqual({ 'cleanup.policy': 'compact', 'max.message.bytes': '2000000' });
  });

  it('a set broker key beats a defaulted one with a smaller unit', () => {
    const { config } = resolveConfig({ file: map({ 'log.retention.minutes': '10' }) });
    expect(topicConfig(config).get('retention.ms')).toBe(600_000);
  });

  it('describes entries with synonyms for DescribeConfigs', () => {
    const { config } = resolveConfig({ file: map({ 'log.retention.hours': '24' }) });
    const entry = topicConfig(config, { 'retention.ms': '1000' }).describe().find((e) => e.name === 'retention.ms')!;
    expect(entry).toMatchObject({ value: '1000', source: 'DYNAMIC_TOPIC_CONFIG', type: 'long' });
    // Kafka lists the broker synonyms from the first entry of the key in the topic's own unit
    // (log.retention.ms), so an hours-only setting is not among them.
    expect(entry.synonyms).toEqual([{ name: 'retention.ms', value: '1000', source: 'DYNAMIC_TOPIC_CONFIG' }]);
    const segment = topicConfig(config).describe().find((e) => e.name === 'segment.bytes')!;
    expect(segment.synonyms).toEqual([{ name: 'log.segment.bytes', value: '1073741824', source: 'DEFAULT_CONFIG' }]);
  });

  it('dynamic broker configs: a node\'s value over the cluster default over the static value, with Kafka\'s synonyms', () => {
    const { config } = resolveConfig({ file: map({ 'log.retention.ms': '5000', 'message.max.bytes': '2000' }) });
    const dynamic = new Map<string, Record<string, string>>([
      ['', { 'message.max.bytes': '3000', 'log.retention.hours': '1', 'log.dirs': '/elsewhere', 'log.segment.bytes': 'oops' }],
      ['1', { 'message.max.bytes': '4000' }],
      ['2', { 'message.max.bytes': '9000' }],
    ]);
    const node = config.withDynamic(dynamic, 1);
    expect(config.withDynamic(new Map(dynamic), 1)).toBe(node); // same entries, same object
    expect(node.get('message.max.bytes')).toBe(4000);
    expect(node.source('message.max.bytes')).toBe('DYNAMIC_BROKER_CONFIG');
    expect(node.synonyms('message.max.bytes')).toEqual([
      { name: 'message.max.bytes', value: '4000', source: 'DYNAMIC_BROKER_CONFIG' },
      { name: 'message.max.bytes', value: '3000', source: 'DYNAMIC_DEFAULT_BROKER_CONFIG' },
      { name: 'message.max.bytes', value: '2000', source: 'STATIC_BROKER_CONFIG' },
      { name: 'message.max.bytes', value: '1048588', source: 'DEFAULT_CONFIG' },
    ]);
    // Not dynamic (log.dirs) or not parseable: skipped.
    expect(node.get('log.dirs')).toBeNull();
    expect(node.get('log.segment.bytes')).toBe(1073741824);
    // log.retention.ms (static) still beats log.retention.hours (dynamic), as in Kafka.
    expect(topicConfig(node).get('retention.ms')).toBe(5000);
    expect(topicConfig(node).get('max.message.bytes')).toBe(4000);
    expect(topicConfig(node, { 'max.message.bytes': '100' }).get('max.message.bytes')).toBe(100);
    const cluster = config.withDynamic(dynamic, null);
    expect(cluster.get('message.max.bytes')).toBe(3000);
    expect(cluster.source('message.max.bytes')).toBe('DYNAMIC_DEFAULT_BROKER_CONFIG');
    expect(config.withDynamic(undefined, 1).source('message.max.bytes')).toBe('STATIC_BROKER_CONFIG');
  });

  it('lists which broker configs are dynamic, and leaves out the configs of absent subsystems', () => {
    expect(['log.retention.ms', 'log.segment.bytes', 'message.max.bytes', 'compression.type', 'leader.replication.throttled.rate', 'unclean.leader.election.enable', 'max.connections'].every(isDynamicBrokerConfig)).toBe(true);
    expect(['log.dirs', 'listeners', 'node.id', 'no.such.key'].some(isDynamicBrokerConfig)).toBe(false);
    const names = resolveConfig({ file: map({ 'controller.quorum.voters': '1@localhost:9093' }) }).config.describe().map((e) => e.name);
    expect(names).not.toContain('controller.quorum.voters');
    expect(names).toContain('transaction.state.log.min.isr');
    expect(names).toContain('log.retention.ms');
  });

  it('rejects unknown topic configs and bad override values, naming the key', () => {
    const { config } = resolveConfig();
    const u = configError(() => topicConfig(config, { 'retention.msx': '1' }));
    expect(u.code).toBe('UNKNOWN_KEY');
    expect(u.message).toMatch(/^retention\.msx: unknown topic config/);
    const v = configError(() => topicConfig(config, { 'cleanup.policy': 'forever' }));
    expect(v.code).toBe('INVALID_VALUE');
    expect(v.message).toBe('cleanup.policy: "forever" has "forever" (expected a comma-separated list of delete, compact)');
    const r = configError(() => topicConfig(config, { 'retention.ms': '-2' }));
    expect(r.message).toBe('retention.ms: "-2" is out of range (expected a long >= -1)');
  });
});
