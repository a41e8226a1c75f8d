//! A private Redis Cluster on loopback for the cluster tests: six
//! `redis-server` processes with the module loaded (3 primaries, 3
//! replicas, made by `redis-cli --cluster create`), a hitter thread that
//! drives `RL.HIT` at a steady rate through the `redis` crate's cluster
//! client, and the helpers to read the topology and move slots.
//!
//! Every process is started here and stopped here by its pid (`Child`),
//! also when a test panics (`Drop`). Before we talk to a node we check that
//! `INFO server` reports the pid of the child we spawned. All waits are
//! bounded.

#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, sleep};
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::{Connection, RedisResult, Value};

/// `cluster-node-timeout` of every node (ms): small, so that a failover
/// takes a few seconds.
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// Bound for the cluster to form, a failover to complete, ...
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound for one process to start answering PING.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Bound for one `redis-cli --cluster ...` run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(90);

/// Each test builds its own six-node cluster; on a 2-core machine they run
/// one at a time (also under `--test-threads=N`), so that failover timing
/// does not depend on how many other clusters are busy.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

// Replies, INFO and the server binaries: the harness of every other test.
#[path = "../common/mod.rs"]
mod common;
use common::redis_server_bin;
pub use common::{
    ServerKind, Stat, err_text, module_path, parse_info, stat_from, try_five as five,
};

fn redis_cli_bin() -> String {
    std::env::var("RL_REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_string())
}

/// Besides the `Drop` guards: if the test process dies without unwinding
/// (SIGKILL, abort), the kernel kills its servers too.
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child
    // between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_usize(COUNTER.fetch_add(1, Ordering::SeqCst));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// A port P such that P and P + 10000 (the cluster bus) can both be bound
/// on 127.0.0.1 right now. P is taken from 12000..22000, so that both P and
/// P + 10000 lie below Linux' default ephemeral range (32768-60999) and do
/// not collide with the ports of outgoing connections.
fn pick_port(taken: &HashSet<u16>) -> u16 {
    for _ in 0..1000 {
        let p = 12000 + (random_u64() % 10000) as u16;
        if taken.contains(&p) || taken.contains(&(p + 10000)) || taken.contains(&(p - 10000)) {
            continue;
        }
        let a = TcpListener::bind(("127.0.0.1", p));
        let b = TcpListener::bind(("127.0.0.1", p + 10000));
        if a.is_ok() && b.is_ok() {
            return p;
        }
    }
    panic!("no free pair of ports (P, P+10000) found on 127.0.0.1");
}

fn unique_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "rl-{tag}-{}-{}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        random_u64() & 0xffffff
    ));
    fs::create_dir_all(&d).expect("create temp dir");
    d
}

// ---------------------------------------------------------------------------
// One node
// ---------------------------------------------------------------------------

pub struct Node {
    pub port: u16,
    pub dir: PathBuf,
    pub pid: u32,
    child: Option<Child>,
}

