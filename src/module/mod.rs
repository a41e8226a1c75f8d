//! The Redis glue: registration, the command handlers and their helpers.
//! Everything here is thin; the decisions live in the pure core.

mod commands;
mod config;
mod key;
mod metadata;
mod reply;
mod request_memo;
mod retained;
mod server;
mod stats;

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
        stats::features_text(features)
    ));
    let registered = metadata::register_all(ctx.ctx, features)
        .and_then(|()| config::register(ctx.ctx, &args))
        .and_then(|()| stats::register(ctx.ctx));
    match registered {
        Ok(()) => Status::Ok,
        Err(e) => {
            ctx.log_warning(&format!("ratelimit: {e}"));
            Status::Err
        }
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
