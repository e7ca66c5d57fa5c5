//! Record batch v2 (magic 2) framing, validation and offset assignment over borrowed bytes.
//!
//! Layout (big-endian; docs/protocol.md, Record batch v2):
//! ```text
//!  0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8 | 17 crc u32
//! 21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64
//! 43 producerId i64 | 51 producerEpoch i16 | 53 baseSequence i32 | 57 recordCount i32 | 61 records
//! ```
//! The CRC-32C covers bytes [21, end): rewriting baseOffset or partitionLeaderEpoch keeps it valid.

use crate::codec;
use crate::Fail;

pub const HEADER_LEN: usize = 61;
/// baseOffset + batchLength: the part of the header outside `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;
/// attributes bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control, 6 delete horizon.
const ATTR_KNOWN_BITS: u16 = 0x7f;
const ATTR_CONTROL: u16 = 0x20;
/// Smallest possible record: 7 one-byte varints/fields (length, attributes, timestampDelta,
/// offsetDelta, keyLength, valueLength, headerCount).
const MIN_RECORD_LEN: usize = 7;

#[derive(Clone, Debug)]
pub struct Header {
    pub position: usize,
    pub size: usize,
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub attributes: u16,
    pub last_offset_delta: i32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl Header {
    pub fn codec(&self) -> u32 {
        (self.attributes & 7) as u32
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
}

#[inline]
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
#[inline]
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// How strictly the offset fields are checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Batches from a producer: `recordCount == lastOffsetDelta + 1 >= 1`, as Kafka requires.
    Produce,
    /// Batches already in a log: compaction may leave fewer records than the offset span
    /// (even zero), so only `0 <= recordCount <= lastOffsetDelta + 1` holds.
    Log,
}

/// Only the length fields: enough to step to the next batch.
fn frame(buf: &[u8], pos: usize, index: usize) -> Result<usize, Fail> {
    let rest = buf.len() - pos;
    if rest < LOG_OVERHEAD {
        return Err(Fail::batch("TRUNCATED", index, pos, format!("{rest} bytes left, a batch header needs {HEADER_LEN}")));
    }
    let batch_length = be_i32(buf, pos + 8);
    if batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(Fail::batch("BAD_LENGTH", index, pos, format!("batchLength {batch_length} is smaller than the {} byte header", HEADER_LEN - LOG_OVERHEAD)));
    }
    let size = batch_length as usize + LOG_OVERHEAD;
    if size > rest {
        return Err(Fail::batch("TRUNCATED", index, pos, format!("batch of {size} bytes but only {rest} remain")));
    }
    Ok(size)
}

/// Parses and checks one batch header at `pos`: length, magic, CRC, attributes, counts.
pub fn check_batch(buf: &[u8], pos: usize, index: usize, mode: Mode) -> Result<Header, Fail> {
    let size = frame(buf, pos, index)?;
    let b = &buf[pos..pos + size];
    let magic = b[16] as i8;
    if magic != 2 {
        return Err(Fail::batch("BAD_MAGIC", index, pos, format!("magic {magic}, only 2 is supported")));
    }
    let stored = u32::from_be_bytes(b[17..21].try_into().unwrap());
    let computed = crc32c::crc32c(&b[CRC_START..]);
    if stored != computed {
        return Err(Fail::batch("CORRUPT_CRC", index, pos, format!("stored CRC {stored:#010x}, computed {computed:#010x}")));
    }
    let h = Header {
        position: pos,
        size,
        base_offset: be_i64(b, 0),
        partition_leader_epoch: be_i32(b, 12),
        attributes: be_i16(b, 21) as u16,
        last_offset_delta: be_i32(b, 23),
        first_timestamp: be_i64(b, 27),
        max_timestamp: be_i64(b, 35),
        producer_id: be_i64(b, 43),
        producer_epoch: be_i16(b, 51),
        base_sequence: be_i32(b, 53),
        record_count: be_i32(b, 57),
    };
    if h.attributes & !ATTR_KNOWN_BITS != 0 || h.codec() > codec::ZSTD {
        return Err(Fail::batch("BAD_ATTRIBUTES", index, pos, format!("attributes {:#06x}: codec {} or unused bits set", h.attributes, h.codec())));
    }
    let (count, delta) = (h.record_count, h.last_offset_delta);
    let counts_ok = match mode {
        Mode::Produce => count >= 1 && delta >= 0 && count as i64 == delta as i64 + 1,
        Mode::Log => count >= 0 && delta >= 0 && count as i64 <= delta as i64 + 1,
    };
    // Uncompressed records can be counted against the bytes: each takes at least 7.
    let fits = h.codec() != codec::NONE || (count.max(0) as usize) * MIN_RECORD_LEN <= size - HEADER_LEN;
    if !counts_ok || !fits {
        return Err(Fail::batch("RECORD_COUNT_MISMATCH", index, pos, format!("recordCount {count} with lastOffsetDelta {delta} in {size} bytes")));
    }
    if mode == Mode::Produce && h.is_control() && count != 1 {
        return Err(Fail::batch("RECORD_COUNT_MISMATCH", index, pos, format!("control batch with {count} records")));
    }
    Ok(h)
}

