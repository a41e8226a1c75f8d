//! Section 8: every bad input gets an error reply, nothing is written, and
//! no input crashes, hangs or leaks memory in the server.

mod common;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[test]
fn error_messages() {
    let s = Server::start();
    let mut c = s.conn();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["RL.HIT", "k", "10/fortnight"],
            "ERR invalid limit '10/fortnight': unknown unit 'fortnight'",
        ),
        (
            vec!["RL.HIT", "k", "10/s", "STRATEGY", "foo"],
            "ERR unknown strategy 'foo'",
        ),
        (
            vec!["RL.HIT", "k", "10/s", "COST", "-5"],
            "ERR COST must be an integer from 0 to 4294967295",
        ),
        (
            vec!["RL.HIT", "k", "10/s", "NOPE"],
            "ERR syntax error near 'NOPE'",
        ),
        (
            vec!["RL.HIT", "k", "10/s", "COST", "1", "COST", "1"],
            "ERR syntax error near 'COST'",
        ),
        (
            vec!["RL.HIT"],
            "ERR wrong number of arguments for 'rl.hit' command",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(err(&mut c, &args), want, "{args:?}");
    }
    assert!(!exists(&mut c, "k"));
}

#[test]
fn nothing_written_when_any_argument_is_invalid() {
    let s = Server::start();
    let mut c = s.conn();
    hit(&mut c, "k", "10/h", &[]);
    let before = dump(&mut c, "k");
    for args in [
        vec!["RL.HIT", "k", "10/h;10/fortnight"],
        vec!["RL.HIT", "k", "10/h;0/m"],
        vec!["RL.HIT", "k", "10/h;20/60m"],
        vec!["RL.HIT", "k", "10/h", "STRATEGY", "foo"],
        vec!["RL.HIT", "k", "10/h", "COST", "x"],
        vec!["RL.HIT", "k", "10/h", "COST", "1", "BOGUS", "1"],
        vec!["RL.HIT", "k", "10/h", "COST", "1", "COST", "1"],
        vec!["RL.HIT", "k", "10/h", "COST"],
        vec!["RL.CLEAR", "k", "10/h", "STRATEGY", "foo"],
        vec!["RL.CLEAR", "k", "10/h;1/fortnight"],
        vec!["RL.CLEAR", "k", "10/h", "COST", "1"],
    ] {
        let e = err(&mut c, &args);
        assert!(e.starts_with("ERR "), "{args:?}: {e}");
        assert_eq!(dump(&mut c, "k"), before, "{args:?} wrote");
        if args[0] == "RL.HIT" {
            let mut fresh = args.clone();
            fresh[1] = "new";
            let e = err(&mut c, &fresh);
            assert!(e.starts_with("ERR "), "{fresh:?}: {e}");
            assert!(!exists(&mut c, "new"), "{fresh:?} created a key");
        }
    }
    assert_eq!(stats(&mut c, "k", "10/h", &[])[0].remaining, 9);
}

