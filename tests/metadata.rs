//! Section 9: command metadata (COMMAND INFO / DOCS / GETKEYS, key specs,
//! ACL with read-only key permissions) and MODULE LIST.

mod common;
use common::*;

fn arr(v: &Value) -> &Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Set(a) => a,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// A RESP2 flat map (or a RESP3 map) as (name, value) pairs.
fn flat(v: &Value) -> Vec<(String, Value)> {
    stat_fields(v)
}

fn field<'a>(pairs: &'a [(String, Value)], name: &str) -> &'a Value {
    &pairs
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no field {name:?} in {pairs:?}"))
        .1
}

fn strings(v: &Value) -> Vec<String> {
    arr(v).iter().map(to_string).collect()
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) | Value::Set(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Map(m) => m.iter().for_each(|(k, x)| {
            collect_strings(k, out);
            collect_strings(x, out)
        }),
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => {
            out.push(to_string(v))
        }
        _ => {}
    }
}

fn command_info(c: &mut Connection, name: &str) -> Vec<Value> {
    let v = raw(c, &["COMMAND", "INFO", name]).unwrap();
    let outer = arr(&v);
    assert_eq!(outer.len(), 1);
    match &outer[0] {
        Value::Nil => panic!("COMMAND INFO {name}: unknown command"),
        info => arr(info).clone(),
    }
}

#[test]
fn command_info_arity_flags_keys() {
    let s = Server::start();
    let mut c = s.conn();
    for (name, arity, must, must_not) in [
        ("rl.hit", -3, vec!["write", "denyoom"], vec!["readonly"]),
        ("rl.test", -3, vec!["readonly"], vec!["write", "denyoom"]),
        ("rl.stats", -3, vec!["readonly"], vec!["write", "denyoom"]),
        ("rl.clear", -2, vec!["write"], vec!["readonly", "denyoom"]),
        (
            "rl.refund",
            -3,
            vec!["write"],
            vec!["readonly", "denyoom", "fast"],
        ),
        (
            "rl.acquire",
            5,
            vec!["write", "denyoom"],
            vec!["readonly", "fast"],
        ),
        (
            "rl.release",
            3,
            vec!["write"],
            vec!["readonly", "denyoom", "fast"],
        ),
    ] {
        let info = command_info(&mut c, name);
        assert_eq!(to_string(&info[0]).to_lowercase(), name);
        assert_eq!(to_i64(&info[1]), arity, "{name} arity");
        let flags = strings(&info[2]);
        for f in &must {
            assert!(
                flags.iter().any(|x| x == f),
                "{name}: flag {f} missing from {flags:?}"
            );
        }
        for f in &must_not {
            assert!(
                !flags.iter().any(|x| x == f),
                "{name}: unexpected flag {f} in {flags:?}"
            );
        }
        assert_eq!(
            (to_i64(&info[3]), to_i64(&info[4]), to_i64(&info[5])),
            (1, 1, 1),
            "{name}: first, last, step"
        );
    }
    // Upper case lookup works too.
    let info = command_info(&mut c, "RL.HIT");
    assert_eq!(to_i64(&info[1]), -3);
}

#[test]
fn key_specs() {
    let s = Server::start();
    let mut c = s.conn();
    for (name, access) in [
        ("rl.hit", "RW"),
        ("rl.clear", "RW"),
        ("rl.refund", "RW"),
        ("rl.acquire", "RW"),
        ("rl.release", "RW"),
        ("rl.test", "RO"),
        ("rl.stats", "RO"),
    ] {
        let info = command_info(&mut c, name);
        assert!(
            info.len() >= 9,
            "{name}: COMMAND INFO has no key specs: {info:?}"
        );
        let specs = arr(&info[8]);
        assert_eq!(specs.len(), 1, "{name}: one key spec expected: {specs:?}");
        let spec = flat(&specs[0]);
        let flags = strings(field(&spec, "flags"));
        assert!(
            flags.iter().any(|f| f == access),
            "{name}: {access} missing from {flags:?}"
        );
        let other = if access == "RW" { "RO" } else { "RW" };
        assert!(
            !flags.iter().any(|f| f == other),
            "{name}: {other} in {flags:?}"
        );
        if access == "RO" {
            for f in ["INSERT", "DELETE", "UPDATE", "OW", "RM"] {
                assert!(!flags.iter().any(|x| x == f), "{name}: {f} in {flags:?}");
            }
        }
        let bs = flat(field(&spec, "begin_search"));
        assert_eq!(to_string(field(&bs, "type")), "index", "{name}");
        let bs_spec = flat(field(&bs, "spec"));
        assert_eq!(to_i64(field(&bs_spec, "index")), 1, "{name}");
        let fk = flat(field(&spec, "find_keys"));
        assert_eq!(to_string(field(&fk, "type")), "range", "{name}");
        let fk_spec = flat(field(&fk, "spec"));
        assert_eq!(to_i64(field(&fk_spec, "lastkey")), 0, "{name}");
        assert_eq!(to_i64(field(&fk_spec, "keystep")), 1, "{name}");
        assert_eq!(to_i64(field(&fk_spec, "limit")), 0, "{name}");
    }
}

