//! The pure core under a misbehaving clock: `now` jumping backwards below
//! the stored timestamps, jumping far forwards (up to ten years at a time,
//! up to the last storable instant), standing still, in any mix.
//!
//! What is checked, for every strategy (one or two limits per request):
//!
//! - Nothing panics, every stored value still decodes, and an admitted hit
//!   always commits with an expiry after `now`.
//! - Never more than L, in the window that each strategy defines. Let
//!   `m` be the running maximum of `now` over the admitted hits (the
//!   monotone timeline: what the clock has been at least, as far as the
//!   state knows):
//!     * fixed-window: the admitted cost charged to one of its windows
//!       (`[start, start + W)` as stored) is at most L, and the windows
//!       never overlap: a new window starts at least W after the last one.
//!     * sliding-window-counter: likewise, per anchored window.
//!     * moving-window: in every interval `[a, a + W)` of the monotone
//!       timeline the admitted cost is at most L (each hit is logged at `m`,
//!       which is what the stored log holds).
//!     * gcra: over any admitted hits `i..=j`, the admitted
//!       `cost * W <= (m_j - m_i) * L + B * W`: a burst of B, then the rate
//!       L/W, never more (so at most B + L - 1 in a half-open interval of
//!       length W).
//! - Heals by itself: with `M` the latest `now` seen, at `M + H` (H = W for
//!   fixed and moving, 2W for sliding, ceil(B*W/L) for gcra) every limit is
//!   full again (remaining = L, no reset time, a hit of cost L admitted)
//!   and the key would have expired. Before that, no reply asks to wait
//!   past `M + H`. So after a step back of J ms the limiter is normal
//!   again at most J + H later, without RL.CLEAR; a key written while the
//!   clock was far ahead stays as strict as it was until the clock catches
//!   up (see CHANGELOG.md, "Hardening history").

use crate::args::{Command, Request, parse_request};
use crate::buf::Tracked;
use crate::codec::MAX_TIME;
use crate::decision::Verdict;
use crate::engine::{self, Bounds};
use crate::record::{State, find, index};
use crate::strategy::Strategy;
use proptest::prelude::*;
use proptest::strategy::Strategy as _;

/// A 2026 server clock.
const T0: u64 = 1_780_000_000_000;
const YEAR: u64 = 365 * 86_400_000;
/// The latest `now` the tests use: the engine's last writable instant
/// (engine::MAX_NOW) less the two days the heal checks step forward.
const TOP: u64 = engine::MAX_NOW - 2 * 86_400_000;

/// The module's size bounds at their most permissive (the clock is what
/// these tests vary).
fn bounds() -> Bounds {
    Bounds::with_log(engine::MAX_VALUE_LEN)
}

fn request(strategy: Strategy, limits: &[(u64, u64)], cost: u64, burst: Option<u64>) -> Request {
    let text: Vec<String> = limits.iter().map(|(l, w)| format!("{l}/{w}ms")).collect();
    let cost = cost.to_string();
    let burst = burst.map(|b| b.to_string());
    let mut opts: Vec<&[u8]> = vec![
        b"STRATEGY",
        strategy.name().as_bytes(),
        b"COST",
        cost.as_bytes(),
    ];
    if let Some(b) = &burst {
        opts.extend([&b"BURST"[..], b.as_bytes()]);
    }
    parse_request(Command::Hit, text.join(";").as_bytes(), &opts).expect("valid request")
}

/// One admitted hit, as the checks need it.
#[derive(Clone, Debug)]
struct Admitted {
    cost: u64,
    /// Running maximum of `now` over the admitted hits, this one included.
    m: u64,
    /// Per limit: the stored window start (fixed, sliding) after the hit.
    start: Vec<u64>,
}

struct Sim {
    strategy: Strategy,
    limits: Vec<(u64, u64)>,
    burst: Option<u64>,
    value: Vec<u8>,
    admitted: Vec<Admitted>,
    /// Latest `now` seen by any call.
    max_now: u64,
    m: u64,
}

impl Sim {
    fn new(strategy: Strategy, limits: Vec<(u64, u64)>, burst: Option<u64>) -> Sim {
        Sim {
            strategy,
            limits,
            burst,
            value: Vec::new(),
            admitted: Vec::new(),
            max_now: 0,
            m: 0,
        }
    }

