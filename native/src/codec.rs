//! The four Kafka codecs, with the exact framing Kafka clients read and write
//! (docs/protocol.md, Codec framing), and decompression that never allocates past a caller's
//! bound: every input here may come from an untrusted client.

use std::cell::RefCell;
use std::io::{Read, Write};

use crate::Fail;

pub const NONE: u32 = 0;
pub const GZIP: u32 = 1;
pub const SNAPPY: u32 = 2;
pub const LZ4: u32 = 3;
pub const ZSTD: u32 = 4;

/// snappy-java's `SnappyOutputStream` header: 8 magic bytes, int32 BE version 1, int32 BE
/// min-compatible version 1. Java, librdkafka and platformatic all detect it by the 8 magic bytes.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size; readers accept any size, writers stay at the Java default.
const XERIAL_BLOCK: usize = 32 * 1024;
/// Read granularity for the streaming decoders (gzip, lz4, zstd).
const CHUNK: usize = 64 * 1024;

fn limit_error(max: usize) -> Fail {
    Fail::plain("DECOMPRESS_LIMIT", format!("decompressed data exceeds the limit of {max} bytes"))
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Fail {
    Fail::plain("CORRUPT_COMPRESSED", format!("invalid {what} data: {detail}"))
}

// Output scratch, one per thread: codecs write into initialised storage that survives between
// calls, and the caller copies the result out (into a V8 buffer) through `emit`. That saves an
// allocation and a zero-fill per call, which is a fifth of the cost of a 16 KiB batch.
// `len()` is the initialised storage; the written length is returned separately.
thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}
/// Scratch larger than this after a call is released rather than kept for the thread's life.
const SCRATCH_KEEP: usize = 8 << 20;

fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut buf = cell.borrow_mut();
        let r = f(&mut buf);
        if buf.len() > SCRATCH_KEEP {
            *buf = Vec::new();
        }
        r
    })
}

/// Makes at least `n` bytes of `buf` initialised storage.
fn ensure(buf: &mut Vec<u8>, n: usize) {
    if buf.len() < n {
        buf.resize(n, 0);
    }
}

/// Drains a streaming decoder into `buf`, growing it by doubling but never past `max`: once
/// `max` bytes are written, a single further byte means the bound is passed.
fn read_bounded<R: Read>(mut reader: R, buf: &mut Vec<u8>, max: usize, what: &str) -> Result<usize, Fail> {
    let mut len = 0usize;
    loop {
        if len == buf.len().min(max) {
            if len == max {
                let mut probe = [0u8; 1];
                return loop {
                    match reader.read(&mut probe) {
                        Ok(0) => break Ok(len),
                        Ok(_) => break Err(limit_error(max)),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => break Err(corrupt(what, e)),
                    }
                };
            }
            let target = (len + CHUNK).max(len.saturating_mul(2)).min(max);
            ensure(buf, target);
        }
        let end = buf.len().min(max);
        match reader.read(&mut buf[len..end]) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(what, e)),
        }
    }
}

/// Compresses `src` and hands the result to `emit` (which copies it where it must go).
pub fn compress<R>(codec: u32, src: &[u8], level: Option<i32>, emit: impl FnOnce(&[u8]) -> R) -> Result<R, Fail> {
    match codec {
        NONE => Ok(emit(src)),
        GZIP => gzip_compress(src, level).map(|v| emit(&v)),
        SNAPPY => with_scratch(|buf| {
            let n = snappy_compress(src, buf);
            Ok(emit(&buf[..n]))
        }),
        LZ4 => with_scratch(|buf| {
            let n = lz4_compress(src, buf)?;
            Ok(emit(&buf[..n]))
        }),
        ZSTD => with_scratch(|buf| {
            let n = zstd_compress(src, level, buf)?;
            Ok(emit(&buf[..n]))
        }),
        _ => Err(bad_codec(codec)),
    }
}

/// Decompresses at most `max` bytes and hands them to `emit`; past `max` it fails with
/// DECOMPRESS_LIMIT, having allocated no more than `max` for this input.
pub fn decompress<R>(codec: u32, src: &[u8], max: usize, emit: impl FnOnce(&[u8]) -> R) -> Result<R, Fail> {
    if codec == NONE {
        if src.len() > max {
            return Err(limit_error(max));
        }
        return Ok(emit(src));
    }
    if codec > ZSTD {
        return Err(bad_codec(codec));
    }
    with_scratch(|buf| {
        let n = match codec {
            GZIP => read_bounded(flate2::read::MultiGzDecoder::new(src), buf, max, "gzip")?,
            SNAPPY => snappy_decompress(src, buf, max)?,
            LZ4 => lz4_decompress(src, buf, max)?,
            _ => zstd_decompress(src, buf, max)?,
        };
        Ok(emit(&buf[..n]))
    })
}

