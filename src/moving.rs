//! Moving window: an exact log of admitted hits, each counted while
//! `now < t + W`. The log is a byte string of (delta time, cost) entries with
//! a fixed-size header, so a hit costs O(1) amortized: appends go at the end,
//! expired entries are skipped by advancing `head`, and the dead prefix is
//! reclaimed only once it is at least as large as the live part.

use crate::buf::{Tracked, ValueBuf};
use crate::codec::{Scratch, Sink, TIME_WIDTH, get_fixed, get_varint, put_varint, set_fixed};
use crate::decision::LimitEval;
use crate::limit::MAX_AMOUNT;

/// Bytes of the fixed header that follows the record's tag and window.
pub const HEADER_LEN: usize = 4 + TIME_WIDTH + TIME_WIDTH + 4 + 4 + 4;

/// The header of a moving-window record; `head..len` of the log holds the
/// entries not yet dropped, `len..cap` is spare room.
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

/// A stored log that does not decode (only possible if someone rewrote the
/// key by hand): the caller answers WRONGTYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

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

/// Appends one log entry: `delta << 1 | (cost != 1)`, then the cost if not 1.
pub fn put_entry(out: &mut impl Sink, delta: u64, cost: u64) {
    put_varint(out, (delta << 1) | u64::from(cost != 1));
    if cost != 1 {
        put_varint(out, cost);
    }
}

/// Walks log entries from `head`, yielding (time, cost, offset after it).
struct Entries<'a> {
    log: &'a [u8],
    pos: usize,
    time: u64,
    first: bool,
    /// The header's `last`: an entry after it means the log is corrupt.
    last: u64,
}

impl Iterator for Entries<'_> {
    type Item = Result<(u64, u64, usize), Corrupt>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.log.len() {
            return None;
        }
        let mut p = self.pos;
        let mut step = || -> Option<(u64, u64)> {
            let tagged = get_varint(self.log, &mut p)?;
            let cost = if tagged & 1 == 1 {
                get_varint(self.log, &mut p).filter(|&c| c != 1 && c <= MAX_AMOUNT)?
            } else {
                1
            };
            Some((tagged >> 1, cost))
        };
        let Some((delta, cost)) = step() else {
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

/// The part of a log still counted at some instant.
#[derive(Clone, Copy, Debug)]
struct Live {
    /// Offset of the first counted entry (== len when none).
    head: usize,
    /// Time of that entry.
    first: u64,
    used: u64,
}

/// A read-only view of one moving-window record.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub header: Header,
    /// The log bytes `0..len` (entries before `head` are dead).
    pub log: &'a [u8],
}

impl<'a> View<'a> {
    fn entries(&self, from: usize, first_time: u64) -> Entries<'a> {
        Entries {
            log: &self.log[..self.header.len],
            pos: from,
            time: first_time,
            first: true,
            last: self.header.last,
        }
    }

    /// Drops (in the view only) the entries that stopped counting at `now`.
    fn live_at(&self, w: u64, now: u64) -> Result<Live, Corrupt> {
        let h = self.header;
        if h.used == 0 || h.head >= h.len || h.last.saturating_add(w) <= now {
            return Ok(Live {
                head: h.len,
                first: now,
                used: 0,
            });
        }
        let mut live = Live {
            head: h.head,
            first: h.first,
            used: h.used,
        };
        for e in self.entries(h.head, h.first) {
            let (t, cost, next) = e?;
            if t.saturating_add(w) > now {
                live.first = t;
                return Ok(live);
            }
            live.used = live.used.saturating_sub(cost);
            live.head = next;
        }
        // The header says `last` still counts, so a live entry must exist.
        Err(Corrupt)
    }

    /// Bytes of the entries still counted at `now` (what a hit keeps).
    pub fn live_bytes(&self, w: u64, now: u64) -> Result<usize, Corrupt> {
        if self.header.len < 4096 {
            // Small logs cannot reach any configurable bound: skip the walk.
            return Ok(self.header.len);
        }
        Ok(self.header.len - self.live_at(w, now)?.head.min(self.header.len))
    }

    /// Bytes a compaction at `now` would free in this record's body: the
    /// entries that stopped counting and the spare room, or the whole body
    /// (`None`) when nothing counts any more and the record can go.
    pub fn reclaimable(&self, w: u64, now: u64) -> Result<Option<usize>, Corrupt> {
        let live = self.live_at(w, now)?;
        if live.used == 0 {
            return Ok(None);
        }
        Ok(Some(live.head + (self.header.cap - self.header.len)))
    }

    /// The body (header and log) holding only the entries that count at
    /// `now`, with no spare room; `None` when nothing counts any more. Hits
    /// judge the same on it: the dropped entries no longer count.
    pub fn compacted(&self, w: u64, now: u64) -> Result<Option<Vec<u8>>, Corrupt> {
        let live = self.live_at(w, now)?;
        if live.used == 0 {
            return Ok(None);
        }
        let kept = &self.log[live.head..self.header.len];
        let header = Header {
            used: live.used,
            last: self.header.last,
            first: live.first,
            head: 0,
            len: kept.len(),
            cap: kept.len(),
        };
        let mut body = vec![0u8; HEADER_LEN + kept.len()];
        header.encode(&mut body[..HEADER_LEN]);
        body[HEADER_LEN..].copy_from_slice(kept);
        Ok(Some(body))
    }

    /// When the usage stops counting, if any is counted at `now`.
    pub fn usage_end(&self, w: u64, now: u64) -> Option<u64> {
        let h = self.header;
        let end = h.last.saturating_add(w);
        (h.used > 0 && h.head < h.len && end > now).then_some(end)
    }
}

