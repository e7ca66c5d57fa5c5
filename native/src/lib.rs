//! N-API surface of Runnel's native core. Inputs are borrowed typed-array slices (never copied),
//! and every call does a whole payload's worth of work per crossing: per batch results, never
//! per record. Failures travel as `"CODE|batchIndex|position|message"` or `"CODE|message"`
//! strings that the TypeScript facade (src/index.ts) turns into typed errors.

#![deny(clippy::all)]

mod batch;
mod codec;

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

#[napi(object)]
pub struct BatchInfo {
    pub position: i64,
    pub size: i64,
    pub base_offset: BigInt,
    pub last_offset_delta: i32,
    pub record_count: i32,
    pub partition_leader_epoch: i32,
    pub attributes: u32,
    pub codec: u32,
    pub timestamp_type: u32,
    pub is_transactional: bool,
    pub is_control: bool,
    pub first_timestamp: BigInt,
    pub max_timestamp: BigInt,
    pub producer_id: BigInt,
    pub producer_epoch: i32,
    pub base_sequence: i32,
}

impl From<&batch::Header> for BatchInfo {
    fn from(h: &batch::Header) -> Self {
        BatchInfo {
            position: h.position as i64,
            size: h.size as i64,
            base_offset: BigInt::from(h.base_offset),
            last_offset_delta: h.last_offset_delta,
            record_count: h.record_count,
            partition_leader_epoch: h.partition_leader_epoch,
            attributes: h.attributes as u32,
            codec: h.codec(),
            timestamp_type: ((h.attributes >> 3) & 1) as u32,
            is_transactional: h.attributes & 0x10 != 0,
            is_control: h.is_control(),
            first_timestamp: BigInt::from(h.first_timestamp),
            max_timestamp: BigInt::from(h.max_timestamp),
            producer_id: BigInt::from(h.producer_id),
            producer_epoch: h.producer_epoch as i32,
            base_sequence: h.base_sequence,
        }
    }
}

#[napi]
pub fn validate_batches(payload: &[u8]) -> Result<Vec<BatchInfo>> {
    Ok(batch::validate(payload)?.iter().map(BatchInfo::from).collect())
}

#[napi]
pub fn assign_offsets(mut payload: Uint8ArraySlice, base_offset: BigInt, leader_epoch: i32) -> Result<()> {
    let base = to_i64("baseOffset", &base_offset)?;
    // SAFETY: the call is synchronous on the JS thread, so nothing else touches the bytes meanwhile.
    let payload = unsafe { payload.as_mut() };
    Ok(batch::assign(payload, base, leader_epoch)?)
}

#[napi]
pub fn validate_and_assign(mut payload: Uint8ArraySlice, base_offset: BigInt, leader_epoch: i32) -> Result<Vec<BatchInfo>> {
    let base = to_i64("baseOffset", &base_offset)?;
    // SAFETY: as in assign_offsets.
    let payload = unsafe { payload.as_mut() };
    let mut headers = batch::validate(payload)?;
    batch::write_offsets(payload, &mut headers, base, leader_epoch);
    Ok(headers.iter().map(BatchInfo::from).collect())
}

#[napi(object)]
pub struct ScanResult {
    pub valid_bytes: i64,
    pub batches: Vec<BatchInfo>,
    pub stop_reason: Option<String>,
}

#[napi]
pub fn scan_log(buf: &[u8], start_position: Option<f64>) -> Result<ScanResult> {
    let start = to_size("startPosition", start_position.unwrap_or(0.0))?;
    let s = batch::scan(buf, start);
    Ok(ScanResult {
        valid_bytes: s.valid_bytes as i64,
        batches: s.batches.iter().map(BatchInfo::from).collect(),
        stop_reason: s.stop.map(str::to_owned),
    })
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
