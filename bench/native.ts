/**
 * Native core throughput: CRC-32C against Buffer.copy, and each codec's compress/decompress MB/s
 * on a realistic corpus of ~1 KB JSON log and metric records, in 16 KiB and 1 MiB inputs, against
 * the Debian lz4/zstd CLIs' own benchmark mode (`-b`) on the same bytes in the same run.
 *
 *   npm run bench:native [-- --json FILE]
 *
 * MB/s are decimal (10^6 bytes/s, as the CLIs print them) of uncompressed bytes. Ours are the
 * median of 3 timed runs after a warm-up and include the N-API call and the copy of the result
 * into a new Buffer (~2 µs per call); the CLIs report their fastest iteration over in-memory
 * blocks, which favours them. The gzip baseline is node:zlib at the same level (6).
 * `RUNNEL_BENCH_DUMP_CORPUS=FILE` also writes the 1 MiB corpus to FILE, for profiling elsewhere.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { Codec, compress, crc32c, decompress, scanLog, validateAndAssign, validateRecords } from '@runnel/native';
import { report, row, throughput, throughputPair, type BenchRow } from './lib/report.ts';
import { seededRandom } from '@runnel/common';

const KiB = 1024;
const MiB = 1024 * KiB;
const MB = 1e6;


/** Newline-separated JSON records of roughly 1 KB: access logs and metric samples, 3:1. */
function corpus(bytes: number, seed = 20261121): Buffer {
  const rand = seededRandom(seed).next;
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
  const levels = ['debug', 'info', 'info', 'info', 'info', 'warn', 'error'] as const;
  const services = ['checkout', 'cart', 'search', 'auth', 'inventory', 'payments', 'recommendations'] as const;
  const regions = ['eu-west-1', 'us-east-1', 'ap-south-1'] as const;
  const paths = ['/api/v1/orders', '/api/v1/cart/items', '/api/v2/search', '/login', '/api/v1/products', '/healthz', '/api/v1/payments/authorize'] as const;
  const methods = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'] as const;
  const words = 'request completed upstream timeout retry cache miss hit user session token refreshed order created payment declined inventory reserved shipment queued database query slow index scan connection pool exhausted'.split(' ');
  const agents = ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36', 'okhttp/4.12.0', 'python-requests/2.32.3', 'kafkajs/2.2.4'] as const;
  let ts = 1_763_700_000_000;
  const lines: string[] = [];
  let total = 0;
  while (total < bytes) {
    ts += Math.floor(rand() * 50);
    const host = `${pick(services)}-${String(Math.floor(rand() * 40)).padStart(3, '0')}.${pick(regions)}.internal`;
    let rec: Record<string, unknown>;
    if (rand() < 0.75) {
      const id = Math.floor(rand() * 1e6);
      rec = {
        ts: new Date(ts).toISOString(), level: pick(levels), host, service: pick(services),
        method: pick(methods), path: `${pick(paths)}/${id}`, status: rand() < 0.92 ? 200 : pick([201, 204, 400, 401, 404, 500, 503]),
        latency_ms: Math.round(rand() * rand() * 2000 * 100) / 100, bytes_out: Math.floor(rand() * 64000),
        trace_id: hex(32), span_id: hex(16), user_id: `u-${Math.floor(rand() * 50000)}`, user_agent: pick(agents),
        client_ip: `10.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}`,
        msg: Array.from({ length: 12 + Math.floor(rand() * 30) }, () => pick(words)).join(' '),
        tags: { env: 'prod', version: `1.${Math.floor(rand() * 30)}.${Math.floor(rand() * 10)}`, canary: rand() < 0.05 },
      };
    } else {
      const base = rand() * 100;
      rec = {
        ts, metric: pick(['http.server.duration', 'jvm.gc.pause', 'db.client.connections.usage', 'process.cpu.utilization']),
        host, labels: { service: pick(services), region: pick(regions), instance: hex(8), pod: `${pick(services)}-${hex(10)}-${hex(5)}` },
        count: Math.floor(rand() * 10000), sum: Math.round(base * 1000) / 1000,
        quantiles: Object.fromEntries(['p50', 'p75', 'p90', 'p95', 'p99', 'p999'].map((q, i) => [q, Math.round(base * (1 + i * rand()) * 1000) / 1000])),
        buckets: Array.from({ length: 16 }, () => Math.floor(rand() * 500)),
        exemplar: { trace_id: hex(32), value: Math.round(rand() * 1e5) / 100 },
      };
    }
    const line = JSON.stringify(rec);
    lines.push(line);
    total += line.length + 1;
  }
  return Buffer.from(lines.join('\n') + '\n').subarray(0, bytes);
}

