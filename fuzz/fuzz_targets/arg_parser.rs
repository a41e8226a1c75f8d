//! The whole argument parser (`parse_request`) of every command.
//!
//! Input layout: the first byte picks the command, the rest is split on
//! NUL into `limits` and the option words (so arguments are any bytes but
//! NUL; the grammar target covers NUL inside limits).
//!
//! Checked: no panic; an error is an `ERR ...` line; an accepted request
//! obeys the contract (options come in pairs, at most four; COST within
//! 0..=4294967295 and only on RL.HIT / RL.TEST, within 1..=4294967295 on
//! RL.REFUND; BURST only with gcra, in 1..=4294967295 and B*W/L within ten
//! years; PENALTY only on RL.HIT / RL.TEST, 1 ms to ten years); option
//! names and values are case-insensitive and the pairs' order does not
//! matter. RL.ACQUIRE's `max lease token` (the first three parts): max
//! 1..=10000, lease 1 ms to ten years, token 1..=128 bytes as given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_ratelimit::surface::{
    Command, MAX_AMOUNT, MAX_WINDOW_MS, Request, Strategy, parse_acquire, parse_request,
};

type Summary = (Vec<(u64, u64)>, Strategy, u64, Option<u64>, Option<u64>);

fn summary(r: &Request) -> Summary {
    (
        r.limits.iter().map(|l| (l.amount, l.window_ms)).collect(),
        r.strategy,
        r.cost,
        r.burst,
        r.penalty,
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let cmd = [
        Command::Hit,
        Command::Test,
        Command::Stats,
        Command::Clear,
        Command::Refund,
    ][usize::from(sel % 5)];
    let mut parts = rest.split(|&b| b == 0);
    let limits = parts.next().unwrap_or(&[]);
    let options: Vec<&[u8]> = parts.collect();
    // RL.ACQUIRE's `max lease token`: the first three parts.
    if let [max, lease, token, ..] = [&[limits][..], &options[..]].concat()[..] {
        match parse_acquire(max, lease, token) {
            Ok(a) => {
                assert!((1..=10_000).contains(&a.max));
                assert!((1..=MAX_WINDOW_MS).contains(&a.lease_ms));
                assert!((1..=128).contains(&a.token.len()) && a.token == token);
            }
            Err(e) => assert!(e.0.starts_with("ERR "), "{:?}", e.0),
        }
    }
    let got = parse_request(cmd, limits, &options);
    match &got {
        Err(e) => {
            assert!(e.0.starts_with("ERR "), "{:?}", e.0);
            assert!(e.0.len() > 4);
        }
        Ok(r) => {
            assert!(
                options.len().is_multiple_of(2) && options.len() <= 8,
                "{options:?}"
            );
            assert!(r.cost <= MAX_AMOUNT);
            match cmd {
                Command::Hit | Command::Test => {}
                Command::Refund => assert!(r.cost >= 1, "COST 0 accepted on RL.REFUND"),
                _ => assert_eq!(r.cost, 1, "COST accepted on {cmd:?}"),
            }
            if let Some(d) = r.penalty {
                assert!(matches!(cmd, Command::Hit | Command::Test), "PENALTY on {cmd:?}");
                assert!((1..=MAX_WINDOW_MS).contains(&d));
            }
            if let Some(b) = r.burst {
                assert_eq!(r.strategy, Strategy::Gcra);
                assert_ne!(cmd, Command::Clear);
                assert!((1..=MAX_AMOUNT).contains(&b));
                for l in r.limits.iter() {
                    assert!(
                        u128::from(b) * u128::from(l.window_ms)
                            <= u128::from(MAX_WINDOW_MS) * u128::from(l.amount)
                    );
                }
            }
        }
    }
    // Case-insensitive options: same outcome with every option uppercased.
    let upper: Vec<Vec<u8>> = options.iter().map(|o| o.to_ascii_uppercase()).collect();
    let upper_refs: Vec<&[u8]> = upper.iter().map(|o| o.as_slice()).collect();
    let got_upper = parse_request(cmd, limits, &upper_refs);
    match (&got, &got_upper) {
        (Ok(a), Ok(b)) => assert_eq!(summary(a), summary(b)),
        (Err(_), Err(_)) => {}
        _ => panic!("case changed the outcome: {got:?} vs {got_upper:?}"),
    }
    // Options in any order: reversing the (name, value) pairs of an accepted
    // request gives the same request.
    if let Ok(a) = &got {
        let mut pairs: Vec<&[&[u8]]> = options.chunks(2).collect();
        pairs.reverse();
        let reordered: Vec<&[u8]> = pairs.concat();
        let b = parse_request(cmd, limits, &reordered).expect("reordered options parse");
        assert_eq!(summary(a), summary(&b));
    }
});
