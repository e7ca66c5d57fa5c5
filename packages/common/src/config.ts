/**
 * Broker and topic configuration under Kafka's names, with Kafka's defaults and typed values.
 *
 * One declarative table (BROKER_CONFIGS) says, per key: type, default (as the string a user would
 * write), validator, a documentation line, and, for keys that also exist per topic, the topic-level
 * name. Everything else is derived from it: parsing, error messages, DescribeConfigs entries and
 * the topic table.
 *
 * Where values come from, highest first:
 *   overrides (`--set k=v`)  >  environment (`KAFKA_…`, apache/kafka image convention)
 *   >  properties file  >  the table's default.
 * All three non-default layers are what Kafka calls STATIC_BROKER_CONFIG (read at startup); the
 * finer origin ('override' | 'env' | 'file' | 'default') is kept for the startup print.
 * Unknown keys are returned in `unknown` (the caller warns); they never fail a start, so a
 * server.properties written for Kafka can be used unchanged.
 *
 * Value types: int and long are JS numbers (Kafka's Long.MAX_VALUE sentinels such as
 * `log.flush.interval.messages` lose precision above 2^53, which only ever means "never");
 * list is string[]; password is a string that describe() never shows.
 *
 * Runnel differs from Kafka in these defaults, because it starts as one process on a laptop:
 *   listeners                     PLAINTEXT://127.0.0.1:9092 (Kafka: PLAINTEXT://:9092, all interfaces)
 *   log.dir                       ./data (Kafka: /tmp/kafka-logs)
 *   node.id                       1 (Kafka: required in KRaft mode)
 *   offsets.topic.replication.factor  1 (Kafka: 3; single-node compose files always set 1)
 */
import { RunnelError } from './errors.ts';

// ------------------------------------------------------------------------------------ the table

export type ConfigType = 'string' | 'int' | 'long' | 'double' | 'boolean' | 'list' | 'password';

/** The JS type of each config type. */
export interface ConfigTypeMap {
  string: string;
  int: number;
  long: number;
  double: number;
  boolean: boolean;
  list: string[];
  password: string;
}

export type Validator =
  | { kind: 'range'; min?: number; max?: number }
  | { kind: 'enum'; values: readonly string[]; ignoreCase?: boolean }
  | { kind: 'listOf'; values: readonly string[]; nonEmpty?: boolean }
  | { kind: 'nonEmpty' }
  | { kind: 'listeners'; advertised?: boolean }
  /** Kafka's throttled replica list: `*`, or `partition:brokerId` pairs (empty = none). */
  | { kind: 'throttledReplicas' }
  /** `max.connections.per.ip.overrides`: comma-separated `host:count` (count ≥ 0), empty = none. */
  | { kind: 'hostCounts' };

export interface ConfigDef<T extends ConfigType = ConfigType, D extends string | null = string | null> {
  type: T;
  /** The default as a user would write it; null = no value (see the doc line for what that means). */
  default: D;
  validator?: Validator;
  doc: string;
  /** The topic-level name when the key is also a topic config (`log.segment.bytes` ↔ `segment.bytes`). */
  topic?: string;
  /**
   * Multiplier to the topic config's unit (`log.retention.hours` → `retention.ms` is 3600000). Among
   * broker keys for the same topic config, the smallest unit wins when set (ms > minutes > hours),
   * as in Kafka.
   */
  topicScale?: number;
  /** Topic default when every broker synonym is null (`flush.ms` when `log.flush.interval.ms` is unset). */
  topicDefault?: string;
  /** Accepted for compatibility with Kafka's server.properties; Runnel does not act on it. */
  unused?: boolean;
  /**
   * Belongs to a subsystem Runnel does not have (transactions, KRaft, TLS): accepted in a
   * properties file like any unused key, but not listed by DescribeConfigs.
   */
  absent?: boolean;
  /**
   * A dynamic broker config (Kafka's DynamicBrokerConfig): AlterConfigs may set it per broker or
   * as the cluster-wide default, and it applies without a restart. Keys with a topic-level name
   * (the log defaults) are dynamic unless this is false (see isDynamicBrokerConfig).
   */
  dynamic?: boolean;
}

type DefExtra = Omit<ConfigDef, 'type' | 'default' | 'doc'>;

/** Builds a table row, keeping `type`, `default` and `topic` as literal types for the typed getters. */
function def<T extends ConfigType, const D extends string | null, const E extends DefExtra = {}>(type: T, dflt: D, doc: string, extra?: E): ConfigDef<T, D> & E {
  return { type, default: dflt, doc, ...(extra ?? ({} as E)) };
}

const atLeast = (min: number): Validator => ({ kind: 'range', min });
const between = (min: number, max: number): Validator => ({ kind: 'range', min, max });
const INT_MAX = '2147483647';
const LONG_MAX = '9223372036854775807';

export const COMPRESSION_TYPES = ['uncompressed', 'gzip', 'snappy', 'lz4', 'zstd', 'producer'] as const;
export const CLEANUP_POLICIES = ['delete', 'compact'] as const;
export const TIMESTAMP_TYPES = ['CreateTime', 'LogAppendTime'] as const;

