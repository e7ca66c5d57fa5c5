// Golden request frames from real clients: every file in test/fixtures/golden/requests was written
// by a real client (the Java client and Kafka's tools 4.3.1, kafkajs, @platformatic/kafka, kcat,
// franz-go, confluent-kafka-python) to a real `runnel start` behind a recording proxy
// (test/fixtures/record-requests.ts). Each frame must decode with @runnel/protocol and re-encode to
// the same bytes, which shows our schema tables are exact for what clients send (field order,
// nullability, compact encodings, tagged fields); each must be a version Runnel advertises; and
// every version Runnel serves above what it served before issue 13 must have a frame from some
// client, or a stated reason why no client here sends it.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, apiName, apiSchema, decodeRequest, encodeRequest } from '@runnel/protocol';
import { startBroker, type TestBroker } from './helpers/broker.ts';
import { kafkaRequest } from './helpers/raw-kafka.ts';
import type { RecordedFrame } from './fixtures/record-requests.ts';

const dir = join(import.meta.dirname, 'fixtures', 'golden', 'requests');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { frames: RecordedFrame[] };

/**
 * The newest version of each API Runnel served before issue 13 (docs/protocol.md at 5835f32).
 * Every version above these that Runnel now advertises needs a golden frame or a NOT_SENT reason.
 */
const OLD_MAX: Record<number, number> = {
  0: 7, 1: 11, 2: 7, 3: 12, 8: 8, 9: 8, 10: 4, 11: 6, 12: 4, 13: 4, 14: 4, 15: 5, 16: 4, 18: 3, 19: 4, 20: 4,
  21: 1, 22: 1, 32: 2, 33: 2, 35: 2, 37: 1, 42: 2, 43: 2, 44: 1, 45: 0, 46: 0, 47: 0, 60: 0,
};

/** `${apiKey}/${version}` advertised above OLD_MAX that no client recorded here sends, and why. */
const NOT_SENT: Record<string, string> = {
  // A released client sends the newest version its release knows; these versions were never a
  // release's newest (Kafka's per-release maxima), so no released client sends them.
  '1/14': 'Fetch v14 and v15 both came with Kafka 3.5 (3.4 clients send v13, 3.5 clients v15)',
  '11/8': 'JoinGroup v8 and v9 both came with Kafka 3.2 (3.1 clients send v7, 3.2 clients v9)',
  // The first versions, sent only by Java clients older than any recorded here (0.11-1.1 for the
  // transaction and ACL APIs, before 1.0 for SaslHandshake): librdkafka, kafkajs and franz-go start higher.
  '17/0': 'SaslHandshake v0 (raw SASL tokens after it) is sent by Java clients before 1.0; every client here sends v1',
  '26/0': 'EndTxn v0: Java clients 0.11-1.1 only; librdkafka and kafkajs send v1',
  '28/0': 'TxnOffsetCommit v0: Java clients 0.11-1.1 only; kafkajs sends v1, librdkafka v3',
  '29/0': 'DescribeAcls v0: Java clients 0.11-1.1 only; kafkajs sends v1, librdkafka v2',
  '30/0': 'CreateAcls v0: Java clients 0.11-1.1 only; kafkajs sends v1, librdkafka v2',
  '31/0': 'DeleteAcls v0: Java clients 0.11-1.1 only; kafkajs sends v1, librdkafka v2',
  // Versions only brokers send, or only to a broker with a feature Runnel does not advertise.
  '24/4': 'AddPartitionsToTxn v4+ is the brokers\' batched form (KIP-890 verification); clients send v3 at most (Java 4.3.1, franz-go)',
  '24/5': 'AddPartitionsToTxn v4+ is the brokers\' batched form (KIP-890 verification); clients send v3 at most (Java 4.3.1, franz-go)',
  '28/5': 'TxnOffsetCommit v5 is transaction version 2 (KIP-890 part 2): Java 4.3.1 and franz-go send v4 to a broker without that feature, as Runnel is',
  // OffsetForLeaderEpoch: a client sends it to validate a position that carries a leader epoch
  // (KIP-320: after a leader change, or resuming a group's offset committed with one); no recorded
  // script leads a client there (one broker, leaders never change; no frame came in the recordings).
  '23/2': 'OffsetForLeaderEpoch v2: Java clients 2.1-2.2 (none recorded here) and librdkafka, whose consumer (librdkafka 2.16) resuming its group here did not send it',
};

/**
 * Frames a client ends with bytes past the request's body, and why. Runnel's decoder, as Kafka's,
 * ignores them (the call succeeded when recorded); the rest must re-encode exactly, and they must be zeros.
 */
const TRAILING: Record<string, { bytes: number; why: string }> = {
  // The Java client's frame of the same version (kafka-tools) has no such byte.
  'confluent-kafka-python/alter-user-scram-credentials-v0.bin': { bytes: 1, why: 'librdkafka 2.16 writes one more empty tagged-field byte than the v0 schema has' },
};

function walk(d: string): string[] {
  return readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
}

let broker: TestBroker;
/** apiKey -> [min, max] from a real `runnel start`'s ApiVersions v3 answer. */
const advertised = new Map<number, [number, number]>();

