//! Section 2: behaviour of each strategy over time (short ms windows).
//!
//! Time-dependent assertions are made self-consistent: where the expected
//! value depends on the exact server time, the elapsed time is recovered
//! from the same reply (`reset_after_ms`) and the formula is checked
//! exactly; sleeps only need to land roughly in the right window.

mod common;
use common::*;
use std::time::Instant;

#[test]
fn fixed_window_ends_and_a_new_one_starts_at_the_next_hit() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(hit(&mut c, "k", "5/300ms", &[]), [1, 5, 4, 300, 0]);
    for i in 1..5 {
        let r = hit(&mut c, "k", "5/300ms", &[]);
        assert_eq!(&r[..3], &[1, 5, 4 - i]);
        assert_between(r[3], 1, 300, "reset");
    }
    let r = hit(&mut c, "k", "5/300ms", &[]);
    assert_eq!(&r[..3], &[0, 5, 0], "{r:?}");
    assert_between(r[3], 1, 300, "reset");
    assert_eq!(r[4], r[3]);
    sleep_ms(r[4] + 30);
    assert!(!exists(&mut c, "k"), "key outlived its only window");
    assert_eq!(test(&mut c, "k", "5/300ms", &[]), [1, 5, 4, 300, 0]);
    assert_eq!(hit(&mut c, "k", "5/300ms", &[]), [1, 5, 4, 300, 0]);
}

#[test]
fn fixed_window_is_not_aligned_to_the_wall_clock() {
    // The window starts at the first admitted hit: reset is exactly W
    // whatever the current time is.
    let s = Server::start();
    let mut c = s.conn();
    for i in 0..5 {
        let key = format!("k{i}");
        assert_eq!(hit(&mut c, &key, "3/250ms", &[]), [1, 3, 2, 250, 0]);
        sleep_ms(37);
    }
}

#[test]
fn moving_window_entries_leave_one_by_one() {
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "moving"];
    assert_eq!(hit(&mut c, "k", "3/1000ms", &o), [1, 3, 2, 1000, 0]);
    sleep_ms(200);
    assert_eq!(hit(&mut c, "k", "3/1000ms", &o), [1, 3, 1, 1000, 0]);
    sleep_ms(200);
    assert_eq!(hit(&mut c, "k", "3/1000ms", &o), [1, 3, 0, 1000, 0]);
    // At one instant: cost 1 waits for the 1st entry, cost 2 for the 2nd,
    // cost 3 for the 3rd (== reset), cost 4 never.
    let mut p = redis::pipe();
    p.atomic();
    for cost in ["1", "2", "3", "4"] {
        p.cmd("RL.TEST")
            .arg("k")
            .arg("3/1000ms")
            .arg("STRATEGY")
            .arg("moving")
            .arg("COST")
            .arg(cost);
    }
    let replies: Vec<Value> = p.query(&mut c).unwrap();
    let r: Vec<[i64; 5]> = replies.into_iter().map(|v| five(v, "RL.TEST")).collect();
    for x in &r[..3] {
        assert_eq!(&x[..3], &[0, 3, 0], "{r:?}");
    }
    assert_eq!(r[3], [0, 3, 0, r[3][3], -1], "{r:?}");
    let (r1, r2, r3) = (r[0][4], r[1][4], r[2][4]);
    assert!(r1 > 0 && r1 <= 600, "{r:?}");
    assert!(r2 - r1 >= 190, "entries 1 and 2 are >= 200 ms apart: {r:?}");
    assert!(r3 - r2 >= 190, "entries 2 and 3 are >= 200 ms apart: {r:?}");
    assert!(r3 <= 1000, "{r:?}");
    assert_eq!(r3, r[2][3], "cost L waits for the window to empty: {r:?}");
    // After the first entry has left, one hit fits again.
    sleep_ms(r1 + 20);
    let x = hit(&mut c, "k", "3/1000ms", &o);
    assert_eq!(x[0], 1, "{x:?}");
    assert_eq!(x[3], 1000, "{x:?}");
    assert!(x[2] <= 1, "{x:?}");
}

