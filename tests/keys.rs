//! Section 6: keys and data: one native key per `key`, always a TTL,
//! WRONGTYPE on foreign keys (left untouched), DUMP/RESTORE keep the state.

mod common;
use common::*;

const W: i64 = HOUR;

#[test]
fn one_native_key_per_key() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "user:1", "10/s;100/m;1000/h", &[]);
    hit(&mut c, "user:1", "10/s;100/m", &["STRATEGY", "moving"]);
    hit(&mut c, "user:1", "10/s;5/d", &["STRATEGY", "sliding"]);
    hit(&mut c, "user:2", "10/s", &[]);
    assert_eq!(
        keys(&mut c),
        vec!["user:1".to_string(), "user:2".to_string()]
    );
    for k in ["user:1", "user:2"] {
        let t: String = redis::cmd("TYPE").arg(k).query(&mut c).unwrap();
        assert!(
            t == "string" || t == "hash",
            "{k} has type {t}: must be native"
        );
    }
}

#[test]
fn ttl_always_set_and_matches_reset() {
    let s = Server::start();
    let mut c = s.conn();
    for (strategy, mult) in [("fixed", 1), ("moving", 1), ("sliding", 2)] {
        let key = format!("k-{strategy}");
        let o = ["STRATEGY", strategy];
        let r = hit(&mut c, &key, "10/m", &o);
        let t = pttl(&mut c, &key);
        assert!(t > 0, "{strategy}: no TTL ({t})");
        assert!(t <= mult * MINUTE, "{strategy}: PTTL {t} > {mult} W");
        assert!(
            t <= r[3] && t >= r[3] - SLACK,
            "{strategy}: PTTL {t} vs reset {r:?}"
        );
        // After more hits and a denied one, still a TTL.
        hit(&mut c, &key, "10/m", &["STRATEGY", strategy, "COST", "9"]);
        hit(&mut c, &key, "10/m", &o);
        let t = pttl(&mut c, &key);
        assert!(t > 0 && t <= mult * MINUTE, "{strategy}: PTTL {t}");
    }
}

#[test]
fn an_admitted_hit_restores_a_ttl_someone_changed() {
    // The module sets the TTL on every write (small values without reading
    // it first; large logs after comparing it): a PERSIST or a far PEXPIRE
    // by someone else lasts only until the next admitted hit.
    let s = Server::start();
    let mut c = s.conn();
    for (strategy, limit, fill) in [
        ("fixed", "1000/m", 1),
        ("sliding", "1000/m", 1),
        ("gcra", "1000/m", 1),
        ("moving", "1000/m", 1),
        // > 128 bytes: patched in place through DMA, not rewritten whole.
        ("moving", "1000/m", 200),
    ] {
        let key = format!("k-{strategy}-{fill}");
        let o = ["STRATEGY", strategy];
        for _ in 0..fill {
            hit(&mut c, &key, limit, &o);
        }
        if fill > 1 {
            let len: i64 = redis::cmd("STRLEN").arg(&key).query(&mut c).unwrap();
            assert!(len > 128, "{key}: {len} bytes, not a large log");
        }
        let _: i64 = redis::cmd("PERSIST").arg(&key).query(&mut c).unwrap();
        assert_eq!(pttl(&mut c, &key), -1, "{key}: PERSIST did not apply");
        let r = hit(&mut c, &key, limit, &o);
        assert_eq!(r[0], 1, "{key}: {r:?}");
        let t = pttl(&mut c, &key);
        assert!(
            t > 0 && t <= 2 * MINUTE,
            "{key}: PTTL {t} after PERSIST and a hit"
        );
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(&key)
            .arg(10 * DAY)
            .query(&mut c)
            .unwrap();
        hit(&mut c, &key, limit, &o);
        let t = pttl(&mut c, &key);
        assert!(
            t > 0 && t <= 2 * MINUTE,
            "{key}: PTTL {t} after PEXPIRE 10 d and a hit"
        );
    }
}

