//! The limit grammar (`parse_limits`) on arbitrary bytes.
//!
//! Checked: no panic (overflow checks are on in fuzz builds); an accepted
//! argument holds 1..=16 limits, each amount in 1..=4294967295 and window in
//! 1 ms..=10 years, no two with the same window, and each limit's text
//! (`limit_text`) re-parses on its own to the same limit; a rejection is worded
//! `ERR invalid limit '...': ...`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_ratelimit::surface::{MAX_AMOUNT, MAX_LIMITS, MAX_WINDOW_MS, limit_text, parse_limits};

fuzz_target!(|data: &[u8]| {
    match parse_limits(data) {
        Ok(limits) => {
            assert!((1..=MAX_LIMITS).contains(&limits.len()));
            let mut windows = Vec::new();
            for (i, l) in limits.iter().enumerate() {
                assert!((1..=MAX_AMOUNT).contains(&l.amount), "{l:?}");
                assert!((1..=MAX_WINDOW_MS).contains(&l.window_ms), "{l:?}");
                assert!(!windows.contains(&l.window_ms), "duplicate window {l:?}");
                windows.push(l.window_ms);
                let text = limit_text(data, i);
                let alone = parse_limits(text).expect("a limit's own text parses alone");
                assert_eq!(alone.len(), 1);
                assert_eq!(
                    (alone.get(0).amount, alone.get(0).window_ms),
                    (l.amount, l.window_ms)
                );
                // Case does not matter.
                let upper = parse_limits(&text.to_ascii_uppercase()).expect("case-insensitive");
                assert_eq!(upper.get(0).window_ms, l.window_ms);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("ERR invalid limit '"), "{msg}");
            assert!(!e.reason.is_empty());
        }
    }
});
