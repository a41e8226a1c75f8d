//! Counters behind `INFO ratelimit`, cleared by `CONFIG RESETSTAT`.

use redis_module::raw;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::strategy::Strategy;

/// One counter per fact the INFO section reports.
pub struct Counters {
    pub admitted: [AtomicU64; 4],
    pub denied: [AtomicU64; 4],
    pub test_calls: AtomicU64,
    pub stats_calls: AtomicU64,
    pub clear_calls: AtomicU64,
    pub errors: AtomicU64,
    pub keys_written: AtomicU64,
    pub keys_deleted: AtomicU64,
    pub propagated_commands: AtomicU64,
    pub propagated_bytes: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

/// The module's counters (handlers run on Redis' main thread; atomics keep
/// INFO from other contexts safe).
pub static COUNTERS: Counters = Counters {
    admitted: [ZERO; 4],
    denied: [ZERO; 4],
    test_calls: ZERO,
    stats_calls: ZERO,
    clear_calls: ZERO,
    errors: ZERO,
    keys_written: ZERO,
    keys_deleted: ZERO,
    propagated_commands: ZERO,
    propagated_bytes: ZERO,
};

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    add(c, 1);
}

/// Adds `n` to a counter.
pub fn add(c: &AtomicU64, n: u64) {
    // Only commands write counters, one at a time under Redis' global lock:
    // a plain load and store, without the cost of a locked add.
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

fn slot(s: Strategy) -> usize {
    Strategy::ALL.iter().position(|&x| x == s).expect("listed")
}

/// Counts an RL.HIT verdict.
pub fn hit(s: Strategy, allowed: bool) {
    let c = if allowed {
        &COUNTERS.admitted
    } else {
        &COUNTERS.denied
    };
    bump(&c[slot(s)]);
}

fn reset() {
    let c = &COUNTERS;
    for a in c.admitted.iter().chain(c.denied.iter()) {
        a.store(0, Ordering::Relaxed);
    }
    for a in [
        &c.test_calls,
        &c.stats_calls,
        &c.clear_calls,
        &c.errors,
        &c.keys_written,
        &c.keys_deleted,
        &c.propagated_commands,
        &c.propagated_bytes,
    ] {
        a.store(0, Ordering::Relaxed);
    }
}

fn field(ctx: *mut raw::RedisModuleInfoCtx, name: &str, v: u64) {
    let mut n = Vec::with_capacity(name.len() + 1);
    n.extend_from_slice(name.as_bytes());
    n.push(0);
    unsafe { raw::RedisModule_InfoAddFieldULongLong.unwrap()(ctx, n.as_ptr() as *const c_char, v) };
}

fn text_field(ctx: *mut raw::RedisModuleInfoCtx, name: &str, v: &str) {
    let cstr = |t: &str| std::ffi::CString::new(t).expect("no NUL in INFO text");
    let (n, v) = (cstr(name), cstr(v));
    unsafe {
        raw::RedisModule_InfoAddFieldCString.unwrap()(ctx, n.as_ptr(), v.as_ptr().cast_mut())
    };
}

/// The server features the module uses, comma-separated (`none` on a
/// server with nothing beyond Redis 7.0's API), so a user sees what this
/// server gives the module.
pub fn features_text(f: super::server::Features) -> String {
    let names: Vec<&str> = f.names().collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    }
}

/// The `INFO ratelimit` section (fields are prefixed `ratelimit_` by Redis).
pub unsafe extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    let _ = std::panic::catch_unwind(|| {
        let c = &COUNTERS;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        unsafe { raw::RedisModule_InfoAddSection.unwrap()(ctx, c"".as_ptr()) };
        for (i, s) in Strategy::ALL.iter().enumerate() {
            let name = s.name().replace('-', "_");
            field(ctx, &format!("hits_admitted_{name}"), get(&c.admitted[i]));
            field(ctx, &format!("hits_denied_{name}"), get(&c.denied[i]));
        }
        field(ctx, "test_calls", get(&c.test_calls));
        field(ctx, "stats_calls", get(&c.stats_calls));
        field(ctx, "clear_calls", get(&c.clear_calls));
        field(ctx, "errors", get(&c.errors));
        field(ctx, "keys_written", get(&c.keys_written));
        field(ctx, "keys_deleted", get(&c.keys_deleted));
        field(ctx, "propagated_commands", get(&c.propagated_commands));
        field(ctx, "propagated_bytes", get(&c.propagated_bytes));
        text_field(
            ctx,
            "server_features",
            &features_text(super::server::features()),
        );
    });
}

/// A command filter that notices `CONFIG RESETSTAT` (Redis has no module
/// hook for it) and clears the counters with Redis' own statistics.
unsafe extern "C" fn filter(f: *mut raw::RedisModuleCommandFilterCtx) {
    let _ = std::panic::catch_unwind(|| unsafe {
        if raw::RedisModule_CommandFilterArgsCount.unwrap()(f) != 2 {
            return;
        }
        let word = |i: c_int| -> &[u8] {
            let s = raw::RedisModule_CommandFilterArgGet.unwrap()(f, i);
            let mut len = 0usize;
            let p = raw::RedisModule_StringPtrLen.unwrap()(s, &mut len);
            if p.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(p as *const u8, len)
            }
        };
        if word(0).eq_ignore_ascii_case(b"config") && word(1).eq_ignore_ascii_case(b"resetstat") {
            reset();
        }
    });
}

/// Registers the INFO section and the RESETSTAT filter.
pub fn register(ctx: *mut raw::RedisModuleCtx) -> Result<(), String> {
    unsafe {
        if raw::RedisModule_RegisterInfoFunc.unwrap()(ctx, Some(info))
            != raw::REDISMODULE_OK as c_int
        {
            return Err("cannot register the INFO section".into());
        }
        if let Some(reg) = raw::RedisModule_RegisterCommandFilter
            && reg(ctx, Some(filter), 0).is_null()
        {
            return Err("cannot register the command filter".into());
        }
    }
    Ok(())
}
