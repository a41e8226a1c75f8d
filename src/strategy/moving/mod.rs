//! Moving window: an exact log of admitted hits, each counted while
//! `now < t + W`. Entries are `(delta time, cost)` varints, one byte for
//! most hits. A small log is one flat byte string ([`flat`]): walking it is
//! bounded by its size. A log that passes [`FLAT_MAX`] bytes becomes a ring
//! of fixed-size blocks, each headed by the absolute time and cumulative
//! cost of its first entry ([`ring`]): the first counted entry, the usage
//! and the instant enough usage frees are found by binary search over the
//! blocks and a walk of one block, so no call costs time in proportion to
//! the entries that expired, and appends reuse the slots of dead blocks
//! instead of moving the log.

mod flat;
mod ring;
#[cfg(test)]
mod tests;

use super::Strategy;
use super::kind::{Kind, Quota, Rewrite};
use crate::buf::{Tracked, ValueBuf};
use crate::codec::{Scratch, Sink, get_varint, put_varint};
use crate::decision::LimitEval;
use crate::limit::MAX_AMOUNT;
use crate::record::{Record, record_prefix};

/// The record tag of a flat log (the moving-window strategy's tag).
pub const FLAT_TAG: u8 = 0xFA;
/// The record tag of a log kept as a ring of blocks.
pub const RING_TAG: u8 = 0xFD;

/// The flat log size (entry bytes counted at the last write) past which a
/// hit turns the log into a ring; a ring whose counted entries shrink to a
/// quarter of this turns flat again. A flat log this size is walked in about
/// the time a ring's block is, and keeps the value under 512 bytes, which
/// replicate as one SET (a ring is patched with SETRANGE).
#[cfg(not(test))]
pub const FLAT_MAX: usize = 448;
/// Small in unit tests, so that short property runs cross both layouts.
#[cfg(test)]
pub const FLAT_MAX: usize = 24;

pub use super::kind::Corrupt;

/// Values up to this size are replicated whole anyway (the module sends a
/// `SET` for them): a log in one gives back spare room at once.
const SMALL_VALUE: usize = 512;

/// Whether a log may give back `freed` bytes of a value of `value_len`.
/// A value that gets shorter is replicated whole (no native command cuts a
/// string short), so a large one shrinks only when that frees at least half
/// of it: the copy then costs at most twice the bytes the hits that grew it
/// wrote, and a log between other records keeps its room for its next burst
/// instead of paying a copy of the whole value on every turn.
pub(crate) fn may_shrink(freed: usize, value_len: usize) -> bool {
    value_len <= SMALL_VALUE || freed * 2 >= value_len
}

/// Bytes one log entry can take at most (two 10-byte varints).
pub const MAX_ENTRY_LEN: usize = 20;

/// Appends one log entry: `delta << 1 | (cost != 1)`, then the cost if not 1.
pub fn put_entry(out: &mut impl Sink, delta: u64, cost: u64) {
    put_varint(out, (delta << 1) | u64::from(cost != 1));
    if cost != 1 {
        put_varint(out, cost);
    }
}

/// The entry at `pos`: its delta, its cost and the offset after it; `None`
/// if it does not decode (a cost of 1 is never written out, nor one past
/// the largest amount).
#[inline]
pub(super) fn read_entry(log: &[u8], pos: usize) -> Option<(u64, u64, usize)> {
    let mut p = pos;
    let tagged = get_varint(log, &mut p)?;
    let cost = if tagged & 1 == 1 {
        get_varint(log, &mut p).filter(|&c| c != 1 && c <= MAX_AMOUNT)?
    } else {
        1
    };
    Some((tagged >> 1, cost, p))
}

/// Walks entries from `pos`, yielding (time, cost, offset after it). The
/// first entry's delta is not read: its time is the one given (a log or
/// block header holds it).
pub(crate) struct Entries<'a> {
    pub log: &'a [u8],
    pub pos: usize,
    pub time: u64,
    pub first: bool,
    /// The header's `last`: an entry after it means the log is corrupt.
    pub last: u64,
}

