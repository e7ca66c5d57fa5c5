import type { BrokerContext } from '../context.ts';
import { createPartitions } from './create-partitions.ts';
import { createTopics } from './create-topics.ts';
import { deleteRecords } from './delete-records.ts';
import { deleteTopics } from './delete-topics.ts';
import { describeCluster } from './describe-cluster.ts';
import { describeConfigs } from './describe-configs.ts';
import { describeLogDirs } from './describe-log-dirs.ts';
import { fetch } from './fetch.ts';
import { initProducerId } from './init-producer-id.ts';
import { listOffsets } from './list-offsets.ts';
import { metadata } from './metadata.ts';
import { produce } from './produce.ts';

/** Every API the broker role serves, one declaration each; ApiVersions is derived from this list. */
export const brokerHandlers = (b: BrokerContext) => [
  produce(b),
  fetch(b),
  listOffsets(b),
  metadata(b),
  createTopics(b),
  deleteTopics(b),
  deleteRecords(b),
  initProducerId(b),
  describeConfigs(b),
  describeLogDirs(b),
  createPartitions(b),
  describeCluster(b),
];
