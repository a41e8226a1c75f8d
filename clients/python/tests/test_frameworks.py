"""Real Flask-Limiter and SlowAPI apps on the module, switched with one
import and their storage URI (examples/flask_limiter_app.py,
examples/slowapi_app.py): each served by 4 worker processes (gunicorn,
uvicorn), hammered by 4 client processes at once, for every strategy the
frameworks offer. Exactly the limit is admitted across the workers, every
other request gets a 429 whose Retry-After says when a retry will pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import redis

from conftest import PKG, Server
from redis_ratelimit._storage_core import used_and_reset
from test_multiworker import WORKERS, serving

EXAMPLES = PKG / "examples"
LIMIT = 100
CLIENTS = 4
PER_CLIENT = 75
STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")  # limits' (and so the frameworks')


def command(framework: str) -> List[str]:
    if framework == "flask-limiter":
        return [sys.executable, "-m", "gunicorn", "--chdir", str(EXAMPLES), "-w", str(WORKERS),
                "-b", "127.0.0.1:{port}", "flask_limiter_app:app"]
    return [sys.executable, "-m", "uvicorn", "slowapi_app:app", "--app-dir", str(EXAMPLES),
            "--host", "127.0.0.1", "--port", "{port}", "--workers", str(WORKERS), "--no-access-log"]


@pytest.fixture
def app(request: pytest.FixtureRequest, server: Server) -> Iterator[Tuple[str, str, str]]:
    framework, strategy = request.param
    env = dict(os.environ, RL_STORAGE_URI=f"ratelimit://{server.host}:{server.port}/0",
               RL_STRATEGY=strategy, RL_LIMIT=f"{LIMIT}/hour")
    log = os.path.join(server.dir, f"{framework}-{strategy}.log")
    with serving(command(framework), env, log, framework) as base:
        yield framework, strategy, base


def hammer_from_processes(url: str, key: str) -> List[Dict[str, Any]]:
    """CLIENTS processes of examples/hammer.py at once, all with one API key."""
    procs = [
        subprocess.Popen([sys.executable, str(EXAMPLES / "hammer.py"), "--url", url, "-n", str(PER_CLIENT),
                          "-c", "16", "--key", key], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(CLIENTS)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=90)
        assert p.returncode == 0, stdout + stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


@pytest.mark.parametrize(
    "app", [(f, s) for f in ("flask-limiter", "slowapi") for s in STRATEGIES], indirect=True,
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def test_framework_app_admits_exactly_the_limit_across_workers(app: Tuple[str, str, str], r: redis.Redis) -> None:
    framework, strategy, base = app
    key = "k-" + uuid.uuid4().hex[:12]
    runs = hammer_from_processes(f"{base}/hello", key)
    admitted = sum(x["admitted"] for x in runs)
    denied = sum(x["denied"] for x in runs)
    other = [x["other"] for x in runs if x["other"]]
    pids = set().union(*(x["admitted_by_pid"] for x in runs))
    assert other == [] and (admitted, denied) == (LIMIT, CLIENTS * PER_CLIENT - LIMIT), runs
    assert len(pids) >= 2, f"admitted by {pids} only"
    # The decisions were the module's: its one key holds exactly the limit.
    keys = r.keys(f"RATELIMIT:*{key}*")
    assert len(keys) == 1, keys
    stats = r.execute_command("RL.STATS", keys[0], f"{LIMIT}/3600s", "STRATEGY", strategy)
    now = time.time()
    used, _, retry_in = used_and_reset(stats)
    assert used == LIMIT
    # Every 429's Retry-After points at the time a retry passes (the
    # frameworks send whole seconds, rounded down; SlowAPI adds one), also
    # for a full sliding window, whose wait passes the current window's end.
    passes_at = now + retry_in
    sent = [t + after for x in runs for t, after in x["retry_afters"]]
    assert len(sent) == denied, f"{denied} denied, {len(sent)} with a Retry-After"
    assert all(passes_at - 2 <= at <= passes_at + 1.5 for at in sent), (
        framework, strategy, passes_at, min(sent), max(sent))
    print(f"{framework:14} {strategy:24} admitted {admitted} of {CLIENTS * PER_CLIENT} from {CLIENTS} "
          f"client processes by worker pids {sorted(pids)}; Retry-After -> {min(sent) - now:.0f}.."
          f"{max(sent) - now:.0f} s, a retry passes in {retry_in:.1f} s")
