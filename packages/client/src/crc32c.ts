/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) in JavaScript, slice-by-8. The client may
 * import only @runnel/protocol and @runnel/common, not the native core, and needs a CRC only to
 * re-stamp prebuilt batches (producer id, sequence, timestamps), so ~1 GB/s is enough.
 */
const T = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  for (let s = 1; s < 8; s++) T[s * 256 + n] = (T[(s - 1) * 256 + n]! >>> 8) ^ T[T[(s - 1) * 256 + n]! & 0xff]!;
}

export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = -1;
  let i = start;
  const stop8 = end - ((end - i) & 7);
  while (i < stop8) {
    c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    const hi = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24);
    c = T[1792 + (c & 0xff)]! ^ T[1536 + ((c >>> 8) & 0xff)]! ^ T[1280 + ((c >>> 16) & 0xff)]! ^ T[1024 + (c >>> 24)]!
      ^ T[768 + (hi & 0xff)]! ^ T[512 + ((hi >>> 8) & 0xff)]! ^ T[256 + ((hi >>> 16) & 0xff)]! ^ T[hi >>> 24]!;
    i += 8;
  }
  while (i < end) c = T[(c ^ buf[i++]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