#[test]
fn ttl_covers_the_longest_limit() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "a", "10/s;10/h", &[]);
    assert_near(pttl(&mut c, "a"), W, "PTTL");
    // A later hit on a shorter window must not shorten the TTL.
    hit(&mut c, "b", "10/h", &[]);
    hit(&mut c, "b", "10/s", &["STRATEGY", "moving"]);
    hit(&mut c, "b", "10/s", &["STRATEGY", "sliding"]);
    hit(&mut c, "b", "10/s", &[]);
    assert_near(pttl(&mut c, "b"), W, "PTTL after shorter windows");
    // A longer one extends it.
    hit(&mut c, "b", "10/d", &["STRATEGY", "moving"]);
    assert_near(pttl(&mut c, "b"), DAY, "PTTL after a longer window");
    // Sliding: up to 2W.
    hit(&mut c, "c", "10/h", &["STRATEGY", "sliding"]);
    assert_near(pttl(&mut c, "c"), 2 * W, "sliding PTTL");
}

#[test]
fn dump_restore_keeps_state() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "src", "5/h", &["COST", "2"]);
    hit(&mut c, "src", "5/h", &["STRATEGY", "moving", "COST", "3"]);
    hit(&mut c, "src", "5/h", &["STRATEGY", "sliding", "COST", "4"]);
    let payload = dump(&mut c, "src").unwrap();
    let t = pttl(&mut c, "src");
    let _: () = redis::cmd("RESTORE")
        .arg("copy")
        .arg(t)
        .arg(&payload)
        .query(&mut c)
        .unwrap();
    assert_eq!(dump(&mut c, "copy").unwrap(), payload);
    for (strategy, rem) in [("fixed", 3), ("moving", 2), ("sliding", 1)] {
        let a = stats(&mut c, "src", "5/h", &["STRATEGY", strategy]);
        let b = stats(&mut c, "copy", "5/h", &["STRATEGY", strategy]);
        assert_eq!(a[0].remaining, rem, "{strategy}");
        assert_eq!(b[0].remaining, rem, "{strategy}");
        assert!(
            (a[0].reset_after_ms - b[0].reset_after_ms).abs() <= 100,
            "{a:?} {b:?}"
        );
    }
    let r = hit(&mut c, "copy", "5/h", &["STRATEGY", "sliding"]);
    assert_eq!(&r[..3], &[1, 5, 0]);
    // Restored without a TTL: the next write sets one again.
    let _: () = redis::cmd("RESTORE")
        .arg("nottl")
        .arg(0)
        .arg(&payload)
        .query(&mut c)
        .unwrap();
    assert_eq!(pttl(&mut c, "nottl"), -1);
    assert_eq!(stats(&mut c, "nottl", "5/h", &[])[0].remaining, 3);
    let r = hit(&mut c, "nottl", "5/h", &[]);
    assert_eq!(&r[..3], &[1, 5, 2]);
    let t = pttl(&mut c, "nottl");
    assert!(
        t > 0 && t <= 2 * W,
        "PTTL after a hit on a key without TTL: {t}"
    );
    // Same after PERSIST.
    let _: i64 = redis::cmd("PERSIST").arg("src").query(&mut c).unwrap();
    hit(&mut c, "src", "5/h", &["STRATEGY", "moving"]);
    let t = pttl(&mut c, "src");
    assert!(t > 0 && t <= 2 * W, "PTTL after PERSIST and a hit: {t}");
    // RENAME keeps it too.
    let _: () = redis::cmd("RENAME")
        .arg("copy")
        .arg("moved")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        stats(&mut c, "moved", "5/h", &["STRATEGY", "sliding"])[0].remaining,
        0
    );
}

/// Create a foreign key of each kind; returns (key, description).
fn make_foreign(c: &mut Connection) -> Vec<(String, &'static str)> {
    let cmds: Vec<(&str, &'static str, Vec<&str>)> = vec![
        ("f:list", "list", vec!["RPUSH", "f:list", "a", "b"]),
        ("f:hash", "hash", vec!["HSET", "f:hash", "field", "value"]),
        ("f:set", "set", vec!["SADD", "f:set", "a", "b"]),
        ("f:zset", "zset", vec!["ZADD", "f:zset", "1", "a"]),
        (
            "f:stream",
            "stream",
            vec!["XADD", "f:stream", "1-1", "f", "v"],
        ),
        ("f:hello", "string hello", vec!["SET", "f:hello", "hello"]),
        ("f:five", "string 5", vec!["SET", "f:five", "5"]),
        (
            "f:big",
            "long string",
            vec![
                "SET",
                "f:big",
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            ],
        ),
        (
            "f:json",
            "json string",
            vec!["SET", "f:json", "{\"limits\":[1,2,3]}"],
        ),
        (
            "f:ttl",
            "string with TTL",
            vec!["SET", "f:ttl", "v", "PX", "3600000"],
        ),
    ];
    let mut out = Vec::new();
    for (k, what, cmd) in cmds {
        raw(c, &cmd).unwrap();
        out.push((k.to_string(), what));
    }
    out
}

