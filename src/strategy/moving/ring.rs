//! A large moving-window log: a ring of fixed-size block slots. Each block
//! starts with the absolute time and the cumulative cost before its first
//! entry, so that the first counted entry (by time) and the entry whose
//! expiry frees enough (by cost) are found by binary search over the
//! blocks and a walk of one block: O(log n + block) per call, whatever
//! share of the log expired. A hit drops the dead blocks by moving the
//! ring's head and appends in the tail block or the next free slot; the
//! log is moved only to grow (a quarter more slots at a time, amortized
//! O(1)) or to release free slots at its end.
//!
//! Body layout (little-endian):
//! ```text
//! cum_end u64 | last u48 | head_cum u64 | head_time u48 | head_off u16 |
//! tail_fill u16 | block u16 | slots u32 | head u32 | count u32 |
//! slots x block bytes
//! block slot: time u48 | cum u64 | fill u16 | entries (fill bytes) | spare
//! ```
//! `cum_end` is the cumulative cost after the newest entry (wrapping);
//! usage is `cum_end - head_cum`. The ring's blocks are the `count` slots
//! from `head` on, wrapping; the first kept entry is at `head_off` in the
//! head block, at `head_time`. A block's first entry's delta is not read.
//! The tail block's fill is `tail_fill` (its own field is written when the
//! next block starts), so that a hit writes two ranges: the header and the
//! new entry.

use super::{
    Corrupt, Entries, FLAT_MAX, FLAT_TAG, Live, flat, may_shrink, put_entry, skip_expired,
};
use crate::buf::{Tracked, ValueBuf};
use crate::codec::{Scratch, TIME_WIDTH, get_fixed, set_fixed};
use crate::limit::MAX_AMOUNT;

/// Bytes of the ring header.
pub const RING_HEADER: usize = 8 + TIME_WIDTH + 8 + TIME_WIDTH + 2 + 2 + 2 + 4 + 4 + 4;
/// Bytes of a block's own header.
const BLOCK_HEADER: usize = TIME_WIDTH + 8 + 2;
/// Block slot size of the rings this build writes (any size from
/// [`MIN_BLOCK`] is read): a walk of one block costs about a binary search
/// over a 16 MB log, and block headers take 3% of the log.
#[cfg(not(test))]
pub const BLOCK: usize = 512;
/// Small in unit tests, so that short property runs cross many blocks.
#[cfg(test)]
pub const BLOCK: usize = 48;
/// The smallest block that holds its header and the longest entry.
const MIN_BLOCK: usize = BLOCK_HEADER + 20;

/// The ring header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    cum_end: u64,
    last: u64,
    head_cum: u64,
    head_time: u64,
    head_off: usize,
    tail_fill: usize,
    block: usize,
    slots: usize,
    head: usize,
    count: usize,
}

impl Header {
    fn decode(buf: &[u8]) -> Option<Header> {
        let mut p = 0;
        Some(Header {
            cum_end: get_fixed(buf, &mut p, 8)?,
            last: get_fixed(buf, &mut p, TIME_WIDTH)?,
            head_cum: get_fixed(buf, &mut p, 8)?,
            head_time: get_fixed(buf, &mut p, TIME_WIDTH)?,
            head_off: get_fixed(buf, &mut p, 2)? as usize,
            tail_fill: get_fixed(buf, &mut p, 2)? as usize,
            block: get_fixed(buf, &mut p, 2)? as usize,
            slots: get_fixed(buf, &mut p, 4)? as usize,
            head: get_fixed(buf, &mut p, 4)? as usize,
            count: get_fixed(buf, &mut p, 4)? as usize,
        })
    }

    fn encode(&self) -> [u8; RING_HEADER] {
        let mut out = [0u8; RING_HEADER];
        let fields = [
            (self.cum_end, 8),
            (self.last, TIME_WIDTH),
            (self.head_cum, 8),
            (self.head_time, TIME_WIDTH),
            (self.head_off as u64, 2),
            (self.tail_fill as u64, 2),
            (self.block as u64, 2),
            (self.slots as u64, 4),
            (self.head as u64, 4),
            (self.count as u64, 4),
        ];
        let mut p = 0;
        for (v, width) in fields {
            set_fixed(&mut out, p, v, width);
            p += width;
        }
        out
    }

