/**
 * The "physical limit" baseline for bench/broker.ts: a trivial Kafka endpoint on loopback that
 * answers just enough for `runnel perf` (ApiVersions, Metadata, ListOffsets, InitProducerId) and
 * then does the least possible work per request:
 *  - Produce: reassemble the frame, peek the correlation id, write a prebuilt Produce response.
 *  - Fetch: decode the (small) request for its fetch offset, re-stamp the base offsets of a
 *    prebuilt ~1 MiB record set in place and write it behind a prebuilt response prefix.
 * Whatever the broker does beyond this (validation, storage, offsets) is the broker's cost.
 *
 * Usage: node bench/lib/kafka-sink.ts --record-size 100 --codec 0  → prints {"port":N} on stdout.
 */
import { Buffer } from 'node:buffer';
import { createServer, type Socket } from 'node:net';
import { ApiKey, BATCH_LOG_OVERHEAD, ErrorCode, decodeRequest, encodeResponse, peekRequestHeader, type Codec } from '@runnel/protocol';
import { BatchTemplates } from '@runnel/client';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? def : process.argv[i + 1]!;
};
const recordSize = Number(arg('--record-size', '100'));
const codec = Number(arg('--codec', '0')) as Codec;
const fetchBytes = Number(arg('--fetch-bytes', String(1024 * 1024)));

// The broker's advertised ranges (docs/protocol.md), so clients pick the same versions.
const VERSIONS: Array<[number, number, number]> = [
  [ApiKey.Produce, 0, 7], [ApiKey.Fetch, 4, 11], [ApiKey.ListOffsets, 1, 5], [ApiKey.Metadata, 0, 9],
  [ApiKey.ApiVersions, 0, 3], [ApiKey.CreateTopics, 2, 4], [ApiKey.DeleteTopics, 1, 4], [ApiKey.InitProducerId, 0, 1],
];

// A ~1 MiB record set of batch.size batches, like the broker returns for max.partition.fetch.bytes.
const templates = new BatchTemplates({ recordSize, codec, batchSize: 16384, refreshMs: Infinity });
const batch = templates.get(templates.perBatch).batch;
const perSet = Math.max(1, Math.floor(fetchBytes / batch.length));
const recordSet = Buffer.concat(Array.from({ length: perSet }, () => batch));
const recordsPerBatch = templates.perBatch;

let port = 0;
const produceResponses = new Map<string, Buffer>();
const fetchPrefixes = new Map<string, Buffer>();

function produceResponse(frame: Buffer): Buffer {
  const { apiVersion } = peekRequestHeader(frame);
  // Decode once per (version, topic) and cache the answer; the topic name is read in place.
  let pos = 8;
  const clientIdLen = frame.readInt16BE(pos);
  pos += 2 + Math.max(0, clientIdLen);
  const txnLen = frame.readInt16BE(pos);
  pos += 2 + Math.max(0, txnLen) + 2 + 4 + 4;
  const topicLen = frame.readInt16BE(pos);
  const key = `${apiVersion}:${frame.toString('utf8', pos + 2, pos + 2 + topicLen)}`;
  let r = produceResponses.get(key);
  if (!r) {
    const req = decodeRequest(frame);
    if (req.apiKey !== ApiKey.Produce) throw new Error('not a produce request');
    r = encodeResponse(ApiKey.Produce, apiVersion, 0, {
      responses: req.body.topicData.map((t) => ({
        name: t.name,
        partitionResponses: t.partitionData.map((p) => ({ index: p.index, errorCode: 0, baseOffset: 0n, logAppendTimeMs: -1n, logStartOffset: 0n })),
      })),
      throttleTimeMs: 0,
    });
    produceResponses.set(key, r);
  }
  const out = Buffer.from(r);
  out.writeInt32BE(peekRequestHeader(frame).correlationId, 4);
  return out;
}

