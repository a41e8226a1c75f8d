//! The commands' logic on plain values: the stored bytes, the request and
//! `now` in, a reply and in-place changes out. No Redis types.

use crate::args::Request;
use crate::buf::{Tracked, ValueBuf};
use crate::decision::{LimitEval, Verdict, combine};
use crate::lease::{self, Grant, Take};
use crate::limit::Limit;
use crate::penalty;
use crate::record::{self, NotState, Record, Records, State, find, index};
use crate::strategy::moving::MAX_ENTRY_LEN;
use crate::strategy::{self, Corrupt, Next, Quota, Rewrite, Strategy};

/// Largest value a hit may grow: beyond half of Redis' 512 MB string limit
/// a hit is refused instead of risking a failed resize.
pub const MAX_VALUE_LEN: usize = 256 * 1024 * 1024;

/// Why a command could not be carried out on the stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// The key holds something that is not rate-limit state.
    NotState,
    /// The state at the key is too large to grow further.
    TooLarge,
    /// A moving-window log would pass the configured size (bytes).
    LogFull(usize),
    /// `now` is past the times the encoding can store (year ~10880).
    ClockOutOfRange,
}

/// The latest `now` the engine accepts: stored times (window starts, log
/// times, a GCRA TAT of at most `now` plus ten years) must fit in 48 bits.
pub const MAX_NOW: u64 = crate::codec::MAX_TIME - crate::limit::MAX_WINDOW_MS;

fn check_clock(now: u64) -> Result<(), EngineError> {
    if now > MAX_NOW {
        Err(EngineError::ClockOutOfRange)
    } else {
        Ok(())
    }
}

impl From<NotState> for EngineError {
    fn from(_: NotState) -> Self {
        EngineError::NotState
    }
}

impl From<Corrupt> for EngineError {
    fn from(_: Corrupt) -> Self {
        EngineError::NotState
    }
}

/// What limit `l` of `req` asks of its state (the BURST option applies to
/// GCRA; every other strategy's burst is its amount).
fn quota(req: &Request, limit: &Limit) -> Quota {
    Quota {
        amount: limit.amount,
        window_ms: limit.window_ms,
        burst: req.burst.unwrap_or(limit.amount),
    }
}

/// One limit's verdict on a hit of `cost`, from the stored state.
fn evaluate_limit(
    value: &[u8],
    records: &[Record],
    req: &Request,
    limit: &Limit,
    c: u64,
    now: u64,
) -> Result<LimitEval, EngineError> {
    Ok(judge(req, limit_state(value, records, req, limit)?, limit, c, now)?.0)
}

/// The decoded state that `records` (the index of `value`) hold for limit
/// `l` of `req`; `None` when it has none yet.
fn limit_state<'a>(
    value: &'a [u8],
    records: &[Record],
    req: &Request,
    limit: &Limit,
) -> Result<Option<State<'a>>, EngineError> {
    Ok(match find(records, req.strategy, limit.window_ms) {
        Some(r) => Some(r.state(value)?),
        None => None,
    })
}

/// One limit's verdict on a hit of `cost` given its stored state, and what
/// to write if it is admitted with a cost.
fn judge(
    req: &Request,
    state: Option<State>,
    limit: &Limit,
    cost: u64,
    now: u64,
) -> Result<(LimitEval, Option<Next>), EngineError> {
    Ok(strategy::judge(
        req.strategy,
        state,
        quota(req, limit),
        cost,
        now,
    )?)
}

/// What [`decide`] learned about a value, handed to [`commit`] so that a
/// hit reads the value once: its record index, for a single limit what
/// judging the hit computed for its write, and the key's penalty.
#[derive(Clone, Debug)]
pub struct Plan {
    records: Records,
    next: Option<Next>,
    /// The end of the penalty this denied hit starts (RL.HIT writes it).
    starts_penalty: Option<u64>,
    /// A penalty in force denied the hit.
    locked: bool,
}

impl Plan {
    /// Whether [`commit`] has something to write: an admitted hit with a
    /// cost, or a breach that starts a penalty.
    pub fn writes(&self, verdict: &Verdict, req: &Request) -> bool {
        (verdict.allowed && req.cost > 0) || self.starts_penalty.is_some()
    }

