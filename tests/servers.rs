//! Section 14: one `.so` on every server. The module probes the server's
//! API at load; these tests read which server they talk to (tests may read
//! versions) and check that the module uses exactly what that server has,
//! and that what it uses works: ACL categories grant the commands.
//!
//! `make test-servers` runs this file (and everything else) on Redis 7.0,
//! Valkey 8.0, Valkey 9.1 and Redis 8.2.

mod common;

use common::*;

#[test]
fn the_module_uses_exactly_the_features_this_server_has() {
    let server = Server::start();
    let kind = server.kind();
    let info = server.info("ratelimit");
    let reported = info
        .get("ratelimit_server_features")
        .unwrap_or_else(|| panic!("{}: no ratelimit_server_features in {info:?}", kind.label()));
    assert_eq!(*reported, kind.expected_features(), "{}", kind.label());
    eprintln!("{}: server features in use: {reported}", kind.label());
    // The same is written to the server's log at load.
    let log_path = server.dir.join(format!("server-{}.log", server.port));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        log.contains(&format!("server features in use: {reported}\n")),
        "{}: load log lacks the features line:\n{log}",
        kind.label()
    );
}

fn strings(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(to_string).collect(),
        other => panic!("expected an array of strings, got {other:?}"),
    }
}

/// The ACL categories COMMAND INFO lists for `cmd` (element 7).
fn categories(con: &mut Connection, cmd: &str) -> Vec<String> {
    let v = raw(con, &["COMMAND", "INFO", cmd]).unwrap();
    let Value::Array(outer) = v else {
        panic!("COMMAND INFO {cmd}: {v:?}")
    };
    let Value::Array(info) = &outer[0] else {
        panic!("COMMAND INFO {cmd}: {outer:?}")
    };
    match info.get(6) {
        Some(Value::Array(c)) => c.iter().map(to_string).collect(),
        Some(other) => panic!("COMMAND INFO {cmd} categories: {other:?}"),
        None => Vec::new(),
    }
}

fn user(server: &Server, admin: &mut Connection, name: &str, rules: &[&str]) -> Connection {
    let mut args = vec!["ACL", "SETUSER", name, "on", ">pw", "~*", "-@all"];
    args.extend(rules);
    raw(admin, &args).unwrap();
    let mut con = server.conn();
    raw(&mut con, &["AUTH", name, "pw"]).unwrap();
    con
}

/// Runs the four rate-limit commands as `con`; true where permitted.
fn permitted(con: &mut Connection) -> [bool; 4] {
    let calls: [&[&str]; 4] = [
        &["RL.HIT", "acl:k", "10/m"],
        &["RL.TEST", "acl:k", "10/m"],
        &["RL.STATS", "acl:k", "10/m"],
        &["RL.CLEAR", "acl:k"],
    ];
    calls.map(|c| match raw(con, c) {
        Ok(_) => true,
        Err(e) if err_text(&e).starts_with("NOPERM") => false,
        Err(e) => panic!("{c:?}: {e}"),
    })
}