export const BROKER_CONFIGS = {
  // --- identity and listeners
  'node.id': def('int', '1', 'This node\'s id; unique in the cluster (Kafka requires it in KRaft mode; Runnel defaults to 1).', { validator: atLeast(0) }),
  'broker.id': def('int', null, 'Older name of node.id; if both are set they must agree.', { validator: atLeast(0) }),
  'cluster.id': def('string', null, 'Cluster id; cluster mode checks it against the one stored on disk and in Redis.'),
  'listeners': def('list', 'PLAINTEXT://127.0.0.1:9092', 'Comma-separated NAME://host:port the node binds, one Kafka listener each (names and ports unique; port 0 picks one); an empty host binds all interfaces (Kafka\'s default is PLAINTEXT://:9092).', { validator: { kind: 'listeners' } }),
  'advertised.listeners': def('list', null, 'NAME://host:port given to the clients that came in on listener NAME (Metadata, FindCoordinator); defaults to listeners (a wildcard host there is advertised as this machine\'s host name); 0.0.0.0 is not allowed.', { validator: { kind: 'listeners', advertised: true } }),
  'listener.security.protocol.map': def('string', 'PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL', 'NAME:PROTOCOL pairs giving every listener its security protocol; Runnel serves PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL (TLS: ssl.* keys; SASL: sasl.* keys) and refuses to start a listener mapped to a protocol it does not serve.'),
  'inter.broker.listener.name': def('string', null, 'Listener whose advertised address is the node\'s registered address (Runnel nodes talk to each other over RPC); must be an advertised listener; unset = the one named after security.inter.broker.protocol.'),
  'security.inter.broker.protocol': def('string', 'PLAINTEXT', 'Picks the inter-broker listener by name when inter.broker.listener.name is unset (Kafka); set only one of the two.', { validator: { kind: 'enum', values: ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'], ignoreCase: true } }),
  'process.roles': def('list', null, 'KRaft roles; Runnel picks roles with `runnel broker|controller|coordinator`; without broker, a configuration needs no client listener (a controller\'s).'),
  'controller.listener.names': def('list', null, 'KRaft controller listeners: never served to clients nor advertised; a listener named here is not bound (Runnel\'s controller speaks RPC on runnel.rpc.listener).'),
  'controller.quorum.voters': def('list', null, 'KRaft quorum; Runnel keeps metadata in Redis.', { unused: true, absent: true }),

  // --- cluster mode (`runnel controller|broker|coordinator`, `runnel cluster up`)
  'runnel.redis.url': def('password', null, 'Redis holding the cluster metadata (redis://[:password@]host:port/db, or redis+unix:///path/redis.sock); required by the cluster roles, unused by `runnel start`. Sensitive (it may hold the Redis password): DescribeConfigs and the logs never show it.'),
  'runnel.rpc.listener': def('string', '127.0.0.1:0', 'host:port of this node\'s RPC listener (protobuf RPC between roles); port 0 picks one and registers it.'),
  'runnel.rpc.advertised.listener': def('string', null, 'host:port other nodes dial for this node\'s RPC listener when it is not the bound address (a proxy, NAT); unset = the bound address.'),
  'broker.session.timeout.ms': def('int', '9000', 'A node whose last heartbeat to the controller is older than this is fenced (Kafka KRaft name).', { validator: atLeast(1000) }),
  'broker.heartbeat.interval.ms': def('int', '2000', 'How often a node heartbeats to the controller (Kafka KRaft name).', { validator: atLeast(100) }),
  'runnel.controller.lease.ms': def('int', '6000', 'TTL of the controller lease in Redis; a standby controller takes over after it lapses.', { validator: atLeast(1000) }),

  // --- storage
  'log.dirs': def('list', null, 'Data directories (JBOD); when unset, log.dir is used.', { validator: { kind: 'listOf', values: [], nonEmpty: true } }),
  'log.dir': def('string', './data', 'Single data directory, used when log.dirs is unset (Kafka: /tmp/kafka-logs).', { validator: { kind: 'nonEmpty' } }),
  'num.recovery.threads.per.data.dir': def('int', '1', 'Log recovery parallelism per data directory at startup.', { validator: atLeast(1) }),
  'log.segment.bytes': def('int', '1073741824', 'Maximum size of one log segment file.', { validator: atLeast(14), topic: 'segment.bytes' }),
  'log.roll.ms': def('long', null, 'Maximum age of the active segment before it rolls; overrides log.roll.hours.', { validator: atLeast(1), topic: 'segment.ms', topicScale: 1 }),
  'log.roll.hours': def('int', '168', 'Maximum age of the active segment in hours, when log.roll.ms is unset.', { validator: atLeast(1), topic: 'segment.ms', topicScale: 3_600_000 }),
  'log.retention.ms': def('long', null, 'How long to keep a segment; -1 = forever; overrides .minutes and .hours.', { validator: atLeast(-1), topic: 'retention.ms', topicScale: 1 }),
  'log.retention.minutes': def('int', null, 'Retention in minutes, when log.retention.ms is unset.', { validator: atLeast(-1), topic: 'retention.ms', topicScale: 60_000 }),
  'log.retention.hours': def('int', '168', 'Retention in hours, when .ms and .minutes are unset.', { validator: atLeast(-1), topic: 'retention.ms', topicScale: 3_600_000 }),
  'log.retention.bytes': def('long', '-1', 'Maximum size of one partition before old segments are deleted; -1 = no limit.', { validator: atLeast(-1), topic: 'retention.bytes' }),
  'log.retention.check.interval.ms': def('long', '300000', 'How often the retention task runs.', { validator: atLeast(1) }),
  'log.cleanup.policy': def('list', 'delete', 'delete, compact, or both (comma-separated).', { validator: { kind: 'listOf', values: CLEANUP_POLICIES, nonEmpty: true }, topic: 'cleanup.policy' }),
  'log.index.interval.bytes': def('int', '4096', 'Bytes of log between two offset-index entries.', { validator: atLeast(0), topic: 'index.interval.bytes' }),
  'log.index.size.max.bytes': def('int', '10485760', 'Maximum size of one offset or time index file.', { validator: atLeast(4), topic: 'segment.index.bytes' }),
  'log.flush.interval.messages': def('long', LONG_MAX, 'Messages appended before a forced fsync (Kafka relies on replication instead).', { validator: atLeast(1), topic: 'flush.messages' }),
  'log.flush.interval.ms': def('long', null, 'Maximum time before a forced fsync; unset = never.', { validator: atLeast(0), topic: 'flush.ms', topicDefault: LONG_MAX }),
  'log.segment.delete.delay.ms': def('long', '60000', 'Delay before a deleted segment file is removed from disk.', { validator: atLeast(0), topic: 'file.delete.delay.ms' }),
  'log.cleaner.delete.retention.ms': def('long', '86400000', 'How long delete tombstones are kept in compacted topics.', { validator: atLeast(0), topic: 'delete.retention.ms' }),
  'log.cleaner.min.cleanable.ratio': def('double', '0.5', 'Dirty ratio above which a compacted log is cleaned.', { validator: between(0, 1), topic: 'min.cleanable.dirty.ratio' }),
  'log.cleaner.min.compaction.lag.ms': def('long', '0', 'Minimum age of a record before it can be compacted.', { validator: atLeast(0), topic: 'min.compaction.lag.ms' }),
  'log.cleaner.max.compaction.lag.ms': def('long', LONG_MAX, 'Maximum age of a record before it must be compacted.', { validator: atLeast(1), topic: 'max.compaction.lag.ms' }),
  'log.message.timestamp.type': def('string', 'CreateTime', 'CreateTime keeps the producer\'s timestamps; LogAppendTime stamps batches on append.', { validator: { kind: 'enum', values: TIMESTAMP_TYPES }, topic: 'message.timestamp.type' }),
  'message.max.bytes': def('int', '1048588', 'Largest record batch the broker accepts (after compression).', { validator: atLeast(0), topic: 'max.message.bytes' }),
  'compression.type': def('string', 'producer', 'Codec batches are stored with; producer keeps what the client sent.', { validator: { kind: 'enum', values: COMPRESSION_TYPES, ignoreCase: true }, topic: 'compression.type' }),
  'min.insync.replicas': def('int', '1', 'Replicas that must have a batch before acks=all succeeds.', { validator: atLeast(1), topic: 'min.insync.replicas' }),
  // Dynamic as in Kafka: the controller reads it (over its static value) at every election.
  'unclean.leader.election.enable': def('boolean', 'false', 'Allow an out-of-sync replica to become leader (loses data).', { topic: 'unclean.leader.election.enable' }),

  // --- topics and replication
  'num.partitions': def('int', '1', 'Partitions of an auto-created topic or of CreateTopics with -1.', { validator: atLeast(1) }),
  'default.replication.factor': def('int', '1', 'Replication factor of auto-created topics.', { validator: between(1, 32767) }),
  'auto.create.topics.enable': def('boolean', 'true', 'Create a topic when a client asks for it in Metadata or produces to it.'),
  'delete.topic.enable': def('boolean', 'true', 'Allow DeleteTopics.'),
  'replica.lag.time.max.ms': def('long', '30000', 'A follower that has not caught up for this long leaves the ISR.', { validator: atLeast(1) }),
  'replica.fetch.max.bytes': def('int', '1048576', 'Bytes a follower asks for per partition in one fetch.', { validator: atLeast(0) }),
  'replica.fetch.response.max.bytes': def('int', '10485760', 'Bytes a follower asks for in one fetch over all its partitions (the first batch always comes).', { validator: atLeast(0) }),
  'replica.fetch.wait.max.ms': def('int', '500', 'How long a follower\'s fetch waits at the leader when there is nothing new.', { validator: atLeast(0) }),
  'replica.fetch.backoff.ms': def('int', '1000', 'How long a follower waits after a failed fetch before trying that leader again.', { validator: atLeast(0) }),
  'replica.high.watermark.checkpoint.interval.ms': def('long', '5000', 'How often each log dir\'s replication-offset-checkpoint (high watermarks) is written.', { validator: atLeast(1) }),
  'offsets.commit.timeout.ms': def('int', '5000', 'How long a coordinator\'s append to __consumer_offsets waits for the in-sync replicas.', { validator: atLeast(1) }),
  'broker.rack': def('string', null, 'Rack of this broker; the controller spreads a partition\'s replicas over racks.'),
  'auto.leader.rebalance.enable': def('boolean', 'true', 'The controller moves leadership back to preferred leaders (the first replica) when a broker\'s imbalance is too high.'),
  'leader.imbalance.check.interval.seconds': def('long', '300', 'How often the controller checks the leader imbalance.', { validator: atLeast(1) }),
  'leader.replication.throttled.rate': def('long', LONG_MAX, 'Bytes/s a leader sends to followers of the partitions in their topic\'s leader.replication.throttled.replicas (out-of-sync replicas only); a dynamic broker config (kafka-configs --entity-type brokers, kafka-reassign-partitions --throttle).', { validator: atLeast(0), dynamic: true }),
  'follower.replication.throttled.rate': def('long', LONG_MAX, 'Bytes/s a follower fetches for the partitions in their topic\'s follower.replication.throttled.replicas (while out of sync); a dynamic broker config.', { validator: atLeast(0), dynamic: true }),
  'replication.quota.window.num': def('int', '11', 'Samples in the replication throttle\'s rate window (the rate counts at least num - 1 of them, so a fresh quota allows that many seconds\' worth at once).', { validator: atLeast(1) }),
  'replication.quota.window.size.seconds': def('int', '1', 'Length of one sample of the replication throttle\'s rate window.', { validator: atLeast(1) }),
  'replica.alter.log.dirs.io.max.bytes.per.second': def('long', LONG_MAX, 'Bytes per second a move of replicas between the log dirs of one broker (AlterReplicaLogDirs) may copy; read on every copied chunk. A dynamic broker config, which kafka-reassign-partitions --verify clears.', { validator: atLeast(0), dynamic: true }),
  'leader.imbalance.per.broker.percentage': def('int', '10', 'Share of a broker\'s preferred partitions led elsewhere above which they move back.', { validator: between(0, 100) }),

  // --- network
  'socket.request.max.bytes': def('int', '104857600', 'Largest request frame accepted; bigger frames close the connection.', { validator: atLeast(1) }),
  'queued.max.request.bytes': def('long', '536870912', 'Bytes of requests being received or handled (all connections) past which no more are read until some are answered; -1 = unbounded (Kafka\'s default; Runnel bounds it).', { validator: atLeast(-1) }),
  'max.connections': def('int', INT_MAX, 'Maximum open client connections; a dynamic broker config (lowering it closes no open connection, as in Kafka).', { validator: atLeast(0), dynamic: true }),
  'max.connections.per.ip': def('int', INT_MAX, 'Maximum open client connections from one IP address (a new one over it is closed on accept); a dynamic broker config.', { validator: atLeast(0), dynamic: true }),
  'max.connections.per.ip.overrides': def('list', '', 'Per-IP exceptions to max.connections.per.ip: comma-separated host:count (e.g. 127.0.0.2:100); a dynamic broker config.', { validator: { kind: 'hostCounts' }, dynamic: true }),
  'max.connection.creation.rate': def('int', INT_MAX, 'New connections accepted per second over all client listeners (KIP-612); past it the next accept waits its turn (nothing is refused); a dynamic broker config.', { validator: atLeast(1), dynamic: true }),
  'quota.window.num': def('int', '11', 'Samples in the client quota rate window (produce_byte_rate, consumer_byte_rate).', { validator: atLeast(1) }),
  'quota.window.size.seconds': def('int', '1', 'Length of one sample of the client quota rate window.', { validator: atLeast(1) }),
  'connections.max.idle.ms': def('long', '600000', 'Idle connections are closed after this long.', { validator: atLeast(-1) }),
  'num.network.threads': def('int', '3', 'Kafka socket threads; Runnel uses one event loop per process.', { validator: atLeast(1), unused: true }),
  'num.io.threads': def('int', '8', 'Kafka request threads; Runnel uses one event loop plus a worker pool.', { validator: atLeast(1), unused: true }),
  'socket.send.buffer.bytes': def('int', '102400', 'SO_SNDBUF; -1 = OS default.', { validator: atLeast(-1), unused: true }),
  'socket.receive.buffer.bytes': def('int', '102400', 'SO_RCVBUF; -1 = OS default.', { validator: atLeast(-1), unused: true }),

  // --- TLS: SSL and SASL_SSL listeners (each key also as listener.name.<listener>.<key>), and the RPC between roles (runnel.rpc.ssl.enabled)
  'ssl.keystore.type': def('string', 'PEM', 'Format of the keystore: PEM only (JKS and PKCS12 refuse the start; Kafka\'s default is JKS).', { validator: { kind: 'enum', values: ['PEM', 'JKS', 'PKCS12'], ignoreCase: true } }),
  'ssl.keystore.location': def('string', null, 'PEM file holding this node\'s private key and its certificate chain (leaf first); or set ssl.keystore.key and ssl.keystore.certificate.chain.'),
  'ssl.keystore.password': def('password', null, 'Not used with PEM (set ssl.key.password for an encrypted key); setting it with a TLS listener refuses the start, as in Kafka.'),
  'ssl.keystore.key': def('password', null, 'This node\'s private key as PEM text (PKCS#8, encrypted with ssl.key.password or not), with ssl.keystore.certificate.chain.'),
  'ssl.keystore.certificate.chain': def('password', null, 'This node\'s certificate chain as PEM text (leaf first), with ssl.keystore.key.'),
  'ssl.key.password': def('password', null, 'Password of an encrypted private key.'),
  'ssl.truststore.type': def('string', 'PEM', 'Format of the truststore: PEM only (Kafka\'s default is JKS).', { validator: { kind: 'enum', values: ['PEM', 'JKS', 'PKCS12'], ignoreCase: true } }),
  'ssl.truststore.location': def('string', null, 'PEM file of the CA certificates trusted for client certificates (and, for the RPC, for peers); unset = the system\'s CAs.'),
  'ssl.truststore.certificates': def('password', null, 'The trusted CA certificates as PEM text (instead of ssl.truststore.location).'),
  'ssl.truststore.password': def('password', null, 'Not used with PEM; setting it with a TLS listener refuses the start, as in Kafka.'),
  'ssl.client.auth': def('string', 'none', 'Client certificates on SSL listeners: none, requested (checked when given) or required (mutual TLS).', { validator: { kind: 'enum', values: ['none', 'requested', 'required'], ignoreCase: true } }),
  'ssl.enabled.protocols': def('list', 'TLSv1.2,TLSv1.3', 'TLS versions accepted.', { validator: { kind: 'listOf', values: ['TLSv1.2', 'TLSv1.3'], nonEmpty: true } }),
  'ssl.protocol': def('string', 'TLSv1.3', 'Highest TLS version (TLS = no cap).', { validator: { kind: 'enum', values: ['TLSv1.2', 'TLSv1.3', 'TLS'] } }),
  'ssl.cipher.suites': def('list', '', 'Cipher suites allowed, IANA (Java) or OpenSSL names; empty = Node\'s defaults.'),
  'ssl.principal.mapping.rules': def('string', 'DEFAULT', 'Maps a client certificate\'s subject DN (RFC 2253) to a principal name: RULE:pattern/replacement/[LU] entries and DEFAULT (the DN), first match wins.'),
  'ssl.endpoint.identification.algorithm': def('string', 'https', 'https: an RPC client checks that the peer\'s certificate names the host it dialled; empty: no check.'),
  'runnel.rpc.ssl.enabled': def('boolean', 'false', 'TLS on the RPC between roles (controller, brokers, coordinators), with the ssl.* keys above (no listener prefix); the RPC server then requires a client certificate signed by the truststore, which must be set (no public CA is trusted).'),
  'runnel.ssl.reload.interval.ms': def('long', '10000', 'How often the keystore and truststore files are checked for a change; a changed file is loaded for new connections (0 = never).', { validator: atLeast(0) }),

  // --- SASL: SASL_PLAINTEXT and SASL_SSL listeners (sasl.* keys also as listener.name.<listener>.<key>; PLAIN users in listener.name.<listener>.plain.sasl.jaas.config)
  'sasl.enabled.mechanisms': def('list', 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512', 'SASL mechanisms a SASL_* listener offers: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (Kafka\'s default is GSSAPI, which Runnel does not have).', { validator: { kind: 'listOf', values: ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'], nonEmpty: true } }),
  'sasl.mechanism.inter.broker.protocol': def('string', 'GSSAPI', 'Kafka\'s mechanism for broker-to-broker SASL; no effect: Runnel\'s roles talk over RPC (TLS: runnel.rpc.ssl.enabled), not over a Kafka listener.', { unused: true }),
  'sasl.server.max.receive.size': def('int', '524288', 'Largest frame read from a SASL_* connection before it authenticates; a larger one closes it.', { validator: atLeast(1) }),
  'connection.failed.authentication.delay.ms': def('int', '100', 'A failed authentication is answered, and its connection closed, after this delay (other connections are not held up).', { validator: atLeast(0) }),
  'connections.max.reauth.ms': def('long', '0', 'SASL session lifetime (KIP-368): a client must re-authenticate within it (told in SaslAuthenticate v1+) or the connection is closed on its next request; 0 = no limit.', { validator: atLeast(0) }),
  'runnel.sasl.scram.bootstrap.users': def('password', null, 'SCRAM users created at start when they have no credential of that mechanism yet (as kafka-storage format --add-scram): entries MECHANISM=[name=<user>,password=<password>(,iterations=<n>)] separated by spaces or semicolons, e.g. SCRAM-SHA-512=[name=admin,password=admin-secret]. Only the salted keys are stored.'),

  // --- authorization (ACLs; kafka-server's authorizer.ts, docs/security.md)
  'authorizer.class.name': def('string', '', 'Enables ACL authorization on every Kafka API when non-empty (Kafka\'s org.apache.kafka.metadata.authorizer.StandardAuthorizer or kafka.security.authorizer.AclAuthorizer; any non-empty value turns on Runnel\'s built-in one); empty = every request is allowed.'),
  'super.users': def('string', '', 'Principals allowed everything whatever the ACLs say, separated by semicolons (User:admin;User:broker).'),
  'allow.everyone.if.no.acl.found': def('boolean', 'false', 'With an authorizer: allow an operation on a resource that has no ACL at all (any ACL on the resource, even for another principal, turns this off for it).'),

  // --- groups and committed offsets
  'offsets.topic.num.partitions': def('int', '50', 'Partitions of __consumer_offsets (fixed once created).', { validator: atLeast(1) }),
  'offsets.topic.replication.factor': def('int', '1', 'Replication factor of __consumer_offsets (Kafka: 3; set 3 in a cluster).', { validator: between(1, 32767) }),
  'offsets.retention.minutes': def('int', '10080', 'Committed offsets of an empty group are dropped after this long.', { validator: atLeast(1) }),
  'group.initial.rebalance.delay.ms': def('int', '3000', 'Wait for more members before the first rebalance of an empty group.', { validator: atLeast(0) }),
  'group.min.session.timeout.ms': def('int', '6000', 'Smallest session timeout a member may ask for.', { validator: atLeast(0) }),
  'group.max.session.timeout.ms': def('int', '1800000', 'Largest session timeout a member may ask for.', { validator: atLeast(0) }),
  'group.consumer.heartbeat.interval.ms': def('int', '5000', 'KIP-848 consumer groups: how often members heartbeat.', { validator: atLeast(1) }),
  'group.consumer.session.timeout.ms': def('int', '45000', 'KIP-848 consumer groups: a member without a heartbeat this long is removed.', { validator: atLeast(1) }),
  'group.consumer.assignors': def('list', 'uniform,range', 'KIP-848 consumer groups: server-side assignors offered (uniform, range); the first is the default.', { validator: { kind: 'listOf', values: ['uniform', 'range'], nonEmpty: true } }),

  // --- transactions (Kafka's names and defaults)
  'transaction.state.log.num.partitions': def('int', '50', 'Partitions of __transaction_state (fixed once created).', { validator: atLeast(1) }),
  'transaction.state.log.replication.factor': def('int', '3', 'Replication factor of __transaction_state, capped at the live brokers when it is created (a warning says so).', { validator: between(1, 32767) }),
  'transaction.state.log.min.isr': def('int', '2', 'min.insync.replicas of __transaction_state (capped at its replication factor).', { validator: atLeast(1) }),
  'transaction.state.log.segment.bytes': def('int', '104857600', 'Segment size of __transaction_state.', { validator: atLeast(1) }),
  'transaction.max.timeout.ms': def('int', '900000', 'Largest transaction timeout a producer may ask for (INVALID_TRANSACTION_TIMEOUT above it).', { validator: atLeast(1) }),
  'transaction.abort.timed.out.transaction.cleanup.interval.ms': def('int', '10000', 'How often the transaction coordinator aborts transactions open past their timeout.', { validator: atLeast(1) }),
  'transactional.id.expiration.ms': def('int', '604800000', 'A transactional id with no transaction this long is removed (tombstone).', { validator: atLeast(1) }),
  'transaction.remove.expired.transaction.cleanup.interval.ms': def('int', '3600000', 'How often expired transactional ids are removed.', { validator: atLeast(1) }),

  // --- Runnel-specific
  'runnel.durable': def('boolean', 'false', 'fsync the log before acknowledging a produce (group commit: appends that arrive during one fsync share the next).'),
  'runnel.metrics.listener': def('string', null, 'host:port of a Prometheus /metrics endpoint (e.g. 127.0.0.1:9404; port 0 picks one); unset = no endpoint.'),
  'runnel.coordinator.load.wait.error.ms': def('int', '60000', 'How long a group coordinator waits quietly (one info line) for the brokers leading __consumer_offsets before it logs an error; it keeps waiting after that.', { validator: atLeast(0) }),
  'runnel.log.max.open.files': def('int', '-1', 'Segment files kept open at once (least recently used idle ones are closed, reopened on use); -1 = half of ulimit -n, 64 to 10000.', { validator: atLeast(-1) }),
  'runnel.group.commit.ms': def('int', '0', 'With runnel.durable, extra time to wait for more appends before an fsync; 0 = fsync as soon as the previous one ends.', { validator: between(0, 1000) }),
} as const satisfies Record<string, ConfigDef>;

export type BrokerConfigName = keyof typeof BROKER_CONFIGS;
type Defs = typeof BROKER_CONFIGS;

/** The typed value of a broker config: nullable exactly when the table's default is null. */
export type BrokerConfigValue<K extends BrokerConfigName> = Defs[K] extends ConfigDef<infer T, infer D>
  ? D extends string ? ConfigTypeMap[T] : ConfigTypeMap[T] | null
  : never;

/**
 * Topic configs with no broker-level synonym: Kafka's throttled replica lists, which
 * `kafka-reassign-partitions --throttle` sets (`*` or `partition:brokerId,...`; empty = none).
 */
export const TOPIC_ONLY_CONFIGS = {
  'leader.replication.throttled.replicas': def('list', null, 'Replicas (partition:brokerId, or *) whose leader limits what it sends to out-of-sync followers to leader.replication.throttled.rate.', { validator: { kind: 'throttledReplicas' }, topicDefault: '' }),
  'follower.replication.throttled.replicas': def('list', null, 'Replicas (partition:brokerId, or *) that fetch at most follower.replication.throttled.rate while out of sync.', { validator: { kind: 'throttledReplicas' }, topicDefault: '' }),
} as const satisfies Record<string, ConfigDef>;

/** Topic-level names, derived from the table, and the topic-only ones. */
export type TopicConfigName = { [K in BrokerConfigName]: Defs[K] extends { topic: infer N extends string } ? N : never }[BrokerConfigName] | keyof typeof TOPIC_ONLY_CONFIGS;

/** Kafka's DescribeConfigs ConfigSource (name → wire id). */
export const CONFIG_SOURCE_ID = {
  UNKNOWN: 0,
  DYNAMIC_TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
  DYNAMIC_BROKER_LOGGER_CONFIG: 6,
} as const;
export type ConfigSource = keyof typeof CONFIG_SOURCE_ID;

/** Kafka's DescribeConfigs (v3+) ConfigType (our type → wire id). */
export const CONFIG_TYPE_ID: Record<ConfigType, number> = { boolean: 1, string: 2, int: 3, long: 5, double: 6, list: 7, password: 9 };

/** Where a static value came from, for the startup print. */
export type ConfigOrigin = 'default' | 'file' | 'env' | 'override';

// ------------------------------------------------------------------------------------ errors

export type ConfigErrorCode = 'INVALID_VALUE' | 'MISSING' | 'UNKNOWN_KEY' | 'CONFLICT';

export class ConfigError extends RunnelError<ConfigErrorCode> {
  /** The config key at fault. */
  readonly key: string;
  /** The offending value as given, when there is one. */
  readonly value: string | undefined;

  constructor(code: ConfigErrorCode, key: string, message: string, value?: string) {
    super(code, message);
    this.key = key;
    this.value = value;
  }
}

// ------------------------------------------------------------------------------------ parsing values

/** "an int >= 1", "one of a, b", ...: the allowed-values half of every error message. */
export function describeExpected(d: ConfigDef): string {
  const v = d.validator;
  const article = d.type === 'int' ? 'an int' : d.type === 'long' ? 'a long' : d.type === 'double' ? 'a double' : d.type === 'boolean' ? 'true or false' : d.type === 'list' ? 'a comma-separated list' : 'a string';
  if (v === undefined) return article;
  switch (v.kind) {
    case 'range':
      if (v.min !== undefined && v.max !== undefined) return `${article} in [${v.min}, ${v.max}]`;
      if (v.min !== undefined) return `${article} >= ${v.min}`;
      return `${article} <= ${v.max}`;
    case 'enum':
      return `one of ${v.values.join(', ')}`;
    case 'listOf':
      return v.values.length > 0 ? `a comma-separated list of ${v.values.join(', ')}` : 'a non-empty comma-separated list';
    case 'nonEmpty':
      return 'a non-empty string';
    case 'hostCounts':
      return 'a comma-separated list of host:count';
    case 'throttledReplicas':
      return '* or a comma-separated list of partition:brokerId';
    case 'listeners':
      return v.advertised ? 'NAME://host:port[,...] with a host clients can reach (not 0.0.0.0)' : 'NAME://host:port[,...]';
  }
}

const INT_RE = /^[+-]?\d+$/;

function splitList(s: string): string[] {
  const t = s.trim();
  return t === '' ? [] : t.split(/\s*,\s*/);
}

/** Parses and validates one value; throws ConfigError naming the key, the value and what is allowed. */
export function parseValue(key: string, d: ConfigDef, input: string): unknown {
  const raw = input.trim();
  const bad = (what: string): never => {
    throw new ConfigError('INVALID_VALUE', key, `${key}: ${JSON.stringify(input)} ${what} (expected ${describeExpected(d)})`, input);
  };
  let value: unknown;
  switch (d.type) {
    case 'int':
    case 'long': {
      if (!INT_RE.test(raw)) bad('is not an integer');
      const big = BigInt(raw);
      const limit = d.type === 'int' ? 2n ** 31n : 2n ** 63n;
      if (big < -limit || big >= limit) bad(`does not fit in ${d.type === 'int' ? 'an int (32 bits)' : 'a long (64 bits)'}`);
      value = Number(big);
      break;
    }
    case 'double': {
      const n = raw === '' ? Number.NaN : Number(raw);
      if (!Number.isFinite(n)) bad('is not a number');
      value = n;
      break;
    }
    case 'boolean': {
      const l = raw.toLowerCase();
      if (l !== 'true' && l !== 'false') bad('is not a boolean');
      value = l === 'true';
      break;
    }
    case 'list':
      value = splitList(raw);
      break;
    case 'string':
    case 'password':
      value = raw;
      break;
  }
  const v = d.validator;
  if (v === undefined) return value;
  switch (v.kind) {
    case 'range': {
      const n = value as number;
      if ((v.min !== undefined && n < v.min) || (v.max !== undefined && n > v.max)) bad('is out of range');
      break;
    }
    case 'enum': {
      const s = value as string;
      const hit = v.values.find((x) => (v.ignoreCase ? x.toLowerCase() === s.toLowerCase() : x === s));
      if (hit === undefined) bad('is not allowed');
      value = hit;
      break;
    }
    case 'listOf': {
      const items = value as string[];
      if (v.nonEmpty && items.length === 0) bad('is empty');
      if (items.some((x) => x === '')) bad('has an empty item');
      if (v.values.length > 0) {
        const wrong = items.find((x) => !v.values.includes(x));
        if (wrong !== undefined) bad(`has ${JSON.stringify(wrong)}`);
      }
      break;
    }
    case 'nonEmpty':
      if ((value as string) === '') bad('is empty');
      break;
    case 'hostCounts': {
      const wrong = (value as string[]).find((x) => !/^\S+:\d+$/.test(x));
      if (wrong !== undefined) bad(`has ${JSON.stringify(wrong)}`);
      break;
    }
    case 'throttledReplicas': {
      const items = value as string[];
      const wrong = items.find((x) => !/^\d+:\d+$/.test(x));
      if (!(items.length === 1 && items[0] === '*') && wrong !== undefined) bad(`has ${JSON.stringify(wrong)}`);
      break;
    }
    case 'listeners': {
      const listeners = listenersOrReason(raw);
      if (typeof listeners === 'string') return bad(`is not a listener list: ${listeners}`);
      if (v.advertised) {
        const wild = listeners.find((l) => l.host === '0.0.0.0' || l.host === '::' || l.host === '');
        if (wild !== undefined) bad(`advertises ${wild.host === '' ? 'an empty host' : wild.host}, which clients cannot connect to`);
      }
      break;
    }
  }
  return value;
}

// ------------------------------------------------------------------------------------ listeners

export interface Listener {
  /** Listener name, upper case (`PLAINTEXT`, `EXTERNAL`). */
  name: string;
  /** Host or IP; '' means all interfaces (bind) and is not allowed when advertised. IPv6 without brackets. */
  host: string;
  port: number;
}

/**
 * Parses `NAME://host:port,...` (Kafka's listeners syntax). Hosts may be empty (`PLAINTEXT://:9092`),
 * a name, IPv4, or bracketed IPv6 (`PLAINTEXT://[::1]:9092`). Names must be unique. Throws a
 * ConfigError whose message starts with `key` (the config being parsed).
 */
export function parseListeners(text: string, key = 'listeners'): Listener[] {
  const r = listenersOrReason(text);
  if (typeof r === 'string') throw new ConfigError('INVALID_VALUE', key, `${key}: ${JSON.stringify(text)} is not a listener list: ${r}`, text);
  return r;
}

function listenersOrReason(text: string): Listener[] | string {
  const out: Listener[] = [];
  for (const item of splitList(text)) {
    const m = /^([A-Za-z0-9_]+):\/\/(\[[0-9A-Fa-f:.]+\]|[^:/\[\]]*):(\d+)$/.exec(item);
    if (!m) return `${JSON.stringify(item)} is not NAME://host:port`;
    const port = Number(m[3]);
    if (port > 65535) return `${JSON.stringify(item)} has port ${port} (ports are 0-65535)`;
    const name = m[1].toUpperCase();
    if (out.some((l) => l.name === name)) return `listener name ${name} appears twice`;
    const host = m[2].startsWith('[') ? m[2].slice(1, -1) : m[2];
    out.push({ name, host, port });
  }
  return out.length === 0 ? 'no listener given' : out;
}

/** Kafka's security protocols (listener.security.protocol.map). */
export const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number];

/** A listener with the security protocol `listener.security.protocol.map` gives its name. */
export interface ListenerEndpoint extends Listener {
  securityProtocol: SecurityProtocol;
}

/**
 * The listener keys read together, as Kafka reads them (KafkaConfig):
 * - `listener.security.protocol.map` gives every listener name its protocol. Left at its default
 *   and with no SSL or SASL_* name in use, each `controller.listener.names` name maps to PLAINTEXT
 *   (Kafka's KRaft default), so `CONTROLLER://...` works without a map.
 * - Every name in `listeners` and `controller.listener.names` must be mapped, and to a protocol
 *   Runnel serves (all four): any other refuses the start instead of serving plaintext there.
 * - Ports in `listeners` are unique (port 0, "any free port", may repeat).
 * - Controller listeners are never bound for clients nor advertised (Runnel's controller speaks
 *   RPC); `advertised.listeners` may not name them, and when it is unset the other listeners are
 *   advertised.
 * - A node serving clients (`process.roles` unset or with `broker`) needs a client listener, and
 *   its inter-broker listener (`inter.broker.listener.name`, else the listener named after
 *   `security.inter.broker.protocol`) must be advertised. Only one of those two keys may be set.
 * Throws the first ConfigError, naming the key at fault.
 */
export interface ListenerSetup {
  /** The listeners a node binds for Kafka clients, in `listeners` order. */
  client: ListenerEndpoint[];
  /**
   * What each client listener's clients are told, by name: `advertised.listeners`, else the client
   * listeners themselves (then the host may be a wildcard and the port 0, resolved at bind time).
   */
  advertised: ListenerEndpoint[];
  /** Upper case; one of `advertised`, unless this is a controller-only configuration. */
  interBrokerListener: string;
  /** Upper case; may name listeners that are not in `listeners` (a broker's view of the controllers). */
  controllerListeners: string[];
  /** The effective map, names upper case. */
  securityProtocols: ReadonlyMap<string, SecurityProtocol>;
}

export function listenerSetup(c: BrokerConfig): ListenerSetup {
  const MAP = 'listener.security.protocol.map';
  const mapRaw = c.raw(MAP) ?? '';
  const protocols = new Map<string, SecurityProtocol>();
  for (const item of splitList(mapRaw)) {
    const m = /^([A-Za-z0-9_]+)\s*:\s*([A-Za-z_]+)$/.exec(item);
    const bad = (why: string) => new ConfigError('INVALID_VALUE', MAP, `${MAP}: ${JSON.stringify(mapRaw)} ${why} (expected NAME:PROTOCOL[,...] with a protocol in ${SECURITY_PROTOCOLS.join(', ')})`, mapRaw);
    if (!m) throw bad(`has ${JSON.stringify(item)}, which is not NAME:PROTOCOL`);
    const name = m[1]!.toUpperCase();
    const protocol = SECURITY_PROTOCOLS.find((p) => p === m[2]!.toUpperCase());
    if (protocol === undefined) throw bad(`maps ${name} to ${m[2]}, which is not a security protocol`);
    if (protocols.has(name)) throw bad(`maps ${name} twice`);
    protocols.set(name, protocol);
  }
  const controllerListeners = (c.get('controller.listener.names') ?? []).map((n) => n.toUpperCase());
  const listeners = c.listeners;
  const secure = (n: string) => n === 'SSL' || n === 'SASL_PLAINTEXT' || n === 'SASL_SSL';
  if (c.origin(MAP) === 'default' && !controllerListeners.some(secure) && !listeners.some((l) => secure(l.name))) {
    for (const n of controllerListeners) if (!protocols.has(n)) protocols.set(n, 'PLAINTEXT');
  }
  const protocolOf = (name: string): SecurityProtocol => {
    const p = protocols.get(name);
    if (p === undefined) {
      throw new ConfigError('CONFLICT', MAP, `${MAP}: no security protocol for listener ${name} (add ${name}:PLAINTEXT to ${JSON.stringify(mapRaw)})`, mapRaw);
    }
    if (p !== 'PLAINTEXT' && p !== 'SSL' && p !== 'SASL_PLAINTEXT' && p !== 'SASL_SSL') {
      throw new ConfigError('CONFLICT', 'listeners', `listeners: listener ${name} uses ${p}, which Runnel does not serve yet; it refuses to start rather than serve plaintext there`, c.raw('listeners') ?? undefined);
    }
    return p;
  };
  for (const n of controllerListeners) protocolOf(n);
  const byPort = new Map<number, string>();
  for (const l of listeners) {
    protocolOf(l.name);
    const other = byPort.get(l.port);
    if (other !== undefined) throw new ConfigError('CONFLICT', 'listeners', `listeners: ${other} and ${l.name} both use port ${l.port} (each listener needs its own port)`, c.raw('listeners') ?? undefined);
    if (l.port !== 0) byPort.set(l.port, l.name);
  }
  const withProtocol = (l: Listener): ListenerEndpoint => ({ ...l, securityProtocol: protocolOf(l.name) });
  const client = listeners.filter((l) => !controllerListeners.includes(l.name)).map(withProtocol);
  let advertised: ListenerEndpoint[];
  if (c.raw('advertised.listeners') === null) {
    advertised = client;
  } else {
    advertised = c.advertisedListeners.map(withProtocol);
    const ctl = advertised.find((l) => controllerListeners.includes(l.name));
    if (ctl) throw new ConfigError('CONFLICT', 'advertised.listeners', `advertised.listeners: ${ctl.name} is a controller listener (controller.listener.names); clients never reach controllers`, c.raw('advertised.listeners')!);
  }
  const ibName = c.get('inter.broker.listener.name') || null; // '' (an empty environment variable) is unset
  if (ibName !== null && c.origin('security.inter.broker.protocol') !== 'default') {
    throw new ConfigError('CONFLICT', 'inter.broker.listener.name', 'inter.broker.listener.name: set only one of inter.broker.listener.name and security.inter.broker.protocol', ibName);
  }
  const interBrokerListener = (ibName ?? c.get('security.inter.broker.protocol')).toUpperCase();
  const roles = c.get('process.roles');
  if (roles === null || roles.includes('broker')) {
    if (client.length === 0) {
      throw new ConfigError('CONFLICT', 'listeners', `listeners: every listener is a controller listener (controller.listener.names); a node that serves clients needs another (or set process.roles=controller)`, c.raw('listeners') ?? undefined);
    }
    if (!advertised.some((l) => l.name === interBrokerListener)) {
      const names = advertised.map((l) => l.name).join(', ');
      const why = ibName !== null ? `${interBrokerListener} is` : `unset, so the inter-broker listener is ${interBrokerListener} (security.inter.broker.protocol), which is`;
      throw new ConfigError('CONFLICT', 'inter.broker.listener.name', `inter.broker.listener.name: ${why} not an advertised listener (advertised: ${names}); set it to one of them`, ibName ?? undefined);
    }
  }
  return { client, advertised, interBrokerListener, controllerListeners, securityProtocols: protocols };
}

// ------------------------------------------------------------------------------------ sources of text

/**
 * Parses Java .properties text (what Kafka's server.properties is): `#` and `!` comment lines,
 * `key=value`, `key: value` or `key value`, backslash line continuation (leading whitespace of the
 * next line dropped), escapes `\t \n \r \f \uXXXX` and `\<char>` = char (so `\=` and `\:` can be in
 * keys). Keys and values are trimmed, as Kafka trims values when it parses them. Later keys win.
 */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].replace(/^[ \t\f]+/, '');
    if (line === '' || line[0] === '#' || line[0] === '!') continue;
    // An odd number of trailing backslashes continues the logical line.
    while (/(^|[^\\])(\\\\)*\\$/.test(line)) {
      line = line.slice(0, -1);
      i++;
      if (i >= lines.length) break;
      line += lines[i].replace(/^[ \t\f]+/, '');
    }
    let pos = 0;
    let keyEnd = -1;
    while (pos < line.length) {
      const c = line[pos];
      if (c === '\\') {
        pos += 2;
        continue;
      }
      if (c === '=' || c === ':' || c === ' ' || c === '\t' || c === '\f') {
        keyEnd = pos;
        break;
      }
      pos++;
    }
    if (keyEnd < 0) keyEnd = line.length;
    let v = keyEnd;
    while (v < line.length && /[ \t\f]/.test(line[v])) v++;
    if (v < line.length && (line[v] === '=' || line[v] === ':')) v++;
    out.set(unescape(line.slice(0, keyEnd)).trim(), unescape(line.slice(v)).trim());
  }
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|[\s\S])/g, (_, e: string) => {
    if (e.length === 5) return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    return e === 't' ? '\t' : e === 'n' ? '\n' : e === 'r' ? '\r' : e === 'f' ? '\f' : e;
  });
}

/** Variables of the apache/kafka image that configure the JVM or the image, not the broker. */
const ENV_NOT_CONFIG = new Set(['KAFKA_VERSION', 'KAFKA_HOME', 'KAFKA_HEAP_OPTS', 'KAFKA_OPTS', 'KAFKA_JMX_OPTS', 'KAFKA_JMX_PORT',
  'KAFKA_JMX_HOSTNAME', 'KAFKA_JVM_PERFORMANCE_OPTS', 'KAFKA_GC_LOG_OPTS', 'KAFKA_LOG4J_OPTS', 'KAFKA_LOG4J_ROOT_LOGLEVEL',
  'KAFKA_LOG4J_LOGGERS', 'KAFKA_TOOLS_LOG4J_LOGLEVEL', 'KAFKA_DEBUG']);

/** `LOG_DIRS` → `log.dirs`: `___`→`-`, `__`→`_`, `_`→`.`, lower case, in one left-to-right pass. */
export function envNameToConfig(suffix: string): string {
  // One pass with longest-first alternation; sequential replaceAll calls would turn the `_` that
  // `__` produces into a `.` on the next step.
  return suffix.replace(/___|__|_/g, (m) => (m === '___' ? '-' : m === '__' ? '_' : '.')).toLowerCase();
}

/**
 * Broker configs from the environment, apache/kafka image convention: `KAFKA_<NAME>` with
 * `.`→`_`, `_`→`__`, `-`→`___` (KAFKA_LOG_DIRS → log.dirs, KAFKA_LOG_RETENTION_MS → log.retention.ms),
 * plus the image's `CLUSTER_ID`. JVM and image variables (KAFKA_HEAP_OPTS, ...) are skipped.
 * Confluent's images swap `__` and `___`; they are not supported.
 */
export function envToConfig(env: Record<string, string | undefined>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (name === 'CLUSTER_ID') {
      out.set('cluster.id', value);
      continue;
    }
    if (!name.startsWith('KAFKA_') || name.length === 6 || ENV_NOT_CONFIG.has(name)) continue;
    out.set(envNameToConfig(name.slice(6)), value);
  }
  return out;
}

