//! Sliding window counter: windows of `W` ms anchored at the first admitted
//! hit; the previous window's count is weighted by how much of it still
//! overlaps the last `W` ms. All arithmetic is exact integers.

use super::Strategy;
use super::kind::{FixedSize, Quota};
use crate::codec::Scratch;
use crate::codec::{TIME_WIDTH, get_fixed, get_varint, put_fixed, put_varint};
use crate::decision::LimitEval;
use crate::limit::MAX_AMOUNT;

/// The stored state of one sliding-window-counter limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sliding {
    /// Start of the current window.
    pub start: u64,
    /// Admitted cost in the current window.
    pub cur: u64,
    /// Admitted cost in the window before it.
    pub prev: u64,
}

impl Sliding {
    /// Decodes a record body (after the tag and window).
    #[inline(always)]
    pub fn decode_at(body: &[u8], pos: &mut usize) -> Option<Sliding> {
        let start = get_fixed(body, pos, TIME_WIDTH)?;
        let cur = get_varint(body, pos)?;
        let prev = get_varint(body, pos)?;
        (cur <= MAX_AMOUNT && prev <= MAX_AMOUNT).then_some(Sliding { start, cur, prev })
    }

    /// Encodes the record body.
    pub fn encode(&self, out: &mut impl crate::codec::Sink) {
        put_fixed(out, self.start, TIME_WIDTH);
        put_varint(out, self.cur);
        put_varint(out, self.prev);
    }

    /// The state as seen at `now`: windows rolled forward; `None` once it
    /// holds no usage.
    fn at(state: Option<Sliding>, window_ms: u64, now: u64) -> Option<Sliding> {
        let s = state?;
        let elapsed = now.saturating_sub(s.start);
        let rolled = match elapsed / window_ms {
            0 => s,
            1 => Sliding {
                start: s.start + window_ms,
                cur: 0,
                prev: s.cur,
            },
            _ => return None,
        };
        (rolled.cur > 0 || rolled.prev > 0).then_some(rolled)
    }

    /// When the usage stops counting, if any is counted at `now`.
    pub fn usage_end(state: Option<Sliding>, window_ms: u64, now: u64) -> Option<u64> {
        Self::at(state, window_ms, now).map(|s| Self::reset_at(s, window_ms))
    }

    /// The instant the estimate falls back to zero.
    fn reset_at(s: Sliding, window_ms: u64) -> u64 {
        if s.cur > 0 {
            s.start + 2 * window_ms
        } else {
            s.start + window_ms
        }
    }

    /// `L*W - (prev*(W-e) + cur*W)`: the free room scaled by W, may be < 0.
    fn room_scaled(s: Option<Sliding>, amount: u64, window_ms: u64, now: u64) -> i128 {
        let (cur, prev, e) = s.map_or((0, 0, 0), |s| (s.cur, s.prev, now.saturating_sub(s.start)));
        let (amount, window_ms, cur, prev, e) = (
            amount as i128,
            window_ms as i128,
            cur as i128,
            prev as i128,
            e as i128,
        );
        amount * window_ms - prev * (window_ms - e) - cur * window_ms
    }

    fn remaining(s: Option<Sliding>, amount: u64, window_ms: u64, now: u64) -> u64 {
        let room = Self::room_scaled(s, amount, window_ms, now);
        if room <= 0 {
            0
        } else {
            (room / window_ms as i128) as u64
        }
    }

    /// Judges a hit of `cost`; returns the verdict and, when admitted with
    /// a cost, the state to store.
    pub fn evaluate(
        state: Option<Sliding>,
        amount: u64,
        window_ms: u64,
        cost: u64,
        now: u64,
    ) -> (LimitEval, Option<Sliding>) {
        let s = Self::at(state, window_ms, now);
        let reset_of =
            |s: Option<Sliding>| s.map_or(0, |s| Self::reset_at(s, window_ms).saturating_sub(now));
        let fits = Self::room_scaled(s, amount, window_ms, now) >= cost as i128 * window_ms as i128;
        if fits {
            let after = match (cost, s) {
                (0, _) => s,
                (_, None) => Some(Sliding {
                    start: now,
                    cur: cost,
                    prev: 0,
                }),
                (_, Some(s)) => Some(Sliding {
                    cur: s.cur + cost,
                    ..s
                }),
            };
            let eval = LimitEval {
                allowed: true,
                limit: amount,
                remaining: Self::remaining(after, amount, window_ms, now),
                reset_after: reset_of(after),
                retry_after: 0,
            };
            (eval, if cost == 0 { None } else { after })
        } else {
            let retry_after = if cost > amount {
                -1
            } else {
                let s = s.expect("denied with cost <= amount implies usage");
                Self::admit_at(s, amount, window_ms, cost).saturating_sub(now) as i64
            };
            let eval = LimitEval {
                allowed: false,
                limit: amount,
                remaining: Self::remaining(s, amount, window_ms, now),
                reset_after: reset_of(s),
                retry_after,
            };
            (eval, None)
        }
    }

