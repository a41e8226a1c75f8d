//! Section 13 (concurrency leases: `RL.ACQUIRE key max lease token` and
//! `RL.RELEASE key token`), with what it touches in sections 3, 5, 6, 7, 8,
//! 9 and 11: the five-integer reply, renewals, a lowered `max`, expiry,
//! releases, the key shared with rate-limit state (RL.HIT, RL.STATS, TTL,
//! RL.CLEAR, penalties), writes (replication to a replica without the
//! module, AOF, WATCH, keyspace notifications), errors and arity, WRONGTYPE,
//! command metadata, the `INFO ratelimit` lease counters, concurrency, and a
//! full set of 10,000 leases.
//!
//! Time-dependent checks use leases of a few hundred ms, or bound "the time
//! left" of a lease from the client's clock: a lease of `d` ms granted by a
//! call sent at `b0` and answered at `a0` has, at a call sent at `b` and
//! answered at `a`, between `d - (a - b0)` and `d - (b - a0)` ms left (1 ms
//! either side for rounding).

mod common;
use common::checks::*;
use common::*;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const MAX_ERR: &str = "ERR max must be an integer from 1 to 10000";
const TOKEN_ERR: &str = "ERR token must be 1 to 128 bytes";
const ACQUIRE_ARITY: &str = "ERR wrong number of arguments for 'rl.acquire' command";
const RELEASE_ARITY: &str = "ERR wrong number of arguments for 'rl.release' command";

const ACQUIRED: &str = "ratelimit_leases_acquired";
const DENIED: &str = "ratelimit_acquires_denied";
const RELEASED: &str = "ratelimit_leases_released";
const EXPIRED: &str = "ratelimit_leases_expired";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Runs a command given as binary words.
fn rawb(c: &mut Connection, args: &[&[u8]]) -> RedisResult<Value> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

/// Runs a binary command that must fail; returns its error text.
fn errb(c: &mut Connection, args: &[&[u8]]) -> String {
    match rawb(c, args) {
        Ok(v) => panic!("expected an error from {args:?}, got {v:?}"),
        Err(e) => err_text(&e),
    }
}

fn short(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(40).collect()
}

/// `RL.ACQUIRE key max lease token` → the five integers, or the error text.
fn try_acquire(
    c: &mut Connection,
    key: &str,
    max: i64,
    lease: &str,
    token: impl AsRef<[u8]>,
) -> Result<[i64; 5], String> {
    let m = max.to_string();
    let t = token.as_ref();
    match rawb(
        c,
        &[
            b"RL.ACQUIRE",
            key.as_bytes(),
            m.as_bytes(),
            lease.as_bytes(),
            t,
        ],
    ) {
        Ok(v) => Ok(five(
            v,
            &format!("RL.ACQUIRE {key} {max} {lease} {}", short(t)),
        )),
        Err(e) => Err(err_text(&e)),
    }
}

/// `RL.ACQUIRE key max lease token` → the five integers.
#[track_caller]
fn acquire(
    c: &mut Connection,
    key: &str,
    max: i64,
    lease: &str,
    token: impl AsRef<[u8]>,
) -> [i64; 5] {
    let t = token.as_ref().to_vec();
    try_acquire(c, key, max, lease, &t)
        .unwrap_or_else(|e| panic!("RL.ACQUIRE {key} {max} {lease} {:?} failed: {e}", short(&t)))
}

/// `RL.RELEASE key token` → 1 or 0.
#[track_caller]
fn release(c: &mut Connection, key: &str, token: impl AsRef<[u8]>) -> i64 {
    let t = token.as_ref();
    match rawb(c, &[b"RL.RELEASE", key.as_bytes(), t]) {
        Ok(v) => to_i64(&v),
        Err(e) => panic!("RL.RELEASE {key} {:?} failed: {}", short(t), err_text(&e)),
    }
}

/// A lease of `d` ms granted (or renewed) by a call sent at `before` and
/// answered at `after`.
#[derive(Clone, Copy, Debug)]
struct Held {
    before: Instant,
    after: Instant,
    d: i64,
}

impl Held {
    /// Bounds (inclusive) of the ms left of the lease at a call sent at `b`
    /// and answered at `a`.
    fn left(&self, b: Instant, a: Instant) -> (i64, i64) {
        let lo = self.d - ceil_ms(a.saturating_duration_since(self.before)) - 1;
        let hi = self.d - floor_ms(b.saturating_duration_since(self.after)) + 1;
        (lo.max(0), hi)
    }

    /// Sleeps until the lease has surely ended, plus `margin` ms.
    fn wait_end(&self, margin: i64) {
        let end = self.after + Duration::from_millis((self.d + margin) as u64);
        let now = Instant::now();
        if end > now {
            std::thread::sleep(end - now);
        }
    }
}

/// `RL.ACQUIRE key max <d>ms token`, which must be granted.
#[track_caller]
fn take(
    c: &mut Connection,
    key: &str,
    max: i64,
    d: i64,
    token: impl AsRef<[u8]>,
) -> (Held, [i64; 5]) {
    let lease = format!("{d}ms");
    let (r, b, a) = timed(|| acquire(c, key, max, &lease, token.as_ref()));
    assert_eq!(r[0], 1, "RL.ACQUIRE {key} {max} {lease} was denied: {r:?}");
    assert_eq!(r[1], max, "max echoed: {r:?}");
    assert_eq!(r[4], 0, "retry_after_ms of a granted acquire: {r:?}");
    (
        Held {
            before: b,
            after: a,
            d,
        },
        r,
    )
}

/// Asserts `x` is the time left of `h` at a call sent at `b`, answered at `a`.
#[track_caller]
fn assert_left(x: i64, h: &Held, b: Instant, a: Instant, what: &str) {
    let (lo, hi) = h.left(b, a);
    assert_between(x, lo, hi, what);
}

/// `RL.ACQUIRE` bracketed by the server's clock: (reply, server ms before,
/// server ms after).
#[track_caller]
fn acquire_clocked(
    c: &mut Connection,
    key: &str,
    max: i64,
    lease: &str,
    token: impl AsRef<[u8]>,
) -> ([i64; 5], i64, i64) {
    let t0 = server_ms(c);
    let r = acquire(c, key, max, lease, token);
    let t1 = server_ms(c);
    (r, t0, t1)
}

/// The key expires exactly `reset_after_ms` after the call's `now`, which
/// lies within the server times `t0..=t1` read around the call.
#[track_caller]
fn assert_expires_at_reset(c: &mut Connection, key: &str, r: [i64; 5], t0: i64, t1: i64) {
    let at = pexpiretime(c, key);
    assert!(at > 0, "{key} has no expiry ({at})");
    assert_between(
        at - r[3],
        t0,
        t1,
        &format!("{key}: PEXPIRETIME - reset_after_ms (the call's now); reply {r:?}"),
    );
}

/// The key's TTL is `ms` less the time since it was set: within
/// [ms - SLACK, ms].
#[track_caller]
fn assert_ttl(c: &mut Connection, key: &str, ms: i64, what: &str) {
    let at = pexpiretime(c, key);
    assert!(at > 0, "{what}: {key} has no expiry ({at})");
    assert_between(at - server_ms(c), ms - SLACK, ms, what);
}

fn counters(c: &mut Connection) -> [i64; 4] {
    [
        counter(c, ACQUIRED),
        counter(c, DENIED),
        counter(c, RELEASED),
        counter(c, EXPIRED),
    ]
}

fn strlen(c: &mut Connection, key: &str) -> i64 {
    redis::cmd("STRLEN").arg(key).query(c).unwrap()
}

/// DUMP and PEXPIRETIME of one key.
fn key_state(c: &mut Connection, key: &str) -> (Option<Vec<u8>>, i64) {
    (dump(c, key), pexpiretime(c, key))
}

fn notify_all(s: &Server) {
    raw(
        &mut s.conn(),
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
    )
    .unwrap();
}

/// `penalty_ms` of `key` as RL.STATS reports it.
fn penalty_ms(c: &mut Connection, key: &str) -> i64 {
    let v = raw(c, &["RL.STATS", key, "1/h"]).unwrap();
    let fields = stat_fields(&arr(&v)[0]);
    to_i64(field(&fields, "penalty_ms"))
}

/// A 128-byte token numbered `i` (distinct for distinct `i`).
fn token128(i: usize) -> Vec<u8> {
    let mut t = format!("{i:08}-").into_bytes();
    t.resize(128, b'x');
    t
}

// ---------------------------------------------------------------------------
// 8 and 13. Arguments: max, lease, token, arity
// ---------------------------------------------------------------------------

#[test]
fn max_must_be_an_integer_from_1_to_10000() {
    let s = Server::start();
    let mut c = s.conn();
    acquire(&mut c, "k", 1, "1h", "held");
    let before = key_state(&mut c, "k");
    let huge = "9".repeat(10_000);
    for max in [
        "0",
        "10001",
        "-1",
        "x",
        "",
        "1.5",
        "1e3",
        " 1",
        "1 ",
        "0x10",
        "4294967297",
        "18446744073709551617",
        huge.as_str(),
        "１",
        "1\u{0}",
    ] {
        for key in ["k", "fresh"] {
            for token in ["held", "new"] {
                let e = err(&mut c, &["RL.ACQUIRE", key, max, "1h", token]);
                assert_eq!(
                    e,
                    MAX_ERR,
                    "RL.ACQUIRE {key} {:?} 1h {token}",
                    short(max.as_bytes())
                );
            }
        }
    }
    assert_eq!(key_state(&mut c, "k"), before, "a refused RL.ACQUIRE wrote");
    assert!(
        !exists(&mut c, "fresh"),
        "a refused RL.ACQUIRE created the key"
    );
    // The bounds themselves work.
    assert_eq!(acquire(&mut c, "one", 1, "1h", "t"), [1, 1, 0, HOUR, 0]);
    assert_eq!(
        acquire(&mut c, "top", 10_000, "1h", "t"),
        [1, 10_000, 9_999, HOUR, 0]
    );
    // The held lease is still there: max 1 admits nobody else.
    assert_eq!(acquire(&mut c, "k", 1, "1h", "new")[0], 0);
}