/** The env variable that sets a config (inverse of envNameToConfig), for messages and docs. */
export function configToEnvName(key: string): string {
  return `KAFKA_${key.replace(/[._-]/g, (c) => (c === '.' ? '_' : c === '_' ? '__' : '___')).toUpperCase()}`;
}

// ------------------------------------------------------------------------------------ resolution

export interface ConfigEntry {
  name: string;
  /** The value as text (what DescribeConfigs returns); null when unset or sensitive. */
  value: string | null;
  source: ConfigSource;
  type: ConfigType;
  sensitive: boolean;
  doc: string;
  /** For topic configs: the override and the broker keys behind it, highest precedence first. */
  synonyms?: Array<{ name: string; value: string | null; source: ConfigSource }>;
}

interface Slot { value: unknown; raw: string | null; origin: ConfigOrigin }

const isKnown = (key: string): key is BrokerConfigName => Object.hasOwn(BROKER_CONFIGS, key);

/**
 * The warning for a key Runnel does not know. As Kafka does with server.properties, an unknown
 * key is ignored with a warning (a file written for Kafka works unchanged, and Kafka has keys
 * Runnel does not implement); a likely typo names the key it resembles: a topic-level name given
 * to the broker (`retention.ms`), a different case or separator (`num_partitions`), or a known
 * key within a small edit distance (`num.partiton`).
 */
