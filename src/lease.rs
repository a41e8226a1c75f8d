//! Concurrency leases (`RL.ACQUIRE` / `RL.RELEASE`, contract section 13):
//! at most `max` leases held at a key at once, each ended by its holder or
//! by time, so that a holder that vanished cannot leak a slot. One record
//! per key, beside the rate-limit states:
//!
//! ```text
//! 0xF7 | width u8 | count u16 | cap u16 | cap slots (the first count held)
//! slot: end u48 | len u8 | token (len bytes, zero-padded to width)
//! ```
//!
//! Slots have one size (`width`, the longest token held so far), so that a
//! lease is renewed, added or removed by patching a slot in place: removal
//! moves the last slot into the hole and zeroes the last one, which stays
//! as room for the next lease, so the value keeps its size and a write
//! replicates a few dozen bytes, never the set (many ended leases are
//! forgotten in one pass instead). Room grows by a quarter when full and
//! shrinks when under a quarter is held; the record goes when its last
//! lease is released. A call
//! scans the held slots once: O(leases held), at most 10,000 of at most
//! 135 bytes.

use crate::buf::{Tracked, ValueBuf};
use crate::codec::{TIME_WIDTH, get_fixed};

/// The lease record's tag (never found in UTF-8 text).
pub const TAG: u8 = 0xF7;
/// Most leases a key may hold (`max` is at most this).
pub const MAX_LEASES: usize = 10_000;
/// Longest token, in bytes.
pub const MAX_TOKEN: usize = 128;
/// Bytes before the slots: tag, width, count, cap.
const HEAD: usize = 1 + 1 + 2 + 2;

/// The lease record found in a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseSet<'a> {
    /// Offset of its tag in the value.
    pub at: usize,
    width: usize,
    count: usize,
    slots: &'a [u8],
}

/// The lease record whose tag is at `value[at]`, and its length, if it
/// decodes (every slot's length within the width).
pub fn decode(value: &[u8], at: usize) -> Option<(LeaseSet<'_>, usize)> {
    let mut pos = at + 1;
    let width = get_fixed(value, &mut pos, 1)? as usize;
    let count = get_fixed(value, &mut pos, 2)? as usize;
    let cap = get_fixed(value, &mut pos, 2)? as usize;
    if !(1..=MAX_TOKEN).contains(&width) || count > cap || !(1..=MAX_LEASES).contains(&cap) {
        return None;
    }
    let len = HEAD + cap * slot_len(width);
    let slots = value.get(at + HEAD..at + len)?;
    let set = LeaseSet {
        at,
        width,
        count,
        slots,
    };
    (0..count)
        .all(|i| (1..=width).contains(&set.raw_len(i)))
        .then_some((set, len))
}

fn slot_len(width: usize) -> usize {
    TIME_WIDTH + 1 + width
}

impl<'a> LeaseSet<'a> {
    fn raw_len(&self, i: usize) -> usize {
        self.slots[i * slot_len(self.width) + TIME_WIDTH] as usize
    }

    /// Slot `i`: its end and its token.
    fn slot(&self, i: usize) -> (u64, &'a [u8]) {
        let s = &self.slots[i * slot_len(self.width)..(i + 1) * slot_len(self.width)];
        let mut p = 0;
        let end = get_fixed(s, &mut p, TIME_WIDTH).unwrap_or(0);
        let len = s[TIME_WIDTH] as usize;
        (end, &s[TIME_WIDTH + 1..TIME_WIDTH + 1 + len])
    }

    /// The leases still held at `now`: (end, token), in slot order.
    fn live(&self, now: u64) -> impl Iterator<Item = (usize, u64, &'a [u8])> + '_ {
        (0..self.count)
            .map(|i| {
                let (end, token) = self.slot(i);
                (i, end, token)
            })
            .filter(move |&(_, end, _)| end > now)
    }

    /// When the last lease held at `now` ends, if any is held.
    pub fn latest_end(&self, now: u64) -> Option<u64> {
        self.live(now).map(|(_, end, _)| end).max()
    }
}

/// What RL.ACQUIRE replies: shaped like RL.HIT's five integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub acquired: bool,
    pub max: u64,
    /// Slots left after this call (never negative).
    pub available: u64,
    /// Until every lease held has ended (0: none held).
    pub reset_after: u64,
    /// 0 when acquired, else until the earliest lease held ends.
    pub retry_after: u64,
}

impl Grant {
    /// The five integers in wire order.
    pub fn to_array(self) -> [i64; 5] {
        [
            i64::from(self.acquired),
            self.max as i64,
            self.available as i64,
            self.reset_after as i64,
            self.retry_after as i64,
        ]
    }
}

/// What acquiring decided, for [`write_acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Denied: nothing is written.
    Denied,
    /// The token's lease in slot `i` now ends at `end`.
    Renew { slot: usize, end: u64 },
    /// A new lease for the token, ending at `end`.
    Add { end: u64 },
}

