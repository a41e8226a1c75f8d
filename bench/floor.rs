//! Bench only (`make bench`), never shipped: `FLOOR.HIT key`, a module
//! command that makes exactly the Redis API calls one admitted `RL.HIT`
//! makes on a small value, and nothing else: open the key, create an
//! 11-byte raw string (or patch it in place through DMA), set its absolute
//! expiry, propagate `SET key value PXAT t` (with retained `PXAT` and `t`
//! strings, as the module does) and reply five integers. No parsing, no
//! decoding, no rate-limit logic. Its server time is the floor any module
//! with the contract's storage, expiry, effect replication and reply shape
//! pays on Redis 7.0; `bench/bench.py` prints it next to INCR and RL.HIT.
//!
//! `FLOOR.DENY key` is the same for a denied hit: open the key for writing,
//! read the clock and the value, reply five integers; nothing is written
//! (except on the first call on a key, which is admitted as above: the
//! floor of RL.HIT on one hot key, where all but the first hits of a
//! window are denied).

use redis_module::{Context, RedisString, Status, alloc::RedisAlloc, raw, redis_module};
use std::os::raw::c_int;

// The same retained strings the module propagates with, and the same
// module options (Valkey 8.1+: replication without the command lookup).
#[path = "../src/module/retained.rs"]
mod retained;
#[allow(dead_code)]
#[path = "../src/module/server.rs"]
mod server;

const VALUE_LEN: usize = 11;
const WINDOW_MS: u64 = 60_000;

unsafe fn dma(key: *mut raw::RedisModuleKey) -> &'static mut [u8] {
    let mut len = 0usize;
    let mode = (raw::REDISMODULE_READ | raw::REDISMODULE_WRITE) as c_int;
    let p = unsafe { raw::RedisModule_StringDMA.unwrap()(key, &mut len, mode) };
    if p.is_null() {
        return &mut [];
    }
    unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len) }
}

extern "C" fn floor_hit(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    floor(ctx, argv, argc, false)
}

extern "C" fn floor_deny(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    floor(ctx, argv, argc, true)
}

/// Both commands: open the key named by the one argument for writing, then
/// admit (FLOOR.HIT, or FLOOR.DENY's first call on a key) or deny.
fn floor(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    deny: bool,
) -> c_int {
    unsafe {
        if argc != 2 {
            return raw::RedisModule_WrongArity.unwrap()(ctx);
        }
        let name = *argv.add(1);
        let mode = (raw::REDISMODULE_READ | raw::REDISMODULE_WRITE) as c_int;
        let key = raw::RedisModule_OpenKey.unwrap()(ctx, name, mode);
        let empty =
            raw::RedisModule_KeyType.unwrap()(key) as isize == raw::REDISMODULE_KEYTYPE_EMPTY;
        if deny && !empty {
            refuse(ctx, key)
        } else {
            admit(ctx, name, key)
        }
    }
}

/// The admitted hit's calls on the open `key` (closes it).
unsafe fn admit(
    ctx: *mut raw::RedisModuleCtx,
    name: *mut raw::RedisModuleString,
    key: *mut raw::RedisModuleKey,
) -> c_int {
    unsafe {
        let now = raw::RedisModule_Milliseconds.unwrap()() as u64;
        let at = now - now % WINDOW_MS + WINDOW_MS;
        let mut value = [0u8; VALUE_LEN];
        if raw::RedisModule_KeyType.unwrap()(key) as isize == raw::REDISMODULE_KEYTYPE_EMPTY {
            raw::RedisModule_StringTruncate.unwrap()(key, VALUE_LEN);
            value[0] = 1;
            dma(key).copy_from_slice(&value);
            raw::RedisModule_SetAbsExpire.unwrap()(key, at as i64);
        } else {
            let buf = dma(key);
            if buf.len() == VALUE_LEN {
                value.copy_from_slice(buf);
            }
            value[0] = value[0].wrapping_add(1);
            if let Some(b) = buf.get_mut(0) {
                *b = value[0];
            }
            if raw::RedisModule_GetAbsExpire.unwrap()(key) != at as i64 {
                raw::RedisModule_SetAbsExpire.unwrap()(key, at as i64);
            }
        }
        raw::RedisModule_Replicate.unwrap()(
            ctx,
            c"SET".as_ptr(),
            c"sbss".as_ptr(),
            name,
            value.as_ptr(),
            VALUE_LEN,
            retained::pxat(),
            retained::instant(at),
        );
        raw::RedisModule_CloseKey.unwrap()(key);
        raw::RedisModule_ReplyWithArray.unwrap()(ctx, 5);
        for v in [1, 100, 99, 0, -1] {
            raw::RedisModule_ReplyWithLongLong.unwrap()(ctx, v);
        }
        raw::REDISMODULE_OK as c_int
    }
}

/// The denied hit's calls on the open `key` (closes it).
unsafe fn refuse(ctx: *mut raw::RedisModuleCtx, key: *mut raw::RedisModuleKey) -> c_int {
    unsafe {
        let now = raw::RedisModule_Milliseconds.unwrap()() as u64;
        let mut first = 0u8;
        if raw::RedisModule_KeyType.unwrap()(key) as isize == raw::REDISMODULE_KEYTYPE_STRING {
            let mut len = 0usize;
            let p =
                raw::RedisModule_StringDMA.unwrap()(key, &mut len, raw::REDISMODULE_READ as c_int);
            if !p.is_null() && len > 0 {
                first = *(p as *const u8);
            }
        }
        raw::RedisModule_CloseKey.unwrap()(key);
        // A denied reply's magnitudes: limit, nothing left, reset and retry in ms.
        let reset = WINDOW_MS - now % WINDOW_MS + u64::from(first & 1);
        raw::RedisModule_ReplyWithArray.unwrap()(ctx, 5);
        for v in [0, 100, 0, reset as i64, 600] {
            raw::RedisModule_ReplyWithLongLong.unwrap()(ctx, v);
        }
        raw::REDISMODULE_OK as c_int
    }
}

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    server::set_options(ctx.ctx);
    unsafe {
        retained::init();
        let ok = raw::RedisModule_CreateCommand.unwrap()(
            ctx.ctx,
            c"floor.hit".as_ptr(),
            Some(floor_hit),
            c"write deny-oom".as_ptr(),
            1,
            1,
            1,
        );
        let deny = raw::RedisModule_CreateCommand.unwrap()(
            ctx.ctx,
            c"floor.deny".as_ptr(),
            Some(floor_deny),
            c"write deny-oom".as_ptr(),
            1,
            1,
            1,
        );
        if ok == raw::REDISMODULE_OK as c_int && deny == raw::REDISMODULE_OK as c_int {
            Status::Ok
        } else {
            Status::Err
        }
    }
}

redis_module! {
    name: "ratelimit_floor",
    version: 1,
    allocator: (RedisAlloc, RedisAlloc),
    data_types: [],
    init: init,
    commands: [],
}
