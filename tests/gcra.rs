//! Section 10: GCRA (token bucket with burst).
//!
//! With `T = W / L`, `B` the burst (default L), for a hit of cost c:
//! `tat = max(TAT, now)`, `new_tat = tat + c*T`, admit iff
//! `new_tat - now <= B*T`; replies use `limit = B`,
//! `remaining = floor((B*T - max(TAT - now, 0)) / T)`,
//! `reset_after_ms = max(TAT - now, 0)`, denied
//! `retry_after_ms = new_tat - now - B*T` (-1 when c > B); times rounded up.
//! Values for fresh keys are exact; later ones are checked through
//! relations that hold at any instant (e.g. `reset - retry`).

mod common;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const G: [&str; 2] = ["STRATEGY", "gcra"];

#[test]
fn first_hit_is_exact_and_aliases_work() {
    let s = Server::start();
    let mut c = s.conn();
    for (i, name) in [
        "gcra",
        "GCRA",
        "token-bucket",
        "Token-Bucket",
        "TOKEN-BUCKET",
    ]
    .iter()
    .enumerate()
    {
        let key = format!("k{i}");
        let o = ["STRATEGY", name];
        assert_eq!(
            test(&mut c, &key, "10/h", &o),
            [1, 10, 9, 360_000, 0],
            "{name}"
        );
        assert!(!exists(&mut c, &key));
        assert_eq!(
            hit(&mut c, &key, "10/h", &o),
            [1, 10, 9, 360_000, 0],
            "{name}"
        );
        let st = stats(&mut c, &key, "10/h", &o);
        assert_eq!(st[0].strategy, "gcra", "{name}");
        assert_eq!(
            (st[0].limit, st[0].window_ms, st[0].remaining),
            (10, HOUR, 9)
        );
        assert_eq!(st[0].retry_after_ms, 0);
        assert_near(st[0].reset_after_ms, 360_000, "reset");
    }
    let st = stats(&mut c, "nokey", "10/s", &G);
    assert_eq!(
        st[0],
        Stat {
            limit: 10,
            window_ms: 1000,
            strategy: "gcra".into(),
            remaining: 10,
            reset_after_ms: 0,
            retry_after_ms: 0,
            penalty_ms: 0
        }
    );
    assert_eq!(hit(&mut c, "s", "10/s", &G), [1, 10, 9, 100, 0]);
    assert_eq!(hit(&mut c, "h", "10/h", &G), [1, 10, 9, 360_000, 0]);
    // T = 3 600 000 / 7 = 514 285.71...: rounded up.
    assert_eq!(hit(&mut c, "frac", "7/h", &G), [1, 7, 6, 514_286, 0]);
    // T = 1000 / 3 = 333.33...
    assert_eq!(hit(&mut c, "frac2", "3/s", &G), [1, 3, 2, 334, 0]);
}

#[test]
fn burst_defaults_to_the_limit() {
    let s = Server::start();
    let mut c = s.conn();
    let t = 360_000; // 10/h
    for i in 1..=10 {
        let r = hit(&mut c, "k", "10/h", &G);
        assert_eq!(&r[..3], &[1, 10, 10 - i], "hit {i}");
        assert_near(r[3], i * t, "reset");
        assert_eq!(r[4], 0);
    }
    let r = hit(&mut c, "k", "10/h", &G);
    assert_eq!(&r[..3], &[0, 10, 0], "{r:?}");
    assert_near(r[3], 10 * t, "reset");
    assert_near(r[4], t, "retry");
    // reset = 10T - d, retry = T - d at the same instant.
    assert_eq!(r[3] - r[4], 9 * t, "{r:?}");
}