    /// Usage counted from the head on.
    fn used(&self) -> u64 {
        self.cum_end.wrapping_sub(self.head_cum)
    }

    /// Physical slot of logical block `i`.
    fn slot(&self, i: usize) -> usize {
        (self.head + i) % self.slots
    }
}

/// One block as read: its first entry's time, the cumulative cost before
/// it, and its entries.
#[derive(Clone, Copy, Debug)]
struct Block<'a> {
    time: u64,
    cum: u64,
    entries: &'a [u8],
}

fn block_at(raw: &[u8]) -> (u64, u64, usize) {
    let mut p = 0;
    let time = get_fixed(raw, &mut p, TIME_WIDTH).unwrap_or(0);
    let cum = get_fixed(raw, &mut p, 8).unwrap_or(0);
    let fill = get_fixed(raw, &mut p, 2).unwrap_or(0) as usize;
    (time, cum, fill)
}

/// Bytes to write over a body at given offsets.
pub(super) type Patches = Vec<(usize, Vec<u8>)>;

/// A read-only view of one ring.
#[derive(Clone, Copy, Debug)]
pub struct Ring<'a> {
    h: Header,
    /// The block slots (`slots * block` bytes).
    blocks: &'a [u8],
}

impl<'a> Ring<'a> {
    /// Decodes a ring body at the start of `body`, checking the header and
    /// the head and tail blocks (not walking anything): the view and the
    /// body's length.
    pub fn decode(body: &'a [u8]) -> Option<(Ring<'a>, usize)> {
        let h = Header::decode(body)?;
        let ok = (MIN_BLOCK..=u16::MAX as usize).contains(&h.block)
            && h.slots >= 1
            && (1..=h.slots).contains(&h.count)
            && h.head < h.slots
            && (1..=MAX_AMOUNT).contains(&h.used())
            && h.head_time <= h.last;
        if !ok {
            return None;
        }
        let len = h.slots.checked_mul(h.block)?.checked_add(RING_HEADER)?;
        let blocks = body.get(RING_HEADER..len)?;
        let r = Ring { h, blocks };
        let head = r.block(0).ok()?;
        let tail = r.block(h.count - 1).ok()?;
        let ok = h.head_off < head.entries.len()
            && head.time <= h.head_time
            && tail.entries.last().is_some_and(|b| b & 0x80 == 0);
        ok.then_some((r, len))
    }

    /// Bytes of the blocks in use.
    pub fn blocks_bytes(&self) -> usize {
        self.h.count * self.h.block
    }

    /// Time of the newest entry.
    pub fn last(&self) -> u64 {
        self.h.last
    }

    /// (slots, head slot), for tests that check the ring's shape.
    #[cfg(test)]
    pub(super) fn shape(&self) -> (usize, usize) {
        (self.h.slots, self.h.head)
    }

