//! Sections 11 (penalties: lockout after a breach) and 12 (RL.REFUND), with
//! what they touch in sections 3, 4, 5, 6, 8 and 9: replies, RL.STATS'
//! `penalty_ms`, TTLs, RL.CLEAR, writes (replication, AOF, WATCH, keyspace
//! notifications), errors, command metadata and the `INFO ratelimit`
//! counters `ratelimit_penalties_started`, `ratelimit_calls_denied_by_penalty`
//! and `ratelimit_refund_calls`.
//!
//! Time-dependent checks use millisecond windows and sub-second penalties,
//! and bound "the penalty left" from the client's clock: a penalty of `d`
//! started by a call sent at `b0` and answered at `a0` has, at a call sent
//! at `b` and answered at `a`, between `d - (a - b0)` and `d - (b - a0)` ms
//! left (1 ms either side for rounding).

mod common;
use common::checks::*;
use common::*;
use std::time::{Duration, Instant};

const STRATEGIES: [&str; 4] = ["fixed", "sliding", "moving", "gcra"];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A penalty of `d` ms started by a call sent at `before` and answered at
/// `after`.
#[derive(Clone, Copy, Debug)]
struct Pen {
    before: Instant,
    after: Instant,
    d: i64,
}

impl Pen {
    /// Bounds (inclusive) of the penalty left at a call sent at `b` and
    /// answered at `a`.
    fn left(&self, b: Instant, a: Instant) -> (i64, i64) {
        let lo = self.d - ceil_ms(a.saturating_duration_since(self.before)) - 1;
        let hi = self.d - floor_ms(b.saturating_duration_since(self.after)) + 1;
        (lo.max(0), hi)
    }

    /// Sleeps until the penalty has surely ended, plus `margin` ms.
    fn wait_end(&self, margin: i64) {
        let end = self.after + Duration::from_millis((self.d + margin) as u64);
        let now = Instant::now();
        if end > now {
            std::thread::sleep(end - now);
        }
    }
}

/// `RL.HIT key limits opts... PENALTY <d>ms`, which must start a penalty:
/// denied, remaining 0, reset and retry at least `d`.
#[track_caller]
fn start_penalty(
    c: &mut Connection,
    key: &str,
    limits: &str,
    opts: &[&str],
    d: i64,
) -> (Pen, [i64; 5]) {
    let dtext = format!("{d}ms");
    let mut o: Vec<&str> = opts.to_vec();
    o.extend(["PENALTY", dtext.as_str()]);
    let (r, b, a) = timed(|| hit(c, key, limits, &o));
    assert_eq!(r[0], 0, "the breach with PENALTY {d}ms was admitted: {r:?}");
    assert_eq!(r[2], 0, "remaining of the hit that starts a penalty: {r:?}");
    assert!(r[3] >= d, "reset_after_ms {} < penalty {d}: {r:?}", r[3]);
    assert!(r[4] >= d, "retry_after_ms {} < penalty {d}: {r:?}", r[4]);
    let pen = Pen {
        before: b,
        after: a,
        d,
    };
    (pen, r)
}

/// A reply given under a penalty: denied, remaining 0, `limit` as given
/// (when Some), reset and retry at least the penalty left (retry may be
/// -1). With `exact`, the limits would admit the call on their own (their
/// retry is 0), so `retry_after_ms` is the penalty left. (`reset_after_ms`
/// is only bounded below: the normal evaluation of a cost-1 hit on a limit
/// without state reports the reset after that hit, the full window, which
/// may be longer than the penalty left.)
#[track_caller]
fn assert_locked(
    r: [i64; 5],
    pen: &Pen,
    b: Instant,
    a: Instant,
    limit: Option<i64>,
    exact: bool,
    what: &str,
) {
    let (lo, hi) = pen.left(b, a);
    assert_eq!(r[0], 0, "{what}: admitted under a penalty: {r:?}");
    assert_eq!(r[2], 0, "{what}: remaining under a penalty: {r:?}");
    if let Some(l) = limit {
        assert_eq!(r[1], l, "{what}: limit: {r:?}");
    }
    assert!(
        r[3] >= lo,
        "{what}: reset_after_ms {} < penalty left >= {lo}: {r:?}",
        r[3]
    );
    assert!(
        r[4] == -1 || r[4] >= lo,
        "{what}: retry_after_ms {} < penalty left >= {lo}: {r:?}",
        r[4]
    );
    if exact {
        assert_between(
            r[4],
            lo,
            hi,
            &format!("{what}: retry_after_ms = penalty left ({r:?})"),
        );
    }
}

/// One limit's entry of an RL.STATS reply, with `penalty_ms`.
#[derive(Debug, Clone, PartialEq)]
struct PStat {
    limit: i64,
    window_ms: i64,
    strategy: String,
    remaining: i64,
    reset: i64,
    retry: i64,
    penalty: i64,
}

/// The harness's parse (which checks the seven names), in this file's
/// field names.
fn pstat_from(v: &Value) -> PStat {
    let s = stat_from(v);
    PStat {
        limit: s.limit,
        window_ms: s.window_ms,
        strategy: s.strategy,
        remaining: s.remaining,
        reset: s.reset_after_ms,
        retry: s.retry_after_ms,
        penalty: s.penalty_ms,
    }
}

/// `RL.STATS key limits opts...`, parsed with `penalty_ms`.
fn pstats(c: &mut Connection, key: &str, limits: &str, opts: &[&str]) -> Vec<PStat> {
    let mut words = vec!["RL.STATS", key, limits];
    words.extend_from_slice(opts);
    match raw(c, &words) {
        Ok(Value::Array(items)) => items.iter().map(pstat_from).collect(),
        Ok(other) => panic!("{words:?}: expected an array, got {other:?}"),
        Err(e) => panic!("{words:?} failed: {}", err_text(&e)),
    }
}

/// `penalty_ms` of `key` as RL.STATS reports it.
fn penalty_ms(c: &mut Connection, key: &str) -> i64 {
    pstats(c, key, "1/h", &[])[0].penalty
}

/// `RL.REFUND key limits opts...` → the five integers.
#[track_caller]
fn refund(c: &mut Connection, key: &str, limits: &str, opts: &[&str]) -> [i64; 5] {
    let mut words = vec!["RL.REFUND", key, limits];
    words.extend_from_slice(opts);
    match raw(c, &words) {
        Ok(v) => five(v, &format!("{words:?}")),
        Err(e) => panic!("{words:?} failed: {}", err_text(&e)),
    }
}

fn with(opts: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    let mut v = opts.to_vec();
    v.extend_from_slice(more);
    v
}

fn strat(s: &'static str) -> [&'static str; 2] {
    ["STRATEGY", s]
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) | Value::Set(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Map(m) => m.iter().for_each(|(k, x)| {
            collect_strings(k, out);
            collect_strings(x, out)
        }),
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => {
            out.push(to_string(v))
        }
        _ => {}
    }
}

const COST_ERR: &str = "ERR COST must be an integer from 1 to 4294967295";
const SYNTAX_PENALTY: &str = "ERR syntax error near 'PENALTY'";

// ---------------------------------------------------------------------------
// 11. PENALTY d: grammar and errors
// ---------------------------------------------------------------------------

#[test]
fn penalty_duration_is_written_like_a_window() {
    let s = Server::start();
    let mut c = s.conn();
    let y10 = 3650 * DAY;
    let cases: Vec<(&str, i64)> = vec![
        ("500ms", 500),
        ("30s", 30 * SECOND),
        ("15m", 15 * MINUTE),
        ("hour", HOUR),
        ("2 days", 2 * DAY),
        ("1 ms", 1),
        ("1ms", 1),
        ("ms", 1),
        ("s", SECOND),
        ("1500 msec", 1500),
        ("2 secs", 2 * SECOND),
        ("3 seconds", 3 * SECOND),
        ("1 min", MINUTE),
        ("2 minutes", 2 * MINUTE),
        ("1h", HOUR),
        ("2 hrs", 2 * HOUR),
        ("HOUR", HOUR),
        ("Hours", HOUR),
        ("1d", DAY),
        ("week", 7 * DAY),
        ("2w", 14 * DAY),
        ("1mo", 30 * DAY),
        ("1 yr", 365 * DAY),
        ("10 years", y10),
        ("10y", y10),
        ("3650d", y10),
        ("315360000000ms", y10),
    ];
    for (i, (text, ms)) in cases.iter().enumerate() {
        let key = format!("g{i}");
        // 1/1000ms used up: the limit's own times are at most 1000 ms.
        assert_eq!(hit(&mut c, &key, "1/1000ms", &[])[0], 1);
        let (r, b, _a) = timed(|| hit(&mut c, &key, "1/1000ms", &["PENALTY", text]));
        assert_eq!(&r[..3], &[0, 1, 0], "PENALTY {text:?}: {r:?}");
        if *ms >= 1000 {
            assert_between(
                r[3],
                *ms,
                ms + 1,
                &format!("PENALTY {text:?}: reset_after_ms"),
            );
            assert_between(
                r[4],
                *ms,
                ms + 1,
                &format!("PENALTY {text:?}: retry_after_ms"),
            );
        } else {
            assert!(r[4] >= 1 && r[4] <= 1000, "PENALTY {text:?}: {r:?}");
        }
        let p = penalty_ms(&mut c, &key);
        let lo = ms - ceil_ms(b.elapsed()) - 1;
        assert_between(p, lo.max(0), *ms, &format!("PENALTY {text:?}: penalty_ms"));
    }
    // Case-insensitive option name.
    assert_eq!(hit(&mut c, "ci", "1/h", &[])[0], 1);
    let r = hit(&mut c, "ci", "1/h", &["penalty", "2h"]);
    assert_eq!(&r[..3], &[0, 1, 0]);
    assert_between(r[4], 2 * HOUR, 2 * HOUR + 1, "penalty 2h retry");
}

#[test]
fn bare_number_penalty_is_an_error_naming_the_text() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "1/h", &[]);
    let before = dump(&mut c, "k");
    for cmd in ["RL.HIT", "RL.TEST"] {
        for (key, limits) in [("k", "1/h"), ("new", "1/h"), ("k", "10/h")] {
            for text in ["5", "5000", "1"] {
                let e = err(&mut c, &[cmd, key, limits, "PENALTY", text]);
                let prefix = format!("ERR invalid PENALTY '{text}': ");
                assert!(e.starts_with(&prefix), "{cmd} {key} PENALTY {text}: {e}");
                assert!(e.len() > prefix.len(), "no reason given: {e}");
            }
        }
    }
    assert_eq!(dump(&mut c, "k"), before, "an invalid PENALTY wrote");
    assert!(!exists(&mut c, "new"), "an invalid PENALTY created a key");
    assert_eq!(penalty_ms(&mut c, "k"), 0);
}

#[test]
fn zero_too_large_and_garbage_penalties_are_errors_and_write_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    // `k` is used up: an accepted PENALTY would start a penalty.
    hit(&mut c, "k", "1/h", &[]);
    let before = dump(&mut c, "k");
    let exp = pexpiretime(&mut c, "k");
    let bad = [
        // zero
        "0s",
        "0ms",
        "0 hours",
        "0 days",
        "00s",
        // more than 10 years
        "11 years",
        "3651d",
        "3651 days",
        "315360000001ms",
        "522w",
        "122mo",
        "11y",
        "99999999999999999999999y",
        // garbage
        "soon",
        "5 fortnights",
        "fortnight",
        "-5s",
        "5s;5s",
        "1/s",
        "",
        "s5",
        "1.5s",
        "5 s s",
        "0x10s",
        "5s 5s",
        "10 per second",
        "1e3ms",
    ];
    for cmd in ["RL.HIT", "RL.TEST"] {
        for text in bad {
            let e = err(&mut c, &[cmd, "k", "1/h", "PENALTY", text]);
            let prefix = format!("ERR invalid PENALTY '{text}': ");
            assert!(e.starts_with(&prefix), "{cmd} PENALTY {text:?}: {e}");
            assert!(
                e.len() > prefix.len(),
                "{cmd} PENALTY {text:?}: no reason: {e}"
            );
            let e = err(&mut c, &[cmd, "fresh", "1/h", "PENALTY", text]);
            assert!(
                e.starts_with(&prefix),
                "{cmd} PENALTY {text:?} on a new key: {e}"
            );
        }
    }
    // PENALTY without a value.
    let e = err(&mut c, &["RL.HIT", "k", "1/h", "PENALTY"]);
    assert!(e.starts_with("ERR "), "{e}");
    assert_eq!(dump(&mut c, "k"), before, "an invalid PENALTY wrote");
    assert_eq!(pexpiretime(&mut c, "k"), exp);
    assert!(!exists(&mut c, "fresh"), "an invalid PENALTY created a key");
    assert_eq!(
        penalty_ms(&mut c, "k"),
        0,
        "an invalid PENALTY started a penalty"
    );
    // The key is not locked: another limit admits.
    assert_eq!(hit(&mut c, "k", "5/m", &[])[0], 1);
}