#[test]
fn lease_is_a_duration_from_1ms_to_10_years_like_a_penalty() {
    let s = Server::start();
    let mut c = s.conn();
    let y10 = 3650 * DAY;
    let cases: Vec<(&str, i64)> = vec![
        ("1ms", 1),
        ("ms", 1),
        ("1 ms", 1),
        ("500ms", 500),
        ("1500 msec", 1500),
        ("s", SECOND),
        ("2 seconds", 2 * SECOND),
        ("30s", 30 * SECOND),
        ("15m", 15 * MINUTE),
        ("2 minutes", 2 * MINUTE),
        ("hour", HOUR),
        ("Hours", HOUR),
        ("2 hrs", 2 * HOUR),
        ("2 days", 2 * DAY),
        ("1w", 7 * DAY),
        ("1mo", 30 * DAY),
        ("1 yr", 365 * DAY),
        ("10 years", y10),
        ("10y", y10),
        ("3650d", y10),
        ("315360000000ms", y10),
    ];
    for (i, (text, ms)) in cases.iter().enumerate() {
        let key = format!("d{i}");
        let (r, t0, t1) = acquire_clocked(&mut c, &key, 1, text, "t");
        assert_eq!(r, [1, 1, 0, *ms, 0], "lease {text:?}");
        if *ms >= 1000 {
            assert_expires_at_reset(&mut c, &key, r, t0, t1);
        }
    }
}

#[test]
fn bad_leases_are_errors_naming_the_text_and_write_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    acquire(&mut c, "k", 2, "1h", "held");
    let before = key_state(&mut c, "k");
    for text in [
        "5",
        "1000",
        "1",
        "0s",
        "0ms",
        "0 hours",
        "x",
        "fortnight",
        "5 fortnights",
        "",
        "-1s",
        "1.5s",
        "1e3ms",
        "11y",
        "3651d",
        "315360000001ms",
        "18446744073709551616ms",
        "1s;1s",
        "1/s",
        "s5",
    ] {
        for (key, token) in [("k", "held"), ("k", "new"), ("fresh", "new")] {
            let e = err(&mut c, &["RL.ACQUIRE", key, "2", text, token]);
            let prefix = format!("ERR invalid lease '{text}': ");
            assert!(
                e.starts_with(&prefix),
                "lease {text:?} on {key}: {e:?} does not start with {prefix:?}"
            );
            assert!(e.len() > prefix.len(), "no reason given: {e}");
        }
    }
    // Control bytes in the text may be shown escaped; the message still
    // names the lease.
    for text in ["5s\u{0}", "\u{0}", "5s\r\n+OK"] {
        let e = err(&mut c, &["RL.ACQUIRE", "k", "2", text, "new"]);
        assert!(e.starts_with("ERR invalid lease '"), "lease {text:?}: {e}");
    }
    assert_eq!(key_state(&mut c, "k"), before, "a refused RL.ACQUIRE wrote");
    assert!(
        !exists(&mut c, "fresh"),
        "a refused RL.ACQUIRE created the key"
    );
}

#[test]
fn token_must_be_1_to_128_bytes() {
    let s = Server::start();
    let mut c = s.conn();
    acquire(&mut c, "k", 2, "1h", "held");
    let before = key_state(&mut c, "k");
    let t129 = vec![b'a'; 129];
    let t1000 = vec![0xffu8; 1000];
    let t100k = vec![b'z'; 100_000];
    for bad in [&b""[..], &t129, &t1000, &t100k] {
        for key in ["k", "fresh"] {
            let e = errb(&mut c, &[b"RL.ACQUIRE", key.as_bytes(), b"2", b"1h", bad]);
            assert_eq!(e, TOKEN_ERR, "RL.ACQUIRE with a {}-byte token", bad.len());
            let e = errb(&mut c, &[b"RL.RELEASE", key.as_bytes(), bad]);
            assert_eq!(e, TOKEN_ERR, "RL.RELEASE with a {}-byte token", bad.len());
        }
    }
    assert_eq!(key_state(&mut c, "k"), before, "a refused call wrote");
    assert!(!exists(&mut c, "fresh"));
    // 128 bytes (and 1 byte) are fine; a 128-byte token renews and releases.
    let t128 = vec![b'a'; 128];
    assert_eq!(acquire(&mut c, "k", 3, "1h", &t128), [1, 3, 1, HOUR, 0]);
    assert_eq!(acquire(&mut c, "k", 3, "1h", &t128), [1, 3, 1, HOUR, 0]);
    assert_eq!(acquire(&mut c, "k", 3, "1h", "1"), [1, 3, 0, HOUR, 0]);
    // The 129-byte token whose first 128 bytes are the held one is not it.
    assert_eq!(errb(&mut c, &[b"RL.RELEASE", b"k", &t129]), TOKEN_ERR);
    assert_eq!(release(&mut c, "k", &t128), 1);
    assert_eq!(release(&mut c, "k", &t128), 0);
    assert_eq!(release(&mut c, "k", "1"), 1);
    assert_eq!(release(&mut c, "k", "held"), 1);
    assert!(!exists(&mut c, "k"));
}

#[test]
fn binary_tokens_are_distinct_byte_for_byte() {
    let s = Server::start();
    let mut c = s.conn();
    let long_ff = [0xffu8; 128];
    let long_ff127 = [0xffu8; 127];
    let mut nul128 = [0u8; 128];
    nul128[127] = b'a';
    let short_tokens: Vec<&[u8]> = vec![
        b"a",
        b"a\0",
        b"\0a",
        b"\0",
        b"\0\0",
        b"A",
        b"\xff",
        b"\xff\xfe",
        b"\xfe\xff",
        b"a ",
        b" a",
        "é".as_bytes(),
        b"\xc3",
        b"\r\n",
    ];
    let max = 100;
    let mut held = 0;
    for t in &short_tokens {
        held += 1;
        assert_eq!(
            acquire(&mut c, "k", max, "1h", t),
            [1, max, max - held, HOUR, 0],
            "token {t:?} is not a new lease"
        );
    }
    // Longer tokens widen every slot: short ones must stay distinct from
    // their zero-padded forms.
    for t in [&long_ff127[..], &long_ff[..], &nul128[..]] {
        held += 1;
        assert_eq!(
            acquire(&mut c, "k", max, "1h", t)[2],
            max - held,
            "a {}-byte token is not a new lease",
            t.len()
        );
    }
    let mut all: Vec<&[u8]> = short_tokens.clone();
    all.extend([&long_ff127[..], &long_ff[..], &nul128[..]]);
    // Each one renews its own lease: the count does not move.
    for t in &all {
        assert_eq!(
            acquire(&mut c, "k", max, "1h", t),
            [1, max, max - held, HOUR, 0],
            "renewing {t:?}"
        );
    }
    // Near misses are new leases (then released).
    for t in [
        &b"a\0\0"[..],
        b"\0\0\0",
        b"\xff\xff",
        b"B",
        &long_ff[..127 - 1],
    ] {
        assert_eq!(
            acquire(&mut c, "k", max, "1h", t)[2],
            max - held - 1,
            "token {t:?} matched a held one"
        );
        assert_eq!(release(&mut c, "k", t), 1);
    }
    // Releasing one leaves its neighbours: every release ends exactly one.
    for (i, t) in all.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(release(&mut c, "k", t), 1, "release {t:?}");
        }
    }
    for (i, t) in all.iter().enumerate() {
        let want = i64::from(i % 2 == 1);
        assert_eq!(release(&mut c, "k", t), want, "second pass, {t:?}");
    }
    assert!(!exists(&mut c, "k"), "every lease was released");
}

#[test]
fn arity_errors_are_redis_own_and_write_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    acquire(&mut c, "k", 1, "1h", "t");
    let before = key_state(&mut c, "k");
    for args in [
        vec!["RL.ACQUIRE"],
        vec!["RL.ACQUIRE", "k"],
        vec!["RL.ACQUIRE", "k", "2"],
        vec!["RL.ACQUIRE", "k", "2", "1h"],
        vec!["RL.ACQUIRE", "k", "2", "1h", "u", "extra"],
        vec!["rl.acquire", "k", "2", "1h", "u", "1h", "v"],
        vec!["RL.ACQUIRE", "new", "2", "1h"],
    ] {
        assert_eq!(err(&mut c, &args), ACQUIRE_ARITY, "{args:?}");
    }
    for args in [
        vec!["RL.RELEASE"],
        vec!["RL.RELEASE", "k"],
        vec!["RL.RELEASE", "k", "t", "extra"],
        vec!["rl.release", "k", "t", "t"],
    ] {
        assert_eq!(err(&mut c, &args), RELEASE_ARITY, "{args:?}");
    }
    assert_eq!(key_state(&mut c, "k"), before, "a refused call wrote");
    assert!(!exists(&mut c, "new"));
    // The lease is still held.
    assert_eq!(acquire(&mut c, "k", 1, "1h", "u")[0], 0);
    assert_eq!(release(&mut c, "k", "t"), 1);
}