    fn raw(&self, slot: usize) -> &'a [u8] {
        &self.blocks[slot * self.h.block..(slot + 1) * self.h.block]
    }

    /// Cumulative cost relative to the head (what precedes it in the log).
    fn rel(&self, cum: u64) -> u64 {
        cum.wrapping_sub(self.h.head_cum)
    }

    /// Logical block `i` (< count), checked against the header.
    fn block(&self, i: usize) -> Result<Block<'a>, Corrupt> {
        let raw = self.raw(self.h.slot(i));
        let (time, cum, own_fill) = block_at(raw);
        let fill = if i + 1 == self.h.count {
            self.h.tail_fill
        } else {
            own_fill
        };
        let ok = (1..=self.h.block - BLOCK_HEADER).contains(&fill)
            && time <= self.h.last
            && (i == 0 || self.rel(cum) < self.h.used());
        if !ok {
            return Err(Corrupt);
        }
        Ok(Block {
            time,
            cum,
            entries: &raw[BLOCK_HEADER..BLOCK_HEADER + fill],
        })
    }

    /// The last logical block in `lo..hi` for which `pred` holds, given
    /// that it holds for `lo` (not asked) and for no block from `hi` on, and
    /// that it holds for a prefix of the blocks (their times and costs only
    /// grow). Each round reads up to `FAN - 1` blocks that do not depend on
    /// each other and keeps one of `FAN` parts of the range, so that on a
    /// log out of the CPU caches their memory latencies overlap.
    fn last_where(
        &self,
        mut lo: usize,
        mut hi: usize,
        pred: impl Fn(&Block) -> bool,
    ) -> Result<usize, Corrupt> {
        const FAN: usize = 4;
        while hi - lo > 1 {
            let step = (hi - lo).div_ceil(FAN);
            let mut probes = [(0, false); FAN - 1];
            let mut n = 0;
            let mut at = lo + step;
            while at < hi && n < FAN - 1 {
                probes[n] = (at, pred(&self.block(at)?));
                n += 1;
                at += step;
            }
            let mut next_hi = hi;
            for &(i, holds) in &probes[..n] {
                if holds {
                    lo = i;
                } else {
                    next_hi = i;
                    break;
                }
            }
            hi = next_hi;
        }
        Ok(lo)
    }

    /// Where the walk of logical block `i` starts: (offset, time, cum).
    fn start(&self, i: usize, b: &Block) -> (usize, u64, u64) {
        if i == 0 {
            (self.h.head_off, self.h.head_time, self.h.head_cum)
        } else {
            (0, b.time, b.cum)
        }
    }

    /// The entries still counted at `now`.
    pub(super) fn live_at(&self, window_ms: u64, now: u64) -> Result<Live, Corrupt> {
        let h = self.h;
        let used = h.used();
        let live = |block, off, time, cum: u64| Live {
            block,
            off,
            time,
            cum,
            used: used - self.rel(cum),
        };
        if h.last.saturating_add(window_ms) <= now {
            return Ok(Live {
                block: h.count,
                off: 0,
                time: now,
                cum: h.cum_end,
                used: 0,
            });
        }
        if h.head_time.saturating_add(window_ms) > now {
            return Ok(live(0, h.head_off, h.head_time, h.head_cum));
        }
        // The last block whose first entry stopped counting (block 0's
        // first kept entry did).
        let lo = self.last_where(0, h.count, |b| b.time.saturating_add(window_ms) <= now)?;
        let b = self.block(lo)?;
        let (off, time, cum) = self.start(lo, &b);
        let (found, passed) = skip_expired(b.entries, off, time, h.last, window_ms, now)?;
        let cum = cum.wrapping_add(passed);
        if self.rel(cum) >= used || passed >= used {
            return Err(Corrupt);
        }
        let start = match found {
            Some((at, t)) => live(lo, at, t, cum),
            // Every entry of block `lo` stopped counting: the next one starts.
            None => {
                if lo + 1 >= h.count {
                    return Err(Corrupt);
                }
                let next = self.block(lo + 1)?;
                if next.time.saturating_add(window_ms) <= now || self.rel(next.cum) < self.rel(cum)
                {
                    return Err(Corrupt);
                }
                live(lo + 1, 0, next.time, next.cum)
            }
        };
        // A hit makes this the head: the blocks after it must not have
        // counted less before them (costs only add up along the log), or
        // the ring it writes would not decode.
        if start.block + 1 < h.count && self.rel(self.block(h.count - 1)?.cum) < self.rel(start.cum)
        {
            return Err(Corrupt);
        }
        Ok(start)
    }

    /// Time of the entry whose expiry frees `must_free` from `live` on.
    pub(super) fn free_time(&self, live: Live, must_free: u64) -> Result<u64, Corrupt> {
        let target = self.rel(live.cum).saturating_add(must_free);
        if target > self.h.used() || live.block >= self.h.count {
            return Err(Corrupt);
        }
        // The last block starting before `target` is reached.
        let lo = self.last_where(live.block, self.h.count, |b| self.rel(b.cum) < target)?;
        let b = self.block(lo)?;
        let (off, time, cum) = if lo == live.block {
            (live.off, live.time, live.cum)
        } else {
            (0, b.time, b.cum)
        };
        let mut rel = self.rel(cum);
        for e in Entries::new(b.entries, off, time, self.h.last) {
            let (t, cost, _) = e?;
            rel = rel.saturating_add(cost);
            if rel >= target {
                // Times only grow along the log: an earlier one means a
                // block header was rewritten by hand.
                return if t < live.time { Err(Corrupt) } else { Ok(t) };
            }
        }
        Err(Corrupt)
    }

    /// Bytes of the blocks from the one holding the first counted entry on,
    /// headers included (the memory the counted entries hold).
    pub(super) fn live_bytes(&self, window_ms: u64, now: u64) -> Result<usize, Corrupt> {
        let live = self.live_at(window_ms, now)?;
        if live.used == 0 {
            return Ok(0);
        }
        Ok((self.h.count - live.block) * self.h.block)
    }

    /// See [`super::View::reclaimable`].
    pub(super) fn reclaimable(&self, window_ms: u64, now: u64) -> Result<Option<usize>, Corrupt> {
        let live = self.live_at(window_ms, now)?;
        if live.used == 0 {
            return Ok(None);
        }
        Ok(Some(
            (self.h.slots - (self.h.count - live.block)) * self.h.block,
        ))
    }

    /// See [`super::View::compacted`]: the counted blocks, in order from
    /// slot 0, no free slot.
    pub(super) fn compacted(&self, window_ms: u64, now: u64) -> Result<Option<Vec<u8>>, Corrupt> {
        let live = self.live_at(window_ms, now)?;
        if live.used == 0 {
            return Ok(None);
        }
        let n = self.h.count - live.block;
        let h = Header {
            head_cum: live.cum,
            head_time: live.time,
            head_off: live.off,
            slots: n,
            head: 0,
            count: n,
            ..self.h
        };
        let mut body = Vec::with_capacity(RING_HEADER + n * h.block);
        body.extend_from_slice(&h.encode());
        for i in live.block..self.h.count {
            body.extend_from_slice(self.raw(self.h.slot(i)));
        }
        Ok(Some(body))
    }

    /// A refund of `cost`, less than the usage counted at `now`, taken off
    /// the newest entries in place (the oldest one reached may keep part of
    /// its cost): the patches (offset in the body, bytes). Blocks it empties
    /// become free slots, and the freed bytes of the new tail block its
    /// spare room, so the body keeps its size and a write sends just the
    /// header and the changed entry: O(blocks emptied x block), never a walk
    /// of the whole log.
    pub(super) fn refund_from_tail(
        &self,
        window_ms: u64,
        cost: u64,
        now: u64,
    ) -> Result<Patches, Corrupt> {
        let live = self.live_at(window_ms, now)?;
        if cost >= live.used || live.block >= self.h.count {
            return Err(Corrupt);
        }
        let mut left = cost;
        for i in (live.block..self.h.count).rev() {
            let b = self.block(i)?;
            let (off, time) = if i == live.block {
                (live.off, live.time)
            } else {
                (0, b.time)
            };
            // The counted entries of block i: (start, end, time, cost).
            let mut entries = Vec::new();
            let mut start = off;
            for e in Entries::new(b.entries, off, time, self.h.last) {
                let (t, c, end) = e?;
                entries.push((start, end, t, c));
                start = end;
            }
            let total: u64 = entries.iter().map(|e| e.3).sum();
            if total <= left {
                // The whole block goes (the one holding the first counted
                // entry never does: the refund is less than the usage).
                if i == live.block {
                    return Err(Corrupt);
                }
                left -= total;
                continue;
            }
            let slot_at = RING_HEADER + self.h.slot(i) * self.h.block + BLOCK_HEADER;
            let mut patches = Vec::new();
            while let Some(&(from, to, t, c)) = entries.last() {
                if c <= left {
                    left -= c;
                    entries.pop();
                    continue;
                }
                let fill = if left > 0 {
                    // Written again with the cost it keeps (its delta as it was).
                    let (delta, _, _) = super::read_entry(b.entries, from).ok_or(Corrupt)?;
                    let mut raw = Scratch::new();
                    put_entry(&mut raw, delta, c - left);
                    patches.push((slot_at + from, raw.as_slice().to_vec()));
                    from + raw.as_slice().len()
                } else {
                    to
                };
                let h = Header {
                    cum_end: self.h.cum_end.wrapping_sub(cost),
                    last: t,
                    tail_fill: fill,
                    count: i + 1,
                    ..self.h
                };
                patches.push((0, h.encode().to_vec()));
                return Ok(patches);
            }
            return Err(Corrupt);
        }
        Err(Corrupt)
    }

    /// When the usage stops counting, if any is counted at `now`.
    pub(super) fn usage_end(&self, window_ms: u64, now: u64) -> Option<u64> {
        let end = self.h.last.saturating_add(window_ms);
        (end > now).then_some(end)
    }
}

