/**
 * The machine's own ceilings, measured in the same run as the brokers: a raw sequential write of
 * N bytes in 1 MiB chunks to a file in the data directory (page cache, no fsync, like both brokers
 * by default), and a loopback TCP copy of the same N bytes (127.0.0.1, 1 MiB writes, one stream).
 * A broker that ingests over loopback and writes to disk cannot beat either.
 */
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { median } from '../lib/report.ts';

const CHUNK = 1024 * 1024;

function chunk(): Buffer {
  const b = Buffer.allocUnsafe(CHUNK);
  for (let i = 0; i < CHUNK; i++) b[i] = (i * 2654435761) >>> 24;
  return b;
}

/** MB/s (decimal) of a sequential write of `bytes` to a fresh file under `dir`. */
export function sequentialWriteMBps(dir: string, bytes: number): number {
  const file = join(dir, 'physical-write.bin');
  const buf = chunk();
  const fd = openSync(file, 'w');
  try {
    const t0 = performance.now();
    for (let done = 0; done < bytes; done += CHUNK) writeSync(fd, buf, 0, Math.min(CHUNK, bytes - done));
    return bytes / 1e6 / ((performance.now() - t0) / 1000);
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

/** MB/s (decimal) of sending `bytes` over one loopback TCP connection, until the receiver has them all. */
export function loopbackCopyMBps(bytes: number): Promise<number> {
  const buf = chunk();
  return new Promise((resolve, reject) => {
    let received = 0;
    let t0 = 0;
    const server = createServer((sock) => {
      sock.on('data', (d) => {
        received += d.length;
        if (received >= bytes) {
          const seconds = (performance.now() - t0) / 1000;
          sock.destroy();
          server.close();
          resolve(bytes / 1e6 / seconds);
        }
      });
    });
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = addr && typeof addr === 'object' ? addr.port : 0;
      const client = createConnection({ host: '127.0.0.1', port }, () => {
        t0 = performance.now();
        let sent = 0;
        const pump = () => {
          while (sent < bytes) {
            const n = Math.min(CHUNK, bytes - sent);
            sent += n;
            if (!client.write(n === CHUNK ? buf : buf.subarray(0, n))) { client.once('drain', pump); return; }
          }
          client.end();
        };
        pump();
      });
      client.on('error', () => { /* the receiver closes first */ });
    });
  });
}

/** Median of three of each (after one warm-up), in MB/s. */
export async function physicalLimits(dir: string, bytes: number): Promise<{ writeMBps: number; loopbackMBps: number }> {
  sequentialWriteMBps(dir, Math.min(bytes, 64 * CHUNK));
  const writes = [0, 1, 2].map(() => sequentialWriteMBps(dir, bytes));
  await loopbackCopyMBps(Math.min(bytes, 64 * CHUNK));
  const copies: number[] = [];
  for (let i = 0; i < 3; i++) copies.push(await loopbackCopyMBps(bytes));
  return { writeMBps: median(writes), loopbackMBps: median(copies) };
}
