//! N-API surface of Runnel's native core. Inputs are borrowed typed-array slices (never copied),
//! and every call does a whole payload's worth of work per crossing: per batch results, never
//! per record. Failures travel as `"CODE|batchIndex|position|message"` or `"CODE|message"`
//! strings that the TypeScript facade (src/index.ts) turns into typed errors.

#![deny(clippy::all)]

mod batch;
mod codec;
mod lock;

use napi::bindgen_prelude::{BigInt, BufferSlice, Uint8ArraySlice};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;

/// A failure with a code the facade knows; `at` is `(batchIndex, position)` for batch errors.
#[derive(Debug)]
pub struct Fail {
    pub code: &'static str,
    pub at: Option<(usize, usize)>,
    pub message: String,
}

impl Fail {
    pub fn plain(code: &'static str, message: String) -> Self {
        Fail { code, at: None, message }
    }
    pub fn batch(code: &'static str, index: usize, position: usize, message: String) -> Self {
        Fail { code, at: Some((index, position)), message }
    }
}

impl From<Fail> for Error {
    fn from(f: Fail) -> Self {
        let reason = match f.at {
            Some((i, p)) => format!("{}|{i}|{p}|batch {i} at byte {p}: {}", f.code, f.message),
            None => format!("{}|{}", f.code, f.message),
        };
        Error::new(Status::GenericFailure, reason)
    }
}

fn bad_argument(message: String) -> Error {
    Fail::plain("BAD_ARGUMENT", message).into()
}

/// JS numbers for sizes: must be a non-negative integer.
fn to_size(name: &str, v: f64) -> Result<usize> {
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0) {
        return Err(bad_argument(format!("{name} must be a non-negative integer, got {v}")));
    }
    Ok(v as usize)
}

fn to_i64(name: &str, v: &BigInt) -> Result<i64> {
    let (value, lossless) = v.get_i64();
    if !lossless {
        return Err(bad_argument(format!("{name} does not fit in int64")));
    }
    Ok(value)
}

#[napi(js_name = "crc32c")]
pub fn crc32c_js(data: &[u8], seed: Option<u32>) -> u32 {
    crc32c::crc32c_append(seed.unwrap_or(0), data)
}

/// Results are copied into a V8-owned Buffer. Handing V8 the Rust allocation instead (an
/// external buffer) costs more than the copy: V8 cannot free external memory until a GC runs the
/// finalizer, so a tight produce loop piles up external memory and triggers GC after GC
/// (measured: 16 KiB calls went from ~100 µs to a few µs). V8-owned buffers can also be
/// transferred to worker threads, which external ones cannot.
fn to_js<'env>(env: &'env Env, data: &[u8]) -> Result<BufferSlice<'env>> {
    BufferSlice::copy_from(env, data)
}

#[napi(ts_return_type = "Buffer")]
pub fn compress<'env>(env: &'env Env, codec: u32, src: &[u8], level: Option<i32>) -> Result<BufferSlice<'env>> {
    codec::compress(codec, src, level, |out| to_js(env, out))?
}

#[napi(ts_return_type = "Buffer")]
pub fn decompress<'env>(env: &'env Env, codec: u32, src: &[u8], max_output: f64) -> Result<BufferSlice<'env>> {
    let max = to_size("maxOutput", max_output)?;
    codec::decompress(codec, src, max, |out| to_js(env, out))?
}

/// Batch headers cross to JS as numbers in a caller-owned scratch buffer rather than as one JS
/// object per batch: building an object with 16 named properties (4 of them BigInts) through
/// N-API costs several µs, more than validating a small batch; the facade builds the objects in
/// JS instead. Layout, 8-byte native-endian slots: [0] batch count, [1] stop code (scanLog), [2]
/// valid bytes (scanLog), then HEADER_SLOTS slots per batch (see `write_header`). Slots marked
/// i64 are read through a BigInt64Array, the others through a Float64Array.
const PREFIX_SLOTS: usize = 3;
const HEADER_SLOTS: usize = 12;
/// scanLog stop codes in slot 1: -1 clean end, -2 scratch full (call again from slot 2), else an
/// index into STOP_CODES.
const STOP_CODES: [&str; 10] = [
    "EMPTY", "TRUNCATED", "BAD_LENGTH", "BAD_MAGIC", "CORRUPT_CRC", "RECORD_COUNT_MISMATCH",
    "BAD_ATTRIBUTES", "INVALID_RECORD", "DECOMPRESS_LIMIT", "CORRUPT_COMPRESSED",
];

fn put_f64(out: &mut [u8], slot: usize, v: f64) {
    out[slot * 8..slot * 8 + 8].copy_from_slice(&v.to_ne_bytes());
}
fn put_i64(out: &mut [u8], slot: usize, v: i64) {
    out[slot * 8..slot * 8 + 8].copy_from_slice(&v.to_ne_bytes());
}

