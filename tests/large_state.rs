//! Large moving-window logs: the in-place (DMA) write path, its SETRANGE
//! replication, spare room for logs followed by other records, and
//! compaction of expired entries. A replica without the module and an AOF
//! restart must end with byte-identical keys.

mod common;

use common::*;
use std::thread::sleep;
use std::time::Duration;

/// Drives several keys whose state passes the whole-value replication size:
/// one long-window log (grows only), one short-window log (entries expire
/// and are compacted), and a key holding two logs plus a fixed window.
fn drive(c: &mut redis::Connection) {
    for round in 0..8 {
        let mut p = redis::pipe();
        for i in 0..150 {
            p.cmd("RL.HIT")
                .arg("big")
                .arg("100000/h")
                .arg("STRATEGY")
                .arg("moving");
            for j in 0..3 {
                p.cmd("RL.HIT")
                    .arg("churn")
                    .arg("3000/400ms")
                    .arg("STRATEGY")
                    .arg("moving")
                    .arg("COST")
                    .arg(1 + (i + j) % 3);
            }
            p.cmd("RL.HIT")
                .arg("multi")
                .arg("5000/h;3000/10m")
                .arg("STRATEGY")
                .arg("moving");
            p.cmd("RL.HIT")
                .arg("multi")
                .arg("5000/h")
                .arg("STRATEGY")
                .arg("fixed");
        }
        let replies: Vec<redis::Value> = p.query(c).unwrap();
        assert_eq!(replies.len(), 900, "round {round}");
        if round < 7 {
            sleep(Duration::from_millis(100));
        }
    }
}

fn keys() -> [&'static str; 3] {
    ["big", "churn", "multi"]
}

#[test]
fn large_logs_replicate_byte_identical_to_a_replica_without_the_module() {
    let primary = Server::start();
    let replica = replica_of(&primary, false);
    let mut c = primary.conn();
    drive(&mut c);
    wait_synced(&primary, &replica);
    let mut rc = replica.conn();
    for k in keys() {
        let d = dump(&mut c, k).expect(k);
        // Logs this large are rings of blocks (tag 0xFD).
        let tag: Vec<u8> = redis::cmd("GETRANGE")
            .arg(k)
            .arg(0)
            .arg(0)
            .query(&mut c)
            .unwrap();
        assert_eq!(tag, [0xFD], "{k}: not a ring");
        let len: usize = redis::cmd("STRLEN").arg(k).query(&mut c).unwrap();
        assert!(
            len > 600,
            "{k}: state should be past the whole-value size, got {len}"
        );
        assert_eq!(
            Some(d),
            dump(&mut rc, k),
            "{k}: DUMP differs on the replica"
        );
        let p1: i64 = redis::cmd("PEXPIRETIME").arg(k).query(&mut c).unwrap();
        let p2: i64 = redis::cmd("PEXPIRETIME").arg(k).query(&mut rc).unwrap();
        assert_eq!(p1, p2, "{k}: absolute expiry differs");
    }
    // The counts are what was admitted: 1200 hits on `big` (8 rounds x 150).
    let r = test(&mut c, "big", "100000/h", &["STRATEGY", "moving"]);
    assert_eq!(r[2], 100000 - 1200 - 1);
    let r = test(&mut c, "multi", "5000/h;3000/10m", &["STRATEGY", "moving"]);
    assert_eq!(r[2], 3000 - 1200 - 1);
}

#[test]
fn large_logs_survive_an_aof_restart() {
    let s = Server::start_opts(Opts::default().args(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]));
    let mut c = s.conn();
    drive(&mut c);
    let before: Vec<_> = keys().iter().map(|k| dump(&mut c, k)).collect();
    let expiries: Vec<i64> = keys()
        .iter()
        .map(|k| redis::cmd("PEXPIRETIME").arg(*k).query(&mut c).unwrap())
        .collect();
    drop(c);
    let dir = s.kill_keep_dir();
    let s2 = Server::restart_in(dir, Opts::default().args(&["--appendonly", "yes"]));
    let mut c2 = s2.conn();
    for (i, k) in keys().iter().enumerate() {
        // `churn` may have expired in the meantime; the others must be whole.
        if *k == "churn" {
            continue;
        }
        assert_eq!(
            dump(&mut c2, k),
            before[i],
            "{k}: state changed across the restart"
        );
        let e: i64 = redis::cmd("PEXPIRETIME").arg(*k).query(&mut c2).unwrap();
        assert_eq!(e, expiries[i], "{k}: expiry changed across the restart");
    }
    let r = hit(&mut c2, "big", "100000/h", &["STRATEGY", "moving"]);
    assert_eq!(&r[..3], &[1, 100000, 100000 - 1201]);
}

