#!/usr/bin/env python3
"""Benchmark of the redis-ratelimit module (`make bench`).

Starts its own redis-server processes on free 127.0.0.1 ports (temporary
--dir, stopped by pid at the end, also on Ctrl-C or failure), drives them
with redis-benchmark and reads the server time per call from
`INFO commandstats` after `CONFIG RESETSTAT`. Peers are run in interleaved
rounds (A B C, A B C, ...) and the tables report medians over the rounds.
Ratios to INCR are the median of the per-round ratios, INCR being measured
in the same round, on the same server, with the same key pattern and
pipeline depth.

Baselines: INCR, and the Python `limits` library (5.8) as it runs against
Redis: its Lua scripts, loaded at run time from the installed package, sent
through EVALSHA with the keys and arguments the library itself passes (they
are recorded by running the library once against the bench server).

Environment:
  BENCH_QUICK=1        short smoke run (2 rounds, fewer requests, N=20,000)
  BENCH_ROUNDS=n       number of interleaved rounds (default 5, quick 2)
  BENCH_MEM_N=n        ids for the memory table (default 100,000)
  BENCH_OUT=path       also write the report (markdown) to this file
  BENCH_JSON=path      also write every raw measurement as JSON
  RL_MODULE=path       the module (default target/release/libredis_ratelimit.so)
  REDIS_CELL_MODULE=path  a redis-cell .so: adds CL.THROTTLE rows
  RL_FLOOR_MODULE=path the API-calls-only floor (default: the bench_floor example,
                       built by make bench): adds FLOOR.HIT rows
  REDIS_SERVER, REDIS_BENCHMARK   binaries (default: from PATH); any server
                       the module supports (Valkey too: `make bench BENCH_SERVER=valkey9`)

This is a benchmark, not a test: it asserts no timing and exits 0 whether
targets are met or missed (it exits non-zero only when something fails to
run, e.g. a command returns an error).
"""

import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import redis
    import limits
    from limits.storage import RedisStorage
    from limits.strategies import (
        FixedWindowRateLimiter,
        MovingWindowRateLimiter,
        SlidingWindowCounterRateLimiter,
    )
except ImportError as e:  # pragma: no cover
    sys.exit(f"bench.py needs `limits` and `redis` (run it through `make bench`): {e}")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2" if QUICK else "5"))
MEM_N = int(os.environ.get("BENCH_MEM_N", "20000" if QUICK else "100000"))
N_P1 = 5_000 if QUICK else 20_000  # requests per run at -P 1
N_P16 = 25_000 if QUICK else 100_000  # requests per run at -P 16
N_SWEEP = 25_000 if QUICK else 100_000  # requests per run, moving-window sweep
CLIENTS = 50
RANDKEYS = 100_000
MODULE = os.path.abspath(
    os.environ.get("RL_MODULE", os.path.join(ROOT, "target/release/libredis_ratelimit.so"))
)
CELL = os.environ.get("REDIS_CELL_MODULE", "")
# The API-calls-only floor (bench/floor.rs, built by `make bench`).
FLOOR = os.path.abspath(os.environ.get(
    "RL_FLOOR_MODULE", os.path.join(ROOT, "target/release/examples/libbench_floor.so")))
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
REDIS_BENCHMARK = os.environ.get("REDIS_BENCHMARK", "redis-benchmark")

STRATEGIES = [  # (name in RL.*, short label)
    ("fixed-window", "fixed"),
    ("sliding-window-counter", "sliding"),
    ("moving-window", "moving"),
    ("gcra", "gcra"),
]
# Targets from issue 5, as ratios to INCR in the same run.
OPS_TARGET = {"fixed-window": 0.8, "sliding-window-counter": 0.7, "moving-window": 0.7}
USEC_TARGET = {
    "fixed-window": 2.5,
    "sliding-window-counter": 3.0,
    "moving-window": 4.0,
    "gcra": 2.5,
}
LIMITS_FACTOR = 3.0  # RL.HIT at least 3x cheaper (server us) than limits' script
RAND_DB = 1  # the database random-key runs use (emptied before each run)
CELL_FACTOR = 2.0  # RL.HIT gcra at least 2x cheaper (server us) than CL.THROTTLE
SWEEP_FACTOR = 1.25  # moving window: L=100,000 within 1.25x of L=100
MEM_TARGET = {"fixed-window": 1.10, "sliding-window-counter": 1.15, "moving-window": 1.15}
MEM_PER_HIT = 8.0
SWEEP_L = [10, 100, 1000, 100_000]
# Admitted-after-expiry cycles: window (ms) and cycles per round for each L.
SWEEP_ADM = {10: (10, 40 if QUICK else 100), 100: (20, 20 if QUICK else 50),
             1000: (50, 8 if QUICK else 20), 100_000: (2000, 1)}


# --------------------------------------------------------------------------
# servers


class Stop(Exception):
    pass


