import { onceEvery, tpKey, type Logger } from '@runnel/common';
import type { MetadataStore } from '@runnel/metadata';
import { RpcClient, type ReplicaFetchPartitionResult, type ReplicaFetchRequest, type RpcTls } from '@runnel/rpc';
import type { PartitionLog } from '@runnel/storage';
import type { ReplicationThrottle } from './throttle.ts';

/** A partition this broker follows: its local log and the leader epoch metadata gave it. */
export interface Followed {
  readonly topic: string;
  readonly partition: number;
  readonly log: PartitionLog;
  leaderEpoch: number;
}

interface Entry extends Followed {
  key: string;
  /** Not fetched before this time (after an error; cleared when metadata moves the partition). */
  retryAtMs: number;
}

export interface FetcherSettings {
  nodeId: number;
  metadata: MetadataStore;
  logger: Logger;
  /** replica.fetch.wait.max.ms */
  maxWaitMs: number;
  /** replica.fetch.max.bytes */
  partitionMaxBytes: number;
  /** replica.fetch.response.max.bytes */
  responseMaxBytes: number;
  /** replica.fetch.backoff.ms */
  backoffMs: number;
  /** TLS to the leaders' RPC (runnel.rpc.ssl.enabled); none = plaintext. */
  rpcTls?: RpcTls;
  /** Reassignment throttling (throttle.ts); none = never throttled. */
  throttle?: ReplicationThrottle;
  /** Told the bytes of every append from a leader (replication bytes in, metrics). */
  appended?: (bytes: number) => void;
}

/**
 * The follower side of replication: one `LeaderFetcher` per source broker, each fetching all the
 * partitions this broker follows from that leader in one `broker.replicaFetch` call at a time.
 * A partition moves between fetchers when its leader changes (`follow`), and leaves when this
 * broker leads it or no longer holds it (`remove`). A fetcher with no partitions stops.
 */
export class FollowerFetchers {
  readonly #settings: FetcherSettings;
  readonly #byLeader = new Map<number, LeaderFetcher>();
  readonly #leaderOf = new Map<string, number>();
  readonly #topicOf = new Map<string, string>();

  constructor(settings: FetcherSettings) {
    this.#settings = settings;
  }

