//! The command handlers, shaped like Redis' own: parse, read the clock
//! once, open the key, decide, write in place, replicate effects, reply.

use redis_module::raw;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::config;
use super::info_counters::{self, COUNTERS, add, bump};
use super::key::{Content, Key, ValueOp};
use super::reply;
use super::request_memo::{self, MemoKey};
use crate::args::{
    Command, LeaseRequest, MAX_OPTION_WORDS, Request, parse_acquire, parse_request_with,
    parse_token,
};
use crate::buf::{Tracked, ValueBuf};
use crate::engine::{self, EngineError, Written};

type Ctx = *mut raw::RedisModuleCtx;

/// The server clock in ms, read once per command: the cached command time
/// where the server has it (7.2+), else the live clock.
fn now_ms() -> u64 {
    unsafe {
        match raw::RedisModule_CachedMicroseconds {
            Some(f) => (f() / 1000) as u64,
            None => raw::RedisModule_Milliseconds.unwrap()() as u64,
        }
    }
}

/// The bytes of one argument (valid for the whole command call).
fn arg_bytes<'a>(s: *mut raw::RedisModuleString) -> &'a [u8] {
    let mut len = 0usize;
    let p = unsafe { raw::RedisModule_StringPtrLen.unwrap()(s, &mut len) };
    if p.is_null() || len == 0 {
        return &[];
    }
    unsafe { std::slice::from_raw_parts(p as *const u8, len) }
}

/// Runs a handler so that no panic can reach Redis (it would abort the
/// whole server): a panic becomes `ERR internal error`.
pub fn guarded(
    ctx: Ctx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    handler: fn(Ctx, &[*mut raw::RedisModuleString]),
) -> c_int {
    let args: &[*mut raw::RedisModuleString] = if argv.is_null() || argc <= 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(argv, argc as usize) }
    };
    let call = || {
        info_counters::settle();
        handler(ctx, args)
    };
    if catch_unwind(AssertUnwindSafe(call)).is_err() {
        reply::error(ctx, "ERR internal error in ratelimit module");
    }
    raw::REDISMODULE_OK as c_int
}

/// Runs `f` with the request of `key limits [options]` for `cmd`, or replies
/// with the parse error. A call with the same words as the previous one
/// reuses its parse, passed by reference (a request is ~300 bytes).
fn with_request(
    ctx: Ctx,
    cmd: Command,
    args: &[*mut raw::RedisModuleString],
    f: impl FnOnce(&Request),
) {
    // Past MAX_OPTION_WORDS the next word is always an error, so the first
    // MAX_OPTION_WORDS + 1 words decide the outcome: no allocation needed.
    let mut opts: [&[u8]; MAX_OPTION_WORDS + 1] = [&[]; MAX_OPTION_WORDS + 1];
    let n = (args.len() - 3).min(opts.len());
    let default_strategy = config::default_strategy();
    let limits = arg_bytes(args[2]);
    let mut key = MemoKey::new(cmd, default_strategy);
    key.word(limits);
    if args.len() - 3 > MAX_OPTION_WORDS {
        key.skip();
    }
    for (o, &a) in opts.iter_mut().zip(&args[3..3 + n]) {
        *o = arg_bytes(a);
        key.word(o);
    }
    let f = match request_memo::with(&key, f) {
        Ok(()) => return,
        Err(f) => f,
    };
    match parse_request_with(cmd, limits, &opts[..n], default_strategy) {
        Ok(r) => {
            request_memo::put(&key, &r);
            f(&r)
        }
        Err(e) => reply::error(ctx, &e.0),
    }
}

/// The request of `key limits [options]`, or `None` after replying with the
/// parse error (for RL.CLEAR, whose limits are optional).
fn parse(ctx: Ctx, cmd: Command, args: &[*mut raw::RedisModuleString]) -> Option<Request> {
    let mut out = None;
    with_request(ctx, cmd, args, |r| out = Some(*r));
    out
}

fn engine_error(ctx: Ctx, e: EngineError) {
    match e {
        EngineError::NotState => reply::wrongtype(ctx),
        EngineError::TooLarge => reply::error(
            ctx,
            "ERR rate-limit state at this key is too large to grow (use fewer hits per window or RL.CLEAR it)",
        ),
        EngineError::ClockOutOfRange => reply::error(
            ctx,
            "ERR server clock is past the range rate limits can store",
        ),
        EngineError::LogFull(max) => reply::error(
            ctx,
            &format!(
                "ERR moving-window log at this key would pass ratelimit.moving-window-max-bytes ({max} bytes)"
            ),
        ),
    }
}

fn wrong_arity(ctx: Ctx) {
    bump(&COUNTERS.errors);
    unsafe { raw::RedisModule_WrongArity.unwrap()(ctx) };
}

