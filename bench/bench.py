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

from settings import *  # noqa: F401,F403 (the bench's settings and imports)
from servers import *  # noqa: F401,F403
from servers import _on_signal
from measure import *  # noqa: F401,F403
from report import *  # noqa: F401,F403


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
