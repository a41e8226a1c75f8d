//! Command registration and the metadata behind COMMAND INFO / DOCS: arity,
//! flags, key specs (read-write or read-only) and argument docs.

use redis_module::raw;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};

use super::commands::{self, guarded};
use super::server::{ACL_CATEGORY, Features};

const WRITE: &CStr = c"write";
const READ: &CStr = c"read";

type Handler = fn(*mut raw::RedisModuleCtx, &[*mut raw::RedisModuleString]);

macro_rules! entry {
    ($name:ident, $handler:path) => {
        extern "C" fn $name(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            guarded(ctx, argv, argc, $handler as Handler)
        }
    };
}

entry!(rl_hit, commands::hit);
entry!(rl_test, commands::test);
entry!(rl_stats, commands::stats);
entry!(rl_clear, commands::clear);
entry!(rl_refund, commands::refund);
entry!(rl_acquire, commands::acquire);
entry!(rl_release, commands::release);

/// One argument's documentation.
struct Arg {
    name: &'static str,
    kind: raw::RedisModuleCommandArgType,
    token: Option<&'static str>,
    optional: bool,
    key_spec: bool,
    /// For a one-of argument: the words it accepts (pure tokens).
    choices: &'static [&'static str],
    /// For a block: the arguments it groups (`[limits [STRATEGY s]]`).
    block: Vec<Arg>,
}

const fn arg(name: &'static str, kind: raw::RedisModuleCommandArgType) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional: false,
        key_spec: false,
        choices: &[],
        block: Vec::new(),
    }
}

const fn opt(name: &'static str, token: &'static str, kind: raw::RedisModuleCommandArgType) -> Arg {
    Arg {
        name,
        kind,
        token: Some(token),
        optional: true,
        key_spec: false,
        choices: &[],
        block: Vec::new(),
    }
}

const KEY: Arg = Arg {
    name: "key",
    kind: raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
    token: None,
    optional: false,
    key_spec: true,
    choices: &[],
    block: Vec::new(),
};
const STR: raw::RedisModuleCommandArgType =
    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING;
const INT: raw::RedisModuleCommandArgType =
    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER;

/// Everything declared about one command.
struct Spec {
    name: &'static str,
    handler: raw::RedisModuleCmdFunc,
    flags: &'static str,
    /// The built-in ACL category (`write` or `read`), set where the server
    /// supports module command categories, with `@ratelimit` beside it.
    acl: &'static CStr,
    arity: c_int,
    summary: &'static str,
    complexity: &'static str,
    key_flags: u32,
    args: Vec<Arg>,
}

