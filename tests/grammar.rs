//! Section 1 of the contract: the `limits` argument.
//!
//! Parsed values are read back through RL.STATS (limit and window_ms of
//! every limit, in the order written), which needs no state.

mod common;
use common::*;

const S: i64 = SECOND;
const M: i64 = MINUTE;
const H: i64 = HOUR;
const D: i64 = DAY;
const MONTH: i64 = 30 * DAY;
const YEAR: i64 = 365 * DAY;

/// (limit, window_ms) of each limit in `limits`, via RL.STATS.
fn parsed(con: &mut Connection, limits: &str) -> Vec<(i64, i64)> {
    stats(con, "g", limits, &[])
        .into_iter()
        .map(|s| (s.limit, s.window_ms))
        .collect()
}

#[track_caller]
fn check(con: &mut Connection, limits: &str, want: &[(i64, i64)]) {
    assert_eq!(parsed(con, limits), want, "limits {limits:?}");
}

/// The error for `limits` on all four commands; asserts the common prefix,
/// that the four agree, and that nothing was written. Returns the text.
#[track_caller]
fn bad(con: &mut Connection, limits: &str) -> String {
    let e_hit = err(con, &["RL.HIT", "bad", limits]);
    assert!(
        e_hit.starts_with("ERR invalid limit '"),
        "RL.HIT limits {limits:?}: got {e_hit:?}"
    );
    let e_test = err(con, &["RL.TEST", "bad", limits]);
    let e_stats = err(con, &["RL.STATS", "bad", limits]);
    let e_clear = err(con, &["RL.CLEAR", "bad", limits]);
    for (name, e) in [
        ("RL.TEST", &e_test),
        ("RL.STATS", &e_stats),
        ("RL.CLEAR", &e_clear),
    ] {
        assert!(
            e.starts_with("ERR invalid limit '"),
            "{name} limits {limits:?}: got {e:?}"
        );
    }
    assert!(
        !exists(con, "bad"),
        "an invalid limit created a key: {limits:?}"
    );
    e_hit
}

#[test]
fn python_limits_forms() {
    let s = Server::start();
    let mut c = s.conn();
    check(&mut c, "10 per second", &[(10, S)]);
    check(&mut c, "5/2 minutes", &[(5, 2 * M)]);
    check(&mut c, "5 per 2 minutes", &[(5, 2 * M)]);
    check(&mut c, "1000/day;10/second", &[(1000, D), (10, S)]);
    check(&mut c, "100 per hour", &[(100, H)]);
    check(&mut c, "2 per month", &[(2, MONTH)]);
    check(&mut c, "2 per year", &[(2, YEAR)]);
}

#[test]
fn python_limits_style_space_after_separator() {
    // The Python `limits` library accepts blanks before each limit
    // (`\s*` at the start of its expression), so these are its strings too.
    let s = Server::start();
    let mut c = s.conn();
    check(&mut c, "1000/day; 10/second", &[(1000, D), (10, S)]);
    check(&mut c, "1000 per day, 10 per second", &[(1000, D), (10, S)]);
}

#[test]
fn short_forms() {
    let s = Server::start();
    let mut c = s.conn();
    check(&mut c, "10/s", &[(10, S)]);
    check(&mut c, "60/m", &[(60, M)]);
    check(&mut c, "1000/h", &[(1000, H)]);
    check(&mut c, "5000/d", &[(5000, D)]);
    check(&mut c, "3/day", &[(3, D)]);
    check(&mut c, "20/500ms", &[(20, 500)]);
    check(&mut c, "100/15m", &[(100, 15 * M)]);
    check(&mut c, "7/w", &[(7, 7 * D)]);
    check(&mut c, "7/week", &[(7, 7 * D)]);
    check(&mut c, "1/mo", &[(1, MONTH)]);
    check(&mut c, "1/month", &[(1, MONTH)]);
    check(&mut c, "1/y", &[(1, YEAR)]);
    check(&mut c, "1/yr", &[(1, YEAR)]);
    check(&mut c, "1/year", &[(1, YEAR)]);
    check(&mut c, "1/3mo", &[(1, 3 * MONTH)]);
    check(&mut c, "1/2y", &[(1, 2 * YEAR)]);
}