#[test]
fn penalty_on_stats_clear_or_refund_is_a_syntax_error() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "5/h", &["COST", "3"]);
    let before = dump(&mut c, "k");
    for args in [
        vec!["RL.STATS", "k", "5/h", "PENALTY", "1s"],
        vec!["RL.STATS", "k", "5/h", "STRATEGY", "fixed", "PENALTY", "1s"],
        vec!["RL.CLEAR", "k", "5/h", "PENALTY", "1s"],
        vec!["RL.CLEAR", "k", "5/h", "STRATEGY", "fixed", "PENALTY", "1s"],
        vec!["RL.REFUND", "k", "5/h", "PENALTY", "1s"],
        vec!["RL.REFUND", "k", "5/h", "COST", "2", "PENALTY", "1s"],
        vec![
            "RL.REFUND",
            "k",
            "5/h",
            "STRATEGY",
            "gcra",
            "BURST",
            "3",
            "PENALTY",
            "1s",
        ],
        vec!["RL.REFUND", "nokey", "5/h", "PENALTY", "1s"],
    ] {
        assert_eq!(err(&mut c, &args), SYNTAX_PENALTY, "{args:?}");
        assert_eq!(dump(&mut c, "k"), before, "{args:?} wrote");
    }
    assert!(!exists(&mut c, "nokey"));
    let st = pstats(&mut c, "k", "5/h", &[]);
    assert_eq!(st[0].remaining, 2, "a refused RL.REFUND refunded");
}

#[test]
fn repeated_penalty_is_a_syntax_error() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "1/h", &[]);
    let before = dump(&mut c, "k");
    for args in [
        vec!["RL.HIT", "k", "1/h", "PENALTY", "1s", "PENALTY", "1s"],
        vec![
            "RL.HIT", "k", "1/h", "PENALTY", "1s", "COST", "1", "PENALTY", "2s",
        ],
        vec!["RL.TEST", "k", "1/h", "PENALTY", "1s", "PENALTY", "1s"],
        vec!["RL.HIT", "new", "1/h", "PENALTY", "1h", "PENALTY", "1h"],
    ] {
        assert_eq!(err(&mut c, &args), SYNTAX_PENALTY, "{args:?}");
    }
    assert_eq!(dump(&mut c, "k"), before);
    assert!(!exists(&mut c, "new"));
    assert_eq!(penalty_ms(&mut c, "k"), 0);
}

// ---------------------------------------------------------------------------
// 11. Starting a penalty
// ---------------------------------------------------------------------------

#[test]
fn breach_with_penalty_starts_it_and_the_reply_says_so() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(
        hit(&mut c, "k", "3/300ms", &["COST", "3"]),
        [1, 3, 0, 300, 0]
    );
    let before = dump(&mut c, "k");
    let t0 = server_ms(&mut c);
    let (pen, r) = start_penalty(&mut c, "k", "3/300ms", &[], 1500);
    let t1 = server_ms(&mut c);
    // The window's own times are under 300 ms: both times are d.
    assert_eq!(&r[..3], &[0, 3, 0]);
    assert_between(r[3], 1500, 1501, "reset_after_ms of the starting hit");
    assert_between(r[4], 1500, 1501, "retry_after_ms of the starting hit");
    assert_ne!(
        dump(&mut c, "k"),
        before,
        "the penalty was not written into the key"
    );
    let (p, b, a) = timed(|| penalty_ms(&mut c, "k"));
    let (lo, hi) = pen.left(b, a);
    assert_between(p, lo, hi, "penalty_ms");
    let e = pexpiretime(&mut c, "k");
    assert_between(
        e,
        t0 + 1500,
        t1 + 1501,
        "the key lives until the penalty ends",
    );
    // Now locked, whatever is asked.
    let (r, b, a) = timed(|| test(&mut c, "k", "3/300ms", &["COST", "0"]));
    assert_locked(r, &pen, b, a, Some(3), true, "RL.TEST COST 0 right after");
}

#[test]
fn a_breach_starts_a_penalty_in_every_strategy() {
    let s = Server::start();
    let mut c = s.conn();
    for st in STRATEGIES {
        let key = format!("k-{st}");
        let o = strat(st);
        assert_eq!(
            hit(&mut c, &key, "2/200ms", &with(&o, &["COST", "2"]))[0],
            1,
            "{st}"
        );
        // The limits' own times are at most 2W = 400 ms.
        let (pen, r) = start_penalty(&mut c, &key, "2/200ms", &o, 1000);
        assert_eq!(&r[..3], &[0, 2, 0], "{st}");
        assert_between(r[3], 1000, 1001, &format!("{st}: reset"));
        assert_between(r[4], 1000, 1001, &format!("{st}: retry"));
        let (p, b, a) = timed(|| penalty_ms(&mut c, &key));
        let (lo, hi) = pen.left(b, a);
        assert_between(p, lo, hi, &format!("{st}: penalty_ms"));
        let (r, b, a) = timed(|| test(&mut c, &key, "2/200ms", &with(&o, &["COST", "0"])));
        assert_locked(r, &pen, b, a, Some(2), true, st);
    }
}

/// (command, limits, options, limit in the reply, times are the penalty left)
type Call = (
    &'static str,
    &'static str,
    Vec<&'static str>,
    Option<i64>,
    bool,
);

#[test]
fn under_a_penalty_every_hit_and_test_is_denied_and_consumes_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    // 2/d used up; no other limit below has state.
    hit(&mut c, "k", "2/d", &["COST", "2"]);
    let (pen, _) = start_penalty(&mut c, "k", "2/d", &[], 600);
    let d0 = dump(&mut c, "k");
    let e0 = pexpiretime(&mut c, "k");
    // (command, limits, options, limit in the reply, times are the penalty left)
    let calls: Vec<Call> = vec![
        ("RL.HIT", "2/d", vec![], Some(2), false),
        ("RL.HIT", "10/h", vec![], Some(10), true),
        ("RL.HIT", "10/h", vec!["COST", "0"], Some(10), true),
        ("RL.HIT", "10/h", vec!["COST", "5"], Some(10), true),
        ("RL.HIT", "10/h", vec!["PENALTY", "5s"], Some(10), true),
        ("RL.HIT", "10/h", vec!["STRATEGY", "moving"], Some(10), true),
        (
            "RL.HIT",
            "10/h",
            vec!["STRATEGY", "sliding", "COST", "3"],
            Some(10),
            true,
        ),
        (
            "RL.HIT",
            "10/h",
            vec!["STRATEGY", "gcra", "BURST", "20"],
            Some(20),
            true,
        ),
        (
            "RL.HIT",
            "10/h",
            vec!["STRATEGY", "token-bucket", "PENALTY", "1h"],
            Some(10),
            true,
        ),
        ("RL.HIT", "10/h;20/w", vec![], None, true),
        (
            "RL.HIT",
            "100/1s",
            vec!["COST", "0", "PENALTY", "1ms"],
            Some(100),
            true,
        ),
        ("RL.TEST", "2/d", vec![], Some(2), false),
        ("RL.TEST", "10/h", vec![], Some(10), true),
        ("RL.TEST", "10/h", vec!["COST", "0"], Some(10), true),
        ("RL.TEST", "10/h", vec!["PENALTY", "1s"], Some(10), true),
        (
            "RL.TEST",
            "10/h",
            vec!["STRATEGY", "moving"],
            Some(10),
            true,
        ),
        ("RL.TEST", "10/h", vec!["STRATEGY", "gcra"], Some(10), true),
    ];
    for (cmd, limits, opts, limit, exact) in &calls {
        let mut words = vec![*cmd, "k", *limits];
        words.extend(opts.iter());
        let (r, b, a) = timed(|| five(raw(&mut c, &words).unwrap(), cmd));
        assert_locked(r, &pen, b, a, *limit, *exact, &format!("{words:?}"));
        if !exact {
            // 2/d is used up: its own retry is about a day.
            assert_near(r[4], DAY, "own retry of 2/d");
        }
    }
    // COST 0 on limits without state: the normal times are 0, so both
    // times are the penalty left.
    for cmd in ["RL.HIT", "RL.TEST"] {
        let words = [cmd, "k", "10/h;20/w", "COST", "0"];
        let (r, b, a) = timed(|| five(raw(&mut c, &words).unwrap(), cmd));
        let (lo, hi) = pen.left(b, a);
        assert_between(r[3], lo, hi, &format!("{words:?}: reset_after_ms ({r:?})"));
        assert_between(r[4], lo, hi, &format!("{words:?}: retry_after_ms ({r:?})"));
    }
    assert_eq!(dump(&mut c, "k"), d0, "a hit denied under a penalty wrote");
    assert_eq!(pexpiretime(&mut c, "k"), e0);
    // After the penalty: nothing was consumed by any of those calls.
    pen.wait_end(60);
    assert_eq!(penalty_ms(&mut c, "k"), 0);
    let st = pstats(&mut c, "k", "2/d;10/h;20/w;100/1s", &[]);
    assert_eq!(st[0].remaining, 0, "2/d keeps its usage");
    for x in &st[1..] {
        assert_eq!(
            (x.remaining, x.reset, x.retry, x.penalty),
            (x.limit, 0, 0, 0),
            "{x:?}"
        );
    }
    for (o, l) in [
        (vec!["STRATEGY", "moving"], 10),
        (vec!["STRATEGY", "sliding"], 10),
        (vec!["STRATEGY", "gcra", "BURST", "20"], 20),
    ] {
        let x = &pstats(&mut c, "k", "10/h", &o)[0];
        assert_eq!(
            (x.remaining, x.reset, x.retry, x.penalty),
            (l, 0, 0, 0),
            "{o:?}: {x:?}"
        );
    }
    assert_eq!(hit(&mut c, "k", "10/h", &[]), [1, 10, 9, HOUR, 0]);
}

#[test]
fn under_a_penalty_a_never_admissible_hit_keeps_retry_minus_one() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "1/h", &[]);
    let (pen, _) = start_penalty(&mut c, "k", "1/h", &[], 800);
    for (cmd, limits, opts, limit) in [
        ("RL.HIT", "5/m", vec!["COST", "6"], 5),
        ("RL.TEST", "5/m", vec!["COST", "6"], 5),
        ("RL.HIT", "5/m", vec!["COST", "6", "PENALTY", "1s"], 5),
        ("RL.HIT", "5/h", vec!["COST", "6", "STRATEGY", "moving"], 5),
        (
            "RL.HIT",
            "10/h",
            vec!["STRATEGY", "gcra", "BURST", "2", "COST", "3"],
            2,
        ),
    ] {
        let mut words = vec![cmd, "k", limits];
        words.extend(opts.iter());
        let (r, b, a) = timed(|| five(raw(&mut c, &words).unwrap(), cmd));
        assert_locked(r, &pen, b, a, Some(limit), false, &format!("{words:?}"));
        assert_eq!(r[4], -1, "{words:?}: a -1 stays -1 under a penalty: {r:?}");
    }
}

#[test]
fn a_penalty_is_neither_extended_nor_shortened_by_later_calls() {
    let s = Server::start();
    let mut c = s.conn();
    // `a`: its window passes during the penalty (later hits would be
    // admitted but for the penalty). `b`: later hits breach on their own.
    assert_eq!(hit(&mut c, "a", "1/150ms", &[])[0], 1);
    let (pa, r) = start_penalty(&mut c, "a", "1/150ms", &[], 700);
    assert_between(r[4], 700, 701, "a: starting retry");
    assert_eq!(hit(&mut c, "b", "1/h", &[])[0], 1);
    let (pb, _) = start_penalty(&mut c, "b", "1/h", &[], 700);
    sleep_ms(200);
    for d in ["5s", "1ms", "1h", "700ms"] {
        let (r, b, a) = timed(|| hit(&mut c, "a", "1/150ms", &["PENALTY", d]));
        assert_locked(r, &pa, b, a, Some(1), true, &format!("a: PENALTY {d}"));
        let (r, b, a) = timed(|| test(&mut c, "a", "1/150ms", &["PENALTY", d]));
        assert_locked(
            r,
            &pa,
            b,
            a,
            Some(1),
            true,
            &format!("a: RL.TEST PENALTY {d}"),
        );
        let (r, b, a) = timed(|| hit(&mut c, "b", "1/h", &["PENALTY", d]));
        assert_locked(r, &pb, b, a, Some(1), false, &format!("b: PENALTY {d}"));
        for (key, pen) in [("a", &pa), ("b", &pb)] {
            let (p, b, a) = timed(|| penalty_ms(&mut c, key));
            let (lo, hi) = pen.left(b, a);
            assert_between(
                p,
                lo,
                hi,
                &format!("{key}: penalty_ms after a PENALTY {d} hit"),
            );
        }
    }
    // It ends when it was due to.
    pa.wait_end(60);
    pb.wait_end(60);
    assert_eq!(penalty_ms(&mut c, "a"), 0, "a: the penalty was extended");
    assert_eq!(penalty_ms(&mut c, "b"), 0, "b: the penalty was extended");
    // Nothing was consumed by the denied hits on `a`.
    assert_eq!(hit(&mut c, "a", "1/150ms", &[]), [1, 1, 0, 150, 0]);
}

