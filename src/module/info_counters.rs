//! Counters behind `INFO ratelimit`, cleared by `CONFIG RESETSTAT`.

use redis_module::raw;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
    pub penalties_started: AtomicU64,
    pub denied_by_penalty: AtomicU64,
    pub refund_calls: AtomicU64,
    pub leases_acquired: AtomicU64,
    pub leases_denied: AtomicU64,
    pub leases_released: AtomicU64,
    pub leases_expired: AtomicU64,
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
    penalties_started: ZERO,
    denied_by_penalty: ZERO,
    refund_calls: ZERO,
    leases_acquired: ZERO,
    leases_denied: ZERO,
    leases_released: ZERO,
    leases_expired: ZERO,
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
        &c.penalties_started,
        &c.denied_by_penalty,
        &c.refund_calls,
        &c.leases_acquired,
        &c.leases_denied,
        &c.leases_released,
        &c.leases_expired,
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
        settle();
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
        field(ctx, "penalties_started", get(&c.penalties_started));
        field(ctx, "calls_denied_by_penalty", get(&c.denied_by_penalty));
        field(ctx, "refund_calls", get(&c.refund_calls));
        field(ctx, "leases_acquired", get(&c.leases_acquired));
        field(ctx, "acquires_denied", get(&c.leases_denied));
        field(ctx, "leases_released", get(&c.leases_released));
        field(ctx, "leases_expired", get(&c.leases_expired));
        text_field(
            ctx,
            "server_features",
            &features_text(super::server::features()),
        );
    });
}

// Clearing the counters exactly when Redis clears its own statistics.
//
// Redis has no module hook for `CONFIG RESETSTAT`, and a command filter sees
// the command before Redis decides whether to run it (it may be refused:
// NOPERM, NOAUTH, from a script; or queued in MULTI and later discarded).
// So the filter only notes a *pending* reset with a snapshot of how many
// RL.* calls Redis' own command statistics hold; the reset happened iff
// that sum has since fallen below the snapshot (RESETSTAT zeroes it, and
// an RL.* call is counted only after it returns). The check runs at the
// start of every RL.* call and INFO while a reset is pending, so no count
// of ours lands between Redis' reset and ours; a reset still pending when
// the event loop goes to sleep did not happen and is dropped. A RESETSTAT
// queued in MULTI is held until that client's EXEC (or dropped on its
// DISCARD), where the server tells a filter the client (Redis 7.2+, Valkey).

/// A reset the filter saw and the statistics have not confirmed yet.
static PENDING: AtomicBool = AtomicBool::new(false);
/// The RL.* calls in Redis' command statistics when the reset was seen.
static SNAPSHOT: AtomicU64 = AtomicU64::new(0);
/// The client that queued a RESETSTAT in MULTI (0: none).
static QUEUED_BY: AtomicU64 = AtomicU64::new(0);

/// The calls of the module's commands in Redis' command statistics.
fn module_calls() -> u64 {
    unsafe {
        let (Some(get), Some(field), Some(free)) = (
            raw::RedisModule_GetServerInfo,
            raw::RedisModule_ServerInfoGetFieldC,
            raw::RedisModule_FreeServerInfo,
        ) else {
            return 0;
        };
        let info = get(std::ptr::null_mut(), c"commandstats".as_ptr());
        if info.is_null() {
            return 0;
        }
        let mut sum = 0;
        for name in [
            c"cmdstat_rl.hit",
            c"cmdstat_rl.test",
            c"cmdstat_rl.stats",
            c"cmdstat_rl.clear",
            c"cmdstat_rl.refund",
            c"cmdstat_rl.acquire",
            c"cmdstat_rl.release",
        ] {
            let v = field(info, name.as_ptr());
            if v.is_null() {
                continue;
            }
            // "calls=12,usec=..."
            let text = std::ffi::CStr::from_ptr(v).to_bytes();
            sum += text
                .strip_prefix(b"calls=")
                .map(|t| {
                    t.iter()
                        .take_while(|b| b.is_ascii_digit())
                        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
                })
                .unwrap_or(0);
        }
        free(std::ptr::null_mut(), info);
        sum
    }
}