fn assert_untouched(
    c: &mut Connection,
    key: &str,
    before: &Option<Vec<u8>>,
    ttl_before: i64,
    what: &str,
) {
    assert_eq!(&dump(c, key), before, "{what}: the foreign key was changed");
    let t = pttl(c, key);
    if ttl_before < 0 {
        assert_eq!(t, ttl_before, "{what}: TTL changed");
    } else {
        assert!(
            t > 0 && t <= ttl_before,
            "{what}: TTL changed ({ttl_before} -> {t})"
        );
    }
}

#[test]
fn wrongtype_for_every_command_and_key_left_untouched() {
    let s = Server::start();
    let mut c = s.conn();
    let foreign = make_foreign(&mut c);
    let calls: Vec<Vec<&str>> = vec![
        vec!["RL.HIT", "KEY", "10/s"],
        vec!["RL.HIT", "KEY", "10/s", "COST", "0"],
        vec!["RL.HIT", "KEY", "10/s", "COST", "100"],
        vec!["RL.HIT", "KEY", "10/s;5/h", "STRATEGY", "moving"],
        vec!["RL.HIT", "KEY", "10/s", "STRATEGY", "sliding"],
        vec!["RL.TEST", "KEY", "10/s"],
        vec!["RL.TEST", "KEY", "10/s", "COST", "0", "STRATEGY", "moving"],
        vec!["RL.STATS", "KEY", "10/s"],
        vec!["RL.STATS", "KEY", "10/s", "STRATEGY", "sliding"],
        vec!["RL.CLEAR", "KEY"],
        vec!["RL.CLEAR", "KEY", "10/s"],
        vec!["RL.CLEAR", "KEY", "10/s", "STRATEGY", "moving"],
    ];
    for (key, what) in &foreign {
        let before = dump(&mut c, key);
        let ttl_before = pttl(&mut c, key);
        for call in &calls {
            let args: Vec<&str> = call
                .iter()
                .map(|a| if *a == "KEY" { key.as_str() } else { *a })
                .collect();
            let e = err(&mut c, &args);
            assert_eq!(e, WRONGTYPE, "{what}: {args:?}");
            assert_untouched(
                &mut c,
                key,
                &before,
                ttl_before,
                &format!("{what} after {args:?}"),
            );
        }
    }
    assert_eq!(keys(&mut c).len(), foreign.len(), "no key was added");
}

#[test]
fn wrongtype_for_empty_and_binary_strings() {
    let s = Server::start();
    let mut c = s.conn();
    let values: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("zero-byte", vec![0u8]),
        ("binary", (0u8..=255).collect()),
        ("ones", vec![0xffu8; 64]),
    ];
    for (name, v) in &values {
        let _: () = redis::cmd("SET")
            .arg(*name)
            .arg(v.as_slice())
            .query(&mut c)
            .unwrap();
        let before = dump(&mut c, name);
        for call in [
            vec!["RL.HIT", name, "10/s"],
            vec!["RL.TEST", name, "10/s"],
            vec!["RL.STATS", name, "10/s"],
            vec!["RL.CLEAR", name],
            vec!["RL.CLEAR", name, "10/s"],
        ] {
            assert_eq!(err(&mut c, &call), WRONGTYPE, "{name}: {call:?}");
            assert_eq!(dump(&mut c, name), before, "{name}: changed by {call:?}");
        }
    }
}