/** The last "X MB/s , Y MB/s" pair printed by `lz4 -b` / `zstd -b` (compress, decompress). */
function parseCli(text: string): { c: number; d: number } | null {
  const matches = [...text.replace(/\r/g, '\n').matchAll(/([\d.]+)\s*MB\/s\s*,\s*([\d.]+)\s*MB\/s/g)];
  const last = matches.at(-1);
  return last ? { c: Number(last[1]), d: Number(last[2]) } : null;
}

/** Runs a CLI in benchmark mode; they print results on stderr, with \r progress lines. */
function execCli(bin: string, args: string[], file: string): { c: number; d: number } | null {
  const r = spawnSync(bin, [...args, file], { encoding: 'utf8', timeout: 30_000 });
  return parseCli(`${r.stdout ?? ''}${r.stderr ?? ''}`);
}

const rows: BenchRow[] = [];
const notes: string[] = [];
const started = Date.now();

// CRC-32C against a same-size memcpy (Buffer.copy): both stream the same bytes from cache.
for (const size of [16 * KiB, MiB]) {
  const src = corpus(size, 7);
  const dst = Buffer.alloc(size);
  const label = size === MiB ? '1 MiB' : '16 KiB';
  let sink = 0;
  const r = throughputPair(
    size,
    () => {
      sink ^= crc32c(src);
    },
    () => {
      src.copy(dst);
    },
  );
  if (sink === 0.5) console.log(sink); // keep the result alive
  rows.push(row(`crc32c ${label}`, 'GB/s', r.value / 1e9, { name: `Buffer.copy ${label}`, value: r.baseline / 1e9 }));
}

const big = corpus(MiB);
if (process.env.RUNNEL_BENCH_DUMP_CORPUS) writeFileSync(process.env.RUNNEL_BENCH_DUMP_CORPUS, big);
const chunks = Array.from({ length: MiB / (16 * KiB) }, (_, i) => big.subarray(i * 16 * KiB, (i + 1) * 16 * KiB));
const dir = mkdtempSync(join(tmpdir(), 'runnel-bench-'));
const corpusFile = join(dir, 'corpus.json');
writeFileSync(corpusFile, big);

const haveLz4 = existsSync('/usr/bin/lz4');
const haveZstd = existsSync('/usr/bin/zstd');
if (!haveLz4) notes.push('/usr/bin/lz4 is absent: lz4 rows have no baseline');
if (!haveZstd) notes.push('/usr/bin/zstd is absent: zstd rows have no baseline');

interface Config { name: string; codec: Codec; level?: number; cli?: (block: number) => { c: number; d: number } | null; cliName?: string }
const configs: Config[] = [
  { name: 'gzip', codec: Codec.Gzip },
  { name: 'snappy', codec: Codec.Snappy },
  { name: 'lz4', codec: Codec.Lz4, cliName: 'lz4 -b1', cli: haveLz4 ? (b) => execCli('/usr/bin/lz4', ['-b1', '-i1', `-B${b}`], corpusFile) : undefined },
  { name: 'zstd-1', codec: Codec.Zstd, level: 1, cliName: 'zstd -b1', cli: haveZstd ? (b) => execCli('/usr/bin/zstd', ['-b1', '-i1', `-B${b}`], corpusFile) : undefined },
  { name: 'zstd-3', codec: Codec.Zstd, level: 3, cliName: 'zstd -b3', cli: haveZstd ? (b) => execCli('/usr/bin/zstd', ['-b3', '-i1', `-B${b}`], corpusFile) : undefined },
];

for (const cfg of configs) {
  const shapes: Array<{ label: string; inputs: Buffer[]; block: number }> = [
    { label: '16 KiB', inputs: chunks, block: 16 * KiB },
    { label: '1 MiB', inputs: [big], block: MiB },
  ];
  for (const { label, inputs, block } of shapes) {
    const total = inputs.reduce((n, c) => n + c.length, 0);
    const packed = inputs.map((c) => compress(cfg.codec, c, cfg.level));
    const ratio = total / packed.reduce((n, c) => n + c.length, 0);
    const ourCompress = () => {
      for (const input of inputs) compress(cfg.codec, input, cfg.level);
    };
    const ourDecompress = () => {
      for (const p of packed) decompress(cfg.codec, p, block);
    };
    let c: number;
    let d: number;
    let base: { c: number; d: number } | null = null;
    let baseName = '';
    if (cfg.name === 'gzip') {
      // node:zlib at the same level (6) on the same inputs, runs interleaved with ours.
      const pc = throughputPair(total, ourCompress, () => {
        for (const input of inputs) zlib.gzipSync(input);
      });
      const pd = throughputPair(total, ourDecompress, () => {
        for (const p of packed) zlib.gunzipSync(p);
      });
      [c, d] = [pc.value, pd.value];
      base = { c: pc.baseline / MB, d: pd.baseline / MB };
      baseName = 'node:zlib';
    } else {
      c = throughput(total, ourCompress);
      d = throughput(total, ourDecompress);
    }
    if (cfg.cli) {
      base = cfg.cli(block);
      baseName = `${cfg.cliName} -B${block}`;
      if (!base) notes.push(`${cfg.cliName}: could not parse its output; no baseline`);
    }
    rows.push(row(`${cfg.name} compress ${label} (ratio ${ratio.toFixed(2)})`, 'MB/s', c / MB, base && { name: baseName, value: base.c }));
    rows.push(row(`${cfg.name} decompress ${label}`, 'MB/s', d / MB, base && { name: baseName, value: base.d }));
  }
}
rmSync(dir, { recursive: true, force: true });