#[test]
fn burst_option() {
    let s = Server::start();
    let mut c = s.conn();
    let t = 360_000;
    let o = ["STRATEGY", "gcra", "BURST", "3"];
    assert_eq!(hit(&mut c, "k", "10/h", &o), [1, 3, 2, t, 0]);
    let r = hit(&mut c, "k", "10/h", &o);
    assert_eq!(&r[..3], &[1, 3, 1]);
    assert_near(r[3], 2 * t, "reset");
    let r = hit(&mut c, "k", "10/h", &["burst", "3", "strategy", "GCRA"]);
    assert_eq!(&r[..3], &[1, 3, 0]);
    assert_near(r[3], 3 * t, "reset");
    let r = hit(&mut c, "k", "10/h", &o);
    assert_eq!(&r[..3], &[0, 3, 0]);
    assert_eq!(r[3] - r[4], 2 * t, "{r:?}");
    // BURST 1: one hit at a time, one T apart.
    assert_eq!(
        hit(&mut c, "one", "10/h", &["STRATEGY", "gcra", "BURST", "1"]),
        [1, 1, 0, t, 0]
    );
    let r = hit(&mut c, "one", "10/h", &["STRATEGY", "gcra", "BURST", "1"]);
    assert_eq!(&r[..3], &[0, 1, 0]);
    assert_eq!(r[3], r[4], "{r:?}");
    // A burst larger than L.
    assert_eq!(
        hit(
            &mut c,
            "big",
            "10/h",
            &["STRATEGY", "gcra", "BURST", "25", "COST", "25"]
        ),
        [1, 25, 0, 25 * t, 0]
    );
}

#[test]
fn changing_burst_reuses_tat() {
    let s = Server::start();
    let mut c = s.conn();
    let t = 360_000;
    for _ in 0..3 {
        hit(&mut c, "k", "10/h", &["STRATEGY", "gcra", "BURST", "5"]);
    }
    // TAT - now = 3T - d; with B = 2 a hit would need 4T - d <= 2T.
    let r = test(&mut c, "k", "10/h", &["STRATEGY", "gcra", "BURST", "2"]);
    assert_eq!(&r[..3], &[0, 2, 0], "{r:?}");
    assert_eq!(r[3] - r[4], t, "{r:?}");
    // Lowering L (same window) reuses the TAT too: 4/h has T' = 900 000,
    // B' = 4: TAT - now = 3T - d = 1 080 000 - d, a hit needs
    // 1 980 000 - d <= 3 600 000: admitted, remaining floor((3.6M - 1.98M + d) / 0.9M) = 1.
    let r = test(&mut c, "k", "4/h", &G);
    assert_eq!(&r[..3], &[1, 4, 1], "{r:?}");
    assert_near(r[3], 1_980_000, "reset");
}

#[test]
fn cost() {
    let s = Server::start();
    let mut c = s.conn();
    let t = 360_000;
    assert_eq!(
        hit(&mut c, "z", "10/h", &["STRATEGY", "gcra", "COST", "0"]),
        [1, 10, 10, 0, 0]
    );
    assert!(!exists(&mut c, "z"), "COST 0 created a key");
    assert_eq!(
        hit(&mut c, "full", "10/h", &["STRATEGY", "gcra", "COST", "10"]),
        [1, 10, 0, 10 * t, 0]
    );
    assert_eq!(
        hit(&mut c, "never", "10/h", &["STRATEGY", "gcra", "COST", "11"]),
        [0, 10, 10, 0, -1]
    );
    assert_eq!(
        hit(
            &mut c,
            "never",
            "10/h",
            &["STRATEGY", "gcra", "BURST", "3", "COST", "4"]
        ),
        [0, 3, 3, 0, -1]
    );
    assert!(!exists(&mut c, "never"));
    hit(&mut c, "k", "10/h", &["STRATEGY", "gcra", "COST", "4"]);
    let r = hit(&mut c, "k", "10/h", &["STRATEGY", "gcra", "COST", "0"]);
    assert_eq!(&r[..3], &[1, 10, 6]);
    assert_near(r[3], 4 * t, "reset");
    // Cost 7: new_tat - now = 11T - d > 10T: retry = T - d.
    let r = hit(&mut c, "k", "10/h", &["STRATEGY", "gcra", "COST", "7"]);
    assert_eq!(&r[..3], &[0, 10, 6]);
    assert_eq!(r[3] - r[4], 3 * t, "{r:?}");
    assert_eq!(
        err(
            &mut c,
            &["RL.HIT", "k", "10/h", "STRATEGY", "gcra", "COST", "-1"]
        ),
        "ERR COST must be an integer from 0 to 4294967295"
    );
}