#[test]
fn moving_window_key_expires_after_last_hit() {
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "moving"];
    hit(&mut c, "k", "10/300ms", &o);
    let e1 = pexpiretime(&mut c, "k");
    sleep_ms(100);
    let r = hit(&mut c, "k", "10/300ms", &o);
    assert_eq!(r, [1, 10, 8, 300, 0]);
    let e2 = pexpiretime(&mut c, "k");
    assert!(
        e2 - e1 >= 99,
        "the expiry must follow the latest hit: {e1} -> {e2}"
    );
    assert_between(pttl(&mut c, "k"), 1, 300, "PTTL");
    sleep_ms(330);
    assert!(!exists(&mut c, "k"));
}

/// The sliding-window-counter estimate, checked exactly against each reply.
///
/// L = 10, W = 1000 ms. 10 hits in the first window; then in the second
/// window (`e` ms into it, prev = 10) a hit is admitted iff
/// `10 * (W - e) / W + cur + 1 <= 10`, i.e. `10 * (W - e) + (cur + 1) * W <= 10 * W`.
#[test]
fn sliding_window_counter_exact_weighting() {
    const L: i64 = 10;
    const WW: i64 = 1000;
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "sliding-window-counter"];
    let lim = "10/1000ms";
    assert_eq!(hit(&mut c, "k", lim, &o), [1, L, 9, 2 * WW, 0]);
    let mut last = [0i64; 5];
    let mut at = Instant::now();
    for i in 2..=L {
        last = hit(&mut c, "k", lim, &o);
        at = Instant::now();
        assert_eq!(&last[..3], &[1, L, L - i]);
        assert!(
            last[3] > WW && last[3] <= 2 * WW,
            "still in the first window: {last:?}"
        );
    }
    // Full. Denied: next window, prev = 10: 10 * (W - e) <= 9 * W needs
    // e >= W / 10 = 100 ms into it.
    let r = test(&mut c, "k", lim, &o);
    assert_eq!(&r[..3], &[0, L, 0], "{r:?}");
    assert_eq!(r[4], r[3] - WW + 100, "{r:?}");

    // Sleep to about the middle of the second window.
    let target = last[3] - WW / 2; // ms after `at`
    let elapsed = at.elapsed().as_millis() as i64;
    sleep_ms(target - elapsed);

    // Probe with COST 0: cur = 0, prev = 10, reset = W - e.
    let p = test(&mut c, "k", lim, &["STRATEGY", "sliding", "COST", "0"]);
    assert!(
        p[3] > 0 && p[3] <= WW,
        "expected to be inside the second window (reset in (0, W]): {p:?}"
    );
    let e = WW - p[3];
    let used = ceil_div(L * (WW - e), WW);
    assert_eq!(p, [1, L, L - used, WW - e, 0], "COST 0 probe at e = {e}");

    let e0 = e;
    let mut e_prev = e0;
    let mut cur = 0;
    let mut denied = false;
    for _ in 0..=L {
        let r = hit(&mut c, "k", lim, &o);
        if r[0] == 1 {
            cur += 1;
            // cur > 0: usage stays until the end of the next window.
            let e = 2 * WW - r[3];
            assert!((0..WW).contains(&e), "{r:?}");
            assert!(
                e >= e_prev && e - e0 < 500,
                "same window as the probe (e0 = {e0}, previous {e_prev}): no new anchor: {r:?}"
            );
            e_prev = e;
            assert!(
                L * (WW - e) + cur * WW <= L * WW,
                "admitted although the estimate is full: e = {e}, cur = {cur}, {r:?}"
            );
            let rem = L - ceil_div(L * (WW - e), WW) - cur;
            assert_eq!(r, [1, L, rem, 2 * WW - e, 0], "e = {e}, cur = {cur}");
        } else {
            let e = if cur > 0 { 2 * WW - r[3] } else { WW - r[3] };
            assert!((0..WW).contains(&e), "{r:?}");
            assert!(
                L * (WW - e) + (cur + 1) * WW > L * WW,
                "denied although it fits: e = {e}, cur = {cur}, {r:?}"
            );
            // First e' >= e with 10 * (W - e') + (cur + 1) * W <= 10 * W.
            let retry = 100 * (cur + 1) - e;
            assert_eq!(r, [0, L, 0, r[3], retry], "e = {e}, cur = {cur}");
            denied = true;
            break;
        }
    }
    assert!(denied, "more than L hits admitted in the second window");
    assert!(
        cur >= 1,
        "no hit admitted in the middle of the second window"
    );
    // A cost that cannot fit before the third window: there prev = cur and
    // cur * (W - e'') / W + (L - cur + 1) <= L needs e'' >= W / cur.
    let cost = (L - cur + 1).to_string();
    let r = test(&mut c, "k", lim, &["STRATEGY", "sliding", "COST", &cost]);
    assert_eq!(&r[..2], &[0, L], "{r:?}");
    assert_eq!(r[4], r[3] - WW + ceil_div(WW, cur), "cur = {cur}: {r:?}");
}

