import {
  createAclsHandler, deleteAclsHandler, describeAclsHandler,
  alterClientQuotasHandler, describeClientQuotasHandler, alterConfigsHandler, alterPartitionReassignmentsHandler, describeConfigsHandler, describeTopicPartitionsHandler, incrementalAlterConfigsHandler, electLeadersHandler, initProducerIdHandler, listPartitionReassignmentsHandler, metadataHandler,
} from '@runnel/kafka-server';
import type { BrokerContext } from '../context.ts';
import { toKafkaError } from '../errors.ts';
import { createPartitions } from './create-partitions.ts';
import { createTopics } from './create-topics.ts';
import { deleteRecords } from './delete-records.ts';
import { deleteTopics } from './delete-topics.ts';
import { describeCluster } from './describe-cluster.ts';
import { alterReplicaLogDirs } from './alter-replica-log-dirs.ts';
import { describeLogDirs } from './describe-log-dirs.ts';
import { describeProducers } from './describe-producers.ts';
import { fetch } from './fetch.ts';
import { listOffsets } from './list-offsets.ts';
import { offsetForLeaderEpoch } from './offset-for-leader-epoch.ts';
import { produce } from './produce.ts';
import { writeTxnMarkersHandler } from './write-txn-markers.ts';

/** Every API the broker role serves, one declaration each; ApiVersions is derived from this list. */
export const brokerHandlers = (b: BrokerContext) => [
  produce(b),
  fetch(b),
  listOffsets(b),
  offsetForLeaderEpoch(b),
  metadataHandler({
    metadata: b.metadata,
    autoCreate: () => b.config.get('auto.create.topics.enable'),
    createTopic: (name) => b.createTopic(name),
    errorCode: (err) => toKafkaError(err).code,
  }),
  createTopics(b),
  deleteTopics(b),
  deleteRecords(b),
  initProducerIdHandler(b.metadata),
  describeConfigsHandler({ nodeId: b.nodeId, config: b.config, metadata: b.metadata, topicConfig: (t) => b.partitions.topicConfig(t) }),
  alterConfigsHandler({ config: b.config, metadata: b.metadata }),
  incrementalAlterConfigsHandler({ config: b.config, metadata: b.metadata }),
  describeClientQuotasHandler(b.metadata),
  alterClientQuotasHandler(b.metadata),
  describeLogDirs(b),
  alterReplicaLogDirs(b),
  createPartitions(b),
  describeCluster(b),
  electLeadersHandler(b.metadata),
  alterPartitionReassignmentsHandler(b.metadata),
  listPartitionReassignmentsHandler(b.metadata),
  describeTopicPartitionsHandler(b.metadata),
  describeAclsHandler(b.metadata),
  createAclsHandler(b.metadata),
  deleteAclsHandler(b.metadata),
  writeTxnMarkersHandler(b),
  describeProducers(b),
];
