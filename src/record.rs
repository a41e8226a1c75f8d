//! The layout of a key's value: a sequence of records, one per
//! (strategy, window). Each record is `tag | window varint | body`; the tags
//! are bytes that never occur in UTF-8 text, so a value written by anyone
//! else does not decode and is answered with WRONGTYPE.

use crate::codec::{get_varint, put_varint};
use crate::lease;
use crate::limit::MAX_WINDOW_MS;
use crate::penalty::{self, Penalty};
use crate::strategy::{self, Corrupt, Strategy};

pub use crate::strategy::{State, tag};

/// Where one record sits in the value. Offsets are kept in 32 bits (a Redis
/// string is at most 512 MB) so that an index is small to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub strategy: Strategy,
    pub window_ms: u64,
    at: u32,
    body: u32,
    end: u32,
}

/// A value that is not rate-limit state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotState;

impl From<Corrupt> for NotState {
    fn from(_: Corrupt) -> Self {
        NotState
    }
}

impl Record {
    /// Offset of the tag.
    pub fn at(&self) -> usize {
        self.at as usize
    }

    /// Offset of the body (after tag and window).
    pub fn body(&self) -> usize {
        self.body as usize
    }

    /// Offset just past the record.
    pub fn end(&self) -> usize {
        self.end as usize
    }

    /// Decodes this record's state out of the whole value.
    pub fn state<'a>(&self, value: &'a [u8]) -> Result<State<'a>, NotState> {
        let body = &value[self.body()..self.end()];
        strategy::decode_whole(self.strategy, value[self.at()], body).ok_or(NotState)
    }

    /// When this record's usage stops counting, if any is counted at `now`.
    pub fn usage_end(&self, value: &[u8], now: u64) -> Result<Option<u64>, NotState> {
        Ok(self.state(value)?.usage_end(self.window_ms, now))
    }
}

/// Starts a record: tag and window.
pub fn record_prefix(out: &mut impl crate::codec::Sink, s: Strategy, window_ms: u64) {
    out.put(&[tag(s)]);
    put_varint(out, window_ms);
}

/// How many records are kept without allocating.
const INLINE_RECORDS: usize = 4;

/// The records of a value: the limits' states, inline up to
/// [`INLINE_RECORDS`] (the hot path never allocates) and on the heap
/// beyond, and the key's penalty and lease record, if it has them.
#[derive(Clone, Debug)]
pub struct Records {
    inline: [Record; INLINE_RECORDS],
    len: usize,
    spill: Vec<Record>,
    pub penalty: Option<Penalty>,
    /// Offset of the lease record's tag.
    pub leases: Option<usize>,
}

const NO_RECORD: Record = Record {
    strategy: Strategy::FixedWindow,
    window_ms: 0,
    at: 0,
    body: 0,
    end: 0,
};

impl Records {
    /// No records (a missing key).
    pub fn empty() -> Records {
        Records {
            inline: [NO_RECORD; INLINE_RECORDS],
            len: 0,
            spill: Vec::new(),
            penalty: None,
            leases: None,
        }
    }

    fn push(&mut self, r: Record) {
        if self.len < INLINE_RECORDS {
            self.inline[self.len] = r;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(r);
        }
        self.len += 1;
    }

    /// The index of a value that holds just `r`.
    pub fn one(r: Record) -> Records {
        let mut out = Records::empty();
        out.push(r);
        out
    }

