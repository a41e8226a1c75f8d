//! The lockout a breach starts (`PENALTY d`, contract section 11): one
//! small record in the key's value, `0xF8` then the instant it ends (6
//! bytes). It belongs to the key, not to a limit: while it is in force
//! every hit at the key is denied, whatever its limits.

use crate::codec::{TIME_WIDTH, get_fixed};
use crate::decision::Verdict;

/// The penalty record's tag (like the state tags, a byte never found in
/// UTF-8 text).
pub const TAG: u8 = 0xF8;

/// Bytes of a penalty record, tag included.
pub const LEN: usize = 1 + TIME_WIDTH;

/// A penalty record found in a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Penalty {
    /// Offset of its tag in the value.
    pub at: usize,
    /// The instant (ms) it ends.
    pub end: u64,
}

impl Penalty {
    /// The ms left at `now`, if it is still in force.
    pub fn left(&self, now: u64) -> Option<u64> {
        (now < self.end).then(|| self.end - now)
    }
}

/// The penalty record whose tag is at `value[at]`, if it decodes.
pub fn decode(value: &[u8], at: usize) -> Option<Penalty> {
    let mut pos = at + 1;
    let end = get_fixed(value, &mut pos, TIME_WIDTH)?;
    Some(Penalty { at, end })
}

/// A penalty record ending at `end`.
pub fn encode(end: u64) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[0] = TAG;
    out[1..].copy_from_slice(&end.to_le_bytes()[..TIME_WIDTH]);
    out
}

/// Whether a hit of `cost` judged `verdict` (no penalty in force) breaches
/// its limits: denied because usage is too high. A hit that can never pass
/// (`retry_after` -1) or of cost 0 does not.
pub fn breached(verdict: &Verdict, cost: u64) -> bool {
    !verdict.allowed && verdict.retry_after >= 0 && cost > 0
}

/// `verdict` under a penalty with `left` ms to go: denied, nothing
/// remaining, and both waits at least `left` (a -1 stays -1).
pub fn apply(verdict: Verdict, left: u64) -> Verdict {
    let (reset_after, retry_after) = at_least(verdict.reset_after, verdict.retry_after, left);
    Verdict {
        allowed: false,
        remaining: 0,
        reset_after,
        retry_after,
        ..verdict
    }
}

/// A reset and a retry time, each raised to at least `left` (a retry of
/// -1, never, stays -1).
pub fn at_least(reset_after: u64, retry_after: i64, left: u64) -> (u64, i64) {
    let retry = if retry_after < 0 {
        retry_after
    } else {
        retry_after.max(i64::try_from(left).unwrap_or(i64::MAX))
    };
    (reset_after.max(left), retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(allowed: bool, retry_after: i64) -> Verdict {
        Verdict {
            allowed,
            limit: 5,
            remaining: 3,
            reset_after: 100,
            retry_after,
        }
    }

    #[test]
    fn a_record_round_trips() {
        let v = encode(1_700_000_000_123);
        assert_eq!(
            decode(&v, 0),
            Some(Penalty {
                at: 0,
                end: 1_700_000_000_123
            })
        );
        assert_eq!(decode(&v[..LEN - 1], 0), None);
    }

    #[test]
    fn in_force_until_its_end() {
        let p = Penalty { at: 0, end: 1000 };
        assert_eq!(p.left(999), Some(1));
        assert_eq!(p.left(1000), None);
    }

    #[test]
    fn a_penalty_denies_and_raises_both_waits() {
        let v = apply(verdict(true, 0), 500);
        assert_eq!(
            (
                v.allowed,
                v.limit,
                v.remaining,
                v.reset_after,
                v.retry_after
            ),
            (false, 5, 0, 500, 500)
        );
        let v = apply(verdict(false, 900), 500);
        assert_eq!((v.reset_after, v.retry_after), (500, 900));
        assert_eq!(apply(verdict(false, -1), 500).retry_after, -1);
    }

    #[test]
    fn only_a_breach_that_could_pass_later_starts_one() {
        assert!(breached(&verdict(false, 10), 1));
        assert!(!breached(&verdict(false, -1), 1));
        assert!(!breached(&verdict(false, 10), 0));
        assert!(!breached(&verdict(true, 0), 1));
    }
}