fn specs() -> Vec<Spec> {
    let limits = || arg("limits", STR);
    let strategy = || Arg {
        kind: raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
        choices: &[
            "fixed-window",
            "moving-window",
            "sliding-window-counter",
            "gcra",
        ],
        ..opt("strategy", "STRATEGY", STR)
    };
    let cost = || opt("cost", "COST", INT);
    let burst = || opt("burst", "BURST", INT);
    let penalty = || opt("penalty", "PENALTY", STR);
    let rw = raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_UPDATE;
    let ro = raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS;
    vec![
        Spec {
            name: "rl.hit",
            handler: Some(rl_hit),
            flags: "write deny-oom",
            acl: WRITE,
            arity: -3,
            summary: "Consumes COST from every limit at once if all admit it; replies allowed, limit, remaining, reset_after_ms, retry_after_ms. PENALTY locks the key for that long after a breach.",
            complexity: "O(N) for N limits; moving window: O(1) amortized per limit (O(C) to compute the wait of a denied hit of cost C)",
            key_flags: rw,
            args: vec![KEY, limits(), strategy(), cost(), burst(), penalty()],
        },
        Spec {
            name: "rl.test",
            handler: Some(rl_test),
            flags: "readonly",
            acl: READ,
            arity: -3,
            summary: "Replies what RL.HIT would reply now, without consuming anything.",
            complexity: "O(N) for N limits; moving window: O(E) for E log entries expired since the last write",
            key_flags: ro,
            args: vec![KEY, limits(), strategy(), cost(), burst(), penalty()],
        },
        Spec {
            name: "rl.stats",
            handler: Some(rl_stats),
            flags: "readonly",
            acl: READ,
            arity: -3,
            summary: "Replies one map per limit: limit, window_ms, strategy, remaining, reset_after_ms, retry_after_ms, penalty_ms.",
            complexity: "O(N) for N limits; moving window: O(E) for E log entries expired since the last write",
            key_flags: ro,
            args: vec![KEY, limits(), strategy(), burst()],
        },
        Spec {
            name: "rl.clear",
            handler: Some(rl_clear),
            flags: "write",
            acl: WRITE,
            arity: -2,
            summary: "Removes all rate-limit state at the key, or only that of the given limits.",
            complexity: "O(1) for the whole key; O(S) with limits, S the size of the key's state",
            // Reads (the reply tells whether a limit held usage) and
            // deletes (Redis takes one of INSERT, UPDATE, DELETE: a partial
            // clear also rewrites, covered by RW).
            key_flags: raw::REDISMODULE_CMD_KEY_RW
                | raw::REDISMODULE_CMD_KEY_ACCESS
                | raw::REDISMODULE_CMD_KEY_DELETE,
            // `[limits [STRATEGY s]]`: STRATEGY only after limits.
            args: vec![
                KEY,
                Arg {
                    kind: raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
                    optional: true,
                    block: vec![limits(), strategy()],
                    ..arg("limits", STR)
                },
            ],
        },
        Spec {
            name: "rl.refund",
            handler: Some(rl_refund),
            flags: "write",
            acl: WRITE,
            arity: -3,
            summary: "Gives COST (default 1) back to every limit; replies what RL.TEST with COST 0 replies afterwards.",
            complexity: "O(N) for N limits; moving window: O(log n + B) for B blocks emptied (a small log: O(E) for its E entries)",
            key_flags: rw,
            args: vec![KEY, limits(), strategy(), cost(), burst()],
        },
        Spec {
            name: "rl.acquire",
            handler: Some(rl_acquire),
            flags: "write deny-oom",
            acl: WRITE,
            arity: 5,
            summary: "Takes or renews the lease named by token if fewer than max are held at the key; replies acquired, max, available, reset_after_ms, retry_after_ms.",
            complexity: "O(L) for L leases held at the key (at most 10,000)",
            key_flags: rw,
            args: vec![KEY, arg("max", INT), arg("lease", STR), arg("token", STR)],
        },
        Spec {
            name: "rl.release",
            handler: Some(rl_release),
            flags: "write",
            acl: WRITE,
            arity: 3,
            summary: "Ends the lease named by token; replies 1 if a live lease ended, else 0.",
            complexity: "O(L) for L leases held at the key (at most 10,000)",
            key_flags: rw,
            args: vec![KEY, arg("token", STR)],
        },
    ]
}

/// Owns everything a `RedisModuleCommandInfo` points to until
/// `RedisModule_SetCommandInfo` has copied it (Redis keeps its own copy).
#[derive(Default)]
struct Keep {
    strings: Vec<CString>,
    args: Vec<Vec<raw::RedisModuleCommandArg>>,
    specs: Vec<Vec<raw::RedisModuleCommandKeySpec>>,
    version: Option<Box<raw::RedisModuleCommandInfoVersion>>,
}

impl Keep {
    fn cstr(&mut self, s: &str) -> *const c_char {
        let c = CString::new(s).expect("no NUL in metadata");
        let p = c.as_ptr();
        self.strings.push(c);
        p
    }

    fn args(&mut self, v: Vec<raw::RedisModuleCommandArg>) -> *mut raw::RedisModuleCommandArg {
        self.args.push(v);
        self.args.last_mut().expect("pushed").as_mut_ptr()
    }
}

/// The pure-token sub-arguments of a one-of argument (null when none),
/// zero-terminated.
fn choices(keep: &mut Keep, words: &[&str]) -> *mut raw::RedisModuleCommandArg {
    if words.is_empty() {
        return std::ptr::null_mut();
    }
    let mut v: Vec<raw::RedisModuleCommandArg> = Vec::with_capacity(words.len() + 1);
    for w in words {
        v.push(raw::RedisModuleCommandArg {
            name: keep.cstr(w),
            type_: raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            key_spec_index: -1,
            token: keep.cstr(w),
            summary: std::ptr::null(),
            since: keep.cstr("0.1.0"),
            flags: 0,
            deprecated_since: std::ptr::null(),
            subargs: std::ptr::null_mut(),
            display_text: std::ptr::null(),
        });
    }
    v.push(unsafe { std::mem::zeroed() });
    keep.args(v)
}