/// Judges a hit of cost `c`; `view` is `None` when the limit has no state.
pub fn evaluate(
    view: Option<View>,
    l: u64,
    w: u64,
    c: u64,
    now: u64,
) -> Result<LimitEval, Corrupt> {
    let (live, last) = match view {
        Some(v) => (v.live_at(w, now)?, v.header.last),
        None => (
            Live {
                head: 0,
                first: now,
                used: 0,
            },
            now,
        ),
    };
    let until = |t: u64| t.saturating_add(w).saturating_sub(now);
    if live.used + c <= l {
        let used_after = live.used + c;
        let last_after = match (live.used, c) {
            (0, _) => now,
            (_, 0) => last,
            _ => last.max(now),
        };
        return Ok(LimitEval {
            allowed: true,
            limit: l,
            remaining: l - used_after,
            reset_after: if used_after > 0 { until(last_after) } else { 0 },
            retry_after: 0,
        });
    }
    let retry_after = if c > l {
        -1
    } else {
        // Find the entry whose expiry frees enough room for `c`.
        let v = view.expect("denied with c <= l implies usage");
        let must_free = live.used + c - l;
        let mut freed = 0;
        let mut at = None;
        for e in v.entries(live.head, live.first) {
            let (t, cost, _) = e?;
            freed += cost;
            if freed >= must_free {
                at = Some(t);
                break;
            }
        }
        until(at.ok_or(Corrupt)?) as i64
    };
    Ok(LimitEval {
        allowed: false,
        limit: l,
        remaining: l.saturating_sub(live.used),
        reset_after: if live.used > 0 { until(last) } else { 0 },
        retry_after,
    })
}

/// Appends a new record body (header and log) holding one hit.
pub fn put_new_body(out: &mut impl Sink, now: u64, c: u64) {
    let mut entry = Scratch::new();
    put_entry(&mut entry, 0, c);
    let entry = entry.as_slice();
    let header = Header {
        used: c,
        last: now,
        first: now,
        head: 0,
        len: entry.len(),
        cap: entry.len(),
    };
    let mut hdr = [0u8; HEADER_LEN];
    header.encode(&mut hdr);
    out.put(&hdr);
    out.put(entry);
}

/// Charges an admitted hit of cost `c > 0` to the record whose header starts
/// at `hdr_at`, in place. Spare room doubles when the record is followed by
/// others (amortized O(1) appends); the last record in the value is kept
/// exact, since the string itself grows geometrically.
pub fn charge<B: ValueBuf>(
    t: &mut Tracked<B>,
    hdr_at: usize,
    w: u64,
    c: u64,
    now: u64,
) -> Result<(), Corrupt> {
    let mut pos = hdr_at;
    let h = Header::decode(t.bytes(), &mut pos).ok_or(Corrupt)?;
    let log_at = hdr_at + HEADER_LEN;
    let is_last = log_at + h.cap == t.bytes().len();
    let view = View {
        header: h,
        log: &t.bytes()[log_at..log_at + h.len],
    };
    let live = view.live_at(w, now)?;
    let mut n = h;
    if live.used == 0 {
        n.head = 0;
        n.len = 0;
    } else {
        n.head = live.head;
        let live_bytes = h.len - live.head;
        if live.head > 0 && live.head >= live_bytes {
            t.copy_within(log_at + live.head..log_at + h.len, log_at);
            n.head = 0;
            n.len = live_bytes;
        }
    }
    let time = if live.used == 0 { now } else { h.last.max(now) };
    let mut entry = Scratch::new();
    put_entry(
        &mut entry,
        time - if live.used == 0 { time } else { h.last },
        c,
    );
    let entry = entry.as_slice();
    let needed = n.len + entry.len();
    if needed > n.cap || (is_last && needed < n.cap) {
        let new_cap = if is_last {
            needed
        } else {
            needed.max(n.cap.saturating_mul(2))
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
    n.used = live.used + c;
    n.first = if live.used == 0 { time } else { live.first };
    n.last = time;
    let mut hdr = [0u8; HEADER_LEN];
    n.encode(&mut hdr);
    t.write(hdr_at, &hdr);
    Ok(())
}