/// Packs entries, in order, into a new ring with no free slot.
pub(super) struct Builder {
    block: usize,
    blocks: Vec<u8>,
    count: usize,
    fill: usize,
    cum: u64,
    first: Option<u64>,
}

impl Builder {
    /// An empty ring of `block`-byte slots.
    pub fn new(block: usize) -> Builder {
        Builder {
            block,
            blocks: Vec::new(),
            count: 0,
            fill: 0,
            cum: 0,
            first: None,
        }
    }

    /// Appends one entry: its encoded bytes (the delta from the entry
    /// pushed before it), its time and cost.
    pub fn push(&mut self, raw: &[u8], time: u64, cost: u64) {
        if self.count == 0 || self.fill + raw.len() > self.block - BLOCK_HEADER {
            let at = self.blocks.len();
            self.blocks.resize(at + self.block, 0);
            set_fixed(&mut self.blocks, at, time, TIME_WIDTH);
            set_fixed(&mut self.blocks, at + TIME_WIDTH, self.cum, 8);
            self.count += 1;
            self.fill = 0;
        }
        let at = (self.count - 1) * self.block;
        let dst = at + BLOCK_HEADER + self.fill;
        self.blocks[dst..dst + raw.len()].copy_from_slice(raw);
        self.fill += raw.len();
        set_fixed(&mut self.blocks, at + TIME_WIDTH + 8, self.fill as u64, 2);
        self.cum = self.cum.wrapping_add(cost);
        self.first.get_or_insert(time);
    }

