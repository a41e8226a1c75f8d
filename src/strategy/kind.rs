//! The interface every kind of stored state implements, so that the record
//! layout (record.rs) and the commands (engine.rs) never look inside one:
//! they decode, judge, write and ask for expiry through it, and the
//! registry in `strategy/mod.rs` dispatches on the record's strategy.

use std::fmt::Debug;

use super::Strategy;
use crate::buf::{Tracked, ValueBuf};
use crate::codec::Scratch;
use crate::decision::LimitEval;
use crate::record::{Record, record_prefix};

/// What one limit asks of its state: `amount` per `window_ms`, and the
/// burst GCRA allows (the amount unless BURST says otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub amount: u64,
    pub window_ms: u64,
    pub burst: u64,
}

/// A stored state that does not decode (only possible if someone rewrote
/// the key by hand): the caller answers WRONGTYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// What compacting or refunding a record leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// The record as it is.
    Keep,
    /// Nothing: it counts no usage any more (or after the refund).
    Drop,
    /// This body instead of the record's (its tag may change with it).
    Body(Vec<u8>),
    /// These bytes written over the body at these offsets (its size stays).
    Patch(Vec<(usize, Vec<u8>)>),
}

/// One kind of stored state: the records of one strategy.
pub trait Kind {
    /// The strategy these records serve.
    const STRATEGY: Strategy;
    /// The record tags it reads; the first is the one new records get.
    const TAGS: &'static [u8];
    /// The state as read from a record body (it may borrow the body).
    type State<'a>: Copy + Debug;
    /// Whether the state grows with use (a log) and so has sizes to guard
    /// and space to reclaim: the hooks below.
    const GROWS: bool = false;
    /// What judging an admitted hit computed for its write (a fixed-size
    /// state: the whole new state; a log: nothing, it is charged in place).
    type Next: Copy + Debug;

