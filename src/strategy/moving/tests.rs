//! The log layouts against a plain list of hits: every verdict, every
//! write replayed from its dirty ranges, the layout changes (flat to ring,
//! growth with and without wrap, released slots, ring to flat) exercised.
//! Unit tests use 48-byte blocks and a 24-byte flat limit.

use super::*;
use crate::buf::Tracked;
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000;

/// A bare record: tag at 0, body from 1 (the window is passed apart).
fn view(value: &[u8]) -> View<'_> {
    let (v, n) = View::decode(value[0] == RING_TAG, &value[1..]).expect("decodes");
    assert_eq!(n + 1, value.len(), "the body fills the value");
    v
}

#[derive(Default, Clone)]
struct Model {
    hits: Vec<(u64, u64)>,
}

impl Model {
    /// RL.REFUND: the newest hits still counted give `c` back first.
    fn refund(&mut self, w: u64, c: u64, now: u64) {
        let mut left = c;
        for h in self.hits.iter_mut().rev() {
            if left == 0 || h.0 + w <= now {
                break;
            }
            let take = left.min(h.1);
            h.1 -= take;
            left -= take;
        }
        self.hits.retain(|h| h.1 > 0);
    }

    fn judge(&self, l: u64, w: u64, c: u64, now: u64) -> LimitEval {
        let live: Vec<_> = self.hits.iter().filter(|h| h.0 + w > now).collect();
        let used: u64 = live.iter().map(|h| h.1).sum();
        let last = self.hits.last().map(|h| h.0);
        let until = |t: u64| (t + w).saturating_sub(now);
        if used + c <= l {
            let last_after = if c == 0 {
                last
            } else {
                Some(last.unwrap_or(now).max(now))
            };
            let reset = if used + c > 0 {
                until(last_after.unwrap())
            } else {
                0
            };
            return LimitEval {
                allowed: true,
                limit: l,
                remaining: l - used - c,
                reset_after: reset,
                retry_after: 0,
            };
        }
        let retry = if c > l {
            -1
        } else {
            let mut freed = 0;
            let t = live.iter().find(|h| {
                freed += h.1;
                freed >= used + c - l
            });
            until(t.unwrap().0) as i64
        };
        LimitEval {
            allowed: false,
            limit: l,
            remaining: l.saturating_sub(used),
            reset_after: if used > 0 { until(last.unwrap()) } else { 0 },
            retry_after: retry,
        }
    }
}

/// What a run saw of the layouts.
#[derive(Default, Debug)]
struct Seen {
    rings: usize,
    to_ring: usize,
    to_flat: usize,
    grew_wrapped: usize,
    released: usize,
    multi_block_search: usize,
    refunds: usize,
}

/// Plays hits (gap, cost) against one log and the model; `l` the limit.
/// Each step also checks a refund; with `keep_refunds`, every third step
/// keeps it.
fn play(
    l: u64,
    w: u64,
    ops: &[(u64, u64)],
    keep_refunds: bool,
    seen: &mut Seen,
) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut now = T0;
    let mut value: Vec<u8> = Vec::new();
    for &(gap, c) in ops {
        now += gap;
        let v = (!value.is_empty()).then(|| view(&value));
        for probe in [0, c] {
            let got = evaluate(v, l, w, probe, now).expect("evaluates");
            prop_assert_eq!(
                got,
                model.judge(l, w, probe, now),
                "cost {} at +{}",
                probe,
                now - T0
            );
        }
        if let Some(v) = v {
            // Reads agree with what a compaction keeps.
            let body = v.compacted(w, now).unwrap();
            let free = v.reclaimable(w, now).unwrap();
            match body {
                None => prop_assert_eq!(free, None),
                Some(b) => {
                    prop_assert_eq!(free, Some(value.len() - 1 - b.len()));
                    let mut whole = vec![value[0]];
                    whole.extend_from_slice(&b);
                    let cv = view(&whole);
                    prop_assert_eq!(
                        evaluate(Some(cv), l, w, c, now).unwrap(),
                        model.judge(l, w, c, now)
                    );
                    prop_assert!(cv.live_bytes(w, now).unwrap() <= v.live_bytes(w, now).unwrap());
                }
            }
            if let View::Ring(r) = v
                && r.live_at(w, now).unwrap().block > 1
            {
                seen.multi_block_search += 1;
            }
            // A refund of `c + 1` leaves what the model's leaves; every
            // third step keeps it.
            let mut refunded = model.clone();
            refunded.refund(w, c + 1, now);
            let quota = Quota {
                amount: l,
                window_ms: w,
                burst: l,
            };
            let after = match Moving::refund(&v, quota, c + 1, now).unwrap() {
                Rewrite::Keep => value.clone(),
                Rewrite::Drop => Vec::new(),
                Rewrite::Body(b) => {
                    let mut whole = vec![value[0]];
                    whole.extend_from_slice(&b);
                    whole
                }
                Rewrite::Patch(patches) => {
                    seen.refunds += 1;
                    let mut whole = value.clone();
                    for (at, bytes) in patches {
                        whole[1 + at..1 + at + bytes.len()].copy_from_slice(&bytes);
                    }
                    whole
                }
            };
            for probe in [0, c] {
                let av = (!after.is_empty()).then(|| view(&after));
                prop_assert_eq!(
                    evaluate(av, l, w, probe, now).unwrap(),
                    refunded.judge(l, w, probe, now),
                    "cost {} after a refund of {} at +{}",
                    probe,
                    c + 1,
                    now - T0
                );
            }
            if keep_refunds && gap % 3 == 0 {
                value = after;
                model = refunded;
                continue;
            }
        }
        if !model.judge(l, w, c, now).allowed || c == 0 {
            continue;
        }
        let before = value.clone();
        let was_ring = before.first() == Some(&RING_TAG);
        if value.is_empty() {
            value.push(FLAT_TAG);
            put_new_body(&mut value, now, c);
        } else {
            let mut t = Tracked::new(&mut value);
            charge(&mut t, 0, 1, w, c, now).expect("charges");
            // The write replays from its dirty ranges (what replicas get),
            // unless the value shrank (then it is sent whole).
            if !t.shrunk() {
                let mut replay = before.clone();
                replay.resize(t.bytes().len(), 0);
                for (a, b) in t.dirty_ranges(0) {
                    replay[a..b].copy_from_slice(&t.bytes()[a..b]);
                }
                prop_assert_eq!(&replay[..], t.bytes(), "dirty ranges miss a change");
            } else {
                seen.released += usize::from(was_ring && value[0] == RING_TAG);
            }
        }
        let last = model.hits.last().map_or(now, |h| h.0.max(now));
        model.hits.push((last, c));
        let is_ring = value[0] == RING_TAG;
        seen.rings += usize::from(is_ring);
        seen.to_ring += usize::from(is_ring && !was_ring && !before.is_empty());
        seen.to_flat += usize::from(!is_ring && was_ring);
        if was_ring && is_ring {
            let ((slots, head), (slots_after, _)) = (ring_header(&before), ring_header(&value));
            seen.grew_wrapped += usize::from(slots_after > slots && head > 0);
        }
        // The new value decodes and counts what the model counts.
        view(&value);
    }
    Ok(())
}