    /// The ring body; `last` is the newest entry's time. At least one entry
    /// must have been pushed.
    pub fn finish(self, last: u64) -> Vec<u8> {
        let h = Header {
            cum_end: self.cum,
            last,
            head_cum: 0,
            head_time: self.first.unwrap_or(last),
            head_off: 0,
            tail_fill: self.fill,
            block: self.block,
            slots: self.count,
            head: 0,
            count: self.count,
        };
        let mut body = Vec::with_capacity(RING_HEADER + self.blocks.len());
        body.extend_from_slice(&h.encode());
        body.extend_from_slice(&self.blocks);
        body
    }
}

/// Writes a new block at `slot_at` holding one entry of `cost` at `time`
/// (`cum` before it); returns its fill. The block's own fill field is left
/// to the ring header's `tail_fill` while it is the tail.
fn start_block<B: ValueBuf>(
    t: &mut Tracked<B>,
    slot_at: usize,
    time: u64,
    cum: u64,
    cost: u64,
) -> usize {
    let mut first = Scratch::new();
    put_entry(&mut first, 0, cost);
    let mut blk = [0u8; BLOCK_HEADER];
    set_fixed(&mut blk, 0, time, TIME_WIDTH);
    set_fixed(&mut blk, TIME_WIDTH, cum, 8);
    t.write(slot_at, &blk);
    t.write(slot_at + BLOCK_HEADER, first.as_slice());
    first.as_slice().len()
}