    /// Whether this hit starts a penalty.
    pub fn starts_penalty(&self) -> bool {
        self.starts_penalty.is_some()
    }

    /// Whether a penalty in force denied this hit.
    pub fn locked(&self) -> bool {
        self.locked
    }
}

/// What RL.HIT would answer at `now` (RL.TEST answers exactly this), and
/// the [`Plan`] that [`commit`] takes if it is admitted. `value` is `None`
/// when the key does not exist.
pub fn decide(
    value: Option<&[u8]>,
    req: &Request,
    now: u64,
) -> Result<(Verdict, Plan), EngineError> {
    check_clock(now)?;
    if req.limits.len() == 1 {
        // One limit: judged once, its new state handed to commit. The common
        // value (a new key, or just the one record this limit keeps) is read
        // without building the general index.
        let l = req.limits.get(0);
        let (records, state) = match value {
            None => (Records::empty(), None),
            Some(v) => match record::single(v, req.strategy, l.window_ms) {
                Some((r, state)) => (Records::one(r), Some(state)),
                None => {
                    let records = index(v)?;
                    let state = limit_state(v, &records, req, l)?;
                    (records, state)
                }
            },
        };
        let (e, next) = judge(req, state, l, req.cost, now)?;
        return Ok(with_penalty(Verdict::from(e), records, next, req, now));
    }
    let (value, records) = match value {
        Some(v) => (v, index(v)?),
        None => (&[][..], Records::empty()),
    };
    let mut evals = [None; crate::limit::MAX_LIMITS];
    for (i, l) in req.limits.iter().enumerate() {
        evals[i] = Some(evaluate_limit(value, &records, req, l, req.cost, now)?);
    }
    let reply = combine(evals.iter().flatten().copied()).expect("at least one limit");
    Ok(with_penalty(reply, records, None, req, now))
}

/// The verdict and plan once the key's penalty is counted: one in force
/// denies the hit; else a breach with `PENALTY d` starts one, and the hit
/// already replies as locked.
fn with_penalty(
    verdict: Verdict,
    records: Records,
    next: Option<Next>,
    req: &Request,
    now: u64,
) -> (Verdict, Plan) {
    let mut plan = Plan {
        records,
        next,
        starts_penalty: None,
        locked: false,
    };
    if let Some(left) = plan.records.penalty.and_then(|p| p.left(now)) {
        plan.locked = true;
        plan.next = None;
        return (penalty::apply(verdict, left), plan);
    }
    match req.penalty {
        Some(d) if penalty::breached(&verdict, req.cost) => {
            plan.starts_penalty = Some(now + d);
            (penalty::apply(verdict, d), plan)
        }
        _ => (verdict, plan),
    }
}

/// One limit's line of RL.STATS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitStats {
    pub limit: u64,
    pub window_ms: u64,
    pub strategy: Strategy,
    pub remaining: u64,
    pub reset_after: u64,
    pub retry_after: i64,
    /// ms left of the key's penalty (0: none).
    pub penalty_ms: u64,
}

/// RL.STATS: the state of each limit, for a hit of cost 1.
pub fn stats(
    value: Option<&[u8]>,
    req: &Request,
    now: u64,
) -> Result<Vec<LimitStats>, EngineError> {
    // Reads only: any `now` whose arithmetic fits is fine.
    if now > crate::codec::MAX_TIME {
        return Err(EngineError::ClockOutOfRange);
    }
    let (value, records) = match value {
        Some(v) => (v, index(v)?),
        None => (&[][..], Records::empty()),
    };
    let penalty_ms = records.penalty.and_then(|p| p.left(now)).unwrap_or(0);
    req.limits
        .iter()
        .map(|l| {
            // One decode; judged as it is (cost 0) and for one more hit.
            let state = limit_state(value, &records, req, l)?;
            let now_state = judge(req, state, l, 0, now)?.0;
            let one = judge(req, state, l, 1, now)?.0;
            let (mut remaining, mut reset_after, mut retry_after) =
                (now_state.remaining, now_state.reset_after, one.retry_after);
            if penalty_ms > 0 {
                remaining = 0;
                (reset_after, retry_after) =
                    penalty::at_least(reset_after, retry_after, penalty_ms);
            }
            Ok(LimitStats {
                limit: now_state.limit,
                window_ms: l.window_ms,
                strategy: req.strategy,
                remaining,
                reset_after,
                retry_after,
                penalty_ms,
            })
        })
        .collect()
}

