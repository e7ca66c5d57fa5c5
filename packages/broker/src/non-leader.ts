import { statfsSync } from 'node:fs';
import { silentLogger, topicConfig, type BrokerConfig, type Logger } from '@runnel/common';
import type { Handler } from '@runnel/kafka-server';
import type { MetadataStore, TopicMetadata } from '@runnel/metadata';
import type { BrokerContext } from './context.ts';
import { brokerHandlers } from './handlers/index.ts';
import type { Lookup } from './partitions.ts';
import { FetchPurgatory } from './purgatory.ts';
import type { ReplicaManager } from './replication/replica-manager.ts';

export interface NonLeaderOptions {
  /** The node's config: its id, the topic defaults CreateTopics and auto-creation use. */
  config: BrokerConfig;
  /** The cluster store; its writes (CreateTopics, DeleteTopics, ...) go to the controller, as a broker's do. */
  metadata: MetadataStore;
  logger?: Logger;
}

/**
 * Every API the broker serves, for a node that leads no partition and holds no log (a coordinator
 * node): the same declarations as {@link brokerHandlers} (so the two lists and their version
 * ranges cannot drift), over a context where no partition is local. That gives Kafka's answers for
 * partitions a node does not lead: Produce, Fetch, ListOffsets and DeleteRecords answer
 * NOT_LEADER_OR_FOLLOWER per partition (UNKNOWN_TOPIC_OR_PARTITION for an unknown one,
 * LEADER_NOT_AVAILABLE while it has none), DescribeLogDirs lists the node's `log.dirs` holding no
 * partition (not no dir at all: the Java Admin reads an empty answer as CLUSTER_AUTHORIZATION_FAILED,
 * which fails kafka-log-dirs over every node), and the admin APIs work
 * from metadata and forward their writes through the store, as a cluster broker's do. The cli
 * passes them to the coordinator node (roles do not import each other).
 */
export function nonLeaderHandlers(o: NonLeaderOptions): Handler[] {
  const { config, metadata } = o;
  const context: BrokerContext = {
    nodeId: config.nodeId,
    config,
    metadata,
    partitions: {
      leaderLog: async (topic, partition) => notLeader(metadata.snapshot().topics.get(topic), partition),
      replicaLog: async () => null,
      topicConfig: (topic: TopicMetadata) => topicConfig(config, topic.configs),
    },
    logs: { logs: () => [], dirs: () => config.logDirs.map(emptyDir), alterLogDir: () => 'no-replica', futureLogs: () => [] },
    // Fetch waits here only for partitions it reads (none ever is: every lookup fails first).
    purgatory: new FetchPurgatory(),
    replicas: nothingLocal<ReplicaManager>('replicas'),
    logger: o.logger ?? silentLogger(),
    async createTopic(name, partitions, replicationFactor, configs = {}, assignments) {
      await metadata.createTopic({
        name,
        partitions: assignments?.length ?? partitions ?? config.get('num.partitions'),
        replicationFactor: assignments?.[0]?.length ?? replicationFactor ?? config.get('default.replication.factor'),
        configs,
        ...(assignments ? { assignments } : {}),
      });
    },
  };
  return brokerHandlers(context);
}

/** A configured data dir that holds no partition, with its file system's size (zeros if it cannot be read). */
function emptyDir(path: string): ReturnType<BrokerContext['logs']['dirs']>[number] {
  let totalBytes = 0;
  let freeBytes = 0;
  try {
    const s = statfsSync(path);
    totalBytes = s.blocks * s.bsize;
    freeBytes = s.bavail * s.bsize;
  } catch {
    // not created (yet) or gone: zeros, as the log manager reports an unreadable dir
  }
  return { path, online: true, totalBytes, freeBytes, usedBytes: 0, partitions: 0 };
}

/** Partitions.leaderLog's answer when the leader is never this node. */
function notLeader(topic: TopicMetadata | undefined, partition: number): Lookup {
  const state = topic?.partitions[partition];
  if (!state) return { ok: false, error: 'UNKNOWN_TOPIC_OR_PARTITION' };
  if (state.leader < 0) return { ok: false, error: 'LEADER_NOT_AVAILABLE' };
  return { ok: false, error: 'NOT_LEADER_OR_FOLLOWER' };
}

/**
 * A part a handler reaches only through a partition led here, which this node never has: any use
 * is a bug, and throws (the server logs it and closes that connection) rather than answering wrong.
 */
function nothingLocal<T extends object>(what: string): T {
  return new Proxy({} as T, {
    get(_target, prop) {
      throw new Error(`a node that leads no partition has no ${what} (${String(prop)})`);
    },
  });
}
