/**
 * StandardAuthorizer's rules on their own (src/authorizer.ts): the cases the end-to-end tests
 * (test/acls.test.ts) do not reach one by one — host matching, implied operations for ALLOW only,
 * allow.everyone.if.no.acl.found per resource, prefixes of several lengths, the index following a
 * changed list, and authorizeAny (KIP-679's idempotent producer check).
 */
import { describe, expect, it } from 'vitest';
import { AclOperation as Op, AclPermissionType, PatternType, ResourceType, type AclBinding } from '@runnel/metadata';
import { StandardAuthorizer } from '../src/authorizer.ts';

const acl = (o: Partial<AclBinding> & Pick<AclBinding, 'resourceName' | 'operation'>): AclBinding => ({
  resourceType: ResourceType.TOPIC, patternType: PatternType.LITERAL, principal: 'User:alice', host: '*', permissionType: AclPermissionType.ALLOW, ...o,
});
const who = (name: string, clientHost = '10.0.0.1') => ({ principal: { type: 'User' as const, name }, clientHost });
const topic = (name: string) => ({ type: ResourceType.TOPIC, name });

describe('StandardAuthorizer', () => {
  it('matches the host, and implies Describe from Read/Write/Delete/Alter for ALLOW only', () => {
    const a = new StandardAuthorizer({ acls: () => [
      acl({ resourceName: 't', operation: Op.READ, host: '10.0.0.1' }),
      acl({ resourceName: 'u', operation: Op.ALTER_CONFIGS }),
      acl({ resourceName: 'v', operation: Op.ALL }),
      acl({ resourceName: 'v', operation: Op.READ, permissionType: AclPermissionType.DENY }),
    ] });
    expect(a.authorize(who('alice'), Op.READ, topic('t'))).toBe(true);
    expect(a.authorize(who('alice', '10.0.0.2'), Op.READ, topic('t'))).toBe(false);
    expect(a.authorize(who('alice'), Op.DESCRIBE, topic('t'))).toBe(true);
    expect(a.authorize(who('alice'), Op.WRITE, topic('t'))).toBe(false);
    expect(a.authorize(who('alice'), Op.DESCRIBE_CONFIGS, topic('u'))).toBe(true);
    expect(a.authorize(who('alice'), Op.DESCRIBE, topic('u'))).toBe(false);
    // A DENY on Read does not deny Describe (implication is for ALLOW), and ALL allows it.
    expect(a.authorize(who('alice'), Op.READ, topic('v'))).toBe(false);
    expect(a.authorize(who('alice'), Op.DESCRIBE, topic('v'))).toBe(true);
    expect(a.authorize(who('bob'), Op.READ, topic('t'))).toBe(false);
  });

  it('prefixes of any length, the wildcard name and principal; super users; allow.everyone only where a resource has no ACL', () => {
    const a = new StandardAuthorizer({
      acls: () => [
        acl({ resourceName: 'a', patternType: PatternType.PREFIXED, operation: Op.WRITE }),
        acl({ resourceName: 'abc-', patternType: PatternType.PREFIXED, operation: Op.WRITE, permissionType: AclPermissionType.DENY }),
        acl({ resourceName: '*', operation: Op.DESCRIBE, principal: 'User:*' }),
        acl({ resourceType: ResourceType.GROUP, resourceName: 'g', operation: Op.READ }),
      ],
      superUsers: ' User:root ; User:admin ',
      allowEveryoneIfNoAclFound: true,
    });
    expect(a.authorize(who('alice'), Op.WRITE, topic('abacus'))).toBe(true);
    expect(a.authorize(who('alice'), Op.WRITE, topic('abc-1'))).toBe(false);
    expect(a.authorize(who('alice'), Op.WRITE, topic('zzz'))).toBe(false);
    expect(a.authorize(who('anyone'), Op.DESCRIBE, topic('zzz'))).toBe(true);
    expect(a.authorize(who('admin'), Op.WRITE, topic('abc-1'))).toBe(true);
    // Groups other than g have no ACL at all: allowed to everyone; g has one, so bob is refused there.
    expect(a.authorize(who('bob'), Op.READ, { type: ResourceType.GROUP, name: 'other' })).toBe(true);
    expect(a.authorize(who('bob'), Op.READ, { type: ResourceType.GROUP, name: 'g' })).toBe(false);
    expect(a.authorize(who('bob'), Op.ALTER, { type: ResourceType.CLUSTER, name: 'kafka-cluster' })).toBe(true);
  });

  it('indexes the list again when it changes', () => {
    let acls: AclBinding[] = [];
    const a = new StandardAuthorizer({ acls: () => acls });
    expect(a.authorize(who('alice'), Op.READ, topic('t'))).toBe(false);
    acls = [acl({ resourceName: 't', operation: Op.READ })];
    expect(a.authorize(who('alice'), Op.READ, topic('t'))).toBe(true);
    acls = [];
    expect(a.authorize(who('alice'), Op.READ, topic('t'))).toBe(false);
  });

  it('authorizeAny: some ALLOW no DENY of the principal covers', () => {
    const of = (acls: AclBinding[]) => new StandardAuthorizer({ acls: () => acls }).authorizeAny(who('alice'), Op.WRITE, ResourceType.TOPIC);
    expect(of([])).toBe(false);
    expect(of([acl({ resourceName: 'x', operation: Op.WRITE })])).toBe(true);
    expect(of([acl({ resourceName: 'x', operation: Op.WRITE }), acl({ resourceName: 'x', operation: Op.WRITE, permissionType: AclPermissionType.DENY })])).toBe(false);
    expect(of([acl({ resourceName: 'x', operation: Op.WRITE }), acl({ resourceName: 'y', operation: Op.WRITE, permissionType: AclPermissionType.DENY })])).toBe(true);
    expect(of([acl({ resourceName: 'xy', operation: Op.WRITE }), acl({ resourceName: 'x', patternType: PatternType.PREFIXED, operation: Op.WRITE, permissionType: AclPermissionType.DENY })])).toBe(false);
    expect(of([acl({ resourceName: 'x', operation: Op.WRITE }), acl({ resourceName: '*', operation: Op.ALL, permissionType: AclPermissionType.DENY })])).toBe(false);
    expect(of([acl({ resourceName: 'x', operation: Op.READ })])).toBe(false);
  });
});