#[test]
fn wrongtype_for_a_string_created_by_append_to_state() {
    // State with garbage appended must not silently decode into something else.
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "5/h", &[]);
    let t: String = redis::cmd("TYPE").arg("k").query(&mut c).unwrap();
    if t != "string" {
        return; // hash-based state: APPEND does not apply.
    }
    let _: i64 = redis::cmd("APPEND")
        .arg("k")
        .arg("garbage!")
        .query(&mut c)
        .unwrap();
    let before = dump(&mut c, "k");
    let r = raw(&mut c, &["RL.HIT", "k", "5/h"]);
    match r {
        Err(e) => assert_eq!(err_text(&e), WRONGTYPE),
        Ok(v) => panic!("RL.HIT on state with trailing garbage replied {v:?}"),
    }
    assert_eq!(dump(&mut c, "k"), before);
}

#[test]
fn rl_commands_inside_multi_and_lua_see_wrongtype_too() {
    let s = Server::start();
    let mut c = s.conn();
    let _: () = redis::cmd("SET")
        .arg("s")
        .arg("hello")
        .query(&mut c)
        .unwrap();
    let r: RedisResult<Value> = redis::cmd("EVAL")
        .arg("return redis.pcall('RL.HIT', KEYS[1], '10/s')")
        .arg(1)
        .arg("s")
        .query(&mut c);
    match r {
        Err(e) => assert_eq!(err_text(&e), WRONGTYPE),
        Ok(v) => panic!("expected WRONGTYPE, got {v:?}"),
    }
    // And a script can use the commands normally.
    let v: Value = redis::cmd("EVAL")
        .arg("return redis.call('RL.HIT', KEYS[1], '10/h')")
        .arg(1)
        .arg("lua")
        .query(&mut c)
        .unwrap();
    assert_eq!(five(v, "lua"), [1, 10, 9, W, 0]);
}

#[test]
fn moving_window_memory_grows_with_hits_not_cost() {
    let s = Server::start();
    let mut c = s.conn();
    let o = |cost: &'static str| ["STRATEGY", "moving", "COST", cost];
    hit(&mut c, "one", "4294967295/h", &o("1"));
    let t: String = redis::cmd("TYPE").arg("one").query(&mut c).unwrap();
    if t != "string" {
        return; // size measured with STRLEN only
    }
    hit(&mut c, "big", "4294967295/h", &o("500"));
    hit(&mut c, "max", "4294967295/h", &o("4294967295"));
    // Hits in distinct milliseconds (hits in the same ms may share an entry).
    for _ in 0..20 {
        hit(&mut c, "many", "4294967295/h", &o("1"));
        sleep_ms(2);
    }
    let size =
        |c: &mut Connection, k: &str| -> i64 { redis::cmd("STRLEN").arg(k).query(c).unwrap() };
    let (one, big, max, many) = (
        size(&mut c, "one"),
        size(&mut c, "big"),
        size(&mut c, "max"),
        size(&mut c, "many"),
    );
    assert!(
        big <= one + 8,
        "a hit of cost 500 is one entry: {one} vs {big} bytes"
    );
    assert!(
        max <= one + 8,
        "a hit of cost 2^32-1 is one entry: {one} vs {max} bytes"
    );
    assert!(
        many >= one + 19,
        "20 hits in distinct ms are 20 entries: {many} vs {one} bytes"
    );
}

#[test]
fn an_admitted_hit_invalidates_watch() {
    let s = Server::start();
    let mut c = s.conn();
    let mut other = s.conn();
    hit(&mut c, "k", "10/h", &[]);
    // Reads and denied hits leave WATCH alone ...
    raw(&mut c, &["WATCH", "k"]).unwrap();
    test(&mut other, "k", "10/h", &[]);
    stats(&mut other, "k", "10/h", &[]);
    raw(&mut c, &["MULTI"]).unwrap();
    raw(&mut c, &["PING"]).unwrap();
    let v = raw(&mut c, &["EXEC"]).unwrap();
    assert!(matches!(v, Value::Array(_)), "EXEC aborted by reads: {v:?}");
    // ... an admitted hit from another client aborts the transaction.
    raw(&mut c, &["WATCH", "k"]).unwrap();
    hit(&mut other, "k", "10/h", &[]);
    raw(&mut c, &["MULTI"]).unwrap();
    raw(&mut c, &["PING"]).unwrap();
    let v = raw(&mut c, &["EXEC"]).unwrap();
    assert_eq!(
        v,
        Value::Nil,
        "EXEC must fail after the watched key changed"
    );
}
