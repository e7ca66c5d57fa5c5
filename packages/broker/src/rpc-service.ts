import { OFFSETS_TOPIC, RunnelError, tpKey } from '@runnel/common';
import type { RpcHandlers, RpcMethods } from '@runnel/rpc';
import type { PartitionLog } from '@runnel/storage';
import { commitAppend } from './commit.ts';
import type { BrokerContext } from './context.ts';
import type { Unavailable } from './partitions.ts';

/** The internal topic whose appends carry a coordinator epoch. */

/**
 * Why a `broker.*` call was refused; it reaches the caller as the RPC error's `remoteCode`.
 * - NOT_LEADER: this node does not lead the partition (moved away, or offline): find the leader again.
 * - NOT_COORDINATOR: a coordinator append carried an epoch older than the partition's owner in metadata.
 * - UNKNOWN_PARTITION: no such topic or partition in this node's metadata.
 * - STORAGE_ERROR: the partition's log dir is offline.
 * Storage's own errors (OFFSET_OUT_OF_RANGE, CORRUPT_MESSAGE, ...) pass through with their codes.
 */
export type BrokerRpcErrorCode = 'NOT_LEADER' | 'NOT_COORDINATOR' | 'UNKNOWN_PARTITION' | 'STORAGE_ERROR';

export class BrokerRpcError extends RunnelError<BrokerRpcErrorCode> {}

const unavailableCodes: Record<Unavailable, BrokerRpcErrorCode> = {
  NOT_LEADER_OR_FOLLOWER: 'NOT_LEADER',
  LEADER_NOT_AVAILABLE: 'NOT_LEADER',
  UNKNOWN_TOPIC_OR_PARTITION: 'UNKNOWN_PARTITION',
  KAFKA_STORAGE_ERROR: 'STORAGE_ERROR',
};

/** What the RPC service needs besides the handler context (the Broker's own helpers). */
export interface BrokerRpcDeps {
  context: BrokerContext;
  recordTimestamp(topic: string, partition: number, offset: bigint): Promise<bigint | null>;
}

type Req<M extends keyof RpcMethods> = RpcMethods[M][0];
type Res<M extends keyof RpcMethods> = RpcMethods[M][1];

/**
 * The `broker.*` RPC methods: how other nodes (the coordinators) use partitions this broker leads.
 * One declaration per method; refusals are thrown as BrokerRpcError and become the caller's
 * `remoteCode` at the RPC edge. `drain()` waits for the calls still running (stopping the RPC
 * server closes connections but does not wait for them), so the broker closes no log under one.
 */
export function brokerRpcService(deps: BrokerRpcDeps): { handlers: RpcHandlers; drain(): Promise<void> } {
  const b = deps.context;
  const running = new Set<Promise<unknown>>();
  const tracked = <Q, R>(f: (req: Q) => Promise<R>) => (req: Q): Promise<R> => {
    const call = f(req);
    const settled = call.then(() => {}, () => {});
    running.add(settled);
    void settled.then(() => running.delete(settled));
    return call;
  };

  async function leaderLog(topic: string, partition: number): Promise<{ log: PartitionLog; leaderEpoch: number }> {
    const found = await b.partitions.leaderLog(topic, partition);
    if (!found.ok) {
      throw new BrokerRpcError(unavailableCodes[found.error], `${topic}-${partition}: ${found.error} on node ${b.nodeId}`, { retriable: found.error !== 'UNKNOWN_TOPIC_OR_PARTITION' });
    }
    return { log: found.log, leaderEpoch: found.state.leaderEpoch };
  }

  /**
   * Appends one batch and commits it (the high watermark moves past it). A coordinator append
   * (`coordinatorEpoch` ≥ 0 on `__consumer_offsets`) older than the partition's owner epoch in this
   * node's metadata is refused: that coordinator lost the partition. A newer epoch than ours is
   * accepted (our metadata lags the controller's).
   */
  const append = async (req: Req<'broker.append'>): Promise<Res<'broker.append'>> => {
    if (req.coordinatorEpoch >= 0 && req.topic === OFFSETS_TOPIC) {
      const owner = b.metadata.snapshot().coordinators.get(req.partition);
      if (owner && req.coordinatorEpoch < owner.epoch) {
        throw new BrokerRpcError('NOT_COORDINATOR', `${req.topic}-${req.partition}: coordinator epoch ${req.coordinatorEpoch} is older than ${owner.epoch} (node ${owner.nodeId})`);
      }
    }
    const { log, leaderEpoch } = await leaderLog(req.topic, req.partition);
    const result = await commitAppend(log, req.records, leaderEpoch);
    b.purgatory.notify(tpKey(req.topic, req.partition));
    return { baseOffset: result.baseOffset, lastOffset: result.lastOffset };
  };

  /** Whole batches from `offset`, below the high watermark, up to `maxBytes` but at least one batch. */
  const read = async (req: Req<'broker.read'>): Promise<Res<'broker.read'>> => {
    const { log } = await leaderLog(req.topic, req.partition);
    const r = await log.read(req.offset, Math.max(0, req.maxBytes), { minOneBatch: true, maxOffset: log.highWatermark });
    return { records: r.records, highWatermark: r.highWatermark, logStartOffset: r.logStartOffset };
  };

  /** High watermark and log start of many partitions; each one fails on its own (`error` = a code). */
  const offsets = async (req: Req<'broker.offsets'>): Promise<Res<'broker.offsets'>> => ({
    partitions: await Promise.all(req.partitions.map(async ({ topic, partition }) => {
      const found = await b.partitions.leaderLog(topic, partition);
      if (!found.ok) return { topic, partition, error: unavailableCodes[found.error], highWatermark: -1n, logStartOffset: -1n };
      return { topic, partition, error: '', highWatermark: found.log.highWatermark, logStartOffset: found.log.logStartOffset };
    })),
  });

  /** The timestamp of the record at `offset` (−1 when it is not there, or not any more). */
  const recordTimestamp = async (req: Req<'broker.recordTimestamp'>): Promise<Res<'broker.recordTimestamp'>> => {
    await leaderLog(req.topic, req.partition);
    return { timestamp: (await deps.recordTimestamp(req.topic, req.partition, req.offset)) ?? -1n };
  };

  return {
    handlers: {
      'broker.append': tracked(append),
      'broker.read': tracked(read),
      'broker.offsets': tracked(offsets),
      'broker.recordTimestamp': tracked(recordTimestamp),
    },
    drain: async () => {
      while (running.size > 0) await Promise.all(running);
    },
  };
}
