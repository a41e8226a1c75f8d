//! Sections 2 and 3: RL.HIT / RL.TEST replies, options, COST, several
//! limits, binding-limit rules, lowering and raising limits.
//!
//! Long windows (hours) are used wherever possible so that the expected
//! values do not depend on timing; the first hit on a fresh key is exact.

mod common;
use common::*;

const W: i64 = HOUR;

/// The three window strategies with their canonical name, the ms the usage
/// of a hit made now stays visible (`reset_after_ms` on a fresh key), and
/// the accepted spellings of the name.
const STRATEGIES: [(&str, i64, &[&str]); 3] = [
    (
        "fixed-window",
        1,
        &["fixed-window", "fixed", "FIXED-WINDOW", "Fixed"],
    ),
    (
        "moving-window",
        1,
        &["moving-window", "moving", "MOVING-WINDOW", "Moving"],
    ),
    (
        "sliding-window-counter",
        2,
        &[
            "sliding-window-counter",
            "sliding",
            "SLIDING-WINDOW-COUNTER",
            "SLIDING",
        ],
    ),
];

fn opts_for(strategy: &str) -> Vec<&str> {
    vec!["STRATEGY", strategy]
}

#[test]
fn first_hit_on_fresh_key_is_exact() {
    let s = Server::start();
    let mut c = s.conn();
    // Default strategy: fixed-window.
    assert_eq!(hit(&mut c, "d", "10/s", &[]), [1, 10, 9, 1000, 0]);
    for (canon, mult, names) in STRATEGIES {
        for (i, name) in names.iter().enumerate() {
            let key = format!("{canon}-{i}");
            assert_eq!(
                test(&mut c, &key, "10/s", &opts_for(name)),
                [1, 10, 9, mult * 1000, 0],
                "RL.TEST fresh, strategy {name}"
            );
            assert_eq!(
                hit(&mut c, &key, "10/s", &opts_for(name)),
                [1, 10, 9, mult * 1000, 0],
                "RL.HIT fresh, strategy {name}"
            );
            let st = stats(&mut c, &key, "10/s", &opts_for(name));
            assert_eq!(st[0].strategy, canon, "canonical name of {name}");
        }
    }
}

#[test]
fn default_strategy_is_fixed_window() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "10/h", &[]);
    let st = stats(&mut c, "k", "10/h", &[]);
    assert_eq!(st[0].strategy, "fixed-window");
    assert_eq!(st[0].remaining, 9);
    // Same state as STRATEGY fixed-window.
    let r = hit(&mut c, "k", "10/h", &["STRATEGY", "fixed-window"]);
    assert_eq!(&r[..3], &[1, 10, 8]);
    // Not the same state as the other strategies.
    assert_eq!(
        stats(&mut c, "k", "10/h", &["STRATEGY", "moving"])[0].remaining,
        10
    );
    assert_eq!(
        stats(&mut c, "k", "10/h", &["STRATEGY", "sliding"])[0].remaining,
        10
    );
}

#[test]
fn fixed_window_sequence() {
    let s = Server::start();
    let mut c = s.conn();
    let r = hit(&mut c, "k", "3/h", &[]);
    assert_eq!(r, [1, 3, 2, W, 0]);
    let r = hit(&mut c, "k", "3/h", &[]);
    assert_eq!(&r[..3], &[1, 3, 1]);
    assert_near(r[3], W, "reset");
    assert_eq!(r[4], 0);
    // One left: a hit of cost 2 is denied and charges nothing.
    let r = hit(&mut c, "k", "3/h", &["COST", "2"]);
    assert_eq!(&r[..3], &[0, 3, 1]);
    assert_near(r[3], W, "reset");
    assert_eq!(r[4], r[3], "fixed window: retry is the end of the window");
    let r = hit(&mut c, "k", "3/h", &[]);
    assert_eq!(&r[..3], &[1, 3, 0]);
    assert_near(r[3], W, "reset");
    assert_eq!(r[4], 0);
    for _ in 0..3 {
        let r = hit(&mut c, "k", "3/h", &[]);
        assert_eq!(&r[..3], &[0, 3, 0]);
        assert_near(r[3], W, "reset");
        assert_eq!(r[4], r[3], "fixed window: retry is the end of the window");
    }
}

