/**
 * `runnel console-consumer`: Kafka's kafka-console-consumer.sh (apache/kafka tools ConsoleConsumer
 * with its DefaultMessageFormatter). Prints each record of a topic on stdout and, at the end,
 * `Processed a total of N messages` on stderr.
 *
 * Formatter properties (--property or --formatter-property), Kafka's order and defaults: for each
 * record `[CreateTime:ts|LogAppendTime:ts] [Partition:p] [Offset:o] [h1:v1,h2:v2|NO_HEADERS] [key]
 * value` joined by key.separator (TAB), then line.separator (newline); print.timestamp,
 * print.partition, print.offset, print.headers, print.key default false, print.value true;
 * headers.separator `,`, headers.key.separator `:`, null.literal `null`. Values are printed as
 * UTF-8 text (Kafka's StringDeserializer).
 *
 * Where it reads: `--partition P [--offset earliest|latest|N]` one partition; otherwise every
 * partition of `--topic`. Without `--group` the partitions are assigned directly and no group is
 * joined (Kafka's tool joins a random `console-consumer-NNNNN` group that nobody reads); it starts at
 * the end, or the beginning with `--from-beginning`. With `--group G` it joins G as a classic
 * consumer-group member (range assignment; it does not follow later rebalances), starts at G's
 * committed offsets (else as auto.offset.reset: earliest with --from-beginning, latest otherwise),
 * commits what it printed every auto.commit.interval.ms (5000) and on exit, and leaves the group.
 *
 * It stops after `--max-messages`, after `--timeout-ms` without a record (exit 0, as Kafka), or on
 * SIGINT/SIGTERM (exit 0); a failed fetch (the topic deleted, the broker gone) is one line, exit 1.
 */
import { Buffer } from 'node:buffer';
import { Command } from 'commander';
import { Consumer, GroupAdmin, type KafkaClient, type DecodedRecord } from '@runnel/client';
import { GroupMember } from './perf.ts';
import { Progress, ToolError, UsageError, collect, connectTool, parseKeyValues, positiveMs, runTool, stdio, type ToolIo } from './tool-common.ts';

export interface ConsoleConsumerOptions {
  bootstrapServer?: string;
  topic?: string;
  group?: string;
  partition?: string;
  offset?: string;
  fromBeginning?: boolean;
  maxMessages?: string;
  timeoutMs?: string;
  property?: string[];
  formatterProperty?: string[];
  formatter?: string;
  consumerProperty?: string[];
  isolationLevel?: string;
}

/** The formatter names Kafka's tool accepts for its default formatter. */
const DEFAULT_FORMATTERS = ['kafka.tools.DefaultMessageFormatter', 'org.apache.kafka.tools.consumer.DefaultMessageFormatter'];

const HELP_AFTER = `
Formatter properties (--property k=v, repeatable; Kafka's DefaultMessageFormatter):
  print.timestamp  print.partition  print.offset  print.headers  print.key   (default false)
  print.value (default true)  key.separator=\\t  line.separator=\\n  headers.separator=,
  headers.key.separator=:  null.literal=null
A record prints as: [CreateTime:ts] [Partition:p] [Offset:o] [h1:v1,h2:v2] [key] value

Examples:
  runnel console-consumer --bootstrap-server localhost:9092 --topic orders --from-beginning --max-messages 10
  runnel console-consumer --bootstrap-server localhost:9092 --topic orders --from-beginning \\
      --property print.key=true --property print.headers=true --property key.separator=' | '
  runnel console-consumer --bootstrap-server localhost:9092 --topic orders --group audit --timeout-ms 10000
  runnel console-consumer --bootstrap-server localhost:9092 --topic orders --partition 2 --offset 1500 --property print.offset=true
`;

/** The `console-consumer` subcommand; `io` is for tests. */
export function consoleConsumerCommand(io: ToolIo = stdio): Command {
  return new Command('console-consumer')
    .description('print the records of a topic (kafka-console-consumer.sh)')
    .option('--bootstrap-server <host:port>', 'the broker(s) to connect to (required)')
    .option('--topic <topic>', 'the topic to read (required)')
    .option('--group <group>', 'join this consumer group: start at its committed offsets and commit what is printed')
    .option('--partition <p>', 'read only this partition')
    .option('--offset <offset>', 'with --partition: earliest, latest (default) or an offset')
    .option('--from-beginning', 'start at the earliest offset when there is no committed offset')
    .option('--max-messages <n>', 'stop after this many records')
    .option('--timeout-ms <ms>', 'stop when no record arrives for this long')
    .option('--property <key=value>', 'a formatter property: print.key, print.headers, key.separator, ... (repeatable)', collect)
    .option('--formatter-property <key=value>', 'same as --property (Kafka 4\'s name)', collect)
    .option('--formatter <class>', 'only Kafka\'s default formatter (DefaultMessageFormatter) is supported')
    .option('--consumer-property <key=value>', 'a consumer config: auto.commit.interval.ms, enable.auto.commit, fetch.max.wait.ms, isolation.level, client.id (repeatable)', collect)
    .option('--isolation-level <level>', 'read_uncommitted (default) or read_committed')
    .addHelpText('after', HELP_AFTER)
    .action(async (opts: ConsoleConsumerOptions) => {
      const code = await runConsoleConsumer(opts, io, true);
      if (code !== 0) process.exitCode = code;
    });
}

