//! The value being rewritten, seen as bytes that can be patched in place.
//! The engine changes state only through [`Tracked`], which records which
//! byte ranges changed so the glue can replicate just those.

/// A growable byte buffer: a `Vec<u8>` in tests, the Redis string itself
/// (through DMA) in the module.
pub trait ValueBuf {
    /// The whole value.
    fn as_slice(&self) -> &[u8];
    /// The whole value, writable.
    fn as_mut_slice(&mut self) -> &mut [u8];
    /// Grows (with zeros) or shrinks the value to `len` bytes.
    fn resize(&mut self, len: usize);
}

impl ValueBuf for Vec<u8> {
    fn as_slice(&self) -> &[u8] {
        self
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        self
    }
    fn resize(&mut self, len: usize) {
        Vec::resize(self, len, 0);
    }
}

/// A value small enough to copy: kept on the stack, spilling to the heap
/// only if a write grows it past the inline capacity.
pub struct SmallBuf {
    inline: [u8; SMALL_INLINE],
    len: usize,
    heap: Option<Vec<u8>>,
}

/// Inline capacity of [`SmallBuf`].
pub const SMALL_INLINE: usize = 192;

impl SmallBuf {
    /// A copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> SmallBuf {
        let mut b = SmallBuf {
            inline: [0; SMALL_INLINE],
            len: 0,
            heap: None,
        };
        if bytes.len() <= SMALL_INLINE {
            b.inline[..bytes.len()].copy_from_slice(bytes);
            b.len = bytes.len();
        } else {
            b.heap = Some(bytes.to_vec());
        }
        b
    }
}

impl ValueBuf for SmallBuf {
    fn as_slice(&self) -> &[u8] {
        match &self.heap {
            Some(v) => v,
            None => &self.inline[..self.len],
        }
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.heap {
            Some(v) => v,
            None => &mut self.inline[..self.len],
        }
    }
    fn resize(&mut self, len: usize) {
        match &mut self.heap {
            Some(v) => v.resize(len, 0),
            None if len <= SMALL_INLINE => {
                if len > self.len {
                    self.inline[self.len..len].fill(0);
                }
                self.len = len;
            }
            None => {
                let mut v = self.inline[..self.len].to_vec();
                v.resize(len, 0);
                self.heap = Some(v);
            }
        }
    }
}

/// Changed ranges kept without allocating (a hit on one or two logs).
const INLINE_RANGES: usize = 8;
/// How many distinct changed ranges are remembered (a hit on 16 logs
/// writes up to about 6 each); past that the two closest are merged
/// (correct, just coarser where it costs least).
const MAX_RANGES: usize = 256;

/// A [`ValueBuf`] plus the byte ranges written through it.
pub struct Tracked<'a, B: ValueBuf> {
    buf: &'a mut B,
    dirty: [(usize, usize); INLINE_RANGES],
    n_dirty: usize,
    /// All the ranges, once there are more than fit inline.
    spill: Vec<(usize, usize)>,
    shrunk: bool,
}

impl<'a, B: ValueBuf> Tracked<'a, B> {
    /// Starts tracking changes to `buf`.
    pub fn new(buf: &'a mut B) -> Self {
        Tracked {
            buf,
            dirty: [(0, 0); INLINE_RANGES],
            n_dirty: 0,
            spill: Vec::new(),
            shrunk: false,
        }
    }

