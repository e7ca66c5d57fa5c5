/**
 * ACL bindings as metadata keeps them (Kafka's AclBinding), with Kafka's wire codes for every enum
 * so a binding goes from CreateAcls to the store and back to DescribeAcls unchanged. The
 * authorizer (@runnel/kafka-server's authorizer.ts) indexes them; the stores only keep the list.
 *
 * Invariants of a stored binding (checked by `validateAclBinding` before any store keeps it):
 * a concrete resource type (not ANY/UNKNOWN), pattern type LITERAL or PREFIXED, a non-empty
 * resource name, a principal `Type:name` (or `User:*`), a non-empty host (`*` = any), a concrete
 * operation and permission ALLOW or DENY. The list holds no duplicates.
 */

/** Kafka's ResourceType codes. */
export const ResourceType = { UNKNOWN: 0, ANY: 1, TOPIC: 2, GROUP: 3, CLUSTER: 4, TRANSACTIONAL_ID: 5, DELEGATION_TOKEN: 6, USER: 7 } as const;
/** Kafka's PatternType codes (ANY and MATCH only in filters). */
export const PatternType = { UNKNOWN: 0, ANY: 1, MATCH: 2, LITERAL: 3, PREFIXED: 4 } as const;
/** Kafka's AclOperation codes (ANY only in filters). */
export const AclOperation = {
  UNKNOWN: 0, ANY: 1, ALL: 2, READ: 3, WRITE: 4, CREATE: 5, DELETE: 6, ALTER: 7, DESCRIBE: 8, CLUSTER_ACTION: 9,
  DESCRIBE_CONFIGS: 10, ALTER_CONFIGS: 11, IDEMPOTENT_WRITE: 12, CREATE_TOKENS: 13, DESCRIBE_TOKENS: 14,
} as const;
/** Kafka's AclPermissionType codes (ANY only in filters). */
export const AclPermissionType = { UNKNOWN: 0, ANY: 1, DENY: 2, ALLOW: 3 } as const;

export type ResourceType = (typeof ResourceType)[keyof typeof ResourceType];
export type PatternType = (typeof PatternType)[keyof typeof PatternType];
export type AclOperation = (typeof AclOperation)[keyof typeof AclOperation];
export type AclPermissionType = (typeof AclPermissionType)[keyof typeof AclPermissionType];

/** The resource name of the Cluster resource (Kafka's CLUSTER_NAME). */
export const CLUSTER_RESOURCE_NAME = 'kafka-cluster';
/** The wildcard resource name and host, and the wildcard principal. */
export const WILDCARD = '*';
export const WILDCARD_PRINCIPAL = 'User:*';

/** One ACL: who (principal, host) may or may not (permission) do what (operation) to which resources (pattern). */
export interface AclBinding {
  resourceType: number;
  resourceName: string;
  patternType: number;
  /** `User:alice`, `User:*`. */
  principal: string;
  /** An IP address, or `*`. */
  host: string;
  operation: number;
  permissionType: number;
}

/** DescribeAcls/DeleteAcls's filter: null strings and the ANY codes match everything. */
export interface AclBindingFilter {
  resourceType: number;
  resourceName: string | null;
  patternType: number;
  principal: string | null;
  host: string | null;
  operation: number;
  permissionType: number;
}

const values = (o: object) => new Set(Object.values(o) as number[]);
const RESOURCE_TYPES = values(ResourceType);
const OPERATIONS = values(AclOperation);

