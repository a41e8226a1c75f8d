//! Sections 4 and 5: RL.STATS (RESP2 and RESP3) and RL.CLEAR.

mod common;
use common::*;

const W: i64 = HOUR;

#[test]
fn stats_without_state_resp2_is_flat_arrays() {
    let s = Server::start();
    let mut c = s.conn();
    let v = raw(&mut c, &["RL.STATS", "nokey", "10/s;5/2 minutes"]).unwrap();
    let items = match &v {
        Value::Array(items) => items.clone(),
        other => panic!("expected an array, got {other:?}"),
    };
    assert_eq!(items.len(), 2, "{v:?}");
    for it in &items {
        match it {
            Value::Array(flat) => assert_eq!(flat.len(), 14, "{it:?}"),
            other => panic!("RESP2: each entry must be a flat array, got {other:?}"),
        }
    }
    let st: Vec<Stat> = items.iter().map(stat_from).collect();
    assert_eq!(
        st,
        vec![
            Stat {
                limit: 10,
                window_ms: 1000,
                strategy: "fixed-window".into(),
                remaining: 10,
                reset_after_ms: 0,
                retry_after_ms: 0,
                penalty_ms: 0
            },
            Stat {
                limit: 5,
                window_ms: 120_000,
                strategy: "fixed-window".into(),
                remaining: 5,
                reset_after_ms: 0,
                retry_after_ms: 0,
                penalty_ms: 0
            }
        ]
    );
    assert!(!exists(&mut c, "nokey"), "RL.STATS created a key");
}

#[test]
fn stats_without_state_resp3_is_maps() {
    let s = Server::start();
    let mut c = s.conn3();
    for (opt, canon) in [
        ("fixed", "fixed-window"),
        ("moving", "moving-window"),
        ("sliding", "sliding-window-counter"),
    ] {
        let v = raw(&mut c, &["RL.STATS", "nokey", "10/s;3/h", "STRATEGY", opt]).unwrap();
        let items = match &v {
            Value::Array(items) => items.clone(),
            other => panic!("expected an array, got {other:?}"),
        };
        assert_eq!(items.len(), 2);
        for it in &items {
            match it {
                Value::Map(pairs) => assert_eq!(pairs.len(), 7, "{it:?}"),
                other => panic!("RESP3: each entry must be a map, got {other:?}"),
            }
        }
        let st: Vec<Stat> = items.iter().map(stat_from).collect();
        assert_eq!(st[0].strategy, canon);
        assert_eq!(
            (
                st[0].limit,
                st[0].window_ms,
                st[0].remaining,
                st[0].reset_after_ms,
                st[0].retry_after_ms
            ),
            (10, 1000, 10, 0, 0)
        );
        assert_eq!(
            (
                st[1].limit,
                st[1].window_ms,
                st[1].remaining,
                st[1].reset_after_ms,
                st[1].retry_after_ms
            ),
            (3, W, 3, 0, 0)
        );
    }
    // RL.HIT replies are still plain arrays of integers under RESP3.
    assert_eq!(hit(&mut c, "k", "10/s", &[]), [1, 10, 9, 1000, 0]);
}

#[test]
fn stats_resp2_and_resp3_agree() {
    let s = Server::start();
    let mut c2 = s.conn();
    let mut c3 = s.conn3();
    hit(&mut c2, "k", "5/h;50/d", &["COST", "2"]);
    let a = stats(&mut c2, "k", "5/h;50/d", &[]);
    let b = stats(&mut c3, "k", "5/h;50/d", &[]);
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.limit, x.window_ms, &x.strategy, x.remaining),
            (y.limit, y.window_ms, &y.strategy, y.remaining)
        );
        assert!((x.reset_after_ms - y.reset_after_ms).abs() <= 100);
    }
}