/// The key's expiry: the latest instant any record still counts usage.
pub fn expiry(value: &[u8], now: u64) -> Result<Option<u64>, EngineError> {
    latest_end(&index(value)?, value, now)
}

/// The latest instant any of `records` (the index of `value`) counts usage
/// or its penalty is in force.
fn latest_end(records: &Records, value: &[u8], now: u64) -> Result<Option<u64>, EngineError> {
    let mut end = records
        .penalty
        .filter(|p| p.left(now).is_some())
        .map(|p| p.end);
    if let Some(at) = records.leases {
        let (set, _) = lease::decode(value, at).ok_or(EngineError::NotState)?;
        end = end.max(set.latest_end(now));
    }
    for r in records.iter() {
        end = end.max(r.usage_end(value, now)?);
    }
    Ok(end)
}

/// Removes records that count no usage and that `keep` does not name, and
/// a penalty that ended.
fn prune<B: ValueBuf>(
    t: &mut Tracked<B>,
    now: u64,
    keep: impl Fn(&Record) -> bool,
) -> Result<(), EngineError> {
    let records = index(t.bytes())?;
    let mut gone = Vec::new();
    for r in records.iter() {
        if !keep(r) && r.usage_end(t.bytes(), now)?.is_none() {
            gone.push(r.at()..r.end());
        }
    }
    if let Some(p) = records.penalty.filter(|p| p.left(now).is_none()) {
        gone.push(p.at..p.at + penalty::LEN);
    }
    gone.sort_by_key(|r| r.start);
    for r in gone.into_iter().rev() {
        t.splice(r, &[]);
    }
    Ok(())
}

/// The value size past which a hit may not grow it (half the most a value
/// may reach, so that a log doubling its room stays below that).
pub const VALUE_GUARD: usize = MAX_VALUE_LEN / 2;

/// Whether a hit on `value` (indexed as `records`) may write, judged on
/// what the write would leave: past `guard` bytes, the moving-window logs
/// are compacted first (entries that stopped counting and spare room go, as
/// do logs with nothing left), and only if the value would still pass
/// `guard` is the hit refused. `Ok(true)`: compact before writing.
fn value_guard(
    value: &[u8],
    records: &[Record],
    req: &Request,
    now: u64,
    guard: usize,
) -> Result<bool, EngineError> {
    if value.len() <= guard {
        return Ok(false);
    }
    let mut kept = value.len();
    for r in records {
        kept -= match r.state(value)?.reclaimable(r.window_ms, now)? {
            Some(free) => free,
            None => r.end() - r.at(),
        };
    }
    if kept + MAX_ENTRY_LEN * req.limits.len() > guard {
        return Err(EngineError::TooLarge);
    }
    Ok(true)
}

/// Rewrites every record of `t` that grows with use (moving-window logs)
/// with only what counts at `now` and no spare room, and drops those with
/// nothing left.
fn compact_logs<B: ValueBuf>(t: &mut Tracked<B>, now: u64) -> Result<(), EngineError> {
    let records = index(t.bytes())?;
    // Every new body first, so that a log that does not decode changes
    // nothing.
    let mut bodies = Vec::new();
    for r in records.as_slice() {
        bodies.push((*r, r.state(t.bytes())?.compacted(r.window_ms, now)?));
    }
    for (r, body) in bodies.into_iter().rev() {
        match body {
            Rewrite::Keep => {}
            Rewrite::Drop => t.splice(r.at()..r.end(), &[]),
            Rewrite::Body(body) => t.splice(r.body()..r.end(), &body),
            Rewrite::Patch(patches) => {
                for (at, bytes) in patches {
                    t.write(r.body() + at, &bytes);
                }
            }
        }
    }
    Ok(())
}