impl Node {
    /// Spawn a cluster-enabled `redis-server` with the module (not yet
    /// checked: see `wait_ready`).
    fn spawn(port: u16, dir: PathBuf, cluster: bool) -> Node {
        fs::create_dir_all(&dir).unwrap();
        let log = File::create(dir.join("server.log")).expect("create log");
        let log2 = log.try_clone().unwrap();
        let mut cmd = Command::new(redis_server_bin());
        die_with_parent(&mut cmd);
        let child = cmd
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            .args(["--daemonize", "no", "--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", if cluster { "yes" } else { "no" }])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            // Slots of a failed shard must not take the others down while
            // its replica is being promoted.
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--cluster-allow-replica-migration", "no"])
            .args(["--repl-diskless-sync-delay", "0"])
            // A replica is listed in CLUSTER SLOTS (which clients read to
            // find replicas) only once it reports a non-zero replication
            // offset: ping replicas every second instead of every 10.
            .args(["--repl-ping-replica-period", "1"])
            .arg("--loadmodule")
            .arg(module_path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .expect("spawn redis-server");
        let pid = child.id();
        Node {
            port,
            dir,
            pid,
            child: Some(child),
        }
    }

    /// Wait (bounded) for PING and check that the server on our port is our
    /// child. `Err(true)` means "retry on another port".
    fn wait_ready(&mut self) -> Result<(), (bool, String)> {
        let deadline = Instant::now() + START_TIMEOUT;
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let log = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                let retry = log.contains("Address already in use");
                self.child = None;
                return Err((retry, format!("redis-server exited: {status}\n{log}")));
            }
            if Instant::now() > deadline {
                return Err((false, "timed out waiting for PING".into()));
            }
            if let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) {
                let _ = con.set_read_timeout(Some(Duration::from_secs(2)));
                if let Ok(info) = redis::cmd("INFO").arg("server").query::<String>(&mut con) {
                    let pid = parse_info(&info)
                        .get("process_id")
                        .cloned()
                        .unwrap_or_default();
                    if pid != self.pid.to_string() {
                        return Err((true, format!("port {} answered by pid {pid}", self.port)));
                    }
                    return Ok(());
                }
            }
            sleep(Duration::from_millis(20));
        }
    }

    pub fn alive(&self) -> bool {
        self.child.is_some()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A direct (not cluster-aware) RESP2 connection to this node.
    pub fn conn(&self) -> Connection {
        self.try_conn()
            .unwrap_or_else(|e| panic!("connect to node {}: {e}", self.port))
    }

    pub fn try_conn(&self) -> RedisResult<Connection> {
        assert!(self.alive(), "node {} was stopped", self.port);
        let client = redis::Client::open(self.url()).unwrap();
        let con = client.get_connection_with_timeout(Duration::from_secs(5))?;
        con.set_read_timeout(Some(Duration::from_secs(20)))?;
        con.set_write_timeout(Some(Duration::from_secs(20)))?;
        Ok(con)
    }

    pub fn info(&self, section: &str) -> HashMap<String, String> {
        let mut c = self.conn();
        let text: String = redis::cmd("INFO").arg(section).query(&mut c).unwrap();
        parse_info(&text)
    }

    /// Which server this node runs (family and release).
    pub fn kind(&self) -> ServerKind {
        ServerKind::from_info(&self.info("server"))
    }

    /// `CLUSTER MYID`.
    pub fn id(&self) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.conn())
            .unwrap()
    }

    /// SIGKILL (kill -9) by pid and reap. Returns the instant the signal
    /// was sent.
    pub fn kill9(&mut self) -> Instant {
        let mut c = self.child.take().expect("node already stopped");
        let t = Instant::now();
        c.kill().expect("kill -9 redis-server");
        let _ = c.wait();
        t
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Number of calls of `cmd` (lower case, e.g. `rl.test`) in
    /// `INFO commandstats`.
    pub fn calls(&self, cmd: &str) -> u64 {
        let info = self.info("commandstats");
        info.get(&format!("cmdstat_{cmd}"))
            .and_then(|v| {
                v.split(',')
                    .find_map(|kv| kv.strip_prefix("calls="))
                    .map(|n| n.parse().unwrap())
            })
            .unwrap_or(0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// Topology (CLUSTER NODES)
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub primary: bool,
    pub primary_id: Option<String>,
    pub failed: bool,
    pub slots: Vec<(u16, u16)>,
}

impl NodeInfo {
    pub fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
    pub fn slot_count(&self) -> usize {
        self.slots.iter().map(|&(a, b)| (b - a) as usize + 1).sum()
    }
    /// Lowest slots first (as `redis-cli --cluster reshard` takes them).
    pub fn first_slots(&self, n: usize) -> Vec<u16> {
        let mut all: Vec<u16> = self.slots.iter().flat_map(|&(a, b)| a..=b).collect();
        all.sort();
        all.truncate(n);
        all
    }
}

#[derive(Clone, Debug)]
pub struct Topology {
    pub nodes: Vec<NodeInfo>,
}

impl Topology {
    pub fn parse(text: &str) -> Topology {
        let mut nodes = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let addr = f[1].split('@').next().unwrap();
            let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
            let flags: Vec<&str> = f[2].split(',').collect();
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .map(|s| match s.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => {
                        let a: u16 = s.parse().unwrap();
                        (a, a)
                    }
                })
                .collect();
            nodes.push(NodeInfo {
                id: f[0].to_string(),
                port,
                primary: flags.contains(&"master"),
                primary_id: (f[3] != "-").then(|| f[3].to_string()),
                failed: flags.contains(&"fail") || flags.contains(&"fail?"),
                slots,
            });
        }
        nodes.sort_by_key(|n| n.port);
        Topology { nodes }
    }

    pub fn primaries(&self) -> Vec<&NodeInfo> {
        self.nodes
            .iter()
            .filter(|n| n.primary && !n.failed && n.slot_count() > 0)
            .collect()
    }

    pub fn owner(&self, slot: u16) -> &NodeInfo {
        self.nodes
            .iter()
            .find(|n| n.primary && n.owns(slot))
            .unwrap_or_else(|| panic!("no owner for slot {slot}: {self:?}"))
    }

    pub fn by_port(&self, port: u16) -> &NodeInfo {
        self.nodes.iter().find(|n| n.port == port).unwrap()
    }

    pub fn by_id(&self, id: &str) -> &NodeInfo {
        self.nodes.iter().find(|n| n.id == id).unwrap()
    }

    /// The live replicas of a primary.
    pub fn replicas_of(&self, primary_id: &str) -> Vec<&NodeInfo> {
        self.nodes
            .iter()
            .filter(|n| !n.primary && !n.failed && n.primary_id.as_deref() == Some(primary_id))
            .collect()
    }

    /// Who owns which slot ranges: equal for two nodes that agree.
    fn slot_map(&self) -> Vec<(u16, u16, u16)> {
        let mut v: Vec<(u16, u16, u16)> = self
            .nodes
            .iter()
            .filter(|n| n.primary)
            .flat_map(|n| n.slots.iter().map(move |&(a, b)| (a, b, n.port)))
            .collect();
        v.sort();
        v
    }

    /// Which node replicates which (replica port, primary port): equal for
    /// two nodes that agree.
    fn replica_map(&self) -> Vec<(u16, u16)> {
        let mut v: Vec<(u16, u16)> = self
            .nodes
            .iter()
            .filter(|n| !n.primary && !n.failed)
            .filter_map(|n| {
                let p = self
                    .nodes
                    .iter()
                    .find(|m| Some(&m.id) == n.primary_id.as_ref())?;
                Some((n.port, p.port))
            })
            .collect();
        v.sort();
        v
    }
}