export interface Formatter {
  printTimestamp: boolean;
  printPartition: boolean;
  printOffset: boolean;
  printHeaders: boolean;
  printKey: boolean;
  printValue: boolean;
  keySeparator: string;
  lineSeparator: string;
  headersSeparator: string;
  headersKeySeparator: string;
  nullLiteral: string;
}

const FORMATTER_KEYS = ['print.timestamp', 'print.partition', 'print.offset', 'print.headers', 'print.key', 'print.value', 'key.separator', 'line.separator', 'headers.separator', 'headers.key.separator', 'null.literal', 'key.deserializer', 'value.deserializer', 'headers.deserializer'];

function formatterOf(props: Map<string, string>): Formatter {
  for (const k of props.keys()) if (!FORMATTER_KEYS.includes(k)) throw new UsageError(`unknown formatter property ${k} (known: ${FORMATTER_KEYS.slice(0, 11).join(', ')})`);
  for (const k of ['key.deserializer', 'value.deserializer', 'headers.deserializer']) {
    const v = props.get(k);
    if (v !== undefined && !v.endsWith('StringDeserializer')) throw new UsageError(`${k}=${v} is not supported (values are printed as UTF-8 text, as StringDeserializer does)`);
  }
  const bool = (k: string, def: boolean) => {
    const v = props.get(k);
    if (v === undefined) return def;
    if (!/^(true|false)$/i.test(v)) throw new UsageError(`--property ${k} takes true or false, not "${v}"`);
    return v.toLowerCase() === 'true';
  };
  return {
    printTimestamp: bool('print.timestamp', false),
    printPartition: bool('print.partition', false),
    printOffset: bool('print.offset', false),
    printHeaders: bool('print.headers', false),
    printKey: bool('print.key', false),
    printValue: bool('print.value', true),
    keySeparator: props.get('key.separator') ?? '\t',
    lineSeparator: props.get('line.separator') ?? '\n',
    headersSeparator: props.get('headers.separator') ?? ',',
    headersKeySeparator: props.get('headers.key.separator') ?? ':',
    nullLiteral: props.get('null.literal') ?? 'null',
  };
}

/** One record as Kafka's DefaultMessageFormatter writes it (see the file comment). */
export function formatRecord(f: Formatter, partition: number, r: DecodedRecord, logAppendTime: boolean): string {
  const text = (b: Buffer | null) => (b === null ? f.nullLiteral : b.toString('utf8'));
  const fields: string[] = [];
  if (f.printTimestamp) fields.push(`${logAppendTime ? 'LogAppendTime' : 'CreateTime'}:${r.timestamp}`);
  if (f.printPartition) fields.push(`Partition:${partition}`);
  if (f.printOffset) fields.push(`Offset:${r.offset}`);
  if (f.printHeaders) {
    fields.push(r.headers.length === 0 ? 'NO_HEADERS' : r.headers.map((h) => `${h.key}${f.headersKeySeparator}${text(h.value)}`).join(f.headersSeparator));
  }
  if (f.printKey) fields.push(text(r.key));
  if (f.printValue) fields.push(text(r.value));
  return fields.join(f.keySeparator) + f.lineSeparator;
}

function nonNegativeInt(flag: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`${flag} must be a non-negative integer, not "${value}"`);
  return Number(value);
}