/// The refusals an admitted hit meets before it writes anything: a clock
/// past the storable range, a value too large to grow, a moving-window log
/// that would pass `max_log_bytes` of live entries. RL.TEST asks the same
/// (through [`would_refuse`]) so that it replies what RL.HIT would.
fn write_guard(
    value: &[u8],
    records: &[Record],
    req: &Request,
    now: u64,
    bounds: Bounds,
) -> Result<bool, EngineError> {
    check_clock(now)?;
    let compact = value_guard(value, records, req, now, bounds.value)?;
    if strategy::grows(req.strategy) {
        for l in req.limits.iter() {
            let Some(r) = find(records, req.strategy, l.window_ms) else {
                continue;
            };
            if r.state(value)?.would_pass(l.window_ms, now, bounds.log)? {
                return Err(EngineError::LogFull(bounds.log));
            }
        }
    }
    Ok(compact)
}

/// The size bounds a write keeps to: the live bytes of one moving-window
/// log (`ratelimit.moving-window-max-bytes`) and the whole value.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub log: usize,
    pub value: usize,
}

impl Bounds {
    /// The module's bounds for a given log limit.
    pub fn with_log(log: usize) -> Bounds {
        Bounds {
            log,
            value: VALUE_GUARD,
        }
    }
}

/// RL.HIT on a value kept in a `Vec` (empty: no key), as the module runs
/// it: decide, then commit the plan when admitted with a cost.
#[cfg(test)]
pub(crate) fn hit_vec(
    value: &mut Vec<u8>,
    req: &Request,
    now: u64,
    bounds: Bounds,
) -> Result<(Verdict, Option<u64>), EngineError> {
    let (verdict, plan) = decide((!value.is_empty()).then_some(&value[..]), req, now)?;
    if !plan.writes(&verdict, req) {
        return Ok((verdict, None));
    }
    let mut t = Tracked::new(value);
    Ok((
        verdict,
        Some(commit(&mut t, &mut { plan }, req, now, bounds)?),
    ))
}

/// RL.TEST: what RL.HIT would reply on `value` at `now`, its verdict or
/// the refusal an admitted hit meets before writing (a full log, say),
/// judged on one index of the value; and whether a penalty in force
/// denied it.
pub fn test(
    value: Option<&[u8]>,
    req: &Request,
    now: u64,
    max_log_bytes: usize,
) -> Result<(Verdict, bool), EngineError> {
    let (reply, plan) = decide(value, req, now)?;
    if reply.allowed && req.cost > 0 {
        let bytes = value.unwrap_or_default();
        write_guard(
            bytes,
            &plan.records,
            req,
            now,
            Bounds::with_log(max_log_bytes),
        )?;
    }
    Ok((reply, plan.locked))
}

