export { Controller, type ControllerOptions } from './controller.ts';
export { ControllerError, type ControllerErrorCode } from './errors.ts';
export { registerControllerMetrics, countElections, type ControllerMetricSources } from './metrics.ts';
export {
  alterBrokerConfigs, alterPartition, alterReassignments, alterTopicConfigs, completeReassignments, applyChange, assignCoordinators, controlledShutdown, createPartitions, createTopic,
  deleteTopic, electLeaders, electOffline, ensureOffsetsTopic, expiredNodes, fenceNode, fenceNodes, isEmpty, isFenced, liveNodeIds,
  mergeChanges, rebalanceLeaders, refuseDuplicate, registerNode, settle, type AlterPartitionRequest, type CreateTopicRequest, type RegistrationInput, type Settings,
} from './cluster-state.ts';