export function unknownKeyWarning(key: string): string {
  const suggestion = suggestConfigKey(key);
  return `unknown configuration key ${key} ignored${suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`}`;
}

export function suggestConfigKey(key: string): string | undefined {
  const topic = TOPIC_CONFIGS.get(key as TopicConfigName);
  if (topic !== undefined && topic.brokerKeys[0] !== undefined) return topic.brokerKeys[0].key;
  const norm = (k: string) => k.toLowerCase().replace(/[_-]/g, '.');
  const known = Object.keys(BROKER_CONFIGS);
  const same = known.find((k) => norm(k) === norm(key));
  if (same !== undefined) return same;
  // At most one edit per four characters, and never more than three: close enough to be a typo.
  const limit = Math.min(3, Math.max(1, Math.floor(key.length / 4)));
  let best: { key: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(norm(key), norm(k), limit);
    if (d <= limit && (best === undefined || d < best.d)) best = { key: k, d };
  }
  return best?.key;
}

/** Levenshtein distance, giving up (returning limit + 1) once it must exceed `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      rowMin = Math.min(rowMin, row[j]!);
    }
    if (rowMin > limit) return limit + 1;
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Kafka's dynamic broker configs (DynamicBrokerConfig) that Runnel applies at runtime: the log
 * defaults (every key with a topic-level name, applied to each partition without an override of
 * its own), the replication throttles, and keys flagged `dynamic`. Everything else is read-only:
 * AlterConfigs refuses it, as Kafka does.
 */