#[test]
fn exact_rational_emission_interval() {
    let s = Server::start();
    let mut c = s.conn();
    // 7/h: T = 514 285.714... ms. 7 T = 3 600 000 exactly: COST 7 fits.
    assert_eq!(
        hit(&mut c, "a", "7/h", &["STRATEGY", "gcra", "COST", "7"]),
        [1, 7, 0, 3_600_000, 0]
    );
    // Next hit: reset = 7T - d, retry = T - d rounded up: 7T - T = 3 085 714.28...
    let r = test(&mut c, "a", "7/h", &G);
    assert_eq!(&r[..3], &[0, 7, 0]);
    assert_eq!(r[3] - r[4], 3_085_714, "{r:?}");
    // Seven single hits are admitted, the eighth is not.
    for i in 1..=7 {
        let r = hit(&mut c, "b", "7/h", &G);
        assert_eq!(&r[..3], &[1, 7, 7 - i], "hit {i}");
    }
    assert_eq!(hit(&mut c, "b", "7/h", &G)[0], 0);
    // Huge values: T = 315 360 000 000 / 4 294 967 295 (about 73.4 ms).
    let lim = "4294967295/10y";
    // (HIT and TEST in one MULTI so that T is not over before the TEST.)
    let (h, t): (Value, Value) = redis::pipe()
        .atomic()
        .cmd("RL.HIT")
        .arg("c")
        .arg(lim)
        .arg(&G)
        .arg("COST")
        .arg("4294967295")
        .cmd("RL.TEST")
        .arg("c")
        .arg(lim)
        .arg(&G)
        .query(&mut c)
        .unwrap();
    assert_eq!(five(h, "hit"), [1, 4_294_967_295, 0, 315_360_000_000, 0]);
    let r = five(t, "test");
    assert_eq!(&r[..3], &[0, 4_294_967_295, 0]);
    assert_between(r[4], 1, 74, "retry");
    // reset = W - d, retry = ceil(T - d) = 74 - d.
    assert_eq!(r[3] - r[4], 315_360_000_000 - 74, "{r:?}");
    // 3/7ms: T = 7/3 ms, B*T = 7 ms exactly.
    let r = hit(&mut c, "d", "3/7ms", &["STRATEGY", "gcra", "COST", "3"]);
    assert_eq!(r, [1, 3, 0, 7, 0]);
    // Maximum burst within 10 years: 1/y with BURST 10.
    let r = hit(
        &mut c,
        "e",
        "1/y",
        &["STRATEGY", "gcra", "BURST", "10", "COST", "10"],
    );
    assert_eq!(r, [1, 10, 0, 10 * 365 * DAY, 0]);
}

#[test]
fn retry_after_is_honest() {
    let s = Server::start();
    let mut c = s.conn();
    // T = 500 ms, B = 2.
    assert_eq!(hit(&mut c, "k", "2/s", &G), [1, 2, 1, 500, 0]);
    assert_eq!(hit(&mut c, "k", "2/s", &G)[..3], [1, 2, 0]);
    let r = hit(&mut c, "k", "2/s", &G);
    assert_eq!(&r[..3], &[0, 2, 0]);
    assert_between(r[4], 1, 500, "retry");
    assert_eq!(r[3] - r[4], 500, "{r:?}");
    sleep_ms(r[4] + 15);
    assert_eq!(hit(&mut c, "k", "2/s", &G)[0], 1);
}

#[test]
fn key_ttl_ends_at_tat() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "10/h", &G);
    assert_near(pttl(&mut c, "k"), 360_000, "PTTL");
    hit(&mut c, "k", "10/h", &G);
    assert_near(pttl(&mut c, "k"), 720_000, "PTTL");
    hit(&mut c, "f", "7/h", &G);
    let t = pttl(&mut c, "f");
    assert!(t <= 514_286 && t > 514_286 - SLACK, "PTTL {t}");
    hit(&mut c, "short", "4/2s", &G); // T = 500
    let t = pttl(&mut c, "short");
    assert_between(t, 1, 500, "PTTL");
    sleep_ms(550);
    assert!(!exists(&mut c, "short"), "the key outlived its TAT");
}

