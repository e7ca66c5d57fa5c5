import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { ConfigError, RunnelError } from '@runnel/common';
import { startSingleNode } from './start.ts';
import { startRole } from './cluster/roles.ts';
import { checkClusterUpOptions, clusterUp } from './cluster/cluster-up.ts';
import { ClusterError, clusterDown, clusterStatus, detachClusterUp, summary } from './cluster/state.ts';
import { loadConfig } from './config.ts';
import { logSettings } from './logging.ts';
import { perfCommand } from './perf.ts';
import { consumerGroupsCommand } from './consumer-groups.ts';
import { topicsCommand } from './topics.ts';
import { configsCommand } from './configs.ts';
import { consoleProducerCommand } from './console-producer.ts';
import { consoleConsumerCommand } from './console-consumer.ts';
import { doctorCommand } from './doctor.ts';
import { applyServerV8Flags } from './v8-flags.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

/** The `runnel` command. The only place that reads argv and the environment. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  // `runnel perf ... | head`: the reader went away; stop quietly, as a Unix filter does.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const program = new Command('runnel')
    .description('Runnel: a Kafka-compatible broker cluster')
    .version(version(), '-V, --version', 'print the version and exit')
    .showHelpAfterError();

  const configOptions = (c: Command) => c
    .option('-c, --config <file>', 'a server.properties file (Kafka names)')
    .option('-s, --set <key=value>', 'set one config, e.g. --set listeners=PLAINTEXT://127.0.0.1:9093 (repeatable)', collect, []);

  /** A server command: the garbage collector's settings first, then the node until a signal. */
  const serve = async (start: () => Promise<{ stop: () => Promise<void> }>): Promise<void> => {
    applyServerV8Flags(env);
    stopOnSignal(await start());
  };

  configOptions(program.command('start')
    .description('serve a single-node cluster (broker and coordinator in one process, embedded metadata)'))
    .action((opts: { config?: string; set: string[] }) => serve(() => startSingleNode(opts, env)));

  // The cluster roles, one per process (docs/architecture.md); `cluster up` starts a whole cluster of them.
  const roles = [
    ['controller', 'serve the controller: cluster membership, topic assignment, leader election (metadata in Redis)'],
    ['broker', 'serve a broker of a cluster: partition logs behind the Kafka listener'],
    ['coordinator', 'serve a group coordinator of a cluster: consumer groups and committed offsets'],
  ] as const;
  for (const [role, description] of roles) {
    configOptions(program.command(role).description(description))
      .action((opts: { config?: string; set: string[] }) => serve(() => startRole(role, opts, env)));
  }
  const cluster = program.command('cluster').description('run a cluster on this machine');
  cluster.command('up')
    .description('start Redis, a controller, brokers and coordinators as separate processes; Ctrl-C stops them all')
    .option('--brokers <n>', 'number of brokers', (v) => Number(v), 3)
    .option('--coordinators <n>', 'number of group coordinators', (v) => Number(v), 1)
    .option('--dir <path>', 'data directory of the whole cluster', './data-cluster')
    .option('--host <host>', 'host the Kafka listeners bind and advertise', '127.0.0.1')
    .option('--port <port>', 'Kafka port of the first broker; the other nodes take the next ones (0: any free ports)', (v) => Number(v), 9092)
    .option('--redis <url>', 'use this Redis instead of starting one (redis://host:port)')
    .option('-s, --set <key=value>', 'a config given to every node (repeatable)', collect, [])
    .option('-d, --detach', 'run in the background (output in <dir>/cluster.log); return once every node is ready')
    .action(async (opts: { brokers: number; coordinators: number; dir: string; host: string; port: number; redis?: string; set: string[]; detach?: boolean }) => {
      const { format } = logSettings(env);
      // A bad value given to every node fails here, once, before anything starts.
      checkClusterUpOptions(opts);
      loadConfig({ set: opts.set }, env);
      if (opts.detach) {
        const args = argv.slice(1).filter((a) => a !== '--detach' && a !== '-d');
        const state = await detachClusterUp(resolve(opts.dir), opts.dir, args);
        process.stdout.write(summary(state, opts.brokers, opts.coordinators));
        process.stdout.write(`running in the background: \`runnel cluster status --dir ${opts.dir}\`, \`runnel cluster down --dir ${opts.dir}\`\n`);
        return;
      }
      const up = await clusterUp({ ...opts, logFormat: format }, argv[1]!);
      await up.done;
    });
  cluster.command('status')
    .description('show the cluster running in a directory (exit 1 when none is)')
    .option('--dir <path>', 'data directory of the cluster', './data-cluster')
    .action((opts: { dir: string }) => clusterCommand(() => process.stdout.write(clusterStatus(resolve(opts.dir), opts.dir))));
  cluster.command('down')
    .description('stop the cluster running in a directory (nodes, then the controller, then Redis)')
    .option('--dir <path>', 'data directory of the cluster', './data-cluster')
    .action((opts: { dir: string }) => clusterCommand(async () => {
      const pid = await clusterDown(resolve(opts.dir), opts.dir);
      process.stdout.write(`runnel cluster in ${opts.dir} stopped (pid ${pid})\n`);
    }));

  program.addCommand(perfCommand());
  program.addCommand(consumerGroupsCommand());
  program.addCommand(topicsCommand());
  program.addCommand(configsCommand());
  program.addCommand(consoleProducerCommand());
  program.addCommand(consoleConsumerCommand());
  program.addCommand(doctorCommand(env));

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`runnel: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    // Runnel's own errors (a log dir in use, another cluster's disk) and system errors (a port in
    // use, a dir we may not write) are the operator's to fix: say what failed in one line.
    // Anything else is a bug: show the stack.
    const sys = err as NodeJS.ErrnoException;
    const operational = err instanceof RunnelError || (sys.code !== undefined && sys.syscall !== undefined);
    process.stderr.write(`runnel: cannot start: ${operational ? sys.message : (sys.stack ?? String(err))}\n`);
    process.exitCode = 1;
  }
}

/** `cluster status|down`: a ClusterError (none running) is one line and exit code 1. */
async function clusterCommand(run: () => unknown): Promise<void> {
  try {
    await run();
  } catch (err) {
    if (!(err instanceof ClusterError)) throw err;
    process.stderr.write(`runnel cluster: ${err.message}\n`);
    process.exitCode = 1;
  }
}

/** This package's version (package.json), for `runnel --version`. */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** SIGTERM or SIGINT stops the running node(s) cleanly, once (a second signal does not stop it again); a failed stop exits 1. */
function stopOnSignal(running: { stop(): Promise<void> }): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`runnel: ${signal}, stopping\n`);
    running.stop().catch((err: unknown) => {
      process.stderr.write(`runnel: stop failed: ${(err as Error).stack ?? err}\n`);
      process.exitCode = 1;
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
