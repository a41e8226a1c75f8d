//! Writing replies with the raw API (no intermediate allocation).

use redis_module::raw;
use std::os::raw::c_char;

use crate::decision::Verdict;
use crate::engine::LimitStats;

/// Replies with an error; `msg` must start with its code (`ERR `, ...).
pub fn error(ctx: *mut raw::RedisModuleCtx, msg: &str) {
    super::info_counters::bump(&super::info_counters::COUNTERS.errors);
    // Interior NULs cannot occur in our messages except via echoed user
    // bytes; replace them so the reply is never cut short.
    let mut bytes: Vec<u8> = msg
        .bytes()
        .map(|b| {
            if b == 0 || b == b'\r' || b == b'\n' {
                b' '
            } else {
                b
            }
        })
        .collect();
    bytes.push(0);
    unsafe { raw::RedisModule_ReplyWithError.unwrap()(ctx, bytes.as_ptr() as *const c_char) };
}

/// The contract's WRONGTYPE error.
pub fn wrongtype(ctx: *mut raw::RedisModuleCtx) {
    error(
        ctx,
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
}

fn int(ctx: *mut raw::RedisModuleCtx, v: i64) {
    unsafe { raw::RedisModule_ReplyWithLongLong.unwrap()(ctx, v) };
}

fn bulk(ctx: *mut raw::RedisModuleCtx, s: &str) {
    unsafe {
        raw::RedisModule_ReplyWithStringBuffer.unwrap()(ctx, s.as_ptr() as *const c_char, s.len())
    };
}

/// Replies with a plain integer.
pub fn integer(ctx: *mut raw::RedisModuleCtx, v: i64) {
    int(ctx, v);
}

/// The five integers of RL.HIT / RL.TEST.
pub fn hit(ctx: *mut raw::RedisModuleCtx, r: Verdict) {
    five(ctx, r.to_array());
}

/// Five integers (RL.HIT's shape; RL.ACQUIRE's reply).
pub fn five(ctx: *mut raw::RedisModuleCtx, values: [i64; 5]) {
    unsafe { raw::RedisModule_ReplyWithArray.unwrap()(ctx, 5) };
    for v in values {
        int(ctx, v);
    }
}

/// RL.STATS: one map per limit (a flat array under RESP2).
pub fn stats(ctx: *mut raw::RedisModuleCtx, items: &[LimitStats]) {
    unsafe { raw::RedisModule_ReplyWithArray.unwrap()(ctx, items.len() as std::os::raw::c_long) };
    for s in items {
        match unsafe { raw::RedisModule_ReplyWithMap } {
            Some(map) => unsafe { map(ctx, 7) },
            None => unsafe { raw::RedisModule_ReplyWithArray.unwrap()(ctx, 14) },
        };
        bulk(ctx, "limit");
        int(ctx, s.limit as i64);
        bulk(ctx, "window_ms");
        int(ctx, s.window_ms as i64);
        bulk(ctx, "strategy");
        bulk(ctx, s.strategy.name());
        bulk(ctx, "remaining");
        int(ctx, s.remaining as i64);
        bulk(ctx, "reset_after_ms");
        int(ctx, s.reset_after as i64);
        bulk(ctx, "retry_after_ms");
        int(ctx, s.retry_after);
        bulk(ctx, "penalty_ms");
        int(ctx, s.penalty_ms as i64);
    }
}
