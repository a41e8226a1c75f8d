//! A small moving-window log: one byte string of entries after a fixed
//! header. Appends go at the end, expired entries are skipped by advancing
//! `head`, and the dead prefix is reclaimed once it is at least as large as
//! the live part. A hit that would take the log past [`FLAT_MAX`] turns it
//! into a ring (logs written by earlier builds may be larger: they are read
//! as they are and turned into a ring by their next hit).

use super::{
    Corrupt, Entries, FLAT_MAX, Live, RING_TAG, may_shrink, put_entry, ring, skip_expired,
};
use crate::buf::{Tracked, ValueBuf};
use crate::codec::{Scratch, Sink, TIME_WIDTH, get_fixed, set_fixed};
use crate::limit::MAX_AMOUNT;

/// Bytes of the fixed header that follows the record's tag and window.
pub const HEADER_LEN: usize = 4 + TIME_WIDTH + TIME_WIDTH + 4 + 4 + 4;

/// The header of a flat log; `head..len` of the log holds the entries not
/// yet dropped, `len..cap` is spare room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Sum of the costs of the entries in `head..len`.
    pub used: u64,
    /// Time of the newest entry.
    pub last: u64,
    /// Time of the entry at `head`.
    pub first: u64,
    pub head: usize,
    pub len: usize,
    pub cap: usize,
}

impl Header {
    /// Decodes the header at `*pos`; the log of `cap` bytes must follow.
    pub fn decode(buf: &[u8], pos: &mut usize) -> Option<Header> {
        let used = get_fixed(buf, pos, 4)?;
        let last = get_fixed(buf, pos, TIME_WIDTH)?;
        let first = get_fixed(buf, pos, TIME_WIDTH)?;
        let head = get_fixed(buf, pos, 4)? as usize;
        let len = get_fixed(buf, pos, 4)? as usize;
        let cap = get_fixed(buf, pos, 4)? as usize;
        // Stored records always hold at least one live-or-dead entry with
        // usage, and the last log byte ends a varint: cheap checks that
        // catch a log overwritten by someone else without walking it.
        let ok = used <= MAX_AMOUNT
            && used > 0
            && first <= last
            && head < len
            && len <= cap
            && buf.len() >= *pos + cap
            && buf[*pos + len - 1] & 0x80 == 0;
        ok.then_some(Header {
            used,
            last,
            first,
            head,
            len,
            cap,
        })
    }

    /// Writes the header into `out` (exactly [`HEADER_LEN`] bytes).
    pub fn encode(&self, out: &mut [u8]) {
        set_fixed(out, 0, self.used, 4);
        set_fixed(out, 4, self.last, TIME_WIDTH);
        set_fixed(out, 10, self.first, TIME_WIDTH);
        set_fixed(out, 16, self.head as u64, 4);
        set_fixed(out, 20, self.len as u64, 4);
        set_fixed(out, 24, self.cap as u64, 4);
    }
}

/// A read-only view of one flat log.
#[derive(Clone, Copy, Debug)]
pub struct Flat<'a> {
    pub header: Header,
    /// The log bytes `0..len` (entries before `head` are dead).
    pub log: &'a [u8],
}

impl<'a> Flat<'a> {
    /// Decodes a flat body at the start of `body`: the view and the body's
    /// length.
    pub fn decode(body: &'a [u8]) -> Option<(Flat<'a>, usize)> {
        let mut pos = 0;
        let header = Header::decode(body, &mut pos)?;
        let log = &body[pos..pos + header.len];
        Some((Flat { header, log }, pos + header.cap))
    }

