//! ACL: the commands' key specs let Redis' ACLs confine an application.
//!
//! The README example: an app user that may hit and test limits under
//! `rl:*` but not clear them, nor touch any other key:
//!
//!     ACL SETUSER app on >app-secret +rl.hit +rl.test -rl.clear ~rl:*
//!
//! and a read-only key pattern (`%R~rl:*`) that may test and read limits
//! but not change them.

mod common;

use common::*;

fn noperm(con: &mut Connection, args: &[&str]) -> String {
    let e = err(con, args);
    assert!(e.starts_with("NOPERM"), "{args:?}: {e}");
    e
}

fn login(server: &Server, user: &str, pass: &str) -> Connection {
    let mut con = server.conn();
    raw(&mut con, &["AUTH", user, pass]).unwrap();
    con
}

#[test]
fn app_user_can_hit_and_test_but_not_clear_and_only_rl_keys() {
    let server = Server::start();
    let mut admin = server.conn();
    raw(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">app-secret",
            "+rl.hit",
            "+rl.test",
            "-rl.clear",
            "~rl:*",
        ],
    )
    .unwrap();
    raw(&mut admin, &["SET", "secret", "top"]).unwrap();
    hit(&mut admin, "other:limit", "10/m", &[]);
    let other_before = dump(&mut admin, "other:limit");

    let mut app = login(&server, "app", "app-secret");
    let r = hit(&mut app, "rl:user:42", "10/m", &[]);
    assert_eq!(r[..3], [1, 10, 9]);
    let r = test(&mut app, "rl:user:42", "10/m", &["STRATEGY", "fixed"]);
    assert_eq!(r[..3], [1, 10, 8]);
    let r = hit(
        &mut app,
        "rl:user:42",
        "5/s",
        &["STRATEGY", "gcra", "BURST", "2"],
    );
    assert_eq!(r[0], 1);

    // Not clear.
    let e = noperm(&mut app, &["RL.CLEAR", "rl:user:42"]);
    assert!(e.contains("rl.clear"), "{e}");
    noperm(&mut app, &["RL.CLEAR", "rl:user:42", "10/m"]);
    // Not keys outside rl:*, with any command it has.
    for args in [
        &["RL.HIT", "other:limit", "10/m"][..],
        &["RL.TEST", "other:limit", "10/m"],
        &["RL.HIT", "secret", "10/m"],
        &["RL.TEST", "secret", "10/m"],
        &["RL.HIT", "rl", "10/m"],
    ] {
        let e = noperm(&mut app, args);
        assert!(e.contains("key"), "{args:?}: {e}");
    }
    // Nor other commands.
    noperm(&mut app, &["GET", "rl:user:42"]);
    noperm(&mut app, &["DEL", "rl:user:42"]);
    noperm(&mut app, &["RL.STATS", "rl:user:42", "10/m"]);

    // The admin sees what happened: the app's key counted, the rest intact.
    assert_eq!(stats(&mut admin, "rl:user:42", "10/m", &[])[0].remaining, 9);
    assert_eq!(dump(&mut admin, "other:limit"), other_before);
    assert_eq!(
        to_string(&raw(&mut admin, &["GET", "secret"]).unwrap()),
        "top"
    );
    assert_eq!(clear(&mut admin, &["rl:user:42"]), 1);
}

#[test]
fn read_only_key_pattern_can_test_and_read_but_not_hit_or_clear() {
    let server = Server::start();
    let mut admin = server.conn();
    raw(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "viewer",
            "on",
            ">v",
            "+rl.hit",
            "+rl.test",
            "+rl.stats",
            "+rl.clear",
            "%R~rl:*",
        ],
    )
    .unwrap();
    hit(&mut admin, "rl:a", "10/m", &[]);
    let before = dump(&mut admin, "rl:a");

    let mut viewer = login(&server, "viewer", "v");
    assert_eq!(test(&mut viewer, "rl:a", "10/m", &[])[..3], [1, 10, 8]);
    assert_eq!(stats(&mut viewer, "rl:a", "10/m", &[])[0].remaining, 9);
    noperm(&mut viewer, &["RL.HIT", "rl:a", "10/m"]);
    noperm(&mut viewer, &["RL.CLEAR", "rl:a"]);
    noperm(&mut viewer, &["RL.TEST", "other", "10/m"]);
    assert_eq!(dump(&mut admin, "rl:a"), before);
}