/** An uncompressed v2 batch holding `data` as records of at most ~1 KB (one JSON line each). */
function batchOf(data: Buffer): Buffer {
  const lines = data.toString('latin1').split('\n').filter((l) => l.length > 0);
  const zigzag = (n: number) => {
    const out: number[] = [];
    let z = ((n << 1) ^ (n >> 31)) >>> 0;
    while (z >= 0x80) {
      out.push((z & 0x7f) | 0x80);
      z >>>= 7;
    }
    out.push(z);
    return out;
  };
  const records = lines.map((line, i) => {
    const value = Buffer.from(line, 'latin1');
    const head = Buffer.from([0, ...zigzag(i), ...zigzag(i), ...zigzag(-1), ...zigzag(value.length)]);
    const body = Buffer.concat([head, value, Buffer.from([0])]);
    return Buffer.concat([Buffer.from(zigzag(body.length)), body]);
  });
  const recs = Buffer.concat(records);
  const b = Buffer.alloc(61 + recs.length);
  b.writeInt32BE(b.length - 12, 8);
  b.writeInt8(2, 16);
  b.writeInt32BE(lines.length - 1, 23);
  b.writeBigInt64BE(-1n, 43);
  b.writeInt16BE(-1, 51);
  b.writeInt32BE(-1, 53);
  b.writeInt32BE(lines.length, 57);
  recs.copy(b, 61);
  b.writeUInt32BE(crc32c(b.subarray(21)), 17);
  return b;
}

// Batch checks: what the produce path (validateAndAssign) and recovery (scanLog) cost over the
// CRC-32C they must compute anyway; validateRecords walks every record too.
{
  const small = batchOf(big.subarray(0, 16 * KiB));
  const large = batchOf(big);
  const log = Buffer.concat(chunks.map(batchOf));
  const crcOf = (b: Buffer) => () => {
    crc32c(b.subarray(21));
  };
  let next = 0n;
  const assign = (b: Buffer) => () => {
    next += BigInt(validateAndAssign(b, next, 1).length);
  };
  const gb = (name: string, bytes: number, op: () => void, baseName: string, baseOp: () => void) => {
    const r = throughputPair(bytes, op, baseOp);
    rows.push(row(name, 'GB/s', r.value / 1e9, { name: baseName, value: r.baseline / 1e9 }));
  };
  gb('validateAndAssign 16 KiB batch', small.length, assign(small), 'crc32c of the batch', crcOf(small));
  gb('validateAndAssign 1 MiB batch', large.length, assign(large), 'crc32c of the batch', crcOf(large));
  gb(`scanLog 1 MiB log (${chunks.length} batches)`, log.length, () => {
    scanLog(log);
  }, 'crc32c per batch from JS', () => {
    for (let p = 0; p < log.length; p += log.readInt32BE(p + 8) + 12) crc32c(log.subarray(p + 21, p + log.readInt32BE(p + 8) + 12));
  });
  gb(`validateRecords 1 MiB batch (${large.readInt32BE(57)} records)`, large.length, () => {
    validateRecords(large, 2 * MiB);
  }, 'crc32c of the batch', crcOf(large));
}

const crc1m = rows.find((r) => r.name === 'crc32c 1 MiB');
if (crc1m) notes.push(`target crc32c 1 MiB >= 8 GB/s: ${crc1m.value >= 8 ? 'met' : 'NOT met'} (${crc1m.value.toFixed(2)} GB/s)`);
for (const r of rows.filter((x) => /^(lz4|zstd-1) compress/.test(x.name) && x.ratio !== null)) {
  notes.push(`target ${r.name.replace(/ \(ratio.*\)/, '')} >= 0.9x CLI: ${r.ratio! >= 0.9 ? 'met' : 'NOT met'} (${r.ratio!.toFixed(2)}x)`);
}
notes.push(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${availableParallelism()} cpus (other processes skew single runs)`);
notes.push(`corpus: ${MiB} bytes of seeded JSON log/metric records (~1 KB each); total time ${((Date.now() - started) / 1000).toFixed(1)} s`);
report('native', rows, { notes });
