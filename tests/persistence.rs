//! Section 7: persistence. State survives an AOF restart, an RDB restart
//! and DEBUG RELOAD, byte for byte, with the same absolute expiry; the AOF
//! holds native commands, never RL.* commands.

mod common;
use common::*;
use std::collections::BTreeMap;

/// key -> (DUMP payload, PTTL, PEXPIRETIME)
type Snapshot = BTreeMap<String, (Vec<u8>, i64, i64)>;

fn snapshot(c: &mut Connection) -> Snapshot {
    keys(c)
        .into_iter()
        .map(|k| {
            let d = dump(c, &k).unwrap();
            let t = pttl(c, &k);
            let e = pexpiretime(c, &k);
            (k, (d, t, e))
        })
        .collect()
}

/// Same keys and payloads, same absolute expiry; TTLs did not grow and
/// moved by at most `max_ms`.
fn assert_same(before: &Snapshot, after: &Snapshot, max_ms: i64) {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "key sets differ"
    );
    for (k, (d, t, e)) in before {
        let (d2, t2, e2) = &after[k];
        assert_eq!(d, d2, "DUMP of {k} changed");
        assert_eq!(e, e2, "absolute expiry of {k} changed");
        assert!(*t > 0 && *t2 > 0, "{k}: TTL {t} -> {t2}");
        assert!(*t2 <= *t, "{k}: TTL grew {t} -> {t2}: expiry not absolute");
        assert!(t - t2 <= max_ms, "{k}: TTL moved too much {t} -> {t2}");
    }
}

fn workload(c: &mut Connection) {
    for (i, strategy) in ["fixed", "moving", "sliding"].iter().enumerate() {
        let key = format!("user:{i}");
        hit(c, &key, "5/h;20/d", &["STRATEGY", strategy, "COST", "2"]);
        hit(c, &key, "5/h;20/d", &["STRATEGY", strategy]);
        hit(c, &key, "5/h;20/d", &["STRATEGY", strategy, "COST", "4"]); // denied
        hit(c, "all", "9/h", &["STRATEGY", strategy, "COST", "3"]);
    }
    hit(c, "gone", "5/h", &[]);
    assert_eq!(clear(c, &["gone"]), 1);
    hit(c, "partly", "5/h;5/d", &[]);
    assert_eq!(clear(c, &["partly", "5/d"]), 1);
}

fn check_counts_continue(c: &mut Connection) {
    for (i, strategy) in ["fixed", "moving", "sliding"].iter().enumerate() {
        let key = format!("user:{i}");
        let r = test(c, &key, "5/h;20/d", &["STRATEGY", strategy]);
        assert_eq!(&r[..3], &[1, 5, 1], "{strategy} after restart");
        let r = hit(c, &key, "5/h;20/d", &["STRATEGY", strategy, "COST", "2"]);
        assert_eq!(&r[..3], &[1, 5, 0], "{strategy} after restart");
        assert_eq!(hit(c, &key, "5/h;20/d", &["STRATEGY", strategy])[0], 0);
        let st = stats(c, "all", "9/h", &["STRATEGY", strategy]);
        assert_eq!(st[0].remaining, 6, "{strategy}");
    }
    assert!(!exists(c, "gone"));
    assert_eq!(
        stats(c, "partly", "5/h;5/d", &[])
            .iter()
            .map(|s| s.remaining)
            .collect::<Vec<_>>(),
        vec![4, 5]
    );
}

/// Lower-cased names of the commands in the incremental AOF files.
fn aof_command_names(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    let aof_dir = dir.join("appendonlydir");
    for e in std::fs::read_dir(&aof_dir)
        .expect("appendonlydir")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.contains(".incr.aof") {
            continue;
        }
        let data = std::fs::read(e.path()).unwrap();
        let mut i = 0;
        let line = |i: &mut usize| -> String {
            let start = *i;
            while *i + 1 < data.len() && &data[*i..*i + 2] != b"\r\n" {
                *i += 1;
            }
            let l = String::from_utf8_lossy(&data[start..*i]).into_owned();
            *i += 2;
            l
        };
        while i < data.len() {
            let head = line(&mut i);
            assert!(
                head.starts_with('*'),
                "unexpected AOF line {head:?} in {name}"
            );
            let n: usize = head[1..].parse().unwrap();
            for j in 0..n {
                let len_line = line(&mut i);
                assert!(
                    len_line.starts_with('$'),
                    "unexpected AOF line {len_line:?}"
                );
                let len: usize = len_line[1..].parse().unwrap();
                if j == 0 {
                    names.push(String::from_utf8_lossy(&data[i..i + len]).to_ascii_lowercase());
                }
                i += len + 2;
            }
        }
    }
    names
}

