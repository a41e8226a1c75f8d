//! Atomicity under concurrent clients: exactly L hits are admitted.

mod common;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::thread;

const THREADS: usize = 8;
const HITS: usize = 400;

fn run(s: &Server, key: &str, limits: &str, opts: &[&str]) -> (i64, i64) {
    let admitted = Arc::new(AtomicI64::new(0));
    let denied = Arc::new(AtomicI64::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let mut c = s.conn();
            let (a, d) = (admitted.clone(), denied.clone());
            let key = key.to_string();
            let limits = limits.to_string();
            let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
            thread::spawn(move || {
                let o: Vec<&str> = opts.iter().map(|s| s.as_str()).collect();
                for _ in 0..HITS {
                    let r = hit(&mut c, &key, &limits, &o);
                    assert!(r[2] >= 0, "negative remaining {r:?}");
                    if r[0] == 1 {
                        a.fetch_add(1, Ordering::SeqCst);
                    } else {
                        assert_eq!(r[2], 0, "denied with remaining > 0: {r:?}");
                        d.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (
        admitted.load(Ordering::SeqCst),
        denied.load(Ordering::SeqCst),
    )
}

#[test]
fn exactly_the_limit_is_admitted_per_strategy() {
    let s = Server::start();
    for strategy in ["fixed-window", "moving-window", "sliding-window-counter"] {
        let key = format!("c-{strategy}");
        let (a, d) = run(&s, &key, "1000/h", &["STRATEGY", strategy]);
        assert_eq!(a, 1000, "{strategy}: admitted");
        assert_eq!(d, (THREADS * HITS) as i64 - 1000, "{strategy}: denied");
        let mut c = s.conn();
        let st = stats(&mut c, &key, "1000/h", &["STRATEGY", strategy]);
        assert_eq!(st[0].remaining, 0, "{strategy}");
    }
}

#[test]
fn several_limits_and_costs_under_contention() {
    let s = Server::start();
    // 3200 hits of cost 3 against 1000/h;600/d: 200 admitted (600 / 3).
    let (a, _) = run(&s, "multi", "1000/h;600/d", &["COST", "3"]);
    assert_eq!(a, 200);
    let mut c = s.conn();
    let st = stats(&mut c, "multi", "1000/h;600/d", &[]);
    assert_eq!((st[0].remaining, st[1].remaining), (400, 0));
}

#[test]
fn pipelined_hits_are_counted_exactly() {
    let s = Server::start();
    let mut c = s.conn();
    let mut p = redis::pipe();
    for _ in 0..500 {
        p.cmd("RL.HIT")
            .arg("p")
            .arg("123/h")
            .arg("STRATEGY")
            .arg("moving");
    }
    let replies: Vec<Value> = p.query(&mut c).unwrap();
    let admitted = replies
        .into_iter()
        .map(|v| five(v, "pipelined RL.HIT"))
        .filter(|r| r[0] == 1)
        .count();
    assert_eq!(admitted, 123);
}