export function isDynamicBrokerConfig(name: string): boolean {
  if (!isKnown(name)) return false;
  const d: ConfigDef = BROKER_CONFIGS[name];
  return d.dynamic ?? d.topic !== undefined;
}

/** One dynamic layer's value of a key (set with AlterConfigs, kept in metadata). */
interface DynamicSlot { value: unknown; raw: string; source: 'DYNAMIC_BROKER_CONFIG' | 'DYNAMIC_DEFAULT_BROKER_CONFIG' }

/** The layers DescribeConfigs lists as synonyms, in Kafka's order. */
const SYNONYM_SOURCES = ['DYNAMIC_BROKER_CONFIG', 'DYNAMIC_DEFAULT_BROKER_CONFIG', 'STATIC_BROKER_CONFIG', 'DEFAULT_CONFIG'] as const;

/**
 * The resolved, validated broker configuration. Immutable: the static layers (file, env,
 * overrides, defaults) and, for a config made by withDynamic, the dynamic layers over them.
 */
export class BrokerConfig {
  readonly #slots: Map<BrokerConfigName, Slot>;
  /** Dynamic values per key, highest first (this node's, then the cluster default's). */
  readonly #dynamic: ReadonlyMap<BrokerConfigName, DynamicSlot[]>;
  /**
   * The last withDynamic result per node id, with the map and the entries it was made from: it
   * keeps its identity while they are unchanged, and the map check spares the hot path (every
   * produce looks up its topic's config) the comparison.
   */
  readonly #derived = new Map<number | null, { from: unknown; key: string; config: BrokerConfig }>();

