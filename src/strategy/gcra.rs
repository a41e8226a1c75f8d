//! GCRA (token bucket with burst): one theoretical arrival time per limit.
//! Time is counted in units of `1/L` ms, in which the emission interval
//! `T = W/L` is exactly `W`, so no rounding can admit an extra hit.

use super::Strategy;
use super::kind::{FixedSize, Quota};
use crate::codec::Scratch;
use crate::codec::{TIME_WIDTH, get_fixed, get_varint, put_fixed, put_varint};
use crate::decision::LimitEval;
use crate::limit::MAX_AMOUNT;

/// The stored TAT: `ms + num/den` ms, with `den` the amount it was written
/// under, so the fraction stays exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    pub ms: u64,
    pub num: u64,
    pub den: u64,
}

impl Gcra {
    /// Decodes a record body (after the tag and window).
    #[inline(always)]
    pub fn decode_at(body: &[u8], pos: &mut usize) -> Option<Gcra> {
        let ms = get_fixed(body, pos, TIME_WIDTH)?;
        let num = get_varint(body, pos)?;
        let den = get_varint(body, pos)?;
        ((1..=MAX_AMOUNT).contains(&den) && num < den).then_some(Gcra { ms, num, den })
    }

    /// Encodes the record body.
    pub fn encode(&self, out: &mut impl crate::codec::Sink) {
        put_fixed(out, self.ms, TIME_WIDTH);
        put_varint(out, self.num);
        put_varint(out, self.den);
    }

    /// The TAT in units of 1/l ms, rounded up when the stored fraction has
    /// another denominator (a later TAT only ever denies more).
    fn tat_units(&self, amount: u64) -> u128 {
        if self.den == amount {
            // Written under this amount (the usual case): already in 1/amount ms.
            return self.ms as u128 * amount as u128 + self.num as u128;
        }
        let exact = self.ms as u128 * self.den as u128 + self.num as u128;
        (exact * amount as u128).div_ceil(self.den as u128)
    }

    fn from_units(units: u128, amount: u64) -> Gcra {
        Gcra {
            ms: (units / amount as u128) as u64,
            num: (units % amount as u128) as u64,
            den: amount,
        }
    }

    /// When the usage stops counting (the TAT, rounded up), if still ahead.
    pub fn usage_end(state: Option<Gcra>, now: u64) -> Option<u64> {
        let s = state?;
        let end = s.ms + u64::from(s.num > 0);
        (end > now).then_some(end)
    }

    /// Judges a hit of `cost` against a rate of `amount` per `window_ms`
    /// with `burst`.
    pub fn evaluate(
        state: Option<Gcra>,
        amount: u64,
        window_ms: u64,
        burst: u64,
        cost: u64,
        now: u64,
    ) -> (LimitEval, Option<Gcra>) {
        let (lu, wu) = (amount as u128, window_ms as u128);
        let now_u = now as u128 * lu;
        let tat = state.map_or(0, |s| s.tat_units(amount));
        let ahead = tat.saturating_sub(now_u); // TAT - now, in 1/amount ms
        let capacity = burst as u128 * wu; // B * T
        let new_ahead = ahead + cost as u128 * wu;
        let remaining = |ahead: u128| div(capacity.saturating_sub(ahead), wu, false) as u64;
        let ms_up = |units: u128| div(units, lu, true) as u64;
        if new_ahead <= capacity {
            let eval = LimitEval {
                allowed: true,
                limit: burst,
                remaining: remaining(new_ahead),
                reset_after: ms_up(new_ahead),
                retry_after: 0,
            };
            let store = (cost > 0).then(|| Self::from_units(now_u + new_ahead, amount));
            (eval, store)
        } else {
            let retry_after = if cost > burst {
                -1
            } else {
                ms_up(new_ahead - capacity) as i64
            };
            let eval = LimitEval {
                allowed: false,
                limit: burst,
                remaining: remaining(ahead),
                reset_after: ms_up(ahead),
                retry_after,
            };
            (eval, None)
        }
    }
}

/// `a / b` (rounded up if `up`; `b > 0`), with 64-bit division when both
/// fit, the usual case, which is several times cheaper than a 128-bit one.
fn div(a: u128, b: u128, up: bool) -> u128 {
    match (u64::try_from(a), u64::try_from(b)) {
        (Ok(a), Ok(b)) => u128::from(if up { a.div_ceil(b) } else { a / b }),
        _ if up => a.div_ceil(b),
        _ => a / b,
    }
}

