/**
 * `runnel configs`: Kafka's kafka-configs.sh (kafka.admin.ConfigCommand) for topics and brokers,
 * over DescribeConfigs and IncrementalAlterConfigs through @runnel/client.
 *
 * Output as Kafka's: `--describe` prints `Dynamic configs for topic t are:` (or `broker 1`, or
 * `Default configs for brokers in the cluster are:`; `All configs for ...` with `--all`) and then one
 * line per entry, `  name=value sensitive=false synonyms={SOURCE:name=value, ...}`, showing the
 * entries set at that level (DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG or
 * DYNAMIC_DEFAULT_BROKER_CONFIG) unless `--all`. `--alter` prints `Completed updating config for
 * topic t.` (or `broker 1`, or `Completed updating default config for brokers in the cluster.`).
 * A refused change is one line on stderr, `Error while executing config command: <reason>`, exit 1
 * (Kafka prints the same reason with a Java stack trace).
 *
 * `--add-config a=1,b=[x,y]` takes a comma list (brackets keep a list value's commas) and
 * `--delete-config a,b` names; both may be repeated. Which broker configs can change at runtime is
 * the broker's business (docs/configuration.md); this tool only asks.
 */
import { Command } from 'commander';
import {
  ConfigResourceType, describeConfigs, incrementalAlterConfigs,
  type AlterConfigOp, type ConfigEntry, type ConfigResource, type KafkaClient,
} from '@runnel/client';
import { UsageError, collect, connectTool, parseKeyValues, positiveMs, runTool, stdio, type ToolIo } from './tool-common.ts';

export interface ConfigsOptions {
  bootstrapServer?: string;
  describe?: boolean;
  alter?: boolean;
  entityType?: string;
  entityName?: string;
  entityDefault?: boolean;
  topic?: string;
  broker?: string;
  brokerDefaults?: boolean;
  addConfig?: string[];
  deleteConfig?: string[];
  all?: boolean;
  timeout?: string;
}

const HELP_AFTER = `
Output (as kafka-configs.sh):
  --describe  Dynamic configs for topic T are:
                name=value sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:name=value, DEFAULT_CONFIG:log.name=value}
  --alter     Completed updating config for topic T.

Examples:
  runnel configs --bootstrap-server localhost:9092 --describe --entity-type topics --entity-name orders
  runnel configs --bootstrap-server localhost:9092 --alter --entity-type topics --entity-name orders --add-config retention.ms=86400000,cleanup.policy=[compact,delete]
  runnel configs --bootstrap-server localhost:9092 --alter --topic orders --delete-config retention.ms
  runnel configs --bootstrap-server localhost:9092 --describe --entity-type brokers --entity-name 1 --all
  runnel configs --bootstrap-server localhost:9092 --alter --entity-type brokers --entity-default --add-config log.retention.ms=3600000
`;

/** The `configs` subcommand; `io` is for tests. */
export function configsCommand(io: ToolIo = stdio): Command {
  return new Command('configs')
    .description('describe and change topic and broker configs (kafka-configs.sh)')
    .option('--bootstrap-server <host:port>', 'the broker(s) to connect to (required)')
    .option('--describe', 'list the configs of the given entity')
    .option('--alter', 'change the configs of the given entity (--add-config, --delete-config)')
    .option('--entity-type <type>', 'topics or brokers')
    .option('--entity-name <name>', 'the topic name or broker id (all of that type with --describe when omitted)')
    .option('--entity-default', 'the cluster-wide default for brokers')
    .option('--topic <topic>', 'same as --entity-type topics --entity-name <topic>')
    .option('--broker <id>', 'same as --entity-type brokers --entity-name <id>')
    .option('--broker-defaults', 'same as --entity-type brokers --entity-default')
    .option('--add-config <k=v,...>', 'configs to set: k1=v1,k2=[v1,v2] (repeatable)', collect)
    .option('--delete-config <k,...>', 'configs to remove (back to the default) (repeatable)', collect)
    .option('--all', 'with --describe: every config, not only those set at this level')
    .option('--timeout <ms>', 'timeout for connects and requests', '30000')
    .addHelpText('after', HELP_AFTER)
    .action(async (opts: ConfigsOptions) => {
      const code = await runConfigs(opts, io);
      if (code !== 0) process.exitCode = code;
    });
}

type Entity = { kind: 'topics' | 'brokers'; name: string | null; isDefault: boolean };

function entityOf(opts: ConfigsOptions): Entity {
  const shortcuts = [opts.topic !== undefined, opts.broker !== undefined, opts.brokerDefaults === true].filter(Boolean).length;
  if (shortcuts > 1 || (shortcuts === 1 && (opts.entityType || opts.entityName || opts.entityDefault))) {
    throw new UsageError('give the entity once: --entity-type with --entity-name/--entity-default, or one of --topic, --broker, --broker-defaults');
  }
  if (opts.topic !== undefined) return { kind: 'topics', name: opts.topic, isDefault: false };
  if (opts.broker !== undefined) return { kind: 'brokers', name: opts.broker, isDefault: false };
  if (opts.brokerDefaults) return { kind: 'brokers', name: null, isDefault: true };
  if (opts.entityType !== 'topics' && opts.entityType !== 'brokers') {
    throw new UsageError(opts.entityType === undefined ? '--entity-type is required (topics or brokers)' : `--entity-type must be topics or brokers, not "${opts.entityType}" (Runnel has no ${opts.entityType} configs)`);
  }
  if (opts.entityName !== undefined && opts.entityDefault) throw new UsageError('--entity-name and --entity-default cannot be used together');
  if (opts.entityDefault && opts.entityType === 'topics') throw new UsageError('--entity-default is only valid with --entity-type brokers (topic defaults are broker configs)');
  return { kind: opts.entityType, name: opts.entityName ?? null, isDefault: opts.entityDefault === true };
}

