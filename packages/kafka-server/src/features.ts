import { ApiKey } from '@runnel/protocol';

/**
 * The KIP-584 feature levels a node advertises in ApiVersions v3+ (the tagged SupportedFeatures,
 * FinalizedFeaturesEpoch and FinalizedFeatures fields). Clients read them to decide what to use
 * (the Java producer uses the transaction protocol of KIP-890 only at transaction.version 2+,
 * tools print them, franz-go's kversion guesses a release from them), so they say only what this
 * node really serves, derived from its handler registry rather than written as constants:
 *
 * - metadata.version 25 (Kafka 4.0-IV3), the only level: Runnel serves the API versions of a
 *   Kafka 4.0 broker and has no older behaviour to fall back to (no UpdateFeatures).
 * - group.version 1 (the KIP-848 consumer protocol) only when ConsumerGroupHeartbeat is served.
 * - transaction.version, kraft.version, share.version, streams.version,
 *   eligible.leader.replicas.version are not listed. A Kafka broker lists a feature only when it
 *   can run it above level 0 and finalizes only levels above 0, so leaving a feature out is how
 *   Kafka says level 0: no transactions (issue 14), no KRaft quorum visible to clients (Runnel's
 *   controller keeps metadata in Redis and answers no KRaft API), no share groups or streams groups.
 *
 * Every node of a cluster serves the same registry, so the levels agree across nodes, as a Kafka
 * cluster's finalized levels do. They never change while the node runs: the epoch is a constant.
 */

export interface SupportedFeature { name: string; minVersion: number; maxVersion: number }
export interface FinalizedFeature { name: string; minVersionLevel: number; maxVersionLevel: number }

export interface NodeFeatures {
  supported: readonly SupportedFeature[];
  finalized: readonly FinalizedFeature[];
  /** FinalizedFeaturesEpoch: Kafka's is the metadata offset of the last change; ours never change. */
  epoch: bigint;
}

/** Kafka 4.0's production metadata.version (MetadataVersion.IBP_4_0_IV3). */
export const METADATA_VERSION_LEVEL = 25;

/** The features a node serving the APIs `apiKeys` advertises. */
export function nodeFeatures(apiKeys: Iterable<number>): NodeFeatures {
  const served = new Set(apiKeys);
  const levels: [name: string, min: number, max: number][] = [['metadata.version', METADATA_VERSION_LEVEL, METADATA_VERSION_LEVEL]];
  if (served.has(ApiKey.ConsumerGroupHeartbeat)) levels.push(['group.version', 0, 1]);
  return {
    supported: levels.map(([name, minVersion, maxVersion]) => ({ name, minVersion, maxVersion })),
    // Kafka finalizes a new cluster at each feature's highest production level and lists levels above 0.
    finalized: levels.filter(([, , max]) => max > 0).map(([name, , max]) => ({ name, minVersionLevel: max, maxVersionLevel: max })),
    epoch: 0n,
  };
}

/**
 * The ApiVersions response fields for `features` at `apiVersion` (v0–2 have none: the encoder
 * drops them). Below v4 a supported minimum of 0 is sent as 1, as Kafka does: clients before
 * KAFKA-17011 reject a 0 there.
 */
export function featureFields(features: NodeFeatures, apiVersion: number): {
  supportedFeatures: SupportedFeature[];
  finalizedFeaturesEpoch: bigint;
  finalizedFeatures: FinalizedFeature[];
  zkMigrationReady: boolean;
} {
  return {
    supportedFeatures: features.supported.map((f) => ({ ...f, minVersion: apiVersion < 4 && f.minVersion === 0 ? 1 : f.minVersion })),
    finalizedFeaturesEpoch: features.epoch,
    finalizedFeatures: features.finalized.map((f) => ({ ...f })),
    zkMigrationReady: false,
  };
}