fn capacity(out: &[u8]) -> Result<usize> {
    if out.len() < PREFIX_SLOTS * 8 {
        return Err(bad_argument("scratch buffer too small".into()));
    }
    Ok((out.len() / 8 - PREFIX_SLOTS) / HEADER_SLOTS)
}

/// Writes up to the scratch's capacity and the total count; the facade grows and retries when
/// the count exceeds what fit.
fn write_headers(out: &mut [u8], headers: &[batch::Header]) -> Result<u32> {
    let cap = capacity(out)?;
    put_f64(out, 0, headers.len() as f64);
    for (i, h) in headers.iter().take(cap).enumerate() {
        let s = PREFIX_SLOTS + i * HEADER_SLOTS;
        put_f64(out, s, h.position as f64);
        put_f64(out, s + 1, h.size as f64);
        put_i64(out, s + 2, h.base_offset);
        put_f64(out, s + 3, h.last_offset_delta as f64);
        put_f64(out, s + 4, h.record_count as f64);
        put_f64(out, s + 5, h.partition_leader_epoch as f64);
        put_f64(out, s + 6, h.attributes as f64);
        put_i64(out, s + 7, h.first_timestamp);
        put_i64(out, s + 8, h.max_timestamp);
        put_i64(out, s + 9, h.producer_id);
        put_f64(out, s + 10, h.producer_epoch as f64);
        put_f64(out, s + 11, h.base_sequence as f64);
    }
    Ok(headers.len() as u32)
}

#[napi]
pub fn validate_batches_into(payload: &[u8], mut out: Uint8ArraySlice) -> Result<u32> {
    let headers = batch::validate(payload)?;
    // SAFETY: synchronous call on the JS thread; the scratch is the facade's own.
    write_headers(unsafe { out.as_mut() }, &headers)
}

#[napi]
pub fn assign_offsets(mut payload: Uint8ArraySlice, base_offset: BigInt, leader_epoch: i32) -> Result<()> {
    let base = to_i64("baseOffset", &base_offset)?;
    // SAFETY: the call is synchronous on the JS thread, so nothing else touches the bytes meanwhile.
    let payload = unsafe { payload.as_mut() };
    Ok(batch::assign(payload, base, leader_epoch)?)
}

/// Idempotent for the same arguments, so the facade may call it again with a larger scratch.
#[napi]
pub fn validate_and_assign_into(mut payload: Uint8ArraySlice, base_offset: BigInt, leader_epoch: i32, mut out: Uint8ArraySlice) -> Result<u32> {
    let base = to_i64("baseOffset", &base_offset)?;
    // SAFETY: as in assign_offsets.
    let payload = unsafe { payload.as_mut() };
    let mut headers = batch::validate(payload)?;
    batch::write_offsets(payload, &mut headers, base, leader_epoch);
    write_headers(unsafe { out.as_mut() }, &headers)
}

/// Scans from `start_position` until a bad batch, the end, or the scratch is full (stop code -2,
/// to be resumed from the valid-bytes slot).
#[napi]
pub fn scan_log_into(buf: &[u8], start_position: f64, mut out: Uint8ArraySlice) -> Result<u32> {
    let start = to_size("startPosition", start_position)?;
    let out = unsafe { out.as_mut() };
    let cap = capacity(out)?;
    let s = batch::scan(buf, start, cap);
    let stop = match (s.stop, s.full) {
        (_, true) => -2.0,
        (None, _) => -1.0,
        (Some(code), _) => STOP_CODES.iter().position(|c| *c == code).map_or(-1.0, |i| i as f64),
    };
    write_headers(out, &s.batches)?;
    put_f64(out, 1, stop);
    put_f64(out, 2, s.valid_bytes as f64);
    Ok(s.batches.len() as u32)
}

#[napi(object)]
pub struct RecordsInfo {
    pub record_count: i32,
    pub uncompressed_bytes: i64,
}

#[napi]
pub fn validate_records(batch: &[u8], max_uncompressed_bytes: f64) -> Result<RecordsInfo> {
    let max = to_size("maxUncompressedBytes", max_uncompressed_bytes)?;
    let (record_count, bytes) = batch::validate_records(batch, max)?;
    Ok(RecordsInfo { record_count, uncompressed_bytes: bytes as i64 })
}

/// Locks `path` exclusively (flock, non-blocking) and returns the fd holding the lock; close it
/// (fs.closeSync) to release. Failures: `LOCKED|…` when held elsewhere, `IO|…` otherwise.
#[napi]
pub fn lock_file(path: String) -> Result<i32> {
    Ok(lock::lock_file(&path)?)
}