/// RL.ACQUIRE's verdict on `set` (`None`: no leases at the key) at `now`:
/// expired leases are forgotten, the token's live lease is renewed, else a
/// new one is taken iff fewer than `max` are held.
pub fn acquire(
    set: Option<&LeaseSet>,
    max: u64,
    lease_ms: u64,
    token: &[u8],
    now: u64,
) -> (Grant, Take) {
    let end = now + lease_ms;
    let (mut held, mut latest, mut earliest, mut mine) = (0u64, None::<u64>, None::<u64>, None);
    if let Some(set) = set {
        for (i, e, t) in set.live(now) {
            held += 1;
            latest = latest.max(Some(e));
            earliest = Some(earliest.map_or(e, |x: u64| x.min(e)));
            if t == token {
                mine = Some(i);
            }
        }
    }
    let take = match mine {
        Some(slot) => Take::Renew { slot, end },
        None if held < max => Take::Add { end },
        None => Take::Denied,
    };
    let grant = match take {
        Take::Denied => Grant {
            acquired: false,
            max,
            available: 0,
            reset_after: latest.map_or(0, |l| l - now),
            retry_after: earliest.map_or(0, |e| e - now),
        },
        _ => {
            let after = held + u64::from(matches!(take, Take::Add { .. }));
            // The renewed lease's old end may have been the latest.
            let latest = if mine.is_some() {
                set.map(|s| {
                    s.live(now)
                        .filter(|&(i, _, _)| Some(i) != mine)
                        .map(|(_, e, _)| e)
                        .max()
                })
                .unwrap_or(None)
                .max(Some(end))
            } else {
                latest.max(Some(end))
            };
            Grant {
                acquired: true,
                max,
                available: max.saturating_sub(after),
                reset_after: latest.map_or(0, |l| l - now),
                retry_after: 0,
            }
        }
    };
    (grant, take)
}

/// Writes an acquire that [`acquire`] granted: forgets the leases that
/// ended by `now` (each hole filled with the last slot), then renews the
/// token's slot or appends a new one (a record is created at the end of
/// the value; a token longer than the slots widens them all). Returns how
/// many ended leases it forgot.
pub fn write_acquire<B: ValueBuf>(
    t: &mut Tracked<B>,
    at: Option<usize>,
    take: Take,
    token: &[u8],
    now: u64,
) -> usize {
    let mut renewed = None;
    let mut forgotten = 0;
    let at = match at {
        Some(at) => {
            let keep = match take {
                Take::Renew { slot, .. } => Some(slot),
                _ => None,
            };
            let before = header(t.bytes(), at).1;
            renewed = forget_expired(t, at, now, keep);
            forgotten = before - header(t.bytes(), at).1;
            at
        }
        None => {
            let at = t.bytes().len();
            t.splice(at..at, &[TAG, token.len() as u8, 0, 0, 0, 0]);
            at
        }
    };
    let (width, count) = header(t.bytes(), at);
    match take {
        Take::Denied => {}
        Take::Renew { end, .. } => {
            let slot = renewed.expect("the renewed lease is live");
            let off = at + HEAD + slot * slot_len(width);
            t.write(off, &end.to_le_bytes()[..TIME_WIDTH]);
        }
        Take::Add { end } => {
            let width = if token.len() > width {
                widen(t, at, width, token.len())
            } else {
                width
            };
            let cap = cap_of(t.bytes(), at);
            if count == cap {
                // Full: a quarter more room (at least one slot).
                let more = (cap / 4).max(1).min(MAX_LEASES - cap);
                let end_at = at + HEAD + cap * slot_len(width);
                t.splice(end_at..end_at, &vec![0u8; more * slot_len(width)]);
                t.write(at + 4, &((cap + more) as u16).to_le_bytes());
            }
            let mut slot = vec![0u8; slot_len(width)];
            slot[..TIME_WIDTH].copy_from_slice(&end.to_le_bytes()[..TIME_WIDTH]);
            slot[TIME_WIDTH] = token.len() as u8;
            slot[TIME_WIDTH + 1..TIME_WIDTH + 1 + token.len()].copy_from_slice(token);
            let off = at + HEAD + count * slot_len(width);
            t.write(off, &slot);
            t.write(at + 2, &((count + 1) as u16).to_le_bytes());
        }
    }
    forgotten
}

/// RL.RELEASE on the record at `at`: ends the token's live lease (the last
/// slot moves into its place; an emptied record goes). Returns whether a
/// live lease ended; when none did, nothing is written.
pub fn release<B: ValueBuf>(t: &mut Tracked<B>, at: usize, token: &[u8], now: u64) -> bool {
    let Some((set, _)) = decode(t.bytes(), at) else {
        return false;
    };
    let Some((slot, _, _)) = set.live(now).find(|&(_, _, tok)| tok == token) else {
        return false;
    };
    remove_slot(t, at, slot);
    let (width, count) = header(t.bytes(), at);
    if count == 0 {
        let len = HEAD + cap_of(t.bytes(), at) * slot_len(width);
        t.splice(at..at + len, &[]);
    } else {
        shrink_room(t, at);
    }
    true
}