impl<'a> Entries<'a> {
    /// Entries of `log` from `pos`, the first of which is at `time`.
    pub fn new(log: &'a [u8], pos: usize, time: u64, last: u64) -> Self {
        Entries {
            log,
            pos,
            time,
            first: true,
            last,
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<(u64, u64, usize), Corrupt>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.log.len() {
            return None;
        }
        let Some((delta, cost, p)) = read_entry(self.log, self.pos) else {
            self.pos = self.log.len();
            return Some(Err(Corrupt));
        };
        if !self.first {
            self.time = self.time.saturating_add(delta);
        }
        self.first = false;
        if self.time > self.last {
            self.pos = self.log.len();
            return Some(Err(Corrupt));
        }
        self.pos = p;
        Some(Ok((self.time, cost, p)))
    }
}

/// The first entry of `log` from `pos` on (that entry at `time`) still
/// counted at `now` in a window of `window_ms`: its offset and time and the cost of
/// the entries passed before it, or `None` and the cost passed when every
/// entry stopped counting. The hot loop of every read of a large log, so
/// one-byte entries (cost 1, delta under 64 ms) take a short path.
pub(crate) fn skip_expired(
    log: &[u8],
    mut pos: usize,
    mut time: u64,
    last: u64,
    window_ms: u64,
    now: u64,
) -> Result<(Option<(usize, u64)>, u64), Corrupt> {
    let mut passed = 0u64;
    let mut first = true;
    while let Some(&b) = log.get(pos) {
        let (delta, cost, next) = if b & 0x81 == 0 {
            (u64::from(b >> 1), 1, pos + 1)
        } else {
            read_entry(log, pos).ok_or(Corrupt)?
        };
        if !first {
            time = time.saturating_add(delta);
        }
        first = false;
        if time > last {
            return Err(Corrupt);
        }
        if time.saturating_add(window_ms) > now {
            return Ok((Some((pos, time)), passed));
        }
        passed = passed.saturating_add(cost);
        pos = next;
    }
    Ok((None, passed))
}

/// Where the entries still counted at some instant begin.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Live {
    /// Logical block of the first counted entry (always 0 in a flat log;
    /// the block count when none is counted).
    pub block: usize,
    /// Its offset in that block's entries (or in the flat log; the log's
    /// length when none is counted).
    pub off: usize,
    /// Its time.
    pub time: u64,
    /// Cumulative cost before it (ring) or 0 (flat).
    pub cum: u64,
    /// Sum of the costs counted.
    pub used: u64,
}

