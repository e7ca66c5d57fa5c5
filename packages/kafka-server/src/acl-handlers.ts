import {
  aclFilterMatches, normalizeAcl, validateAclBinding, AclOperation, AclPermissionType, PatternType, ResourceType,
  type AclBinding, type AclBindingFilter, type MetadataStore,
} from '@runnel/metadata';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { defineHandler, type Handler } from './handler.ts';
import { metadataErrorCode } from './metadata-errors.ts';

/**
 * DescribeAcls (29), CreateAcls (30) and DeleteAcls (31), v0–3, over the metadata's ACLs
 * (`kafka-acls --bootstrap-server`). The edge checks Describe (29) or Alter (30, 31) on Cluster
 * first (authorization.ts). Without an authorizer they answer SECURITY_DISABLED, as Kafka does: ACLs
 * are managed only where they are enforced.
 */
const SECURITY_DISABLED = { errorCode: ErrorCode.SECURITY_DISABLED, errorMessage: 'No Authorizer is configured (set authorizer.class.name).' };

/** Filters Kafka refuses outright (UNKNOWN codes), with the reason. */
function invalidFilter(f: AclBindingFilter): string | null {
  if (f.resourceType === ResourceType.UNKNOWN) return 'unknown resource type';
  if (f.patternType === PatternType.UNKNOWN) return 'unknown pattern type';
  if (f.operation === AclOperation.UNKNOWN) return 'unknown operation';
  if (f.permissionType === AclPermissionType.UNKNOWN) return 'unknown permission type';
  return null;
}

export function describeAclsHandler(metadata: MetadataStore): Handler {
  return defineHandler({
    api: ApiKey.DescribeAcls,
    versions: [0, 3],
    handle(req, ctx) {
      if (!ctx.authorizer) return { throttleTimeMs: 0, ...SECURITY_DISABLED, resources: [] };
      const filter: AclBindingFilter = {
        resourceType: req.resourceTypeFilter, resourceName: req.resourceNameFilter, patternType: req.patternTypeFilter,
        principal: req.principalFilter, host: req.hostFilter, operation: req.operation, permissionType: req.permissionType,
      };
      const invalid = invalidFilter(filter);
      if (invalid !== null) return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: invalid, resources: [] };
      // One entry per resource pattern, in the order the patterns were first created.
      const byPattern = new Map<string, { resourceType: number; resourceName: string; patternType: number; acls: { principal: string; host: string; operation: number; permissionType: number }[] }>();
      for (const b of metadata.snapshot().acls ?? []) {
        if (!aclFilterMatches(filter, b)) continue;
        const key = JSON.stringify([b.resourceType, b.resourceName, b.patternType]);
        let entry = byPattern.get(key);
        if (!entry) byPattern.set(key, entry = { resourceType: b.resourceType, resourceName: b.resourceName, patternType: b.patternType, acls: [] });
        entry.acls.push({ principal: b.principal, host: b.host, operation: b.operation, permissionType: b.permissionType });
      }
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, resources: [...byPattern.values()] };
    },
  });
}

export function createAclsHandler(metadata: MetadataStore): Handler {
  return defineHandler({
    api: ApiKey.CreateAcls,
    versions: [0, 3],
    async handle(req, ctx) {
      if (!ctx.authorizer) return { throttleTimeMs: 0, results: req.creations.map(() => SECURITY_DISABLED) };
      const bindings: AclBinding[] = req.creations.map((c) => normalizeAcl({ ...c, patternType: c.resourcePatternType }));
      const errors = bindings.map(validateAclBinding);
      const valid = bindings.filter((_, i) => errors[i] === null);
      let storeError: { errorCode: number; errorMessage: string } | null = null;
      if (valid.length > 0) {
        try {
          if (!metadata.createAcls) throw new Error('this node\'s metadata store cannot keep ACLs');
          await metadata.createAcls(valid);
        } catch (err) {
          storeError = { errorCode: metadataErrorCode(err, ErrorCode.UNKNOWN_SERVER_ERROR), errorMessage: (err as Error).message };
        }
      }
      return {
        throttleTimeMs: 0,
        results: errors.map((e) => (e !== null
          ? { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: e }
          : storeError ?? { errorCode: ErrorCode.NONE, errorMessage: null })),
      };
    },
  });
}

export function deleteAclsHandler(metadata: MetadataStore): Handler {
  return defineHandler({
    api: ApiKey.DeleteAcls,
    versions: [0, 3],
    async handle(req, ctx) {
      if (!ctx.authorizer) return { throttleTimeMs: 0, filterResults: req.filters.map(() => ({ ...SECURITY_DISABLED, matchingAcls: [] })) };
      const filters: AclBindingFilter[] = req.filters.map((f) => ({
        resourceType: f.resourceTypeFilter, resourceName: f.resourceNameFilter, patternType: f.patternTypeFilter,
        principal: f.principalFilter, host: f.hostFilter, operation: f.operation, permissionType: f.permissionType,
      }));
      const invalid = filters.map(invalidFilter);
      const valid = filters.filter((_, i) => invalid[i] === null);
      let deleted: AclBinding[][] = [];
      let storeError: { errorCode: number; errorMessage: string } | null = null;
      if (valid.length > 0) {
        try {
          if (!metadata.deleteAcls) throw new Error('this node\'s metadata store cannot keep ACLs');
          deleted = await metadata.deleteAcls(valid);
        } catch (err) {
          storeError = { errorCode: metadataErrorCode(err, ErrorCode.UNKNOWN_SERVER_ERROR), errorMessage: (err as Error).message };
        }
      }
      let next = 0;
      return {
        throttleTimeMs: 0,
        filterResults: invalid.map((e) => {
          if (e !== null) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: e, matchingAcls: [] };
          const matched = deleted[next++] ?? [];
          if (storeError) return { ...storeError, matchingAcls: [] };
          return {
            errorCode: ErrorCode.NONE, errorMessage: null,
            matchingAcls: matched.map((b) => ({ errorCode: ErrorCode.NONE, errorMessage: null, ...b })),
          };
        }),
      };
    },
  });
}
