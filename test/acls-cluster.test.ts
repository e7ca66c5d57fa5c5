/**
 * ACLs in a cluster (docs/security.md, ACLs): a controller, two brokers and a coordinator node with
 * the authorizer on. ACLs created through one node go to the controller (controller.createAcls),
 * which writes them to Redis with its fenced script; every node then enforces them (Metadata hides
 * a topic, FindCoordinator refuses a group) and lists them (DescribeAcls). A deletion through
 * another node (the coordinator) reaches every node the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, encodeRecordBatch, ErrorCode } from '@runnel/protocol';
import { API_AUTHORIZATION } from '@runnel/kafka-server';
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

  it('every API each node serves has a rule, and a node that does not lead a denied topic says so before saying who leads it (existing or not)', async () => {
    for (const node of nodes()) {
      const served = (await kafkaRequest(node.port, ApiKey.ApiVersions, 3, { clientSoftwareName: 't', clientSoftwareVersion: '1' })).apiKeys.map((k) => k.apiKey);
      expect(served.filter((k) => k !== ApiKey.ApiVersions && API_AUTHORIZATION[k] === undefined)).toEqual([]);
    }
    // DENY everything on the prefix "h": the existing "hidden" and the missing "hghost" look alike.
    const created = await kafkaRequest(cluster.brokers[0]!.port, ApiKey.CreateAcls, 1, {
      creations: [{ ...binding(ResourceType.TOPIC, 'h', AclOperation.ALL, AclPermissionType.DENY), resourcePatternType: PatternType.PREFIXED }],
    });
    expect(created.results.map((r) => r.errorCode)).toEqual([ErrorCode.NONE]);
    // Each node: the leader of "hidden", the broker that does not lead it, the coordinator node that leads nothing.
    const codes = async (node: ClusterNode, topic: string) => {
      const produce = await kafkaRequest(node.port, ApiKey.Produce, 9, {
        transactionalId: null, acks: 1, timeoutMs: 5_000, topicData: [{ name: topic, partitionData: [{ index: 0, records: encodeRecordBatch({ records: [{ value: 'x' }] }) }] }],
      });
      const fetch = await kafkaRequest(node.port, ApiKey.Fetch, 11, {
        replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, rackId: '', forgottenTopicsData: [],
        topics: [{ topic, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1 << 20 }] }],
      });
      const offsets = await kafkaRequest(node.port, ApiKey.ListOffsets, 7, {
        replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }],
      });
      return [produce.responses[0]!.partitionResponses[0]!.errorCode, fetch.responses[0]!.partitions[0]!.errorCode, offsets.topics[0]!.partitions[0]!.errorCode];
    };
    await until('every node to enforce the prefixed DENY', async () => {
      for (const node of nodes()) if ((await codes(node, 'hghost'))[0] !== ErrorCode.TOPIC_AUTHORIZATION_FAILED) return false;
      return true;
    }, 10_000);
    const denied = Array(3).fill(ErrorCode.TOPIC_AUTHORIZATION_FAILED);
    for (const node of nodes()) {
      expect(await codes(node, 'hidden'), `node ${node.nodeId}`).toEqual(denied);
      expect(await codes(node, 'hghost'), `node ${node.nodeId}`).toEqual(denied);
    }
  }, 60_000);
});
