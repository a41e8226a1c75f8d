//! Black-box test harness: starts private `redis-server` processes with the
//! module loaded and talks to them over TCP only.
//!
//! Never `use redis_ratelimit` here: the crate's allocator aborts test
//! binaries. Every server used by a test is started (and killed) by that
//! test; before talking to a server we check that its `process_id` is the
//! pid of the child we spawned.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub use redis::{Connection, RedisError, RedisResult, Value};

/// How long to wait for a server to answer PING, a replica to sync, ...
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Generous slack (ms) for "time elapsed between two commands" in
/// assertions on long (minutes, hours) windows. Only ever used where a
/// larger slack cannot hide a bug.
pub const SLACK: i64 = 2000;

pub const HOUR: i64 = 3_600_000;
pub const MINUTE: i64 = 60_000;
pub const SECOND: i64 = 1_000;
pub const DAY: i64 = 86_400_000;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

mod bins;
pub mod checks;
pub use bins::module_path;
pub use bins::redis_server_bin;
mod server_kind;
pub use server_kind::ServerKind;

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

fn unique_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("rl-test-{}-{}-{}", std::process::id(), n, nanos));
    fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Options for starting a server.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Load the module (`--loadmodule`).
    pub module: bool,
    /// Reuse this directory (e.g. to restart from its AOF / RDB).
    pub dir: Option<PathBuf>,
    /// Extra arguments, appended after the defaults.
    pub args: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            module: true,
            dir: None,
            args: Vec::new(),
        }
    }
}

impl Opts {
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }
    pub fn no_module(mut self) -> Self {
        self.module = false;
        self
    }
    pub fn dir(mut self, dir: PathBuf) -> Self {
        self.dir = Some(dir);
        self
    }
}

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    keep_dir: bool,
    pub opts: Opts,
}

impl Server {
    pub fn start() -> Server {
        Server::start_opts(Opts::default())
    }

    pub fn start_with(args: &[&str]) -> Server {
        Server::start_opts(Opts::default().args(args))
    }

