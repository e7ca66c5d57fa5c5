import type { Handler } from '@runnel/kafka-server';
import { ApiKey } from '@runnel/protocol';
import { Coordinator } from './coordinator.ts';
import { MemoryOffsetsLog } from './offsets-log.ts';

/**
 * The group APIs of a node that coordinates no group (a broker in a cluster): every group answers
 * NOT_COORDINATOR, so the client looks its coordinator up again; ListGroups lists nothing. The same
 * for the transaction APIs (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
 * DescribeTransactions; ListTransactions lists nothing). FindCoordinator is not among them (that node answers it from metadata).
 *
 * Why a broker needs them: kafkajs reads ApiVersions from its bootstrap broker only and uses that
 * table for every node, so the group APIs must be advertised there, in the ranges the coordinator
 * serves, or kafkajs refuses to send JoinGroup to the coordinator node at all
 * (KafkaJSServerDoesNotSupportApiKey). Built from the real handlers over a coordinator that owns
 * no partition and never starts (no I/O), so the ranges cannot drift. The cli wires them into a
 * cluster broker's `extraHandlers` (roles do not import each other).
 */
export function notCoordinatorHandlers(): Handler[] {
  // With a transaction coordinator that owns nothing either: the transaction APIs answer
  // NOT_COORDINATOR (ListTransactions: an empty list). InitProducerId stays the broker's own
  // (idempotent ids from metadata; a transactional id is NOT_COORDINATOR there too).
  const none = Coordinator.create({
    offsetsLog: new MemoryOffsetsLog(1),
    ownedPartitions: [],
    transactions: {
      log: new MemoryOffsetsLog(1),
      markers: { write: async () => [] },
      allocateProducerId: () => Promise.reject(new Error('no transaction coordinator on this node')),
    },
  });
  return none.handlers().filter((h) => h.api !== ApiKey.FindCoordinator && h.api !== ApiKey.InitProducerId);
}
