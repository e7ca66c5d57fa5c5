/**
 * ACLs in a cluster (docs/security.md, ACLs): a controller, two brokers and a coordinator node with
 * the authorizer on. ACLs created through one node go to the controller (controller.createAcls),
 * which writes them to Redis with its fenced script; every node then enforces them (Metadata hides
 * a topic, FindCoordinator refuses a group) and lists them (DescribeAcls). A deletion through
 * another node (the coordinator) reaches every node the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { AclOperation, AclPermissionType, PatternType, ResourceType } from '@runnel/metadata';
import { startCluster, type ClusterNode, type TestCluster } from './helpers/cluster.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import { until } from './helpers/until.ts';

let cluster: TestCluster;
const nodes = (): ClusterNode[] => [...cluster.brokers, ...cluster.coordinators];

beforeAll(async () => {
  // No ACL on a resource allows everyone (so ANONYMOUS may create the first ones), until one exists.
  cluster = await startCluster({ brokers: 2, coordinators: 1, set: ['authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer', 'allow.everyone.if.no.acl.found=true'] });
  const created = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.CreateTopics, 5, {
    topics: ['hidden', 'shown'].map((name) => ({ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] })), timeoutMs: 10_000, validateOnly: false,
  });
  expect(created.topics.map((t) => t.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.NONE]);
}, 120_000);

afterAll(async () => {
  await cluster?.cleanup();
});

const binding = (resourceType: number, resourceName: string, operation: number, permissionType: number) => ({
  resourceType, resourceName, resourcePatternType: PatternType.LITERAL, principal: 'User:ANONYMOUS', host: '*', operation, permissionType,
});

const topicsOn = async (node: ClusterNode) => (await kafkaRequest(node.port, ApiKey.Metadata, 9, {
  topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false,
})).topics.map((t) => t.name).filter((n) => n === 'hidden' || n === 'shown').sort();
const groupErrorOn = async (node: ClusterNode) => (await kafkaRequest(node.port, ApiKey.FindCoordinator, 3, { key: 'secret-group', keyType: 0 })).errorCode;
const aclCountOn = async (node: ClusterNode) => (await kafkaRequest(node.port, ApiKey.DescribeAcls, 1, {
  resourceTypeFilter: ResourceType.ANY, resourceNameFilter: null, patternTypeFilter: PatternType.ANY, principalFilter: null, hostFilter: null,
  operation: AclOperation.ANY, permissionType: AclPermissionType.ANY,
})).resources.reduce((n, r) => n + r.acls.length, 0);

describe('ACLs in a cluster', () => {
  it('ACLs created on one broker are enforced and listed by every node; a deletion on the coordinator node reaches them all', async () => {
    for (const node of nodes()) expect(await topicsOn(node)).toEqual(['hidden', 'shown']);
    const created = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.CreateAcls, 1, {
      creations: [
        // Keep ANONYMOUS the cluster's administrator once the cluster resource has an ACL.
        binding(ResourceType.CLUSTER, 'kafka-cluster', AclOperation.ALL, AclPermissionType.ALLOW),
        binding(ResourceType.TOPIC, 'hidden', AclOperation.DESCRIBE, AclPermissionType.DENY),
        binding(ResourceType.GROUP, 'secret-group', AclOperation.DESCRIBE, AclPermissionType.DENY),
      ],
    });
    expect(created.results.map((r) => r.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.NONE, ErrorCode.NONE]);

    await until('every node to enforce and list the ACLs', async () => {
      for (const node of nodes()) {
        if ((await topicsOn(node)).join() !== 'shown') return false;
        if (await aclCountOn(node) !== 3) return false;
      }
      return true;
    }, 10_000);
    for (const node of nodes()) expect(await groupErrorOn(node)).toBe(ErrorCode.GROUP_AUTHORIZATION_FAILED);

    const deleted = await kafkaRequest(cluster.coordinators[0]!.port, ApiKey.DeleteAcls, 1, {
      filters: [{ resourceTypeFilter: ResourceType.TOPIC, resourceNameFilter: 'hidden', patternTypeFilter: PatternType.LITERAL, principalFilter: null, hostFilter: null, operation: AclOperation.ANY, permissionType: AclPermissionType.ANY }],
    });
    expect(deleted.filterResults[0]!.matchingAcls.map((a) => [a.resourceName, a.operation, a.permissionType])).toEqual([['hidden', AclOperation.DESCRIBE, AclPermissionType.DENY]]);
    await until('every node to see the deletion', async () => {
      for (const node of nodes()) if ((await topicsOn(node)).join() !== 'hidden,shown' || await aclCountOn(node) !== 2) return false;
      return true;
    }, 10_000);
  }, 60_000);
});
