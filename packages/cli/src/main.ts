import { Command } from 'commander';
import { ConfigError, RunnelError } from '@runnel/common';
import { startSingleNode } from './start.ts';
import { perfCommand } from './perf.ts';
import { consumerGroupsCommand } from './consumer-groups.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

/** The `runnel` command. The only place that reads argv and the environment. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const program = new Command('runnel')
    .description('Runnel: a Kafka-compatible broker cluster')
    .showHelpAfterError();

  program.command('start')
    .description('serve a single-node cluster (broker and coordinator in one process, embedded metadata)')
    .option('-c, --config <file>', 'a server.properties file (Kafka names)')
    .option('-s, --set <key=value>', 'set one config, e.g. --set listeners=PLAINTEXT://127.0.0.1:9093 (repeatable)', collect, [])
    .action(async (opts: { config?: string; set: string[] }) => {
      const node = await startSingleNode(opts, env);
      const shutdown = (signal: string) => {
        process.stderr.write(`runnel: ${signal}, stopping\n`);
        node.stop().catch((err: unknown) => {
          process.stderr.write(`runnel: stop failed: ${(err as Error).stack ?? err}\n`);
          process.exitCode = 1;
        });
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });

  program.addCommand(perfCommand());
  program.addCommand(consumerGroupsCommand());

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