#[test]
fn command_docs() {
    let s = Server::start();
    let mut c = s.conn();
    for name in ["rl.hit", "rl.test", "rl.stats", "rl.clear"] {
        let v = raw(&mut c, &["COMMAND", "DOCS", name]).unwrap();
        let top = flat(&v);
        assert_eq!(top.len(), 1, "COMMAND DOCS {name}: {v:?}");
        assert_eq!(top[0].0.to_lowercase(), name);
        let doc = flat(&top[0].1);
        let summary = to_string(field(&doc, "summary"));
        assert!(!summary.trim().is_empty(), "{name}: empty summary");
        let args = arr(field(&doc, "arguments"));
        assert!(!args.is_empty(), "{name}: no arguments documented");
        let arg_fields: Vec<Vec<(String, Value)>> = args.iter().map(flat).collect();
        let first = &arg_fields[0];
        assert_eq!(
            to_string(field(first, "type")),
            "key",
            "{name}: first argument is the key"
        );
        let names: Vec<String> = arg_fields
            .iter()
            .map(|a| to_string(field(a, "name")).to_lowercase())
            .collect();
        if name != "rl.clear" {
            assert!(
                args.len() >= 2,
                "{name}: key and limits at least: {names:?}"
            );
        }
        let mut words = Vec::new();
        collect_strings(field(&doc, "arguments"), &mut words);
        let all = words.join(" ").to_lowercase();
        if name != "rl.clear" {
            assert!(
                all.contains("limits"),
                "{name}: no 'limits' argument in {all}"
            );
            assert!(
                all.contains("strategy"),
                "{name}: no STRATEGY option in {all}"
            );
        }
        if name == "rl.hit" || name == "rl.test" {
            assert!(all.contains("cost"), "{name}: no COST option in {all}");
        }
        if name == "rl.clear" {
            // `[limits [STRATEGY s]]`: one optional block, STRATEGY inside.
            assert_eq!(args.len(), 2, "{name}: {names:?}");
            let block = &arg_fields[1];
            assert_eq!(to_string(field(block, "type")), "block", "{name}");
            let inner: Vec<String> = arr(field(block, "arguments"))
                .iter()
                .map(|a| to_string(field(&flat(a), "name")))
                .collect();
            assert_eq!(inner, ["limits", "strategy"], "{name}");
        }
    }
}

#[test]
fn command_getkeys() {
    let s = Server::start();
    let mut c = s.conn();
    for args in [
        vec!["RL.HIT", "mykey", "10/s"],
        vec!["RL.HIT", "mykey", "10/s", "STRATEGY", "moving", "COST", "3"],
        vec!["RL.TEST", "mykey", "10/s"],
        vec!["RL.STATS", "mykey", "10/s;1/m"],
        vec!["RL.CLEAR", "mykey"],
        vec!["RL.CLEAR", "mykey", "10/s"],
    ] {
        let mut full = vec!["COMMAND", "GETKEYS"];
        full.extend(&args);
        let v = raw(&mut c, &full).unwrap();
        assert_eq!(strings(&v), vec!["mykey".to_string()], "{args:?}");
    }
}

#[test]
fn command_list_filter_by_module() {
    let s = Server::start();
    let mut c = s.conn();
    let v = raw(
        &mut c,
        &["COMMAND", "LIST", "FILTERBY", "MODULE", "ratelimit"],
    )
    .unwrap();
    let mut names: Vec<String> = strings(&v).into_iter().map(|s| s.to_lowercase()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "rl.acquire",
            "rl.clear",
            "rl.hit",
            "rl.refund",
            "rl.release",
            "rl.stats",
            "rl.test"
        ]
    );
}