#[test]
fn a_filled_short_window_log_admits_again_after_expiry() {
    let s = Server::start();
    let mut c = s.conn();
    let mut p = redis::pipe();
    for _ in 0..2000 {
        p.cmd("RL.HIT")
            .arg("k")
            .arg("2000/200ms")
            .arg("STRATEGY")
            .arg("moving");
    }
    let _: Vec<redis::Value> = p.query(&mut c).unwrap();
    let r = hit(&mut c, "k", "2000/200ms", &["STRATEGY", "moving"]);
    assert_eq!(r[0], 0, "the log is full: {r:?}");
    let strlen =
        |c: &mut redis::Connection| -> usize { redis::cmd("STRLEN").arg("k").query(c).unwrap() };
    let size_full = strlen(&mut c);
    sleep(Duration::from_millis(260));
    // Everything expired (the key itself is gone or holds no usage).
    let r = hit(&mut c, "k", "2000/200ms", &["STRATEGY", "moving"]);
    assert_eq!(&r[..3], &[1, 2000, 1999]);
    let size_after = strlen(&mut c);
    assert!(
        size_after < size_full / 10,
        "expired entries were not reclaimed: {size_full} -> {size_after}"
    );
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn fixed(v: &mut Vec<u8>, x: u64, width: usize) {
    v.extend_from_slice(&x.to_le_bytes()[..width]);
}

/// A value whose moving-window log is valid but holds `dead` bytes of
/// entries that stopped counting (at `long_ago`) before `live` entries of
/// cost 1 at `recent`, in a window of `window_ms`, laid out flat as earlier
/// builds wrote large logs (src/strategy/moving/flat.rs: tag 0xFA, window varint, a
/// header of used, last, first, head, len, cap, then delta-coded one-byte
/// entries).
fn crafted_log(window_ms: u64, long_ago: u64, recent: u64, dead: usize, live: usize) -> Vec<u8> {
    let mut log = Vec::with_capacity(dead + live + 10);
    log.resize(dead, 0); // entries with delta 0 at `long_ago`
    varint(&mut log, (recent - long_ago) << 1); // the jump to `recent`
    log.resize(log.len() + live - 1, 0); // the rest at `recent`
    let mut v = vec![0xFA];
    varint(&mut v, window_ms);
    fixed(&mut v, (dead + live) as u64, 4); // used: every entry counted when written
    fixed(&mut v, recent, 6); // last
    fixed(&mut v, long_ago, 6); // first
    fixed(&mut v, 0, 4); // head
    fixed(&mut v, log.len() as u64, 4); // len
    fixed(&mut v, log.len() as u64, 4); // cap
    v.extend_from_slice(&log);
    v
}

/// The same hits laid out as this build keeps a large log: a ring of
/// 512-byte blocks (src/strategy/moving/ring.rs), every slot in use, head at slot 0.
fn crafted_ring(window_ms: u64, long_ago: u64, recent: u64, dead: usize, live: usize) -> Vec<u8> {
    const BLOCK: usize = 512;
    const AREA: usize = BLOCK - 16;
    let mut blocks: Vec<u8> = Vec::with_capacity((dead + live) / AREA * BLOCK + 2 * BLOCK);
    let (mut fill, mut cum, mut count) = (AREA, 0u64, 0usize);
    let mut push = |raw: &[u8], time: u64| {
        if fill + raw.len() > AREA {
            fixed(&mut blocks, time, 6);
            fixed(&mut blocks, cum, 8);
            fixed(&mut blocks, 0, 2);
            blocks.resize(blocks.len() + AREA, 0);
            fill = 0;
            count += 1;
        }
        let at = (count - 1) * BLOCK;
        blocks[at + 16 + fill..at + 16 + fill + raw.len()].copy_from_slice(raw);
        fill += raw.len();
        blocks[at + 14..at + 16].copy_from_slice(&(fill as u16).to_le_bytes());
        cum += 1;
    };
    for _ in 0..dead {
        push(&[0], long_ago);
    }
    let mut jump = Vec::new();
    varint(&mut jump, (recent - long_ago) << 1);
    push(&jump, recent);
    for _ in 1..live {
        push(&[0], recent);
    }
    let mut v = vec![0xFD];
    varint(&mut v, window_ms);
    fixed(&mut v, (dead + live) as u64, 8); // cum_end
    fixed(&mut v, recent, 6); // last
    fixed(&mut v, 0, 8); // head_cum
    fixed(&mut v, if dead > 0 { long_ago } else { recent }, 6); // head_time
    fixed(&mut v, 0, 2); // head_off
    fixed(&mut v, fill as u64, 2); // tail_fill
    fixed(&mut v, BLOCK as u64, 2);
    fixed(&mut v, count as u64, 4); // slots
    fixed(&mut v, 0, 4); // head
    fixed(&mut v, count as u64, 4); // count
    v.extend_from_slice(&blocks);
    v
}

fn server_ms(c: &mut redis::Connection) -> u64 {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    secs * 1000 + micros / 1000
}

fn set_px(c: &mut redis::Connection, key: &str, value: &[u8], px: u64) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("PX")
        .arg(px)
        .query(c)
        .unwrap();
}