    pub fn start_opts(opts: Opts) -> Server {
        if opts.module {
            let m = module_path();
            assert!(
                m.exists(),
                "module not found at {} (build it with `cargo build --release` or set RL_MODULE)",
                m.display()
            );
        }
        let dir = match &opts.dir {
            Some(d) => {
                fs::create_dir_all(d).unwrap();
                d.clone()
            }
            None => unique_dir(),
        };
        let mut last_log = String::new();
        for _attempt in 0..8 {
            let port = free_port();
            let log_path = dir.join(format!("server-{port}.log"));
            let log = File::create(&log_path).expect("create log file");
            let log2 = log.try_clone().unwrap();
            let mut cmd = Command::new(redis_server_bin());
            cmd.arg("--port")
                .arg(port.to_string())
                .arg("--bind")
                .arg("127.0.0.1")
                .arg("--dir")
                .arg(&dir)
                .arg("--save")
                .arg("")
                .arg("--appendonly")
                .arg("no")
                .arg("--repl-diskless-sync-delay")
                .arg("0")
                .arg("--daemonize")
                .arg("no");
            if opts.module {
                cmd.arg("--loadmodule").arg(module_path());
            }
            for a in &opts.args {
                cmd.arg(a);
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log2));
            let child = cmd.spawn().expect("spawn redis-server");
            let mut server = Server {
                child: Some(child),
                port,
                dir: dir.clone(),
                keep_dir: true, // until started
                opts: opts.clone(),
            };
            match server.wait_ready() {
                Ok(()) => {
                    server.keep_dir = false;
                    return server;
                }
                Err(e) => {
                    // Kill this child (by its own handle) and maybe retry on another port.
                    server.kill_child();
                    last_log = fs::read_to_string(&log_path).unwrap_or_default();
                    let retry =
                        last_log.contains("Address already in use") || e.contains("not our server");
                    if !retry {
                        if opts.dir.is_none() {
                            let _ = fs::remove_dir_all(&dir);
                        }
                        panic!("redis-server failed to start: {e}\n--- log ---\n{last_log}");
                    }
                }
            }
        }
        if opts.dir.is_none() {
            let _ = fs::remove_dir_all(&dir);
        }
        panic!("redis-server failed to start after retries\n--- log ---\n{last_log}");
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("server stopped").id()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let url = format!("redis://127.0.0.1:{}/", self.port);
        let client = redis::Client::open(url.as_str()).unwrap();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!("redis-server exited early: {status}"));
            }
            if Instant::now() > deadline {
                return Err("timed out waiting for PING".to_string());
            }
            if let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) {
                let _ = con.set_read_timeout(Some(Duration::from_secs(2)));
                let pong: RedisResult<String> = redis::cmd("PING").query(&mut con);
                if let Ok(p) = pong
                    && p == "PONG"
                {
                    // Make sure it is the process we started.
                    let info: String = redis::cmd("INFO")
                        .arg("server")
                        .query(&mut con)
                        .map_err(|e| e.to_string())?;
                    let pid = parse_info(&info)
                        .get("process_id")
                        .cloned()
                        .unwrap_or_default();
                    if pid != self.pid().to_string() {
                        return Err(format!("not our server on port {} (pid {pid})", self.port));
                    }
                    return Ok(());
                }
            }
            sleep(Duration::from_millis(20));
        }
    }

    fn kill_child(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A RESP2 connection.
    pub fn conn(&self) -> Connection {
        self.conn_url(&self.url())
    }

    /// A RESP3 connection (HELLO 3 is sent by the client on connect).
    pub fn conn3(&self) -> Connection {
        self.conn_url(&format!("{}?protocol=resp3", self.url()))
    }

    fn conn_url(&self, url: &str) -> Connection {
        assert!(self.child.is_some(), "server was stopped");
        let client = redis::Client::open(url).unwrap();
        let con = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect to our redis-server");
        con.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        con.set_write_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        con
    }

    /// Kill the server (SIGKILL) and keep its directory; returns it.
    pub fn kill_keep_dir(mut self) -> PathBuf {
        self.kill_child();
        self.keep_dir = true;
        self.dir.clone()
    }

    /// `SHUTDOWN` (optionally with NOSAVE/SAVE), wait for the process to exit
    /// (bounded; killed after the timeout) and keep the directory.
    pub fn shutdown_keep_dir(mut self, extra: &[&str]) -> PathBuf {
        let mut con = self.conn();
        let mut c = redis::cmd("SHUTDOWN");
        for e in extra {
            c.arg(*e);
        }
        let _: RedisResult<Value> = c.query(&mut con);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        if let Some(child) = self.child.as_mut() {
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    break;
                }
                sleep(Duration::from_millis(20));
            }
        }
        self.kill_child();
        self.keep_dir = true;
        self.dir.clone()
    }

    /// Start a new server in `dir` (taking ownership of it: it is removed
    /// when the new server is dropped).
    pub fn restart_in(dir: PathBuf, opts: Opts) -> Server {
        Server::start_opts(opts.dir(dir))
    }

    pub fn info(&self, section: &str) -> HashMap<String, String> {
        let mut con = self.conn();
        info(&mut con, section)
    }

    /// Which server this is (family and release).
    pub fn kind(&self) -> ServerKind {
        ServerKind::from_info(&self.info("server"))
    }

    /// `master_repl_offset` from INFO replication.
    pub fn repl_offset(&self) -> i64 {
        self.info("replication")["master_repl_offset"]
            .parse()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_child();
        if !self.keep_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Start a replica of `primary` (with or without the module) and wait until
/// its link is up and it has caught up.
pub fn replica_of(primary: &Server, with_module: bool) -> Server {
    let port = primary.port.to_string();
    let mut opts = Opts::default().args(&["--replicaof", "127.0.0.1", &port]);
    if !with_module {
        opts = opts.no_module();
    }
    let replica = Server::start_opts(opts);
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let i = replica.info("replication");
        if i.get("master_link_status").map(|s| s.as_str()) == Some("up")
            && i.get("master_sync_in_progress").map(|s| s.as_str()) == Some("0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "replica did not connect: {i:?}");
        sleep(Duration::from_millis(20));
    }
    wait_synced(primary, &replica);
    replica
}

/// Wait (bounded) until the replica's offset equals the primary's
/// `master_repl_offset`.
pub fn wait_synced(primary: &Server, replica: &Server) {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let p = primary.repl_offset();
        let r: i64 = replica.info("replication")["slave_repl_offset"]
            .parse()
            .unwrap();
        if p == r {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica did not catch up: primary {p}, replica {r}"
        );
        sleep(Duration::from_millis(10));
    }
}

pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

pub fn info(con: &mut Connection, section: &str) -> HashMap<String, String> {
    let text: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    parse_info(&text)
}

// ---------------------------------------------------------------------------
// Commands and replies
// ---------------------------------------------------------------------------

/// Run an arbitrary command given as a list of words.
pub fn raw(con: &mut Connection, args: &[&str]) -> RedisResult<Value> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
}

/// Full text of a server error: "CODE detail".
pub fn err_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(c), Some(d)) => format!("{c} {d}"),
        (Some(c), None) => c.to_string(),
        _ => e.to_string(),
    }
}

/// Run a command that must fail; returns its error text.
pub fn err(con: &mut Connection, args: &[&str]) -> String {
    match raw(con, args) {
        Ok(v) => panic!("expected an error from {args:?}, got {v:?}"),
        Err(e) => err_text(&e),
    }
}

pub fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

pub fn to_string(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Okay => "OK".to_string(),
        other => panic!("expected a string, got {other:?}"),
    }
}

/// The five integers of an RL.HIT / RL.TEST reply, or what is wrong with it
/// (for threads that count bad replies instead of panicking).
pub fn try_five(v: Value) -> Result<[i64; 5], String> {
    match v {
        Value::Array(items) if items.len() == 5 => {
            let mut out = [0i64; 5];
            for (i, it) in items.iter().enumerate() {
                match it {
                    Value::Int(n) => out[i] = *n,
                    other => return Err(format!("element {i} is not an integer: {other:?}")),
                }
            }
            Ok(out)
        }
        other => Err(format!("expected an array of 5 integers, got {other:?}")),
    }
}

pub fn five(v: Value, what: &str) -> [i64; 5] {
    try_five(v).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn rl_cmd(name: &str, key: &str, limits: &str, opts: &[&str]) -> Vec<String> {
    let mut v = vec![name.to_string(), key.to_string(), limits.to_string()];
    v.extend(opts.iter().map(|s| s.to_string()));
    v
}

fn run_five(con: &mut Connection, words: Vec<String>) -> [i64; 5] {
    let refs: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
    match raw(con, &refs) {
        Ok(v) => five(v, &format!("{refs:?}")),
        Err(e) => panic!("{refs:?} failed: {}", err_text(&e)),
    }
}

/// `RL.HIT key limits opts...` → the five integers.
pub fn hit(con: &mut Connection, key: &str, limits: &str, opts: &[&str]) -> [i64; 5] {
    run_five(con, rl_cmd("RL.HIT", key, limits, opts))
}

/// `RL.TEST key limits opts...` → the five integers.
pub fn test(con: &mut Connection, key: &str, limits: &str, opts: &[&str]) -> [i64; 5] {
    run_five(con, rl_cmd("RL.TEST", key, limits, opts))
}

/// One limit's entry of an RL.STATS reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub limit: i64,
    pub window_ms: i64,
    pub strategy: String,
    pub remaining: i64,
    pub reset_after_ms: i64,
    pub retry_after_ms: i64,
    pub penalty_ms: i64,
}

