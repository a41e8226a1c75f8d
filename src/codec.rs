//! Byte-level helpers for the state encoding: LEB128 varints and fixed-width
//! little-endian integers. Every reader is bounds-checked and returns `None`
//! on short or malformed input, so a corrupt value can never panic.

/// Where encoders append bytes: a `Vec` in tests and cold paths, a
/// [`Scratch`] on the stack on the hot path (no allocation per hit).
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Inline capacity of [`Scratch`]: a new moving-window record (prefix,
/// 28-byte header, one entry) takes at most 45 bytes.
pub const SCRATCH_INLINE: usize = 64;

/// A few encoded bytes on the stack; spills to the heap past
/// [`SCRATCH_INLINE`] so that no input can overflow it.
pub struct Scratch {
    inline: [u8; SCRATCH_INLINE],
    len: usize,
    heap: Vec<u8>,
}

impl Scratch {
    /// An empty buffer.
    pub fn new() -> Scratch {
        Scratch {
            inline: [0; SCRATCH_INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }

    /// Empties it, keeping any heap capacity.
    pub fn clear(&mut self) {
        self.len = 0;
        self.heap.clear();
    }

    /// The bytes appended so far.
    pub fn as_slice(&self) -> &[u8] {
        if self.len <= SCRATCH_INLINE {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Sink for Scratch {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if end <= SCRATCH_INLINE {
            // A few bytes at a time (a tag, a varint, a field): a byte loop
            // is cheaper than a call to memcpy.
            for (d, s) in self.inline[self.len..end].iter_mut().zip(bytes) {
                *d = *s;
            }
        } else {
            if self.len <= SCRATCH_INLINE {
                self.heap.clear();
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.extend_from_slice(bytes);
        }
        self.len = end;
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut (impl Sink + ?Sized), mut v: u64) {
    let mut buf = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    out.put(&buf[..=n]);
}

/// Number of bytes `put_varint` writes for `v`.
#[cfg(test)]
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - v.max(1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a varint at `*pos`, advancing it. Rejects overlong encodings so
/// every value has exactly one encoding (equal state means equal bytes).
#[inline]
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    // One byte (counts, small numbers) is the common case.
    if let Some(&b) = buf.get(*pos)
        && b < 0x80
    {
        *pos += 1;
        return Some(u64::from(b));
    }
    get_varint_long(buf, pos)
}

fn get_varint_long(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos + i)?;
        let part = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return None;
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return None;
            }
            *pos += i + 1;
            return Some(v);
        }
    }
    None
}

/// Appends the low `width` bytes of `v`, little-endian.
pub fn put_fixed(out: &mut (impl Sink + ?Sized), v: u64, width: usize) {
    out.put(&v.to_le_bytes()[..width]);
}

/// Writes the low `width` bytes of `v` at `buf[pos..]`.
pub fn set_fixed(buf: &mut [u8], pos: usize, v: u64, width: usize) {
    buf[pos..pos + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

/// Reads `width` little-endian bytes at `*pos`, advancing it.
#[inline]
pub fn get_fixed(buf: &[u8], pos: &mut usize, width: usize) -> Option<u64> {
    let bytes = buf.get(*pos..pos.checked_add(width)?)?;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(bytes);
    *pos += width;
    Some(u64::from_le_bytes(le))
}

/// `v` in decimal ASCII, written into `buf` (a stack buffer: no allocation).
pub fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// Width of stored absolute times in ms (good until the year 10889).
pub const TIME_WIDTH: usize = 6;
/// Largest storable absolute time.
pub const MAX_TIME: u64 = (1 << 48) - 1;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            let mut pos = 0;
            prop_assert_eq!(get_varint(&out, &mut pos), Some(v));
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn scratch_holds_what_a_vec_holds(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)) {
            let mut s = Scratch::new();
            let mut v = Vec::new();
            for c in &chunks {
                s.put(c);
                v.put(c);
                prop_assert_eq!(s.as_slice(), &v[..]);
            }
            s.clear();
            prop_assert!(s.as_slice().is_empty());
            s.put(&[7]);
            prop_assert_eq!(s.as_slice(), &[7u8][..]);
        }

        #[test]
        fn decimal_is_to_string(v in any::<u64>()) {
            let mut buf = [0u8; 20];
            let want = v.to_string();
            prop_assert_eq!(decimal(v, &mut buf), want.as_bytes());
        }

        #[test]
        fn readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16), at in 0usize..20) {
            let mut p = at;
            let _ = get_varint(&bytes, &mut p);
            let mut p = at;
            let _ = get_fixed(&bytes, &mut p, 6);
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80, 0x00], &mut pos), None);
        assert_eq!(get_varint(&[0xff; 11], &mut pos), None);
        assert_eq!(get_varint(&[0x80], &mut pos), None);
    }
}