  /** `listener.name.<listener>.<key>` values by that full key (listener lower case), see forListener. */
  readonly #listenerScoped: ReadonlyMap<string, { value: unknown; raw: string }>;

  constructor(slots: Map<BrokerConfigName, Slot>, dynamic: ReadonlyMap<BrokerConfigName, DynamicSlot[]> = new Map(), listenerScoped: ReadonlyMap<string, { value: unknown; raw: string }> = new Map()) {
    this.#slots = slots;
    this.#dynamic = dynamic;
    this.#listenerScoped = listenerScoped;
  }

  /**
   * A key as one listener sees it (Kafka's `listener.name.<listener>.<key>` override, listener
   * name lower case): the prefixed value when set, else the key's own value.
   */
  forListener<K extends BrokerConfigName>(listener: string, key: K): BrokerConfigValue<K> {
    const scoped = this.#listenerScoped.get(`listener.name.${listener.toLowerCase()}.${key}`);
    return scoped ? scoped.value as BrokerConfigValue<K> : this.get(key);
  }

  /** The raw text of `listener.name.<listener>.<rest>` (e.g. rest `plain.sasl.jaas.config`), null when unset. */
  listenerRaw(listener: string, rest: string): string | null {
    return this.#listenerScoped.get(`listener.name.${listener.toLowerCase()}.${rest}`)?.raw ?? null;
  }

