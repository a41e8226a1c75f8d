//! Sections 6 and 7: replication as deterministic effects.

mod common;
use common::*;

/// Same keys, same DUMP payloads, same absolute expiry (PEXPIRETIME).
fn assert_same_data(p: &Server, r: &Server) {
    let mut pc = p.conn();
    let mut rc = r.conn();
    let pk = keys(&mut pc);
    let rk = keys(&mut rc);
    assert_eq!(pk, rk, "key sets differ");
    assert!(!pk.is_empty());
    for k in &pk {
        let pd = dump(&mut pc, k);
        let pt = pttl(&mut pc, k);
        let rt = pttl(&mut rc, k);
        let rd = dump(&mut rc, k);
        assert_eq!(pd, rd, "DUMP of {k} differs");
        assert!(pt > 0, "{k} has no TTL on the primary ({pt})");
        assert!(rt > 0, "{k} has no TTL on the replica ({rt})");
        // Same absolute expiry, to the ms (PTTL read one after the other
        // can differ by the time between the two reads).
        let (pe, re) = (pexpiretime(&mut pc, k), pexpiretime(&mut rc, k));
        assert_eq!(pe, re, "absolute expiry of {k}: primary {pe}, replica {re}");
        assert!(
            (pt - rt).abs() <= SLACK,
            "PTTL of {k}: primary {pt}, replica {rt}"
        );
    }
}

fn workload(c: &mut Connection, round: usize) {
    for (i, strategy) in ["fixed", "moving", "sliding"].iter().enumerate() {
        let key = format!("user:{i}");
        for j in 0..4 {
            let cost = ((j + round) % 3).to_string();
            let _ = hit(
                c,
                &key,
                "3/h;10/d;100/w",
                &["STRATEGY", strategy, "COST", &cost],
            );
        }
        // A denied hit and a never-admissible hit in between.
        let _ = hit(c, &key, "3/h;10/d", &["STRATEGY", strategy, "COST", "3"]);
        let _ = hit(c, &key, "3/h", &["STRATEGY", strategy, "COST", "4"]);
        hit(c, "shared", "50/h", &["STRATEGY", strategy]);
        hit(c, "shared", "7/m", &["STRATEGY", strategy, "COST", "2"]);
    }
    // Raising a limit reuses counts.
    hit(c, "user:0", "30/h", &[]);
}

#[test]
fn replica_without_module_holds_identical_keys() {
    let p = Server::start();
    let mut c = p.conn();
    // Some state before the replica exists (sent in the initial sync) ...
    workload(&mut c, 0);
    let r = replica_of(&p, false);
    wait_synced(&p, &r);
    assert_same_data(&p, &r);
    // ... and more streamed afterwards.
    workload(&mut c, 1);
    hit(&mut c, "tmp", "5/h", &["STRATEGY", "moving"]);
    hit(&mut c, "tmp2", "5/h", &[]);
    wait_synced(&p, &r);
    assert_same_data(&p, &r);
    // RL.CLEAR, whole and partial.
    assert_eq!(clear(&mut c, &["tmp"]), 1);
    assert_eq!(clear(&mut c, &["user:1", "3/h", "STRATEGY", "moving"]), 1);
    assert_eq!(
        clear(&mut c, &["user:2", "10/d;100/w", "STRATEGY", "sliding"]),
        2
    );
    assert_eq!(clear(&mut c, &["shared", "7/m", "STRATEGY", "fixed"]), 1);
    hit(&mut c, "tmp2", "5/h", &[]);
    assert_eq!(clear(&mut c, &["tmp2", "5/h"]), 1);
    wait_synced(&p, &r);
    assert_same_data(&p, &r);
    let mut rc = r.conn();
    assert!(!exists(&mut rc, "tmp"));
    assert!(!exists(&mut rc, "tmp2"));
    // The replica without the module did not see RL.* commands: its log
    // would show an unknown command. Check it holds the data natively.
    let t: String = redis::cmd("TYPE").arg("user:0").query(&mut rc).unwrap();
    assert!(t == "string" || t == "hash", "type {t}");
}

#[test]
fn replica_with_module_serves_reads_and_refuses_writes() {
    let p = Server::start();
    let r = replica_of(&p, true);
    let mut c = p.conn();
    for strategy in ["fixed", "moving", "sliding"] {
        let key = format!("k-{strategy}");
        for _ in 0..3 {
            hit(&mut c, &key, "10/h", &["STRATEGY", strategy]);
        }
    }
    wait_synced(&p, &r);
    let mut rc = r.conn();
    for strategy in ["fixed", "moving", "sliding"] {
        let key = format!("k-{strategy}");
        let o = ["STRATEGY", strategy];
        let on_replica = test(&mut rc, &key, "10/h", &o);
        let on_primary = test(&mut c, &key, "10/h", &o);
        assert_eq!(&on_replica[..3], &[1, 10, 6], "{strategy}");
        assert_eq!(&on_replica[..3], &on_primary[..3]);
        assert!((on_replica[3] - on_primary[3]).abs() <= 100);
        let st = stats(&mut rc, &key, "10/h", &o);
        assert_eq!(st[0].remaining, 7, "{strategy}");
        let mut rc3 = r.conn3();
        assert_eq!(stats(&mut rc3, &key, "10/h", &o)[0].remaining, 7);
        for args in [
            vec!["RL.HIT", key.as_str(), "10/h", "STRATEGY", strategy],
            vec![
                "RL.HIT",
                key.as_str(),
                "10/h",
                "STRATEGY",
                strategy,
                "COST",
                "0",
            ],
            vec!["RL.CLEAR", key.as_str()],
            vec!["RL.CLEAR", key.as_str(), "10/h", "STRATEGY", strategy],
        ] {
            let e = err(&mut rc, &args);
            assert!(e.starts_with("READONLY"), "{args:?} on a replica: {e}");
        }
        assert_eq!(stats(&mut rc, &key, "10/h", &o)[0].remaining, 7);
    }
}

