/**
 * `runnel topics`: Kafka's kafka-topics.sh (apache/kafka tools TopicCommand) with its flags and
 * output, over the Kafka protocol through @runnel/client: Metadata, CreateTopics, CreatePartitions,
 * DeleteTopics, DescribeConfigs.
 *
 * Output as Kafka 4.x prints it: `--list` one name per line (sorted); `--describe` a tab-separated
 * topic line `Topic: t\tTopicId: <base64>\tPartitionCount: n\tReplicationFactor: r\tConfigs: k=v,...`
 * (the configs not at their default) and one line per partition
 * `\tTopic: t\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\tElr: \tLastKnownElr: ` (Runnel has no
 * eligible leader replicas, KIP-966, so the last two are empty, as Kafka prints them without ELR);
 * `--create` prints `Created topic t.`; failures print Kafka's
 * `Error while executing topic command : <reason>` and exit 1.
 *
 * `--topic` is a regular expression for --list, --describe, --alter and --delete (as Kafka: the
 * whole name must match), and a plain name for --create.
 */
import { Buffer } from 'node:buffer';
import { Command, Option } from 'commander';
import { createPartitions, describeConfigs, ConfigResourceType, type KafkaClient, type MetadataResponse } from '@runnel/client';
import { ToolError, UsageError, collect, connectTool, parseKeyValues, positiveMs, runTool, stdio, type ToolIo } from './tool-common.ts';

export interface TopicsOptions {
  bootstrapServer?: string;
  list?: boolean;
  describe?: boolean;
  create?: boolean;
  alter?: boolean;
  delete?: boolean;
  topic?: string;
  partitions?: string;
  replicationFactor?: string;
  config?: string[];
  ifExists?: boolean;
  ifNotExists?: boolean;
  excludeInternal?: boolean;
  underReplicatedPartitions?: boolean;
  unavailablePartitions?: boolean;
  underMinIsrPartitions?: boolean;
  atMinIsrPartitions?: boolean;
  topicsWithOverrides?: boolean;
  timeout?: string;
}

const HELP_AFTER = `
Output (as kafka-topics.sh):
  --list       one topic name per line
  --describe   Topic: T<TAB>TopicId: ID<TAB>PartitionCount: N<TAB>ReplicationFactor: R<TAB>Configs: k=v,...
               <TAB>Topic: T<TAB>Partition: P<TAB>Leader: L<TAB>Replicas: A,B<TAB>Isr: A,B<TAB>Elr: <TAB>LastKnownElr:
               (with --under-replicated-partitions, --unavailable-partitions, --under-min-isr-partitions or
               --at-min-isr-partitions only the matching partition lines)

Examples:
  runnel topics --bootstrap-server localhost:9092 --create --topic orders --partitions 6 --config retention.ms=86400000
  runnel topics --bootstrap-server localhost:9092 --list --exclude-internal
  runnel topics --bootstrap-server localhost:9092 --describe --topic 'orders.*'
  runnel topics --bootstrap-server localhost:9092 --describe --under-replicated-partitions
  runnel topics --bootstrap-server localhost:9092 --alter --topic orders --partitions 12
  runnel topics --bootstrap-server localhost:9092 --delete --topic orders --if-exists
`;