#[test]
fn several_limits() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(hit(&mut c, "k", "10/s;100/h", &G), [1, 10, 9, 100, 0]);
    assert_eq!(hit(&mut c, "k2", "100/h;10/s", &G), [1, 10, 9, 100, 0]);
    // BURST applies to every limit: 2/h (T = 1 800 000) and 60/m (T = 1000).
    let o = ["STRATEGY", "gcra", "BURST", "2"];
    // Both have remaining 1: the tie goes to the first written (2/h).
    assert_eq!(hit(&mut c, "k3", "2/h;60/m", &o), [1, 2, 1, 1_800_000, 0]);
    assert_eq!(hit(&mut c, "k3b", "60/m;2/h", &o), [1, 2, 1, 1_000, 0]);
    let st = stats(&mut c, "k3", "2/h;60/m", &o);
    assert_eq!(
        (st[0].limit, st[0].window_ms, st[0].remaining),
        (2, HOUR, 1)
    );
    assert_eq!((st[1].limit, st[1].window_ms), (2, MINUTE));
    // All or nothing.
    hit(&mut c, "k4", "1/h", &G);
    assert_eq!(hit(&mut c, "k4", "5/m;1/h", &G)[..3], [0, 1, 0]);
    assert_eq!(
        stats(&mut c, "k4", "5/m", &G)[0].remaining,
        5,
        "5/m was charged by a denied hit"
    );
}

#[test]
fn burst_errors() {
    let s = Server::start();
    let mut c = s.conn();
    for args in [
        vec!["RL.HIT", "k", "10/s", "BURST", "5"],
        vec!["RL.HIT", "k", "10/s", "STRATEGY", "fixed", "BURST", "5"],
        vec!["RL.TEST", "k", "10/s", "BURST", "5", "STRATEGY", "moving"],
        vec!["RL.STATS", "k", "10/s", "STRATEGY", "sliding", "BURST", "5"],
        vec!["RL.CLEAR", "k", "10/s", "STRATEGY", "gcra", "BURST", "5"],
        vec![
            "RL.HIT", "k", "10/s", "STRATEGY", "gcra", "BURST", "5", "BURST", "5",
        ],
    ] {
        assert_eq!(
            err(&mut c, &args),
            "ERR syntax error near 'BURST'",
            "{args:?}"
        );
    }
    for bad in ["0", "-1", "4294967296", "abc", "", "1.5"] {
        let e = err(
            &mut c,
            &["RL.HIT", "k", "10/s", "STRATEGY", "gcra", "BURST", bad],
        );
        assert!(e.starts_with("ERR "), "BURST {bad:?}: {e}");
    }
    assert_eq!(
        err(
            &mut c,
            &["RL.HIT", "k", "1/y", "STRATEGY", "gcra", "BURST", "11"]
        ),
        "ERR BURST too large for limit '1/y'"
    );
    assert_eq!(
        err(
            &mut c,
            &[
                "RL.TEST", "k", "10/s;1/d", "STRATEGY", "gcra", "BURST", "5000"
            ]
        ),
        "ERR BURST too large for limit '1/d'"
    );
    assert_eq!(
        err(
            &mut c,
            &[
                "RL.STATS",
                "k",
                "1/h",
                "STRATEGY",
                "gcra",
                "BURST",
                "4294967295"
            ]
        ),
        "ERR BURST too large for limit '1/h'"
    );
    assert!(!exists(&mut c, "k"));
    // The largest burst that fits: 1/ms with BURST 4294967295 (~49.7 days).
    let r = hit(
        &mut c,
        "ok",
        "1/ms",
        &["STRATEGY", "gcra", "BURST", "4294967295"],
    );
    assert_eq!(r, [1, 4_294_967_295, 4_294_967_294, 1, 0]);
}

#[test]
fn redis_cell_equivalence() {
    // CL.THROTTLE user123 15 30 60 1 -> 0 16 15 -1 2 (seconds).
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "gcra", "BURST", "16", "COST", "1"];
    assert_eq!(hit(&mut c, "user123", "30/60s", &o), [1, 16, 15, 2000, 0]);
}