#[test]
fn moving_window_sequence() {
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "moving-window"];
    assert_eq!(hit(&mut c, "k", "3/h", &o), [1, 3, 2, W, 0]);
    let r = hit(&mut c, "k", "3/h", &o);
    assert_eq!(&r[..3], &[1, 3, 1]);
    assert_eq!(
        r[3], W,
        "moving: reset is W after the latest hit (this one)"
    );
    let r = hit(&mut c, "k", "3/h", &o);
    assert_eq!(r, [1, 3, 0, W, 0]);
    let r = hit(&mut c, "k", "3/h", &o);
    assert_eq!(&r[..3], &[0, 3, 0]);
    assert_near(r[3], W, "reset");
    assert_near(r[4], W, "retry");
    assert!(r[4] <= r[3], "oldest hit leaves before the newest: {r:?}");
    // Cost 3 needs all three gone: retry == reset.
    let r = test(&mut c, "k", "3/h", &["STRATEGY", "moving", "COST", "3"]);
    assert_eq!(&r[..3], &[0, 3, 0]);
    assert_eq!(r[4], r[3], "{r:?}");
}

#[test]
fn sliding_window_sequence_in_first_window() {
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "sliding-window-counter"];
    assert_eq!(hit(&mut c, "k", "3/h", &o), [1, 3, 2, 2 * W, 0]);
    let r = hit(&mut c, "k", "3/h", &o);
    assert_eq!(&r[..3], &[1, 3, 1]);
    assert_near(r[3], 2 * W, "reset");
    let r = hit(&mut c, "k", "3/h", &o);
    assert_eq!(&r[..3], &[1, 3, 0]);
    assert_near(r[3], 2 * W, "reset");
    // Denied: in the next window prev = 3 and 3 * (W - e) / W + 1 <= 3
    // needs e >= W / 3; reset is measured to the end of the next window.
    let r = hit(&mut c, "k", "3/h", &o);
    assert_eq!(&r[..3], &[0, 3, 0]);
    assert_near(r[3], 2 * W, "reset");
    assert_eq!(r[4], r[3] - W + W / 3, "retry = end of window + W/3: {r:?}");
}

#[test]
fn sliding_window_cost_retry() {
    // L = 10, 5 used in the current window, a hit of cost 6 is denied.
    // Next window: 5 * (W - e) / W + 6 <= 10  <=>  e >= W / 5.
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "sliding"];
    assert_eq!(
        hit(&mut c, "k", "10/h", &["STRATEGY", "sliding", "COST", "5"]),
        [1, 10, 5, 2 * W, 0]
    );
    let r = test(&mut c, "k", "10/h", &["STRATEGY", "sliding", "COST", "6"]);
    assert_eq!(&r[..3], &[0, 10, 5]);
    assert_near(r[3], 2 * W, "reset");
    assert_eq!(r[4], r[3] - W + W / 5, "{r:?}");
    // Cost 5 still fits exactly.
    let r = hit(&mut c, "k", "10/h", &["COST", "5", "STRATEGY", "sliding"]);
    assert_eq!(&r[..3], &[1, 10, 0]);
    // Now full: a cost-1 hit waits for e >= W/10 in the next window.
    let r = test(&mut c, "k", "10/h", &o);
    assert_eq!(&r[..3], &[0, 10, 0]);
    assert_eq!(r[4], r[3] - W + W / 10, "{r:?}");
}

#[test]
fn cost_default_is_one() {
    let s = Server::start();
    let mut c = s.conn();
    for (canon, _, _) in STRATEGIES {
        let o = ["STRATEGY", canon];
        hit(&mut c, canon, "10/h", &o);
        let r = hit(&mut c, canon, "10/h", &["STRATEGY", canon, "COST", "1"]);
        assert_eq!(&r[..3], &[1, 10, 8], "{canon}");
    }
}