/// Every batch of a produce payload, back to back, no trailing bytes.
pub fn validate(buf: &[u8]) -> Result<Vec<Header>, Fail> {
    if buf.is_empty() {
        return Err(Fail::batch("EMPTY", 0, 0, "no record batch".into()));
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let h = check_batch(buf, pos, out.len(), Mode::Produce)?;
        pos += h.size;
        out.push(h);
    }
    Ok(out)
}

/// Rewrites baseOffset and partitionLeaderEpoch in place for already framed batches.
pub fn write_offsets(buf: &mut [u8], headers: &mut [Header], base_offset: i64, leader_epoch: i32) {
    let mut next = base_offset;
    for h in headers.iter_mut() {
        h.base_offset = next;
        h.partition_leader_epoch = leader_epoch;
        buf[h.position..h.position + 8].copy_from_slice(&next.to_be_bytes());
        buf[h.position + 12..h.position + 16].copy_from_slice(&leader_epoch.to_be_bytes());
        next = next.wrapping_add(h.last_offset_delta as i64 + 1);
    }
}

/// Frames the batches (lengths only, nothing else checked) then assigns offsets; on a framing
/// error nothing is written.
pub fn assign(buf: &mut [u8], base_offset: i64, leader_epoch: i32) -> Result<(), Fail> {
    if buf.is_empty() {
        return Err(Fail::batch("EMPTY", 0, 0, "no record batch".into()));
    }
    let mut spans = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let size = frame(buf, pos, spans.len())?;
        spans.push((pos, be_i32(buf, pos + 23)));
        pos += size;
    }
    let mut next = base_offset;
    for (p, delta) in spans {
        buf[p..p + 8].copy_from_slice(&next.to_be_bytes());
        buf[p + 12..p + 16].copy_from_slice(&leader_epoch.to_be_bytes());
        next = next.wrapping_add(delta as i64 + 1);
    }
    Ok(())
}

pub struct Scan {
    pub valid_bytes: usize,
    pub batches: Vec<Header>,
    pub stop: Option<&'static str>,
    /// `max_batches` were read before the end: resume from `valid_bytes`.
    pub full: bool,
}

/// Walks a log from `start` and stops at the first batch that is partial or invalid, or after
/// `max_batches`.
pub fn scan(buf: &[u8], start: usize, max_batches: usize) -> Scan {
    let mut batches = Vec::new();
    let mut pos = start.min(buf.len());
    let mut stop = None;
    let mut full = false;
    while pos < buf.len() {
        if batches.len() == max_batches {
            full = true;
            break;
        }
        match check_batch(buf, pos, batches.len(), Mode::Log) {
            Ok(h) => {
                pos += h.size;
                batches.push(h);
            }
            Err(f) => {
                stop = Some(f.code);
                break;
            }
        }
    }
    Scan { valid_bytes: pos, batches, stop, full }
}

/// Zigzag varint reader over a bounded slice (Protobuf style, as Kafka's ByteUtils).
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varlong(&mut self, max_bytes: usize) -> Option<i64> {
        let mut raw: u64 = 0;
        for i in 0..max_bytes {
            let byte = *self.b.get(self.pos)?;
            self.pos += 1;
            raw |= ((byte & 0x7f) as u64) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        None
    }
    fn varint(&mut self) -> Option<i32> {
        let v = self.varlong(5)?;
        i32::try_from(v).ok()
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        if n > self.b.len() - self.pos {
            return None;
        }
        self.pos += n;
        Some(())
    }
    /// A nullable byte field: length varint (-1 = null) then the bytes.
    fn bytes_field(&mut self, nullable: bool) -> Option<usize> {
        let len = self.varint()?;
        if len == -1 && nullable {
            return Some(0);
        }
        let len = usize::try_from(len).ok()?;
        self.skip(len)?;
        Some(len)
    }
}