/// RL.HIT key limits [STRATEGY s] [COST n] [BURST n]
pub fn hit(ctx: Ctx, args: &[*mut raw::RedisModuleString]) {
    if args.len() < 3 {
        return wrong_arity(ctx);
    }
    with_request(ctx, Command::Hit, args, |req| hit_with(ctx, args, req));
}

fn hit_with(ctx: Ctx, args: &[*mut raw::RedisModuleString], req: &Request) {
    let now = now_ms();
    let mut key = Key::open(ctx, args[1], true);
    let current = match key.content() {
        Content::Empty => None,
        Content::Str(v) => Some(v),
        Content::Other => return reply::wrongtype(ctx),
    };
    let (decision, mut plan) = match engine::decide(current, req, now) {
        Ok(d) => d,
        Err(e) => return engine_error(ctx, e),
    };
    let (locked, starts_penalty) = (plan.locked(), plan.starts_penalty());
    if plan.writes(&decision, req) {
        if let Err(e) = key.commit_hit(&mut plan, req, now, config::max_log_bytes()) {
            return engine_error(ctx, e);
        }
        bump(&COUNTERS.keys_written);
    }
    if starts_penalty {
        bump(&COUNTERS.penalties_started);
    }
    if locked {
        bump(&COUNTERS.denied_by_penalty);
    }
    info_counters::hit(req.strategy, decision.allowed);
    reply::hit(ctx, decision);
}

/// The shape of the read-only commands: parse, read the clock, open the key
/// for reading and hand its value (`None` when missing) to `answer`.
fn read_only(
    ctx: Ctx,
    args: &[*mut raw::RedisModuleString],
    cmd: Command,
    answer: impl FnOnce(Option<&[u8]>, &Request, u64),
) {
    if args.len() < 3 {
        return wrong_arity(ctx);
    }
    with_request(ctx, cmd, args, |req| {
        let now = now_ms();
        let key = Key::open(ctx, args[1], false);
        match key.content() {
            Content::Empty => answer(None, req, now),
            Content::Str(v) => answer(Some(v), req, now),
            Content::Other => reply::wrongtype(ctx),
        }
    });
}

/// RL.TEST key limits [STRATEGY s] [COST n] [BURST n]
pub fn test(ctx: Ctx, args: &[*mut raw::RedisModuleString]) {
    bump(&COUNTERS.test_calls);
    read_only(ctx, args, Command::Test, |value, req, now| {
        // What RL.HIT would answer: its verdict, or the refusal an
        // admitted hit meets before writing (a full log, say).
        match engine::test(value, req, now, config::max_log_bytes()) {
            Ok((d, locked)) => {
                if locked {
                    bump(&COUNTERS.denied_by_penalty);
                }
                reply::hit(ctx, d)
            }
            Err(e) => engine_error(ctx, e),
        }
    });
}

/// RL.STATS key limits [STRATEGY s] [BURST n]
pub fn stats(ctx: Ctx, args: &[*mut raw::RedisModuleString]) {
    bump(&COUNTERS.stats_calls);
    read_only(
        ctx,
        args,
        Command::Stats,
        |value, req, now| match engine::stats(value, req, now) {
            Ok(s) => reply::stats(ctx, &s),
            Err(e) => engine_error(ctx, e),
        },
    );
}

/// RL.CLEAR key [limits [STRATEGY s]]
pub fn clear(ctx: Ctx, args: &[*mut raw::RedisModuleString]) {
    bump(&COUNTERS.clear_calls);
    if args.len() < 2 {
        return wrong_arity(ctx);
    }
    let req = if args.len() >= 3 {
        match parse(ctx, Command::Clear, args) {
            Some(r) => Some(r),
            None => return,
        }
    } else {
        None
    };
    let now = now_ms();
    let mut key = Key::open(ctx, args[1], true);
    let mut value = match key.content() {
        Content::Empty => return reply::integer(ctx, 0),
        Content::Str(v) => v.to_vec(),
        Content::Other => return reply::wrongtype(ctx),
    };
    let Some(req) = req else {
        // All state goes; the reply counts it only if it still held usage,
        // as `RL.CLEAR key limits` counts only limit states holding usage.
        let held = match engine::expiry(&value, now) {
            Ok(end) => end.is_some(),
            Err(e) => return engine_error(ctx, e),
        };
        key.delete();
        key.replicate_delete();
        return reply::integer(ctx, i64::from(held));
    };
    let mut t = Tracked::new(&mut value);
    match engine::clear_limits(&mut t, &req, now) {
        Err(e) => engine_error(ctx, e),
        Ok((removed, expiry)) => {
            match expiry {
                None => {
                    key.delete();
                    key.replicate_delete();
                }
                // Nothing removed: the key stays as it is.
                Some(_) if t.span().is_none() && !t.shrunk() => {}
                Some(expire_at) => {
                    bump(&COUNTERS.keys_written);
                    key.write(t.bytes(), expire_at);
                    key.replicate_whole(t.bytes(), expire_at);
                }
            }
            reply::integer(ctx, removed as i64);
        }
    }
}