#[test]
fn cost_zero_creates_no_key_and_describes_state() {
    let s = Server::start();
    let mut c = s.conn();
    for (canon, mult, _) in STRATEGIES {
        let key = format!("z-{canon}");
        let o = ["STRATEGY", canon, "COST", "0"];
        assert_eq!(hit(&mut c, &key, "10/h", &o), [1, 10, 10, 0, 0], "{canon}");
        assert_eq!(test(&mut c, &key, "10/h", &o), [1, 10, 10, 0, 0], "{canon}");
        assert!(!exists(&mut c, &key), "{canon}: COST 0 created a key");
        // With state: COST 0 describes it and changes nothing.
        hit(&mut c, &key, "10/h", &["STRATEGY", canon, "COST", "4"]);
        let before = dump(&mut c, &key);
        let r = hit(&mut c, &key, "10/h", &o);
        assert_eq!(&r[..3], &[1, 10, 6], "{canon}");
        assert_near(r[3], mult * W, "reset");
        assert_eq!(r[4], 0);
        assert_eq!(
            dump(&mut c, &key),
            before,
            "{canon}: COST 0 changed the key"
        );
    }
}

#[test]
fn cost_equal_to_limit_and_above() {
    let s = Server::start();
    let mut c = s.conn();
    for (canon, mult, _) in STRATEGIES {
        let k1 = format!("eq-{canon}");
        let r = hit(&mut c, &k1, "10/h", &["STRATEGY", canon, "COST", "10"]);
        assert_eq!(r, [1, 10, 0, mult * W, 0], "{canon}");
        let k2 = format!("gt-{canon}");
        for cost in ["11", "4294967295"] {
            let r = hit(&mut c, &k2, "10/h", &["STRATEGY", canon, "COST", cost]);
            assert_eq!(r, [0, 10, 10, 0, -1], "{canon} COST {cost} on a fresh key");
        }
        assert!(!exists(&mut c, &k2), "{canon}: a denied hit created a key");
        // With usage: still -1, and the state is described.
        hit(&mut c, &k2, "10/h", &["STRATEGY", canon, "COST", "3"]);
        let r = hit(&mut c, &k2, "10/h", &["STRATEGY", canon, "COST", "11"]);
        assert_eq!(&r[..3], &[0, 10, 7], "{canon}");
        assert_near(r[3], mult * W, "reset");
        assert_eq!(r[4], -1, "{canon}");
    }
}

#[test]
fn cost_extremes_do_not_overflow() {
    let s = Server::start();
    let mut c = s.conn();
    let max = "4294967295";
    for (canon, mult, _) in STRATEGIES {
        for (i, lim) in ["4294967295/h", "4294967295/10y"].iter().enumerate() {
            let key = format!("max-{canon}-{i}");
            let w = if i == 0 { W } else { 10 * 365 * DAY };
            let r = hit(&mut c, &key, lim, &["STRATEGY", canon, "COST", max]);
            assert_eq!(r, [1, 4294967295, 0, mult * w, 0], "{canon} {lim}");
            let r = test(&mut c, &key, lim, &["STRATEGY", canon]);
            assert_eq!(&r[..3], &[0, 4294967295, 0], "{canon} {lim}");
            assert!(r[4] > 0, "{canon} {lim}: {r:?}");
            let r = test(&mut c, &key, lim, &["STRATEGY", canon, "COST", "0"]);
            assert_eq!(&r[..3], &[1, 4294967295, 0], "{canon} {lim}");
        }
    }
}

#[test]
fn invalid_cost() {
    let s = Server::start();
    let mut c = s.conn();
    let msg = "ERR COST must be an integer from 0 to 4294967295";
    for bad in [
        "-1",
        "4294967296",
        "18446744073709551616",
        "abc",
        "1.5",
        "",
        " 1",
        "1 ",
        "1e3",
        "0x10",
        "99999999999999999999999",
    ] {
        for cmd in ["RL.HIT", "RL.TEST"] {
            assert_eq!(
                err(&mut c, &[cmd, "k", "10/s", "COST", bad]),
                msg,
                "{cmd} COST {bad:?}"
            );
        }
    }
    assert!(!exists(&mut c, "k"));
}

#[test]
fn options_any_order_and_case() {
    let s = Server::start();
    let mut c = s.conn();
    let r = hit(&mut c, "k", "10/h", &["cost", "2", "strategy", "MOVING"]);
    assert_eq!(r, [1, 10, 8, W, 0]);
    let r = hit(
        &mut c,
        "k",
        "10/h",
        &["STRATEGY", "moving-window", "COST", "2"],
    );
    assert_eq!(&r[..3], &[1, 10, 6]);
    let r = hit(
        &mut c,
        "k",
        "10/h",
        &["Cost", "1", "Strategy", "Moving-Window"],
    );
    assert_eq!(&r[..3], &[1, 10, 5]);
    let r = test(&mut c, "k", "10/h", &["CoSt", "5", "sTrAtEgY", "mOvInG"]);
    assert_eq!(&r[..3], &[1, 10, 0]);
    assert_eq!(
        stats(&mut c, "k", "10/h", &["strategy", "moving"])[0].remaining,
        5
    );
}