fn bad_codec(codec: u32) -> Fail {
    Fail::plain("BAD_ARGUMENT", format!("unknown codec {codec} (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)"))
}

fn gzip_compress(src: &[u8], level: Option<i32>) -> Result<Vec<u8>, Fail> {
    // Kafka's compression.gzip.level: 1..9, with -1 meaning zlib's default (6).
    let level = match level {
        None | Some(-1) => flate2::Compression::default(),
        Some(l @ 1..=9) => flate2::Compression::new(l as u32),
        Some(l) => return Err(Fail::plain("BAD_ARGUMENT", format!("gzip level {l} is outside 1..9"))),
    };
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(src.len() / 2 + 64), level);
    enc.write_all(src).map_err(|e| Fail::plain("BAD_ARGUMENT", e.to_string()))?;
    enc.finish().map_err(|e| Fail::plain("BAD_ARGUMENT", e.to_string()))
}

thread_local! {
    static SNAPPY_ENCODER: RefCell<snap::raw::Encoder> = RefCell::new(snap::raw::Encoder::new());
    static ZSTD_COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

/// xerial framing, as snappy-java writes it: header, then `[int32 BE length][raw block]` per
/// 32 KiB of input. Returns the bytes written to `buf`.
fn snappy_compress(src: &[u8], buf: &mut Vec<u8>) -> usize {
    let blocks = src.len().div_ceil(XERIAL_BLOCK);
    ensure(buf, XERIAL_HEADER_LEN + blocks * (4 + snap::raw::max_compress_len(XERIAL_BLOCK.min(src.len()))));
    buf[..8].copy_from_slice(&XERIAL_MAGIC);
    buf[8..12].copy_from_slice(&1i32.to_be_bytes());
    buf[12..16].copy_from_slice(&1i32.to_be_bytes());
    let mut at = XERIAL_HEADER_LEN;
    SNAPPY_ENCODER.with(|enc| {
        let mut enc = enc.borrow_mut();
        for block in src.chunks(XERIAL_BLOCK) {
            let n = enc.compress(block, &mut buf[at + 4..]).expect("the output was sized with max_compress_len");
            buf[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            at += 4 + n;
        }
    });
    at
}

/// Accepts xerial framing (all 8 magic bytes must match: a raw block may itself start with 0x82)
/// and a single raw snappy block, as librdkafka and platformatic write.
fn snappy_decompress(src: &[u8], buf: &mut Vec<u8>, max: usize) -> Result<usize, Fail> {
    let mut dec = snap::raw::Decoder::new();
    if src.len() >= XERIAL_HEADER_LEN && src[..8] == XERIAL_MAGIC {
        // Pass 1: frame the blocks and add up their declared sizes, so the output is allocated
        // once, exactly, and only after the total is known to fit the bound.
        let mut blocks = Vec::new();
        let mut total = 0usize;
        let mut pos = XERIAL_HEADER_LEN;
        while pos < src.len() {
            if src.len() - pos < 4 {
                return Err(corrupt("snappy", format!("truncated block length at byte {pos}")));
            }
            let len = u32::from_be_bytes(src[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 4;
            if len > src.len() - pos {
                return Err(corrupt("snappy", format!("block of {len} bytes at byte {} overruns the input", pos - 4)));
            }
            let block = &src[pos..pos + len];
            pos += len;
            let n = snap::raw::decompress_len(block).map_err(|e| corrupt("snappy", e))?;
            total = total.checked_add(n).filter(|t| *t <= max).ok_or_else(|| limit_error(max))?;
            blocks.push((block, n));
        }
        // Pass 2: each block decodes straight into its slot.
        ensure(buf, total);
        let mut at = 0;
        for (block, n) in blocks {
            let written = dec.decompress(block, &mut buf[at..at + n]).map_err(|e| corrupt("snappy", e))?;
            if written != n {
                return Err(corrupt("snappy", "block shorter than its declared length"));
            }
            at += n;
        }
        return Ok(total);
    }
    let n = snap::raw::decompress_len(src).map_err(|e| corrupt("snappy", e))?;
    if n > max {
        return Err(limit_error(max));
    }
    ensure(buf, n);
    dec.decompress(src, &mut buf[..n]).map_err(|e| corrupt("snappy", e))
}

const LZ4_MAGIC: u32 = 0x184D_2204;
/// FLG 0x60 (version 01, independent blocks, no checksums, no content size), BD 0x40 (64 KiB
/// blocks), HC 0x82 = (xxh32(60 40) >> 8) & 0xff.
const LZ4_HEADER: [u8; 7] = [0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82];
const LZ4_BLOCK: usize = 64 * 1024;
const LZ4_UNCOMPRESSED: u32 = 0x8000_0000;

/// LZ4 frame, written directly with the block API: independent 64 KiB blocks, no checksums.
/// Java's `KafkaLZ4BlockInputStream` rejects linked blocks; librdkafka writes this same header.
fn lz4_compress(src: &[u8], out: &mut Vec<u8>) -> Result<usize, Fail> {
    let blocks = src.len().div_ceil(LZ4_BLOCK);
    let bound = LZ4_HEADER.len() + blocks * (4 + lz4_flex::block::get_maximum_output_size(LZ4_BLOCK.min(src.len()))) + 4;
    ensure(out, bound);
    out[..LZ4_HEADER.len()].copy_from_slice(&LZ4_HEADER);
    let mut at = LZ4_HEADER.len();
    for block in src.chunks(LZ4_BLOCK) {
        let n = lz4_flex::block::compress_into(block, &mut out[at + 4..])
            .map_err(|e| Fail::plain("BAD_ARGUMENT", e.to_string()))?;
        if n < block.len() {
            out[at..at + 4].copy_from_slice(&(n as u32).to_le_bytes());
            at += 4 + n;
        } else {
            // Incompressible: store it, as the reference encoder does.
            out[at..at + 4].copy_from_slice(&(block.len() as u32 | LZ4_UNCOMPRESSED).to_le_bytes());
            out[at + 4..at + 4 + block.len()].copy_from_slice(block);
            at += 4 + block.len();
        }
    }
    out[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
    Ok(at + 4)
}

/// Reads any LZ4 frame (independent or linked blocks, any block size, optional checksums, which
/// are skipped: the batch CRC already covers these bytes), several frames back to back and
/// skippable frames. Blocks decode straight into the output; it grows by doubling, capped at `max`.
fn lz4_decompress(src: &[u8], out: &mut Vec<u8>, max: usize) -> Result<usize, Fail> {
    let bad = |what: &str| corrupt("lz4", what);
    let le32 = |at: usize| -> Result<u32, Fail> {
        src.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).ok_or_else(|| bad("truncated frame"))
    };
    let mut written = 0usize;
    let mut pos = 0usize;
    if src.is_empty() {
        return Err(bad("empty input"));
    }
    while pos < src.len() {
        let magic = le32(pos)?;
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            let len = le32(pos + 4)? as usize;
            pos = (pos + 8).checked_add(len).filter(|p| *p <= src.len()).ok_or_else(|| bad("truncated skippable frame"))?;
            continue;
        }
        if magic != LZ4_MAGIC {
            return Err(bad("bad frame magic"));
        }
        let flg = *src.get(pos + 4).ok_or_else(|| bad("truncated header"))?;
        let bd = *src.get(pos + 5).ok_or_else(|| bad("truncated header"))?;
        if flg >> 6 != 1 || flg & 0x02 != 0 || bd & 0x8F != 0 {
            return Err(bad("unsupported frame descriptor"));
        }
        if flg & 0x01 != 0 {
            return Err(bad("frames with a dictionary id are not supported"));
        }
        let independent = flg & 0x20 != 0;
        let block_checksum = flg & 0x10 != 0;
        let content_checksum = flg & 0x04 != 0;
        let block_max = match (bd >> 4) & 7 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            _ => return Err(bad("bad block size")),
        };
        pos += 6 + if flg & 0x08 != 0 { 8 } else { 0 } + 1; // descriptor, content size, HC
        if pos > src.len() {
            return Err(bad("truncated header"));
        }
        let frame_start = written;
        loop {
            let word = le32(pos)?;
            pos += 4;
            if word == 0 {
                break;
            }
            let size = (word & !LZ4_UNCOMPRESSED) as usize;
            if size > block_max || size > src.len() - pos {
                return Err(bad("block overruns the input or its declared maximum"));
            }
            let block = &src[pos..pos + size];
            pos += size + if block_checksum { 4 } else { 0 };
            let room = block_max.min(max - written);
            if out.len() < written + room {
                ensure(out, (written + room).max(out.len().saturating_mul(2)).min(max));
            }
            if word & LZ4_UNCOMPRESSED != 0 {
                if size > room {
                    return Err(limit_error(max));
                }
                out[written..written + size].copy_from_slice(block);
                written += size;
                continue;
            }
            let (prev, rest) = out.split_at_mut(written);
            let dest = &mut rest[..room];
            let result = if independent {
                lz4_flex::block::decompress_into(block, dest)
            } else {
                // Linked blocks may refer to the 64 KiB before them, within this frame.
                let dict_start = written.saturating_sub(64 << 10).max(frame_start);
                lz4_flex::block::decompress_into_with_dict(block, dest, &prev[dict_start..])
            };
            match result {
                Ok(n) => written += n,
                Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if room < block_max => return Err(limit_error(max)),
                Err(e) => return Err(corrupt("lz4", e)),
            }
        }
        if content_checksum {
            pos += 4;
        }
        if pos > src.len() {
            return Err(bad("truncated checksum"));
        }
    }
    Ok(written)
}

/// zstd frame (with content size). The compression context is kept per thread: creating one
/// costs more than compressing a 16 KiB batch.
fn zstd_compress(src: &[u8], level: Option<i32>, buf: &mut Vec<u8>) -> Result<usize, Fail> {
    let level = level.unwrap_or(zstd::DEFAULT_COMPRESSION_LEVEL);
    if !zstd::compression_level_range().contains(&level) {
        return Err(Fail::plain("BAD_ARGUMENT", format!("zstd level {level} is outside {:?}", zstd::compression_level_range())));
    }
    ensure(buf, zstd::zstd_safe::compress_bound(src.len()));
    ZSTD_COMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let reuse = matches!(&*slot, Some((l, _)) if *l == level);
        if !reuse {
            let c = zstd::bulk::Compressor::new(level).map_err(|e| Fail::plain("BAD_ARGUMENT", e.to_string()))?;
            *slot = Some((level, c));
        }
        let (_, c) = slot.as_mut().unwrap();
        c.compress_to_buffer(src, &mut buf[..]).map_err(|e| Fail::plain("BAD_ARGUMENT", e.to_string()))
    })
}