#[test]
fn sliding_window_reanchors_when_usage_is_gone_but_the_key_lives() {
    // A long fixed limit keeps the key alive; the sliding state's usage is
    // gone after 2W, so the next hit takes a new anchor: reset is 2W
    // exactly, not 2W minus the offset in the old grid.
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "sliding"];
    hit(&mut c, "k", "10/h", &[]);
    assert_eq!(hit(&mut c, "k", "2/200ms", &o), [1, 2, 1, 400, 0]);
    sleep_ms(470);
    assert!(exists(&mut c, "k"));
    assert_eq!(
        stats(&mut c, "k", "2/200ms", &o)[0],
        Stat {
            limit: 2,
            window_ms: 200,
            strategy: "sliding-window-counter".into(),
            remaining: 2,
            reset_after_ms: 0,
            retry_after_ms: 0,
            penalty_ms: 0
        }
    );
    assert_eq!(hit(&mut c, "k", "2/200ms", &o), [1, 2, 1, 400, 0]);
    // Same for the fixed and moving windows.
    assert_eq!(hit(&mut c, "k", "2/200ms", &[]), [1, 2, 1, 200, 0]);
    assert_eq!(
        hit(&mut c, "k", "2/200ms", &["STRATEGY", "moving"]),
        [1, 2, 1, 200, 0]
    );
    sleep_ms(270);
    assert_eq!(hit(&mut c, "k", "2/200ms", &[]), [1, 2, 1, 200, 0]);
    assert_eq!(
        hit(&mut c, "k", "2/200ms", &["STRATEGY", "moving"]),
        [1, 2, 1, 200, 0]
    );
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

#[test]
fn sliding_window_retry_after_is_honest() {
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "sliding"];
    for _ in 0..4 {
        assert_eq!(hit(&mut c, "k", "4/400ms", &o)[0], 1);
    }
    let r = hit(&mut c, "k", "4/400ms", &o);
    assert_eq!(&r[..3], &[0, 4, 0]);
    // prev = 4 next window: 4 * (W - e) <= 3 * W  <=>  e >= W / 4 = 100.
    assert_eq!(r[4], r[3] - 400 + 100, "{r:?}");
    sleep_ms(r[4] + 20);
    let r = hit(&mut c, "k", "4/400ms", &o);
    assert_eq!(r[0], 1, "admitted once retry_after_ms has passed: {r:?}");
}

#[test]
fn sliding_window_takes_a_new_anchor_when_idle() {
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "sliding"];
    assert_eq!(hit(&mut c, "k", "2/300ms", &o), [1, 2, 1, 600, 0]);
    let t = pttl(&mut c, "k");
    assert_between(t, 301, 600, "sliding: the key lives up to 2W");
    sleep_ms(650);
    assert!(!exists(&mut c, "k"), "usage left two windows after the hit");
    assert_eq!(hit(&mut c, "k", "2/300ms", &o), [1, 2, 1, 600, 0]);
}

#[test]
fn sliding_window_with_limit_one_needs_two_windows() {
    let s = Server::start();
    let mut c = s.conn();
    let o = ["STRATEGY", "sliding"];
    assert_eq!(hit(&mut c, "k", "1/200ms", &o), [1, 1, 0, 400, 0]);
    let r = hit(&mut c, "k", "1/200ms", &o);
    assert_eq!(&r[..3], &[0, 1, 0]);
    // prev = 1: 1 * (W - e) + 1 * W <= W needs e = W: the end of the next window.
    assert_eq!(r[4], r[3], "{r:?}");
    sleep_ms(r[4] + 20);
    assert_eq!(hit(&mut c, "k", "1/200ms", &o), [1, 1, 0, 400, 0]);
}