/** Reads and prints; resolves with the exit code. `signals`: stop on SIGINT/SIGTERM (the real command). */
export async function runConsoleConsumer(opts: ConsoleConsumerOptions, io: ToolIo = stdio, signals = false): Promise<number> {
  let processed = 0;
  let started = false;
  const code = await runTool('console-consumer', io, async () => {
    if (!opts.topic) throw new UsageError('Exactly one of --include/--topic is required.');
    if (opts.formatter !== undefined && !DEFAULT_FORMATTERS.includes(opts.formatter)) {
      throw new UsageError(`--formatter ${opts.formatter} is not supported; only ${DEFAULT_FORMATTERS[1]} (the default) is`);
    }
    const formatter = formatterOf(parseKeyValues('--property', [...(opts.property ?? []), ...(opts.formatterProperty ?? [])]));
    const props = parseKeyValues('--consumer-property', opts.consumerProperty ?? []);
    if (opts.offset !== undefined && opts.partition === undefined) throw new UsageError('The partition is required when offset is specified.');
    if (opts.offset !== undefined && opts.fromBeginning) throw new UsageError('Options from-beginning and offset cannot be specified together.');
    if (opts.group !== undefined && opts.partition !== undefined) throw new UsageError('Options group and partition cannot be specified together (a group assigns the partitions).');
    if (opts.group !== undefined && opts.group === '') throw new UsageError('--group must not be empty');
    const partitionArg = opts.partition === undefined ? undefined : nonNegativeInt('--partition', opts.partition);
    const offsetArg = opts.offset === undefined ? undefined
      : opts.offset === 'earliest' || opts.offset === 'latest' ? opts.offset : BigInt(nonNegativeInt('--offset', opts.offset));
    const maxMessages = opts.maxMessages === undefined ? Infinity : nonNegativeInt('--max-messages', opts.maxMessages);
    const timeoutMs = opts.timeoutMs === undefined ? Infinity : positiveMs('--timeout-ms', opts.timeoutMs, 0);
    const isolation = opts.isolationLevel ?? props.get('isolation.level') ?? 'read_uncommitted';
    if (isolation !== 'read_uncommitted' && isolation !== 'read_committed') throw new UsageError(`--isolation-level must be read_uncommitted or read_committed, not "${isolation}"`);
    const autoCommit = (props.get('enable.auto.commit') ?? 'true') !== 'false';
    const commitEveryMs = positiveMs('auto.commit.interval.ms', props.get('auto.commit.interval.ms'), 5000);
    const maxWaitMs = positiveMs('fetch.max.wait.ms', props.get('fetch.max.wait.ms'), 500);

    const client = await connectTool(opts.bootstrapServer, props.get('client.id') ?? 'console-consumer', 30_000);
    let member: GroupMember | null = null;
    let stop = false;
    const onSignal = () => { stop = true; };
    if (signals) { process.once('SIGINT', onSignal); process.once('SIGTERM', onSignal); }
    try {
      const topic = opts.topic;
      const all = await topicPartitions(client, topic);
      if (partitionArg !== undefined && !all.includes(partitionArg)) throw new ToolError(`topic ${topic} has no partition ${partitionArg} (partitions 0-${all.length - 1})`);
      let partitions = partitionArg === undefined ? all : [partitionArg];
      const start = new Map<number, bigint | 'earliest' | 'latest'>();
      const reset = opts.fromBeginning ? 'earliest' : 'latest';
      if (opts.group !== undefined) {
        member = await GroupMember.join(client, opts.group, topic, all, { sessionTimeoutMs: 45_000, rebalanceTimeoutMs: 300_000, heartbeatIntervalMs: 3000 },
          { out: (l) => io.out(`${l}\n`), err: (l) => io.err(`${l}\n`) });
        partitions = member.partitions;
        const committed = partitions.length === 0 ? [] : await new GroupAdmin(client).fetchOffsets(opts.group, [{ topic, partitions }]);
        for (const p of partitions) start.set(p, committed.find((c) => c.partition === p)?.offset ?? reset);
      } else {
        for (const p of partitions) start.set(p, offsetArg ?? reset);
      }
      started = true;
      const consumer = new Consumer(client, { maxWaitMs, isolationLevel: isolation === 'read_committed' ? 1 : 0 });
      await consumer.assign(partitions.map((p) => ({ topic, partition: p, offset: start.get(p)! })));
      // Next offset to commit per partition: just past the last record printed.
      const printed = new Map<number, bigint>();
      let lastCommit = io.now();
      const commit = async () => {
        if (!member || !autoCommit || printed.size === 0) return;
        await member.commit([...printed].map(([partition, offset]) => ({ partition, offset })));
        lastCommit = io.now();
      };
      const progress = new Progress(io, `${topic}: records read`);
      let lastRecordAt = io.now();
      try {
        while (!stop && processed < maxMessages && partitions.length > 0) {
          const got = await consumer.poll();
          for (const fp of got) {
            for (const b of fp.batches) {
              if (b.control) continue;
              for (const r of b.records) {
                if (processed >= maxMessages) break;
                io.out(formatRecord(formatter, fp.partition, r, b.logAppendTime));
                printed.set(fp.partition, r.offset + 1n);
                processed++;
                progress.add();
                lastRecordAt = io.now();
              }
            }
          }
          // Fetch no more than a slow stdout reader takes.
          await io.drained?.();
          if (io.now() - lastRecordAt >= timeoutMs) {
            io.err(`ERROR Error processing message, terminating consumer process: no record within --timeout-ms ${timeoutMs}\n`);
            break;
          }
          if (io.now() - lastCommit >= commitEveryMs) await commit();
        }
        if (partitions.length === 0) io.err(`group ${opts.group} assigned no partition of ${topic} to this member (more members than partitions)\n`);
      } finally {
        progress.done();
      }
      await commit();
      return 0;
    } finally {
      if (signals) { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); }
      await member?.leave().catch(() => undefined);
      await client.close();
    }
  }, (message) => io.err(`ERROR ${message}\n`));
  if (started || code === 0) io.err(`Processed a total of ${processed} messages\n`);
  return code;
}

/** The topic's partitions; an unknown topic is an error (this tool does not create topics). */
async function topicPartitions(client: KafkaClient, topic: string): Promise<number[]> {
  const md = await client.metadata([topic]);
  const t = md.topics.find((x) => x.name === topic);
  if (!t || t.errorCode === 3) throw new ToolError(`topic ${topic} does not exist`);
  if (t.errorCode !== 0) throw new ToolError(`topic ${topic} is not available (error ${t.errorCode})`);
  return t.partitions.map((p) => p.partitionIndex).sort((a, b) => a - b);
}