    /// The current bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.as_slice()
    }

    /// Overwrites `data.len()` bytes at `at` (which must be in range).
    pub fn write(&mut self, at: usize, data: &[u8]) {
        self.buf.as_mut_slice()[at..at + data.len()].copy_from_slice(data);
        self.mark(at, at + data.len());
    }

    /// Moves `src` to start at `dst` inside the value.
    pub fn copy_within(&mut self, src: std::ops::Range<usize>, dst: usize) {
        let n = src.len();
        self.buf.as_mut_slice().copy_within(src, dst);
        self.mark(dst, dst + n);
    }

    /// Replaces `range` with `data`, shifting the bytes after it.
    pub fn splice(&mut self, range: std::ops::Range<usize>, data: &[u8]) {
        let old_len = self.bytes().len();
        let (a, b) = (range.start, range.end);
        let new_len = old_len - (b - a) + data.len();
        if new_len > old_len {
            self.buf.resize(new_len);
            let s = self.buf.as_mut_slice();
            s.copy_within(b..old_len, a + data.len());
        } else if new_len < old_len {
            let s = self.buf.as_mut_slice();
            s.copy_within(b..old_len, a + data.len());
            self.buf.resize(new_len);
            self.shrunk = true;
        }
        self.buf.as_mut_slice()[a..a + data.len()].copy_from_slice(data);
        let end = if new_len == old_len {
            a + data.len()
        } else {
            new_len
        };
        self.mark(a, end);
    }

    #[inline]
    fn mark(&mut self, a: usize, b: usize) {
        if a >= b {
            return;
        }
        if self.n_dirty < INLINE_RANGES {
            self.dirty[self.n_dirty] = (a, b);
            self.n_dirty += 1;
            return;
        }
        self.mark_spilled(a, b);
    }

    /// [`Tracked::mark`] past the inline ranges: rare (a hit on many logs
    /// at one key), so kept out of the common path.
    #[cold]
    #[inline(never)]
    fn mark_spilled(&mut self, a: usize, b: usize) {
        if self.spill.is_empty() {
            self.spill.extend_from_slice(&self.dirty);
        }
        if self.spill.len() == MAX_RANGES {
            // Merge the two ranges with the smallest gap between them, so
            // that a hit writing to many logs far apart (each its header
            // and its tail) still replicates about the bytes it changed.
            let d = &mut self.spill;
            d.sort_unstable();
            let closest = (0..d.len() - 1)
                .min_by_key(|&i| d[i + 1].0.saturating_sub(d[i].1))
                .expect("MAX_RANGES > 1");
            d[closest].1 = d[closest].1.max(d[closest + 1].1);
            d.remove(closest + 1);
        }
        self.spill.push((a, b));
    }

    /// The changed ranges as recorded (unsorted, may overlap).
    fn ranges(&self) -> &[(usize, usize)] {
        if self.spill.is_empty() {
            &self.dirty[..self.n_dirty]
        } else {
            &self.spill
        }
    }

    /// One range covering every change, if any.
    pub fn span(&self) -> Option<(usize, usize)> {
        let d = self.ranges();
        let lo = d.iter().map(|r| r.0).min()?;
        let hi = d.iter().map(|r| r.1).max()?;
        Some((lo, hi.min(self.bytes().len())))
    }

    /// True when the value got shorter: a partial overwrite cannot express
    /// that, so the whole value must be replicated.
    pub fn shrunk(&self) -> bool {
        self.shrunk
    }

    /// The changed ranges, sorted and merged when closer than `gap` bytes.
    pub fn dirty_ranges(&self, gap: usize) -> Vec<(usize, usize)> {
        let mut r = self.ranges().to_vec();
        r.sort_unstable();
        let mut out: Vec<(usize, usize)> = Vec::with_capacity(r.len());
        let len = self.bytes().len();
        for (a, b) in r {
            let (a, b) = (a.min(len), b.min(len));
            match out.last_mut() {
                Some(last) if a <= last.1 + gap => last.1 = last.1.max(b),
                _ if a < b => out.push((a, b)),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_grows_shrinks_and_tracks() {
        let mut v = b"abcdef".to_vec();
        let mut t = Tracked::new(&mut v);
        t.splice(2..3, b"XYZ");
        assert_eq!(t.bytes(), b"abXYZdef");
        assert_eq!(t.dirty_ranges(0), vec![(2, 8)]);
        assert!(!t.shrunk());
        t.splice(0..4, b"");
        assert_eq!(t.bytes(), b"Zdef");
        assert!(t.shrunk());
        t.write(1, b"q");
        assert_eq!(t.bytes(), b"Zqef");
    }

    #[test]
    fn many_writes_far_apart_keep_their_ranges_small() {
        let mut v = vec![0u8; 100_000];
        let mut t = Tracked::new(&mut v);
        // Two clusters of small writes 90 KB apart, more than MAX_RANGES.
        for i in 0..(MAX_RANGES / 2 + 20) {
            t.write(100 + 40 * i, b"ab");
            t.write(90_000 + 40 * i, b"cd");
        }
        let ranges = t.dirty_ranges(0);
        let covered: usize = ranges.iter().map(|(a, b)| b - a).sum();
        assert!(covered < 4_000, "{covered} bytes in {ranges:?}");
        // Every write is inside some range.
        for i in 0..(MAX_RANGES / 2 + 20) {
            for at in [100 + 40 * i, 90_000 + 40 * i] {
                assert!(ranges.iter().any(|&(a, b)| a <= at && at + 2 <= b), "{at}");
            }
        }
    }

    #[test]
    fn small_buf_spills_to_the_heap() {
        let mut b = SmallBuf::from_slice(b"abc");
        b.resize(5);
        assert_eq!(b.as_slice(), b"abc\0\0");
        b.resize(SMALL_INLINE + 10);
        assert_eq!(&b.as_slice()[..3], b"abc");
        assert_eq!(b.as_slice().len(), SMALL_INLINE + 10);
        b.resize(2);
        assert_eq!(b.as_slice(), b"ab");
    }

    #[test]
    fn many_ranges_merge_into_one() {
        let mut v = vec![0u8; 100];
        let mut t = Tracked::new(&mut v);
        for i in 0..(MAX_RANGES + 20) {
            t.write(i * 4 % 100, b"x");
        }
        assert_eq!(t.span(), Some((0, 97)));
        assert!(t.dirty_ranges(0).len() <= MAX_RANGES);
    }

    #[test]
    fn ranges_merge_across_small_gaps() {
        let mut v = vec![0u8; 100];
        let mut t = Tracked::new(&mut v);
        t.write(0, b"ab");
        t.write(5, b"cd");
        t.write(50, b"ef");
        assert_eq!(t.dirty_ranges(8), vec![(0, 7), (50, 52)]);
        assert_eq!(t.dirty_ranges(0), vec![(0, 2), (5, 7), (50, 52)]);
    }
}
