//! The state decoder and the engine fed arbitrary stored bytes, an
//! arbitrary `now` (also far below and above the stored timestamps) and
//! arbitrary limits, strategy, cost and burst.
//!
//! Input layout (little-endian), then the stored value:
//!   [0..8)   now (u64, reduced into 0..=TOP, TOP = MAX_TIME - 10 years, so
//!            that anything admitted at `now` ends at a storable time; with
//!            bit 7 of `sel`, into the last 2^32 ms below TOP)
//!   [8..12)  dt (i32): a second instant now2 = now + dt
//!   [12]     sel: strategy = sel & 3; bit 6: PENALTY (burst % 10 years
//!            + 1 ms); bit 7: see `now`
//!   [13..17) cost (u32)
//!   [17..21) burst (u32, 0 = none; used with gcra only)
//!   [21]     number of limits - 1 (mod 3)
//!   then per limit: amount (u32, 0 read as 1), window (5 bytes, reduced
//!   into 1..=10 years)
//!   rest     the stored value
//!
//! Checked: nothing panics (overflow checks are on); a value that `index`
//! rejects is rejected by every command; a reply is well formed (remaining
//! <= limit, retry 0 iff admitted, -1 iff COST exceeds a limit); when
//! `decide` admits a hit, `commit` succeeds (a failure there would leave a
//! half-written value on the module's in-place path), leaves a value that
//! decodes, an expiry after `now` (the one the value implies) and dirty
//! ranges inside the value; with a small log-size guard a refusal
//! changes nothing;
//! RL.CLEAR with limits leaves a decodable value or none; RL.REFUND leaves
//! a decodable value (the expiry it implies) or none, and one that gives
//! nothing back leaves the bytes as they were; a breach with PENALTY writes
//! a value that decodes and expires no earlier than the penalty; RL.ACQUIRE
//! denied writes nothing, granted leaves a value that decodes, expires
//! after `now` and whose lease RL.RELEASE then ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_ratelimit::surface::{self as engine, Bounds, EngineError};
use redis_ratelimit::surface::{
    Command, MAX_AMOUNT, MAX_TIME, MAX_WINDOW_MS, Strategy, Tracked, index, parse_request,
};

const HEADER: usize = 22;
const PER_LIMIT: usize = 9;

