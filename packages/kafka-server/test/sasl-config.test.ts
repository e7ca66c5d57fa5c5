import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '@runnel/common';
import { parseBootstrapScramUsers, parseJaasUsers, saslOptions } from '../src/index.ts';

describe('JAAS config (PLAIN users)', () => {
  it('reads user_<name>="<password>" options as Kafka\'s PlainLoginModule, quotes and escapes included', () => {
    const users = parseJaasUsers('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a" user_admin="a" user_bob="p;w \\"q\\"";');
    expect([...users]).toEqual([['admin', 'a'], ['bob', 'p;w "q"']]);
  });

  it.each([
    ['no login module', '', /no login module/],
    ['a bad flag', 'PlainLoginModule mandatory user_a="b";', /mandatory is not a login module flag/],
    ['no final semicolon', 'PlainLoginModule required user_a="b"', /missing ";"/],
    ['an option without a value', 'PlainLoginModule required user_a;', /expected key="value"/],
    ['an unclosed quote', 'PlainLoginModule required user_a="s3cret;', /cannot parse at character 34/],
  ])('refuses %s with one line, never echoing a password', (_what, text, message) => {
    expect(() => parseJaasUsers(text)).toThrow(message);
    expect(() => parseJaasUsers(text)).not.toThrow(/s3cret/);
  });
});

describe('runnel.sasl.scram.bootstrap.users', () => {
  it('reads kafka-storage --add-scram entries separated by spaces or semicolons', () => {
    expect(parseBootstrapScramUsers('SCRAM-SHA-256=[name=alice,password=a1] ; SCRAM-SHA-512=[name=bob,password="x,]y",iterations=8192]')).toEqual([
      { mechanism: 'SCRAM-SHA-256', name: 'alice', password: 'a1', iterations: 4096 },
      { mechanism: 'SCRAM-SHA-512', name: 'bob', password: 'x,]y', iterations: 8192 },
    ]);
  });

  it.each([
    ['an unknown mechanism', 'PLAIN=[name=a,password=b]', /PLAIN is not SCRAM-SHA-256 or SCRAM-SHA-512/],
    ['no password', 'SCRAM-SHA-256=[name=a]', /the SCRAM-SHA-256 entry of a has no password/],
    ['too few iterations', 'SCRAM-SHA-256=[name=a,password=b,iterations=100]', /iterations of a must be an integer from 4096 to 16384/],
    ['garbage', 'alice:secret', /cannot parse at character 1/],
  ])('refuses %s with a ConfigError naming the key, never echoing a password', (_what, text, message) => {
    let err: unknown;
    try {
      parseBootstrapScramUsers(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).key).toBe('runnel.sasl.scram.bootstrap.users');
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('password=b');
  });
});

describe('runnel.sasl.scram.bootstrap.users errors', () => {
  it.each([
    ['an unclosed quote', 'X=[password="p,s3cr3t', /cannot parse at character 1/],
    ['a comma in an unquoted password', 'SCRAM-SHA-256=[name=a,password=p,s3cr3t]', /not key=value \(quote a password that holds a comma\)/],
  ])('say where, never what, for %s (the text is a password)', (_what, text, message) => {
    expect(() => parseBootstrapScramUsers(text)).toThrow(message);
    expect(() => parseBootstrapScramUsers(text)).not.toThrow(/s3cr3t/);
  });
});

describe('saslOptions', () => {
  const config = (values: Record<string, string>) => resolveConfig({ overrides: new Map(Object.entries(values)) }).config;

  it('is undefined without a SASL listener, and per listener with one', () => {
    expect(saslOptions(config({}))).toBeUndefined();
    const o = saslOptions(config({
      'listeners': 'PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0',
      'listener.name.sasl_plaintext.sasl.enabled.mechanisms': 'SCRAM-SHA-512',
      'connections.max.reauth.ms': '60000',
    }))!;
    expect(o.mechanisms('SASL_PLAINTEXT')).toEqual(['SCRAM-SHA-512']);
    expect(o.maxReceiveSize).toBe(524288);
    expect(o.failedAuthenticationDelayMs).toBe(100);
    expect(o.reauthMs).toBe(60000);
  });

  it('refuses PLAIN on a listener without its JAAS config, naming the key', () => {
    expect(() => saslOptions(config({ 'listeners': 'PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0' })))
      .toThrow(/^listener\.name\.sasl_plaintext\.plain\.sasl\.jaas\.config: listener SASL_PLAINTEXT enables PLAIN/);
  });

  it('refuses a mechanism Runnel does not have (GSSAPI) when the config is read', () => {
    expect(() => config({ 'sasl.enabled.mechanisms': 'GSSAPI' })).toThrow(/sasl\.enabled\.mechanisms/);
  });
});