/** The `topics` subcommand; `io` is for tests. */
export function topicsCommand(io: ToolIo = stdio): Command {
  return new Command('topics')
    .description('create, list, describe, alter and delete topics (kafka-topics.sh)')
    .option('--bootstrap-server <host:port>', 'the broker(s) to connect to (required)')
    .option('--list', 'list all topics (or those matching --topic)')
    .option('--describe', 'describe topics: partitions, leaders, replicas, ISR, overridden configs')
    .option('--create', 'create a topic')
    .option('--alter', 'change the number of partitions of a topic (--partitions)')
    .option('--delete', 'delete a topic')
    .option('--topic <topic>', 'the topic; a regular expression except with --create')
    .option('--partitions <n>', 'number of partitions (--create: default num.partitions; --alter: the new, larger count)')
    .option('--replication-factor <n>', 'replication factor (--create; default default.replication.factor)')
    .option('--config <key=value>', 'a topic config override for --create, e.g. retention.ms=60000 (repeatable)', collect)
    .option('--if-exists', 'with --alter/--delete/--describe: do nothing when the topic does not exist')
    .option('--if-not-exists', 'with --create: do nothing when the topic already exists')
    .option('--exclude-internal', 'leave internal topics (__consumer_offsets) out of --list and --describe')
    .option('--under-replicated-partitions', 'with --describe: only partitions whose ISR is smaller than their replicas')
    .option('--unavailable-partitions', 'with --describe: only partitions without a leader')
    .option('--under-min-isr-partitions', 'with --describe: only partitions whose ISR is below min.insync.replicas')
    .option('--at-min-isr-partitions', 'with --describe: only partitions whose ISR is exactly min.insync.replicas')
    .option('--topics-with-overrides', 'with --describe: only topics that have config overrides (topic lines only)')
    .addOption(new Option('--timeout <ms>', 'timeout for connects and requests').default('30000'))
    .addHelpText('after', HELP_AFTER)
    .action(async (opts: TopicsOptions) => {
      const code = await runTopics(opts, io);
      if (code !== 0) process.exitCode = code;
    });
}

