import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, configToEnvName, prettyLogLine } from '@runnel/common';
import { checkPorts, claimDir, ClusterError, releaseDir, summary, type ClusterState } from './state.ts';

export interface ClusterUpOptions {
  brokers: number;
  coordinators: number;
  /** Data root: `<dir>/broker-<id>`, `<dir>/redis`. */
  dir: string;
  /** Kafka listener port of the first broker; the next nodes take the following ports (0: any free ports). */
  port: number;
  host: string;
  /** An existing Redis; when absent a redis-server is started under `<dir>/redis`. */
  redis?: string;
  /** `--set` pairs given to every role. */
  set: string[];
  /** How the nodes' log lines reach our stderr: as they wrote them (JSON), or human-readable. */
  logFormat: 'json' | 'pretty';
}

interface Child { name: string; proc: ChildProcess; ready: Promise<string> }

/** The numbers `cluster up` is given, checked before anything is created (also before --detach starts one): a ConfigError naming the option. */
export function checkClusterUpOptions(o: Pick<ClusterUpOptions, 'brokers' | 'coordinators' | 'port'>): void {
  if (!Number.isInteger(o.brokers) || o.brokers < 1) throw new ConfigError('INVALID_VALUE', '--brokers', `--brokers: expected a whole number >= 1, got ${o.brokers}`);
  if (!Number.isInteger(o.coordinators) || o.coordinators < 1) throw new ConfigError('INVALID_VALUE', '--coordinators', `--coordinators: expected a whole number >= 1, got ${o.coordinators}`);
  // The nodes take --port and the ports after it, one each.
  const lastPort = 65535 - (o.brokers + o.coordinators - 1);
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > lastPort) {
    throw new ConfigError('INVALID_VALUE', '--port', `--port: expected 0 (any free ports) or a port from 1 to ${lastPort} (${o.brokers + o.coordinators} nodes take it and the next ones), got ${o.port}`);
  }
}

/**
 * `runnel cluster up`: a whole cluster on this machine as separate OS processes (docs/architecture.md):
 * a Redis for metadata (started with `appendonly yes`, `appendfsync always`, as docs/metadata.md rule 7 requires,
 * unless `--redis` names one), one controller, N brokers and M coordinators, each started as
 * `runnel <role>` with its own node id, listener and data dir. The roles' JSON log lines pass
 * through to stderr; once every node is ready a summary goes to stdout. SIGINT/SIGTERM stops the
 * nodes (brokers and coordinators first, then the controller, then Redis), also while they are
 * still starting, and so does SIGHUP; `done` resolves once every child has exited. A node that dies on its own is
 * reported, and the rest keep running, as in a real cluster.
 *
 * The directory is claimed first (`<dir>/cluster.json`, see state.ts): a second `cluster up` on a
 * directory in use refuses before it touches anything. Fixed ports are checked before anything
 * starts, so a port in use is one line.
 */