#[test]
fn after_a_penalty_ends_a_new_breach_starts_a_new_one() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "1/h", &[]);
    let (p1, _) = start_penalty(&mut c, "k", "1/h", &[], 300);
    p1.wait_end(50);
    assert_eq!(penalty_ms(&mut c, "k"), 0);
    // Not locked any more: another limit admits (and 1/h still denies).
    assert_eq!(hit(&mut c, "k", "5/m", &[])[0], 1);
    let r = hit(&mut c, "k", "1/h", &[]);
    assert_eq!(&r[..3], &[0, 1, 0]);
    assert_near(r[4], HOUR, "own retry");
    // A new breach with PENALTY starts a new penalty.
    let (p2, _) = start_penalty(&mut c, "k", "1/h", &[], 500);
    let (p, b, a) = timed(|| penalty_ms(&mut c, "k"));
    let (lo, hi) = p2.left(b, a);
    assert_between(p, lo, hi, "penalty_ms of the second penalty");
    let (r, b, a) = timed(|| hit(&mut c, "k", "5/m", &[]));
    assert_locked(r, &p2, b, a, Some(5), true, "second penalty");
}

// ---------------------------------------------------------------------------
// 11. What does not start a penalty
// ---------------------------------------------------------------------------

#[test]
fn a_hit_that_can_never_pass_does_not_start_a_penalty() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "5/h", &["COST", "2"]);
    let d0 = dump(&mut c, "k");
    let e0 = pexpiretime(&mut c, "k");
    let r = hit(&mut c, "k", "5/h", &["COST", "6", "PENALTY", "1h"]);
    assert_eq!((r[0], r[1], r[2], r[4]), (0, 5, 3, -1), "{r:?}");
    assert_eq!(dump(&mut c, "k"), d0, "a never-admissible hit wrote");
    assert_eq!(pexpiretime(&mut c, "k"), e0);
    assert_eq!(penalty_ms(&mut c, "k"), 0);
    assert_eq!(&test(&mut c, "k", "5/h", &[])[..3], &[1, 5, 2]);
    // On a new key: nothing written, no key.
    for (o, limit) in [
        (vec!["COST", "6"], 5),
        (vec!["STRATEGY", "gcra", "BURST", "2", "COST", "3"], 2),
    ] {
        let mut o = o;
        o.extend(["PENALTY", "1h"]);
        let r = hit(&mut c, "fresh", "5/h", &o);
        assert_eq!((r[0], r[1], r[4]), (0, limit, -1), "{o:?}: {r:?}");
        assert!(!exists(&mut c, "fresh"), "{o:?} created a key");
    }
}

#[test]
fn a_cost_zero_denial_does_not_start_a_penalty() {
    let s = Server::start();
    let mut c = s.conn();
    for st in ["fixed", "sliding", "moving"] {
        let key = format!("k-{st}");
        let o = strat(st);
        hit(&mut c, &key, "5/h", &with(&o, &["COST", "3"]));
        let d0 = dump(&mut c, &key);
        // The limit lowered below the usage: even COST 0 is denied.
        let r = hit(
            &mut c,
            &key,
            "2/h",
            &with(&o, &["COST", "0", "PENALTY", "1h"]),
        );
        assert_eq!((r[0], r[1], r[2]), (0, 2, 0), "{st}: {r:?}");
        assert!(r[4] > 0, "{st}: a COST 0 denial has a finite retry: {r:?}");
        assert_eq!(dump(&mut c, &key), d0, "{st}: the COST 0 denial wrote");
        assert_eq!(penalty_ms(&mut c, &key), 0, "{st}");
        assert_eq!(
            &hit(&mut c, &key, "5/h", &o)[..3],
            &[1, 5, 1],
            "{st}: locked"
        );
    }
}

#[test]
fn rl_test_with_penalty_only_reports() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(hit(&mut c, "k", "1/300ms", &[])[0], 1);
    let d0 = dump(&mut c, "k");
    let e0 = pexpiretime(&mut c, "k");
    // What RL.HIT would reply: a penalty of 2 s starting now.
    let r = test(&mut c, "k", "1/300ms", &["PENALTY", "2s"]);
    assert_eq!(&r[..3], &[0, 1, 0], "{r:?}");
    assert_between(r[3], 2000, 2001, "RL.TEST PENALTY: reset_after_ms");
    assert_between(r[4], 2000, 2001, "RL.TEST PENALTY: retry_after_ms");
    // ... but nothing changed.
    assert_eq!(dump(&mut c, "k"), d0, "RL.TEST PENALTY wrote");
    assert_eq!(pexpiretime(&mut c, "k"), e0);
    assert_eq!(penalty_ms(&mut c, "k"), 0);
    let r = test(&mut c, "k", "1/300ms", &[]);
    assert_eq!(&r[..3], &[0, 1, 0]);
    assert!(r[3] <= 300 && r[4] <= 300, "not under a penalty: {r:?}");
    assert_eq!(test(&mut c, "k", "10/h", &[]), [1, 10, 9, HOUR, 0]);
    sleep_ms(320);
    assert_eq!(
        hit(&mut c, "k", "1/300ms", &[])[0],
        1,
        "RL.TEST PENALTY locked the key"
    );
    // RL.TEST PENALTY on a missing key writes nothing either.
    test(&mut c, "new", "1/h", &["COST", "5", "PENALTY", "1h"]);
    assert!(!exists(&mut c, "new"));
}

#[test]
fn an_admitted_hit_with_penalty_starts_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    let t0 = server_ms(&mut c);
    assert_eq!(
        hit(&mut c, "k", "3/h", &["PENALTY", "1d"]),
        [1, 3, 2, HOUR, 0]
    );
    let t1 = server_ms(&mut c);
    assert_eq!(
        &hit(&mut c, "k", "3/h", &["PENALTY", "1d"])[..3],
        &[1, 3, 1]
    );
    assert_eq!(penalty_ms(&mut c, "k"), 0);
    assert_eq!(&hit(&mut c, "k", "10/m", &[])[..3], &[1, 10, 9]);
    // The TTL is the window's, not a day.
    assert_between(pexpiretime(&mut c, "k"), t0 + HOUR, t1 + HOUR + 1, "TTL");
}

#[test]
fn with_several_limits_a_penalty_starts_iff_denied_and_retry_is_not_minus_one() {
    let s = Server::start();
    let mut c = s.conn();
    // Denied by one limit with a finite retry: starts.
    assert_eq!(hit(&mut c, "a", "5/h;1/m", &[])[0], 1);
    let (pen, r) = start_penalty(&mut c, "a", "5/h;1/m", &[], 1500);
    assert_eq!(r[1], 1, "binding limit 1/m: {r:?}");
    assert_near(r[4], MINUTE, "own retry of 1/m");
    let (p, b, a) = timed(|| penalty_ms(&mut c, "a"));
    let (lo, hi) = pen.left(b, a);
    assert_between(p, lo, hi, "a: penalty_ms");
    let (r, b, a) = timed(|| test(&mut c, "a", "10/d", &[]));
    assert_locked(r, &pen, b, a, Some(10), true, "a: 10/d");
    // One limit can never pass (COST > L), the other would: no penalty.
    let r = hit(&mut c, "b", "5/h;1/m", &["COST", "3", "PENALTY", "1h"]);
    assert_eq!((r[0], r[1], r[4]), (0, 1, -1), "{r:?}");
    assert!(!exists(&mut c, "b"));
    // One limit denies with a finite retry, another can never pass: the
    // hit's retry is -1: no penalty.
    hit(&mut c, "c", "2/h", &["COST", "2"]);
    let d0 = dump(&mut c, "c");
    let r = hit(&mut c, "c", "2/h;1/m", &["COST", "2", "PENALTY", "1h"]);
    assert_eq!((r[0], r[1], r[4]), (0, 1, -1), "{r:?}");
    assert_eq!(dump(&mut c, "c"), d0);
    assert_eq!(penalty_ms(&mut c, "c"), 0);
    assert_eq!(hit(&mut c, "c", "5/m", &[])[0], 1, "c is locked");
    // Admitted by all: no penalty.
    assert_eq!(
        &hit(&mut c, "d", "5/h;3/m", &["PENALTY", "1h"])[..3],
        &[1, 3, 2]
    );
    assert_eq!(penalty_ms(&mut c, "d"), 0);
    // Denied by both limits, both finite: starts.
    hit(&mut c, "e", "2/h;1/m", &[]);
    hit(&mut c, "e", "2/h", &[]);
    let (pen, r) = start_penalty(&mut c, "e", "2/h;1/m", &[], 1500);
    assert_eq!(r[1], 2, "binding: the larger retry (2/h): {r:?}");
    let (p, b, a) = timed(|| penalty_ms(&mut c, "e"));
    let (lo, hi) = pen.left(b, a);
    assert_between(p, lo, hi, "e: penalty_ms");
}

// ---------------------------------------------------------------------------
// 4 and 11. RL.STATS
// ---------------------------------------------------------------------------

#[test]
fn stats_report_penalty_ms_zero_when_there_is_none() {
    let s = Server::start();
    let mut c2 = s.conn();
    let mut c3 = s.conn3();
    hit(&mut c2, "k", "5/h;10/d", &["COST", "2"]);
    hit(&mut c2, "k", "5/h", &["STRATEGY", "gcra", "PENALTY", "1h"]);
    for key in ["k", "nokey"] {
        for st in STRATEGIES {
            let o = strat(st);
            let v = raw(&mut c2, &["RL.STATS", key, "5/h;10/d;1/s", "STRATEGY", st]).unwrap();
            for it in arr(&v) {
                match it {
                    Value::Array(flat) => assert_eq!(flat.len(), 14, "RESP2 {key} {st}: {it:?}"),
                    other => panic!("RESP2: expected a flat array, got {other:?}"),
                }
            }
            let v = raw(&mut c3, &["RL.STATS", key, "5/h;10/d;1/s", "STRATEGY", st]).unwrap();
            for it in arr(&v) {
                match it {
                    Value::Map(pairs) => assert_eq!(pairs.len(), 7, "RESP3 {key} {st}: {it:?}"),
                    other => panic!("RESP3: expected a map, got {other:?}"),
                }
            }
            for conn in [&mut c2, &mut c3] {
                let sts = pstats(conn, key, "5/h;10/d;1/s", &o);
                assert_eq!(sts.len(), 3);
                for x in &sts {
                    assert_eq!(x.penalty, 0, "{key} {st}: {x:?}");
                }
            }
        }
    }
    let st = pstats(&mut c2, "k", "5/h", &[]);
    assert_eq!((st[0].remaining, st[0].penalty), (3, 0));
}

#[test]
fn stats_under_a_penalty_show_it_in_every_limit() {
    let s = Server::start();
    let mut c = s.conn();
    let mut c3 = s.conn3();
    hit(&mut c, "k", "2/h", &["COST", "2"]);
    let (pen, _) = start_penalty(&mut c, "k", "2/h", &[], 700);
    for conn in [&mut c, &mut c3] {
        let (st, b, a) = timed(|| pstats(conn, "k", "2/h;10/m;5/d", &[]));
        let (lo, hi) = pen.left(b, a);
        assert_eq!(st.len(), 3);
        let shape: Vec<(i64, i64, &str)> = st
            .iter()
            .map(|x| (x.limit, x.window_ms, x.strategy.as_str()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (2, HOUR, "fixed-window"),
                (10, MINUTE, "fixed-window"),
                (5, DAY, "fixed-window")
            ]
        );
        for x in &st {
            assert_eq!(x.remaining, 0, "{x:?}");
            assert_between(x.penalty, lo, hi, &format!("penalty_ms of {x:?}"));
            assert_eq!(
                x.penalty, st[0].penalty,
                "penalty_ms differs between maps: {st:?}"
            );
            assert!(
                x.reset >= lo && x.retry >= lo,
                "{x:?} (penalty left >= {lo})"
            );
        }
        assert_near(st[0].reset, HOUR, "2/h keeps its own reset");
        // No state for 10/m and 5/d: their times are the penalty left.
        for x in &st[1..] {
            assert_between(x.reset, lo, hi, &format!("reset of {x:?}"));
            assert_between(x.retry, lo, hi, &format!("retry of {x:?}"));
        }
        let (g, b, a) = timed(|| pstats(conn, "k", "4/s", &["STRATEGY", "gcra"]));
        let (lo, hi) = pen.left(b, a);
        assert_eq!(
            (g[0].limit, g[0].strategy.as_str(), g[0].remaining),
            (4, "gcra", 0)
        );
        assert_between(g[0].penalty, lo, hi, "gcra: penalty_ms");
        assert_between(g[0].retry, lo, hi, "gcra: retry");
    }
    pen.wait_end(50);
    let st = pstats(&mut c, "k", "2/h;10/m", &[]);
    assert_eq!((st[0].remaining, st[0].penalty), (0, 0));
    assert_near(st[0].retry, HOUR, "2/h after the penalty");
    assert_eq!(
        (st[1].remaining, st[1].reset, st[1].retry, st[1].penalty),
        (10, 0, 0, 0)
    );
}

