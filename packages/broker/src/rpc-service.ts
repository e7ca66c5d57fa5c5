import { OFFSETS_TOPIC, RunnelError, TRANSACTION_STATE_TOPIC, tpKey } from '@runnel/common';
import { ErrorCode } from '@runnel/protocol';
import { StorageError } from '@runnel/storage';
import type { RpcHandlers, RpcMethods } from '@runnel/rpc';
import { appendCommitted } from './commit.ts';
import { writeTxnMarkers } from './handlers/write-txn-markers.ts';
import { NotLeaderError } from './replication/replica-manager.ts';
import type { BrokerContext } from './context.ts';
import type { Lookup, Unavailable } from './partitions.ts';

/**
 * Why a `broker.*` call was refused; it reaches the caller as the RPC error's `remoteCode`.
 * - NOT_LEADER: this node does not lead the partition (moved away, or offline): find the leader again.
 * - NOT_COORDINATOR: a coordinator append or load carried an older epoch than the partition's owner
 *   (in metadata, or the highest this broker has seen).
 * - UNKNOWN_PARTITION: no such topic or partition in this node's metadata.
 * - STORAGE_ERROR: the partition's log dir is offline.
 * - NOT_ENOUGH_REPLICAS / NOT_ENOUGH_REPLICAS_AFTER_APPEND / REQUEST_TIMED_OUT: an append found the
 *   ISR below min.insync.replicas (before / after writing), or the in-sync replicas did not have it
 *   within offsets.commit.timeout.ms. Retriable; the records may be in the leader's log.
 * Storage's own errors (OFFSET_OUT_OF_RANGE, CORRUPT_MESSAGE, ...) pass through with their codes.
 */
export type BrokerRpcErrorCode = 'NOT_LEADER' | 'NOT_COORDINATOR' | 'UNKNOWN_PARTITION' | 'STORAGE_ERROR'
  | 'NOT_ENOUGH_REPLICAS' | 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' | 'REQUEST_TIMED_OUT';

/** What an append that is not known to be committed answers. */
const commitCodes: Record<number, BrokerRpcErrorCode> = {
  [ErrorCode.NOT_LEADER_OR_FOLLOWER]: 'NOT_LEADER',
  [ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND]: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  [ErrorCode.REQUEST_TIMED_OUT]: 'REQUEST_TIMED_OUT',
};

export class BrokerRpcError extends RunnelError<BrokerRpcErrorCode> {}

