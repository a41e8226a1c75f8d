//! Redis Cluster: 3 primaries + 3 replicas on loopback, each with the
//! module loaded, made with `redis-cli --cluster create`, driven through
//! the `redis` crate's cluster client.
//!
//! - replies through the cluster equal a single node's for the same
//!   sequence (keys on all three primaries);
//! - resharding (`redis-cli --cluster reshard`, then a slow hand-made
//!   MIGRATE that holds slots open) under a steady stream of hits keeps
//!   every count and TTL, with no call failing;
//! - graceful `CLUSTER FAILOVER` and `kill -9` of a primary under a steady
//!   stream of hits: the promoted replica continues every limit; the loss
//!   is measured and bounded;
//! - replicas answer RL.TEST and RL.STATS on READONLY connections.
//!
//! These tests start six servers each and run one at a time: they are
//! `#[ignore]`d in `cargo test` and run by `make test-cluster`
//! (`cargo test --release --test cluster -- --ignored --nocapture`).

mod cluster_support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use cluster_support::*;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ConnectionLike, RedisResult, Value};

const HOUR_MS: i64 = 3_600_000;

/// Time fields (reset_after_ms, retry_after_ms) of two servers that see the
/// same sequence a few ms apart may differ by that much; with windows of
/// hours or days a second of slack cannot hide a wrong window.
const TIME_TOLERANCE_MS: i64 = 1000;

/// The amount of the "counting" limits: never reached, so that a reply's
/// `remaining` tells the exact count held by the server.
const BIG: i64 = 1_000_000;

/// After a kill -9, an admitted hit can be lost only if its effect had not
/// reached the replica's socket when the primary died. Redis queues the
/// replication stream during the command and writes it to the replicas'
/// sockets in the same event-loop iteration as the client's reply (before
/// it, in 7.0), so only the hits acknowledged in the last moments before
/// the kill are at risk: the test asserts that no more were lost than were
/// acknowledged in this many ms before the kill (the hitter runs for over
/// a second before, so a module that did not replicate, or replicated
/// late, would lose far more).
const KILL_WINDOW_MS: u64 = 100;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `n` keys `prefix0`, `prefix1`, ... whose slots the node on `port` owns.
fn keys_on(topo: &Topology, port: u16, prefix: &str, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| topo.owner(slot_of(k)).port == port)
        .take(n)
        .collect()
}

/// A hash tag (the text between braces) whose slot satisfies `pred`.
/// One `1000000/h` spec per strategy on `{tag}:<strategy>`, then a `50/h`
/// one on `{tag}:full` that fills up (all in the tag's slot).
fn tagged_specs(tag: &str, strategies: &[&str]) -> Vec<HitSpec> {
    let mut specs: Vec<HitSpec> = strategies
        .iter()
        .map(|s| HitSpec::new(&format!("{{{tag}}}:{s}"), "1000000/h", &["STRATEGY", s]))
        .collect();
    specs.push(HitSpec::new(&format!("{{{tag}}}:full"), "50/h", &[]));
    specs
}

fn tag_where(prefix: &str, pred: impl Fn(u16) -> bool) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|t| pred(slot_of(t)))
        .unwrap()
}

fn query(con: &mut impl ConnectionLike, words: &[String]) -> RedisResult<Value> {
    let mut c = redis::cmd(&words[0]);
    for w in &words[1..] {
        c.arg(w);
    }
    c.query(con)
}

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|s| s.to_string()).collect()
}

fn hit_cmd(name: &str, key: &str, limits: &str, opts: &[&str]) -> Vec<String> {
    let mut w = words(&[name, key, limits]);
    w.extend(words(opts));
    w
}

fn near(a: i64, b: i64) -> bool {
    if a <= 0 || b <= 0 {
        a == b
    } else {
        (a - b).abs() <= TIME_TOLERANCE_MS
    }
}

/// Compare two replies to the same command: exactly, except the two time
/// fields, within `TIME_TOLERANCE_MS`.
fn same_reply(
    cmd: &[String],
    a: &RedisResult<Value>,
    b: &RedisResult<Value>,
) -> Result<(), String> {
    let name = cmd[0].to_ascii_uppercase();
    match (a, b) {
        (Err(x), Err(y)) => {
            let (x, y) = (err_text(x), err_text(y));
            if x == y {
                Ok(())
            } else {
                Err(format!("errors differ: {x:?} vs {y:?}"))
            }
        }
        (Ok(x), Ok(y)) if name == "RL.HIT" || name == "RL.TEST" => {
            let (x, y) = match (five(x.clone()), five(y.clone())) {
                (Ok(x), Ok(y)) => (x, y),
                other => return Err(format!("{other:?}")),
            };
            if x[..3] == y[..3] && near(x[3], y[3]) && near(x[4], y[4]) {
                Ok(())
            } else {
                Err(format!("{x:?} vs {y:?}"))
            }
        }
        (Ok(Value::Array(x)), Ok(Value::Array(y))) if name == "RL.STATS" => {
            let x: Vec<Stat> = x.iter().map(stat_from).collect();
            let y: Vec<Stat> = y.iter().map(stat_from).collect();
            let ok = x.len() == y.len()
                && x.iter().zip(&y).all(|(p, q)| {
                    (p.limit, p.window_ms, &p.strategy, p.remaining)
                        == (q.limit, q.window_ms, &q.strategy, q.remaining)
                        && near(p.reset_after_ms, q.reset_after_ms)
                        && near(p.retry_after_ms, q.retry_after_ms)
                });
            if ok {
                Ok(())
            } else {
                Err(format!("{x:?} vs {y:?}"))
            }
        }
        (Ok(x), Ok(y)) => {
            if x == y {
                Ok(())
            } else {
                Err(format!("{x:?} vs {y:?}"))
            }
        }
        _ => Err(format!("{a:?} vs {b:?}")),
    }
}