#[test]
fn repeated_or_unknown_option_is_a_syntax_error() {
    let s = Server::start();
    let mut c = s.conn();
    for cmd in ["RL.HIT", "RL.TEST"] {
        assert_eq!(
            err(&mut c, &[cmd, "k", "10/s", "COST", "1", "COST", "2"]),
            "ERR syntax error near 'COST'"
        );
        assert_eq!(
            err(
                &mut c,
                &[cmd, "k", "10/s", "STRATEGY", "fixed", "STRATEGY", "moving"]
            ),
            "ERR syntax error near 'STRATEGY'"
        );
        assert_eq!(
            err(
                &mut c,
                &[
                    cmd, "k", "10/s", "STRATEGY", "fixed", "COST", "1", "STRATEGY", "fixed"
                ]
            ),
            "ERR syntax error near 'STRATEGY'"
        );
        assert_eq!(
            err(&mut c, &[cmd, "k", "10/s", "FOO", "1"]),
            "ERR syntax error near 'FOO'"
        );
        assert_eq!(
            err(&mut c, &[cmd, "k", "10/s", "COST", "1", "extra"]),
            "ERR syntax error near 'extra'"
        );
        // An option without its value.
        let e = err(&mut c, &[cmd, "k", "10/s", "COST"]);
        assert!(e.starts_with("ERR "), "{cmd} COST without value: {e}");
        let e = err(&mut c, &[cmd, "k", "10/s", "STRATEGY"]);
        assert!(e.starts_with("ERR "), "{cmd} STRATEGY without value: {e}");
    }
    assert!(!exists(&mut c, "k"));
}

#[test]
fn unknown_strategy() {
    let s = Server::start();
    let mut c = s.conn();
    for cmd in ["RL.HIT", "RL.TEST", "RL.STATS", "RL.CLEAR"] {
        assert_eq!(
            err(&mut c, &[cmd, "k", "10/s", "STRATEGY", "foo"]),
            "ERR unknown strategy 'foo'",
            "{cmd}"
        );
    }
    for bad in [
        "",
        "fixed-windows",
        "window",
        "leaky-bucket",
        "fixed window",
    ] {
        assert_eq!(
            err(&mut c, &["RL.HIT", "k", "10/s", "STRATEGY", bad]),
            format!("ERR unknown strategy '{bad}'")
        );
    }
    assert!(!exists(&mut c, "k"));
}

#[test]
fn wrong_arity_uses_redis_message() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(
        err(&mut c, &["RL.HIT"]),
        "ERR wrong number of arguments for 'rl.hit' command"
    );
    assert_eq!(
        err(&mut c, &["RL.HIT", "k"]),
        "ERR wrong number of arguments for 'rl.hit' command"
    );
    assert_eq!(
        err(&mut c, &["rl.hit", "k"]),
        "ERR wrong number of arguments for 'rl.hit' command"
    );
    assert_eq!(
        err(&mut c, &["RL.TEST", "k"]),
        "ERR wrong number of arguments for 'rl.test' command"
    );
    assert_eq!(
        err(&mut c, &["RL.STATS", "k"]),
        "ERR wrong number of arguments for 'rl.stats' command"
    );
    assert_eq!(
        err(&mut c, &["RL.CLEAR"]),
        "ERR wrong number of arguments for 'rl.clear' command"
    );
}

