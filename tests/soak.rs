//! Soak: many clients, a million keys, every command and strategy mixed,
//! for a configurable time; then every window expires and the server's
//! memory must return to where it started. Not part of `make test`
//! (ignored); run it with `tools/soak.sh [SECONDS]` (`make soak`).
//!
//! Environment: SOAK_SECS (default 600), SOAK_CLIENTS (50), SOAK_KEYS
//! (1000000). Bounded: the load phase lasts SOAK_SECS, the drain phase at
//! most DRAIN_MAX.
//!
//! Fails on any error reply or malformed reply, on a server that stops
//! answering, or when used_memory does not come back to the empty baseline
//! (within TOLERANCE bytes) once all keys expired. Prints the figures:
//! operations, errors, used_memory baseline / peak / after, latency
//! percentiles.

mod common;

use common::{Server, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Longest wait for all keys to expire after the load stops.
const DRAIN_MAX: Duration = Duration::from_secs(180);
/// used_memory may end this far above the baseline: the keyspace's hash
/// tables shrink back only to a power of two above the minimum.
const TOLERANCE: i64 = 256 * 1024;
/// Latency histogram: 1 us buckets up to this many us (the rest in the last).
const BUCKETS: usize = 50_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// Windows are at most 10 s (20 s of usage for sliding windows), so that
// the whole keyspace expires soon after the load stops.
const LIMITS: &[&str] = &[
    "10/s",
    "100/10s",
    "5/100ms",
    "3/s;20/10s",
    "50/2s",
    "1000/5s|10/s",
    "2/500ms;7/3s;40/10s",
    "20 per 10 seconds",
];
const STRATEGIES: &[&str] = &[
    "fixed-window",
    "moving-window",
    "sliding-window-counter",
    "gcra",
];

/// Why a reply is wrong, if it is.
fn bad_reply(cmd: &str, v: &Value) -> Option<String> {
    match (cmd, v) {
        ("RL.HIT" | "RL.TEST", Value::Array(items)) => {
            if items.len() == 5 && items.iter().all(|i| matches!(i, Value::Int(_))) {
                None
            } else {
                Some(format!("{cmd}: {v:?}"))
            }
        }
        ("RL.STATS", Value::Array(items)) if !items.is_empty() => None,
        ("RL.CLEAR", Value::Int(n)) if *n >= 0 => None,
        _ => Some(format!("{cmd}: {v:?}")),
    }
}

struct ClientResult {
    ops: u64,
    errors: Vec<String>,
    hist: Vec<u32>,
    max_us: u64,
}

fn client(
    server_url: String,
    seed: u64,
    keys: u64,
    stop: Arc<AtomicBool>,
    ops_counter: Arc<AtomicU64>,
) -> ClientResult {
    let c = redis::Client::open(server_url).unwrap();
    let mut con = c.get_connection().expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rng = Rng(seed | 1);
    let mut res = ClientResult {
        ops: 0,
        errors: Vec::new(),
        hist: vec![0; BUCKETS],
        max_us: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        let key = format!("soak:{}", rng.below(keys));
        let limits = LIMITS[rng.below(LIMITS.len() as u64) as usize];
        let strategy = STRATEGIES[rng.below(STRATEGIES.len() as u64) as usize];
        let pick = rng.below(100);
        let cmd_name = match pick {
            0..=54 => "RL.HIT",
            55..=74 => "RL.TEST",
            75..=91 => "RL.STATS",
            _ => "RL.CLEAR",
        };
        let mut cmd = redis::cmd(cmd_name);
        cmd.arg(&key);
        if cmd_name != "RL.CLEAR" || pick < 96 {
            cmd.arg(limits).arg("STRATEGY").arg(strategy);
            if matches!(cmd_name, "RL.HIT" | "RL.TEST") && rng.below(4) == 0 {
                cmd.arg("COST").arg(rng.below(4));
            }
            if strategy == "gcra" && cmd_name != "RL.CLEAR" && rng.below(4) == 0 {
                cmd.arg("BURST").arg(1 + rng.below(5));
            }
        }
        let t = Instant::now();
        let r: redis::RedisResult<Value> = cmd.query(&mut con);
        let us = t.elapsed().as_micros() as u64;
        res.hist[(us as usize).min(BUCKETS - 1)] += 1;
        res.max_us = res.max_us.max(us);
        res.ops += 1;
        if res.ops.is_multiple_of(256) {
            ops_counter.fetch_add(256, Ordering::Relaxed);
        }
        let problem = match &r {
            Ok(v) => bad_reply(cmd_name, v),
            Err(e) => Some(format!("{cmd_name} {key} {limits} {strategy}: {e}")),
        };
        if let Some(p) = problem {
            if res.errors.len() < 20 {
                res.errors.push(p);
            } else {
                res.errors.push(String::new());
            }
        }
    }
    res
}

fn used_memory(con: &mut redis::Connection) -> i64 {
    common::info(con, "memory")["used_memory"].parse().unwrap()
}

/// The parts of `MEMORY STATS` that explain a difference from the baseline.
fn memory_parts(con: &mut redis::Connection) -> String {
    let v: Value = redis::cmd("MEMORY").arg("STATS").query(con).unwrap();
    let mut out = Vec::new();
    let mut walk = |k: &str, v: &Value| {
        if let Value::Int(n) = v
            && (k.starts_with("overhead") || k.starts_with("clients") || k == "dataset.bytes")
        {
            out.push(format!("{k}={n}"));
        }
    };
    let pairs: Vec<(Value, Value)> = match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect(),
        Value::Map(m) => m,
        _ => Vec::new(),
    };
    for (k, v) in pairs {
        let k = common::to_string(&k);
        match &v {
            Value::Array(inner) => {
                for c in inner.chunks(2) {
                    walk(&format!("{k}.{}", common::to_string(&c[0])), &c[1]);
                }
            }
            _ => walk(&k, &v),
        }
    }
    out.join(" ")
}