#[test]
fn refused_calls_propagate_nothing_and_keep_watch() {
    let p = Server::start_with(&["--repl-ping-replica-period", "3600"]);
    let _r = replica_of(&p, false);
    let mut c = p.conn();
    acquire(&mut c, "k", 2, "1h", "t");
    raw(&mut c, &["RPUSH", "list", "x"]).unwrap();
    let t129 = vec![b'a'; 129];
    let refused: Vec<Vec<&[u8]>> = vec![
        vec![b"RL.ACQUIRE", b"k", b"0", b"1h", b"u"],
        vec![b"RL.ACQUIRE", b"k", b"10001", b"1h", b"u"],
        vec![b"RL.ACQUIRE", b"k", b"2", b"5", b"u"],
        vec![b"RL.ACQUIRE", b"k", b"2", b"0s", b"t"],
        vec![b"RL.ACQUIRE", b"k", b"2", b"1h", b""],
        vec![b"RL.ACQUIRE", b"k", b"2", b"1h", &t129],
        vec![b"RL.ACQUIRE", b"k", b"2", b"1h"],
        vec![b"RL.ACQUIRE", b"k", b"2", b"1h", b"u", b"v"],
        vec![b"RL.RELEASE", b"k", b""],
        vec![b"RL.RELEASE", b"k", &t129],
        vec![b"RL.RELEASE", b"k"],
        vec![b"RL.RELEASE", b"k", b"t", b"t"],
        vec![b"RL.ACQUIRE", b"list", b"2", b"1h", b"u"],
        vec![b"RL.RELEASE", b"list", b"t"],
    ];
    for args in &refused {
        let key = std::str::from_utf8(args[1]).unwrap();
        let before_data = data(&mut c);
        let before = p.repl_offset();
        assert!(rawb(&mut c, args).is_err(), "{args:?} succeeded");
        assert_eq!(p.repl_offset(), before, "{args:?} propagated a write");
        assert_eq!(data(&mut c), before_data, "{args:?} changed a key");
        assert!(
            exec_survives_bytes(&p, key, args),
            "{args:?} aborted a WATCH"
        );
    }
}

// ---------------------------------------------------------------------------
// 13. Acquiring: grants, the reply, renewals, a lower max, expiry
// ---------------------------------------------------------------------------

#[test]
fn acquire_grants_until_max_live_leases_are_held() {
    let s = Server::start();
    let mut c = s.conn();
    // Leases of different lengths: a ends first, b last.
    let (a, r) = take(&mut c, "k", 3, HOUR, "a");
    assert_eq!(r, [1, 3, 2, HOUR, 0], "first lease");
    let (b, r) = take(&mut c, "k", 3, 3 * HOUR, "b");
    assert_eq!(r, [1, 3, 1, 3 * HOUR, 0], "second lease: it ends last");
    let ((_, r), bb, ba) = timed(|| take(&mut c, "k", 3, 2 * HOUR, "c"));
    assert_eq!(&r[..3], &[1, 3, 0], "third lease: the set is full");
    assert_left(r[3], &b, bb, ba, "third lease: reset = until b ends");
    // The fourth token is denied: reset until b (the last) ends, retry
    // until a (the earliest) ends.
    for (i, token) in ["d", "e", "d"].iter().enumerate() {
        let (r, bb, ba) = timed(|| acquire(&mut c, "k", 3, "1h", token));
        assert_eq!(&r[..3], &[0, 3, 0], "denial {i}: {r:?}");
        assert_left(
            r[3],
            &b,
            bb,
            ba,
            "denied: reset_after_ms = until the last ends",
        );
        assert_left(
            r[4],
            &a,
            bb,
            ba,
            "denied: retry_after_ms = until the earliest ends",
        );
    }
    // The key expires when the last lease ends.
    let t0 = server_ms(&mut c);
    let (r, bb, ba) = timed(|| acquire(&mut c, "k", 3, "1h", "zz"));
    let t1 = server_ms(&mut c);
    assert_eq!(r[0], 0);
    assert_left(r[3], &b, bb, ba, "reset");
    assert_expires_at_reset(&mut c, "k", r, t0, t1);
    // Every granted lease is held: each releases once.
    for t in ["a", "b", "c"] {
        assert_eq!(release(&mut c, "k", t), 1, "release {t}");
    }
    for t in ["d", "e", "zz"] {
        assert_eq!(release(&mut c, "k", t), 0, "{t} was never granted");
    }
    assert!(!exists(&mut c, "k"));
}

#[test]
fn the_reply_counts_available_after_the_call_and_times_every_live_lease() {
    let s = Server::start();
    let mut c = s.conn();
    // reset_after_ms of a grant covers the leases already held, not only
    // the new one.
    let (long, _) = take(&mut c, "k", 5, 3 * HOUR, "long");
    let ((_, r), b, a) = timed(|| take(&mut c, "k", 5, HOUR, "short"));
    assert_eq!(&r[..3], &[1, 5, 3]);
    assert_left(r[3], &long, b, a, "reset after a shorter grant");
    // A grant whose lease ends last: reset is exactly that lease.
    let (r, t0, t1) = acquire_clocked(&mut c, "k", 5, "4h", "longest");
    assert_eq!(r, [1, 5, 2, 4 * HOUR, 0]);
    assert_expires_at_reset(&mut c, "k", r, t0, t1);
    // available follows max of the call, never negative.
    assert_eq!(acquire(&mut c, "k", 10, "4h", "x"), [1, 10, 6, 4 * HOUR, 0]);
    let r = acquire(&mut c, "k", 2, "4h", "y");
    assert_eq!(&r[..3], &[0, 2, 0], "4 held, max 2: {r:?}");
    assert!(r[3] > 0 && r[4] > 0, "{r:?}");
    // One lease: a denial's reset and retry are both until it ends.
    let (only, _) = take(&mut c, "one", 1, 2 * HOUR, "a");
    let (r, b, a) = timed(|| acquire(&mut c, "one", 1, "1h", "b"));
    assert_eq!(&r[..3], &[0, 1, 0]);
    assert_left(r[3], &only, b, a, "reset, one lease");
    assert_left(r[4], &only, b, a, "retry, one lease");
}

#[test]
fn renewing_a_live_token_moves_its_end_to_now_plus_lease_and_counts_once() {
    let s = Server::start();
    let mut c = s.conn();
    let (b, _) = take(&mut c, "k", 2, HOUR, "b");
    take(&mut c, "k", 2, HOUR, "a");
    // Full set: the holder still renews (counts once), longer...
    let (r, t0, t1) = acquire_clocked(&mut c, "k", 2, "2h", "a");
    assert_eq!(r, [1, 2, 0, 2 * HOUR, 0], "renewal on a full set");
    assert_expires_at_reset(&mut c, "k", r, t0, t1);
    let (r, bb, ba) = timed(|| acquire(&mut c, "k", 2, "1h", "c"));
    assert_eq!(&r[..3], &[0, 2, 0]);
    assert_left(r[4], &b, bb, ba, "retry: b ends first now");
    assert_between(r[3], 2 * HOUR - SLACK, 2 * HOUR, "reset: a's new end");
    // ... or shorter: it now ends at now + lease, even before its old end.
    let ((a, r), bb, ba) = timed(|| take(&mut c, "k", 2, 10 * MINUTE, "a"));
    assert_eq!(&r[..3], &[1, 2, 0]);
    assert_left(r[3], &b, bb, ba, "reset: b ends last now");
    let left = pexpiretime(&mut c, "k") - server_ms(&mut c);
    assert_between(left, HOUR - SLACK, HOUR, "the key's TTL follows b now");
    let (r, bb, ba) = timed(|| acquire(&mut c, "k", 2, "1h", "c"));
    assert_eq!(&r[..3], &[0, 2, 0]);
    assert_left(r[4], &a, bb, ba, "retry: the shortened a ends first");
    // Many renewals, with any max: still two leases, no new slot.
    for max in [2, 1, 5, 10_000] {
        let r = acquire(&mut c, "k", max, "1h", "b");
        assert_eq!(
            &r[..3],
            &[1, max, (max - 2).max(0)],
            "renewal with max {max}"
        );
    }
    assert_eq!(acquire(&mut c, "k", 3, "1h", "c")[2], 0, "two were held");
    for t in ["a", "b", "c"] {
        assert_eq!(release(&mut c, "k", t), 1);
    }
    assert!(!exists(&mut c, "k"), "a renewal left a second lease behind");
}

#[test]
fn a_renewed_lease_outlives_its_first_end() {
    let s = Server::start();
    let mut c = s.conn();
    let (first, _) = take(&mut c, "k", 1, 600, "a");
    sleep_ms(300);
    let (renewed, r) = take(&mut c, "k", 1, 600, "a");
    assert_eq!(&r[..4], &[1, 1, 0, 600]);
    first.wait_end(50);
    // Past the first end, before the renewed one.
    let (r, b, a) = timed(|| acquire(&mut c, "k", 1, "1h", "b"));
    assert_eq!(
        &r[..3],
        &[0, 1, 0],
        "the renewed lease ended at its first end"
    );
    assert_left(r[4], &renewed, b, a, "retry: the renewed end");
    assert!(exists(&mut c, "k"));
    assert_eq!(release(&mut c, "k", "a"), 1);
    assert!(!exists(&mut c, "k"));
}