/** Runs one action; resolves with the exit code (0 ok, 1 failure or bad flags). */
export async function runTopics(opts: TopicsOptions, io: ToolIo = stdio): Promise<number> {
  let client: KafkaClient | null = null;
  return runTool('topics', io, async () => {
    const actions = (['list', 'describe', 'create', 'alter', 'delete'] as const).filter((a) => opts[a]);
    if (actions.length !== 1) throw new UsageError('Command must include exactly one action: --list, --describe, --create, --alter or --delete');
    const timeoutMs = positiveMs('--timeout', opts.timeout, 30_000);
    if ((opts.create || opts.alter || opts.delete) && !opts.topic) throw new UsageError(`Missing required argument "[topic]"`);
    if (opts.alter && opts.partitions === undefined) throw new UsageError('--alter takes --partitions (the new count)');
    if (opts.ifNotExists && !opts.create) throw new UsageError('--if-not-exists is only valid with --create');
    if (opts.config && !opts.create) throw new UsageError('--config is only valid with --create (use "runnel configs --alter" for existing topics)');
    const partitions = opts.partitions === undefined ? undefined : positiveInt('--partitions', opts.partitions);
    const replicationFactor = opts.replicationFactor === undefined ? undefined : positiveInt('--replication-factor', opts.replicationFactor);
    const configs = Object.fromEntries(parseKeyValues('--config', opts.config ?? []));
    const pattern = opts.topic !== undefined && !opts.create ? topicPattern(opts.topic) : null;

    client = await connectTool(opts.bootstrapServer, 'runnel-topics', timeoutMs);
    try {
      if (opts.create) {
        const results = await client.createTopics([{ name: opts.topic!, partitions, replicationFactor, configs }], { timeoutMs, ignoreExisting: opts.ifNotExists });
        if (results[0]?.errorCode === 0) io.out(`Created topic ${opts.topic}.\n`);
        return 0;
      }
      const md = await client.metadata(null);
      const matched = md.topics
        .filter((t) => t.errorCode === 0 && t.name !== null)
        .filter((t) => (pattern ? pattern.test(t.name!) : !(opts.excludeInternal && t.isInternal)))
        .sort((a, b) => (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
      // Kafka: a --topic that matches nothing is an error unless --if-exists (--list just prints nothing).
      if (pattern && matched.length === 0 && !opts.list && !opts.ifExists) {
        throw new ToolError(`Topic '${opts.topic}' does not exist as expected`);
      }
      if (opts.list) {
        for (const t of matched) io.out(`${t.name}\n`);
        return 0;
      }
      if (opts.alter) {
        for (const t of matched) await createPartitions(client, t.name!, partitions!, { timeoutMs });
        return 0;
      }
      if (opts.delete) {
        if (matched.some((t) => t.isInternal)) throw new ToolError(`Topic ${matched.find((t) => t.isInternal)!.name} is a kafka internal topic and is not allowed to be marked for deletion.`);
        if (matched.length > 0) await client.deleteTopics(matched.map((t) => t.name!), { timeoutMs });
        return 0;
      }
      await describe(client, io, opts, matched);
      return 0;
    } finally {
      await client.close();
    }
  }, (message) => io.out(`Error while executing topic command : ${message}\n`));
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n <= 0) throw new UsageError(`${flag} must be a positive integer, not "${value}"`);
  return n;
}

/** Java's Pattern.matches: the whole name; a name with no regex metacharacters matches only itself. */
function topicPattern(topic: string): RegExp {
  try {
    return new RegExp(`^(?:${topic})$`);
  } catch (err) {
    throw new UsageError(`--topic "${topic}" is not a valid regular expression (${(err as Error).message})`);
  }
}

/** Kafka's Uuid.toString(): URL-safe base64 of the 16 bytes, without padding. */
export function topicIdString(uuid: string): string {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex').toString('base64url');
}

type TopicMetadata = MetadataResponse['topics'][number];

async function describe(client: KafkaClient, io: ToolIo, opts: TopicsOptions, topics: TopicMetadata[]): Promise<void> {
  const partitionFilter = opts.underReplicatedPartitions || opts.unavailablePartitions || opts.underMinIsrPartitions || opts.atMinIsrPartitions;
  // One DescribeConfigs per topic, pipelined (32 in flight) so describing many topics stays quick.
  const configsOf = new Map<string, Awaited<ReturnType<typeof describeConfigs>>>();
  let next = 0;
  const worker = async () => {
    while (next < topics.length) {
      const name = topics[next++]!.name!;
      configsOf.set(name, await describeConfigs(client, { type: ConfigResourceType.Topic, name }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(32, topics.length) }, worker));
  for (const t of topics) {
    const name = t.name!;
    const configs = configsOf.get(name)!;
    // Kafka lists the entries that are not at their default (isDefault = source DEFAULT_CONFIG).
    const overrides = configs.filter((c) => c.source !== 'DEFAULT_CONFIG' && c.source !== 'STATIC_BROKER_CONFIG' && c.value !== null);
    const minIsr = Number(configs.find((c) => c.name === 'min.insync.replicas')?.value ?? 1);
    if (opts.topicsWithOverrides && overrides.length === 0) continue;
    const parts = [...t.partitions].sort((a, b) => a.partitionIndex - b.partitionIndex);
    const rf = parts[0]?.replicaNodes.length ?? 0;
    if (!partitionFilter) {
      const configText = overrides.map((c) => `${c.name}=${c.value}`).join(',');
      io.out(`Topic: ${name}\tTopicId: ${topicIdString(t.topicId)}\tPartitionCount: ${parts.length}\tReplicationFactor: ${rf}\tConfigs: ${configText}\n`);
    }
    if (opts.topicsWithOverrides) continue;
    for (const p of parts) {
      const leaderless = p.leaderId < 0;
      if (opts.underReplicatedPartitions && !(p.isrNodes.length < p.replicaNodes.length)) continue;
      if (opts.unavailablePartitions && !leaderless) continue;
      if (opts.underMinIsrPartitions && !(p.isrNodes.length < minIsr)) continue;
      if (opts.atMinIsrPartitions && p.isrNodes.length !== minIsr) continue;
      const offline = p.offlineReplicas ?? [];
      io.out(`\tTopic: ${name}\tPartition: ${p.partitionIndex}\tLeader: ${leaderless ? 'none' : p.leaderId}\tReplicas: ${p.replicaNodes.join(',')}\tIsr: ${p.isrNodes.join(',')}\tElr: \tLastKnownElr: ${offline.length > 0 ? `\tOffline: ${offline.join(',')}` : ''}\n`);
    }
  }
}
