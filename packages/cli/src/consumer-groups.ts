/**
 * `runnel consumer-groups`: Kafka's kafka-consumer-groups.sh (apache/kafka tools
 * ConsumerGroupCommand) with the same flags and output formats, over the Kafka protocol through
 * @runnel/client: ListGroups, DescribeGroups, OffsetFetch, ListOffsets, OffsetCommit, DeleteGroups.
 *
 * Output matches Kafka byte for byte where scripts read it: space-padded columns with Kafka's
 * widths (a column is at least 15 wide, or as wide as its longest value), `-` for unknown, each
 * table starting with a blank line, and the group-state notes ("has no active members",
 * "is rebalancing") on stderr as Kafka prints them.
 *
 * One addition: `--describe` prints a 10th column, LAG-SECONDS, after Kafka's nine. It is the age
 * of the last committed record: now minus the timestamp of the record at CURRENT-OFFSET - 1, read
 * with a one-record Fetch. `-` when nothing is committed or that record is gone (retention,
 * compaction), 0 when LAG is 0 (caught up, nothing is waiting). Fields 1-9 are unchanged, so
 * scripts that read Kafka's columns by position keep working.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import {
  ClientError, GroupAdmin, KafkaClient, fetchRecordTimestamp,
  type CommittedOffset, type GroupDescription, type TopicPartitions,
} from '@runnel/client';
import { Progress, UsageError, collect, pad, stdio, widest, type ToolIo } from './tool-common.ts';

/** The tools' shared I/O seam (tool-common.ts); `now` is the clock of LAG-SECONDS. */
export type ConsumerGroupsIo = ToolIo;

export interface ConsumerGroupsOptions {
  bootstrapServer?: string;
  list?: boolean;
  describe?: boolean;
  delete?: boolean;
  deleteOffsets?: boolean;
  resetOffsets?: boolean;
  group?: string[];
  allGroups?: boolean;
  offsets?: boolean;
  members?: boolean;
  verbose?: boolean;
  /** `--state` alone (true) or with a comma list of states (for `--list`). */
  state?: boolean | string;
  topic?: string[];
  allTopics?: boolean;
  toEarliest?: boolean;
  toLatest?: boolean;
  toCurrent?: boolean;
  toOffset?: string;
  shiftBy?: string;
  toDatetime?: string;
  byDuration?: string;
  dryRun?: boolean;
  execute?: boolean;
  /** With --reset-offsets: print the plan as CSV (topic,partition,offset; group first with several groups). */
  export?: boolean;
  /** With --reset-offsets: the new offsets from a CSV file as --export writes it. */
  fromFile?: string;
  /** Milliseconds (default 5000). */
  timeout?: string | number;
}

const MISSING = '-';
/** Kafka's consumer-group states (classic protocol), canonical spelling, for `--list --state`. */
const STATES = ['PreparingRebalance', 'CompletingRebalance', 'Stable', 'Dead', 'Empty'] as const;

const HELP_AFTER = `
Output (as kafka-consumer-groups.sh):
  --describe [--offsets]  GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID LAG-SECONDS
                          (--verbose adds LEADER-EPOCH after PARTITION)
  --describe --members    GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS [ASSIGNMENT with --verbose]
  --describe --state      GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS
  --reset-offsets         GROUP TOPIC PARTITION NEW-OFFSET
  --delete-offsets        TOPIC PARTITION STATUS

LAG-SECONDS is Runnel's addition (Kafka prints the first nine columns only, and those are unchanged):
the age in seconds of the last committed record, i.e. now minus the timestamp of the record at
CURRENT-OFFSET - 1; "-" when nothing is committed or that record no longer exists, 0 when LAG is 0.

Examples:
  runnel consumer-groups --bootstrap-server localhost:9092 --list --state stable,empty
  runnel consumer-groups --bootstrap-server localhost:9092 --describe --group orders-app
  runnel consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group orders-app --topic orders:0,1 --to-earliest --execute
  runnel consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group orders-app --all-topics --to-current --export > offsets.csv
  runnel consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group orders-app --from-file offsets.csv --execute
`;

