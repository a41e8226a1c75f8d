#!/usr/bin/env python3
"""Runs redis-cell's CL.THROTTLE and the RL.HIT call docs/gcra.md maps it to
side by side and counts where their decisions agree (docs/gcra.md, "Checked
against redis-cell").

    REDIS_CELL_MODULE=/path/to/libredis_cell.so tools/compare-cell.py

Needs a redis-cell build (never part of this repository) and the module
(RL_MODULE, default target/release/libredis_ratelimit.so). One redis-server
on a free 127.0.0.1 port loads both; each step sends, in one MULTI/EXEC so
both see the same instant to within microseconds,

    CL.THROTTLE c:<case> max_burst count period quantity
    RL.HIT      r:<case> <count>/<period>s STRATEGY gcra BURST <max_burst+1> COST <quantity>

after a random pause, and compares the decision (limited = 1 - allowed), the
limit and the remaining count, and how redis-cell's whole seconds relate to
RL.HIT's milliseconds. Not a test (redis-cell is not available in CI);
prints a table and exits 0.
"""

import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.environ.get("RL_MODULE", os.path.join(ROOT, "target/release/libredis_ratelimit.so"))
CELL = os.environ.get("REDIS_CELL_MODULE", "")

# (max_burst, count, period s, quantities, max pause ms, steps)
CASES = [
    (4, 10, 1, [1], 150, 200),
    (0, 5, 1, [1], 300, 120),
    (9, 20, 2, [1, 1, 1, 3], 120, 200),
    (14, 30, 60, [1, 2, 5], 30, 150),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    if not CELL or not os.path.exists(CELL):
        sys.exit("set REDIS_CELL_MODULE to a redis-cell build (libredis_cell.so)")
    tmp = tempfile.mkdtemp(prefix="rl-cell-")
    port = free_port()
    srv = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tmp,
         "--loadmodule", os.path.abspath(MODULE), "--loadmodule", os.path.abspath(CELL)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        rng = random.Random(7)
        print("| CL.THROTTLE | RL.HIT | steps | same decision | same limit | same remaining "
              "| retry: s = ceil(ms/1000) | reset: s = ceil(ms/1000) |")
        print("|---|---|---|---|---|---|---|---|")
        for i, (mb, count, period, qs, pause, steps) in enumerate(CASES):
            same = {"decision": 0, "limit": 0, "remaining": 0, "retry": 0, "reset": 0}
            retries = 0
            diffs = []
            for step in range(steps):
                time.sleep(rng.uniform(0, pause) / 1000)
                q = rng.choice(qs)
                p = r.pipeline(transaction=True)
                p.execute_command("CL.THROTTLE", f"c:{i}", mb, count, period, q)
                p.execute_command("RL.HIT", f"r:{i}", f"{count}/{period}s", "STRATEGY", "gcra",
                                  "BURST", mb + 1, "COST", q)
                cell, rl = p.execute()
                limited, c_limit, c_rem, c_retry, c_reset = cell
                allowed, limit, rem, reset_ms, retry_ms = rl
                same["decision"] += limited == 1 - allowed
                same["limit"] += c_limit == limit
                same["remaining"] += c_rem == rem
                same["reset"] += c_reset == math.ceil(reset_ms / 1000)
                if not allowed and retry_ms >= 0:
                    retries += 1
                    same["retry"] += c_retry == math.ceil(retry_ms / 1000)
                if limited != 1 - allowed and len(diffs) < 3:
                    diffs.append((step, cell, rl))
            print(f"| `{mb} {count} {period} {'/'.join(map(str, sorted(set(qs))))}` "
                  f"| `{count}/{period}s BURST {mb + 1}` | {steps} "
                  f"| {same['decision']} | {same['limit']} | {same['remaining']} "
                  f"| {same['retry']} of {retries} denied | {same['reset']} |")
            for d in diffs:
                print(f"  differs at step {d[0]}: CL.THROTTLE {d[1]} RL.HIT {d[2]}")
    finally:
        srv.terminate()
        srv.wait(timeout=10)


if __name__ == "__main__":
    main()