/// Deterministic pseudo-random numbers (no dependency needed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// A mixed sequence of RL.* commands over `keys`: hits of various costs,
/// tests, stats, partial and whole clears, a lowered limit, never-admissible
/// costs, option errors, WRONGTYPE. Each key has its own strategy and
/// limits (all windows are hours or longer).
fn sequence(keys: &[String], wrong_key: &str, n: usize) -> Vec<Vec<String>> {
    let configs: [(&str, &str, &str); 8] = [
        ("fixed", "5/h", "2/h"),
        ("moving", "5/h;20/d", "2/h"),
        ("sliding", "8/h", "3/h"),
        ("gcra", "6/h", "2/h"),
        ("fixed-window", "3/h;10/d;100/w", "1/h"),
        ("moving-window", "1000/h", "2/h"),
        ("sliding-window-counter", "4/d;50/w", "1/d"),
        ("token-bucket", "10/d", "3/d"),
    ];
    let mut rng = Lcg(0x5eed_cafe);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let ki = rng.next(keys.len());
        let key = keys[ki].as_str();
        let (strat, limits, lowered) = configs[ki % configs.len()];
        let gcra = strat == "gcra" || strat == "token-bucket";
        let op = rng.next(100);
        let cost = ["1", "1", "1", "2", "0", "3"][rng.next(6)];
        let w = match op {
            0..=44 => hit_cmd("RL.HIT", key, limits, &["STRATEGY", strat, "COST", cost]),
            45..=59 => hit_cmd("RL.TEST", key, limits, &["COST", cost, "STRATEGY", strat]),
            60..=69 => hit_cmd("RL.STATS", key, limits, &["strategy", strat]),
            70..=72 => hit_cmd(
                "RL.HIT",
                key,
                limits,
                &["STRATEGY", strat, "COST", "9999999"],
            ),
            73..=75 => {
                let first = limits.split(';').next().unwrap();
                hit_cmd("RL.CLEAR", key, first, &["STRATEGY", strat])
            }
            76..=77 => words(&["RL.CLEAR", key]),
            78..=80 => hit_cmd("RL.HIT", key, lowered, &["STRATEGY", strat, "COST", cost]),
            81 => hit_cmd("RL.HIT", key, "10/fortnight", &[]),
            82 => hit_cmd("RL.HIT", key, limits, &["STRATEGY", "nope"]),
            83 => hit_cmd("RL.TEST", key, limits, &["COST", "-1"]),
            84 => hit_cmd("RL.HIT", key, limits, &["STRATEGY", strat, "BURST", "3"]),
            85 => hit_cmd("RL.STATS", key, limits, &["COST", "1"]),
            86..=89 if gcra => hit_cmd("RL.HIT", key, limits, &["STRATEGY", strat, "BURST", "3"]),
            86..=89 => hit_cmd("RL.HIT", wrong_key, limits, &[]),
            90..=91 => words(&["RL.CLEAR", wrong_key]),
            92..=93 => hit_cmd("RL.STATS", wrong_key, limits, &[]),
            _ => hit_cmd("RL.HIT", key, limits, &["STRATEGY", strat]),
        };
        out.push(w);
    }
    out
}

fn cluster_time_ms(node: &Node) -> i64 {
    let (s, us): (i64, i64) = redis::cmd("TIME").query(&mut node.conn()).unwrap();
    s * 1000 + us / 1000
}

fn pexpiretime(con: &mut impl ConnectionLike, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

/// Counts carried by the admitted replies of a `BIG` spec, in order.
fn counts(records: &[Record], spec: usize) -> Vec<i64> {
    records
        .iter()
        .filter(|r| r.spec == spec)
        .filter_map(|r| r.reply.as_ref().ok())
        .map(|r| {
            assert_eq!(r[0], 1, "a hit under {BIG}/h was denied: {r:?}");
            BIG - r[2]
        })
        .collect()
}

fn errors(records: &[Record], spec: usize) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.spec == spec)
        .filter_map(|r| r.reply.as_ref().err().cloned())
        .collect()
}

/// The strategy named in a spec's options (default fixed).
fn strategy_of(s: &HitSpec) -> &str {
    s.opts
        .iter()
        .skip_while(|o| !o.eq_ignore_ascii_case("STRATEGY"))
        .nth(1)
        .map(String::as_str)
        .unwrap_or("fixed")
}

