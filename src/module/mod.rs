//! The Redis glue: registration, the command handlers and their helpers.
//! Everything here is thin; the decisions live in the pure core.

mod commands;
mod config;
mod info_counters;
mod key;
mod metadata;
mod reply;
mod request_memo;
mod retained;
mod server;

use redis_module::{Context, RedisString, Status, alloc::RedisAlloc, redis_module};

/// The module version MODULE LIST reports, from Cargo.toml (major*10000 +
/// minor*100 + patch).
const VERSION: i32 = {
    const fn num(s: &str) -> i32 {
        let b = s.as_bytes();
        let mut i = 0;
        let mut v = 0;
        while i < b.len() {
            v = v * 10 + (b[i] - b'0') as i32;
            i += 1;
        }
        v
    }
    num(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + num(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + num(env!("CARGO_PKG_VERSION_PATCH"))
};

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy()).collect();
    retained::init();
    // Module options (keys are signalled as modified only when a command
    // changed them, see key::Key) and what this server offers beyond 7.0.
    let features = server::setup(ctx.ctx);
    ctx.log_notice(&format!(
        "ratelimit: server features in use: {}",
        info_counters::features_text(features)
    ));
    if let Err(e) = effect_commands_present(ctx) {
        ctx.log_warning(&format!("ratelimit: {e}"));
        return Status::Err;
    }
    let registered = metadata::register_all(ctx.ctx, features)
        .and_then(|()| config::register(ctx.ctx, &args))
        .and_then(|()| info_counters::register(ctx.ctx));
    match registered {
        Ok(()) => Status::Ok,
        Err(e) => {
            ctx.log_warning(&format!("ratelimit: {e}"));
            Status::Err
        }
    }
}

/// The native commands writes propagate as. A `rename-command` of one of
/// them would make replicas and the AOF lose or refuse those effects (Redis
/// drops a `RedisModule_Replicate` of an unknown name; Valkey with
/// `SKIP_COMMAND_VALIDATION` sends it and the replica errors), so the module
/// refuses to load rather than let them diverge.
const EFFECT_COMMANDS: [&str; 4] = ["SET", "SETRANGE", "PEXPIREAT", "DEL"];

fn effect_commands_present(ctx: &Context) -> Result<(), String> {
    let mut args = vec!["INFO"];
    args.extend(EFFECT_COMMANDS);
    let reply = ctx
        .call("COMMAND", args.as_slice())
        .map_err(|e| format!("COMMAND INFO failed at load: {e}"))?;
    let redis_module::RedisValue::Array(infos) = reply else {
        return Err(format!("unexpected COMMAND INFO reply: {reply:?}"));
    };
    let missing: Vec<&str> = EFFECT_COMMANDS
        .iter()
        .zip(
            infos
                .iter()
                .chain(std::iter::repeat(&redis_module::RedisValue::Null)),
        )
        .filter(|(_, info)| matches!(info, redis_module::RedisValue::Null))
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "cannot load: the command(s) {} are renamed or disabled (rename-command); \
             the module replicates its writes as SET, SETRANGE, PEXPIREAT and DEL",
            missing.join(", ")
        ))
    }
}

redis_module! {
    name: "ratelimit",
    version: VERSION,
    allocator: (RedisAlloc, RedisAlloc),
    data_types: [],
    init: init,
    commands: [],
}
