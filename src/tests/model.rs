//! Property tests: the engine against simple reference models that keep a
//! plain list of admitted hits and answer every question by definition, by
//! scanning time ms by ms where a closed form would just repeat the engine.
//! A refund takes cost off the newest hits still counted (GCRA: moves the
//! TAT back); a penalty is an interval in which nothing is admitted.

use proptest::prelude::*;
use std::collections::BTreeMap;

use crate::args::{Command, parse_request};
use crate::buf::Tracked;
use crate::engine::{self, Bounds};
use crate::strategy::Strategy;
use proptest::strategy::Strategy as _;

const T0: u64 = 1_700_000_000_000;
const WINDOWS: [u64; 4] = [40, 100, 230, 1000];

/// What the model keeps per (window): the admitted hits, plus the anchor
/// (sliding) and the GCRA TAT as an exact fraction `num / den` ms.
#[derive(Clone, Debug, Default)]
struct ModelState {
    hits: Vec<(u64, u64)>,
    anchor: u64,
    tat: (u128, u128),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Verdict {
    allowed: bool,
    limit: u64,
    remaining: u64,
    reset_after: u64,
    retry_after: i64,
}

struct Model {
    strategy: Strategy,
    states: BTreeMap<u64, ModelState>,
    /// When the key's penalty ends (0: never had one).
    penalty_end: u64,
}

impl Model {
    /// Usage of a fixed window at `t`: the hits of the window running at t.
    fn fixed_used(s: &ModelState, w: u64, t: u64) -> u64 {
        let mut start = None::<u64>;
        let mut used = 0;
        for &(ht, c) in &s.hits {
            if start.is_none_or(|st| ht >= st + w) {
                start = Some(ht);
                used = 0;
            }
            used += c;
        }
        match start {
            Some(st) if t < st + w => used,
            _ => 0,
        }
    }

    fn moving_used(s: &ModelState, w: u64, t: u64) -> u64 {
        s.hits
            .iter()
            .filter(|&&(ht, _)| t < ht + w)
            .map(|&(_, c)| c)
            .sum()
    }

    /// (cur, prev, elapsed) of the sliding counter at `t`.
    fn sliding_parts(s: &ModelState, w: u64, t: u64) -> (u64, u64, u64) {
        if s.hits.is_empty() {
            return (0, 0, 0);
        }
        let ws = s.anchor + (t - s.anchor) / w * w;
        let sum = |a: u64, b: u64| -> u64 {
            s.hits
                .iter()
                .filter(|&&(ht, _)| ht >= s.anchor && ht >= a && ht < b)
                .map(|&(_, c)| c)
                .sum()
        };
        (sum(ws, ws + w), sum(ws.saturating_sub(w), ws), t - ws)
    }

    /// Free room scaled by the denominator, and that denominator: a hit of
    /// cost c fits at t iff room >= c * den.
    fn room(&self, s: &ModelState, l: u64, w: u64, b: u64, t: u64) -> (i128, i128) {
        match self.strategy {
            Strategy::FixedWindow => (l as i128 - Self::fixed_used(s, w, t) as i128, 1),
            Strategy::MovingWindow => (l as i128 - Self::moving_used(s, w, t) as i128, 1),
            Strategy::SlidingWindowCounter => {
                let (cur, prev, e) = Self::sliding_parts(s, w, t);
                let (l, w, cur, prev, e) =
                    (l as i128, w as i128, cur as i128, prev as i128, e as i128);
                (l * w - prev * (w - e) - cur * w, w)
            }
            Strategy::Gcra => {
                // In units of 1/l ms: T = w, capacity = b * w.
                let (n, d) = s.tat;
                let tat_u = if d == 0 {
                    0
                } else {
                    (n * l as u128).div_ceil(d)
                };
                let ahead = tat_u.saturating_sub(t as u128 * l as u128);
                ((b as u128 * w as u128) as i128 - ahead as i128, w as i128)
            }
        }
    }