/// Reads and hits on a large ring whose entries mostly stopped counting
/// answer exactly (found by search, not by walking the dead entries), a
/// denied hit names when the first live entry frees room, and a replica
/// without the module ends byte-identical after the in-place writes.
#[test]
fn a_mostly_expired_ring_answers_exactly_and_replicates() {
    let primary = Server::start();
    let replica = replica_of(&primary, false);
    let mut c = primary.conn();
    let now = server_ms(&mut c);
    let (w, recent) = (3_600_000, now - 60_000);
    for (dead, live) in [(0, 300_000), (150_000, 150_000), (297_000, 3_000)] {
        let value = crafted_ring(w, now - 86_400_000, recent, dead, live);
        set_px(&mut c, "ring", &value, w);
        let limit = format!("{}/h", live + 10);
        let opts = ["STRATEGY", "moving"];
        let r = test(&mut c, "ring", &limit, &opts);
        assert_eq!(r[..3], [1, live as i64 + 10, 9], "{dead} dead: {r:?}");
        let st = stats(&mut c, "ring", &limit, &opts);
        assert_eq!(st[0].remaining, 10, "{dead} dead");
        for i in 0..10 {
            let r = hit(&mut c, "ring", &limit, &opts);
            assert_eq!(r[..3], [1, live as i64 + 10, 9 - i], "{dead} dead, hit {i}");
        }
        let r = hit(&mut c, "ring", &limit, &opts);
        assert_eq!(r[0], 0, "{dead} dead: {r:?}");
        // Room frees when the entries at `recent` stop counting.
        let at = server_ms(&mut c);
        let expect = (recent + w - at) as i64;
        assert!(
            (expect - 2..=expect + 2).contains(&r[4]),
            "retry {} vs {expect}",
            r[4]
        );
        wait_synced(&primary, &replica);
        let mut rc = replica.conn();
        assert_eq!(dump(&mut c, "ring"), dump(&mut rc, "ring"), "{dead} dead");
    }
}

#[test]
fn a_value_past_128_mib_of_mostly_expired_log_is_compacted_not_stuck() {
    stuck_case(false);
}

#[test]
fn a_ring_past_128_mib_mostly_expired_is_compacted_not_stuck() {
    stuck_case(true);
}

/// `ring`: the log is a ring as this build writes it, else flat as earlier
/// builds did (the hit turns it into a ring).
fn stuck_case(ring: bool) {
    // The red team's case: one log at moving-window-max-bytes 134217728
    // with 70 MB live and 64 MiB expired. The value passes the 128 MiB guard;
    // a hit must reclaim the expired part instead of failing until the TTL.
    let s = Server::start();
    let mut c = s.conn();
    raw(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "ratelimit.moving-window-max-bytes",
            "134217728",
        ],
    )
    .unwrap();
    let now = server_ms(&mut c);
    let (dead, live) = (64 << 20, 70_000_000);
    let value = if ring {
        crafted_ring(3_600_000, now - 86_400_000, now - 60_000, dead, live)
    } else {
        crafted_log(3_600_000, now - 86_400_000, now - 60_000, dead, live)
    };
    assert!(value.len() > 128 << 20, "{} bytes", value.len());
    set_px(&mut c, "stuck", &value, 3_600_000);
    drop(value);
    let before = stats(&mut c, "stuck", "100000000/h", &["STRATEGY", "moving"]);
    assert_eq!(before[0].remaining, 100_000_000 - live as i64);
    let r = hit(&mut c, "stuck", "100000000/h", &["STRATEGY", "moving"]);
    assert_eq!(r[0], 1, "the hit was not admitted: {r:?}");
    assert_eq!(r[2], 100_000_000 - live as i64 - 1);
    // What is left is a ring of the live entries (block headers: 16 of
    // every 512 bytes).
    let len: usize = redis::cmd("STRLEN").arg("stuck").query(&mut c).unwrap();
    assert!(
        len < live / 496 * 512 + 2000,
        "the expired part was not reclaimed: {len} bytes"
    );
    let tag: Vec<u8> = redis::cmd("GETRANGE")
        .arg("stuck")
        .arg(0)
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(tag, [0xFD]);
    // And it keeps working.
    let r = hit(&mut c, "stuck", "100000000/h", &["STRATEGY", "moving"]);
    assert_eq!(r[..3], [1, 100_000_000, 100_000_000 - live as i64 - 2]);
}