beforeAll(async () => {
  // With a SASL_PLAINTEXT listener, as the recorder's broker has: a node advertises SaslHandshake
  // and SaslAuthenticate only then.
  broker = await startBroker({
    set: [
      'listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0',
      'sasl.enabled.mechanisms=PLAIN',
      'listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_golden="golden-secret";',
    ],
  });
  const res = await kafkaRequest(broker.port, ApiKey.ApiVersions, 3, { clientSoftwareName: 'golden-requests', clientSoftwareVersion: '1' });
  expect(res.errorCode).toBe(0);
  for (const k of res.apiKeys) advertised.set(k.apiKey, [k.minVersion, k.maxVersion]);
}, 60_000);
afterAll(async () => {
  await broker?.cleanup();
});

describe('golden request frames from real clients', () => {
  it('the manifest lists exactly the .bin files there, one per (client, api, version)', () => {
    const files = walk(dir).map((p) => relative(dir, p)).filter((p) => p.endsWith('.bin')).sort();
    expect(manifest.frames.map((f) => f.file).sort()).toEqual(files);
    const keys = manifest.frames.map((f) => `${f.client}/${f.apiKey}/${f.apiVersion}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(files.length).toBeGreaterThan(0);
    expect(Object.keys(TRAILING).filter((file) => !files.includes(file)), 'TRAILING entries without their frame').toEqual([]);
  });

  for (const f of manifest.frames) {
    it(`${f.file} (${f.clientVersion}): decodes and re-encodes to the same bytes`, () => {
      let frame = readFileSync(join(dir, f.file));
      expect(frame.readInt32BE(0)).toBe(frame.length - 4);
      const req = decodeRequest(frame.subarray(4));
      expect(req.header).toEqual({ apiKey: f.apiKey, apiVersion: f.apiVersion, correlationId: f.correlationId, clientId: f.clientId });
      expect(apiName(f.apiKey)).toBe(f.api);
      const from = apiSchema(f.apiKey)!.request.flexibleFrom;
      expect(from !== null && f.apiVersion >= from, 'flexible in the manifest = flexible in our schema').toBe(f.flexible);
      const extra = TRAILING[f.file]?.bytes ?? 0;
      if (extra > 0) {
        expect([...frame.subarray(frame.length - extra)], TRAILING[f.file]!.why).toEqual(new Array(extra).fill(0));
        const body = frame.subarray(0, frame.length - extra);
        frame = Buffer.concat([Buffer.alloc(4), body.subarray(4)]);
        frame.writeInt32BE(frame.length - 4, 0);
      }
      const again = encodeRequest(req.header, req.body as object);
      // On a mismatch, show where the bytes part (a hex diff of 64 KiB frames is unreadable).
      let at = 0;
      while (at < Math.min(again.length, frame.length) && again[at] === frame[at]) at++;
      expect({ length: again.length, firstDifferenceAt: at === frame.length && at === again.length ? null : at })
        .toEqual({ length: frame.length, firstDifferenceAt: null });
    });
  }

  it('every frame is a version `runnel start` advertises (ApiVersions: at least the one each client settled on)', () => {
    const outside = manifest.frames.filter((f) => {
      const range = advertised.get(f.apiKey);
      return range === undefined || f.apiVersion < range[0] || f.apiVersion > range[1];
    });
    // A client asks ApiVersions at its own newest version before it knows the broker's; Runnel
    // answers UNSUPPORTED_VERSION and the client asks again lower: only that first frame may be above.
    expect(outside.filter((f) => f.apiKey !== ApiKey.ApiVersions).map((f) => f.file)).toEqual([]);
    const clients = new Set(manifest.frames.map((f) => f.client));
    for (const client of clients) {
      const settled = manifest.frames.filter((f) => f.client === client && f.apiKey === ApiKey.ApiVersions && !outside.includes(f));
      expect(settled.length, `${client} sent an ApiVersions request Runnel answers`).toBeGreaterThan(0);
    }
  });

  it('every version advertised above the pre-issue-13 maxima has a frame from some client, or a reason none sends it', () => {
    const recorded = new Set(manifest.frames.map((f) => `${f.apiKey}/${f.apiVersion}`));
    const missing: string[] = [];
    const newVersions = new Set<string>();
    for (const [apiKey, [min, max]] of advertised) {
      for (let v = Math.max(min, (OLD_MAX[apiKey] ?? -1) + 1); v <= max; v++) {
        const key = `${apiKey}/${v}`;
        newVersions.add(key);
        if (!recorded.has(key) && NOT_SENT[key] === undefined) missing.push(`${apiName(apiKey)} v${v} (${key})`);
      }
    }
    expect(missing, 'new versions with neither a golden frame nor a NOT_SENT reason').toEqual([]);
    // A reason goes stale once a client sends that version or Runnel stops advertising it.
    const stale = Object.keys(NOT_SENT).filter((k) => recorded.has(k) || !newVersions.has(k));
    expect(stale, 'NOT_SENT entries that are recorded or not advertised above the old maxima').toEqual([]);
  });
});