/** Runs one action; resolves with the exit code (0 ok, 1 failure or bad flags). */
export async function runConfigs(opts: ConfigsOptions, io: ToolIo = stdio): Promise<number> {
  return runTool('configs', io, async () => {
    if ([opts.describe, opts.alter].filter(Boolean).length !== 1) throw new UsageError('Command must include exactly one action: --describe, --alter');
    const entity = entityOf(opts);
    const timeoutMs = positiveMs('--timeout', opts.timeout, 30_000);
    let ops: AlterConfigOp[] = [];
    if (opts.alter) {
      if (entity.name === null && !entity.isDefault) throw new UsageError('--alter takes --entity-name or --entity-default');
      const adds = parseKeyValues('--add-config', opts.addConfig ?? [], { commaLists: true });
      const deletes = (opts.deleteConfig ?? []).flatMap((d) => d.split(',')).map((d) => d.trim()).filter(Boolean);
      const both = deletes.filter((d) => adds.has(d));
      if (both.length > 0) throw new UsageError(`Invalid config(s): ${both.join(',')} (both added and deleted)`);
      if (adds.size === 0 && deletes.length === 0) throw new UsageError('--alter takes --add-config and/or --delete-config');
      ops = [...[...adds].map(([name, value]): AlterConfigOp => ({ name, op: 'set', value })), ...deletes.map((name): AlterConfigOp => ({ name, op: 'delete' }))];
    } else if (opts.addConfig || opts.deleteConfig) {
      throw new UsageError('--add-config and --delete-config are only valid with --alter');
    }
    const client = await connectTool(opts.bootstrapServer, 'runnel-configs', timeoutMs);
    try {
      const type = entity.kind === 'topics' ? ConfigResourceType.Topic : ConfigResourceType.Broker;
      if (opts.alter) {
        await incrementalAlterConfigs(client, { type, name: entity.name ?? '' }, ops);
        io.out(entity.isDefault
          ? 'Completed updating default config for brokers in the cluster.\n'
          : `Completed updating config for ${entity.kind === 'topics' ? 'topic' : 'broker'} ${entity.name}.\n`);
        return 0;
      }
      for (const resource of await describedResources(client, entity, type)) await describeOne(client, io, resource, opts.all === true);
      return 0;
    } finally {
      await client.close();
    }
  }, (message) => io.err(`Error while executing config command: ${message}\n`));
}

/** The resources a `--describe` covers: the named one, the default, or every topic (every broker and the default). */
async function describedResources(client: KafkaClient, entity: Entity, type: ConfigResource['type']): Promise<ConfigResource[]> {
  if (entity.isDefault) return [{ type, name: '' }];
  if (entity.name !== null) return [{ type, name: entity.name }];
  const md = await client.metadata(entity.kind === 'topics' ? null : []);
  // Every broker, then the cluster default (Kafka's ConfigCommand appends the default entity).
  if (entity.kind === 'brokers') return [...md.brokers.map((b) => b.nodeId).sort((a, b) => a - b).map((id) => ({ type, name: String(id) })), { type, name: '' }];
  return md.topics.filter((t) => t.errorCode === 0 && t.name).map((t) => t.name!).sort().map((name) => ({ type, name }));
}

/** The source a level's own entries have (what `--describe` without `--all` shows). */
function ownSource(resource: ConfigResource): string {
  if (resource.type === ConfigResourceType.Topic) return 'DYNAMIC_TOPIC_CONFIG';
  return resource.name === '' ? 'DYNAMIC_DEFAULT_BROKER_CONFIG' : 'DYNAMIC_BROKER_CONFIG';
}

async function describeOne(client: KafkaClient, io: ToolIo, resource: ConfigResource, all: boolean): Promise<void> {
  const entries = await describeConfigs(client, resource);
  const what = resource.type === ConfigResourceType.Topic ? `topic ${resource.name}` : resource.name === '' ? 'brokers in the cluster' : `broker ${resource.name}`;
  const level = all ? 'All' : resource.name === '' ? 'Default' : 'Dynamic';
  io.out(`${level} configs for ${what} are:\n`);
  const shown = all ? entries : entries.filter((e) => e.source === ownSource(resource));
  for (const e of [...shown].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) io.out(`  ${entryLine(e)}\n`);
}

/** `name=value sensitive=false synonyms={SOURCE:name=value, ...}`; a sensitive value is shown as null, as Kafka does. */
export function entryLine(e: ConfigEntry): string {
  const value = (v: string | null) => (e.sensitive ? 'null' : String(v));
  const synonyms = e.synonyms.map((s) => `${s.source}:${s.name}=${value(s.value)}`).join(', ');
  return `${e.name}=${value(e.value)} sensitive=${e.sensitive} synonyms={${synonyms}}`;
}