def _on_signal(signum, _frame):
    raise Stop(f"signal {signum}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LIVE = []  # every Server constructed, stopped in main()'s finally even if start failed


class Server:
    def __init__(self, name, aof, modules):
        LIVE.append(self)
        self.name = name
        self.aof = aof
        self.dir = tempfile.mkdtemp(prefix=f"rl-bench-{name}-")
        self.proc = None
        for _attempt in range(5):
            self.port = free_port()
            argv = [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--logfile", "redis.log", "--daemonize", "no",
                "--save", "", "--appendonly", "yes" if aof else "no",
                "--appendfsync", "everysec",
                # rewrites are done between rounds (BGREWRITEAOF), not during runs
                "--auto-aof-rewrite-percentage", "0",
            ]
            for m in modules:
                argv += ["--loadmodule", m]
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
            self.r = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)
            if self._wait_ready():
                return
            self.stop(keep_dir=True)
        raise RuntimeError(f"redis-server {name} did not start:\n{self.log_tail()}")

    def _wait_ready(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.r.ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.05)
        return False

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def stop(self, keep_dir=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # by pid: SIGTERM to this redis-server only
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def rewrite_aof(self):
        """Compacts the AOF between rounds so that no rewrite runs during a run."""
        if not self.aof:
            return
        while self.r.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.05)
        self.r.bgrewriteaof()
        time.sleep(0.05)
        while True:
            p = self.r.info("persistence")
            if not p["aof_rewrite_in_progress"] and not p["aof_rewrite_scheduled"]:
                break
            time.sleep(0.05)


# --------------------------------------------------------------------------
# one redis-benchmark run


RPS = re.compile(r"([0-9]+(?:\.[0-9]+)?|inf) requests per second")  # "inf" for tiny runs


def run_benchmark(server, cmd, n, pipeline, clients=CLIENTS, rand=False, reset=True,
                  flush=True):
    """Runs redis-benchmark; returns ops/s (calls and usec: `cmdstat`)."""
    if reset:
        server.r.config_resetstat()
    argv = [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(server.port),
            "-c", str(clients), "-P", str(pipeline), "-n", str(n), "-q"]
    if rand:
        # Random keys live in database 1, emptied before every run: each
        # command starts from the same empty keyspace and pays the same key
        # creation and hash-table growth (else whichever run crosses a table
        # size pays the rehash of the keys of all the runs before it).
        if flush:
            redis.Redis(host="127.0.0.1", port=server.port, db=RAND_DB).flushdb()
        argv += ["-r", str(RANDKEYS), "--dbnum", str(RAND_DB)]
    argv += [str(a) for a in cmd]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    out = res.stdout.replace("\r", "\n")
    found = RPS.findall(out)
    if res.returncode != 0 or not found or "error" in out.lower():
        raise RuntimeError(
            f"redis-benchmark failed ({res.returncode}): {' '.join(argv)}\n"
            f"{out[-600:]}\n{res.stderr[-600:]}"
        )
    return float(found[-1])


def cmdstat(server, name):
    st = server.r.info("commandstats").get(f"cmdstat_{name.lower()}")
    if not st:
        raise RuntimeError(f"no commandstats for {name} on {server.name}")
    if st.get("failed_calls", 0) or st.get("rejected_calls", 0):
        raise RuntimeError(f"{name} failed on {server.name}: {st}")
    return int(st["calls"]), int(st["usec"])


# --------------------------------------------------------------------------
# the limits library: its scripts and the exact commands it sends


def record_limits_commands(server):
    """Runs limits' three Redis strategies once against `server` and records
    every command its RedisStorage sends (keys and arguments as passed), so
    that the benchmark replays exactly those shapes. Returns
    {(strategy, method): [argv, ...]} with the identifier `IDX`."""
    storage = RedisStorage(f"redis://127.0.0.1:{server.port}")
    for attr in dir(RedisStorage):  # load every script so no NOSCRIPT round trip is recorded
        if attr.startswith("SCRIPT_"):
            server.r.script_load(getattr(RedisStorage, attr))
    client = storage.get_connection()
    recorded = []
    orig = client.execute_command

    def spy(*args, **kwargs):
        recorded.append(list(args))
        return orig(*args, **kwargs)

    client.execute_command = spy
    item = limits.parse("100/minute")
    calls = {}
    try:
        for label, cls in [("fixed-window", FixedWindowRateLimiter),
                           ("moving-window", MovingWindowRateLimiter),
                           ("sliding-window-counter", SlidingWindowCounterRateLimiter)]:
            lim = cls(storage)
            server.r.flushall()  # fixed and moving window use the same key name
            for method, fn in [("hit", lim.hit), ("test", lim.test),
                               ("stats", lim.get_window_stats)]:
                recorded.clear()
                fn(item, "IDX")
                calls[(label, method)] = [list(c) for c in recorded]
    finally:
        client.execute_command = orig
    server.r.flushall()
    return calls


def encode_arg(a):
    """As redis-py's Encoder sends it (floats by repr)."""
    if isinstance(a, bytes):
        return a.decode()
    if isinstance(a, float):
        return repr(a)
    return str(a)


def replay_args(argv, ident, t_shift):
    """One recorded command with `IDX` replaced and recorded timestamps
    (floats in seconds since the epoch) moved to the current time."""
    out = []
    for a in argv:
        if isinstance(a, float) and a > 1e9:
            a = a + t_shift
        s = encode_arg(a)
        out.append(s.replace("IDX", ident))
    return out


# --------------------------------------------------------------------------
# the measured cells


class Cell:
    """One peer of an interleaved group: a command (template) on a server."""

    def __init__(self, label, kind, make_cmd, strategy=None, keys=None):
        self.label = label
        self.kind = kind  # incr | rl | limits | floor | cell
        self.make_cmd = make_cmd  # ident -> argv
        self.strategy = strategy
        self.keys = keys  # None: both key patterns; else only "hot" or "random"

    def runs_on(self, keys):
        return self.keys is None or self.keys == keys


