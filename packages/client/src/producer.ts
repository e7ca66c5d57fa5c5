/**
 * Producer: one Produce request per call (`send`), or records accumulated per partition into
 * batches by size and linger time (`append`), with at most `maxInFlight` requests per broker
 * connection and the socket's back-pressure respected. Idempotent producers get a producer id from
 * InitProducerId and number their batches per partition (sequence = records sent so far).
 *
 * Prebuilt batches (a Buffer) are written to the socket as they are, behind a small request
 * prefix, so a load generator pays no copy and no re-encode per request.
 */
import { Buffer } from 'node:buffer';
import { ApiKey, Codec, decodeResponse, encodeRecordBatch, type RecordInput } from '@runnel/protocol';
import type { KafkaClient } from './client.ts';
import type { Connection } from './connection.ts';
import { restampBatch, batchRecordCount } from './batches.ts';
import { ClientError } from './errors.ts';

export type Acks = -1 | 0 | 1;

export interface ProducerOptions {
  /** -1 (all), 1 (leader) or 0 (no response). Default -1, as Kafka's producer. */
  acks?: Acks;
  /** Codec for batches this producer encodes (prebuilt batches keep theirs). Default none. */
  codec?: Codec;
  /** linger.ms for `append` (default 5, Kafka 4.0's default). */
  lingerMs?: number;
  /** batch.size in bytes for `append` (default 16384). */
  batchSize?: number;
  /** max.in.flight.requests.per.connection (default 5). */
  maxInFlight?: number;
  /** enable.idempotence: InitProducerId at `connect`, sequence numbers per partition (default false). */
  idempotent?: boolean;
  /** Produce request timeout sent to the broker (default 30 000 ms). */
  timeoutMs?: number;
  /** Retries on retriable Kafka errors and lost connections (default 3). */
  retries?: number;
}

export interface ProduceResult {
  topic: string;
  partition: number;
  /** Offset of the first record of the batch (-1n for acks=0). */
  baseOffset: bigint;
  logAppendTimeMs: bigint;
}

export interface RecordMetadata { topic: string; partition: number; offset: bigint }

interface Slot { count: number; waiters: Array<() => void> }

interface Pending {
  topic: string;
  partition: number;
  records: RecordInput[];
  bytes: number;
  callbacks: Array<{ resolve: (m: RecordMetadata) => void; reject: (e: Error) => void }>;
  timer: NodeJS.Timeout | null;
}

/** Produce v3–v8 are the non-flexible versions this prefix builder writes. */
const MAX_RAW_PRODUCE_VERSION = 8;

/**
 * The bytes of a Produce request (v3–v8) before the records of its single partition: size prefix,
 * header v1 (correlation id 0, set by the connection), null transactional id, acks, timeout, one
 * topic with one partition, and the records length.
 */
export function produceRequestPrefix(clientId: string, version: number, acks: number, timeoutMs: number, topic: string, partition: number, recordsLength: number): Buffer {
  const cid = Buffer.byteLength(clientId);
  const tl = Buffer.byteLength(topic);
  const len = 4 + 2 + 2 + 4 + 2 + cid + 2 + 2 + 4 + 4 + 2 + tl + 4 + 4 + 4;
  const b = Buffer.allocUnsafe(len);
  let p = 0;
  b.writeInt32BE(len - 4 + recordsLength, p); p += 4;
  b.writeInt16BE(ApiKey.Produce, p); p += 2;
  b.writeInt16BE(version, p); p += 2;
  b.writeInt32BE(0, p); p += 4;
  b.writeInt16BE(cid, p); p += 2;
  p += b.write(clientId, p, 'utf8');
  b.writeInt16BE(-1, p); p += 2; // transactional id: null
  b.writeInt16BE(acks, p); p += 2;
  b.writeInt32BE(timeoutMs, p); p += 4;
  b.writeInt32BE(1, p); p += 4;
  b.writeInt16BE(tl, p); p += 2;
  p += b.write(topic, p, 'utf8');
  b.writeInt32BE(1, p); p += 4;
  b.writeInt32BE(partition, p); p += 4;
  b.writeInt32BE(recordsLength, p);
  return b;
}

export class Producer {
  readonly client: KafkaClient;
  private readonly acks: Acks;
  private readonly codec: Codec;
  private readonly lingerMs: number;
  private readonly batchSize: number;
  private readonly maxInFlight: number;
  private readonly idempotent: boolean;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private producerId = -1n;
  private producerEpoch = -1;
  private readonly sequences = new Map<string, number>();
  private readonly slots = new Map<Connection, Slot>();
  /** Per partition: resolves when the latest send has been written (see sendOnce). */
  private readonly turns = new Map<string, Promise<void>>();
  private readonly pending = new Map<string, Pending>();
  private readonly outstanding = new Set<Promise<unknown>>();
  /** Leader connections resolved once per partition, so the hot path does not await a lookup. */
  private readonly leaderConns = new Map<string, Connection>();

