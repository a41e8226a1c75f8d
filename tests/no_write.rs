//! Section 6: RL.TEST, RL.STATS, COST 0, denied hits and invalid input never
//! write: the primary's `master_repl_offset` does not move (a replica is
//! attached so that every propagated write advances the offset; the
//! replica ping period is raised so that pings do not move it either).

mod common;
use common::*;

fn primary() -> Server {
    Server::start_with(&["--repl-ping-replica-period", "3600"])
}

#[track_caller]
fn assert_no_write(p: &Server, c: &mut Connection, what: &str, args: &[&str]) {
    let data_before = data(c);
    let before = p.repl_offset();
    let _ = raw(c, args);
    let after = p.repl_offset();
    assert_eq!(before, after, "{what}: {args:?} propagated a write");
    assert_eq!(
        data_before,
        data(c),
        "{what}: {args:?} changed a key or its expiry"
    );
}

/// Every key with its DUMP payload and absolute expiry.
fn data(c: &mut Connection) -> Vec<(String, Option<Vec<u8>>, i64)> {
    keys(c)
        .into_iter()
        .map(|k| {
            let d = dump(c, &k);
            let e = pexpiretime(c, &k);
            (k, d, e)
        })
        .collect()
}

#[track_caller]
fn assert_writes(p: &Server, c: &mut Connection, args: &[&str]) {
    let before = p.repl_offset();
    raw(c, args).unwrap();
    let after = p.repl_offset();
    assert!(
        after > before,
        "{args:?} was admitted but propagated nothing"
    );
}

#[test]
fn reads_and_denied_hits_do_not_propagate() {
    let p = primary();
    let _r = replica_of(&p, false);
    let mut c = p.conn();
    for strategy in ["fixed", "moving", "sliding"] {
        let key = format!("k-{strategy}");
        let k = key.as_str();
        // Positive control: an admitted hit is propagated.
        assert_writes(&p, &mut c, &["RL.HIT", k, "2/h;5/d", "STRATEGY", strategy]);
        assert_writes(&p, &mut c, &["RL.HIT", k, "2/h;5/d", "STRATEGY", strategy]);
        let st = "STRATEGY";
        assert_no_write(
            &p,
            &mut c,
            "RL.TEST",
            &["RL.TEST", k, "2/h;5/d", st, strategy],
        );
        assert_no_write(
            &p,
            &mut c,
            "RL.TEST",
            &["RL.TEST", k, "9/h", st, strategy, "COST", "3"],
        );
        assert_no_write(
            &p,
            &mut c,
            "RL.TEST fresh",
            &["RL.TEST", "fresh", "2/h", st, strategy],
        );
        assert_no_write(
            &p,
            &mut c,
            "RL.STATS",
            &["RL.STATS", k, "2/h;5/d;1/s", st, strategy],
        );
        assert_no_write(
            &p,
            &mut c,
            "RL.STATS fresh",
            &["RL.STATS", "fresh", "2/h", st, strategy],
        );
        assert_no_write(
            &p,
            &mut c,
            "denied",
            &["RL.HIT", k, "2/h;5/d", st, strategy],
        );
        assert_no_write(
            &p,
            &mut c,
            "denied cost",
            &["RL.HIT", k, "2/h;5/d", st, strategy, "COST", "4"],
        );
        assert_no_write(
            &p,
            &mut c,
            "never",
            &["RL.HIT", k, "2/h;5/d", st, strategy, "COST", "10"],
        );
        assert_no_write(
            &p,
            &mut c,
            "COST 0",
            &["RL.HIT", k, "2/h;5/d", st, strategy, "COST", "0"],
        );
        assert_no_write(
            &p,
            &mut c,
            "COST 0 fresh",
            &["RL.HIT", "fresh", "2/h", st, strategy, "COST", "0"],
        );
        assert_no_write(
            &p,
            &mut c,
            "lowered COST 0",
            &["RL.HIT", k, "1/h", st, strategy, "COST", "0"],
        );
        assert_no_write(
            &p,
            &mut c,
            "invalid limit",
            &["RL.HIT", k, "2/fortnight", st, strategy],
        );
        assert_no_write(
            &p,
            &mut c,
            "invalid cost",
            &["RL.HIT", k, "2/h", st, strategy, "COST", "x"],
        );
        assert_no_write(
            &p,
            &mut c,
            "RL.CLEAR nothing",
            &["RL.CLEAR", k, "7/w", st, strategy],
        );
        assert_no_write(&p, &mut c, "RL.CLEAR no key", &["RL.CLEAR", "fresh"]);
    }
    assert_no_write(
        &p,
        &mut c,
        "unknown strategy",
        &["RL.HIT", "x", "2/h", "STRATEGY", "foo"],
    );
    assert_no_write(&p, &mut c, "arity", &["RL.HIT", "x"]);
    let _: () = redis::cmd("SET")
        .arg("str")
        .arg("hello")
        .query(&mut c)
        .unwrap();
    assert_no_write(&p, &mut c, "WRONGTYPE", &["RL.HIT", "str", "2/h"]);
    assert_no_write(&p, &mut c, "WRONGTYPE", &["RL.CLEAR", "str"]);
    // Clearing existing state does write.
    assert_writes(&p, &mut c, &["RL.CLEAR", "k-fixed", "2/h"]);
    assert_writes(&p, &mut c, &["RL.CLEAR", "k-moving"]);
}

