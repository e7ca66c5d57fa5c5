/**
 * Consumer without groups: the caller assigns partitions and start offsets, and `poll()` sends one
 * Fetch per leader and returns what came back. In `raw` mode the record sets are returned as
 * bytes with counts from batch headers and a varint walk (no record objects), for benchmarks.
 */
import { Buffer } from 'node:buffer';
import { ApiKey, ErrorCode, decodeRecordBatches, type DecodedBatch } from '@runnel/protocol';
import type { KafkaClient, OffsetSpec } from './client.ts';
import type { Connection } from './connection.ts';
import { walkRecordSet } from './batches.ts';
import { ClientError } from './errors.ts';

/** Fetch v13+ name topics by id; this client names them, so it fetches at v12 at most. */
export const MAX_BY_NAME_FETCH_VERSION = 12;

export interface ConsumerOptions {
  /** fetch.max.wait.ms (default 500). */
  maxWaitMs?: number;
  /** fetch.min.bytes (default 1). */
  minBytes?: number;
  /** fetch.max.bytes (default 52428800). */
  maxBytes?: number;
  /** max.partition.fetch.bytes (default 1048576). */
  partitionMaxBytes?: number;
  /** 0 = read_uncommitted (default), 1 = read_committed. */
  isolationLevel?: 0 | 1;
  /** Return record sets as bytes plus counts instead of decoded batches (default false). */
  raw?: boolean;
}

export interface Assignment { topic: string; partition: number; offset: OffsetSpec | bigint }

export interface FetchedPartition {
  topic: string;
  partition: number;
  /** The offset this fetch asked for. */
  fetchOffset: bigint;
  /** The next offset to fetch (after this response's complete batches). */
  nextOffset: bigint;
  highWatermark: bigint;
  /** Records at or after `fetchOffset` (control records excluded). */
  recordCount: number;
  /** Sum of key and value sizes of those records. */
  keyValueBytes: number;
  /** The partition's record set as sent (raw mode), else null. */
  records: Buffer | null;
  /** Decoded batches (records before `fetchOffset` removed), empty in raw mode. */
  batches: DecodedBatch[];
}

interface Position { topic: string; partition: number; offset: bigint }

export class Consumer {
  readonly client: KafkaClient;
  private readonly opts: Required<ConsumerOptions>;
  private readonly positions: Position[] = [];
  private stopped = false;

  constructor(client: KafkaClient, options: ConsumerOptions = {}) {
    this.client = client;
    this.opts = {
      maxWaitMs: options.maxWaitMs ?? 500,
      minBytes: options.minBytes ?? 1,
      maxBytes: options.maxBytes ?? 52_428_800,
      partitionMaxBytes: options.partitionMaxBytes ?? 1_048_576,
      isolationLevel: options.isolationLevel ?? 0,
      raw: options.raw ?? false,
    };
  }

  /** Sets the partitions to read; `earliest`/`latest` are resolved with ListOffsets. */
  async assign(assignments: Assignment[]): Promise<void> {
    this.positions.length = 0;
    for (const a of assignments) {
      const offset = typeof a.offset === 'bigint' && a.offset >= 0n ? a.offset : await this.client.listOffsets(a.topic, a.partition, a.offset as OffsetSpec, this.opts.isolationLevel);
      this.positions.push({ topic: a.topic, partition: a.partition, offset });
    }
  }

  /** Current positions (the next offset to fetch per partition). */
  position(topic: string, partition: number): bigint | undefined {
    return this.positions.find((p) => p.topic === topic && p.partition === partition)?.offset;
  }

  /** One Fetch per leader for all assigned partitions; advances positions past what was returned. */
  async poll(): Promise<FetchedPartition[]> {
    const byLeader = new Map<Connection, Position[]>();
    for (const pos of this.positions) {
      const conn = await this.client.leader(pos.topic, pos.partition);
      let list = byLeader.get(conn);
      if (!list) byLeader.set(conn, (list = []));
      list.push(pos);
    }
    const results = await Promise.all([...byLeader].map(([conn, list]) => this.fetchFrom(conn, list)));
    return results.flat();
  }

