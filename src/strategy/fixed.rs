//! Fixed window: a window opens at the first admitted hit and counts the
//! admitted cost until it closes `W` ms later.

use super::Strategy;
use super::kind::{FixedSize, Quota};
use crate::codec::Scratch;
use crate::codec::{TIME_WIDTH, get_fixed, get_varint, put_fixed, put_varint};
use crate::decision::LimitEval;

/// The stored state of one fixed-window limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixed {
    pub start: u64,
    pub used: u64,
}

impl Fixed {
    /// Decodes a record body (after the tag and window).
    #[inline(always)]
    pub fn decode_at(body: &[u8], pos: &mut usize) -> Option<Fixed> {
        let start = get_fixed(body, pos, TIME_WIDTH)?;
        let used = get_varint(body, pos)?;
        (used <= crate::limit::MAX_AMOUNT).then_some(Fixed { start, used })
    }

    /// Encodes the record body.
    pub fn encode(&self, out: &mut impl crate::codec::Sink) {
        put_fixed(out, self.start, TIME_WIDTH);
        put_varint(out, self.used);
    }

    /// The usage still counted at `now` (0 once the window closed).
    fn used_at(state: Option<Fixed>, window_ms: u64, now: u64) -> Option<Fixed> {
        state.filter(|s| s.used > 0 && now < s.start.saturating_add(window_ms))
    }

    /// When the usage stops counting, if any is counted at `now`.
    pub fn usage_end(state: Option<Fixed>, window_ms: u64, now: u64) -> Option<u64> {
        Self::used_at(state, window_ms, now).map(|s| s.start + window_ms)
    }

    /// Judges a hit of `cost`; returns the verdict and, when admitted with
    /// a cost, the state to store.
    pub fn evaluate(
        state: Option<Fixed>,
        amount: u64,
        window_ms: u64,
        cost: u64,
        now: u64,
    ) -> (LimitEval, Option<Fixed>) {
        let live = Self::used_at(state, window_ms, now);
        let used = live.map_or(0, |s| s.used);
        let reset_of =
            |s: Option<Fixed>| s.map_or(0, |s| s.start + window_ms - now.min(s.start + window_ms));
        if used + cost <= amount {
            let after = if cost == 0 {
                live
            } else {
                Some(Fixed {
                    start: live.map_or(now, |s| s.start),
                    used: used + cost,
                })
            };
            let eval = LimitEval {
                allowed: true,
                limit: amount,
                remaining: amount - (used + cost),
                reset_after: reset_of(after),
                retry_after: 0,
            };
            (eval, if cost == 0 { None } else { after })
        } else {
            let retry_after = if cost > amount {
                -1
            } else {
                // Denied with cost <= amount means a live window: it frees at its end.
                reset_of(live) as i64
            };
            let eval = LimitEval {
                allowed: false,
                limit: amount,
                remaining: amount.saturating_sub(used),
                reset_after: reset_of(live),
                retry_after,
            };
            (eval, None)
        }
    }
}

impl FixedSize for Fixed {
    const STRATEGY: Strategy = Strategy::FixedWindow;
    const TAG: u8 = 0xF9;

    #[inline(always)]
    fn decode_at(body: &[u8], pos: &mut usize) -> Option<Fixed> {
        Fixed::decode_at(body, pos)
    }

    fn encode(&self, out: &mut Scratch) {
        Fixed::encode(self, out)
    }

    #[inline(always)]
    fn evaluate(
        state: Option<Fixed>,
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> (LimitEval, Option<Fixed>) {
        Fixed::evaluate(state, quota.amount, quota.window_ms, cost, now)
    }

    fn end(state: Fixed, window_ms: u64, now: u64) -> Option<u64> {
        Fixed::usage_end(Some(state), window_ms, now)
    }

    /// `used -= min(cost, used)` in the current window.
    fn refunded(state: Fixed, quota: Quota, cost: u64, now: u64) -> Fixed {
        match Fixed::used_at(Some(state), quota.window_ms, now) {
            Some(live) => Fixed {
                used: live.used - cost.min(live.used),
                ..live
            },
            None => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_opens_counts_and_closes() {
        let (e, s) = Fixed::evaluate(None, 2, 1000, 1, 5000);
        assert_eq!((e.allowed, e.remaining, e.reset_after), (true, 1, 1000));
        let (e, s) = Fixed::evaluate(s, 2, 1000, 1, 5400);
        assert_eq!((e.allowed, e.remaining, e.reset_after), (true, 0, 600));
        let (e, none) = Fixed::evaluate(s, 2, 1000, 1, 5999);
        assert_eq!(
            (e.allowed, e.remaining, e.reset_after, e.retry_after),
            (false, 0, 1, 1)
        );
        assert!(none.is_none());
        let (e, s2) = Fixed::evaluate(s, 2, 1000, 1, 6000);
        assert_eq!((e.allowed, e.remaining, e.reset_after), (true, 1, 1000));
        assert_eq!(s2.unwrap().start, 6000);
        let (e, _) = Fixed::evaluate(s, 2, 1000, 3, 5500);
        assert_eq!(e.retry_after, -1);
    }
}