#[test]
fn a_lower_max_admits_nothing_new_until_enough_end_and_revokes_none() {
    let s = Server::start();
    let mut c = s.conn();
    let (a, _) = take(&mut c, "k", 5, 300, "a");
    let (b, _) = take(&mut c, "k", 5, 700, "b");
    take(&mut c, "k", 5, HOUR, "c");
    take(&mut c, "k", 5, HOUR, "d");
    // Four held; max 2 or 4 admits nothing new.
    let (r, bb, ba) = timed(|| acquire(&mut c, "k", 2, "1h", "x"));
    assert_eq!(&r[..3], &[0, 2, 0], "max 2 with 4 held: {r:?}");
    assert_left(r[4], &a, bb, ba, "retry: a ends first");
    assert_eq!(&acquire(&mut c, "k", 4, "1h", "x")[..3], &[0, 4, 0]);
    // A holder still renews under the lower max.
    assert_eq!(&acquire(&mut c, "k", 2, "1h", "c")[..3], &[1, 2, 0]);
    a.wait_end(30);
    // Three held, max 2: still nothing new.
    let (r, bb, ba) = timed(|| acquire(&mut c, "k", 2, "1h", "x"));
    assert_eq!(&r[..3], &[0, 2, 0], "max 2 with 3 held: {r:?}");
    assert_left(r[4], &b, bb, ba, "retry: b ends first now");
    // With max 4 there is room again.
    assert_eq!(&acquire(&mut c, "k", 4, "1h", "y")[..3], &[1, 4, 0]);
    assert_eq!(release(&mut c, "k", "y"), 1);
    b.wait_end(30);
    // Two held, max 2: full, not over.
    let r = acquire(&mut c, "k", 2, "1h", "x");
    assert_eq!(&r[..3], &[0, 2, 0], "max 2 with 2 held: {r:?}");
    assert_between(r[4], HOUR - SLACK, HOUR, "retry: c or d");
    // One ends (released): one new lease fits under max 2.
    assert_eq!(release(&mut c, "k", "c"), 1);
    assert_eq!(acquire(&mut c, "k", 2, "1h", "x"), [1, 2, 0, HOUR, 0]);
    assert_eq!(&acquire(&mut c, "k", 2, "1h", "y")[..3], &[0, 2, 0]);
    // Raising max admits again.
    assert_eq!(acquire(&mut c, "k", 3, "1h", "y"), [1, 3, 0, HOUR, 0]);
    assert_eq!(acquire(&mut c, "k", 5, "1h", "z"), [1, 5, 1, HOUR, 0]);
    // None was revoked: d (held from the start) is still there.
    assert_eq!(release(&mut c, "k", "d"), 1);
    for t in ["x", "y", "z"] {
        assert_eq!(release(&mut c, "k", t), 1);
    }
    assert_eq!(release(&mut c, "k", "a"), 0, "a ended by itself");
    assert!(!exists(&mut c, "k"));
}

#[test]
fn a_lease_whose_holder_vanished_ends_by_itself() {
    let s = Server::start();
    let mut c = s.conn();
    let (a, r) = take(&mut c, "k", 1, 300, "a");
    assert_eq!(r, [1, 1, 0, 300, 0]);
    let (r, b, af) = timed(|| acquire(&mut c, "k", 1, "1h", "b"));
    assert_eq!(&r[..3], &[0, 1, 0]);
    assert_left(r[4], &a, b, af, "retry until a ends");
    assert!(r[4] >= 1 && r[4] <= 300, "{r:?}");
    // The key's TTL is the lease's end.
    assert!(pttl(&mut c, "k") <= 300);
    a.wait_end(30);
    assert!(!exists(&mut c, "k"), "the key outlived its only lease");
    assert_eq!(acquire(&mut c, "k", 1, "1h", "b"), [1, 1, 0, HOUR, 0]);
    assert_eq!(release(&mut c, "k", "a"), 0, "a already ended");
    assert_eq!(release(&mut c, "k", "b"), 1);
}

#[test]
fn acquire_forgets_expired_leases() {
    let s = Server::start();
    let mut c = s.conn();
    // A long lease keeps the key alive while three short ones expire.
    take(&mut c, "k", 4, HOUR, "zzzzzzzz");
    let mut last = None;
    for t in ["aaaaaaaa", "bbbbbbbb", "cccccccc"] {
        last = Some(take(&mut c, "k", 4, 200, t).0);
    }
    assert_eq!(acquire(&mut c, "k", 4, "1h", "dddddddd")[0], 0, "full");
    last.unwrap().wait_end(30);
    let before = counter(&mut c, EXPIRED);
    // Expired leases hold no slot: 2 of 4 are taken after this grant.
    assert_eq!(
        acquire(&mut c, "k", 4, "1h", "wwwwwwww"),
        [1, 4, 2, HOUR, 0]
    );
    assert_eq!(counter(&mut c, EXPIRED) - before, 3, "leases forgotten");
    for t in ["aaaaaaaa", "bbbbbbbb", "cccccccc"] {
        assert_eq!(release(&mut c, "k", t), 0, "{t} had expired");
    }
    // Forgotten, they are gone for good: the next grants fill the set
    // with new tokens only, and forget nothing more.
    assert_eq!(acquire(&mut c, "k", 4, "1h", "x")[2], 1);
    assert_eq!(acquire(&mut c, "k", 4, "1h", "y")[2], 0);
    assert_eq!(acquire(&mut c, "k", 4, "1h", "aaaaaaaa")[0], 0);
    assert_eq!(counter(&mut c, EXPIRED) - before, 3, "forgotten twice");
    for t in ["zzzzzzzz", "wwwwwwww", "x", "y"] {
        assert_eq!(release(&mut c, "k", t), 1, "{t}");
    }
    assert!(!exists(&mut c, "k"), "an expired lease kept the key");
}

// ---------------------------------------------------------------------------
// 13. Releasing
// ---------------------------------------------------------------------------

#[test]
fn release_replies_1_only_when_it_ends_a_live_lease_of_token() {
    let s = Server::start();
    let mut c = s.conn();
    take(&mut c, "k", 3, HOUR, "a");
    take(&mut c, "k", 3, HOUR, "b");
    let (sh, _) = take(&mut c, "k", 3, 200, "s");
    hit(&mut c, "h", "5/h", &[]);
    assert_eq!(release(&mut c, "k", "a"), 1);
    assert_eq!(release(&mut c, "k", "a"), 0, "released twice");
    assert_eq!(release(&mut c, "k", "A"), 0);
    assert_eq!(release(&mut c, "k", "nope"), 0);
    assert_eq!(release(&mut c, "missing", "a"), 0);
    assert!(!exists(&mut c, "missing"), "a release created the key");
    assert_eq!(release(&mut c, "h", "a"), 0, "a key with no leases");
    assert_eq!(test(&mut c, "h", "5/h", &["COST", "0"])[2], 4);
    sh.wait_end(30);
    assert!(exists(&mut c, "k"));
    assert_eq!(release(&mut c, "k", "s"), 0, "release after expiry");
    // a's slot is free again: a re-acquire is a new lease.
    assert_eq!(acquire(&mut c, "k", 3, "1h", "a"), [1, 3, 1, HOUR, 0]);
    assert_eq!(release(&mut c, "k", "a"), 1);
    assert_eq!(release(&mut c, "k", "b"), 1);
    assert!(!exists(&mut c, "k"));
}

#[test]
fn releases_that_end_nothing_write_nothing() {
    let p = Server::start_with(&["--repl-ping-replica-period", "3600"]);
    let r = replica_of(&p, false);
    notify_all(&p);
    let mut c = p.conn();
    take(&mut c, "k", 3, HOUR, "a");
    let (sh, _) = take(&mut c, "k", 3, 200, "s");
    take(&mut c, "k", 3, HOUR, "gone");
    assert_eq!(release(&mut c, "k", "gone"), 1);
    hit(&mut c, "h", "5/h", &[]);
    sh.wait_end(30);
    wait_synced(&p, &r);
    let events = listen(&p);
    let noops: Vec<(&str, &[u8])> = vec![
        ("k", b"gone"),
        ("k", b"gone"),
        ("k", b"s"),
        ("k", b"nope"),
        ("k", b"A"),
        ("missing", b"a"),
        ("h", b"a"),
    ];
    for (key, token) in &noops {
        let before_data = data(&mut c);
        let before = p.repl_offset();
        assert_eq!(release(&mut c, key, token), 0, "{key} {token:?}");
        assert_eq!(p.repl_offset(), before, "{key} {token:?} propagated");
        assert_eq!(data(&mut c), before_data, "{key} {token:?} wrote");
        let args: [&[u8]; 3] = [b"RL.RELEASE", key.as_bytes(), token];
        assert!(
            exec_survives_bytes(&p, key, &args),
            "{key} {token:?} aborted a WATCH"
        );
    }
    raw(&mut c, &["PUBLISH", "done", "1"]).unwrap();
    let ev = events.join().unwrap();
    assert!(
        ev.is_empty(),
        "releases that ended nothing notified: {ev:?}"
    );
    // A release that ends a live lease is a write.
    let before = p.repl_offset();
    assert!(!exec_survives_bytes(&p, "k", &[b"RL.RELEASE", b"k", b"a"]));
    assert!(
        p.repl_offset() > before,
        "a real release propagated nothing"
    );
    assert!(!exists(&mut c, "k"));
    wait_synced(&p, &r);
    assert!(!exists(&mut r.conn(), "k"));
    assert_same_data(&p, &r);
}