    fn stored(&self) -> Option<&[u8]> {
        (!self.value.is_empty()).then_some(&self.value[..])
    }

    /// The time by which every limit must be full again, given `max_now`.
    fn heal_at(&self, max_now: u64) -> u64 {
        self.limits
            .iter()
            .map(|&(l, w)| {
                max_now
                    + match self.strategy {
                        Strategy::FixedWindow | Strategy::MovingWindow => w,
                        Strategy::SlidingWindowCounter => 2 * w,
                        Strategy::Gcra => (self.burst.unwrap_or(l) * w).div_ceil(l),
                    }
            })
            .max()
            .unwrap()
    }

    /// RL.HIT at `now`.
    fn hit(&mut self, cost: u64, now: u64) -> Verdict {
        self.max_now = self.max_now.max(now);
        let req = request(self.strategy, &self.limits, cost, self.burst);
        let (reply, plan) = engine::decide(self.stored(), &req, now).expect("state decodes");
        let bound = self.heal_at(self.max_now) - now;
        assert!(
            reply.reset_after <= bound,
            "{reply:?} at {now}: bound {bound}"
        );
        assert!(
            reply.retry_after <= bound as i64,
            "{reply:?} at {now}: bound {bound}"
        );
        let stats = engine::stats(self.stored(), &req, now).expect("state decodes");
        for s in &stats {
            assert!(
                s.reset_after <= bound && s.retry_after <= bound as i64,
                "{s:?}"
            );
        }
        if reply.allowed && cost > 0 {
            let mut t = Tracked::new(&mut self.value);
            let expire_at = engine::commit(&mut t, &mut { plan }, &req, now, bounds())
                .expect("admitted hit commits");
            assert!(expire_at > now, "expiry {expire_at} not after {now}");
            self.m = self.m.max(now);
            let records = index(&self.value).expect("committed value decodes");
            let start = self
                .limits
                .iter()
                .map(|&(_, w)| {
                    let r = find(&records, self.strategy, w).expect("record of each limit");
                    match r.state(&self.value).expect("record decodes") {
                        State::FixedWindow(f) => f.start,
                        State::SlidingWindowCounter(s) => s.start,
                        State::MovingWindow(v) => {
                            // The log stamps each hit at the monotone time.
                            assert_eq!(v.last(), self.m, "moving log time");
                            v.last()
                        }
                        State::Gcra(_) => 0,
                    }
                })
                .collect();
            self.admitted.push(Admitted {
                cost,
                m: self.m,
                start,
            });
        }
        reply
    }

