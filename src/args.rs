//! The argument grammar of the rate-limit commands, after the key:
//! `limits [STRATEGY name] [COST n] [BURST n] [PENALTY d]`. Pure: byte
//! slices in, a request or the exact error reply out.

use crate::limit::{Limits, MAX_AMOUNT, limit_text, parse_duration, parse_limits, quote};
use crate::strategy::Strategy;

/// Which command is being parsed; they accept different options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Hit,
    Test,
    Stats,
    Clear,
    Refund,
}

/// A validated request: everything the engine needs besides `now` and state.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub limits: Limits,
    pub strategy: Strategy,
    pub cost: u64,
    /// Only set for GCRA; `None` means "the burst is the limit's amount".
    pub burst: Option<u64>,
    /// `PENALTY d` (RL.HIT, RL.TEST): the lockout a breach starts, in ms.
    pub penalty: Option<u64>,
}

/// An error reply, worded as the contract says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

fn syntax(word: &[u8]) -> ArgError {
    ArgError(format!("ERR syntax error near '{}'", quote(word)))
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Most option words a valid call can have (four options with a value
/// each); the word after them is always an error, so callers may pass just
/// the first `MAX_OPTION_WORDS + 1` words.
pub const MAX_OPTION_WORDS: usize = 8;

/// Parses `limits` and the option words that follow it, with the
/// contract's default strategy (`fixed-window`).
pub fn parse_request(
    cmd: Command,
    limits_arg: &[u8],
    options: &[&[u8]],
) -> Result<Request, ArgError> {
    parse_request_with(cmd, limits_arg, options, Strategy::FixedWindow)
}

/// As [`parse_request`], with the strategy used when the call names none
/// (the server's `ratelimit.default-strategy`).
pub fn parse_request_with(
    cmd: Command,
    limits_arg: &[u8],
    options: &[&[u8]],
    default_strategy: Strategy,
) -> Result<Request, ArgError> {
    let limits = parse_limits(limits_arg).map_err(|e| ArgError(e.to_string()))?;
    let mut strategy: Option<Strategy> = None;
    let mut cost: Option<u64> = None;
    let mut burst: Option<u64> = None;
    let mut penalty: Option<u64> = None;
    let mut i = 0;
    while i < options.len() {
        let word = options[i];
        let value = options.get(i + 1).copied();
        let is = |name: &[u8]| word.eq_ignore_ascii_case(name);
        match () {
            _ if is(b"STRATEGY") && strategy.is_none() => {
                let v = value.ok_or_else(|| syntax(word))?;
                strategy = Some(
                    Strategy::parse(v)
                        .ok_or_else(|| ArgError(format!("ERR unknown strategy '{}'", quote(v))))?,
                );
            }
            _ if is(b"COST")
                && cost.is_none()
                && matches!(cmd, Command::Hit | Command::Test | Command::Refund) =>
            {
                let v = value.ok_or_else(|| syntax(word))?;
                // A refund of nothing is a mistake, not a no-op.
                let least = u64::from(cmd == Command::Refund);
                cost = Some(
                    parse_u64(v)
                        .filter(|&c| (least..=MAX_AMOUNT).contains(&c))
                        .ok_or_else(|| {
                            ArgError(format!(
                                "ERR COST must be an integer from {least} to {MAX_AMOUNT}"
                            ))
                        })?,
                );
            }
            _ if is(b"PENALTY")
                && penalty.is_none()
                && matches!(cmd, Command::Hit | Command::Test) =>
            {
                let v = value.ok_or_else(|| syntax(word))?;
                penalty = Some(parse_duration(v).map_err(|reason| {
                    ArgError(format!("ERR invalid PENALTY '{}': {reason}", quote(v)))
                })?);
            }
            _ if is(b"BURST") && burst.is_none() && cmd != Command::Clear => {
                let v = value.ok_or_else(|| syntax(word))?;
                burst = Some(
                    parse_u64(v)
                        .filter(|&b| (1..=MAX_AMOUNT).contains(&b))
                        .ok_or_else(|| {
                            ArgError(format!(
                                "ERR BURST must be an integer from 1 to {MAX_AMOUNT}"
                            ))
                        })?,
                );
            }
            _ => return Err(syntax(word)),
        }
        i += 2;
    }
    let strategy = strategy.unwrap_or(default_strategy);
    if burst.is_some() && strategy != Strategy::Gcra {
        return Err(syntax(b"BURST"));
    }
    if let Some(b) = burst {
        for (i, l) in limits.iter().enumerate() {
            // B * T = B * W / L may not pass ten years.
            if u128::from(b) * u128::from(l.window_ms)
                > u128::from(crate::limit::MAX_WINDOW_MS) * u128::from(l.amount)
            {
                return Err(ArgError(format!(
                    "ERR BURST too large for limit '{}'",
                    quote(limit_text(limits_arg, i))
                )));
            }
        }
    }
    Ok(Request {
        limits,
        strategy,
        cost: cost.unwrap_or(1),
        burst,
        penalty,
    })
}

/// The arguments of `RL.ACQUIRE key max lease token`, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRequest<'a> {
    pub max: u64,
    pub lease_ms: u64,
    pub token: &'a [u8],
}

/// Parses `max lease token` of RL.ACQUIRE, in that order, with the
/// contract's error replies.
pub fn parse_acquire<'a>(
    max: &[u8],
    lease: &[u8],
    token: &'a [u8],
) -> Result<LeaseRequest<'a>, ArgError> {
    let max_leases = crate::lease::MAX_LEASES as u64;
    let max = parse_u64(max)
        .filter(|m| (1..=max_leases).contains(m))
        .ok_or_else(|| ArgError(format!("ERR max must be an integer from 1 to {max_leases}")))?;
    let lease_ms = parse_duration(lease)
        .map_err(|reason| ArgError(format!("ERR invalid lease '{}': {reason}", quote(lease))))?;
    let token = parse_token(token)?;
    Ok(LeaseRequest {
        max,
        lease_ms,
        token,
    })
}