/// Arms a pending reset (the RESETSTAT is about to run, or be refused).
fn arm() {
    SNAPSHOT.store(module_calls(), Ordering::Relaxed);
    PENDING.store(true, Ordering::Relaxed);
}

/// Called before every RL.* call and INFO: applies a pending reset that
/// Redis has carried out. Costs one load when none is pending.
pub fn settle() {
    if !PENDING.load(Ordering::Relaxed) {
        return;
    }
    if module_calls() < SNAPSHOT.load(Ordering::Relaxed) {
        PENDING.store(false, Ordering::Relaxed);
        reset();
    }
}

/// The event loop is about to sleep: every command of this round has run,
/// so a reset not carried out by now was refused (or is queued in MULTI,
/// and is armed again at EXEC).
unsafe extern "C" fn before_sleep(
    _ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut std::os::raw::c_void,
) {
    let _ = std::panic::catch_unwind(|| {
        if subevent == raw::REDISMODULE_SUBEVENT_EVENTLOOP_BEFORE_SLEEP {
            settle();
            PENDING.store(false, Ordering::Relaxed);
        }
    });
}

/// The client of a filtered command, where the server says (Redis 7.2+,
/// Valkey), and whether it is inside MULTI.
unsafe fn filter_client(f: *mut raw::RedisModuleCommandFilterCtx) -> Option<(u64, bool)> {
    unsafe {
        let id = raw::RedisModule_CommandFilterGetClientId?(f);
        let mut ci: raw::RedisModuleClientInfo = std::mem::zeroed();
        ci.version = 1;
        let ok = raw::RedisModule_GetClientInfoById?(
            (&mut ci as *mut raw::RedisModuleClientInfo).cast(),
            id,
        );
        let in_multi = ok == raw::REDISMODULE_OK as c_int
            && ci.flags & u64::from(raw::REDISMODULE_CLIENTINFO_FLAG_MULTI) != 0;
        Some((id, in_multi))
    }
}

/// The command filter: notes `CONFIG RESETSTAT` (see above), and the EXEC
/// or DISCARD of a transaction that queued one.
unsafe extern "C" fn filter(f: *mut raw::RedisModuleCommandFilterCtx) {
    let _ = std::panic::catch_unwind(|| unsafe {
        let argc = raw::RedisModule_CommandFilterArgsCount.unwrap()(f);
        if argc != 1 && argc != 2 {
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
        let first = word(0);
        if argc == 2
            && first.eq_ignore_ascii_case(b"config")
            && word(1).eq_ignore_ascii_case(b"resetstat")
        {
            match filter_client(f) {
                Some((id, true)) => QUEUED_BY.store(id, Ordering::Relaxed),
                _ => arm(),
            }
            return;
        }
        let queued = QUEUED_BY.load(Ordering::Relaxed);
        if argc == 1 && queued != 0 {
            let exec = first.eq_ignore_ascii_case(b"exec");
            if (exec || first.eq_ignore_ascii_case(b"discard"))
                && filter_client(f).is_some_and(|(id, _)| id == queued)
            {
                QUEUED_BY.store(0, Ordering::Relaxed);
                if exec {
                    arm();
                }
            }
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
        if let Some(subscribe) = raw::RedisModule_SubscribeToServerEvent {
            let event = raw::RedisModuleEvent {
                id: raw::REDISMODULE_EVENT_EVENTLOOP,
                dataver: 1,
            };
            if subscribe(ctx, event, Some(before_sleep)) != raw::REDISMODULE_OK as c_int {
                return Err("cannot subscribe to the event loop".into());
            }
        }
    }
    Ok(())
}