#[test]
fn reading_expired_log_entries_does_not_write() {
    // The moving-window log of `k` holds entries that are all out of the
    // window while the key lives on (another limit holds usage): reading
    // must not prune them.
    let p = primary();
    let _r = replica_of(&p, false);
    let mut c = p.conn();
    hit(&mut c, "k", "5/h", &[]);
    hit(&mut c, "k", "3/200ms", &["STRATEGY", "moving"]);
    hit(&mut c, "k", "3/200ms", &["STRATEGY", "sliding"]);
    sleep_ms(450);
    assert!(exists(&mut c, "k"));
    for args in [
        vec!["RL.TEST", "k", "3/200ms", "STRATEGY", "moving"],
        vec!["RL.STATS", "k", "3/200ms", "STRATEGY", "moving"],
        vec!["RL.HIT", "k", "3/200ms", "STRATEGY", "moving", "COST", "0"],
        vec!["RL.TEST", "k", "3/200ms", "STRATEGY", "sliding"],
        vec!["RL.STATS", "k", "3/200ms", "STRATEGY", "sliding"],
        vec!["RL.HIT", "k", "3/200ms", "STRATEGY", "sliding", "COST", "0"],
        vec!["RL.STATS", "k", "5/h;3/200ms"],
    ] {
        assert_no_write(&p, &mut c, "expired entries", &args);
    }
    let st = stats(&mut c, "k", "3/200ms", &["STRATEGY", "moving"]);
    assert_eq!(
        (st[0].remaining, st[0].reset_after_ms, st[0].retry_after_ms),
        (3, 0, 0)
    );
    let st = stats(&mut c, "k", "3/200ms", &["STRATEGY", "sliding"]);
    assert_eq!(
        (st[0].remaining, st[0].reset_after_ms, st[0].retry_after_ms),
        (3, 0, 0)
    );
}

/// `WATCH key` then the command from another client, then `MULTI ... EXEC`
/// on the watching client: true when the transaction ran (the command did
/// not signal the key as modified).
fn exec_survives(p: &Server, key: &str, args: &[&str]) -> bool {
    let mut watcher = p.conn();
    let mut other = p.conn();
    raw(&mut watcher, &["WATCH", key]).unwrap();
    let _ = raw(&mut other, args);
    raw(&mut watcher, &["MULTI"]).unwrap();
    raw(&mut watcher, &["PING"]).unwrap();
    !matches!(raw(&mut watcher, &["EXEC"]).unwrap(), redis::Value::Nil)
}

#[test]
fn only_writes_abort_a_watching_transaction() {
    let p = Server::start();
    let mut c = p.conn();
    for strategy in ["fixed", "moving", "sliding", "gcra"] {
        let key = format!("w-{strategy}");
        let k = key.as_str();
        let hit = ["RL.HIT", k, "1/h", "STRATEGY", strategy];
        // Positive control: an admitted hit is a write.
        assert!(!exec_survives(&p, k, &hit), "{strategy}: admitted hit");
        // Denied hits, COST 0 and reads change nothing.
        assert!(exec_survives(&p, k, &hit), "{strategy}: denied hit");
        let cost0 = ["RL.HIT", k, "5/h", "STRATEGY", strategy, "COST", "0"];
        assert!(exec_survives(&p, k, &cost0), "{strategy}: COST 0");
        let t = ["RL.TEST", k, "5/h", "STRATEGY", strategy];
        assert!(exec_survives(&p, k, &t), "{strategy}: RL.TEST");
        let s = ["RL.STATS", k, "5/h", "STRATEGY", strategy];
        assert!(exec_survives(&p, k, &s), "{strategy}: RL.STATS");
        // A hit on a missing key creates it.
        let fresh = format!("w-new-{strategy}");
        let h2 = ["RL.HIT", fresh.as_str(), "1/h", "STRATEGY", strategy];
        assert!(!exec_survives(&p, &fresh, &h2), "{strategy}: new key");
        // RL.CLEAR that removes nothing, then one that deletes.
        let none = ["RL.CLEAR", k, "1/m", "STRATEGY", strategy];
        assert!(exec_survives(&p, k, &none), "{strategy}: CLEAR of nothing");
        assert!(!exec_survives(&p, k, &["RL.CLEAR", k]), "{strategy}: CLEAR");
        assert!(!exists(&mut c, k));
    }
    // A log past the small-value path (128 bytes) is patched through DMA.
    let big = "w-big";
    let args = ["RL.HIT", big, "200/h", "STRATEGY", "moving"];
    for _ in 0..199 {
        raw(&mut c, &args).unwrap();
    }
    let len = to_i64(&raw(&mut c, &["STRLEN", big]).unwrap());
    assert!(len > 128, "log of {len} bytes");
    assert!(!exec_survives(&p, big, &args), "large log: admitted hit");
    assert!(exec_survives(&p, big, &args), "large log: denied hit");
}
