//! The layout of a key's value: a sequence of records, one per
//! (strategy, window). Each record is `tag | window varint | body`; the tags
//! are bytes that never occur in UTF-8 text, so a value written by anyone
//! else does not decode and is answered with WRONGTYPE.

use crate::codec::{get_varint, put_varint};
use crate::fixed::Fixed;
use crate::gcra::Gcra;
use crate::limit::MAX_WINDOW_MS;
use crate::moving::{self, Header};
use crate::sliding::Sliding;
use crate::strategy::Strategy;

/// The first byte of a record of each strategy.
pub fn tag(s: Strategy) -> u8 {
    match s {
        Strategy::FixedWindow => 0xF9,
        Strategy::MovingWindow => 0xFA,
        Strategy::SlidingWindowCounter => 0xFB,
        Strategy::Gcra => 0xFC,
    }
}

fn strategy_of(tag: u8) -> Option<Strategy> {
    Strategy::ALL.into_iter().find(|&s| self::tag(s) == tag)
}

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

/// The decoded state of one record.
#[derive(Clone, Copy, Debug)]
pub enum State<'a> {
    Fixed(Fixed),
    Sliding(Sliding),
    Gcra(Gcra),
    Moving(moving::View<'a>),
}

impl<'a> State<'a> {
    /// The fixed-window state, if this is one.
    pub fn fixed(self) -> Option<Fixed> {
        if let State::Fixed(s) = self {
            Some(s)
        } else {
            None
        }
    }
    /// The sliding-window-counter state, if this is one.
    pub fn sliding(self) -> Option<Sliding> {
        if let State::Sliding(s) = self {
            Some(s)
        } else {
            None
        }
    }
    /// The GCRA state, if this is one.
    pub fn gcra(self) -> Option<Gcra> {
        if let State::Gcra(s) = self {
            Some(s)
        } else {
            None
        }
    }
    /// The moving-window log, if this is one.
    pub fn moving(self) -> Option<moving::View<'a>> {
        if let State::Moving(v) = self {
            Some(v)
        } else {
            None
        }
    }
}

/// A value that is not rate-limit state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotState;

impl From<moving::Corrupt> for NotState {
    fn from(_: moving::Corrupt) -> Self {
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
        let mut pos = 0;
        let state = match self.strategy {
            Strategy::FixedWindow => Fixed::decode(body, &mut pos).map(State::Fixed),
            Strategy::SlidingWindowCounter => Sliding::decode(body, &mut pos).map(State::Sliding),
            Strategy::Gcra => Gcra::decode(body, &mut pos).map(State::Gcra),
            Strategy::MovingWindow => Header::decode(body, &mut pos).map(|header| {
                State::Moving(moving::View {
                    header,
                    log: &body[pos..pos + header.len],
                })
            }),
        };
        state.ok_or(NotState)
    }

    /// When this record's usage stops counting, if any is counted at `now`.
    pub fn usage_end(&self, value: &[u8], now: u64) -> Result<Option<u64>, NotState> {
        let w = self.window_ms;
        Ok(match self.state(value)? {
            State::Fixed(s) => Fixed::usage_end(Some(s), w, now),
            State::Sliding(s) => Sliding::usage_end(Some(s), w, now),
            State::Gcra(s) => Gcra::usage_end(Some(s), now),
            State::Moving(v) => v.usage_end(w, now),
        })
    }
}

/// Starts a record: tag and window.
pub fn record_prefix(out: &mut impl crate::codec::Sink, s: Strategy, window_ms: u64) {
    out.put(&[tag(s)]);
    put_varint(out, window_ms);
}

/// How many records are kept without allocating.
const INLINE_RECORDS: usize = 4;

/// The records of a value: inline up to [`INLINE_RECORDS`] (the hot path
/// never allocates), on the heap beyond.
#[derive(Clone, Debug)]
pub struct Records {
    inline: [Record; INLINE_RECORDS],
    len: usize,
    spill: Vec<Record>,
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
/// body, trailing bytes or two records for one (strategy, window) are all
/// `NotState`.
pub fn index(value: &[u8]) -> Result<Records, NotState> {
    if value.is_empty() {
        return Err(NotState);
    }
    let mut out = Records::empty();
    let mut pos = 0;
    while pos < value.len() {
        let at = pos;
        let strategy = strategy_of(value[pos]).ok_or(NotState)?;
        pos += 1;
        let window_ms = get_varint(value, &mut pos)
            .filter(|w| (1..=MAX_WINDOW_MS).contains(w))
            .ok_or(NotState)?;
        let body = pos;
        let rest = &value[body..];
        let mut len = 0;
        let ok = match strategy {
            Strategy::FixedWindow => Fixed::decode(rest, &mut len).is_some(),
            Strategy::SlidingWindowCounter => Sliding::decode(rest, &mut len).is_some(),
            Strategy::Gcra => Gcra::decode(rest, &mut len).is_some(),
            Strategy::MovingWindow => match Header::decode(rest, &mut len) {
                Some(h) => {
                    len += h.cap;
                    true
                }
                None => false,
            },
        };
        if !ok {
            return Err(NotState);
        }
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

/// The record for (strategy, window), if the value holds one.
pub fn find(records: &[Record], s: Strategy, window_ms: u64) -> Option<Record> {
    records
        .iter()
        .copied()
        .find(|r| r.strategy == s && r.window_ms == window_ms)
}
