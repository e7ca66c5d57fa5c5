/**
 * `runnel console-producer`: Kafka's kafka-console-producer.sh (apache/kafka tools ConsoleProducer
 * with its default LineMessageReader). Each line of stdin is one record.
 *
 * Line format (Kafka's reader properties, set with --property or --reader-property):
 *   parse.headers=true   the line starts with headers, ended by headers.delimiter (default TAB):
 *                        `k1:v1,k2:v2` (headers.separator `,`, headers.key.separator `:`)
 *   parse.key=true       then the key, ended by key.separator (default TAB)
 *   the rest             the value
 * A key, value or header value equal to null.marker (unset by default) is sent as null. A line
 * without the expected separator stops the tool (exit 1, the lines before it are sent) unless
 * ignore.error=true, which sends the whole line as the value (Kafka's behaviour).
 *
 * Partitioning is Kafka's default: a keyed record goes to murmur2(key) % partitions, as the Java
 * client places it; unkeyed records go round-robin (Kafka's sticky partitioner fills one batch per
 * partition in turn; the spread over time is the same). Batching follows batch.size and linger.ms
 * (`--timeout`, Kafka's name for the linger of this tool, default 1000 ms); `--sync` sends each
 * line and waits for its acknowledgement.
 */
import { Buffer } from 'node:buffer';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { Codec, KafkaClient, Producer, javaPartition, type Acks, type RecordInput } from '@runnel/client';
import { Progress, ToolError, UsageError, collect, connectTool, parseKeyValues, positiveMs, runTool, stdio, type ToolIo } from './tool-common.ts';

export interface ConsoleProducerOptions {
  bootstrapServer?: string;
  topic?: string;
  property?: string[];
  readerProperty?: string[];
  producerProperty?: string[];
  sync?: boolean;
  requestRequiredAcks?: string;
  compressionCodec?: string | boolean;
  batchSize?: string;
  timeout?: string;
  requestTimeoutMs?: string;
}

/** Records read but not yet acknowledged; reading stdin waits above this (memory stays bounded). */
const MAX_UNACKNOWLEDGED = 10_000;

const CODECS: Record<string, Codec> = { none: Codec.None, gzip: Codec.Gzip, snappy: Codec.Snappy, lz4: Codec.Lz4, zstd: Codec.Zstd };

const HELP_AFTER = `
Input: one record per line of stdin. Reader properties (--property k=v, repeatable):
  parse.key=false           the line is KEY<key.separator>VALUE
  key.separator=\\t
  parse.headers=false       the line starts with headers: h1:v1,h2:v2<headers.delimiter>
  headers.delimiter=\\t  headers.separator=,  headers.key.separator=:
  null.marker=              a key, value or header value equal to it is sent as null
  ignore.error=false        a line without a separator is sent whole as the value instead of stopping

Examples:
  echo 'hello' | runnel console-producer --bootstrap-server localhost:9092 --topic orders
  printf 'k1:v1\\n' | runnel console-producer --bootstrap-server localhost:9092 --topic orders --property parse.key=true --property key.separator=:
  printf 'source:web,trace:42\\tuser-7\\t{"total":12}\\n' | runnel console-producer --bootstrap-server localhost:9092 --topic orders \\
      --property parse.headers=true --property parse.key=true
  runnel console-producer --bootstrap-server localhost:9092 --topic orders --producer-property acks=1 --compression-codec lz4 < records.txt
`;

/** The `console-producer` subcommand; `io` and `input` are for tests. */
export function consoleProducerCommand(io: ToolIo = stdio, input: Readable = process.stdin): Command {
  return new Command('console-producer')
    .description('send the lines of stdin as records (kafka-console-producer.sh)')
    .option('--bootstrap-server <host:port>', 'the broker(s) to connect to (required)')
    .option('--topic <topic>', 'the topic to produce to (required)')
    .option('--property <key=value>', 'a line reader property: parse.key, key.separator, parse.headers, ... (repeatable)', collect)
    .option('--reader-property <key=value>', 'same as --property (Kafka 4\'s name)', collect)
    .option('--producer-property <key=value>', 'a producer config: acks, linger.ms, batch.size, compression.type, request.timeout.ms (repeatable)', collect)
    .option('--sync', 'send each line on its own and wait for the acknowledgement')
    .option('--request-required-acks <acks>', 'acks: -1/all, 1 or 0 (default -1)')
    .option('--compression-codec [codec]', 'none, gzip, snappy, lz4 or zstd (gzip when given without a value)')
    .option('--batch-size <n>', 'records per batch are bounded by this many bytes (batch.size, default 16384)')
    .option('--timeout <ms>', 'linger.ms: how long a batch waits for more lines (default 1000)')
    .option('--request-timeout-ms <ms>', 'produce request timeout (default 1500)')
    .addHelpText('after', HELP_AFTER)
    .action(async (opts: ConsoleProducerOptions) => {
      const code = await runConsoleProducer(opts, io, input);
      if (code !== 0) process.exitCode = code;
    });
}

