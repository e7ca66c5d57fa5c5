import { api, f, message, structs } from '../schema.ts';

/**
 * AlterConfigs (key 33; v2 flexible): replace a resource's dynamic configs with the ones given
 * (configs left out are removed). Resource type 2 = topic, 4 = broker (name '' = the cluster-wide
 * default). Sent by kafkajs's alterConfigs and the Java Admin's deprecated alterConfigs.
 */
export const AlterConfigs = api(33,
  message('AlterConfigsRequest', [0, 2], 2, [
    structs('resources', '0+', [
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
      structs('configs', '0+', [
        f('name', 'string', '0+'),
        f('value', 'string', '0+', { nullable: '0+' }),
      ]),
    ]),
    f('validateOnly', 'bool', '0+', { default: false }),
  ]),
  message('AlterConfigsResponse', [0, 2], 2, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('responses', '0+', [
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
    ]),
  ]),
);

/**
 * IncrementalAlterConfigs (key 44, KIP-339; v1 flexible): per config an operation, SET 0,
 * DELETE 1, APPEND 2 and SUBTRACT 3 (the last two for list configs). Sent by the Java Admin's
 * incrementalAlterConfigs: `kafka-configs.sh --alter`, `kafka-reassign-partitions.sh --throttle`.
 */
export const IncrementalAlterConfigs = api(44,
  message('IncrementalAlterConfigsRequest', [0, 1], 1, [
    structs('resources', '0+', [
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
      structs('configs', '0+', [
        f('name', 'string', '0+'),
        f('configOperation', 'int8', '0+'),
        f('value', 'string', '0+', { nullable: '0+' }),
      ]),
    ]),
    f('validateOnly', 'bool', '0+', { default: false }),
  ]),
  message('IncrementalAlterConfigsResponse', [0, 1], 1, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('responses', '0+', [
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
    ]),
  ]),
);