/** The most one 'broker.read' returns (plus one whole batch past it): a peer cannot make us read a whole log at once. */
const MAX_READ_BYTES = 16 * 1024 * 1024;

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

  /**
   * Coordinator fencing on `__consumer_offsets`: the highest coordinator epoch seen per partition,
   * from metadata and from the calls themselves. Metadata alone lags (a poll away): a new owner's
   * load or append must fence the old owner at once, or the old one's late commit would land after
   * the new one read the partition and be missing from its state. Bounded by the partitions that
   * exist (checked by leaderLog first).
   */
  const highestEpoch = new Map<number, number>();
  /** Coordinator appends still being written, per topic-partition: a new owner's load waits for them. */
  const appending = new Map<string, Promise<unknown>>();
  /**
   * Whether a call is a coordinator's (and so fenced): on `__consumer_offsets`, or on
   * `__transaction_state`, whose partition q belongs to the owner of `__consumer_offsets`
   * partition q % n and carries that partition's epoch.
   */
  const isCoordinatorCall = (req: { topic: string; coordinatorEpoch: number }) => req.coordinatorEpoch >= 0 && (req.topic === OFFSETS_TOPIC || req.topic === TRANSACTION_STATE_TOPIC);
  /** The `__consumer_offsets` partition whose owner (and epoch) a coordinator call is fenced by. */
  const ownerPartition = (req: { topic: string; partition: number }): number => {
    if (req.topic === OFFSETS_TOPIC) return req.partition;
    return req.partition % (b.metadata.snapshot().topics.get(OFFSETS_TOPIC)?.partitions.length ?? 1);
  };

  /** Refuses an epoch older than the highest known, and records it. */
  function fence(req: { topic: string; partition: number; coordinatorEpoch: number }): void {
    if (!isCoordinatorCall(req)) return;
    const p = ownerPartition(req);
    const owner = b.metadata.snapshot().coordinators.get(p);
    const highest = Math.max(owner?.epoch ?? -1, highestEpoch.get(p) ?? -1);
    if (req.coordinatorEpoch < highest) {
      throw new BrokerRpcError('NOT_COORDINATOR', `${req.topic}-${req.partition}: coordinator epoch ${req.coordinatorEpoch} is older than ${highest}${owner ? ` (owner in metadata: node ${owner.nodeId})` : ''}`);
    }
    highestEpoch.set(p, req.coordinatorEpoch);
  }

  /** Remembers a coordinator append until it is written (see `appending`). */
  function trackAppend(partition: string, append: Promise<unknown>): void {
    const all = Promise.allSettled([appending.get(partition), append]);
    appending.set(partition, all);
    void all.then(() => { if (appending.get(partition) === all) appending.delete(partition); });
  }

  async function leaderLog(topic: string, partition: number): Promise<Extract<Lookup, { ok: true }>> {
    const found = await b.partitions.leaderLog(topic, partition);
    if (!found.ok) {
      throw new BrokerRpcError(unavailableCodes[found.error], `${topic}-${partition}: ${found.error} on node ${b.nodeId}`, { retriable: found.error !== 'UNKNOWN_TOPIC_OR_PARTITION' });
    }
    return found;
  }

  /**
   * Appends one batch and waits until it is committed, as acks=all does (the high watermark moves
   * past it once the ISR has it; refused before the append when the ISR is below
   * min.insync.replicas). A coordinator append
   * (`coordinatorEpoch` ≥ 0 on `__consumer_offsets`) older than the partition's owner epoch is
   * refused (see `fence`): that coordinator lost the partition. A newer epoch than metadata's is
   * accepted (our metadata lags the controller's) and fences the older ones from then on.
   */
  const append = async (req: Req<'broker.append'>): Promise<Res<'broker.append'>> => {
    const found = await leaderLog(req.topic, req.partition);
    fence(req);
    const minIsr = found.config.get('min.insync.replicas');
    if (found.state.isr.length < minIsr) {
      throw new BrokerRpcError('NOT_ENOUGH_REPLICAS', `${req.topic}-${req.partition}: ${found.state.isr.length} in-sync replicas, min.insync.replicas is ${minIsr}`, { retriable: true });
    }
    const appended = appendCommitted(b.replicas, found, req.records, b.config.get('offsets.commit.timeout.ms'));
    if (isCoordinatorCall(req)) trackAppend(tpKey(req.topic, req.partition), appended);
    const { result, code } = await appended.catch((err: unknown) => {
      // Deposed while the lookup awaited: refused before anything was written, as other refusals.
      if (err instanceof NotLeaderError) throw new BrokerRpcError('NOT_LEADER', err.message, { retriable: true });
      throw err;
    });
    if (code !== ErrorCode.NONE) {
      const rpcCode = commitCodes[code] ?? 'REQUEST_TIMED_OUT';
      throw new BrokerRpcError(rpcCode, `${req.topic}-${req.partition}: append at ${result.baseOffset} not committed: ${rpcCode}`, { retriable: true });
    }
    return { baseOffset: result.baseOffset, lastOffset: result.lastOffset };
  };

  /**
   * Whole batches from `offset`, below the high watermark, up to `maxBytes` but at least one batch.
   * A coordinator's load (`coordinatorEpoch` ≥ 0) fences older owners, as an append does.
   */
  const read = async (req: Req<'broker.read'>): Promise<Res<'broker.read'>> => {
    const { log, state } = await leaderLog(req.topic, req.partition);
    // A coordinator's read waits for the appends already accepted (a takeover: the old owner's),
    // so the range it loads covers them.
    fence(req);
    if (isCoordinatorCall(req)) await appending.get(tpKey(req.topic, req.partition));
    let r;
    try {
      r = await log.read(req.offset, Math.min(Math.max(0, req.maxBytes), MAX_READ_BYTES), { minOneBatch: true, maxOffset: log.highWatermark, verify: b.replicas.verifiesReads(state) });
    } catch (err) {
      // Bit rot: never served (see ReplicaManager.corruptBatch); retriable once another replica leads.
      if (!(err instanceof StorageError && err.code === 'CORRUPT_MESSAGE')) throw err;
      b.replicas.corruptBatch(req.topic, req.partition, log, req.offset);
      throw new BrokerRpcError('STORAGE_ERROR', err.message, { retriable: true });
    }
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

  /**
   * Transaction markers from a transaction coordinator (handlers/write-txn-markers.ts): every
   * partition answers on its own, '' once its marker is committed, else a Kafka error name
   * (NOT_LEADER_OR_FOLLOWER when led elsewhere: the coordinator finds the leader again and retries).
   * A group coordinator's markers on `__consumer_offsets` (`groupCoordinatorEpoch` set) are fenced
   * like its appends: from an owner older than the partition's newest, NOT_COORDINATOR and nothing
   * written. A deposed owner's late marker would otherwise land after the new owner loaded the
   * partition, which then never applies it (the transaction's offsets stay pending there) while
   * the transaction coordinator, told it is written, stops sending it. A fenced marker is tracked
   * as an append, so a takeover load waits for it.
   */
  const txnMarkers = async (req: Req<'broker.writeTxnMarkers'>): Promise<Res<'broker.writeTxnMarkers'>> => {
    const epoch = req.groupCoordinatorEpoch ?? null;
    const one = (m: Req<'broker.writeTxnMarkers'>['markers'][number], tp: { topic: string; partition: number }): Promise<string> => {
      // Only partitions that exist are fenced (the epochs kept stay bounded); others answer UNKNOWN_TOPIC_OR_PARTITION below.
      const fenced = epoch !== null && tp.topic === OFFSETS_TOPIC && b.metadata.snapshot().topics.get(OFFSETS_TOPIC)?.partitions[tp.partition] !== undefined;
      if (fenced) {
        try {
          fence({ ...tp, coordinatorEpoch: epoch });
        } catch (err) {
          if (!(err instanceof BrokerRpcError)) throw err;
          return Promise.resolve('NOT_COORDINATOR');
        }
      }
      const written = writeTxnMarkers(b, [{ ...m, partitions: [tp] }]).then((r) => r[0]![0]!.error ?? '');
      if (fenced) trackAppend(tpKey(tp.topic, tp.partition), written);
      return written;
    };
    return {
      markers: await Promise.all(req.markers.map(async (m) => ({
        partitions: await Promise.all(m.partitions.map(async (tp) => ({ topic: tp.topic, partition: tp.partition, error: await one(m, tp) }))),
      }))),
    };
  };

  return {
    handlers: {
      'broker.writeTxnMarkers': tracked(txnMarkers),
      'broker.append': tracked(append),
      'broker.read': tracked(read),
      'broker.offsets': tracked(offsets),
      'broker.recordTimestamp': tracked(recordTimestamp),
      // Followers' fetches (docs/replication.md "The data path"); long-polled, so tracked too.
      'broker.replicaFetch': tracked((req: Req<'broker.replicaFetch'>) => b.replicas.handleReplicaFetch(req)),
    },
    drain: async () => {
      while (running.size > 0) await Promise.all(running);
    },
  };
}