/** The `consumer-groups` subcommand; `io` is for tests (defaults to the process's stdio). */
export function consumerGroupsCommand(io: ConsumerGroupsIo = stdio): Command {
  return new Command('consumer-groups')
    .description('list, describe, delete consumer groups and reset their offsets (kafka-consumer-groups.sh)')
    .option('--bootstrap-server <host:port>', 'the broker(s) to connect to (required)')
    .option('--list', 'list all consumer groups')
    .option('--describe', 'describe consumer group(s): offsets and lag (default), --members or --state')
    .option('--delete', 'delete the given consumer group(s) (they must be empty)')
    .option('--delete-offsets', 'delete the committed offsets of --group for --topic T or T:0,1 (repeatable)')
    .option('--reset-offsets', 'reset the committed offsets of an inactive group (dry run unless --execute)')
    .option('--group <group>', 'a consumer group (repeatable)', collect)
    .option('--all-groups', 'apply to all consumer groups')
    .option('--offsets', 'with --describe: committed offsets and lag per partition (the default)')
    .option('--members', 'with --describe: the members of the group')
    .option('--verbose', 'with --describe: LEADER-EPOCH (offsets), ASSIGNMENT (--members), epochs (--state)')
    .option('--state [states]', 'with --describe: the group state; with --list: show states and filter by a comma list (e.g. stable,empty)')
    .option('--topic <topic>', 'with --reset-offsets or --delete-offsets: a topic, or topic:0,1,2 for some partitions (repeatable)', collect)
    .option('--all-topics', 'with --reset-offsets: every topic the group has offsets for')
    .option('--to-earliest', 'reset to the earliest offset')
    .option('--to-latest', 'reset to the latest offset')
    .option('--to-current', 'reset to the current committed offset')
    .option('--to-offset <n>', 'reset to offset n (clamped to the log\'s range)')
    .option('--shift-by <n>', 'shift the committed offset by n (may be negative; clamped to the log\'s range)')
    .option('--to-datetime <datetime>', 'reset to the first offset at or after YYYY-MM-DDTHH:mm:SS.sss (local time unless a zone is given)')
    .option('--by-duration <duration>', 'reset to the first offset at or after now minus an ISO-8601 duration (PnDTnHnMnS)')
    .option('--dry-run', 'only print the new offsets (the default)')
    .option('--execute', 'commit the new offsets')
    .option('--export', 'with --reset-offsets: print the new offsets as CSV (topic,partition,offset; group,topic,partition,offset with several groups) for --from-file')
    .option('--from-file <file>', 'with --reset-offsets: reset to the offsets in a CSV file as --export writes it')
    .addOption(new Option('--timeout <ms>', 'timeout for requests').default('5000'))
    .addHelpText('after', HELP_AFTER)
    .action(async (opts: ConsumerGroupsOptions) => {
      const code = await runConsumerGroups(opts, io);
      if (code !== 0) process.exitCode = code;
    });
}