// ---------------------------------------------------------------------------
// 6 and 11. TTL and RL.CLEAR
// ---------------------------------------------------------------------------

#[test]
fn the_key_lives_at_least_until_its_penalty_ends() {
    let s = Server::start();
    let mut c = s.conn();
    // A 1 s window with a 5 s penalty: the TTL follows the penalty.
    assert_eq!(hit(&mut c, "k", "100/1s", &["COST", "100"])[0], 1);
    assert!(pttl(&mut c, "k") <= 1000);
    let t0 = server_ms(&mut c);
    start_penalty(&mut c, "k", "100/1s", &[], 5000);
    let t1 = server_ms(&mut c);
    let e = pexpiretime(&mut c, "k");
    assert_between(e, t0 + 5000, t1 + 5001, "PEXPIRETIME under a 5 s penalty");
    // A penalty shorter than the usage does not shorten the TTL.
    hit(&mut c, "long", "1/h", &[]);
    let e0 = pexpiretime(&mut c, "long");
    start_penalty(&mut c, "long", "1/h", &[], 300);
    assert_eq!(
        pexpiretime(&mut c, "long"),
        e0,
        "the penalty shortened the TTL"
    );
}

#[test]
fn the_key_expires_once_the_penalty_and_the_usage_are_over() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(hit(&mut c, "k", "2/100ms", &["COST", "2"])[0], 1);
    let (pen, _) = start_penalty(&mut c, "k", "2/100ms", &[], 500);
    sleep_ms(200);
    // The window is over, the penalty is not.
    assert!(
        exists(&mut c, "k"),
        "the key expired before its penalty ended"
    );
    let (r, b, a) = timed(|| test(&mut c, "k", "2/100ms", &[]));
    assert_locked(r, &pen, b, a, Some(2), true, "after the window");
    pen.wait_end(60);
    assert!(
        !exists(&mut c, "k"),
        "the key outlived its penalty and usage"
    );
    assert_eq!(hit(&mut c, "k", "2/100ms", &[]), [1, 2, 1, 100, 0]);
}

#[test]
fn clear_key_lifts_the_penalty() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "1/h", &[]);
    start_penalty(&mut c, "k", "1/h", &[], HOUR);
    assert_eq!(clear(&mut c, &["k"]), 1);
    assert!(!exists(&mut c, "k"));
    assert_eq!(hit(&mut c, "k", "1/h", &[]), [1, 1, 0, HOUR, 0]);
    // A key holding only a penalty (its window is over) is state too.
    assert_eq!(hit(&mut c, "p", "1/300ms", &[])[0], 1);
    start_penalty(&mut c, "p", "1/300ms", &[], HOUR);
    sleep_ms(320);
    assert!(exists(&mut c, "p"));
    assert_eq!(clear(&mut c, &["p"]), 1);
    assert!(!exists(&mut c, "p"));
    assert_eq!(hit(&mut c, "p", "1/300ms", &[])[0], 1);
}

#[test]
fn clear_limits_leaves_the_penalty() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "1/h;5/d", &[]);
    let t0 = server_ms(&mut c);
    let (pen, _) = start_penalty(&mut c, "k", "1/h;5/d", &[], 2 * HOUR);
    let t1 = server_ms(&mut c);
    assert_eq!(clear(&mut c, &["k", "1/h"]), 1);
    let (r, b, a) = timed(|| test(&mut c, "k", "1/h", &[]));
    assert_locked(r, &pen, b, a, Some(1), true, "after RL.CLEAR k 1/h");
    assert_eq!(clear(&mut c, &["k", "1/m"]), 0);
    // Every limit state removed: the penalty remains, and so does the key.
    assert_eq!(clear(&mut c, &["k", "1/h;5/d"]), 1);
    assert!(
        exists(&mut c, "k"),
        "RL.CLEAR of the limits deleted a key under a penalty"
    );
    let (r, b, a) = timed(|| hit(&mut c, "k", "1/h", &[]));
    assert_locked(r, &pen, b, a, Some(1), true, "after clearing every limit");
    assert_between(
        pexpiretime(&mut c, "k"),
        t0 + 2 * HOUR,
        t1 + 2 * HOUR + 1,
        "TTL: the penalty",
    );
    let p = penalty_ms(&mut c, "k");
    assert_near(p, 2 * HOUR, "penalty_ms");
    assert_eq!(clear(&mut c, &["k"]), 1);
    assert!(!exists(&mut c, "k"));
}

// ---------------------------------------------------------------------------
// 12. RL.REFUND: arguments
// ---------------------------------------------------------------------------

#[test]
fn refund_cost_is_1_to_4294967295() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "10/h", &["COST", "5"]);
    let before = dump(&mut c, "k");
    let huge = "9".repeat(100_000);
    for cost in [
        "0",
        "-1",
        "-0",
        "4294967296",
        "18446744073709551616",
        "abc",
        "1.5",
        "",
        " 1",
        "1e3",
        huge.as_str(),
    ] {
        assert_eq!(
            err(&mut c, &["RL.REFUND", "k", "10/h", "COST", cost]),
            COST_ERR,
            "COST {cost:?}"
        );
        assert_eq!(
            err(&mut c, &["RL.REFUND", "new", "10/h", "COST", cost]),
            COST_ERR,
            "COST {cost:?}"
        );
    }
    let e = err(&mut c, &["RL.REFUND", "k", "10/h", "COST"]);
    assert!(e.starts_with("ERR "), "{e}");
    assert_eq!(
        err(
            &mut c,
            &["RL.REFUND", "k", "10/h", "COST", "1", "COST", "1"]
        ),
        "ERR syntax error near 'COST'"
    );
    assert_eq!(dump(&mut c, "k"), before, "a refused RL.REFUND wrote");
    assert!(!exists(&mut c, "new"));
    // The bounds are accepted; case-insensitive option.
    assert_eq!(refund(&mut c, "k", "10/h", &["cost", "1"])[..3], [1, 10, 6]);
    assert_eq!(
        refund(&mut c, "k", "10/h", &["COST", "4294967295"]),
        [1, 10, 10, 0, 0]
    );
    assert!(!exists(&mut c, "k"));
}

#[test]
fn refund_options_burst_and_strategy() {
    let s = Server::start();
    let mut c = s.conn();
    hit(
        &mut c,
        "g",
        "10/h",
        &["STRATEGY", "gcra", "BURST", "20", "COST", "15"],
    );
    let before = dump(&mut c, "g");
    for (args, want) in [
        (
            vec!["RL.REFUND", "g", "10/h", "BURST", "20"],
            "ERR syntax error near 'BURST'",
        ),
        (
            vec!["RL.REFUND", "g", "10/h", "STRATEGY", "moving", "BURST", "2"],
            "ERR syntax error near 'BURST'",
        ),
        (
            vec!["RL.REFUND", "g", "10/h", "STRATEGY", "foo"],
            "ERR unknown strategy 'foo'",
        ),
        (
            vec!["RL.REFUND", "g", "10/h", "NOPE", "1"],
            "ERR syntax error near 'NOPE'",
        ),
        (
            vec![
                "RL.REFUND",
                "g",
                "10/h",
                "STRATEGY",
                "gcra",
                "STRATEGY",
                "gcra",
            ],
            "ERR syntax error near 'STRATEGY'",
        ),
        (
            vec!["RL.REFUND", "g", "1/y", "STRATEGY", "gcra", "BURST", "11"],
            "ERR BURST too large for limit '1/y'",
        ),
        (
            vec!["RL.REFUND", "g", "10/fortnight"],
            "ERR invalid limit '10/fortnight': unknown unit 'fortnight'",
        ),
    ] {
        assert_eq!(err(&mut c, &args), want, "{args:?}");
    }
    for args in [
        vec!["RL.REFUND", "g", "10/h", "STRATEGY", "gcra", "BURST", "0"],
        vec!["RL.REFUND", "g", "10/h", "STRATEGY", "gcra", "BURST", "x"],
        vec!["RL.REFUND", "g", "10/h", "STRATEGY", "gcra", "BURST"],
    ] {
        let e = err(&mut c, &args);
        assert!(e.starts_with("ERR "), "{args:?}: {e}");
    }
    assert_eq!(dump(&mut c, "g"), before, "a refused RL.REFUND wrote");
    // Options in any order and case; the reply uses limit = B.
    let t = 360_000;
    let r = refund(
        &mut c,
        "g",
        "10/h",
        &["burst", "20", "cost", "5", "strategy", "Token-Bucket"],
    );
    assert_eq!(&r[..3], &[1, 20, 10], "{r:?}");
    assert_between(r[3], 10 * t - 100, 10 * t, "reset after the refund");
    assert_eq!(r[4], 0);
}

// ---------------------------------------------------------------------------
// 12. RL.REFUND: what it does
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_reply_is_test_cost_0(
    c: &mut Connection,
    r: [i64; 5],
    key: &str,
    limits: &str,
    opts: &[&str],
) {
    let mut o: Vec<&str> = opts.to_vec();
    o.extend(["COST", "0"]);
    let t = test(c, key, limits, &o);
    assert_eq!(
        &r[..3],
        &t[..3],
        "RL.REFUND {key} {limits} {opts:?}: {r:?}, RL.TEST COST 0: {t:?}"
    );
    for i in [3, 4] {
        if t[i] == -1 || r[i] == -1 {
            assert_eq!(r[i], t[i], "{r:?} vs {t:?}");
        } else {
            assert!(
                (r[i] - t[i]).abs() <= 50,
                "field {i}: refund {r:?}, RL.TEST COST 0 {t:?}"
            );
        }
    }
}

#[test]
fn refund_replies_what_rl_test_cost_0_gives_right_after() {
    let s = Server::start();
    let mut c = s.conn();
    for st in STRATEGIES {
        let key = format!("k-{st}");
        let o = strat(st);
        hit(&mut c, &key, "5/h;10/d", &with(&o, &["COST", "3"]));
        hit(&mut c, &key, "5/h;10/d", &with(&o, &["COST", "2"]));
        // A limit lowered below the usage, still denied after the refund
        // (5 - 1 > 2); not for gcra, where another L is another interval.
        if st != "gcra" {
            let r = refund(&mut c, &key, "2/h", &o);
            assert_eq!(&r[..3], &[0, 2, 0], "{st}: {r:?}");
            assert!(r[4] > 0, "{st}: {r:?}");
            assert_reply_is_test_cost_0(&mut c, r, &key, "2/h", &o);
        }
        // 5/h holds 4 (gcra: 5), 10/d 5.
        let (e1, e2) = if st == "gcra" { (1, 3) } else { (2, 4) };
        let r = refund(&mut c, &key, "5/h;10/d", &o);
        assert_eq!(&r[..3], &[1, 5, e1], "{st}: {r:?}");
        assert_reply_is_test_cost_0(&mut c, r, &key, "5/h;10/d", &o);
        let r = refund(&mut c, &key, "5/h;10/d", &with(&o, &["COST", "2"]));
        assert_eq!(&r[..3], &[1, 5, e2], "{st}: {r:?}");
        assert_reply_is_test_cost_0(&mut c, r, &key, "5/h;10/d", &o);
        // Several limits, one without state.
        let r = refund(&mut c, &key, "5/h;10/d;7/m", &o);
        assert_reply_is_test_cost_0(&mut c, r, &key, "5/h;10/d;7/m", &o);
        // Emptied.
        let r = refund(&mut c, &key, "5/h;10/d", &with(&o, &["COST", "100"]));
        assert_eq!(r, [1, 5, 5, 0, 0], "{st}");
        assert_reply_is_test_cost_0(&mut c, r, &key, "5/h;10/d", &o);
    }
}

