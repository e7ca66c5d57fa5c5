//! The four Kafka codecs, with the exact framing Kafka clients read and write
//! (shared/reference/protocol.md §3.1), and decompression that never allocates past a caller's
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

/// Appends `chunk` to `out` without letting the allocation grow past `max`: Vec's doubling could
/// otherwise reserve up to 2 × max for an output that ends just under the bound.
fn push_bounded(out: &mut Vec<u8>, chunk: &[u8], max: usize) -> Result<(), Fail> {
    let needed = out.len() + chunk.len();
    if needed > max {
        return Err(limit_error(max));
    }
    if needed > out.capacity() {
        let target = needed.max(out.capacity().saturating_mul(2)).min(max);
        out.reserve_exact(target - out.len());
    }
    out.extend_from_slice(chunk);
    Ok(())
}

/// Drains a streaming decoder into a Vec bounded by `max`.
fn read_bounded<R: Read>(mut reader: R, max: usize, what: &str) -> Result<Vec<u8>, Fail> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => push_bounded(&mut out, &chunk[..n], max)?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(what, e)),
        }
    }
}

pub fn compress(codec: u32, src: &[u8], level: Option<i32>) -> Result<Vec<u8>, Fail> {
    match codec {
        NONE => Ok(src.to_vec()),
        GZIP => gzip_compress(src, level),
        SNAPPY => Ok(snappy_compress(src)),
        LZ4 => lz4_compress(src),
        ZSTD => zstd_compress(src, level),
        _ => Err(bad_codec(codec)),
    }
}

pub fn decompress(codec: u32, src: &[u8], max: usize) -> Result<Vec<u8>, Fail> {
    match codec {
        NONE => {
            if src.len() > max {
                return Err(limit_error(max));
            }
            Ok(src.to_vec())
        }
        GZIP => read_bounded(flate2::read::MultiGzDecoder::new(src), max, "gzip"),
        SNAPPY => snappy_decompress(src, max),
        LZ4 => read_bounded(lz4_flex::frame::FrameDecoder::new(src), max, "lz4"),
        ZSTD => zstd_decompress(src, max),
        _ => Err(bad_codec(codec)),
    }
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
/// 32 KiB of input.
fn snappy_compress(src: &[u8]) -> Vec<u8> {
    let blocks = src.len().div_ceil(XERIAL_BLOCK);
    let mut out = Vec::with_capacity(
        XERIAL_HEADER_LEN + blocks * (4 + snap::raw::max_compress_len(XERIAL_BLOCK.min(src.len()))),
    );
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    SNAPPY_ENCODER.with(|enc| {
        let mut enc = enc.borrow_mut();
        for block in src.chunks(XERIAL_BLOCK) {
            let len_at = out.len();
            let max = snap::raw::max_compress_len(block.len());
            out.resize(len_at + 4 + max, 0);
            let n = enc
                .compress(block, &mut out[len_at + 4..])
                .expect("the output was sized with max_compress_len");
            out[len_at..len_at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            out.truncate(len_at + 4 + n);
        }
    });
    out
}

/// Accepts xerial framing (all 8 magic bytes must match: a raw block may itself start with 0x82)
/// and a single raw snappy block, as librdkafka and platformatic write.
fn snappy_decompress(src: &[u8], max: usize) -> Result<Vec<u8>, Fail> {
    let mut dec = snap::raw::Decoder::new();
    if src.len() >= XERIAL_HEADER_LEN && src[..8] == XERIAL_MAGIC {
        let mut out = Vec::new();
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
            if out.len() + n > max {
                return Err(limit_error(max));
            }
            let at = out.len();
            // Exact growth: the block's declared size was checked against the bound above.
            out.reserve_exact(n);
            out.resize(at + n, 0);
            let written = dec.decompress(block, &mut out[at..]).map_err(|e| corrupt("snappy", e))?;
            out.truncate(at + written);
        }
        return Ok(out);
    }
    let n = snap::raw::decompress_len(src).map_err(|e| corrupt("snappy", e))?;
    if n > max {
        return Err(limit_error(max));
    }
    let mut out = vec![0u8; n];
    let written = dec.decompress(src, &mut out).map_err(|e| corrupt("snappy", e))?;
    out.truncate(written);
    Ok(out)
}

/// LZ4 frame: independent 64 KiB blocks, no checksums, no content size. Java's
/// `KafkaLZ4BlockInputStream` rejects linked blocks.
fn lz4_compress(src: &[u8]) -> Result<Vec<u8>, Fail> {
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max64KB)
        .block_mode(lz4_flex::frame::BlockMode::Independent);
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(
        info,
        Vec::with_capacity(lz4_flex::block::get_maximum_output_size(src.len()) + 64),
    );
    enc.write_all(src).map_err(|e| Fail::plain("BAD_ARGUMENT", e.to_string()))?;
    enc.finish().map_err(|e| Fail::plain("BAD_ARGUMENT", e.to_string()))
}

/// zstd frame (with content size). The compression context is kept per thread: creating one
/// costs more than compressing a 16 KiB batch.
fn zstd_compress(src: &[u8], level: Option<i32>) -> Result<Vec<u8>, Fail> {
    let level = level.unwrap_or(zstd::DEFAULT_COMPRESSION_LEVEL);
    if !zstd::compression_level_range().contains(&level) {
        return Err(Fail::plain("BAD_ARGUMENT", format!("zstd level {level} is outside {:?}", zstd::compression_level_range())));
    }
    ZSTD_COMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let reuse = matches!(&*slot, Some((l, _)) if *l == level);
        if !reuse {
            let c = zstd::bulk::Compressor::new(level).map_err(|e| Fail::plain("BAD_ARGUMENT", e.to_string()))?;
            *slot = Some((level, c));
        }
        let (_, c) = slot.as_mut().unwrap();
        c.compress(src).map_err(|e| Fail::plain("BAD_ARGUMENT", e.to_string()))
    })
}

/// Streaming decode, because frames may lack a content size (librdkafka writes them so). The
/// window the decoder may allocate is capped near the output bound (never below 8 MiB, which
/// covers every default-level encoder), so a hostile header cannot demand a 2 GiB window.
fn zstd_decompress(src: &[u8], max: usize) -> Result<Vec<u8>, Fail> {
    let needed_log = usize::BITS - max.max(1).saturating_sub(1).leading_zeros();
    let window_log_max = needed_log.clamp(23, 27);
    let mut dec = zstd::stream::read::Decoder::with_buffer(src).map_err(|e| corrupt("zstd", e))?;
    dec.window_log_max(window_log_max).map_err(|e| corrupt("zstd", e))?;
    read_bounded(dec, max, "zstd")
}