  /** Fetch `p` from `leader` (moving it from its previous leader's fetcher, if any). */
  follow(leader: number, p: Followed): void {
    const key = tpKey(p.topic, p.partition);
    const current = this.#leaderOf.get(key);
    if (current === leader) {
      this.#byLeader.get(leader)?.update(key, p);
      return;
    }
    if (current !== undefined) this.remove(key);
    let fetcher = this.#byLeader.get(leader);
    if (!fetcher) {
      fetcher = new LeaderFetcher(leader, this.#settings);
      this.#byLeader.set(leader, fetcher);
    }
    fetcher.update(key, p);
    this.#leaderOf.set(key, leader);
    this.#topicOf.set(key, p.topic);
  }

  /** Stop fetching a partition (it is led here now, offline, or no longer on this broker). */
  remove(key: string): void {
    const leader = this.#leaderOf.get(key);
    if (leader === undefined) return;
    this.#leaderOf.delete(key);
    this.#topicOf.delete(key);
    const fetcher = this.#byLeader.get(leader);
    if (!fetcher) return;
    fetcher.remove(key);
    if (fetcher.size === 0) {
      this.#byLeader.delete(leader);
      void fetcher.stop();
    }
  }

  /** Stop fetching every partition of a deleted topic. */
  removeTopic(topic: string): void {
    for (const [key, t] of [...this.#topicOf]) if (t === topic) this.remove(key);
  }

  /** Which leader a partition is fetched from (tests, metrics). */
  leaderOf(topic: string, partition: number): number | undefined {
    return this.#leaderOf.get(tpKey(topic, partition));
  }

  /** Stops every fetcher and waits until none is writing to a log. */
  async stop(): Promise<void> {
    const all = [...this.#byLeader.values()];
    this.#byLeader.clear();
    this.#leaderOf.clear();
    await Promise.all(all.map((f) => f.stop()));
  }
}

/**
 * Fetches from one leader, continuously: a call carries every ready partition's log end offset
 * (`fetchOffset`), the leader epoch it believes current and the epoch of its last batch; the
 * leader long-polls up to `maxWaitMs` when there is nothing new. Memory is bounded by one
 * response (`responseMaxBytes`, plus one whole batch). Errors back off (`backoffMs`) per partition,
 * or for the whole fetcher when the leader cannot be reached: it never spins.
 */
class LeaderFetcher {
  readonly #leader: number;
  readonly #s: FetcherSettings;
  readonly #parts = new Map<string, Entry>();
  /** A full log dir (NO_SPACE) is logged once a minute per partition, not at every retry. */
  readonly #noSpaceWarnings = onceEvery(60_000);
  #client: RpcClient | null = null;
  #clientAt = '';
  #stopped = false;
  #wake: (() => void) | null = null;
  readonly #loop: Promise<void>;

  constructor(leader: number, settings: FetcherSettings) {
    this.#leader = leader;
    this.#s = settings;
    this.#loop = this.#run();
  }

  get size(): number {
    return this.#parts.size;
  }

  update(key: string, p: Followed): void {
    const cur = this.#parts.get(key);
    if (cur && cur.log === p.log && cur.leaderEpoch === p.leaderEpoch) return;
    this.#parts.set(key, { ...p, key, retryAtMs: 0 });
    this.#wake?.();
  }

  remove(key: string): void {
    this.#parts.delete(key);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    this.#client?.close();
    await this.#loop;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, Math.max(0, ms));
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
    });
  }

  /** An RPC client to the leader's current RPC address (re-made when it registers elsewhere); null when it is not live. */
  #rpc(): RpcClient | null {
    const reg = this.#s.metadata.snapshot().brokers.get(this.#leader);
    if (!reg?.rpc) return null;
    const at = `${reg.rpc.host}:${reg.rpc.port}`;
    if (this.#client && this.#clientAt === at) return this.#client;
    this.#client?.close();
    this.#client = RpcClient.create({ ...reg.rpc, requestTimeoutMs: this.#s.maxWaitMs + 30_000, logger: this.#s.logger, tls: this.#s.rpcTls });
    this.#clientAt = at;
    return this.#client;
  }

  async #run(): Promise<void> {
    const log = this.#s.logger;
    while (!this.#stopped) {
      const now = Date.now();
      const available = [...this.#parts.values()].filter((p) => p.retryAtMs <= now && p.log.online);
      // Reassignment throttling (throttle.ts): while this broker's follower quota is exceeded, the
      // out-of-sync partitions listed for it are left out of the fetch (the others go on as usual);
      // the bytes of every listed partition, in-sync ones too, count against the quota.
      const listed = new Set(available.filter((p) => this.#listed(p)).map((p) => p.key));
      const outOfSync = new Set(available.filter((p) => listed.has(p.key) && !this.#inSync(p)));
      const held = outOfSync.size > 0 && this.#s.throttle!.exceeded('follower');
      const ready = held ? available.filter((p) => !outOfSync.has(p)) : available;
      if (ready.length === 0 && held) {
        await this.#sleep(Math.max(10, this.#s.throttle!.delayMs('follower')));
        continue;
      }
      if (ready.length === 0) {
        const next = Math.min(...[...this.#parts.values()].map((p) => p.retryAtMs));
        await this.#sleep(Number.isFinite(next) && next > now ? next - now : this.#s.backoffMs);
        continue;
      }
      const client = this.#rpc();
      if (!client) {
        await this.#sleep(this.#s.backoffMs);
        continue;
      }
      const sent = new Map(ready.map((p) => [p.key, { entry: p, fetchOffset: p.log.logEndOffset }]));
      const req: ReplicaFetchRequest = {
        replicaId: this.#s.nodeId,
        // This process's own registration, not the live holder of the node id: an old process
        // that lost its id is refused (STALE_BROKER_EPOCH) instead of fetching as the new one.
        brokerEpoch: this.#s.metadata.registration()?.brokerEpoch ?? -1,
        maxWaitMs: this.#s.maxWaitMs,
        minBytes: 1,
        maxBytes: this.#s.responseMaxBytes,
        partitionMaxBytes: this.#s.partitionMaxBytes,
        partitions: ready.map((p) => ({
          topic: p.topic,
          partition: p.partition,
          fetchOffset: sent.get(p.key)!.fetchOffset,
          currentLeaderEpoch: p.leaderEpoch,
          lastFetchedEpoch: p.log.leaderEpochs.latestEpoch(),
          logStartOffset: p.log.logStartOffset,
        })),
      };
      let results: ReplicaFetchPartitionResult[];
      try {
        results = (await client.call('broker.replicaFetch', req)).partitions;
      } catch (err) {
        if (this.#stopped) break;
        log.warn({ leader: this.#leader, err: (err as Error).message }, 'replica fetch failed; backing off');
        await this.#sleep(this.#s.backoffMs);
        continue;
      }
      for (const r of results) {
        if (this.#stopped) break;
        const key = tpKey(r.topic, r.partition);
        const was = sent.get(key);
        // Metadata moved the partition (or a truncation ran) while the call was out: drop the answer.
        if (!was || this.#parts.get(key) !== was.entry || was.entry.log.logEndOffset !== was.fetchOffset) continue;
        try {
          if (listed.has(key)) this.#s.throttle!.record('follower', r.records.length);
          await this.#apply(was.entry, r);
        } catch (err) {
          const now = Date.now();
          was.entry.retryAtMs = now + this.#s.backoffMs;
          const code = (err as { code?: string }).code;
          // A full disk is retried until space returns (this replica leaves the ISR by lag meanwhile).
          if (code === 'NO_SPACE') {
            if (this.#noSpaceWarnings.allow(key)) {
              log.warn({ topic: r.topic, partition: r.partition, leader: this.#leader, err: (err as Error).message }, 'log dir is full: replica fetch not applied, retrying until space returns');
            }
            continue;
          }
          log.error({ topic: r.topic, partition: r.partition, leader: this.#leader, code, err: (err as Error).message }, 'applying a replica fetch failed; backing off');
        }
      }
    }
    this.#client?.close();
  }

  /** Listed for follower throttling on this broker. */
  #listed(p: Entry): boolean {
    return this.#s.throttle?.listed('follower', this.#s.metadata.snapshot().topics.get(p.topic), p.partition) ?? false;
  }

  /** This broker is in the partition's ISR (per its metadata). */
  #inSync(p: Entry): boolean {
    return this.#s.metadata.snapshot().topics.get(p.topic)?.partitions[p.partition]?.isr.includes(this.#s.nodeId) ?? false;
  }

  async #apply(p: Entry, r: ReplicaFetchPartitionResult): Promise<void> {
    const log = p.log;
    switch (r.error) {
      case '': {
        if (r.divergingEpoch >= 0) {
          await log.truncateTo(truncationOffset(log, r.divergingEpoch, r.divergingEndOffset));
          this.#s.logger.info({ topic: p.topic, partition: p.partition, divergingEpoch: r.divergingEpoch, logEndOffset: String(log.logEndOffset) }, 'truncated a diverging suffix by leader epoch');
          return;
        }
        // appendAsFollower checks every batch's CRC and framing first: a bad batch is refused whole.
        if (r.records.length > 0) {
          await log.appendAsFollower(r.records);
          this.#s.appended?.(r.records.length);
        }
        const hw = r.highWatermark < log.logEndOffset ? r.highWatermark : log.logEndOffset;
        if (hw > log.highWatermark) log.highWatermark = hw;
        // Retention or DeleteRecords at the leader: follow its log start (never past our own end).
        if (r.logStartOffset > log.logStartOffset) await log.deleteRecordsBefore(r.logStartOffset < log.logEndOffset ? r.logStartOffset : log.logEndOffset);
        return;
      }
      case 'OFFSET_OUT_OF_RANGE':
        if (r.logEndOffset >= 0 && log.logEndOffset > r.logEndOffset) {
          // The leader has less than we do and no epoch tells where we diverged (an unclean leader).
          await log.truncateTo(r.logEndOffset);
        } else if (r.logStartOffset >= 0) {
          // We are below the leader's log start, or it cannot place our last epoch: start where it starts.
          await log.truncateFullyAndStartAt(r.logStartOffset);
        } else p.retryAtMs = Date.now() + this.#s.backoffMs;
        this.#s.logger.warn({ topic: p.topic, partition: p.partition, leaderStart: String(r.logStartOffset), leaderEnd: String(r.logEndOffset), logEndOffset: String(log.logEndOffset) }, 'replica fetch out of range: truncated');
        return;
      default:
        // NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH / UNKNOWN_TOPIC_OR_PARTITION: our metadata is
        // behind (a metadata change resets the wait); UNKNOWN_LEADER_EPOCH: the leader's is behind;
        // STALE_BROKER_EPOCH: the leader does not see our registration (yet, or any more: another
        // process holds our node id), worth a warning.
        p.retryAtMs = Date.now() + this.#s.backoffMs;
        if (r.error === 'STALE_BROKER_EPOCH') this.#s.logger.warn({ topic: p.topic, partition: p.partition, leader: this.#leader, error: r.error }, 'replica fetch refused: this process\'s broker epoch is not the live one');
        else this.#s.logger.debug({ topic: p.topic, partition: p.partition, leader: this.#leader, error: r.error }, 'replica fetch refused');
    }
  }
}

/**
 * Where a follower truncates on the leader's diverging-epoch answer (KIP-279, Kafka's
 * `getOffsetTruncationState`): to `min(divergingEndOffset, our end of that epoch)` when we know
 * the epoch; to our end of the largest epoch below it when we do not (the next fetch refines it).
 * Always below the log end, so every answer makes progress.
 */
export function truncationOffset(log: PartitionLog, divergingEpoch: number, divergingEndOffset: bigint): bigint {
  const leo = log.logEndOffset;
  const own = log.leaderEpochs.endOffsetFor(divergingEpoch, leo);
  let target: bigint;
  if (own.epoch < 0) target = divergingEndOffset;
  else if (own.epoch !== divergingEpoch) target = own.endOffset;
  else target = own.endOffset < divergingEndOffset ? own.endOffset : divergingEndOffset;
  if (target >= leo) target = log.leaderEpochs.entries.at(-1)?.startOffset ?? log.logStartOffset;
  return target < 0n ? 0n : target;
}