#[test]
fn a_release_that_leaves_nothing_deletes_the_key() {
    let p = Server::start();
    let r = replica_of(&p, false);
    notify_all(&p);
    notify_all(&r);
    let mut c = p.conn();
    // Only lease.
    take(&mut c, "one", 2, HOUR, "a");
    // A live lease and an expired one.
    take(&mut c, "exp", 2, HOUR, "a");
    let (sh, _) = take(&mut c, "exp", 2, 150, "s");
    // A lease and rate-limit usage; a lease and a penalty.
    take(&mut c, "used", 2, HOUR, "a");
    hit(&mut c, "used", "3/m", &[]);
    hit(&mut c, "pen", "1/h", &[]);
    assert_eq!(hit(&mut c, "pen", "1/h", &["PENALTY", "2h"])[0], 0);
    take(&mut c, "pen", 2, 10 * MINUTE, "a");
    // Two leases, one released.
    take(&mut c, "two", 2, HOUR, "a");
    take(&mut c, "two", 2, 2 * HOUR, "b");
    sh.wait_end(30);
    wait_synced(&p, &r);
    let on_p = listen(&p);
    let on_r = listen(&r);
    for key in ["one", "exp", "used", "pen"] {
        assert_eq!(release(&mut c, key, "a"), 1, "{key}");
    }
    assert_eq!(release(&mut c, "two", "b"), 1);
    assert!(!exists(&mut c, "one"), "the only lease was released");
    assert!(!exists(&mut c, "exp"), "only an expired lease is left");
    assert!(exists(&mut c, "used"), "usage is left");
    let left = pexpiretime(&mut c, "used") - server_ms(&mut c);
    assert_between(left, MINUTE - SLACK, MINUTE, "TTL: the usage's end");
    assert_eq!(test(&mut c, "used", "3/m", &["COST", "0"])[2], 2);
    assert!(exists(&mut c, "pen"), "the penalty is left");
    let left = pexpiretime(&mut c, "pen") - server_ms(&mut c);
    assert_between(left, 2 * HOUR - SLACK, 2 * HOUR, "TTL: the penalty's end");
    let left = pexpiretime(&mut c, "two") - server_ms(&mut c);
    assert_between(left, HOUR - SLACK, HOUR, "TTL: the lease that is left");
    wait_synced(&p, &r);
    for s in [&p, &r] {
        raw(&mut s.conn(), &["PUBLISH", "done", "1"]).unwrap();
    }
    let (ev, rev) = (on_p.join().unwrap(), on_r.join().unwrap());
    assert_eq!(ev, rev, "primary and replica saw different events");
    assert_eq!(events_of(&ev, "one"), vec!["del"], "{ev:?}");
    assert_eq!(events_of(&ev, "exp"), vec!["del"], "{ev:?}");
    for key in ["used", "pen", "two"] {
        let e = events_of(&ev, key);
        assert!(!e.is_empty(), "{key}: a release notified nothing: {ev:?}");
        assert!(
            e.iter().all(|x| ["set", "setrange", "expire"].contains(x)),
            "{key}: {e:?}"
        );
    }
    assert_same_data(&p, &r);
}

// ---------------------------------------------------------------------------
// 5, 6 and 11. One key with rate-limit state, RL.CLEAR, penalties
// ---------------------------------------------------------------------------

#[test]
fn leases_share_the_key_with_rate_limit_state() {
    let s = Server::start();
    let mut c = s.conn();
    take(&mut c, "k", 2, HOUR, "a");
    // RL.HIT on the same key works as on a fresh key, and the key still
    // lives until the lease ends.
    assert_eq!(hit(&mut c, "k", "5/m", &[]), [1, 5, 4, MINUTE, 0]);
    assert_ttl(&mut c, "k", HOUR, "after RL.HIT on a key with a 1 h lease");
    let st = stats(&mut c, "k", "5/m;5/h", &[]);
    assert_eq!((st[0].remaining, st[1].remaining), (4, 5), "{st:?}");
    // Leases do not change the limits' state or replies.
    take(&mut c, "k", 2, HOUR, "b");
    assert_eq!(&acquire(&mut c, "k", 2, "1h", "c")[..3], &[0, 2, 0]);
    assert_eq!(release(&mut c, "k", "b"), 1);
    let st2 = stats(&mut c, "k", "5/m;5/h", &[]);
    assert_eq!(
        (st2[0].remaining, st2[1].remaining, st2[1].reset_after_ms),
        (4, 5, 0),
        "{st2:?}"
    );
    assert_eq!(test(&mut c, "k", "5/m", &["COST", "0"])[2], 4);
    // Hits do not change the leases: one held of two.
    for st in ["moving", "gcra", "fixed"] {
        hit(&mut c, "k", "5/m", &["STRATEGY", st]);
        assert_ttl(&mut c, "k", HOUR, &format!("after RL.HIT STRATEGY {st}"));
    }
    hit(&mut c, "k", "5/m;7/30s", &["COST", "0"]);
    assert_ttl(&mut c, "k", HOUR, "after RL.HIT COST 0");
    // RL.REFUND that empties a limit leaves the leases and their TTL.
    hit(&mut c, "k", "9/s", &[]);
    assert_eq!(
        raw(&mut c, &["RL.REFUND", "k", "9/s"]).map(|v| five(v, "refund")[0]),
        Ok(1)
    );
    assert_ttl(&mut c, "k", HOUR, "after RL.REFUND");
    assert_eq!(&acquire(&mut c, "k", 2, "1h", "b")[..3], &[1, 2, 0]);
    assert_eq!(&acquire(&mut c, "k", 2, "1h", "c")[..3], &[0, 2, 0]);
    // TTL: until the last lease ends (1 h), past the usage (1 min).
    assert_ttl(&mut c, "k", HOUR, "TTL: the leases' end");
    // Releasing both leaves the usage, with its TTL.
    assert_eq!(release(&mut c, "k", "a"), 1);
    assert_eq!(release(&mut c, "k", "b"), 1);
    assert_ttl(&mut c, "k", MINUTE, "TTL: the usage's end");
    assert_eq!(stats(&mut c, "k", "5/m", &[])[0].remaining, 3);
    // Later usage: the TTL is the usage's, not a shorter lease's.
    hit(&mut c, "u", "1/h", &[]);
    let (sh, r) = take(&mut c, "u", 1, 200, "a");
    assert_eq!(r, [1, 1, 0, 200, 0], "the reply is about leases only");
    assert_ttl(&mut c, "u", HOUR, "TTL: the usage's end");
    sh.wait_end(30);
    assert!(exists(&mut c, "u"));
    assert_eq!(release(&mut c, "u", "a"), 0, "the lease ended");
    assert_eq!(acquire(&mut c, "u", 1, "1h", "b"), [1, 1, 0, HOUR, 0]);
    assert_eq!(stats(&mut c, "u", "1/h", &[])[0].remaining, 0);
    assert_eq!(hit(&mut c, "u", "1/h", &[])[0], 0);
}

#[test]
fn clear_key_removes_leases_and_clear_limits_leaves_them() {
    let s = Server::start();
    let mut c = s.conn();
    take(&mut c, "k", 1, HOUR, "a");
    hit(&mut c, "k", "5/m", &[]);
    // RL.CLEAR key limits: the limit goes, the lease stays.
    assert_eq!(clear(&mut c, &["k", "5/m"]), 1);
    assert_eq!(clear(&mut c, &["k", "5/h"]), 0);
    assert!(exists(&mut c, "k"));
    assert_eq!(stats(&mut c, "k", "5/m", &[])[0].remaining, 5);
    assert_eq!(
        &acquire(&mut c, "k", 1, "1h", "b")[..3],
        &[0, 1, 0],
        "the lease went"
    );
    let left = pexpiretime(&mut c, "k") - server_ms(&mut c);
    assert_between(left, HOUR - SLACK, HOUR, "TTL: the lease's end");
    // On a key holding only leases it removes nothing and writes nothing.
    let before = key_state(&mut c, "k");
    assert_eq!(clear(&mut c, &["k", "5/m"]), 0);
    assert_eq!(key_state(&mut c, "k"), before);
    // RL.CLEAR key: everything goes, the next token gets a lease.
    hit(&mut c, "k", "5/m", &[]);
    assert_eq!(clear(&mut c, &["k"]), 1);
    assert!(!exists(&mut c, "k"));
    assert_eq!(acquire(&mut c, "k", 1, "1h", "b"), [1, 1, 0, HOUR, 0]);
    assert_eq!(release(&mut c, "k", "a"), 0, "a was cleared");
    // Only leases: RL.CLEAR key removes them and replies 1, then 0.
    assert_eq!(clear(&mut c, &["k"]), 1);
    assert!(!exists(&mut c, "k"));
    assert_eq!(clear(&mut c, &["k"]), 0);
    assert_eq!(release(&mut c, "k", "b"), 0);
}

#[test]
fn penalties_do_not_concern_acquire_and_release() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "1/h", &[]);
    let r = hit(&mut c, "k", "1/h", &["PENALTY", "2h"]);
    assert_eq!(r[0], 0);
    let p0 = penalty_ms(&mut c, "k");
    assert!(p0 > 2 * HOUR - SLACK, "no penalty started: {p0}");
    // Acquires reply as on a key without a penalty.
    let (a, r) = take(&mut c, "k", 2, HOUR, "a");
    assert_eq!(r, [1, 2, 1, HOUR, 0], "under a penalty");
    let (_, r2) = take(&mut c, "k", 2, 30 * MINUTE, "b");
    assert_eq!(&r2[..3], &[1, 2, 0]);
    let (r, b, af) = timed(|| acquire(&mut c, "k", 2, "1h", "c"));
    assert_eq!(&r[..3], &[0, 2, 0]);
    assert_left(r[3], &a, b, af, "reset: the leases, not the penalty");
    assert_between(
        r[4],
        30 * MINUTE - SLACK,
        30 * MINUTE,
        "retry: b's end, not the penalty",
    );
    // Denials with PENALTY-like sizes start or extend nothing.
    let p1 = penalty_ms(&mut c, "k");
    assert!(p1 <= p0, "the penalty grew: {p0} -> {p1}");
    assert_eq!(release(&mut c, "k", "a"), 1);
    assert_eq!(release(&mut c, "k", "b"), 1);
    // The penalty is still in force, neither lifted nor extended.
    let p2 = penalty_ms(&mut c, "k");
    assert_between(p2, 2 * HOUR - SLACK, p1, "penalty after acquire/release");
    assert_eq!(
        hit(&mut c, "k", "10/h", &[])[0],
        0,
        "the penalty was lifted"
    );
    let left = pexpiretime(&mut c, "k") - server_ms(&mut c);
    assert_between(left, 2 * HOUR - SLACK, 2 * HOUR, "TTL: the penalty's end");
    // A key whose leases are full: a breach with PENALTY locks the rate
    // limits, not the leases, and the key lives until the lease ends.
    take(&mut c, "m", 1, 3 * HOUR, "a");
    hit(&mut c, "m", "1/h", &[]);
    assert_ttl(&mut c, "m", 3 * HOUR, "after RL.HIT");
    assert_eq!(hit(&mut c, "m", "1/h", &["PENALTY", "1h"])[0], 0);
    assert!(penalty_ms(&mut c, "m") > 0);
    assert_ttl(&mut c, "m", 3 * HOUR, "after the penalty started");
    assert_eq!(acquire(&mut c, "m", 1, "1h", "a")[..3], [1, 1, 0]);
    assert_eq!(release(&mut c, "m", "a"), 1);
    assert_eq!(acquire(&mut c, "m", 1, "1h", "b"), [1, 1, 0, HOUR, 0]);
}