#[test]
fn refund_fixed_window_gives_back_used_in_the_running_window() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "10/h", &["COST", "7"]);
    let r = refund(&mut c, "k", "10/h", &["COST", "2"]);
    assert_eq!(&r[..3], &[1, 10, 5]);
    assert_near(r[3], HOUR, "reset");
    assert_eq!(pstats(&mut c, "k", "10/h", &[])[0].remaining, 5);
    assert_eq!(
        &refund(&mut c, "k", "10/h", &[])[..3],
        &[1, 10, 6],
        "default COST 1"
    );
    // The usage given back can be used again, no more.
    assert_eq!(&hit(&mut c, "k", "10/h", &["COST", "6"])[..3], &[1, 10, 0]);
    assert_eq!(hit(&mut c, "k", "10/h", &[])[0], 0);
    // A partial refund keeps the running window (no new start).
    hit(&mut c, "w", "10/500ms", &["COST", "4"]);
    sleep_ms(150);
    let (r, _, _) = timed(|| refund(&mut c, "w", "10/500ms", &[]));
    assert_eq!(&r[..3], &[1, 10, 7]);
    assert!(
        r[3] <= 360 && r[3] > 0,
        "the refund restarted the window: {r:?}"
    );
}

#[test]
fn refund_sliding_window_takes_from_the_current_window_only() {
    let s = Server::start();
    let mut c = s.conn();
    let o = strat("sliding");
    let l = "100/400ms";
    // `main` and `ctl` both put 60 in a first window; `main` then puts 20
    // in the second one, and refunds them: it must look like `ctl`.
    hit(&mut c, "main", l, &with(&o, &["COST", "60"]));
    hit(&mut c, "ctl", l, &with(&o, &["COST", "60"]));
    sleep_ms(430);
    assert_eq!(hit(&mut c, "main", l, &with(&o, &["COST", "20"]))[0], 1);
    let r = refund(&mut c, "main", l, &with(&o, &["COST", "5"]));
    assert_reply_is_test_cost_0(&mut c, r, "main", l, &o);
    let m = pstats(&mut c, "main", l, &o)[0].clone();
    let k = pstats(&mut c, "ctl", l, &o)[0].clone();
    assert!(
        k.remaining < 60,
        "ctl's previous window does not count: {k:?}"
    );
    assert!(
        (m.remaining - (k.remaining - 15)).abs() <= 1,
        "after refunding 5 of 20: main {m:?}, ctl {k:?}"
    );
    // More than cur: cur goes to 0, prev is untouched.
    let r = refund(&mut c, "main", l, &with(&o, &["COST", "50"]));
    assert_reply_is_test_cost_0(&mut c, r, "main", l, &o);
    let m = pstats(&mut c, "main", l, &o)[0].clone();
    let k = pstats(&mut c, "ctl", l, &o)[0].clone();
    assert!(
        (m.remaining - k.remaining).abs() <= 1,
        "prev was touched: main {m:?}, ctl {k:?}"
    );
    assert!((m.reset - k.reset).abs() <= 10, "main {m:?}, ctl {k:?}");
    assert!(m.reset < 400, "cur was not emptied: {m:?}");
    assert!(
        exists(&mut c, "main"),
        "a state with usage in prev was removed"
    );
}

#[test]
fn refund_moving_window_removes_the_newest_units_first() {
    let s = Server::start();
    let mut c = s.conn();
    let w = 10_000;
    let l = "10/10s";
    let o = strat("moving");
    let mut at = Vec::new();
    for (i, cost) in ["3", "2", "4"].iter().enumerate() {
        if i > 0 {
            sleep_ms(200);
        }
        let (r, b, a) = timed(|| hit(&mut c, "k", l, &with(&o, &["COST", cost])));
        assert_eq!(r[0], 1);
        at.push(b + (a - b) / 2);
    }
    let left = |t: Instant| w - floor_ms(t.elapsed());
    // 5 units: the 4 goes, the 2 becomes 1. Left: 3 @ t0, 1 @ t1.
    let r = refund(&mut c, "k", l, &with(&o, &["COST", "5"]));
    assert_eq!(&r[..3], &[1, 10, 6], "{r:?}");
    assert_between(
        r[3],
        left(at[1]) - 50,
        left(at[1]) + 50,
        "reset: the newest entry is t1's",
    );
    let st = &pstats(&mut c, "k", l, &o)[0];
    assert_eq!((st.remaining, st.retry), (6, 0));
    assert_between(st.reset, left(at[1]) - 50, left(at[1]) + 50, "stats reset");
    // A cost-9 hit waits for t0's 3 only (1 unit stays at t1)...
    let r = test(&mut c, "k", l, &with(&o, &["COST", "9"]));
    assert_eq!(&r[..3], &[0, 10, 6], "{r:?}");
    assert_between(
        r[4],
        left(at[0]) - 50,
        left(at[0]) + 50,
        "COST 9 retry: t0's entry leaves",
    );
    // ... a cost-10 hit for t1's unit too.
    let r = test(&mut c, "k", l, &with(&o, &["COST", "10"]));
    assert_between(
        r[4],
        left(at[1]) - 50,
        left(at[1]) + 50,
        "COST 10 retry: t1's entry leaves",
    );
    // 2 more: t1's 1 goes, t0's 3 becomes 2.
    let r = refund(&mut c, "k", l, &with(&o, &["COST", "2"]));
    assert_eq!(&r[..3], &[1, 10, 8], "{r:?}");
    assert_between(
        r[3],
        left(at[0]) - 50,
        left(at[0]) + 50,
        "reset: only t0's entry",
    );
    let r = test(&mut c, "k", l, &with(&o, &["COST", "8"]));
    assert_eq!(r[0], 1, "2 units left: {r:?}");
    let r = test(&mut c, "k", l, &with(&o, &["COST", "9"]));
    assert_eq!(r[0], 0, "2 units left: {r:?}");
    // The rest: the log is empty, the key goes.
    assert_eq!(
        refund(&mut c, "k", l, &with(&o, &["COST", "5"])),
        [1, 10, 10, 0, 0]
    );
    assert!(!exists(&mut c, "k"));
}

#[test]
fn refund_gcra_moves_tat_back_but_not_before_now() {
    let s = Server::start();
    let mut c = s.conn();
    let o = strat("gcra");
    let t = 360_000; // 10/h
    assert_eq!(
        hit(&mut c, "k", "10/h", &with(&o, &["COST", "6"])),
        [1, 10, 4, 6 * t, 0]
    );
    let r = refund(&mut c, "k", "10/h", &with(&o, &["COST", "2"]));
    assert_eq!(&r[..3], &[1, 10, 6], "{r:?}");
    assert_between(r[3], 4 * t - 100, 4 * t, "reset after the refund");
    let st = &pstats(&mut c, "k", "10/h", &o)[0];
    assert_eq!((st.remaining, st.retry), (6, 0));
    assert_between(st.reset, 4 * t - 100, 4 * t, "stats reset");
    // TAT - 4T <= now: TAT = now, no usage left, the key goes.
    assert_eq!(
        refund(&mut c, "k", "10/h", &with(&o, &["COST", "4"])),
        [1, 10, 10, 0, 0]
    );
    assert!(!exists(&mut c, "k"));
    assert_eq!(hit(&mut c, "k", "10/h", &o), [1, 10, 9, t, 0]);
    // Exact T (7/h: T = 514 285.71... ms): 3 then 4 give back all 7.
    let t7: f64 = 3_600_000.0 / 7.0;
    assert_eq!(
        hit(&mut c, "x", "7/h", &with(&o, &["COST", "7"])),
        [1, 7, 0, HOUR, 0]
    );
    let r = refund(&mut c, "x", "7/h", &with(&o, &["COST", "3"]));
    assert_eq!(&r[..3], &[1, 7, 3], "{r:?}");
    let four_t = (4.0 * t7).ceil() as i64;
    assert_between(r[3], four_t - 100, four_t, "7/h reset after refunding 3");
    assert_eq!(
        refund(&mut c, "x", "7/h", &with(&o, &["COST", "4"])),
        [1, 7, 7, 0, 0]
    );
    assert!(
        !exists(&mut c, "x"),
        "T was rounded: TAT stayed after the whole refund"
    );
}

#[test]
fn refund_never_takes_usage_below_zero() {
    let s = Server::start();
    let mut c = s.conn();
    for st in STRATEGIES {
        let key = format!("k-{st}");
        let o = strat(st);
        hit(&mut c, &key, "5/h;20/d", &with(&o, &["COST", "3"]));
        assert_eq!(
            refund(&mut c, &key, "5/h", &with(&o, &["COST", "10"])),
            [1, 5, 5, 0, 0],
            "{st}"
        );
        let sts = pstats(&mut c, &key, "5/h;20/d", &o);
        assert_eq!((sts[0].remaining, sts[0].reset), (5, 0), "{st}: {sts:?}");
        assert_eq!(
            sts[1].remaining, 17,
            "{st}: the other limit was refunded: {sts:?}"
        );
        // Exactly L can be used again, not more.
        assert_eq!(
            &hit(&mut c, &key, "5/h", &with(&o, &["COST", "5"]))[..3],
            &[1, 5, 0],
            "{st}"
        );
        assert_eq!(
            hit(&mut c, &key, "5/h", &o)[0],
            0,
            "{st}: usage went below zero"
        );
    }
}

#[test]
fn refund_leaves_limits_without_state_alone() {
    let s = Server::start();
    let mut c = s.conn();
    for st in STRATEGIES {
        let o = strat(st);
        assert_eq!(refund(&mut c, "nokey", "5/h", &o), [1, 5, 5, 0, 0], "{st}");
        assert_eq!(
            refund(&mut c, "nokey", "5/h;2/m", &with(&o, &["COST", "3"])),
            [1, 2, 2, 0, 0],
            "{st}"
        );
        assert!(!exists(&mut c, "nokey"), "{st}: RL.REFUND created a key");
    }
    let r = refund(&mut c, "nokey", "5/h", &["STRATEGY", "gcra", "BURST", "8"]);
    assert_eq!(r, [1, 8, 8, 0, 0]);
    assert!(!exists(&mut c, "nokey"));
    hit(&mut c, "k", "5/h", &["COST", "2"]);
    let d0 = dump(&mut c, "k");
    let e0 = pexpiretime(&mut c, "k");
    assert_eq!(refund(&mut c, "k", "5/m", &[]), [1, 5, 5, 0, 0]);
    assert_eq!(
        refund(&mut c, "k", "5/h", &["STRATEGY", "moving"]),
        [1, 5, 5, 0, 0]
    );
    assert_eq!(
        refund(&mut c, "k", "5/h", &["STRATEGY", "gcra"]),
        [1, 5, 5, 0, 0]
    );
    assert_eq!(
        dump(&mut c, "k"),
        d0,
        "a refund of limits without state wrote"
    );
    assert_eq!(pexpiretime(&mut c, "k"), e0);
    // One limit with state, one without: the second stays without.
    refund(&mut c, "k", "5/h;5/m", &[]);
    let st = pstats(&mut c, "k", "5/h;5/m", &[]);
    assert_eq!(st[0].remaining, 4);
    assert_eq!(
        (st[1].remaining, st[1].reset, st[1].retry),
        (5, 0, 0),
        "{st:?}"
    );
}

#[test]
fn an_emptied_limit_state_is_removed_and_the_next_hit_starts_afresh() {
    let s = Server::start();
    let mut c = s.conn();
    // Fixed: a new window starts at the next hit.
    hit(&mut c, "f", "10/400ms;10/h", &["COST", "5"]);
    sleep_ms(150);
    assert_eq!(
        refund(&mut c, "f", "10/400ms", &["COST", "5"]),
        [1, 10, 10, 0, 0]
    );
    assert!(exists(&mut c, "f"), "the other limit's state went too");
    let st = &pstats(&mut c, "f", "10/400ms", &[])[0];
    assert_eq!((st.remaining, st.reset), (10, 0));
    assert_eq!(
        hit(&mut c, "f", "10/400ms", &[]),
        [1, 10, 9, 400, 0],
        "no new window"
    );
    assert_eq!(
        pstats(&mut c, "f", "10/h", &[])[0].remaining,
        5,
        "10/h still holds its 5"
    );
    // Sliding: a new anchor (reset 2W).
    let o = strat("sliding");
    hit(&mut c, "s", "10/400ms;10/h", &with(&o, &["COST", "5"]));
    sleep_ms(150);
    assert_eq!(
        refund(&mut c, "s", "10/400ms", &with(&o, &["COST", "7"])),
        [1, 10, 10, 0, 0]
    );
    assert_eq!(
        hit(&mut c, "s", "10/400ms", &o),
        [1, 10, 9, 800, 0],
        "no new anchor"
    );
    // Moving and gcra: nothing left of the old usage.
    for st in ["moving", "gcra"] {
        let key = format!("k-{st}");
        let o = strat(st);
        hit(&mut c, &key, "10/400ms;10/h", &with(&o, &["COST", "5"]));
        sleep_ms(20);
        assert_eq!(
            refund(&mut c, &key, "10/400ms", &with(&o, &["COST", "5"])),
            [1, 10, 10, 0, 0]
        );
        let r = hit(&mut c, &key, "10/400ms", &o);
        assert_eq!(&r[..3], &[1, 10, 9], "{st}");
        assert_eq!(r[3], if st == "moving" { 400 } else { 40 }, "{st}: {r:?}");
    }
}