/// `RL.STATS` of a spec's limits, on any connection (direct or cluster).
fn stats_of(con: &mut impl ConnectionLike, s: &HitSpec) -> Vec<Stat> {
    let w = hit_cmd("RL.STATS", &s.key, &s.limits, &["STRATEGY", strategy_of(s)]);
    match query(con, &w) {
        Ok(Value::Array(items)) => items.iter().map(stat_from).collect(),
        other => panic!("{w:?}: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 1. The cluster answers exactly as a single node
// ---------------------------------------------------------------------------

#[test]
#[ignore = "starts a 6-node Redis Cluster: run with `make test-cluster`"]
fn cluster_replies_equal_single_node_replies() {
    let _serial = serial();
    let cluster = Cluster::start();
    let single = Standalone::start();
    let topo = cluster.topology();
    let prims = topo.primaries();
    assert_eq!(prims.len(), 3, "{topo:?}");

    let mut keys = Vec::new();
    for p in &prims {
        keys.extend(keys_on(&topo, p.port, "user:", 3));
    }
    // Related keys of one tenant share a slot through a hash tag.
    let tag = tag_where("tenant:", |s| topo.owner(s).port == prims[1].port);
    keys.push(format!("{{{tag}}}:api"));
    keys.push(format!("{{{tag}}}:login"));
    let wrong = format!("{{{tag}}}:not-a-limit");

    let mut cc = cluster.connection();
    let mut sc = single.node.conn();
    for con in [&mut cc as &mut dyn ConnectionLike, &mut sc] {
        let _: () = redis::cmd("SET")
            .arg(&wrong)
            .arg("hello")
            .query(con)
            .unwrap();
    }

    let script = sequence(&keys, &wrong, 900);
    let mut by_name = std::collections::BTreeMap::<String, usize>::new();
    for (i, w) in script.iter().enumerate() {
        let a = query(&mut cc, w);
        let b = query(&mut sc, w);
        if let Err(e) = same_reply(w, &a, &b) {
            panic!("step {i}: {w:?}: cluster and single node differ: {e}");
        }
        let kind = match &a {
            Err(e) => format!("{} error ({})", w[0], e.code().unwrap_or("?")),
            Ok(Value::Array(v)) if v.len() == 5 && v[0] == Value::Int(0) => {
                if v[4] == Value::Int(-1) {
                    format!("{} never", w[0])
                } else {
                    format!("{} denied", w[0])
                }
            }
            Ok(_) => w[0].clone(),
        };
        *by_name.entry(kind).or_default() += 1;
    }
    // Same keys left, same TTLs (within the tolerance).
    for k in keys.iter().chain([&wrong]) {
        let ea: i64 = redis::cmd("EXISTS").arg(k).query(&mut cc).unwrap();
        let eb: i64 = redis::cmd("EXISTS").arg(k).query(&mut sc).unwrap();
        assert_eq!(ea, eb, "EXISTS {k}");
        let ta: i64 = redis::cmd("PTTL").arg(k).query(&mut cc).unwrap();
        let tb: i64 = redis::cmd("PTTL").arg(k).query(&mut sc).unwrap();
        assert!(near(ta, tb), "PTTL {k}: cluster {ta}, single {tb}");
    }
    // The keys really were spread over the three primaries.
    for p in &prims {
        let n = cluster.node(p.port);
        let hits = n.calls("rl.hit");
        let keys_there: i64 = redis::cmd("DBSIZE").query(&mut n.conn()).unwrap();
        assert!(hits > 0, "primary {} served no RL.HIT", p.port);
        eprintln!(
            "primary {}: {} RL.HIT calls, {} keys",
            p.port, hits, keys_there
        );
    }
    eprintln!("{} commands compared: {by_name:?}", script.len());
}

// ---------------------------------------------------------------------------
// 2. Replicas serve RL.TEST and RL.STATS
// ---------------------------------------------------------------------------

#[test]
#[ignore = "starts a 6-node Redis Cluster: run with `make test-cluster`"]
fn replicas_serve_rl_test_and_rl_stats_on_readonly_connections() {
    let _serial = serial();
    let cluster = Cluster::start();
    let topo = cluster.topology();
    let prims = topo.primaries();
    assert_eq!(prims.len(), 3);
    let strategies = ["fixed", "moving", "sliding", "gcra"];
    let mut keys = Vec::new();
    for p in &prims {
        keys.extend(keys_on(&topo, p.port, "ro:", 4));
    }
    let mut cc = cluster.connection();
    for (i, k) in keys.iter().enumerate() {
        let s = strategies[i % 4];
        // 0..=6 hits on a 5/h limit: some keys are exhausted and deny.
        for _ in 0..(i % 7) {
            let _ = query(
                &mut cc,
                &hit_cmd("RL.HIT", k, "5/h;100/d", &["STRATEGY", s]),
            );
        }
    }
    cluster.wait_replicas_synced();

    let readers = [
        ("RL.TEST", vec!["COST", "1"]),
        ("RL.TEST", vec!["COST", "2"]),
        ("RL.STATS", vec![]),
    ];
    for (i, k) in keys.iter().enumerate() {
        let s = strategies[i % 4];
        let owner = topo.owner(slot_of(k));
        let replica = topo.replicas_of(&owner.id)[0];
        let mut pc = cluster.node(owner.port).conn();
        let mut rc = cluster.node(replica.port).conn();
        let probe = hit_cmd("RL.TEST", k, "5/h;100/d", &["STRATEGY", s]);
        // Without READONLY a replica redirects even reads to its primary.
        let e = query(&mut rc, &probe).unwrap_err();
        assert_eq!(e.code(), Some("MOVED"), "{e}");
        let _: () = redis::cmd("READONLY").query(&mut rc).unwrap();
        for (name, extra) in &readers {
            let mut opts = vec!["STRATEGY", s];
            opts.extend(extra);
            let w = hit_cmd(name, k, "5/h;100/d", &opts);
            let on_primary = query(&mut pc, &w);
            let on_replica = query(&mut rc, &w);
            assert!(on_replica.is_ok(), "{w:?} on replica: {on_replica:?}");
            if let Err(e) = same_reply(&w, &on_primary, &on_replica) {
                panic!("{w:?}: primary and replica differ: {e}");
            }
        }
        // Writes still go to the primary.
        for w in [
            hit_cmd("RL.HIT", k, "5/h", &["STRATEGY", s]),
            words(&["RL.CLEAR", k]),
        ] {
            let e = query(&mut rc, &w).unwrap_err();
            assert_eq!(e.code(), Some("MOVED"), "{w:?} on a replica: {e}");
            assert!(
                e.to_string().contains(&format!(":{}", owner.port)),
                "{w:?}: not redirected to the primary {}: {e}",
                owner.port
            );
        }
    }
    let replica_ports: Vec<u16> = topo
        .nodes
        .iter()
        .filter(|n| !n.primary)
        .map(|n| n.port)
        .collect();
    for p in &replica_ports {
        assert!(cluster.node(*p).calls("rl.test") > 0, "replica {p}");
        assert!(cluster.node(*p).calls("rl.stats") > 0, "replica {p}");
    }

    // The cluster client reading from replicas. The crate does not know
    // RL.TEST is read-only, so its default routing sends it to the primary;
    // route explicitly to a replica of the key's slot.
    let before_primary: u64 = prims
        .iter()
        .map(|p| cluster.node(p.port).calls("rl.test"))
        .sum();
    let before_replicas: u64 = replica_ports
        .iter()
        .map(|p| cluster.node(*p).calls("rl.test"))
        .sum();
    let mut rcc = cluster
        .client_builder()
        .read_from_replicas()
        .build()
        .unwrap()
        .get_connection()
        .unwrap();
    for (i, k) in keys.iter().enumerate() {
        let s = strategies[i % 4];
        let w = hit_cmd("RL.TEST", k, "5/h;100/d", &["STRATEGY", s]);
        let mut c = redis::cmd(&w[0]);
        for a in &w[1..] {
            c.arg(a);
        }
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
            slot_of(k),
            SlotAddr::ReplicaRequired,
        )));
        let via_replica = rcc.route_command(&c, route);
        let via_primary = query(&mut cc, &w);
        if let Err(e) = same_reply(&w, &via_primary, &via_replica) {
            panic!("{w:?}: cluster client via replica differs: {e}");
        }
    }
    let after_primary: u64 = prims
        .iter()
        .map(|p| cluster.node(p.port).calls("rl.test"))
        .sum();
    let after_replicas: u64 = replica_ports
        .iter()
        .map(|p| cluster.node(*p).calls("rl.test"))
        .sum();
    assert_eq!(
        after_replicas - before_replicas,
        keys.len() as u64,
        "RL.TEST calls on replicas: {:?}",
        replica_ports
            .iter()
            .map(|p| cluster
                .node(*p)
                .info("commandstats")
                .get("cmdstat_rl.test")
                .cloned())
            .collect::<Vec<_>>()
    );
    assert_eq!(after_primary - before_primary, keys.len() as u64);
    // Reads wrote nothing: replicas still hold exactly what primaries hold.
    cluster.wait_replicas_synced();
    for p in &prims {
        let r = topo.replicas_of(&p.id)[0];
        let a: i64 = redis::cmd("DBSIZE")
            .query(&mut cluster.node(p.port).conn())
            .unwrap();
        let b: i64 = redis::cmd("DBSIZE")
            .query(&mut cluster.node(r.port).conn())
            .unwrap();
        assert_eq!(a, b, "primary {} and replica {}", p.port, r.port);
    }
}

