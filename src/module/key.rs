//! Access to one Redis key with the raw key API: reading the value in place,
//! patching it through DMA, setting absolute expiry, and replicating the
//! change as deterministic native commands. Each propagated command also
//! fires the keyspace notifications a replica applying it fires (`set` and
//! `expire` for `SET ... PXAT`, `setrange`, `expire`, `del`), so subscribers
//! see the same events on a primary and on its replicas.

use redis_module::raw;
use std::cell::Cell;
use std::os::raw::{c_char, c_int};

use super::info_counters::{COUNTERS, add, bump};
use super::retained;
use crate::args::Request;
use crate::buf::{SMALL_INLINE, SmallBuf, Tracked, ValueBuf};
use crate::codec::decimal;
use crate::engine::{self, Bounds, EngineError, Plan, Written};

// The write path by value size, in one place:
//
// - up to `COPY_MAX` bytes (every fixed-size state, small logs) the value is
//   copied to the stack (`SmallBuf`, `SMALL_INLINE` bytes inline), rewritten
//   there and copied back whole: cheaper than DMA bookkeeping;
// - larger values (moving-window logs) are patched in place through DMA;
// - up to `WHOLE_VALUE_MAX` bytes, or when it got shorter, a value is
//   replicated whole with one `SET ... PXAT`, else as `SETRANGE` patches,
//   changed ranges closer than `MERGE_GAP` bytes going as one.

/// Largest value rewritten in a stack copy.
const COPY_MAX: usize = 128;
/// Largest value replicated whole.
const WHOLE_VALUE_MAX: usize = 512;
/// Changed ranges closer than this go in one `SETRANGE`.
const MERGE_GAP: usize = 64;
// A hit grows a value by at most one record's worth (a new log of up to 45
// bytes): a stack copy of `COPY_MAX` bytes never spills to the heap.
const _: () = assert!(COPY_MAX + 64 <= SMALL_INLINE);

/// An open key, closed on drop. The module sets
/// `NO_IMPLICIT_SIGNAL_MODIFIED`, so only a key this handle changed is
/// signalled as modified (WATCH, client-side caching): a denied hit opens
/// the key for writing but must not abort a client's transaction.
pub struct Key {
    ctx: *mut raw::RedisModuleCtx,
    pub name: *mut raw::RedisModuleString,
    key: *mut raw::RedisModuleKey,
    modified: bool,
    /// What [`Key::content`] found, until the key is written: a hit reads
    /// its value to decide, then again to write it.
    seen: Cell<Option<Seen>>,
}

/// The key's type and, for a string, where its bytes are.
#[derive(Clone, Copy)]
enum Seen {
    Empty,
    Str(*const u8, usize),
    Other,
}

/// What the key holds.
pub enum Content<'a> {
    Empty,
    Str(&'a [u8]),
    Other,
}

impl Key {
    /// Opens `name` for reading, or for reading and writing.
    pub fn open(
        ctx: *mut raw::RedisModuleCtx,
        name: *mut raw::RedisModuleString,
        write: bool,
    ) -> Key {
        let mode = raw::REDISMODULE_READ | if write { raw::REDISMODULE_WRITE } else { 0 };
        let key = unsafe { raw::RedisModule_OpenKey.unwrap()(ctx, name, mode as c_int) };
        Key {
            ctx,
            name,
            key,
            modified: false,
            seen: Cell::new(None),
        }
    }