    /// The records in value order.
    pub fn as_slice(&self) -> &[Record] {
        if self.len <= INLINE_RECORDS {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

impl std::ops::Deref for Records {
    type Target = [Record];
    fn deref(&self) -> &[Record] {
        self.as_slice()
    }
}

/// Lists the records of a value, checking that the whole value decodes.
/// An empty value, an unknown tag, a bad window, a truncated or malformed
/// body, trailing bytes, two records for one (strategy, window), two
/// penalties or two lease records are all `NotState`.
pub fn index(value: &[u8]) -> Result<Records, NotState> {
    if value.is_empty() {
        return Err(NotState);
    }
    let mut out = Records::empty();
    let mut pos = 0;
    while pos < value.len() {
        let at = pos;
        if value[pos] == penalty::TAG {
            let p = penalty::decode(value, at).ok_or(NotState)?;
            if out.penalty.replace(p).is_some() {
                return Err(NotState);
            }
            pos += penalty::LEN;
            continue;
        }
        if value[pos] == lease::TAG {
            let (_, len) = lease::decode(value, at).ok_or(NotState)?;
            if out.leases.replace(at).is_some() {
                return Err(NotState);
            }
            pos += len;
            continue;
        }
        let strategy = strategy::strategy_of(value[pos]).ok_or(NotState)?;
        pos += 1;
        let window_ms = get_varint(value, &mut pos)
            .filter(|w| (1..=MAX_WINDOW_MS).contains(w))
            .ok_or(NotState)?;
        let body = pos;
        let (_, len) = strategy::decode(strategy, value[at], &value[body..]).ok_or(NotState)?;
        pos = body + len;
        if out
            .iter()
            .any(|r| r.strategy == strategy && r.window_ms == window_ms)
        {
            return Err(NotState);
        }
        let offset = |x: usize| u32::try_from(x).map_err(|_| NotState);
        out.push(Record {
            strategy,
            window_ms,
            at: offset(at)?,
            body: offset(body)?,
            end: offset(pos)?,
        });
    }
    Ok(out)
}

/// The common case, read without building the general index: a value
/// that is exactly one record of strategy `s` and window `window_ms`, with
/// its state. `None` for any other value, which [`index`] then reads (and
/// rejects if malformed): for a value this accepts, `index` gives exactly
/// this record.
#[inline(always)]
pub fn single(value: &[u8], s: Strategy, window_ms: u64) -> Option<(Record, State<'_>)> {
    let &first = value.first()?;
    if !strategy::has_tag(s, first) {
        return None;
    }
    let mut pos = 1;
    if get_varint(value, &mut pos)? != window_ms || !(1..=MAX_WINDOW_MS).contains(&window_ms) {
        return None;
    }
    let body = pos;
    let state = strategy::decode_whole(s, first, &value[body..])?;
    let record = Record {
        strategy: s,
        window_ms,
        at: 0,
        body: u32::try_from(body).ok()?,
        end: u32::try_from(value.len()).ok()?,
    };
    Some((record, state))
}

/// The record for (strategy, window), if the value holds one.
pub fn find(records: &[Record], s: Strategy, window_ms: u64) -> Option<Record> {
    records
        .iter()
        .copied()
        .find(|r| r.strategy == s && r.window_ms == window_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use crate::strategy::{fixed::Fixed, gcra::Gcra, sliding::Sliding};
    use proptest::prelude::{Just, any, prop_assert, prop_assert_eq, prop_oneof, proptest};

    /// A value whose first record is a fixed-size record of `s` (its body
    /// from `nums`, which may be out of range), then `tail` bytes.
    fn value(s: Strategy, window: u64, nums: [u64; 4], tail: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        record_prefix(&mut v, s, window);
        match s {
            Strategy::FixedWindow => Fixed {
                start: nums[0] & 0xFFFF_FFFF_FFFF,
                used: nums[1],
            }
            .encode(&mut v),
            Strategy::SlidingWindowCounter => Sliding {
                start: nums[0] & 0xFFFF_FFFF_FFFF,
                cur: nums[1],
                prev: nums[2],
            }
            .encode(&mut v),
            Strategy::Gcra => Gcra {
                ms: nums[0] & 0xFFFF_FFFF_FFFF,
                num: nums[1],
                den: nums[3],
            }
            .encode(&mut v),
            Strategy::MovingWindow => {}
        }
        v.extend_from_slice(tail);
        v
    }

    proptest! {
        /// `single` accepts exactly the values `index` reads as that one
        /// record, with the same offsets and state.
        #[test]
        fn single_agrees_with_index(
            s in prop_oneof![
                Just(Strategy::FixedWindow),
                Just(Strategy::SlidingWindowCounter),
                Just(Strategy::Gcra),
            ],
            asked in prop_oneof![Just(Strategy::FixedWindow), Just(Strategy::Gcra), Just(Strategy::MovingWindow)],
            window in prop_oneof![Just(1000u64), 0u64..3, 1u64..=MAX_WINDOW_MS + 2],
            asked_window in prop_oneof![Just(1000u64), 0u64..3],
            time in any::<u64>(),
            small in [0u64..20, 0u64..20, 0u64..20],
            tail in proptest::collection::vec(any::<u8>(), 0..12),
            with_tail in any::<bool>(),
            cut in 0usize..4,
        ) {
            let nums = [time, small[0], small[1], small[2]];
            let tail = if with_tail { &tail[..] } else { &[][..] };
            let mut v = value(s, window, nums, tail);
            if cut > 0 && tail.is_empty() {
                v.truncate(v.len().saturating_sub(cut));
            }
            for (ask, w) in [(s, window), (asked, asked_window), (s, asked_window)] {
                let fast = single(&v, ask, w);
                // One record and nothing else (a penalty or lease record
                // beside it takes the general path).
                let general = index(&v).ok().filter(|r| {
                    r.len() == 1
                        && r.penalty.is_none()
                        && r.leases.is_none()
                        && r[0].strategy == ask
                        && r[0].window_ms == w
                });
                match (fast, general) {
                    (Some((r, state)), Some(rs)) => {
                        prop_assert_eq!(r, rs[0]);
                        prop_assert_eq!(
                            format!("{:?}", state),
                            format!("{:?}", rs[0].state(&v).unwrap())
                        );
                    }
                    (None, None) => {}
                    (fast, general) => prop_assert!(
                        false,
                        "single {:?} but index {:?} for {:?}",
                        fast.map(|f| f.0),
                        general,
                        v
                    ),
                }
            }
        }
    }
}