#[test]
fn acl_categories_grant_the_commands_where_the_server_has_them() {
    let server = Server::start();
    let kind = server.kind();
    let label = kind.label();
    let mut admin = server.conn();
    let mut reader = user(&server, &mut admin, "reader", &["+@read"]);
    let mut writer = user(&server, &mut admin, "writer", &["+@write"]);
    let cats: Vec<Vec<String>> = ["rl.hit", "rl.test", "rl.stats", "rl.clear"]
        .iter()
        .map(|c| categories(&mut admin, c))
        .collect();
    let acl_cat = strings(raw(&mut admin, &["ACL", "CAT"]).unwrap()).join(" ");
    if !kind.has_acl_categories() {
        // Redis 7.0: the module loads and works, its commands carry no
        // category, so only naming them grants them.
        assert!(cats.iter().all(|c| c.is_empty()), "{label}: {cats:?}");
        for c in ["rl.refund", "rl.acquire", "rl.release"] {
            assert!(categories(&mut admin, c).is_empty(), "{label}: {c}");
        }
        assert_eq!(permitted(&mut reader), [false; 4], "{label}: +@read");
        assert_eq!(permitted(&mut writer), [false; 4], "{label}: +@write");
        let mut named = user(
            &server,
            &mut admin,
            "named",
            &["+rl.hit", "+rl.test", "+rl.stats", "+rl.clear"],
        );
        assert_eq!(permitted(&mut named), [true; 4], "{label}");
        assert!(!acl_cat.contains("ratelimit"), "{label}: {acl_cat}");
        return;
    }
    let module = kind.has_module_category();
    let expect = |base: &str| {
        let mut v = vec![format!("@{base}")];
        if module {
            v.push("@ratelimit".to_string());
        }
        v
    };
    assert_eq!(cats[0], expect("write"), "{label}: RL.HIT");
    assert_eq!(cats[1], expect("read"), "{label}: RL.TEST");
    assert_eq!(cats[2], expect("read"), "{label}: RL.STATS");
    assert_eq!(cats[3], expect("write"), "{label}: RL.CLEAR");
    for c in ["rl.refund", "rl.acquire", "rl.release"] {
        assert_eq!(categories(&mut admin, c), expect("write"), "{label}: {c}");
    }
    // +@read grants the read-only commands, +@write the writing ones.
    assert_eq!(
        permitted(&mut reader),
        [false, true, true, false],
        "{label}: +@read"
    );
    assert_eq!(
        permitted(&mut writer),
        [true, false, false, true],
        "{label}: +@write"
    );
    if !module {
        assert!(!acl_cat.contains("ratelimit"), "{label}: {acl_cat}");
        return;
    }
    // @ratelimit: listed by ACL CAT, grants all four and nothing else.
    assert!(acl_cat.contains("ratelimit"), "{label}: ACL CAT: {acl_cat}");
    let mut members = strings(raw(&mut admin, &["ACL", "CAT", "ratelimit"]).unwrap());
    members.sort();
    if members.is_empty() {
        // Valkey 8.0's ACL CAT lists no module command under any category
        // (the grants below still hold): then @write must omit RL.HIT too.
        let write = strings(raw(&mut admin, &["ACL", "CAT", "write"]).unwrap());
        assert!(!write.iter().any(|c| c == "rl.hit"), "{label}: {write:?}");
        eprintln!("{label}: ACL CAT <category> lists no module commands");
    } else {
        assert_eq!(
            members,
            [
                "rl.acquire",
                "rl.clear",
                "rl.hit",
                "rl.refund",
                "rl.release",
                "rl.stats",
                "rl.test"
            ],
            "{label}"
        );
    }
    let mut rl = user(&server, &mut admin, "rl", &["+@ratelimit"]);
    assert_eq!(permitted(&mut rl), [true; 4], "{label}: +@ratelimit");
    let e = err(&mut rl, &["GET", "acl:k"]);
    assert!(e.starts_with("NOPERM"), "{label}: GET as +@ratelimit: {e}");
    // A reader of everything but rate limits.
    let mut no_rl = user(&server, &mut admin, "no_rl", &["+@read", "-@ratelimit"]);
    assert_eq!(
        permitted(&mut no_rl),
        [false; 4],
        "{label}: +@read -@ratelimit"
    );
}

#[test]
fn unloading_and_loading_again_keeps_the_categories_and_features() {
    // The server keeps a module's ACL category after MODULE UNLOAD: the
    // module must take it up again on the next load.
    let server = Server::start_opts(Opts::default().args(&["--enable-module-command", "yes"]));
    let kind = server.kind();
    let label = kind.label();
    let mut admin = server.conn();
    let features = server.info("ratelimit")["ratelimit_server_features"].clone();
    let grant: &[&str] = if kind.has_module_category() {
        &["+@ratelimit"]
    } else {
        &["+rl.hit", "+rl.test", "+rl.stats", "+rl.clear"]
    };
    let mut app = user(&server, &mut admin, "app", grant);
    assert_eq!(permitted(&mut app), [true; 4], "{label}: before");
    let so = module_path().to_string_lossy().into_owned();
    for _ in 0..2 {
        raw(&mut admin, &["MODULE", "UNLOAD", "ratelimit"]).unwrap();
        raw(&mut admin, &["MODULE", "LOAD", &so]).unwrap();
        assert_eq!(
            server.info("ratelimit")["ratelimit_server_features"],
            features,
            "{label}: features after a reload"
        );
        assert_eq!(permitted(&mut app), [true; 4], "{label}: after a reload");
    }
    if kind.has_module_category() {
        let mut later = user(&server, &mut admin, "later", &["+@ratelimit"]);
        assert_eq!(
            permitted(&mut later),
            [true; 4],
            "{label}: a user made after"
        );
        assert_eq!(
            categories(&mut admin, "rl.hit"),
            ["@write", "@ratelimit"],
            "{label}"
        );
    }
}