def hit_cells(limits_calls, rec_time):
    def limits_cmd(strategy, method):
        argv = limits_calls[(strategy, method)]
        if len(argv) != 1:
            raise RuntimeError(f"limits {strategy} {method} sent {argv}, expected one command")
        # fixed and moving window share key names in limits: one id space each
        short = dict(STRATEGIES)[strategy]
        return lambda ident: replay_args(argv[0], f"{short}-{ident}", time.time() - rec_time)

    cells = [Cell("INCR", "incr", lambda i: ["INCR", f"bench:incr:{i}"])]
    for s, short in STRATEGIES:
        cells.append(Cell(f"RL.HIT {short}", "rl",
                          (lambda s, short: lambda i: ["RL.HIT", f"bench:{short}:{i}", "100/m",
                                                       "STRATEGY", s])(s, short), s))
    for s, short in STRATEGIES[:3]:
        cells.append(Cell(f"limits {short} hit (EVALSHA)", "limits", limits_cmd(s, "hit"), s))
    if os.path.exists(FLOOR):
        cells.append(Cell("FLOOR.HIT (API calls only)", "floor",
                          lambda i: ["FLOOR.HIT", f"bench:floor:{i}"]))
        # On the hot key all but the first hits of a window are denied: the
        # floor of that path (first call admitted, then read-and-reply only).
        cells.append(Cell("FLOOR.DENY (API calls only)", "floor",
                          lambda i: ["FLOOR.DENY", f"bench:floordeny:{i}"], keys="hot"))
    if CELL:
        cells.append(Cell("CL.THROTTLE 99 100 60 1", "cell",
                          lambda i: ["CL.THROTTLE", f"bench:cell:{i}", "99", "100", "60", "1"]))
    return cells


def read_cells(limits_calls, rec_time):
    def limits_cmd(strategy, method):
        argv = limits_calls[(strategy, method)]
        # fixed and moving window share key names in limits: one id space each
        short = dict(STRATEGIES)[strategy]
        return lambda ident: replay_args(argv[0], f"{short}-{ident}", time.time() - rec_time)

    cells = [Cell("INCR", "incr", lambda i: ["INCR", f"bench:incr:{i}"])]
    for cmd in ("RL.TEST", "RL.STATS"):
        for s, short in STRATEGIES:
            cells.append(Cell(f"{cmd} {short}", "rl",
                              (lambda cmd, s, short: lambda i: [cmd, f"bench:{short}:{i}", "100/m",
                                                                "STRATEGY", s])(cmd, s, short), s))
    # limits' test(): GET for the fixed window, the read-only scripts for the others
    # (get_window_stats sends the same script; for the fixed window it is GET + TTL)
    cells.append(Cell("limits fixed test (GET)", "limits", limits_cmd("fixed-window", "test"),
                      "fixed-window"))
    cells.append(Cell("limits sliding test/stats (EVALSHA)", "limits",
                      limits_cmd("sliding-window-counter", "test"), "sliding-window-counter"))
    cells.append(Cell("limits moving test/stats (EVALSHA)", "limits",
                      limits_cmd("moving-window", "test"), "moving-window"))
    return cells


def measure(server, cell, keys, pipeline, flush=True):
    ident = "hot" if keys == "hot" else "__rand_int__"
    cmd = cell.make_cmd(ident)
    n = N_P1 if pipeline == 1 else N_P16
    ops = run_benchmark(server, cmd, n, pipeline, rand=(keys == "random"), flush=flush)
    calls, usec = cmdstat(server, cmd[0])
    return {"ops": ops, "calls": calls, "usec": usec, "usec_per_call": usec / calls}


# --------------------------------------------------------------------------
# moving-window sweep over L


def sweep_deny_key(L):
    return f"bench:mwdeny:{L}", f"{L}/h"


def sweep_adm_key(L):
    w, _ = SWEEP_ADM[L]
    return f"bench:mwadm:{L}", f"{L}/{w}ms"


def sweep_setup(server):
    """Fills, for each L, one key to its limit (window 1 hour) with cost-1 hits,
    and runs one unmeasured admitted cycle on the short-window keys."""
    for L in SWEEP_L:
        key, lim = sweep_deny_key(L)
        run_benchmark(server, ["RL.HIT", key, lim, "STRATEGY", "moving-window"], L, 10,
                      clients=1, reset=False)
        st = rl_stats(server, key, lim)
        if st["remaining"] != 0:
            raise RuntimeError(f"sweep key {key} not full after {L} hits: {st}")
        key, lim = sweep_adm_key(L)
        # A fixed-window state (1/h) in the same key keeps the key alive while all
        # moving-window entries have expired; RL.HIT ... moving-window reads only
        # its own state.
        server.r.execute_command("RL.HIT", key, "1/h", "STRATEGY", "fixed-window")
        run_benchmark(server, ["RL.HIT", key, lim, "STRATEGY", "moving-window"], L, 10,
                      clients=1, reset=False)
    server.last_adm_end = time.time()


