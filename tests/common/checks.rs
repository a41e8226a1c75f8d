//! Checks shared by the integration tests of the newer commands: server
//! clock, INFO counters, every key's DUMP and expiry, WATCH, keyspace
//! notifications, AOF contents and COMMAND INFO.

use super::*;
use std::time::{Duration, Instant};

/// Lower-cased command names in the incremental AOF files.
pub fn aof_command_names(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir.join("appendonlydir"))
        .expect("appendonlydir")
        .flatten()
    {
        if !e.file_name().to_string_lossy().contains(".incr.aof") {
            continue;
        }
        let data = std::fs::read(e.path()).unwrap();
        let mut i = 0;
        let line = |i: &mut usize| -> String {
            let start = *i;
            while *i + 1 < data.len() && &data[*i..*i + 2] != b"\r\n" {
                *i += 1;
            }
            let l = String::from_utf8_lossy(&data[start..*i]).into_owned();
            *i += 2;
            l
        };
        while i < data.len() {
            let head = line(&mut i);
            assert!(head.starts_with('*'), "unexpected AOF line {head:?}");
            let n: usize = head[1..].parse().unwrap();
            for j in 0..n {
                let len_line = line(&mut i);
                let len: usize = len_line[1..].parse().unwrap();
                if j == 0 {
                    names.push(String::from_utf8_lossy(&data[i..i + len]).to_ascii_lowercase());
                }
                i += len + 2;
            }
        }
    }
    names
}

pub fn arr(v: &Value) -> &Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Set(a) => a,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// Same keys, DUMP payloads and PEXPIRETIME on two servers; every key has
/// a TTL.
pub fn assert_same_data(a: &Server, b: &Server) {
    let mut ac = a.conn();
    let mut bc = b.conn();
    let x = data(&mut ac);
    let y = data(&mut bc);
    assert!(!x.is_empty(), "no keys at all");
    let xk: Vec<&String> = x.iter().map(|t| &t.0).collect();
    let yk: Vec<&String> = y.iter().map(|t| &t.0).collect();
    assert_eq!(xk, yk, "key sets differ");
    for (p, q) in x.iter().zip(&y) {
        assert_eq!(p.1, q.1, "DUMP of {} differs", p.0);
        assert_eq!(p.2, q.2, "PEXPIRETIME of {} differs", p.0);
        assert!(p.2 > 0, "{} has no TTL ({})", p.0, p.2);
    }
}

pub fn ceil_ms(d: Duration) -> i64 {
    d.as_micros().div_ceil(1000) as i64
}

pub fn command_info(c: &mut Connection, name: &str) -> Vec<Value> {
    let v = raw(c, &["COMMAND", "INFO", name]).unwrap();
    let outer = arr(&v);
    assert_eq!(outer.len(), 1);
    match &outer[0] {
        Value::Nil => panic!("COMMAND INFO {name}: unknown command"),
        info => arr(info).clone(),
    }
}

pub fn counter(c: &mut Connection, name: &str) -> i64 {
    let f = info(c, "ratelimit");
    f.get(name)
        .unwrap_or_else(|| panic!("no {name} in INFO ratelimit: {f:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every key with its DUMP payload and absolute expiry.
pub fn data(c: &mut Connection) -> Vec<(String, Option<Vec<u8>>, i64)> {
    keys(c)
        .into_iter()
        .map(|k| {
            let d = dump(c, &k);
            let e = pexpiretime(c, &k);
            (k, d, e)
        })
        .collect()
}

pub fn events_of<'a>(ev: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    ev.iter()
        .filter(|(_, k)| k == key)
        .map(|(e, _)| e.as_str())
        .collect()
}

pub fn field<'a>(pairs: &'a [(String, Value)], name: &str) -> &'a Value {
    &pairs
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no field {name:?} in {pairs:?}"))
        .1
}

pub fn floor_ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// Subscribes to every key-event notification of db 0 and collects
/// (event, key) pairs until a message on channel `done`.
pub fn listen(server: &Server) -> std::thread::JoinHandle<Vec<(String, String)>> {
    let client = redis::Client::open(server.url()).unwrap();
    let (ready, subscribed) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut con = client.get_connection().unwrap();
        let mut ps = con.as_pubsub();
        ps.psubscribe("__keyevent@0__:*").unwrap();
        ps.subscribe("done").unwrap();
        ps.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        ready.send(()).unwrap();
        let mut got = Vec::new();
        loop {
            let msg = ps.get_message().expect("a notification within 10 s");
            let channel = msg.get_channel_name().to_string();
            if channel == "done" {
                return got;
            }
            let event = channel.trim_start_matches("__keyevent@0__:").to_string();
            let key: String = msg.get_payload().unwrap();
            got.push((event, key));
        }
    });
    subscribed
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    handle
}

pub fn ping(c: &mut Connection) {
    let pong: String = redis::cmd("PING").query(c).unwrap();
    assert_eq!(pong, "PONG");
}

/// The server's clock, Unix ms.
pub fn server_ms(c: &mut Connection) -> i64 {
    let (s, us): (i64, i64) = redis::cmd("TIME").query(c).unwrap();
    s * 1000 + us / 1000
}

pub fn strings(v: &Value) -> Vec<String> {
    arr(v).iter().map(to_string).collect()
}

/// Runs `f`, returning its value with the instants just before and after.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Instant, Instant) {
    let b = Instant::now();
    let v = f();
    let a = Instant::now();
    (v, b, a)
}

/// `WATCH key` on one client, `args` from another, then `MULTI PING EXEC`
/// on the first: true when the transaction ran (the key was not signalled
/// as modified).
pub fn exec_survives(p: &Server, key: &str, args: &[&str]) -> bool {
    let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    exec_survives_bytes(p, key, &bytes)
}

/// [`exec_survives`] with arguments of any bytes.
pub fn exec_survives_bytes(p: &Server, key: &str, args: &[&[u8]]) -> bool {
    let mut watcher = p.conn();
    let mut other = p.conn();
    raw(&mut watcher, &["WATCH", key]).unwrap();
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let _: RedisResult<Value> = cmd.query(&mut other);
    raw(&mut watcher, &["MULTI"]).unwrap();
    raw(&mut watcher, &["PING"]).unwrap();
    !matches!(raw(&mut watcher, &["EXEC"]).unwrap(), Value::Nil)
}
