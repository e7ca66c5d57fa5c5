/**
 * ACL authorization with Kafka's StandardAuthorizer semantics (docs/security.md, "ACLs"):
 *
 * - A principal in `super.users` may do everything.
 * - The ACLs that apply to a resource are its LITERAL ones (same name, or `*`) and the PREFIXED
 *   ones whose prefix starts its name; of those, the ones for the principal (or `User:*`) and host
 *   (or `*`) whose operation is the one asked, or ALL, or (for ALLOW only) one that implies it:
 *   Read, Write, Delete and Alter imply Describe; AlterConfigs implies DescribeConfigs.
 * - One matching DENY refuses, whatever ALLOWs match; else one matching ALLOW allows.
 * - No match: refused, unless the resource has no ACL at all (for anyone) and
 *   `allow.everyone.if.no.acl.found` is true.
 *
 * Pure and I/O-free: it reads the bindings through a function (the metadata snapshot's `acls`)
 * and indexes them again only when that array changes, so a request costs map lookups (one per
 * prefix length of the resource name), never a scan of every ACL.
 */
import {
  AclOperation, AclPermissionType, CLUSTER_RESOURCE_NAME, PatternType, ResourceType, WILDCARD, WILDCARD_PRINCIPAL, type AclBinding,
} from '@runnel/metadata';
import type { BrokerConfig } from '@runnel/common';
import type { MetadataStore } from '@runnel/metadata';
import type { KafkaPrincipal } from './security.ts';

export { AclOperation, ResourceType };

/** What a check needs to know of the request: who, and from where. */
export interface AuthorizationSubject {
  principal: KafkaPrincipal;
  /** The peer's IP (ACL host matching). */
  clientHost: string;
}

export interface Authorizer {
  /** Whether the request's principal, from its host, may perform `op` on the resource. */
  authorize(ctx: AuthorizationSubject, op: AclOperation, resource: { type: ResourceType; name: string }): boolean;
  /**
   * Whether the principal may perform `op` on at least one resource of the type (Kafka's
   * authorizeByResourceType: an idempotent producer's InitProducerId needs Write on some topic).
   */
  authorizeAny(ctx: AuthorizationSubject, op: AclOperation, type: ResourceType): boolean;
}

export interface StandardAuthorizerOptions {
  /** The current bindings (e.g. `() => metadata.snapshot().acls ?? []`); the index is rebuilt when the array changes. */
  acls: () => readonly AclBinding[];
  /** `super.users`: `User:admin;User:broker`. */
  superUsers?: string;
  /** `allow.everyone.if.no.acl.found`. */
  allowEveryoneIfNoAclFound?: boolean;
}

/** Operations an ALLOW of the key also grants (Kafka's AclEntry implied operations). */
const IMPLIED_BY: ReadonlyMap<number, readonly number[]> = new Map([
  [AclOperation.DESCRIBE, [AclOperation.READ, AclOperation.WRITE, AclOperation.DELETE, AclOperation.ALTER]],
  [AclOperation.DESCRIBE_CONFIGS, [AclOperation.ALTER_CONFIGS]],
]);

/** The bindings of one resource type: literal by exact name, prefixed by prefix. */
interface TypeIndex {
  literal: Map<string, AclBinding[]>;
  prefixed: Map<string, AclBinding[]>;
  /** Lengths of the prefixes present, so a lookup tries only those. */
  prefixLengths: number[];
}

/** Parses `super.users` (semicolon-separated principals; blanks ignored). */
export function parseSuperUsers(value: string | null | undefined): Set<string> {
  return new Set((value ?? '').split(';').map((s) => s.trim()).filter((s) => s !== ''));
}

export class StandardAuthorizer implements Authorizer {
  readonly #acls: () => readonly AclBinding[];
  readonly #superUsers: Set<string>;
  readonly #allowIfNoAcl: boolean;
  #indexed: readonly AclBinding[] | undefined;
  #index = new Map<number, TypeIndex>();

  constructor(o: StandardAuthorizerOptions) {
    this.#acls = o.acls;
    this.#superUsers = parseSuperUsers(o.superUsers);
    this.#allowIfNoAcl = o.allowEveryoneIfNoAclFound ?? false;
  }