    /// The key's content; a string is borrowed in place (no copy).
    pub fn content(&self) -> Content<'_> {
        let seen = match self.seen.get() {
            Some(seen) => seen,
            None => {
                let seen = self.look();
                self.seen.set(Some(seen));
                seen
            }
        };
        match seen {
            Seen::Empty => Content::Empty,
            Seen::Str(_, 0) => Content::Str(&[]),
            Seen::Str(p, len) => Content::Str(unsafe { std::slice::from_raw_parts(p, len) }),
            Seen::Other => Content::Other,
        }
    }

    fn look(&self) -> Seen {
        if self.key.is_null() {
            return Seen::Empty;
        }
        let t = unsafe { raw::RedisModule_KeyType.unwrap()(self.key) } as isize;
        match t {
            raw::REDISMODULE_KEYTYPE_EMPTY => Seen::Empty,
            raw::REDISMODULE_KEYTYPE_STRING => {
                let mut len = 0usize;
                let p = unsafe {
                    raw::RedisModule_StringDMA.unwrap()(
                        self.key,
                        &mut len,
                        raw::REDISMODULE_READ as c_int,
                    )
                };
                if p.is_null() {
                    Seen::Str(std::ptr::null(), 0)
                } else {
                    Seen::Str(p as *const u8, len)
                }
            }
            _ => Seen::Other,
        }
    }

    /// Makes the value `value` with absolute expiry `expire_at`. A new key
    /// gets a raw string of exactly this size (`RedisModule_StringTruncate`
    /// on the empty key), which later hits patch in place through DMA
    /// without Redis converting it first; an existing string is resized in
    /// place (the key and its TTL stay) and overwritten.
    pub fn write(&mut self, value: &[u8], expire_at: u64) {
        self.modified = true;
        self.seen.set(None);
        let mut buf = DmaBuf::new(self.key);
        if buf.as_slice().len() != value.len() {
            buf.resize(value.len());
        }
        buf.as_mut_slice().copy_from_slice(value);
        // Set, not compared first: reading the TTL costs what setting it
        // does, and most writes move it (every GCRA hit, every new window).
        unsafe { raw::RedisModule_SetAbsExpire.unwrap()(self.key, expire_at as i64) };
    }

    /// Sets the key's absolute expiry (ms) unless it already is that;
    /// returns whether it changed.
    pub fn set_expire(&mut self, expire_at: u64) -> bool {
        unsafe {
            let current = match raw::RedisModule_GetAbsExpire {
                Some(get) => get(self.key),
                None => -1,
            };
            if current == expire_at as i64 {
                return false;
            }
            self.modified = true;
            raw::RedisModule_SetAbsExpire.unwrap()(self.key, expire_at as i64);
            true
        }
    }

    /// Deletes the key.
    pub fn delete(&mut self) {
        self.modified = true;
        self.seen.set(None);
        bump(&COUNTERS.keys_deleted);
        unsafe { raw::RedisModule_DeleteKey.unwrap()(self.key) };
    }

    /// Writes an admitted hit (the `plan` [`engine::decide`] made
    /// from this key's value) and replicates it, through [`Key::rewrite`].
    #[inline]
    pub fn commit_hit(
        &mut self,
        plan: &mut Plan,
        req: &Request,
        now: u64,
        max_log_bytes: usize,
    ) -> Result<(), EngineError> {
        let mut op = HitOp {
            plan,
            req,
            now,
            bounds: Bounds::with_log(max_log_bytes),
        };
        self.rewrite(&mut op).map(|_| ())
    }

    /// Runs `op` on this key's value (missing: empty) and writes and
    /// replicates what it did as a hit's write is: a small value through a
    /// stack copy written back whole, a large one patched in place; a value
    /// left with nothing is deleted; nothing is written when nothing
    /// changed.
    #[inline]
    pub fn rewrite(&mut self, op: &mut impl ValueOp) -> Result<Written, EngineError> {
        let copy = match self.content() {
            Content::Str(v) if v.len() > COPY_MAX => None,
            Content::Str(v) => Some(SmallBuf::from_slice(v)),
            Content::Empty => Some(SmallBuf::from_slice(&[])),
            Content::Other => return Err(EngineError::NotState),
        };
        if let Some(mut copy) = copy {
            let mut t = Tracked::new(&mut copy);
            let written = op.run(&mut t)?;
            match written {
                Written::Unchanged => {}
                Written::Emptied => {
                    self.delete();
                    self.replicate_delete();
                }
                Written::Changed(expire_at) => {
                    self.write(t.bytes(), expire_at);
                    self.replicate_whole(t.bytes(), expire_at);
                }
            }
            return Ok(written);
        }
        self.seen.set(None);
        let mut dma = DmaBuf::new(self.key);
        let mut t = Tracked::new(&mut dma);
        let written = op.run(&mut t);
        if t.span().is_some() || t.shrunk() {
            self.modified = true;
        }
        match written? {
            Written::Unchanged => {}
            Written::Emptied => {
                self.delete();
                self.replicate_delete();
            }
            Written::Changed(expire_at) => {
                let expiry_changed = self.set_expire(expire_at);
                self.replicate_change(&t, expire_at, expiry_changed);
            }
        }
        written
    }

    /// Fires the keyspace event `event` of class `class` on this key (Redis
    /// drops it at once unless `notify-keyspace-events` selects it).
    fn notify(&self, class: c_int, event: &std::ffi::CStr) {
        unsafe {
            raw::RedisModule_NotifyKeyspaceEvent.unwrap()(
                self.ctx,
                class,
                event.as_ptr(),
                self.name,
            );
        }
    }

    /// Propagates `DEL key`.
    pub fn replicate_delete(&self) {
        self.notify(raw::REDISMODULE_NOTIFY_GENERIC, c"del");
        bump(&COUNTERS.propagated_commands);
        unsafe {
            raw::RedisModule_Replicate.unwrap()(
                self.ctx,
                c"DEL".as_ptr(),
                c"s".as_ptr(),
                self.name,
            );
        }
    }

    /// Propagates the new value as `SET key value PXAT t`, the whole value
    /// in one command (`PXAT` and `t` are retained strings: only the value
    /// is a new object).
    pub fn replicate_whole(&self, value: &[u8], expire_at: u64) {
        self.notify(raw::REDISMODULE_NOTIFY_STRING, c"set");
        self.notify(raw::REDISMODULE_NOTIFY_GENERIC, c"expire");
        bump(&COUNTERS.propagated_commands);
        add(&COUNTERS.propagated_bytes, value.len() as u64);
        unsafe {
            raw::RedisModule_Replicate.unwrap()(
                self.ctx,
                c"SET".as_ptr(),
                c"sbss".as_ptr(),
                self.name,
                value.as_ptr() as *const c_char,
                value.len(),
                retained::pxat(),
                retained::instant(expire_at),
            );
        }
    }

    /// Propagates the change recorded by `t`: the whole value when it is
    /// small or got shorter, else one `SETRANGE` per changed range and, if
    /// the expiry moved (`expiry_changed`), a `PEXPIREAT` (`SETRANGE` keeps
    /// the TTL, which the replica already has).
    pub fn replicate_change<B: ValueBuf>(
        &self,
        t: &Tracked<B>,
        expire_at: u64,
        expiry_changed: bool,
    ) {
        let value = t.bytes();
        if t.shrunk() || value.len() <= WHOLE_VALUE_MAX {
            self.replicate_whole(value, expire_at);
            return;
        }
        for (a, b) in t.dirty_ranges(MERGE_GAP) {
            self.notify(raw::REDISMODULE_NOTIFY_STRING, c"setrange");
            bump(&COUNTERS.propagated_commands);
            add(&COUNTERS.propagated_bytes, (b - a) as u64);
            unsafe {
                let mut digits = [0u8; 20];
                let offset = decimal(a as u64, &mut digits);
                raw::RedisModule_Replicate.unwrap()(
                    self.ctx,
                    c"SETRANGE".as_ptr(),
                    c"sbb".as_ptr(),
                    self.name,
                    offset.as_ptr() as *const c_char,
                    offset.len(),
                    value[a..b].as_ptr() as *const c_char,
                    b - a,
                );
            }
        }
        if !expiry_changed {
            return;
        }
        self.notify(raw::REDISMODULE_NOTIFY_GENERIC, c"expire");
        bump(&COUNTERS.propagated_commands);
        unsafe {
            raw::RedisModule_Replicate.unwrap()(
                self.ctx,
                c"PEXPIREAT".as_ptr(),
                c"ss".as_ptr(),
                self.name,
                retained::instant(expire_at),
            );
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if self.modified {
            unsafe { raw::RedisModule_SignalModifiedKey.unwrap()(self.ctx, self.name) };
        }
        if !self.key.is_null() {
            unsafe { raw::RedisModule_CloseKey.unwrap()(self.key) };
        }
    }
}

