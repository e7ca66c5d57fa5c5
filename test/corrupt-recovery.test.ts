/**
 * Issue 17 item 6 end to end: a broker killed with no recovery checkpoint, one flipped byte in the
 * middle of the first of several segments. The restarted broker serves every record before the bad
 * batch, takes new writes, and the later segments are kept aside byte for byte (never deleted).
 */
import { readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { startBroker } from './helpers/broker.ts';

describe('recovery keeps what it cannot prove bad', () => {
  it('30,000 records, a flipped byte mid segment 1 of 3+, kill -9 without a recovery checkpoint: the prefix is served, the rest is aside', async () => {
    const first = await startBroker({ set: ['log.segment.bytes=262144'] });
    const logDir = first.logDir;
    let second: Awaited<ReturnType<typeof startBroker>> | null = null;
    try {
      const kafka = new Kafka({ brokers: [first.bootstrap], logLevel: logLevel.NOTHING });
      const producer = kafka.producer();
      await producer.connect();
      for (let n = 0; n < 30; n++) {
        await producer.send({ topic: 'keep', acks: -1, messages: Array.from({ length: 1000 }, (_, i) => ({ value: `r-${n * 1000 + i}-${'p'.repeat(20)}` })) });
      }
      await producer.disconnect();
      // Crash: no clean-shutdown marker; and no recovery checkpoint either, so every segment is scanned.
      first.process.child.kill('SIGKILL');
      await first.process.exited();
      unlinkSync(join(logDir, 'recovery-point-offset-checkpoint'));

      const pdir = join(logDir, 'keep-0');
      const segs = readdirSync(pdir).filter((f) => f.endsWith('.log')).sort();
      expect(segs.length).toBeGreaterThanOrEqual(3);
      const later = new Map(segs.slice(1).map((s) => [s, readFileSync(join(pdir, s))]));
      const seg0 = readFileSync(join(pdir, segs[0]));
      const mid = Math.floor(seg0.length / 2);
      let badBase = -1n;
      for (let p = 0; p < seg0.length; p += 12 + seg0.readInt32BE(p + 8)) {
        if (p + 12 + seg0.readInt32BE(p + 8) > mid) {
          badBase = seg0.readBigInt64BE(p);
          break;
        }
      }
      expect(badBase).toBeGreaterThan(0n);
      seg0[mid] ^= 0x10;
      writeFileSync(join(pdir, segs[0]), seg0);

      second = await startBroker({ logDir, set: ['log.segment.bytes=262144'] });
      // One clear warning naming the folder.
      await second.process.waitFor(/moved the \d+ later segment\(s\) aside to .*corrupt-aside-/, 5_000);
      const aside = readdirSync(pdir).filter((f) => f.startsWith('corrupt-aside-'));
      expect(aside).toHaveLength(1);
      for (const [name, bytes] of later) expect(Buffer.compare(readFileSync(join(pdir, aside[0], name)), bytes), name).toBe(0);

      // Everything before the bad batch is served, in order; nothing after it.
      const kafka2 = new Kafka({ brokers: [second.bootstrap], logLevel: logLevel.NOTHING });
      const admin = kafka2.admin();
      await admin.connect();
      const [offsets] = await admin.fetchTopicOffsets('keep');
      await admin.disconnect();
      expect(BigInt(offsets.high)).toBe(badBase);
      const consumer = kafka2.consumer({ groupId: 'keep-check' });
      await consumer.connect();
      await consumer.subscribe({ topic: 'keep', fromBeginning: true });
      const seen: string[] = [];
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            eachMessage: async ({ message }) => {
              seen.push(message.value!.toString());
              if (seen.length === Number(badBase)) resolve();
            },
          })
          .catch(reject);
      });
      await consumer.disconnect();
      expect(seen).toEqual(Array.from({ length: Number(badBase) }, (_, i) => `r-${i}-${'p'.repeat(20)}`));

      // It takes new writes right after the kept prefix.
      const producer2 = kafka2.producer();
      await producer2.connect();
      const [sent] = await producer2.send({ topic: 'keep', acks: -1, messages: [{ value: 'after' }] });
      await producer2.disconnect();
      expect(BigInt(sent.baseOffset!)).toBe(badBase);
    } finally {
      await second?.cleanup();
      await first.cleanup();
    }
  }, 120_000);
});