/// The window a zstd decoder may allocate is capped near the output bound (never below 8 MiB,
/// which covers every default-level encoder), so a hostile header cannot demand a 2 GiB window.
fn zstd_window_log_max(max: usize) -> u32 {
    let needed_log = usize::BITS - max.max(1).saturating_sub(1).leading_zeros();
    needed_log.clamp(23, 27)
}

thread_local! {
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Frames that declare their sizes (ours, the Java client's) decode in one shot into an exact
/// allocation, once the declared total is known to fit the bound. Frames without a content size
/// (librdkafka's) are decoded as a stream, growing the output up to the bound.
fn zstd_decompress(src: &[u8], buf: &mut Vec<u8>, max: usize) -> Result<usize, Fail> {
    let window_log_max = zstd_window_log_max(max);
    if let Ok(Some(size)) = zstd::zstd_safe::find_decompressed_size(src) {
        if size > max as u64 {
            return Err(limit_error(max));
        }
        return ZSTD_DECOMPRESSOR.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| corrupt("zstd", e))?);
            }
            let d = slot.as_mut().unwrap();
            d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(window_log_max)).map_err(|e| corrupt("zstd", e))?;
            let size = size as usize;
            ensure(buf, size);
            let n = d.decompress_to_buffer(src, &mut buf[..size]).map_err(|e| corrupt("zstd", e))?;
            if n != size {
                return Err(corrupt("zstd", "frame shorter than its declared content size"));
            }
            Ok(n)
        });
    }
    let mut dec = zstd::stream::read::Decoder::with_buffer(src).map_err(|e| corrupt("zstd", e))?;
    dec.window_log_max(window_log_max).map_err(|e| corrupt("zstd", e))?;
    read_bounded(dec, buf, max, "zstd")
}
