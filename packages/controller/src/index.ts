export { Controller, type ControllerOptions } from './controller.ts';
export { ControllerError, type ControllerErrorCode } from './errors.ts';
export {
  alterTopicConfigs, applyChange, assignCoordinators, createPartitions, createTopic,
  deleteTopic, ensureOffsetsTopic, expiredNodes, fenceNode, fenceNodes, isEmpty, isFenced, liveNodeIds, mergeChanges,
  registerNode, settle, type CreateTopicRequest, type RegistrationInput, type Settings,
} from './cluster-state.ts';