#[test]
fn several_limits_all_or_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    for (canon, _, _) in STRATEGIES {
        let o = ["STRATEGY", canon];
        let key = format!("aon-{canon}");
        // 2/h binds (smallest remaining).
        let r = hit(&mut c, &key, "10/m;2/h", &o);
        assert_eq!(&r[..3], &[1, 2, 1], "{canon}");
        let r = hit(&mut c, &key, "10/m;2/h", &o);
        assert_eq!(&r[..3], &[1, 2, 0], "{canon}");
        // Denied by 2/h: 10/m must not be charged.
        for _ in 0..3 {
            let r = hit(&mut c, &key, "10/m;2/h", &o);
            assert_eq!(&r[..3], &[0, 2, 0], "{canon}");
        }
        let st = stats(&mut c, &key, "10/m;2/h", &o);
        assert_eq!(st[0].remaining, 8, "{canon}: a denied hit charged 10/m");
        assert_eq!(st[1].remaining, 0, "{canon}");
        // Cost that fits one limit but not the other.
        let key2 = format!("aon2-{canon}");
        hit(&mut c, &key2, "5/m;10/h", &["STRATEGY", canon, "COST", "4"]);
        let r = hit(&mut c, &key2, "5/m;10/h", &["STRATEGY", canon, "COST", "3"]);
        assert_eq!(&r[..3], &[0, 5, 1], "{canon}");
        let st = stats(&mut c, &key2, "5/m;10/h", &o);
        assert_eq!((st[0].remaining, st[1].remaining), (1, 6), "{canon}");
    }
}

#[test]
fn binding_when_admitted_is_smallest_remaining() {
    let s = Server::start();
    let mut c = s.conn();
    for (canon, mult, _) in STRATEGIES {
        let o = ["STRATEGY", canon];
        let k = format!("a-{canon}");
        assert_eq!(
            hit(&mut c, &k, "10/s;5/h", &o),
            [1, 5, 4, mult * W, 0],
            "{canon}"
        );
        let k = format!("b-{canon}");
        assert_eq!(
            hit(&mut c, &k, "5/h;10/s", &o),
            [1, 5, 4, mult * W, 0],
            "{canon}"
        );
        // Ties go to the limit written first (told apart by the reset time).
        let k = format!("c-{canon}");
        assert_eq!(
            hit(&mut c, &k, "5/s;5/h", &o),
            [1, 5, 4, mult * 1000, 0],
            "{canon}"
        );
        let k = format!("d-{canon}");
        assert_eq!(
            hit(&mut c, &k, "5/h;5/s", &o),
            [1, 5, 4, mult * W, 0],
            "{canon}"
        );
        // COST 0 on a fresh key: every limit has remaining L; smallest L binds.
        let k = format!("e-{canon}");
        assert_eq!(
            hit(&mut c, &k, "7/s;3/h;5/m", &["STRATEGY", canon, "COST", "0"]),
            [1, 3, 3, 0, 0],
            "{canon}"
        );
    }
}

#[test]
fn binding_when_denied_is_largest_retry() {
    let s = Server::start();
    let mut c = s.conn();
    for (canon, mult, _) in STRATEGIES {
        let o = ["STRATEGY", canon];
        // Only the second limit denies.
        let k = format!("a-{canon}");
        hit(&mut c, &k, "3/s;2/h", &o);
        hit(&mut c, &k, "3/s;2/h", &o);
        let r = hit(&mut c, &k, "3/s;2/h", &o);
        assert_eq!(&r[..3], &[0, 2, 0], "{canon}");
        assert_near(r[3], mult * W, "reset");
        // Both deny: the one with the largest retry binds even if written last.
        let k = format!("b-{canon}");
        for _ in 0..3 {
            hit(&mut c, &k, "3/m;3/h", &o);
        }
        let r = hit(&mut c, &k, "3/m;3/h", &o);
        assert_eq!(&r[..3], &[0, 3, 0], "{canon}");
        assert!(
            r[4] > mult * MINUTE,
            "{canon}: the 3/h limit must bind: {r:?}"
        );
        assert_near(r[3], mult * W, "reset");
        // -1 counts as the largest retry.
        let k = format!("c-{canon}");
        hit(&mut c, &k, "5/h", &["STRATEGY", canon, "COST", "4"]);
        for lim in ["3/m;5/h", "5/h;3/m"] {
            let r = hit(&mut c, &k, lim, &["STRATEGY", canon, "COST", "4"]);
            assert_eq!(r, [0, 3, 3, 0, -1], "{canon} {lim}");
        }
        // Ties (both -1) go to the first written.
        let r = hit(&mut c, &k, "3/m;5/h", &["STRATEGY", canon, "COST", "10"]);
        assert_eq!(r, [0, 3, 3, 0, -1], "{canon}");
        let r = hit(&mut c, &k, "5/h;3/m", &["STRATEGY", canon, "COST", "10"]);
        assert_eq!(&r[..3], &[0, 5, 1], "{canon}");
        assert_eq!(r[4], -1, "{canon}");
    }
}