    fn fits(&self, s: &ModelState, l: u64, w: u64, b: u64, c: u64, t: u64) -> bool {
        let (room, den) = self.room(s, l, w, b, t);
        room >= c as i128 * den
    }

    fn remaining(&self, s: &ModelState, l: u64, w: u64, b: u64, t: u64) -> u64 {
        let (room, den) = self.room(s, l, w, b, t);
        if room <= 0 { 0 } else { (room / den) as u64 }
    }

    fn cap(&self, l: u64, b: u64) -> u64 {
        if self.strategy == Strategy::Gcra {
            b
        } else {
            l
        }
    }

    /// Scans forward ms by ms for the first instant at which `pred` holds.
    fn first_instant(now: u64, horizon: u64, pred: impl Fn(u64) -> bool) -> u64 {
        (now..=now + horizon)
            .find(|&t| pred(t))
            .expect("within horizon")
            - now
    }

    fn judge(&self, s: &ModelState, l: u64, w: u64, b: u64, c: u64, now: u64) -> Verdict {
        let horizon = (16 + c) * w + 2;
        let cap = self.cap(l, b);
        if self.fits(s, l, w, b, c, now) {
            let mut after = s.clone();
            self.admit(&mut after, l, w, c, now);
            let full = |t: u64| self.remaining(&after, l, w, b, t) == cap;
            Verdict {
                allowed: true,
                limit: cap,
                remaining: self.remaining(&after, l, w, b, now),
                reset_after: Self::first_instant(now, horizon, full),
                retry_after: 0,
            }
        } else {
            let full = |t: u64| self.remaining(s, l, w, b, t) == cap;
            Verdict {
                allowed: false,
                limit: cap,
                remaining: self.remaining(s, l, w, b, now),
                reset_after: Self::first_instant(now, horizon, full),
                retry_after: if c > cap {
                    -1
                } else {
                    Self::first_instant(now, horizon, |t| self.fits(s, l, w, b, c, t)) as i64
                },
            }
        }
    }

    fn admit(&self, s: &mut ModelState, l: u64, w: u64, c: u64, now: u64) {
        if c == 0 {
            return;
        }
        if self.strategy == Strategy::SlidingWindowCounter {
            let (cur, prev, _) = Self::sliding_parts(s, w, now);
            if cur == 0 && prev == 0 {
                s.anchor = now;
            }
        }
        if self.strategy == Strategy::Gcra {
            let (n, d) = s.tat;
            let tat_u = if d == 0 {
                0
            } else {
                (n * l as u128).div_ceil(d)
            };
            let base = tat_u.max(now as u128 * l as u128);
            s.tat = (base + c as u128 * w as u128, l as u128);
        }
        s.hits.push((now, c));
    }

    /// Gives `c` back at `now` (RL.REFUND), as the contract says per
    /// strategy, in terms of the hits: the newest hits still counted in
    /// the current state lose their cost first.
    fn refund(&self, s: &mut ModelState, l: u64, w: u64, c: u64, now: u64) {
        if self.strategy == Strategy::Gcra {
            let (n, d) = s.tat;
            if d == 0 {
                return;
            }
            let tat_u = (n * l as u128).div_ceil(d);
            let floor = now as u128 * l as u128;
            if tat_u > floor {
                s.tat = (
                    tat_u.saturating_sub(c as u128 * w as u128).max(floor),
                    l as u128,
                );
            }
            return;
        }
        // The hits the current state counts: fixed, those of the running
        // window; sliding, those of the current window (not the previous);
        // moving, those still in the window.
        let counted_from = match self.strategy {
            Strategy::FixedWindow => {
                if Self::fixed_used(s, w, now) == 0 {
                    return;
                }
                let mut start = None::<u64>;
                for &(ht, _) in &s.hits {
                    if start.is_none_or(|st| ht >= st + w) {
                        start = Some(ht);
                    }
                }
                start.expect("usage means hits")
            }
            Strategy::SlidingWindowCounter => {
                if s.hits.is_empty() {
                    return;
                }
                s.anchor + (now - s.anchor) / w * w
            }
            _ => now.saturating_sub(w - 1),
        };
        let mut left = c;
        for h in s.hits.iter_mut().rev() {
            if left == 0 || h.0 < counted_from {
                break;
            }
            let take = left.min(h.1);
            h.1 -= take;
            left -= take;
        }
        s.hits.retain(|h| h.1 > 0);
    }