/// A change the engine makes to a key's value (a refund, an acquire, a
/// release), run by [`Key::rewrite`] on whichever buffer holds the value.
pub trait ValueOp {
    /// Changes the value in `t` (empty: no key) and says what it left.
    fn run<B: ValueBuf>(&mut self, t: &mut Tracked<B>) -> Result<Written, EngineError>;
}

/// An admitted hit's write: the plan committed, always a change.
struct HitOp<'a> {
    plan: &'a mut Plan,
    req: &'a Request,
    now: u64,
    bounds: Bounds,
}

impl ValueOp for HitOp<'_> {
    #[inline]
    fn run<B: ValueBuf>(&mut self, t: &mut Tracked<B>) -> Result<Written, EngineError> {
        engine::commit(t, self.plan, self.req, self.now, self.bounds).map(Written::Changed)
    }
}

/// The string value of an open key, writable in place through DMA; growing
/// it goes through `RedisModule_StringTruncate`, which keeps the TTL.
pub struct DmaBuf {
    key: *mut raw::RedisModuleKey,
    ptr: *mut u8,
    len: usize,
}

impl DmaBuf {
    fn new(key: *mut raw::RedisModuleKey) -> DmaBuf {
        let mut b = DmaBuf {
            key,
            ptr: std::ptr::null_mut(),
            len: 0,
        };
        b.refresh();
        b
    }

    fn refresh(&mut self) {
        let mut len = 0usize;
        let mode = (raw::REDISMODULE_READ | raw::REDISMODULE_WRITE) as c_int;
        let p = unsafe { raw::RedisModule_StringDMA.unwrap()(self.key, &mut len, mode) };
        self.ptr = p as *mut u8;
        self.len = if p.is_null() { 0 } else { len };
    }
}

impl ValueBuf for DmaBuf {
    fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    fn resize(&mut self, len: usize) {
        let ok = unsafe { raw::RedisModule_StringTruncate.unwrap()(self.key, len) };
        self.refresh();
        // The engine bounds values far below Redis' 512 MB limit, so this
        // holds; if it ever did not, stop before writing out of bounds.
        assert!(
            ok == raw::REDISMODULE_OK as c_int && self.len == len,
            "string resize failed"
        );
    }
}
