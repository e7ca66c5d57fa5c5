import { api, f, message, structs } from '../schema.ts';

/**
 * APIs Runnel does not serve yet (ACLs). Their tables exist so a node can decode
 * such a request and answer it in its own schema with UNSUPPORTED_VERSION (kafka-server's
 * unsupportedAnswer) instead of closing the connection; no handler declares them, so they are
 * never advertised in ApiVersions. Field names and versions follow Kafka's message schemas.
 */

/** DescribeAcls (key 29). v1 adds pattern types (KIP-290), v2 is flexible. */
export const DescribeAcls = api(29,
  message('DescribeAclsRequest', [0, 3], 2, [
    f('resourceTypeFilter', 'int8', '0+'),
    f('resourceNameFilter', 'string', '0+', { nullable: '0+' }),
    f('patternTypeFilter', 'int8', '1+', { default: 3 }),
    f('principalFilter', 'string', '0+', { nullable: '0+' }),
    f('hostFilter', 'string', '0+', { nullable: '0+' }),
    f('operation', 'int8', '0+'),
    f('permissionType', 'int8', '0+'),
  ]),
  message('DescribeAclsResponse', [0, 3], 2, [
    f('throttleTimeMs', 'int32', '0+'),
    f('errorCode', 'int16', '0+'),
    f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    structs('resources', '0+', [
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
      f('patternType', 'int8', '1+', { default: 3 }),
      structs('acls', '0+', [
        f('principal', 'string', '0+'),
        f('host', 'string', '0+'),
        f('operation', 'int8', '0+'),
        f('permissionType', 'int8', '0+'),
      ]),
    ]),
  ]),
);

/** CreateAcls (key 30): one result per creation. v1 adds pattern types, v2 is flexible. */
export const CreateAcls = api(30,
  message('CreateAclsRequest', [0, 3], 2, [
    structs('creations', '0+', [
      f('resourceType', 'int8', '0+'),
      f('resourceName', 'string', '0+'),
      f('resourcePatternType', 'int8', '1+', { default: 3 }),
      f('principal', 'string', '0+'),
      f('host', 'string', '0+'),
      f('operation', 'int8', '0+'),
      f('permissionType', 'int8', '0+'),
    ]),
  ]),
  message('CreateAclsResponse', [0, 3], 2, [
    f('throttleTimeMs', 'int32', '0+'),
    structs('results', '0+', [
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
    ]),
  ]),
);

/** DeleteAcls (key 31): one result per filter. v1 adds pattern types, v2 is flexible. */
export const DeleteAcls = api(31,
  message('DeleteAclsRequest', [0, 3], 2, [
    structs('filters', '0+', [
      f('resourceTypeFilter', 'int8', '0+'),
      f('resourceNameFilter', 'string', '0+', { nullable: '0+' }),
      f('patternTypeFilter', 'int8', '1+', { default: 3 }),
      f('principalFilter', 'string', '0+', { nullable: '0+' }),
      f('hostFilter', 'string', '0+', { nullable: '0+' }),
      f('operation', 'int8', '0+'),
      f('permissionType', 'int8', '0+'),
    ]),
  ]),
  message('DeleteAclsResponse', [0, 3], 2, [
    f('throttleTimeMs', 'int32', '0+'),
    structs('filterResults', '0+', [
      f('errorCode', 'int16', '0+'),
      f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
      structs('matchingAcls', '0+', [
        f('errorCode', 'int16', '0+'),
        f('errorMessage', 'string', '0+', { nullable: '0+', default: null }),
        f('resourceType', 'int8', '0+'),
        f('resourceName', 'string', '0+'),
        f('patternType', 'int8', '1+', { default: 3 }),
        f('principal', 'string', '0+'),
        f('host', 'string', '0+'),
        f('operation', 'int8', '0+'),
        f('permissionType', 'int8', '0+'),
      ]),
    ]),
  ]),
);
