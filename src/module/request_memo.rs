//! The last request parsed, reused when the next call has the same words:
//! an application sends the same limits and options on every request, so
//! parsing `100/m STRATEGY sliding` once instead of per call saves a good
//! share of a hit's own work. Only successful parses are kept; the key
//! includes the command and the configured default strategy, so a call is
//! never answered with another command's or another config's request.

use std::cell::RefCell;

use crate::args::{Command, Request};
use crate::strategy::Strategy;

/// Calls whose words take more than this many bytes are parsed every time.
const KEY_MAX: usize = 96;

/// The words of a call, each with its length, in one stack buffer.
pub struct MemoKey {
    bytes: [u8; KEY_MAX],
    len: usize,
    fits: bool,
}

impl MemoKey {
    /// Starts a key for `cmd` under `default_strategy`.
    pub fn new(cmd: Command, default_strategy: Strategy) -> MemoKey {
        let mut k = MemoKey {
            bytes: [0; KEY_MAX],
            len: 0,
            fits: true,
        };
        k.put(&[cmd as u8, default_strategy as u8]);
        k
    }

    fn put(&mut self, b: &[u8]) {
        if !self.fits || self.len + b.len() > KEY_MAX {
            self.fits = false;
            return;
        }
        self.bytes[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    /// Adds one argument word (length-prefixed, so word boundaries count).
    pub fn word(&mut self, w: &[u8]) {
        match u8::try_from(w.len()) {
            Ok(n) => {
                self.put(&[n]);
                self.put(w);
            }
            Err(_) => self.fits = false,
        }
    }

    /// Keeps this call out of the memo (for example: more words than any
    /// valid call has).
    pub fn skip(&mut self) {
        self.fits = false;
    }

    fn as_slice(&self) -> Option<&[u8]> {
        self.fits.then_some(&self.bytes[..self.len])
    }
}

struct Memo {
    key: [u8; KEY_MAX],
    key_len: usize,
    req: Option<Request>,
}

/// The memo, shared by the commands. Redis runs commands one at a time,
/// holding its global lock (on the main thread, or on a module thread that
/// locked it for `RM_Call`), so accesses never overlap; the `RefCell` still
/// guards against a command re-entering the memo.
struct Shared(RefCell<Memo>);

// SAFETY: see above: every access happens while Redis' global lock is held.
unsafe impl Sync for Shared {}

static MEMO: Shared = Shared(RefCell::new(Memo {
    key: [0; KEY_MAX],
    key_len: 0,
    req: None,
}));

/// Runs `f` with the request parsed last time for exactly these words, by
/// reference (no copy of the request); gives `f` back when there is none.
/// The memo stays borrowed while `f` runs; `put` never waits for it.
pub fn with<F: FnOnce(&Request)>(key: &MemoKey, f: F) -> Result<(), F> {
    let Some(k) = key.as_slice() else {
        return Err(f);
    };
    let m = MEMO.0.borrow();
    match &m.req {
        Some(req) if &m.key[..m.key_len] == k => {
            f(req);
            Ok(())
        }
        _ => Err(f),
    }
}

/// Remembers `req` as the parse of these words (skipped if the memo is in
/// use, which a command calling another could cause).
pub fn put(key: &MemoKey, req: &Request) {
    let Some(k) = key.as_slice() else {
        return;
    };
    if let Ok(mut m) = MEMO.0.try_borrow_mut() {
        m.key[..k.len()].copy_from_slice(k);
        m.key_len = k.len();
        m.req = Some(*req);
    }
}
