/**
 * Which `__consumer_offsets` partition holds a group: Kafka's
 * `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`, so a group lands on the same
 * partition as it would in Kafka. `String.hashCode` runs over UTF-16 code units with int32
 * wrap-around, and `Utils.abs` maps Integer.MIN_VALUE to 0 (not to itself, as Math.abs would).
 */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

export function partitionForGroup(groupId: string, numPartitions: number): number {
  const h = javaStringHashCode(groupId);
  const abs = h === -2147483648 ? 0 : Math.abs(h);
  return abs % numPartitions;
}