/// Creates the commands and declares their metadata and, where the
/// server has them (`features`), their ACL categories.
pub fn register_all(ctx: *mut raw::RedisModuleCtx, features: Features) -> Result<(), String> {
    for spec in specs() {
        let name = CString::new(spec.name).expect("name");
        let flags = CString::new(spec.flags).expect("flags");
        let created = unsafe {
            raw::RedisModule_CreateCommand.unwrap()(
                ctx,
                name.as_ptr(),
                spec.handler,
                flags.as_ptr(),
                1,
                1,
                1,
            )
        };
        if created != raw::REDISMODULE_OK as c_int {
            return Err(format!("cannot create command {}", spec.name));
        }
        let (Some(get), Some(set_info)) = (unsafe { raw::RedisModule_GetCommand }, unsafe {
            raw::RedisModule_SetCommandInfo
        }) else {
            return Err("the server lacks RedisModule_SetCommandInfo (Redis 7.0+ has it)".into());
        };
        let cmd = unsafe { get(ctx, name.as_ptr()) };
        if cmd.is_null() {
            return Err(format!("cannot find command {}", spec.name));
        }
        if features.acl_categories {
            set_categories(cmd, &spec, features.module_category)?;
        }
        // Redis copies the info; `keep` owns what it points to until then.
        let mut keep = Keep::default();
        let info = build_info(&spec, &mut keep);
        if unsafe { set_info(cmd, &info) } != raw::REDISMODULE_OK as c_int {
            return Err(format!("cannot set command info of {}", spec.name));
        }
    }
    Ok(())
}

/// `@write` or `@read`, and `@ratelimit` when the module added it.
fn set_categories(
    cmd: *mut raw::RedisModuleCommand,
    spec: &Spec,
    module_category: bool,
) -> Result<(), String> {
    let mut categories = spec.acl.to_bytes().to_vec();
    if module_category {
        categories.push(b' ');
        categories.extend_from_slice(ACL_CATEGORY.to_bytes());
    }
    let categories = CString::new(categories).expect("no NUL in categories");
    let set = unsafe { raw::RedisModule_SetCommandACLCategories.unwrap() };
    if unsafe { set(cmd, categories.as_ptr()) } != raw::REDISMODULE_OK as c_int {
        return Err(format!("cannot set the ACL categories of {}", spec.name));
    }
    Ok(())
}

/// The zero-terminated argument array of `args` (blocks nested).
fn build_args(keep: &mut Keep, args: &[Arg]) -> *mut raw::RedisModuleCommandArg {
    let mut out: Vec<raw::RedisModuleCommandArg> = Vec::with_capacity(args.len() + 1);
    for a in args {
        let subargs = if a.block.is_empty() {
            choices(keep, a.choices)
        } else {
            build_args(keep, &a.block)
        };
        out.push(raw::RedisModuleCommandArg {
            name: keep.cstr(a.name),
            type_: a.kind,
            key_spec_index: if a.key_spec { 0 } else { -1 },
            token: match a.token {
                Some(t) => keep.cstr(t),
                None => std::ptr::null(),
            },
            summary: std::ptr::null(),
            since: keep.cstr("0.1.0"),
            flags: if a.optional {
                raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int
            } else {
                0
            },
            deprecated_since: std::ptr::null(),
            subargs,
            display_text: std::ptr::null(),
        });
    }
    out.push(unsafe { std::mem::zeroed() });
    keep.args(out)
}

fn build_info(spec: &Spec, keep: &mut Keep) -> raw::RedisModuleCommandInfo {
    let version: *const raw::RedisModuleCommandInfoVersion =
        &**keep
            .version
            .insert(Box::new(raw::RedisModuleCommandInfoVersion {
                version: 1,
                sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
                sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
                sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
            }));
    keep.specs.push(vec![
        raw::RedisModuleCommandKeySpec {
            notes: std::ptr::null(),
            flags: u64::from(spec.key_flags),
            begin_search_type: raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
            bs: raw::RedisModuleCommandKeySpec__bindgen_ty_1 {
                index: raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos: 1 },
            },
            find_keys_type: raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE,
            fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
                range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        },
        // Zeroed terminator.
        unsafe { std::mem::zeroed() },
    ]);
    let key_specs = keep.specs.last_mut().expect("pushed").as_mut_ptr();
    let args = build_args(keep, &spec.args);
    raw::RedisModuleCommandInfo {
        version,
        summary: keep.cstr(spec.summary),
        complexity: keep.cstr(spec.complexity),
        since: keep.cstr("0.1.0"),
        history: std::ptr::null_mut(),
        tips: std::ptr::null(),
        arity: spec.arity,
        key_specs,
        args,
    }
}
