/**
 * Kafka's murmur2 (Utils.murmur2): seed 0x9747b28c, m 0x5bd1e995, r 24, 32-bit wrapping
 * arithmetic. Returns the signed int32 hash, as Java does.
 */
export function murmur2(key: Uint8Array): number {
  const m = 0x5bd1e995;
  const len = key.length;
  let h = (0x9747b28c ^ len) | 0;
  const words = len >>> 2;
  for (let i = 0; i < words; i++) {
    const o = i * 4;
    let k = key[o]! | (key[o + 1]! << 8) | (key[o + 2]! << 16) | (key[o + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = words * 4;
  // Kafka's tail is a fall-through switch (3 → 2 → 1); written as ifs for noFallthroughCasesInSwitch.
  const rest = len & 3;
  if (rest >= 3) h ^= key[tail + 2]! << 16;
  if (rest >= 2) h ^= key[tail + 1]! << 8;
  if (rest >= 1) { h ^= key[tail]!; h = Math.imul(h, m); }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The Java client's keyed partition: `(murmur2(key) & 0x7fffffff) % numPartitions`. */
export function javaPartition(key: Uint8Array, numPartitions: number): number {
  return (murmur2(key) & 0x7fffffff) % numPartitions;
}
