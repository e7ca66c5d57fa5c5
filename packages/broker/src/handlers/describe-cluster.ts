import type { MetadataSnapshot } from '@runnel/metadata';
import { ApiKey, ErrorCode, type Responses } from '@runnel/protocol';
import { brokersOn, defineHandler, kafkaControllerId } from '@runnel/kafka-server';

type Response = Responses[typeof ApiKey.DescribeCluster];

/** DescribeCluster's endpoint types (KIP-919). */
const EndpointType = { BROKER: 1, CONTROLLER: 2 } as const;

/**
 * DescribeCluster v0–2: the brokers (at the addresses of the listener the request came in on), the
 * cluster id and the controller. v1 asks for an endpoint type; like a Kafka broker, a node answers
 * only for brokers: controllers (2) are MISMATCHED_ENDPOINT_TYPE (a client must ask a controller
 * listener, which Runnel does not serve to clients), any other type UNSUPPORTED_ENDPOINT_TYPE.
 * v2's includeFencedBrokers changes nothing here: a Runnel node that stops heartbeating leaves the
 * metadata instead of staying registered as fenced, so every broker listed is unfenced.
 * Needs only the metadata snapshot, so any node may answer it.
 */
export const describeCluster = (b: { metadata: { snapshot(): MetadataSnapshot } }) => defineHandler({
  api: ApiKey.DescribeCluster,
  versions: [0, 2],
  handle(req, ctx): Response {
    const snap = b.metadata.snapshot();
    // Kafka's refusal carries the code and message alone: no cluster id, no brokers, the schema defaults.
    const refused = (errorCode: number, errorMessage: string): Response => ({ throttleTimeMs: 0, errorCode, errorMessage, clusterId: '', brokers: [] });
    if (req.endpointType === EndpointType.CONTROLLER) {
      return refused(ErrorCode.MISMATCHED_ENDPOINT_TYPE, 'The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER');
    }
    if (req.endpointType !== EndpointType.BROKER) return refused(ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, `Unsupported endpoint type ${req.endpointType}`);
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      endpointType: EndpointType.BROKER,
      clusterId: snap.clusterId,
      controllerId: kafkaControllerId(snap, ctx.listener),
      brokers: brokersOn(snap, ctx.listener).map((n) => ({ brokerId: n.nodeId, host: n.host, port: n.port, rack: n.rack, isFenced: false })),
      clusterAuthorizedOperations: -2147483648,
    };
  },
});
