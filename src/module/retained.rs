//! Strings the module keeps between calls so that propagating an effect
//! creates as few objects as the module API allows: `RedisModule_Replicate`
//! takes `RedisModuleString`s by reference (a refcount increment), while
//! every `c`, `b` or `l` argument is a fresh allocation and free per call.
//!
//! Only the main thread runs commands; the atomics just make the statics
//! safe Rust, they never see contention.

use redis_module::raw;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::Relaxed};

type RString = *mut raw::RedisModuleString;

/// The literal `PXAT`, created once at load.
static PXAT: AtomicPtr<raw::RedisModuleString> = AtomicPtr::new(null_mut());

/// The last expiry instant propagated, and its decimal string: reused by
/// consecutive writes that end at the same instant (hits on one key within
/// a window, or in the same millisecond); otherwise replaced, which costs
/// what a per-call argument would (one string created, one freed).
static LAST_AT: AtomicU64 = AtomicU64::new(u64::MAX);
static LAST_AT_STR: AtomicPtr<raw::RedisModuleString> = AtomicPtr::new(null_mut());

fn create(bytes: &[u8]) -> RString {
    unsafe {
        raw::RedisModule_CreateString.unwrap()(null_mut(), bytes.as_ptr().cast(), bytes.len())
    }
}

/// Creates the constant strings; called once from the module's load.
pub fn init() {
    if PXAT.load(Relaxed).is_null() {
        PXAT.store(create(b"PXAT"), Relaxed);
    }
}

/// The retained `PXAT` word (created on first use if `init` did not run).
pub fn pxat() -> RString {
    init();
    PXAT.load(Relaxed)
}

/// The decimal string of `at`, shared with the previous call when equal.
/// A propagated command holds its own reference, so replacing the cached
/// string never frees one still queued for the AOF or replicas.
pub fn instant(at: u64) -> RString {
    let cached = LAST_AT_STR.load(Relaxed);
    if !cached.is_null() && LAST_AT.load(Relaxed) == at {
        return cached;
    }
    let s = unsafe { raw::RedisModule_CreateStringFromLongLong.unwrap()(null_mut(), at as i64) };
    if !cached.is_null() {
        unsafe { raw::RedisModule_FreeString.unwrap()(null_mut(), cached) };
    }
    LAST_AT_STR.store(s, Relaxed);
    LAST_AT.store(at, Relaxed);
    s
}