/// RL.REFUND key limits [STRATEGY s] [COST n] [BURST n]
pub fn refund(ctx: Ctx, args: &[*mut raw::RedisModuleString]) {
    if args.len() < 3 {
        return wrong_arity(ctx);
    }
    with_request(ctx, Command::Refund, args, |req| {
        let now = now_ms();
        let mut key = Key::open(ctx, args[1], true);
        match key.content() {
            Content::Empty => {}
            // An empty string is no state, as for every other command.
            Content::Str([]) | Content::Other => return reply::wrongtype(ctx),
            Content::Str(_) => match key.rewrite(&mut RefundOp { req, now }) {
                Err(e) => return engine_error(ctx, e),
                Ok(Written::Changed(_)) => bump(&COUNTERS.keys_written),
                Ok(_) => {}
            },
        }
        bump(&COUNTERS.refund_calls);
        // The reply: what RL.TEST ... COST 0 says now.
        let probe = Request { cost: 0, ..*req };
        let current = match key.content() {
            Content::Str(v) => Some(v),
            _ => None,
        };
        match engine::test(current, &probe, now, config::max_log_bytes()) {
            Ok((d, _)) => reply::hit(ctx, d),
            Err(e) => engine_error(ctx, e),
        }
    });
}

struct RefundOp<'a> {
    req: &'a Request,
    now: u64,
}

impl ValueOp for RefundOp<'_> {
    fn run<B: ValueBuf>(&mut self, t: &mut Tracked<B>) -> Result<Written, EngineError> {
        engine::refund(t, self.req, self.now)
    }
}

/// RL.ACQUIRE key max lease token
pub fn acquire(ctx: Ctx, args: &[*mut raw::RedisModuleString]) {
    if args.len() != 5 {
        return wrong_arity(ctx);
    }
    let req = match parse_acquire(arg_bytes(args[2]), arg_bytes(args[3]), arg_bytes(args[4])) {
        Ok(r) => r,
        Err(e) => return reply::error(ctx, &e.0),
    };
    let now = now_ms();
    let mut key = Key::open(ctx, args[1], true);
    if matches!(key.content(), Content::Str([]) | Content::Other) {
        return reply::wrongtype(ctx);
    }
    let mut op = AcquireOp {
        req,
        now,
        done: None,
    };
    if let Err(e) = key.rewrite(&mut op) {
        return engine_error(ctx, e);
    }
    let Some(done) = op.done else {
        return reply::error(ctx, "ERR internal error in ratelimit module");
    };
    if done.grant.acquired {
        bump(&COUNTERS.leases_acquired);
        bump(&COUNTERS.keys_written);
    } else {
        bump(&COUNTERS.leases_denied);
    }
    add(&COUNTERS.leases_expired, done.forgotten as u64);
    reply::five(ctx, done.grant.to_array());
}

struct AcquireOp<'a> {
    req: LeaseRequest<'a>,
    now: u64,
    done: Option<engine::Acquired>,
}

impl ValueOp for AcquireOp<'_> {
    fn run<B: ValueBuf>(&mut self, t: &mut Tracked<B>) -> Result<Written, EngineError> {
        let r = self.req;
        let done = engine::acquire(t, r.max, r.lease_ms, r.token, self.now)?;
        self.done = Some(done);
        Ok(done.expiry.map_or(Written::Unchanged, Written::Changed))
    }
}

/// RL.RELEASE key token
pub fn release(ctx: Ctx, args: &[*mut raw::RedisModuleString]) {
    if args.len() != 3 {
        return wrong_arity(ctx);
    }
    let token = match parse_token(arg_bytes(args[2])) {
        Ok(t) => t,
        Err(e) => return reply::error(ctx, &e.0),
    };
    let now = now_ms();
    let mut key = Key::open(ctx, args[1], true);
    match key.content() {
        Content::Empty => return reply::integer(ctx, 0),
        Content::Str([]) | Content::Other => return reply::wrongtype(ctx),
        Content::Str(_) => {}
    }
    let mut op = ReleaseOp {
        token,
        now,
        ended: false,
    };
    match key.rewrite(&mut op) {
        Err(e) => engine_error(ctx, e),
        Ok(written) => {
            if op.ended {
                bump(&COUNTERS.leases_released);
            }
            if matches!(written, Written::Changed(_)) {
                bump(&COUNTERS.keys_written);
            }
            reply::integer(ctx, i64::from(op.ended));
        }
    }
}

struct ReleaseOp<'a> {
    token: &'a [u8],
    now: u64,
    ended: bool,
}

impl ValueOp for ReleaseOp<'_> {
    fn run<B: ValueBuf>(&mut self, t: &mut Tracked<B>) -> Result<Written, EngineError> {
        let (ended, written) = engine::release(t, self.token, self.now)?;
        self.ended = ended;
        Ok(written)
    }
}