#[test]
fn stats_fixed_window() {
    let s = Server::start();
    let mut c = s.conn();
    for _ in 0..3 {
        hit(&mut c, "k", "4/h", &[]);
    }
    let st = &stats(&mut c, "k", "4/h", &[])[0];
    assert_eq!(
        (st.limit, st.window_ms, st.remaining, st.retry_after_ms),
        (4, W, 1, 0)
    );
    assert_near(st.reset_after_ms, W, "reset");
    hit(&mut c, "k", "4/h", &[]);
    let st = &stats(&mut c, "k", "4/h", &[])[0];
    assert_eq!(st.remaining, 0);
    assert_near(st.reset_after_ms, W, "reset");
    assert_eq!(st.retry_after_ms, st.reset_after_ms, "{st:?}");
}

#[test]
fn stats_moving_window() {
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "moving"];
    hit(&mut c, "k", "3/h", &["STRATEGY", "moving", "COST", "2"]);
    let st = &stats(&mut c, "k", "3/h", &o)[0];
    assert_eq!(st.strategy, "moving-window");
    assert_eq!((st.remaining, st.retry_after_ms), (1, 0));
    assert_near(st.reset_after_ms, W, "reset");
    hit(&mut c, "k", "3/h", &o);
    let st = &stats(&mut c, "k", "3/h", &o)[0];
    assert_eq!(st.remaining, 0);
    // A cost-1 hit waits for the first entry (cost 2) to leave.
    assert_near(st.retry_after_ms, W, "retry");
    assert!(st.retry_after_ms <= st.reset_after_ms, "{st:?}");
}

#[test]
fn stats_sliding_window() {
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "sliding"];
    hit(&mut c, "k", "4/h", &["STRATEGY", "sliding", "COST", "4"]);
    let st = &stats(&mut c, "k", "4/h", &o)[0];
    assert_eq!(st.strategy, "sliding-window-counter");
    assert_eq!(st.remaining, 0);
    assert_near(st.reset_after_ms, 2 * W, "reset");
    // prev = 4 next window: 4 * (W - e) <= 3 * W needs e >= W / 4.
    assert_eq!(st.retry_after_ms, st.reset_after_ms - W + W / 4, "{st:?}");
}

#[test]
fn stats_several_limits_in_order() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "5/h;10/m;3/s", &["COST", "2"]);
    let st = stats(&mut c, "k", "5/h;10/m;3/s;7/d", &[]);
    let got: Vec<(i64, i64, i64)> = st
        .iter()
        .map(|s| (s.limit, s.window_ms, s.remaining))
        .collect();
    assert_eq!(
        got,
        vec![
            (5, W, 3),
            (10, MINUTE, 8),
            (3, SECOND, got[2].2),
            (7, DAY, 7)
        ]
    );
    assert!(got[2].2 == 1 || got[2].2 == 3, "3/s: {got:?}");
    assert_eq!(
        (st[3].reset_after_ms, st[3].retry_after_ms),
        (0, 0),
        "no state for 7/d"
    );
}

#[test]
fn stats_changes_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    for strategy in ["fixed", "moving", "sliding"] {
        let key = format!("k-{strategy}");
        hit(&mut c, &key, "2/h", &["STRATEGY", strategy]);
        let before = dump(&mut c, &key);
        for _ in 0..5 {
            stats(&mut c, &key, "2/h;1/m", &["STRATEGY", strategy]);
        }
        assert_eq!(dump(&mut c, &key), before, "{strategy}");
        assert_eq!(
            stats(&mut c, &key, "2/h", &["STRATEGY", strategy])[0].remaining,
            1
        );
    }
    stats(&mut c, "fresh", "2/h", &[]);
    assert!(!exists(&mut c, "fresh"));
}

