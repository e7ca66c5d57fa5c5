/**
 * The API registry and the frame-level functions: request header v1/v2, response header v0/v1,
 * and the typed request/response maps.
 *
 * Frame = the bytes after the 4-byte size prefix. Request header v1 = `api_key int16,
 * api_version int16, correlation_id int32, client_id nullable INT16 string`; v2 adds a tagged-field
 * section (client_id stays a classic string). Response header v0 = `correlation_id int32`; v1 adds
 * a tagged-field section. ApiVersions responses always use header v0 (KIP-511).
 */
import { Buffer } from 'node:buffer';
import { ApiKey } from './api-keys.ts';
import { Reader, Writer, decodeMessage, encodeMessage, isFlexible, planFor, skipTaggedFields } from './codec.ts';
import { ErrorCode } from './error-codes.ts';
import { ProtocolError } from './errors.ts';
import { ApiVersions } from './messages/api-versions.ts';
import { AlterConfigs, IncrementalAlterConfigs } from './messages/configs.ts';
import { ConsumerGroupDescribe, ConsumerGroupHeartbeat } from './messages/consumer-group.ts';
import { DescribeTopicPartitions } from './messages/describe-topic-partitions.ts';
import { DescribeProducers } from './messages/describe-producers.ts';
import { WriteTxnMarkers } from './messages/txn-markers.ts';
import { AlterPartitionReassignments, ElectLeaders, ListPartitionReassignments } from './messages/elections.ts';
import { Fetch } from './messages/fetch.ts';
import { FindCoordinator } from './messages/find-coordinator.ts';
import { DeleteGroups, DescribeGroups, Heartbeat, JoinGroup, LeaveGroup, ListGroups, OffsetDelete, SyncGroup } from './messages/groups.ts';
import { ListOffsets } from './messages/list-offsets.ts';
import { Metadata } from './messages/metadata.ts';
import { OffsetCommit } from './messages/offset-commit.ts';
import { OffsetFetch } from './messages/offset-fetch.ts';
import { OffsetForLeaderEpoch } from './messages/offset-for-leader-epoch.ts';
import { Produce } from './messages/produce.ts';
import { AlterClientQuotas, DescribeClientQuotas } from './messages/quotas.ts';
import { SaslAuthenticate, SaslHandshake } from './messages/sasl.ts';
import { AlterUserScramCredentials, DescribeUserScramCredentials } from './messages/scram.ts';
import { CreateAcls, DeleteAcls, DescribeAcls } from './messages/unserved.ts';
import { AddOffsetsToTxn, AddPartitionsToTxn, DescribeTransactions, EndTxn, ListTransactions, TxnOffsetCommit } from './messages/transactions.ts';
import { AlterReplicaLogDirs, CreatePartitions, CreateTopics, DeleteRecords, DeleteTopics, DescribeCluster, DescribeConfigs, DescribeLogDirs, InitProducerId } from './messages/topics.ts';
import type { ApiSchema, DecodedResponseOf, RequestInputOf, RequestOf, ResponseOf } from './schema.ts';

/** Every API with a schema, by key. */
export const apis = {
  [ApiKey.Produce]: Produce,
  [ApiKey.Fetch]: Fetch,
  [ApiKey.ListOffsets]: ListOffsets,
  [ApiKey.Metadata]: Metadata,
  [ApiKey.OffsetCommit]: OffsetCommit,
  [ApiKey.OffsetFetch]: OffsetFetch,
  [ApiKey.FindCoordinator]: FindCoordinator,
  [ApiKey.JoinGroup]: JoinGroup,
  [ApiKey.Heartbeat]: Heartbeat,
  [ApiKey.LeaveGroup]: LeaveGroup,
  [ApiKey.SyncGroup]: SyncGroup,
  [ApiKey.DescribeGroups]: DescribeGroups,
  [ApiKey.ListGroups]: ListGroups,
  [ApiKey.SaslHandshake]: SaslHandshake,
  [ApiKey.ApiVersions]: ApiVersions,
  [ApiKey.CreateTopics]: CreateTopics,
  [ApiKey.DeleteTopics]: DeleteTopics,
  [ApiKey.DeleteRecords]: DeleteRecords,
  [ApiKey.InitProducerId]: InitProducerId,
  [ApiKey.OffsetForLeaderEpoch]: OffsetForLeaderEpoch,
  [ApiKey.DescribeConfigs]: DescribeConfigs,
  [ApiKey.AlterConfigs]: AlterConfigs,
  [ApiKey.AlterReplicaLogDirs]: AlterReplicaLogDirs,
  [ApiKey.DescribeLogDirs]: DescribeLogDirs,
  [ApiKey.SaslAuthenticate]: SaslAuthenticate,
  [ApiKey.CreatePartitions]: CreatePartitions,
  [ApiKey.DeleteGroups]: DeleteGroups,
  [ApiKey.ElectLeaders]: ElectLeaders,
  [ApiKey.IncrementalAlterConfigs]: IncrementalAlterConfigs,
  [ApiKey.AlterPartitionReassignments]: AlterPartitionReassignments,
  [ApiKey.ListPartitionReassignments]: ListPartitionReassignments,
  [ApiKey.OffsetDelete]: OffsetDelete,
  [ApiKey.DescribeClientQuotas]: DescribeClientQuotas,
  [ApiKey.AlterClientQuotas]: AlterClientQuotas,
  [ApiKey.DescribeCluster]: DescribeCluster,
  [ApiKey.DescribeTopicPartitions]: DescribeTopicPartitions,
  [ApiKey.ConsumerGroupHeartbeat]: ConsumerGroupHeartbeat,
  [ApiKey.ConsumerGroupDescribe]: ConsumerGroupDescribe,
  [ApiKey.WriteTxnMarkers]: WriteTxnMarkers,
  [ApiKey.DescribeProducers]: DescribeProducers,
  [ApiKey.AddPartitionsToTxn]: AddPartitionsToTxn,
  [ApiKey.AddOffsetsToTxn]: AddOffsetsToTxn,
  [ApiKey.TxnOffsetCommit]: TxnOffsetCommit,
  [ApiKey.EndTxn]: EndTxn,
  [ApiKey.DescribeTransactions]: DescribeTransactions,
  [ApiKey.ListTransactions]: ListTransactions,
  [ApiKey.DescribeUserScramCredentials]: DescribeUserScramCredentials,
  [ApiKey.AlterUserScramCredentials]: AlterUserScramCredentials,
  // Not served: decoded only to answer UNSUPPORTED_VERSION (messages/unserved.ts).
  [ApiKey.DescribeAcls]: DescribeAcls,
  [ApiKey.CreateAcls]: CreateAcls,
  [ApiKey.DeleteAcls]: DeleteAcls,
} as const;