/// Parse one entry (RESP3 map or RESP2 flat array) into name → value.
pub fn stat_fields(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| (to_string(k), v.clone()))
            .collect(),
        Value::Array(items) => {
            assert!(items.len() % 2 == 0, "flat map with odd length: {items:?}");
            items
                .chunks(2)
                .map(|c| (to_string(&c[0]), c[1].clone()))
                .collect()
        }
        other => panic!("expected a map or a flat array, got {other:?}"),
    }
}

/// The field names of one RL.STATS entry, sorted.
pub const STAT_NAMES: [&str; 7] = [
    "limit",
    "penalty_ms",
    "remaining",
    "reset_after_ms",
    "retry_after_ms",
    "strategy",
    "window_ms",
];

pub fn stat_from(v: &Value) -> Stat {
    let fields = stat_fields(v);
    let mut names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    names.sort();
    assert_eq!(
        names, STAT_NAMES,
        "RL.STATS entry has the wrong set of names: {v:?}"
    );
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).unwrap().1.clone();
    Stat {
        limit: to_i64(&get("limit")),
        window_ms: to_i64(&get("window_ms")),
        strategy: to_string(&get("strategy")),
        remaining: to_i64(&get("remaining")),
        reset_after_ms: to_i64(&get("reset_after_ms")),
        retry_after_ms: to_i64(&get("retry_after_ms")),
        penalty_ms: to_i64(&get("penalty_ms")),
    }
}

pub fn try_stats(
    con: &mut Connection,
    key: &str,
    limits: &str,
    opts: &[&str],
) -> Result<Vec<Stat>, String> {
    let words = rl_cmd("RL.STATS", key, limits, opts);
    let refs: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
    match raw(con, &refs) {
        Ok(Value::Array(items)) => Ok(items.iter().map(stat_from).collect()),
        Ok(other) => panic!("RL.STATS: expected an array, got {other:?}"),
        Err(e) => Err(err_text(&e)),
    }
}

/// `RL.STATS key limits opts...`, parsed.
pub fn stats(con: &mut Connection, key: &str, limits: &str, opts: &[&str]) -> Vec<Stat> {
    try_stats(con, key, limits, opts)
        .unwrap_or_else(|e| panic!("RL.STATS {key} {limits} {opts:?} failed: {e}"))
}

/// `RL.CLEAR args...` → integer.
pub fn clear(con: &mut Connection, args: &[&str]) -> i64 {
    let mut words = vec!["RL.CLEAR"];
    words.extend_from_slice(args);
    match raw(con, &words) {
        Ok(v) => to_i64(&v),
        Err(e) => panic!("{words:?} failed: {}", err_text(&e)),
    }
}

pub fn dump(con: &mut Connection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("DUMP").arg(key).query(con).unwrap()
}

pub fn pttl(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(con).unwrap()
}

/// Absolute expiry (Unix ms) of a key: -1 without TTL, -2 missing.
pub fn pexpiretime(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

pub fn exists(con: &mut Connection, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS").arg(key).query(con).unwrap();
    n == 1
}

pub fn keys(con: &mut Connection) -> Vec<String> {
    let mut k: Vec<String> = redis::cmd("KEYS").arg("*").query(con).unwrap();
    k.sort();
    k
}

/// Assert `lo <= x <= hi` with a readable message.
#[track_caller]
pub fn assert_between(x: i64, lo: i64, hi: i64, what: &str) {
    assert!(lo <= x && x <= hi, "{what}: {x} not within [{lo}, {hi}]");
}

/// Assert a time value is close below `w`: within [w - SLACK, w].
#[track_caller]
pub fn assert_near(x: i64, w: i64, what: &str) {
    assert_between(x, w - SLACK, w, what);
}

pub fn sleep_ms(ms: i64) {
    if ms > 0 {
        sleep(Duration::from_millis(ms as u64));
    }
}