impl FixedSize for Gcra {
    const STRATEGY: Strategy = Strategy::Gcra;
    const TAG: u8 = 0xFC;

    #[inline(always)]
    fn decode_at(body: &[u8], pos: &mut usize) -> Option<Gcra> {
        Gcra::decode_at(body, pos)
    }

    fn encode(&self, out: &mut Scratch) {
        Gcra::encode(self, out)
    }

    #[inline(always)]
    fn evaluate(
        state: Option<Gcra>,
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> (LimitEval, Option<Gcra>) {
        Gcra::evaluate(state, quota.amount, quota.window_ms, quota.burst, cost, now)
    }

    fn end(state: Gcra, _window_ms: u64, now: u64) -> Option<u64> {
        Gcra::usage_end(Some(state), now)
    }

    /// `TAT = max(now, TAT - cost * T)`, exactly (in 1/amount ms, where
    /// the emission interval T is `window_ms` units).
    fn refunded(state: Gcra, quota: Quota, cost: u64, now: u64) -> Gcra {
        let amount = quota.amount;
        let tat = state.tat_units(amount);
        let back = u128::from(cost) * u128::from(quota.window_ms);
        let floor = u128::from(now) * u128::from(amount);
        Gcra::from_units(tat.saturating_sub(back).max(floor), amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        // 3 per second, burst 3: T = 333.33 ms.
        let mut s = None;
        for i in 0..3 {
            let (e, n) = Gcra::evaluate(s, 3, 1000, 3, 1, 0);
            assert!(e.allowed, "hit {i}");
            assert_eq!(e.remaining, 2 - i);
            s = n;
        }
        let (e, _) = Gcra::evaluate(s, 3, 1000, 3, 1, 0);
        assert_eq!(
            (e.allowed, e.retry_after, e.reset_after),
            (false, 334, 1000)
        );
        let (e, _) = Gcra::evaluate(s, 3, 1000, 3, 1, 333);
        assert!(!e.allowed);
        let (e, n) = Gcra::evaluate(s, 3, 1000, 3, 1, 334);
        assert!(e.allowed);
        assert_eq!(Gcra::usage_end(n, 334), Some(1334));
        let (e, _) = Gcra::evaluate(None, 3, 1000, 3, 4, 0);
        assert_eq!(e.retry_after, -1);
    }

    #[test]
    fn seven_per_ten_ms_is_exact() {
        // T = 10/7 ms: seven at once, then one every 1.43 ms, never earlier.
        let mut s = None;
        for _ in 0..7 {
            let (e, n) = Gcra::evaluate(s, 7, 10, 7, 1, 0);
            assert!(e.allowed);
            s = n;
        }
        let (e, _) = Gcra::evaluate(s, 7, 10, 7, 1, 0);
        assert_eq!((e.allowed, e.retry_after), (false, 2));
        let (e, _) = Gcra::evaluate(s, 7, 10, 7, 1, 1);
        assert_eq!((e.allowed, e.retry_after), (false, 1));
        let (e, n) = Gcra::evaluate(s, 7, 10, 7, 1, 2);
        assert!(e.allowed);
        // TAT was 10 ms; now 2 + 6/7 ms ahead: 11.43 ms, stored exactly.
        assert_eq!(
            n,
            Some(Gcra {
                ms: 11,
                num: 3,
                den: 7
            })
        );
        // Over 1000 ms at most 7 + 1000 * 7 / 10 hits pass, at full speed.
        let mut s = None;
        let mut admitted = 0;
        for t in 0..1000 {
            for _ in 0..3 {
                let (e, n) = Gcra::evaluate(s, 7, 10, 7, 1, t);
                if e.allowed {
                    admitted += 1;
                    s = n;
                }
            }
        }
        assert_eq!(admitted, 7 + 999 * 7 / 10);
    }

    #[test]
    fn division_matches_u128_on_both_sides_of_64_bits() {
        let big = u64::MAX as u128;
        for (a, b) in [
            (7, 2),
            (6, 3),
            (0, 5),
            (big, 3),
            (big + 1, 3),
            (big * 5 + 2, big + 1),
            (big * 5, 7),
        ] {
            assert_eq!(div(a, b, false), a / b);
            assert_eq!(div(a, b, true), a.div_ceil(b));
        }
    }

    #[test]
    fn changing_the_amount_rounds_toward_denial() {
        let s = Gcra {
            ms: 10,
            num: 1,
            den: 3,
        };
        assert_eq!(s.tat_units(3), 31);
        assert_eq!(s.tat_units(2), 21); // 10.333 ms = 20.67 half-ms, up to 21
    }
}