#[test]
fn stats_options() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "3/h", &["STRATEGY", "moving"]);
    assert_eq!(
        stats(&mut c, "k", "3/h", &["strategy", "MOVING-WINDOW"])[0].remaining,
        2
    );
    assert_eq!(
        stats(&mut c, "k", "3/h", &[])[0].remaining,
        3,
        "fixed has no state"
    );
    assert_eq!(
        err(&mut c, &["RL.STATS", "k", "3/h", "COST", "1"]),
        "ERR syntax error near 'COST'"
    );
    assert_eq!(
        err(
            &mut c,
            &[
                "RL.STATS", "k", "3/h", "STRATEGY", "fixed", "STRATEGY", "fixed"
            ]
        ),
        "ERR syntax error near 'STRATEGY'"
    );
    assert_eq!(
        err(&mut c, &["RL.STATS", "k", "3/h", "BOGUS"]),
        "ERR syntax error near 'BOGUS'"
    );
    assert_eq!(
        err(&mut c, &["RL.STATS", "k", "3/h", "STRATEGY", "nope"]),
        "ERR unknown strategy 'nope'"
    );
}

#[test]
fn stats_after_lowering_limit() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "10/h", &["COST", "6"]);
    let st = &stats(&mut c, "k", "4/h", &[])[0];
    assert_eq!((st.limit, st.remaining), (4, 0));
    assert_eq!(st.retry_after_ms, st.reset_after_ms);
    assert_near(st.reset_after_ms, W, "reset");
}

#[test]
fn clear_whole_key() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(clear(&mut c, &["k"]), 0);
    hit(&mut c, "k", "1/h", &[]);
    hit(&mut c, "k", "1/m", &["STRATEGY", "moving"]);
    hit(&mut c, "k", "1/s", &["STRATEGY", "sliding"]);
    assert!(exists(&mut c, "k"));
    assert_eq!(clear(&mut c, &["k"]), 1);
    assert!(!exists(&mut c, "k"));
    assert_eq!(clear(&mut c, &["k"]), 0);
    // Counting restarts.
    assert_eq!(hit(&mut c, "k", "1/h", &[]), [1, 1, 0, W, 0]);
    // Other keys untouched.
    hit(&mut c, "other", "1/h", &[]);
    assert_eq!(clear(&mut c, &["k"]), 1);
    assert!(exists(&mut c, "other"));
}

#[test]
fn clear_some_limits() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "10/m;5/h;3/d", &[]);
    hit(&mut c, "k", "10/m", &["STRATEGY", "moving"]);
    hit(&mut c, "k", "10/m", &["STRATEGY", "sliding"]);
    // Only the named (strategy, window) states go; the amount does not matter.
    assert_eq!(clear(&mut c, &["k", "10/m;5/h"]), 2);
    let st = stats(&mut c, "k", "10/m;5/h;3/d", &[]);
    let rem: Vec<i64> = st.iter().map(|s| s.remaining).collect();
    assert_eq!(rem, vec![10, 5, 2]);
    assert_eq!(
        stats(&mut c, "k", "10/m", &["STRATEGY", "moving"])[0].remaining,
        9
    );
    assert_eq!(
        stats(&mut c, "k", "10/m", &["STRATEGY", "sliding"])[0].remaining,
        9
    );
    // Again: nothing left to remove for those.
    assert_eq!(clear(&mut c, &["k", "10/m;5/h"]), 0);
    assert_eq!(clear(&mut c, &["k", "99/60s", "STRATEGY", "moving"]), 1);
    assert_eq!(
        clear(&mut c, &["k", "10/m", "strategy", "MOVING-WINDOW"]),
        0
    );
    assert_eq!(
        stats(&mut c, "k", "10/m", &["STRATEGY", "moving"])[0].remaining,
        10
    );
    assert_eq!(
        stats(&mut c, "k", "10/m", &["STRATEGY", "sliding"])[0].remaining,
        9
    );
    assert!(pttl(&mut c, "k") > 0, "the key keeps a TTL");
    assert_eq!(
        clear(&mut c, &["k", "1/m", "STRATEGY", "sliding-window-counter"]),
        1
    );
    // Limits with no state count for nothing.
    assert_eq!(clear(&mut c, &["k", "3/d;7/w;1/s"]), 1);
    assert!(!exists(&mut c, "k"), "no state left: the key must be gone");
    assert_eq!(clear(&mut c, &["k"]), 0);
    assert_eq!(clear(&mut c, &["k", "3/d"]), 0);
    // A fresh start after a partial clear.
    hit(&mut c, "k2", "2/h;2/d", &[]);
    hit(&mut c, "k2", "2/h;2/d", &[]);
    assert_eq!(hit(&mut c, "k2", "2/h;2/d", &[])[0], 0);
    assert_eq!(clear(&mut c, &["k2", "2/h"]), 1);
    let r = hit(&mut c, "k2", "2/h;2/d", &[]);
    assert_eq!(&r[..3], &[0, 2, 0], "2/d still full: {r:?}");
    assert_eq!(clear(&mut c, &["k2", "2/d"]), 1);
    assert_eq!(hit(&mut c, "k2", "2/h;2/d", &[]), [1, 2, 1, W, 0]);
}