#[test]
fn a_key_left_without_state_is_deleted() {
    let s = Server::start();
    let mut c = s.conn();
    for st in STRATEGIES {
        let o = strat(st);
        let one = format!("one-{st}");
        hit(&mut c, &one, "5/h", &with(&o, &["COST", "2"]));
        assert_eq!(
            refund(&mut c, &one, "5/h", &with(&o, &["COST", "2"])),
            [1, 5, 5, 0, 0]
        );
        assert!(!exists(&mut c, &one), "{st}: key left without state");
        let two = format!("two-{st}");
        hit(&mut c, &two, "5/h;5/d", &with(&o, &["COST", "2"]));
        refund(&mut c, &two, "5/h", &with(&o, &["COST", "2"]));
        assert!(exists(&mut c, &two), "{st}");
        refund(&mut c, &two, "5/d", &with(&o, &["COST", "3"]));
        assert!(!exists(&mut c, &two), "{st}: key left without state");
    }
}

#[test]
fn refund_recomputes_the_ttl_from_what_remains() {
    let s = Server::start();
    let mut c = s.conn();
    // (strategy, short limit, its TTL after the hit, long limit)
    for (st, short, ttl) in [
        ("fixed", "5/2s", 2000),
        ("sliding", "5/1s", 2000),
        ("moving", "5/2s", 2000),
    ] {
        let key = format!("k-{st}");
        let o = strat(st);
        let limits = format!("{short};5/h");
        let t0 = server_ms(&mut c);
        hit(&mut c, &key, &limits, &with(&o, &["COST", "2"]));
        let t1 = server_ms(&mut c);
        assert!(pexpiretime(&mut c, &key) >= t0 + HOUR, "{st}");
        refund(&mut c, &key, "5/h", &with(&o, &["COST", "2"]));
        assert_between(
            pexpiretime(&mut c, &key),
            t0 + ttl,
            t1 + ttl + 1,
            &format!("{st}: TTL follows {short}"),
        );
    }
    // GCRA: the TTL ends at the new TAT.
    let o = strat("gcra");
    let t = 360_000;
    let t0 = server_ms(&mut c);
    hit(&mut c, "g", "10/h", &with(&o, &["COST", "6"]));
    let t1 = server_ms(&mut c);
    assert_between(
        pexpiretime(&mut c, "g"),
        t0 + 6 * t,
        t1 + 6 * t + 1,
        "gcra TTL",
    );
    refund(&mut c, "g", "10/h", &with(&o, &["COST", "2"]));
    assert_between(
        pexpiretime(&mut c, "g"),
        t0 + 4 * t,
        t1 + 4 * t + 1,
        "gcra TTL after the refund",
    );
    // Partial fixed refund: the window, hence the TTL, is unchanged.
    hit(&mut c, "f", "5/h", &["COST", "3"]);
    let e = pexpiretime(&mut c, "f");
    refund(&mut c, "f", "5/h", &[]);
    assert_eq!(pexpiretime(&mut c, "f"), e);
}

#[test]
fn refund_never_lifts_a_penalty() {
    let s = Server::start();
    let mut c = s.conn();
    // The only limit refunded to nothing: the key holds just the penalty.
    hit(&mut c, "k", "1/h", &[]);
    let t0 = server_ms(&mut c);
    let (pen, _) = start_penalty(&mut c, "k", "1/h", &[], 700);
    let t1 = server_ms(&mut c);
    let (r, b, a) = timed(|| refund(&mut c, "k", "1/h", &[]));
    assert_locked(r, &pen, b, a, Some(1), true, "RL.REFUND under a penalty");
    assert!(
        exists(&mut c, "k"),
        "the refund deleted a key under a penalty"
    );
    assert_between(
        pexpiretime(&mut c, "k"),
        t0 + 700,
        t1 + 701,
        "TTL: the penalty's end",
    );
    let (r, b, a) = timed(|| test(&mut c, "k", "1/h", &[]));
    assert_locked(r, &pen, b, a, Some(1), true, "RL.TEST after the refund");
    let (p, b, a) = timed(|| penalty_ms(&mut c, "k"));
    let (lo, hi) = pen.left(b, a);
    assert_between(p, lo, hi, "penalty_ms after the refund");
    // Partly refunded under a penalty.
    hit(&mut c, "p", "5/h", &["COST", "5"]);
    let (pp, _) = start_penalty(&mut c, "p", "5/h", &[], 700);
    let (r, b, a) = timed(|| refund(&mut c, "p", "5/h", &["COST", "2"]));
    assert_locked(
        r,
        &pp,
        b,
        a,
        Some(5),
        false,
        "partial refund under a penalty",
    );
    assert_near(r[3], HOUR, "reset: the window's");
    assert_between(
        r[4],
        pp.left(b, a).0,
        pp.left(b, a).1,
        "retry: the penalty left",
    );
    // After the penalty the refunds are there.
    pen.wait_end(60);
    pp.wait_end(60);
    assert_eq!(hit(&mut c, "k", "1/h", &[]), [1, 1, 0, HOUR, 0]);
    assert_eq!(&test(&mut c, "p", "5/h", &[])[..3], &[1, 5, 1]);
}

// ---------------------------------------------------------------------------
// 6 and 12. Writes: only real changes write
// ---------------------------------------------------------------------------

#[test]
fn a_refund_that_changes_nothing_writes_nothing_and_a_real_one_propagates() {
    let p = Server::start_with(&["--repl-ping-replica-period", "3600"]);
    let _r = replica_of(&p, false);
    let mut c = p.conn();
    hit(&mut c, "k", "5/h", &["COST", "2"]);
    hit(&mut c, "m", "5/h", &["STRATEGY", "moving", "COST", "2"]);
    hit(&mut c, "g", "5/h", &["STRATEGY", "gcra", "COST", "2"]);
    hit(&mut c, "s", "5/h", &["STRATEGY", "sliding", "COST", "2"]);
    hit(&mut c, "pen", "1/h", &[]);
    start_penalty(&mut c, "pen", "1/h", &[], HOUR);
    raw(&mut c, &["SET", "str", "hello"]).unwrap();
    let noops: Vec<Vec<&str>> = vec![
        vec!["RL.REFUND", "nokey", "5/h"],
        vec!["RL.REFUND", "nokey", "5/h", "STRATEGY", "gcra", "COST", "3"],
        vec!["RL.REFUND", "k", "5/m"],
        vec!["RL.REFUND", "k", "5/h", "STRATEGY", "moving"],
        vec!["RL.REFUND", "m", "5/h"],
        vec!["RL.REFUND", "g", "5/m", "STRATEGY", "gcra"],
        vec!["RL.REFUND", "s", "5/d", "STRATEGY", "sliding"],
        vec!["RL.REFUND", "pen", "7/d"],
        vec!["RL.REFUND", "k", "5/h", "COST", "0"],
        vec!["RL.REFUND", "k", "5/h", "PENALTY", "1s"],
        vec!["RL.REFUND", "k", "5/fortnight"],
        vec!["RL.REFUND", "str", "5/h"],
    ];
    for args in &noops {
        let before_data = data(&mut c);
        let before = p.repl_offset();
        let _ = raw(&mut c, args);
        assert_eq!(p.repl_offset(), before, "{args:?} propagated a write");
        assert_eq!(
            data(&mut c),
            before_data,
            "{args:?} changed a key or its expiry"
        );
    }
    assert!(!exists(&mut c, "nokey"));
    let writes: Vec<Vec<&str>> = vec![
        vec!["RL.REFUND", "k", "5/h"],
        vec!["RL.REFUND", "m", "5/h", "STRATEGY", "moving"],
        vec!["RL.REFUND", "g", "5/h", "STRATEGY", "gcra"],
        vec!["RL.REFUND", "s", "5/h", "STRATEGY", "sliding"],
        vec!["RL.REFUND", "pen", "1/h"],
        vec!["RL.REFUND", "k", "5/h", "COST", "9"],
    ];
    for args in &writes {
        let before_data = data(&mut c);
        let before = p.repl_offset();
        raw(&mut c, args).unwrap();
        assert!(
            p.repl_offset() > before,
            "{args:?} changed state but propagated nothing"
        );
        assert_ne!(data(&mut c), before_data, "{args:?} changed nothing");
    }
    assert!(!exists(&mut c, "k"));
    // The penalty start propagates too; denials under it do not.
    hit(&mut c, "q", "1/h", &[]);
    let before = p.repl_offset();
    start_penalty(&mut c, "q", "1/h", &[], HOUR);
    assert!(
        p.repl_offset() > before,
        "the penalty start propagated nothing"
    );
    for args in [
        vec!["RL.HIT", "q", "1/h", "PENALTY", "1h"],
        vec!["RL.HIT", "q", "10/h"],
        vec!["RL.TEST", "q", "10/h", "PENALTY", "1s"],
        vec!["RL.HIT", "k", "1/h", "COST", "2", "PENALTY", "1h"],
    ] {
        let before = p.repl_offset();
        let _ = raw(&mut c, &args);
        assert_eq!(p.repl_offset(), before, "{args:?} propagated a write");
    }
}

#[test]
fn refunds_and_penalties_notify_only_when_they_write() {
    let p = Server::start();
    let replica = replica_of(&p, false);
    for s in [&p, &replica] {
        raw(
            &mut s.conn(),
            &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
        )
        .unwrap();
    }
    let mut c = p.conn();
    hit(&mut c, "a", "5/h", &["COST", "2"]);
    hit(&mut c, "b", "5/h", &["COST", "3"]);
    hit(&mut c, "d", "5/h", &["COST", "2"]);
    hit(&mut c, "pen", "1/h", &[]);
    wait_synced(&p, &replica);
    let on_primary = listen(&p);
    let on_replica = listen(&replica);
    // Nothing written: no event.
    refund(&mut c, "none", "5/h", &[]);
    refund(&mut c, "a", "5/m", &[]);
    refund(&mut c, "a", "5/h", &["STRATEGY", "gcra"]);
    test(&mut c, "pen", "1/h", &["PENALTY", "1h"]);
    hit(&mut c, "a", "5/h", &["COST", "6", "PENALTY", "1h"]);
    // Written: a partial refund, a refund that deletes, a penalty start.
    refund(&mut c, "b", "5/h", &[]);
    refund(&mut c, "d", "5/h", &["COST", "2"]);
    start_penalty(&mut c, "pen", "1/h", &[], HOUR);
    // Denied under the penalty: nothing.
    hit(&mut c, "pen", "1/h", &["PENALTY", "1h"]);
    hit(&mut c, "pen", "5/h", &[]);
    wait_synced(&p, &replica);
    for s in [&p, &replica] {
        raw(&mut s.conn(), &["PUBLISH", "done", "1"]).unwrap();
    }
    let (ev, rev) = (on_primary.join().unwrap(), on_replica.join().unwrap());
    assert_eq!(ev, rev, "primary and replica saw different events");
    for (e, k) in &ev {
        assert!(
            ["b", "d", "pen"].contains(&k.as_str()),
            "event {e} on {k}: it changed nothing: {ev:?}"
        );
    }
    let of = |key: &str| events_of(&ev, key);
    let b = of("b");
    assert!(!b.is_empty(), "a partial refund fired nothing: {ev:?}");
    assert!(
        b.iter().all(|e| ["set", "setrange", "expire"].contains(e)),
        "{b:?}"
    );
    assert_eq!(
        of("d"),
        vec!["del"],
        "a refund that empties the key: {ev:?}"
    );
    let pe = of("pen");
    assert!(!pe.is_empty(), "the penalty start fired nothing: {ev:?}");
    assert!(
        pe.iter().all(|e| ["set", "setrange", "expire"].contains(e)),
        "{pe:?}"
    );
}

// ---------------------------------------------------------------------------
// 7. Replication and AOF
// ---------------------------------------------------------------------------