/** Runs one action; resolves with the exit code (0 ok, 1 failure or bad flags). */
export async function runConsumerGroups(opts: ConsumerGroupsOptions, io: ConsumerGroupsIo = stdio): Promise<number> {
  let client: KafkaClient | null = null;
  let admin: GroupAdmin | null = null;
  try {
    const actions = (['list', 'describe', 'delete', 'deleteOffsets', 'resetOffsets'] as const).filter((a) => opts[a]);
    if (actions.length !== 1) throw new UsageError('Command must include exactly one action: --list, --describe, --delete, --reset-offsets, --delete-offsets');
    if (!opts.bootstrapServer) throw new UsageError('Missing required argument "[bootstrap-server]"');
    const timeoutMs = Number(opts.timeout ?? 5000);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout must be a positive number of milliseconds, not "${opts.timeout}"`);
    const groups = opts.group ?? [];
    if ((opts.describe || opts.delete || opts.resetOffsets) && groups.length === 0 && !opts.allGroups) {
      throw new UsageError('Option --group or --all-groups is required');
    }
    if (opts.deleteOffsets && (groups.length !== 1 || (opts.topic ?? []).length === 0)) {
      throw new UsageError('Option --delete-offsets takes one --group and at least one --topic');
    }
    // Check the flags before connecting, so a typo fails fast even without a broker.
    const scenario = opts.resetOffsets ? resetScenario(opts) : null;

    client = await KafkaClient.connect({ bootstrapServers: opts.bootstrapServer, clientId: 'runnel-consumer-groups', requestTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs });
    admin = new GroupAdmin(client, { timeoutMs });
    const ctx: Ctx = { client, admin, io, opts };
    if (opts.list) return await list(ctx);
    const ids = opts.allGroups ? (await consumerGroupListings(admin)).map((g) => g.groupId) : [...new Set(groups)].sort();
    if (opts.describe) return await describe(ctx, ids);
    if (opts.delete) return await deleteGroups(ctx, ids);
    if (opts.deleteOffsets) return await deleteOffsets(ctx, groups[0]!);
    return await resetOffsets(ctx, ids, scenario!);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`Error: ${err.message}\nRun "runnel consumer-groups --help" for the options.\n`);
      return 1;
    }
    const e = err as Error;
    io.out(`\nError: Executing consumer group command failed due to ${err instanceof ClientError ? e.message : (e.stack ?? String(err))}\n`);
    return 1;
  } finally {
    await admin?.close();
    await client?.close();
  }
}

interface Ctx { client: KafkaClient; admin: GroupAdmin; io: ConsumerGroupsIo; opts: ConsumerGroupsOptions }

/** Consumer groups only (protocol type `consumer`, or empty for groups that only hold offsets). */
async function consumerGroupListings(admin: GroupAdmin, states?: string[]) {
  return (await admin.listGroups({ states })).filter((g) => g.protocolType === 'consumer' || g.protocolType === '');
}

function parseStates(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const canonical = STATES.find((x) => x.toLowerCase() === s.toLowerCase());
    if (!canonical) throw new UsageError(`Invalid state list '${value}'. Valid states are: ${STATES.join(', ')}`);
    return canonical;
  });
}

// ---------------------------------------------------------------- --list

async function list({ admin, io, opts }: Ctx): Promise<number> {
  if (opts.state === undefined) {
    for (const g of await consumerGroupListings(admin)) io.out(`${g.groupId}\n`);
    return 0;
  }
  const states = typeof opts.state === 'string' ? parseStates(opts.state) : [];
  const listings = await consumerGroupListings(admin, states);
  const width = Math.max(15, ...listings.map((g) => g.groupId.length)) + 10;
  io.out(`${pad('GROUP', width)} ${pad('STATE', 20)}\n`);
  for (const g of listings) io.out(`${pad(g.groupId, width)} ${pad(g.state || 'Unknown', 20)}\n`);
  return 0;
}

// ---------------------------------------------------------------- --describe


/**
 * Kafka's note before a group's table; false when there is nothing to print (a dead group, or no
 * rows). Kafka prints "does not exist" on stdout and the others on stderr.
 */
function printGroupNote(io: ConsumerGroupsIo, group: string, state: string, rows: number): boolean {
  switch (state) {
    case 'Dead':
      io.out(`\nError: Consumer group '${group}' does not exist.\n`);
      return false;
    case 'Empty':
      io.err(`\nConsumer group '${group}' has no active members.\n`);
      break;
    case 'PreparingRebalance':
    case 'CompletingRebalance':
      io.err(`\nWarning: Consumer group '${group}' is rebalancing.\n`);
      break;
  }
  return rows > 0;
}

async function describe(ctx: Ctx, ids: string[]): Promise<number> {
  const { opts } = ctx;
  const subActions = [opts.offsets, opts.members, opts.state !== undefined].filter(Boolean).length;
  if (subActions > 1) throw new UsageError('Option --describe takes at most one of --offsets, --members, --state');
  const descriptions = await ctx.admin.describeGroups(ids);
  for (const d of descriptions) {
    if (opts.members) printMembers(ctx.io, d, opts.verbose ?? false);
    else if (opts.state !== undefined) printState(ctx.io, d, opts.verbose ?? false);
    else await printOffsets(ctx, d, opts.verbose ?? false);
  }
  return 0;
}

export interface OffsetRow {
  group: string;
  topic: string;
  partition: number;
  current: bigint | null;
  /** The leader epoch stored with the commit, -1 when unknown. */
  leaderEpoch: number;
  logEnd: bigint | null;
  consumerId: string;
  host: string;
  clientId: string;
  lagSeconds: string;
}

/** Kafka's rows: assigned partitions member by member (most partitions first), then committed but unassigned ones. */
async function offsetRows(ctx: Ctx, d: GroupDescription): Promise<OffsetRow[]> {
  const committed = await ctx.admin.fetchOffsets(d.groupId);
  const byTp = new Map<string, CommittedOffset>(committed.map((c) => [`${c.topic}\0${c.partition}`, c]));
  const rows: OffsetRow[] = [];
  const assigned = new Set<string>();
  const members = d.members.filter((m) => m.assignment.some((t) => t.partitions.length > 0))
    .map((m) => ({ m, n: m.assignment.reduce((a, t) => a + t.partitions.length, 0) }))
    .sort((a, b) => b.n - a.n);
  const sortTps = (tps: Array<{ topic: string; partition: number }>) =>
    tps.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  for (const { m } of members) {
    const tps = sortTps(m.assignment.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition }))));
    for (const tp of tps) {
      assigned.add(`${tp.topic}\0${tp.partition}`);
      rows.push(row(d.groupId, tp.topic, tp.partition, byTp.get(`${tp.topic}\0${tp.partition}`), m.memberId, m.clientHost, m.clientId));
    }
  }
  const unassigned = sortTps(committed.filter((c) => !assigned.has(`${c.topic}\0${c.partition}`)).map((c) => ({ topic: c.topic, partition: c.partition })));
  for (const tp of unassigned) rows.push(row(d.groupId, tp.topic, tp.partition, byTp.get(`${tp.topic}\0${tp.partition}`), MISSING, MISSING, MISSING));

  const now = ctx.io.now();
  await forEachLimited(rows, 32, async (r) => {
    r.logEnd = await ctx.client.listOffsets(r.topic, r.partition, 'latest').catch(() => null);
    r.lagSeconds = await lagSeconds(ctx, r, now);
  });
  return rows;
}

/** Runs `fn` over `items` with at most `limit` in flight (requests pipeline on shared connections). */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function row(group: string, topic: string, partition: number, c: CommittedOffset | undefined, consumerId: string, host: string, clientId: string): OffsetRow {
  return { group, topic, partition, current: c?.offset ?? null, leaderEpoch: c?.leaderEpoch ?? -1, logEnd: null, consumerId, host, clientId, lagSeconds: MISSING };
}

const lagOf = (r: OffsetRow) => (r.current === null || r.logEnd === null ? null : r.logEnd - r.current);

/** LAG-SECONDS (see the file comment). */
async function lagSeconds(ctx: Ctx, r: OffsetRow, now: number): Promise<string> {
  if (r.current === null) return MISSING;
  if (lagOf(r) === 0n) return '0';
  if (r.current === 0n) return MISSING;
  const ts = await fetchRecordTimestamp(ctx.client, r.topic, r.partition, r.current - 1n).catch(() => null);
  if (ts === null) return MISSING;
  return String(Math.max(0, Math.floor((now - Number(ts)) / 1000)));
}

/** Kafka's table (LEADER-EPOCH after PARTITION with --verbose) and then LAG-SECONDS. */
async function printOffsets(ctx: Ctx, d: GroupDescription, verbose: boolean): Promise<void> {
  const rows = d.state === 'Dead' ? [] : await offsetRows(ctx, d);
  if (!printGroupNote(ctx.io, d.groupId, d.state, rows.length)) return;
  const g = widest(15, rows.map((r) => r.group));
  const t = widest(15, rows.map((r) => r.topic));
  const c = widest(15, rows.map((r) => r.consumerId));
  const h = widest(15, rows.map((r) => r.host));
  const ci = widest(15, rows.map((r) => r.clientId));
  const widths = [g, t, 10, ...(verbose ? [15] : []), 15, 15, 15, c, h, ci];
  const line = (v: string[]) => `\n${v.map((x, i) => (i < widths.length ? pad(x, widths[i]!) : x)).join(' ')}`;
  let text = line(['GROUP', 'TOPIC', 'PARTITION', ...(verbose ? ['LEADER-EPOCH'] : []), 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID', 'LAG-SECONDS']);
  for (const r of rows) {
    const epoch = r.leaderEpoch >= 0 ? String(r.leaderEpoch) : MISSING;
    text += line([r.group, r.topic, String(r.partition), ...(verbose ? [epoch] : []), r.current?.toString() ?? MISSING,
      r.logEnd?.toString() ?? MISSING, lagOf(r)?.toString() ?? MISSING, r.consumerId, r.host, r.clientId, r.lagSeconds]);
  }
  ctx.io.out(`${text}\n`);
}

/** `topic(0,1), other(2)`, as Kafka's --members --verbose ASSIGNMENT column. */
function assignmentString(assignment: TopicPartitions[]): string {
  const byTopic = new Map<string, number[]>();
  for (const t of assignment) byTopic.set(t.topic, [...(byTopic.get(t.topic) ?? []), ...t.partitions]);
  const parts = [...byTopic].filter(([, ps]) => ps.length > 0).map(([topic, ps]) => `${topic}(${ps.sort((a, b) => a - b).join(',')})`).sort();
  return parts.length === 0 ? MISSING : parts.join(', ');
}

function printMembers(io: ConsumerGroupsIo, d: GroupDescription, verbose: boolean): void {
  if (!printGroupNote(io, d.groupId, d.state, d.members.length)) return;
  const ms = d.members;
  const withInstance = ms.some((m) => m.groupInstanceId);
  const g = widest(15, [d.groupId]);
  const c = widest(15, ms.map((m) => m.memberId));
  const gi = widest(17, ms.map((m) => m.groupInstanceId ?? ''));
  const h = widest(15, ms.map((m) => m.clientHost));
  const ci = widest(15, ms.map((m) => m.clientId));
  const line = (group: string, id: string, instance: string, host: string, clientId: string, n: string) =>
    `${pad(group, g)} ${pad(id, c)} ${withInstance ? `${pad(instance, gi)} ` : ''}${pad(host, h)} ${pad(clientId, ci)} ${pad(n, 15)} `;
  let text = `\n${line('GROUP', 'CONSUMER-ID', 'GROUP-INSTANCE-ID', 'HOST', 'CLIENT-ID', '#PARTITIONS')}${verbose ? 'ASSIGNMENT' : ''}\n`;
  for (const m of ms) {
    const n = m.assignment.reduce((a, t) => a + t.partitions.length, 0);
    text += `${line(d.groupId, m.memberId, m.groupInstanceId ?? '', m.clientHost, m.clientId, String(n))}${verbose ? assignmentString(m.assignment) : ''}\n`;
  }
  io.out(text);
}

/** With --verbose, Kafka adds GROUP-EPOCH and TARGET-ASSIGNMENT-EPOCH: `-` for classic groups. */
function printState(io: ConsumerGroupsIo, d: GroupDescription, verbose: boolean): void {
  if (!printGroupNote(io, d.groupId, d.state, 1)) return;
  const coordinator = `${d.coordinator.host}:${d.coordinator.port}  (${d.coordinator.nodeId})`;
  const widths = [widest(15, [d.groupId]), widest(25, [coordinator]), 20, 20, ...(verbose ? [15, 25] : [])];
  const line = (v: string[]) => `\n${v.map((x, i) => (i < widths.length ? pad(x, widths[i]!) : x)).join(' ')}`;
  const header = ['GROUP', 'COORDINATOR (ID)', 'ASSIGNMENT-STRATEGY', 'STATE', ...(verbose ? ['GROUP-EPOCH', 'TARGET-ASSIGNMENT-EPOCH'] : []), '#MEMBERS'];
  const values = [d.groupId, coordinator, d.protocol || MISSING, d.state, ...(verbose ? [MISSING, MISSING] : []), String(d.members.length)];
  io.out(`${line(header)}${line(values)}\n`);
}

// ---------------------------------------------------------------- --delete

async function deleteGroups({ admin, io }: Ctx, ids: string[]): Promise<number> {
  const results = await admin.deleteGroups(ids);
  const ok = results.filter((r) => r.errorCode === 0).map((r) => `'${r.groupId}'`);
  const failed = results.filter((r) => r.errorCode !== 0);
  if (failed.length === 0) {
    io.out(`Deletion of requested consumer groups (${ok.join(', ')}) was successful.\n`);
    return 0;
  }
  io.out('\nError: Deletion of some consumer groups failed:\n');
  for (const f of failed) io.out(`* Group '${f.groupId}' could not be deleted due to: ${ClientError.kafka(f.errorCode, 'DeleteGroups').message.replace(/^DeleteGroups: /, '')}\n`);
  if (ok.length > 0) io.out(`\nThese consumer groups were deleted successfully: ${ok.join(', ')}\n`);
  return 1;
}

// ---------------------------------------------------------------- --delete-offsets

const kafkaErrorName = (code: number) => ClientError.kafka(code, '').kafkaName ?? String(code);

async function deleteOffsets({ client, admin, io, opts }: Ctx, group: string): Promise<number> {
  const tps = (await Promise.all((opts.topic ?? []).map((s) => partitionsOf(client, s)))).flat();
  const byTopic = new Map<string, number[]>();
  for (const tp of tps) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition]);
  const result = await admin.deleteOffsets(group, [...byTopic].map(([topic, partitions]) => ({ topic, partitions })));
  const partitionFailed = result.partitions.some((p) => p.errorCode !== 0);
  if (result.errorCode === 0 && !partitionFailed) io.out(`Request succeeded for deleting offsets from group ${group}.\n`);
  else if (result.errorCode !== 0) io.out(`\nError: ${kafkaErrorName(result.errorCode)}\n`);
  else io.out('\nError: Encountered some partition-level error, see the follow-up details.\n');
  const statuses = new Map(result.partitions.map((p) => [`${p.topic}\0${p.partition}`, p.errorCode]));
  const t = widest(15, tps.map((tp) => tp.topic));
  const line = (v: string[]) => `\n${pad(v[0]!, t)} ${pad(v[1]!, 10)} ${pad(v[2]!, 15)}`;
  let text = line(['TOPIC', 'PARTITION', 'STATUS']);
  for (const tp of tps.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition))) {
    const code = statuses.get(`${tp.topic}\0${tp.partition}`) ?? result.errorCode;
    text += line([tp.topic, String(tp.partition), code === 0 ? 'Successful' : `Error: ${kafkaErrorName(code)}`]);
  }
  io.out(`${text}\n`);
  return result.errorCode === 0 && !partitionFailed ? 0 : 1;
}

// ---------------------------------------------------------------- --reset-offsets

type Scenario =
  | { kind: 'earliest' } | { kind: 'latest' } | { kind: 'current' }
  | { kind: 'offset'; offset: bigint } | { kind: 'shift'; by: bigint } | { kind: 'timestamp'; ms: number }
  | { kind: 'file'; rows: CsvRow[] };

interface CsvRow { group: string | null; topic: string; partition: number; offset: bigint }

/**
 * Kafka's reset CSV: `topic,partition,offset` for one group, `group,topic,partition,offset` for
 * several (as --export writes it; no header line). With one group a file with the group column is
 * read too (Kafka tries the short form on the first line). A bad line is one error naming its number.
 */
export function parseOffsetsCsv(text: string, severalGroups: boolean, file = 'the file'): CsvRow[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const first = lines.find((l) => l !== '');
  const withGroup = severalGroups || (first !== undefined && first.split(',').length === 4);
  const rows: CsvRow[] = [];
  lines.forEach((line, i) => {
    if (line === '') return;
    const f = line.split(',').map((x) => x.trim());
    const [group, topic, partition, offset] = withGroup ? f : [null, ...f];
    if (f.length !== (withGroup ? 4 : 3) || !topic || !/^\d+$/.test(partition ?? '') || !/^\d+$/.test(offset ?? '')) {
      throw new UsageError(`line ${i + 1} of ${file} is not ${withGroup ? 'group,' : ''}topic,partition,offset: "${line}"${severalGroups ? '' : ' (with several --group the lines start with the group)'}`);
    }
    rows.push({ group: group ?? null, topic, partition: Number(partition), offset: BigInt(offset!) });
  });
  return rows;
}

function parseBigint(flag: string, value: string): bigint {
  if (!/^[+-]?\d+$/.test(value.trim())) throw new UsageError(`${flag} takes an integer, not "${value}"`);
  return BigInt(value.trim());
}

/** `PnDTnHnMnS` (each part optional, seconds may have a fraction) in ms. */
export function parseDuration(value: string): number {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(value.trim());
  if (!m || value.trim().toUpperCase() === 'P' || /T$/i.test(value.trim())) throw new UsageError(`--by-duration takes an ISO-8601 duration like P1DT2H3M4S, not "${value}"`);
  const [, d, h, min, s] = m;
  return ((Number(d ?? 0) * 24 + Number(h ?? 0)) * 60 + Number(min ?? 0)) * 60_000 + Number(s ?? 0) * 1000;
}

function resetScenario(opts: ConsumerGroupsOptions): Scenario {
  const chosen: Scenario[] = [];
  if (opts.toEarliest) chosen.push({ kind: 'earliest' });
  if (opts.toLatest) chosen.push({ kind: 'latest' });
  if (opts.toCurrent) chosen.push({ kind: 'current' });
  if (opts.toOffset !== undefined) chosen.push({ kind: 'offset', offset: parseBigint('--to-offset', opts.toOffset) });
  if (opts.shiftBy !== undefined) chosen.push({ kind: 'shift', by: parseBigint('--shift-by', opts.shiftBy) });
  if (opts.toDatetime !== undefined) {
    const ms = Date.parse(opts.toDatetime);
    if (!Number.isFinite(ms)) throw new UsageError(`--to-datetime takes YYYY-MM-DDTHH:mm:SS.sss, not "${opts.toDatetime}"`);
    chosen.push({ kind: 'timestamp', ms });
  }
  if (opts.byDuration !== undefined) chosen.push({ kind: 'timestamp', ms: Date.now() - parseDuration(opts.byDuration) });
  if (opts.fromFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.fromFile, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --from-file ${opts.fromFile}: ${(err as Error).message}`);
    }
    chosen.push({ kind: 'file', rows: parseOffsetsCsv(text, (opts.group ?? []).length > 1 || opts.allGroups === true, opts.fromFile) });
  }
  if (chosen.length !== 1) {
    throw new UsageError('Option --reset-offsets takes exactly one of --to-earliest, --to-latest, --to-current, --to-offset, --shift-by, --to-datetime, --by-duration, --from-file');
  }
  // The file names its partitions; a scope is not needed (Kafka's rule).
  if (chosen[0]!.kind === 'file') {
    if (opts.dryRun && opts.execute) throw new UsageError('Options --dry-run and --execute cannot be used together');
    return chosen[0]!;
  }
  if (!opts.allTopics && (opts.topic ?? []).length === 0) throw new UsageError('One of the reset scopes should be defined: --all-topics, --topic.');
  if (opts.allTopics && (opts.topic ?? []).length > 0) throw new UsageError('Options --all-topics and --topic cannot be used together');
  if (opts.dryRun && opts.execute) throw new UsageError('Options --dry-run and --execute cannot be used together');
  return chosen[0]!;
}