/// A lease token: 1 to 128 bytes, any bytes.
pub fn parse_token(token: &[u8]) -> Result<&[u8], ArgError> {
    if (1..=crate::lease::MAX_TOKEN).contains(&token.len()) {
        Ok(token)
    } else {
        Err(ArgError(format!(
            "ERR token must be 1 to {} bytes",
            crate::lease::MAX_TOKEN
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(cmd: Command, words: &[&str]) -> Result<Request, String> {
        let opts: Vec<&[u8]> = words[1..].iter().map(|w| w.as_bytes()).collect();
        parse_request(cmd, words[0].as_bytes(), &opts).map_err(|e| e.0)
    }

    #[test]
    fn defaults_and_options_in_any_order() {
        let r = parse(Command::Hit, &["10/s"]).unwrap();
        assert_eq!(
            (r.strategy, r.cost, r.burst),
            (Strategy::FixedWindow, 1, None)
        );
        let r = parse(Command::Hit, &["10/s", "cost", "5", "Strategy", "MOVING"]).unwrap();
        assert_eq!((r.strategy, r.cost), (Strategy::MovingWindow, 5));
        let r = parse(Command::Test, &["10/s", "BURST", "3", "STRATEGY", "gcra"]).unwrap();
        assert_eq!((r.strategy, r.burst), (Strategy::Gcra, Some(3)));
        let r = parse(Command::Hit, &["10/s", "COST", "4294967295"]).unwrap();
        assert_eq!(r.cost, 4_294_967_295);
        assert_eq!(parse(Command::Hit, &["10/s", "COST", "0"]).unwrap().cost, 0);
    }

    #[test]
    fn the_default_strategy_is_configurable() {
        let r = parse_request_with(Command::Hit, b"1/s", &[], Strategy::Gcra).unwrap();
        assert_eq!(r.strategy, Strategy::Gcra);
        let opts: [&[u8]; 2] = [b"BURST", b"2"];
        assert!(parse_request_with(Command::Hit, b"1/s", &opts, Strategy::Gcra).is_ok());
        let opts: [&[u8]; 2] = [b"STRATEGY", b"fixed"];
        let r = parse_request_with(Command::Hit, b"1/s", &opts, Strategy::Gcra).unwrap();
        assert_eq!(r.strategy, Strategy::FixedWindow);
    }

    #[test]
    fn lease_arguments_are_checked_in_order() {
        let ok = parse_acquire(b"10", b"30s", b"job-1").unwrap();
        assert_eq!((ok.max, ok.lease_ms, ok.token), (10, 30_000, &b"job-1"[..]));
        let max = "ERR max must be an integer from 1 to 10000";
        for bad in [&b"0"[..], b"10001", b"-1", b"x", b""] {
            assert_eq!(parse_acquire(bad, b"1s", b"t").unwrap_err().0, max);
        }
        assert_eq!(
            parse_acquire(b"1", b"5", b"t").unwrap_err().0,
            "ERR invalid lease '5': expected a unit"
        );
        let token = "ERR token must be 1 to 128 bytes";
        assert_eq!(parse_acquire(b"1", b"1s", b"").unwrap_err().0, token);
        assert_eq!(
            parse_acquire(b"1", b"1s", &[7u8; 129]).unwrap_err().0,
            token
        );
        assert!(parse_acquire(b"10000", b"10y", &[0u8; 128]).is_ok());
    }

    #[test]
    fn errors_are_worded_as_the_contract() {
        let cost = "ERR COST must be an integer from 0 to 4294967295";
        for bad in [
            "-1",
            "4294967296",
            "1.5",
            "",
            "abc",
            "99999999999999999999999",
        ] {
            assert_eq!(
                parse(Command::Hit, &["10/s", "COST", bad]).unwrap_err(),
                cost
            );
        }
        assert_eq!(
            parse(Command::Hit, &["10/s", "STRATEGY", "foo"]).unwrap_err(),
            "ERR unknown strategy 'foo'"
        );
        assert_eq!(
            parse(Command::Hit, &["10/s", "COST", "1", "cost", "2"]).unwrap_err(),
            "ERR syntax error near 'cost'"
        );
        assert_eq!(
            parse(Command::Hit, &["10/s", "STRATEGY"]).unwrap_err(),
            "ERR syntax error near 'STRATEGY'"
        );
        assert_eq!(
            parse(Command::Hit, &["10/s", "LIMIT", "3"]).unwrap_err(),
            "ERR syntax error near 'LIMIT'"
        );
        assert_eq!(
            parse(Command::Stats, &["10/s", "COST", "3"]).unwrap_err(),
            "ERR syntax error near 'COST'"
        );
        assert_eq!(
            parse(Command::Clear, &["10/s", "BURST", "3"]).unwrap_err(),
            "ERR syntax error near 'BURST'"
        );
        assert_eq!(
            parse(Command::Hit, &["10/s", "BURST", "3"]).unwrap_err(),
            "ERR syntax error near 'BURST'"
        );
        assert_eq!(
            parse(Command::Hit, &["10/s", "STRATEGY", "gcra", "BURST", "0"]).unwrap_err(),
            "ERR BURST must be an integer from 1 to 4294967295"
        );
        assert_eq!(
            parse(
                Command::Hit,
                &["1/y;1/s", "STRATEGY", "gcra", "BURST", "11"]
            )
            .unwrap_err(),
            "ERR BURST too large for limit '1/y'"
        );
        assert!(parse(Command::Hit, &["1/y", "STRATEGY", "gcra", "BURST", "10"]).is_ok());
    }
}