/// Penalties and refunds in every strategy, with long windows and
/// penalties (nothing expires while a test compares).
fn workload(c: &mut Connection) {
    for st in STRATEGIES {
        let o = strat(st);
        // A penalty on a used-up limit.
        let pen = format!("pen:{st}");
        hit(c, &pen, "2/h", &with(&o, &["COST", "2"]));
        start_penalty(c, &pen, "2/h", &o, HOUR);
        // Partial refunds, then one limit emptied (TTL from the other).
        let re = format!("ref:{st}");
        hit(c, &re, "10/h;20/d", &with(&o, &["COST", "3"]));
        sleep_ms(2);
        hit(c, &re, "10/h;20/d", &with(&o, &["COST", "2"]));
        refund(c, &re, "10/h;20/d", &with(&o, &["COST", "4"]));
        refund(c, &re, "10/h", &with(&o, &["COST", "10"]));
        // Refunded to nothing: deleted.
        let del = format!("del:{st}");
        hit(c, &del, "3/h", &o);
        refund(c, &del, "3/h", &o);
        // Refunded under a penalty: only the penalty remains.
        let pr = format!("penref:{st}");
        hit(c, &pr, "1/h", &o);
        start_penalty(c, &pr, "1/h", &o, 2 * HOUR);
        refund(c, &pr, "1/h", &o);
        // A partial refund under a penalty.
        let pp = format!("penpart:{st}");
        hit(c, &pp, "4/h", &with(&o, &["COST", "4"]));
        start_penalty(c, &pp, "4/h", &o, 30 * MINUTE);
        refund(c, &pp, "4/h", &with(&o, &["COST", "3"]));
        // A penalty shorter than the usage.
        let sh = format!("short:{st}");
        hit(c, &sh, "1/d", &o);
        start_penalty(c, &sh, "1/d", &o, MINUTE);
    }
    // No-op refunds in between.
    refund(c, "nothing", "5/h", &[]);
    refund(c, "ref:fixed", "5/m", &[]);
}

#[track_caller]
fn check_after(c: &mut Connection) {
    for st in STRATEGIES {
        let o = strat(st);
        let r = test(c, &format!("pen:{st}"), "50/h", &o);
        assert_eq!((r[0], r[2]), (0, 0), "{st}: pen: {r:?}");
        assert_between(r[4], HOUR - 60_000, HOUR, "penalty left");
        let r = test(c, &format!("penref:{st}"), "1/h", &o);
        assert_eq!(r[0], 0, "{st}: penref: {r:?}");
        assert_between(r[4], 2 * HOUR - 60_000, 2 * HOUR, "penalty left");
        assert!(!exists(c, &format!("del:{st}")), "{st}");
        let sts = pstats(c, &format!("ref:{st}"), "10/h;20/d", &o);
        assert_eq!(
            (sts[0].remaining, sts[0].reset, sts[0].penalty),
            (10, 0, 0),
            "{st}: {sts:?}"
        );
        assert_eq!(sts[1].remaining, 19, "{st}: {sts:?}");
    }
}

#[test]
fn replica_without_the_module_holds_the_same_penalties_and_refunds() {
    let p = Server::start();
    let mut c = p.conn();
    // Some state before the replica exists (full sync), the rest streamed.
    hit(&mut c, "early", "1/h", &[]);
    start_penalty(&mut c, "early", "1/h", &[], HOUR);
    let r = replica_of(&p, false);
    let rm = replica_of(&p, true);
    workload(&mut c);
    wait_synced(&p, &r);
    wait_synced(&p, &rm);
    assert_same_data(&p, &r);
    assert_same_data(&p, &rm);
    // The replica with the module reads the penalties.
    let mut rc = rm.conn();
    check_after(&mut rc);
    let r2 = test(&mut rc, "early", "5/h", &[]);
    assert_eq!((r2[0], r2[2]), (0, 0));
    // And the replica without the module kept the bytes exactly.
    let mut plain = r.conn();
    for st in STRATEGIES {
        let k = format!("penref:{st}");
        assert_eq!(dump(&mut plain, &k), dump(&mut c, &k));
    }
}

#[test]
fn aof_restart_keeps_penalties_and_refunds() {
    let opts = Opts::default().args(&["--appendonly", "yes", "--appendfsync", "always"]);
    let s = Server::start_opts(opts.clone());
    let mut c = s.conn();
    workload(&mut c);
    let before = data(&mut c);
    drop(c);
    let dir = s.kill_keep_dir();
    let names = aof_command_names(&dir);
    assert!(
        names.iter().any(|n| n != "select"),
        "nothing in the AOF: {names:?}"
    );
    for n in &names {
        assert!(!n.starts_with("rl."), "the AOF holds {n} ({names:?})");
    }
    let s2 = Server::restart_in(dir, opts);
    let mut c2 = s2.conn();
    let after = data(&mut c2);
    assert_eq!(
        before, after,
        "DUMP or PEXPIRETIME changed over the AOF restart"
    );
    check_after(&mut c2);
}

// ---------------------------------------------------------------------------
// 6. WATCH
// ---------------------------------------------------------------------------

#[test]
fn watch_sees_a_penalty_start_but_not_denials_under_it() {
    let p = Server::start();
    let mut c = p.conn();
    for st in STRATEGIES {
        let key = format!("w-{st}");
        let k = key.as_str();
        hit(&mut c, k, "1/h", &strat(st));
        let start = ["RL.HIT", k, "1/h", "STRATEGY", st, "PENALTY", "1h"];
        let t = ["RL.TEST", k, "1/h", "STRATEGY", st, "PENALTY", "1h"];
        assert!(exec_survives(&p, k, &t), "{st}: RL.TEST PENALTY");
        assert!(
            !exec_survives(&p, k, &start),
            "{st}: the hit that starts a penalty is a write"
        );
        assert!(penalty_ms(&mut c, k) > 0, "{st}: no penalty started");
        assert!(
            exec_survives(&p, k, &start),
            "{st}: a PENALTY hit denied under the penalty"
        );
        let room = ["RL.HIT", k, "10/h", "STRATEGY", st];
        assert!(
            exec_survives(&p, k, &room),
            "{st}: a hit denied under the penalty"
        );
        assert!(exec_survives(&p, k, &t), "{st}: RL.TEST under the penalty");
        let never = [
            "RL.HIT", k, "1/h", "STRATEGY", st, "COST", "2", "PENALTY", "1h",
        ];
        assert!(
            exec_survives(&p, k, &never),
            "{st}: never admissible under the penalty"
        );
    }
}

#[test]
fn watch_sees_real_refunds_only() {
    let p = Server::start();
    let mut c = p.conn();
    for st in STRATEGIES {
        let key = format!("r-{st}");
        let k = key.as_str();
        hit(&mut c, k, "5/h", &with(&strat(st), &["COST", "3"]));
        let noop = ["RL.REFUND", k, "5/m", "STRATEGY", st];
        assert!(
            exec_survives(&p, k, &noop),
            "{st}: refund of a limit without state"
        );
        let missing = format!("missing-{st}");
        let m = ["RL.REFUND", missing.as_str(), "5/h", "STRATEGY", st];
        assert!(
            exec_survives(&p, &missing, &m),
            "{st}: refund on a missing key"
        );
        let bad = ["RL.REFUND", k, "5/h", "STRATEGY", st, "COST", "0"];
        assert!(exec_survives(&p, k, &bad), "{st}: refused refund");
        let real = ["RL.REFUND", k, "5/h", "STRATEGY", st];
        assert!(!exec_survives(&p, k, &real), "{st}: partial refund");
        let all = ["RL.REFUND", k, "5/h", "STRATEGY", st, "COST", "10"];
        assert!(
            !exec_survives(&p, k, &all),
            "{st}: refund that deletes the key"
        );
        assert!(!exists(&mut c, k));
        // Under a penalty: a real refund is a write, a no-op one is not.
        let pk = format!("p-{st}");
        let pk = pk.as_str();
        hit(&mut c, pk, "2/h", &with(&strat(st), &["COST", "2"]));
        start_penalty(&mut c, pk, "2/h", &strat(st), HOUR);
        let noop = ["RL.REFUND", pk, "5/m", "STRATEGY", st];
        assert!(
            exec_survives(&p, pk, &noop),
            "{st}: no-op refund under a penalty"
        );
        let real = ["RL.REFUND", pk, "2/h", "STRATEGY", st];
        assert!(
            !exec_survives(&p, pk, &real),
            "{st}: real refund under a penalty"
        );
    }
}

// ---------------------------------------------------------------------------
// 6 and 8. WRONGTYPE, arity, hostile input
// ---------------------------------------------------------------------------

#[test]
fn wrongtype_for_refund_and_penalty_hits_key_untouched() {
    let s = Server::start();
    let mut c = s.conn();
    raw(&mut c, &["RPUSH", "list", "a", "b"]).unwrap();
    raw(&mut c, &["SET", "str", "hello"]).unwrap();
    raw(&mut c, &["SET", "ttl", "x", "PX", "3600000"]).unwrap();
    for key in ["list", "str", "ttl"] {
        let d0 = dump(&mut c, key);
        let e0 = pexpiretime(&mut c, key);
        for args in [
            vec!["RL.REFUND", key, "5/h"],
            vec!["RL.REFUND", key, "5/h", "COST", "3"],
            vec!["RL.REFUND", key, "5/h", "STRATEGY", "gcra", "BURST", "2"],
            vec!["RL.REFUND", key, "5/h;1/m", "STRATEGY", "moving"],
            vec!["RL.HIT", key, "5/h", "PENALTY", "1s"],
            vec!["RL.HIT", key, "1/h", "COST", "5", "PENALTY", "1s"],
            vec!["RL.HIT", key, "5/h", "COST", "0", "PENALTY", "1h"],
            vec!["RL.TEST", key, "5/h", "PENALTY", "1s"],
        ] {
            assert_eq!(err(&mut c, &args), WRONGTYPE, "{args:?}");
        }
        assert_eq!(dump(&mut c, key), d0, "{key} changed");
        assert_eq!(pexpiretime(&mut c, key), e0, "{key}: expiry changed");
    }
    let len: i64 = redis::cmd("LLEN").arg("list").query(&mut c).unwrap();
    assert_eq!(len, 2);
    let v: String = redis::cmd("GET").arg("str").query(&mut c).unwrap();
    assert_eq!(v, "hello");
}

#[test]
fn refund_arity_is_redis_own_error() {
    let s = Server::start();
    let mut c = s.conn();
    let want = "ERR wrong number of arguments for 'rl.refund' command";
    assert_eq!(err(&mut c, &["RL.REFUND"]), want);
    assert_eq!(err(&mut c, &["RL.REFUND", "k"]), want);
    assert_eq!(err(&mut c, &["rl.refund", "k"]), want);
    assert!(!exists(&mut c, "k"));
}

#[test]
fn hostile_penalty_texts_get_errors_and_the_server_lives() {
    let s = Server::start();
    let mut c = s.conn();
    let digits = format!("{}s", "9".repeat(10_240));
    let letters = "x".repeat(10_240);
    let spaces = format!("{}1s", " ".repeat(10_240));
    let strict: Vec<String> = vec![
        digits,
        letters,
        "1\u{0}s".into(),
        "5s\u{0}".into(),
        "\u{0}".into(),
        "\u{0}5s".into(),
        "５s".into(),
        "1秒".into(),
        "💥".into(),
        "1e9s".into(),
        "-5s".into(),
        "0s".into(),
        "1.5s".into(),
        "5s\r\n+OK".into(),
        "5\r\n:1\r\n".into(),
        "18446744073709551616ms".into(),
        "9223372036854775807ms".into(),
        "4294967296 years".into(),
        "315360000001 ms".into(),
        "٥s".into(),
        "5 s;".into(),
        "h h".into(),
    ];
    for (i, text) in strict.iter().enumerate() {
        let key = format!("h{i}");
        hit(&mut c, &key, "1/h", &[]);
        let d0 = dump(&mut c, &key);
        for cmd in ["RL.HIT", "RL.TEST"] {
            let e = err(&mut c, &[cmd, &key, "1/h", "PENALTY", text]);
            assert!(
                e.starts_with("ERR invalid PENALTY '"),
                "{cmd} PENALTY {:?}: {e}",
                &text[..text.len().min(40)]
            );
        }
        assert_eq!(dump(&mut c, &key), d0);
        assert_eq!(penalty_ms(&mut c, &key), 0);
    }
    // Spaces: around the multiple and the unit they are allowed (section
    // 1); leading and trailing ones may be refused. Accepted means 5 s.
    for (i, text) in [" 5 s ", "5  s", "5 s", " 5s", "5s ", spaces.as_str()]
        .iter()
        .enumerate()
    {
        let key = format!("sp{i}");
        hit(&mut c, &key, "1/h", &[]);
        let want = if text.len() > 100 { SECOND } else { 5 * SECOND };
        match raw(&mut c, &["RL.HIT", &key, "1/h", "PENALTY", text]) {
            Ok(v) => {
                let r = five(v, "PENALTY with spaces");
                assert_eq!(r[0], 0);
                assert_between(
                    penalty_ms(&mut c, &key),
                    want - 2000,
                    want,
                    &format!("PENALTY {:?}", &text[..text.len().min(20)]),
                );
            }
            Err(e) => {
                let t = err_text(&e);
                assert!(t.starts_with("ERR invalid PENALTY '"), "{t}");
                assert!(
                    text.starts_with(' ') || text.ends_with(' '),
                    "PENALTY {text:?} refused: {t}"
                );
                assert_eq!(penalty_ms(&mut c, &key), 0);
            }
        }
    }
    // Many PENALTY words.
    let mut many = vec!["RL.HIT", "k", "10/s"];
    for _ in 0..5000 {
        many.extend(["PENALTY", "1s"]);
    }
    let e = err(&mut c, &many);
    assert!(e.starts_with("ERR "), "{e}");
    assert!(!exists(&mut c, "k"));
    ping(&mut c);
}

