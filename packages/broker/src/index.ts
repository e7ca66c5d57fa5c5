export { Broker, type BrokerOptions } from './broker.ts';
export { toKafkaError } from './errors.ts';
export { nonLeaderHandlers, type NonLeaderOptions } from './non-leader.ts';