#[test]
fn every_unit_word() {
    let s = Server::start();
    let mut c = s.conn();
    let table: &[(&str, i64)] = &[
        ("ms", 1),
        ("msec", 1),
        ("millisecond", 1),
        ("s", S),
        ("sec", S),
        ("second", S),
        ("m", M),
        ("min", M),
        ("minute", M),
        ("h", H),
        ("hr", H),
        ("hour", H),
        ("d", D),
        ("day", D),
        ("w", 7 * D),
        ("week", 7 * D),
        ("mo", MONTH),
        ("month", MONTH),
        ("y", YEAR),
        ("yr", YEAR),
        ("year", YEAR),
    ];
    for (unit, w) in table {
        check(&mut c, &format!("3/{unit}"), &[(3, *w)]);
        check(&mut c, &format!("3 per {unit}"), &[(3, *w)]);
        check(&mut c, &format!("3/2{unit}"), &[(3, 2 * w)]);
        check(&mut c, &format!("3 per 2 {unit}"), &[(3, 2 * w)]);
    }
}

#[test]
fn plurals() {
    let s = Server::start();
    let mut c = s.conn();
    let table: &[(&str, i64)] = &[
        ("msecs", 1),
        ("milliseconds", 1),
        ("secs", S),
        ("seconds", S),
        ("mins", M),
        ("minutes", M),
        ("hrs", H),
        ("hours", H),
        ("days", D),
        ("weeks", 7 * D),
        ("months", MONTH),
        ("yrs", YEAR),
        ("years", YEAR),
    ];
    for (unit, w) in table {
        check(&mut c, &format!("4/2 {unit}"), &[(4, 2 * w)]);
        check(&mut c, &format!("4 per 3{unit}"), &[(4, 3 * w)]);
    }
    check(&mut c, "10/secs", &[(10, S)]);
    check(&mut c, "10/2 hrs", &[(10, 2 * H)]);
    check(&mut c, "3 per 2 days", &[(3, 2 * D)]);
    check(&mut c, "5/100msecs", &[(5, 100)]);
}

#[test]
fn units_are_case_insensitive() {
    let s = Server::start();
    let mut c = s.conn();
    check(&mut c, "10/S", &[(10, S)]);
    check(&mut c, "10 PER SECOND", &[(10, S)]);
    check(&mut c, "10 Per Second", &[(10, S)]);
    check(&mut c, "10/MS", &[(10, 1)]);
    check(&mut c, "10/Ms", &[(10, 1)]);
    check(&mut c, "10/M", &[(10, M)]);
    check(&mut c, "10/MO", &[(10, MONTH)]);
    check(&mut c, "10/Hour", &[(10, H)]);
    check(&mut c, "10/2 HRS", &[(10, 2 * H)]);
    check(&mut c, "10/DAYS", &[(10, D)]);
    check(&mut c, "10/Y", &[(10, YEAR)]);
    check(&mut c, "10/15M", &[(10, 15 * M)]);
}

#[test]
fn spaces_around_parts() {
    let s = Server::start();
    let mut c = s.conn();
    check(&mut c, "10 / s", &[(10, S)]);
    check(&mut c, "10/ 2 s", &[(10, 2 * S)]);
    check(&mut c, "10 /2 s", &[(10, 2 * S)]);
    check(&mut c, "10  per  2  minutes", &[(10, 2 * M)]);
    check(&mut c, "10/s ", &[(10, S)]);
    check(&mut c, "10 / 2 minutes ", &[(10, 2 * M)]);
    check(&mut c, "20 / 500 ms", &[(20, 500)]);
}

#[test]
fn separators() {
    let s = Server::start();
    let mut c = s.conn();
    for sep in [";", ",", "|"] {
        check(
            &mut c,
            &format!("10/s{sep}100/m{sep}1000/h"),
            &[(10, S), (100, M), (1000, H)],
        );
    }
    // Mixed separators.
    check(
        &mut c,
        "10/s;100/m,1000/h|5000/d",
        &[(10, S), (100, M), (1000, H), (5000, D)],
    );
    // Order is kept as written.
    check(&mut c, "5/h;2/s", &[(5, H), (2, S)]);
}

#[test]
fn bounds_that_are_accepted() {
    let s = Server::start();
    let mut c = s.conn();
    check(&mut c, "4294967295/s", &[(4294967295, S)]);
    check(&mut c, "1/1ms", &[(1, 1)]);
    check(&mut c, "1/10y", &[(1, 10 * YEAR)]);
    check(&mut c, "1/10 years", &[(1, 10 * YEAR)]);
    check(&mut c, "1/3650d", &[(1, 10 * YEAR)]);
    check(&mut c, "1/121mo", &[(1, 121 * MONTH)]);
    check(&mut c, "1/521w", &[(1, 521 * 7 * D)]);
    check(&mut c, "1/315360000000ms", &[(1, 10 * YEAR)]);
    // Exactly 16 limits.
    let sixteen: Vec<String> = (1..=16).map(|i| format!("{i}/{i}s")).collect();
    let want: Vec<(i64, i64)> = (1..=16).map(|i| (i, i * S)).collect();
    check(&mut c, &sixteen.join(";"), &want);
}

