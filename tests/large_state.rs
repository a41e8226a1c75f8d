//! Large moving-window logs: the in-place (DMA) write path, its SETRANGE
//! replication, spare room for logs followed by other records, and
//! compaction of expired entries. A replica without the module and an AOF
//! restart must end with byte-identical keys.

mod common;

use common::*;
use std::thread::sleep;
use std::time::Duration;

/// Drives several keys whose state passes the whole-value replication size:
/// one long-window log (grows only), one short-window log (entries expire
/// and are compacted), and a key holding two logs plus a fixed window.
fn drive(c: &mut redis::Connection) {
    for round in 0..8 {
        let mut p = redis::pipe();
        for i in 0..150 {
            p.cmd("RL.HIT")
                .arg("big")
                .arg("100000/h")
                .arg("STRATEGY")
                .arg("moving");
            for j in 0..3 {
                p.cmd("RL.HIT")
                    .arg("churn")
                    .arg("3000/400ms")
                    .arg("STRATEGY")
                    .arg("moving")
                    .arg("COST")
                    .arg(1 + (i + j) % 3);
            }
            p.cmd("RL.HIT")
                .arg("multi")
                .arg("5000/h;3000/10m")
                .arg("STRATEGY")
                .arg("moving");
            p.cmd("RL.HIT")
                .arg("multi")
                .arg("5000/h")
                .arg("STRATEGY")
                .arg("fixed");
        }
        let replies: Vec<redis::Value> = p.query(c).unwrap();
        assert_eq!(replies.len(), 900, "round {round}");
        if round < 7 {
            sleep(Duration::from_millis(100));
        }
    }
}

fn keys() -> [&'static str; 3] {
    ["big", "churn", "multi"]
}

#[test]
fn large_logs_replicate_byte_identical_to_a_replica_without_the_module() {
    let primary = Server::start();
    let replica = replica_of(&primary, false);
    let mut c = primary.conn();
    drive(&mut c);
    wait_synced(&primary, &replica);
    let mut rc = replica.conn();
    for k in keys() {
        let d = dump(&mut c, k).expect(k);
        let len: usize = redis::cmd("STRLEN").arg(k).query(&mut c).unwrap();
        assert!(
            len > 600,
            "{k}: state should be past the whole-value size, got {len}"
        );
        assert_eq!(
            Some(d),
            dump(&mut rc, k),
            "{k}: DUMP differs on the replica"
        );
        let p1: i64 = redis::cmd("PEXPIRETIME").arg(k).query(&mut c).unwrap();
        let p2: i64 = redis::cmd("PEXPIRETIME").arg(k).query(&mut rc).unwrap();
        assert_eq!(p1, p2, "{k}: absolute expiry differs");
    }
    // The counts are what was admitted: 1200 hits on `big` (8 rounds x 150).
    let r = test(&mut c, "big", "100000/h", &["STRATEGY", "moving"]);
    assert_eq!(r[2], 100000 - 1200 - 1);
    let r = test(&mut c, "multi", "5000/h;3000/10m", &["STRATEGY", "moving"]);
    assert_eq!(r[2], 3000 - 1200 - 1);
}

#[test]
fn large_logs_survive_an_aof_restart() {
    let s = Server::start_opts(Opts::default().args(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]));
    let mut c = s.conn();
    drive(&mut c);
    let before: Vec<_> = keys().iter().map(|k| dump(&mut c, k)).collect();
    let expiries: Vec<i64> = keys()
        .iter()
        .map(|k| redis::cmd("PEXPIRETIME").arg(*k).query(&mut c).unwrap())
        .collect();
    drop(c);
    let dir = s.kill_keep_dir();
    let s2 = Server::restart_in(dir, Opts::default().args(&["--appendonly", "yes"]));
    let mut c2 = s2.conn();
    for (i, k) in keys().iter().enumerate() {
        // `churn` may have expired in the meantime; the others must be whole.
        if *k == "churn" {
            continue;
        }
        assert_eq!(
            dump(&mut c2, k),
            before[i],
            "{k}: state changed across the restart"
        );
        let e: i64 = redis::cmd("PEXPIRETIME").arg(*k).query(&mut c2).unwrap();
        assert_eq!(e, expiries[i], "{k}: expiry changed across the restart");
    }
    let r = hit(&mut c2, "big", "100000/h", &["STRATEGY", "moving"]);
    assert_eq!(&r[..3], &[1, 100000, 100000 - 1201]);
}

#[test]
fn a_filled_short_window_log_admits_again_after_expiry() {
    let s = Server::start();
    let mut c = s.conn();
    let mut p = redis::pipe();
    for _ in 0..2000 {
        p.cmd("RL.HIT")
            .arg("k")
            .arg("2000/200ms")
            .arg("STRATEGY")
            .arg("moving");
    }
    let _: Vec<redis::Value> = p.query(&mut c).unwrap();
    let r = hit(&mut c, "k", "2000/200ms", &["STRATEGY", "moving"]);
    assert_eq!(r[0], 0, "the log is full: {r:?}");
    let strlen =
        |c: &mut redis::Connection| -> usize { redis::cmd("STRLEN").arg("k").query(c).unwrap() };
    let size_full = strlen(&mut c);
    sleep(Duration::from_millis(260));
    // Everything expired (the key itself is gone or holds no usage).
    let r = hit(&mut c, "k", "2000/200ms", &["STRATEGY", "moving"]);
    assert_eq!(&r[..3], &[1, 2000, 1999]);
    let size_after = strlen(&mut c);
    assert!(
        size_after < size_full / 10,
        "expired entries were not reclaimed: {size_full} -> {size_after}"
    );
}