// ---------------------------------------------------------------------------
// 3. Resharding under use
// ---------------------------------------------------------------------------

#[test]
#[ignore = "starts a 6-node Redis Cluster: run with `make test-cluster`"]
fn resharding_under_use_keeps_counts_and_ttls() {
    let _serial = serial();
    let cluster = Cluster::start();
    let topo = cluster.topology();
    let prims = topo.primaries();
    assert_eq!(prims.len(), 3);
    let a = topo.owner(0).clone();
    let others: Vec<_> = prims.iter().filter(|p| p.id != a.id).collect();
    let (b, c) = ((*others[0]).clone(), (*others[1]).clone());
    // `redis-cli --cluster reshard` takes the lowest slots of the source.
    const MOVE: usize = 300;
    let moved: HashSet<u16> = a.first_slots(MOVE).into_iter().collect();
    let tag = tag_where("mig:", |s| moved.contains(&s));
    let mut specs = tagged_specs(&tag, &["fixed", "moving", "sliding", "gcra"]);
    let plain: Vec<String> = (0..)
        .map(|i| format!("live:{i}"))
        .filter(|k| moved.contains(&slot_of(k)))
        .take(3)
        .collect();
    for k in &plain {
        specs.push(HitSpec::new(k, "1000000/h", &[]));
    }
    for p in [&b, &c] {
        let k = keys_on(&topo, p.port, "stay:", 1).remove(0);
        specs.push(HitSpec::new(&k, "1000000/h", &[]));
    }
    let full = 4;
    let gcra = 3;
    let count_specs: Vec<usize> = (0..specs.len())
        .filter(|i| *i != full && *i != gcra)
        .collect();

    let hitter = Hitter::start(
        cluster.client(),
        specs.clone(),
        Duration::from_millis(2),
        Duration::from_secs(90),
    );
    hitter.wait_rounds(80); // `full` is exhausted after 50
    let mut cc = cluster.connection();
    let constant_ttl = [0usize, 2, 5, 6, 7];
    let exp_before: Vec<i64> = constant_ttl
        .iter()
        .map(|&i| pexpiretime(&mut cc, &specs[i].key))
        .collect();

    // Phase 1: redis-cli moves the 300 lowest slots of A to B.
    let t0 = Instant::now();
    let rounds0 = hitter.rounds();
    let out = cluster.redis_cli(
        &[
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{}", a.port),
            "--cluster-from",
            &a.id,
            "--cluster-to",
            &b.id,
            "--cluster-slots",
            &MOVE.to_string(),
            "--cluster-yes",
        ]
        .map(String::from),
        CLI_TIMEOUT,
    );
    let reshard_time = t0.elapsed();
    cluster.wait_stable(CLUSTER_TIMEOUT);
    let topo1 = cluster.topology();
    for s in &specs[..specs.len() - 2] {
        assert_eq!(
            topo1.owner(slot_of(&s.key)).port,
            b.port,
            "{} not moved to {}:\n{out}",
            s.key,
            b.port
        );
    }
    let rounds1 = hitter.rounds() - rounds0;
    hitter.wait_rounds(30);

    // Phase 2: the tagged slot and one plain key's slot back to A, by
    // hand, one key at a time with pauses: the slots stay open (MIGRATING
    // / IMPORTING) while the hitter runs, so it meets ASK redirections.
    let asking_before = cluster.node(a.port).calls("asking");
    let t1 = Instant::now();
    let rounds_before2 = hitter.rounds();
    let mut migrated = 0;
    for slot in [slot_of(&tag), slot_of(&plain[0])] {
        migrated += migrate_slot(&cluster, b.port, a.port, slot, Duration::from_millis(150));
    }
    let manual_time = t1.elapsed();
    cluster.wait_stable(CLUSTER_TIMEOUT);
    let rounds2 = hitter.rounds() - rounds_before2;
    let asks = cluster.node(a.port).calls("asking") - asking_before;
    let topo2 = cluster.topology();
    assert_eq!(topo2.owner(slot_of(&tag)).port, a.port);
    assert_eq!(topo2.owner(slot_of(&plain[0])).port, a.port);
    hitter.wait_rounds(30);
    let records = hitter.stop();

    eprintln!(
        "reshard: {MOVE} slots A:{} -> B:{} by redis-cli in {reshard_time:?} ({rounds1} hit rounds meanwhile); \
         {migrated} keys moved back by hand in {manual_time:?} ({rounds2} rounds, {asks} ASKING on A); \
         {} calls in all",
        a.port,
        b.port,
        records.len()
    );

    // No call failed: MOVED and ASK were absorbed by the client.
    assert_no_call_failed(&records);
    assert!(
        asks > 0,
        "no ASK redirection met during the manual migration"
    );

    // Every count went 1, 2, 3, ... with no gap or repeat, and the server
    // still holds it.
    assert_counts_continued(&records, &specs, &count_specs, &mut cc);
    // GCRA (whose remaining depends on time, not only on the count): every
    // hit admitted.
    assert!(
        records
            .iter()
            .filter(|r| r.spec == gcra)
            .all(Record::admitted)
    );
    // The exhausted limit stayed exhausted: exactly 50 admitted in all.
    let full_replies: Vec<[i64; 5]> = records
        .iter()
        .filter(|r| r.spec == full)
        .map(|r| *r.reply.as_ref().unwrap())
        .collect();
    assert_eq!(full_replies.iter().filter(|r| r[0] == 1).count(), 50);
    for r in &full_replies[50..] {
        assert!(r[0] == 0 && r[2] == 0 && r[4] > 0, "{r:?}");
    }
    // TTLs: fixed and sliding windows keep their absolute expiry (MIGRATE
    // carries a relative TTL, so allow the transfer time).
    let mut drift = Vec::new();
    for (j, &i) in constant_ttl.iter().enumerate() {
        let after = pexpiretime(&mut cc, &specs[i].key);
        assert!(
            (after - exp_before[j]).abs() <= 100,
            "{}: expiry {} before, {} after",
            specs[i].key,
            exp_before[j],
            after
        );
        drift.push(after - exp_before[j]);
    }
    eprintln!("reshard: absolute expiry after - before (ms) per fixed/sliding key: {drift:?}");
    let now = cluster_time_ms(cluster.node(a.port));
    let mv = pexpiretime(&mut cc, &specs[1].key);
    assert!(
        mv > now + HOUR_MS - 5000 && mv <= now + HOUR_MS,
        "moving: {mv} vs now {now}"
    );
}