/** `T` (every partition, from metadata) or `T:0,1,2`. */
async function partitionsOf(client: KafkaClient, spec: string): Promise<Array<{ topic: string; partition: number }>> {
  const colon = spec.lastIndexOf(':');
  if (colon > 0) {
    const topic = spec.slice(0, colon);
    return spec.slice(colon + 1).split(',').map((p) => {
      if (!/^\d+$/.test(p.trim())) throw new UsageError(`bad partition "${p}" in --topic ${spec}`);
      return { topic, partition: Number(p) };
    });
  }
  const md = await client.metadata([spec]);
  const t = md.topics.find((x) => x.name === spec);
  if (!t || t.errorCode !== 0) throw new ClientError('INVALID_ARGUMENT', `topic ${spec} does not exist`);
  return t.partitions.map((p) => ({ topic: spec, partition: p.partitionIndex })).sort((a, b) => a.partition - b.partition);
}

/** `o` within the partition's log: below its start is the start, past its end the end (Kafka's checkOffsetsRange). */
async function clampToLog(client: KafkaClient, topic: string, partition: number, o: bigint): Promise<bigint> {
  const [lo, hi] = await Promise.all([client.listOffsets(topic, partition, 'earliest'), client.listOffsets(topic, partition, 'latest')]);
  return o < lo ? lo : o > hi ? hi : o;
}

