export { Broker, type BrokerOptions } from './broker.ts';
export type { GroupTxnMarker } from './context.ts';
export { toKafkaError } from './errors.ts';
export { writeTxnMarkers, type TxnMarkerPartitionResult, type TxnMarkerRequest } from './handlers/write-txn-markers.ts';
export { nonLeaderHandlers, type NonLeaderOptions } from './non-leader.ts';