#[test]
fn huge_and_malformed_inputs_do_not_hurt_the_server() {
    let s = Server::start();
    let mut c = s.conn();
    let long_limits = "1/s;".repeat(250_000); // 1 MB
    let long_unit = format!("10/{}", "x".repeat(1_000_000));
    let long_number = format!("{}/s", "9".repeat(100_000));
    let long_multiple = format!("10/{}s", "9".repeat(100_000));
    let zeros = format!("{}1/s", "0".repeat(10_000));
    let spaces = format!("10{}/s", " ".repeat(100_000));
    let inputs: Vec<String> = vec![
        long_limits,
        long_unit,
        long_number,
        long_multiple,
        zeros,
        "\u{0}\u{1}\u{2}".into(),
        "10/s\u{0}10/m".into(),
        "١٠/s".into(),  // Arabic-Indic digits
        "10/ｓ".into(), // full-width s
        "10/秒".into(),
        "💥/s".into(),
        "10 per per second".into(),
        "10/s;;;;;;;;".into(),
        "|||".into(),
        "10/s\r\n+OK\r\n".into(),
        "10/\r\n:1\r\n".into(),
    ];
    for limits in &inputs {
        for cmd in ["RL.HIT", "RL.TEST", "RL.STATS", "RL.CLEAR"] {
            let r = raw(&mut c, &[cmd, "k", limits]);
            match r {
                Err(e) => {
                    let t = err_text(&e);
                    assert!(t.starts_with("ERR "), "{cmd}: {t}");
                }
                Ok(v) => {
                    // A leading-zeros amount may be accepted as 1.
                    assert!(
                        limits.starts_with('0'),
                        "{cmd} accepted {:?}: {v:?}",
                        &limits[..limits.len().min(40)]
                    );
                }
            }
        }
    }
    // Spaces are allowed around `/`: many of them are fine too.
    assert_eq!(hit(&mut c, "sp", &spaces, &[]), [1, 10, 9, 1000, 0]);
    // Huge COST and option values.
    let big = "9".repeat(100_000);
    for args in [
        vec!["RL.HIT", "k", "10/s", "COST", big.as_str()],
        vec!["RL.HIT", "k", "10/s", "STRATEGY", big.as_str()],
        vec!["RL.HIT", "k", "10/s", big.as_str(), "1"],
    ] {
        let e = err(&mut c, &args);
        assert!(e.starts_with("ERR "), "{e}");
    }
    // Many arguments.
    let mut many = vec!["RL.HIT", "k", "10/s"];
    many.extend(std::iter::repeat_n("COST", 10_000));
    let e = err(&mut c, &many);
    assert!(e.starts_with("ERR "), "{e}");
    // Big and binary keys are fine.
    let big_key = "k".repeat(100_000);
    assert_eq!(hit(&mut c, &big_key, "10/h", &[]), [1, 10, 9, HOUR, 0]);
    let v: Value = redis::cmd("RL.HIT")
        .arg(&b"\x00\xff\r\n"[..])
        .arg("10/h")
        .query(&mut c)
        .unwrap();
    assert_eq!(five(v, "binary key"), [1, 10, 9, HOUR, 0]);
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn random_limit_strings_never_crash() {
    let s = Server::start();
    let conn = std::cell::RefCell::new(s.conn());
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let strat = prop_oneof![
        "[0-9]{0,12}( ?(/|per) ?)[0-9]{0,12} ?(ms|msec|s|sec|m|min|h|hr|d|w|mo|y|yr|x|)s?",
        "[0-9a-z /;,|.+-]{0,40}",
        ".{0,20}",
    ];
    runner
        .run(&strat, |limits| {
            let mut c = conn.borrow_mut();
            for cmd in ["RL.TEST", "RL.HIT", "RL.STATS"] {
                match raw(&mut c, &[cmd, "p", &limits]) {
                    Ok(Value::Array(items)) => {
                        if cmd != "RL.STATS" {
                            let r = five(Value::Array(items), cmd);
                            prop_assert!(r[0] == 0 || r[0] == 1);
                            prop_assert!(r[1] >= 1 && r[2] >= 0 && r[3] >= 0 && r[4] >= -1);
                        } else {
                            prop_assert!(!items.is_empty() && items.len() <= 16);
                        }
                    }
                    Ok(other) => prop_assert!(false, "{cmd} {limits:?}: {other:?}"),
                    Err(e) => {
                        let t = err_text(&e);
                        prop_assert!(
                            t.starts_with("ERR invalid limit '"),
                            "{cmd} {limits:?}: {t}"
                        );
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    let mut c = conn.into_inner();
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

fn used_memory(c: &mut Connection) -> i64 {
    info(c, "memory")["used_memory"].parse().unwrap()
}

fn churn(c: &mut Connection, rounds: usize) {
    for _ in 0..rounds {
        let mut p = redis::pipe();
        for i in 0..50 {
            p.cmd("RL.HIT").arg("leak").arg("10/fortnight").ignore();
            p.cmd("RL.HIT").arg("leak").arg("10/s;20/1000ms").ignore();
            p.cmd("RL.HIT")
                .arg("leak")
                .arg("10/s")
                .arg("STRATEGY")
                .arg("foo")
                .ignore();
            p.cmd("RL.HIT")
                .arg("leak")
                .arg("10/s")
                .arg("COST")
                .arg("x")
                .ignore();
            p.cmd("RL.HIT")
                .arg("leak")
                .arg("10/s")
                .arg("COST")
                .arg("1")
                .arg("COST")
                .arg("1")
                .ignore();
            p.cmd("RL.HIT").arg("str").arg("10/s").ignore();
            p.cmd("RL.CLEAR").arg("str").ignore();
            p.cmd("RL.HIT")
                .arg(format!("f{}", i % 5))
                .arg("5/h;10/d")
                .ignore();
            p.cmd("RL.HIT")
                .arg(format!("m{}", i % 5))
                .arg("5/h;10/d")
                .arg("STRATEGY")
                .arg("moving")
                .ignore();
            p.cmd("RL.HIT")
                .arg(format!("s{}", i % 5))
                .arg("5/h;10/d")
                .arg("STRATEGY")
                .arg("sliding")
                .ignore();
            p.cmd("RL.TEST")
                .arg(format!("m{}", i % 5))
                .arg("5/h")
                .arg("STRATEGY")
                .arg("moving")
                .ignore();
            p.cmd("RL.STATS")
                .arg(format!("s{}", i % 5))
                .arg("5/h;10/d;1/s")
                .arg("STRATEGY")
                .arg("sliding")
                .ignore();
        }
        // Errors inside a pipeline are returned per command; ignore them.
        let _: RedisResult<()> = p.query(c);
    }
}

#[test]
fn repeated_calls_do_not_leak_memory() {
    let s = Server::start();
    let mut c = s.conn();
    let _: () = redis::cmd("SET")
        .arg("str")
        .arg("hello")
        .query(&mut c)
        .unwrap();
    churn(&mut c, 20); // warm up: all keys exist and are full
    let before = used_memory(&mut c);
    churn(&mut c, 100); // 60 000 calls
    let after = used_memory(&mut c);
    assert!(
        after - before < 1_000_000,
        "used_memory grew by {} bytes over 60 000 calls",
        after - before
    );
}