/// No call of the hitter failed (redirections are the client's business).
fn assert_no_call_failed(records: &[Record]) {
    let errs: Vec<String> = records
        .iter()
        .filter_map(|r| r.reply.as_ref().err().cloned())
        .collect();
    assert!(
        errs.is_empty(),
        "{} calls failed: {:?}",
        errs.len(),
        &errs[..errs.len().min(5)]
    );
}

/// Each of the `BIG` specs `count_specs` went 1, 2, 3, ... with no gap or
/// repeat, and the cluster still holds that count.
fn assert_counts_continued(
    records: &[Record],
    specs: &[HitSpec],
    count_specs: &[usize],
    cc: &mut impl ConnectionLike,
) {
    for &i in count_specs {
        let seq = counts(records, i);
        let expect: Vec<i64> = (1..=seq.len() as i64).collect();
        assert!(
            seq == expect,
            "{}: counts not consecutive: {:?}",
            specs[i].key,
            gaps(&seq)
        );
        let st = stats_of(cc, &specs[i]);
        assert_eq!(st[0].remaining, BIG - seq.len() as i64, "{}", specs[i].key);
    }
}

/// Describe where a sequence that should be 1, 2, 3, ... is not.
fn gaps(seq: &[i64]) -> Vec<(usize, i64, i64)> {
    seq.iter()
        .enumerate()
        .filter(|(i, c)| **c != *i as i64 + 1)
        .take(10)
        .map(|(i, c)| (i, *c, i as i64 + 1))
        .collect()
}

// ---------------------------------------------------------------------------
// 4, 5. Failover under use
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Failover {
    /// `CLUSTER FAILOVER` on the replica.
    Graceful,
    /// `kill -9` of the primary; the replica is promoted automatically.
    Kill9,
}

/// `CLUSTER FAILOVER` (the default, graceful mode) sent to a replica.
fn manual_failover(replica: &Node) {
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut replica.conn())
        .unwrap();
}