fn aof_opts() -> Opts {
    Opts::default().args(&["--appendonly", "yes", "--appendfsync", "always"])
}

#[test]
fn restart_from_aof_after_kill() {
    let s = Server::start_opts(aof_opts());
    let mut c = s.conn();
    workload(&mut c);
    let before = snapshot(&mut c);
    drop(c);
    let dir = s.kill_keep_dir();
    let names = aof_command_names(&dir);
    assert!(
        names.iter().any(|n| n != "select"),
        "no write in the AOF: {names:?}"
    );
    for n in &names {
        assert!(
            !n.starts_with("rl."),
            "the AOF holds {n}: it must hold the effects, not RL.* commands ({names:?})"
        );
    }
    let s2 = Server::restart_in(dir, aof_opts());
    let mut c2 = s2.conn();
    let after = snapshot(&mut c2);
    assert_same(&before, &after, 5000);
    check_counts_continue(&mut c2);
}

#[test]
fn restart_from_aof_after_shutdown_and_later_load() {
    let s = Server::start_opts(aof_opts());
    let mut c = s.conn();
    workload(&mut c);
    let before = snapshot(&mut c);
    drop(c);
    let dir = s.shutdown_keep_dir(&[]);
    // Reload a bit later: expiries are absolute, so TTLs went down by the delay.
    sleep_ms(300);
    let s2 = Server::restart_in(dir, aof_opts());
    let mut c2 = s2.conn();
    let after = snapshot(&mut c2);
    assert_same(&before, &after, 5000);
    for (k, (_, t, _)) in &before {
        assert!(after[k].1 <= t - 250, "{k}: the AOF load re-based the TTL");
    }
    check_counts_continue(&mut c2);
}

#[test]
fn aof_loads_into_a_server_without_the_module() {
    let s = Server::start_opts(aof_opts());
    let mut c = s.conn();
    workload(&mut c);
    let before = snapshot(&mut c);
    drop(c);
    let dir = s.kill_keep_dir();
    let plain = Server::restart_in(dir, aof_opts().no_module());
    let mut pc = plain.conn();
    assert_same(&before, &snapshot(&mut pc), 5000);
}

#[test]
fn restart_from_rdb() {
    let s = Server::start();
    let mut c = s.conn();
    workload(&mut c);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let before = snapshot(&mut c);
    drop(c);
    let dir = s.kill_keep_dir();
    // A server without the module can load the RDB and save it again ...
    let plain = Server::restart_in(dir, Opts::default().no_module());
    let mut pc = plain.conn();
    assert_same(&before, &snapshot(&mut pc), 5000);
    let _: () = redis::cmd("SAVE").query(&mut pc).unwrap();
    drop(pc);
    let dir = plain.kill_keep_dir();
    // ... and the module reads it back.
    let s2 = Server::restart_in(dir, Opts::default());
    let mut c2 = s2.conn();
    assert_same(&before, &snapshot(&mut c2), 5000);
    check_counts_continue(&mut c2);
}

#[test]
fn debug_reload_keeps_state() {
    let s = Server::start_with(&["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    workload(&mut c);
    let before = snapshot(&mut c);
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_same(&before, &snapshot(&mut c), 2000);
    check_counts_continue(&mut c);
}

#[test]
fn bgrewriteaof_keeps_state() {
    let s = Server::start_opts(aof_opts());
    let mut c = s.conn();
    workload(&mut c);
    let before = snapshot(&mut c);
    // A rewrite may already run (the base file of a new AOF): retry.
    let mut started = false;
    for _ in 0..250 {
        if raw(&mut c, &["BGREWRITEAOF"]).is_ok() {
            started = true;
            break;
        }
        sleep_ms(20);
    }
    assert!(started, "BGREWRITEAOF never started");
    // Wait (bounded) for the rewrite to finish.
    for _ in 0..500 {
        let i = info(&mut c, "persistence");
        if i["aof_rewrite_in_progress"] == "0" && i["aof_rewrite_scheduled"] == "0" {
            break;
        }
        sleep_ms(20);
    }
    hit(&mut c, "after", "3/h", &[]);
    drop(c);
    let dir = s.kill_keep_dir();
    let s2 = Server::restart_in(dir, aof_opts());
    let mut c2 = s2.conn();
    let mut after = snapshot(&mut c2);
    assert!(
        after.remove("after").is_some(),
        "write after the rewrite lost"
    );
    assert_same(&before, &after, 5000);
    check_counts_continue(&mut c2);
}
