//! Section 6: every write fires the keyspace notifications that a replica
//! applying its effects fires, so subscribers see the same events on a
//! primary and on its replicas; calls that write nothing fire nothing.

mod common;

use common::checks::listen;
use common::*;
use std::time::{Duration, Instant};

fn ev(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(e, k)| (e.to_string(), k.to_string()))
        .collect()
}

#[test]
fn primary_and_replica_without_the_module_fire_the_same_events() {
    let primary = Server::start();
    let replica = replica_of(&primary, false);
    for s in [&primary, &replica] {
        raw(
            &mut s.conn(),
            &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
        )
        .unwrap();
    }
    let on_primary = listen(&primary);
    let on_replica = listen(&replica);
    let mut c = primary.conn();

    // Writes: a new key, an existing one, every strategy.
    for s in ["fixed", "sliding", "gcra"] {
        hit(&mut c, &format!("n:{s}"), "2/h", &["STRATEGY", s]);
        hit(&mut c, &format!("n:{s}"), "2/h", &["STRATEGY", s]);
    }
    // Nothing written, nothing fired: denied hits, COST 0, reads.
    hit(&mut c, "n:fixed", "2/h", &[]);
    hit(&mut c, "n:fixed", "2/h", &["COST", "0"]);
    test(&mut c, "n:fixed", "2/h", &[]);
    stats(&mut c, "n:fixed", "2/h", &[]);
    assert_eq!(clear(&mut c, &["nothing:here"]), 0);
    assert_eq!(clear(&mut c, &["n:fixed", "5/d"]), 0);
    // A moving-window log past 512 bytes is patched with SETRANGE; its
    // expiry moves with each hit of a new ms (then PEXPIREAT).
    let log = "n:log";
    for _ in 0..600 {
        hit(&mut c, log, "5000/h", &["STRATEGY", "moving"]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        to_i64(&raw(&mut c, &["STRLEN", log]).unwrap()) > 512,
        "the log stays small"
    );
    // Clears: some limits (the value is rewritten), the whole key (DEL).
    hit(&mut c, "n:two", "5/h;9/d", &[]);
    assert_eq!(clear(&mut c, &["n:two", "5/h"]), 1);
    assert_eq!(clear(&mut c, &["n:two"]), 1);
    wait_synced(&primary, &replica);
    for s in [&primary, &replica] {
        raw(&mut s.conn(), &["PUBLISH", "done", "1"]).unwrap();
    }
    let (p, r) = (on_primary.join().unwrap(), on_replica.join().unwrap());

    assert_eq!(p, r, "primary and replica saw different events");
    let set_expire = |k: &str| ev(&[("set", k), ("expire", k)]);
    let mut start = Vec::new();
    for s in ["fixed", "sliding", "gcra"] {
        let k = format!("n:{s}");
        start.extend(set_expire(&k));
        start.extend(set_expire(&k));
    }
    assert_eq!(p[..start.len()], start[..], "{p:?}");
    // The log: whole-value writes while it is small, then setrange (and an
    // expire after each setrange of a later ms).
    let log_events: Vec<&(String, String)> = p[start.len()..]
        .iter()
        .take_while(|(_, k)| k == log)
        .collect();
    let setranges = log_events.iter().filter(|(e, _)| e == "setrange").count();
    assert!(setranges > 50, "{setranges} setrange events");
    assert!(
        log_events
            .iter()
            .all(|(e, _)| ["set", "expire", "setrange"].contains(&e.as_str()))
    );
    let rest = &p[start.len() + log_events.len()..];
    assert_eq!(
        rest,
        &ev(&[
            ("set", "n:two"),
            ("expire", "n:two"),
            ("set", "n:two"),
            ("expire", "n:two"),
            ("del", "n:two"),
        ])[..],
        "{rest:?}"
    );
}

#[test]
fn no_events_without_notify_keyspace_events() {
    // The default config selects nothing: a write fires nothing (and costs
    // only Redis' check of the flags).
    let s = Server::start();
    let t0 = Instant::now();
    let on = listen(&s);
    let mut c = s.conn();
    hit(&mut c, "k", "2/h", &[]);
    raw(&mut c, &["PUBLISH", "done", "1"]).unwrap();
    assert!(on.join().unwrap().is_empty());
    assert!(t0.elapsed() < Duration::from_secs(10));
}