    fn entries(&self, from: usize, first_time: u64) -> Entries<'a> {
        Entries::new(self.log, from, first_time, self.header.last)
    }

    /// The entries still counted at `now`.
    pub(super) fn live_at(&self, window_ms: u64, now: u64) -> Result<Live, Corrupt> {
        let h = self.header;
        let live = Live {
            block: 0,
            off: h.len,
            time: now,
            cum: 0,
            used: 0,
        };
        if h.used == 0 || h.head >= h.len || h.last.saturating_add(window_ms) <= now {
            return Ok(live);
        }
        match skip_expired(self.log, h.head, h.first, h.last, window_ms, now)? {
            (Some((off, time)), passed) => Ok(Live {
                off,
                time,
                used: h.used.saturating_sub(passed),
                ..live
            }),
            // The header says `last` still counts, so a live entry must exist.
            (None, _) => Err(Corrupt),
        }
    }

    /// Time of the entry whose expiry frees `must_free` from `live` on.
    pub(super) fn free_time(&self, live: Live, must_free: u64) -> Result<u64, Corrupt> {
        let mut freed = 0;
        for e in self.entries(live.off, live.time) {
            let (t, cost, _) = e?;
            freed += cost;
            if freed >= must_free {
                return Ok(t);
            }
        }
        Err(Corrupt)
    }

    /// Bytes of the entries still counted at `now`.
    pub(super) fn live_bytes(&self, window_ms: u64, now: u64) -> Result<usize, Corrupt> {
        Ok(self.header.len - self.live_at(window_ms, now)?.off.min(self.header.len))
    }

    /// See [`super::View::reclaimable`].
    pub(super) fn reclaimable(&self, window_ms: u64, now: u64) -> Result<Option<usize>, Corrupt> {
        let live = self.live_at(window_ms, now)?;
        if live.used == 0 {
            return Ok(None);
        }
        Ok(Some(live.off + (self.header.cap - self.header.len)))
    }

    /// See [`super::View::compacted`].
    pub(super) fn compacted(&self, window_ms: u64, now: u64) -> Result<Option<Vec<u8>>, Corrupt> {
        let live = self.live_at(window_ms, now)?;
        if live.used == 0 {
            return Ok(None);
        }
        let mut body = Vec::new();
        put_body(
            &mut body,
            self.header.last,
            live.time,
            live.used,
            &self.log[live.off..],
            0,
            0,
        );
        Ok(Some(body))
    }

    /// A ring body holding the entries counted from `live` on and one new
    /// entry (`entry`, at `time`, of `cost`); `None` if they do not decode.
    fn as_ring(&self, live: Live, entry: &[u8], time: u64, cost: u64) -> Option<Vec<u8>> {
        let mut b = ring::Builder::new(ring::BLOCK);
        let mut start = live.off;
        for e in self.entries(live.off, live.time) {
            let (et, cost, next) = e.ok()?;
            b.push(&self.log[start..next], et, cost);
            start = next;
        }
        b.push(entry, time, cost);
        Some(b.finish(time))
    }

    /// The entries counted at `now`, oldest first: (time, cost).
    pub(super) fn counted(&self, window_ms: u64, now: u64) -> Result<Vec<(u64, u64)>, Corrupt> {
        let live = self.live_at(window_ms, now)?;
        if live.used == 0 {
            return Ok(Vec::new());
        }
        self.entries(live.off, live.time)
            .map(|e| e.map(|(time, cost, _)| (time, cost)))
            .collect()
    }

    /// When the usage stops counting, if any is counted at `now`.
    pub(super) fn usage_end(&self, window_ms: u64, now: u64) -> Option<u64> {
        let h = self.header;
        let end = h.last.saturating_add(window_ms);
        (h.used > 0 && h.head < h.len && end > now).then_some(end)
    }
}

/// Appends a flat body: `kept` entries (the first at `first`), then one
/// new entry `delta, cost` unless `cost` is 0; `used` covers both, `last` is the
/// newest entry's time. No spare room.
pub(super) fn put_body(
    out: &mut impl Sink,
    last: u64,
    first: u64,
    used: u64,
    kept: &[u8],
    delta: u64,
    cost: u64,
) {
    let mut entry = Scratch::new();
    if cost > 0 {
        put_entry(&mut entry, delta, cost);
    }
    let len = kept.len() + entry.as_slice().len();
    let header = Header {
        used,
        last,
        first,
        head: 0,
        len,
        cap: len,
    };
    let mut hdr = [0u8; HEADER_LEN];
    header.encode(&mut hdr);
    out.put(&hdr);
    out.put(kept);
    out.put(entry.as_slice());
}