export async function clusterUp(o: ClusterUpOptions, runnelBin: string): Promise<{ done: Promise<void> }> {
  checkClusterUpOptions(o);
  const dir = resolve(o.dir);
  mkdirSync(dir, { recursive: true });
  const children: Child[] = [];
  let stopping = false;
  /** The signal that asked us to stop, if one did: then a start cut short is a clean stop, not a failure. */
  let signalled: string | undefined;
  // The nodes always log JSON to us (their ready lines are read from it); a terminal gets them as
  // human-readable lines, as from `runnel start`.
  const childEnv = { ...process.env, RUNNEL_LOG_FORMAT: 'json' };
  const pretty = o.logFormat === 'pretty';

  const start = (name: string, command: string, args: string[], readyLine: RegExp): Child => {
    // A signal that came while we awaited (the port check, an earlier node) stopped what was
    // running then; nothing may start after it.
    if (stopping) throw new ClusterError('NODE_EXITED', `stopped before ${name} started`);
    // Each child in its own process group: a Ctrl-C in the terminal reaches only us, and we stop
    // the children in order (nodes, controller, Redis) rather than all at once.
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: childEnv });
    const ready = new Promise<string>((resolveReady, reject) => {
      let pending = '';
      let reason: string | undefined;
      const partial = { out: '', err: '' };
      const onData = (stream: 'out' | 'err') => (b: Buffer) => {
        if (!pretty) {
          process.stderr.write(b);
        } else {
          const lines = (partial[stream] + b.toString()).split('\n');
          partial[stream] = lines.pop()!;
          for (const line of lines) process.stderr.write(`${prettyLogLine(line)}\n`);
        }
        pending = (pending + b.toString()).slice(-8192);
        const m = pending.match(readyLine);
        if (m) resolveReady(m[1] ?? m[2] ?? '');
        // The one line a node prints when it cannot start (main.ts): the reason we report.
        reason = /^runnel: (?:cannot start: )?(.*)$/m.exec(pending)?.[1] ?? reason;
      };
      proc.stdout!.on('data', onData('out'));
      proc.stderr!.on('data', onData('err'));
      proc.on('error', reject);
      proc.on('exit', (code, signal) => {
        reject(new ClusterError('NODE_EXITED', `${name} exited (${code ?? signal}) before it was ready${reason === undefined ? '' : `: ${reason}`}`));
        if (!stopping) process.stderr.write(`runnel cluster: ${name} exited (${code ?? signal})\n`);
      });
    });
    ready.catch(() => {});
    const child = { name, proc, ready };
    children.push(child);
    return child;
  };

  const stopAll = async () => {
    stopping = true;
    // Nodes first (they deregister by going quiet), then the controller, then the store.
    const order = [...children].reverse();
    for (const c of order) {
      if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue;
      const exited = new Promise((r) => c.proc.once('exit', r));
      c.proc.kill('SIGTERM');
      const timer = setTimeout(() => c.proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };

  // Signals stop everything, also while the cluster is still starting (no child may outlive us);
  // a repeated signal changes nothing. If we die anyway, the children go with us.
  const onSignal = (signal: string) => {
    if (stopping) return;
    signalled = signal;
    process.stderr.write(`runnel cluster: ${signal}, stopping\n`);
    void stopAll();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed terminal (SIGHUP) too: the nodes run in their own process groups, so it never reaches
  // them, and SIGHUP's default would kill us without the 'exit' hook below, orphaning Redis and
  // every node with their ports and log dirs. (`nohup` cannot keep us running anyway: Node resets
  // an inherited ignored SIGHUP at startup. The background mode is --detach, in its own session.)
  process.on('SIGHUP', onSignal);
  // After a hangup our stderr, where the nodes' lines go, fails (EIO; a closed pipe: EPIPE). An
  // unhandled write error would kill us, and the 'exit' hook SIGKILL the nodes: the lines are
  // dropped instead, and the nodes still stop in order.
  process.stderr.on('error', () => {});
  process.on('exit', () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    releaseDir(dir);
  });
  // Claimed once our signal handlers are in place: a signal from then on stops us cleanly and
  // removes the claim (without them, it would kill us and leave a stale cluster.json).
  const setState = claimDir(dir, o.dir);

  try {
    if (o.port !== 0) {
      const names = [...Array.from({ length: o.brokers }, (_, i) => `broker-${i + 1}`), ...Array.from({ length: o.coordinators }, (_, i) => `coordinator-${o.brokers + i + 1}`)];
      await checkPorts(o.host, names.map((name, i) => ({ name, port: o.port + i })));
    }
    let redisUrl = o.redis;
    if (!redisUrl) {
      const redisDir = join(dir, 'redis');
      mkdirSync(redisDir, { recursive: true });
      const socket = join(redisDir, 'redis.sock');
      if (spawnSync('redis-server', ['--version']).error) {
        throw new ConfigError('MISSING', '--redis', 'redis-server is not installed: install it (Debian: apt-get install redis-server) or pass --redis URL');
      }
      const redis = start('redis', 'redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', redisDir,
        '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], /(ready to accept connections)/i);
      await redis.ready;
      redisUrl = `redis+unix://${socket}`;
    }
    // Replication defaults for a local cluster, unless the user set them (--set or KAFKA_* env):
    // every partition on min(3, brokers) brokers, and acks=all needing min(2, brokers - 1)
    // replicas (at least 1) so that losing any one broker never blocks producers (with 2 brokers,
    // min.insync.replicas=2 would).
    const replication: [string, number][] = [
      ['default.replication.factor', Math.min(3, o.brokers)],
      ['offsets.topic.replication.factor', Math.min(3, o.brokers)],
      ['min.insync.replicas', Math.max(1, Math.min(2, o.brokers - 1))],
    ];
    const userSet = (key: string) => o.set.some((s) => s.split('=')[0]!.trim() === key)
      || process.env[configToEnvName(key)] !== undefined;
    const defaults = replication.filter(([key]) => !userSet(key)).flatMap(([key, value]) => ['--set', `${key}=${value}`]);
    const common = ['--set', `runnel.redis.url=${redisUrl}`, ...defaults, ...o.set.flatMap((s) => ['--set', s])];
    const role = (name: string, roleName: string, nodeId: number, extra: string[]) =>
      start(name, process.execPath, [runnelBin, roleName, '--set', `node.id=${nodeId}`, ...extra, ...common], new RegExp(`"listener":"([^"]+)"[^\\n]*runnel ${roleName} is ready|"rpc":"([^"]+)"[^\\n]*runnel ${roleName} is ready`));

    const controller = role('controller', 'controller', 0, ['--set', `log.dirs=${join(dir, 'controller')}`]);
    await controller.ready;
    // --port 0: every node picks a free port (the summary says which).
    let port = o.port;
    const nextPort = () => (o.port === 0 ? 0 : port++);
    const nodes: Child[] = [];
    for (let i = 1; i <= o.brokers; i++) {
      nodes.push(role(`broker-${i}`, 'broker', i, ['--set', `listeners=PLAINTEXT://${o.host}:${nextPort()}`, '--set', `log.dirs=${join(dir, `broker-${i}`)}`]));
    }
    // Coordinators load their __consumer_offsets partitions from the brokers as soon as they
    // start: started before the brokers are registered (a restart waits for the previous
    // registrations' sessions), they would warn about every partition without a leader.
    await Promise.all(nodes.map((n) => n.ready));
    for (let i = 1; i <= o.coordinators; i++) {
      const id = o.brokers + i;
      nodes.push(role(`coordinator-${id}`, 'coordinator', id, ['--set', `listeners=PLAINTEXT://${o.host}:${nextPort()}`, '--set', `log.dirs=${join(dir, `coordinator-${id}`)}`]));
    }
    const listeners = await Promise.all(nodes.map((n) => n.ready));
    const bootstrap = listeners.slice(0, o.brokers).map((l) => l.replace('PLAINTEXT://', '')).join(',');
    const shown = new Map<Child, string>(nodes.map((n, i) => [n, listeners[i]!]));
    shown.set(controller, await controller.ready);
    const state: Partial<ClusterState> = { ready: true, redis: redisUrl, bootstrap, processes: children.map((c) => ({ name: c.name, pid: c.proc.pid!, address: shown.get(c) ?? '-' })) };
    setState(state);
    process.stdout.write(summary(state as ClusterState, o.brokers, o.coordinators));
  } catch (err) {
    await stopAll();
    releaseDir(dir);
    // Stopped by SIGINT/SIGTERM while starting: every node is stopped, as asked; that is no error.
    if (signalled !== undefined) return { done: Promise.resolve() };
    throw err;
  }

  // Every child's exit, including those that already exited while the others started.
  const done = Promise.all(children.map((c) => (c.proc.exitCode !== null || c.proc.signalCode !== null
    ? undefined
    : new Promise((r) => c.proc.once('exit', r))))).then(() => releaseDir(dir));
  return { done };
}
