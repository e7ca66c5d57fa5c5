/**
 * The topics inside a `ConsumerProtocolSubscription` (JoinGroup protocol metadata of protocol type
 * "consumer"): `int16 version`, then `topics [string]` (INT32 count, INT16-length strings), then
 * fields we do not need. Every version starts the same way, and newer versions only append.
 * Returns null when the bytes do not parse: the caller then treats the subscription as unknown.
 */
export function subscribedTopics(metadata: Buffer): string[] | null {
  try {
    if (metadata.length < 6) return null;
    const version = metadata.readInt16BE(0);
    if (version < 0) return null;
    const count = metadata.readInt32BE(2);
    if (count < 0) return null;
    let pos = 6;
    const topics: string[] = [];
    for (let i = 0; i < count; i++) {
      const n = metadata.readInt16BE(pos);
      pos += 2;
      if (n < 0 || pos + n > metadata.length) return null;
      topics.push(metadata.toString('utf8', pos, pos + n));
      pos += n;
    }
    return topics;
  } catch {
    return null;
  }
}

/** Encodes a v0 subscription (topics, empty user data); used by tests and tools. */
export function encodeSubscription(topics: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(6)];
  parts[0]!.writeInt16BE(0, 0);
  parts[0]!.writeInt32BE(topics.length, 2);
  for (const t of topics) {
    const s = Buffer.from(t, 'utf8');
    const len = Buffer.alloc(2);
    len.writeInt16BE(s.length);
    parts.push(len, s);
  }
  const userData = Buffer.alloc(4);
  userData.writeInt32BE(0);
  parts.push(userData);
  return Buffer.concat(parts);
}
