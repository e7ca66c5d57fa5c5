/**
 * A real Runnel cluster for end-to-end tests: a redis-server, a `runnel controller`, brokers
 * (`runnel broker`) and coordinators (`runnel coordinator`), each its own OS process on ephemeral
 * ports with its own data dir. Addresses come from each node's "ready" log line, so there is no
 * race for free ports. Any node can be killed and started again on the same data dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type Started } from './process.ts';
import { startRedis, type TestRedis } from './redis.ts';

const runnel = join(import.meta.dirname, '../../packages/cli/bin/runnel.ts');

export type Role = 'controller' | 'broker' | 'coordinator';

export interface ClusterNode {
  readonly role: Role;
  readonly nodeId: number;
  /** `host:port` of the Kafka listener (empty for the controller). */
  readonly address: string;
  readonly port: number;
  readonly process: Started;
  readonly logDir: string;
}

export interface TestCluster {
  readonly redis: TestRedis;
  readonly controller: ClusterNode;
  readonly brokers: ClusterNode[];
  readonly coordinators: ClusterNode[];
  /** Every broker's address, comma-separated (what clients bootstrap from). */
  readonly bootstrap: string;
  /**
   * Starts a node again (after a kill) on its data dir and the same node id; replaces it in the lists.
   * `samePort`: on the Kafka port it had (clients keep their bootstrap list), else on a new one.
   */
  restart(node: ClusterNode, o?: { samePort?: boolean }): Promise<ClusterNode>;
  /** Starts one more node process with the cluster's settings (its own data dir `<role>-<id>-<n>`); stopped by cleanup. */
  startNode(role: Role, nodeId: number): Promise<ClusterNode>;
  /** Stops every node and Redis and deletes the data. */
  cleanup(): Promise<void>;
}

export interface ClusterOptions {
  brokers?: number;
  coordinators?: number;
  /** `--set` pairs given to every node. */
  set?: string[];
  /** More `--set` pairs for one node (after `set`), e.g. its own RPC listener. */
  nodeSet?: (role: Role, nodeId: number) => string[];
}

/** Short timeouts: a fenced node is noticed within seconds, not Kafka's 9 s. */
const FAST = ['broker.session.timeout.ms=3000', 'broker.heartbeat.interval.ms=500', 'runnel.controller.lease.ms=3000', 'group.initial.rebalance.delay.ms=0', 'offsets.topic.num.partitions=10'];

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const redis = await startRedis();
  const root = await mkdtemp(join(tmpdir(), 'runnel-cluster-'));
  const set = [`runnel.redis.url=${redis.url}`, ...FAST, ...(options.set ?? [])];
  // Every process from the moment it is spawned, so a failed start stops those still starting too.
  const spawned: Started[] = [];

  let extra = 0;
  const launch = async (role: Role, nodeId: number, dirName = `${role}-${nodeId}`, kafkaPort = 0): Promise<ClusterNode> => {
    const logDir = join(root, dirName);
    const args = [runnel, role, '--set', `node.id=${nodeId}`, '--set', `log.dirs=${logDir}`,
      '--set', `listeners=PLAINTEXT://127.0.0.1:${kafkaPort}`, ...[...set, ...(options.nodeSet?.(role, nodeId) ?? [])].flatMap((s) => ['--set', s])];
    const proc = await startProcess(process.execPath, args);
    spawned.push(proc);
    const ready = new RegExp(role === 'controller' ? `runnel controller is ready` : `"listener":"PLAINTEXT://127\\.0\\.0\\.1:(\\d+)".*runnel ${role} is ready`);
    let port = 0;
    try {
      const m = await proc.waitFor(ready, 30_000);
      port = Number(m[1] ?? 0);
    } catch (err) {
      await proc.stop(1_000);
      throw err;
    }
    const node = { role, nodeId, address: port ? `127.0.0.1:${port}` : '', port, process: proc, logDir };
    return node;
  };

  try {
    const controller = await launch('controller', 0);
    const nb = options.brokers ?? 2;
    const brokers = await Promise.all(Array.from({ length: nb }, (_, i) => launch('broker', i + 1)));
    const coordinators = await Promise.all(Array.from({ length: options.coordinators ?? 1 }, (_, i) => launch('coordinator', nb + i + 1)));
    const cluster: TestCluster = {
      redis,
      controller,
      brokers,
      coordinators,
      get bootstrap() { return cluster.brokers.map((b) => b.address).join(','); },
      async restart(node, o) {
        await node.process.stop(1_000);
        const again = await launch(node.role, node.nodeId, undefined, o?.samePort ? node.port : 0);
        const list = node.role === 'broker' ? cluster.brokers : node.role === 'coordinator' ? cluster.coordinators : undefined;
        if (list) list[list.indexOf(node)] = again;
        return again;
      },
      startNode: (role, nodeId) => launch(role, nodeId, `${role}-${nodeId}-${++extra}`),
      async cleanup() {
        for (const p of [...spawned].reverse()) await p.stop(2_000).catch(() => {});
        await redis.stop().catch(() => {});
        await rm(root, { recursive: true, force: true });
      },
    };
    return cluster;
  } catch (err) {
    for (const p of spawned) await p.stop(1_000).catch(() => {});
    await redis.stop().catch(() => {});
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}
