"""The benchmark's settings (environment, targets, sizes) and the imports
the other bench modules share. See bench.py for the environment variables."""

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
# The speed targets, as ratios to INCR in the same run.
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