#[test]
fn rl_test_replies_what_rl_hit_would_and_changes_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    for (canon, _, _) in STRATEGIES {
        let key = format!("t-{canon}");
        for cost in ["1", "3", "0", "20", "2", "5", "1"] {
            let o = ["STRATEGY", canon, "COST", cost];
            let before = dump(&mut c, &key);
            // Several RL.TEST change nothing.
            let t1 = test(&mut c, &key, "3/m;10/h", &o);
            let t2 = test(&mut c, &key, "3/m;10/h", &o);
            assert_eq!(
                dump(&mut c, &key),
                before,
                "{canon}: RL.TEST changed the key"
            );
            assert_eq!(&t1[..3], &t2[..3]);
            let h = hit(&mut c, &key, "3/m;10/h", &o);
            assert_eq!(
                &t2[..3],
                &h[..3],
                "{canon} COST {cost}: test {t2:?} vs hit {h:?}"
            );
            assert_eq!(
                t2[4] == -1,
                h[4] == -1,
                "{canon} COST {cost}: {t2:?} vs {h:?}"
            );
            for i in 3..5 {
                assert!(
                    (t2[i] - h[i]).abs() <= SLACK,
                    "{canon} COST {cost}: test {t2:?} vs hit {h:?}"
                );
            }
        }
    }
    // On a fresh key the replies are exact.
    for (canon, _, _) in STRATEGIES {
        let key = format!("f-{canon}");
        let o = ["STRATEGY", canon, "COST", "2"];
        let t = test(&mut c, &key, "10/s;5/h", &o);
        assert!(!exists(&mut c, &key), "{canon}: RL.TEST created a key");
        assert_eq!(t, hit(&mut c, &key, "10/s;5/h", &o), "{canon}");
    }
}

#[test]
fn rl_test_matches_rl_hit_inside_multi() {
    let s = Server::start();
    let mut c = s.conn();
    for (canon, _, _) in STRATEGIES {
        let key = format!("m-{canon}");
        for _ in 0..6 {
            let (t, h): (Value, Value) = redis::pipe()
                .atomic()
                .cmd("RL.TEST")
                .arg(&key)
                .arg("4/h;2/m")
                .arg("STRATEGY")
                .arg(canon)
                .cmd("RL.HIT")
                .arg(&key)
                .arg("4/h;2/m")
                .arg("STRATEGY")
                .arg(canon)
                .query(&mut c)
                .unwrap();
            let (t, h) = (five(t, "test"), five(h, "hit"));
            assert_eq!(&t[..3], &h[..3], "{canon}: {t:?} vs {h:?}");
            assert!((t[3] - h[3]).abs() <= 2, "{canon}: {t:?} vs {h:?}");
            assert!((t[4] - h[4]).abs() <= 2, "{canon}: {t:?} vs {h:?}");
        }
    }
}

#[test]
fn lowering_a_limit_below_usage_denies_even_cost_zero() {
    let s = Server::start();
    let mut c = s.conn();
    for (canon, mult, _) in STRATEGIES {
        let key = format!("low-{canon}");
        for _ in 0..5 {
            hit(&mut c, &key, "10/h", &["STRATEGY", canon]);
        }
        for cmd in [test, hit] {
            let r = cmd(&mut c, &key, "3/h", &["STRATEGY", canon, "COST", "0"]);
            assert_eq!(&r[..3], &[0, 3, 0], "{canon}");
            assert_near(r[3], mult * W, "reset");
            assert!(r[4] > 0 && r[4] <= r[3], "{canon}: {r:?}");
            let r = cmd(&mut c, &key, "3/h", &["STRATEGY", canon]);
            assert_eq!(&r[..3], &[0, 3, 0], "{canon}");
        }
        let st = stats(&mut c, &key, "3/h", &["STRATEGY", canon]);
        assert_eq!((st[0].limit, st[0].remaining), (3, 0), "{canon}");
        assert!(st[0].retry_after_ms > 0, "{canon}: {st:?}");
        // Exactly at the limit: COST 0 is admitted, COST 1 is not.
        let r = test(&mut c, &key, "5/h", &["STRATEGY", canon, "COST", "0"]);
        assert_eq!(&r[..3], &[1, 5, 0], "{canon}");
        let r = test(&mut c, &key, "5/h", &["STRATEGY", canon]);
        assert_eq!(&r[..3], &[0, 5, 0], "{canon}");
        // Raising reuses the counts (5 used).
        let r = hit(&mut c, &key, "20/h", &["STRATEGY", canon]);
        assert_eq!(&r[..3], &[1, 20, 14], "{canon}");
        let r = hit(&mut c, &key, "20/60m", &["STRATEGY", canon]);
        assert_eq!(
            &r[..3],
            &[1, 20, 13],
            "{canon}: same window, other spelling"
        );
    }
}