/// Charges an admitted hit (`decide` said allowed, `req.cost > 0`) to every
/// limit, in place, within `bounds`, and returns the key's new expiry.
/// `plan` is what [`decide`] made of the same bytes, request and `now` (an
/// empty buffer is a new key): the value is indexed again only after a
/// record changed size (a splice moves the records after it), and a single
/// limit is not judged twice. A refusal (a size guard) changes nothing.
pub fn commit<B: ValueBuf>(
    t: &mut Tracked<B>,
    plan: &mut Plan,
    req: &Request,
    now: u64,
    bounds: Bounds,
) -> Result<u64, EngineError> {
    let Plan {
        records,
        next,
        starts_penalty,
        ..
    } = plan;
    let starts_penalty = *starts_penalty;
    debug_assert!(
        reindex(t.bytes()).is_ok_and(|r| r.as_slice() == records.as_slice()),
        "records are the index of these bytes"
    );
    if let Some(end) = starts_penalty {
        return start_penalty(t, records, end, now);
    }
    if write_guard(t.bytes(), records, req, now, bounds)? {
        compact_logs(t, now)?;
        *records = reindex(t.bytes())?;
    }
    let all_named = drop_idle_records(t, records, req, now)?;
    // When every record is one of these limits', each is rewritten below
    // and, when each write knows its record's new usage end (fixed-size
    // states), the key's expiry is the latest of them: nothing is decoded
    // again.
    // (A lease record counts too: then the expiry is read from the value.)
    let mut ends = (all_named && records.leases.is_none()).then_some(None);
    let n = req.limits.len();
    for (i, l) in req.limits.iter().enumerate() {
        let len = t.bytes().len();
        let rec = find(records, req.strategy, l.window_ms);
        let next = match next.take() {
            Some(judged) if n == 1 => judged,
            _ => {
                let state = match rec {
                    Some(r) => Some(r.state(t.bytes())?),
                    None => None,
                };
                judge(req, state, l, req.cost, now)?
                    .1
                    .ok_or(EngineError::NotState)?
            }
        };
        let end = strategy::write(t, records, rec, next, quota(req, l), req.cost, now)?;
        ends = match (ends, end) {
            (Some(latest), Some(end)) => Some(latest.max(Some(end))),
            _ => None,
        };
        let last = i + 1 == n;
        if (t.bytes().len() != len || rec.is_none()) && !(last && ends.is_some()) {
            *records = reindex(t.bytes())?;
        }
    }
    match ends {
        Some(latest) => latest.ok_or(EngineError::NotState),
        None => latest_end(records, t.bytes(), now)?.ok_or(EngineError::NotState),
    }
}

/// Writes the penalty a breach starts, ending at `end` (over one that
/// ended, or as a new record at the end of the value), and returns the
/// key's new expiry: the penalty's end or later.
fn start_penalty<B: ValueBuf>(
    t: &mut Tracked<B>,
    records: &Records,
    end: u64,
    now: u64,
) -> Result<u64, EngineError> {
    check_clock(now)?;
    let record = penalty::encode(end);
    match records.penalty {
        Some(p) => t.write(p.at, &record),
        None => {
            let len = t.bytes().len();
            t.splice(len..len, &record);
        }
    }
    let later = latest_end(&reindex(t.bytes())?, t.bytes(), now)?;
    Ok(later.map_or(end, |e| e.max(end)))
}

/// Drops the records of other limits that hold no usage any more (the
/// index follows); returns whether every record left is one of `req`'s.
fn drop_idle_records<B: ValueBuf>(
    t: &mut Tracked<B>,
    records: &mut Records,
    req: &Request,
    now: u64,
) -> Result<bool, EngineError> {
    let named = |r: &Record| {
        r.strategy == req.strategy && req.limits.iter().any(|l| l.window_ms == r.window_ms)
    };
    // A penalty that ended stays until a new one takes its place (dropping
    // it would shrink the value, and a large one would then be replicated
    // whole).
    if records.iter().all(named) {
        return Ok(true);
    }
    let len = t.bytes().len();
    prune(t, now, named)?;
    if t.bytes().len() != len {
        *records = reindex(t.bytes())?;
    }
    Ok(false)
}

/// The index of a value the engine just wrote; an empty one has no records.
fn reindex(value: &[u8]) -> Result<Records, EngineError> {
    if value.is_empty() {
        Ok(Records::empty())
    } else {
        Ok(index(value)?)
    }
}

/// RL.CLEAR with limits: removes those limits' records. Returns how many of
/// them still counted usage, and the key's new expiry (`None`: delete it).
pub fn clear_limits<B: ValueBuf>(
    t: &mut Tracked<B>,
    req: &Request,
    now: u64,
) -> Result<(u64, Option<u64>), EngineError> {
    check_clock(now)?;
    let records = index(t.bytes())?;
    let mut removed = 0;
    for r in records.as_slice().iter().rev() {
        let named =
            r.strategy == req.strategy && req.limits.iter().any(|l| l.window_ms == r.window_ms);
        if named {
            if r.usage_end(t.bytes(), now)?.is_some() {
                removed += 1;
            }
            t.splice(r.at()..r.end(), &[]);
        }
    }
    if t.bytes().is_empty() {
        return Ok((removed, None));
    }
    prune(t, now, |_| false)?;
    if t.bytes().is_empty() {
        return Ok((removed, None));
    }
    Ok((removed, expiry(t.bytes(), now)?))
}