interface Reader {
  parseKey: boolean;
  keySeparator: string;
  parseHeaders: boolean;
  headersDelimiter: string;
  headersSeparator: string;
  headersKeySeparator: string;
  nullMarker: string | null;
  ignoreError: boolean;
}

function readerOf(props: Map<string, string>): Reader {
  const bool = (k: string) => {
    const v = props.get(k);
    if (v === undefined) return false;
    if (!/^(true|false)$/i.test(v)) throw new UsageError(`--property ${k} takes true or false, not "${v}"`);
    return v.toLowerCase() === 'true';
  };
  const known = ['parse.key', 'key.separator', 'parse.headers', 'headers.delimiter', 'headers.separator', 'headers.key.separator', 'null.marker', 'ignore.error'];
  for (const k of props.keys()) if (!known.includes(k)) throw new UsageError(`unknown reader property ${k} (known: ${known.join(', ')})`);
  const text = (k: string, def: string) => {
    const v = props.get(k) ?? def;
    if (v === '') throw new UsageError(`--property ${k} must not be empty`);
    return v;
  };
  return {
    parseKey: bool('parse.key'),
    keySeparator: text('key.separator', '\t'),
    parseHeaders: bool('parse.headers'),
    headersDelimiter: text('headers.delimiter', '\t'),
    headersSeparator: text('headers.separator', ','),
    headersKeySeparator: text('headers.key.separator', ':'),
    nullMarker: props.get('null.marker') ?? null,
    ignoreError: bool('ignore.error'),
  };
}

/** One line → one record (see the file comment); throws ToolError with Kafka's wording on a bad line. */
export function parseLine(line: string, lineNumber: number, r: Reader): RecordInput {
  const orNull = (s: string) => (r.nullMarker !== null && s === r.nullMarker ? null : s);
  let rest = line;
  const record: RecordInput = { value: null };
  if (r.parseHeaders) {
    const i = rest.indexOf(r.headersDelimiter);
    if (i < 0) {
      if (r.ignoreError) return { value: orNull(line) };
      throw new ToolError(`No headers delimiter found on line number ${lineNumber}: '${line}'`);
    }
    const headers = rest.slice(0, i);
    rest = rest.slice(i + r.headersDelimiter.length);
    record.headers = headers === '' ? [] : headers.split(r.headersSeparator).map((pair) => {
      const k = pair.indexOf(r.headersKeySeparator);
      if (k < 0) {
        if (r.ignoreError) return { key: pair, value: null };
        throw new ToolError(`No header key separator found in pair '${pair}' on line number ${lineNumber}`);
      }
      return { key: pair.slice(0, k), value: orNull(pair.slice(k + r.headersKeySeparator.length)) };
    });
  }
  if (r.parseKey) {
    const i = rest.indexOf(r.keySeparator);
    if (i < 0) {
      if (r.ignoreError) return { ...record, value: orNull(rest) };
      throw new ToolError(`No key separator found on line number ${lineNumber}: '${line}'`);
    }
    record.key = orNull(rest.slice(0, i));
    rest = rest.slice(i + r.keySeparator.length);
  }
  record.value = orNull(rest);
  return record;
}

function acksOf(value: string): Acks {
  if (value === 'all' || value === '-1') return -1;
  if (value === '1') return 1;
  if (value === '0') return 0;
  throw new UsageError(`acks must be all, -1, 1 or 0, not "${value}"`);
}