type Apis = typeof apis;
/** API keys that have schemas here. */
export type SupportedApiKey = keyof Apis;

/** Decoded request bodies by API key: `Requests[typeof ApiKey.Produce]`. */
export type Requests = { [K in SupportedApiKey]: RequestOf<Apis[K]> };
/** Response bodies as handed to the encoder (optional fields default), by API key. */
export type Responses = { [K in SupportedApiKey]: ResponseOf<Apis[K]> };
/** Decoded response bodies (every field present), by API key. */
export type DecodedResponses = { [K in SupportedApiKey]: DecodedResponseOf<Apis[K]> };
/** Request bodies as handed to the encoder, by API key. */
export type RequestInputs = { [K in SupportedApiKey]: RequestInputOf<Apis[K]> };

export function apiSchema(apiKey: number): ApiSchema | undefined {
  return (apis as Record<number, ApiSchema>)[apiKey];
}

/** The version range this package can encode and decode for an API, or undefined. */
export function schemaVersions(apiKey: number): [min: number, max: number] | undefined {
  const a = apiSchema(apiKey);
  return a ? [a.request.validVersions[0], a.request.validVersions[1]] : undefined;
}

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

/** Peeks api key, version and correlation id (first 8 bytes) without knowing the header version. */
export function peekRequestHeader(frame: Uint8Array): { apiKey: number; apiVersion: number; correlationId: number } {
  if (frame.length < 8) throw new ProtocolError('TRUNCATED', `request frame of ${frame.length} bytes has no header`);
  const dv = new DataView(frame.buffer, frame.byteOffset, 8);
  return { apiKey: dv.getInt16(0), apiVersion: dv.getInt16(2), correlationId: dv.getInt32(4) };
}

function schemaOrThrow(apiKey: number, apiVersion: number): ApiSchema {
  const a = apiSchema(apiKey);
  if (!a) throw new ProtocolError('UNKNOWN_API', `unknown api key ${apiKey}`);
  const [min, max] = a.request.validVersions;
  if (apiVersion < min || apiVersion > max) {
    throw new ProtocolError('UNSUPPORTED_VERSION', `${a.request.name} v${apiVersion} is not supported (${min}-${max})`);
  }
  return a;
}

/** A decoded request, discriminated by the top-level `apiKey` (`if (req.apiKey === ApiKey.Produce) req.body.topicData`). */
export type DecodedRequest = {
  [K in SupportedApiKey]: { apiKey: K; header: RequestHeader & { apiKey: K }; body: Requests[K] }
}[SupportedApiKey];

/**
 * Decodes a request frame (the bytes after the size prefix): header v1 or v2 by the API's flexible
 * versions, then the body. Bytes/records fields are subarrays of `frame`. Trailing bytes after the
 * body are ignored, as Kafka does.
 */
export function decodeRequest(frame: Buffer): DecodedRequest {
  const r = new Reader(frame);
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  const a = schemaOrThrow(apiKey, apiVersion);
  const len = r.int16();
  const clientId = len === -1 ? null : r.utf8(len);
  if (isFlexible(a.request, apiVersion)) skipTaggedFields(r);
  const body = decodeMessage(a.request, apiVersion, r);
  return { apiKey, header: { apiKey, apiVersion, correlationId, clientId }, body } as DecodedRequest;
}

