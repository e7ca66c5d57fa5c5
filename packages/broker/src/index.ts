export { Broker, type BrokerOptions } from './broker.ts';
export { toKafkaError } from './errors.ts';