  constructor(client: KafkaClient, options: ProducerOptions = {}) {
    this.client = client;
    this.acks = options.acks ?? -1;
    this.codec = options.codec ?? Codec.None;
    this.lingerMs = options.lingerMs ?? 5;
    this.batchSize = options.batchSize ?? 16384;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 5);
    this.idempotent = options.idempotent ?? false;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 3;
    if (this.idempotent && this.acks !== -1) throw new ClientError('INVALID_ARGUMENT', 'an idempotent producer needs acks=all (-1)');
    if (this.idempotent && this.maxInFlight > 5) throw new ClientError('INVALID_ARGUMENT', 'an idempotent producer allows at most 5 requests in flight');
  }

  /** Gets a producer id when idempotent; call once before sending. */
  async connect(): Promise<this> {
    if (this.idempotent && this.producerId < 0n) {
      const r = await this.client.initProducerId();
      this.producerId = r.producerId;
      this.producerEpoch = r.producerEpoch;
    }
    return this;
  }

  get producerIdentity(): { producerId: bigint; producerEpoch: number } {
    return { producerId: this.producerId, producerEpoch: this.producerEpoch };
  }

  /**
   * Sends one batch to one partition: `records` are encoded with this producer's codec; a Buffer
   * is a prebuilt record batch sent as is (for idempotent producers a copy is re-stamped with the
   * producer id, epoch and sequence). Resolves when acknowledged (right after the write for acks=0).
   */
  async send(topic: string, partition: number, records: RecordInput[] | Buffer, options: { acks?: Acks; codec?: Codec } = {}): Promise<ProduceResult> {
    if (this.idempotent && this.producerId < 0n) await this.connect();
    const acks = options.acks ?? this.acks;
    const key = `${topic}\0${partition}`;
    let batch: Buffer;
    if (Buffer.isBuffer(records)) {
      batch = records;
      if (this.idempotent) {
        batch = Buffer.from(records);
        restampBatch(batch, { producerId: this.producerId, producerEpoch: this.producerEpoch, baseSequence: this.nextSequence(key, batchRecordCount(batch)) });
      }
    } else {
      batch = encodeRecordBatch({
        records,
        codec: options.codec ?? this.codec,
        ...(this.idempotent ? { producerId: this.producerId, producerEpoch: this.producerEpoch, baseSequence: this.nextSequence(key, records.length) } : {}),
      });
    }
    const done = this.sendBatch(topic, partition, batch, acks);
    this.outstanding.add(done);
    done.then(() => this.outstanding.delete(done), () => this.outstanding.delete(done));
    return done;
  }

  /**
   * Adds one record to its partition's open batch; the batch is sent when it reaches batch.size
   * or linger.ms after its first record. Resolves with the record's offset once acknowledged.
   */
  append(topic: string, partition: number, record: RecordInput): Promise<RecordMetadata> {
    const key = `${topic}\0${partition}`;
    let p = this.pending.get(key);
    if (!p) {
      p = { topic, partition, records: [], bytes: 61, callbacks: [], timer: null };
      this.pending.set(key, p);
    }
    const size = 21 + (record.value ? (typeof record.value === 'string' ? Buffer.byteLength(record.value) : record.value.length) : 0)
      + (record.key ? (typeof record.key === 'string' ? Buffer.byteLength(record.key) : record.key.length) : 0);
    if (p.records.length > 0 && p.bytes + size > this.batchSize) {
      this.flushPartition(key);
      return this.append(topic, partition, record);
    }
    const promise = new Promise<RecordMetadata>((resolve, reject) => p.callbacks.push({ resolve, reject }));
    p.records.push(record);
    p.bytes += size;
    if (p.bytes >= this.batchSize) this.flushPartition(key);
    else if (p.timer === null) p.timer = setTimeout(() => this.flushPartition(key), this.lingerMs);
    return promise;
  }

  /** Sends every open batch and waits for every outstanding request (failures stay with their callers). */
  async flush(): Promise<void> {
    for (const key of [...this.pending.keys()]) this.flushPartition(key);
    while (this.outstanding.size > 0) await Promise.allSettled([...this.outstanding]);
  }

  /** Flushes, then forgets cached connections (the client owns and closes them). */
  async close(): Promise<void> {
    await this.flush();
    this.leaderConns.clear();
  }

  private nextSequence(key: string, count: number): number {
    const seq = this.sequences.get(key) ?? 0;
    const next = seq + count; // Kafka wraps sequences after Integer.MAX_VALUE
    this.sequences.set(key, next > 0x7fffffff ? next - 0x80000000 : next);
    return seq;
  }

  private flushPartition(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    if (p.timer) clearTimeout(p.timer);
    if (p.records.length === 0) return;
    this.send(p.topic, p.partition, p.records).then(
      (r) => p.callbacks.forEach((c, i) => c.resolve({ topic: p.topic, partition: p.partition, offset: r.baseOffset < 0n ? -1n : r.baseOffset + BigInt(i) })),
      (err: Error) => p.callbacks.forEach((c) => c.reject(err)),
    );
  }

  private async leaderConn(topic: string, partition: number, key: string): Promise<Connection> {
    const c = this.leaderConns.get(key);
    if (c && !c.closed) return c;
    const conn = await this.client.leader(topic, partition);
    this.leaderConns.set(key, conn);
    return conn;
  }

  private slot(conn: Connection): Slot {
    let s = this.slots.get(conn);
    if (!s) {
      s = { count: 0, waiters: [] };
      this.slots.set(conn, s);
    }
    return s;
  }

  private async sendBatch(topic: string, partition: number, batch: Buffer, acks: Acks): Promise<ProduceResult> {
    const key = `${topic}\0${partition}`;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.sendOnce(topic, partition, key, batch, acks);
      } catch (err) {
        if (!(err instanceof ClientError) || !err.retriable) throw err;
        // Forget the leader on every retriable failure, also the last one: the next send must look
        // it up again rather than reuse a connection to a broker that died or lost the partition.
        this.leaderConns.delete(key);
        this.client.invalidateLeader(topic, partition);
        if (attempt >= this.retries) throw err;
        await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
      }
    }
  }

  /**
   * Batches of one partition reach the socket in the order they were sent, as Kafka's producer
   * guarantees for requests in flight: each send waits for the previous one of its partition to be
   * written (not answered) before it may look up the leader, wait for a free in-flight slot and
   * write. Without the turn, a send arriving while another waits for a slot or a leader lookup
   * would overtake it.
   */
  private async sendOnce(topic: string, partition: number, key: string, batch: Buffer, acks: Acks): Promise<ProduceResult> {
    const previous = this.turns.get(key) ?? Promise.resolve();
    let written!: () => void;
    const mine = new Promise<void>((resolve) => (written = resolve));
    this.turns.set(key, mine);
    let response: Promise<Buffer | null>;
    let conn: Connection;
    let version: number;
    let slot: Slot | undefined;
    try {
      await previous;
      conn = this.leaderConns.get(key) ?? await this.leaderConn(topic, partition, key);
      version = Math.min(conn.version(ApiKey.Produce), MAX_RAW_PRODUCE_VERSION);
      const prefix = produceRequestPrefix(conn.clientId, version, acks, this.timeoutMs, topic, partition, batch.length);
      if (acks !== 0) {
        slot = this.slot(conn);
        while (slot.count >= this.maxInFlight) await new Promise<void>((r) => slot!.waiters.push(r));
        slot.count++;
      }
      if (!conn.writable) await conn.drained();
      response = conn.requestParts([prefix, batch], ApiKey.Produce, version, acks !== 0, this.timeoutMs + 5_000);
    } catch (err) {
      if (slot) {
        slot.count--;
        slot.waiters.shift()?.();
      }
      throw err;
    } finally {
      written();
      if (this.turns.get(key) === mine) this.turns.delete(key);
    }
    if (acks === 0) {
      await response;
      return { topic, partition, baseOffset: -1n, logAppendTimeMs: -1n };
    }
    let frame: Buffer;
    try {
      frame = (await response)!;
    } finally {
      slot!.count--;
      slot!.waiters.shift()?.();
    }
    const body = decodeResponse(ApiKey.Produce, version, frame).body;
    const pr = body.responses[0]?.partitionResponses[0];
    if (!pr) throw new ClientError('PROTOCOL', `Produce response for ${topic}-${partition} has no partition`);
    if (pr.errorCode !== 0) throw ClientError.kafka(pr.errorCode, `Produce ${topic}-${partition}`, pr.errorMessage);
    return { topic, partition, baseOffset: pr.baseOffset, logAppendTimeMs: pr.logAppendTimeMs };
  }
}
