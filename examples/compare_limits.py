"""Runs the same timed sequence of hits through the module (RL.HIT) and
through the Python `limits` library (5.8, RedisStorage on the same server),
and prints, per strategy, a Markdown table of the replies side by side.

Run it with examples/compare-limits.sh (a private server, a venv with
limits==5.8.*). Times are seconds since the first hit of the sequence.
"""

import os
import sys
import time

import limits
import redis
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import (FixedWindowRateLimiter, MovingWindowRateLimiter,
                               SlidingWindowCounterRateLimiter)

LIMIT = "3/2 seconds"  # the same text for both: limits' syntax, accepted by RL.HIT

SEQUENCES = {
    # (seconds after the first hit, cost)
    "fixed-window": (FixedWindowRateLimiter,
                     [(0.0, 1), (0.2, 5), (0.4, 1), (0.6, 1), (0.8, 1), (2.1, 1)]),
    "moving-window": (MovingWindowRateLimiter,
                      [(0.0, 1), (0.5, 1), (1.0, 1), (1.5, 1), (2.1, 1), (2.2, 2), (2.6, 1)]),
    "sliding-window-counter": (SlidingWindowCounterRateLimiter,
                               [(0.0, 1), (0.0, 1), (0.0, 1), (2.1, 1), (2.5, 1), (2.8, 1), (2.9, 1)]),
}


def run(r, storage, strategy, limiter_cls, seq):
    key = f"cmp:{strategy}"
    item = parse(LIMIT)
    limiter = limiter_cls(storage)
    r.delete(key)
    limiter.clear(item, key)
    rows = []
    t0 = time.monotonic()
    for at, cost in seq:
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elapsed = time.monotonic() - t0
        m = r.execute_command("RL.HIT", key, LIMIT, "STRATEGY", strategy, "COST", cost)
        ok = limiter.hit(item, key, cost=cost)
        stats = limiter.get_window_stats(item, key)
        rows.append((elapsed, cost, m, ok, stats.remaining, stats.reset_time - time.time()))
    return rows


def main():
    url = os.environ["REDIS_URL"]
    r = redis.Redis.from_url(url)
    storage = RedisStorage(url)
    print(f"limits {limits.__version__}, redis-py {redis.__version__}, limit {LIMIT!r}")
    for strategy, (cls, seq) in SEQUENCES.items():
        print(f"\n### {strategy}\n")
        print("| t (s) | cost | RL.HIT reply | RL.HIT | limits `hit()` | limits remaining | limits reset in (s) | |")
        print("|---|---|---|---|---|---|---|---|")
        for elapsed, cost, m, ok, remaining, reset_in in run(r, storage, strategy, cls, seq):
            mine = "admit" if m[0] else "deny"
            theirs = "admit" if ok else "deny"
            diff = "**differs**" if (m[0] == 1) != ok or m[2] != remaining else ""
            reply = " ".join(map(str, m))
            print(f"| {elapsed:.2f} | {cost} | `{reply}` | {mine} | {theirs} | {remaining} | {reset_in:.2f} | {diff} |")


if __name__ == "__main__":
    sys.exit(main())