fn cap_of(value: &[u8], at: usize) -> usize {
    u16::from_le_bytes([value[at + 4], value[at + 5]]) as usize
}

fn header(value: &[u8], at: usize) -> (usize, usize) {
    let width = value[at + 1] as usize;
    let count = u16::from_le_bytes([value[at + 2], value[at + 3]]) as usize;
    (width, count)
}

/// Removes slot `i` (the last held slot moves into it and is zeroed: room
/// for the next lease) and lowers the count.
fn remove_slot<B: ValueBuf>(t: &mut Tracked<B>, at: usize, i: usize) {
    let (width, count) = header(t.bytes(), at);
    let len = slot_len(width);
    let last = at + HEAD + (count - 1) * len;
    if i + 1 != count {
        t.copy_within(last..last + len, at + HEAD + i * len);
    }
    t.write(last, &vec![0u8; len]);
    t.write(at + 2, &((count - 1) as u16).to_le_bytes());
}

/// Past this many ended leases, a call forgets them in one pass (the live
/// slots written to the front at once) rather than one slot move each.
#[cfg(not(test))]
const MOVES_MAX: usize = 16;
/// Small in unit tests, so that short runs take both paths.
#[cfg(test)]
const MOVES_MAX: usize = 2;

/// Forgets the leases of the record at `at` that ended by `now`; returns
/// where the slot `keep` (a live one) ended up. A few are removed one by
/// one (each a slot move); many at once (a pool whose holders all went
/// away) in one pass: the live slots are written to the front in their
/// order, in one range, and the room after them keeps its old bytes (it is
/// read only once reused, and a reused slot is written whole). Then the
/// room shrinks if it is mostly empty.
fn forget_expired<B: ValueBuf>(
    t: &mut Tracked<B>,
    at: usize,
    now: u64,
    keep: Option<usize>,
) -> Option<usize> {
    let (width, count) = header(t.bytes(), at);
    let len = slot_len(width);
    let end_of = |t: &Tracked<B>, i: usize| {
        let mut p = at + HEAD + i * len;
        get_fixed(t.bytes(), &mut p, TIME_WIDTH).unwrap_or(0)
    };
    let live: Vec<usize> = (0..count).filter(|&i| end_of(t, i) > now).collect();
    let ended = count - live.len();
    if ended == 0 {
        return keep;
    }
    let mut keep = keep;
    if ended <= MOVES_MAX {
        let mut i = 0;
        loop {
            let (_, count) = header(t.bytes(), at);
            if i >= count {
                break;
            }
            if end_of(t, i) > now {
                i += 1;
                continue;
            }
            // The last slot moves into slot i: follow `keep` if it was last.
            if keep == Some(count - 1) {
                keep = Some(i);
            }
            remove_slot(t, at, i);
        }
    } else {
        let first = live
            .iter()
            .enumerate()
            .position(|(k, &i)| k != i)
            .unwrap_or(live.len());
        let mut block = Vec::with_capacity((live.len() - first) * len);
        for &i in &live[first..] {
            block.extend_from_slice(&t.bytes()[at + HEAD + i * len..at + HEAD + (i + 1) * len]);
        }
        t.write(at + HEAD + first * len, &block);
        t.write(at + 2, &(live.len() as u16).to_le_bytes());
        keep = keep.and_then(|k| live.iter().position(|&i| i == k));
    }
    shrink_room(t, at);
    keep
}

/// Gives room back when under a quarter of it is held (down to twice the
/// leases held, at least 4 slots): once after a pool shrank a lot, so that
/// a set keeps about its size, not its peak (the shorter value is
/// replicated whole, once).
fn shrink_room<B: ValueBuf>(t: &mut Tracked<B>, at: usize) {
    let (width, count) = header(t.bytes(), at);
    let cap = cap_of(t.bytes(), at);
    let new_cap = (count * 2).max(4);
    if count * 4 >= cap || new_cap >= cap {
        return;
    }
    let len = slot_len(width);
    t.splice(at + HEAD + new_cap * len..at + HEAD + cap * len, &[]);
    t.write(at + 4, &(new_cap as u16).to_le_bytes());
}

/// Rewrites the record at `at` with slots of `new_width` bytes of token
/// (room included); returns the new width.
fn widen<B: ValueBuf>(t: &mut Tracked<B>, at: usize, width: usize, new_width: usize) -> usize {
    let old = slot_len(width);
    let cap = cap_of(t.bytes(), at);
    let mut body = Vec::with_capacity(cap * slot_len(new_width));
    for i in 0..cap {
        let s = &t.bytes()[at + HEAD + i * old..at + HEAD + (i + 1) * old];
        body.extend_from_slice(s);
        body.resize(body.len() + (new_width - width), 0);
    }
    t.splice(at + HEAD..at + HEAD + cap * old, &body);
    t.write(at + 1, &[new_width as u8]);
    new_width
}