def rl_stats(server, key, lim):
    rep = server.r.execute_command("RL.STATS", key, lim, "STRATEGY", "moving-window")
    flat = rep[0]
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def sweep_deny(server, L, cmd):
    key, lim = sweep_deny_key(L)
    ops = run_benchmark(server, [cmd, key, lim, "STRATEGY", "moving-window"], N_SWEEP, 16)
    calls, usec = cmdstat(server, cmd)
    st = rl_stats(server, key, lim)
    if st["remaining"] != 0:  # the key must still be full: every hit was denied
        raise RuntimeError(f"sweep key {key} no longer full: {st}")
    return {"ops": ops, "calls": calls, "usec": usec, "usec_per_call": usec / calls}


def sweep_admitted(server, L):
    """Cycles of L cost-1 hits on a key whose L previous hits have all expired:
    every hit is admitted, and the first of each cycle finds a full log of
    expired entries. Server time per call over all cycles."""
    key, lim = sweep_adm_key(L)
    w, cycles = SWEEP_ADM[L]
    server.r.config_resetstat()
    full = 0
    for _ in range(cycles):
        wait = server.last_adm_end + w / 1000 + 0.003 - time.time()
        if wait > 0:
            time.sleep(wait)
        if not server.r.exists(key):
            raise RuntimeError(f"admitted sweep: key {key} expired")
        run_benchmark(server, ["RL.HIT", key, lim, "STRATEGY", "moving-window"], L, 10,
                      clients=1, reset=False)
        server.last_adm_end = time.time()
        st = rl_stats(server, key, lim)
        full += st["remaining"] == 0
    calls, usec = cmdstat(server, "RL.HIT")
    if calls != L * cycles:
        raise RuntimeError(f"admitted sweep L={L}: {calls} calls, expected {L * cycles}")
    return {"ops": None, "calls": calls, "usec": usec, "usec_per_call": usec / calls,
            "cycles": cycles, "full_at_cycle_end": full}


# --------------------------------------------------------------------------
# memory


def settle_used_memory(r):
    last = r.info("memory")["used_memory"]
    for _ in range(30):
        time.sleep(0.2)
        cur = r.info("memory")["used_memory"]
        if cur == last:
            return cur
        last = cur
    return last


