import { api, f, message, structs } from '../schema.ts';

/**
 * DescribeClientQuotas (key 48, KIP-546): the client quotas whose entities match the filter. Each
 * component names an entity type (`user`, `client-id`, `ip`) and a match: 0 = exactly `match`,
 * 1 = the default entity of that type (match null), 2 = any entity of that type that is set
 * (default included). `strict` = only entities with no other types than the components name.
 * Sent by Admin.describeClientQuotas and `kafka-configs --describe --entity-type users|clients`.
 * v1 is flexible.
 */
export const DescribeClientQuotas = api(48,
  message('DescribeClientQuotasRequest', [0, 1], 1, [
    structs('components', '0+', [
      f('entityType', 'string', '0+'),
      f('matchType', 'int8', '0+'),
      f('match', 'string', '0+', { nullable: '0+' }),
    ]),
    f('strict', 'bool', '0+'),
  ]),
  message('DescribeClientQuotasResponse', [0, 1], 1, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    f('errorCode', 'int16', '0+', { default: 0 }),
    f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    structs('entries', '0+', [
      structs('entity', '0+', [
        f('entityType', 'string', '0+'),
        f('entityName', 'string', '0+', { nullable: '0+' }),
      ]),
      structs('values', '0+', [
        f('key', 'string', '0+'),
        f('value', 'float64', '0+'),
      ]),
    ], { nullable: '0+' }),
  ]),
);

/**
 * AlterClientQuotas (key 49, KIP-546): set (`remove` false) or remove quota keys of entities; an
 * entity name null is the default entity of its type. Sent by Admin.alterClientQuotas and
 * `kafka-configs --alter --entity-type users|clients [--entity-default] --add-config k=v`.
 * v1 is flexible.
 */
export const AlterClientQuotas = api(49,
  message('AlterClientQuotasRequest', [0, 1], 1, [
    structs('entries', '0+', [
      structs('entity', '0+', [
        f('entityType', 'string', '0+'),
        f('entityName', 'string', '0+', { nullable: '0+' }),
      ]),
      structs('ops', '0+', [
        f('key', 'string', '0+'),
        f('value', 'float64', '0+'),
        f('remove', 'bool', '0+'),
      ]),
    ]),
    f('validateOnly', 'bool', '0+'),
  ]),
  message('AlterClientQuotasResponse', [0, 1], 1, [
    f('throttleTimeMs', 'int32', '0+', { default: 0 }),
    structs('entries', '0+', [
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
      structs('entity', '0+', [
        f('entityType', 'string', '0+'),
        f('entityName', 'string', '0+', { nullable: '0+' }),
      ]),
    ]),
  ]),
);