function fetchResponse(frame: Buffer): Buffer[] {
  const req = decodeRequest(frame);
  if (req.apiKey !== ApiKey.Fetch) throw new Error('not a fetch request');
  const t = req.body.topics[0]!;
  const p = t.partitions[0]!;
  const key = `${req.header.apiVersion}:${t.topic}:${p.partition}`;
  let prefix = fetchPrefixes.get(key);
  if (!prefix) {
    const full = encodeResponse(ApiKey.Fetch, req.header.apiVersion, 0, {
      throttleTimeMs: 0, errorCode: 0, sessionId: 0,
      responses: [{ topic: t.topic, partitions: [{ partitionIndex: p.partition, errorCode: 0, highWatermark: 1n << 60n, lastStableOffset: 1n << 60n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records: recordSet }] }],
    });
    // Records are the last field of the last partition: everything before them is the prefix.
    prefix = full.subarray(0, full.length - recordSet.length);
    fetchPrefixes.set(key, prefix);
  }
  // Safe to rewrite in place: the client asks again only after it has read the previous answer.
  let offset = p.fetchOffset;
  for (let pos = 0; pos < recordSet.length; pos += BATCH_LOG_OVERHEAD + recordSet.readInt32BE(pos + 8)) {
    recordSet.writeBigInt64BE(offset, pos);
    offset += BigInt(recordsPerBatch);
  }
  const head = Buffer.from(prefix);
  head.writeInt32BE(req.header.correlationId, 4);
  return [head, recordSet];
}

function answer(frame: Buffer): Buffer[] {
  const h = peekRequestHeader(frame);
  switch (h.apiKey) {
    case ApiKey.Produce: return [produceResponse(frame)];
    case ApiKey.Fetch: return fetchResponse(frame);
    case ApiKey.ApiVersions:
      return [encodeResponse(ApiKey.ApiVersions, h.apiVersion, h.correlationId, {
        errorCode: 0, throttleTimeMs: 0, apiKeys: VERSIONS.map(([apiKey, minVersion, maxVersion]) => ({ apiKey, minVersion, maxVersion })),
      })];
    case ApiKey.Metadata: {
      const req = decodeRequest(frame);
      if (req.apiKey !== ApiKey.Metadata) throw new Error('not metadata');
      return [encodeResponse(ApiKey.Metadata, h.apiVersion, h.correlationId, {
        throttleTimeMs: 0, brokers: [{ nodeId: 1, host: '127.0.0.1', port, rack: null }], clusterId: 'sink', controllerId: 1,
        topics: (req.body.topics ?? []).map((t) => ({
          errorCode: 0, name: t.name, isInternal: false,
          partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: 0, replicaNodes: [1], isrNodes: [1], offlineReplicas: [] }],
        })),
      })];
    }
    case ApiKey.ListOffsets: {
      const req = decodeRequest(frame);
      if (req.apiKey !== ApiKey.ListOffsets) throw new Error('not list offsets');
      return [encodeResponse(ApiKey.ListOffsets, h.apiVersion, h.correlationId, {
        throttleTimeMs: 0,
        topics: req.body.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: 0, oldStyleOffsets: [], timestamp: -1n, offset: 0n, leaderEpoch: 0 })) })),
      })];
    }
    case ApiKey.InitProducerId:
      return [encodeResponse(ApiKey.InitProducerId, h.apiVersion, h.correlationId, { throttleTimeMs: 0, errorCode: 0, producerId: 1n, producerEpoch: 0 })];
    default:
      return [encodeResponse(ApiKey.ApiVersions, 0, h.correlationId, { errorCode: ErrorCode.UNSUPPORTED_VERSION, apiKeys: [] })];
  }
}

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  const sizeBuf = Buffer.alloc(4);
  let sizeFill = 0;
  let frame: Buffer | null = null;
  let fill = 0;
  const emit = (f: Buffer) => {
    const parts = answer(f);
    if (parts.length === 1) socket.write(parts[0]!);
    else {
      socket.cork();
      for (const p of parts) socket.write(p);
      socket.uncork();
    }
  };
  socket.on('data', (chunk: Buffer) => {
    let pos = 0;
    while (pos < chunk.length) {
      if (frame === null) {
        let size: number;
        if (sizeFill === 0 && chunk.length - pos >= 4) {
          size = chunk.readInt32BE(pos);
          pos += 4;
          if (chunk.length - pos >= size) {
            emit(chunk.subarray(pos, pos + size));
            pos += size;
            continue;
          }
        } else {
          while (sizeFill < 4 && pos < chunk.length) sizeBuf[sizeFill++] = chunk[pos++]!;
          if (sizeFill < 4) return;
          sizeFill = 0;
          size = sizeBuf.readInt32BE(0);
        }
        frame = Buffer.allocUnsafe(size);
        fill = 0;
      }
      const n = Math.min(frame.length - fill, chunk.length - pos);
      chunk.copy(frame, fill, pos, pos + n);
      fill += n;
      pos += n;
      if (fill === frame.length) {
        const f = frame;
        frame = null;
        emit(f);
      }
    }
  });
  socket.on('error', () => socket.destroy());
}

const server = createServer(serve);
server.listen(0, '127.0.0.1', () => {
  port = (server.address() as { port: number }).port;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
