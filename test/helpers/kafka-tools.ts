/**
 * Runs Apache Kafka's own command-line tools (the classes behind kafka-topics.sh,
 * kafka-reassign-partitions.sh, kafka-leader-election.sh, kafka-consumer-groups.sh and
 * kafka-configs.sh) against Runnel, without a Kafka install: test/java/fetch-tools.sh fetches the
 * jars from Maven Central once into .cache/kafka-tools/<version>/libs, and each call here is one
 * `java -cp <libs>/* <main class> <args>` with a deadline (a tool stuck retrying against a broken
 * broker fails the test instead of hanging it).
 *
 *   const tools = await kafkaTools();            // fetches on first use, then reuses .cache
 *   const r = await tools.topics(['--bootstrap-server', bootstrap, '--describe', '--topic', 't']);
 *   expect(r.code).toBe(0);
 */
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The Kafka version whose tools are run (the same default as test/java/fetch-clients.sh). */
export const KAFKA_TOOLS_VERSION = process.env.RUNNEL_KAFKA_TOOLS_VERSION ?? '4.3.1';

/**
 * Main classes of the tools in Kafka 4.x (what bin/kafka-*.sh pass to kafka-run-class.sh).
 * kafka-configs is still Scala code in the core jar (kafka_2.13); the others are in kafka-tools.
 */
export const TOOL_CLASSES = {
  topics: 'org.apache.kafka.tools.TopicCommand',
  reassign: 'org.apache.kafka.tools.reassign.ReassignPartitionsCommand',
  leaderElection: 'org.apache.kafka.tools.LeaderElectionCommand',
  consumerGroups: 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
  configs: 'kafka.admin.ConfigCommand',
} as const;

export type ToolName = keyof typeof TOOL_CLASSES;

export interface ToolResult {
  /** Exit code; null when the process was killed (deadline) or died by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The command line, for failure messages. */
  command: string;
}

export interface KafkaTools {
  version: string;
  /** `<libs>/*`, the classpath of every tool. */
  classpath: string;
  /** Runs any main class on the tools' classpath. */
  run(mainClass: string, args: string[], o?: { timeoutMs?: number }): Promise<ToolResult>;
  /** kafka-topics.sh */
  topics(args: string[], o?: { timeoutMs?: number }): Promise<ToolResult>;
  /** kafka-reassign-partitions.sh */
  reassign(args: string[], o?: { timeoutMs?: number }): Promise<ToolResult>;
  /** kafka-leader-election.sh */
  leaderElection(args: string[], o?: { timeoutMs?: number }): Promise<ToolResult>;
  /** kafka-consumer-groups.sh */
  consumerGroups(args: string[], o?: { timeoutMs?: number }): Promise<ToolResult>;
  /** kafka-configs.sh */
  configs(args: string[], o?: { timeoutMs?: number }): Promise<ToolResult>;
}

/** Throws with the result's command, exit code and output unless it exited 0; returns stdout. */
export function ok(r: ToolResult): string {
  if (r.code !== 0) {
    throw new Error(`${r.command} exited ${r.code}${r.timedOut ? ' (deadline passed, killed)' : ''}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`);
  }
  return r.stdout;
}

function exec(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number | string; killed?: boolean }) | null;
      const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
      resolve({ code, stdout, stderr, timedOut: Boolean(e?.killed) });
    });
  });
}

const fetched = new Map<string, Promise<string>>();

/**
 * Fetches (once per process; test/java/fetch-tools.sh itself skips what .cache already holds) and
 * returns the runner. Throws a one-line reason when java or mvn is missing or Maven Central is
 * unreachable.
 */
export async function kafkaTools(version = KAFKA_TOOLS_VERSION): Promise<KafkaTools> {
  let classpath = fetched.get(version);
  if (!classpath) {
    classpath = (async () => {
      const missing = ['java', 'mvn'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
      if (missing.length > 0) {
        throw new Error(`Kafka's tools need ${missing.join(', ')}: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)`);
      }
      const script = join(import.meta.dirname, '..', 'java', 'fetch-tools.sh');
      const r = await exec(script, [version], 600_000);
      if (r.code !== 0) throw new Error(`${script} ${version} failed (${r.code}):\n${r.stderr}`);
      if (r.stderr.trim()) process.stderr.write(`${r.stderr.trim()}\n`);
      return r.stdout.trim().split('\n').at(-1)!;
    })();
    fetched.set(version, classpath);
    classpath.catch(() => fetched.delete(version));
  }
  const cp = await classpath;
  const run = async (mainClass: string, args: string[], o: { timeoutMs?: number } = {}): Promise<ToolResult> => {
    // A small heap and no JIT tiers beyond C1: the tools are short-lived, and the machine is shared.
    const jvm = ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', cp, mainClass];
    const r = await exec('java', [...jvm, ...args], o.timeoutMs ?? 60_000);
    return { ...r, command: `${mainClass} ${args.join(' ')}` };
  };
  const tool = (name: ToolName) => (args: string[], o?: { timeoutMs?: number }) => run(TOOL_CLASSES[name], args, o);
  return {
    version,
    classpath: cp,
    run,
    topics: tool('topics'),
    reassign: tool('reassign'),
    leaderElection: tool('leaderElection'),
    consumerGroups: tool('consumerGroups'),
    configs: tool('configs'),
  };
}