fn dbsize(con: &mut redis::Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).unwrap()
}

fn percentile(hist: &[u64], total: u64, p: f64) -> usize {
    let want = ((total as f64) * p).ceil() as u64;
    let mut seen = 0;
    for (us, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= want.max(1) {
            return us;
        }
    }
    hist.len() - 1
}

#[test]
#[ignore = "long: run with tools/soak.sh (make soak)"]
fn soak() {
    let secs = env_or("SOAK_SECS", 600);
    let clients = env_or("SOAK_CLIENTS", 50);
    let keys = env_or("SOAK_KEYS", 1_000_000);
    let server = Server::start();
    let mut mon = server.conn();
    let pid = common::info(&mut mon, "server")["process_id"].clone();
    // Let the server settle, then take the empty baseline.
    thread::sleep(Duration::from_millis(500));
    let baseline = used_memory(&mut mon);
    let baseline_parts = memory_parts(&mut mon);
    eprintln!("soak: {clients} clients, {keys} keys, {secs} s; used_memory baseline {baseline} B");

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (url, stop, ops) = (server.url(), stop.clone(), ops.clone());
            thread::spawn(move || {
                client(url, 0x9E37_79B9 ^ ((i + 1) * 0x1000_0001), keys, stop, ops)
            })
        })
        .collect();

    let mut peak_mem = baseline;
    let mut peak_keys = 0;
    let mut last_report = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        thread::sleep(Duration::from_millis(500));
        let m = used_memory(&mut mon);
        let k = dbsize(&mut mon);
        peak_mem = peak_mem.max(m);
        peak_keys = peak_keys.max(k);
        if last_report.elapsed() >= Duration::from_secs(60) {
            last_report = Instant::now();
            eprintln!(
                "soak: {:>4} s, ~{} ops, {k} keys, used_memory {m} B",
                started.elapsed().as_secs(),
                ops.load(Ordering::Relaxed)
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let results: Vec<ClientResult> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let load_secs = started.elapsed().as_secs_f64();

    let total: u64 = results.iter().map(|r| r.ops).sum();
    let errors: Vec<&String> = results.iter().flat_map(|r| &r.errors).collect();
    let mut hist = vec![0u64; BUCKETS];
    for r in &results {
        for (i, n) in r.hist.iter().enumerate() {
            hist[i] += u64::from(*n);
        }
    }
    let max_us = results.iter().map(|r| r.max_us).max().unwrap_or(0);
    let (p50, p99, p999) = (
        percentile(&hist, total, 0.50),
        percentile(&hist, total, 0.99),
        percentile(&hist, total, 0.999),
    );
    let at_stop = used_memory(&mut mon);
    let keys_at_stop = dbsize(&mut mon);

    // Drain: every window expires; Redis' active expiry removes the keys.
    let drain = Instant::now();
    let mut after;
    loop {
        after = used_memory(&mut mon);
        let k = dbsize(&mut mon);
        if k == 0 && after <= baseline + TOLERANCE {
            break;
        }
        if drain.elapsed() > DRAIN_MAX {
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    let drained_in = drain.elapsed().as_secs_f64();
    // Give the keyspace's hash tables a few server cron runs to shrink.
    for _ in 0..10 {
        thread::sleep(Duration::from_millis(500));
        after = after.min(used_memory(&mut mon));
    }
    let keys_after = dbsize(&mut mon);
    let pong: String = redis::cmd("PING").query(&mut mon).unwrap();
    let pid_after = common::info(&mut mon, "server")["process_id"].clone();
    let info_peak = common::info(&mut mon, "memory")["used_memory_peak"].clone();

    eprintln!("soak results:");
    eprintln!("  load: {load_secs:.0} s, {clients} clients, {keys} keys");
    eprintln!(
        "  operations: {total} ({:.0}/s), errors: {}",
        total as f64 / load_secs,
        errors.len()
    );
    eprintln!(
        "  latency (client round trip): p50 {p50} us, p99 {p99} us, p99.9 {p999} us, max {max_us} us"
    );
    eprintln!("  keys: peak {peak_keys}, at stop {keys_at_stop}, after drain {keys_after}");
    eprintln!(
        "  used_memory: baseline {baseline} B, peak {peak_mem} B (INFO used_memory_peak {info_peak}), at stop {at_stop} B, after drain {after} B ({:+} B vs baseline) after {drained_in:.0} s",
        after - baseline
    );
    eprintln!("  MEMORY STATS at baseline: {baseline_parts}");
    eprintln!("  MEMORY STATS after drain: {}", memory_parts(&mut mon));
    for e in errors.iter().filter(|e| !e.is_empty()).take(10) {
        eprintln!("  error: {e}");
    }

    assert_eq!(pong, "PONG");
    assert_eq!(pid, pid_after, "server restarted");
    assert!(errors.is_empty(), "{} errors", errors.len());
    assert_eq!(keys_after, 0, "keys left after every window expired");
    assert!(
        after <= baseline + TOLERANCE,
        "used_memory {after} did not return to the baseline {baseline} (+{TOLERANCE})"
    );
    assert!(total > 0);
}