/// Walks the records of one decompressed batch body.
fn walk_records(records: &[u8], h: &Header, index: usize) -> Result<(), Fail> {
    let bad = |i: usize, at: usize, what: &str| {
        Fail::batch("INVALID_RECORD", index, h.position, format!("record {i} at byte {at} of the records: {what}"))
    };
    let exact_deltas = h.record_count as i64 == h.last_offset_delta as i64 + 1;
    let mut c = Cursor { b: records, pos: 0 };
    let mut prev_delta: i64 = -1;
    for i in 0..h.record_count.max(0) as usize {
        let at = c.pos;
        if at == records.len() {
            return Err(Fail::batch("RECORD_COUNT_MISMATCH", index, h.position, format!("header says {} records, found {i}", h.record_count)));
        }
        let len = c.varint().ok_or_else(|| bad(i, at, "bad length varint"))?;
        let len = usize::try_from(len).map_err(|_| bad(i, at, "negative length"))?;
        if len > records.len() - c.pos {
            return Err(bad(i, at, "length overruns the batch"));
        }
        let body = &records[c.pos..c.pos + len];
        c.pos += len;
        let mut r = Cursor { b: body, pos: 1 };
        if body.is_empty() {
            return Err(bad(i, at, "empty record"));
        }
        let ts_delta = r.varlong(10).ok_or_else(|| bad(i, at, "bad timestampDelta"))?;
        if h.first_timestamp.checked_add(ts_delta).is_none() {
            return Err(bad(i, at, "timestamp overflows int64"));
        }
        let offset_delta = r.varint().ok_or_else(|| bad(i, at, "bad offsetDelta"))? as i64;
        let delta_ok = if exact_deltas {
            offset_delta == i as i64
        } else {
            offset_delta > prev_delta && offset_delta <= h.last_offset_delta as i64
        };
        if !delta_ok {
            return Err(bad(i, at, &format!("offsetDelta {offset_delta}")));
        }
        prev_delta = offset_delta;
        let key_len = r.bytes_field(true).ok_or_else(|| bad(i, at, "bad key"))?;
        r.bytes_field(true).ok_or_else(|| bad(i, at, "bad value"))?;
        let headers = r.varint().ok_or_else(|| bad(i, at, "bad header count"))?;
        if headers < 0 {
            return Err(bad(i, at, "negative header count"));
        }
        for _ in 0..headers {
            r.bytes_field(false).ok_or_else(|| bad(i, at, "bad header key"))?;
            r.bytes_field(true).ok_or_else(|| bad(i, at, "bad header value"))?;
        }
        if r.pos != body.len() {
            return Err(bad(i, at, "length does not match its fields"));
        }
        if h.is_control() && key_len < 4 {
            return Err(bad(i, at, "control record key shorter than 4 bytes"));
        }
    }
    if c.pos != records.len() {
        return Err(Fail::batch("INVALID_RECORD", index, h.position, format!("{} trailing bytes after {} records", records.len() - c.pos, h.record_count)));
    }
    Ok(())
}

/// Deep check of exactly one batch: header, then every record's framing after decompression.
pub fn validate_records(buf: &[u8], max_uncompressed: usize) -> Result<(i32, usize), Fail> {
    if buf.is_empty() {
        return Err(Fail::batch("EMPTY", 0, 0, "no record batch".into()));
    }
    let h = check_batch(buf, 0, 0, Mode::Log)?;
    if h.size != buf.len() {
        return Err(Fail::batch("BAD_LENGTH", 0, 0, format!("{} bytes after the batch", buf.len() - h.size)));
    }
    if h.is_control() && h.record_count != 1 {
        return Err(Fail::batch("RECORD_COUNT_MISMATCH", 0, 0, format!("control batch with {} records", h.record_count)));
    }
    let body = &buf[HEADER_LEN..];
    if h.codec() == codec::NONE {
        if body.len() > max_uncompressed {
            return Err(Fail::batch("DECOMPRESS_LIMIT", 0, 0, format!("{} record bytes exceed the limit of {max_uncompressed}", body.len())));
        }
        walk_records(body, &h, 0)?;
        return Ok((h.record_count, body.len()));
    }
    let walked = codec::decompress(h.codec(), body, max_uncompressed, |records| walk_records(records, &h, 0).map(|_| records.len()))
        .map_err(|f| Fail::batch(f.code, 0, 0, f.message))?;
    Ok((h.record_count, walked?))
}