/// Charges an admitted hit of `cost > 0` to the ring whose tag is at `at`
/// and body at `body_at`, in place: drops the blocks that stopped counting
/// (by moving the head), appends to the tail block or the next free slot,
/// growing the ring when every slot holds counted entries. A ring left with
/// a quarter of [`FLAT_MAX`] of counted entries, or none, turns flat when
/// that may shrink the value ([`may_shrink`]); with none, it otherwise
/// starts again at its head slot.
pub(super) fn charge<B: ValueBuf>(
    t: &mut Tracked<B>,
    at: usize,
    body_at: usize,
    window_ms: u64,
    cost: u64,
    now: u64,
) -> Result<(), Corrupt> {
    let (r, body_len) = Ring::decode(&t.bytes()[body_at..]).ok_or(Corrupt)?;
    let is_last = body_at + body_len == t.bytes().len();
    let live = r.live_at(window_ms, now)?;
    let mut h = r.h;
    let time = h.last.max(now);
    let mut entry = Scratch::new();
    put_entry(&mut entry, time - h.last, cost);
    let entry = entry.as_slice();
    let base = body_at + RING_HEADER;
    let bs = h.block;
    if live.used == 0 {
        let mut body = Vec::new();
        flat::put_body(&mut body, now, now, cost, &[], 0, cost);
        if may_shrink(body_len - body.len(), t.bytes().len()) {
            t.splice(body_at..body_at + body_len, &body);
            t.write(at, &[FLAT_TAG]);
            return Ok(());
        }
        // The ring starts again at its head slot and keeps its slots.
        h.tail_fill = start_block(t, base + h.head * bs, now, h.cum_end, cost);
        h.head_off = 0;
        h.head_time = now;
        h.head_cum = h.cum_end;
        h.count = 1;
        h.cum_end = h.cum_end.wrapping_add(cost);
        h.last = now;
        t.write(body_at, &h.encode());
        return Ok(());
    }
    // Drop the blocks that stopped counting.
    h.head = h.slot(live.block);
    h.count -= live.block;
    h.head_off = live.off;
    h.head_time = live.time;
    h.head_cum = live.cum;
    let tail = r.block(live.block + h.count - 1)?;
    if h.count == 1 {
        let kept = &tail.entries[live.off..];
        if kept.len() + entry.len() <= FLAT_MAX / 4 {
            let mut body = Vec::new();
            let used = live.used + cost;
            flat::put_body(&mut body, time, live.time, used, kept, time - h.last, cost);
            if may_shrink(body_len - body.len(), t.bytes().len()) {
                t.splice(body_at..body_at + body_len, &body);
                t.write(at, &[FLAT_TAG]);
                return Ok(());
            }
        }
    }
    let fill = tail.entries.len();
    if fill + entry.len() <= bs - BLOCK_HEADER {
        let tail_at = base + h.slot(h.count - 1) * bs;
        t.write(tail_at + BLOCK_HEADER + fill, entry);
        h.tail_fill = fill + entry.len();
    } else {
        if h.count == h.slots {
            // Full: insert free slots right after the tail (at the end of
            // an unwrapped ring, else before the head, which moves on).
            // A log followed by other records moves them all when it
            // grows: it takes room for at least a quarter of what it moves,
            // so that moving them costs each new entry a few bytes.
            let after = t.bytes().len() - (body_at + body_len);
            let g = match (is_last, h.head) {
                (true, 0) => 1,
                (true, _) => (h.slots / 4).max(1),
                (false, _) => (h.slots / 4).max(2).max(after.div_ceil(4 * bs)),
            };
            let ins = if h.head == 0 { h.slots } else { h.head };
            t.splice(base + ins * bs..base + ins * bs, &vec![0u8; g * bs]);
            if h.head > 0 {
                h.head += g;
            }
            h.slots += g;
        }
        // The tail block is closed: its fill goes into its own header.
        let mut f = [0u8; 2];
        set_fixed(&mut f, 0, fill as u64, 2);
        t.write(base + h.slot(h.count - 1) * bs + TIME_WIDTH + 8, &f);
        h.tail_fill = start_block(t, base + h.slot(h.count) * bs, time, h.cum_end, cost);
        h.count += 1;
    }
    h.cum_end = h.cum_end.wrapping_add(cost);
    h.last = time;
    // Release the free slots at the end of an unwrapped ring once they are
    // three quarters of it (and, see `may_shrink`, half the value).
    if h.head + h.count <= h.slots {
        let free_end = h.slots - h.head - h.count;
        if free_end > 0 && free_end * 4 >= h.slots * 3 && may_shrink(free_end * bs, t.bytes().len())
        {
            let keep = h.slots - free_end;
            t.splice(base + keep * bs..base + h.slots * bs, &[]);
            h.slots = keep;
        }
    }
    t.write(body_at, &h.encode());
    Ok(())
}