  /**
   * This static configuration with dynamic broker configs over it (Kafka's precedence: node
   * `nodeId`'s entry, then the cluster default `''`, then the static value). `nodeId` null gives
   * the cluster default alone (DescribeConfigs of `<default>`). Keys that are not dynamic, and
   * values that do not parse (validated when written; a newer version may know more), are
   * skipped. Returns the same object while the entries that matter are unchanged, so callers may
   * cache what they derive from it by identity.
   */
  withDynamic(configs: ReadonlyMap<string, Readonly<Record<string, string>>> | undefined, nodeId: number | null): BrokerConfig {
    const last = this.#derived.get(nodeId);
    if (last && last.from === configs) return last.config;
    const node = nodeId === null ? undefined : configs?.get(String(nodeId));
    const cluster = configs?.get('');
    const key = JSON.stringify([node ?? null, cluster ?? null]);
    if (last?.key === key) {
      last.from = configs;
      return last.config;
    }
    const dynamic = new Map<BrokerConfigName, DynamicSlot[]>();
    const layers: Array<[Readonly<Record<string, string>> | undefined, DynamicSlot['source']]> = [[node, 'DYNAMIC_BROKER_CONFIG'], [cluster, 'DYNAMIC_DEFAULT_BROKER_CONFIG']];
    for (const [entries, source] of layers) {
      for (const [name, raw] of Object.entries(entries ?? {})) {
        if (!isDynamicBrokerConfig(name)) continue;
        const k = name as BrokerConfigName;
        let value: unknown;
        try {
          value = parseValue(k, BROKER_CONFIGS[k], raw);
        } catch {
          continue;
        }
        dynamic.set(k, [...(dynamic.get(k) ?? []), { value, raw: raw.trim(), source }]);
      }
    }
    const config = new BrokerConfig(this.#slots, dynamic, this.#listenerScoped);
    this.#derived.set(nodeId, { from: configs, key, config });
    return config;
  }

  /** The typed value: `get('num.partitions')` is a number, `get('log.dirs')` is string[] | null. */
  get<K extends BrokerConfigName>(key: K): BrokerConfigValue<K> {
    const d = this.#dynamic.get(key)?.[0];
    return (d ? d.value : this.#slots.get(key)!.value) as BrokerConfigValue<K>;
  }

  /** The value, or a MISSING ConfigError saying how to set it. */
  require<K extends BrokerConfigName>(key: K): NonNullable<BrokerConfigValue<K>> {
    const v = this.get(key);
    if (v === null) {
      throw new ConfigError('MISSING', key, `${key}: no value (set ${key}=... in the properties file, ${configToEnvName(key)} in the environment, or --set ${key}=...)`);
    }
    return v as NonNullable<BrokerConfigValue<K>>;
  }

  /** The value as text, as given or as the default; null when unset. */
  raw(key: BrokerConfigName): string | null {
    return this.#dynamic.get(key)?.[0]?.raw ?? this.#slots.get(key)!.raw;
  }

  /** Where the static value came from (dynamic layers aside). */
  origin(key: BrokerConfigName): ConfigOrigin {
    return this.#slots.get(key)!.origin;
  }

  source(key: BrokerConfigName): ConfigSource {
    return this.#dynamic.get(key)?.[0]?.source ?? (this.origin(key) === 'default' ? 'DEFAULT_CONFIG' : 'STATIC_BROKER_CONFIG');
  }

  /**
   * DescribeConfigs synonyms of `name`, as Kafka lists them (ConfigHelper.configSynonyms): for
   * each layer (dynamic per-broker, dynamic default, static, default) the keys of its synonym group
   * that have a value there (`log.retention.ms`, `.minutes`, `.hours`; else the key alone), with
   * everything before the first entry of `name` itself dropped.
   */
  synonyms(name: BrokerConfigName): NonNullable<ConfigEntry['synonyms']> {
    const d: ConfigDef = BROKER_CONFIGS[name];
    const group = d.topic === undefined ? [name] : TOPIC_CONFIGS.get(d.topic as TopicConfigName)!.brokerKeys.map((b) => b.key);
    const out: NonNullable<ConfigEntry['synonyms']> = [];
    for (const source of SYNONYM_SOURCES) {
      for (const k of group) {
        const slot = this.#slots.get(k)!;
        const kd: ConfigDef = BROKER_CONFIGS[k];
        let value: string | null | undefined;
        if (source === 'STATIC_BROKER_CONFIG') value = slot.origin === 'default' ? undefined : slot.raw;
        else if (source === 'DEFAULT_CONFIG') value = kd.default ?? undefined;
        else value = this.#dynamic.get(k)?.find((s) => s.source === source)?.raw;
        if (value !== undefined) out.push({ name: k, value: kd.type === 'password' ? null : value, source });
      }
    }
    const first = out.findIndex((s) => s.name === name);
    return first < 0 ? [] : out.slice(first);
  }

  /** node.id, or broker.id when only that one was set. */
  get nodeId(): number {
    const broker = this.get('broker.id');
    return this.origin('node.id') === 'default' && broker !== null ? broker : this.get('node.id');
  }

  /** log.dirs, else [log.dir]. */
  get logDirs(): string[] {
    return this.get('log.dirs') ?? [this.get('log.dir')];
  }

  get listeners(): Listener[] {
    return parseListeners(this.raw('listeners')!, 'listeners');
  }

  /** advertised.listeners, else listeners. */
  get advertisedListeners(): Listener[] {
    const adv = this.raw('advertised.listeners');
    return adv === null ? this.listeners : parseListeners(adv, 'advertised.listeners');
  }

  /** The listener keys read together (see listenerSetup): what to bind and what to advertise. */
  get listenerSetup(): ListenerSetup {
    return listenerSetup(this);
  }

  /** Effective retention in ms (log.retention.ms > .minutes > .hours); -1 = forever. */
  get retentionMs(): number {
    return effectiveTopicValue(this, 'retention.ms').value as number;
  }

  /** Effective segment roll time in ms (log.roll.ms > log.roll.hours). */
  get segmentMs(): number {
    return effectiveTopicValue(this, 'segment.ms').value as number;
  }

  /**
   * Every known broker config for DescribeConfigs, with its synonyms; passwords are reported as
   * null; configs of subsystems Runnel does not have (`absent`) are left out.
   */
  describe(): ConfigEntry[] {
    return (Object.keys(BROKER_CONFIGS) as BrokerConfigName[]).filter((name) => !(BROKER_CONFIGS[name] as ConfigDef).absent).map((name) => {
      const d: ConfigDef = BROKER_CONFIGS[name];
      const sensitive = d.type === 'password';
      return { name, value: sensitive ? null : this.raw(name), source: this.source(name), type: d.type, sensitive, doc: d.doc, synonyms: this.synonyms(name) };
    });
  }

  /** `key=value (origin)` lines of every non-default value, secrets hidden: for the startup log. */
  summary(): string[] {
    const lines: string[] = [];
    for (const [name, slot] of this.#slots) {
      if (slot.origin === 'default') continue;
      const shown = BROKER_CONFIGS[name].type === 'password' ? '[hidden]' : slot.raw;
      lines.push(`${name}=${shown} (${slot.origin})`);
    }
    return lines.sort();
  }
}

export interface ResolveInput {
  /** From a properties file (parseProperties). */
  file?: Map<string, string>;
  /** From the environment (envToConfig). */
  env?: Map<string, string>;
  /** From `--set k=v`. */
  overrides?: Map<string, string>;
}

export interface ResolvedConfig {
  config: BrokerConfig;
  /** DescribeConfigs source of every known key. */
  sources: Map<BrokerConfigName, ConfigSource>;
  /** Keys Runnel does not know, sorted; the caller warns about them. */
  unknown: string[];
}

/**
 * Merges the layers (overrides > env > file > default), validates every value and the rules that
 * tie keys together. Throws the first ConfigError; unknown keys are returned, not thrown.
 */
export function resolveConfig(input: ResolveInput = {}): ResolvedConfig {
  const given = new Map<string, { raw: string; origin: ConfigOrigin }>();
  const layers: Array<[Map<string, string> | undefined, ConfigOrigin]> = [[input.file, 'file'], [input.env, 'env'], [input.overrides, 'override']];
  for (const [layer, origin] of layers) {
    for (const [k, v] of layer ?? []) given.set(k.trim(), { raw: v, origin });
  }
  const unknown: string[] = [];
  const listenerScoped = new Map<string, { value: unknown; raw: string }>();
  for (const [key, g] of given) {
    if (isKnown(key)) continue;
    const scoped = listenerScopedKey(key);
    if (scoped === null) {
      unknown.push(key);
    } else {
      const value = scoped.base === null ? g.raw.trim() : parseValue(key, BROKER_CONFIGS[scoped.base], g.raw);
      listenerScoped.set(scoped.key, { value, raw: g.raw.trim() });
    }
  }

  const slots = new Map<BrokerConfigName, Slot>();
  for (const name of Object.keys(BROKER_CONFIGS) as BrokerConfigName[]) {
    const d: ConfigDef = BROKER_CONFIGS[name];
    const g = given.get(name);
    if (g !== undefined) {
      slots.set(name, { value: parseValue(name, d, g.raw), raw: g.raw.trim(), origin: g.origin });
    } else {
      slots.set(name, { value: d.default === null ? null : parseValue(name, d, d.default), raw: d.default, origin: 'default' });
    }
  }
  const config = new BrokerConfig(slots, new Map(), listenerScoped);
  checkRelations(config);
  const sources = new Map<BrokerConfigName, ConfigSource>();
  for (const name of slots.keys()) sources.set(name, config.source(name));
  return { config, sources, unknown: unknown.sort() };
}

/**
 * A key Kafka accepts per listener (`listener.name.<listener>.<key>`): the ssl.* and sasl.* keys of
 * the table, and `<mechanism>.sasl.jaas.config`. Returns the key with the listener name lower case
 * and the table key it overrides (null for a JAAS text), or null for any other key.
 */
function listenerScopedKey(key: string): { key: string; base: BrokerConfigName | null } | null {
  const m = /^listener\.name\.([A-Za-z0-9_]+)\.(.+)$/.exec(key);
  if (!m) return null;
  const rest = m[2]!;
  const normalized = `listener.name.${m[1]!.toLowerCase()}.${rest}`;
  if (isKnown(rest) && (rest.startsWith('ssl.') || rest.startsWith('sasl.'))) return { key: normalized, base: rest };
  if (/^[A-Za-z0-9-]+\.sasl\.jaas\.config$/.test(rest)) return { key: normalized, base: null };
  return null;
}

function checkRelations(c: BrokerConfig): void {
  const broker = c.get('broker.id');
  if (broker !== null && c.origin('node.id') !== 'default' && broker !== c.get('node.id')) {
    throw new ConfigError('CONFLICT', 'broker.id', `broker.id: ${broker} differs from node.id ${c.get('node.id')} (set one of them, or both to the same id)`, String(broker));
  }
  const names = new Set(c.listeners.map((l) => l.name));
  for (const adv of c.advertisedListeners) {
    if (!names.has(adv.name)) {
      throw new ConfigError('CONFLICT', 'advertised.listeners', `advertised.listeners: listener ${adv.name} is not in listeners (${[...names].join(', ')})`, c.raw('advertised.listeners') ?? undefined);
    }
  }
  listenerSetup(c);
  if (c.get('group.min.session.timeout.ms') > c.get('group.max.session.timeout.ms')) {
    throw new ConfigError('CONFLICT', 'group.min.session.timeout.ms',
      `group.min.session.timeout.ms: ${c.get('group.min.session.timeout.ms')} is above group.max.session.timeout.ms ${c.get('group.max.session.timeout.ms')}`);
  }
}

// ------------------------------------------------------------------------------------ topic configs

interface TopicDef {
  name: TopicConfigName;
  /** The definition that gives type and validator: the broker key in the topic's own unit. */
  def: ConfigDef;
  /** Broker keys behind it with their scale, highest precedence (smallest unit) first. */
  brokerKeys: Array<{ key: BrokerConfigName; scale: number }>;
}

/** The topic-level configs, derived from BROKER_CONFIGS. */
export const TOPIC_CONFIGS: ReadonlyMap<TopicConfigName, TopicDef> = (() => {
  const out = new Map<TopicConfigName, TopicDef>();
  for (const key of Object.keys(BROKER_CONFIGS) as BrokerConfigName[]) {
    const d: ConfigDef = BROKER_CONFIGS[key];
    if (d.topic === undefined) continue;
    const name = d.topic as TopicConfigName;
    const scale = d.topicScale ?? 1;
    const entry = out.get(name) ?? { name, def: d, brokerKeys: [] };
    if (scale === 1) entry.def = d;
    entry.brokerKeys.push({ key, scale });
    entry.brokerKeys.sort((a, b) => a.scale - b.scale);
    out.set(name, entry);
  }
  for (const [name, d] of Object.entries(TOPIC_ONLY_CONFIGS) as [TopicConfigName, ConfigDef][]) out.set(name, { name, def: d, brokerKeys: [] });
  return out;
})();

/** The value a topic inherits from the broker, with the broker key and source it came from. */
function effectiveTopicValue(broker: BrokerConfig, name: TopicConfigName): { value: unknown; raw: string; source: ConfigSource } {
  const t = TOPIC_CONFIGS.get(name)!;
  // A key set by the operator (statically or dynamically) beats any default, then the smallest
  // unit wins (ms > minutes > hours).
  const candidates = [...t.brokerKeys.filter((b) => broker.source(b.key) !== 'DEFAULT_CONFIG'), ...t.brokerKeys];
  for (const { key, scale } of candidates) {
    const v = broker.get(key) as unknown;
    if (v === null) continue;
    if (scale === 1) return { value: v, raw: broker.raw(key)!, source: broker.source(key) };
    const n = v as number;
    const scaled = n < 0 ? -1 : n * scale;
    return { value: scaled, raw: String(scaled), source: broker.source(key) };
  }
  const fallback = t.def.topicDefault!;
  return { value: parseValue(name, t.def, fallback), raw: fallback, source: 'DEFAULT_CONFIG' };
}

/** Typed values of topic configs. */
export type TopicConfigValue<N extends TopicConfigName> = {
  [K in BrokerConfigName]: Defs[K] extends { topic: N; type: infer T extends ConfigType } ? ConfigTypeMap[T] : never
}[BrokerConfigName];

/** One topic's effective configuration: its overrides over the broker's values. */
export class TopicConfig {
  readonly #values: Map<TopicConfigName, { value: unknown; raw: string; source: ConfigSource }>;
  readonly #broker: BrokerConfig;
  readonly #overrides: Map<TopicConfigName, string>;

  constructor(broker: BrokerConfig, values: Map<TopicConfigName, { value: unknown; raw: string; source: ConfigSource }>, overrides: Map<TopicConfigName, string>) {
    this.#broker = broker;
    this.#values = values;
    this.#overrides = overrides;
  }

  get<N extends TopicConfigName>(name: N): TopicConfigValue<N> {
    return this.#values.get(name)!.value as TopicConfigValue<N>;
  }

  source(name: TopicConfigName): ConfigSource {
    return this.#values.get(name)!.source;
  }

  /** Only the topic's own overrides (what is stored with the topic), as text. */
  overrides(): Record<string, string> {
    return Object.fromEntries(this.#overrides);
  }

  /** DescribeConfigs entries for the topic, synonyms included (override first, then broker keys). */
  describe(): ConfigEntry[] {
    return [...TOPIC_CONFIGS.values()].map((t) => {
      const v = this.#values.get(t.name)!;
      // Kafka's order: the override, then the synonyms of the broker key in the topic's own unit.
      const synonyms: NonNullable<ConfigEntry['synonyms']> = [];
      const o = this.#overrides.get(t.name);
      if (o !== undefined) synonyms.push({ name: t.name, value: o, source: 'DYNAMIC_TOPIC_CONFIG' });
      const primary = t.brokerKeys[0];
      if (primary !== undefined) synonyms.push(...this.#broker.synonyms(primary.key));
      return { name: t.name, value: v.raw, source: v.source, type: t.def.type, sensitive: false, doc: t.def.doc, synonyms };
    });
  }
}

/**
 * Resolves a topic's configs: each override (as stored with the topic, e.g. from CreateTopics or
 * `--config`) is validated and wins with source DYNAMIC_TOPIC_CONFIG; everything else comes from the
 * broker (STATIC_BROKER_CONFIG when the operator set the broker key, else DEFAULT_CONFIG).
 * Unknown topic configs are an UNKNOWN_KEY error, as in Kafka's CreateTopics.
 */
export function topicConfig(broker: BrokerConfig, overrides: Record<string, string> = {}): TopicConfig {
  const given = new Map<TopicConfigName, string>();
  for (const [k, v] of Object.entries(overrides)) {
    const t = TOPIC_CONFIGS.get(k as TopicConfigName);
    if (t === undefined) {
      throw new ConfigError('UNKNOWN_KEY', k, `${k}: unknown topic config (known: ${[...TOPIC_CONFIGS.keys()].sort().join(', ')})`, v);
    }
    given.set(t.name, v);
  }
  const values = new Map<TopicConfigName, { value: unknown; raw: string; source: ConfigSource }>();
  for (const t of TOPIC_CONFIGS.values()) {
    const o = given.get(t.name);
    values.set(t.name, o === undefined
      ? effectiveTopicValue(broker, t.name)
      : { value: parseValue(t.name, t.def, o), raw: o.trim(), source: 'DYNAMIC_TOPIC_CONFIG' });
  }
  return new TopicConfig(broker, values, given);
}