    /// Never more than L in the strategy's window (see the module docs).
    fn check_windows(&self) {
        for (i, &(l, w)) in self.limits.iter().enumerate() {
            match self.strategy {
                Strategy::FixedWindow | Strategy::SlidingWindowCounter => {
                    let mut windows: Vec<(u64, u64)> = Vec::new(); // (start, cost)
                    for a in &self.admitted {
                        match windows.last_mut() {
                            Some((s, c)) if *s == a.start[i] => *c += a.cost,
                            Some((s, _)) => {
                                assert!(
                                    a.start[i] >= *s + w,
                                    "{:?}: window at {} overlaps the one at {s} (W {w})",
                                    self.strategy,
                                    a.start[i]
                                );
                                windows.push((a.start[i], a.cost));
                            }
                            None => windows.push((a.start[i], a.cost)),
                        }
                    }
                    for (s, c) in windows {
                        assert!(
                            c <= l,
                            "{:?}: {c} admitted in the window at {s}, L {l}",
                            self.strategy
                        );
                    }
                }
                Strategy::MovingWindow => {
                    let mut from = 0;
                    let mut sum = 0;
                    for (j, a) in self.admitted.iter().enumerate() {
                        sum += a.cost;
                        while self.admitted[from].m + w <= a.m {
                            sum -= self.admitted[from].cost;
                            from += 1;
                        }
                        assert!(
                            sum <= l,
                            "moving: {sum} admitted in ({}, {}], L {l} W {w} (hits {from}..={j})",
                            a.m.saturating_sub(w),
                            a.m
                        );
                    }
                }
                Strategy::Gcra => {
                    let b = u128::from(self.burst.unwrap_or(l));
                    for x in 0..self.admitted.len() {
                        let mut cost = 0u128;
                        for y in x..self.admitted.len() {
                            cost += u128::from(self.admitted[y].cost);
                            let span = u128::from(self.admitted[y].m - self.admitted[x].m);
                            assert!(
                                cost * u128::from(w) <= span * u128::from(l) + b * u128::from(w),
                                "gcra: cost {cost} over {span} ms, L {l} W {w} B {b}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Full again at the heal time, by itself.
    fn check_heals(&mut self) {
        let at = self.heal_at(self.max_now);
        if let Some(v) = self.stored() {
            assert_eq!(
                engine::expiry(v, at).unwrap(),
                None,
                "key still live at {at}"
            );
        }
        let req = request(self.strategy, &self.limits, 1, self.burst);
        for (s, &(l, _)) in engine::stats(self.stored(), &req, at)
            .unwrap()
            .iter()
            .zip(&self.limits)
        {
            let full = self.burst.unwrap_or(l);
            assert_eq!(
                (s.remaining, s.reset_after, s.retry_after),
                (full, 0, 0),
                "{s:?}"
            );
        }
        let min_full = self
            .limits
            .iter()
            .map(|&(l, _)| self.burst.unwrap_or(l))
            .min()
            .unwrap();
        let reply = self.hit(min_full, at);
        assert!(
            reply.allowed,
            "a full-size hit is denied at the heal time: {reply:?}"
        );
    }
}

/// One step of the clock.
#[derive(Clone, Debug)]
enum Step {
    Forward(u64),
    Back(u64),
    /// Back to this far before T0 (below every stored time).
    BackBelowAll(u64),
    FarForward(u64),
    Still,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    prop_oneof![
        6 => (0u64..3_000).prop_map(Step::Forward),
        3 => (0u64..3_000).prop_map(Step::Back),
        1 => (0u64..2 * YEAR).prop_map(Step::BackBelowAll),
        1 => (0u64..10 * YEAR).prop_map(Step::FarForward),
        2 => Just(Step::Still),
    ]
}

fn run(strategy: Strategy, limits: Vec<(u64, u64)>, burst: Option<u64>, ops: Vec<(Step, u64)>) {
    let mut sim = Sim::new(strategy, limits, burst);
    let mut now = T0;
    for (st, cost) in ops {
        now = match st {
            Step::Forward(d) => now + d,
            Step::Back(d) => now.saturating_sub(d),
            Step::BackBelowAll(d) => T0.saturating_sub(d),
            Step::FarForward(d) => (now + d).min(TOP),
            Step::Still => now,
        };
        sim.hit(cost, now);
    }
    sim.check_windows();
    sim.check_heals();
}

fn limits() -> impl proptest::strategy::Strategy<Value = Vec<(u64, u64)>> {
    let one = (
        1u64..6,
        prop::sample::select(vec![1u64, 7, 100, 1000, 2500, 86_400_000]),
    );
    prop::collection::vec(one, 1..=2)
        .prop_filter("distinct windows", |v| v.len() < 2 || v[0].1 != v[1].1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fixed_window_under_clock_chaos(
        l in limits(),
        ops in prop::collection::vec((step(), 0u64..4), 1..200),
    ) {
        run(Strategy::FixedWindow, l, None, ops);
    }

    #[test]
    fn moving_window_under_clock_chaos(
        l in limits(),
        ops in prop::collection::vec((step(), 0u64..4), 1..200),
    ) {
        run(Strategy::MovingWindow, l, None, ops);
    }

    #[test]
    fn sliding_window_under_clock_chaos(
        l in limits(),
        ops in prop::collection::vec((step(), 0u64..4), 1..200),
    ) {
        run(Strategy::SlidingWindowCounter, l, None, ops);
    }

    #[test]
    fn gcra_under_clock_chaos(
        l in limits(),
        burst in prop::option::of(1u64..8),
        ops in prop::collection::vec((step(), 0u64..4), 1..200),
    ) {
        run(Strategy::Gcra, l, burst, ops);
    }
}

/// The same story told with exact numbers, for each strategy: fill the
/// limit, step the clock back an hour below the stored times (nothing more
/// is admitted and the wait is exact), then forward past the heal time.
#[test]
fn step_back_an_hour_then_heal() {
    const HOUR: u64 = 3_600_000;
    for strategy in Strategy::ALL {
        let mut sim = Sim::new(strategy, vec![(3, 1000)], None);
        for _ in 0..3 {
            assert!(sim.hit(1, T0).allowed, "{strategy:?}");
        }
        let back = T0 - HOUR;
        let r = sim.hit(1, back);
        assert!(
            !r.allowed,
            "{strategy:?}: admitted past L after a step back"
        );
        let expected_wait = match strategy {
            // The window opened at T0 frees at T0 + W.
            Strategy::FixedWindow | Strategy::MovingWindow => HOUR + 1000,
            // The three hits weigh 3 until T0 + W, then less: one fits
            // once prev * (W - e) / W <= 2, at T0 + W + W/3.
            Strategy::SlidingWindowCounter => HOUR + 1000 + 334,
            // TAT = T0 + W; the next cell conforms at TAT - B*T + T.
            Strategy::Gcra => HOUR + 334,
        };
        assert_eq!(r.retry_after, expected_wait as i64, "{strategy:?}");
        assert_eq!(r.remaining, 0, "{strategy:?}");
        sim.check_windows();
        sim.check_heals();
    }
}

/// `now` at 0 (a clock reset to the epoch) and at the last instant whose
/// hits are storable, against state written in 2026.
#[test]
fn epoch_and_far_future_clocks() {
    for strategy in Strategy::ALL {
        let mut sim = Sim::new(strategy, vec![(2, 1000), (5, 86_400_000)], None);
        assert!(sim.hit(1, T0).allowed);
        assert!(sim.hit(1, T0).allowed);
        assert!(!sim.hit(1, 0).allowed, "{strategy:?} at the epoch");
        assert!(sim.hit(1, TOP).allowed, "{strategy:?} at TOP");
        assert!(!sim.hit(2, T0).allowed, "{strategy:?} back from TOP");
        sim.check_windows();
        sim.check_heals();
    }
}

/// Finding F1 (CHANGELOG.md, "Hardening history"; fixed: the engine refuses a `now` past
/// engine::MAX_NOW): a clock past the storable range. Stored
/// times are 48-bit (codec::MAX_TIME, the year 10889); the engine neither
/// refuses nor clamps a later `now`, so an admitted hit can be stored
/// truncated (the commit then fails: the module would answer WRONGTYPE on a
/// fresh key) and near u64::MAX `start + W` overflows (a panic with
/// overflow checks, a wrong reply without). Either refusing such a `now`
/// or answering correctly passes this test.
#[test]
fn clock_past_the_storable_range_is_refused_or_correct() {
    let mut wrong = Vec::new();
    for now in [MAX_TIME - 1, MAX_TIME + 1, 1 << 63, u64::MAX - 1] {
        for strategy in Strategy::ALL {
            let outcome = std::panic::catch_unwind(|| -> Result<(), String> {
                let req = request(strategy, &[(10, 1000)], 1, None);
                let Ok((reply, plan)) = engine::decide(None, &req, now) else {
                    return Ok(()); // refused: fine
                };
                if !reply.allowed || reply.remaining != 9 || reply.reset_after == 0 {
                    return Err(format!("first hit answered {reply:?}"));
                }
                let mut value = Vec::new();
                let mut t = Tracked::new(&mut value);
                let expire_at = engine::commit(&mut t, &mut { plan }, &req, now, bounds())
                    .map_err(|e| format!("admitted, then commit failed: {e:?}"))?;
                if expire_at <= now {
                    return Err(format!("expiry {expire_at} not after now"));
                }
                let (again, _) = engine::decide(Some(&value), &req, now)
                    .map_err(|e| format!("stored value unreadable: {e:?}"))?;
                if again.remaining != 8 {
                    return Err(format!("second hit answered {again:?}"));
                }
                Ok(())
            });
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => wrong.push(format!("{strategy:?} at now={now}: {e}")),
                Err(_) => wrong.push(format!("{strategy:?} at now={now}: panic")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