    /// The instant the key should expire: the latest end of usage.
    fn expiry(&self, now: u64, l_of: &BTreeMap<u64, u64>) -> Option<u64> {
        self.states
            .iter()
            .filter_map(|(&w, s)| {
                let l = l_of[&w];
                let full = |t: u64| self.remaining(s, l, w, l, t) == l;
                if full(now) {
                    None
                } else {
                    Some(now + Self::first_instant(now, 2 * w + l * w + 2, full))
                }
            })
            .max()
            .max((self.penalty_end > now).then_some(self.penalty_end))
    }
}

#[derive(Clone, Debug)]
struct Op {
    dt: u64,
    /// Bit i set: the call names WINDOWS[i].
    mask: u8,
    cost: u64,
    burst: u64,
    /// 0, 1: RL.HIT; 2: RL.TEST; 3: RL.STATS; 4: RL.REFUND.
    kind: u8,
    /// Change the amount of WINDOWS[i] to this before the call.
    relimit: Option<(usize, u64)>,
    /// `PENALTY d` on a hit or test, in ms.
    penalty: Option<u64>,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    (
        prop_oneof![Just(0u64), 1u64..20, 20u64..400, Just(1000)],
        1u8..16,
        prop_oneof![4 => Just(1u64), 1 => Just(0u64), 2 => 2u64..4, 1 => 4u64..9],
        1u64..6,
        0u8..5,
        proptest::option::weighted(0.15, (0usize..4, 1u64..9)),
        proptest::option::weighted(0.2, 1u64..600),
    )
        .prop_map(|(dt, mask, cost, burst, kind, relimit, penalty)| Op {
            dt,
            mask,
            cost,
            burst,
            kind,
            relimit,
            penalty,
        })
}

fn run(strategy: Strategy, amounts: [u64; 4], ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut model = Model {
        strategy,
        states: BTreeMap::new(),
        penalty_end: 0,
    };
    let mut l_of: BTreeMap<u64, u64> = WINDOWS.iter().copied().zip(amounts).collect();
    let mut value: Vec<u8> = Vec::new();
    let mut expire_at = 0u64;
    let mut now = T0;
    for op in ops {
        now += op.dt;
        // GCRA keeps its TAT in units of the amount it was written under;
        // changing the amount rounds up (tested separately), so keep it fixed.
        if let (Some((i, l)), false) = (op.relimit, strategy == Strategy::Gcra) {
            l_of.insert(WINDOWS[i], l);
        }
        // Redis drops the key once now > expire_at.
        if !value.is_empty() && now > expire_at {
            value.clear();
        }
        let chosen: Vec<u64> = (0..4)
            .filter(|i| op.mask & (1 << i) != 0)
            .map(|i| WINDOWS[i])
            .collect();
        let text = chosen
            .iter()
            .map(|w| format!("{}/{}ms", l_of[w], w))
            .collect::<Vec<_>>()
            .join(";");
        let cost = op.cost.to_string();
        let burst = op.burst.to_string();
        let mut opts: Vec<&[u8]> = vec![
            b"STRATEGY",
            strategy.name().as_bytes(),
            b"COST",
            cost.as_bytes(),
        ];
        if strategy == Strategy::Gcra {
            opts.extend_from_slice(&[b"BURST", burst.as_bytes()]);
        }
        let penalty = op.penalty.map(|d| format!("{d}ms"));
        if let (Some(d), 0..=2) = (&penalty, op.kind) {
            opts.extend_from_slice(&[b"PENALTY", d.as_bytes()]);
        }
        let req = parse_request(Command::Hit, text.as_bytes(), &opts).unwrap();
        let b = |w: u64| {
            if strategy == Strategy::Gcra {
                op.burst
            } else {
                l_of[&w]
            }
        };
        let stored = (!value.is_empty()).then_some(value.as_slice());

        let penalty_left = model.penalty_end.saturating_sub(now);
        // Under a penalty: nothing remains and both waits are at least
        // what is left of it (a -1 stays -1).
        let locked = |v: Verdict| -> Verdict {
            if penalty_left == 0 {
                return v;
            }
            Verdict {
                allowed: false,
                remaining: 0,
                reset_after: v.reset_after.max(penalty_left),
                retry_after: if v.retry_after < 0 {
                    -1
                } else {
                    v.retry_after.max(penalty_left as i64)
                },
                ..v
            }
        };

        if op.kind == 4 {
            // RL.REFUND of `cost` (at least 1).
            let c = op.cost.max(1);
            let mut changed = false;
            if !value.is_empty() {
                let c_text = c.to_string();
                let mut refund_opts: Vec<&[u8]> = vec![
                    b"STRATEGY",
                    strategy.name().as_bytes(),
                    b"COST",
                    c_text.as_bytes(),
                ];
                if strategy == Strategy::Gcra {
                    refund_opts.extend_from_slice(&[b"BURST", burst.as_bytes()]);
                }
                let refund_req =
                    parse_request(Command::Refund, text.as_bytes(), &refund_opts).unwrap();
                let mut t = Tracked::new(&mut value);
                match engine::refund(&mut t, &refund_req, now).unwrap() {
                    engine::Written::Unchanged => {}
                    engine::Written::Emptied => value.clear(),
                    engine::Written::Changed(end) => {
                        changed = true;
                        prop_assert!(end > now);
                        prop_assert_eq!(Some(end), engine::expiry(&value, now).unwrap());
                        expire_at = end;
                    }
                }
            }
            for &w in &chosen {
                if let Some(s) = model.states.get_mut(&w) {
                    let mut s2 = s.clone();
                    model.refund(&mut s2, l_of[&w], w, c, now);
                    *model.states.get_mut(&w).unwrap() = s2;
                }
            }
            if changed && strategy != Strategy::Gcra {
                prop_assert_eq!(
                    Some(expire_at),
                    model.expiry(now, &l_of),
                    "expiry after a refund at +{}",
                    now - T0
                );
            }
            continue;
        }

        if op.kind == 3 {
            let stats = engine::stats(stored, &req, now).unwrap();
            for (st, &w) in stats.iter().zip(&chosen) {
                let s = model.states.get(&w).cloned().unwrap_or_default();
                let zero = locked(model.judge(&s, l_of[&w], w, b(w), 0, now));
                let one = locked(model.judge(&s, l_of[&w], w, b(w), 1, now));
                prop_assert_eq!(
                    (
                        st.limit,
                        st.window_ms,
                        st.remaining,
                        st.reset_after,
                        st.retry_after,
                        st.penalty_ms
                    ),
                    (
                        zero.limit,
                        w,
                        zero.remaining,
                        zero.reset_after,
                        one.retry_after,
                        penalty_left
                    ),
                    "stats of {}ms at +{}",
                    w,
                    now - T0
                );
            }
            continue;
        }

        let verdicts: Vec<Verdict> = chosen
            .iter()
            .map(|&w| {
                let s = model.states.get(&w).cloned().unwrap_or_default();
                model.judge(&s, l_of[&w], w, b(w), op.cost, now)
            })
            .collect();
        let allowed = verdicts.iter().all(|v| v.allowed);
        let rank = |r: i64| if r < 0 { u64::MAX } else { r as u64 };
        let binding = if allowed {
            let min = verdicts.iter().map(|v| v.remaining).min().unwrap();
            verdicts.iter().find(|v| v.remaining == min).unwrap()
        } else {
            let max = verdicts
                .iter()
                .filter(|v| !v.allowed)
                .map(|v| rank(v.retry_after))
                .max()
                .unwrap();
            verdicts
                .iter()
                .find(|v| !v.allowed && rank(v.retry_after) == max)
                .unwrap()
        };
        let mut binding = *binding;
        let mut allowed = allowed;
        let mut starts = None;
        if penalty_left > 0 {
            allowed = false;
            binding = locked(Verdict {
                retry_after: if binding.allowed {
                    0
                } else {
                    binding.retry_after
                },
                ..binding
            });
        } else if let Some(d) = op.penalty.filter(|_| op.kind <= 2) {
            let retry = if allowed { 0 } else { binding.retry_after };
            if !allowed && retry >= 0 && op.cost > 0 {
                starts = Some(now + d);
                binding = Verdict {
                    allowed: false,
                    remaining: 0,
                    reset_after: binding.reset_after.max(d),
                    retry_after: retry.max(d as i64),
                    ..binding
                };
            }
        }
        let got = engine::decide(stored, &req, now).unwrap().0;
        prop_assert_eq!(
            (
                got.allowed,
                got.limit,
                got.remaining,
                got.reset_after,
                got.retry_after
            ),
            (
                allowed,
                binding.limit,
                binding.remaining,
                binding.reset_after,
                if allowed { 0 } else { binding.retry_after }
            ),
            "{} cost {} at +{}",
            text,
            op.cost,
            now - T0
        );
        let is_hit = op.kind != 2;
        if let (true, Some(end)) = (is_hit, starts) {
            // The breach writes the penalty and nothing else.
            model.penalty_end = end;
            let (_, plan) = engine::decide(stored, &req, now).unwrap();
            prop_assert!(plan.starts_penalty());
            let mut t = Tracked::new(&mut value);
            expire_at = engine::commit(
                &mut t,
                &mut { plan },
                &req,
                now,
                Bounds::with_log(engine::MAX_VALUE_LEN),
            )
            .unwrap();
            prop_assert_eq!(Some(expire_at), engine::expiry(&value, now).unwrap());
            prop_assert!(expire_at >= end);
            if strategy != Strategy::Gcra {
                prop_assert_eq!(Some(expire_at), model.expiry(now, &l_of));
            }
            continue;
        }
        if is_hit && allowed && op.cost > 0 {
            for &w in &chosen {
                let s = model.states.entry(w).or_default();
                let mut s2 = s.clone();
                model.admit(&mut s2, l_of[&w], w, op.cost, now);
                *model.states.get_mut(&w).unwrap() = s2;
            }
            // The module's path: the plan `decide` made (its index and, for
            // one limit, what judging computed), handed to `commit`.
            let (_, written) = engine::hit_vec(
                &mut value,
                &req,
                now,
                Bounds::with_log(engine::MAX_VALUE_LEN),
            )
            .unwrap();
            expire_at = written.expect("an admitted hit with a cost writes");
            // The expiry commit computed from the states it wrote is the one
            // read back from the value.
            prop_assert_eq!(Some(expire_at), engine::expiry(&value, now).unwrap());
            if strategy != Strategy::Gcra {
                prop_assert_eq!(
                    Some(expire_at),
                    model.expiry(now, &l_of),
                    "expiry at +{}",
                    now - T0
                );
            }
            prop_assert!(expire_at > now);
        }
    }
    Ok(())
}

fn amounts() -> impl proptest::strategy::Strategy<Value = [u64; 4]> {
    [1u64..9, 1u64..9, 1u64..9, 1u64..9]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fixed_window_matches_model(a in amounts(), ops in proptest::collection::vec(op(), 1..60)) {
        run(Strategy::FixedWindow, a, ops)?;
    }

    #[test]
    fn moving_window_matches_model(a in amounts(), ops in proptest::collection::vec(op(), 1..60)) {
        run(Strategy::MovingWindow, a, ops)?;
    }

    #[test]
    fn sliding_window_counter_matches_model(a in amounts(), ops in proptest::collection::vec(op(), 1..60)) {
        run(Strategy::SlidingWindowCounter, a, ops)?;
    }

    #[test]
    fn gcra_matches_exact_rational_model(a in amounts(), ops in proptest::collection::vec(op(), 1..60)) {
        run(Strategy::Gcra, a, ops)?;
    }
}
