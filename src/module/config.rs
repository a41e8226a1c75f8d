//! Module configuration: `CONFIG GET/SET ratelimit.*`, redis.conf lines, and
//! `--loadmodule <so> name value ...` arguments, all backed by atomics that
//! the command handlers read once per call.

use redis_module::raw;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_longlong, c_void};
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use crate::strategy::Strategy;

static DEFAULT_STRATEGY: AtomicU8 = AtomicU8::new(0);
static MAX_LOG_BYTES: AtomicI64 = AtomicI64::new(DEFAULT_MAX_LOG_BYTES);

/// Default of `ratelimit.moving-window-max-bytes`: 16 MiB, several million
/// stored hits in one key's log.
const DEFAULT_MAX_LOG_BYTES: i64 = 16 * 1024 * 1024;
const MIN_MAX_LOG_BYTES: i64 = 64 * 1024;
const MAX_MAX_LOG_BYTES: i64 = 128 * 1024 * 1024;

/// The strategy used when a call names none.
pub fn default_strategy() -> Strategy {
    Strategy::ALL[usize::from(DEFAULT_STRATEGY.load(Ordering::Relaxed)) % Strategy::ALL.len()]
}

/// The largest live moving-window log (bytes) a hit may grow.
pub fn max_log_bytes() -> usize {
    MAX_LOG_BYTES.load(Ordering::Relaxed) as usize
}

unsafe extern "C" fn get_strategy(_: *const c_char, _: *mut c_void) -> c_int {
    c_int::from(DEFAULT_STRATEGY.load(Ordering::Relaxed))
}

unsafe extern "C" fn set_strategy(
    _: *const c_char,
    val: c_int,
    _: *mut c_void,
    _: *mut *mut raw::RedisModuleString,
) -> c_int {
    DEFAULT_STRATEGY.store(val as u8, Ordering::Relaxed);
    raw::REDISMODULE_OK as c_int
}

unsafe extern "C" fn get_max_log(_: *const c_char, _: *mut c_void) -> c_longlong {
    MAX_LOG_BYTES.load(Ordering::Relaxed)
}

unsafe extern "C" fn set_max_log(
    _: *const c_char,
    val: c_longlong,
    _: *mut c_void,
    _: *mut *mut raw::RedisModuleString,
) -> c_int {
    MAX_LOG_BYTES.store(val, Ordering::Relaxed);
    raw::REDISMODULE_OK as c_int
}

/// Registers the configs, loads redis.conf values, then applies
/// `--loadmodule` arguments given as `name value` pairs (with or without the
/// `ratelimit.` prefix).
pub fn register(ctx: *mut raw::RedisModuleCtx, args: &[String]) -> Result<(), String> {
    let (Some(reg_enum), Some(reg_num)) =
        (unsafe { raw::RedisModule_RegisterEnumConfig }, unsafe {
            raw::RedisModule_RegisterNumericConfig
        })
    else {
        return Ok(()); // server without module configs: defaults only
    };
    // Every name RL.* accepts, aliases included (CONFIG GET reports the
    // canonical name, listed first for each strategy).
    let names: Vec<CString> = Strategy::NAMES
        .iter()
        .map(|(n, _)| CString::new(*n).expect("no NUL"))
        .collect();
    let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let values: Vec<c_int> = Strategy::NAMES
        .iter()
        .map(|(_, s)| strategy_index(*s) as c_int)
        .collect();
    let ok = raw::REDISMODULE_OK as c_int;
    unsafe {
        if reg_enum(
            ctx,
            c"default-strategy".as_ptr(),
            0,
            raw::REDISMODULE_CONFIG_DEFAULT,
            name_ptrs.as_ptr() as *mut *const c_char,
            values.as_ptr(),
            values.len() as c_int,
            Some(get_strategy),
            Some(set_strategy),
            None,
            std::ptr::null_mut(),
        ) != ok
        {
            return Err("cannot register ratelimit.default-strategy".into());
        }
        if reg_num(
            ctx,
            c"moving-window-max-bytes".as_ptr(),
            DEFAULT_MAX_LOG_BYTES,
            raw::REDISMODULE_CONFIG_DEFAULT | raw::REDISMODULE_CONFIG_MEMORY,
            MIN_MAX_LOG_BYTES,
            MAX_MAX_LOG_BYTES,
            Some(get_max_log),
            Some(set_max_log),
            None,
            std::ptr::null_mut(),
        ) != ok
        {
            return Err("cannot register ratelimit.moving-window-max-bytes".into());
        }
        if let Some(load) = raw::RedisModule_LoadConfigs
            && load(ctx) != ok
        {
            return Err("cannot load ratelimit.* configs".into());
        }
    }
    apply_args(args)
}

fn strategy_index(s: Strategy) -> usize {
    Strategy::ALL.iter().position(|&x| x == s).expect("listed")
}

/// A byte count as Redis reads memory configs (`CONFIG SET`, redis.conf):
/// a whole number with an optional unit, case-insensitive: `k`/`m`/`g`
/// (powers of 1000), `kb`/`mb`/`gb` (powers of 1024), `b`.
fn parse_memory(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale: i64 = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(scale)
}

/// Applies `name value` pairs from `--loadmodule`, read as `CONFIG SET`
/// reads them (strategy aliases, memory units).
fn apply_args(args: &[String]) -> Result<(), String> {
    if !args.len().is_multiple_of(2) {
        return Err("module arguments must be name value pairs".into());
    }
    for pair in args.chunks(2) {
        let name = pair[0]
            .trim_start_matches("ratelimit.")
            .to_ascii_lowercase();
        let value = &pair[1];
        match name.as_str() {
            "default-strategy" => {
                let s = Strategy::parse(value.as_bytes())
                    .ok_or_else(|| format!("unknown strategy '{value}' for default-strategy"))?;
                DEFAULT_STRATEGY.store(strategy_index(s) as u8, Ordering::Relaxed);
            }
            "moving-window-max-bytes" => {
                let v: i64 = parse_memory(value)
                    .filter(|v| (MIN_MAX_LOG_BYTES..=MAX_MAX_LOG_BYTES).contains(v))
                    .ok_or_else(|| {
                        format!(
                            "moving-window-max-bytes must be from {MIN_MAX_LOG_BYTES} to {MAX_MAX_LOG_BYTES}"
                        )
                    })?;
                MAX_LOG_BYTES.store(v, Ordering::Relaxed);
            }
            other => return Err(format!("unknown module argument '{other}'")),
        }
    }
    Ok(())
}