/// A read-only view of one moving-window record body.
#[derive(Clone, Copy, Debug)]
pub enum View<'a> {
    Flat(flat::Flat<'a>),
    Ring(ring::Ring<'a>),
}

impl<'a> View<'a> {
    /// Decodes a record body (`ring`: the record has [`RING_TAG`]) at the
    /// start of `body`, with cheap checks only (no walk): the view and the
    /// body's length.
    pub fn decode(ring: bool, body: &'a [u8]) -> Option<(View<'a>, usize)> {
        if ring {
            ring::Ring::decode(body).map(|(r, n)| (View::Ring(r), n))
        } else {
            flat::Flat::decode(body).map(|(f, n)| (View::Flat(f), n))
        }
    }

    /// Time of the newest entry.
    pub fn last(&self) -> u64 {
        match self {
            View::Flat(f) => f.header.last,
            View::Ring(r) => r.last(),
        }
    }

    fn live_at(&self, window_ms: u64, now: u64) -> Result<Live, Corrupt> {
        match self {
            View::Flat(f) => f.live_at(window_ms, now),
            View::Ring(r) => r.live_at(window_ms, now),
        }
    }

    /// Time of the entry whose expiry frees `must_free` (>= 1, at most
    /// `live.used`) of the usage counted from `live` on.
    fn free_time(&self, live: Live, must_free: u64) -> Result<u64, Corrupt> {
        match self {
            View::Flat(f) => f.free_time(live, must_free),
            View::Ring(r) => r.free_time(live, must_free),
        }
    }

    /// Bytes of the entries still counted at `now` (what a hit keeps); a
    /// ring counts whole blocks from the first counted entry on.
    pub fn live_bytes(&self, window_ms: u64, now: u64) -> Result<usize, Corrupt> {
        match self {
            View::Flat(f) => f.live_bytes(window_ms, now),
            View::Ring(r) => r.live_bytes(window_ms, now),
        }
    }

    /// The most [`View::live_bytes`] can be at any instant (the whole log),
    /// read from the header: a bound far from the limit needs no search.
    pub fn live_bytes_bound(&self) -> usize {
        match self {
            View::Flat(f) => f.header.len,
            View::Ring(r) => r.blocks_bytes(),
        }
    }

    /// Bytes a compaction at `now` would free in this record's body: the
    /// entries that stopped counting and the spare room, or the whole body
    /// (`None`) when nothing counts any more and the record can go.
    pub fn reclaimable(&self, window_ms: u64, now: u64) -> Result<Option<usize>, Corrupt> {
        match self {
            View::Flat(f) => f.reclaimable(window_ms, now),
            View::Ring(r) => r.reclaimable(window_ms, now),
        }
    }

    /// The body (same layout) holding only what counts at `now`, with no
    /// spare room; `None` when nothing counts any more. Hits judge the same
    /// on it: the dropped entries no longer count.
    pub fn compacted(&self, window_ms: u64, now: u64) -> Result<Option<Vec<u8>>, Corrupt> {
        match self {
            View::Flat(f) => f.compacted(window_ms, now),
            View::Ring(r) => r.compacted(window_ms, now),
        }
    }

    /// When the usage stops counting, if any is counted at `now`.
    pub fn usage_end(&self, window_ms: u64, now: u64) -> Option<u64> {
        match self {
            View::Flat(f) => f.usage_end(window_ms, now),
            View::Ring(r) => r.usage_end(window_ms, now),
        }
    }
}

/// Judges a hit of `cost`; `view` is `None` when the limit has no state.
pub fn evaluate(
    view: Option<View>,
    amount: u64,
    window_ms: u64,
    cost: u64,
    now: u64,
) -> Result<LimitEval, Corrupt> {
    let (live, last) = match view {
        Some(v) => (v.live_at(window_ms, now)?, v.last()),
        None => (
            Live {
                block: 0,
                off: 0,
                time: now,
                cum: 0,
                used: 0,
            },
            now,
        ),
    };
    let until = |t: u64| t.saturating_add(window_ms).saturating_sub(now);
    if live.used + cost <= amount {
        let used_after = live.used + cost;
        let last_after = match (live.used, cost) {
            (0, _) => now,
            (_, 0) => last,
            _ => last.max(now),
        };
        return Ok(LimitEval {
            allowed: true,
            limit: amount,
            remaining: amount - used_after,
            reset_after: if used_after > 0 { until(last_after) } else { 0 },
            retry_after: 0,
        });
    }
    let retry_after = if cost > amount {
        -1
    } else {
        let v = view.expect("denied with cost <= amount implies usage");
        until(v.free_time(live, live.used + cost - amount)?) as i64
    };
    Ok(LimitEval {
        allowed: false,
        limit: amount,
        remaining: amount.saturating_sub(live.used),
        reset_after: if live.used > 0 { until(last) } else { 0 },
        retry_after,
    })
}

/// Appends a new record body (a flat log holding one hit).
pub fn put_new_body(out: &mut impl Sink, now: u64, cost: u64) {
    flat::put_body(out, now, now, cost, &[], 0, cost);
}

/// Charges an admitted hit of `cost > 0`, in place, to the moving-window
/// record whose tag is at `at` and body at `body_at`. The record may change
/// layout (flat to ring past [`FLAT_MAX`], back when it shrinks, tag
/// included) and size.
pub fn charge<B: ValueBuf>(
    t: &mut Tracked<B>,
    at: usize,
    body_at: usize,
    window_ms: u64,
    cost: u64,
    now: u64,
) -> Result<(), Corrupt> {
    if t.bytes()[at] == RING_TAG {
        ring::charge(t, at, body_at, window_ms, cost, now)
    } else {
        flat::charge(t, at, body_at, window_ms, cost, now)
    }
}

/// The moving-window kind: a flat log or a ring, charged in place.
#[derive(Clone, Copy, Debug)]
pub struct Moving;

impl Kind for Moving {
    const STRATEGY: Strategy = Strategy::MovingWindow;
    const TAGS: &'static [u8] = &[FLAT_TAG, RING_TAG];
    const GROWS: bool = true;
    type State<'a> = View<'a>;
    type Next = ();

    fn decode(tag: u8, body: &[u8]) -> Option<(View<'_>, usize)> {
        View::decode(tag == RING_TAG, body)
    }

    fn judge(
        state: Option<View<'_>>,
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> Result<(LimitEval, Option<()>), Corrupt> {
        let e = evaluate(state, quota.amount, quota.window_ms, cost, now)?;
        Ok((e, (e.allowed && cost > 0).then_some(())))
    }

    fn usage_end(state: &View<'_>, window_ms: u64, now: u64) -> Option<u64> {
        state.usage_end(window_ms, now)
    }

    /// A new log goes before the value's fixed-size records, so that
    /// resizing those never moves a log.
    fn write<B: ValueBuf>(
        t: &mut Tracked<B>,
        records: &[Record],
        rec: Option<Record>,
        _next: (),
        quota: Quota,
        cost: u64,
        now: u64,
    ) -> Result<Option<u64>, Corrupt> {
        match rec {
            Some(r) => charge(t, r.at(), r.body(), quota.window_ms, cost, now)?,
            None => {
                let mut fresh = Scratch::new();
                record_prefix(&mut fresh, Self::STRATEGY, quota.window_ms);
                put_new_body(&mut fresh, now, cost);
                let at = records
                    .iter()
                    .find(|r| r.strategy != Self::STRATEGY)
                    .map_or(t.bytes().len(), |r| r.at());
                t.splice(at..at, fresh.as_slice());
            }
        }
        Ok(None)
    }

    /// The newest counted entries give their cost back first (the oldest
    /// of those it reaches may keep part of its cost). A refund of all the
    /// usage drops the log; a ring is patched in place from its tail
    /// (O(blocks it empties)); a flat log, small, is written again with
    /// what is left.
    fn refund(state: &View<'_>, quota: Quota, cost: u64, now: u64) -> Result<Rewrite, Corrupt> {
        let used = match state {
            View::Flat(f) => f.live_at(quota.window_ms, now)?.used,
            View::Ring(r) => r.live_at(quota.window_ms, now)?.used,
        };
        if used == 0 {
            return Ok(Rewrite::Keep);
        }
        if cost >= used {
            return Ok(Rewrite::Drop);
        }
        let mut entries = match state {
            View::Flat(f) => f.counted(quota.window_ms, now)?,
            View::Ring(r) => {
                let patches = r.refund_from_tail(quota.window_ms, cost, now)?;
                return Ok(Rewrite::Patch(patches));
            }
        };
        if entries.is_empty() {
            return Ok(Rewrite::Keep);
        }
        // The entries must hold what the header says they do (a log
        // rewritten by hand may not): else the refund could empty a log it
        // judged to keep usage.
        if entries.windows(2).any(|w| w[1].0 < w[0].0)
            || entries.iter().map(|e| e.1).sum::<u64>() != used
        {
            return Err(Corrupt);
        }
        let mut left = cost;
        while let Some(last) = entries.last_mut() {
            if last.1 > left {
                last.1 -= left;
                break;
            }
            left -= last.1;
            entries.pop();
            if left == 0 {
                break;
            }
        }
        // Less than the usage was given back: an entry is left.
        Ok(Rewrite::Body(flat::rebuilt(&entries)))
    }

    fn reclaimable(state: &View<'_>, window_ms: u64, now: u64) -> Result<Option<usize>, Corrupt> {
        state.reclaimable(window_ms, now)
    }

    fn compacted(state: &View<'_>, window_ms: u64, now: u64) -> Result<Rewrite, Corrupt> {
        Ok(match state.compacted(window_ms, now)? {
            None => Rewrite::Drop,
            Some(body) => Rewrite::Body(body),
        })
    }

    fn would_pass(
        state: &View<'_>,
        window_ms: u64,
        now: u64,
        max_log_bytes: usize,
    ) -> Result<bool, Corrupt> {
        // The whole log's size, from the header, settles most cases.
        Ok(state.live_bytes_bound() + MAX_ENTRY_LEN > max_log_bytes
            && state.live_bytes(window_ms, now)? + MAX_ENTRY_LEN > max_log_bytes)
    }
}