// ---------------------------------------------------------------------------
// 6. Writes: denied acquires, WATCH, notifications
// ---------------------------------------------------------------------------

#[test]
fn denied_acquires_write_nothing_and_granted_ones_do() {
    let p = Server::start_with(&["--repl-ping-replica-period", "3600"]);
    let r = replica_of(&p, false);
    let mut c = p.conn();
    take(&mut c, "k", 1, HOUR, "a");
    // A full set that also holds an expired lease.
    take(&mut c, "e", 2, HOUR, "z");
    let (sh, _) = take(&mut c, "e", 2, 150, "s");
    // A large set (past the small-value path).
    for i in 0..20 {
        take(&mut c, "big", 20, HOUR, token128(i));
    }
    sh.wait_end(30);
    wait_synced(&p, &r);
    let denied0 = counter(&mut c, DENIED);
    let expired0 = counter(&mut c, EXPIRED);
    let denials: Vec<Vec<&[u8]>> = vec![
        vec![b"RL.ACQUIRE", b"k", b"1", b"1h", b"b"],
        vec![b"RL.ACQUIRE", b"k", b"1", b"10y", b"b"],
        vec![b"RL.ACQUIRE", b"k", b"1", b"1ms", b"\xff\x00"],
        vec![b"RL.ACQUIRE", b"e", b"1", b"1h", b"new"],
        vec![b"RL.ACQUIRE", b"big", b"20", b"1h", b"new"],
        vec![b"RL.ACQUIRE", b"big", b"3", b"1h", b"new"],
    ];
    for args in &denials {
        let key = std::str::from_utf8(args[1]).unwrap();
        let before_data = data(&mut c);
        let before = p.repl_offset();
        let v = rawb(&mut c, args).unwrap();
        assert_eq!(five(v, "denial")[0], 0, "{args:?} was granted");
        assert_eq!(p.repl_offset(), before, "{args:?} propagated a write");
        assert_eq!(data(&mut c), before_data, "{args:?} changed a key");
        assert!(
            exec_survives_bytes(&p, key, args),
            "{args:?} aborted a WATCH"
        );
    }
    assert_eq!(counter(&mut c, DENIED) - denied0, 2 * denials.len() as i64);
    assert_eq!(
        counter(&mut c, EXPIRED),
        expired0,
        "a denial forgot a lease"
    );
    // Granted acquires are writes: new leases and renewals.
    let t0 = token128(0);
    let grants: Vec<Vec<&[u8]>> = vec![
        vec![b"RL.ACQUIRE", b"k", b"1", b"1h", b"a"],
        vec![b"RL.ACQUIRE", b"k", b"2", b"1h", b"b"],
        vec![b"RL.ACQUIRE", b"e", b"2", b"1h", b"new"],
        vec![b"RL.ACQUIRE", b"big", b"20", b"2h", &t0],
        vec![b"RL.ACQUIRE", b"big", b"21", b"1h", b"new"],
        vec![b"RL.ACQUIRE", b"fresh", b"1", b"1h", b"a"],
    ];
    for args in &grants {
        let key = std::str::from_utf8(args[1]).unwrap();
        let before = p.repl_offset();
        assert!(!exec_survives_bytes(&p, key, args), "{args:?} kept a WATCH");
        assert!(p.repl_offset() > before, "{args:?} propagated nothing");
    }
    wait_synced(&p, &r);
    assert_same_data(&p, &r);
}

#[test]
fn lease_writes_notify_as_on_a_replica_and_no_ops_do_not() {
    let p = Server::start();
    let r = replica_of(&p, false);
    notify_all(&p);
    notify_all(&r);
    let mut c = p.conn();
    take(&mut c, "full", 1, HOUR, "a");
    for i in 0..10 {
        take(&mut c, "big", 10, HOUR, token128(i));
    }
    wait_synced(&p, &r);
    let on_p = listen(&p);
    let on_r = listen(&r);
    // No-ops: denials, releases that end nothing, errors.
    acquire(&mut c, "full", 1, "1h", "b");
    acquire(&mut c, "big", 10, "1h", "b");
    release(&mut c, "full", "b");
    release(&mut c, "nokey", "b");
    let _ = err(&mut c, &["RL.ACQUIRE", "full", "0", "1h", "b"]);
    let _ = err(&mut c, &["RL.ACQUIRE", "new", "1", "5", "b"]);
    // Writes: a new key, a renewal, a second lease, releases, on a small
    // and on a large set.
    acquire(&mut c, "n", 2, "1h", "t1");
    acquire(&mut c, "n", 2, "2h", "t1");
    acquire(&mut c, "n", 2, "1h", "t2");
    release(&mut c, "n", "t1");
    release(&mut c, "n", "t2");
    acquire(&mut c, "big", 10, "2h", token128(3));
    acquire(&mut c, "big", 11, "1h", "b");
    release(&mut c, "big", token128(5));
    wait_synced(&p, &r);
    for s in [&p, &r] {
        raw(&mut s.conn(), &["PUBLISH", "done", "1"]).unwrap();
    }
    let (ev, rev) = (on_p.join().unwrap(), on_r.join().unwrap());
    assert_eq!(ev, rev, "primary and replica saw different events");
    for (e, k) in &ev {
        assert!(
            ["n", "big"].contains(&k.as_str()),
            "event {e} on {k}: it changed nothing: {ev:?}"
        );
        assert!(
            ["set", "setrange", "expire", "del"].contains(&e.as_str()),
            "event {e} on {k}: {ev:?}"
        );
    }
    let n = events_of(&ev, "n");
    assert_eq!(n.last(), Some(&"del"), "the last release deletes n: {n:?}");
    assert_eq!(n.iter().filter(|e| **e == "del").count(), 1, "{n:?}");
    assert!(n.len() >= 5, "every write on n notifies: {n:?}");
    let big = events_of(&ev, "big");
    assert!(big.len() >= 3, "every write on big notifies: {big:?}");
    assert!(!big.contains(&"del"), "{big:?}");
    assert_same_data(&p, &r);
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[test]
fn concurrent_acquires_grant_exactly_max() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 25;
    const MAX: i64 = 3;
    let s = Server::start();
    let barrier = Arc::new(Barrier::new(THREADS));
    // Rounds: every thread races one acquire, then the winners release.
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let mut c = s.conn();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for round in 0..ROUNDS {
                    let token = format!("r{round}-t{i}");
                    barrier.wait();
                    let r = acquire(&mut c, "k", MAX, "10s", &token);
                    barrier.wait();
                    let rel = if r[0] == 1 {
                        release(&mut c, "k", &token)
                    } else {
                        release(&mut c, "k", &token) + 10
                    };
                    barrier.wait();
                    out.push((round, r, rel));
                }
                out
            })
        })
        .collect();
    let mut by_round = vec![Vec::new(); ROUNDS];
    for h in handles {
        for (round, r, rel) in h.join().unwrap() {
            by_round[round].push((r, rel));
        }
    }
    for (round, replies) in by_round.iter().enumerate() {
        let granted: Vec<&([i64; 5], i64)> = replies.iter().filter(|(r, _)| r[0] == 1).collect();
        assert_eq!(granted.len(), MAX as usize, "round {round}: {replies:?}");
        let mut avail: Vec<i64> = granted.iter().map(|(r, _)| r[2]).collect();
        avail.sort();
        assert_eq!(avail, vec![0, 1, 2], "round {round}: {replies:?}");
        for (r, rel) in replies {
            assert_eq!(r[1], MAX);
            if r[0] == 1 {
                assert_eq!((r[3], r[4], *rel), (10_000, 0, 1), "round {round}: {r:?}");
            } else {
                assert_eq!(r[2], 0, "round {round}: {r:?}");
                assert!(r[3] > 0 && r[4] > 0 && r[4] <= r[3], "round {round}: {r:?}");
                assert_eq!(*rel, 10, "a denied token released something: {r:?}");
            }
        }
    }
    let mut c = s.conn();
    assert!(!exists(&mut c, "k"), "every winner released");
    // Churn: threads acquire and release as fast as they can; the number
    // held as the clients see it (counted after a grant, uncounted before
    // the release) never passes max, nor does the server's.
    let held = Arc::new(AtomicI64::new(0));
    let peak = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let mut c = s.conn();
            let (held, peak, stop) = (held.clone(), peak.clone(), stop.clone());
            std::thread::spawn(move || {
                let token = format!("churn-{i}");
                let (mut grants, mut denials) = (0, 0);
                while !stop.load(Ordering::Relaxed) {
                    let r = acquire(&mut c, "churn", MAX, "10s", &token);
                    if r[0] == 1 {
                        grants += 1;
                        assert!(
                            (0..MAX).contains(&r[2]),
                            "granted with available {}: {r:?}",
                            r[2]
                        );
                        let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        held.fetch_sub(1, Ordering::SeqCst);
                        assert_eq!(release(&mut c, "churn", &token), 1);
                    } else {
                        denials += 1;
                        assert_eq!(r[2], 0, "{r:?}");
                    }
                }
                (grants, denials)
            })
        })
        .collect();
    sleep_ms(1500);
    stop.store(true, Ordering::Relaxed);
    let mut total = (0, 0);
    for h in handles {
        let (g, d) = h.join().unwrap();
        total.0 += g;
        total.1 += d;
    }
    let peak = peak.load(Ordering::SeqCst);
    eprintln!(
        "churn: {} grants, {} denials, peak held (client view) {peak}",
        total.0, total.1
    );
    assert!(total.0 > 0, "no grants at all");
    assert!(peak <= MAX, "{peak} leases held at once, max {MAX}");
    assert!(!exists(&mut c, "churn"), "a lease was left behind");
}