fn failover_under_use(kind: Failover) {
    let _serial = serial();
    let mut cluster = Cluster::start();
    let topo = cluster.topology();
    let prims = topo.primaries();
    assert_eq!(prims.len(), 3);
    let x = prims[0].clone();
    let r = topo.replicas_of(&x.id)[0].clone();
    let tag = tag_where("fo:", |s| x.owns(s));
    let mut specs = tagged_specs(&tag, &["fixed", "moving", "sliding"]);
    for k in keys_on(&topo, x.port, "hot:", 2) {
        specs.push(HitSpec::new(&k, "1000000/h", &[]));
    }
    let on_x = specs.len();
    for p in &prims[1..] {
        let k = keys_on(&topo, p.port, "far:", 1).remove(0);
        specs.push(HitSpec::new(&k, "1000000/h", &[]));
    }
    let full = 3;
    let count_x: Vec<usize> = (0..on_x).filter(|i| *i != full).collect();

    let hitter = Hitter::start(
        cluster.client(),
        specs.clone(),
        Duration::from_millis(2),
        Duration::from_secs(90),
    );
    // Over a second of steady use (and `full` exhausted) before the event.
    hitter.wait_rounds(300);
    let const_ttl = [0usize, 2, 4, 5];
    let exp_before: Vec<i64> = {
        let mut xc = cluster.node(x.port).conn();
        const_ttl
            .iter()
            .map(|&i| pexpiretime(&mut xc, &specs[i].key))
            .collect()
    };

    // The event.
    let t_event = match kind {
        Failover::Graceful => {
            let t = Instant::now();
            manual_failover(cluster.node(r.port));
            t
        }
        Failover::Kill9 => cluster.node_mut(x.port).kill9(),
    };
    // Promotion: the replica reports role:master. A manual failover that
    // cannot complete in 5 s is abandoned by Redis: ask again (bounded).
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    let mut asked = Instant::now();
    loop {
        let role = cluster.node(r.port).info("replication")["role"].clone();
        if role == "master" {
            break;
        }
        assert!(Instant::now() < deadline, "replica {} not promoted", r.port);
        if kind == Failover::Graceful && asked.elapsed() > Duration::from_secs(10) {
            eprintln!("CLUSTER FAILOVER did not complete in 10 s: asking again");
            manual_failover(cluster.node(r.port));
            asked = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let promoted_after = t_event.elapsed();
    cluster.wait_stable(CLUSTER_TIMEOUT);
    let stable_after = t_event.elapsed();
    let topo2 = cluster.topology();
    for s in &specs[..on_x] {
        assert_eq!(topo2.owner(slot_of(&s.key)).port, r.port, "{}", s.key);
    }
    let t_stable = Instant::now();
    hitter.wait_successes_after(t_stable, 50);
    let reconnects = hitter.reconnects() - 1;
    let records = hitter.stop();

    // Figures per key on the failed-over shard.
    let promoted = cluster.node(r.port);
    let window = Duration::from_millis(KILL_WINDOW_MS);
    let (mut ack_pre_all, mut persisted_all, mut lost_all, mut in_window_all, mut unknown_all) =
        (0i64, 0i64, 0i64, 0i64, 0i64);
    for &i in &count_x {
        let s = &specs[i];
        let mine: Vec<&Record> = records.iter().filter(|rec| rec.spec == i).collect();
        let ack_pre = mine
            .iter()
            .filter(|rec| rec.sent < t_event && rec.admitted())
            .count() as i64;
        let ack_post = mine
            .iter()
            .filter(|rec| rec.sent >= t_event && rec.admitted())
            .count() as i64;
        // Calls in flight at the event whose outcome the client never saw.
        let unknown = mine
            .iter()
            .filter(|rec| rec.sent < t_event && rec.recv >= t_event && rec.reply.is_err())
            .count() as i64;
        let in_window = mine
            .iter()
            .filter(|rec| rec.admitted() && rec.recv < t_event && t_event - rec.recv <= window)
            .count() as i64;
        let final_count = BIG - stats_of(&mut promoted.conn(), s)[0].remaining;
        let persisted = final_count - ack_post;
        let lost = ack_pre - persisted;
        eprintln!(
            "{kind:?} {}: acknowledged before {ack_pre}, persisted {persisted}, lost {lost} \
             (acknowledged in the last {KILL_WINDOW_MS} ms: {in_window}; outcome unknown: {unknown}; \
             after: {ack_post}, final count {final_count})",
            s.key
        );
        // Replies went 1, 2, ..., ack_pre, then on from what the promoted
        // node holds: persisted + 1, ..., final.
        let seq = counts(&records, i);
        let pre: Vec<i64> = mine
            .iter()
            .filter(|rec| rec.sent < t_event)
            .filter_map(|rec| rec.reply.as_ref().ok())
            .map(|r| BIG - r[2])
            .collect();
        let post: Vec<i64> = mine
            .iter()
            .filter(|rec| rec.sent >= t_event)
            .filter_map(|rec| rec.reply.as_ref().ok())
            .map(|r| BIG - r[2])
            .collect();
        assert_eq!(seq.len() as i64, ack_pre + ack_post);
        assert_eq!(pre, (1..=ack_pre).collect::<Vec<_>>(), "{}: before", s.key);
        assert_eq!(
            post,
            (persisted + 1..=final_count).collect::<Vec<_>>(),
            "{}: after the failover the count does not continue from {persisted}",
            s.key
        );
        // Never more than was sent.
        assert!(
            persisted <= ack_pre + unknown,
            "{}: {persisted} persisted, only {ack_pre} acknowledged + {unknown} unknown",
            s.key
        );
        match kind {
            Failover::Graceful => assert_eq!(lost, 0, "{}: graceful failover lost hits", s.key),
            Failover::Kill9 => assert!(
                lost <= in_window,
                "{}: lost {lost} > {in_window} acknowledged in the last {KILL_WINDOW_MS} ms",
                s.key
            ),
        }
        ack_pre_all += ack_pre;
        persisted_all += persisted;
        lost_all += lost;
        in_window_all += in_window;
        unknown_all += unknown;
    }
    let errs: usize = (0..specs.len()).map(|i| errors(&records, i).len()).sum();
    let far_errs: usize = (on_x..specs.len()).map(|i| errors(&records, i).len()).sum();
    eprintln!(
        "{kind:?} TOTAL on the failed-over shard ({} keys): acknowledged {ack_pre_all}, \
         persisted {persisted_all}, lost {lost_all}, bound {} ({}), outcome unknown {unknown_all}; \
         promoted after {promoted_after:?}, cluster stable after {stable_after:?}; \
         {errs} failed calls ({far_errs} on other shards), {reconnects} client rebuilds, {} calls",
        count_x.len(),
        if kind == Failover::Graceful {
            0
        } else {
            in_window_all
        },
        if kind == Failover::Graceful {
            "graceful".to_string()
        } else {
            format!("acknowledged in the last {KILL_WINDOW_MS} ms before the kill")
        },
        records.len()
    );

    // Other shards never noticed.
    for (i, s) in specs.iter().enumerate().skip(on_x) {
        let e = errors(&records, i);
        assert!(e.is_empty(), "{}: {e:?}", s.key);
        let seq = counts(&records, i);
        assert_eq!(seq, (1..=seq.len() as i64).collect::<Vec<_>>(), "{}", s.key);
    }
    if kind == Failover::Graceful {
        assert_eq!(errs, 0, "graceful failover: calls failed");
    }
    // The exhausted limit stays exhausted on the promoted node.
    let full_recs: Vec<&Record> = records.iter().filter(|rec| rec.spec == full).collect();
    assert_eq!(full_recs.iter().filter(|rec| rec.admitted()).count(), 50);
    let denied_after = full_recs
        .iter()
        .filter(|rec| rec.sent >= t_event)
        .filter_map(|rec| rec.reply.as_ref().ok())
        .inspect(|r| assert!(r[0] == 0 && r[2] == 0 && r[4] > 0, "{r:?}"))
        .count();
    assert!(denied_after >= 50);
    let st = stats_of(&mut promoted.conn(), &specs[full]);
    assert!(st[0].remaining == 0 && st[0].retry_after_ms > 0, "{st:?}");
    // Same absolute expiries on the promoted node (replicated as PXAT).
    let mut pc = promoted.conn();
    for (j, &i) in const_ttl.iter().enumerate() {
        let after = pexpiretime(&mut pc, &specs[i].key);
        assert_eq!(after, exp_before[j], "{}: expiry changed", specs[i].key);
    }
    let now = cluster_time_ms(promoted);
    let mv = pexpiretime(&mut pc, &specs[1].key);
    assert!(
        mv > now + HOUR_MS - 5000 && mv <= now + HOUR_MS,
        "moving: {mv} vs now {now}"
    );
}

#[test]
#[ignore = "starts a 6-node Redis Cluster: run with `make test-cluster`"]
fn graceful_failover_under_use_loses_nothing() {
    failover_under_use(Failover::Graceful);
}

#[test]
#[ignore = "starts a 6-node Redis Cluster: run with `make test-cluster`"]
fn kill9_failover_under_use_bounds_the_loss() {
    failover_under_use(Failover::Kill9);
}

// ---------------------------------------------------------------------------
// 6. Atomic slot migration (Valkey 9: CLUSTER MIGRATESLOTS)
// ---------------------------------------------------------------------------

/// The fields of the `CLUSTER GETSLOTMIGRATIONS` entry whose `slot_ranges`
/// is `ranges`, as text (None before the source lists it).
fn slot_migration(node: &Node, ranges: &str) -> Option<HashMap<String, String>> {
    let v: Value = redis::cmd("CLUSTER")
        .arg("GETSLOTMIGRATIONS")
        .query(&mut node.conn())
        .unwrap();
    let Value::Array(jobs) = v else {
        panic!("CLUSTER GETSLOTMIGRATIONS: {v:?}")
    };
    jobs.iter()
        .map(|job| {
            let Value::Array(kv) = job else {
                panic!("CLUSTER GETSLOTMIGRATIONS entry: {job:?}")
            };
            kv.chunks(2)
                .map(|p| (field_text(&p[0]), field_text(&p[1])))
                .collect::<HashMap<String, String>>()
        })
        .find(|m| m.get("slot_ranges").map(String::as_str) == Some(ranges))
}

fn field_text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Nil => String::new(),
        other => format!("{other:?}"),
    }
}

