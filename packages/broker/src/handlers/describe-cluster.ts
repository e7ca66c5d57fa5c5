import { ApiKey, ErrorCode } from '@runnel/protocol';
import { brokersOn, defineHandler, kafkaControllerId } from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';

/** DescribeCluster v0: the brokers (at the addresses of the listener the request came in on), the cluster id and the controller. */
export const describeCluster = (b: BrokerContext) => defineHandler({
  api: ApiKey.DescribeCluster,
  versions: [0, 0],
  handle(_req, ctx) {
    const snap = b.metadata.snapshot();
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      clusterId: snap.clusterId,
      controllerId: kafkaControllerId(snap, ctx.listener),
      brokers: brokersOn(snap, ctx.listener).map((n) => ({ brokerId: n.nodeId, host: n.host, port: n.port, rack: n.rack })),
      clusterAuthorizedOperations: -2147483648,
    };
  },
});
