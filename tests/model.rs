//! Model-based checks (proptest): random sequences of RL.HIT / RL.TEST /
//! RL.STATS with random costs against two limits `L1/h;L2/d`, compared
//! with a hand-written model of section 3. All calls happen within the
//! first window, where the three strategies agree: a hit is admitted iff
//! `used + cost <= L` for both limits.

mod common;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::{Cell, RefCell};

#[derive(Debug, Clone, Copy)]
enum Op {
    Hit(i64),
    Test(i64),
    Stats,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0i64..=25).prop_map(Op::Hit),
        2 => (0i64..=25).prop_map(Op::Test),
        1 => Just(Op::Stats),
    ]
}

/// Expected (allowed, binding index, remaining, retry sign) for a hit of
/// cost `c` with usage `u` against limits `[l1 per hour, l2 per day]`.
/// retry sign: 0 admitted, 1 positive, -1 never.
fn model(u: i64, c: i64, l: [i64; 2]) -> (i64, usize, i64, i64) {
    let fits = |li: i64| u + c <= li;
    if fits(l[0]) && fits(l[1]) {
        let after = u + c;
        // Smallest remaining, ties to the first written.
        let b = if l[1] - after < l[0] - after { 1 } else { 0 };
        return (1, b, l[b] - after, 0);
    }
    // Denied. -1 (never) is the largest retry, ties to the first written.
    for (i, li) in l.iter().enumerate() {
        if c > *li {
            return (0, i, l[i] - u, -1);
        }
    }
    // Both can admit it later: the day limit waits longer if it denies.
    let b = if !fits(l[1]) { 1 } else { 0 };
    (0, b, l[b] - u, 1)
}

#[test]
fn random_sequences_match_the_model() {
    let s = Server::start();
    let conn = RefCell::new(s.conn());
    let case = Cell::new(0u64);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let strat = (
        prop_oneof![Just("fixed"), Just("moving"), Just("sliding")],
        1i64..=20,
        1i64..=20,
        proptest::collection::vec(op(), 1..30),
    );
    runner
        .run(&strat, |(strategy, l1, l2, ops)| {
            let mut c = conn.borrow_mut();
            case.set(case.get() + 1);
            let key = format!("case{}", case.get());
            let limits = format!("{l1}/h;{l2}/d");
            let mult = if strategy == "sliding" { 2 } else { 1 };
            let mut used = 0i64;
            for op in &ops {
                match *op {
                    Op::Hit(cost) | Op::Test(cost) => {
                        let is_hit = matches!(op, Op::Hit(_));
                        let cost_s = cost.to_string();
                        let o = ["STRATEGY", strategy, "COST", cost_s.as_str()];
                        let r = if is_hit {
                            hit(&mut c, &key, &limits, &o)
                        } else {
                            test(&mut c, &key, &limits, &o)
                        };
                        let (allowed, b, remaining, retry) = model(used, cost, [l1, l2]);
                        let limit = [l1, l2][b];
                        let w = mult * [HOUR, DAY][b];
                        let ctx = format!("{strategy} {limits} used {used} {op:?}: {r:?}");
                        prop_assert_eq!(r[0], allowed, "allowed: {}", ctx);
                        prop_assert_eq!(r[1], limit, "limit: {}", ctx);
                        prop_assert_eq!(r[2], remaining, "remaining: {}", ctx);
                        match retry {
                            0 => prop_assert_eq!(r[4], 0, "{}", ctx),
                            -1 => prop_assert_eq!(r[4], -1, "{}", ctx),
                            _ => prop_assert!(r[4] > 0, "{}", ctx),
                        }
                        let used_after = if allowed == 1 { used + cost } else { used };
                        if used_after == 0 {
                            prop_assert_eq!(r[3], 0, "reset with no usage: {}", ctx);
                        } else {
                            prop_assert!(r[3] > w - SLACK && r[3] <= w, "reset: {}", ctx);
                        }
                        if is_hit && allowed == 1 {
                            used += cost;
                        }
                    }
                    Op::Stats => {
                        let st = stats(&mut c, &key, &limits, &["STRATEGY", strategy]);
                        prop_assert_eq!(st.len(), 2);
                        for (i, (li, wi)) in [(l1, HOUR), (l2, DAY)].iter().enumerate() {
                            let ctx = format!("{strategy} {limits} used {used}: {st:?}");
                            prop_assert_eq!(st[i].limit, *li, "{}", ctx);
                            prop_assert_eq!(st[i].window_ms, *wi, "{}", ctx);
                            prop_assert_eq!(st[i].remaining, li - used, "{}", ctx);
                            if used == 0 {
                                prop_assert_eq!(st[i].reset_after_ms, 0, "{}", ctx);
                                prop_assert_eq!(st[i].retry_after_ms, 0, "{}", ctx);
                            } else {
                                prop_assert!(st[i].reset_after_ms > mult * wi - SLACK, "{}", ctx);
                                prop_assert!(st[i].reset_after_ms <= mult * wi, "{}", ctx);
                                if used < *li {
                                    prop_assert_eq!(st[i].retry_after_ms, 0, "{}", ctx);
                                } else {
                                    prop_assert!(st[i].retry_after_ms > 0, "{}", ctx);
                                }
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(exists(&mut c, &key), used > 0, "key exists iff usage");
            Ok(())
        })
        .unwrap();
}