/// What a key holds on one node: its bytes and absolute expiry (ms).
fn value_and_expiry(con: &mut impl ConnectionLike, key: &str) -> (Vec<u8>, i64) {
    let v: Vec<u8> = redis::cmd("GET").arg(key).query(con).unwrap();
    (v, pexpiretime(con, key))
}

#[test]
#[ignore = "starts a 6-node Redis Cluster: run with `make test-cluster`"]
fn atomic_slot_migration_under_use_carries_every_key_whole() {
    let _serial = serial();
    let cluster = Cluster::start();
    let topo = cluster.topology();
    let a = topo.owner(0).clone();
    let kind = cluster.node(a.port).kind();
    let label = kind.label();
    let b = topo
        .primaries()
        .into_iter()
        .find(|p| p.id != a.id)
        .unwrap()
        .clone();
    const MOVE: usize = 300;
    let slots = a.first_slots(MOVE);
    let (first, last) = (slots[0], slots[MOVE - 1]);
    assert_eq!(
        last - first + 1,
        MOVE as u16,
        "A's lowest slots are one range"
    );
    let ranges = format!("{first}-{last}");
    let mut ac = cluster.node(a.port).conn();
    let migrate = redis::cmd("CLUSTER")
        .arg("MIGRATESLOTS")
        .arg("SLOTSRANGE")
        .arg(first)
        .arg(last)
        .arg("NODE")
        .arg(&b.id)
        .clone();
    if !kind.has_atomic_slot_migration() {
        // This server has no atomic slot migration: the premise of the
        // test, checked, is all there is to check here.
        let r: RedisResult<Value> = migrate.query(&mut ac);
        let e = r.expect_err("CLUSTER MIGRATESLOTS on a server without it");
        assert!(
            err_text(&e)
                .to_ascii_lowercase()
                .contains("unknown subcommand"),
            "{label}: {e}"
        );
        eprintln!("{label}: no CLUSTER MIGRATESLOTS; nothing more to check");
        return;
    }

    // Keys at rest in the moved slots: every strategy, several limits on
    // one key, and a moving-window log past 512 bytes (the SETRANGE path).
    let mut cc = cluster.connection();
    let moved: HashSet<u16> = slots.iter().copied().collect();
    let rest: Vec<String> = (0..)
        .map(|i| format!("rest:{i}"))
        .filter(|k| moved.contains(&slot_of(k)))
        .take(40)
        .collect();
    let strategies = ["fixed", "moving", "sliding", "gcra"];
    for (i, k) in rest.iter().enumerate() {
        let s = strategies[i % 4];
        for _ in 0..(1 + i % 7) {
            let w = hit_cmd("RL.HIT", k, "100/h;1000/d", &["STRATEGY", s]);
            query(&mut cc, &w).unwrap();
        }
    }
    // A moving-window key's log, in a window of its own (hits of the same
    // ms share an entry: one hit per ms).
    let big_log = rest[1].clone();
    for _ in 0..500 {
        let w = hit_cmd("RL.HIT", &big_log, "1000/2h", &["STRATEGY", "moving"]);
        query(&mut cc, &w).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let before: Vec<(Vec<u8>, i64)> = rest.iter().map(|k| value_and_expiry(&mut ac, k)).collect();
    assert!(
        before[1].0.len() > 512,
        "log of {} bytes",
        before[1].0.len()
    );

    // Keys in use throughout: one per strategy in a moved slot, the
    // exhausted `full` one, and one on each side that stays.
    let tag = tag_where("asm:", |s| moved.contains(&s));
    let mut specs = tagged_specs(&tag, &strategies);
    for p in [&a, &b] {
        let k = (0..)
            .map(|i| format!("stay:{i}"))
            .find(|k| {
                let s = slot_of(k);
                p.owns(s) && !moved.contains(&s)
            })
            .unwrap();
        specs.push(HitSpec::new(&k, "1000000/h", &[]));
    }
    let (gcra, full) = (3, 4);
    let count_specs: Vec<usize> = (0..specs.len())
        .filter(|i| *i != full && *i != gcra)
        .collect();
    let hitter = Hitter::start(
        cluster.client(),
        specs.clone(),
        Duration::from_millis(2),
        Duration::from_secs(90),
    );
    hitter.wait_rounds(80); // `full` is exhausted after 50

    // The migration, polled on the source until it has ended.
    let t0 = Instant::now();
    let rounds0 = hitter.rounds();
    let _: () = migrate
        .query(&mut ac)
        .unwrap_or_else(|e| panic!("{label}: CLUSTER MIGRATESLOTS: {e}"));
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    let job = loop {
        if let Some(job) = slot_migration(cluster.node(a.port), &ranges) {
            let state = job.get("state").cloned().unwrap_or_default();
            if state == "success" {
                break job;
            }
            assert!(
                !["failed", "cancelled", "canceled"].contains(&state.as_str()),
                "{label}: migration ended {state}: {job:?}"
            );
        }
        assert!(Instant::now() < deadline, "{label}: migration did not end");
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = t0.elapsed();
    let rounds_during = hitter.rounds() - rounds0;
    cluster.wait_stable(CLUSTER_TIMEOUT);
    let topo2 = cluster.topology();
    for s in &slots {
        assert_eq!(topo2.owner(*s).port, b.port, "slot {s} not on B");
    }
    hitter.wait_rounds(30);
    let records = hitter.stop();
    eprintln!(
        "{label}: CLUSTER MIGRATESLOTS {ranges} A:{} -> B:{} in {took:?} ({rounds_during} hit rounds meanwhile, {} calls in all); job {job:?}",
        a.port,
        b.port,
        records.len()
    );

    // No call failed: redirections were absorbed by the client.
    assert_no_call_failed(&records);
    // Counts continued 1, 2, 3, ... across the move, and B holds them.
    assert_counts_continued(&records, &specs, &count_specs, &mut cc);
    assert!(
        records
            .iter()
            .filter(|r| r.spec == gcra)
            .all(Record::admitted)
    );
    let full_admitted = records
        .iter()
        .filter(|r| r.spec == full && r.admitted())
        .count();
    assert_eq!(full_admitted, 50, "the exhausted limit stayed exhausted");

    // Keys at rest arrived whole on B: same bytes, same absolute expiry,
    // also on B's replica; A holds none of the moved slots' keys.
    let mut bc = cluster.node(b.port).conn();
    let b_replica = topo2.replicas_of(&b.id)[0].port;
    cluster.wait_replicas_synced();
    let mut rc = cluster.node(b_replica).conn();
    let _: () = redis::cmd("READONLY").query(&mut rc).unwrap();
    for (k, want) in rest.iter().zip(&before) {
        assert_eq!(value_and_expiry(&mut bc, k), *want, "{k} on B");
        assert_eq!(value_and_expiry(&mut rc, k), *want, "{k} on B's replica");
    }
    for s in [first, last, slot_of(&tag)] {
        let n: i64 = redis::cmd("CLUSTER")
            .arg("COUNTKEYSINSLOT")
            .arg(s)
            .query(&mut ac)
            .unwrap();
        assert_eq!(n, 0, "slot {s} still holds keys on A");
    }
    // And they keep working where they are now.
    for (i, k) in rest.iter().enumerate() {
        let s = strategies[i % 4];
        let w = hit_cmd("RL.HIT", k, "100/h;1000/d", &["STRATEGY", s]);
        let r = five(query(&mut cc, &w).unwrap()).unwrap();
        assert_eq!(r[0], 1, "{k}: {r:?}");
        let used = 1 + i as i64 % 7;
        assert_eq!(r[2], 100 - used - 1, "{k} ({s}): {r:?}");
    }
}