/// A flat body holding `entries` (oldest first, (time, cost), at least
/// one, times in order) and no spare room.
pub(super) fn rebuilt(entries: &[(u64, u64)]) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut prev = entries[0].0;
    for &(time, cost) in entries {
        put_entry(&mut kept, time - prev, cost);
        prev = time;
    }
    let used = entries.iter().map(|e| e.1).sum();
    let mut body = Vec::with_capacity(HEADER_LEN + kept.len());
    put_body(&mut body, prev, entries[0].0, used, &kept, 0, 0);
    body
}

/// Charges an admitted hit of `cost > 0` to the flat log whose tag is at
/// `at` and body at `body_at`, in place. A log followed by others takes room
/// for a whole flat log at once, then doubles it (amortized O(1) appends);
/// the last record in the value grows exact, since the string itself grows
/// geometrically, and gives spare room back when [`may_shrink`] allows.
/// Past [`FLAT_MAX`] the log becomes a ring.
pub(super) fn charge<B: ValueBuf>(
    t: &mut Tracked<B>,
    at: usize,
    body_at: usize,
    window_ms: u64,
    cost: u64,
    now: u64,
) -> Result<(), Corrupt> {
    let (view, body_len) = Flat::decode(&t.bytes()[body_at..]).ok_or(Corrupt)?;
    let h = view.header;
    let log_at = body_at + HEADER_LEN;
    let is_last = body_at + body_len == t.bytes().len();
    let live = view.live_at(window_ms, now)?;
    let time = if live.used == 0 { now } else { h.last.max(now) };
    let mut entry = Scratch::new();
    put_entry(
        &mut entry,
        time - if live.used == 0 { time } else { h.last },
        cost,
    );
    let entry = entry.as_slice();
    if live.used > 0 && h.len - live.off + entry.len() > FLAT_MAX {
        // Entries past the first counted one that do not decode (a value
        // rewritten by hand) keep the log flat: the hit is judged and
        // written as RL.TEST said, without reading them.
        if let Some(body) = view.as_ring(live, entry, time, cost) {
            t.splice(body_at..body_at + body_len, &body);
            t.write(at, &[RING_TAG]);
            return Ok(());
        }
    }
    let mut n = h;
    if live.used == 0 {
        n.head = 0;
        n.len = 0;
    } else {
        n.head = live.off;
        let live_bytes = h.len - live.off;
        if live.off > 0 && live.off >= live_bytes {
            t.copy_within(log_at + live.off..log_at + h.len, log_at);
            n.head = 0;
            n.len = live_bytes;
        }
    }
    let needed = n.len + entry.len();
    let trim = is_last && needed < n.cap && may_shrink(n.cap - needed, t.bytes().len());
    if needed > n.cap || trim {
        // A log followed by other records moves them all when it grows: it
        // takes room for a whole flat log at once, then doubles.
        let new_cap = if is_last {
            needed
        } else {
            needed.max(n.cap.saturating_mul(2)).max(FLAT_MAX)
        };
        if new_cap > n.cap {
            let zeros = vec![0u8; new_cap - n.cap];
            t.splice(log_at + n.cap..log_at + n.cap, &zeros);
        } else {
            t.splice(log_at + new_cap..log_at + n.cap, &[]);
        }
        n.cap = new_cap;
    }
    t.write(log_at + n.len, entry);
    n.len = needed;
    n.used = live.used + cost;
    n.first = if live.used == 0 { time } else { live.time };
    n.last = time;
    let mut hdr = [0u8; HEADER_LEN];
    n.encode(&mut hdr);
    t.write(body_at, &hdr);
    Ok(())
}