/// (slots, head) of a ring; (0, 0) for a flat log.
fn ring_header(value: &[u8]) -> (usize, usize) {
    match view(value) {
        View::Ring(r) => r.shape(),
        View::Flat(_) => (0, 0),
    }
}

fn gaps() -> impl proptest::strategy::Strategy<Value = u64> {
    prop_oneof![6 => 0u64..4, 2 => 4u64..40, 1 => 40u64..400, 1 => Just(1000u64)]
}

fn costs() -> impl proptest::strategy::Strategy<Value = u64> {
    prop_oneof![8 => Just(1u64), 2 => 2u64..5, 1 => Just(0u64), 1 => 100u64..300]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every verdict equals the model's, through every layout change.
    #[test]
    fn logs_match_the_model(
        l in prop_oneof![Just(1000u64), 20u64..200],
        w in prop_oneof![Just(100u64), Just(500u64), 30u64..2000],
        ops in proptest::collection::vec((gaps(), costs()), 1..300),
        keep in any::<bool>(),
    ) {
        play(l, w, &ops, keep, &mut Seen::default())?;
    }
}

/// A long run whose rate rises and falls: the log turns into a ring, grows
/// at its end and while wrapped, searches across blocks, releases slots and
/// turns flat again, matching the model throughout.
#[test]
fn every_layout_change_happens() {
    let mut seen = Seen::default();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut ops = Vec::new();
    for phase in 0..40u64 {
        // Busy phases (many hits per ms) alternate with slow ones.
        let busy = phase % 3 != 2;
        for _ in 0..400 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = x >> 33;
            let gap = if busy { r % 3 } else { 20 + r % 600 };
            let cost = if r.is_multiple_of(17) { 1 + r % 7 } else { 1 };
            ops.push((gap, cost));
        }
    }
    play(100_000, 700, &ops, false, &mut seen).unwrap();
    // And a tight limit: denials searched for their retry time in a ring.
    play(300, 900, &ops, false, &mut seen).unwrap();
    // Refunds kept: logs rebuilt smaller, flat and ring.
    play(100_000, 700, &ops, true, &mut seen).unwrap();
    assert!(
        seen.rings > 0
            && seen.to_ring > 0
            && seen.to_flat > 0
            && seen.grew_wrapped > 0
            && seen.released > 0
            && seen.multi_block_search > 0
            && seen.refunds > 0,
        "{seen:?}"
    );
}

/// A ring whose block times go backwards (a header rewritten by hand) is
/// corrupt: a denial never names a retry time that already passed (found
/// by fuzzing: `retry_after` 0 on a denial).
#[test]
fn a_ring_with_block_times_out_of_order_is_corrupt() {
    let mut b = ring::Builder::new(ring::BLOCK);
    let mut e = Vec::new();
    put_entry(&mut e, 1, 1);
    for i in 0..100 {
        b.push(&e, T0 + i, 1);
    }
    let mut value = vec![RING_TAG];
    value.extend_from_slice(&b.finish(T0 + 99));
    let (w, now) = (200, T0 + 100);
    // Sound: all 100 entries count; the 91st (at T0 + 90) frees room.
    let denied = evaluate(Some(view(&value)), 10, w, 1, now).unwrap();
    assert_eq!((denied.allowed, denied.retry_after), (false, 190));
    // Block 2 (entries from T0 + 64 on) now claims to start long before.
    let at = 1 + ring::RING_HEADER + 2 * ring::BLOCK;
    value[at..at + 6].copy_from_slice(&(T0 - 1000).to_le_bytes()[..6]);
    assert_eq!(evaluate(Some(view(&value)), 10, w, 1, now), Err(Corrupt));
}
