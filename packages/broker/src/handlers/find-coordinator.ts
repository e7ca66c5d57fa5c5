import { OFFSETS_TOPIC } from '@runnel/common';
import { CoordinatorKeyType, findCoordinatorHandler, TRANSACTIONS_UNSUPPORTED, type CoordinatorLocation, type Handler } from '@runnel/kafka-server';
import type { MetadataSnapshot } from '@runnel/metadata';
import { ErrorCode, partitionForGroup } from '@runnel/protocol';
import type { BrokerContext } from '../context.ts';


/**
 * Where a group's coordinator is, from metadata alone: the group hashes to a `__consumer_offsets`
 * partition (over the topic's partition count), the controller assigned that partition to a
 * coordinator node, and the node's Kafka address is in the live node list. Any missing link is
 * COORDINATOR_NOT_AVAILABLE, which clients retry. Transactions have no coordinator yet: refused
 * with a code clients treat as fatal (TRANSACTIONS_UNSUPPORTED), so they fail at once.
 */
export function locateCoordinator(snap: MetadataSnapshot, key: string, keyType: number): CoordinatorLocation {
  const unavailable = (errorMessage: string) => ({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage });
  if (keyType === CoordinatorKeyType.TRANSACTION) return TRANSACTIONS_UNSUPPORTED;
  if (keyType !== CoordinatorKeyType.GROUP) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `unknown key type ${keyType}` };
  const offsets = snap.topics.get(OFFSETS_TOPIC);
  if (!offsets || offsets.partitions.length === 0) return unavailable(`${OFFSETS_TOPIC} does not exist yet`);
  const partition = partitionForGroup(key, offsets.partitions.length);
  const owner = snap.coordinators.get(partition);
  if (!owner) return unavailable(`no coordinator owns ${OFFSETS_TOPIC}-${partition}`);
  const node = snap.brokers.get(owner.nodeId);
  if (!node) return unavailable(`the coordinator of ${OFFSETS_TOPIC}-${partition} (node ${owner.nodeId}) is not live`);
  return { nodeId: node.nodeId, host: node.host, port: node.port };
}

/** FindCoordinator v0–4 for a cluster broker: answered from metadata (the broker does not proxy group APIs). */
export const findCoordinator = (b: BrokerContext): Handler => findCoordinatorHandler((key, keyType) => locateCoordinator(b.metadata.snapshot(), key, keyType));