/** Runs the producer over `input`; resolves with the exit code. */
export async function runConsoleProducer(opts: ConsoleProducerOptions, io: ToolIo = stdio, input: Readable = process.stdin): Promise<number> {
  let client: KafkaClient | null = null;
  return runTool('console-producer', io, async () => {
    if (!opts.topic) throw new UsageError('Missing required argument "[topic]"');
    const reader = readerOf(parseKeyValues('--property', [...(opts.property ?? []), ...(opts.readerProperty ?? [])]));
    const props = parseKeyValues('--producer-property', opts.producerProperty ?? []);
    const acks = acksOf(opts.requestRequiredAcks ?? props.get('acks') ?? '-1');
    const codecName = opts.compressionCodec === true ? 'gzip' : (opts.compressionCodec || props.get('compression.type') || 'none');
    const codec = CODECS[codecName];
    if (codec === undefined) throw new UsageError(`compression codec must be none, gzip, snappy, lz4 or zstd, not "${codecName}"`);
    const lingerMs = opts.timeout !== undefined ? positiveMs('--timeout', opts.timeout, 1000) : Number(props.get('linger.ms') ?? 1000);
    const batchSize = opts.batchSize !== undefined ? positiveMs('--batch-size', opts.batchSize, 16384) : Number(props.get('batch.size') ?? 16384);
    const requestTimeoutMs = positiveMs('--request-timeout-ms', opts.requestTimeoutMs ?? props.get('request.timeout.ms'), 1500);
    if (!Number.isInteger(lingerMs) || lingerMs < 0) throw new UsageError(`linger.ms must be a non-negative integer, not "${props.get('linger.ms')}"`);
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new UsageError(`batch.size must be a positive integer, not "${props.get('batch.size')}"`);

    client = await connectTool(opts.bootstrapServer, props.get('client.id') ?? 'console-producer', Math.max(requestTimeoutMs, 10_000));
    try {
      const partitions = await partitionCount(client, opts.topic);
      const producer = new Producer(client, { acks, codec, lingerMs: opts.sync ? 0 : lingerMs, batchSize, timeoutMs: requestTimeoutMs });
      const progress = new Progress(io, `${opts.topic}: records sent`);
      let failure: Error | null = null;
      let next = 0;
      let lineNumber = 0;
      const pending = new Set<Promise<unknown>>();
      try {
        for await (const line of createInterface({ input, crlfDelay: Infinity })) {
          lineNumber++;
          if (failure) break;
          const record = parseLine(line, lineNumber, reader);
          const key = record.key;
          const partition = key === null || key === undefined
            ? (next++ % partitions)
            : javaPartition(typeof key === 'string' ? Buffer.from(key) : key, partitions);
          const sent = producer.append(opts.topic, partition, record).then(() => progress.add(), (err: Error) => { failure ??= err; });
          if (opts.sync) await sent;
          else {
            pending.add(sent);
            void sent.finally(() => pending.delete(sent));
            if (pending.size >= MAX_UNACKNOWLEDGED) await Promise.race(pending);
          }
        }
      } finally {
        // Whatever stopped the input (its end, a bad line), what was read before is sent.
        await producer.flush();
        await Promise.all(pending);
        progress.done();
      }
      if (failure) throw failure;
      return 0;
    } finally {
      await client.close();
    }
  }, (message) => io.err(`ERROR ${message}\n`));
}

/**
 * The topic's partition count. Metadata asks for auto-creation as Kafka's producer does, so the
 * broker's auto.create.topics.enable decides; a topic it does not create is an error.
 */
async function partitionCount(client: KafkaClient, topic: string): Promise<number> {
  let md = await client.metadata([topic], { allowAutoTopicCreation: true });
  // A topic just created may have no leaders yet: ask again briefly.
  for (let i = 0; i < 50 && md.topics.some((t) => t.name === topic && (t.errorCode === 5 || t.partitions.some((p) => p.leaderId < 0))); i++) {
    await new Promise((r) => setTimeout(r, 100));
    md = await client.metadata([topic]);
  }
  const t = md.topics.find((x) => x.name === topic);
  if (!t || t.errorCode === 3) throw new ToolError(`topic ${topic} does not exist (create it with "runnel topics --create --topic ${topic}")`);
  if (t.errorCode !== 0 || t.partitions.length === 0) throw new ToolError(`topic ${topic} is not available (error ${t.errorCode})`);
  return t.partitions.length;
}
