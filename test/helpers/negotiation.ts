/**
 * Checks that what confluent-kafka-python (librdkafka) and franz-go sent is what the broker's
 * ApiVersions answer let them send, for the interop tests that run both clients.
 */
import { expect } from 'vitest';
import { ApiKey } from '@runnel/protocol';
import type { ConsumedRecord, FranzAdmin, SentRequests } from './ecosystems.ts';
import { kafkaRequest } from './raw-kafka.ts';

/**
 * The newest version librdkafka 2.16 has of each request these tests make it send (its
 * rd_kafka_ApiVersion_... tables); with a broker that advertises at least as much it sends these.
 */
const LIBRDKAFKA_MAX: Record<string, number> = {
  Produce: 10, Fetch: 16, ListOffsets: 7, Metadata: 13, OffsetCommit: 9, OffsetFetch: 9, FindCoordinator: 2,
  JoinGroup: 5, Heartbeat: 3, LeaveGroup: 1, SyncGroup: 3, DescribeGroups: 5, ListGroups: 5, ApiVersion: 3,
  DescribeConfigs: 1, InitProducerId: 4, ConsumerGroupDescribe: 0,
};

/** apiKey -> max version from the broker's ApiVersions answer. */
export async function advertised(port: number): Promise<Map<number, number>> {
  const res = await kafkaRequest(port, ApiKey.ApiVersions, 3, { clientSoftwareName: 'runnel-test', clientSoftwareVersion: '1' });
  expect(res.errorCode).toBe(0);
  return new Map(res.apiKeys.map((k) => [k.apiKey, k.maxVersion]));
}

/** Every request librdkafka sent used min(its newest, the broker's newest). */
export function expectLibrdkafkaNegotiated(requests: SentRequests, brokerMax: Map<number, number>): void {
  for (const [name, versions] of Object.entries(requests)) {
    const key = name === 'ApiVersion' ? ApiKey.ApiVersions : (ApiKey as Record<string, number>)[name];
    expect({ name, known: key !== undefined && LIBRDKAFKA_MAX[name] !== undefined }).toEqual({ name, known: true });
    expect({ name, versions }).toEqual({ name, versions: [Math.min(LIBRDKAFKA_MAX[name]!, brokerMax.get(key!)!)] });
  }
}

/** Every request franz-go sent used the version ApiVersions let it use (its maximum, capped by the broker's). */
export function expectFranzNegotiated(requests: SentRequests, admin: FranzAdmin): void {
  const negotiated = admin.apiVersions[0]!.negotiated;
  for (const [name, versions] of Object.entries(requests)) {
    // ApiVersions itself starts at franz-go's newest and falls back to what the broker answers.
    if (name === 'ApiVersions') continue;
    expect({ name, versions }).toEqual({ name, versions: [negotiated[name]] });
  }
}

/** The records' values, sorted: what a group read, whatever the partition order. */
export function byValue(records: ConsumedRecord[]): string[] {
  return records.map((r) => r.value).sort();
}