async function resetOffsets(ctx: Ctx, ids: string[], scenario: Scenario): Promise<number> {
  const { client, admin, io, opts } = ctx;
  const dryRun = !opts.execute;
  if (!opts.dryRun && !opts.execute) {
    io.err('WARN: No action will be performed as the --execute option is missing. Add --dry-run to keep this behaviour without this warning, or --execute to apply the change.\n');
  }
  const plans: Array<{ group: string; topic: string; partition: number; offset: bigint }> = [];
  let failed = false;
  for (const d of await admin.describeGroups(ids)) {
    if (d.state !== 'Empty' && d.state !== 'Dead') {
      io.out(`\nError: Assignments can only be reset if the group '${d.groupId}' is inactive, but the current state is ${d.state}.\n`);
      failed = true;
      continue;
    }
    if (scenario.kind === 'file') {
      const rows = scenario.rows.filter((r) => r.group === null || r.group === d.groupId);
      // Kafka checks a file's offsets too (checkOffsetsRange): one past the log's end is its end.
      const planned = await Promise.all(rows.map(async (r) => ({ group: d.groupId, topic: r.topic, partition: r.partition, offset: await clampToLog(client, r.topic, r.partition, r.offset) })));
      if (!dryRun && planned.length > 0) await admin.commitOffsets(d.groupId, planned);
      plans.push(...planned);
      continue;
    }
    const committed = await admin.fetchOffsets(d.groupId);
    const current = new Map(committed.map((c) => [`${c.topic}\0${c.partition}`, c.offset]));
    const tps = opts.allTopics
      ? committed.map((c) => ({ topic: c.topic, partition: c.partition }))
      : (await Promise.all((opts.topic ?? []).map((s) => partitionsOf(client, s)))).flat();
    // A reset of many partitions asks for offsets of each: show the count on a terminal.
    const progress = new Progress(io, `${d.groupId}: partitions planned`, tps.length);
    const planned = await Promise.all(tps.map(async ({ topic, partition }) => {
      const earliest = () => client.listOffsets(topic, partition, 'earliest');
      const latest = () => client.listOffsets(topic, partition, 'latest');
      const clamp = (o: bigint) => clampToLog(client, topic, partition, o);
      const committedOffset = current.get(`${topic}\0${partition}`);
      let offset: bigint;
      switch (scenario.kind) {
        case 'earliest': offset = await earliest(); break;
        case 'latest': offset = await latest(); break;
        case 'current': offset = committedOffset ?? await latest(); break;
        case 'offset': offset = await clamp(scenario.offset); break;
        case 'shift': {
          if (committedOffset === undefined) throw new ClientError('INVALID_ARGUMENT', `group ${d.groupId} has no committed offset for ${topic}-${partition} to shift from`);
          offset = await clamp(committedOffset + scenario.by);
          break;
        }
        case 'timestamp': {
          // -1: no record at or after that time; Kafka then resets to the end.
          const o = await client.listOffsets(topic, partition, BigInt(scenario.ms));
          offset = o < 0n ? await latest() : o;
          break;
        }
      }
      progress.add();
      return { group: d.groupId, topic, partition, offset };
    })).finally(() => progress.done());
    if (!dryRun && planned.length > 0) await admin.commitOffsets(d.groupId, planned.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset })));
    plans.push(...planned);
  }
  if (failed && plans.length === 0) return 1;
  if (opts.export) {
    // Kafka's exportOffsetsToCsv: the group column only when several groups were asked for.
    const withGroup = (opts.group ?? []).length > 1 || opts.allGroups === true;
    io.out(plans.map((p) => `${withGroup ? `${p.group},` : ''}${p.topic},${p.partition},${p.offset}\n`).join(''));
    return failed ? 1 : 0;
  }
  const line = (v: string[]) => `\n${pad(v[0]!, 30)} ${pad(v[1]!, 30)} ${pad(v[2]!, 10)} ${pad(v[3]!, 15)}`;
  let text = line(['GROUP', 'TOPIC', 'PARTITION', 'NEW-OFFSET']);
  for (const p of plans) text += line([p.group, p.topic, String(p.partition), String(p.offset)]);
  io.out(`${text}\n`);
  return failed ? 1 : 0;
}