    /// The first instant at which a hit of cost `c <= l` fits.
    fn admit_at(s: Sliding, amount: u64, window_ms: u64, cost: u64) -> u64 {
        let (lw, ww) = (amount as u128, window_ms as u128);
        if s.cur + cost <= amount {
            // Within the current window: need prev*(W-e) <= (L-cur-cost)*W.
            let free = (lw - (s.cur + cost) as u128) * ww;
            let keep = free / s.prev.max(1) as u128; // prev > 0 here, else it fits
            if keep < ww {
                return s.start + (ww - keep) as u64;
            }
            s.start + window_ms
        } else {
            // In the next window the current count becomes `prev`.
            let free = (lw - cost as u128) * ww;
            let keep = free / s.cur as u128;
            s.start + window_ms + (ww - keep.min(ww)) as u64
        }
    }
}

impl FixedSize for Sliding {
    const STRATEGY: Strategy = Strategy::SlidingWindowCounter;
    const TAG: u8 = 0xFB;

    #[inline(always)]
    fn decode_at(body: &[u8], pos: &mut usize) -> Option<Sliding> {
        Sliding::decode_at(body, pos)
    }

    fn encode(&self, out: &mut Scratch) {
        Sliding::encode(self, out)
    }

    #[inline(always)]
    fn evaluate(
        state: Option<Sliding>,
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> (LimitEval, Option<Sliding>) {
        Sliding::evaluate(state, quota.amount, quota.window_ms, cost, now)
    }

    fn end(state: Sliding, window_ms: u64, now: u64) -> Option<u64> {
        Sliding::usage_end(Some(state), window_ms, now)
    }

    /// `cur -= min(cost, cur)` in the current window (`prev` stays), in
    /// the state rolled forward to `now`.
    fn refunded(state: Sliding, quota: Quota, cost: u64, now: u64) -> Sliding {
        match Sliding::at(Some(state), quota.window_ms, now) {
            Some(live) if live.cur > 0 => Sliding {
                cur: live.cur - cost.min(live.cur),
                ..live
            },
            _ => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_estimate_and_retry() {
        // L = 10 per 1000 ms: fill the window anchored at 0.
        let mut s = None;
        for t in 0..10 {
            let (e, n) = Sliding::evaluate(s, 10, 1000, 1, t);
            assert!(e.allowed);
            s = n;
        }
        let (e, _) = Sliding::evaluate(s, 10, 1000, 1, 500);
        assert_eq!(
            (e.allowed, e.remaining, e.reset_after, e.retry_after),
            (false, 0, 1500, 600)
        );
        // At 1500 the previous 10 weigh 5: five more fit.
        let (e, _) = Sliding::evaluate(s, 10, 1000, 5, 1500);
        assert_eq!((e.allowed, e.remaining, e.reset_after), (true, 0, 1500));
        let (e, _) = Sliding::evaluate(s, 10, 1000, 6, 1500);
        assert_eq!((e.allowed, e.retry_after), (false, 100));
        // Two windows later nothing counts.
        let (e, n) = Sliding::evaluate(s, 10, 1000, 1, 2000);
        assert_eq!((e.allowed, e.remaining, e.reset_after), (true, 9, 2000));
        assert_eq!(n.unwrap().start, 2000);
        assert_eq!(Sliding::usage_end(s, 1000, 1999), Some(2000));
    }

    #[test]
    fn l_equal_one_spaces_hits_two_windows() {
        let (_, s) = Sliding::evaluate(None, 1, 100, 1, 0);
        let (e, _) = Sliding::evaluate(s, 1, 100, 1, 150);
        assert_eq!((e.allowed, e.retry_after), (false, 50));
        let (e, _) = Sliding::evaluate(s, 1, 100, 1, 199);
        assert_eq!((e.allowed, e.retry_after), (false, 1));
        let (e, _) = Sliding::evaluate(s, 1, 100, 1, 200);
        assert!(e.allowed);
    }
}