fn le(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let sel = data[12];
    let raw_now = le(&data[0..8]);
    // Beyond TOP (the year 10879) an admitted hit may end past MAX_TIME,
    // which cannot be stored: see CHANGELOG.md, "Hardening history", F1.
    const TOP: u64 = MAX_TIME - MAX_WINDOW_MS;
    let now = if sel & 0x80 != 0 {
        TOP - (raw_now & 0xFFFF_FFFF)
    } else {
        raw_now % (TOP + 1)
    };
    let dt = i64::from(le(&data[8..12]) as u32 as i32);
    let now2 = now.saturating_add_signed(dt);
    let strategy = Strategy::ALL[usize::from(sel & 3)];
    let cost = le(&data[13..17]);
    let burst = le(&data[17..21]);
    let n = 1 + usize::from(data[21] % 3);
    if data.len() < HEADER + n * PER_LIMIT {
        return;
    }
    let mut text = String::new();
    for i in 0..n {
        let at = HEADER + i * PER_LIMIT;
        let amount = le(&data[at..at + 4]).max(1);
        let window = le(&data[at + 4..at + 9]) % MAX_WINDOW_MS + 1;
        if i > 0 {
            text.push(';');
        }
        text.push_str(&format!("{amount}/{window}ms"));
    }
    let value = &data[HEADER + n * PER_LIMIT..];

    let cost_s = cost.to_string();
    let burst_s = burst.to_string();
    let mut opts: Vec<&[u8]> = vec![b"STRATEGY", strategy.name().as_bytes()];
    opts.extend([&b"COST"[..], cost_s.as_bytes()]);
    if strategy == Strategy::Gcra && burst > 0 {
        opts.extend([&b"BURST"[..], burst_s.as_bytes()]);
    }
    let penalty_s = format!("{}ms", burst % MAX_WINDOW_MS + 1);
    if sel & 0x40 != 0 {
        opts.extend([&b"PENALTY"[..], penalty_s.as_bytes()]);
    }
    let Ok(req) = parse_request(Command::Hit, text.as_bytes(), &opts) else {
        return; // duplicate windows, BURST too large: rejected before any state
    };

    let decodes = index(value).is_ok();
    let decided = engine::decide(Some(value), &req, now);
    let stats = engine::stats(Some(value), &req, now);
    let _ = engine::expiry(value, now);
    if !decodes {
        assert_eq!(decided.unwrap_err(), EngineError::NotState);
        assert_eq!(stats.unwrap_err(), EngineError::NotState);
        assert!(engine::check(value).is_err());
        return;
    }
    if let Ok(s) = &stats {
        assert_eq!(s.len(), n);
        for l in s {
            assert!(l.remaining <= l.limit, "{l:?}");
            assert!(l.retry_after >= -1, "{l:?}");
        }
    }
    let Ok((reply, plan)) = decided else {
        return; // a log whose entries do not decode: WRONGTYPE
    };
    assert!(reply.remaining <= reply.limit, "{reply:?}");
    let over = req
        .limits
        .iter()
        .any(|l| cost > req.burst.unwrap_or(l.amount));
    if reply.allowed {
        assert_eq!(reply.retry_after, 0, "{reply:?}");
    } else if over {
        assert_eq!(reply.retry_after, -1, "{reply:?}");
    } else {
        assert!(
            reply.retry_after > 0,
            "denied with retry_after 0: {reply:?}"
        );
    }
    if reply.retry_after == -1 {
        assert!(over && cost <= MAX_AMOUNT);
    }

    // RL.CLEAR key limits STRATEGY s, on a copy.
    let mut cleared = value.to_vec();
    let mut t = Tracked::new(&mut cleared);
    match engine::clear_limits(&mut t, &req, now) {
        Ok((removed, Some(exp))) => {
            assert!(removed as usize <= n);
            assert!(exp > now);
            assert!(
                index(&cleared).is_ok(),
                "clear left a value that does not decode"
            );
        }
        Ok((removed, None)) => assert!(removed as usize <= n),
        Err(e) => assert_eq!(e, EngineError::NotState),
    }

    // RL.REFUND of the same limits (COST at least 1), on a copy.
    let refund_cost = cost.max(1).to_string();
    let mut refund_opts: Vec<&[u8]> = vec![b"STRATEGY", strategy.name().as_bytes()];
    refund_opts.extend([&b"COST"[..], refund_cost.as_bytes()]);
    if strategy == Strategy::Gcra && burst > 0 {
        refund_opts.extend([&b"BURST"[..], burst_s.as_bytes()]);
    }
    if let Ok(refund_req) = parse_request(Command::Refund, text.as_bytes(), &refund_opts) {
        let mut refunded = value.to_vec();
        let mut t = Tracked::new(&mut refunded);
        match engine::refund(&mut t, &refund_req, now) {
            Ok(engine::Written::Unchanged) => assert_eq!(refunded, value),
            Ok(engine::Written::Emptied) => {}
            Ok(engine::Written::Changed(exp)) => {
                assert!(exp > now);
                assert_eq!(engine::expiry(&refunded, now), Ok(Some(exp)));
            }
            Err(e) => assert_eq!(e, EngineError::NotState),
        }
    }

    // RL.ACQUIRE and RL.RELEASE, on copies: a token from the burst bytes,
    // max from the first limit's amount.
    let token = burst.to_le_bytes();
    let token = &token[..1 + (sel as usize >> 4) % 4];
    let max = req.limits.iter().next().map_or(1, |l| l.amount % 10_000 + 1);
    let mut leased = value.to_vec();
    let mut t = Tracked::new(&mut leased);
    match engine::acquire(&mut t, max, 1 + cost % 1_000_000, token, now) {
        Ok(a) => {
            assert!(a.grant.available <= max);
            match a.expiry {
                None => assert_eq!(leased, value, "a denied acquire wrote"),
                Some(exp) => {
                    assert!(exp > now);
                    assert_eq!(engine::expiry(&leased, now), Ok(Some(exp)));
                    // Releasing it ends a live lease.
                    let mut t = Tracked::new(&mut leased);
                    let (ended, _) = engine::release(&mut t, token, now).unwrap();
                    assert!(ended, "the lease just granted did not end");
                    if !leased.is_empty() {
                        assert!(index(&leased).is_ok());
                    }
                }
            }
        }
        Err(e) => assert_eq!(e, EngineError::NotState),
    }

    if !plan.writes(&reply, &req) {
        return;
    }
    // The module's write path with a small log-size guard (as set by
    // `ratelimit.moving-window-max-bytes`): a refusal changes nothing.
    let max_log = usize::from(data[21] >> 2) * 8;
    let mut guarded = value.to_vec();
    let mut t = Tracked::new(&mut guarded);
    let refused = engine::commit(&mut t, &mut plan.clone(), &req, now, Bounds::with_log(max_log));
    let untouched = t.dirty_ranges(0).is_empty();
    match refused {
        Err(EngineError::LogFull(_)) => {
            assert!(
                untouched && guarded == value,
                "a refused hit changed the value"
            );
        }
        Err(e) => panic!("decide admitted but the guarded commit failed: {e:?}"),
        Ok(expire_at) => assert!(expire_at > now),
    }
    // RL.HIT's write, on a copy: the plan `decide` made, committed within
    // the module's largest bounds.
    let mut after = value.to_vec();
    let mut t = Tracked::new(&mut after);
    let committed = engine::commit(
        &mut t,
        &mut { plan },
        &req,
        now,
        Bounds::with_log(engine::MAX_VALUE_LEN),
    );
    let len = t.bytes().len();
    for (a, b) in t.dirty_ranges(0) {
        assert!(a < b && b <= len);
    }
    let expire_at =
        committed.unwrap_or_else(|e| panic!("decide admitted but commit failed: {e:?}"));
    assert!(expire_at > now, "expiry {expire_at} not after now {now}");
    assert!(
        index(&after).is_ok(),
        "commit left a value that does not decode"
    );
    // The expiry commit returns is the one the written value implies.
    assert_eq!(engine::expiry(&after, now), Ok(Some(expire_at)));
    let mut peek = req;
    peek.cost = 0;
    let _ = engine::decide(Some(&after), &peek, now2);
    let _ = engine::stats(Some(&after), &req, now2);
});
