"""What the benchmark measures: redis-benchmark runs, the limits library's
scripts replayed, the moving-window sweep and memory per id."""

from settings import *  # noqa: F401,F403 (the bench's settings and imports)
from servers import Server, log  # noqa: F401

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

    def __init__(self, label, kind, make_cmd, strategy=None, keys=None, prefill=None,
                 versus=None):
        self.label = label
        self.kind = kind  # incr | rl | limits | floor | cell
        self.make_cmd = make_cmd  # ident -> argv
        self.strategy = strategy
        self.keys = keys  # None: both key patterns; else only "hot" or "random"
        # ident -> argv run before the measured run, on the same keys (a
        # refund needs usage to give back)
        self.prefill = prefill
        # the label of a cell this one is compared to, same rounds (its
        # server time over that one's goes in the targets column)
        self.versus = versus

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
    # PENALTY that never triggers: the same never-denied hit with and without
    # it (a limit no run reaches), so that any cost of the option shows.
    never = "4294967295/m"
    # ("extra": no target applies; the ratio to `versus` is reported.)
    cells.append(Cell("RL.HIT fixed, never denied", "extra",
                      lambda i: ["RL.HIT", f"bench:nd:{i}", never, "STRATEGY", "fixed-window"],
                      "fixed-window"))
    cells.append(Cell("RL.HIT fixed, never denied, PENALTY 1h", "extra",
                      lambda i: ["RL.HIT", f"bench:ndp:{i}", never, "STRATEGY", "fixed-window",
                                 "PENALTY", "1h"], "fixed-window",
                      versus="RL.HIT fixed, never denied"))
    # RL.REFUND of 1 on keys that hold usage (prefilled with a large cost):
    # every call gives usage back and writes.
    for s, short in (("fixed-window", "fixed"), ("gcra", "gcra")):
        cells.append(Cell(
            f"RL.REFUND {short} (key holding usage)", "extra",
            (lambda s, short: lambda i: ["RL.REFUND", f"bench:rf{short}:{i}", "4294967295/h",
                                         "STRATEGY", s])(s, short),
            s,
            prefill=(lambda s, short: lambda i: ["RL.HIT", f"bench:rf{short}:{i}",
                                                 "4294967295/h", "STRATEGY", s,
                                                 "COST", "4000000000"])(s, short),
            versus=f"RL.HIT {short}"))
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
    if cell.prefill is not None:
        if keys == "random":
            # Three fills of the key space: about 95% of the ids hold usage.
            run_benchmark(server, cell.prefill(ident), 3 * RANDKEYS, 16, rand=True, flush=flush)
            flush = False
        else:
            server.r.execute_command(*cell.prefill(ident))
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