#[test]
fn read_only_key_acl_user() {
    let s = Server::start();
    let mut admin = s.conn();
    hit(&mut admin, "k", "5/h", &[]);
    raw(
        &mut admin,
        &["ACL", "SETUSER", "ro", "on", "nopass", "%R~*", "+@all"],
    )
    .unwrap();
    raw(
        &mut admin,
        &[
            "ACL", "SETUSER", "other", "on", "nopass", "~other:*", "+@all",
        ],
    )
    .unwrap();
    let mut c = s.conn();
    raw(&mut c, &["AUTH", "ro", "x"]).unwrap();
    assert_eq!(&test(&mut c, "k", "5/h", &[])[..3], &[1, 5, 3]);
    assert_eq!(stats(&mut c, "k", "5/h", &[])[0].remaining, 4);
    for args in [
        vec!["RL.HIT", "k", "5/h"],
        vec!["RL.HIT", "k", "5/h", "COST", "0"],
        vec!["RL.CLEAR", "k"],
        vec!["RL.CLEAR", "k", "5/h"],
    ] {
        let e = err(&mut c, &args);
        assert!(
            e.contains("NOPERM"),
            "{args:?} by a read-only-keys user: {e}"
        );
    }
    assert_eq!(
        stats(&mut admin, "k", "5/h", &[])[0].remaining,
        4,
        "nothing changed"
    );
    // A user limited to other keys cannot even read this one.
    let mut o = s.conn();
    raw(&mut o, &["AUTH", "other", "x"]).unwrap();
    for args in [
        vec!["RL.TEST", "k", "5/h"],
        vec!["RL.STATS", "k", "5/h"],
        vec!["RL.HIT", "k", "5/h"],
    ] {
        let e = err(&mut o, &args);
        assert!(e.contains("NOPERM"), "{args:?}: {e}");
    }
    assert_eq!(hit(&mut o, "other:1", "5/h", &[]), [1, 5, 4, HOUR, 0]);
}

#[test]
fn module_list_shows_ratelimit() {
    let s = Server::start();
    let mut c = s.conn();
    let v = raw(&mut c, &["MODULE", "LIST"]).unwrap();
    let mods = arr(&v);
    let names: Vec<String> = mods
        .iter()
        .map(|m| to_string(field(&flat(m), "name")))
        .collect();
    assert!(
        names.iter().any(|n| n == "ratelimit"),
        "MODULE LIST: {names:?}"
    );
}

#[test]
fn deny_oom_applies_to_rl_hit_only() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "5/h", &[]);
    raw(&mut c, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).unwrap();
    raw(&mut c, &["CONFIG", "SET", "maxmemory", "1"]).unwrap();
    let e = err(&mut c, &["RL.HIT", "k", "5/h"]);
    assert!(e.starts_with("OOM"), "RL.HIT over maxmemory: {e}");
    assert_eq!(&test(&mut c, "k", "5/h", &[])[..3], &[1, 5, 3]);
    assert_eq!(stats(&mut c, "k", "5/h", &[])[0].remaining, 4);
    assert_eq!(clear(&mut c, &["k", "5/h"]), 1);
    raw(&mut c, &["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    assert_eq!(hit(&mut c, "k", "5/h", &[]), [1, 5, 4, HOUR, 0]);
}

#[test]
fn read_only_scripts_may_test_but_not_hit() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "5/h", &[]);
    let v: Value = redis::cmd("EVAL_RO")
        .arg("return redis.call('RL.TEST', KEYS[1], '5/h')")
        .arg(1)
        .arg("k")
        .query(&mut c)
        .unwrap();
    assert_eq!(&five(v, "EVAL_RO RL.TEST")[..3], &[1, 5, 3]);
    let v: Value = redis::cmd("EVAL_RO")
        .arg("return redis.call('RL.STATS', KEYS[1], '5/h')")
        .arg(1)
        .arg("k")
        .query(&mut c)
        .unwrap();
    assert!(matches!(v, Value::Array(_)), "{v:?}");
    for cmd in ["RL.HIT", "RL.CLEAR"] {
        let r: RedisResult<Value> = redis::cmd("EVAL_RO")
            .arg(format!("return redis.call('{cmd}', KEYS[1], '5/h')"))
            .arg(1)
            .arg("k")
            .query(&mut c);
        let e = err_text(&r.expect_err("a write command in a read-only script"));
        assert!(e.to_lowercase().contains("write"), "{cmd} in EVAL_RO: {e}");
    }
    assert_eq!(stats(&mut c, "k", "5/h", &[])[0].remaining, 4);
}