#[test]
fn lowered_limit_retry_values() {
    let s = Server::start();
    let mut c = s.conn();
    // fixed: usage only falls at the end of the window.
    for _ in 0..5 {
        hit(&mut c, "f", "10/h", &[]);
    }
    let r = test(&mut c, "f", "3/h", &["COST", "0"]);
    assert_eq!(r[4], r[3], "fixed: {r:?}");
    // sliding: 5 used in the current window; 5 * (W - e) / W <= 3 needs
    // e >= 2W/5 in the next window.
    for _ in 0..5 {
        hit(&mut c, "s", "10/h", &["STRATEGY", "sliding"]);
    }
    let r = test(&mut c, "s", "3/h", &["STRATEGY", "sliding", "COST", "0"]);
    assert_eq!(&r[..3], &[0, 3, 0]);
    assert_eq!(r[4], r[3] - W + 2 * W / 5, "sliding: {r:?}");
    // moving: two of the five entries must leave.
    for _ in 0..5 {
        hit(&mut c, "m", "10/h", &["STRATEGY", "moving"]);
    }
    let r = test(&mut c, "m", "3/h", &["STRATEGY", "moving", "COST", "0"]);
    assert_eq!(&r[..3], &[0, 3, 0]);
    assert!(r[4] <= r[3], "moving: {r:?}");
    assert_near(r[4], W, "moving retry");
}

#[test]
fn strategies_and_windows_keep_separate_state() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(hit(&mut c, "k", "1/h", &[]), [1, 1, 0, W, 0]);
    assert_eq!(
        hit(&mut c, "k", "1/h", &["STRATEGY", "moving"]),
        [1, 1, 0, W, 0]
    );
    assert_eq!(
        hit(&mut c, "k", "1/h", &["STRATEGY", "sliding"]),
        [1, 1, 0, 2 * W, 0]
    );
    assert_eq!(hit(&mut c, "k", "1/m", &[]), [1, 1, 0, MINUTE, 0]);
    assert_eq!(hit(&mut c, "k", "1/h", &[])[0], 0);
    assert_eq!(hit(&mut c, "k", "1/h", &["STRATEGY", "moving"])[0], 0);
    assert_eq!(hit(&mut c, "k", "1/h", &["STRATEGY", "sliding"])[0], 0);
    assert_eq!(hit(&mut c, "k", "1/m", &[])[0], 0);
    // Other keys are independent.
    assert_eq!(hit(&mut c, "k2", "1/h", &[]), [1, 1, 0, W, 0]);
    assert_eq!(hit(&mut c, "", "1/h", &[]), [1, 1, 0, W, 0]);
}

#[test]
fn sliding_retry_is_rounded_up_to_whole_ms() {
    // Full in the first window (cur = L): in the next window
    // L * (W - e) / W + 1 <= L needs e >= W / L, rounded up.
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "sliding"];
    for (lim, l, w) in [("3/7s", 3, 7_000), ("7/h", 7, HOUR), ("6/1001ms", 6, 1001)] {
        let key = format!("k-{lim}");
        hit(
            &mut c,
            &key,
            lim,
            &["STRATEGY", "sliding", "COST", &l.to_string()],
        );
        let r = test(&mut c, &key, lim, &o);
        assert_eq!(&r[..3], &[0, l, 0], "{lim}");
        let ceil = (w + l - 1) / l;
        assert_eq!(r[4], r[3] - w + ceil, "{lim}: {r:?}");
    }
}