#[test]
fn clear_keeps_ttl_of_remaining_state() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "5/m;5/d", &[]);
    assert_near(pttl(&mut c, "k"), DAY, "PTTL");
    assert_eq!(clear(&mut c, &["k", "5/m"]), 1);
    let t = pttl(&mut c, "k");
    assert_near(t, DAY, "PTTL after clearing the short limit");
    assert_eq!(clear(&mut c, &["k", "5/d"]), 1);
    assert!(!exists(&mut c, "k"));
}

#[test]
fn clear_options_and_errors() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "5/m", &[]);
    assert_eq!(
        err(&mut c, &["RL.CLEAR", "k", "5/m", "COST", "1"]),
        "ERR syntax error near 'COST'"
    );
    assert_eq!(
        err(
            &mut c,
            &[
                "RL.CLEAR", "k", "5/m", "STRATEGY", "fixed", "STRATEGY", "fixed"
            ]
        ),
        "ERR syntax error near 'STRATEGY'"
    );
    assert_eq!(
        err(&mut c, &["RL.CLEAR", "k", "5/m", "STRATEGY", "bogus"]),
        "ERR unknown strategy 'bogus'"
    );
    let e = err(&mut c, &["RL.CLEAR", "k", "5/fortnight"]);
    assert_eq!(
        e,
        "ERR invalid limit '5/fortnight': unknown unit 'fortnight'"
    );
    let e = err(&mut c, &["RL.CLEAR", "k", "5/m", "STRATEGY"]);
    assert!(e.starts_with("ERR "), "{e}");
    // None of these removed anything.
    assert_eq!(stats(&mut c, "k", "5/m", &[])[0].remaining, 4);
}

#[test]
fn clear_counts_only_state_that_still_holds_usage() {
    // A key whose only state no longer holds usage (its TTL was removed by
    // someone, so it outlived its usage): both forms of RL.CLEAR reply 0,
    // and both remove what is there.
    let s = Server::start();
    let mut c = s.conn();
    for whole in [true, false] {
        let k = format!("stale:{whole}");
        hit(&mut c, &k, "1/50ms", &["STRATEGY", "gcra"]);
        raw(&mut c, &["PERSIST", &k]).unwrap();
        sleep_ms(120);
        assert!(exists(&mut c, &k));
        let args: Vec<&str> = if whole {
            vec![&k]
        } else {
            vec![&k, "1/50ms", "STRATEGY", "gcra"]
        };
        assert_eq!(clear(&mut c, &args), 0, "RL.CLEAR {args:?}");
        assert!(!exists(&mut c, &k), "RL.CLEAR {args:?} left the key");
    }
    // With usage: 1.
    hit(&mut c, "live", "1/h", &[]);
    assert_eq!(clear(&mut c, &["live"]), 1);
}