#[test]
fn accepted_forms_are_usable_by_every_command() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(test(&mut c, "u", "10 per second", &[]), [1, 10, 9, 1000, 0]);
    assert_eq!(hit(&mut c, "u", "10 per second", &[]), [1, 10, 9, 1000, 0]);
    // The same window spelled differently is the same state.
    let r = hit(&mut c, "u", "10/1000ms", &[]);
    assert_eq!(&r[..3], &[1, 10, 8]);
    let r = hit(&mut c, "u", "10/1 sec", &[]);
    assert_eq!(&r[..3], &[1, 10, 7]);
    assert_eq!(clear(&mut c, &["u", "99/s"]), 1);
}

#[test]
fn unknown_unit_exact_message() {
    let s = Server::start();
    let mut c = s.conn();
    let e = bad(&mut c, "10/fortnight");
    assert_eq!(
        e,
        "ERR invalid limit '10/fortnight': unknown unit 'fortnight'"
    );
    for cmd in ["RL.HIT", "RL.TEST", "RL.STATS", "RL.CLEAR"] {
        assert_eq!(
            err(&mut c, &[cmd, "k", "10/fortnight"]),
            "ERR invalid limit '10/fortnight': unknown unit 'fortnight'",
            "{cmd}"
        );
    }
    bad(&mut c, "10/s;10/fortnight");
    bad(&mut c, "10/parsec");
    bad(&mut c, "10/2 fortnights");
}

#[test]
fn zero_amount_or_multiple() {
    let s = Server::start();
    let mut c = s.conn();
    bad(&mut c, "0/s");
    bad(&mut c, "0 per second");
    bad(&mut c, "10/0s");
    bad(&mut c, "10/0 seconds");
    bad(&mut c, "10 per 0 minutes");
    bad(&mut c, "10/s;0/m");
}

#[test]
fn amount_too_large() {
    let s = Server::start();
    let mut c = s.conn();
    bad(&mut c, "4294967296/s");
    bad(&mut c, "18446744073709551616/s");
    bad(&mut c, "99999999999999999999999999999999/s");
}

#[test]
fn window_longer_than_ten_years() {
    let s = Server::start();
    let mut c = s.conn();
    bad(&mut c, "1/11y");
    bad(&mut c, "1/3651d");
    bad(&mut c, "1/122mo");
    bad(&mut c, "1/522w");
    bad(&mut c, "1/315360000001ms");
    bad(&mut c, "1/4294967296s");
    bad(&mut c, "1/18446744073709551616ms");
    bad(&mut c, "1/18446744073709551615y");
    bad(&mut c, "1/99999999999999999999999999 years");
}

#[test]
fn more_than_sixteen_limits() {
    let s = Server::start();
    let mut c = s.conn();
    let seventeen: Vec<String> = (1..=17).map(|i| format!("{i}/{i}s")).collect();
    bad(&mut c, &seventeen.join(";"));
    let many: Vec<String> = (1..=1000).map(|i| format!("1/{i}ms")).collect();
    bad(&mut c, &many.join(","));
}

#[test]
fn duplicate_windows() {
    let s = Server::start();
    let mut c = s.conn();
    bad(&mut c, "10/s;20/1000ms");
    bad(&mut c, "10/s;10/s");
    bad(&mut c, "10/m;5/60s");
    bad(&mut c, "10/h;1/d;20/60 minutes");
    bad(&mut c, "1/d;1/24h");
    bad(&mut c, "1/y;1/365d");
    bad(&mut c, "1/mo;1/30d");
    bad(&mut c, "1/w;1/7d");
}

#[test]
fn malformed() {
    let s = Server::start();
    let mut c = s.conn();
    for text in [
        "",
        " ",
        "abc",
        "10",
        "10/",
        "/s",
        "per second",
        "10 per",
        "10 seconds",
        "10//s",
        "10/s/s",
        "-1/s",
        "10/-1s",
        "1.5/s",
        "10/1.5s",
        "1e3/s",
        "10/s;",
        ";10/s",
        "10/s;;20/m",
        "ten/s",
        "10/s 20/m",
        "10 pers second",
        "10/séc",
        "10/s\0",
    ] {
        bad(&mut c, text);
    }
}

#[test]
fn signs_and_radix_prefixes_are_not_whole_numbers() {
    let s = Server::start();
    let mut c = s.conn();
    bad(&mut c, "+1/s");
    bad(&mut c, "1/+2s");
    bad(&mut c, "0x10/s");
}