/** Encodes a request WITH its 4-byte size prefix (for our client and tests). */
export function encodeRequest<K extends SupportedApiKey>(header: RequestHeader & { apiKey: K }, body: RequestInputs[K]): Buffer;
export function encodeRequest(header: RequestHeader, body: object): Buffer;
export function encodeRequest(header: RequestHeader, body: object): Buffer {
  const a = schemaOrThrow(header.apiKey, header.apiVersion);
  const w = Writer.framed();
  w.int16(header.apiKey);
  w.int16(header.apiVersion);
  w.int32(header.correlationId);
  if (header.clientId === null) w.int16(-1);
  else {
    const len = Buffer.byteLength(header.clientId);
    w.int16(len);
    w.utf8(header.clientId, len);
  }
  if (isFlexible(a.request, header.apiVersion)) w.uvarint(0);
  encodeMessage(a.request, header.apiVersion, w, body);
  return w.finish();
}

function responseHeaderFlexible(a: ApiSchema, apiVersion: number): boolean {
  return a.apiKey !== ApiKey.ApiVersions && isFlexible(a.response, apiVersion);
}

/**
 * Encodes a response WITH its 4-byte size prefix: response header v0, or v1 for flexible versions
 * (except ApiVersions, always v0).
 */
export function encodeResponse<K extends SupportedApiKey>(apiKey: K, apiVersion: number, correlationId: number, body: Responses[K]): Buffer;
export function encodeResponse(apiKey: number, apiVersion: number, correlationId: number, body: object): Buffer;
export function encodeResponse(apiKey: number, apiVersion: number, correlationId: number, body: object): Buffer {
  return responseWriter(apiKey, apiVersion, correlationId, body).finish();
}

/**
 * Like `encodeResponse`, but returns the frame as pieces (size prefix first) that reference large
 * byte arrays such as Fetch record sets instead of copying them; write them in order (`writev`).
 */
export function encodeResponseParts<K extends SupportedApiKey>(apiKey: K, apiVersion: number, correlationId: number, body: Responses[K]): Buffer[];
export function encodeResponseParts(apiKey: number, apiVersion: number, correlationId: number, body: object): Buffer[];
export function encodeResponseParts(apiKey: number, apiVersion: number, correlationId: number, body: object): Buffer[] {
  return responseWriter(apiKey, apiVersion, correlationId, body).finishParts();
}

function responseWriter(apiKey: number, apiVersion: number, correlationId: number, body: object): Writer {
  const a = schemaOrThrow(apiKey, apiVersion);
  const w = Writer.framed();
  w.int32(correlationId);
  if (responseHeaderFlexible(a, apiVersion)) w.uvarint(0);
  encodeMessage(a.response, apiVersion, w, body);
  return w;
}

/** Decodes a response frame (after the size prefix); the caller knows key and version from its request. */
export function decodeResponse<K extends SupportedApiKey>(apiKey: K, apiVersion: number, frame: Buffer): { correlationId: number; body: DecodedResponses[K] };
export function decodeResponse(apiKey: number, apiVersion: number, frame: Buffer): { correlationId: number; body: unknown };
export function decodeResponse(apiKey: number, apiVersion: number, frame: Buffer): { correlationId: number; body: unknown } {
  const a = schemaOrThrow(apiKey, apiVersion);
  const r = new Reader(frame);
  const correlationId = r.int32();
  if (responseHeaderFlexible(a, apiVersion)) skipTaggedFields(r);
  return { correlationId, body: decodeMessage(a.response, apiVersion, r) };
}

/**
 * The reply (docs/protocol.md, ApiVersions) to an ApiVersions request at a version above ours: header v0 and a v0-format body
 * (`error_code = UNSUPPORTED_VERSION`, `api_keys = [{18, min, max}]`, no throttle time), with the
 * size prefix. The client then retries at a version it finds in the range.
 */
export function encodeApiVersionsUnsupported(correlationId: number, apiVersionsRange: [number, number]): Buffer {
  const b = Buffer.alloc(4 + 4 + 2 + 4 + 6);
  b.writeInt32BE(b.length - 4, 0);
  b.writeInt32BE(correlationId, 4);
  b.writeInt16BE(ErrorCode.UNSUPPORTED_VERSION, 8);
  b.writeInt32BE(1, 10);
  b.writeInt16BE(ApiKey.ApiVersions, 14);
  b.writeInt16BE(apiVersionsRange[0], 16);
  b.writeInt16BE(apiVersionsRange[1], 18);
  return b;
}

/** Precompiles every (api, version) plan; useful at startup so the first request pays nothing. */
export function warmUp(): void {
  for (const a of Object.values(apis) as ApiSchema[]) {
    for (let v = a.request.validVersions[0]; v <= a.request.validVersions[1]; v++) {
      planFor(a.request, v);
      planFor(a.response, v);
    }
  }
}