// ---------------------------------------------------------------------------
// 7. Replication and AOF
// ---------------------------------------------------------------------------

const T36: &str = "123e4567-e89b-12d3-a456-426614174000";

fn t128_binary() -> Vec<u8> {
    (0..128u32)
        .map(|i| [0u8, 0xff, b'\r', b'x'][(i % 4) as usize])
        .collect()
}

/// Acquires, renewals, releases, expiries and widening (tokens of 1, 36
/// and 128 bytes), on small and large sets; every key that survives holds
/// a lease of at least half an hour.
fn workload(c: &mut Connection) {
    let t128 = t128_binary();
    // Widening one set: 1, then 36, then 128 bytes.
    take(c, "w", 5, HOUR, "a");
    take(c, "w", 5, 2 * HOUR, T36);
    let (s1, _) = take(c, "w", 5, 100, "s");
    take(c, "w", 5, 3 * HOUR, &t128);
    // Renewals (shorter and longer), a release, a denial.
    take(c, "w", 5, 30 * MINUTE, "a");
    take(c, "w", 5, 4 * HOUR, T36);
    assert_eq!(release(c, "w", &t128), 1);
    take(c, "w", 5, HOUR, "n1");
    take(c, "w", 5, HOUR, "n2");
    assert_eq!(acquire(c, "w", 4, "1h", "denied")[0], 0);
    // A set released to nothing: deleted.
    take(c, "gone", 2, HOUR, T36);
    take(c, "gone", 2, HOUR, &t128);
    assert_eq!(release(c, "gone", T36), 1);
    assert_eq!(release(c, "gone", &t128), 1);
    // A set whose short leases expire, then an acquire forgets them.
    take(c, "exp", 5, HOUR, "z");
    let mut last = s1;
    for t in ["e1", T36, "e3"] {
        last = take(c, "exp", 5, 100, t).0;
    }
    // Leases with rate-limit state and a penalty in the same key.
    hit(c, "mixed", "1/h", &["STRATEGY", "moving"]);
    take(c, "mixed", 3, 2 * HOUR, T36);
    hit(c, "mixed", "1/h", &["STRATEGY", "moving", "PENALTY", "3h"]);
    take(c, "mixed", 3, HOUR, &t128);
    // A large set (patched in place): 30 leases of 36 bytes, renewals,
    // releases, widening, expiries.
    let tok = |i: usize| format!("{T36}{i:03}")[3..].to_string();
    for i in 0..30 {
        take(c, "big", 40, HOUR + i as i64, tok(i));
    }
    let (s2, _) = take(c, "big", 40, 100, "short-1");
    take(c, "big", 40, 100, "short-2");
    for i in [0, 7, 29] {
        take(c, "big", 40, 2 * HOUR, tok(i));
    }
    for i in [3, 29, 12] {
        assert_eq!(release(c, "big", tok(i)), 1);
    }
    take(c, "big", 40, HOUR, &t128);
    last.wait_end(30);
    s2.wait_end(30);
    take(c, "exp", 5, HOUR, "after");
    take(c, "w", 6, HOUR, "n3");
    take(c, "big", 40, HOUR, "after");
    take(c, "big", 40, 90 * MINUTE, tok(5));
    assert_eq!(release(c, "big", tok(6)), 1);
    // No-ops in between.
    assert_eq!(release(c, "w", "s"), 0);
    assert_eq!(release(c, "nothing", "x"), 0);
}

/// The workload's leases, read back through the commands.
#[track_caller]
fn check_after(c: &mut Connection) {
    let t128 = t128_binary();
    assert!(!exists(c, "gone"));
    // w: a, T36, n1, n2, n3 held (5); the 128-byte one was released.
    assert_eq!(&acquire(c, "w", 5, "1h", "x")[..3], &[0, 5, 0]);
    assert_eq!(release(c, "w", &t128), 0);
    for t in ["a", T36, "n1", "n2", "n3"] {
        assert_eq!(release(c, "w", t), 1, "w: {t}");
    }
    assert!(!exists(c, "w"));
    // exp: z and after.
    assert_eq!(acquire(c, "exp", 5, "1h", "x")[2], 2);
    // mixed: the penalty and the usage are there, and both leases.
    assert_eq!(hit(c, "mixed", "10/h", &["STRATEGY", "moving"])[0], 0);
    assert!(penalty_ms(c, "mixed") > 2 * HOUR);
    assert_eq!(release(c, "mixed", T36), 1);
    assert_eq!(release(c, "mixed", &t128), 1);
    // big: 30 - 3 released + 128-byte + after - 1 released = 28 held.
    assert_eq!(acquire(c, "big", 40, "1h", "probe")[2], 40 - 29);
    assert_eq!(release(c, "big", "short-1"), 0);
}

#[test]
fn replica_without_the_module_holds_byte_identical_leases() {
    let p = Server::start();
    let mut c = p.conn();
    // Some state before the replicas exist (full sync), the rest streamed.
    take(&mut c, "early", 2, HOUR, T36);
    take(&mut c, "early", 2, HOUR, t128_binary());
    let r = replica_of(&p, false);
    let rm = replica_of(&p, true);
    workload(&mut c);
    wait_synced(&p, &r);
    wait_synced(&p, &rm);
    assert_same_data(&p, &r);
    assert_same_data(&p, &rm);
    // Then read it back on the primary (writes that replicate again).
    check_after(&mut c);
    wait_synced(&p, &r);
    wait_synced(&p, &rm);
    assert_same_data(&p, &r);
    assert_same_data(&p, &rm);
}