/// Hits on a key holding two large logs whose tail blocks fill up in step
/// (every 496 hits both start a block, writing about ten ranges far apart)
/// replicate about the bytes they change, not the stretch between the logs
/// (a write that remembered 8 ranges merged them into one SETRANGE of ~1 MB
/// each time), and the replica without the module stays byte-identical.
#[test]
fn two_large_logs_replicate_the_bytes_they_change() {
    let primary = Server::start();
    let replica = replica_of(&primary, false);
    let mut c = primary.conn();
    let now = server_ms(&mut c);
    // Two rings with full tail blocks (496 entries of one byte per block).
    let mut value = crafted_ring(60_000, now - 1_000, now - 1_000, 0, 496 * 4);
    value.extend(crafted_ring(
        3_600_000,
        now - 1_000,
        now - 1_000,
        0,
        496 * 2_000,
    ));
    set_px(&mut c, "two", &value, 3_600_000);
    wait_synced(&primary, &replica);
    let offset = |c: &mut redis::Connection| -> i64 {
        info(c, "replication")["master_repl_offset"]
            .parse()
            .unwrap()
    };
    let before = offset(&mut c);
    let hits = 5_000;
    let mut p = redis::pipe();
    for _ in 0..hits {
        p.cmd("RL.HIT")
            .arg("two")
            .arg("100000000/m;4000000000/h")
            .arg("STRATEGY")
            .arg("moving");
    }
    let replies: Vec<Vec<i64>> = p.query(&mut c).unwrap();
    assert!(replies.iter().all(|r| r[0] == 1), "every hit admitted");
    let per_hit = (offset(&mut c) - before) / hits;
    assert!(per_hit < 1_000, "{per_hit} replicated bytes per hit");
    wait_synced(&primary, &replica);
    let mut rc = replica.conn();
    assert_eq!(dump(&mut c, "two"), dump(&mut rc, "two"));
}

/// The same with the most limits a call may name: 16 logs at one key, each
/// a ring, written by every hit. Before a write kept more than 16 changed
/// ranges, a hit replicated about a quarter of the value (117 KB and more).
#[test]
fn sixteen_logs_replicate_the_bytes_they_change() {
    let primary = Server::start();
    let replica = replica_of(&primary, false);
    let mut c = primary.conn();
    let limits: Vec<String> = (0..16)
        .map(|i| format!("4000000000/{}ms", 3_600_000 + i))
        .collect();
    let limits = limits.join(";");
    let offset = |c: &mut redis::Connection| -> i64 {
        info(c, "replication")["master_repl_offset"]
            .parse()
            .unwrap()
    };
    let hits = 12_000;
    let mut before = 0;
    for round in 0..2 {
        if round == 1 {
            before = offset(&mut c);
        }
        let mut p = redis::pipe();
        for _ in 0..hits / 2 {
            p.cmd("RL.HIT")
                .arg("many")
                .arg(&limits)
                .arg("STRATEGY")
                .arg("moving");
        }
        let _: Vec<redis::Value> = p.query(&mut c).unwrap();
    }
    // The second half of the hits, on 16 rings of about 6 KB each.
    let per_hit = (offset(&mut c) - before) / (hits / 2);
    assert!(per_hit < 16 * 400, "{per_hit} replicated bytes per hit");
    wait_synced(&primary, &replica);
    let mut rc = replica.conn();
    assert_eq!(dump(&mut c, "many"), dump(&mut rc, "many"));
}