pub fn slot_of(key: &str) -> u16 {
    redis::cluster_routing::get_slot(key.as_bytes())
}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

/// A node's view of the cluster: (first slot, last slot, owner port) and
/// (replica port, primary port).
type View = (Vec<(u16, u16, u16)>, Vec<(u16, u16)>);

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub dir: PathBuf,
}

impl Cluster {
    /// Six nodes, `redis-cli --cluster create --cluster-replicas 1`, then
    /// wait until every node reports `cluster_state:ok`, agrees on the slot
    /// map and every replica is in sync.
    pub fn start() -> Cluster {
        let m = module_path();
        assert!(
            m.exists(),
            "module not found at {} (build it with `cargo build --release` or set RL_MODULE)",
            m.display()
        );
        let dir = unique_dir("cluster");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir: dir.clone(),
        };
        let mut taken = HashSet::new();
        // Spawn all six, then check each (retrying a node on another port
        // if its port was taken in between).
        let mut pending: Vec<Node> = (0..6)
            .map(|i| {
                let p = pick_port(&taken);
                taken.insert(p);
                Node::spawn(p, dir.join(format!("node{i}")), true)
            })
            .collect();
        for (i, mut node) in pending.drain(..).enumerate() {
            let mut attempts = 0;
            loop {
                match node.wait_ready() {
                    Ok(()) => break,
                    Err((retry, msg)) => {
                        node.stop();
                        attempts += 1;
                        if !retry || attempts >= 5 {
                            panic!("node {i} failed to start: {msg}");
                        }
                        let p = pick_port(&taken);
                        taken.insert(p);
                        node = Node::spawn(p, dir.join(format!("node{i}-{attempts}")), true);
                    }
                }
            }
            cluster.nodes.push(node);
        }
        let mut args = vec!["--cluster".to_string(), "create".to_string()];
        args.extend(cluster.nodes.iter().map(|n| n.addr()));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        let out = cluster.redis_cli(&args, CLI_TIMEOUT);
        assert!(
            out.contains("[OK] All 16384 slots covered"),
            "redis-cli --cluster create failed:\n{out}"
        );
        cluster.wait_stable(CLUSTER_TIMEOUT);
        cluster
    }

    pub fn live(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.alive())
    }

    pub fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    pub fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.port == port).unwrap()
    }

    /// `CLUSTER NODES` as seen by the first live node.
    pub fn topology(&self) -> Topology {
        let n = self.live().next().expect("no live node");
        self.topology_from(n)
    }

    pub fn topology_from(&self, n: &Node) -> Topology {
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut n.conn())
            .unwrap();
        Topology::parse(&text)
    }

    /// Bounded wait until every live node: `cluster_state:ok`, all 16384
    /// slots served, the same slot map as the others, no open
    /// importing/migrating slot; and every live replica linked and in sync.
    pub fn wait_stable(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let why = self.unstable_reason();
            match why {
                None => return,
                Some(why) => {
                    if Instant::now() > deadline {
                        panic!("cluster not stable after {timeout:?}: {why}");
                    }
                }
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn unstable_reason(&self) -> Option<String> {
        let mut first: Option<View> = None;
        let live_ports: HashSet<u16> = self.live().map(|n| n.port).collect();
        for n in self.live() {
            let mut c = match n.try_conn() {
                Ok(c) => c,
                Err(e) => return Some(format!("{}: {e}", n.port)),
            };
            let info: String = match redis::cmd("CLUSTER").arg("INFO").query(&mut c) {
                Ok(s) => s,
                Err(e) => return Some(format!("{}: {e}", n.port)),
            };
            let info = parse_info(&info);
            if info.get("cluster_state").map(String::as_str) != Some("ok") {
                return Some(format!(
                    "{}: cluster_state {:?}",
                    n.port,
                    info.get("cluster_state")
                ));
            }
            if info.get("cluster_slots_ok").map(String::as_str) != Some("16384") {
                return Some(format!(
                    "{}: slots_ok {:?}",
                    n.port,
                    info.get("cluster_slots_ok")
                ));
            }
            let text: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).unwrap();
            if text.contains("->-") || text.contains("-<-") {
                return Some(format!("{}: open slot migration", n.port));
            }
            let topo = Topology::parse(&text);
            // Every node we stopped is flagged failed; every live one is not.
            for ni in &topo.nodes {
                if live_ports.contains(&ni.port) == ni.failed {
                    return Some(format!("{} sees {} failed={}", n.port, ni.port, ni.failed));
                }
            }
            if topo.nodes.len() != self.nodes.len() {
                return Some(format!("{} knows {} nodes", n.port, topo.nodes.len()));
            }
            // Every live node is a primary with slots or a replica.
            if let Some(m) = topo
                .nodes
                .iter()
                .find(|m| !m.failed && m.primary && m.slot_count() == 0)
            {
                return Some(format!(
                    "{} sees {} as a primary without slots",
                    n.port, m.port
                ));
            }
            let map = (topo.slot_map(), topo.replica_map());
            if map.0.iter().any(|&(_, _, p)| !live_ports.contains(&p)) {
                return Some(format!("{}: slots still owned by a dead node", n.port));
            }
            match &first {
                None => first = Some(map),
                Some(f) if *f != map => {
                    return Some(format!("{} disagrees on the slot or replica map", n.port));
                }
                _ => {}
            }
            // CLUSTER SLOTS (what clients read) lists every live replica.
            let slots: Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut c).unwrap();
            let listed = match &slots {
                Value::Array(ranges) => ranges
                    .iter()
                    .map(|r| match r {
                        Value::Array(items) => items.len().saturating_sub(2),
                        _ => 0,
                    })
                    .sum::<usize>(),
                _ => 0,
            };
            let want: usize = topo
                .nodes
                .iter()
                .filter(|m| m.primary && !m.failed)
                .map(|m| m.slots.len() * (1 + topo.replicas_of(&m.id).len()))
                .sum();
            if listed != want {
                return Some(format!(
                    "{}: CLUSTER SLOTS lists {listed} nodes over its ranges, expected {want}",
                    n.port
                ));
            }
            let repl = n.info("replication");
            let field = |k: &str| repl.get(k).map(String::as_str);
            if field("role") == Some("slave")
                && (field("master_link_status") != Some("up")
                    || field("master_sync_in_progress") != Some("0"))
            {
                return Some(format!("{}: replica link not up", n.port));
            }
        }
        None
    }

    /// Wait (bounded) until every live replica has applied everything its
    /// primary has sent.
    pub fn wait_replicas_synced(&self) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let mut behind = Vec::new();
            for n in self.live() {
                let r = n.info("replication");
                if r.get("role").map(String::as_str) != Some("slave") {
                    continue;
                }
                let pport: u16 = r["master_port"].parse().unwrap();
                let p = self.node(pport);
                let po: i64 = p.info("replication")["master_repl_offset"].parse().unwrap();
                let ro: i64 = r["slave_repl_offset"].parse().unwrap();
                if po != ro {
                    behind.push((n.port, ro, po));
                }
            }
            if behind.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "replicas behind: {behind:?}");
            sleep(Duration::from_millis(20));
        }
    }

    /// A cluster client over all live nodes, with small, bounded retry
    /// waits (the defaults wait 1.28 s at least on TRYAGAIN/CLUSTERDOWN).
    pub fn client_builder(&self) -> ClusterClientBuilder {
        let urls: Vec<String> = self.live().map(|n| n.url()).collect();
        ClusterClientBuilder::new(urls)
            .retries(10)
            .min_retry_wait(10)
            .max_retry_wait(500)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(10))
    }

    pub fn client(&self) -> ClusterClient {
        self.client_builder().build().unwrap()
    }

    pub fn connection(&self) -> ClusterConnection {
        self.client().get_connection().unwrap()
    }

    /// Run `redis-cli args...` (bounded; killed by pid on timeout) and
    /// return its stdout + stderr. Only ever given addresses of our nodes.
    pub fn redis_cli(&self, args: &[String], timeout: Duration) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let out_path = self.dir.join(format!("redis-cli-{n}.log"));
        let out = File::create(&out_path).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(redis_cli_bin());
        die_with_parent(&mut cmd);
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn redis-cli");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            sleep(Duration::from_millis(20));
        };
        let text = fs::read_to_string(&out_path).unwrap_or_default();
        match status {
            None => panic!("redis-cli {args:?} timed out after {timeout:?}:\n{text}"),
            Some(s) if !s.success() => panic!("redis-cli {args:?} failed ({s}):\n{text}"),
            Some(_) => text,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
        if thread::panicking() {
            eprintln!("cluster logs kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn remove_dir(p: &Path) {
    let _ = fs::remove_dir_all(p);
}

// ---------------------------------------------------------------------------
// A standalone server (no cluster), for comparisons
// ---------------------------------------------------------------------------

pub struct Standalone {
    pub node: Node,
    dir: PathBuf,
}

impl Standalone {
    pub fn start() -> Standalone {
        let dir = unique_dir("single");
        let mut taken = HashSet::new();
        for attempt in 0..5 {
            let p = pick_port(&taken);
            taken.insert(p);
            let mut node = Node::spawn(p, dir.join(format!("try{attempt}")), false);
            match node.wait_ready() {
                Ok(()) => return Standalone { node, dir },
                Err((true, _)) => node.stop(),
                Err((false, msg)) => panic!("standalone redis-server failed: {msg}"),
            }
        }
        panic!("standalone redis-server: no free port");
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        self.node.stop();
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------
// Slot migration by hand (what `redis-cli --cluster reshard` does), slowly
// ---------------------------------------------------------------------------

/// Move `slot` from `src` to `dst` key by key with `MIGRATE`, pausing
/// `pause` after each key so that clients meet the ASK window, then assign
/// the slot to `dst` on every primary.
pub fn migrate_slot(cluster: &Cluster, src: u16, dst: u16, slot: u16, pause: Duration) -> usize {
    let topo = cluster.topology();
    let src_id = topo.by_port(src).id.clone();
    let dst_id = topo.by_port(dst).id.clone();
    let mut s = cluster.node(src).conn();
    let mut d = cluster.node(dst).conn();
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("IMPORTING")
        .arg(&src_id)
        .query(&mut d)
        .unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("MIGRATING")
        .arg(&dst_id)
        .query(&mut s)
        .unwrap();
    let mut moved = 0;
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    loop {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(1)
            .query(&mut s)
            .unwrap();
        if keys.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot {slot} migration did not end"
        );
        let r: RedisResult<Value> = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(dst)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(&keys)
            .query(&mut s);
        r.unwrap_or_else(|e| panic!("MIGRATE {keys:?} to {dst}: {e}"));
        moved += keys.len();
        sleep(pause);
    }
    // Target first, then the source, then the other primaries (as
    // redis-cli does).
    let mut order = vec![dst, src];
    order.extend(
        topo.primaries()
            .iter()
            .map(|n| n.port)
            .filter(|p| *p != dst && *p != src),
    );
    for p in order {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("NODE")
            .arg(&dst_id)
            .query(&mut cluster.node(p).conn())
            .unwrap();
    }
    moved
}

// ---------------------------------------------------------------------------
// The hitter: RL.HIT at a steady rate through the cluster client
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct HitSpec {
    pub key: String,
    pub limits: String,
    pub opts: Vec<String>,
}

impl HitSpec {
    pub fn new(key: &str, limits: &str, opts: &[&str]) -> HitSpec {
        HitSpec {
            key: key.to_string(),
            limits: limits.to_string(),
            opts: opts.iter().map(|s| s.to_string()).collect(),
        }
    }
    /// The limit amount of a one-limit spec such as `1000000/h`.
    pub fn amount(&self) -> i64 {
        self.limits.split('/').next().unwrap().parse().unwrap()
    }
}

#[derive(Clone, Debug)]
pub struct Record {
    pub spec: usize,
    /// Taken just before the call.
    pub sent: Instant,
    /// Taken just after the reply (or error).
    pub recv: Instant,
    pub reply: Result<[i64; 5], String>,
}

impl Record {
    pub fn admitted(&self) -> bool {
        matches!(self.reply, Ok(r) if r[0] == 1)
    }
}

pub struct Hitter {
    pub specs: Vec<HitSpec>,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    records: Arc<Mutex<Vec<Record>>>,
    reconnects: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

impl Hitter {
    /// One thread, one cluster connection: each round hits every spec once
    /// in order, then sleeps `interval`. On an error the connection is
    /// rebuilt from the initial nodes (the sync cluster client does not
    /// refresh its slot map on connection errors, only on MOVED), at most
    /// every 50 ms. Stops by itself after `max_run`.
    pub fn start(
        client: ClusterClient,
        specs: Vec<HitSpec>,
        interval: Duration,
        max_run: Duration,
    ) -> Hitter {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let records = Arc::new(Mutex::new(Vec::new()));
        let reconnects = Arc::new(AtomicUsize::new(0));
        let handle = {
            let (stop, rounds, records, reconnects) = (
                stop.clone(),
                rounds.clone(),
                records.clone(),
                reconnects.clone(),
            );
            let specs = specs.clone();
            thread::spawn(move || {
                let end = Instant::now() + max_run;
                let mut con: Option<ClusterConnection> = None;
                let mut last_connect = Instant::now() - Duration::from_secs(1);
                while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                    if con.is_none() && last_connect.elapsed() >= Duration::from_millis(50) {
                        last_connect = Instant::now();
                        con = client.get_connection().ok();
                        reconnects.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Some(c) = con.as_mut() {
                        let mut failed = false;
                        for (i, s) in specs.iter().enumerate() {
                            let mut cmd = redis::cmd("RL.HIT");
                            cmd.arg(&s.key).arg(&s.limits);
                            for o in &s.opts {
                                cmd.arg(o);
                            }
                            let sent = Instant::now();
                            let r: RedisResult<Value> = cmd.query(c);
                            let recv = Instant::now();
                            let reply = match r {
                                Ok(v) => five(v),
                                Err(e) => {
                                    failed = true;
                                    Err(e.to_string())
                                }
                            };
                            records.lock().unwrap().push(Record {
                                spec: i,
                                sent,
                                recv,
                                reply,
                            });
                        }
                        if failed {
                            con = None;
                        }
                        rounds.fetch_add(1, Ordering::SeqCst);
                    }
                    sleep(interval);
                }
            })
        };
        Hitter {
            specs,
            stop,
            rounds,
            records,
            reconnects,
            handle: Some(handle),
        }
    }

    pub fn rounds(&self) -> usize {
        self.rounds.load(Ordering::SeqCst)
    }

    pub fn reconnects(&self) -> usize {
        self.reconnects.load(Ordering::SeqCst)
    }

    /// Wait (bounded) for `n` more rounds.
    pub fn wait_rounds(&self, n: usize) {
        let target = self.rounds() + n;
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        while self.rounds() < target {
            assert!(
                !self.handle.as_ref().unwrap().is_finished(),
                "hitter thread ended early"
            );
            assert!(Instant::now() < deadline, "hitter made no progress");
            sleep(Duration::from_millis(10));
        }
    }

    /// Wait (bounded) until every spec got `n` successful replies to calls
    /// sent after `after`.
    pub fn wait_successes_after(&self, after: Instant, n: usize) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let ok = {
                let recs = self.records.lock().unwrap();
                (0..self.specs.len()).all(|i| {
                    recs.iter()
                        .filter(|r| r.spec == i && r.sent >= after && r.reply.is_ok())
                        .count()
                        >= n
                })
            };
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "hitter: no {n} successful calls per key after the event"
            );
            sleep(Duration::from_millis(20));
        }
    }

    pub fn snapshot(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    /// Stop the thread and return every call it made.
    pub fn stop(mut self) -> Vec<Record> {
        self.halt();
        self.records.lock().unwrap().clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Hitter {
    fn drop(&mut self) {
        self.halt();
    }
}
