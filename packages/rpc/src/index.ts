export { parseAddress, formatAddress } from './address.ts';
export { RpcClient, type RpcClientOptions } from './client.ts';
export { RpcError, type RpcErrorCode } from './errors.ts';
export { DEFAULT_MAX_FRAME_BYTES } from './frame.ts';
export { RpcServer, type RpcServerOptions } from './server.ts';
export type {
  Address,
  AllocateProducerIdRequest,
  AllocateProducerIdResponse,
  AlterTopicConfigsRequest,
  AppendRequest,
  AppendResponse,
  CreatePartitionsRequest,
  CreateTopicRequest,
  DeleteTopicRequest,
  HeartbeatRequest,
  HeartbeatResponse,
  NodeRegistration,
  NodeRole,
  OffsetsRequest,
  OffsetsResponse,
  PartitionOffsetsMsg,
  PartitionStateMsg,
  ReadRequest,
  ReadResponse,
  RecordTimestampRequest,
  RecordTimestampResponse,
  RegisterNodeRequest,
  RegisterNodeResponse,
  RpcContext,
  RpcHandlers,
  RpcMethod,
  RpcMethods,
  TopicMsg,
  TopicPartitionMsg,
  TopicResponse,
  VersionResponse,
} from './methods.ts';