#[test]
fn hostile_refund_inputs_get_errors_and_write_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "10/h", &["COST", "5"]);
    let d0 = dump(&mut c, "k");
    let long_limits = "1/s;".repeat(250_000);
    let long_unit = format!("10/{}", "x".repeat(100_000));
    let huge = "9".repeat(100_000);
    for limits in [
        long_limits.as_str(),
        long_unit.as_str(),
        "",
        "10/s;20/1000ms",
        "0/h",
        "10/0h",
        "10/11y",
        "\u{0}",
        "10/h\u{0}",
        "١٠/h",
        "10/h\r\n+OK\r\n",
        "💥/s",
    ] {
        let e = err(&mut c, &["RL.REFUND", "k", limits]);
        assert!(
            e.starts_with("ERR invalid limit '"),
            "{:?}: {e}",
            &limits[..limits.len().min(40)]
        );
        assert_eq!(dump(&mut c, "k"), d0);
    }
    assert_eq!(
        err(&mut c, &["RL.REFUND", "k", "10/h", "COST", &huge]),
        COST_ERR
    );
    for args in [
        vec!["RL.REFUND", "k", "10/h", "STRATEGY", huge.as_str()],
        vec!["RL.REFUND", "k", "10/h", huge.as_str(), "1"],
        vec![
            "RL.REFUND",
            "k",
            "10/h",
            "STRATEGY",
            "gcra",
            "BURST",
            huge.as_str(),
        ],
        vec!["RL.REFUND", "k", "10/h", "COST", "1", "STRATEGY"],
    ] {
        let e = err(&mut c, &args);
        assert!(e.starts_with("ERR "), "{e}");
    }
    let mut many = vec!["RL.REFUND", "k", "10/h"];
    many.extend(std::iter::repeat_n("COST", 10_000));
    let e = err(&mut c, &many);
    assert!(e.starts_with("ERR "), "{e}");
    assert_eq!(dump(&mut c, "k"), d0, "a refused RL.REFUND wrote");
    // Big and binary keys work.
    let big_key = "k".repeat(100_000);
    assert_eq!(refund(&mut c, &big_key, "10/h", &[]), [1, 10, 10, 0, 0]);
    let v: Value = redis::cmd("RL.REFUND")
        .arg(&b"\x00\xff\r\n"[..])
        .arg("10/h")
        .query(&mut c)
        .unwrap();
    assert_eq!(five(v, "binary key"), [1, 10, 10, 0, 0]);
    assert_eq!(pstats(&mut c, "k", "10/h", &[])[0].remaining, 5);
    ping(&mut c);
}

// ---------------------------------------------------------------------------
// 9. Command metadata
// ---------------------------------------------------------------------------

#[test]
fn command_info_rl_refund() {
    let s = Server::start();
    let mut c = s.conn();
    let info = command_info(&mut c, "rl.refund");
    assert_eq!(to_string(&info[0]).to_lowercase(), "rl.refund");
    assert_eq!(to_i64(&info[1]), -3, "arity: key and limits at least");
    let flags = strings(&info[2]);
    assert!(
        flags.iter().any(|f| f == "write"),
        "write missing from {flags:?}"
    );
    for f in ["readonly", "fast", "denyoom"] {
        assert!(
            !flags.iter().any(|x| x == f),
            "unexpected flag {f} in {flags:?}"
        );
    }
    assert_eq!(
        (to_i64(&info[3]), to_i64(&info[4]), to_i64(&info[5])),
        (1, 1, 1),
        "first, last, step"
    );
    assert!(info.len() >= 9, "no key specs: {info:?}");
    let specs = arr(&info[8]);
    assert_eq!(specs.len(), 1, "{specs:?}");
    let spec = stat_fields(&specs[0]);
    let kflags = strings(field(&spec, "flags"));
    assert!(
        kflags.iter().any(|f| f == "RW"),
        "RW missing from {kflags:?}"
    );
    assert!(!kflags.iter().any(|f| f == "RO"), "RO in {kflags:?}");
    let bs = stat_fields(field(&spec, "begin_search"));
    assert_eq!(to_string(field(&bs, "type")), "index");
    assert_eq!(to_i64(field(&stat_fields(field(&bs, "spec")), "index")), 1);
    // GETKEYS and the module's command list.
    let v = raw(
        &mut c,
        &[
            "COMMAND",
            "GETKEYS",
            "RL.REFUND",
            "mykey",
            "10/s",
            "COST",
            "2",
        ],
    )
    .unwrap();
    assert_eq!(strings(&v), vec!["mykey".to_string()]);
    let v = raw(
        &mut c,
        &["COMMAND", "LIST", "FILTERBY", "MODULE", "ratelimit"],
    )
    .unwrap();
    let names: Vec<String> = strings(&v).into_iter().map(|s| s.to_lowercase()).collect();
    assert!(names.iter().any(|n| n == "rl.refund"), "{names:?}");
}

#[test]
fn command_docs_describe_refund_and_penalty() {
    let s = Server::start();
    let mut c = s.conn();
    let mut docs = |name: &str| -> (String, Vec<Value>, String) {
        let v = raw(&mut c, &["COMMAND", "DOCS", name]).unwrap();
        let top = stat_fields(&v);
        assert_eq!(top.len(), 1, "COMMAND DOCS {name}: {v:?}");
        let doc = stat_fields(&top[0].1);
        let summary = to_string(field(&doc, "summary"));
        let args = arr(field(&doc, "arguments")).clone();
        let mut words = Vec::new();
        collect_strings(field(&doc, "arguments"), &mut words);
        (summary, args, words.join(" ").to_lowercase())
    };
    let (summary, args, all) = docs("rl.refund");
    assert!(!summary.trim().is_empty(), "rl.refund: empty summary");
    assert!(args.len() >= 2, "rl.refund: key and limits at least: {all}");
    assert_eq!(to_string(field(&stat_fields(&args[0]), "type")), "key");
    for w in ["limits", "strategy", "cost", "burst"] {
        assert!(all.contains(w), "rl.refund: no {w} in {all}");
    }
    assert!(
        !all.contains("penalty"),
        "rl.refund documents PENALTY: {all}"
    );
    for name in ["rl.hit", "rl.test"] {
        let (_, _, all) = docs(name);
        assert!(
            all.contains("penalty"),
            "{name}: PENALTY not documented: {all}"
        );
    }
    for name in ["rl.stats", "rl.clear"] {
        let (_, _, all) = docs(name);
        assert!(!all.contains("penalty"), "{name} documents PENALTY: {all}");
    }
}

// ---------------------------------------------------------------------------
// 9. INFO ratelimit counters
// ---------------------------------------------------------------------------

const STARTED: &str = "ratelimit_penalties_started";
const DENIED: &str = "ratelimit_calls_denied_by_penalty";
const REFUNDS: &str = "ratelimit_refund_calls";

#[test]
fn info_counts_penalties_and_refunds_and_resetstat_clears_them() {
    let s = Server::start();
    let mut c = s.conn();
    for n in [STARTED, DENIED, REFUNDS] {
        assert_eq!(counter(&mut c, n), 0, "{n} on a new server");
    }
    hit(&mut c, "k", "1/h", &[]);
    start_penalty(&mut c, "k", "1/h", &[], HOUR);
    assert_eq!(counter(&mut c, STARTED), 1);
    assert_eq!(
        counter(&mut c, DENIED),
        0,
        "the hit that starts a penalty is not denied by it"
    );
    // Denied only because of the penalty (10/h has room): 5 calls.
    hit(&mut c, "k", "10/h", &[]);
    hit(&mut c, "k", "10/h", &["PENALTY", "5s"]);
    test(&mut c, "k", "10/h", &[]);
    test(&mut c, "k", "10/h", &["PENALTY", "1s"]);
    hit(&mut c, "k", "10/h", &["COST", "0"]);
    // Not RL.HIT / RL.TEST, or not carried out.
    pstats(&mut c, "k", "10/h", &[]);
    let _ = err(&mut c, &["RL.HIT", "k", "10/fortnight"]);
    let _ = err(&mut c, &["RL.TEST", "k", "10/h", "PENALTY", "5"]);
    assert_eq!(counter(&mut c, DENIED), 5);
    assert_eq!(counter(&mut c, STARTED), 1);
    // RL.TEST PENALTY starts nothing; a -1 denial starts nothing.
    hit(&mut c, "j", "1/h", &[]);
    test(&mut c, "j", "1/h", &["PENALTY", "1h"]);
    hit(&mut c, "z", "1/h", &["COST", "5", "PENALTY", "1h"]);
    assert_eq!(counter(&mut c, STARTED), 1);
    assert_eq!(counter(&mut c, DENIED), 5);
    start_penalty(&mut c, "j", "1/h", &[], HOUR);
    assert_eq!(counter(&mut c, STARTED), 2);
    // Refunds carried out: a real one, one under a penalty, a no-op one.
    hit(&mut c, "r", "5/h", &["COST", "3"]);
    refund(&mut c, "r", "5/h", &[]);
    refund(&mut c, "k", "1/h", &[]);
    refund(&mut c, "nokey", "5/h", &[]);
    let _ = err(&mut c, &["RL.REFUND", "r", "5/h", "COST", "0"]);
    let _ = err(&mut c, &["RL.REFUND", "r", "5/h", "PENALTY", "1s"]);
    let _ = err(&mut c, &["RL.REFUND", "r"]);
    assert_eq!(counter(&mut c, REFUNDS), 3);
    assert_eq!(counter(&mut c, STARTED), 2);
    assert_eq!(
        counter(&mut c, DENIED),
        5,
        "RL.REFUND under a penalty is not a denied call"
    );
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    for n in [STARTED, DENIED, REFUNDS] {
        assert_eq!(counter(&mut c, n), 0, "{n} after CONFIG RESETSTAT");
    }
    // They count again afterwards.
    hit(&mut c, "k", "10/h", &[]);
    refund(&mut c, "r", "5/h", &[]);
    assert_eq!(
        (
            counter(&mut c, STARTED),
            counter(&mut c, DENIED),
            counter(&mut c, REFUNDS)
        ),
        (0, 1, 1)
    );
}

/// An empty string is not rate-limit state: RL.REFUND answers WRONGTYPE,
/// as every other command does, and leaves it.
#[test]
fn refund_on_an_empty_string_is_wrongtype() {
    let s = Server::start();
    let mut c = s.conn();
    raw(&mut c, &["SET", "e", ""]).unwrap();
    let e = err(&mut c, &["RL.REFUND", "e", "1/s"]);
    assert!(e.starts_with("WRONGTYPE"), "{e}");
    assert_eq!(dump(&mut c, "e"), dump(&mut c, "e"));
    let v: String = redis::cmd("GET").arg("e").query(&mut c).unwrap();
    assert_eq!(v, "");
}

/// A refund on a large moving-window log (a ring of blocks) is taken off
/// its tail in place: it replicates about a header's bytes, not the log,
/// whether it stays in the tail block or empties many blocks, and a
/// replica without the module stays identical.
#[test]
fn a_refund_on_a_large_log_replicates_only_what_it_changes() {
    let p = Server::start();
    let r = replica_of(&p, false);
    let mut c = p.conn();
    let limit = "4294967295/h";
    let opts = ["STRATEGY", "moving"];
    // 20,000 hits: a ring of about 40 blocks (about 20 KB).
    let mut pipe = redis::pipe();
    for i in 0..20_000 {
        pipe.cmd("RL.HIT")
            .arg("big")
            .arg(limit)
            .arg(&opts[..])
            .arg("COST")
            .arg(1 + i % 3)
            .ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    let len: i64 = redis::cmd("STRLEN").arg("big").query(&mut c).unwrap();
    assert!(len > 15_000, "log of {len} bytes");
    let used =
        |c: &mut Connection| 4_294_967_295 - test(c, "big", limit, &with(&opts, &["COST", "0"]))[2];
    let before = used(&mut c);
    for cost in ["1", "2", "7000", "1", "15000"] {
        let bytes = counter(&mut c, "ratelimit_propagated_bytes");
        let reply = refund(&mut c, "big", limit, &with(&opts, &["COST", cost]));
        assert_eq!(reply[0], 1);
        let sent = counter(&mut c, "ratelimit_propagated_bytes") - bytes;
        assert!(
            sent <= 100,
            "refund of {cost} replicated {sent} bytes of a {len}-byte log"
        );
        let strlen: i64 = redis::cmd("STRLEN").arg("big").query(&mut c).unwrap();
        assert_eq!(strlen, len, "the log keeps its size");
    }
    assert_eq!(used(&mut c), before - 22_004);
    wait_synced(&p, &r);
    assert_same_data(&p, &r);
}