#[test]
fn clear_and_separate_state() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "10/h", &G);
    hit(&mut c, "k", "10/h", &[]);
    assert_eq!(stats(&mut c, "k", "10/h", &G)[0].remaining, 9);
    assert_eq!(clear(&mut c, &["k", "10/h", "STRATEGY", "token-bucket"]), 1);
    assert_eq!(clear(&mut c, &["k", "10/h", "STRATEGY", "gcra"]), 0);
    assert_eq!(stats(&mut c, "k", "10/h", &G)[0].remaining, 10);
    assert_eq!(stats(&mut c, "k", "10/h", &[])[0].remaining, 9);
    hit(&mut c, "k", "10/h", &G);
    assert_eq!(clear(&mut c, &["k"]), 1);
    assert!(!exists(&mut c, "k"));
}

#[test]
fn wrongtype() {
    let s = Server::start();
    let mut c = s.conn();
    let _: () = redis::cmd("SET").arg("s").arg("5").query(&mut c).unwrap();
    let before = dump(&mut c, "s");
    for cmd in ["RL.HIT", "RL.TEST", "RL.STATS", "RL.CLEAR"] {
        assert_eq!(
            err(&mut c, &[cmd, "s", "10/s", "STRATEGY", "gcra"]),
            WRONGTYPE
        );
    }
    assert_eq!(dump(&mut c, "s"), before);
}

#[test]
fn concurrency_admits_exactly_the_burst() {
    let s = Server::start();
    let admitted = Arc::new(AtomicI64::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let mut c = s.conn();
            let a = admitted.clone();
            std::thread::spawn(move || {
                for _ in 0..400 {
                    if hit(&mut c, "k", "1000/d", &G)[0] == 1 {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(admitted.load(Ordering::SeqCst), 1000);
}

#[test]
fn reads_do_not_write_and_replica_holds_identical_state() {
    let p = Server::start_with(&["--repl-ping-replica-period", "3600"]);
    let r = replica_of(&p, false);
    let mut c = p.conn();
    let off = p.repl_offset();
    hit(&mut c, "k", "3/h", &G);
    assert!(p.repl_offset() > off, "admitted hit not propagated");
    hit(&mut c, "k", "3/h", &["STRATEGY", "gcra", "COST", "2"]);
    let off = p.repl_offset();
    test(&mut c, "k", "3/h", &G);
    stats(&mut c, "k", "3/h", &G);
    hit(&mut c, "k", "3/h", &G); // denied
    hit(&mut c, "k", "3/h", &["STRATEGY", "gcra", "COST", "0"]);
    hit(&mut c, "k", "3/h", &["STRATEGY", "gcra", "COST", "9"]); // never
    assert_eq!(
        p.repl_offset(),
        off,
        "a read or a denied hit was propagated"
    );
    hit(
        &mut c,
        "k2",
        "5/m;7/d",
        &["STRATEGY", "gcra", "BURST", "9", "COST", "4"],
    );
    wait_synced(&p, &r);
    let mut rc = r.conn();
    for k in ["k", "k2"] {
        assert_eq!(dump(&mut c, k), dump(&mut rc, k), "{k}");
        assert!(pttl(&mut c, k) > 0, "{k}: no TTL");
        assert_eq!(
            pexpiretime(&mut c, k),
            pexpiretime(&mut rc, k),
            "{k}: expiry"
        );
    }
}

#[test]
fn persistence_via_aof() {
    let opts = Opts::default().args(&["--appendonly", "yes", "--appendfsync", "always"]);
    let s = Server::start_opts(opts.clone());
    let mut c = s.conn();
    hit(&mut c, "k", "5/h", &["STRATEGY", "gcra", "COST", "3"]);
    let d = dump(&mut c, "k");
    drop(c);
    let dir = s.kill_keep_dir();
    let s2 = Server::restart_in(dir, opts);
    let mut c2 = s2.conn();
    assert_eq!(dump(&mut c2, "k"), d);
    assert_eq!(
        hit(&mut c2, "k", "5/h", &["STRATEGY", "gcra", "COST", "2"])[..3],
        [1, 5, 0]
    );
    assert_eq!(hit(&mut c2, "k", "5/h", &G)[0], 0);
}
