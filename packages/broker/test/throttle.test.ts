// Replication throttling's rules (src/replication/throttle.ts) on real parts: the sampled rate with
// an injected clock, the throttled-replica lists, and ReplicationThrottle reading its rates and
// lists live from a real LocalStore (dynamic broker configs over the static config).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '@runnel/common';
import { LocalStore } from '@runnel/metadata';
import { RateQuota, ReplicationThrottle, throttledPartitions } from '../src/replication/throttle.ts';

describe('RateQuota (Kafka\'s sampled Rate: 11 samples of 1 s)', () => {
  it('counts a fresh window as at least 10 s, so it never allows more than the rate over 10 s', () => {
    const q = new RateQuota();
    q.record(1_000_000, 0);
    // 1 MB in the first instant over the 10 s minimum window: 100 KB/s.
    expect(q.rate(0)).toBe(100_000);
    expect(q.exceeded(200_000, 0)).toBe(false);
    q.record(1_000_001, 500);
    expect(q.exceeded(200_000, 500)).toBe(true);
    // Waiting lowers nothing within the minimum window, but past it the rate is bytes / elapsed.
    expect(q.rate(9_000)).toBe(q.rate(500));
    expect(q.rate(10_500)).toBeCloseTo(2_000_001 / 10.5, 3);
    expect(q.exceeded(200_000, 10_500)).toBe(false);
  });

  it('forgets samples older than the window', () => {
    const q = new RateQuota();
    q.record(5_000_000, 0);
    expect(q.exceeded(200_000, 1_000)).toBe(true);
    expect(q.rate(12_001)).toBe(0);
    expect(q.exceeded(200_000, 12_001)).toBe(false);
  });

  it('tells a held-back fetch how long to wait, at most one sample', () => {
    const q = new RateQuota();
    expect(q.delayMs(100, 0)).toBe(0);
    q.record(1_100, 0); // 110 B/s over 10 s against 100 B/s: 10 % over → 1 s
    expect(q.delayMs(100, 0)).toBe(1_000);
    q.record(0, 0);
    expect(q.delayMs(1_000, 0)).toBe(0);
  });
});

describe('throttledPartitions', () => {
  it('reads partition:brokerId pairs for one broker, or * for all', () => {
    expect(throttledPartitions('0:1,0:2,1:2,3:1', 1)).toEqual(new Set([0, 3]));
    expect(throttledPartitions('0:1, 1:1', 2)).toEqual(new Set());
    expect(throttledPartitions('*', 7)).toBe('all');
    expect(throttledPartitions(undefined, 1)).toEqual(new Set());
    expect(throttledPartitions('', 1)).toEqual(new Set());
  });
});

describe('ReplicationThrottle', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const setup = async (set: Record<string, string> = {}) => {
    dir = await mkdtemp(join(tmpdir(), 'runnel-throttle-'));
    const metadata = LocalStore.create({ path: join(dir, 'meta.json'), nodeId: 1 });
    await metadata.start();
    await metadata.registerBroker({ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null });
    const { config } = resolveConfig({ overrides: new Map(Object.entries(set)) });
    return { metadata, throttle: new ReplicationThrottle({ nodeId: 1, metadata, config }) };
  };

  it('takes the rate from this node\'s dynamic config, else the cluster default, else the static config, live', async () => {
    const { metadata, throttle } = await setup({ 'leader.replication.throttled.rate': '5000' });
    expect(throttle.rate('leader')).toBe(5000);
    expect(throttle.rate('follower')).toBe(Number('9223372036854775807'));
    await metadata.alterBrokerConfigs(null, { 'leader.replication.throttled.rate': '300' });
    expect(throttle.rate('leader')).toBe(300);
    await metadata.alterBrokerConfigs(2, { 'leader.replication.throttled.rate': '7' });
    expect(throttle.rate('leader')).toBe(300);
    await metadata.alterBrokerConfigs(1, { 'leader.replication.throttled.rate': '200', 'follower.replication.throttled.rate': '100' });
    expect([throttle.rate('leader'), throttle.rate('follower')]).toEqual([200, 100]);
    await metadata.alterBrokerConfigs(1, { 'leader.replication.throttled.rate': null });
    expect(throttle.rate('leader')).toBe(300);
    await metadata.stop();
  });

  it('lists partitions per broker from the topic configs, live, and is exceeded only over the quota', async () => {
    const { metadata, throttle } = await setup();
    await metadata.createTopic({ name: 't', partitions: 2, replicationFactor: 1, configs: {} });
    const topic = () => metadata.snapshot().topics.get('t')!;
    expect(throttle.listed('leader', topic(), 0)).toBe(false);
    await metadata.alterTopicConfigs('t', { 'leader.replication.throttled.replicas': '0:1,1:2', 'follower.replication.throttled.replicas': '*' });
    expect(throttle.listed('leader', topic(), 0)).toBe(true);
    expect(throttle.listed('leader', topic(), 1)).toBe(false); // listed for broker 2, not this one
    expect(throttle.listed('follower', topic(), 1)).toBe(true);
    expect(throttle.listed('follower', undefined, 1)).toBe(false);

    await metadata.alterBrokerConfigs(1, { 'leader.replication.throttled.rate': '1000' });
    expect(throttle.exceeded('leader')).toBe(false);
    throttle.record('leader', 10_000); // 1000 B/s over the 10 s minimum window: at the rate, not over it
    expect(throttle.exceeded('leader')).toBe(false);
    throttle.record('leader', 1);
    expect(throttle.exceeded('leader')).toBe(true);
    expect(throttle.exceeded('follower')).toBe(false);
    // Raising the rate lets traffic through at once.
    await metadata.alterBrokerConfigs(1, { 'leader.replication.throttled.rate': '2000' });
    expect(throttle.exceeded('leader')).toBe(false);
    await metadata.stop();
  });

  it('uses replication.quota.window.num samples of replication.quota.window.size.seconds', async () => {
    const { metadata, throttle } = await setup({ 'replication.quota.window.num': '2', 'leader.replication.throttled.rate': '1000' });
    // 1500 bytes over the 1 s minimum of a 2-sample window: 1500 B/s (over 10 s it would be 150).
    throttle.record('leader', 1500);
    expect(throttle.exceeded('leader')).toBe(true);
    await metadata.stop();
  });
});