  authorize(ctx: AuthorizationSubject, op: AclOperation, resource: { type: ResourceType; name: string }): boolean {
    const principal = `${ctx.principal.type}:${ctx.principal.name}`;
    if (this.#superUsers.has(principal)) return true;
    const index = this.#typeIndex(resource.type);
    let found = false;
    let allowed = false;
    const consider = (acls: AclBinding[] | undefined): boolean => {
      if (acls === undefined) return false;
      found = true;
      for (const acl of acls) {
        if (acl.principal !== principal && acl.principal !== WILDCARD_PRINCIPAL) continue;
        if (acl.host !== WILDCARD && acl.host !== ctx.clientHost) continue;
        if (acl.permissionType === AclPermissionType.DENY) {
          if (acl.operation === op || acl.operation === AclOperation.ALL) return true; // DENY wins outright
        } else if (acl.operation === op || acl.operation === AclOperation.ALL || (IMPLIED_BY.get(op)?.includes(acl.operation) ?? false)) {
          allowed = true;
        }
      }
      return false;
    };
    if (index !== undefined) {
      if (consider(index.literal.get(resource.name))) return false;
      if (consider(index.literal.get(WILDCARD))) return false;
      for (const n of index.prefixLengths) {
        if (n > resource.name.length) break;
        if (consider(index.prefixed.get(resource.name.slice(0, n)))) return false;
      }
    }
    if (allowed) return true;
    return !found && this.#allowIfNoAcl;
  }

  authorizeAny(ctx: AuthorizationSubject, op: AclOperation, type: ResourceType): boolean {
    const principal = `${ctx.principal.type}:${ctx.principal.name}`;
    if (this.#superUsers.has(principal)) return true;
    const index = this.#typeIndex(type);
    if (index === undefined) return this.#allowIfNoAcl;
    // Kafka's authorizeByResourceType: some ALLOW for the principal on a pattern no DENY for it covers.
    const applies = (acl: AclBinding) => (acl.principal === principal || acl.principal === WILDCARD_PRINCIPAL)
      && (acl.host === WILDCARD || acl.host === ctx.clientHost);
    const all = [...index.literal.values(), ...index.prefixed.values()].flat().filter(applies);
    const denies = all.filter((a) => a.permissionType === AclPermissionType.DENY && (a.operation === op || a.operation === AclOperation.ALL));
    if (denies.some((d) => d.resourceName === WILDCARD && d.patternType === PatternType.LITERAL)) return false;
    // A DENY covers an ALLOW's pattern when it is a prefix of it (prefixed DENY) or the same literal name.
    const covered = (a: AclBinding) => denies.some((d) => (d.patternType === PatternType.PREFIXED
      ? a.resourceName.startsWith(d.resourceName)
      : a.patternType === PatternType.LITERAL && d.resourceName === a.resourceName));
    return all.some((a) => a.permissionType === AclPermissionType.ALLOW
      && (a.operation === op || a.operation === AclOperation.ALL || (IMPLIED_BY.get(op)?.includes(a.operation) ?? false))
      && !covered(a));
  }

  #typeIndex(type: number): TypeIndex | undefined {
    const acls = this.#acls();
    if (acls !== this.#indexed) {
      this.#index = buildIndex(acls);
      this.#indexed = acls;
    }
    return this.#index.get(type);
  }
}

function buildIndex(acls: readonly AclBinding[]): Map<number, TypeIndex> {
  const index = new Map<number, TypeIndex>();
  for (const acl of acls) {
    let t = index.get(acl.resourceType);
    if (t === undefined) index.set(acl.resourceType, t = { literal: new Map(), prefixed: new Map(), prefixLengths: [] });
    const map = acl.patternType === PatternType.PREFIXED ? t.prefixed : t.literal;
    const list = map.get(acl.resourceName);
    if (list) list.push(acl);
    else map.set(acl.resourceName, [acl]);
  }
  for (const t of index.values()) t.prefixLengths = [...new Set([...t.prefixed.keys()].map((k) => k.length))].sort((a, b) => a - b);
  return index;
}

/** Where a handler's checks read the authorizer and the subject. */
interface AuthorizingContext extends AuthorizationSubject {
  authorizer?: Authorizer;
}

/** `ctx.authorizer` allows `op` on the resource; true when no authorizer is configured. */
export function authorized(ctx: AuthorizingContext, op: AclOperation, type: ResourceType, name: string): boolean {
  return ctx.authorizer === undefined || ctx.authorizer.authorize(ctx, op, { type, name });
}

/** `authorized` on the Cluster resource (`kafka-cluster`). */
export function clusterAuthorized(ctx: AuthorizingContext, op: AclOperation): boolean {
  return authorized(ctx, op, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME);
}

/** The names among `names` the principal may perform `op` on (each distinct name checked once). */
export function authorizedNames(ctx: AuthorizingContext, op: AclOperation, type: ResourceType, names: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) continue;
    seen.add(n);
    if (authorized(ctx, op, type, n)) out.add(n);
  }
  return out;
}

/**
 * The node's authorizer from its configuration: a StandardAuthorizer over the metadata's ACLs
 * when `authorizer.class.name` is set (any value: Runnel has one authorizer), else undefined
 * (every request allowed, as Kafka without an authorizer). Before the store has a snapshot there
 * are no ACLs, so only super users get through.
 */
export function authorizerFor(config: BrokerConfig, metadata?: Pick<MetadataStore, 'snapshot'>): Authorizer | undefined {
  if ((config.get('authorizer.class.name') ?? '').trim() === '') return undefined;
  const none: readonly AclBinding[] = [];
  return new StandardAuthorizer({
    acls: () => {
      try {
        return metadata?.snapshot().acls ?? none;
      } catch {
        return none;
      }
    },
    superUsers: config.get('super.users') ?? '',
    allowEveryoneIfNoAclFound: config.get('allow.everyone.if.no.acl.found'),
  });
}
