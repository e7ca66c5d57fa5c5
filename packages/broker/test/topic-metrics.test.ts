// BrokerTopicMetrics (src/metrics.ts): per-topic counts rendered under Kafka's names, and bounded
// under topic churn on a node that is never scraped.
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '@runnel/common';
import { BrokerTopicMetrics } from '../src/metrics.ts';

describe('BrokerTopicMetrics', () => {
  it('renders each topic\'s counts and drops deleted topics when scraped', async () => {
    const live = new Set(['a', 'b']);
    const m = new BrokerTopicMetrics((t) => live.has(t));
    m.topic('a').bytesIn += 100;
    m.topic('a').messagesIn += 3;
    m.topic('b').failedFetch++;
    const registry = createMetricsRegistry();
    m.register(registry);
    const text = await registry.metrics();
    expect(text).toContain('kafka_server_brokertopicmetrics_bytesin_total{topic="a"} 100');
    expect(text).toContain('kafka_server_brokertopicmetrics_messagesin_total{topic="a"} 3');
    expect(text).toContain('kafka_server_brokertopicmetrics_failedfetchrequests_total{topic="b"} 1');
    live.delete('a');
    expect(await registry.metrics()).not.toContain('topic="a"');
  });

  it('keeps only live topics (and a bounded slack) under topic churn, scraped or not', () => {
    const live = new Set<string>();
    const m = new BrokerTopicMetrics((t) => live.has(t));
    for (let i = 0; i < 10_000; i++) {
      live.add(`t${i}`);
      m.topic(`t${i}`).bytesIn++;
      live.delete(`t${i}`);
    }
    let kept = 0;
    m.prune(() => { kept++; return true; });
    expect(kept).toBeLessThanOrEqual(64);
  });
});
