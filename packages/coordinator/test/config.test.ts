import { resolveConfig } from '@runnel/common';
import { describe, expect, it } from 'vitest';
import { defaultGroupCoordinatorConfig, groupCoordinatorConfigFrom } from '../src/index.ts';

describe('groupCoordinatorConfigFrom', () => {
  it('reads the Kafka-named group settings from a broker configuration', () => {
    const { config } = resolveConfig({ overrides: new Map([['group.initial.rebalance.delay.ms', '0'], ['offsets.topic.num.partitions', '7']]) });
    const c = groupCoordinatorConfigFrom(config);
    expect(c['group.initial.rebalance.delay.ms']).toBe(0);
    expect(c['offsets.topic.num.partitions']).toBe(7);
    expect(c['group.min.session.timeout.ms']).toBe(defaultGroupCoordinatorConfig['group.min.session.timeout.ms']);
    // Keys the broker table does not define are left to the coordinator's defaults.
    // Numbers, and the one list (the KIP-848 server assignors).
    for (const [k, v] of Object.entries(c)) expect(typeof v, k).toBe(k === 'group.consumer.assignors' ? 'object' : 'number');
    expect(c['group.consumer.assignors']).toEqual(['uniform', 'range']);
    expect(c['group.consumer.session.timeout.ms']).toBe(45_000);
  });

  it('takes the KIP-848 assignors in the order given and refuses names it does not have', () => {
    const { config } = resolveConfig({ overrides: new Map([['group.consumer.assignors', 'range,uniform']]) });
    expect(groupCoordinatorConfigFrom(config)['group.consumer.assignors']).toEqual(['range', 'uniform']);
    expect(() => resolveConfig({ overrides: new Map([['group.consumer.assignors', 'sticky']]) })).toThrow(/group.consumer.assignors/);
  });
});