#[test]
fn promoted_replica_continues_the_counts() {
    let p = Server::start();
    let r = replica_of(&p, true);
    let mut c = p.conn();
    for strategy in ["fixed", "moving", "sliding"] {
        for _ in 0..4 {
            hit(&mut c, strategy, "5/h", &["STRATEGY", strategy]);
        }
    }
    wait_synced(&p, &r);
    drop(c);
    drop(p);
    let mut rc = r.conn();
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut rc)
        .unwrap();
    for strategy in ["fixed", "moving", "sliding"] {
        let o = ["STRATEGY", strategy];
        let x = hit(&mut rc, strategy, "5/h", &o);
        assert_eq!(&x[..3], &[1, 5, 0], "{strategy}");
        let x = hit(&mut rc, strategy, "5/h", &o);
        assert_eq!(&x[..3], &[0, 5, 0], "{strategy}");
    }
}

#[test]
fn chained_replication_through_a_replica_without_module() {
    // primary (module) -> replica (no module) -> sub-replica (module):
    // the sub-replica can evaluate the state it received.
    let p = Server::start();
    let mid = replica_of(&p, false);
    let sub = replica_of(&mid, true);
    let mut c = p.conn();
    hit(&mut c, "k", "4/h", &["COST", "3"]);
    hit(&mut c, "k", "4/h", &["STRATEGY", "sliding", "COST", "2"]);
    wait_synced(&p, &mid);
    wait_synced(&mid, &sub);
    let mut sc = sub.conn();
    assert_eq!(stats(&mut sc, "k", "4/h", &[])[0].remaining, 1);
    assert_eq!(
        stats(&mut sc, "k", "4/h", &["STRATEGY", "sliding"])[0].remaining,
        2
    );
    assert_eq!(dump(&mut sc, "k"), dump(&mut c, "k"));
}

#[test]
fn hits_inside_multi_and_scripts_replicate_as_effects() {
    let p = Server::start();
    let r = replica_of(&p, false);
    let mut c = p.conn();
    let _: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("RL.HIT")
        .arg("m")
        .arg("5/h")
        .cmd("RL.HIT")
        .arg("m")
        .arg("5/h")
        .arg("STRATEGY")
        .arg("moving")
        .cmd("RL.HIT")
        .arg("m2")
        .arg("5/h")
        .arg("STRATEGY")
        .arg("sliding")
        .cmd("RL.CLEAR")
        .arg("m2")
        .cmd("RL.HIT")
        .arg("m3")
        .arg("1/h;1/d")
        .query(&mut c)
        .unwrap();
    let v: Value = redis::cmd("EVAL")
        .arg(
            "local a = redis.call('RL.HIT', KEYS[1], '3/h', 'STRATEGY', 'sliding') \
             redis.call('RL.HIT', KEYS[1], '3/h', 'STRATEGY', 'moving', 'COST', '2') \
             redis.call('RL.HIT', KEYS[2], '1/m') \
             redis.call('RL.CLEAR', KEYS[2]) \
             return a",
        )
        .arg(2)
        .arg("lua")
        .arg("lua2")
        .query(&mut c)
        .unwrap();
    assert_eq!(five(v, "EVAL"), [1, 3, 2, 2 * HOUR, 0]);
    wait_synced(&p, &r);
    assert_same_data(&p, &r);
    let mut rc = r.conn();
    assert!(!exists(&mut rc, "m2"));
    assert!(!exists(&mut rc, "lua2"));
}

#[test]
fn other_databases_replicate_to_the_same_database() {
    let p = Server::start();
    let r = replica_of(&p, false);
    let client = redis::Client::open(format!("{}3", p.url())).unwrap();
    let mut c3 = client.get_connection().unwrap();
    hit(&mut c3, "k", "5/h", &["STRATEGY", "moving"]);
    hit(&mut c3, "k", "5/h", &[]);
    let mut c0 = p.conn();
    hit(&mut c0, "k0", "5/h", &[]);
    wait_synced(&p, &r);
    let rclient = redis::Client::open(format!("{}3", r.url())).unwrap();
    let mut r3 = rclient.get_connection().unwrap();
    assert_eq!(dump(&mut r3, "k"), dump(&mut c3, "k"));
    assert_eq!(pexpiretime(&mut r3, "k"), pexpiretime(&mut c3, "k"));
    assert!(!exists(&mut r3, "k0"));
    let mut r0 = r.conn();
    assert!(!exists(&mut r0, "k"));
    assert_eq!(dump(&mut r0, "k0"), dump(&mut c0, "k0"));
}