  /** Polls until `stop()` (or the consumer's client closes), yielding non-empty fetch results. */
  async *stream(): AsyncGenerator<FetchedPartition[]> {
    this.stopped = false;
    while (!this.stopped) {
      const got = await this.poll();
      if (got.some((p) => p.recordCount > 0 || p.nextOffset > p.fetchOffset)) yield got;
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private async fetchFrom(conn: Connection, list: Position[]): Promise<FetchedPartition[]> {
    const version = Math.min(conn.version(ApiKey.Fetch), MAX_BY_NAME_FETCH_VERSION);
    const topics = new Map<string, Position[]>();
    for (const p of list) {
      let t = topics.get(p.topic);
      if (!t) topics.set(p.topic, (t = []));
      t.push(p);
    }
    const body = await conn.request(ApiKey.Fetch, version, {
      replicaId: -1,
      maxWaitMs: this.opts.maxWaitMs,
      minBytes: this.opts.minBytes,
      maxBytes: this.opts.maxBytes,
      isolationLevel: this.opts.isolationLevel,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [...topics].map(([topic, ps]) => ({
        topic,
        partitions: ps.map((p) => ({ partition: p.partition, fetchOffset: p.offset, partitionMaxBytes: this.opts.partitionMaxBytes, currentLeaderEpoch: -1, logStartOffset: -1n })),
      })),
      forgottenTopicsData: [],
      rackId: '',
    }, this.opts.maxWaitMs + 30_000);
    if (body.errorCode !== ErrorCode.NONE) throw ClientError.kafka(body.errorCode, 'Fetch');
    const out: FetchedPartition[] = [];
    for (const t of body.responses) {
      for (const pr of t.partitions) {
        const pos = list.find((p) => p.topic === t.topic && p.partition === pr.partitionIndex);
        if (!pos) continue;
        if (pr.errorCode !== ErrorCode.NONE) {
          if (pr.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER || pr.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) this.client.invalidateLeader(t.topic, pr.partitionIndex);
          throw ClientError.kafka(pr.errorCode, `Fetch ${t.topic}-${pr.partitionIndex} at ${pos.offset}`);
        }
        const fetchOffset = pos.offset;
        const records = pr.records ?? Buffer.alloc(0);
        const result: FetchedPartition = {
          topic: t.topic, partition: pr.partitionIndex, fetchOffset, nextOffset: fetchOffset, highWatermark: pr.highWatermark,
          recordCount: 0, keyValueBytes: 0, records: null, batches: [],
        };
        if (this.opts.raw) {
          const s = walkRecordSet(records, fetchOffset);
          result.records = records;
          result.recordCount = s.records;
          result.keyValueBytes = s.keyValueBytes;
          if (s.nextOffset > fetchOffset) result.nextOffset = s.nextOffset;
        } else {
          for (const b of decodeRecordBatches(records)) {
            const next = b.baseOffset + BigInt(b.lastOffsetDelta) + 1n;
            if (next > result.nextOffset) result.nextOffset = next;
            if (b.control) continue;
            if (b.baseOffset < fetchOffset) b.records = b.records.filter((r) => r.offset >= fetchOffset);
            for (const r of b.records) result.keyValueBytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
            result.recordCount += b.records.length;
            result.batches.push(b);
          }
        }
        if (records.length > 0 && result.nextOffset === fetchOffset && records.length >= this.opts.partitionMaxBytes) {
          throw new ClientError('KAFKA_ERROR', `a record batch at ${t.topic}-${pr.partitionIndex} offset ${fetchOffset} is larger than the fetch size ${this.opts.partitionMaxBytes}`, { kafkaCode: ErrorCode.RECORD_LIST_TOO_LARGE });
        }
        pos.offset = result.nextOffset;
        out.push(result);
      }
    }
    return out;
  }
}