    /// Decodes the body at the start of `body` of a record tagged `tag`,
    /// with cheap checks only: the state and the body's length.
    fn decode(tag: u8, body: &[u8]) -> Option<(Self::State<'_>, usize)>;

    /// The verdict on a hit of `cost` at `now` (`state`: `None` when the
    /// limit has none yet) and, when admitted with a cost, what to write.
    fn judge(
        state: Option<Self::State<'_>>,
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> Result<(LimitEval, Option<Self::Next>), Corrupt>;

    /// When the state's usage stops counting, if any counts at `now`.
    fn usage_end(state: &Self::State<'_>, window_ms: u64, now: u64) -> Option<u64>;

    /// The record after giving `cost` back at `now` (RL.REFUND): `Keep`
    /// when nothing changes (no usage to give back), `Drop` when no usage
    /// is left, else the new body.
    fn refund(
        state: &Self::State<'_>,
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> Result<Rewrite, Corrupt>;

    /// Writes an admitted hit of `cost` that `judge` answered with `next`:
    /// into record `rec`, or as a new record (`records` is the value's
    /// index, for where to put it). Returns the record's new usage end when
    /// known without reading it again.
    fn write<B: ValueBuf>(
        t: &mut Tracked<B>,
        records: &[Record],
        rec: Option<Record>,
        next: Self::Next,
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> Result<Option<u64>, Corrupt>;

    /// Bytes a compaction at `now` would free in the record's body (`None`:
    /// the whole record can go). Only states that grow with use have any.
    fn reclaimable(
        _state: &Self::State<'_>,
        _window_ms: u64,
        _now: u64,
    ) -> Result<Option<usize>, Corrupt> {
        Ok(Some(0))
    }

    /// The record holding only what counts at `now`.
    fn compacted(_state: &Self::State<'_>, _window_ms: u64, _now: u64) -> Result<Rewrite, Corrupt> {
        Ok(Rewrite::Keep)
    }

    /// Whether one more hit would take the state past `max_log_bytes`
    /// (`ratelimit.moving-window-max-bytes`).
    fn would_pass(
        _state: &Self::State<'_>,
        _window_ms: u64,
        _now: u64,
        _max_log_bytes: usize,
    ) -> Result<bool, Corrupt> {
        Ok(false)
    }
}

/// A state of a few fixed fields, rewritten whole by each admitted hit
/// (fixed window, sliding window counter, GCRA): it implements [`Kind`]
/// through this, with only its own encoding and arithmetic.
pub trait FixedSize: Copy + Debug + PartialEq {
    /// The strategy these records serve.
    const STRATEGY: Strategy;
    /// Its record tag.
    const TAG: u8;
    /// Decodes the body at `*pos`, advancing it.
    fn decode_at(body: &[u8], pos: &mut usize) -> Option<Self>;
    /// Appends the body.
    fn encode(&self, out: &mut Scratch);
    /// The verdict on a hit and, when admitted with a cost, the new state.
    fn evaluate(
        state: Option<Self>,
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> (LimitEval, Option<Self>);
    /// When the usage of `state` stops counting, if any counts at `now`.
    fn end(state: Self, window_ms: u64, now: u64) -> Option<u64>;
    /// The state after giving `cost` back at `now`, which has usage
    /// (`end` is `Some`); usage never goes below zero.
    fn refunded(state: Self, quota: Quota, cost: u64, now: u64) -> Self;
}

impl<T: FixedSize> Kind for T {
    const STRATEGY: Strategy = T::STRATEGY;
    const TAGS: &'static [u8] = &[T::TAG];
    type State<'a> = T;
    type Next = T;

    #[inline(always)]
    fn decode(_tag: u8, body: &[u8]) -> Option<(T, usize)> {
        let mut pos = 0;
        T::decode_at(body, &mut pos).map(|s| (s, pos))
    }

    #[inline(always)]
    fn judge(
        state: Option<T>,
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> Result<(LimitEval, Option<T>), Corrupt> {
        Ok(T::evaluate(state, quota, cost, now))
    }

    fn usage_end(state: &T, window_ms: u64, now: u64) -> Option<u64> {
        T::end(*state, window_ms, now)
    }

    fn refund(state: &T, quota: Quota, cost: u64, now: u64) -> Result<Rewrite, Corrupt> {
        let window_ms = quota.window_ms;
        if T::end(*state, window_ms, now).is_none() {
            return Ok(Rewrite::Keep);
        }
        let after = T::refunded(*state, quota, cost, now);
        Ok(if T::end(after, window_ms, now).is_none() {
            Rewrite::Drop
        } else if after == *state {
            Rewrite::Keep
        } else {
            let mut body = Scratch::new();
            after.encode(&mut body);
            Rewrite::Body(body.as_slice().to_vec())
        })
    }

    #[inline(always)]
    fn write<B: ValueBuf>(
        t: &mut Tracked<B>,
        _records: &[Record],
        rec: Option<Record>,
        next: T,
        quota: Quota,
        _cost: u64,
        now: u64,
    ) -> Result<Option<u64>, Corrupt> {
        write_small(t, rec, T::STRATEGY, quota.window_ms, |out| next.encode(out));
        Ok(T::end(next, quota.window_ms, now))
    }
}

/// The write of a fixed-size state: the record rewritten whole, or left
/// alone when the bytes are the same; a new record goes at the end.
#[inline(always)]
fn write_small<B: ValueBuf>(
    t: &mut Tracked<B>,
    rec: Option<Record>,
    strategy: Strategy,
    window_ms: u64,
    encode: impl FnOnce(&mut Scratch),
) {
    let mut fresh = Scratch::new();
    record_prefix(&mut fresh, strategy, window_ms);
    encode(&mut fresh);
    match rec {
        Some(r) if t.bytes()[r.at()..r.end()] == *fresh.as_slice() => {}
        Some(r) => t.splice(r.at()..r.end(), fresh.as_slice()),
        None => {
            let end = t.bytes().len();
            t.splice(end..end, fresh.as_slice());
        }
    }
}