/// What a refund, an acquire or a release did to a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Nothing to give back: nothing was written.
    Unchanged,
    /// Nothing is left: delete the key.
    Emptied,
    /// The value changed; the key's new expiry.
    Changed(u64),
}

/// RL.REFUND: gives `req.cost` back to every limit of `req` that holds
/// usage (each kind says how, [`crate::strategy::Kind::refund`]); states
/// left without usage go, and the key when nothing in it counts any more.
/// Nothing else is touched (other limits' idle states, a penalty: removing
/// them would shrink the value, and a large one would then be replicated
/// whole). A refund that gives nothing back changes nothing.
pub fn refund<B: ValueBuf>(
    t: &mut Tracked<B>,
    req: &Request,
    now: u64,
) -> Result<Written, EngineError> {
    check_clock(now)?;
    let records = index(t.bytes())?;
    // Every new body first, so that a state that does not decode changes
    // nothing.
    let mut rewrites = Vec::new();
    for l in req.limits.iter() {
        let Some(r) = find(&records, req.strategy, l.window_ms) else {
            continue;
        };
        match r.state(t.bytes())?.refund(quota(req, l), req.cost, now)? {
            Rewrite::Keep => {}
            rewrite => rewrites.push((r, rewrite)),
        }
    }
    if rewrites.is_empty() {
        return Ok(Written::Unchanged);
    }
    rewrites.sort_by_key(|(r, _)| r.at());
    for (r, rewrite) in rewrites.into_iter().rev() {
        match rewrite {
            Rewrite::Keep => {}
            Rewrite::Drop => t.splice(r.at()..r.end(), &[]),
            Rewrite::Body(body) => t.splice(r.body()..r.end(), &body),
            Rewrite::Patch(patches) => {
                for (at, bytes) in patches {
                    t.write(r.body() + at, &bytes);
                }
            }
        }
    }
    if t.bytes().is_empty() {
        return Ok(Written::Emptied);
    }
    Ok(match expiry(t.bytes(), now)? {
        Some(end) => Written::Changed(end),
        None => Written::Emptied,
    })
}

/// What RL.ACQUIRE did: its reply, the key's new expiry when the lease was
/// granted (and written), and how many ended leases it forgot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acquired {
    pub grant: Grant,
    pub expiry: Option<u64>,
    pub forgotten: usize,
}

/// RL.ACQUIRE key max lease token (see [`Acquired`]); a denied acquire
/// writes nothing. Penalties do not concern leases.
pub fn acquire<B: ValueBuf>(
    t: &mut Tracked<B>,
    max: u64,
    lease_ms: u64,
    token: &[u8],
    now: u64,
) -> Result<Acquired, EngineError> {
    check_clock(now)?;
    let records = reindex(t.bytes())?;
    let set = match records.leases {
        Some(at) => Some(lease::decode(t.bytes(), at).ok_or(EngineError::NotState)?.0),
        None => None,
    };
    let (grant, take) = lease::acquire(set.as_ref(), max, lease_ms, token, now);
    if take == Take::Denied {
        return Ok(Acquired {
            grant,
            expiry: None,
            forgotten: 0,
        });
    }
    let forgotten = lease::write_acquire(t, records.leases, take, token, now);
    let expiry = latest_end(&reindex(t.bytes())?, t.bytes(), now)?;
    Ok(Acquired {
        grant,
        expiry: Some(expiry.ok_or(EngineError::NotState)?),
        forgotten,
    })
}

/// RL.RELEASE key token: whether a live lease of `token` ended, and what
/// that left of the value (a release that ends nothing writes nothing).
pub fn release<B: ValueBuf>(
    t: &mut Tracked<B>,
    token: &[u8],
    now: u64,
) -> Result<(bool, Written), EngineError> {
    check_clock(now)?;
    let records = reindex(t.bytes())?;
    let Some(at) = records.leases else {
        return Ok((false, Written::Unchanged));
    };
    if !lease::release(t, at, token, now) {
        return Ok((false, Written::Unchanged));
    }
    if t.bytes().is_empty() {
        return Ok((true, Written::Emptied));
    }
    Ok((
        true,
        match latest_end(&reindex(t.bytes())?, t.bytes(), now)? {
            Some(end) => Written::Changed(end),
            None => Written::Emptied,
        },
    ))
}

