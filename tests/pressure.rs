//! Memory pressure: with `maxmemory` reached under `noeviction`, RL.HIT
//! (declared `deny-oom`) gets Redis' OOM error and writes nothing, also
//! inside MULTI and scripts; RL.TEST and RL.STATS still answer, and
//! RL.CLEAR (a `write` command that only frees memory) still works.

mod common;

use common::*;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn used_memory(con: &mut Connection) -> i64 {
    info(con, "memory")["used_memory"].parse().unwrap()
}

/// Fills the server with filler strings until a write is refused, then
/// puts `maxmemory` just below what is used. (A refused write frees its own
/// arguments, which can bring memory back under the limit by a few bytes:
/// lowering the limit makes "reached" hold for every following command.)
fn fill_to_maxmemory(con: &mut Connection) -> usize {
    let used = used_memory(con);
    raw(con, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).unwrap();
    raw(
        con,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            &(used + 4 * 1024 * 1024).to_string(),
        ],
    )
    .unwrap();
    let chunk = "x".repeat(64 * 1024);
    for i in 0.. {
        match raw(con, &["SET", &format!("filler:{i}"), &chunk]) {
            Ok(_) => assert!(i < 1000, "maxmemory never reached"),
            Err(e) => {
                assert_eq!(err_text(&e), OOM, "SET under maxmemory");
                let used = used_memory(con);
                raw(
                    con,
                    &[
                        "CONFIG",
                        "SET",
                        "maxmemory",
                        &(used - 64 * 1024).to_string(),
                    ],
                )
                .unwrap();
                assert_eq!(err(con, &["SET", "tiny", "1"]), OOM);
                return i;
            }
        }
    }
    unreachable!()
}

#[test]
fn hit_is_refused_and_writes_nothing_when_maxmemory_is_reached() {
    let server = Server::start();
    let mut con = server.conn();
    // State that exists before memory runs out, one key per strategy.
    let strategies = [
        "fixed-window",
        "moving-window",
        "sliding-window-counter",
        "gcra",
    ];
    for s in strategies {
        hit(&mut con, &format!("rl:{s}"), "5/h", &["STRATEGY", s]);
    }
    let before: Vec<(Option<Vec<u8>>, i64, [i64; 5])> = strategies
        .iter()
        .map(|s| {
            let k = format!("rl:{s}");
            (
                dump(&mut con, &k),
                pttl(&mut con, &k),
                test(&mut con, &k, "5/h", &["STRATEGY", s]),
            )
        })
        .collect();
    let offset = server.repl_offset();

    let fillers = fill_to_maxmemory(&mut con);
    assert!(fillers > 0);

    for (i, s) in strategies.iter().enumerate() {
        let k = format!("rl:{s}");
        // RL.HIT: OOM on an existing key, a new key, with COST 0 and in MULTI.
        for (key, opts) in [
            (k.as_str(), vec!["STRATEGY", s]),
            ("rl:new", vec!["STRATEGY", s]),
            (k.as_str(), vec!["STRATEGY", s, "COST", "0"]),
        ] {
            let mut args = vec!["RL.HIT", key, "5/h"];
            args.extend(opts);
            assert_eq!(err(&mut con, &args), OOM, "{args:?}");
        }
        // RL.TEST and RL.STATS still answer, from the state as it was.
        let t = test(&mut con, &k, "5/h", &["STRATEGY", s]);
        let b = before[i].2;
        assert_eq!(t[..3], b[..3], "RL.TEST on {k} under OOM");
        assert_between(t[3], b[3] - 10 * SECOND, b[3], "reset_after_ms");
        assert_eq!(t[2], 3, "{k}: one hit of five used, one more tested");
        let st = stats(&mut con, &k, "5/h;100/d", &["STRATEGY", s]);
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].remaining, 4, "{k}: {st:?}");
        assert_eq!(st[1].remaining, 100, "{k}: {st:?}");
        let t = test(&mut con, "rl:new", "5/h", &["STRATEGY", s]);
        assert_eq!(t[..3], [1, 5, 4]);
    }
    // MULTI: Redis refuses the queued RL.HIT and aborts the transaction.
    raw(&mut con, &["MULTI"]).unwrap();
    assert_eq!(err(&mut con, &["RL.HIT", "rl:new", "5/h"]), OOM);
    let exec = err(&mut con, &["EXEC"]);
    assert!(exec.starts_with("EXECABORT"), "{exec}");
    // A script that calls RL.HIT.
    let script = err(
        &mut con,
        &[
            "EVAL",
            "return redis.call('RL.HIT', KEYS[1], '5/h')",
            "1",
            "rl:new",
        ],
    );
    assert!(script.contains("OOM"), "{script}");

    // Nothing was written: same bytes, same TTL, no new key, nothing
    // propagated.
    for (i, s) in strategies.iter().enumerate() {
        let k = format!("rl:{s}");
        assert_eq!(dump(&mut con, &k), before[i].0, "{k} changed under OOM");
        let t = pttl(&mut con, &k);
        assert!(
            t > 0 && t <= before[i].1,
            "{k}: PTTL {} -> {t}",
            before[i].1
        );
    }
    assert!(!exists(&mut con, "rl:new"));
    assert_eq!(
        server.repl_offset(),
        offset,
        "something was propagated while refusing writes"
    );
    raw(&mut con, &["PING"]).unwrap();

    // RL.CLEAR only frees memory: allowed under OOM.
    assert_eq!(clear(&mut con, &["rl:fixed-window"]), 1);
    assert!(!exists(&mut con, "rl:fixed-window"));
    assert_eq!(
        clear(&mut con, &["rl:moving-window", "5/h", "STRATEGY", "moving"]),
        1
    );

    // Memory back: RL.HIT works again and counts from the state it had.
    raw(&mut con, &["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    let r = hit(&mut con, "rl:gcra", "5/h", &["STRATEGY", "gcra"]);
    assert_eq!(r[..3], [1, 5, 3]);
    let r = hit(&mut con, "rl:new", "5/h", &[]);
    assert_eq!(r[..3], [1, 5, 4]);
}