def measure_memory(server, n):
    r = server.r
    now = time.time
    sha = {name: r.script_load(getattr(RedisStorage, attr)) for name, attr in [
        ("incr_expire", "SCRIPT_INCR_EXPIRE"),
        ("acquire_moving", "SCRIPT_ACQUIRE_MOVING_WINDOW"),
        ("acquire_sliding", "SCRIPT_ACQUIRE_SLIDING_WINDOW"),
    ]}
    storage_prefix = RedisStorage.PREFIX
    item = limits.parse("100/minute")

    def lib_key(i):  # the library's own key name for id user:i
        return f"{storage_prefix}:{item.key_for(f'user:{i}')}"

    def k(i):
        return f"rl:user:{i}"

    def rl(strategy, hits=1, limit="100/m", extra=()):
        def fill(p, i):
            for _ in range(hits):
                p.execute_command("RL.HIT", k(i), limit, "STRATEGY", strategy, *extra)
        return fill

    def counter(p, i):
        p.incr(k(i))
        p.pexpire(k(i), 60000)

    def lim_fixed(keyf):
        return lambda p, i: p.evalsha(sha["incr_expire"], 1, keyf(i), 60, 1)

    def lim_moving(keyf, hits=1):
        def fill(p, i):
            for _ in range(hits):  # as acquire_entry: [timestamp, limit, expiry, amount]
                p.evalsha(sha["acquire_moving"], 1, keyf(i), now(), 100, 60, 1)
        return fill

    def lim_sliding(prefix, shifted):
        def fill(p, i):
            cur, prev = f"{prefix}{{{k(i)}}}", f"{prefix}{{{k(i)}}}/-1"
            p.evalsha(sha["acquire_sliding"], 2, prev, cur, 100, 60, 1)
            if shifted:  # what the script does when the current window ends
                p.rename(cur, prev)
                p.set(cur, 0, px=120000)
                p.evalsha(sha["acquire_sliding"], 2, prev, cur, 100, 60, 1)
        return fill

    def fill_and_measure(fn, count):
        r.flushall()
        before = settle_used_memory(r)
        p = r.pipeline(transaction=False)
        for i in range(count):
            fn(p, i)
            if len(p) >= 2000:
                p.execute()
        p.execute()
        after = settle_used_memory(r)
        return (after - before) / count, r.dbsize()

    rows = []

    def add(label, fn, count, strategy=None, hits=1, note=""):
        per, keys = fill_and_measure(fn, count)
        rows.append({"layout": label, "per_id": per, "keys": keys, "ids": count,
                     "strategy": strategy, "hits": hits, "note": note})
        return per

    hits_m = 100
    m = max(n // hits_m, 100)
    add("INCR + PEXPIRE counter key", counter, n, "counter")
    add("RL.HIT fixed-window", rl("fixed-window"), n, "fixed-window")
    add("RL.HIT sliding-window-counter", rl("sliding-window-counter"), n,
        "sliding-window-counter")
    # one cost-1 GCRA hit at 100/m lives T = 0.6 s, less than the fill takes:
    # COST 100 keeps the key 60 s; the state (one TAT) has the same size
    add("RL.HIT gcra (COST 100)", rl("gcra", extra=("COST", "100")), n, "gcra")
    add("RL.HIT moving-window, 1 hit", rl("moving-window"), n, "moving-window")
    add(f"RL.HIT moving-window, {hits_m} hits", rl("moving-window", hits_m), m,
        "moving-window", hits_m)
    add("RL.HIT moving-window, 1 key x 100,000 hits",
        lambda p, i: [p.execute_command("RL.HIT", "rl:one", "100000/h", "STRATEGY",
                                        "moving-window") for _ in range(100_000)],
        1, "moving-window", 100_000)
    add("limits fixed (incr_expire.lua)", lim_fixed(k), n, "limits-fixed")
    add("limits sliding, first window (1 key)", lim_sliding("", False), n, "limits-sliding")
    add("limits sliding, after a shift (2 keys)", lim_sliding("", True), n, "limits-sliding")
    add("limits moving, 1 hit", lim_moving(k), n, "limits-moving")
    add(f"limits moving, {hits_m} hits", lim_moving(k, hits_m), m, "limits-moving", hits_m)
    add("limits moving, 1 key x 100,000 hits",
        lambda p, i: [p.evalsha(sha["acquire_moving"], 1, "rl:one", now(), 100_000, 3600, 1)
                      for _ in range(100_000)], 1, "limits-moving", 100_000)
    add("limits fixed, library's key names", lim_fixed(lib_key), n, "limits-fixed",
        note="LIMITS:LIMITER/user:<i>/100/1/minute")
    r.flushall()
    return rows


# --------------------------------------------------------------------------
# reporting


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def verdict(ok):
    return "PASS" if ok else "MISS"


# The summary's settings: (keys, pipeline), persistence off.
SUMMARY_SETTINGS = [("random", 16), ("hot", 1)]


def summary_table(env, rows):
    """One small table per run: each peer's server time and its ratio to
    INCR, the same round's INCR, on the server this run measured."""
    out = []
    w = out.append
    w(f"## Summary: {env['server']}\n")
    w("Admitting hits, persistence off, medians of per-round figures: server time per "
      "call (us) and its ratio to INCR measured in the same round (`xINCR`). Random "
      f"keys: `-r {RANDKEYS}`, mostly new keys; hot key: one key, so after the first "
      "100 hits of a minute RL.HIT denies (FLOOR.DENY is that path's floor).\n")
    head = "| command |"
    sep = "|---|"
    for keys, P in SUMMARY_SETTINGS:
        head += f" {keys} -P {P} us | xINCR |"
        sep += "---|---|"
    w(head)
    w(sep)
    by = {(r["label"], r["keys"], r["P"]): r for r in rows
          if r["group"] == "hit" and r["persist"] == "off"}
    labels = []
    for r in rows:
        if r["group"] == "hit" and r["persist"] == "off" and r["label"] not in labels:
            labels.append(r["label"])
    for label in labels:
        line = f"| {label} |"
        for keys, P in SUMMARY_SETTINGS:
            r = by.get((label, keys, P))
            line += (" - | - |" if r is None else
                     f" {fmt(r['usec'], '.2f')} | {fmt(r['ratio_usec'], '.2f')} |")
        w(line)
    return "\n".join(out) + "\n\n"


def report(env, results, mem_rows, targets):
    out = [summary_table(env, results["main"])]
    w = out.append
    w("## Throughput and server time per call\n")
    w(f"Medians over {ROUNDS} interleaved rounds. {CLIENTS} clients; random keys: "
      f"`-r {RANDKEYS}` (`__rand_int__`); requests per run: {N_P1:,} at -P 1, "
      f"{N_P16:,} at -P 16. `xINCR` columns: median of the per-round ratios to INCR "
      "measured in the same round with the same keys, pipeline and persistence. "
      "`peer/RL`: the limits script's server time divided by RL.HIT's for the same "
      "strategy (target >= 3); on the gcra rows, redis-cell's CL.THROTTLE server time "
      "divided by RL.HIT gcra's (target >= 2, when REDIS_CELL_MODULE is set).\n")
    hdr = ("| command | keys | -P | persistence | ops/s | xINCR ops/s | us/call | "
           "xINCR us | peer/RL us | targets |")
    w(hdr)
    w("|" + "---|" * 10)
    for row in results["main"]:
        w("| {label} | {keys} | {P} | {persist} | {ops} | {rops} | {us} | {rus} | {vs} | {t} |"
          .format(label=row["label"], keys=row["keys"], P=row["P"], persist=row["persist"],
                  ops=fmt(row["ops"], ",.0f"), rops=fmt(row["ratio_ops"], ".2f"),
                  us=fmt(row["usec"], ".2f"), rus=fmt(row["ratio_usec"], ".2f"),
                  vs=fmt(row.get("vs_limits"), ".1f"), t=row.get("targets", "")))
    w("\n## Moving window across limits (one key filled to its limit)\n")
    w("`denied`/`RL.STATS`: key holding L live cost-1 hits (window 1 h), "
      f"{CLIENTS} clients, -P 16, {N_SWEEP:,} requests. `admitted after expiry`: "
      "cycles of L hits (1 client, -P 10) on a key whose previous L hits have all "
      "expired (window W: 10 ms, 20 ms, 50 ms, 2 s for L = 10, 100, 1,000, 100,000), "
      "so every hit is admitted and the first of each cycle meets a full log of "
      "expired entries; its ops/s is not meaningful (short runs) and not shown. "
      "`xL=100` is the median per-round ratio to L=100 in the same case; "
      "`xINCR us` is to INCR on one hot key at -P 16 on the same server in the same round.\n")
    w("| case | L | persistence | ops/s | us/call | xINCR us | xL=100 us | target |")
    w("|" + "---|" * 8)
    for row in results["sweep"]:
        w("| {case} | {L:,} | {persist} | {ops} | {us} | {ri} | {rl} | {t} |".format(
            case=row["case"], L=row["L"], persist=row["persist"], ops=fmt(row["ops"], ",.0f"),
            us=fmt(row["usec"], ".2f"), ri=fmt(row["ratio_incr"], ".2f"),
            rl=fmt(row["ratio_L100"], ".2f"), t=row.get("targets", "")))
    w("\n## Memory per limited id\n")
    w(f"`used_memory` delta / number of ids, N = {MEM_N:,} ids per layout (each filled "
      "into an emptied database, pipelined), key `rl:user:<i>` for every layout "
      "(limits' own layout, with the id in place of the library's key name; the "
      "last row uses the library's real key names). A limit of 100/minute. "
      "`per hit`: extra bytes per stored hit over the 1-hit layout.\n")
    w("| layout | ids | keys | bytes per id | x counter | bytes per stored hit | target |")
    w("|" + "---|" * 7)
    for row in mem_rows:
        w("| {layout} | {ids:,} | {keys:,} | {per:,.1f} | {x} | {ph} | {t} |".format(
            layout=row["layout"], ids=row["ids"], keys=row["keys"], per=row["per_id"],
            x=fmt(row.get("x_counter"), ".2f"), ph=fmt(row.get("per_hit"), ".2f"),
            t=row.get("targets", "")))
    w("\n## Targets\n")
    passed = sum(1 for t in targets if t[1])
    w(f"{passed} of {len(targets)} target checks met.\n")
    for name, ok, detail in targets:
        w(f"- {verdict(ok)}: {name}: {detail}")
    w("\n## Environment\n")
    for k_, v in env.items():
        w(f"- {k_}: {v}")
    return "\n".join(out) + "\n"


def summarize(raw, cells_hit, cells_read):
    """Medians and per-round ratios for the main table; target checks."""
    main, targets = [], []
    configs = []
    for persist in ("off", "aof"):
        for keys in ("hot", "random"):
            for P in (1, 16):
                configs.append((persist, keys, P, "hit", cells_hit))
    for keys in ("hot", "random"):
        for P in (1, 16):
            configs.append(("off", keys, P, "read", cells_read))
    for persist, keys, P, group, cells in configs:
        def rounds_of(label):
            return raw["main"][(group, persist, keys, P, label)]
        incr = rounds_of("INCR")
        cells = [c for c in cells if c.runs_on(keys)]
        per = {}
        for cell in cells:
            rs = rounds_of(cell.label)
            per[cell.label] = {
                "ops": med([x["ops"] for x in rs]),
                "usec": med([x["usec_per_call"] for x in rs]),
                "ratio_ops": med([x["ops"] / i["ops"] for x, i in zip(rs, incr)]),
                "ratio_usec": med([x["usec_per_call"] / i["usec_per_call"]
                                   for x, i in zip(rs, incr)]),
                "rounds": rs,
            }
        for cell in cells:
            if group == "read" and cell.label == "INCR":
                continue  # shown in the hit group; this one only serves as the reference
            p = per[cell.label]
            row = {"label": cell.label, "keys": keys, "P": P,
                   "persist": "appendonly everysec" if persist == "aof" else "off",
                   "group": group, **{k: v for k, v in p.items() if k != "rounds"}}
            checks = []
            s = cell.strategy
            where = f"{keys} keys, -P {P}, persistence {row['persist']}"
            if group == "hit" and cell.kind == "rl":
                if P == 16 and keys == "random" and s in OPS_TARGET:
                    ok = p["ratio_ops"] >= OPS_TARGET[s]
                    checks.append(f"ops>={OPS_TARGET[s]} {verdict(ok)}")
                    targets.append((f"RL.HIT {s} throughput ({where})", ok,
                                    f"{p['ratio_ops']:.2f}x INCR (target >= {OPS_TARGET[s]}x)"))
                ok = p["ratio_usec"] <= USEC_TARGET[s]
                checks.append(f"us<={USEC_TARGET[s]} {verdict(ok)}")
                targets.append((f"RL.HIT {s} server time ({where})", ok,
                                f"{p['ratio_usec']:.2f}x INCR (target <= {USEC_TARGET[s]}x)"))
                # Peers measured in the same rounds: limits' script for the
                # same strategy; for gcra also redis-cell's CL.THROTTLE.
                peers = [(c, "limits/RL", LIMITS_FACTOR, f"RL.HIT {s} vs limits' script")
                         for c in cells if c.kind == "limits" and c.strategy == s]
                if s == "gcra":
                    peers += [(c, "cell/RL", CELL_FACTOR, "RL.HIT gcra vs redis-cell CL.THROTTLE")
                              for c in cells if c.kind == "cell"]
                for peer, short, factor, what in peers:
                    pr = rounds_of(peer.label)
                    vs = med([q["usec_per_call"] / x["usec_per_call"]
                              for q, x in zip(pr, p["rounds"])])
                    row["vs_limits"] = vs
                    ok = vs >= factor
                    checks.append(f"{short}>={factor:.0f} {verdict(ok)}")
                    detail = f"{vs:.1f}x cheaper (target >= {factor:.0f}x)"
                    # What the API calls alone allow here: the peer against the
                    # floor of this path (denied on the hot key, admitted on
                    # random keys), in the same rounds.
                    floor = next((c for c in cells if c.kind == "floor" and
                                  c.label.startswith("FLOOR.DENY" if keys == "hot"
                                                     else "FLOOR.HIT")), None)
                    if peer.kind == "cell" and floor is not None:
                        fr = rounds_of(floor.label)
                        fv = med([q["usec_per_call"] / f["usec_per_call"]
                                  for q, f in zip(pr, fr)])
                        detail += f"; {floor.label.split()[0]} alone: {fv:.1f}x"
                    targets.append((f"{what} ({where})", ok, detail))
            row["targets"] = "; ".join(checks)
            main.append(row)
    return main, targets


def summarize_sweep(raw, targets):
    rows = []
    for persist in ("off", "aof"):
        incr = raw["sweep_incr"][persist]
        for case in ("RL.HIT denied", "RL.HIT admitted after expiry", "RL.STATS"):
            ref = raw["sweep"][(persist, case, 100)]
            for L in SWEEP_L:
                rs = raw["sweep"][(persist, case, L)]
                row = {
                    "case": case, "L": L,
                    "persist": "appendonly everysec" if persist == "aof" else "off",
                    "ops": med([x["ops"] for x in rs]),
                    "usec": med([x["usec_per_call"] for x in rs]),
                    "ratio_incr": med([x["usec_per_call"] / i["usec_per_call"]
                                       for x, i in zip(rs, incr)]),
                    "ratio_L100": med([x["usec_per_call"] / y["usec_per_call"]
                                       for x, y in zip(rs, ref)]),
                }
                if case.startswith("RL.HIT admitted"):
                    row["full"] = sum(x["full_at_cycle_end"] for x in rs)
                    row["cycles"] = sum(x["cycles"] for x in rs)
                if L == 100_000:
                    ok = row["ratio_L100"] <= SWEEP_FACTOR
                    row["targets"] = f"<={SWEEP_FACTOR}x L=100 {verdict(ok)}"
                    targets.append((f"moving window {case}, L=100,000 vs L=100 "
                                    f"(persistence {row['persist']})", ok,
                                    f"{row['ratio_L100']:.2f}x (target <= {SWEEP_FACTOR}x)"))
                rows.append(row)
    return rows


def summarize_memory(rows, targets):
    counter = next(r for r in rows if r["strategy"] == "counter")["per_id"]
    one = {}
    for row in rows:
        row["x_counter"] = row["per_id"] / counter
        if row["hits"] == 1 and row["strategy"] in ("moving-window", "limits-moving"):
            one[row["strategy"]] = row["per_id"]
    for row in rows:
        s = row["strategy"]
        if row["hits"] > 1:
            if row["hits"] == 100_000:
                row["per_hit"] = row["per_id"] / row["hits"]
            else:
                row["per_hit"] = (row["per_id"] - one[s]) / (row["hits"] - 1)
        if s in MEM_TARGET:
            allowed = MEM_TARGET[s] * counter
            if s == "moving-window":
                allowed += MEM_PER_HIT * row["hits"]
                tname = f"<= {MEM_TARGET[s]}x counter + {MEM_PER_HIT:.0f} B/hit"
            else:
                tname = f"<= {MEM_TARGET[s]}x counter"
            ok = row["per_id"] <= allowed
            row["targets"] = f"{tname} ({allowed:,.0f} B) {verdict(ok)}"
            targets.append((f"memory {row['layout']}", ok,
                            f"{row['per_id']:,.1f} B per id = {row['x_counter']:.2f}x counter "
                            f"({counter:,.1f} B); allowed {allowed:,.0f} B"))


def environment():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"
    lscpu = sh("lscpu | grep -E '^(Model name|CPU\\(s\\)|Thread|Core|Hypervisor)'")
    return {
        "date (UTC)": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "nproc": sh("nproc"),
        "cpu": "; ".join(" ".join(line.split()) for line in lscpu.splitlines()),
        "memory": sh("free -g | awk '/Mem:/{print $2\" GiB\"}'"),
        "kernel": platform.release(),
        "redis-server": sh(f"{REDIS_SERVER} --version"),
        "server": server_label(),
        "redis-benchmark": sh(f"{REDIS_BENCHMARK} --version"),
        "python": platform.python_version(),
        "limits": limits.__version__,
        "redis-py": redis.__version__,
        "module": f"{MODULE} (built {time.strftime('%Y-%m-%d %H:%M', time.gmtime(os.path.getmtime(MODULE)))} UTC)",
        "git": sh(f"git -C {ROOT} describe --always --dirty"),
        "redis-cell": CELL or "not set (REDIS_CELL_MODULE), CL.THROTTLE not measured",
        "floor module": FLOOR if os.path.exists(FLOOR) else "not built, FLOOR.HIT not measured",
        "load average at start": sh("cut -d' ' -f1-3 /proc/loadavg"),
    }


def server_label():
    """'Valkey 9.1.2', 'Redis 7.0.15': from the binary's --version line."""
    try:
        line = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True,
                              timeout=10).stdout
    except OSError:
        return REDIS_SERVER
    m = re.match(r"(\w+) server v=(\S+)", line)
    return f"{m.group(1)} {m.group(2)}" if m else line.strip()