/// Re-exported for the glue: the record index of a value.
pub fn check(value: &[u8]) -> Result<(), EngineError> {
    record::index(value).map(|_| ()).map_err(EngineError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Command, parse_request};

    #[test]
    fn a_full_log_refuses_the_hit_and_changes_nothing() {
        let opts: [&[u8]; 2] = [b"STRATEGY", b"moving"];
        let req = parse_request(Command::Hit, b"1000000/h;10/s", &opts).unwrap();
        let small = parse_request(Command::Hit, b"1000000/h", &opts).unwrap();
        let mut value = Vec::new();
        let mut now = 1_700_000_000_000;
        // Grow the hour log past 4096 bytes (entries 1 ms apart: 1 byte each).
        for _ in 0..5000 {
            now += 1;
            hit_vec(&mut value, &small, now, Bounds::with_log(8192)).unwrap();
        }
        let before = value.clone();
        assert_eq!(
            hit_vec(&mut value, &req, now, Bounds::with_log(4096)),
            Err(EngineError::LogFull(4096))
        );
        assert_eq!(value, before, "nothing may change");
        assert!(hit_vec(&mut value, &req, now, Bounds::with_log(1 << 20)).is_ok());
    }

    /// The stuck key of the red team's report, in simulated time: seven
    /// moving-window limits on one key, a hit every 7 ms for 30 minutes.
    /// Entries that stopped counting and spare room pile up past the value
    /// guard; the guard must judge what the write leaves (compacting), so
    /// every hit the limits admit is admitted and the value stays bounded.
    #[test]
    fn a_value_past_the_guard_is_compacted_never_stuck() {
        let opts: [&[u8]; 2] = [b"STRATEGY", b"moving"];
        let limits =
            b"1000000/1s;1000000/2s;1000000/3s;1000000/4s;1000000/5s;1000000/6s;1000000/7s";
        let req = parse_request(Command::Hit, limits, &opts).unwrap();
        // Live entries alone take about 6.7 KB here (four of the logs are
        // rings); dead blocks and spare room take the value past 7 KB.
        let bounds = Bounds {
            log: 1 << 20,
            value: 7 * 1024,
        };
        let mut value = Vec::new();
        let start = 1_700_000_000_000u64;
        let mut now = start;
        let (mut hits, mut largest, mut over_guard) = (0u64, 0usize, 0u64);
        while now < start + 30 * 60 * 1000 {
            now += 7;
            let (reply, plan) = decide(
                Some(&value).filter(|v| !v.is_empty()).map(|v| v.as_slice()),
                &req,
                now,
            )
            .unwrap();
            assert!(reply.allowed, "hit {hits} at +{} ms denied", now - start);
            let before = value.len();
            over_guard += u64::from(before > bounds.value);
            let mut t = Tracked::new(&mut value);
            commit(&mut t, &mut { plan }, &req, now, bounds)
                .unwrap_or_else(|e| panic!("hit {hits} at +{} ms refused: {e:?}", now - start));
            largest = largest.max(value.len());
            hits += 1;
        }
        // A write the guard lets through may double one log's room: the
        // value stays below twice the guard (MAX_VALUE_LEN in the module).
        assert!(largest <= 2 * bounds.value, "value reached {largest} bytes");
        // Decisions stay exact: each window counts the hits of its last W ms.
        let st = stats(Some(&value), &req, now).unwrap();
        for (i, s) in st.iter().enumerate() {
            let w = (i as u64 + 1) * 1000;
            let live = (0..hits).filter(|k| start + 7 * (k + 1) + w > now).count() as u64;
            assert_eq!(1_000_000 - s.remaining, live, "window {w} ms");
        }
        // Hits that found the value past the guard: each one a guard on the
        // whole value (dead entries and spare room included) refused, and
        // none could ever shrink it again.
        assert!(over_guard > 0, "no hit met a value past the guard");
    }
}