/** Why Kafka would refuse to create this binding (INVALID_REQUEST), or null when it is fine. */
export function validateAclBinding(b: AclBinding): string | null {
  if (!RESOURCE_TYPES.has(b.resourceType) || b.resourceType === ResourceType.ANY || b.resourceType === ResourceType.UNKNOWN) return `invalid resource type ${b.resourceType}`;
  if (b.patternType !== PatternType.LITERAL && b.patternType !== PatternType.PREFIXED) return `invalid pattern type ${b.patternType}: an ACL is LITERAL or PREFIXED`;
  if (b.resourceName === '') return 'the resource name must not be empty';
  if (b.resourceType === ResourceType.CLUSTER && b.resourceName !== CLUSTER_RESOURCE_NAME) return `the cluster resource is named ${CLUSTER_RESOURCE_NAME}`;
  if (!/^[^:]+:.+$/.test(b.principal)) return `invalid principal "${b.principal}": expected Type:name, e.g. User:alice`;
  if (b.host === '') return 'the host must not be empty (* for any host)';
  if (!OPERATIONS.has(b.operation) || b.operation === AclOperation.ANY || b.operation === AclOperation.UNKNOWN) return `invalid operation ${b.operation}`;
  if (b.permissionType !== AclPermissionType.ALLOW && b.permissionType !== AclPermissionType.DENY) return `invalid permission type ${b.permissionType}`;
  return null;
}

/** Kafka's AclBindingFilter.matches: whether `filter` selects the stored binding `b`. */
export function aclFilterMatches(filter: AclBindingFilter, b: AclBinding): boolean {
  if (filter.resourceType !== ResourceType.ANY && filter.resourceType !== b.resourceType) return false;
  if (!patternMatches(filter, b)) return false;
  if (filter.principal !== null && filter.principal !== b.principal) return false;
  if (filter.host !== null && filter.host !== b.host) return false;
  if (filter.operation !== AclOperation.ANY && filter.operation !== b.operation) return false;
  if (filter.permissionType !== AclPermissionType.ANY && filter.permissionType !== b.permissionType) return false;
  return true;
}

/**
 * Kafka's ResourcePatternFilter.matches: ANY = any pattern type with this exact name; MATCH =
 * every binding that applies to the named resource (literal name equal or `*`, prefixed ones the
 * name starts with); LITERAL/PREFIXED = that type and exact name.
 */
function patternMatches(filter: AclBindingFilter, b: AclBinding): boolean {
  const name = filter.resourceName;
  switch (filter.patternType) {
    case PatternType.ANY: return name === null || name === b.resourceName;
    case PatternType.MATCH:
      if (name === null) return true;
      if (b.patternType === PatternType.LITERAL) return b.resourceName === name || b.resourceName === WILDCARD;
      return b.patternType === PatternType.PREFIXED && name.startsWith(b.resourceName);
    default: return filter.patternType === b.patternType && (name === null || name === b.resourceName);
  }
}

/** A stable identity of a binding (deduplication; equal bindings, equal keys). */
export function aclKey(b: AclBinding): string {
  return JSON.stringify([b.resourceType, b.resourceName, b.patternType, b.principal, b.host, b.operation, b.permissionType]);
}

/** `acls` with `creations` added (those already present are kept once). */
export function withAcls(acls: readonly AclBinding[], creations: readonly AclBinding[]): AclBinding[] {
  const out = new Map(acls.map((b) => [aclKey(b), b]));
  for (const b of creations) if (!out.has(aclKey(b))) out.set(aclKey(b), normalizeAcl(b));
  return [...out.values()];
}

/** `acls` without every binding some filter matches; `deleted[i]` = the bindings filter i matched. */
export function withoutAcls(acls: readonly AclBinding[], filters: readonly AclBindingFilter[]): { acls: AclBinding[]; deleted: AclBinding[][] } {
  const deleted = filters.map((f) => acls.filter((b) => aclFilterMatches(f, b)));
  const gone = new Set(deleted.flat().map(aclKey));
  return { acls: acls.filter((b) => !gone.has(aclKey(b))), deleted };
}

/** Only the binding's fields (no stray properties from a decoded request reach the store). */
export function normalizeAcl(b: AclBinding): AclBinding {
  return {
    resourceType: b.resourceType, resourceName: b.resourceName, patternType: b.patternType, principal: b.principal,
    host: b.host, operation: b.operation, permissionType: b.permissionType,
  };
}