#[test]
fn aof_restart_keeps_byte_identical_leases() {
    let opts = Opts::default().args(&["--appendonly", "yes", "--appendfsync", "always"]);
    let s = Server::start_opts(opts.clone());
    let mut c = s.conn();
    workload(&mut c);
    let before = data(&mut c);
    drop(c);
    let dir = s.shutdown_keep_dir(&[]);
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
// 6. WRONGTYPE
// ---------------------------------------------------------------------------

#[test]
fn wrongtype_for_foreign_values_key_untouched() {
    let s = Server::start();
    let mut c = s.conn();
    raw(&mut c, &["RPUSH", "list", "a", "b"]).unwrap();
    raw(&mut c, &["SET", "str", "hello"]).unwrap();
    raw(&mut c, &["SET", "empty", ""]).unwrap();
    raw(&mut c, &["SET", "ttl", "x", "PX", "3600000"]).unwrap();
    raw(&mut c, &["HSET", "hash", "f", "v"]).unwrap();
    rawb(&mut c, &[b"SET", b"trunc", b"\xf7\x01\x01\x00"]).unwrap();
    rawb(&mut c, &[b"SET", b"tag", b"\xf7"]).unwrap();
    for key in ["list", "str", "empty", "ttl", "hash", "trunc", "tag"] {
        let d0 = dump(&mut c, key);
        let e0 = pexpiretime(&mut c, key);
        for args in [
            vec!["RL.ACQUIRE", key, "5", "1h", "t"],
            vec!["RL.ACQUIRE", key, "1", "1ms", "t"],
            vec!["RL.ACQUIRE", key, "10000", "10y", "t"],
            vec!["RL.RELEASE", key, "t"],
            vec!["RL.RELEASE", key, "\u{0}"],
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
    let v: String = redis::cmd("GET").arg("empty").query(&mut c).unwrap();
    assert_eq!(v, "");
    assert_eq!(counters(&mut c), [0, 0, 0, 0], "WRONGTYPE calls counted");
}

// ---------------------------------------------------------------------------
// 9. Command metadata
// ---------------------------------------------------------------------------

#[test]
fn command_info_rl_acquire_and_rl_release() {
    let s = Server::start();
    let mut c = s.conn();
    for (name, arity, denyoom) in [("rl.acquire", 5, true), ("rl.release", 3, false)] {
        let info = command_info(&mut c, name);
        assert_eq!(to_string(&info[0]).to_lowercase(), name);
        assert_eq!(to_i64(&info[1]), arity, "{name}: arity");
        let flags = strings(&info[2]);
        assert!(flags.iter().any(|f| f == "write"), "{name}: {flags:?}");
        assert_eq!(
            flags.iter().any(|f| f == "denyoom"),
            denyoom,
            "{name}: denyoom in {flags:?}"
        );
        // O(leases held) per call: not `fast` (section 9).
        for f in ["readonly", "fast"] {
            assert!(!flags.iter().any(|x| x == f), "{name}: {f} in {flags:?}");
        }
        assert_eq!(
            (to_i64(&info[3]), to_i64(&info[4]), to_i64(&info[5])),
            (1, 1, 1),
            "{name}: first, last, step"
        );
        assert!(info.len() >= 9, "{name}: no key specs: {info:?}");
        let specs = arr(&info[8]);
        assert_eq!(specs.len(), 1, "{name}: {specs:?}");
        let spec = stat_fields(&specs[0]);
        let kflags = strings(field(&spec, "flags"));
        assert!(kflags.iter().any(|f| f == "RW"), "{name}: {kflags:?}");
        for f in ["RO", "OW", "RM"] {
            assert!(!kflags.iter().any(|x| x == f), "{name}: {f} in {kflags:?}");
        }
        let bs = stat_fields(field(&spec, "begin_search"));
        assert_eq!(to_string(field(&bs, "type")), "index");
        assert_eq!(to_i64(field(&stat_fields(field(&bs, "spec")), "index")), 1);
    }
    let v = raw(
        &mut c,
        &[
            "COMMAND",
            "GETKEYS",
            "RL.ACQUIRE",
            "mykey",
            "3",
            "30s",
            "req-1",
        ],
    )
    .unwrap();
    assert_eq!(strings(&v), vec!["mykey".to_string()]);
    let v = raw(
        &mut c,
        &["COMMAND", "GETKEYS", "RL.RELEASE", "other", "req-1"],
    )
    .unwrap();
    assert_eq!(strings(&v), vec!["other".to_string()]);
    let v = raw(
        &mut c,
        &["COMMAND", "LIST", "FILTERBY", "MODULE", "ratelimit"],
    )
    .unwrap();
    let names: Vec<String> = strings(&v).into_iter().map(|s| s.to_lowercase()).collect();
    for n in ["rl.acquire", "rl.release"] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
}

/// The argument names of a COMMAND DOCS entry, lower-cased, in order.
fn doc_args(c: &mut Connection, name: &str) -> (String, Vec<(String, String)>) {
    let v = raw(c, &["COMMAND", "DOCS", name]).unwrap();
    let top = stat_fields(&v);
    assert_eq!(top.len(), 1, "COMMAND DOCS {name}: {v:?}");
    let doc = stat_fields(&top[0].1);
    let summary = to_string(field(&doc, "summary"));
    let args = arr(field(&doc, "arguments"))
        .iter()
        .map(|a| {
            let f = stat_fields(a);
            (
                to_string(field(&f, "name")).to_lowercase(),
                to_string(field(&f, "type")).to_lowercase(),
            )
        })
        .collect();
    (summary, args)
}

#[test]
fn command_docs_describe_acquire_and_release() {
    let s = Server::start();
    let mut c = s.conn();
    let (summary, args) = doc_args(&mut c, "rl.acquire");
    assert!(!summary.trim().is_empty(), "rl.acquire: empty summary");
    let names: Vec<&str> = args.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 4, "rl.acquire: {args:?}");
    assert_eq!(args[0].1, "key", "rl.acquire: {args:?}");
    assert_eq!(
        &names[1..],
        &["max", "lease", "token"],
        "rl.acquire: {args:?}"
    );
    let (summary, args) = doc_args(&mut c, "rl.release");
    assert!(!summary.trim().is_empty(), "rl.release: empty summary");
    let names: Vec<&str> = args.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2, "rl.release: {args:?}");
    assert_eq!(args[0].1, "key", "rl.release: {args:?}");
    assert_eq!(names[1], "token", "rl.release: {args:?}");
}

// ---------------------------------------------------------------------------
// 9. INFO ratelimit counters
// ---------------------------------------------------------------------------

#[test]
fn info_counts_leases_exactly_and_resetstat_clears_them() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(counters(&mut c), [0, 0, 0, 0], "a new server");
    // Granted: two new leases and a renewal; denied: two.
    take(&mut c, "k", 2, HOUR, "a");
    take(&mut c, "k", 2, HOUR, "b");
    take(&mut c, "k", 2, HOUR, "a");
    acquire(&mut c, "k", 2, "1h", "c");
    acquire(&mut c, "k", 1, "1h", "c");
    // Refused calls count nothing.
    let _ = err(&mut c, &["RL.ACQUIRE", "k", "0", "1h", "c"]);
    let _ = err(&mut c, &["RL.ACQUIRE", "k", "2", "5", "c"]);
    let _ = err(&mut c, &["RL.ACQUIRE", "k", "2", "1h", ""]);
    let _ = err(&mut c, &["RL.ACQUIRE", "k", "2", "1h"]);
    let _ = err(&mut c, &["RL.RELEASE", "k", ""]);
    raw(&mut c, &["SET", "str", "x"]).unwrap();
    let _ = err(&mut c, &["RL.ACQUIRE", "str", "2", "1h", "c"]);
    let _ = err(&mut c, &["RL.RELEASE", "str", "c"]);
    assert_eq!(counters(&mut c), [3, 2, 0, 0]);
    // Releases that end a live lease: one; the others end nothing.
    assert_eq!(release(&mut c, "k", "a"), 1);
    assert_eq!(release(&mut c, "k", "a"), 0);
    assert_eq!(release(&mut c, "k", "nope"), 0);
    assert_eq!(release(&mut c, "missing", "a"), 0);
    assert_eq!(counters(&mut c), [3, 2, 1, 0]);
    // Expired leases, counted when an acquire forgets them.
    take(&mut c, "e", 2, HOUR, "z");
    let (s1, _) = take(&mut c, "e", 3, 150, "s1");
    take(&mut c, "e", 3, 150, "s2");
    s1.wait_end(40);
    assert_eq!(release(&mut c, "e", "s1"), 0, "a release after expiry");
    assert_eq!(
        acquire(&mut c, "e", 1, "1h", "new")[0],
        0,
        "a denial forgets none"
    );
    assert_eq!(counters(&mut c), [6, 3, 1, 0]);
    take(&mut c, "e", 3, HOUR, "z");
    assert_eq!(counters(&mut c), [7, 3, 1, 2], "the renewal forgot two");
    take(&mut c, "e", 3, HOUR, "new");
    assert_eq!(counters(&mut c), [8, 3, 1, 2]);
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    assert_eq!(counters(&mut c), [0, 0, 0, 0], "after CONFIG RESETSTAT");
    // They count again afterwards.
    take(&mut c, "k", 2, HOUR, "c");
    acquire(&mut c, "k", 2, "1h", "d");
    assert_eq!(release(&mut c, "k", "b"), 1);
    assert_eq!(counters(&mut c), [1, 1, 1, 0]);
}

// ---------------------------------------------------------------------------
// A full set of 10,000 leases
// ---------------------------------------------------------------------------

fn commandstat_usec_per_call(c: &mut Connection, name: &str) -> (i64, f64) {
    let f = info(c, "commandstats");
    let line = f
        .get(&format!("cmdstat_{name}"))
        .unwrap_or_else(|| panic!("no cmdstat_{name} in {f:?}"));
    let mut calls = 0;
    let mut per = 0.0;
    for kv in line.split(',') {
        if let Some((k, v)) = kv.split_once('=') {
            match k {
                "calls" => calls = v.parse().unwrap(),
                "usec_per_call" => per = v.parse().unwrap(),
                _ => {}
            }
        }
    }
    (calls, per)
}

fn resetstat(c: &mut Connection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(c).unwrap();
}

#[test]
fn a_full_set_of_10000_leases_with_128_byte_tokens() {
    const N: usize = 10_000;
    let s = Server::start();
    let mut c = s.conn();
    let started = Instant::now();
    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.cmd("RL.ACQUIRE")
            .arg("big")
            .arg(N)
            .arg("1h")
            .arg(token128(i));
    }
    let replies: Vec<Value> = pipe.query(&mut c).unwrap();
    let fill = started.elapsed();
    assert_eq!(replies.len(), N);
    for (i, v) in replies.into_iter().enumerate() {
        let r = five(v, "fill");
        assert_eq!(&r[..3], &[1, N as i64, (N - 1 - i) as i64], "acquire {i}");
        assert_eq!(r[4], 0);
        assert_between(r[3], HOUR - SLACK, HOUR, "reset while filling");
    }
    let len = strlen(&mut c, "big");
    // The 10,001st is denied.
    let extra = token128(N);
    let r = acquire(&mut c, "big", N as i64, "1h", &extra);
    assert_eq!(&r[..3], &[0, N as i64, 0], "the 10,001st lease");
    assert_between(r[4], HOUR - SLACK - fill.as_millis() as i64, HOUR, "retry");
    // Renewals of the first, a middle and the last lease still work.
    for i in [0, N / 2, N - 1] {
        assert_eq!(
            acquire(&mut c, "big", N as i64, "2h", token128(i)),
            [1, N as i64, 0, 2 * HOUR, 0],
            "renew {i}"
        );
    }
    // Release one, acquire again.
    assert_eq!(release(&mut c, "big", token128(1234)), 1);
    assert_eq!(release(&mut c, "big", token128(1234)), 0);
    assert_eq!(
        acquire(&mut c, "big", N as i64, "1h", &extra)[..3],
        [1, N as i64, 0]
    );
    assert_eq!(acquire(&mut c, "big", N as i64, "1h", token128(1234))[0], 0);
    // Server time per call on the full set.
    let bytes = |c: &mut Connection| counter(c, "ratelimit_propagated_bytes");
    resetstat(&mut c);
    for i in 0..50 {
        let r = acquire(&mut c, "big", N as i64, "1h", token128(N + 1 + i));
        assert_eq!(r[0], 0);
    }
    let (calls, denied_us) = commandstat_usec_per_call(&mut c, "rl.acquire");
    assert_eq!(calls, 50);
    resetstat(&mut c);
    let b0 = bytes(&mut c);
    for i in 0..50 {
        acquire(&mut c, "big", N as i64, "1h", token128(i * 199));
    }
    let (_, renew_us) = commandstat_usec_per_call(&mut c, "rl.acquire");
    let renew_bytes = (bytes(&mut c) - b0) / 50;
    resetstat(&mut c);
    let b0 = bytes(&mut c);
    for i in 0..20 {
        assert_eq!(release(&mut c, "big", token128(100 + i)), 1);
        assert_eq!(
            acquire(&mut c, "big", N as i64, "1h", token128(100 + i))[0],
            1
        );
    }
    let (_, release_us) = commandstat_usec_per_call(&mut c, "rl.release");
    let (_, add_us) = commandstat_usec_per_call(&mut c, "rl.acquire");
    let pair_bytes = (bytes(&mut c) - b0) / 20;
    eprintln!(
        "10,000 leases of 128-byte tokens: STRLEN {len} bytes ({:.1} per lease); \
         pipelined fill {:.2} s; usec_per_call on the full set: denied acquire {denied_us:.2}, \
         renewal {renew_us:.2}, new lease after a release {add_us:.2}, release {release_us:.2}; \
         ratelimit_propagated_bytes: renewal {renew_bytes}, release + acquire {pair_bytes}",
        len as f64 / N as f64,
        fill.as_secs_f64()
    );
    ping(&mut c);
}
