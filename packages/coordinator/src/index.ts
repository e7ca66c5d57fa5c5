export { type Clock, type Timer, systemClock, ManualClock } from './clock.ts';
export {
  Group,
  GroupState,
  Member,
  type GroupError,
  type JoinGroupResult,
  type SyncGroupResult,
  type Protocol,
  type CommittedOffset,
} from './group.ts';
export * from './group-coordinator.ts';
export * from './records.ts';
export { javaStringHashCode, partitionForGroup } from '@runnel/protocol';
export { subscribedTopics, encodeSubscription } from './subscription.ts';
export { Coordinator, CoordinatorError, type CoordinatorErrorCode, type CoordinatorAddress, type CoordinatorOptions, type CoordinatorTransactionsOptions } from './coordinator.ts';
export { type OffsetsLog, type TxnProducer, type TxnMarker, type MemoryLogEntry, MemoryOffsetsLog, partitionLogOffsetsLog, logManagerOffsetsLog, replayRange, encodeOffsetsBatch, encodeMarkerBatch, offsetsTopicLogConfig } from './offsets-log.ts';
export { rpcOffsetsLog, BrokerClients, coordinatorErrorOf, type RpcOffsetsLog, type RpcOffsetsLogOptions } from './rpc-offsets-log.ts';
export { CoordinatorNode, offsetsCountIgnored, type CoordinatorNodeOptions } from './node.ts';
export { notCoordinatorHandlers } from './not-coordinator.ts';
export { coordinatorHandlers, errorCode, clientHostOf } from './handlers.ts';
export { registerCoordinatorMetrics, type LagSources } from './metrics.ts';
export { ConsumerGroups, ConsumerGroup, ConsumerMember, MemberState, topicLookup, type TopicLookup, type TopicImage, type ConsumerGroupState, type ConsumerHeartbeatRequest, type ConsumerHeartbeatResult, type DescribedConsumerGroup } from './consumer-group.ts';
export { uniformAssignor, rangeAssignor, ASSIGNORS, type Assignor, type AssignorMember, type TopicAssignment } from './assignors.ts';
export * from './consumer-records.ts';
export * from './txn-records.ts';
export * from './txn-coordinator.ts';
export { transactionHandlers, initProducerIdTxn, txnErrorCode } from './txn-handlers.ts';
export { markerSink, type MarkerSinkOptions, type MarkerResult } from './txn-markers.ts';
export { createTransactionStateTopic } from './txn-state-topic.ts';