# --------------------------------------------------------------------------


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def main():
    if not os.path.exists(MODULE):
        sys.exit(f"module not found: {MODULE} (run cargo build --release)")
    for b in (REDIS_SERVER, REDIS_BENCHMARK):
        if not shutil.which(b):
            sys.exit(f"{b} not found (Debian: apt-get install redis-server redis-tools)")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in background
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    env = environment()
    servers = []
    t0 = time.time()
    # Load copies: a concurrent `cargo build` must not swap the .so under a running server.
    mod_dir = tempfile.mkdtemp(prefix="rl-bench-modules-")
    try:
        modules = []
        extra = [p for p in (FLOOR, os.path.abspath(CELL) if CELL else "") if p and os.path.exists(p)]
        for src in [MODULE] + extra:
            dst = os.path.join(mod_dir, os.path.basename(src))
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o755)  # redis-server refuses modules without execute permission
            modules.append(dst)
        with open(modules[0], "rb") as f:
            env["module sha256"] = hashlib.sha256(f.read()).hexdigest()[:16]
        off = Server("off", False, modules)
        aof = Server("aof", True, modules)
        servers = [off, aof]
        by = {"off": off, "aof": aof}
        rec_time = time.time()
        limits_calls = record_limits_commands(off)
        for srv in servers:
            for attr in dir(RedisStorage):
                if attr.startswith("SCRIPT_"):
                    srv.r.script_load(getattr(RedisStorage, attr))
        env["limits commands replayed"] = "; ".join(
            f"{s} {m}: " + " / ".join(" ".join(encode_arg(a) for a in c) for c in cmds)
            for (s, m), cmds in sorted(limits_calls.items()))
        cells_hit = hit_cells(limits_calls, rec_time)
        cells_read = read_cells(limits_calls, rec_time)
        for srv in servers:
            sweep_setup(srv)
        raw = {"main": {}, "sweep": {}, "sweep_incr": {"off": [], "aof": []}}
        for rnd in range(ROUNDS):
            log(f"round {rnd + 1}/{ROUNDS} ({time.time() - t0:.0f} s)")
            for srv in servers:
                srv.rewrite_aof()
            for persist in ("off", "aof"):
                for keys in ("hot", "random"):
                    for P in (1, 16):
                        for cell in cells_hit:
                            if not cell.runs_on(keys):
                                continue
                            m = measure(by[persist], cell, keys, P)
                            raw["main"].setdefault(("hit", persist, keys, P, cell.label),
                                                   []).append(m)
            for keys in ("hot", "random"):
                for P in (1, 16):
                    for cell in cells_read:
                        fill = next((h for h in cells_hit if h.kind == cell.kind
                                     and h.strategy == cell.strategy), None)
                        if keys == "random" and fill is not None:
                            # A read runs on the keys the same strategy's hits
                            # wrote: an emptied database filled by one hit run,
                            # then a pause so that the server's active rehashing
                            # finishes (else the read run pays for it).
                            run_benchmark(off, fill.make_cmd("__rand_int__"), N_P16, 16,
                                          rand=True)
                            time.sleep(1)
                        m = measure(off, cell, keys, P, flush=(fill is None))
                        raw["main"].setdefault(("read", "off", keys, P, cell.label),
                                               []).append(m)
            for persist in ("off", "aof"):
                srv = by[persist]
                ops = run_benchmark(srv, ["INCR", "bench:incr:hot"], N_SWEEP, 16)
                calls, usec = cmdstat(srv, "INCR")
                raw["sweep_incr"][persist].append(
                    {"ops": ops, "calls": calls, "usec": usec, "usec_per_call": usec / calls})
                for case, cmd in (("RL.HIT denied", "RL.HIT"), ("RL.STATS", "RL.STATS")):
                    for L in SWEEP_L:
                        raw["sweep"].setdefault((persist, case, L), []).append(
                            sweep_deny(srv, L, cmd))
                for L in SWEEP_L:
                    raw["sweep"].setdefault((persist, "RL.HIT admitted after expiry", L),
                                            []).append(sweep_admitted(srv, L))
        log(f"memory, N = {MEM_N:,} ({time.time() - t0:.0f} s)")
        aof.stop()
        mem_rows = measure_memory(off, MEM_N)
        env["load average at end"] = open("/proc/loadavg").read().split()[:3]
        env["bench wall time"] = f"{time.time() - t0:.0f} s"
        env["rounds"] = ROUNDS
        main_rows, targets = summarize(raw, cells_hit, cells_read)
        sweep_rows = summarize_sweep(raw, targets)
        summarize_memory(mem_rows, targets)
        text = report(env, {"main": main_rows, "sweep": sweep_rows}, mem_rows, targets)
        print(text)
        if os.environ.get("BENCH_OUT"):
            with open(os.environ["BENCH_OUT"], "w") as f:
                f.write(text)
        if os.environ.get("BENCH_JSON"):
            with open(os.environ["BENCH_JSON"], "w") as f:
                json.dump({"env": env,
                           "main": {" | ".join(map(str, k)): v for k, v in raw["main"].items()},
                           "sweep": {" | ".join(map(str, k)): v for k, v in raw["sweep"].items()},
                           "sweep_incr": raw["sweep_incr"], "memory": mem_rows,
                           "targets": targets}, f, indent=1, default=str)
    except (KeyboardInterrupt, Stop) as e:
        log(f"interrupted ({str(e) or 'Ctrl-C'}): stopping the bench servers")
        return 130
    finally:
        for srv in LIVE:
            srv.stop()
        shutil.rmtree(mod_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
